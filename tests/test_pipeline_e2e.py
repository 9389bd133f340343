"""End-to-end: a small version of the demo preset through the real Snakemake pipeline, in a
temporary copy of the project (the full demo is `make run`; DVC runs the tiny preset in
tests/test_engine_rerun.py)."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from projects import run, small_demo_params

pytestmark = pytest.mark.slow


@pytest.fixture
def snakemake_project(small_demo_project):
    return small_demo_project


def test_the_trained_regression_beats_bicubic_and_sr3_learns(snakemake_project):
    metrics = pd.read_csv(snakemake_project / "reports" / "demo" / "metrics.csv").set_index("method")
    assert list(metrics.columns[:4]) == ["n_images", "psnr", "ssim", "consistency"]
    assert metrics.loc["regression", "psnr"] > metrics.loc["bicubic", "psnr"] + 0.15  # measured: +0.31 dB
    assert metrics.loc["regression", "consistency"] < metrics.loc["bicubic", "consistency"]
    assert metrics[["fid", "kid", "lpips"]].notna().all().all()
    assert (metrics["n_images"] == metrics.loc["bicubic", "n_images"]).all()
    loss = pd.read_csv(snakemake_project / "models" / "demo" / "sr3" / "loss.csv")["loss"]
    assert loss.iloc[-1] < 0.7 * loss.iloc[0]  # SR3's 100 steps: too few for good samples, enough to learn


def test_report_and_images_are_written(snakemake_project):
    report = snakemake_project / "reports" / "demo"
    html = (report / "index.html").read_text()
    assert "grid.png" in html and "loss.png" in html and "Protocol" in html
    per_image = pd.read_csv(report / "per_image.csv")
    names = sorted(p.name for p in (snakemake_project / "data" / "demo" / "test" / "hr").iterdir())
    for method in ("bicubic", "regression", "sr3"):
        samples = (snakemake_project / "samples" / "demo" / method).glob("*.png")
        assert sorted(p.name for p in samples) == names
        assert len(per_image[per_image.method == method]) == len(names)


def test_second_snakemake_run_does_nothing(snakemake_project):
    result = run([sys.executable, "-m", "snakemake", "--cores", "8"], snakemake_project)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_a_stage_run_by_hand_refuses_a_model_snakemake_trained_under_other_settings(snakemake_project, monkeypatch):
    """Snakemake's jobs stamp their outputs: after a change of the regression's training
    settings, ``sr3bench sample`` run by hand refused the model trained under the old ones
    (it had sampled it and recorded the new settings); with the settings unchanged it
    accepts every input."""
    import copy

    from pipeline import config
    from pipeline.settings_stamps import stale_inputs
    from pipeline.stage_table import BY_NAME

    monkeypatch.chdir(snakemake_project)
    monkeypatch.delenv("DVC_STAGE", raising=False)
    _, _, params = config.load(snakemake_project / "params.yaml", "demo")
    for method in ("bicubic", "regression", "sr3"):
        assert stale_inputs(params, BY_NAME["sample"], "demo", method) == []
        assert stale_inputs(params, BY_NAME["evaluate"], "demo", method) == []
    changed = copy.deepcopy(params)
    changed["presets"]["demo"]["training"]["regression"]["steps"] += 1
    [problem] = stale_inputs(changed, BY_NAME["sample"], "demo", "regression")
    assert problem.startswith("models/demo/regression/") and "presets.demo.training.regression" in problem, problem
    assert "sr3bench train --preset demo --method regression" in problem
    assert stale_inputs(changed, BY_NAME["sample"], "demo", "sr3") == []  # SR3's model is current


def test_the_tune_stage_chose_a_schedule_on_validation_and_the_report_shows_it(snakemake_project):
    tune = pd.read_csv(snakemake_project / "results" / "demo" / "tune" / "sr3.csv")
    assert (
        len(tune) == 1 + 2 * 2
        and tune["reference"].iloc[0]
        and tune["steps"].iloc[0] == small_demo_params()["presets"]["demo"]["diffusion"]["training_schedule"]["steps"]
    )
    metrics = pd.read_csv(snakemake_project / "reports" / "demo" / "metrics.csv").set_index("method")
    assert metrics.loc["sr3@tuned10", ["psnr", "lpips"]].notna().all()
    html = (snakemake_project / "reports" / "demo" / "index.html").read_text()
    assert "Sampling: schedule search on the validation split" in html and "tuning.png" in html


def planned_jobs(project, config: str) -> set[str]:
    """The commands Snakemake would run with ``--config config`` (a dry run), without threads."""
    plan = run(
        [sys.executable, "-m", "snakemake", "--cores", "8", "--dry-run", "--printshellcmds", "--config", config],
        project,
    )
    commands = [
        line[line.index("sr3bench ") :]
        for line in (plan.stdout + plan.stderr).splitlines()
        if line.startswith("Shell command: sr3bench ")
    ]
    return {command.split(" --threads")[0] for command in commands}


def test_a_changed_tune_grid_retunes_and_resamples_only_the_tuned_variant(snakemake_project):
    jobs = planned_jobs(snakemake_project, "presets={demo: {tune: {steps: [5, 10, 20]}}}")
    assert jobs == {
        "sr3bench tune --preset demo --method sr3",
        "sr3bench sample --preset demo --method sr3@tuned10",
        "sr3bench evaluate --preset demo --method sr3@tuned10",
        "sr3bench report --preset demo",
        "sr3bench front-page",
    }, jobs


def test_a_changed_inference_schedule_resamples_the_diffusion_methods_only(snakemake_project):
    """Bicubic and regression never read diffusion.*: their samples and scores stay."""
    jobs = planned_jobs(
        snakemake_project,
        "presets={demo: {diffusion: {inference_schedule: {steps: 20, beta_start: 1.0e-4, beta_end: 0.5}}}}",
    )
    assert "sr3bench sample --preset demo --method sr3" in jobs and "sr3bench report --preset demo" in jobs
    assert not [job for job in jobs if "--method bicubic" in job or "--method regression" in job], jobs


def test_the_report_shows_diversity_provenance_and_the_front_page_lists_it(snakemake_project):
    wanted = small_demo_params()["presets"]["demo"]["diversity"]
    samples = sorted((snakemake_project / "samples" / "demo" / "diversity" / "sr3").glob("*.png"))
    assert len(samples) == wanted["images"] * wanted["seeds"]
    first = [np.asarray(Image.open(path), np.int16) for path in samples[: wanted["seeds"]]]
    assert all(np.abs(first[0] - other).mean() > 0.5 for other in first[1:])  # other seeds, other details
    report = snakemake_project / "reports" / "demo"
    record = json.loads((report / "provenance.json").read_text())
    stages = {row["stage"] for row in record["stages"]}
    assert {"prepare", "train_sr3", "tune_sr3", "sample_sr3", "diversity_sr3", "evaluate_sr3"} <= stages
    assert record["datasets"]["test"]["images"] == len(list((snakemake_project / "data/demo/test/hr").iterdir()))
    assert record["packages"]["torch"] != "not installed" and record["git"]["commit"]
    combined = pd.read_csv(snakemake_project / "reports" / "all_presets.csv")
    assert set(combined["preset"]) == {"demo"} and len(combined) == len(
        small_demo_params()["presets"]["demo"]["methods"]
    )
    front = (snakemake_project / "reports" / "index.html").read_text()
    assert "href='demo/index.html'" in front
    assert record["pooled_test_sets"] == {} and "These means pool" not in front  # one set, a group per photograph
    assert record["titles"]["sr3"] == "SR3" and "<td>SR3</td>" in front  # titles, not ids
    # which model file made the numbers, and how it was trained (not only params.yaml's settings now)
    from sr3bench.core.checksums import file_sha256

    assert set(record["models"]) == {"SR3", "Regression"}
    sr3 = record["models"]["SR3"]
    assert sr3["sha256"] == file_sha256(snakemake_project / "models" / "demo" / "sr3" / "model.pt")
    assert sr3["training"]["precision"] == "fp32" and sr3["training"]["device"] == "cpu"
    page = (report / "index.html").read_text()
    assert f"SR3: <code>models/demo/sr3/model.pt</code>, SHA-256 <code>{sr3['sha256'][:16]}</code>" in page


def test_logs_hold_progress_lines_without_carriage_returns_and_every_stage_is_timed(snakemake_project):
    logs = snakemake_project / "logs" / "demo"
    for log in logs.glob("*.log"):
        assert "\r" not in log.read_text(), log
    steps = small_demo_params()["presets"]["demo"]["training"]["sr3"]["steps"]
    assert f"train: {steps}/{steps} (100%)" in (logs / "train_sr3.log").read_text()
    timed = {path.name.removesuffix(".benchmark.tsv") for path in logs.glob("*.benchmark.tsv")}
    assert {
        "prepare",
        "train_sr3",
        "train_regression",
        "tune_sr3",
        "diversity_sr3",
        "sample_bicubic",
        "evaluate_sr3",
        "report",
    } <= timed


def test_snakemake_report_holds_the_tables_and_figures_with_captions(snakemake_project, tmp_path):
    run([sys.executable, "-m", "snakemake", "--report", str(tmp_path / "report.html")], snakemake_project)
    page = (tmp_path / "report.html").read_text()
    for caption in (
        "bootstrap intervals",
        "gradient energy",
        "several seeds of the same input",
        "against network evaluations",
    ):
        assert caption in page, caption
    for category in ("Results", "Images", "Training", "Sampling"):
        assert category in page


def test_the_demo_builds_its_study_and_the_report_labels_the_simulated_fool_rates(snakemake_project):
    study = snakemake_project / "studies" / "demo"
    plan = json.loads((study / "plan.json").read_text())
    assert plan["study"]["methods"] == ["bicubic", "regression", "sr3"]
    assert (study / "simulated.sqlite").is_file() and not (study / "answers.sqlite").exists()
    fool_rates = pd.read_csv(snakemake_project / "results" / "demo" / "study" / "fool_rates.csv")
    assert set(fool_rates["method"]) == {"bicubic", "regression", "sr3"}
    assert ((fool_rates["wilson_low"] <= fool_rates["rate"]) & (fool_rates["rate"] <= fool_rates["wilson_high"])).all()
    assert json.loads((snakemake_project / "results" / "demo" / "study" / "summary.json").read_text())["simulated"]
    html = (snakemake_project / "reports" / "demo" / "index.html").read_text()
    assert "Human study: fool rates (SIMULATED)" in html and "Simulated raters, not people." in html
    assert "study_images.png" in html
    with Image.open(snakemake_project / "reports" / "demo" / "study_images.png") as figure:
        assert figure.width > 400
