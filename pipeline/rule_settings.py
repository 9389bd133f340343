"""What the Snakefile's generated rules compute from the config and the stage table: each
rule's inputs, tracked values, threads, cluster resources and wildcard constraints, and
the outputs of the run. Kept out of the Snakefile so that it holds rules only."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pipeline import cascade_plan, dataset_listing
from pipeline.config import ENGINE_VARIABLE, RESOLVED_PARAMS_VARIABLE
from pipeline.result_settings import tracked_keys
from pipeline.stage_table import METHOD_FAN_OUTS, STAGES, Plan, Stage, param_values

# Stages without a preset: a dataset download can take a day (ImageNet's 150 GB).
UNPRESET_RESOURCES = {
    "dataset": {"gpus": 0, "mem_mb": 4000, "runtime": 1440},
    "project": {"gpus": 0, "mem_mb": 2000, "runtime": 10},
}


def publish_params_option(option: str, environ=os.environ) -> None:
    """Hand the jobs the resolved config's file (``option`` is "" or "--params PATH"):
    the CLI's --params defaults to it, so the rules' commands stay the same whatever the
    overrides (--config, --configfile). And tell them they are Snakemake's jobs."""
    environ[ENGINE_VARIABLE] = "snakemake"
    if option:
        environ[RESOLVED_PARAMS_VARIABLE] = option.split(maxsplit=1)[1]
    else:
        environ.pop(RESOLVED_PARAMS_VARIABLE, None)


def member_pattern(stage: Stage) -> str | None:
    if stage.fan_out == "dataset":
        return "{dataset}"
    return "{method}" if stage.fan_out in METHOD_FAN_OUTS else None


def preset_pattern(stage: Stage, active_preset: str) -> str:
    """The front page is of the run's preset; every other stage's preset is a wildcard."""
    return active_preset if stage.fan_out == "project" else "{preset}"


def command(stage: Stage):
    """The rule's command, but its threads and log, as a params function. Snakemake runs a
    rule's ``shell:`` text when the job runs, after the Snakefile's loop over the stages
    has moved on, so each rule's text is the same, ``{params.command} --threads {threads}
    --log {log}``, and its command is bound here (threads stay out of the tracked params:
    another --cores is no reason to re-run)."""

    def of(wildcards) -> str:
        shard = f"{wildcards.shard}/{wildcards.shards}" if stage.fan_out == "shard" else None
        return stage.command(wildcards.get("preset"), member_of(wildcards), shard)

    return of


def member_of(wildcards) -> str | None:
    return wildcards.get("method") or wildcards.get("dataset")


def inputs(stage: Stage, config: dict, active_preset: str):
    """The rule's input function: the stage's files, planned for the job's own preset (its
    downloads, shards and variants), the listing of the folders it reads (the dataset's,
    or an outside method's: brought up to date here, each time a run plans the job; see
    pipeline/dataset_listing.py), and its code."""

    def of(wildcards) -> list[str]:
        member = member_of(wildcards)
        preset = wildcards.get("preset", active_preset)
        plan = cascade_plan.plan_of(config, active_preset, preset)  # an upstream preset: what the chain reads
        folders = stage.folders(plan, member)
        outside = member if stage.fan_out == "external" else None
        listing = [str(dataset_listing.refresh(preset, folders, outside))] if folders else []
        return [*stage.inputs(preset, member, plan), *listing, *stage.code(member)]

    return of


def tracked_values(config: dict, stage: Stage):
    """The config values the stage's result depends on (the keys dvc.yaml tracks too; a
    download tracks its own dataset's entry, where DVC, which can only name keys that
    params.yaml states, tracks all of ``datasets``)."""
    if stage.fan_out == "dataset":
        return lambda wildcards: {f"datasets.{wildcards.dataset}": config["datasets"].get(wildcards.dataset, {})}

    def of(wildcards) -> dict:
        preset = wildcards.get("preset")
        plan = Plan.of(config, preset) if preset else None
        values = param_values(config, tracked_keys(config, stage, preset, member_of(wildcards), plan))
        if stage.name in CLASSIFY_STAGES:
            values[DOWNLOADED_RESNET50] = downloaded_resnet50(config, preset)
        return values

    return of


# The classify stages read torchvision's ResNet-50 file from the torch hub cache when
# weights.resnet50 names none: a file placed there after an offline run changes no
# tracked input, so Snakemake tracks whether it is there (DVC cannot: its result says
# which command re-runs the stages).
CLASSIFY_STAGES = ("classify", "classify_baseline")
DOWNLOADED_RESNET50 = "downloaded ResNet-50 file"
RESNET50_FILE = "resnet50-0676ba61.pth"  # sr3bench/metrics/classifier.py's RESNET50_URL


def torch_hub_checkpoints(environ=os.environ) -> Path:
    """Where torch.hub keeps downloaded weights, without importing torch (torch.hub's
    documentation: $TORCH_HOME/hub, TORCH_HOME defaulting to $XDG_CACHE_HOME/torch and
    that to ~/.cache)."""
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    torch_home = Path(environ.get("TORCH_HOME") or os.path.join(cache, "torch")).expanduser()
    return torch_home / "hub" / "checkpoints"  # layout: another package's folder


def downloaded_resnet50(config: dict, preset: str) -> str | None:
    """The hub cache's ResNet-50 file as the classify stages would take it (its size), or
    None: absent, or not the file they read (another classifier, or weights.resnet50)."""
    classify = config["presets"][preset].get("classify") or {}
    if classify.get("classifier", "resnet50") != "resnet50" or config["weights"].get("resnet50"):
        return None
    path = torch_hub_checkpoints() / RESNET50_FILE
    return f"{path} ({path.stat().st_size} bytes)" if path.is_file() else None


def threads(config: dict, stage: Stage) -> int:
    return config["threads"][stage.settings_key] if stage.per_preset else 1


def resources(config: dict, stage: Stage) -> dict:
    """A rule's ``resources:`` from ``presets.<preset>.resources.<stage>``: ``gpu`` (the
    name the SLURM executor plugin turns into --gpus), ``mem_mb`` and ``runtime`` (minutes).
    A retry (the SLURM profile's ``retries``) gets the runtime times its attempt: a job
    stopped at its time limit resumes from its checkpoint with room to finish."""

    def value(key):
        if not stage.per_preset:
            return lambda wildcards: UNPRESET_RESOURCES[stage.fan_out][key]
        return lambda wildcards: config["presets"][wildcards.preset]["resources"][stage.settings_key][key]

    def runtime(wildcards, attempt):
        return value("runtime")(wildcards) * attempt

    return {"gpu": value("gpus"), "mem_mb": value("mem_mb"), "runtime": runtime}


def wildcard_constraints(stage: Stage, *plans: Plan) -> dict:
    """A method rule matches only its fan-out's methods (train: the trained ones), of
    each preset the run plans (the active one and those above it in a cascade)."""
    constraints = {}
    if stage.fan_out in METHOD_FAN_OUTS:
        members = dict.fromkeys(m for plan in plans for m in plan.members(stage.fan_out))
        constraints["method"] = "|".join(re.escape(m) for m in members)
    if stage.fan_out == "shard":
        constraints.update(shard=r"\d+", shards=r"\d+")
    return constraints


def run_outputs(plan: Plan, preset: str, params: dict) -> list[str]:
    """Every declared output of the run (shards aside, which the merge consumes), with the
    outputs of the upstream presets' jobs it needs in a cascade."""
    own = [
        path
        for stage in STAGES
        if stage.fan_out != "shard"
        for member in plan.members(stage.fan_out)
        for path in stage.output_paths(preset, member)
    ]
    upstream = [
        path
        for job in cascade_plan.upstream_jobs(params, preset)
        for path in job.stage.output_paths(job.preset, job.member)
    ]
    return list(dict.fromkeys(upstream + own))
