"""The study's answers: stored once per trial in SQLite (WAL mode), served over real HTTP,
kept through a killed server, and imported from the static page's CSV all or nothing."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from study_fixtures import answer_for, make_study

from sr3bench.study.importing import CSV_COLUMNS, AnswersImportError, import_csv
from sr3bench.study.server import make_server
from sr3bench.study.store import COLUMNS, StoreError, next_trial, open_store, read_answers, record

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Three raters of 1 practice + 8 main + 2 vigilance trials (tasks 1, 2, 1)."""
    return make_study(tmp_path_factory.mktemp("study"), raters=3, images_per_rater=8)


def rows_in(path: Path) -> list[tuple]:
    """The rows of the main database file alone (its log ignored), read from a copy."""
    copy = path.with_name("main-only-copy.sqlite")
    shutil.copyfile(path, copy)
    try:
        with sqlite3.connect(copy) as connection:
            return connection.execute("SELECT rater, trial, choice FROM answers ORDER BY rater, trial").fetchall()
    finally:
        copy.unlink()


def file_state(path: Path) -> dict:
    return {
        name: (hashlib.sha256(file.read_bytes()).hexdigest(), file.stat().st_mtime_ns)
        for name in (path.name, path.name + "-wal")
        if (file := path.with_name(name)).exists()
    }


def test_an_answer_is_stored_once_and_the_next_trial_follows(study, tmp_path):
    _, plan = study
    first, second = plan["raters"]["r000"][:2]
    connection = open_store(tmp_path / "answers.sqlite")
    assert next_trial(connection, "r000") == 0
    assert record(connection, answer_for(first, "left"))
    assert not record(connection, answer_for(first, "left"))
    assert not record(connection, answer_for(first, "right")), "a second answer to a trial is never stored"
    assert record(connection, answer_for(second, "right"))
    stored = connection.execute("SELECT rater, trial, choice FROM answers ORDER BY trial").fetchall()
    assert stored == [("r000", 0, "left"), ("r000", 1, "right")]
    assert next_trial(connection, "r000") == 2 and next_trial(connection, "r001") == 0
    connection.close()


def test_the_store_is_in_wal_mode_and_each_answer_reaches_the_main_file(study, tmp_path):
    _, plan = study
    path = tmp_path / "answers.sqlite"
    connection = open_store(path)
    assert connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent, seen by any connection
    before = path.stat().st_mtime_ns
    for trial in plan["raters"]["r001"][:3]:
        record(connection, answer_for(trial, "right"))
    # checkpointed after each commit: the main file alone holds the answers, and it changed
    assert rows_in(path) == [("r001", 0, "right"), ("r001", 1, "right"), ("r001", 2, "right")]
    assert path.stat().st_mtime_ns != before
    connection.close()


def test_reading_the_answers_changes_no_byte_and_includes_answers_only_in_the_log(study, tmp_path):
    _, plan = study
    path = tmp_path / "answers.sqlite"
    connection = open_store(path)
    record(connection, answer_for(plan["raters"]["r000"][0], "left"))
    connection.execute("PRAGMA wal_autocheckpoint=0")  # the next answers stay in the log
    for trial in plan["raters"]["r000"][1:4]:
        record(connection, answer_for(trial, "right"))
    assert len(rows_in(path)) == 1
    state = file_state(path)
    assert len(state) == 2, "the log exists"
    answers = read_answers(path)
    assert file_state(path) == state
    assert list(answers.columns) == list(COLUMNS)
    assert answers[["rater", "trial", "choice"]].values.tolist() == [
        ["r000", 0, "left"],
        ["r000", 1, "right"],
        ["r000", 2, "right"],
        ["r000", 3, "right"],
    ]
    assert answers["trial"].dtype == "int64" and answers["reaction_ms"].dtype == "float64"
    connection.close()


def test_simulated_answers_never_share_a_database_with_human_ones(study, tmp_path):
    site, plan = study
    trial, other = plan["raters"]["r000"][:2]
    simulated = open_store(tmp_path / "simulated.sqlite")
    record(simulated, answer_for(trial, "left", origin="simulated"))
    with pytest.raises(StoreError, match="holds simulated answers.*never mixed with served"):
        record(simulated, answer_for(other, "left", origin="served"))
    human = open_store(tmp_path / "human.sqlite")
    record(human, answer_for(trial, "left", origin="served"))
    record(human, answer_for(other, "left", origin="imported"))  # served and imported answers mix
    with pytest.raises(StoreError, match="holds served answers"):
        record(human, answer_for(plan["raters"]["r000"][2], "left", origin="simulated"))
    assert next_trial(simulated, "r000") == 1 and next_trial(human, "r000") == 2
    simulated.close()
    with pytest.raises(StoreError, match="holds simulated answers"):
        make_server(site, tmp_path / "simulated.sqlite")  # refused at once, not at the first answer
    csv_file = write_csv(tmp_path / "answers.csv", [answer_for(t, "left") for t in plan["raters"]["r001"]])
    with pytest.raises(AnswersImportError, match="nothing imported: this answers database holds simulated"):
        import_csv(csv_file, site, tmp_path / "simulated.sqlite")


# --- the server, over real HTTP ---------------------------------------------------------


def http(url: str, content: dict | None = None) -> tuple[int, dict | str, dict]:
    """(status, body, headers) of a GET, or of a POST of ``content`` as JSON; redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    data = None if content is None else json.dumps(content).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            status, body, headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, body, headers = error.code, error.read(), dict(error.headers)
    kind = headers.get("Content-Type", "")
    if kind.startswith("application/json"):
        return status, json.loads(body), headers
    return status, body.decode() if kind.startswith("text/") else body, headers


@pytest.fixture
def serve():
    """serve(site, answers) -> base URL of a server running in a thread (stopped after the test)."""
    servers = []

    def start(site: Path, answers: Path) -> str:
        server = make_server(site, answers)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_server_stores_each_answer_once_and_refuses_one_that_disagrees_with_the_plan(study, tmp_path, serve):
    site, plan = study
    url = serve(site, tmp_path / "answers.sqlite")
    trials = plan["raters"]["r000"]
    assert http(f"{url}/api/state?rater=r000")[:2] == (200, {"rater": "r000", "next_trial": 0, "trials": len(trials)})
    for trial, choice in zip(trials[:2], ("left", "right")):
        row = {k: v for k, v in answer_for(trial, choice).items() if k != "origin"}
        assert http(f"{url}/api/answer", row)[:2] == (200, {"stored": True, "next_trial": trial["trial"] + 1})
    again = {k: v for k, v in answer_for(trials[1], "right").items() if k != "origin"}
    assert http(f"{url}/api/answer", again)[:2] == (200, {"stored": False, "next_trial": 2})

    other_image = next(image for image in plan["study"]["images"] if image != trials[2]["image"])
    other_side = "left" if trials[2]["method_side"] == "right" else "right"
    refused = {
        "image": ({"image": other_image}, "image is"),
        "side": ({"method_side": other_side}, "method_side is"),
        "unknown image": ({"image": "nope.png"}, "unknown image 'nope.png'"),
        "unknown method": ({"method": "bicubic"}, "unknown method 'bicubic'"),
        "unknown rater": ({"rater": "r999"}, "unknown rater 'r999'"),
        "choice": ({"choice": "middle"}, "choice is 'middle'"),
        "text number": ({"reaction_ms": "812"}, "reaction_ms is '812'"),
        "missing": ({"trial": None}, "trial is None"),
    }
    for name, (changes, message) in refused.items():
        row = {k: v for k, v in {**answer_for(trials[2], "left"), **changes}.items() if k != "origin"}
        status, body, _ = http(f"{url}/api/answer", row)
        assert status == 400 and message in body["error"], (name, body)
    status, body, _ = http(
        f"{url}/api/answer", {k: v for k, v in answer_for(trials[4], "left").items() if k != "origin"}
    )
    assert status == 409 and body["next_trial"] == 2, "an answer ahead of the next trial would leave a gap"
    assert http(f"{url}/api/state?rater=r000")[1]["next_trial"] == 2
    answers = read_answers(tmp_path / "answers.sqlite")
    assert answers[["rater", "trial", "choice", "origin"]].values.tolist() == [
        ["r000", 0, "left", "served"],
        ["r000", 1, "right", "served"],
    ]


def test_start_hands_out_the_first_rater_not_started(study, tmp_path, serve):
    site, plan = study
    answers = tmp_path / "answers.sqlite"
    connection = open_store(answers)
    record(connection, answer_for(plan["raters"]["r000"][0], "left"))
    connection.close()
    url = serve(site, answers)
    status, _, headers = http(f"{url}/start")
    assert status == 303 and headers["Location"] == "/index.html?rater=r001"
    assert http(f"{url}/")[2]["Location"] == "/index.html?rater=r002"
    assert http(f"{url}/start")[0] == 409, "every rater has started or has been handed a link"
    assert http(f"{url}/start?rater=r000")[2]["Location"] == "/index.html?rater=r000"
    assert http(f"{url}/start?rater=r999")[0] == 404


def test_the_server_serves_the_study_folder_and_nothing_else(study, tmp_path, serve):
    site, plan = study
    private = tmp_path / "site"
    shutil.copytree(site, private)
    (tmp_path / "secret.txt").write_text("not for raters")
    url = serve(private, private / "answers.sqlite")
    status, page, headers = http(f"{url}/index.html?rater=r000")
    assert status == 200 and "study.js" in page and "default-src 'self'" in headers["Content-Security-Policy"]
    assert http(f"{url}/{plan['raters']['r000'][0]['left']}")[0] == 200
    for path in (
        "/images/",
        "/images",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/images/..%2f..%2fsecret.txt",
        "/answers.sqlite",
        "/answers.sqlite-wal",
        "/nothing.html",
    ):
        assert http(f"{url}{path}")[0] == 404, path


# --- a killed server ---------------------------------------------------------------------


def start_server_process(site: Path, answers: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sr3bench.study.server", "--site", str(site), "--answers", str(answers), "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stdout:
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if found:
            return process, found.group(0)
    process.kill()
    raise AssertionError(f"the server printed no URL: {process.stderr.read()}")


def test_answers_acknowledged_before_a_sigkill_are_kept_and_the_rater_resumes(study, tmp_path):
    site, plan = study
    answers = tmp_path / "answers.sqlite"
    trials = plan["raters"]["r001"]
    given = 7
    process, url = start_server_process(site, answers)
    try:
        for trial in trials[:given]:
            choice = "left" if trial["trial"] % 3 else "right"
            row = {k: v for k, v in answer_for(trial, choice).items() if k != "origin"}
            assert http(f"{url}/api/answer", row)[1]["stored"] is True
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    stored = read_answers(answers)
    assert stored[["trial", "choice"]].values.tolist() == [
        [t["trial"], "left" if t["trial"] % 3 else "right"] for t in trials[:given]
    ]
    process, url = start_server_process(site, answers)
    try:
        assert http(f"{url}/api/state?rater=r001")[1] == {"rater": "r001", "next_trial": given, "trials": len(trials)}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert process.returncode == 0, process.stderr.read()
    wal = answers.with_name(answers.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "a clean stop leaves everything in the main file"
    assert len(rows_in(answers)) == given


# --- importing the static page's CSV ---------------------------------------------------


def write_csv(path: Path, rows: list[dict], columns=CSV_COLUMNS) -> Path:
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def imported(study, tmp_path):
    """(good rows of rater r002, an answers database holding one served answer of r000)."""
    _, plan = study
    answers = tmp_path / "answers.sqlite"
    connection = open_store(answers)
    record(connection, answer_for(plan["raters"]["r000"][0], "left"))
    connection.close()
    rows = [answer_for(trial, ("left", "right")[trial["trial"] % 2]) for trial in plan["raters"]["r002"]]
    return rows, answers


def test_a_good_csv_is_imported_and_a_second_import_adds_nothing(study, imported, tmp_path):
    site, _ = study
    rows, answers = imported
    path = write_csv(tmp_path / "answers-r002.csv", rows)
    assert import_csv(path, site, answers) == len(rows)
    stored = read_answers(answers)
    mine = stored[stored["rater"] == "r002"]
    assert mine[list(CSV_COLUMNS)].to_dict("records") == [{k: row[k] for k in CSV_COLUMNS} for row in rows]
    assert set(mine["origin"]) == {"imported"}
    assert import_csv(path, site, answers) == 0, "identical answers stored already are skipped"
    assert len(read_answers(answers)) == len(rows) + 1


def rewrite(path: Path, change) -> Path:
    path.write_text(change(path.read_text()))
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("cut mid-row", r"line 12: \d+ fields where the header has 13: the row is cut short"),
        ("cut in the last field", r"line 12: the file ends in the middle of a row \(no line end\)"),
        ("short row", r"line 2: 12 fields where the header has 13: the row is cut short"),
        ("cut in a quoted field", r"line 12: the file ends inside a quoted field"),
        ("unknown image", r"line 4: unknown image 'elsewhere.png'"),
        ("unknown method", r"line 5: unknown method 'bicubic'"),
        ("disagrees with the plan", r"line 2: rater r002's trial 0 disagrees with the plan: method_side is"),
        ("duplicate trial", r"line 13: duplicate trial: rater r002's trial 2 is answered on line 4 too"),
        (
            "missing column",
            r"line 1: wrong columns: missing column\(s\) choice.*Expected the header: rater,session,trial",
        ),
        ("unknown column", r"line 1: wrong columns: unknown column\(s\) rating"),
        ("stored differently", r"line 2: rater r002's trial 0 is stored already with another answer"),
    ],
)
def test_a_bad_csv_is_refused_with_its_line_and_nothing_is_imported(study, imported, tmp_path, case, message):
    site, plan = study
    rows, answers = imported
    path = tmp_path / "answers.csv"
    if case == "cut mid-row":
        text = write_csv(path, rows).read_text()
        path.write_text(text[: text.rindex("\n", 0, -1) + 40])
    elif case == "cut in the last field":
        path.write_text(write_csv(path, rows).read_text()[:-4])
    elif case == "short row":
        rewrite(write_csv(path, rows), lambda text: text.replace(',"test agent"', "").replace(",test agent\n", "\n", 1))
    elif case == "cut in a quoted field":
        rows[-1]["user_agent"] = "Mozilla/5.0 (X11, Linux)"
        text = write_csv(path, rows).read_text()
        path.write_text(text[: text.rindex("(") + 3])
    elif case == "unknown image":
        rows[2]["image"] = "elsewhere.png"
        write_csv(path, rows)
    elif case == "unknown method":
        rows[3]["method"] = "bicubic"
        write_csv(path, rows)
    elif case == "disagrees with the plan":
        rows[0]["method_side"] = "left" if rows[0]["method_side"] == "right" else "right"
        write_csv(path, rows)
    elif case == "duplicate trial":
        write_csv(path, rows + [dict(rows[2], choice="left")])
    elif case == "missing column":
        write_csv(path, rows, columns=[c for c in CSV_COLUMNS if c != "choice"])
    elif case == "unknown column":
        write_csv(path, [dict(row, rating=3) for row in rows], columns=[*CSV_COLUMNS, "rating"])
    elif case == "stored differently":
        connection = open_store(answers)
        record(connection, answer_for(plan["raters"]["r002"][0], "right" if rows[0]["choice"] == "left" else "left"))
        connection.close()
        write_csv(path, rows)
    before = file_state(answers), read_answers(answers)
    with pytest.raises(AnswersImportError, match=message) as refused:
        import_csv(path, site, answers)
    assert str(path) in str(refused.value) and "nothing imported" in str(refused.value)
    assert file_state(answers) == before[0]
    assert read_answers(answers).equals(before[1])
