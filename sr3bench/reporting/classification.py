"""The report's Table 3 section: a classifier's top-1/top-5 error on each method's
super-resolved classify set and on the original images (the classify stages' result
files), beside the paper's Table 3 (``reports/paper/sr3_table3_classification.csv``),
each of the paper's orderings marked as holding here or not, and the chain the errors
were measured under. Reads files only."""

from __future__ import annotations

import html
import itertools
from pathlib import Path

import pandas as pd

from sr3bench.core.stage_files import read_json

PAPER_FILE = "sr3_table3_classification.csv"  # in reports/paper/
BASELINE = "baseline"  # the row of the original images, here and in the paper's table
COLUMNS = (("top1_error", "top-1 error"), ("top5_error", "top-5 error"))


def read_results(files: dict[str, Path]) -> dict[str, dict]:
    """{row: result} of the classify stages' JSON files (row: ``baseline`` or a method)."""
    return {row: read_json(path, _rerun(row)) for row, path in files.items()}


def _rerun(row: str) -> str:
    """The command that writes the classify result of ``row``, for a message about its file."""
    command = "classify-baseline --preset PRESET" if row == BASELINE else f"classify --preset PRESET --method {row}"
    return f"run the classify stage again (sr3bench {command})"


def paper_rows(paper_tables: Path) -> tuple[dict[str, dict], str]:
    """({row: {top1_error, top5_error}}, citation) of the paper's Table 3; ({}, "") without it."""
    path = Path(paper_tables) / PAPER_FILE
    if not path.is_file():
        return {}, ""
    frame = pd.read_csv(path)
    rows = {row["method"]: {column: float(row[column]) for column, _ in COLUMNS} for _, row in frame.iterrows()}
    return rows, "; ".join(dict.fromkeys(frame["citation"]))


def orderings(here: dict[str, dict], paper: dict[str, dict]) -> list[dict]:
    """For each error and each pair of rows both tables hold: the one with the lower error
    in the paper, and whether it is lower here too."""
    shared = [row for row in paper if row in here and here[row].get("top1_error") is not None]
    checks = []
    for column, _ in COLUMNS:
        for first, second in itertools.combinations(shared, 2):
            if paper[first][column] == paper[second][column]:
                continue
            better, worse = (first, second) if paper[first][column] < paper[second][column] else (second, first)
            holds = here[better][column] < here[worse][column]
            checks.append({"column": column, "better": better, "worse": worse, "holds": bool(holds)})
    return checks


def above_baseline(here: dict[str, dict]) -> dict[str, list[str]] | None:
    """{column: methods whose error here is not above the baseline's} (the paper: every
    method's is); None without a baseline or methods to compare."""
    if BASELINE not in here or here[BASELINE].get("top1_error") is None:
        return None
    methods = [row for row in here if row != BASELINE and here[row].get("top1_error") is not None]
    if not methods:
        return None
    return {column: [m for m in methods if not here[m][column] > here[BASELINE][column]] for column, _ in COLUMNS}


def _number(value) -> str:
    return "&ndash;" if value is None else f"{value:.3f}"


PAPER_TITLES = {"sr3": "SR3", "regression": "Regression"}  # the paper's rows named by this project's methods


def _name(row: str, titles: dict) -> str:
    return "Baseline (original images)" if row == BASELINE else titles.get(row) or PAPER_TITLES.get(row, row)


def _protocol(results: dict[str, dict]) -> str:
    """The chain (of a method's job, which has every step) and the classifier, weights and labels."""
    recorded = [r["protocol"] for r in results.values() if r.get("protocol")]
    if not recorded:
        return ""
    record = max(recorded, key=lambda protocol: len(protocol["chain"]))
    steps = "".join(
        f"<li><b>{html.escape(step)}</b>: {html.escape(text)}</li>" for step, text in record["chain"].items()
    )
    labels = record["labels"]
    devkit = ", ".join(f"{html.escape(name)} SHA-256 {digest[:16]}..." for name, digest in labels["sha256"].items())
    return (
        f"<p>The chain (the baseline row classifies the <b>original</b> images):</p><ul>{steps}"
        f"<li><b>classifier</b>: {html.escape(record['classifier'])}; weights {html.escape(record['weights_file'])} "
        f"(SHA-256 {html.escape(record['sha256'][:16])}..., {html.escape(record['source'])}); "
        f"input {html.escape(record['normalisation'])}</li>"
        f"<li><b>labels</b>: {html.escape(labels['source'])}; {labels['classes']} classes; {devkit}</li></ul>"
    )


TABLE_COLUMNS = [
    "row",
    "title",
    "images",
    "top1_error",
    "top5_error",
    "paper_top1_error",
    "paper_top5_error",
    "classifier",
    "weights_sha256",
    "unavailable",
]


def classification_table(files: dict[str, Path], paper_tables: Path, titles: dict) -> pd.DataFrame:
    """Table 3 as the report's classification.csv: a row per classify result (the baseline
    first), the paper's errors beside it, the classifier and its weights' SHA-256; the
    paper's other rows after them (errors here empty). No rows without classify results."""
    here = read_results(files) if files else {}
    paper, _ = paper_rows(paper_tables) if files else ({}, "")
    order = [BASELINE, *[row for row in here if row != BASELINE]] if BASELINE in here else list(here)
    rows = []
    for row in order + [row for row in paper if row not in here]:
        result, protocol = here.get(row, {}), here.get(row, {}).get("protocol") or {}
        rows.append(
            {
                "row": row,
                "title": _name(row, titles),
                "images": result.get("images"),
                **{column: result.get(column) for column, _ in COLUMNS},
                **{f"paper_{column}": paper.get(row, {}).get(column) for column, _ in COLUMNS},
                "classifier": protocol.get("classifier"),
                "weights_sha256": protocol.get("sha256"),
                "unavailable": result.get("unavailable"),
            }
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def classification_section(files: dict[str, Path], paper_tables: Path, titles: dict) -> str:
    """The section's HTML; empty when the preset has no classify results."""
    if not files:
        return ""
    here = read_results(files)
    paper, citation = paper_rows(paper_tables)
    order = [BASELINE, *[row for row in here if row != BASELINE]] if BASELINE in here else list(here)
    body = "".join(
        f"<tr><td>{html.escape(_name(row, titles))}</td>"
        + "".join(
            f"<td>{_number(here[row].get(column))}</td><td>{_number(paper.get(row, {}).get(column))}</td>"
            for column, _ in COLUMNS
        )
        + f"<td>{here[row]['images']}</td></tr>"
        for row in order
        if row in here
    )
    others = "".join(
        f"<tr><td>{html.escape(_name(row, titles))} (paper only)</td>"
        + "".join(f"<td>&ndash;</td><td>{_number(values[column])}</td>" for column, _ in COLUMNS)
        + "<td></td></tr>"
        for row, values in paper.items()
        if row not in here
    )
    head = "".join(f"<th>{label} here ↓</th><th>{label}, paper</th>" for _, label in COLUMNS)
    unavailable = {row: r["unavailable"] for row, r in here.items() if r.get("unavailable")}
    missing = "".join(
        f"<li>{html.escape(_name(row, titles))}: {html.escape(reason)}</li>" for row, reason in unavailable.items()
    )
    labels = dict(COLUMNS)
    checks = "".join(
        f"<li>{labels[c['column']]}: {html.escape(_name(c['better'], titles))} below "
        f"{html.escape(_name(c['worse'], titles))} in the paper; here: "
        f"<b>{'holds' if c['holds'] else 'does not hold'}</b></li>"
        for c in orderings(here, paper)
    )
    above = above_baseline(here)
    if above is not None:
        for column, label in COLUMNS:
            below = ", ".join(_name(m, titles) for m in above[column])
            checks += (
                f"<li>{label}: every method above the baseline (original images), as in the paper; here: "
                f"<b>{'holds' if not above[column] else 'does not hold (' + html.escape(below) + ')'}</b></li>"
            )
    return (
        "<h2>Classification of the super-resolved images (the paper's Table 3)</h2>"
        "<p>Top-1 and top-5 error of an ImageNet classifier on each method's 4x super-resolved centre crops of the "
        "first validation images, and on the original images (the baseline); lower is better.</p>"
        + (
            f"<p class='note'>No errors measured: the classifier's weights are unavailable.</p><ul>{missing}</ul>"
            if missing
            else ""
        )
        + f"<table><thead><tr><th>method</th>{head}<th>images</th></tr></thead><tbody>{body}{others}</tbody></table>"
        + (f"<p class='cite'>Paper: {html.escape(citation)}</p>" if citation else "")
        + (f"<p>Orderings of the paper, checked here:</p><ul>{checks}</ul>" if checks else "")
        + _protocol(here)
    )
