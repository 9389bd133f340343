"""A page's answers mapped back through the study's full plan: each answer the server is
given, and the CSV of the static page, which is checked in full and then loaded all or
nothing.

The page knows only what ``plan.rater_page`` gives it: a trial's index and its image
files. So an answer (``CSV_COLUMNS``) names the rater, the trial, the two files shown
(``left``, ``right``), the choice and its measurements; ``PlannedTrials.to_row`` checks
the files against the full plan (other files: the page was built for another plan) and
fills in the trial's kind, task, image, method and method_side, giving the stored row
(``store.COLUMNS``). The server and the importer both use it, so the rules live here.

The CSV has exactly the header ``CSV_COLUMNS``, in any order. An answer stored already
with the same values is skipped (a file imported twice); one stored with other values is
an error. The database is tied to the plan (``store.bind_plan``) in the same transaction.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Mapping

from sr3bench.study.plan import SIDES, plan_fingerprint, read_plan
from sr3bench.study.store import (
    COLUMNS,
    ORIGINS,
    StoreError,
    bind_plan,
    check_origin,
    insert,
    open_store,
    stored_answer,
    transaction,
)

log = logging.getLogger(__name__)

# What the page sends (POST /api/answer) and what the static page's CSV holds.
CSV_COLUMNS = (
    "rater",
    "session",
    "trial",
    "left",
    "right",
    "choice",
    "reaction_ms",
    "display_ms",
    "timestamp",
    "user_agent",
)
PLAN_FIELDS = ("kind", "task", "image", "method", "method_side")  # filled in from the full plan
TEXT_FIELDS = ("rater", "session", "left", "right", "choice", "timestamp", "user_agent")
STORED_FIELDS = tuple(column for column in COLUMNS if column != "origin")  # compared on a second import
SHOWN_PROBLEMS = 20


class AnswerError(ValueError):
    """One answer disagrees with the plan or is malformed (the message says how)."""


class OtherPlanError(AnswerError):
    """The answer's image files are not those of the plan's trial: the page was built for
    another plan (another build of the study)."""


class AnswersImportError(ValueError):
    """A CSV of answers that cannot be imported; nothing of it was stored."""


class PlannedTrials:
    """The study's full plan by (rater, trial), to map answers through."""

    def __init__(self, plan: dict, fingerprint: str | None = None):
        self.study = dict(plan.get("study", {}))
        self.raters = dict(plan["raters"])
        self.pages = dict(plan.get("pages", {}))  # rater -> the name of the rater's page file
        self.files = {trial[side] for trials in self.raters.values() for trial in trials for side in SIDES}
        self.fingerprint = fingerprint

    @classmethod
    def from_file(cls, plan_file: Path) -> PlannedTrials:
        """The plan file (``studies/<preset>/plan.json``) and its fingerprint."""
        return cls(read_plan(plan_file), plan_fingerprint(plan_file))

    def count(self, rater: str) -> int:
        return len(self.raters[rater])

    def to_row(self, answer: Mapping, origin: str, from_text: bool = False) -> dict:
        """The stored row (``store.COLUMNS``) of a page's answer (``CSV_COLUMNS``), or an
        AnswerError (an OtherPlanError when its image files are not the trial's).
        ``from_text``: the values are strings (a CSV); otherwise numbers must be numbers (JSON)."""
        if origin not in ORIGINS:
            raise ValueError(f"origin {origin!r}; expected {' | '.join(ORIGINS)}")
        missing = [column for column in CSV_COLUMNS if column not in answer]
        unknown = [str(column) for column in answer if column not in CSV_COLUMNS]
        if missing or unknown:
            raise AnswerError(
                ("lacks " + ", ".join(missing) if missing else "")
                + (" and " if missing and unknown else "")
                + ("has unknown field(s) " + ", ".join(unknown) if unknown else "")
                + f"; an answer has the fields {', '.join(CSV_COLUMNS)}"
            )
        for column in TEXT_FIELDS:
            if not isinstance(answer[column], str):
                raise AnswerError(f"{column} is {answer[column]!r}, not text")
        rater = answer["rater"]
        if rater not in self.raters:
            raise AnswerError(f"unknown rater {rater!r}: the plan's raters are {_span(sorted(self.raters))}")
        trial = _whole(answer["trial"], "trial", from_text)
        if not 0 <= trial < len(self.raters[rater]):
            raise AnswerError(
                f"unknown trial {trial} of rater {rater}: the plan has trials 0 to {self.count(rater) - 1}"
            )
        planned = self.raters[rater][trial]
        for side in SIDES:
            if answer[side] not in self.files:
                raise OtherPlanError(
                    f"unknown image {answer[side]!r} ({side}): not a file of this study's plan "
                    "(the answer was given under another build of the study)"
                )
        if (answer["left"], answer["right"]) != (planned["left"], planned["right"]):
            raise OtherPlanError(
                f"rater {rater}'s trial {trial} showed {answer['left']} | {answer['right']}, the plan has "
                f"{planned['left']} | {planned['right']}: the answer was given under another plan of the study"
            )
        if answer["choice"] not in SIDES:
            raise AnswerError(f"choice is {answer['choice']!r}; expected {' | '.join(SIDES)}")
        _check_timestamp(answer["timestamp"])
        return {
            "rater": rater,
            "session": answer["session"],
            "trial": trial,
            **{field: planned[field] for field in PLAN_FIELDS},
            "choice": answer["choice"],
            "reaction_ms": _milliseconds(answer["reaction_ms"], "reaction_ms", from_text, may_be_empty=False),
            "display_ms": _milliseconds(answer["display_ms"], "display_ms", from_text, may_be_empty=True),
            "timestamp": answer["timestamp"],
            "user_agent": answer["user_agent"],
            "origin": origin,
        }


def import_csv(csv_path: Path, plan_file: Path, answers: Path) -> int:
    """Check the CSV in full against the full plan ``plan_file``, then store its answers in
    ``answers`` in one transaction, tying the database to the plan; the number of answers
    newly stored. A problem with the file raises AnswersImportError naming the file and
    line(s); a database bound to another plan, or not usable, raises StoreError; either way
    nothing is stored."""
    csv_path, answers = Path(csv_path), Path(answers)
    planned = PlannedTrials.from_file(plan_file)
    rows = _checked_rows(csv_path, planned)
    connection = open_store(answers)
    try:
        with transaction(connection):
            try:
                check_origin(connection, "imported")  # before the plan: a simulated database says so
            except StoreError as error:
                raise AnswersImportError(f"{csv_path}: nothing imported: {error}") from error
            bind_plan(connection, planned.fingerprint)
            fresh, skipped, conflicts = [], 0, []
            for line, row in rows:
                stored = stored_answer(connection, row["rater"], row["trial"])
                if stored is None:
                    fresh.append(row)
                elif all(stored[column] == row[column] for column in STORED_FIELDS):
                    skipped += 1
                else:
                    conflicts.append(
                        f"{csv_path}, line {line}: rater {row['rater']}'s trial {row['trial']} is stored already "
                        f"with another answer (choice {stored['choice']}, {stored['origin']}, {stored['timestamp']})"
                    )
            if conflicts:
                raise AnswersImportError(_summary(csv_path, conflicts))
            try:
                for row in fresh:
                    insert(connection, row)
            except StoreError as error:
                raise AnswersImportError(f"{csv_path}: nothing imported: {error}") from error
    except sqlite3.Error as error:  # locked for longer than the timeout, the disk full, ...
        raise StoreError(f"{answers}: nothing imported from {csv_path}: {error}") from error
    finally:
        connection.close()
    log.info("%s: %d answers imported into %s, %d stored already", csv_path, len(fresh), answers, skipped)
    return len(fresh)


def _checked_rows(path: Path, planned: PlannedTrials) -> list[tuple[int, dict]]:
    """(line, stored row) for each row, or one AnswersImportError listing every problem found."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError as error:
        raise AnswersImportError(f"{path}: no such file") from error
    except UnicodeDecodeError as error:
        raise AnswersImportError(f"{path}: not a UTF-8 text file ({error})") from error
    if not text.strip():
        raise AnswersImportError(f"{path}: the file is empty; expected the header {','.join(CSV_COLUMNS)}")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip() for name in next(reader)]
    except csv.Error as error:
        raise AnswersImportError(
            f"{path}, line {reader.line_num}: the header is not CSV ({error}); nothing imported. "
            f"Expected the header: {','.join(CSV_COLUMNS)}"
        ) from error
    _check_header(path, header)

    rows, problems, first_line = [], [], {}
    fields, short = [], False
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            problems.append(f"{path}, line {reader.line_num}: the file ends inside a quoted field ({error}): cut short")
            short = True
            break
        line = reader.line_num
        if not fields:
            continue  # a blank line
        if len(fields) != len(header):
            few = len(fields) < len(header)
            short = short or few
            problems.append(
                f"{path}, line {line}: {len(fields)} fields where the header has {len(header)}: "
                + ("the row is cut short (a truncated file?)" if few else "too many (an unquoted comma?)")
            )
            continue
        try:
            row = planned.to_row(dict(zip(header, fields)), "imported", from_text=True)
        except AnswerError as error:
            problems.append(f"{path}, line {line}: {error}")
            continue
        key = row["rater"], row["trial"]
        if key in first_line:
            problems.append(
                f"{path}, line {line}: duplicate trial: rater {key[0]}'s trial {key[1]} is answered on line "
                f"{first_line[key]} too"
            )
            continue
        first_line[key] = line
        rows.append((line, row))
    if not text.endswith(("\n", "\r")) and not short:
        problems.append(
            f"{path}, line {reader.line_num}: the file ends in the middle of a row (no line end): cut short"
        )
    if not problems and not rows:
        problems.append(f"{path}: the file has a header and no answers")
    if problems:
        raise AnswersImportError(_summary(path, problems))
    return rows


def _check_header(path: Path, header: list[str]) -> None:
    missing = [column for column in CSV_COLUMNS if column not in header]
    unknown = [column for column in header if column not in CSV_COLUMNS]
    repeated = sorted({column for column in header if header.count(column) > 1})
    if missing or unknown or repeated:
        named = [
            repr(column) if column.strip() else "an empty one (a comma at the end of each line?)" for column in unknown
        ]
        problems = (
            ([f"missing column(s) {', '.join(missing)}"] if missing else [])
            + ([f"unknown column(s) {', '.join(named)}"] if unknown else [])
            + ([f"repeated column(s) {', '.join(repeated)}"] if repeated else [])
        )
        if len(header) == 1 and ";" in header[0]:
            problems.append("the columns are separated by ';', not ','; save the file as comma-separated CSV")
        raise AnswersImportError(
            f"{path}, line 1: wrong columns: {'; '.join(problems)}; nothing imported. "
            f"Expected the header: {','.join(CSV_COLUMNS)}"
        )


def _summary(path: Path, problems: list[str]) -> str:
    shown = problems[:SHOWN_PROBLEMS]
    more = f"\n... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    return f"{path}: nothing imported, {len(problems)} problem(s):\n" + "\n".join(shown) + more


def _span(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{names[0]} to {names[-1]}"


def _whole(value, name: str, from_text: bool) -> int:
    if from_text and isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        return int(value)
    if not from_text and isinstance(value, int) and not isinstance(value, bool):
        return value
    raise AnswerError(f"{name} is {value!r}; expected a whole number")


def _milliseconds(value, name: str, from_text: bool, may_be_empty: bool) -> float | None:
    if may_be_empty and (value is None or (from_text and value.strip() == "")):
        return None
    number = None
    if from_text and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    elif not from_text and isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    if number is None or not math.isfinite(number) or number < 0:
        raise AnswerError(f"{name} is {value!r}; expected a number of milliseconds >= 0")
    return number


def _check_timestamp(value: str) -> None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise AnswerError(f"timestamp is {value!r}; expected an ISO 8601 time with its zone, e.g. 2024-05-01T12:00:00Z")
