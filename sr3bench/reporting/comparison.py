"""The reproduced numbers beside the paper's: value, paper value and difference for each
method and metric the two share, whether each ordering of the paper holds here, and the
scale of the two runs (reads data only; the caller gives the tables)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from sr3bench.metrics.table import by_name

SCALE_FILE = "scale.csv"
SCALE_ROWS = [
    ("training_images", "training images"),
    ("training_steps", "training steps"),
    ("batch_size", "batch size"),
    ("parameters", "parameters per UNet"),
    ("inference_steps", "SR3 inference steps"),
    ("test_images", "test images"),
]


# The paper's row of its real HR images, and the metrics measured against a reference set.
REFERENCE_ROW = "reference (real HR)"
REFERENCE_SET_METRICS = ("fid", "kid")


def other_reference_set(paper_table: dict) -> dict[str, float]:
    """metric -> the paper's value for its real HR images, for each reference-set metric
    where that is above 0: the paper's reference statistics are then of another set than its
    test images (Table 2: FID 1.9), while here they are the preset's HR test images, which
    score 0, so the values differ by construction and only orderings compare."""
    reference = paper_table["rows"].get(REFERENCE_ROW, {})
    return {m: reference[m] for m in REFERENCE_SET_METRICS if (reference.get(m) or 0) > 0}


def side_by_side(paper_table: dict, summary: pd.DataFrame) -> list[dict]:
    """[{method, metric, here, paper, difference}] for each method in both tables and each
    metric of the paper's table (difference = here - paper; none for a metric measured
    against another reference set than the paper's, ``other_reference_set``)."""
    here = summary.set_index("method")
    apart = other_reference_set(paper_table)
    rows = []
    for method, values in paper_table["rows"].items():
        if method not in here.index:
            continue
        for metric in paper_table["columns"]:
            paper, ours = values.get(metric), here.loc[method].get(metric)
            ours = None if ours is None or pd.isna(ours) else float(ours)
            difference = None if paper is None or ours is None or metric in apart else ours - paper
            rows.append({"method": method, "metric": metric, "here": ours, "paper": paper, "difference": difference})
    return rows


def orderings(paper_table: dict, summary: pd.DataFrame) -> list[dict]:
    """For each metric of the paper's table and each pair of methods both tables hold:
    which is better in the paper, and whether it is here too."""
    here = summary.set_index("method")
    shared = [m for m in paper_table["rows"] if m in here.index]
    checks = []
    for metric in paper_table["columns"]:
        for first, second in itertools.combinations(shared, 2):
            paper = paper_table["rows"][first].get(metric), paper_table["rows"][second].get(metric)
            ours = here.loc[first].get(metric), here.loc[second].get(metric)
            if None in paper or any(v is None or pd.isna(v) for v in ours) or paper[0] == paper[1]:
                continue
            lower = not by_name(metric).higher_is_better
            better, worse = (first, second) if (paper[0] < paper[1]) == lower else (second, first)
            ours_better = (
                here.loc[better][metric] < here.loc[worse][metric]
                if lower
                else here.loc[better][metric] > here.loc[worse][metric]
            )
            checks.append({"metric": metric, "better": better, "worse": worse, "holds": bool(ours_better)})
    return checks


def load_scale(folder: Path, experiment: str) -> dict | None:
    """The paper's scale of one experiment (a row of reports/paper/scale.csv), or None."""
    path = Path(folder) / SCALE_FILE
    if not experiment or not path.exists():
        return None
    table = pd.read_csv(path, dtype=str).set_index("experiment")
    if experiment not in table.index:
        raise ValueError(
            f"{path} has no row for experiment {experiment!r} (presets.<preset>.paper.experiment); "
            f"rows: {', '.join(table.index)}"
        )
    return table.loc[experiment].to_dict()
