"""End-to-end: a small version of the demo preset through the real Snakemake pipeline, in a
temporary copy of the project (the full demo is `make run`; DVC runs the tiny preset in
tests/test_engine_rerun.py)."""
import sys

import pandas as pd
import pytest

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


def test_the_tune_stage_chose_a_schedule_on_validation_and_the_report_shows_it(snakemake_project):
    tune = pd.read_csv(snakemake_project / "results" / "demo" / "tune" / "sr3.csv")
    assert len(tune) == 1 + 2 * 2 and tune["reference"].iloc[0] and tune["steps"].iloc[0] == small_demo_params()["presets"]["demo"]["diffusion"]["training_schedule"]["steps"]
    metrics = pd.read_csv(snakemake_project / "reports" / "demo" / "metrics.csv").set_index("method")
    assert metrics.loc["sr3@tuned10", ["psnr", "lpips"]].notna().all()
    html = (snakemake_project / "reports" / "demo" / "index.html").read_text()
    assert "Sampling: schedule search on the validation split" in html and "tuning.png" in html


def test_a_changed_tune_grid_retunes_and_resamples_only_the_tuned_variant(snakemake_project):
    plan = run([sys.executable, "-m", "snakemake", "--cores", "8", "--dry-run", "--printshellcmds", "--config", "presets={demo: {tune: {steps: [5, 10, 20]}}}"], snakemake_project)
    commands = [line[line.index("sr3bench "):] for line in (plan.stdout + plan.stderr).splitlines() if line.startswith("Shell command: sr3bench ")]
    jobs = {command.split(" --threads")[0] for command in commands}
    assert jobs == {
        "sr3bench tune --preset demo --method sr3",
        "sr3bench sample --preset demo --method sr3@tuned10",
        "sr3bench evaluate --preset demo --method sr3@tuned10",
        "sr3bench report --preset demo",
    }, jobs
