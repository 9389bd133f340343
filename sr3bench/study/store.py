"""The answers in SQLite, one row per trial (primary key rater, trial), in WAL mode.

Each answer is committed in its own transaction with ``synchronous=FULL``, so an answer
acknowledged to the page survives a killed server, and checkpointed at once
(``wal_autocheckpoint=1``), so the main file reflects each answer and its modification time
changes (workflow engines track it). Storing is idempotent: the same (rater, trial) again is
not stored twice. Simulated answers never share a database with human ones.

Besides ``answers``, the database holds ``meta`` (key, value): ``plan``, the fingerprint of
the plan the answers were given under (``bind_plan``), and ``answers``, whether they are
simulated or human; and ``handouts`` (rater, handed_at): the raters whose link the server's
``/start`` gave out, so that a restarted server does not give one to a second person.
"""

from __future__ import annotations

import math
import numbers
import os
import shutil
import sqlite3
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
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
META = "meta"
HANDOUTS = "handouts"
PLAN_KEY = "plan"  # meta: the sha256 of the plan file the answers were given under
KIND_KEY = "answers"  # meta: 'simulated' or 'human', set by the first answer stored
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
_META_SCHEMA = f"CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_HANDOUTS_SCHEMA = f"CREATE TABLE IF NOT EXISTS {HANDOUTS} (rater TEXT PRIMARY KEY, handed_at TEXT NOT NULL)"


class StoreError(ValueError):
    pass


def database_files(path: Path) -> tuple[Path, Path, Path]:
    """The database ``path``, its write-ahead log and its shared-memory index."""
    path = Path(path)
    return path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def open_store(path: Path) -> sqlite3.Connection:
    """A connection to the answers database ``path`` (created with its tables if absent), in
    autocommit mode: each ``record`` is its own transaction. Usable from several threads
    when the caller serialises its use (the server holds a lock). A file that is not an
    answers database, or one locked for longer than 30 s, raises StoreError naming it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as error:
        raise StoreError(f"{path}: cannot open the answers database ({error})") from error
    try:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(
                f"{path}: SQLite would not switch to WAL mode (it reports {mode!r}); is it on a network file system?"
            )
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA wal_autocheckpoint=1")
        for schema in (_SCHEMA, _META_SCHEMA, _HANDOUTS_SCHEMA):
            connection.execute(schema)
    except sqlite3.Error as error:
        connection.close()
        raise StoreError(f"{path}: not a usable answers database ({error})") from error
    except BaseException:
        connection.close()
        raise
    return connection


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (taken at once, so that a check and the inserts after it see
    the same table): committed on success, rolled back on any error (the error raised is
    always the original one, also when the COMMIT itself failed)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            try:
                connection.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the original error below says what went wrong
        raise


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
    stored already. The first answer of a database records in ``meta`` whether its answers
    are simulated or human, so checking the next ones costs one look-up, not a scan."""
    values = _values(row)
    origin = values[-1]
    if check_origin(connection, origin) is None:
        connection.execute(f"INSERT OR REPLACE INTO {META} (key, value) VALUES (?, ?)", (KIND_KEY, _kind(origin)))
    cursor = connection.execute(
        f"INSERT OR IGNORE INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", values
    )
    return cursor.rowcount == 1


def stored_answer(connection: sqlite3.Connection, rater: str, trial: int) -> dict | None:
    found = connection.execute(
        f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE rater = ? AND trial = ?", (rater, trial)
    ).fetchone()
    return None if found is None else dict(zip(COLUMNS, found))


def check_origin(connection: sqlite3.Connection, origin: str) -> str | None:
    """Refuse to mix simulated answers with human (served or imported) ones. The kind the
    database holds ('simulated' | 'human'), None while it holds no answer; one look-up (the
    ``meta`` record, or for a database without one, its first answer: it never mixes)."""
    found = connection.execute(f"SELECT value FROM {META} WHERE key = ?", (KIND_KEY,)).fetchone()
    if found is None:
        first = connection.execute(f"SELECT origin FROM {TABLE} LIMIT 1").fetchone()
        found = None if first is None else (_kind(first[0]),)
    if found is None:
        return None
    if found[0] != _kind(origin):
        held = "simulated" if found[0] == "simulated" else "human (served or imported)"
        raise StoreError(
            f"this answers database holds {held} answers, which are never mixed with {origin} ones "
            "(simulated answers are never shown as human data): use another answers file"
        )
    return found[0]


def _kind(origin: str) -> str:
    return "simulated" if origin == "simulated" else "human"


def bind_plan(connection: sqlite3.Connection, fingerprint: str) -> None:
    """Tie the database to the plan with ``fingerprint`` (``plan.plan_fingerprint``): stored
    on first use (or while the database holds no answer); a StoreError when it holds
    answers given under another plan (or, made before plans were recorded, under an unknown
    one). Inside the caller's transaction when there is one, else in its own. Writes
    nothing when the database is bound to ``fingerprint`` already."""
    if not connection.in_transaction:
        with transaction(connection):
            bind_plan(connection, fingerprint)
        return
    found = connection.execute(f"SELECT value FROM {META} WHERE key = ?", (PLAN_KEY,)).fetchone()
    if found is not None and found[0] == fingerprint:
        return
    count = connection.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0]
    if count:
        held = found[0][:12] if found else "not recorded"
        raise StoreError(
            f"{_database_path(connection)} holds {count} answers given under another build of the study "
            f"(plan {held} ≠ {fingerprint[:12]}): move it away to start a new study, "
            "or rebuild the study from the same inputs"
        )
    connection.execute(f"INSERT OR REPLACE INTO {META} (key, value) VALUES (?, ?)", (PLAN_KEY, fingerprint))


def _database_path(connection: sqlite3.Connection) -> str:
    return connection.execute("PRAGMA database_list").fetchone()[2] or "the answers database"


def stored_fingerprint(path: Path) -> str | None:
    """The plan fingerprint the database ``path`` is bound to; None when there is no such
    file or it is not bound yet. Read from a copy: the database is never modified."""
    path = Path(path)
    if not path.is_file():
        return None
    found = _read_copy(path, f"SELECT value FROM {META} WHERE key = '{PLAN_KEY}'", missing_table_ok=True)
    return found[0][0] if found else None


def hand_out(connection: sqlite3.Connection, raters: Iterable[str]) -> str | None:
    """The first of ``raters`` (in order) who has no answer and was not handed out yet,
    recorded as handed out in the same transaction; None when there is none left."""
    with transaction(connection):
        for rater in raters:
            if not _handed_out(connection, rater) and next_trial(connection, rater) == 0:
                _mark_handed_out(connection, rater)
                return rater
    return None


def _mark_handed_out(connection: sqlite3.Connection, rater: str) -> None:
    """Record that the rater's link was given out (nothing when it was already)."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    connection.execute(f"INSERT OR IGNORE INTO {HANDOUTS} (rater, handed_at) VALUES (?, ?)", (rater, stamp))


def handed_out(connection: sqlite3.Connection) -> set[str]:
    return {row[0] for row in connection.execute(f"SELECT rater FROM {HANDOUTS}")}


def _handed_out(connection: sqlite3.Connection, rater: str) -> bool:
    return connection.execute(f"SELECT 1 FROM {HANDOUTS} WHERE rater = ?", (rater,)).fetchone() is not None


def other_plan(path: Path, fingerprint: str) -> str | None:
    """The plan (its fingerprint's first 12 digits, or "not recorded") under which the
    database ``path`` holds answers, when that is not the plan ``fingerprint``; None when
    there is no such file, no answer, or the answers are this plan's: the rule of
    ``bind_plan``, read from a copy, so the database is never modified."""
    path = Path(path)
    if not path.is_file():
        return None
    query = f"SELECT (SELECT COUNT(*) FROM {TABLE}), (SELECT value FROM {META} WHERE key = '{PLAN_KEY}')"
    found = _read_copy(path, query, missing_table_ok=True)
    if not found or not found[0][0] or found[0][1] == fingerprint:
        return None
    return found[0][1][:12] if found[0][1] else "not recorded"


def answered_counts(connection: sqlite3.Connection) -> dict[str, int]:
    """{rater: answers stored} for each rater with at least one answer."""
    return dict(connection.execute(f"SELECT rater, COUNT(*) FROM {TABLE} GROUP BY rater").fetchall())


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
    rows = _read_copy(path, f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY rater, trial")
    answers = pd.DataFrame(rows, columns=list(COLUMNS))
    return answers.astype({"trial": "int64", "task": "int64", "reaction_ms": "float64", "display_ms": "float64"})


def _read_copy(path: Path, query: str, missing_table_ok: bool = False) -> list[tuple]:
    """The rows of ``query`` run on a consistent copy of the database and its log."""
    with tempfile.TemporaryDirectory(prefix="sr3bench-answers-") as folder:
        copy = _consistent_copy(path, Path(folder))
        try:
            connection = sqlite3.connect(copy)
        except sqlite3.Error as error:
            raise StoreError(f"{path}: cannot open the answers database ({error})") from error
        try:
            return connection.execute(query).fetchall()
        except sqlite3.DatabaseError as error:
            if missing_table_ok and "no such table" in str(error):
                return []
            raise StoreError(f"{path}: not an answers database ({error})") from error
        finally:
            connection.close()


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
    _, wal, _ = database_files(path)
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
