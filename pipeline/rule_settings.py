"""What the Snakefile's rules compute from the config: each stage's tracked values, its
inputs, and its cluster resources. Kept out of the rule files so that they hold rules
only (``snakemake --lint``)."""
from __future__ import annotations

import os

from pipeline import code_deps, layout, registry
from pipeline.config import RESOLVED_PARAMS_VARIABLE
from pipeline.stage_params import param_values, stage_params

# Outputs in `snakemake --report report.html`: file -> category (caption: pipeline/report/<stem>.rst).
IN_SNAKEMAKE_REPORT = {"metrics.csv": "Results", "grid.png": "Images", "zoom.png": "Images", "diversity.png": "Images", "loss.png": "Training", "tuning.png": "Sampling"}

# Rules without a preset: a dataset download can take a day (ImageNet's 150 GB).
UNPRESET_RESOURCES = {"download": {"gpus": 0, "mem_mb": 4000, "runtime": 1440}, "front_page": {"gpus": 0, "mem_mb": 2000, "runtime": 10}}


def publish_params_option(option: str, environ=os.environ) -> None:
    """Hand the jobs the resolved config's file (``option`` is "" or "--params PATH"):
    the CLI's --params defaults to it, so the rules' commands stay the same whatever the
    overrides (--config, --configfile)."""
    if option:
        environ[RESOLVED_PARAMS_VARIABLE] = option.split(maxsplit=1)[1]
    else:
        environ.pop(RESOLVED_PARAMS_VARIABLE, None)


def stage_config(config: dict, wildcards, stage: str) -> dict:
    """The config values the stage's result depends on (the keys dvc.yaml tracks too)."""
    return param_values(config, stage_params(stage, wildcards.preset, wildcards.get("method")))


def resources(config: dict, stage: str) -> dict:
    """A rule's ``resources:`` from ``presets.<preset>.resources.<stage>``: ``gpu`` (the
    name the SLURM executor plugin turns into --gpus), ``mem_mb`` and ``runtime`` (minutes)."""
    def value(key):
        if stage in UNPRESET_RESOURCES:
            return lambda wildcards: UNPRESET_RESOURCES[stage][key]
        return lambda wildcards: config["presets"][wildcards.preset]["resources"][stage][key]

    return {"gpu": value("gpus"), "mem_mb": value("mem_mb"), "runtime": value("runtime")}


def prepare_inputs(config: dict, wildcards) -> list[str]:
    downloads = config["presets"][wildcards.preset]["dataset"]["downloads"]
    return [*code_deps.PREPARE_CODE, *[str(layout.download_dir(name)) for name in downloads]]


def sample_inputs(config: dict, tuned_variants: list[str], wildcards, shard: bool = False) -> list[str]:
    """What sampling a method needs; for the merge (sampling.shards above 1), its shards."""
    inputs = [str(layout.data_dir(wildcards.preset)), *code_deps.sampling_code(wildcards.method)]
    if registry.entry(wildcards.method).trained:
        inputs.append(str(layout.model_file(wildcards.preset, wildcards.method)))
    if wildcards.method in tuned_variants:
        inputs.append(str(layout.tune_choices_file(wildcards.preset, layout.base_method(wildcards.method))))
    shards = config["presets"][wildcards.preset]["sampling"]["shards"]
    if not shard and shards > 1:
        inputs += [str(layout.sample_shard_dir(wildcards.preset, wildcards.method, index, shards)) for index in range(shards)]
    return inputs
