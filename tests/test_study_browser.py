"""The study page in headless Chromium (Selenium, Debian's chromedriver): scripted raters
play whole sessions by key and by click, served (each answer stored by the server) and
static (answers in localStorage, then a CSV that imports into the same rows). The page
knows only the client plan; the rows it leads to carry the full plan's fields, and its
practice feedback names the side the full plan has the photograph on. A reload resumes at
the next trial; the pair is hidden after display_ms, measured within 50 ms; no request
leaves the study's own server. A task-1 trial is left as test-artifacts/study-trial.png."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
import urllib.parse
from pathlib import Path

import pytest
from browser import artifacts_dir
from study_fixtures import make_study

from sr3bench.study.importing import CSV_COLUMNS, import_csv
from sr3bench.study.plan import page_link
from sr3bench.study.server import make_server
from sr3bench.study.store import read_answers

DISPLAY_MS = 400
TOLERANCE_MS = 50
PLAN_FIELDS = ("rater", "trial", "kind", "task", "image", "method", "method_side")
INSTALL = "apt-get install -y chromium chromium-driver; .ci/run installs them"

# Test-only: records, at each change of the page's state, which of the pair's boxes show an image.
WATCH = """
window.__seen = [];
new MutationObserver(() => {
  const shown = [...document.querySelectorAll('#pair img')].filter(i => i.offsetWidth > 0 && i.naturalWidth > 0);
  const box = document.getElementById('left-box').getBoundingClientRect();
  window.__seen.push({state: document.body.dataset.state, trial: Number(document.getElementById('trial').dataset.trial),
                      shown: shown.map(i => i.parentElement.id), box: [box.width, box.height]});
}).observe(document.body, {attributes: true, attributeFilter: ['data-state']});
"""
# Test-only: answers with a key in the very frame the pair appears (then continues from the feedback).
ANSWER_AT_ONSET = """
const [key, done] = arguments;
new MutationObserver((records, observer) => {
  if (document.body.dataset.state !== 'pair') return;
  observer.disconnect();
  document.dispatchEvent(new KeyboardEvent('keydown', {key: key, bubbles: true}));
  done(true);
}).observe(document.body, {attributes: true, attributeFilter: ['data-state']});
document.getElementById('continue').click();
"""


def tools():
    """(chromium, chromedriver, selenium's webdriver module), or a skip (a failure when required)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    try:
        from selenium import webdriver
    except ImportError:
        webdriver = None
    missing = [
        name
        for name, found in (("chromium", chromium), ("chromedriver", chromedriver), ("selenium", webdriver))
        if not found
    ]
    if missing:
        reason = f"no {', '.join(missing)} on this machine ({INSTALL}; pip install selenium)"
        if os.environ.get("SR3BENCH_REQUIRE_BROWSER"):
            pytest.fail(f"SR3BENCH_REQUIRE_BROWSER is set but there is {reason}")
        pytest.skip(reason)
    return chromium, chromedriver, webdriver


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    chromium, chromedriver, webdriver = tools()
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,800",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    browser = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Three raters (tasks 1, 2, 1) of 1 practice + 4 main + 1 vigilance trials."""
    return make_study(tmp_path_factory.mktemp("study"), raters=3, images_per_rater=4, display_ms=DISPLAY_MS)


@pytest.fixture
def page(driver):
    """The driver, its network log emptied of earlier tests' requests."""
    driver.get_log("performance")
    return driver


def serve_in_thread(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def served(study, tmp_path):
    """(base URL, answers database) of the study served by make_server."""
    server = serve_in_thread(make_server(study.plan_file, study.site, tmp_path / "answers.sqlite"))
    yield server.url, tmp_path / "answers.sqlite"
    server.shutdown()
    server.server_close()


@pytest.fixture
def hosted(study):
    """The study folder on a plain web server (as a lab would host the static page)."""
    handler = functools.partial(QuietFiles, directory=str(study.site))
    server = serve_in_thread(http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler))
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


# --- a scripted rater --------------------------------------------------------------------


def state(driver) -> tuple[str, int | None]:
    found = driver.execute_script(
        "return [document.body.dataset.state, document.getElementById('trial').dataset.trial || null]"
    )
    return found[0], None if found[1] is None else int(found[1])


def wait_for(driver, *states: str, trial: int | None = None, timeout: float = 15):
    from selenium.webdriver.support.ui import WebDriverWait

    def reached(_):
        now, on_screen = state(driver)
        return now in states and (trial is None or on_screen == trial)

    WebDriverWait(driver, timeout, poll_frequency=0.02).until(reached, f"the page never reached {states} ({trial=})")


def press(driver, key: str):
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def give(driver, choice: str, way: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    if way == "click":
        driver.find_element(By.ID, f"{choice}-box").click()
    elif way == "arrow":
        press(driver, Keys.ARROW_LEFT if choice == "left" else Keys.ARROW_RIGHT)
    else:
        press(driver, "f" if choice == "left" else "j")


def start(driver, way: str):
    """Leave the instructions: by space, Enter or the Start button (the watcher installed first)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    wait_for(driver, "intro")
    driver.execute_script(WATCH)
    if way == "click":
        driver.find_element(By.ID, "start").click()
    else:
        press(driver, Keys.SPACE if way == "space" else Keys.ENTER)


def answer(driver, trial: dict, choice: str, way: str, last: bool = False, go_on: bool = True):
    """Answer the trial once its pair is hidden; for a practice trial check the feedback and
    (``go_on``) continue."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    wait_for(driver, "choose", trial=trial["trial"])
    give(driver, choice, way)
    if trial["kind"] == "practice":
        wait_for(driver, "feedback")
        photograph = "right" if trial["method_side"] == "left" else "left"  # from the full plan
        verdict = "Correct" if choice == photograph else "Not quite"
        assert driver.find_element(By.ID, "feedback-text").text == f"{verdict}: the photograph was on the {photograph}."
        if not go_on:
            return
        if way == "click":
            driver.find_element(By.ID, "continue").click()
        else:
            press(driver, Keys.SPACE)
    elif last:
        wait_for(driver, "done")


def seen(driver) -> list[dict]:
    return driver.execute_script("return window.__seen || []")


def requested(driver) -> list[str]:
    """Every URL the pages requested since the last call (Chromium's own start tab, a
    chrome:// page with chrome:// and chrome-untrusted:// frames and resources, left out)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            document = urllib.parse.urlsplit(message["params"].get("documentURL", "")).scheme
            if document not in ("chrome", "chrome-untrusted"):
                urls.append(message["params"]["request"]["url"])
    return urls


def check_display(records: list[dict], task: int, answered_at_onset: tuple[int, ...] = ()):
    """Each pair painted with both images (and the input between them in task 1), then, when
    no answer came first, every image gone with the blank boxes keeping their size."""
    expected = ["left-box", "lr-box", "right-box"] if task == 1 else ["left-box", "right-box"]
    for index, shown in enumerate(records):
        if shown["state"] != "pair":
            continue
        assert shown["shown"] == expected and shown["box"][0] > 0, shown
        if shown["trial"] not in answered_at_onset:
            gone = records[index + 1]
            assert gone["state"] == "choose" and gone["trial"] == shown["trial"], records[index : index + 2]
            assert gone["shown"] == [] and gone["box"] == shown["box"], gone


def answered_rows(answers, rater: str) -> list[dict]:
    table = read_answers(answers)
    return table[table["rater"] == rater].to_dict("records")


def check_rows(rows: list[dict], trials: list[dict], choices: list[str], origin: str):
    assert [row["trial"] for row in rows] == [trial["trial"] for trial in trials], "every trial once, in order"
    for row, trial, choice in zip(rows, trials, choices):
        assert {k: row[k] for k in PLAN_FIELDS} == {k: trial[k] for k in PLAN_FIELDS}
        assert row["choice"] == choice and row["origin"] == origin and row["reaction_ms"] > 0
        assert "HeadlessChrome" in row["user_agent"] and row["timestamp"].endswith("Z")


# --- the sessions ------------------------------------------------------------------------


def test_a_served_session_by_keys_and_clicks_resumes_after_a_reload(page, study, served):
    url, answers = served
    trials = study.plan["raters"]["r000"]
    choices = ["left", "right", "right", "left", "left", "right"][: len(trials)]
    ways = ["arrow", "click", "letter", "arrow", "click", "letter"]
    page.get(f"{url}/{page_link(study.plan, 'r000')}")
    start(page, "space")
    for trial, choice, way in zip(trials[:3], choices, ways):
        answer(page, trial, choice, way)
    wait_for(page, "choose", trial=3)
    records = seen(page)
    page.refresh()  # trial 3 on screen, not answered: it comes again
    wait_for(page, "intro")
    assert page.find_element("id", "intro-resume").is_displayed(), "the page says it resumes"
    start(page, "click")
    wait_for(page, "choose", trial=3)
    for index in range(3, len(trials)):
        answer(page, trials[index], choices[index], ways[index], last=index == len(trials) - 1)
    records += seen(page)

    rows = answered_rows(answers, "r000")
    check_rows(rows, trials, choices, "served")
    assert all(abs(row["display_ms"] - DISPLAY_MS) <= TOLERANCE_MS for row in rows), [r["display_ms"] for r in rows]
    assert len({row["session"] for row in rows[:3]}) == 1 and rows[3]["session"] != rows[2]["session"]
    check_display(records, task=1)
    assert [r["trial"] for r in records if r["state"] == "pair"] == [0, 1, 2, 3, 3, 4, 5]
    elsewhere = [u for u in requested(page) if not u.startswith(f"{url}/") and not u.startswith("data:")]
    assert not elsewhere, elsewhere


def test_start_hands_out_raters_and_an_answer_at_the_onset_ends_the_display(page, study, served):
    url, answers = served
    page.get(f"{url}/")
    assert page.current_url == f"{url}/" and "planned" in page.find_element("id", "raters").text
    page.get(f"{url}/start")
    assert page.current_url == f"{url}/{page_link(study.plan, 'r000')}", "the information page handed out no rater"
    page.get(f"{url}/start")
    assert page.current_url == f"{url}/{page_link(study.plan, 'r001')}"
    trials = study.plan["raters"]["r001"]
    choices = ["right", "right", "left", "left", "right", "left"][: len(trials)]
    start(page, "enter")
    answer(page, trials[0], choices[0], "click", go_on=False)  # practice; the script below continues from its feedback
    assert page.execute_async_script(ANSWER_AT_ONSET, "j" if choices[1] == "right" else "f")
    for index in range(2, len(trials)):
        answer(page, trials[index], choices[index], ("click", "letter")[index % 2], last=index == len(trials) - 1)

    rows = answered_rows(answers, "r001")
    check_rows(rows, trials, choices, "served")
    early = rows[1]  # its display_ms is shorter than the study's setting: what the rater saw
    assert early["reaction_ms"] <= early["display_ms"] < 100, "the pair went at the first frame after the answer"
    assert all(abs(row["display_ms"] - DISPLAY_MS) <= TOLERANCE_MS for row in rows[:1] + rows[2:])
    check_display(seen(page), task=2, answered_at_onset=(1,))
    elsewhere = [u for u in requested(page) if not u.startswith(f"{url}/") and not u.startswith("data:")]
    assert not elsewhere, elsewhere


def test_a_link_without_a_raters_plan_says_so_and_shows_no_trial(page, served):
    url, _ = served
    for link, message in (
        ("index.html?rater=r000", "This link names no study plan"),
        (f"index.html?plan={'0' * 32}", "This link's study plan was not found"),
    ):
        page.get(f"{url}/{link}")
        wait_for(page, "error")
        assert message in page.find_element("id", "error-message").text, link


def test_an_answer_given_while_the_server_is_down_waits_and_is_stored_once(page, study, tmp_path):
    site, plan_file, plan = study
    answers = tmp_path / "answers.sqlite"
    server = serve_in_thread(make_server(plan_file, site, answers))
    port = server.server_address[1]
    trials = plan["raters"]["r002"]
    choices = ["right", "left", "left", "right", "right", "left"][: len(trials)]
    page.get(f"{server.url}/{page_link(plan, 'r002')}")
    start(page, "space")
    answer(page, trials[0], choices[0], "letter")
    wait_for(page, "choose", trial=1)
    server.shutdown()
    server.server_close()
    give(page, choices[1], "arrow")
    wait_for(page, "waiting")
    assert page.find_element("id", "waiting").is_displayed() and state(page)[1] == 1, "the trial waits, on screen"
    # restarted: the page's retry gets through
    server = serve_in_thread(make_server(plan_file, site, answers, port=port))
    try:
        for index in range(2, len(trials)):
            answer(page, trials[index], choices[index], "click", last=index == len(trials) - 1)
    finally:
        server.shutdown()
        server.server_close()
    rows = answered_rows(answers, "r002")
    check_rows(rows, trials, choices, "served")
    assert len({row["session"] for row in rows}) == 1, "the same page session throughout"


def test_the_static_page_keeps_answers_through_a_reload_and_its_csv_imports(page, study, hosted, tmp_path):
    site, plan_file, plan = study
    trials = plan["raters"]["r002"]
    choices = ["left", "left", "right", "right", "left", "right"][: len(trials)]
    ways = ["letter", "click", "arrow", "click", "letter", "arrow"]
    page.get(f"{hosted}/{page_link(plan, 'r002')}&static=1")
    start(page, "space")
    for index in range(2):
        answer(page, trials[index], choices[index], ways[index])
    wait_for(page, "choose", trial=2)
    page.refresh()
    start(page, "enter")
    for index in range(2, len(trials)):
        answer(page, trials[index], choices[index], ways[index], last=index == len(trials) - 1)
    check_display(seen(page), task=1)

    link = page.find_element("id", "download")
    assert link.is_displayed() and link.get_attribute("download") == "answers-r002.csv"
    text = urllib.parse.unquote(link.get_attribute("href").removeprefix("data:text/csv;charset=utf-8,"))
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS) and len(text.splitlines()) == len(trials) + 1
    assert page.find_element("id", "code").text.startswith("r002-")
    urls = requested(page)
    assert urls and all(u.startswith(f"{hosted}/") or u.startswith("data:") for u in urls), urls
    assert not any("/api/" in u for u in urls), "the static page never calls the server's API"

    csv_file = tmp_path / "answers-r002.csv"
    csv_file.write_text(text)
    answers = tmp_path / "answers.sqlite"
    assert import_csv(csv_file, plan_file, answers) == len(trials)
    rows = answered_rows(answers, "r002")
    check_rows(rows, trials, choices, "imported")
    assert all(abs(row["display_ms"] - DISPLAY_MS) <= TOLERANCE_MS for row in rows)


def test_a_task_1_trial_as_a_rater_sees_it(page, tmp_path):
    """From file:// (no server at all), with the paper's 3 s display: screenshot of the pair."""
    site, _, plan = make_study(tmp_path, raters=1, tasks=(1,), practice_trials=0, display_ms=3000, size=256)
    page.get(f"{(site / 'index.html').as_uri()}?plan={plan['pages']['r000']}")
    start(page, "space")
    wait_for(page, "pair", trial=0)
    shot = artifacts_dir() / "study-trial.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.save_screenshot(str(shot))
    assert state(page)[0] == "pair", "the screenshot shows the pair"
    assert [img.get_attribute("naturalWidth") for img in page.find_elements("css selector", "#pair img")] == [
        "256",
        "64",
        "256",
    ]
    assert shot.stat().st_size > 20_000
