"""The study-analyse stage: the fool rates of the human study (results/<preset>/study/)
from its answers: those of human raters (studies/<preset>/answers.sqlite, filled by
study-serve and study-import), or simulated ones (labelled so)."""

from __future__ import annotations

import logging

from sr3bench.study import analysis, store
from sr3bench.study.plan import plan_fingerprint, read_plan

log = logging.getLogger(__name__)


def run(job) -> None:
    settings, paths = job.settings, job.paths
    simulated = settings.study.answers == "simulated"
    answers_file = paths.study_simulated if simulated else paths.study_answers
    if not answers_file.is_file():
        raise FileNotFoundError(
            f"{answers_file}: no answers yet. Collect them with `sr3bench study-serve --preset {job.preset_name}` "
            f"or load a static study's CSV with `sr3bench study-import --preset {job.preset_name} FILE` "
            "(docs/human-study.md)"
        )
    current = plan_fingerprint(paths.study_plan)
    other = store.other_plan(answers_file, current)
    if other is not None:
        raise ValueError(
            f"{answers_file} holds answers given under another build of the study (plan {other}, now "
            f"{current[:12]}): they do not match its trials. Restore the study's inputs, or move the answers away"
        )
    plan = read_plan(paths.study_plan)
    study = plan["study"]
    result = analysis.analyse(
        store.read_answers(answers_file),
        study["methods"],
        study["images"],
        max_failed_vigilance=settings.study.max_failed_vigilance,
        resamples=settings.study.bootstrap_resamples,
        seed=settings.seed,
        raters=list(plan["raters"]),
        tasks=study["tasks"],
    )
    analysis.write(result, paths.study_results)
    kind = "SIMULATED answers" if result.simulated else "answers"
    for _, row in result.fool_rates.iterrows():
        log.info(
            "%s task %d: fool rate %.1f%%, Wilson [%.1f%%, %.1f%%], bootstrap [%.1f%%, %.1f%%]%s "
            "(%d trials, %d raters; %s)",
            row["method"],
            row["task"],
            100 * row["rate"],
            100 * row["wilson_low"],
            100 * row["wilson_high"],
            100 * row["bootstrap_low"],
            100 * row["bootstrap_high"],
            " without spread (every rater at the same end: read Wilson's)"
            if analysis.bootstrap_without_spread(row)
            else "",
            row["trials"],
            row["raters"],
            kind,
        )
    log.info(
        "%d raters included, %d excluded (vigilance), %d without answers; results in %s",
        result.raters_included,
        result.raters_excluded,
        result.raters_without_answers,
        paths.study_results,
    )
