"""End-to-end: the real Snakemake and DVC pipelines on a reduced demo config, in a temporary copy."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.slow
PROJECT_FILES = ["Snakefile", "dvc.yaml", "profiles", "pipeline", "sr3", "baselines", "metrics", "reports"]


def reduced_params(sr3_steps: int, regression_steps: int, inference_steps: int | None = None) -> dict:
    """The demo preset with shorter trainings (the committed demo is sized for a report)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    demo = params["presets"]["demo"]
    demo["training"]["sr3"]["steps"] = sr3_steps
    demo["training"]["regression"]["steps"] = regression_steps
    if inference_steps:
        demo["diffusion"]["inference_schedule"] = {"steps": inference_steps, "beta_start": 1e-3, "beta_end": 0.5}
    return params


def make_project(root: Path, params: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "demo", "*.egg-info"))
        else:
            shutil.copy(source, root / name)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.setdefault("SR3BENCH_WEIGHTS", str(REPO / "weights"))  # metric weights, as `make weights` leaves them
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


@pytest.fixture(scope="module")
def snakemake_project(tmp_path_factory):
    """The committed demo preset, unchanged: SR3's margin over bicubic in PSNR is small
    (about 0.1 dB after its 2500 CPU training steps), so it is tested as users run it."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    project = make_project(tmp_path_factory.mktemp("snakemake"), params)
    run([sys.executable, "-m", "snakemake", "--cores", "8"], project)
    return project


def test_learned_methods_beat_bicubic(snakemake_project):
    metrics = pd.read_csv(snakemake_project / "reports" / "demo" / "metrics.csv").set_index("method")
    assert list(metrics.columns[:4]) == ["n_images", "psnr", "ssim", "consistency"]
    assert metrics.loc["regression", "psnr"] > metrics.loc["bicubic", "psnr"] + 0.3
    assert metrics.loc["sr3", "psnr"] > metrics.loc["bicubic", "psnr"]
    assert metrics.loc["sr3", "lpips"] < metrics.loc["bicubic", "lpips"] - 0.05  # perceptually much closer
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


def test_dvc_repro_runs_the_pipeline_and_then_does_nothing(tmp_path):
    project = make_project(tmp_path / "dvc", reduced_params(20, 20, inference_steps=5))
    run(["git", "init", "-q"], project)
    run([sys.executable, "-m", "dvc", "init", "-q"], project)
    run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], project)
    run([sys.executable, "-m", "dvc", "repro"], project)
    metrics = pd.read_csv(project / "reports" / "demo" / "metrics.csv")
    assert sorted(metrics["method"]) == ["bicubic", "regression", "sr3"]
    again = run([sys.executable, "-m", "dvc", "repro"], project)
    assert "up to date" in again.stdout
