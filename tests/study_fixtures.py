"""A small human study for the study tests: synthetic 64x64 photographs, their 16x16 inputs
and two methods' outputs, built into a study folder with ``build_study``."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from sr3bench.study.build import build_study
from sr3bench.study.plan import StudyDesign

METHODS = ("sr3", "regression")


def make_images(root: Path, count: int = 4, size: int = 64, factor: int = 4) -> dict[str, Path]:
    """HR, LR and method folders of ``count`` synthetic images (smooth colours plus texture)."""
    folders = {name: root / name for name in ("hr", "lr", *METHODS)}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size] / size
    for index in range(count):
        phase = rng.uniform(0, 2 * np.pi, 3)
        colour = np.stack([np.sin(6 * x + 4 * y * (c + 1) + phase[c]) for c in range(3)], axis=-1)
        pixels = np.clip(127 + 90 * colour + rng.normal(0, 12, colour.shape), 0, 255).astype(np.uint8)
        hr = Image.fromarray(pixels)
        lr = hr.resize((size // factor, size // factor), Image.BICUBIC)
        name = f"img{index}.png"
        hr.save(folders["hr"] / name)
        lr.save(folders["lr"] / name)
        noisy = np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folders["sr3"] / name)
        lr.resize((size, size), Image.BICUBIC).save(folders["regression"] / name)
    return folders


def make_study(
    root: Path,
    raters: int = 2,
    images_per_rater: int = 4,
    practice_trials: int = 1,
    vigilance_share: float = 0.25,
    tasks: tuple[int, ...] = (1, 2),
    display_ms: int = 400,
    seed: int = 0,
    size: int = 64,
) -> tuple[Path, dict]:
    """The study folder ``root/site`` and its plan (``size``: the photographs' width and height)."""
    folders = make_images(root / "images", size=size)
    design = StudyDesign(
        methods=METHODS,
        images=tuple(sorted(path.name for path in folders["hr"].iterdir())),
        tasks=tasks,
        raters=raters,
        images_per_rater=images_per_rater,
        practice_trials=practice_trials,
        vigilance_share=vigilance_share,
        seed=seed,
    )
    site = root / "site"
    plan = build_study(
        site, design, folders["hr"], folders["lr"], {m: folders[m] for m in METHODS}, display_ms, preset="test"
    )
    return site, plan


def answer_for(trial: dict, choice: str, origin: str = "served", **changes) -> dict:
    """An answer row (``store.COLUMNS``) to the planned ``trial``."""
    row = {
        "rater": trial["rater"],
        "session": "s1",
        "trial": trial["trial"],
        "kind": trial["kind"],
        "task": trial["task"],
        "image": trial["image"],
        "method": trial["method"],
        "method_side": trial["method_side"],
        "choice": choice,
        "reaction_ms": 812.5,
        "display_ms": 400.0,
        "timestamp": datetime(2024, 5, 1, 12, 0, trial["trial"], tzinfo=timezone.utc)
        .isoformat()
        .replace("+00:00", "Z"),
        "user_agent": "test agent",
        "origin": origin,
    }
    return {**row, **changes}
