"""Each rater's trial list: seeded and balanced.

- A rater does one task (with both tasks, raters alternate between them, as the paper
  asked separate raters per task).
- Main trials: the (image, method) pairs of a task are put in one seeded order, and the
  raters of that task take consecutive runs of it, cyclically, so that every pair is
  shown to equally many raters (give or take one) and never twice to the same rater.
- Sides: half of each rater's main trials show the method's output on the left, the other
  half on the right, in a seeded order.
- Practice trials (with feedback in the page) come first; vigilance trials, whose fake is
  the LR input enlarged by nearest neighbour, are spread among the main trials.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VIGILANCE = "vigilance"  # the method name of a vigilance trial
SIDES = ("left", "right")
KINDS = ("practice", "main", "vigilance")
PLAN_FILE = "plan.json"  # in the study folder: {"study": settings, "raters": {rater: [trial, ...]}}


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


def shown_methods(chosen: list[str] | None, compared: list[str]) -> list[str]:
    """The methods a study shows: those of ``study.methods`` (all when None) that the run
    compares, so that narrowing a run's methods narrows its study instead of failing it."""
    return [method for method in (chosen or compared) if method in compared]


def rater_ids(count: int) -> list[str]:
    return [f"r{index:03d}" for index in range(count)]


def rater_task(design: StudyDesign, rater_index: int) -> int:
    return design.tasks[rater_index % len(design.tasks)]


def plan_trials(design: StudyDesign) -> dict[str, list[dict]]:
    """{rater: [trial, ...]}; a trial is {rater, trial, kind, task, image, method, method_side}."""
    if not design.images or not design.methods:
        raise ValueError("a study needs at least one test image and one method")
    rng = np.random.default_rng([design.seed, 2021])
    pairs = [(image, method) for image in design.images for method in design.methods]
    orders = {task: [pairs[i] for i in rng.permutation(len(pairs))] for task in design.tasks}
    plans = {}
    for index, rater in enumerate(rater_ids(design.raters)):
        task = rater_task(design, index)
        position_in_task = index // len(design.tasks)
        plans[rater] = _rater_trials(design, rater, task, position_in_task, orders[task], rng)
    return plans


def _rater_trials(design, rater, task, position, order, rng) -> list[dict]:
    count = design.main_trials
    start = position * count
    chosen = [order[(start + offset) % len(order)] for offset in range(count)]
    chosen = [chosen[i] for i in rng.permutation(count)]
    left = np.zeros(count, dtype=bool)
    left[rng.permutation(count)[: count // 2 + int(count % 2 and rng.integers(2))]] = True
    main = [
        ("main", image, method, SIDES[0] if is_left else SIDES[1]) for (image, method), is_left in zip(chosen, left)
    ]

    vigilance = [
        ("vigilance", design.images[rng.integers(len(design.images))], VIGILANCE, SIDES[rng.integers(2)])
        for _ in range(design.vigilance_trials)
    ]
    for trial in vigilance:  # never first: a rater settles in on a real trial
        main.insert(int(rng.integers(1, len(main) + 1)), trial)

    practice = []
    for _ in range(design.practice_trials):
        image, method = (
            design.images[rng.integers(len(design.images))],
            design.methods[rng.integers(len(design.methods))],
        )
        practice.append(("practice", image, method, SIDES[rng.integers(2)]))

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


def read_plan(site: Path) -> dict:
    path = Path(site) / PLAN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: build the study first (sr3bench study-build --preset PRESET)")
    return json.loads(path.read_text())
