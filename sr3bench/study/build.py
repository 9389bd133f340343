"""The study folder: self-contained (no CDN, no external request), so that it can be
served by ``sr3bench study-serve`` or copied to any web server; and the full plan beside it.

    site/index.html, study.js, study.css  the page (sr3bench/study/page/)
    site/raters/<page>.js                 one rater's trials (plan.rater_page), opened by the
                                          rater's link index.html?plan=<page>
    site/images/<name>.png                HR, method outputs, LR inputs and vigilance fakes
    plan.json                             the full plan: the study's settings, each rater's
                                          trials with their images, methods and sides, and
                                          each rater's <page>

What a rater can read of the served files must not tell the real photograph from the
method's output (the fool rate would then measure who reads page sources):
- the full plan stays outside the folder, and a rater's page holds that rater's trials only;
- file names are keyed hashes (HMAC-SHA256) of the image, and page names of the rater, under
  a key derived from every image of the study, so no one who lacks the method outputs can
  compute the photograph's name or another rater's page; the same inputs give the same key,
  so a rebuild writes the same plan to the byte;
- within one rater's page no file recurs (each image once in the main trials while
  ``images_per_rater`` is at most the number of images; practice and vigilance trials on
  other images where the set has them), so counting names tells nothing;
- every image is stored as an uncompressed PNG without metadata: two images of one size
  have files of one size, however much detail either has.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

from PIL import Image

from sr3bench.core.atomic import atomic_path, staged_folder
from sr3bench.core.output_folder import listed
from sr3bench.study import store
from sr3bench.study.plan import (
    VIGILANCE,
    StudyDesign,
    page_script,
    plan_trials,
    rater_ids,
    recognisable_trials,
    shown_files,
)

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
    previous one only when complete) and return the plan: {"study": settings, "pages": {rater:
    page}, "raters": {rater: [trial, ...]}}. Refused when ``answers`` holds answers given
    under another plan: they would no longer match the images and trials."""
    _check_inputs(design, hr_dir, lr_dir, method_dirs)
    hr = {name: _served(hr_dir / name) for name in design.images}
    lr = {name: _served(lr_dir / name) for name in design.images}
    fakes = {name: _served(lr_dir / name, enlarge_to=hr_dir / name) for name in design.images}
    outputs = {(name, m): _served(Path(method_dirs[m]) / name) for m in design.methods for name in design.images}
    names = _Names(design.seed, [*hr.values(), *lr.values(), *fakes.values(), *outputs.values()])
    hr, lr, fakes = ({image: names.image(data) for image, data in table.items()} for table in (hr, lr, fakes))
    outputs = {key: names.image(data) for key, data in outputs.items()}
    raters = {
        rater: [_with_files(trial, hr, lr, fakes, outputs) for trial in trials]
        for rater, trials in plan_trials(design).items()
    }
    plan = {
        "study": {
            "preset": preset,
            **{key: list(value) if isinstance(value, tuple) else value for key, value in asdict(design).items()},
            "display_ms": display_ms,
            "questions": {str(task): QUESTIONS[task] for task in design.tasks},
            "main_trials": design.main_trials,
            "vigilance_trials": design.vigilance_trials,
        },
        "pages": {rater: names.page(rater) for rater in rater_ids(design.raters)},
        "raters": raters,
    }
    text = json.dumps(plan, indent=1)
    _refuse_other_answers(answers, hashlib.sha256(text.encode()).hexdigest())
    with staged_folder(Path(site)) as staging:
        (staging / "images").mkdir()
        shown = {name for trials in raters.values() for trial in trials for name in shown_files(trial)}
        for name in sorted(shown):
            (staging / name).write_bytes(names.files[name])
        (staging / "raters").mkdir()
        for rater, page in plan["pages"].items():
            (staging / "raters" / f"{page}.js").write_text(page_script(plan, rater))
        for name in PAGE_FILES:
            shutil.copyfile(PAGE_DIR / name, staging / name)
        with atomic_path(Path(plan_file)) as temporary:
            temporary.write_text(text)
    raters_affected, trials_affected = recognisable_trials(raters)
    if trials_affected:
        log.warning(
            "study of %s: %d of %d raters see the photograph of one of their main trials again in another of "
            "their trials (%d main trials in all), and can recognise it rather than judge it: %d test images are "
            "too few for %d main, %d practice and %d vigilance trials per rater (study.images_per_rater %d gives "
            "%d main trials); for a study of people, use more test images or fewer study.images_per_rater (a "
            "rater sees each photograph once only where practice, main and vigilance trials are at most the %d "
            "test images)",
            preset,
            raters_affected,
            design.raters,
            trials_affected,
            len(design.images),
            design.main_trials,
            design.practice_trials,
            design.vigilance_trials,
            design.images_per_rater,
            design.main_trials,
            len(design.images),
        )
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


@dataclass(frozen=True)
class _Served:
    """An image as served: ``png``, an uncompressed PNG without metadata (equal sizes give
    equal file sizes), and ``pixels``, what names it (its size and RGB values: a file name
    that does not change with the PNG encoder's version)."""

    png: bytes
    pixels: bytes


def _served(path: Path, enlarge_to: Path | None = None) -> _Served:
    """The image at ``path`` as served; with ``enlarge_to``, the vigilance trial's obvious
    fake: the LR input enlarged to that image's size by nearest neighbour."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    if enlarge_to is not None:
        rgb = rgb.resize(_size(enlarge_to), Image.NEAREST)
    plain = Image.frombytes("RGB", rgb.size, rgb.tobytes())  # no ICC profile, text or gamma chunk
    buffer = io.BytesIO()
    plain.save(buffer, format="PNG", compress_level=0)
    return _Served(buffer.getvalue(), b"%dx%d|" % plain.size + plain.tobytes())


class _Names:
    """Served names under a key that only the whole study's images give (sha256 of them all,
    with the seed): images/<HMAC of the image>.png and raters/<HMAC of the rater>.js."""

    def __init__(self, seed: int, images: list[_Served]):
        digests = sorted(hashlib.sha256(image.pixels).digest() for image in images)
        self.key = hashlib.sha256(b"sr3bench study names|%d|" % seed + b"".join(digests)).digest()
        self.files: dict[str, bytes] = {}

    def _mac(self, message: bytes) -> str:
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()[:32]

    def image(self, image: _Served) -> str:
        name = f"images/{self._mac(b'image|' + image.pixels)}.png"
        self.files[name] = image.png
        return name

    def page(self, rater: str) -> str:
        return self._mac(b"page|" + rater.encode())


def check_site(site: Path, plan: dict, plan_file: Path) -> None:
    """Refuse a study folder that is not the build of ``plan`` (read from ``plan_file``; a
    FileNotFoundError naming the fix): a rater would get a page that is missing or shows
    other trials than the plan maps the answers through."""
    rebuild = f"build the study again (sr3bench study-build --preset {plan['study'].get('preset', 'PRESET')})"
    if not site.is_dir():
        raise FileNotFoundError(f"{site}: the study folder is missing: {rebuild}")
    stale = [rater for rater in plan["raters"] if not _page_matches(site, plan, rater)]
    if stale:
        raise FileNotFoundError(
            f"{site} is not the build of {plan_file}: the page of rater(s) {listed(stale, 5)} is missing or shows "
            f"other trials (or was built by an older version): {rebuild}"
        )


def _page_matches(site: Path, plan: dict, rater: str) -> bool:
    path = site / "raters" / f"{plan.get('pages', {}).get(rater)}.js"
    try:
        return path.read_text() == page_script(plan, rater)
    except (OSError, UnicodeDecodeError):
        return False
