"""The study's answers: stored once per trial in SQLite (WAL mode), tied to the plan they
were given under, served over real HTTP (mapped through the full plan, which never reaches
the served folder), kept through a killed server, and imported from the static page's CSV
all or nothing."""

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
from PIL import Image
from study_fixtures import METHODS, answer_for, make_study, page_answer

from sr3bench.study.importing import CSV_COLUMNS, AnswersImportError, import_csv
from sr3bench.study.plan import page_link, plan_fingerprint, rater_page
from sr3bench.study.server import make_server
from sr3bench.study.store import (
    COLUMNS,
    StoreError,
    bind_plan,
    database_files,
    next_trial,
    open_store,
    other_plan,
    read_answers,
    record,
    record_many,
    stored_fingerprint,
    transaction,
)

REPO = Path(__file__).resolve().parents[1]


PAGES: dict[str, str] = {}  # rater -> page name, of the study below


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Three raters of 1 practice + 8 main + 2 vigilance trials (tasks 1, 2, 1)."""
    built = make_study(tmp_path_factory.mktemp("study"), raters=3, images_per_rater=8)
    PAGES.update(built.plan["pages"])
    return built


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
        file.name: (hashlib.sha256(file.read_bytes()).hexdigest(), file.stat().st_mtime_ns)
        for file in database_files(path)[:2]
        if file.exists()
    }


def bound_store(path: Path, plan_file: Path):
    """A connection to a new answers database tied to the plan."""
    connection = open_store(path)
    bind_plan(connection, plan_fingerprint(plan_file))
    return connection


def test_an_answer_is_stored_once_and_the_next_trial_follows(study, tmp_path):
    plan = study.plan
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
    plan = study.plan
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
    plan = study.plan
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

    bound = tmp_path / "bound.sqlite"
    connection = open_store(bound)
    connection.execute("PRAGMA wal_autocheckpoint=0")
    assert stored_fingerprint(bound) is None
    bind_plan(connection, "ab" * 32)  # in the log only
    state = file_state(bound)
    assert stored_fingerprint(bound) == "ab" * 32
    assert file_state(bound) == state
    assert stored_fingerprint(tmp_path / "absent.sqlite") is None
    assert not (tmp_path / "absent.sqlite").exists()
    connection.close()


def test_database_files_names_the_database_its_log_and_its_index(tmp_path):
    path = tmp_path / "answers.sqlite"
    assert database_files(path) == (path, tmp_path / "answers.sqlite-wal", tmp_path / "answers.sqlite-shm")
    connection = open_store(path)
    assert all(file.exists() for file in database_files(path))
    connection.close()


def test_a_failed_transaction_is_rolled_back_and_its_own_error_raised(tmp_path):
    connection = open_store(tmp_path / "answers.sqlite")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    connection.execute("CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):  # the COMMIT fails
        with transaction(connection):
            connection.execute("INSERT INTO child VALUES (1)")
    assert not connection.in_transaction
    assert connection.execute("SELECT COUNT(*) FROM child").fetchone()[0] == 0
    with pytest.raises(sqlite3.OperationalError, match="cannot commit"):  # no transaction left to roll back
        with transaction(connection):
            connection.execute("ROLLBACK")
    with pytest.raises(KeyError):
        with transaction(connection):
            connection.execute("INSERT INTO parent VALUES (1)")
            raise KeyError("the body's own error")
    assert connection.execute("SELECT COUNT(*) FROM parent").fetchone()[0] == 0
    connection.close()


def test_storing_many_answers_checks_their_origin_without_scanning_the_table(study, tmp_path):
    rows = [answer_for(trial, "left") for trials in study.plan["raters"].values() for trial in trials]
    connection = open_store(tmp_path / "answers.sqlite")
    statements = []
    connection.set_trace_callback(statements.append)
    assert record_many(connection, rows) == len(rows)
    connection.set_trace_callback(None)
    reads = [sql for sql in statements if re.search(r"\bFROM answers\b", sql) and not sql.startswith("INSERT")]
    assert len(reads) == 1 and "LIMIT 1" in reads[0], reads  # once, its first row: one kind per database
    connection.close()


def test_the_full_plan_never_reaches_the_served_folder(study):
    site, plan_file, plan = study
    assert not (site / "plan.json").exists() and not plan_file.is_relative_to(site)
    names = re.compile(rb"\b(" + b"|".join(m.encode() for m in METHODS) + rb")\b")
    files = [path for path in site.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"index.html", "study.js", "study.css"}
    for path in files:
        if path.suffix == ".png":
            assert re.fullmatch(r"[0-9a-f]{32}\.png", path.name), path
            with Image.open(path) as image:
                text = repr(image.info).encode()
        else:
            text = path.read_bytes()
        assert b"method_side" not in text and not names.search(text), path
    assert sorted(p.stem for p in (site / "raters").iterdir()) == sorted(plan["pages"].values())
    for rater, page in plan["pages"].items():
        text = (site / "raters" / f"{page}.js").read_text()
        shown = json.loads(text.removeprefix("window.STUDY = ").rstrip().removesuffix(";"))
        assert shown == json.loads(json.dumps(rater_page(plan, rater)))
        for trial in shown["trials"]:
            assert set(trial) == {"trial", "kind", "task", "left", "right"} | (
                {"real_side"} if trial["kind"] == "practice" else set()
            ) | ({"lr"} if trial["task"] == 1 else set()), trial


def test_answers_are_tied_to_the_plan_they_were_given_under(study, tmp_path):
    site, plan_file, plan = study
    fingerprint, other = plan_fingerprint(plan_file), "0" * 64
    path = tmp_path / "answers.sqlite"
    connection = open_store(path)
    bind_plan(connection, other)
    assert other_plan(path, fingerprint) is None  # bound elsewhere, but no answer to lose
    bind_plan(connection, fingerprint)  # no answer yet: bound anew
    assert stored_fingerprint(path) == fingerprint
    record(connection, answer_for(plan["raters"]["r000"][0], "left"))
    state = file_state(path)
    assert other_plan(path, fingerprint) is None and other_plan(path, other) == fingerprint[:12]
    assert other_plan(tmp_path / "absent.sqlite", other) is None
    assert file_state(path) == state, "reading which plan the answers are under writes nothing"
    bind_plan(connection, fingerprint)
    assert file_state(path) == state, "binding to the same plan writes nothing"
    with pytest.raises(StoreError) as refused:
        bind_plan(connection, other)
    assert str(refused.value) == (
        f"{path} holds 1 answers given under another build of the study (plan {fingerprint[:12]} \u2260 "
        f"{other[:12]}): move it away to start a new study, or rebuild the study from the same inputs"
    )
    assert stored_fingerprint(path) == fingerprint
    connection.close()

    older = tmp_path / "older.sqlite"  # answers stored before plans were recorded
    connection = open_store(older)
    record(connection, answer_for(plan["raters"]["r000"][0], "left"))
    with pytest.raises(StoreError, match="holds 1 answers given under another build of the study \\(plan not recorded"):
        bind_plan(connection, fingerprint)
    connection.close()


def test_a_database_of_another_plan_is_refused_by_the_server_and_the_import(study, tmp_path):
    site, plan_file, plan = study
    path = tmp_path / "answers.sqlite"
    connection = open_store(path)
    bind_plan(connection, "0" * 64)
    record(connection, answer_for(plan["raters"]["r000"][0], "left"))
    connection.close()
    message = r"answers\.sqlite holds 1 answers given under another build of the study \(plan 000000000000 \u2260 "
    with pytest.raises(StoreError, match=message):
        make_server(plan_file, site, path)
    csv_file = write_csv(tmp_path / "answers.csv", [page_answer(t, "left") for t in plan["raters"]["r001"]])
    state = file_state(path)
    with pytest.raises(StoreError, match=message):
        import_csv(csv_file, plan_file, path)
    assert file_state(path) == state and len(read_answers(path)) == 1


def test_simulated_answers_never_share_a_database_with_human_ones(study, tmp_path):
    site, plan_file, plan = study
    trial, other = plan["raters"]["r000"][:2]
    simulated = open_store(tmp_path / "simulated.sqlite")
    record(simulated, answer_for(trial, "left", origin="simulated"))
    with pytest.raises(StoreError, match="holds simulated answers.*never mixed with served"):
        record(simulated, answer_for(other, "left", origin="served"))
    human = open_store(tmp_path / "human.sqlite")
    record(human, answer_for(trial, "left", origin="served"))
    record(human, answer_for(other, "left", origin="imported"))  # served and imported answers mix
    with pytest.raises(StoreError, match=r"holds human \(served or imported\) answers"):
        record(human, answer_for(plan["raters"]["r000"][2], "left", origin="simulated"))
    assert next_trial(simulated, "r000") == 1 and next_trial(human, "r000") == 2
    simulated.close()
    with pytest.raises(StoreError, match="holds simulated answers"):
        make_server(plan_file, site, tmp_path / "simulated.sqlite")  # refused at once, not at the first answer
    csv_file = write_csv(tmp_path / "answers.csv", [page_answer(t, "left") for t in plan["raters"]["r001"]])
    with pytest.raises(AnswersImportError, match="nothing imported: this answers database holds simulated"):
        import_csv(csv_file, plan_file, tmp_path / "simulated.sqlite")


# --- the server, over real HTTP ---------------------------------------------------------


def http(url: str, content: dict | None = None, headers: dict | None = None) -> tuple[int, dict | str, dict]:
    """(status, body, headers) of a GET, or of a POST of ``content`` as JSON (an answer with
    the page of its rater, as the page sends it, unless ``headers`` say otherwise); redirects
    not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    data = None if content is None else json.dumps(content).encode()
    page = {"X-Study-Page": PAGES[content["rater"]]} if content and content.get("rater") in PAGES else {}
    headers = {"Content-Type": "application/json", **page, **(headers or {})}
    headers = {name: value for name, value in headers.items() if value is not None}  # None: not sent
    request = urllib.request.Request(url, data=data, headers=headers)
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
    """serve(plan_file, site, answers) -> base URL of a server running in a thread (stopped
    after the test, or by stop())."""
    servers = []

    def start(plan_file: Path, site: Path, answers: Path) -> str:
        server = make_server(plan_file, site, answers)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.url

    def stop():
        while servers:
            server = servers.pop()
            server.shutdown()
            server.server_close()

    start.stop = stop
    yield start
    stop()


def test_a_port_in_use_is_the_bind_error_itself_and_a_json_nested_too_deep_a_400(study, tmp_path, serve):
    site, plan_file, _ = study
    url = serve(plan_file, site, tmp_path / "answers.sqlite")
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError, match="Address already in use"):  # not an AttributeError hiding it
        make_server(plan_file, site, tmp_path / "other.sqlite", port=port)
    request = urllib.request.Request(
        f"{url}/api/answer", data=b"[" * 30000 + b"]" * 30000, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400 and "answer refused" in refused.value.read().decode()


def test_the_server_stores_each_answer_once_and_refuses_one_that_disagrees_with_the_plan(study, tmp_path, serve):
    site, plan_file, plan = study
    url = serve(plan_file, site, tmp_path / "answers.sqlite")
    trials = plan["raters"]["r000"]
    assert http(f"{url}/api/state?plan={PAGES['r000']}")[:2] == (
        200,
        {"rater": "r000", "next_trial": 0, "trials": len(trials)},
    )
    for trial, choice in zip(trials[:2], ("left", "right")):
        assert http(f"{url}/api/answer", page_answer(trial, choice))[:2] == (
            200,
            {"stored": True, "next_trial": trial["trial"] + 1},
        )
    again = page_answer(trials[1], "right")
    assert http(f"{url}/api/answer", again)[:2] == (200, {"stored": False, "next_trial": 2})

    planned = trials[2]
    another = next(t for t in trials if t["left"] != planned["left"] and t["right"] != planned["right"])
    refused = {
        "swapped": (
            {"left": planned["right"], "right": planned["left"]},
            "this page was built for another plan: reload",
        ),
        "another trial's": ({"left": another["left"]}, "this page was built for another plan: reload"),
        "unknown image": ({"right": "images/nope.png"}, "this page was built for another plan: reload"),
        "unknown trial": ({"trial": 99}, "unknown trial 99 of rater r000"),
        "choice": ({"choice": "middle"}, "choice is 'middle'"),
        "text number": ({"reaction_ms": "812"}, "reaction_ms is '812'"),
        "missing": ({"trial": None}, "trial is None"),
        "a method": ({"method": METHODS[0]}, "has unknown field(s) method"),
        "timestamp": ({"timestamp": "2024-05-01 12:00"}, "timestamp is '2024-05-01 12:00'"),
    }
    for name, (changes, message) in refused.items():
        status, body, _ = http(f"{url}/api/answer", page_answer(planned, "left", **changes))
        assert status == 400 and message in body["error"], (name, body)
    status, body, _ = http(f"{url}/api/answer", page_answer(trials[4], "left"))
    assert status == 409 and body["next_trial"] == 2, "an answer ahead of the next trial would leave a gap"
    # the page name is the credential: a rater ID opens nothing, and a page answers for its own rater only;
    # a refusal names none of another rater's files (an answer with a wrong pair would draw the planned one)
    wrong_pair = {"left": trials[0]["left"], "right": trials[0]["right"]}
    for rater in ("r001", "r999"):
        other = page_answer(plan["raters"]["r001"][0], "left", rater=rater, **wrong_pair)
        for headers, message in (
            ({"X-Study-Page": PAGES["r000"]}, "a page answers for its own rater only"),
            ({"X-Study-Page": ""}, "this page is not one of the study's"),
            ({"X-Study-Page": "r001"}, "this page is not one of the study's"),
            ({"X-Study-Page": None}, "this page is not one of the study's"),
        ):
            status, body, _ = http(f"{url}/api/answer", other, headers)
            assert status == 403 and message in body["error"] and "images/" not in json.dumps(body), (headers, body)
    status, body, _ = http(f"{url}/api/answer", page_answer(planned, "left", **wrong_pair))
    assert status == 400 and body == {"error": "this page was built for another plan: reload"}, body
    assert http(f"{url}/api/state?rater=r001")[0] == 403 and http(f"{url}/api/state?plan=r001")[0] == 403
    assert http(f"{url}/api/state?plan={PAGES['r001']}")[1]["next_trial"] == 0, "nothing stored for r001"
    assert http(f"{url}/api/state?plan={PAGES['r000']}")[1]["next_trial"] == 2
    answers = read_answers(tmp_path / "answers.sqlite")
    assert answers.to_dict("records") == [answer_for(trials[0], "left"), answer_for(trials[1], "right")]


def test_a_post_from_another_web_page_or_not_as_json_is_refused(study, tmp_path, serve):
    site, plan_file, plan = study
    url = serve(plan_file, site, tmp_path / "answers.sqlite")
    port = url.rsplit(":", 1)[1]
    answer = page_answer(plan["raters"]["r001"][0], "left")
    for headers, status, message in (
        ({"Origin": "http://evil.example"}, 403, "not from http://evil.example"),
        ({"Origin": "null"}, 403, "not from null"),
        ({"Origin": f"http://evil.example:{port}", "Host": f"evil.example:{port}"}, 403, "not from"),  # rebinding
        ({"Content-Type": "text/plain"}, 415, "Content-Type: application/json, not text/plain"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"),
    ):
        reply = http(f"{url}/api/answer", answer, headers)
        assert reply[0] == status and message in reply[1]["error"], (headers, reply)
    assert http(f"{url}/api/state?plan={PAGES['r001']}")[1]["next_trial"] == 0, "nothing stored"
    assert http(f"{url}/api/answer", answer, {"Origin": url})[0] == 200, "the page's own origin"
    second = page_answer(plan["raters"]["r001"][1], "right")
    local = {"Origin": f"http://localhost:{port}", "Host": f"localhost:{port}"}
    assert http(f"{url}/api/answer", second, local)[0] == 200, "so is its origin by the loopback name"
    assert http(f"{url}/api/answer", page_answer(plan["raters"]["r001"][2], "right"))[0] == 200, "a program: no Origin"
    assert http(f"{url}/api/state?plan={PAGES['r001']}")[1]["next_trial"] == 3


def test_start_hands_out_each_rater_once_even_across_a_restart_and_the_root_hands_out_none(study, tmp_path, serve):
    site, plan_file, plan = study
    answers = tmp_path / "answers.sqlite"
    connection = bound_store(answers, plan_file)
    record(connection, answer_for(plan["raters"]["r000"][0], "left"))
    connection.close()
    url = serve(plan_file, site, answers)
    for _ in range(2):
        status, about, _ = http(f"{url}/")
        assert status == 200 and 'href="/start"' in about and "Image study (test)" in about
    assert re.findall(r"<th>([^<]+)</th><td>(\d+)</td>", about) == [
        ("planned", "3"),
        ("handed out", "0"),
        ("started", "1"),
        ("finished", "0"),
    ]
    for loaded_as in ("image", "empty", "script"):  # <img src=.../start> or fetch() on another web page
        assert http(f"{url}/start", headers={"Sec-Fetch-Dest": loaded_as})[0] == 403
    status, _, headers = http(f"{url}/start", headers={"Sec-Fetch-Dest": "document"})  # a browser opening it
    assert status == 303 and headers["Location"] == f"/{page_link(plan, 'r001')}"
    serve.stop()

    url = serve(plan_file, site, answers)  # restarted: r001 was handed out and is not handed out again
    assert http(f"{url}/start")[2]["Location"] == f"/{page_link(plan, 'r002')}"
    assert http(f"{url}/start")[0] == 409, "every rater has started or has been handed a link"
    assert http(f"{url}/start?rater=r000")[0] == 409, "a rater ID opens no page: only its own link does"
    assert ("handed out", "2") in re.findall(r"<th>([^<]+)</th><td>(\d+)</td>", http(f"{url}/")[1])


def test_the_server_serves_the_study_folder_and_nothing_else(study, tmp_path, serve):
    site, plan_file, plan = study
    private = tmp_path / "site"
    shutil.copytree(site, private)
    (tmp_path / "secret.txt").write_text("not for raters")
    url = serve(plan_file, private, private / "answers.sqlite")
    status, page, headers = http(f"{url}/{page_link(plan, 'r000')}")
    assert status == 200 and "study.js" in page and "default-src 'self'" in headers["Content-Security-Policy"]
    assert http(f"{url}/{plan['raters']['r000'][0]['left']}")[0] == 200
    assert http(f"{url}/raters/{plan['pages']['r000']}.js")[0] == 200
    for path in (
        "/images/",
        "/images",
        "/raters/",
        "/raters",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/images/..%2f..%2fsecret.txt",
        "/../plan.json",
        "/plan.json",
        "/answers.sqlite",
        "/answers.sqlite-wal",
        "/answers.sqlite-shm",
        "/nothing.html",
    ):
        assert http(f"{url}{path}")[0] == 404, path
    inside = private / "plan.json"
    shutil.copyfile(plan_file, inside)
    with pytest.raises(ValueError, match="inside the served folder"):
        make_server(inside, private, tmp_path / "other.sqlite")


# --- a killed server ---------------------------------------------------------------------


def start_server_process(plan_file: Path, site: Path, answers: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sr3bench.study.server",
            *("--plan", str(plan_file), "--site", str(site), "--answers", str(answers), "--port", "0"),
        ],
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
    site, plan_file, plan = study
    answers = tmp_path / "answers.sqlite"
    trials = plan["raters"]["r001"]
    given = 7
    process, url = start_server_process(plan_file, site, answers)
    try:
        for trial in trials[:given]:
            choice = "left" if trial["trial"] % 3 else "right"
            assert http(f"{url}/api/answer", page_answer(trial, choice))[1]["stored"] is True
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    stored = read_answers(answers)
    assert stored.to_dict("records") == [
        answer_for(t, "left" if t["trial"] % 3 else "right") for t in trials[:given]
    ], "each answer whole, its plan fields from the full plan"
    assert stored_fingerprint(answers) == plan_fingerprint(plan_file)
    process, url = start_server_process(plan_file, site, answers)
    try:
        assert http(f"{url}/api/state?plan={PAGES['r001']}")[1] == {
            "rater": "r001",
            "next_trial": given,
            "trials": len(trials),
        }
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert process.returncode == 0, process.stderr.read()
    wal = database_files(answers)[1]
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
    """(the page's answers of rater r002, an answers database holding one served answer of r000)."""
    plan_file, plan = study.plan_file, study.plan
    answers = tmp_path / "answers.sqlite"
    connection = bound_store(answers, plan_file)
    record(connection, answer_for(plan["raters"]["r000"][0], "left"))
    connection.close()
    rows = [page_answer(trial, ("left", "right")[trial["trial"] % 2]) for trial in plan["raters"]["r002"]]
    return rows, answers


def test_a_good_csv_is_imported_and_a_second_import_adds_nothing(study, imported, tmp_path):
    plan_file, plan = study.plan_file, study.plan
    rows, answers = imported
    path = write_csv(tmp_path / "answers-r002.csv", rows)
    assert import_csv(path, plan_file, answers) == len(rows)
    stored = read_answers(answers)
    mine = stored[stored["rater"] == "r002"]
    assert mine.to_dict("records") == [
        answer_for(trial, row["choice"], origin="imported") for trial, row in zip(plan["raters"]["r002"], rows)
    ]
    assert import_csv(path, plan_file, answers) == 0, "identical answers stored already are skipped"
    assert len(read_answers(answers)) == len(rows) + 1

    fresh = tmp_path / "fresh.sqlite"
    reordered = write_csv(tmp_path / "reordered.csv", rows, columns=list(reversed(CSV_COLUMNS)))
    assert import_csv(reordered, plan_file, fresh) == len(rows), "any column order"
    assert stored_fingerprint(fresh) == plan_fingerprint(plan_file), "the import ties the database to the plan"


def test_a_refused_file_leaves_the_files_after_it_imported_and_is_named(study, imported, tmp_path, monkeypatch, caplog):
    from types import SimpleNamespace

    from pipeline import cli

    plan_file, plan = study.plan_file, study.plan
    _, answers = imported
    files = {
        rater: write_csv(tmp_path / f"{rater}.csv", [page_answer(t, "left") for t in plan["raters"][rater]])
        for rater in ("r001", "r002")
    }
    bad = rewrite(write_csv(tmp_path / "bad.csv", []), lambda text: text.replace("choice", "chioce"))
    monkeypatch.setattr(cli, "study_paths", lambda args: (plan_file, None, answers, None))
    arguments = SimpleNamespace(csv=[str(files["r001"]), str(bad), str(files["r002"])])
    assert cli.command_study_import(arguments) == 1
    stored = set(read_answers(answers)["rater"])
    assert {"r001", "r002"} <= stored  # the file after the refused one is imported too
    assert f"1 of 3 file(s) refused, nothing of them imported: {bad}" in caplog.text


def rewrite(path: Path, change) -> Path:
    path.write_text(change(path.read_text()))
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("cut mid-row", r"line 12: \d+ fields where the header has 10: the row is cut short"),
        ("cut in the last field", r"line 12: the file ends in the middle of a row \(no line end\)"),
        ("short row", r"line 2: 9 fields where the header has 10: the row is cut short"),
        ("cut in a quoted field", r"line 12: the file ends inside a quoted field"),
        ("unknown image", r"line 4: unknown image 'images/elsewhere\.png' \(left\)"),
        ("another plan", r"line 2: rater r002's trial 0 showed .* another plan of the study"),
        ("unknown rater", r"line 5: unknown rater 'r999'"),
        ("unknown trial", r"line 6: unknown trial 99 of rater r002: the plan has trials 0 to 10"),
        ("duplicate trial", r"line 13: duplicate trial: rater r002's trial 2 is answered on line 4 too"),
        (
            "missing column",
            r"line 1: wrong columns: missing column\(s\) choice.*Expected the header: rater,session,trial,left",
        ),
        ("unknown column", r"line 1: wrong columns: unknown column\(s\) 'rating'"),
        ("a comma at each line's end", r"unknown column\(s\) an empty one \(a comma at the end of each line\?\)"),
        ("semicolons", r"the columns are separated by ';', not ','"),
        ("an older page's CSV", r"line 1: wrong columns: unknown column\(s\) 'kind', 'task', 'image', 'method'"),
        ("header not CSV", r"line 1: the header is not CSV \(',' expected after '\"'\)"),
        ("stored differently", r"line 2: rater r002's trial 0 is stored already with another answer"),
    ],
)
def test_a_bad_csv_is_refused_with_its_line_and_nothing_is_imported(study, imported, tmp_path, case, message):
    plan_file, plan = study.plan_file, study.plan
    rows, answers = imported
    path = tmp_path / "answers.csv"
    if case == "cut mid-row":
        text = write_csv(path, rows).read_text()
        path.write_text(text[: text.rindex("\n", 0, -1) + 40])
    elif case == "cut in the last field":
        path.write_text(write_csv(path, rows).read_text()[:-4])
    elif case == "short row":
        rewrite(write_csv(path, rows), lambda text: text.replace(",test agent\n", "\n", 1))
    elif case == "cut in a quoted field":
        rows[-1]["user_agent"] = "Mozilla/5.0 (X11, Linux)"
        text = write_csv(path, rows).read_text()
        path.write_text(text[: text.rindex("(") + 3])
    elif case == "unknown image":
        rows[2]["left"] = "images/elsewhere.png"
        write_csv(path, rows)
    elif case == "another plan":
        rows[0]["left"], rows[0]["right"] = rows[0]["right"], rows[0]["left"]
        write_csv(path, rows)
    elif case == "unknown rater":
        rows[3]["rater"] = "r999"
        write_csv(path, rows)
    elif case == "unknown trial":
        rows[4]["trial"] = 99
        write_csv(path, rows)
    elif case == "duplicate trial":
        write_csv(path, rows + [dict(rows[2], choice="left")])
    elif case == "missing column":
        write_csv(path, rows, columns=[c for c in CSV_COLUMNS if c != "choice"])
    elif case == "unknown column":
        write_csv(path, [dict(row, rating=3) for row in rows], columns=[*CSV_COLUMNS, "rating"])
    elif case == "an older page's CSV":
        trials = plan["raters"]["r002"]
        older = [{**answer_for(trial, row["choice"]), **row} for trial, row in zip(trials, rows)]
        write_csv(
            path, older, columns=[*CSV_COLUMNS[:3], "kind", "task", "image", "method", "method_side", *CSV_COLUMNS[3:]]
        )
    elif case == "a comma at each line's end":
        rewrite(write_csv(path, rows), lambda text: text.replace("\n", ",\n"))
    elif case == "semicolons":
        rewrite(write_csv(path, rows), lambda text: text.replace(",", ";"))
    elif case == "header not CSV":
        rewrite(write_csv(path, rows), lambda text: text.replace("session", '"session"x', 1))
    elif case == "stored differently":
        connection = open_store(answers)
        record(connection, answer_for(plan["raters"]["r002"][0], "right" if rows[0]["choice"] == "left" else "left"))
        connection.close()
        write_csv(path, rows)
    before = file_state(answers), read_answers(answers)
    with pytest.raises(AnswersImportError, match=message) as refused:
        import_csv(path, plan_file, answers)
    assert str(path) in str(refused.value) and "nothing imported" in str(refused.value)
    assert file_state(answers) == before[0]
    assert read_answers(answers).equals(before[1])


def test_an_answers_file_that_is_not_a_database_is_refused_naming_it(study, tmp_path):
    plan_file, plan = study.plan_file, study.plan
    path = tmp_path / "answers.sqlite"
    path.write_text("these are not answers\n" * 100)
    csv_file = write_csv(tmp_path / "answers.csv", [page_answer(t, "left") for t in plan["raters"]["r001"]])
    with pytest.raises(StoreError, match=rf"{re.escape(str(path))}: not a usable answers database"):
        import_csv(csv_file, plan_file, path)
    with pytest.raises(StoreError, match=rf"{re.escape(str(path))}: not a usable answers database"):
        make_server(plan_file, study.site, path)
    assert path.read_text() == "these are not answers\n" * 100


def test_with_no_start_the_server_hands_out_no_rater(study, tmp_path):
    site, plan_file, plan = study
    server = make_server(plan_file, site, tmp_path / "answers.sqlite", hands_out=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert http(f"{server.url}/start")[:2] == (
            404,
            "This study hands out no links here: open the link you were given.",
        )
        status, about, _ = http(f"{server.url}/")
        assert status == 200 and "/start" not in about and "sr3bench study-links" in about
        assert http(f"{server.url}/{page_link(plan, 'r002')}")[0] == 200, "a rater's own link opens the page"
        assert ("handed out", "0") in re.findall(r"<th>([^<]+)</th><td>(\d+)</td>", about)
    finally:
        server.shutdown()
        server.server_close()


def test_the_server_refuses_a_study_folder_that_is_not_the_build_of_its_plan(study, tmp_path):
    site, plan_file, plan = study
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    page = copy / "raters" / f"{plan['pages']['r001']}.js"
    page.write_text(page.read_text().replace('"display_ms": ', '"display_ms": 1'))  # a build with other settings
    (copy / "raters" / f"{plan['pages']['r002']}.js").unlink()
    with pytest.raises(FileNotFoundError, match=r"the page of rater\(s\) r001, r002 is missing or shows other trials"):
        make_server(plan_file, copy, tmp_path / "answers.sqlite")
    with pytest.raises(FileNotFoundError, match=r"sr3bench study-build --preset test"):
        make_server(plan_file, copy, tmp_path / "answers.sqlite")
    with pytest.raises(FileNotFoundError, match="the study folder is missing"):
        make_server(plan_file, tmp_path / "nowhere", tmp_path / "answers.sqlite")
