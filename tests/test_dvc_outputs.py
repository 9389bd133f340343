"""Issue 13, DVC side: after a Snakemake run, `dvc commit` adopts its outputs (nothing to
re-run), and the declared metrics and plots work: `dvc metrics show/diff`, `dvc plots
show/diff`."""

import json
import shutil
import sys

import pytest
from projects import run, small_demo_params

pytestmark = pytest.mark.slow


def dvc(project, *arguments):
    return run([sys.executable, "-m", "dvc", *arguments], project)


@pytest.fixture(scope="module")
def adopted(small_demo_project, tmp_path_factory):
    """A copy of the small demo run, put under git and DVC, its outputs committed to DVC."""
    project = shutil.copytree(small_demo_project, tmp_path_factory.mktemp("dvc") / "project", symlinks=True)
    run([sys.executable, "-m", "pipeline.cli", "dvc-yaml"], project)
    run(["git", "init", "-q"], project)
    dvc(project, "init", "-q")
    dvc(project, "config", "core.analytics", "false")
    dvc(project, "commit", "--force")
    run(["git", "add", "-A"], project)
    run(
        [
            "git",
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.com",
            "commit",
            "-qm",
            "a Snakemake run, adopted by DVC",
        ],
        project,
    )
    return project


def test_dvc_commit_adopts_a_snakemake_run_without_rerunning_anything(adopted):
    assert "Data and pipelines are up to date" in dvc(adopted, "status").stdout
    plan = dvc(adopted, "repro", "--dry")
    assert "Running stage" not in plan.stdout + plan.stderr


def test_the_report_carries_the_hash_of_the_current_settings_and_goes_out_of_date_with_them(adopted):
    """The report tracks every setting a stage of the run tracks, and hashes them: after a
    change that re-runs a stage to the same bytes (DVC then re-runs nothing downstream of
    it), the report is out of date too; where and how fast (runtime) re-runs nothing."""
    import yaml

    from pipeline import config
    from pipeline.result_settings import result_keys
    from pipeline.stage_table import param_values
    from sr3bench.reporting.provenance import config_hash

    params_file = adopted / "params.yaml"
    original = params_file.read_text()
    resolved = config.resolve(yaml.safe_load(original))
    record = json.loads((adopted / "reports/demo/provenance.json").read_text())
    assert record["settings"] == json.loads(json.dumps(param_values(resolved, result_keys(resolved, "demo"))))
    assert record["config_sha256"] == config_hash(record["settings"])
    assert "presets.demo.sampling" in record["settings"] and not any("runtime" in key for key in record["settings"])

    def out_of_date(change) -> list[str]:
        params = yaml.safe_load(original)
        change(params["presets"]["demo"])
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        try:
            return sorted(json.loads(dvc(adopted, "status", "--json").stdout))
        finally:
            params_file.write_text(original)

    assert out_of_date(lambda demo: demo["runtime"].update(data_workers=2)) == []
    assert out_of_date(lambda demo: demo["sampling"].update(batch_size=3)) == [
        "diversity_sr3",
        "report",
        "sample_bicubic",
        "sample_regression",
        "sample_sr3",
        "sample_sr3-tuned10",
        "tune_sr3",
    ]


def test_dvc_metrics_show_and_diff(adopted):
    shown = json.loads(dvc(adopted, "metrics", "show", "--json").stdout)
    (workspace,) = shown.values()  # one revision: the workspace (DVC 3 names it "")
    values = workspace["data"]["reports/demo/metrics.json"]["data"]
    assert set(values) == set(small_demo_params()["presets"]["demo"]["methods"]) and values["bicubic"]["psnr"] > 20
    path = adopted / "reports" / "demo" / "metrics.json"
    original = path.read_text()
    try:
        changed = json.loads(original)
        changed["bicubic"]["psnr"] += 1.0  # as a re-run with other settings would
        path.write_text(json.dumps(changed))
        difference = json.loads(dvc(adopted, "metrics", "diff", "--json").stdout)
        assert difference["reports/demo/metrics.json"]["bicubic.psnr"]["diff"] == pytest.approx(1.0)
    finally:
        path.write_text(original)


def test_dvc_plots_show_the_losses_and_the_quality_against_steps(adopted, tmp_path):
    plots = json.loads(dvc(adopted, "plots", "show", "--json").stdout)["data"]
    assert {
        "regression: training loss",
        "sr3: training loss",
        "sr3: quality against network evaluations",
        "reports/demo/metrics.csv",
    } <= set(plots)
    for name, renders in plots.items():
        assert renders[0]["content"]["data"]["values"], name  # every plot has points
    dvc(adopted, "plots", "show", "--out", str(tmp_path / "plots"))
    assert (tmp_path / "plots" / "index.html").stat().st_size > 1000
    dvc(adopted, "plots", "diff", "HEAD", "--out", str(tmp_path / "diff"))
    assert (tmp_path / "diff" / "index.html").exists()


def test_a_local_folder_remote_round_trips_the_data_and_models(adopted, tmp_path):
    """Issue 12, DVC remote: `dvc push` to a folder remote, then a clone without the cache
    or the outputs gets the same bytes back with `dvc pull` (S3 and others: the same
    commands with another URL)."""
    dvc(adopted, "remote", "add", "--local", "-f", "shared", str(tmp_path / "remote"))
    dvc(adopted, "push", "-r", "shared")
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(adopted), str(clone)], tmp_path)
    dvc(clone, "remote", "add", "--local", "-f", "shared", str(tmp_path / "remote"))
    assert not (clone / "models" / "demo" / "sr3" / "model.pt").exists()
    dvc(clone, "pull", "-r", "shared")
    for path in (
        "models/demo/sr3/model.pt",
        "models/demo/regression/model.pt",
        "data/demo/manifest.json",
        "reports/demo/metrics.json",
    ):
        assert (clone / path).read_bytes() == (adopted / path).read_bytes(), path
    assert "Data and pipelines are up to date" in dvc(clone, "status").stdout
