"""Answers checked against the study's plan: each answer the server is given, and the CSV
of the static page, which is checked in full and then loaded all or nothing.

The CSV has the header ``CSV_COLUMNS`` (``store.COLUMNS`` without ``origin``, which the
import sets to 'imported'; an ``origin`` column, if present, is empty or 'imported'), in any
order. An answer stored already with the same values is skipped (a file imported twice);
one stored with other values is an error.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Mapping

from sr3bench.study.plan import SIDES, VIGILANCE, read_plan
from sr3bench.study.store import COLUMNS, StoreError, insert, open_store, stored_answer, transaction

log = logging.getLogger(__name__)

CSV_COLUMNS = tuple(column for column in COLUMNS if column != "origin")
PLAN_FIELDS = ("kind", "task", "image", "method", "method_side")  # an answer repeats its trial's plan
TEXT_FIELDS = ("rater", "session", "kind", "image", "method", "method_side", "choice", "timestamp", "user_agent")
SHOWN_PROBLEMS = 20


class AnswerError(ValueError):
    """One answer disagrees with the plan or is malformed (the message says how)."""


class AnswersImportError(ValueError):
    """A CSV of answers that cannot be imported; nothing of it was stored."""


class PlannedTrials:
    """The study's planned trials by (rater, trial), to check answers against."""

    def __init__(self, plan: dict):
        self.raters = dict(plan["raters"])
        self.images = {trial["image"] for trials in self.raters.values() for trial in trials}
        self.methods = {trial["method"] for trials in self.raters.values() for trial in trials}

    @classmethod
    def from_site(cls, site: Path) -> PlannedTrials:
        return cls(read_plan(site))

    def count(self, rater: str) -> int:
        return len(self.raters[rater])

    def check(self, row: Mapping, from_text: bool = False) -> dict:
        """The answer with typed values (``CSV_COLUMNS``), or an AnswerError. ``from_text``:
        the values are strings (a CSV); otherwise numbers must be numbers (JSON)."""
        missing = [column for column in CSV_COLUMNS if column not in row]
        unknown = [str(column) for column in row if column not in COLUMNS]
        if missing or unknown:
            raise AnswerError(
                ("lacks " + ", ".join(missing) if missing else "")
                + (" and " if missing and unknown else "")
                + ("has unknown field(s) " + ", ".join(unknown) if unknown else "")
                + f"; an answer has the fields {', '.join(CSV_COLUMNS)}"
            )
        for column in TEXT_FIELDS:
            if not isinstance(row[column], str):
                raise AnswerError(f"{column} is {row[column]!r}, not text")
        rater = row["rater"]
        if rater not in self.raters:
            raise AnswerError(f"unknown rater {rater!r}: the plan's raters are {_span(sorted(self.raters))}")
        trial = _whole(row["trial"], "trial", from_text)
        task = _whole(row["task"], "task", from_text)
        if not 0 <= trial < len(self.raters[rater]):
            raise AnswerError(
                f"unknown trial {trial} of rater {rater}: the plan has trials 0 to {self.count(rater) - 1}"
            )
        if row["image"] not in self.images:
            raise AnswerError(f"unknown image {row['image']!r}: not among the study's {len(self.images)} test images")
        if row["method"] not in self.methods:
            compared = ", ".join(sorted(self.methods - {VIGILANCE}))
            raise AnswerError(
                f"unknown method {row['method']!r}: the study compares {compared} (and {VIGILANCE} trials)"
            )
        planned = self.raters[rater][trial]
        answer = {**{column: row[column] for column in CSV_COLUMNS}, "trial": trial, "task": task}
        differing = [field for field in PLAN_FIELDS if answer[field] != planned[field]]
        if differing:
            raise AnswerError(
                f"rater {rater}'s trial {trial} disagrees with the plan: "
                + ", ".join(f"{field} is {answer[field]!r}, planned {planned[field]!r}" for field in differing)
            )
        if answer["choice"] not in SIDES:
            raise AnswerError(f"choice is {answer['choice']!r}; expected {' | '.join(SIDES)}")
        answer["reaction_ms"] = _milliseconds(row["reaction_ms"], "reaction_ms", from_text, may_be_empty=False)
        answer["display_ms"] = _milliseconds(row["display_ms"], "display_ms", from_text, may_be_empty=True)
        _check_timestamp(answer["timestamp"])
        return answer


def import_csv(csv_path: Path, site: Path, answers: Path) -> int:
    """Check the CSV in full against the plan of the study folder ``site``, then store its
    answers in ``answers`` in one transaction; the number of answers newly stored. Any
    problem raises AnswersImportError naming the file and line(s), and nothing is stored."""
    csv_path = Path(csv_path)
    planned = PlannedTrials.from_site(site)
    rows = _checked_rows(csv_path, planned)
    connection = open_store(answers)
    try:
        with transaction(connection):
            fresh, skipped, conflicts = [], 0, []
            for line, row in rows:
                stored = stored_answer(connection, row["rater"], row["trial"])
                if stored is None:
                    fresh.append(row)
                elif all(stored[column] == row[column] for column in CSV_COLUMNS):
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
                    insert(connection, {**row, "origin": "imported"})
            except StoreError as error:
                raise AnswersImportError(f"{csv_path}: nothing imported: {error}") from error
    finally:
        connection.close()
    log.info("%s: %d answers imported into %s, %d stored already", csv_path, len(fresh), answers, skipped)
    return len(fresh)


def _checked_rows(path: Path, planned: PlannedTrials) -> list[tuple[int, dict]]:
    """(line, answer) for each row, or one AnswersImportError listing every problem found."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError as error:
        raise AnswersImportError(f"{path}: no such file") from error
    except UnicodeDecodeError as error:
        raise AnswersImportError(f"{path}: not a UTF-8 text file ({error})") from error
    if not text.strip():
        raise AnswersImportError(f"{path}: the file is empty; expected the header {','.join(CSV_COLUMNS)}")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = [name.strip() for name in next(reader)]
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
            answer = _from_csv_row(dict(zip(header, fields)), planned)
        except AnswerError as error:
            problems.append(f"{path}, line {line}: {error}")
            continue
        key = answer["rater"], answer["trial"]
        if key in first_line:
            problems.append(
                f"{path}, line {line}: duplicate trial: rater {key[0]}'s trial {key[1]} is answered on line "
                f"{first_line[key]} too"
            )
            continue
        first_line[key] = line
        rows.append((line, answer))
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
    unknown = [column for column in header if column not in COLUMNS]
    repeated = sorted({column for column in header if header.count(column) > 1})
    if missing or unknown or repeated:
        problems = (
            ([f"missing column(s) {', '.join(missing)}"] if missing else [])
            + ([f"unknown column(s) {', '.join(unknown)}"] if unknown else [])
            + ([f"repeated column(s) {', '.join(repeated)}"] if repeated else [])
        )
        raise AnswersImportError(
            f"{path}, line 1: wrong columns: {'; '.join(problems)}; nothing imported. "
            f"Expected the header: {','.join(CSV_COLUMNS)}"
        )


def _from_csv_row(row: dict, planned: PlannedTrials) -> dict:
    origin = row.pop("origin", "")
    if origin not in ("", "imported"):
        raise AnswerError(f"origin is {origin!r}: answers of the static page are imported (leave origin empty)")
    return planned.check(row, from_text=True)


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
