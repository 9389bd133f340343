"""The study-simulate stage: answers of simulated raters for the study's plan, drawn with
``study.simulated``'s fool rates (sr3bench/study/simulate.py), into their own database
(studies/<preset>/simulated.sqlite), never the human answers'. Every row says
``origin: simulated``, and the analysis and the report label them so."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sr3bench.study import store
from sr3bench.study.plan import plan_fingerprint, read_plan
from sr3bench.study.simulate import TRIAL_KEYS, simulate_answers

log = logging.getLogger(__name__)


def _remove_database(path: Path) -> None:
    for file in store.database_files(path):
        file.unlink(missing_ok=True)


def run(job) -> None:
    settings, paths = job.settings, job.paths
    simulated = settings.study.simulated
    plan = read_plan(paths.study_plan)
    trials = [{key: trial[key] for key in TRIAL_KEYS} for rater in plan["raters"].values() for trial in rater]
    answers = simulate_answers(
        trials,
        dict(simulated.fool_rates),
        rater_sd=simulated.rater_sd,
        image_sd=simulated.image_sd,
        inattentive_share=simulated.inattentive_share,
        seed=settings.seed,
        display_ms=plan["study"]["display_ms"],
    )
    out = paths.study_simulated
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    _remove_database(staging)
    try:
        connection = store.open_store(staging)
        try:
            store.bind_plan(connection, plan_fingerprint(paths.study_plan))
            store.record_many(connection, answers.to_dict("records"))
        finally:
            connection.close()
        store.checkpoint(staging)
        _remove_database(out)  # an old log beside the new file would be replayed onto it
        os.replace(staging, out)
    finally:
        _remove_database(staging)
    log.info(
        "%d SIMULATED answers of %d raters (fool rates %s) in %s",
        len(answers),
        len(plan["raters"]),
        ", ".join(f"{m} {r}" for m, r in simulated.fool_rates.items()),
        out,
    )
