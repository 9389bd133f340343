"""A lab's study from the command line, on the small demo run by Snakemake: answers come in
through ``sr3bench study-serve`` (one rater) and ``sr3bench study-import`` (another, from
the static page's CSV); with ``study.answers: collected`` the workflow re-runs only the
study's stages and the report, whose fool rates are those answers', not labelled simulated."""

import csv
import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
from projects import environment, run, start

from sr3bench.study.importing import CSV_COLUMNS
from sr3bench.study.store import read_answers

pytestmark = pytest.mark.slow
COLLECTED = "presets={demo: {study: {answers: collected}}}"


def answer(trial: dict, fooled: bool) -> dict:
    other = "right" if trial["method_side"] == "left" else "left"
    return {
        **{key: trial[key] for key in ("rater", "trial", "left", "right")},
        "session": "lab",
        "choice": trial["method_side"] if fooled else other,
        "reaction_ms": 900.0,
        "display_ms": 3001.5,
        "timestamp": "2026-12-07T10:00:00.000Z",
        "user_agent": "test",
    }


def printed_url(server, log, timeout: float = 60) -> str:
    """The address the server prints when it listens."""
    deadline = time.time() + timeout
    while time.time() < deadline and server.poll() is None:
        found = re.search(r"http://127\.0\.0\.1:\d+", log.read_text())
        if found:
            return found.group(0)
        time.sleep(0.05)
    raise AssertionError(f"study-serve printed no address:\n{log.read_text()}")


@pytest.fixture(scope="module")
def lab(small_demo_project, tmp_path_factory):
    project = tmp_path_factory.mktemp("lab") / "project"
    shutil.copytree(small_demo_project, project, symlinks=True)
    plan = json.loads((project / "studies" / "demo" / "plan.json").read_text())
    return project, plan


def test_a_served_and_an_imported_rater_are_analysed_and_reported_as_human_answers(lab, tmp_path):
    project, plan = lab
    # r000 through the server (the CLI), fooled on every main trial of sr3 only
    log = tmp_path / "serve.log"
    server = start(
        [sys.executable, "-m", "pipeline.cli", "study-serve", "--preset", "demo", "--port", "0"], project, log
    )
    try:
        url = printed_url(server, log)
        for trial in plan["raters"]["r000"]:
            body = json.dumps(answer(trial, trial["method"] == "sr3")).encode()
            headers = {"Content-Type": "application/json", "X-Study-Page": plan["pages"]["r000"]}
            request = urllib.request.Request(f"{url}/api/answer", body, headers)
            assert json.loads(urllib.request.urlopen(request, timeout=10).read())["stored"] is True
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    assert server.returncode == 0, log.read_text()

    # r001 from the static page's CSV, never fooled
    sheet = tmp_path / "answers-r001.csv"
    with open(sheet, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(answer(trial, False) for trial in plan["raters"]["r001"])
    run([sys.executable, "-m", "pipeline.cli", "study-import", "--preset", "demo", str(sheet)], project)
    stored = read_answers(project / "studies" / "demo" / "answers.sqlite")
    assert sorted(set(stored["origin"])) == ["imported", "served"]
    assert len(stored) == len(plan["raters"]["r000"]) + len(plan["raters"]["r001"])

    plan_before = (project / "studies" / "demo" / "plan.json").read_bytes()
    result = run([sys.executable, "-m", "snakemake", "--cores", "8", "--config", COLLECTED], project)
    ran = set(re.findall(r"Rule: (\w+)", result.stdout + result.stderr)) - {"all"}
    # the study section is tracked whole: the study is rebuilt, to the same plan (so the
    # answers stay bound to it), and nothing is trained, sampled or evaluated again
    assert ran == {"study_build", "study_analyse", "report", "front_page"}, ran
    assert (project / "studies" / "demo" / "plan.json").read_bytes() == plan_before

    rates = pd.read_csv(project / "results" / "demo" / "study" / "fool_rates.csv").set_index(["method", "task"])
    task = plan["raters"]["r000"][0]["task"]
    assert rates.loc[("sr3", task), "fooled"] == sum(
        t["kind"] == "main" and t["method"] == "sr3" for t in plan["raters"]["r000"]
    )
    assert rates["raters"].max() == 1  # r000 and r001 did different tasks
    summary = json.loads((project / "results" / "demo" / "study" / "summary.json").read_text())
    assert summary["simulated"] is False and summary["raters_without_answers"] == len(plan["raters"]) - 2
    html = (project / "reports" / "demo" / "index.html").read_text()
    assert "SIMULATED" not in html and "From answers of 2 raters" in html


def test_a_live_study_keeps_its_page_when_a_changed_setting_is_refused_and_links_name_each_raters_page(lab, tmp_path):
    """The engines delete a job's outputs before they run it: the study folder is not one, so
    a build refused for the answers already given leaves the raters' pages served."""
    source, plan = lab
    project = tmp_path / "project"
    shutil.copytree(source, project, symlinks=True)
    sheet = tmp_path / "answers-r001.csv"
    with open(sheet, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(answer(trial, False) for trial in plan["raters"]["r001"][:2])
    run([sys.executable, "-m", "pipeline.cli", "study-import", "--preset", "demo", str(sheet)], project)
    site = project / "studies" / "demo" / "site"
    served = {path: path.read_bytes() for path in site.rglob("*") if path.is_file()}

    changed = "presets={demo: {study: {answers: collected, display_ms: 2000}}}"
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--config", changed],
        cwd=project,
        env=environment(project),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0 and "holds answers given under the study as it was built before" in result.stderr
    assert {path: path.read_bytes() for path in site.rglob("*") if path.is_file()} == served, "the page is intact"

    links = run(
        [sys.executable, "-m", "pipeline.cli", "study-links", "--preset", "demo", "--base-url", "https://lab.test/s/"],
        source,
    ).stdout.splitlines()
    assert links[0] == "rater,link" and len(links) == len(plan["raters"]) + 1
    for line, (rater, page) in zip(links[1:], plan["pages"].items()):
        assert (
            line == f"{rater},https://lab.test/s/index.html?plan={page}" and (site / "raters" / f"{page}.js").is_file()
        )
