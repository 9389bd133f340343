"""A nested override reaches the job through either engine, changes its result, and a
changed override re-runs it: what the engine resolved is what the job runs with."""

import sys

import pandas as pd
import pytest
import yaml
from projects import dvc_project, make_project, run, tiny_params

pytestmark = pytest.mark.slow
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2"]
LOSS = "models/demo/regression/loss.csv"


def last_step(project) -> int:
    return int(pd.read_csv(project / LOSS)["step"].iloc[-1])


def test_snakemake_configfile_and_dotted_config_reach_the_job(tmp_path):
    project = make_project(tmp_path / "project", tiny_params())
    (project / "alt.yaml").write_text(
        yaml.safe_dump({"presets": {"demo": {"training": {"regression": {"steps": 12, "log_every": 4}}}}})
    )

    run([*SNAKEMAKE, LOSS, "--configfile", "alt.yaml"], project)
    assert last_step(project) == 12
    resolved = list((project / "cache/params").glob("*.yaml"))
    assert (
        len(resolved) == 1
        and yaml.safe_load(resolved[0].read_text())["presets"]["demo"]["training"]["regression"]["steps"] == 12
    )

    sixteen = ["--config", "presets={demo: {training: {regression: {steps: 16}}}}"]  # merged into params.yaml
    run([*SNAKEMAKE, LOSS, *sixteen], project)
    assert last_step(project) == 16  # the changed value re-ran the job

    again = run([*SNAKEMAKE, LOSS, *sixteen], project)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_snakemake_nested_config_value_is_read_as_yaml(tmp_path):
    project = make_project(tmp_path / "project", tiny_params())
    result = run(
        [
            *SNAKEMAKE,
            "--dry-run",
            "--printshellcmds",
            "--config",
            "presets={demo: {dataset: {train_images: [astronaut, coffee], hr_size: 16}}}",
        ],
        project,
    )
    resolved = next((project / "cache/params").glob("*.yaml"))
    assert (
        "sr3bench prepare --preset demo --threads 1 --log logs/demo/prepare.log\n" in result.stdout
    )  # the same command; the job finds the file by its variable
    dataset = yaml.safe_load(resolved.read_text())["presets"]["demo"]["dataset"]
    assert dataset["train_images"] == ["astronaut", "coffee"] and dataset["hr_size"] == 16 and dataset["scale"] == 4


def test_dvc_exp_run_set_param_reaches_the_job(tmp_path):
    project = dvc_project(tmp_path / "project", tiny_params(), commit=True)
    run(
        [
            sys.executable,
            "-m",
            "dvc",
            "exp",
            "run",
            "-n",
            "steps12",
            "-S",
            "presets.demo.training.regression.steps=12",
            "train_regression",
        ],
        project,
    )
    assert last_step(project) == 12
    run(
        [
            sys.executable,
            "-m",
            "dvc",
            "exp",
            "run",
            "-n",
            "steps16",
            "-S",
            "presets.demo.training.regression.steps=16",
            "train_regression",
        ],
        project,
    )
    assert last_step(project) == 16
    # the README's comparison of two settings: dvc exp show lists both with their values
    shown = run([sys.executable, "-m", "dvc", "exp", "show", "--csv", "--only-changed"], project).stdout
    rows = {line.split(",")[0]: line for line in shown.splitlines()}
    assert "steps12" in rows and "steps16" in rows and ",12" in rows["steps12"] and ",16" in rows["steps16"], shown
    difference = run([sys.executable, "-m", "dvc", "exp", "diff", "steps12", "steps16"], project).stdout
    assert "presets.demo.training.regression.steps" in difference and "12" in difference and "16" in difference
