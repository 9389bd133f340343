"""The front page, ``reports/index.html``: every preset that has a report, with its
headline numbers and a link to its page; and ``reports/all_presets.csv``, every preset's
``metrics.csv`` in one table (``pandas.read_csv`` loads it; a ``preset`` column first)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from sr3bench.core.atomic import atomic_path
from sr3bench.metrics.table import format_value, header
from sr3bench.reporting.tables import HEADLINE


class FrontPageError(ValueError):
    """A preset's report files cannot be read; the message names the file and the fix."""


def collect(reports: Path) -> pd.DataFrame:
    """All presets' metrics.csv, with the preset's name as the first column."""
    tables = []
    for path in sorted(Path(reports).glob("*/metrics.csv")):
        try:
            table = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise FrontPageError(f"{path} cannot be read as a table ({error}); {_fix(path)}") from error
        missing = [column for column in ("method", "n_images") if column not in table.columns]
        if missing:
            raise FrontPageError(f"{path} has no column {', '.join(missing)}; {_fix(path)}")
        table.insert(0, "preset", path.parent.name)
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["preset", "method"])


def _fix(path: Path) -> str:
    preset = path.parent.name
    return (
        f"run its report again (sr3bench report --preset {preset}), or move {path.parent} away if {preset} is not "
        "a preset any more"
    )


def _record(record_file: Path) -> dict:
    if not record_file.exists():
        return {}
    try:
        return json.loads(record_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FrontPageError(f"{record_file} is not valid JSON ({error}); {_fix(record_file)}") from error


def _value(value, metric: str) -> str:
    return "&ndash;" if pd.isna(value) else format_value(metric, value)


def pooled_note(groups: dict[str, int], preset: str) -> str:
    """Where a preset's test split is several sets (Set5 and Set14), that its means pool
    them and where the per-set numbers are ("" otherwise)."""
    if len(groups) < 2:
        return ""
    counts = ", ".join(f"{html.escape(str(group))} {count}" for group, count in groups.items())
    return (
        f"<p class='cite'>These means pool {len(groups)} test sets ({counts}), each image weighing the same, "
        "which no published table does: the per-set numbers are in the report's <i>Per test group</i> and in "
        f"<a href='{html.escape(preset)}/metrics_by_group.csv'>metrics_by_group.csv</a>.</p>"
    )


def render(combined: pd.DataFrame, reports: Path) -> str:
    sections = []
    for preset, table in combined.groupby("preset", sort=True):
        record_file = Path(reports) / preset / "provenance.json"
        record = _record(record_file)
        about = html.escape(record.get("description", ""))
        made = (
            f"generated {html.escape(record['generated'])}, commit <code>{html.escape(record['git']['commit'])}</code>"
            + (" <b>with uncommitted changes</b> to tracked files" if record["git"].get("dirty") else "")
            if "git" in record
            else ""
        )
        head = "<th>method</th><th>test images</th>" + "".join(f"<th>{html.escape(header(m))}</th>" for m in HEADLINE)
        titles = record.get("titles", {})
        rows = "".join(
            f"<tr><td>{html.escape(titles.get(row['method'], str(row['method'])))}</td>"
            f"<td>{'&ndash;' if pd.isna(row['n_images']) else int(row['n_images'])}</td>"
            + "".join(f"<td>{_value(row.get(m), m)}</td>" for m in HEADLINE)
            + "</tr>"
            for _, row in table.iterrows()
        )
        sections.append(
            f"<h2><a href='{html.escape(preset)}/index.html'>{html.escape(preset)}</a></h2>"
            f"<p>{about}</p><p class='cite'>{made}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            + pooled_note(record.get("pooled_test_sets", {}), preset)
        )
    body = "".join(sections) or "<p>No preset has a report yet: run <code>snakemake --cores 8</code>.</p>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>SR3 Bench: all presets</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}th,td{{border:1px solid #ccc;padding:.3em .7em;text-align:right}}
th{{background:#f2f2f2}}td:first-child,th:first-child{{text-align:left}}.cite{{color:#666;font-size:.85em}}</style></head><body>
<h1>SR3 Bench: every preset run here</h1>
<p>Headline numbers of each preset's report \
(means over its test images; the report has the intervals, the paper's values and the images).
All presets in one table: <a href="all_presets.csv">all_presets.csv</a>.</p>
{body}
</body></html>"""


def build_front_page(reports: Path, page: Path, combined_csv: Path) -> None:
    """Both files, or neither: everything is read and rendered before either is written."""
    combined = collect(reports)
    text = render(combined, reports)
    with atomic_path(combined_csv) as temporary:
        combined.to_csv(temporary, index=False)
    with atomic_path(page) as temporary:
        temporary.write_text(text)
