"""Reading a file that an earlier stage wrote: when it is missing, damaged or lacks what it
should hold, the error names the file and the stage to run again, instead of a bare
``JSONDecodeError``, ``KeyError`` or ``EmptyDataError``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


class StageFileError(ValueError):
    """A stage's output cannot be read; the message names the file and the fix."""


def read_json(path: Path, remedy: str, keys: tuple[str, ...] = ()) -> dict:
    """The JSON object in ``path``, with ``keys`` present; ``remedy`` says which stage makes it
    ("run the prepare stage again (sr3bench prepare --preset demo)")."""
    path = Path(path)
    if not path.is_file():
        raise StageFileError(f"{path} not found: {remedy}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StageFileError(f"{path} is damaged (not valid JSON: {error}): {remedy}") from error
    missing = [key for key in keys if not isinstance(data, dict) or key not in data]
    if not isinstance(data, dict) or missing:
        held = f"no {', '.join(missing)}" if isinstance(data, dict) else f"a {type(data).__name__}, not an object"
        raise StageFileError(f"{path} holds {held}: {remedy}")
    return data


def read_table(path: Path, remedy: str) -> pd.DataFrame:
    """The CSV table in ``path`` (at least its header), or a StageFileError naming ``remedy``."""
    path = Path(path)
    if not path.is_file():
        raise StageFileError(f"{path} not found: {remedy}")
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise StageFileError(f"{path} is damaged ({error}): {remedy}") from error
