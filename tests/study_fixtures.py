"""A small human study for the study tests: synthetic 64x64 photographs, their 16x16 inputs
and two methods' outputs, built with ``build_study`` into a study folder and, beside it (not
served), the full plan."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from sr3bench.study.build import build_study
from sr3bench.study.plan import StudyDesign

METHODS = ("sr3", "regression")


class Study(NamedTuple):
    site: Path  # the served folder
    plan_file: Path  # the full plan, outside it
    plan: dict


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
) -> Study:
    """The study folder ``root/site`` and the full plan ``root/plan.json`` (``size``: the
    photographs' width and height)."""
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
    site, plan_file = root / "site", root / "plan.json"
    plan = build_study(
        site,
        plan_file,
        design,
        folders["hr"],
        folders["lr"],
        {m: folders[m] for m in METHODS},
        display_ms,
        preset="test",
    )
    return Study(site, plan_file, plan)


def page_answer(planned: dict, choice: str, /, **changes) -> dict:
    """What the page sends for the ``planned`` trial (``importing.CSV_COLUMNS``); ``changes``
    replace fields (any, ``trial`` and ``choice`` included)."""
    trial = planned
    answer = {
        "rater": trial["rater"],
        "session": "s1",
        "trial": trial["trial"],
        "left": trial["left"],
        "right": trial["right"],
        "choice": choice,
        "reaction_ms": 812.5,
        "display_ms": 400.0,
        "timestamp": datetime(2024, 5, 1, 12, 0, trial["trial"], tzinfo=timezone.utc)
        .isoformat()
        .replace("+00:00", "Z"),
        "user_agent": "test agent",
    }
    return {**answer, **changes}


def answer_for(planned: dict, choice: str, /, origin: str = "served", **changes) -> dict:
    """The stored row (``store.COLUMNS``) of an answer to the ``planned`` trial."""
    trial = planned
    answer = page_answer(trial, choice)
    row = {
        **{key: answer[key] for key in ("rater", "session", "trial")},
        **{key: trial[key] for key in ("kind", "task", "image", "method", "method_side")},
        **{key: answer[key] for key in ("choice", "reaction_ms", "display_ms", "timestamp", "user_agent")},
        "origin": origin,
    }
    return {**row, **changes}
