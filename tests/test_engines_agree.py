"""Snakemake and DVC must run the same stage commands with the same parameters."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from pipeline.code_deps import SAMPLING_CODE, TRAINING_CODE


def snakemake_commands(preset: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "8", "--dry-run", "--printshellcmds", "--forceall", "--config", f"preset={preset}"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    lines = (result.stdout + result.stderr).splitlines()
    return {line.split("sr3bench ", 1)[1].strip() for line in lines if "sr3bench " in line and "Shell command" in line or line.strip().startswith("sr3bench ")}


def dvc_commands(preset: str, tmp_path: Path) -> set[str]:
    """The interpolated commands of dvc.yaml, as DVC itself resolves them."""
    from dvc.repo import Repo

    repo = Repo(str(REPO))
    if preset == yaml.safe_load((REPO / "params.yaml").read_text())["preset"]:
        return {stage.cmd.split("sr3bench ", 1)[1].strip() for stage in repo.index.stages}
    pytest.skip("DVC resolves only the preset named in params.yaml")


@pytest.mark.parametrize("preset", ["demo"])
def test_snakemake_and_dvc_run_the_same_commands(preset, tmp_path):
    from_snakemake = snakemake_commands(preset)
    from_dvc = dvc_commands(preset, tmp_path)
    assert len(from_snakemake) == 10  # prepare, 2 x train, 3 x sample, 3 x evaluate, report
    assert from_snakemake == from_dvc


def test_both_engines_track_the_same_code_files():
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    dvc_files = {d for stage in dvc.values() for d in (stage.get("do", stage)).get("deps", []) if d.endswith(".py")}
    smk_files = set()
    for rule_file in (REPO / "pipeline" / "rules").glob("*.smk"):
        smk_files |= set(re.findall(r'"([\w/]+\.py)"', rule_file.read_text()))
    smk_files |= set(TRAINING_CODE) | set(SAMPLING_CODE)  # the train and sample rules' code inputs
    assert dvc_files == smk_files


def test_engines_track_the_code_that_checkpoints_and_sample_caches_are_keyed_by():
    """A code change that makes an engine re-run a stage also stops it from resuming a
    checkpoint or sample folder made by the old code, and the other way round."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

    def code_deps(stage):
        return {d for d in stage.get("do", stage)["deps"] if d.endswith(".py")}

    assert code_deps(dvc["train"]) == set(TRAINING_CODE)
    assert code_deps(dvc["sample"]) == code_deps(dvc["sample_bicubic"]) == set(SAMPLING_CODE)
    assert all((REPO / name).is_file() for name in TRAINING_CODE + SAMPLING_CODE)
