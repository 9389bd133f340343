"""The report's section on sampling: the tune stage's grid on the validation split, the
reference sampler, and the schedules the tuned variants chose."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from sr3bench.core.stage_files import read_json, read_table
from sr3bench.metrics.table import TUNE_COLUMNS, by_name, header, names

POINT_COLUMNS = ["sampler", "schedule", "steps"]  # printed as they are
COLUMNS = POINT_COLUMNS + names(per="image") + [column.name for column in TUNE_COLUMNS]


def load_tuning(tables: dict[str, Path]) -> dict[str, tuple[pd.DataFrame, dict]]:
    """method -> (tune table, {variant: row index of its choice}), from the tune stage's
    CSV and the choices JSON beside it."""
    loaded = {}
    for method, path in tables.items():
        again = f"run the tune stage of {method} again (sr3bench tune --method {method})"
        record = read_json(Path(path).with_suffix(".json"), again, ("choices",))
        loaded[method] = (
            read_table(path, again),
            {f"{method}@{name}": choice["row"] for name, choice in record["choices"].items()},
        )
    return loaded


def tuning_section(
    tuning: dict[str, tuple[pd.DataFrame, dict]], criterion: dict, images: int, reference_images: int, format_value
) -> str:
    if not tuning:
        return ""
    parts = [
        "<h2>Sampling: schedule search on the validation split</h2>",
        f"<p>Each point samples the first {images} validation images; "
        "the reference (SR3's ancestral sampler over the whole training schedule) "
        f"samples the first {reference_images}. "
        "A tuned variant takes, among the points within its step budget "
        f"whose consistency on those {reference_images} images "
        f"is at most {criterion['max_consistency_ratio']:g}x the reference's, "
        f"the best {html.escape(by_name(criterion['metric']).label)}. The test split is never used here.</p>",
        '<img src="tuning.png" alt="quality against network evaluations">',
    ]
    for method, (table, chosen) in tuning.items():
        marks = {}
        for variant, index in chosen.items():
            marks.setdefault(index, []).append(variant)
        head = (
            "<thead><tr>"
            + "".join(f"<th>{html.escape(header(c))}</th>" for c in COLUMNS)
            + "<th>chosen by</th></tr></thead>"
        )
        rows = {}
        for index, row in table.iterrows():
            label = "reference" if row["reference"] else ", ".join(marks.get(index, []))
            style = " style='font-weight:bold'" if index in marks or row["reference"] else ""
            cells = "".join(
                f"<td>{html.escape(str(row[c])) if c in POINT_COLUMNS else format_value(row[c], c)}</td>"
                for c in COLUMNS
            )
            rows[index] = f"<tr{style}>{cells}<td>{html.escape(label)}</td></tr>"
        chosen_rows = "".join(rows[i] for i in table.index if table.loc[i, "reference"] or i in marks)
        parts.append(
            f"<h3>{html.escape(method)}: the reference and the chosen schedules</h3>"
            f"<table>{head}<tbody>{chosen_rows}</tbody></table>"
            f"<details><summary>Every point of the grid ({len(table) - 1} points)</summary>"
            f"<table>{head}<tbody>{''.join(rows.values())}</tbody></table></details>"
        )
    return "".join(parts)
