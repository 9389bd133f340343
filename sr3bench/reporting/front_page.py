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


def collect(reports: Path) -> pd.DataFrame:
    """All presets' metrics.csv, with the preset's name as the first column."""
    tables = []
    for path in sorted(Path(reports).glob("*/metrics.csv")):
        table = pd.read_csv(path)
        table.insert(0, "preset", path.parent.name)
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["preset", "method"])


def _value(value, metric: str) -> str:
    return "&ndash;" if pd.isna(value) else format_value(metric, value)


def render(combined: pd.DataFrame, reports: Path) -> str:
    sections = []
    for preset, table in combined.groupby("preset", sort=True):
        record_file = Path(reports) / preset / "provenance.json"
        record = json.loads(record_file.read_text()) if record_file.exists() else {}
        about = html.escape(record.get("description", ""))
        made = (
            f"generated {html.escape(record['generated'])}, commit <code>{html.escape(record['git']['commit'])}</code>"
            if "git" in record
            else ""
        )
        head = "<th>method</th><th>test images</th>" + "".join(f"<th>{html.escape(header(m))}</th>" for m in HEADLINE)
        rows = "".join(
            f"<tr><td>{html.escape(str(row['method']))}</td><td>{int(row['n_images'])}</td>"
            + "".join(f"<td>{_value(row.get(m), m)}</td>" for m in HEADLINE)
            + "</tr>"
            for _, row in table.iterrows()
        )
        sections.append(
            f"<h2><a href='{html.escape(preset)}/index.html'>{html.escape(preset)}</a></h2>"
            f"<p>{about}</p><p class='cite'>{made}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
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
    combined = collect(reports)
    with atomic_path(combined_csv) as temporary:
        combined.to_csv(temporary, index=False)
    with atomic_path(page) as temporary:
        temporary.write_text(render(combined, reports))
