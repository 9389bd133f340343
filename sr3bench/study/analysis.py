"""Fool rates of the human study from its answer rows: per method and task with Wilson and
hierarchical-bootstrap 95% intervals, per image, raters excluded by vigilance, reaction times.

A rater was fooled when ``choice == method_side``. Practice answers are never analysed; a
rater who failed more than ``max_failed_vigilance`` vigilance trials is left out of every
rate. Simulated answers are analysed only on their own, and the result says so.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sr3bench.core.atomic import atomic_folder
from sr3bench.core.stage_files import read_json
from sr3bench.study.plan import KINDS, SIDES, VIGILANCE
from sr3bench.study.store import COLUMNS as ANSWER_COLUMNS
from sr3bench.study.store import ORIGINS

TASKS = (1, 2)
WILSON_Z = 1.959963984540054  # the 97.5% quantile of the standard normal: a two-sided 95% interval
CONFIDENCE = 0.95
SHOWN_BAD_ROWS = 5

FOOL_RATE_COLUMNS = [
    "method",
    "task",
    "trials",
    "raters",
    "fooled",
    "rate",
    "wilson_low",
    "wilson_high",
    "bootstrap_low",
    "bootstrap_high",
    "bootstrap_resamples",
    "reaction_ms_median",
    "reaction_ms_q25",
    "reaction_ms_q75",
    "display_ms_median",
]
PER_IMAGE_COLUMNS = ["method", "task", "image", "trials", "fooled", "rate"]
RATER_COLUMNS = [
    "rater",
    "tasks",
    "main_trials",
    "main_fooled",
    "vigilance_trials",
    "failed_vigilance",
    "excluded",
    "status",
    "median_reaction_ms",
]
INCLUDED, FAILED_VIGILANCE, NO_ANSWERS = "included", "failed vigilance", "no answers"
HEADLINE_COLUMNS = FOOL_RATE_COLUMNS[:10]
FILES = ("fool_rates.csv", "per_image.csv", "raters.csv", "summary.json")


class StudyError(ValueError):
    """The answers cannot be analysed as they are; the message says what to fix."""


@dataclass(frozen=True, eq=False)
class StudyAnalysis:
    fool_rates: pd.DataFrame  # FOOL_RATE_COLUMNS: one row per (method, task)
    per_image: pd.DataFrame  # PER_IMAGE_COLUMNS: one row per (method, task, image) answered
    raters: pd.DataFrame  # RATER_COLUMNS: one row per rater, excluded ones included
    resamples: int  # bootstrap resamples behind bootstrap_low / bootstrap_high
    max_failed_vigilance: int  # a rater with more failed vigilance trials is excluded
    seed: int  # of the bootstrap
    simulated: bool  # the answers were drawn by sr3bench.study.simulate, not given by people
    raters_included: int
    raters_excluded: int  # for failing vigilance
    raters_without_answers: int  # expected (or seen in practice only) without a main answer
    trials: int  # main trials of the included raters


def wilson_interval(fooled: int, trials: int, z: float = WILSON_Z) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (E. B. Wilson, "Probable inference,
    the law of succession, and statistical inference", JASA 22, 1927): the proportions p with
    |fooled/trials - p| <= z * sqrt(p (1 - p) / trials). NaN for no trials."""
    if trials <= 0:
        return math.nan, math.nan
    share = fooled / trials
    z2_over_n = z * z / trials
    centre = (share + z2_over_n / 2) / (1 + z2_over_n)
    half_width = z / (1 + z2_over_n) * math.sqrt(share * (1 - share) / trials + z2_over_n / (4 * trials))
    low = 0.0 if fooled == 0 else max(0.0, centre - half_width)  # exact at the ends, not 1e-17
    return low, 1.0 if fooled == trials else min(1.0, centre + half_width)


def bootstrap_without_spread(row) -> bool:
    """Whether a fool-rate row's bootstrap interval has no width although trials were
    answered: every included rater at 0% or every one at 100% (a percentile bootstrap
    cannot leave an observed 0 or 1), or a single rater at either end. Wilson's interval is
    then the one to read."""
    return bool(row["trials"]) and row["bootstrap_low"] == row["bootstrap_high"]


def hierarchical_bootstrap(
    trials_per_rater, fooled_per_rater, resamples: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile 95% interval of the pooled fool rate, resampling raters with replacement
    and then each drawn rater's trials with replacement (pooled rate = fooled / trials of
    the draw). Counting the fooled ones among n trials drawn with replacement from a rater's
    n answers is a Binomial(n, fooled/n) draw, so each resample takes one binomial per rater.
    Within one method and task a rater's trials are distinct images (plan.py never shows a
    pair twice), so resampling trials is resampling images within rater."""
    trials = np.asarray(trials_per_rater, dtype=np.int64)
    fooled = np.asarray(fooled_per_rater, dtype=np.int64)
    if len(trials) == 0 or trials.sum() == 0:
        return math.nan, math.nan
    drawn = rng.integers(0, len(trials), size=(resamples, len(trials)))
    drawn_trials = trials[drawn]
    drawn_fooled = rng.binomial(drawn_trials, (fooled / np.maximum(trials, 1))[drawn])
    rates = drawn_fooled.sum(axis=1) / drawn_trials.sum(axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(rates, [tail, 100 - tail])
    return float(low), float(high)


def _rows_named(rows: pd.DataFrame) -> str:
    """'rater 'A', trial 3; rater 'B', trial 7 (and 4 more)' for error messages."""
    shown = rows.head(SHOWN_BAD_ROWS)
    named = "; ".join(f"rater {r!r}, trial {t}" for r, t in zip(shown["rater"], shown["trial"]))
    more = len(rows) - SHOWN_BAD_ROWS
    return named + (f" (and {more} more)" if more > 0 else "")


def _check_values(rows: pd.DataFrame, column: str, bad: pd.Series, expected: str) -> None:
    if bad.any():
        values = sorted({repr(v) for v in rows.loc[bad, column]})
        raise StudyError(
            f"{column} is {', '.join(values[:SHOWN_BAD_ROWS])} in {bad.sum()} answer(s) ({_rows_named(rows[bad])}); "
            f"expected {expected}: correct those rows or drop them"
        )


def _checked(answers: pd.DataFrame, methods: list[str], images: list[str], raters: list[str] | None) -> pd.DataFrame:
    """The answers with normalised types, or a StudyError naming the first problem found."""
    missing = [c for c in ANSWER_COLUMNS if c not in answers.columns]
    unknown = [str(c) for c in answers.columns if c not in ANSWER_COLUMNS]
    if missing or unknown:
        problems = ([f"lack column(s) {', '.join(missing)}"] if missing else []) + (
            [f"have unknown column(s) {', '.join(unknown)}"] if unknown else []
        )
        raise StudyError(
            f"the answers {' and '.join(problems)}; an answer row has exactly the columns "
            f"{', '.join(ANSWER_COLUMNS)} (sr3bench.study.store.COLUMNS): add, rename or drop columns to match"
        )
    if answers.empty:
        raise StudyError(
            "no answers: the table is empty; collect answers (sr3bench study-serve or an imported CSV) first"
        )
    rows = answers.reset_index(drop=True).copy()
    if rows["rater"].isna().any():
        raise StudyError(f"{rows['rater'].isna().sum()} answer(s) have no rater id: every answer names its rater")
    rows["rater"] = rows["rater"].astype(str)

    trial = pd.to_numeric(rows["trial"], errors="coerce")
    _check_values(rows, "trial", ~((trial >= 0) & (trial % 1 == 0)), "a whole number from 0 (the index in the plan)")
    rows["trial"] = trial.astype(np.int64)
    duplicated = rows[rows.duplicated(["rater", "trial"], keep=False)].drop_duplicates(["rater", "trial"])
    if not duplicated.empty:
        raise StudyError(
            f"{len(duplicated)} trial(s) answered more than once ({_rows_named(duplicated)}); "
            "each (rater, trial) has one answer: keep the first answer of each and drop the others"
        )

    _check_values(rows, "kind", ~rows["kind"].isin(KINDS), " | ".join(KINDS))
    task = pd.to_numeric(rows["task"], errors="coerce")
    _check_values(rows, "task", ~task.isin(TASKS), " | ".join(map(str, TASKS)))
    rows["task"] = task.astype(np.int64)
    for column in ("method_side", "choice"):
        _check_values(rows, column, ~rows[column].isin(SIDES), " | ".join(SIDES))
    _check_values(rows, "origin", ~rows["origin"].isin(ORIGINS), " | ".join(ORIGINS))
    for column, may_be_missing in (("reaction_ms", False), ("display_ms", True)):
        value = pd.to_numeric(rows[column], errors="coerce")
        bad = ~(value >= 0) & ~(value.isna() & rows[column].isna() & may_be_missing)
        _check_values(rows, column, bad, "a number of milliseconds >= 0" + (" (or empty)" if may_be_missing else ""))
        rows[column] = value.astype(np.float64)

    origins = set(rows["origin"])
    if "simulated" in origins and len(origins) > 1:
        others = ", ".join(sorted(origins - {"simulated"}))
        raise StudyError(
            f"simulated answers are mixed with {others} ones: simulated answers are never shown as human data; "
            "analyse them on their own"
        )

    scored = rows["kind"] != "practice"  # practice answers are never analysed: their method and image go unchecked
    main_vigilance = (rows["kind"] == "main") & (rows["method"] == VIGILANCE)
    _check_values(rows, "method", main_vigilance, "a compared method in a main trial (vigilance has kind vigilance)")
    vigilance_method = (rows["kind"] == "vigilance") & (rows["method"] != VIGILANCE)
    _check_values(rows, "method", vigilance_method, f"{VIGILANCE!r} in a vigilance trial")
    unknown_method = (rows["kind"] == "main") & ~rows["method"].isin(methods)
    _check_values(rows, "method", unknown_method, f"one of the study's methods {sorted(methods)}")
    unknown_image = scored & ~rows["image"].isin(images)
    _check_values(rows, "image", unknown_image, f"one of the study's {len(images)} test images")
    if raters is not None:
        _check_values(rows, "rater", ~rows["rater"].isin(raters), f"one of the {len(raters)} expected raters")

    if not (rows["kind"] == "main").any():
        kinds = ", ".join(sorted(set(rows["kind"])))
        raise StudyError(
            f"no answers: none of the {len(rows)} rows is a main trial (kinds: {kinds}); "
            "the raters stopped before the study itself, or the wrong table was given"
        )
    return rows


def _rater_table(rows: pd.DataFrame, max_failed_vigilance: int, expected: list[str] | None) -> pd.DataFrame:
    fooled = rows["choice"] == rows["method_side"]
    table = []
    for rater in sorted(set(rows["rater"]) | set(expected or [])):
        own = rows["rater"] == rater
        main, vigilance = own & (rows["kind"] == "main"), own & (rows["kind"] == "vigilance")
        failed = int((vigilance & fooled).sum())
        if not main.any():
            status = NO_ANSWERS
        elif failed > max_failed_vigilance:
            status = FAILED_VIGILANCE
        else:
            status = INCLUDED
        timed = rows.loc[main | vigilance, "reaction_ms"]
        table.append(
            {
                "rater": rater,
                "tasks": ",".join(str(t) for t in sorted(set(rows.loc[own, "task"]))),
                "main_trials": int(main.sum()),
                "main_fooled": int((main & fooled).sum()),
                "vigilance_trials": int(vigilance.sum()),
                "failed_vigilance": failed,
                "excluded": status != INCLUDED,
                "status": status,
                "median_reaction_ms": float(timed.median()) if len(timed) else math.nan,
            }
        )
    return _typed_raters(pd.DataFrame(table, columns=RATER_COLUMNS))


def _group_rng(seed: int, method: str, task: int) -> np.random.Generator:
    """A generator of its own per (method, task): an interval does not change when another
    method joins the study."""
    return np.random.default_rng([seed, task, zlib.crc32(method.encode())])


def _fool_rates(main: pd.DataFrame, methods: list[str], tasks: list[int], resamples: int, seed: int) -> pd.DataFrame:
    table = []
    for method in methods:
        for task in tasks:
            group = main[(main["method"] == method) & (main["task"] == task)]
            per_rater = group.groupby("rater")["fooled"].agg(["size", "sum"])
            trials, fooled = int(per_rater["size"].sum()), int(per_rater["sum"].sum())
            wilson = wilson_interval(fooled, trials)
            rng = _group_rng(seed, method, task)
            bootstrap = hierarchical_bootstrap(per_rater["size"], per_rater["sum"], resamples, rng)
            q25, median, q75 = np.percentile(group["reaction_ms"], [25, 50, 75]) if trials else [math.nan] * 3
            display = group["display_ms"].dropna()
            table.append(
                {
                    "method": method,
                    "task": task,
                    "trials": trials,
                    "raters": len(per_rater),
                    "fooled": fooled,
                    "rate": fooled / trials if trials else math.nan,
                    "wilson_low": wilson[0],
                    "wilson_high": wilson[1],
                    "bootstrap_low": bootstrap[0],
                    "bootstrap_high": bootstrap[1],
                    "bootstrap_resamples": resamples,
                    "reaction_ms_median": float(median),
                    "reaction_ms_q25": float(q25),
                    "reaction_ms_q75": float(q75),
                    "display_ms_median": float(display.median()) if len(display) else math.nan,
                }
            )
    return _typed_fool_rates(pd.DataFrame(table, columns=FOOL_RATE_COLUMNS))


def _per_image(main: pd.DataFrame) -> pd.DataFrame:
    table = main.groupby(["method", "task", "image"])["fooled"].agg(trials="size", fooled="sum").reset_index()
    table["rate"] = table["fooled"] / table["trials"]
    return _typed_per_image(table[PER_IMAGE_COLUMNS])


def analyse(
    answers: pd.DataFrame,
    methods: list[str],
    images: list[str],
    *,
    max_failed_vigilance: int = 0,
    resamples: int = 1000,
    seed: int = 0,
    raters: list[str] | None = None,
    tasks: list[int] | None = None,
) -> StudyAnalysis:
    """The study's fool rates from its answer rows. ``methods`` and ``images`` are the
    study's compared methods and test images (an answer naming another is an error);
    ``raters``, where given, the rater ids expected: those without a main answer are listed
    as such, and an answer from another rater is an error. Rater ids are compared as text.
    ``tasks``, where given, the planned tasks: each has its rows (``trials`` 0 where nothing
    of it was answered)."""
    methods, images = list(methods), list(images)
    if VIGILANCE in methods:
        raise ValueError(f"{VIGILANCE!r} is the vigilance trials' method, not a compared one: leave it out of methods")
    for name, value, least in (
        ("max_failed_vigilance", max_failed_vigilance, 0),
        ("resamples", resamples, 1),
        ("seed", seed, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name} must be a whole number >= {least}, not {value!r}")
    expected = None if raters is None else [str(r) for r in raters]
    rows = _checked(answers, methods, images, expected)
    rows["fooled"] = rows["choice"] == rows["method_side"]

    rater_table = _rater_table(rows, max_failed_vigilance, expected)
    included = set(rater_table.loc[~rater_table["excluded"], "rater"])
    main = rows[(rows["kind"] == "main") & rows["rater"].isin(included)]
    tasks = sorted(set(tasks or ()) | set(rows.loc[rows["kind"] == "main", "task"]))
    return StudyAnalysis(
        fool_rates=_fool_rates(main, methods, tasks, resamples, seed),
        per_image=_per_image(main),
        raters=rater_table,
        resamples=resamples,
        max_failed_vigilance=max_failed_vigilance,
        seed=seed,
        simulated=bool((rows["origin"] == "simulated").any()),
        raters_included=len(included),
        raters_excluded=int((rater_table["status"] == FAILED_VIGILANCE).sum()),
        raters_without_answers=int((rater_table["status"] == NO_ANSWERS).sum()),
        trials=len(main),
    )


def extreme_images(
    per_image: pd.DataFrame, method: str, k: int = 5, task: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``k`` worst images of ``method`` (lowest fool rate: its output was told apart
    most often) and its ``k`` best (highest fool rate), as in the paper's appendix; for one
    task, or pooled over both where ``task`` is None. Ties: more trials first, then name."""
    rows = per_image[per_image["method"] == method]
    if rows.empty:
        raise ValueError(f"no per-image answers for method {method!r} (methods: {sorted(set(per_image['method']))})")
    if task is not None:
        rows = rows[rows["task"] == task]
    pooled = rows.groupby("image", as_index=False)[["trials", "fooled"]].sum()
    pooled["rate"] = pooled["fooled"] / pooled["trials"]
    pooled.insert(0, "method", method)
    worst = pooled.sort_values(["rate", "trials", "image"], ascending=[True, False, True], kind="stable")
    best = pooled.sort_values(["rate", "trials", "image"], ascending=[False, False, True], kind="stable")
    return worst.head(k).reset_index(drop=True), best.head(k).reset_index(drop=True)


def _typed_fool_rates(table: pd.DataFrame) -> pd.DataFrame:
    integers = ["task", "trials", "raters", "fooled", "bootstrap_resamples"]
    floats = [c for c in FOOL_RATE_COLUMNS if c not in integers and c != "method"]
    return table.astype({"method": str, **dict.fromkeys(integers, np.int64), **dict.fromkeys(floats, np.float64)})


def _typed_per_image(table: pd.DataFrame) -> pd.DataFrame:
    return table.astype(
        {"method": str, "task": np.int64, "image": str, "trials": np.int64, "fooled": np.int64, "rate": np.float64}
    )


def _typed_raters(table: pd.DataFrame) -> pd.DataFrame:
    integers = ["main_trials", "main_fooled", "vigilance_trials", "failed_vigilance"]
    return table.astype(
        {
            "rater": str,
            "tasks": str,
            **dict.fromkeys(integers, np.int64),
            "excluded": bool,
            "status": str,
            "median_reaction_ms": np.float64,
        }
    )


def _plain(value):
    """A table value as a JSON value: numpy numbers as plain ones, NaN as null."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def summary(analysis: StudyAnalysis) -> dict:
    """The headline rates (per method and task), the counts and the settings, as JSON values."""
    return {
        "simulated": analysis.simulated,
        "note": "SIMULATED answers, not human data" if analysis.simulated else "answers given by people",
        "resamples": analysis.resamples,
        "max_failed_vigilance": analysis.max_failed_vigilance,
        "seed": analysis.seed,
        "raters_included": analysis.raters_included,
        "raters_excluded": analysis.raters_excluded,
        "raters_without_answers": analysis.raters_without_answers,
        "trials": analysis.trials,
        "headline": [
            {column: _plain(row[column]) for column in HEADLINE_COLUMNS}
            for row in analysis.fool_rates.to_dict("records")
        ],
    }


def write(analysis: StudyAnalysis, folder: Path) -> None:
    """fool_rates.csv, per_image.csv, raters.csv and summary.json in ``folder``, all written
    or none (numbers unrounded); each table's first column, ``answers``, says whether they
    were simulated or given by people."""
    label = "simulated" if analysis.simulated else "human"
    with atomic_folder(Path(folder)) as staging:
        for name, table in (
            ("fool_rates.csv", analysis.fool_rates),
            ("per_image.csv", analysis.per_image),
            ("raters.csv", analysis.raters),
        ):
            table.assign(answers=label)[["answers", *table.columns]].to_csv(staging / name, index=False)
        text = json.dumps(summary(analysis), indent=2, allow_nan=False)
        (staging / "summary.json").write_text(text + "\n", encoding="utf-8")


def _read_csv(path: Path, text_columns: list[str]) -> pd.DataFrame:
    table = pd.read_csv(
        path,
        dtype=dict.fromkeys(text_columns, str),
        keep_default_na=False,
        na_values=[""],
        engine="python",  # exact float round trip with any pandas version
    )
    return table.fillna(dict.fromkeys(text_columns, ""))  # a rater without answers has no tasks


def read(folder: Path) -> StudyAnalysis:
    """The analysis ``write`` left in ``folder``."""
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}: write the study analysis there first")
    facts = read_json(folder / "summary.json", "run the study_analyse stage again (sr3bench study-analyse)")
    return StudyAnalysis(
        fool_rates=_typed_fool_rates(_read_csv(folder / "fool_rates.csv", ["method"])[FOOL_RATE_COLUMNS]),
        per_image=_typed_per_image(_read_csv(folder / "per_image.csv", ["method", "image"])[PER_IMAGE_COLUMNS]),
        raters=_typed_raters(_read_csv(folder / "raters.csv", ["rater", "tasks", "status"])[RATER_COLUMNS]),
        resamples=facts["resamples"],
        max_failed_vigilance=facts["max_failed_vigilance"],
        seed=facts["seed"],
        simulated=facts["simulated"],
        raters_included=facts["raters_included"],
        raters_excluded=facts["raters_excluded"],
        raters_without_answers=facts["raters_without_answers"],
        trials=facts["trials"],
    )
