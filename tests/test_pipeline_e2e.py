"""End-to-end: a small version of the demo preset through the real Snakemake pipeline, in a
temporary copy of the project (the full demo is `make run`; DVC runs the tiny preset in
tests/test_engine_rerun.py)."""
import sys

import pandas as pd
import pytest

from projects import make_project, run, small_demo_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def snakemake_project(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("snakemake"), small_demo_params())
    run([sys.executable, "-m", "snakemake", "--cores", "8"], project)
    return project


def test_trained_methods_beat_bicubic(snakemake_project):
    metrics = pd.read_csv(snakemake_project / "reports" / "demo" / "metrics.csv").set_index("method")
    assert list(metrics.columns[:4]) == ["n_images", "psnr", "ssim", "consistency"]
    assert metrics.loc["regression", "psnr"] > metrics.loc["bicubic", "psnr"] + 0.2
    assert metrics.loc["sr3", "lpips"] < metrics.loc["bicubic", "lpips"] - 0.03  # perceptually closer
    assert metrics[["fid", "kid", "lpips"]].notna().all().all()
    assert (metrics["n_images"] == metrics.loc["bicubic", "n_images"]).all()


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
