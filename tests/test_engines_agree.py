"""Snakemake and DVC must run the same stage commands, with the same code files, for every
preset; dvc.yaml must be what the registry and params.yaml generate."""

import re
import shutil
import sys

import pytest
import yaml
from conftest import REPO
from projects import committed_params, dvc_project, make_project, run

from pipeline import cascade_plan, config, layout, registry
from pipeline.cascade_plan import upstream_jobs
from pipeline.dvc_yaml import render, stage_name
from pipeline.stage_table import BY_NAME, Plan

PRESETS = sorted(committed_params()["presets"])


def snakemake_jobs(project) -> dict[str, set[str]]:
    """{command (without --threads): its input files} of every job of a forced dry run."""
    result = run(
        [sys.executable, "-m", "snakemake", "--cores", "8", "--dry-run", "--printshellcmds", "--forceall"], project
    )
    jobs, inputs = {}, set()
    for line in (result.stdout + result.stderr).splitlines():
        line = line.strip().removeprefix("Shell command:").strip()
        if line.startswith("input:"):
            inputs = {name.strip() for name in line[len("input:") :].split(",")}
        elif line.startswith("sr3bench "):
            # Snakemake passes the threads its scheduler grants; DVC's stages read threads.<stage>
            jobs[re.sub(r" --threads \d+", "", line)] = inputs
            inputs = set()
    return jobs


def dvc_stages(project) -> dict[str, set[str]]:
    """{command: its file deps} of every stage, as DVC itself resolves dvc.yaml."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        return {
            stage.cmd.strip(): {str(dep.def_path) for dep in stage.deps if not isinstance(dep, ParamsDependency)}
            for stage in repo.index.stages
        }


@pytest.fixture(scope="module", params=PRESETS)
def preset_project(request, tmp_path_factory):
    params = committed_params()
    params["preset"] = request.param
    project = dvc_project(tmp_path_factory.mktemp(request.param), params)
    (project / "dvc.yaml").write_text(render(config.resolve(params)))  # as `sr3bench dvc-yaml` after switching preset
    return request.param, project


def test_snakemake_and_dvc_run_the_same_commands_on_the_same_files(preset_project):
    preset, project = preset_project
    from_snakemake, from_dvc = snakemake_jobs(project), dvc_stages(project)
    resolved = config.resolve({**committed_params(), "preset": preset})
    methods, downloads = resolved["methods"], resolved["presets"][preset]["dataset"]["downloads"]
    tuned = {layout.base_method(m) for m in registry.tuned_variants(resolved["presets"][preset], methods)}
    diverse = registry.diverse_methods(resolved["presets"][preset], methods)
    plan = Plan.of(resolved, preset)
    chained = {
        (j.preset, j.stage.name, j.member) for j in upstream_jobs(resolved, preset) if j.stage.fan_out != "dataset"
    }
    plans = cascade_plan.plans(resolved, preset)  # {preset: plan} of the chain, this preset first
    study = len(plan.study) + len(plan.study_simulated) + len(plan.study_analysed)
    stages = (
        len(downloads)
        + 3
        + len(registry.trained_methods(methods))
        + len(tuned)
        + len(diverse)
        + 2 * len(methods)
        + study
        + 2 * len(plan.classify)  # prepare_classify and classify_baseline
        + len(plan.classified)
        + len(chained)  # a cascade's upstream presets' jobs (pipeline/cascade_plan.py)
    )  # + prepare, report, front page
    assert len(from_snakemake) == stages
    assert {f"sr3bench download --dataset {name}" for name in downloads} <= {
        c.split(" --log")[0] for c in from_snakemake
    }
    assert set(from_snakemake) == set(from_dvc)
    assert all(
        any(f"--preset {name} " in command for name in plans)
        for command in from_dvc
        if not command.startswith(("sr3bench download", "sr3bench front-page"))
    )
    listings = {str(layout.dataset_listing_file(name)): name for name in plans}
    folders = {name: {str(f) for f in BY_NAME["prepare"].folders(plans[name])} for name in plans}
    prepare = next(
        i for command, i in from_snakemake.items() if command.startswith(f"sr3bench prepare --preset {preset} ")
    )
    assert (str(layout.dataset_listing_file(preset)) in prepare) == bool(folders[preset])
    for command, inputs in from_snakemake.items():
        # Snakemake tracks the dataset folders through their listing, DVC hashes them
        for listing in set(listings) & inputs:
            inputs = inputs - {listing} | folders[listings[listing]]
        assert inputs == from_dvc[command], command


def test_the_report_tracks_every_key_another_stage_tracks_and_each_is_in_params_yaml(preset_project):
    """The report hashes the settings its numbers rest on (pipeline/result_settings.py):
    every key that another job of the run tracks, in a cascade the upstream presets' jobs
    too, and no key of where and how fast. DVC reads each from params.yaml as written."""
    preset, project = preset_project
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    report = stages["report"]["params"]
    others = {
        key
        for name, stage in stages.items()
        if name != "report" and not name.startswith("download")
        for key in stage.get("params", [])
    }
    inside = lambda key: any(key == mine or key.startswith(f"{mine}.") for mine in report)  # noqa: E731
    assert all(map(inside, others)), sorted(key for key in others if not inside(key))
    assert not any(part in key for key in report for part in (".runtime", ".resources", "threads"))
    written = yaml.safe_load((project / "params.yaml").read_text())
    for key in report:
        node = written
        for part in key.replace("${preset}", preset).split("."):
            assert isinstance(node, dict) and part in node, f"{key} is not in params.yaml"
            node = node[part]


def test_dvc_yaml_is_generated_from_the_registry_and_params():
    assert (REPO / "dvc.yaml").read_text() == render(config.resolve(committed_params())), (
        "dvc.yaml is stale: run `sr3bench dvc-yaml`"
    )


def test_every_stage_tracks_the_code_that_checkpoints_and_sample_caches_are_keyed_by():
    """A code change that makes an engine re-run a stage also stops it from resuming a
    checkpoint or sample folder made by the old code, and the other way round."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

    def code(stage):
        return {d for d in stages[stage]["deps"] if d.endswith(".py")}

    resolved = config.resolve(committed_params())
    for method in resolved["methods"]:
        assert code(stage_name("sample", method)) == set(BY_NAME["sample"].code(method))
        if registry.entry(method).trained and not layout.variant_name(method):
            assert code(f"train_{method}") == set(BY_NAME["train"].code(method))
    for variant in registry.tuned_variants(resolved["presets"][resolved["preset"]], resolved["methods"]):
        base = layout.base_method(variant)
        assert code(stage_name("tune", base)) == set(BY_NAME["tune"].code(base))
    tracked = {d for stage in stages.values() for d in stage["deps"] if d.endswith(".py")}
    assert all((REPO / name).is_file() for name in tracked)


def test_a_method_stage_tracks_the_method_module_and_the_stage_module():
    for entry in registry.ENTRIES:
        sampling = BY_NAME["sample"].code(entry.name)
        assert re.sub(r"\.", "/", entry.module) + ".py" in sampling and "pipeline/stages/sample.py" in sampling


def test_the_psnr_bar_plot_puts_the_value_on_the_quantitative_axis():
    """dvc plots' bar_horizontal template reads x as the bar length; with method on x the
    plot rendered empty (issue 13)."""
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["report"]["plots"]
    (spec,) = [next(iter(p.values())) for p in plots if "metrics.csv" in next(iter(p))]
    assert spec["template"] == "bar_horizontal" and spec["x"] == "psnr" and spec["y"] == "method"


class Wildcards(dict):
    """Snakemake's wildcards as a rule's functions use them: by attribute and by get."""

    __getattr__ = dict.__getitem__


def test_a_download_tracks_its_own_dataset_entry_and_the_dataset_registry():
    """Editing datasets.celebahq must not re-download ImageNet (Snakemake re-runs a job whose
    params changed); a changed dataset definition re-runs its download."""
    from pipeline import rule_settings

    resolved = config.resolve(committed_params())
    values = rule_settings.tracked_values(resolved, BY_NAME["download"])(Wildcards(dataset="imagenet"))
    assert values == {"datasets.imagenet": resolved["datasets"].get("imagenet", {})}
    assert "pipeline/datasets.py" in BY_NAME["download"].code()


def test_another_presets_targets_are_planned_with_that_presets_downloads(tmp_path):
    """The rules plan a job for its own preset (from the {preset} wildcard), not the one
    params.yaml makes active: its downloads come before its prepare."""
    project = make_project(tmp_path / "project", committed_params())  # preset: demo, which downloads nothing
    plan = run([sys.executable, "-m", "snakemake", "--cores", "2", "--dry-run", "data/faces16_128"], project)
    lines = (plan.stdout + plan.stderr).splitlines()
    counts = {
        parts[0]: int(parts[1]) for parts in (line.split() for line in lines) if len(parts) == 2 and parts[1].isdigit()
    }
    assert counts.get("download") == 2 and counts.get("prepare") == 1, plan.stdout[-2000:]


def test_a_stage_run_by_dvc_from_a_stale_dvc_yaml_stops_at_once(tmp_path, monkeypatch, capfd):
    """`dvc exp run -S preset=NAME`, or a methods: list changed without `sr3bench dvc-yaml`:
    DVC would run the old stages for hours and fail late; the first stage refuses instead."""
    from pipeline import cli

    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("DVC_STAGE", "prepare")
    params = committed_params()
    (tmp_path / "dvc.yaml").write_text(render(config.resolve({**params, "preset": "faces16_128_small"})))
    assert cli.main(["prepare", "--preset", "demo"]) == 2
    said = capfd.readouterr().err
    assert "prepare: " in said and "dvc.yaml was generated for other settings than params.yaml's" in said
    assert "run `sr3bench dvc-yaml`" in said and not (tmp_path / "data").exists()
    fresh = render(config.resolve(params))
    (tmp_path / "dvc.yaml").write_text(fresh)
    cli.refuse_stale_dvc_yaml("params.yaml")  # the fresh one passes
    cut = yaml.safe_load(fresh)
    cut["stages"] = {"prepare": cut["stages"]["prepare"], "mine": {"cmd": "true"}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(cut))
    cli.refuse_stale_dvc_yaml("params.yaml")  # a dvc.yaml cut to some stages, or with a stage of one's own
    monkeypatch.setenv("DVC_STAGE", "train_sr3@tuned")  # a stage params.yaml would not generate
    (tmp_path / "dvc.yaml").write_text(fresh.replace("  prepare:", "  train_sr3@tuned:", 1))
    with pytest.raises(config.ConfigError, match="its stage train_sr3@tuned is not theirs"):
        cli.refuse_stale_dvc_yaml("params.yaml")
    monkeypatch.setenv("DVC_STAGE", "prepare")
    own = yaml.safe_load(fresh)
    own["stages"]["train_sr3"]["frozen"] = True  # dvc freeze train_sr3
    own["stages"]["score_mine"] = {"cmd": "sr3bench score --sr outside/mine --hr data/demo/test/hr --json"}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(own))
    cli.refuse_stale_dvc_yaml("params.yaml")  # a frozen stage, and a stage of one's own running sr3bench, pass
    # the study removed, dvc.yaml not: its stages would fail after training
    (tmp_path / "dvc.yaml").write_text(fresh)
    no_study = yaml.safe_load((tmp_path / "params.yaml").read_text())
    no_study["presets"]["demo"]["study"] = None
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(no_study, sort_keys=False))
    with pytest.raises(config.ConfigError, match="its stages study_build, study_simulate, study_analyse, report are"):
        cli.refuse_stale_dvc_yaml("params.yaml")
    monkeypatch.delenv("DVC_STAGE")
    cli.refuse_stale_dvc_yaml("params.yaml")  # by hand or under Snakemake: not checked


def test_dvc_commands_name_no_threads_so_a_change_of_threads_re_runs_nothing():
    """Snakemake passes the threads it grants; DVC would re-run a stage whose command changed."""
    text = (REPO / "dvc.yaml").read_text()
    assert "--threads" not in text and "${threads" not in text
