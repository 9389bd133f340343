"""The published tables the report puts beside the reproduced numbers. They are data:
``reports/paper/<table>.csv``, one row per method, with a ``title`` and a ``citation``
column (values transcribed from ../shared/data/README.md; check them against the paper
before relying on a digit)."""

from __future__ import annotations

import csv
from pathlib import Path

DESCRIPTIVE_COLUMNS = ("table", "title", "method", "citation")
# Not metric tables: the runs' scale (sr3bench/reporting/comparison.py), the human
# study's fool rates (sr3bench/reporting/study_section.py) and Table 3's classification
# errors (sr3bench/reporting/classification.py), each shown by its own section.
OTHER_FILES = ("scale.csv", "fool_rates.csv", "sr3_table3_classification.csv")


def table_names(folder: Path) -> list[str]:
    """The file stems of the metric tables in ``folder`` (what ``paper.table`` names)."""
    return sorted(path.stem for path in Path(folder).glob("*.csv") if path.name not in OTHER_FILES)


def experiments(folder: Path) -> list[str]:
    """The rows of ``scale.csv`` (what ``paper.experiment`` names)."""
    path = Path(folder) / "scale.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [row["experiment"] for row in csv.DictReader(handle)]


def load_tables(folder: Path) -> list[dict]:
    """[{"title", "citation", "columns", "rows": {method: {column: value}}}] in file-name order."""
    import pandas as pd  # here: the config's checks read OTHER_FILES without pandas

    tables = []
    for path in sorted(Path(folder).glob("*.csv")):
        if path.name in OTHER_FILES:
            continue
        frame = pd.read_csv(path)
        missing = [c for c in ("title", "method", "citation") if c not in frame.columns]
        if missing:
            raise ValueError(f"paper table {path} lacks the column(s) {', '.join(missing)}")
        columns = [c for c in frame.columns if c not in DESCRIPTIVE_COLUMNS]
        rows = {
            row["method"]: {c: (None if pd.isna(row[c]) else float(row[c])) for c in columns}
            for _, row in frame.iterrows()
        }
        tables.append(
            {
                "table": path.stem,
                "title": frame["title"].iloc[0],
                "citation": "; ".join(dict.fromkeys(frame["citation"])),
                "columns": columns,
                "rows": rows,
            }
        )
    return tables
