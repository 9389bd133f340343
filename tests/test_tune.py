"""The tune stage: a grid of samplers and schedules sampled on the validation split, the
reference row, the choice under the preset's criterion, and the sample stage taking it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO
from pipeline.tune_stage import choose, grid
from projects import tiny_params

TUNE = {"samplers": ["ddim", "dpmpp_2m"], "steps": [8, 4], "schedules": [{"shape": "cosine"}, {"shape": "linear", "beta_start": 1e-3, "beta_end": 0.8}], "images": 2, "reference_images": 1, "select": {"metric": "lpips", "max_consistency_ratio": 1.1}}


def table(rows):
    columns = ["sampler", "steps", "reference", "psnr", "ssim", "lpips", "consistency_reference_images"]
    return pd.DataFrame([dict(zip(columns, row)) for row in rows])


def test_the_grid_is_every_sampler_schedule_and_step_count():
    points = grid(TUNE)
    assert len(points) == 2 * 2 * 2
    assert points[0] == {"sampler": "ddim", "inference_schedule": {"steps": 4, "shape": "cosine"}}
    assert points[-1]["inference_schedule"] == {"steps": 8, "shape": "linear", "beta_start": 1e-3, "beta_end": 0.8}


def test_the_choice_is_the_best_metric_within_the_step_budget_and_the_consistency_bound():
    rows = table([
        ("ancestral", 2000, True, 30.0, 0.8, 0.20, 10.0),
        ("ddim", 5, False, 31.0, 0.8, 0.10, 12.0),  # best LPIPS, but 1.2x the reference's consistency
        ("ddim", 10, False, 30.5, 0.8, 0.15, 10.5),
        ("dpmpp_2m", 10, False, 30.0, 0.8, 0.18, 9.0),
        ("ddim", 50, False, 30.0, 0.8, 0.12, 10.0),  # best allowed, but above a budget of 25
    ])
    select = {"metric": "lpips", "max_consistency_ratio": 1.1}
    assert choose(rows, 25, select)[0].name == 2 and choose(rows, 25, select)[1]
    assert choose(rows, 100, select)[0].name == 4
    assert choose(rows, 25, {"metric": "psnr", "max_consistency_ratio": 1.1})[0].name == 2
    assert choose(rows, 25, {"metric": "lpips", "max_consistency_ratio": 1.5})[0].name == 1
    row, met = choose(rows, 25, {"metric": "lpips", "max_consistency_ratio": 0.5})  # nothing allowed
    assert (row.name, met) == (3, False)  # the most consistent, flagged
    with pytest.raises(ValueError, match="no point of at most 4 steps"):
        choose(rows, 4, select)


def cli(project: Path, *arguments) -> str:
    command = [str(Path(sys.executable).parent / "sr3bench"), *arguments, "--threads", "1"]
    env = dict(os.environ, SR3BENCH_WEIGHTS=os.environ.get("SR3BENCH_WEIGHTS", str(REPO / "weights")))  # as `make weights` leaves them
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


@pytest.fixture(scope="module")
def tuned_project(tmp_path_factory):
    """The tiny preset with a validation image, a 200-step training schedule (the
    reference's length), a tuned variant and an explicit copy of whatever it chooses."""
    project = tmp_path_factory.mktemp("tune")
    params = tiny_params()
    demo = params["presets"]["demo"]
    demo["dataset"].update(train_images=["astronaut"], val_images=["ihc"])
    demo["diffusion"]["training_schedule"] = {"steps": 200, "beta_start": 1e-4, "beta_end": 0.1}
    demo["tune"] = TUNE
    demo["variants"] = {"tuned6": {"tuned": {"max_steps": 6}}}
    demo["methods"] = ["sr3", "sr3@tuned6"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    cli(project, "prepare")
    cli(project, "train", "--method", "sr3")
    cli(project, "tune", "--method", "sr3", "--log", "tune.log")
    return project, params


def test_the_tune_table_has_the_reference_and_every_point_on_the_validation_split_only(tuned_project):
    project, _ = tuned_project
    rows = pd.read_csv(project / "results/demo/tune/sr3.csv")
    assert len(rows) == 1 + len(grid(TUNE))
    reference = rows.iloc[0]
    assert reference["reference"] and reference["sampler"] == "ancestral" and reference["network_evaluations"] == 200
    assert not rows["reference"].iloc[1:].any()
    assert rows[["psnr", "ssim", "lpips", "consistency", "seconds_per_image"]].notna().all().all()
    record = json.loads((project / "results/demo/tune/sr3.json").read_text())
    assert record["validation_images"] and all(name.startswith("ihc") for name in record["validation_images"])
    choice = record["choices"]["tuned6"]
    assert choice["inference_schedule"]["steps"] <= 6
    row, met = choose(rows, 6, TUNE["select"])
    assert row.name == choice["row"] and met == choice["met_criterion"]


def test_the_tuned_variant_samples_exactly_with_the_chosen_schedule(tuned_project):
    project, params = tuned_project
    choice = json.loads((project / "results/demo/tune/sr3.json").read_text())["choices"]["tuned6"]
    params["presets"]["demo"]["variants"]["chosen"] = {"sampler": choice["sampler"], "inference_schedule": choice["inference_schedule"]}
    params["presets"]["demo"]["methods"].append("sr3@chosen")
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    for method in ("sr3@tuned6", "sr3@chosen"):
        cli(project, "sample", "--method", method)
    tuned, chosen = (sorted((project / "samples/demo" / m).iterdir()) for m in ("sr3@tuned6", "sr3@chosen"))
    assert [p.name for p in tuned] == [p.name for p in chosen]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(tuned, chosen))


def test_a_grown_grid_samples_only_its_new_points(tuned_project):
    project, params = tuned_project
    cache = project / "cache/demo/tune/sr3"
    before = set(cache.iterdir())
    params["presets"]["demo"]["tune"]["steps"] = [4, 6, 8]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    cli(project, "tune", "--method", "sr3")
    added = set(cache.iterdir()) - before
    assert len(added) == 2 * 2  # two samplers x two shapes at the new 6 steps; the rest (and the reference) cached
    assert len(pd.read_csv(project / "results/demo/tune/sr3.csv")) == 1 + 2 * 2 * 3
