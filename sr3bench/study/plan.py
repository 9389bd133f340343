"""Each rater's trial list: seeded and balanced, and what of it the page may see.

- A rater does one task (with both tasks, raters alternate between them, as the paper
  asked separate raters per task).
- Main trials: within a task, the images and the methods each get a seeded order, and the
  raters of the task take consecutive runs of one long sequence that walks through the
  images again and again, the method of an image shifting by one at each pass (a Latin
  square). So every (image, method) pair is shown to equally many raters, give or take
  one; no rater sees a pair twice; a rater sees distinct images as long as
  ``images_per_rater`` is at most the number of images, and the methods in turn.
- Sides: each method's trials of a rater alternate between left and right (in a seeded
  order; when they are odd in number, the extra one alternates between raters): every
  rater and every method is balanced within one per method.
- Practice trials (with feedback in the page) come first; vigilance trials, whose fake is
  the LR input enlarged by nearest neighbour, are spread among the main trials. Both take
  images the rater does not see in the main trials where the set has any: the feedback
  names the real photograph, and so does the obvious fake.

The full plan (``studies/<preset>/plan.json``) stays outside the served folder: each rater's
page gets ``rater_page``, which names neither methods nor images nor where the method's output
is, nor another rater's trials.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sr3bench.core.stage_files import read_json

VIGILANCE = "vigilance"  # the method name of a vigilance trial
SIDES = ("left", "right")
KINDS = ("practice", "main", "vigilance")


@dataclass(frozen=True)
class StudyDesign:
    methods: tuple[str, ...]
    images: tuple[str, ...]
    tasks: tuple[int, ...]
    raters: int
    images_per_rater: int
    practice_trials: int
    vigilance_share: float
    seed: int

    @property
    def main_trials(self) -> int:
        """Main trials per rater: at most one per (image, method) pair."""
        return min(self.images_per_rater, len(self.images) * len(self.methods))

    @property
    def vigilance_trials(self) -> int:
        if self.vigilance_share <= 0:
            return 0
        return max(1, round(self.main_trials * self.vigilance_share))


def rater_ids(count: int) -> list[str]:
    return [f"r{index:03d}" for index in range(count)]


def rater_task(design: StudyDesign, rater_index: int) -> int:
    return design.tasks[rater_index % len(design.tasks)]


def plan_trials(design: StudyDesign) -> dict[str, list[dict]]:
    """{rater: [trial, ...]}; a trial is {rater, trial, kind, task, image, method, method_side}."""
    if not design.images or not design.methods:
        raise ValueError("a study needs at least one test image and one method")
    rng = np.random.default_rng([design.seed, 2021])
    orders = {
        task: (
            [design.images[i] for i in rng.permutation(len(design.images))],
            [design.methods[i] for i in rng.permutation(len(design.methods))],
            int(rng.integers(2)),  # which side the first image's first showing takes
        )
        for task in design.tasks
    }
    plans = {}
    for index, rater in enumerate(rater_ids(design.raters)):
        task = rater_task(design, index)
        main = _main_trials(design, index // len(design.tasks), *orders[task])
        plans[rater] = _rater_trials(design, rater, task, main, rng)
    return plans


def _main_trials(design: StudyDesign, position: int, images, methods, flip: int) -> list[tuple]:
    """The ``position``-th rater's run of the task's sequence: step s shows image i = s mod N
    with method (s div N + i) mod M. Sides: each method's trials of the run alternate
    between left and right in a seeded order, the odd one out alternating between raters."""
    count, n_images, n_methods = design.main_trials, len(images), len(methods)
    pairs = []
    for step in range(position * count, (position + 1) * count):
        image_index = step % n_images
        pairs.append((images[image_index], methods[(step // n_images + image_index) % n_methods]))
    rng = np.random.default_rng([flip, position, 7])
    trials = []
    for method_index, method in enumerate(methods):
        mine = [pair for pair in pairs if pair[1] == method]
        start = (position + method_index + flip) % 2
        for order, index in enumerate(rng.permutation(len(mine))):
            trials.append(("main", *mine[index], SIDES[(start + order) % 2]))
    return trials


def _rater_trials(design: StudyDesign, rater: str, task: int, main: list[tuple], rng) -> list[dict]:
    main = [main[i] for i in rng.permutation(len(main))]
    # Practice and vigilance trials show the photograph beside an obvious or a named fake: on
    # an image of the rater's main trials, it would give away that trial's real side.
    unseen = [image for image in design.images if image not in {trial[1] for trial in main}]
    spare_images = unseen or list(design.images)  # for the practice trials too
    for _ in range(design.vigilance_trials):  # never first: a rater settles in on a real trial
        trial = ("vigilance", spare_images[rng.integers(len(spare_images))], VIGILANCE, SIDES[rng.integers(2)])
        main.insert(int(rng.integers(1, len(main) + 1)), trial)

    practice = [
        (
            "practice",
            spare_images[rng.integers(len(spare_images))],
            design.methods[rng.integers(len(design.methods))],
            SIDES[rng.integers(2)],
        )
        for _ in range(design.practice_trials)
    ]
    return [
        {
            "rater": rater,
            "trial": index,
            "kind": kind,
            "task": task,
            "image": image,
            "method": method,
            "method_side": side,
        }
        for index, (kind, image, method, side) in enumerate(practice + main)
    ]


CLIENT_STUDY_KEYS = ("display_ms", "questions", "tasks", "practice_trials", "main_trials", "vigilance_trials")
CLIENT_TRIAL_KEYS = ("trial", "kind", "task", "left", "right")


def recognisable_trials(raters: dict[str, list[dict]]) -> tuple[int, int]:
    """(raters, main trials) where a rater meets the main trial's image, or one of its files,
    in another of their trials (another main trial, a practice trial naming the photograph,
    a vigilance trial beside an obvious fake), so that its photograph can be recognised
    rather than judged: when ``images_per_rater`` with the practice and vigilance trials
    needs more test images than there are, or two test images are the same picture."""
    affected = []
    for trials in raters.values():
        marks = [_marks(trial) for trial in trials]
        counts = Counter(mark for trial_marks in marks for mark in trial_marks)
        affected.append(
            sum(1 for t, ms in zip(trials, marks) if t["kind"] == "main" and any(counts[m] > 1 for m in ms))
        )
    return sum(1 for count in affected if count), sum(affected)


def _marks(trial: dict) -> set[str]:
    """What a rater can match across trials: the image, and the files shown where the plan
    has them."""
    files = shown_files(trial) if "left" in trial else ()
    return {f"image:{trial['image']}", *(f"file:{name}" for name in files)}


def shown_files(trial: dict) -> tuple[str, ...]:
    """The image files a trial shows: the pair, and in task 1 the LR input between them
    (task 2 hides it: its file would let a program find the photograph, whose downsampling
    it is)."""
    return (trial["left"], trial["right"], trial["lr"]) if trial["task"] == 1 else (trial["left"], trial["right"])


def rater_page(plan: dict, rater: str) -> dict:
    """What the page of one rater gets (site/raters/<page>.js): the study's display settings,
    the rater's name, and per trial the image files it shows and, for practice trials only,
    the real photograph's side (the feedback); never a method, an image's name, where the
    method's output is, or another rater's trials."""
    return {
        "study": {key: plan["study"][key] for key in CLIENT_STUDY_KEYS},
        "rater": rater,
        "trials": [
            {
                **{key: trial[key] for key in CLIENT_TRIAL_KEYS},
                **({"lr": trial["lr"]} if trial["task"] == 1 else {}),
                **({"real_side": _other(trial["method_side"])} if trial["kind"] == "practice" else {}),
            }
            for trial in plan["raters"][rater]
        ],
    }


def page_script(plan: dict, rater: str) -> str:
    """The text of the rater's plan file, site/raters/<page>.js."""
    return f"window.STUDY = {json.dumps(rater_page(plan, rater), indent=1)};\n"


def page_link(plan: dict, rater: str) -> str:
    """The rater's link, relative to the study folder: the page with the rater's plan file."""
    return f"index.html?plan={plan['pages'][rater]}"


def _other(side: str) -> str:
    return SIDES[1] if side == SIDES[0] else SIDES[0]


def read_plan(plan_file: Path) -> dict:
    """The full plan (studies/<preset>/plan.json)."""
    return read_json(plan_file, "build the study again (sr3bench study-build --preset PRESET)", ("study", "raters"))


def plan_fingerprint(plan_file: Path) -> str:
    """What ties answers to the plan they were given under: the plan file's sha256."""
    return hashlib.sha256(Path(plan_file).read_bytes()).hexdigest()
