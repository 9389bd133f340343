"""The answers in SQLite, one row per trial (primary key rater, trial), in WAL mode.

Each answer is committed in its own transaction with ``synchronous=FULL``, so an answer
acknowledged to the page survives a killed server, and checkpointed at once
(``wal_autocheckpoint=1``), so the main file reflects each answer and its modification time
changes (workflow engines track it). Storing is idempotent: the same (rater, trial) again is
not stored twice. Simulated answers never share a database with human ones.
"""

from __future__ import annotations

import math
import numbers
import os
import shutil
import sqlite3
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping

COLUMNS = (
    "rater",
    "session",
    "trial",
    "kind",
    "task",
    "image",
    "method",
    "method_side",
    "choice",
    "reaction_ms",
    "display_ms",
    "timestamp",
    "user_agent",
    "origin",
)
ORIGINS = ("served", "imported", "simulated")
TABLE = "answers"
_SCHEMA = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    rater TEXT NOT NULL,
    session TEXT NOT NULL,
    trial INTEGER NOT NULL CHECK (trial >= 0),
    kind TEXT NOT NULL CHECK (kind IN ('practice', 'main', 'vigilance')),
    task INTEGER NOT NULL,
    image TEXT NOT NULL,
    method TEXT NOT NULL,
    method_side TEXT NOT NULL CHECK (method_side IN ('left', 'right')),
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right')),
    reaction_ms REAL NOT NULL,
    display_ms REAL,
    timestamp TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('served', 'imported', 'simulated')),
    PRIMARY KEY (rater, trial)
)"""


class StoreError(ValueError):
    pass


def open_store(path: Path) -> sqlite3.Connection:
    """A connection to the answers database ``path`` (created with its table if absent), in
    autocommit mode: each ``record`` is its own transaction. Usable from several threads
    when the caller serialises its use (the server holds a lock)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(
                f"{path}: SQLite would not switch to WAL mode (it reports {mode!r}); is it on a network file system?"
            )
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA wal_autocheckpoint=1")
        connection.execute(_SCHEMA)
    except Exception:
        connection.close()
        raise
    return connection


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (taken at once, so that a check and the inserts after it see
    the same table): committed on success, rolled back on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def record(connection: sqlite3.Connection, row: Mapping) -> bool:
    """Store one answer in its own transaction; False (and nothing stored) when its
    (rater, trial) is stored already."""
    with transaction(connection):
        return insert(connection, row)


def record_many(connection: sqlite3.Connection, rows: Iterable[Mapping]) -> int:
    """Store the answers in one transaction (all or none); those whose (rater, trial) is
    stored already are skipped. The number stored."""
    with transaction(connection):
        return sum(insert(connection, row) for row in rows)


def insert(connection: sqlite3.Connection, row: Mapping) -> bool:
    """Insert one answer inside the caller's transaction; False when its (rater, trial) is
    stored already."""
    values = _values(row)
    check_origin(connection, values[-1])
    cursor = connection.execute(
        f"INSERT OR IGNORE INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", values
    )
    return cursor.rowcount == 1


def stored_answer(connection: sqlite3.Connection, rater: str, trial: int) -> dict | None:
    found = connection.execute(
        f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE rater = ? AND trial = ?", (rater, trial)
    ).fetchone()
    return None if found is None else dict(zip(COLUMNS, found))


def check_origin(connection: sqlite3.Connection, origin: str) -> None:
    """Refuse to mix simulated answers with human (served or imported) ones."""
    simulated = origin == "simulated"
    other = connection.execute(
        f"SELECT origin FROM {TABLE} WHERE (origin = 'simulated') != ? LIMIT 1", (simulated,)
    ).fetchone()
    if other is not None:
        raise StoreError(
            f"this answers database holds {other[0]} answers, which are never mixed with {origin} ones "
            "(simulated answers are never shown as human data): use another answers file"
        )


def next_trial(connection: sqlite3.Connection, rater: str) -> int:
    """The rater's next trial: one past the last answered (answers come in plan order)."""
    return connection.execute(f"SELECT COALESCE(MAX(trial) + 1, 0) FROM {TABLE} WHERE rater = ?", (rater,)).fetchone()[
        0
    ]


def read_answers(path: Path):
    """All answers as a pandas DataFrame with ``COLUMNS``, in (rater, trial) order. The
    database is never modified (not even checkpointed): it and its write-ahead log are copied
    into a temporary folder and read there, so answers only in the log (after a killed
    server) are included."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no answers database (collect answers with sr3bench study-serve or study-import)")
    with tempfile.TemporaryDirectory(prefix="sr3bench-answers-") as folder:
        copy = _consistent_copy(path, Path(folder))
        connection = sqlite3.connect(copy)
        try:
            rows = connection.execute(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY rater, trial").fetchall()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{path}: not an answers database ({error})") from error
        finally:
            connection.close()
    answers = pd.DataFrame(rows, columns=list(COLUMNS))
    return answers.astype({"trial": "int64", "task": "int64", "reaction_ms": "float64", "display_ms": "float64"})


def checkpoint(path: Path) -> None:
    """Move everything in the write-ahead log into the main file and empty the log."""
    connection = open_store(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def _values(row: Mapping) -> tuple:
    """The row's values in ``COLUMNS`` order, as SQLite types (numpy numbers included)."""
    missing = [column for column in COLUMNS if column not in row]
    if missing:
        raise StoreError(f"an answer lacks {', '.join(missing)}; an answer has the columns {', '.join(COLUMNS)}")
    if row["origin"] not in ORIGINS:
        raise StoreError(f"origin is {row['origin']!r}; expected {' | '.join(ORIGINS)}")
    converted = {column: row[column] for column in COLUMNS}
    for column in ("trial", "task"):
        value = row[column]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise StoreError(f"{column} is {value!r}: a whole number")
        converted[column] = int(value)
    for column in ("reaction_ms", "display_ms"):
        value = row[column]
        if column == "display_ms" and (value is None or (isinstance(value, numbers.Real) and math.isnan(value))):
            converted[column] = None  # not measured
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
            raise StoreError(f"{column} is {value!r}: a number of milliseconds >= 0")
        converted[column] = float(value)
    return tuple(converted.values())


def _consistent_copy(path: Path, folder: Path, attempts: int = 50) -> Path:
    """Copy the database and its log into ``folder``, again if either changed meanwhile."""
    wal = path.with_name(path.name + "-wal")
    copy = folder / path.name
    for _ in range(attempts):
        before = _signature(path), _signature(wal)
        shutil.copyfile(path, copy)
        if wal.exists():
            shutil.copyfile(wal, folder / wal.name)
        else:
            (folder / wal.name).unlink(missing_ok=True)
        if (_signature(path), _signature(wal)) == before:
            return copy
    raise StoreError(f"{path} kept changing while it was copied; read it again when fewer answers arrive")


def _signature(path: Path) -> tuple | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_size, status.st_mtime_ns
