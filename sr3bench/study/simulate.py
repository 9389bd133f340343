"""Answers drawn for planned trials with known fool rates, always labelled simulated: for
testing the analysis and sizing a study, never for showing as human data.

A rater is fooled with probability sigmoid(logit(fool_rates[method]) + rater effect + image
effect), both effects normal with mean 0. Attentive raters fail a vigilance trial with
probability 0.02; inattentive ones (a share of the raters, drawn from the seed) pick at
random on every trial, vigilance included. Practice trials are answered like the others.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from sr3bench.study.analysis import ANSWER_COLUMNS, KINDS, SIDES, VIGILANCE

TRIAL_KEYS = ("rater", "trial", "kind", "task", "image", "method", "method_side")  # a trial of the plan
ATTENTIVE_VIGILANCE_FAILURE = 0.02
REACTION_MEDIAN_MS = 1500.0
REACTION_LOG_SD = 0.4  # lognormal: about 1000 to 2200 ms for the middle two thirds
DISPLAY_JITTER_MS = 8.0  # the page measures a little more than the setting (frames)
PAUSE_MS = 600.0  # between an answer and the next pair
START = datetime(2021, 1, 1, tzinfo=timezone.utc)
USER_AGENT = "simulated rater"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _checked_plan(trials) -> list[dict]:
    plan = [dict(trial) for trial in trials]
    for trial in plan:
        if set(trial) != set(TRIAL_KEYS):
            missing, extra = set(TRIAL_KEYS) - set(trial), set(trial) - set(TRIAL_KEYS)
            raise ValueError(
                f"a planned trial has the keys {', '.join(TRIAL_KEYS)}; this one "
                + (f"lacks {', '.join(sorted(missing))} " if missing else "")
                + (f"has unknown {', '.join(sorted(map(str, extra)))}" if extra else "")
                + f": {trial}"
            )
        if trial["kind"] not in KINDS or trial["method_side"] not in SIDES:
            raise ValueError(f"a planned trial has kind in {KINDS} and method_side in {SIDES}: {trial}")
        if (trial["kind"] == "vigilance") != (trial["method"] == VIGILANCE) and trial["kind"] != "practice":
            raise ValueError(f"a vigilance trial, and only one, has the method {VIGILANCE!r}: {trial}")
    plan.sort(key=lambda trial: (str(trial["rater"]), trial["trial"]))
    keys = [(str(t["rater"]), t["trial"]) for t in plan]
    if len(set(keys)) != len(keys):
        raise ValueError("the plan holds a (rater, trial) twice")
    return plan


def simulate_answers(
    trials,
    fool_rates: dict[str, float],
    rater_sd: float,
    image_sd: float,
    *,
    inattentive_share: float,
    seed: int,
    display_ms: float,
) -> pd.DataFrame:
    """Answer rows (the columns of ``analysis.ANSWER_COLUMNS``, origin 'simulated') for the
    planned ``trials`` (dicts with exactly the keys ``TRIAL_KEYS``), in (rater, trial) order;
    the same for the same arguments. The spreads and the share have no defaults here: the
    pipeline passes ``study.simulated``'s, whose defaults are the schema's. The truth a
    check needs rides along in ``.attrs``: ``inattentive_raters`` (sorted rater ids, as text)."""
    plan = _checked_plan(trials)
    if not plan:
        empty = pd.DataFrame(columns=list(ANSWER_COLUMNS))
        empty.attrs["inattentive_raters"] = []
        return empty
    for method, rate in fool_rates.items():
        if not 0 < rate < 1:
            raise ValueError(f"fool rate of {method!r} is {rate}: a simulated rate lies strictly between 0 and 1")
    compared = {t["method"] for t in plan if t["method"] != VIGILANCE}
    if compared - set(fool_rates):
        raise ValueError(f"no fool rate given for method(s) {', '.join(sorted(compared - set(fool_rates)))}")
    if rater_sd < 0 or image_sd < 0 or not 0 <= inattentive_share <= 1:
        raise ValueError("rater_sd and image_sd are >= 0, inattentive_share lies in [0, 1]")

    rng = np.random.default_rng(seed)
    raters = sorted({str(t["rater"]) for t in plan})
    images = sorted({str(t["image"]) for t in plan})
    rater_effect = dict(zip(raters, rng.normal(0.0, rater_sd, len(raters))))
    image_effect = dict(zip(images, rng.normal(0.0, image_sd, len(images))))
    inattentive = {raters[i] for i in rng.choice(len(raters), round(inattentive_share * len(raters)), replace=False)}
    sessions = {rater: str(uuid.UUID(bytes=rng.bytes(16), version=4)) for rater in raters}

    rater_of = [str(t["rater"]) for t in plan]
    vigilance = np.array([t["method"] == VIGILANCE for t in plan])
    logit = np.array(
        [
            0.0 if t["method"] == VIGILANCE else math.log(fool_rates[t["method"]] / (1 - fool_rates[t["method"]]))
            for t in plan
        ]
    )
    effects = np.array([rater_effect[r] + image_effect[str(t["image"])] for r, t in zip(rater_of, plan)])
    fooled_chance = np.where(vigilance, ATTENTIVE_VIGILANCE_FAILURE, _sigmoid(logit + effects))
    fooled_chance = np.where([r in inattentive for r in rater_of], 0.5, fooled_chance)
    fooled = rng.random(len(plan)) < fooled_chance
    reaction = np.round(rng.lognormal(math.log(REACTION_MEDIAN_MS), REACTION_LOG_SD, len(plan)))
    shown = np.round(display_ms + np.abs(rng.normal(0.0, DISPLAY_JITTER_MS, len(plan))), 1)

    order = {rater: index for index, rater in enumerate(raters)}
    rows, clock = [], {}
    for index, (trial, rater) in enumerate(zip(plan, rater_of)):
        started = clock.get(rater, START + timedelta(hours=order[rater]))
        answered = started + timedelta(milliseconds=float(reaction[index]))
        clock[rater] = answered + timedelta(milliseconds=PAUSE_MS)
        other_side = "right" if trial["method_side"] == "left" else "left"
        rows.append(
            {
                "rater": trial["rater"],
                "session": sessions[rater],
                "trial": trial["trial"],
                "kind": trial["kind"],
                "task": trial["task"],
                "image": trial["image"],
                "method": trial["method"],
                "method_side": trial["method_side"],
                "choice": trial["method_side"] if fooled[index] else other_side,
                "reaction_ms": float(reaction[index]),
                "display_ms": float(shown[index]),
                "timestamp": answered.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "user_agent": USER_AGENT,
                "origin": "simulated",
            }
        )
    answers = pd.DataFrame(rows, columns=list(ANSWER_COLUMNS))
    answers.attrs["inattentive_raters"] = sorted(inattentive)
    return answers
