"""The workflow as a cluster sees it: `snakemake --lint` is clean, and the SLURM profile
plans the paper presets with each rule's resources from the preset."""

import re
import sys

import pytest
from projects import committed_params, make_project, run

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def test_snakemake_lint_is_clean(tmp_path):
    project = make_project(tmp_path / "project", committed_params())
    result = run([*SNAKEMAKE, "--lint"], project)
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "preset, train_gpus, train_memory", [("faces16_128", 8, 256000), ("imagenet64_256", 8, 512000)]
)
def test_the_slurm_profile_plans_a_paper_preset(tmp_path, preset, train_gpus, train_memory):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="profiles/slurm needs pip install -e '.[cluster]'")
    project = make_project(tmp_path / "project", committed_params())
    result = run([*SNAKEMAKE, "--profile", "profiles/slurm", "--dry-run", "--config", f"preset={preset}"], project)
    plan = result.stdout + result.stderr
    for stage in ("download", "prepare", "train", "sample", "evaluate", "report"):
        assert re.search(rf"^rule {stage}:", plan, re.MULTILINE), stage
    train_jobs = re.findall(r"^rule train:\n(?:    .*\n)*?    resources: (.*)$", plan, re.MULTILINE)
    assert len(train_jobs) == 2  # SR3 and regression
    for resources in train_jobs:
        assert (
            f"gpu={train_gpus}" in resources and f"mem_mb={train_memory}" in resources and "runtime=10080" in resources
        )
