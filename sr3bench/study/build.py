"""The study folder: self-contained (no CDN, no external request), so that it can be
served by ``sr3bench study-serve`` or copied to any web server; and the full plan beside it.

    site/index.html, study.js, study.css  the page (sr3bench/study/page/)
    site/plan.js                          what the page needs of the plan (plan.client_plan)
    site/images/<sha256 prefix>.png       HR, method outputs, LR inputs and vigilance fakes
    plan.json                             the full plan: the study's settings, each rater's
                                          trials with their images, methods and sides

Nothing in the served folder says which method made an image or which side is the real
photograph: the full plan stays outside it, and image files are named by their content
(an image shared by two trials is stored once; a rater comparing file names across trials
in the browser's tools could still tell that one recurs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Mapping

from PIL import Image

from sr3bench.core.atomic import atomic_path, staged_folder
from sr3bench.study import store
from sr3bench.study.plan import VIGILANCE, StudyDesign, client_plan, plan_trials

log = logging.getLogger(__name__)

PAGE_DIR = Path(__file__).with_name("page")
PAGE_FILES = ("index.html", "study.js", "study.css")
QUESTIONS = {
    1: "Which of the two images is a better high quality version of the low resolution image in the middle?",
    2: "Which image would you guess is from a camera?",
}


class StudyBuildError(ValueError):
    pass


def build_study(
    site: Path,
    plan_file: Path,
    design: StudyDesign,
    hr_dir: Path,
    lr_dir: Path,
    method_dirs: Mapping[str, Path],
    display_ms: int,
    preset: str,
    answers: Path | None = None,
) -> dict:
    """Write the study folder ``site`` and the full plan ``plan_file`` (each replacing the
    previous one only when complete) and return the plan: {"study": settings, "raters":
    {rater: [trial, ...]}}. Refused when ``answers`` holds answers given under another
    plan: they would no longer match the images and trials."""
    _check_inputs(design, hr_dir, lr_dir, method_dirs)
    with staged_folder(Path(site)) as staging:
        (staging / "images").mkdir()
        files = _ImageStore(staging / "images")
        hr = {name: files.add_file(hr_dir / name) for name in design.images}
        lr = {name: files.add_file(lr_dir / name) for name in design.images}
        fakes = {name: files.add_image(_nearest_fake(lr_dir / name, hr_dir / name)) for name in design.images}
        outputs = {
            (name, m): files.add_file(Path(method_dirs[m]) / name) for m in design.methods for name in design.images
        }
        raters = {}
        for rater, trials in plan_trials(design).items():
            raters[rater] = [_with_files(trial, hr, lr, fakes, outputs) for trial in trials]
        plan = {
            "study": {
                "preset": preset,
                **{key: list(value) if isinstance(value, tuple) else value for key, value in asdict(design).items()},
                "display_ms": display_ms,
                "questions": {str(task): QUESTIONS[task] for task in design.tasks},
                "main_trials": design.main_trials,
                "vigilance_trials": design.vigilance_trials,
            },
            "raters": raters,
        }
        text = json.dumps(plan, indent=1)
        _refuse_other_answers(answers, hashlib.sha256(text.encode()).hexdigest())
        (staging / "plan.js").write_text(f"window.STUDY = {json.dumps(client_plan(plan), indent=1)};\n")
        for name in PAGE_FILES:
            shutil.copyfile(PAGE_DIR / name, staging / name)
        with atomic_path(Path(plan_file)) as temporary:
            temporary.write_text(text)
    log.info(
        "study of %s: %d raters x (%d practice + %d main + %d vigilance) trials, tasks %s, methods %s, in %s",
        preset,
        design.raters,
        design.practice_trials,
        design.main_trials,
        design.vigilance_trials,
        ", ".join(map(str, design.tasks)),
        ", ".join(design.methods),
        site,
    )
    return plan


def _refuse_other_answers(answers: Path | None, fingerprint: str) -> None:
    other = store.other_plan(answers, fingerprint) if answers is not None else None
    if other is not None:
        raise StudyBuildError(
            f"{answers} holds answers given under the study as it was built before (plan {other}), and the "
            f"study would change (plan {fingerprint[:12]}: other samples, images or settings). Move {answers} "
            "away to start a new study with these inputs, or restore the inputs the answers were given under"
        )


def _with_files(trial: dict, hr, lr, fakes, outputs) -> dict:
    image, method = trial["image"], trial["method"]
    fake = fakes[image] if method == VIGILANCE else outputs[(image, method)]
    left, right = (fake, hr[image]) if trial["method_side"] == "left" else (hr[image], fake)
    return {**trial, "left": left, "right": right, "lr": lr[image]}


def _check_inputs(design: StudyDesign, hr_dir: Path, lr_dir: Path, method_dirs: Mapping[str, Path]) -> None:
    problems = []
    for folder in (hr_dir, lr_dir, *(method_dirs[m] for m in design.methods)):
        missing = [name for name in design.images if not (Path(folder) / name).is_file()]
        if missing:
            problems.append(f"{folder}: no {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if problems:
        raise StudyBuildError("the study's images are incomplete (sample and prepare first): " + "; ".join(problems))
    for name in design.images:
        size = _size(Path(hr_dir) / name)
        wrong = [m for m in design.methods if _size(Path(method_dirs[m]) / name) != size]
        if wrong:
            raise StudyBuildError(f"{name}: the outputs of {', '.join(wrong)} are not the HR image's size {size}")


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def _nearest_fake(lr_path: Path, hr_path: Path) -> Image.Image:
    """The vigilance trial's obvious fake: the LR input enlarged by nearest neighbour."""
    with Image.open(lr_path) as lr:
        return lr.convert("RGB").resize(_size(hr_path), Image.NEAREST)


class _ImageStore:
    """Files under their content's name: images/<first 16 hex digits of sha256>.png."""

    def __init__(self, folder: Path):
        self.folder = folder

    def add_file(self, path: Path) -> str:
        data = path.read_bytes()
        if path.suffix.lower() != ".png":
            with Image.open(path) as image:
                return self.add_image(image.convert("RGB"))
        return self._store(data)

    def add_image(self, image: Image.Image) -> str:
        temporary = self.folder / ".image.png"
        image.save(temporary, format="PNG")
        data = temporary.read_bytes()
        temporary.unlink()
        return self._store(data)

    def _store(self, data: bytes) -> str:
        name = f"images/{hashlib.sha256(data).hexdigest()[:16]}.png"
        target = self.folder.parent / name
        if not target.exists():
            target.write_bytes(data)
        return name
