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
    "preset, train_gpus, train_memory, trainings",
    [
        ("faces16_128", 8, 256000, 2),
        ("imagenet64_256", 8, 512000, 2),
        ("faces64_256", 8, 512000, 2),
        ("faces256_1024", 8, 512000, 3),  # and faces64_256's SR3, whose outputs are its test inputs (lr_from)
    ],
)
def test_the_slurm_profile_plans_a_paper_preset(tmp_path, preset, train_gpus, train_memory, trainings):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="profiles/slurm needs pip install -e '.[cluster]'")
    project = make_project(tmp_path / "project", committed_params())
    result = run([*SNAKEMAKE, "--profile", "profiles/slurm", "--dry-run", "--config", f"preset={preset}"], project)
    plan = result.stdout + result.stderr
    for stage in ("download", "prepare", "train", "sample", "evaluate", "report"):
        assert re.search(rf"^rule {stage}:", plan, re.MULTILINE), stage
    train_jobs = re.findall(r"^rule train:\n(?:    .*\n)*?    resources: (.*)$", plan, re.MULTILINE)
    assert len(train_jobs) == trainings  # SR3 and regression (of each preset of a chain)
    for resources in train_jobs:
        assert (
            f"gpu={train_gpus}" in resources and f"mem_mb={train_memory}" in resources and "runtime=10080" in resources
        )


def test_jobs_larger_than_every_node_are_named_with_max_threads():
    from pipeline.slurm_nodes import oversized_threads

    message = oversized_threads({"train": 8, "sample": 8, "prepare": 1}, node_cpus=2)
    assert message.startswith("jobs of sample 8 threads, train 8 threads (threads.<stage> in params.yaml)")
    assert "largest node of this SLURM cluster has 2 CPUs" in message and "--max-threads 2" in message
    assert oversized_threads({"prepare": 1, "train": 2}, node_cpus=2) is None
    assert oversized_threads({"train": 8}, node_cpus=None) is None  # sinfo could not tell: no refusal


def test_a_retry_gets_the_runtime_times_its_attempt():
    """A training job stopped at its time limit resumes on its retry with room to finish."""
    from pipeline import config, rule_settings
    from pipeline.stage_table import BY_NAME

    resolved = config.resolve(committed_params())
    runtime = rule_settings.resources(resolved, BY_NAME["train"])["runtime"]
    wildcards = {"preset": "faces16_128"}

    class Wildcards(dict):
        __getattr__ = dict.__getitem__

    first = runtime(Wildcards(wildcards), 1)
    assert (
        first == resolved["presets"]["faces16_128"]["resources"]["train"]["runtime"]
        and runtime(Wildcards(wildcards), 2) == 2 * first
    )
