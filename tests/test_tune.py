"""The tune stage: a grid of samplers and schedules sampled on the validation split, the
reference row, the choice under the preset's criterion, and the sample stage taking it."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from projects import run

from pipeline.stages.tune import central_pair, choose, grid

TUNE = {
    "samplers": ["ddim", "dpmpp_2m"],
    "steps": [8, 4],
    "schedules": [{"shape": "cosine"}, {"shape": "linear", "beta_start": 1e-3, "beta_end": 0.8}],
    "images": 2,
    "reference_images": 1,
    "select": {"metric": "lpips", "max_consistency_ratio": 1.1},
}


def table(rows):
    columns = ["sampler", "steps", "reference", "psnr", "ssim", "lpips", "consistency_reference_images"]
    return pd.DataFrame([dict(zip(columns, row)) for row in rows])


def test_the_grid_is_every_sampler_schedule_and_step_count():
    points = grid(TUNE)
    assert len(points) == 2 * 2 * 2
    assert points[0] == {"sampler": "ddim", "inference_schedule": {"steps": 4, "shape": "cosine"}}
    assert points[-1]["inference_schedule"] == {"steps": 8, "shape": "linear", "beta_start": 1e-3, "beta_end": 0.8}


def test_the_choice_is_the_best_metric_within_the_step_budget_and_the_consistency_bound():
    rows = table(
        [
            ("ancestral", 2000, True, 30.0, 0.8, 0.20, 10.0),
            ("ddim", 5, False, 31.0, 0.8, 0.10, 12.0),  # best LPIPS, but 1.2x the reference's consistency
            ("ddim", 10, False, 30.5, 0.8, 0.15, 10.5),
            ("dpmpp_2m", 10, False, 30.0, 0.8, 0.18, 9.0),
            ("ddim", 50, False, 30.0, 0.8, 0.12, 10.0),  # best allowed, but above a budget of 25
        ]
    )
    select = {"metric": "lpips", "max_consistency_ratio": 1.1}
    assert choose(rows, 25, select)[0].name == 2 and choose(rows, 25, select)[1]
    assert choose(rows, 100, select)[0].name == 4
    assert choose(rows, 25, {"metric": "psnr", "max_consistency_ratio": 1.1})[0].name == 2
    assert choose(rows, 25, {"metric": "lpips", "max_consistency_ratio": 1.5})[0].name == 1
    row, met = choose(rows, 25, {"metric": "lpips", "max_consistency_ratio": 0.5})  # nothing allowed
    assert (row.name, met) == (3, False)  # the most consistent, flagged
    with pytest.raises(ValueError, match="no point of at most 4 steps"):
        choose(rows, 4, select)
    without_lpips = rows.assign(lpips=float("nan"))  # validation crops under LPIPS's 31x31 pixels
    assert choose(without_lpips, 25, {"metric": "psnr", "max_consistency_ratio": 1.1})[0].name == 2
    with pytest.raises(ValueError, match="tune.select.metric: lpips is empty for every grid point"):
        choose(without_lpips, 25, select)


def test_the_tune_crop_keeps_hr_and_lr_aligned():
    lr = np.arange(10 * 12 * 3).reshape(10, 12, 3).astype(np.uint8)
    hr = lr.repeat(4, axis=0).repeat(4, axis=1)
    hr_crop, lr_crop = central_pair(hr, lr, 16, 4)
    assert lr_crop.shape == (4, 4, 3) and hr_crop.shape == (16, 16, 3)
    assert np.array_equal(hr_crop, lr_crop.repeat(4, axis=0).repeat(4, axis=1))
    assert np.array_equal(lr_crop, lr[3:7, 4:8])
    assert central_pair(hr, lr, 0, 4)[0] is hr and central_pair(hr, lr, 64, 4)[1] is lr


@pytest.fixture(scope="module")
def tuned_project(small_demo_project, tmp_path_factory):
    """A copy of the small demo run (its tune stage: 2 samplers x 1 shape x 2 step counts
    on the validation image, the reference over the training schedule, one
    tuned variant of at most 10 steps), and its params."""
    project = shutil.copytree(small_demo_project, tmp_path_factory.mktemp("tune") / "project", symlinks=True)
    return project, yaml.safe_load((project / "params.yaml").read_text())


def sr3bench(project: Path, *arguments) -> None:
    run([str(Path(sys.executable).parent / "sr3bench"), *arguments, "--threads", "2"], project)


@pytest.mark.slow
def test_the_tune_table_has_the_reference_and_every_point_on_the_validation_split_only(tuned_project):
    project, params = tuned_project
    tune = params["presets"]["demo"]["tune"]
    rows = pd.read_csv(project / "results/demo/tune/sr3.csv")
    assert len(rows) == 1 + len(grid(tune))
    reference = rows.iloc[0]
    assert (
        reference["reference"]
        and reference["sampler"] == "ancestral"
        and reference["network_evaluations"] == params["presets"]["demo"]["diffusion"]["training_schedule"]["steps"]
    )
    assert not rows["reference"].iloc[1:].any()
    assert rows[["psnr", "ssim", "lpips", "consistency", "seconds_per_image"]].notna().all().all()
    record = json.loads((project / "results/demo/tune/sr3.json").read_text())
    test_names = {p.name for p in (project / "data/demo/test/hr").iterdir()}
    assert record["validation_images"] and not set(record["validation_images"]) & test_names
    choice = record["choices"]["tuned10"]
    assert choice["inference_schedule"]["steps"] <= 10
    row, met = choose(rows, 10, tune["select"])
    assert row.name == choice["row"] and met == choice["met_criterion"]


@pytest.mark.slow
def test_the_tuned_variant_samples_exactly_with_the_chosen_schedule(tuned_project):
    project, params = tuned_project
    choice = json.loads((project / "results/demo/tune/sr3.json").read_text())["choices"]["tuned10"]
    params["presets"]["demo"]["variants"]["chosen"] = {
        "sampler": choice["sampler"],
        "inference_schedule": choice["inference_schedule"],
    }
    params["presets"]["demo"]["methods"].append("sr3@chosen")
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sr3bench(project, "sample", "--method", "sr3@chosen")
    tuned, chosen = (sorted((project / "samples/demo" / m).glob("*.png")) for m in ("sr3@tuned10", "sr3@chosen"))
    assert [p.name for p in tuned] == [p.name for p in chosen]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(tuned, chosen))


@pytest.mark.slow
def test_a_grown_grid_samples_only_its_new_points(tuned_project):
    project, params = tuned_project
    cache = project / "cache/demo/tune/sr3"
    before = set(cache.iterdir())
    params["presets"]["demo"]["tune"]["steps"] = [5, 8, 10]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sr3bench(project, "tune", "--method", "sr3")
    assert (
        len(set(cache.iterdir()) - before) == 2
    )  # the two samplers at 8 steps; the rest (and the reference) were cached
    assert len(pd.read_csv(project / "results/demo/tune/sr3.csv")) == 1 + 2 * 3
