"""The config keys each stage's result depends on, in one place for both engines: the
Snakemake rules declare their values as ``params`` and the generated dvc.yaml lists them
as ``params:``, so a changed value re-runs the same stages in either engine. ``runtime``
and ``threads`` say where and how fast a stage computes, not what, and are tracked by
neither (DVC also refuses a tracked key missing from params.yaml, so only keys every
preset states are listed)."""
from __future__ import annotations

from pipeline import registry
from pipeline.layout import variant_name


def stage_params(stage: str, preset: str, method: str | None = None) -> list[str]:
    """Dotted keys of params.yaml (``presets.<preset>.seed``, ``methods``)."""
    keys = {
        "prepare": ["dataset", "seed"],
        # not diffusion.inference_schedule: sampling settings never retrain a model
        "train": ["model", f"training.{method}", "diffusion.training_schedule", "diffusion.loss", "diffusion.parametrization", "seed"],
        "evaluate": ["protocol"],
        "tune": ["tune", "variants", "diffusion", "sampling", "protocol", "seed"],
        "diversity": ["diversity", "diffusion", "sampling", "seed"],
        "report": ["diffusion", "training", "model", "paper"],
    }.get(stage)
    if stage == "sample":
        keys = ["diffusion", "sampling"]
        if registry.entry(method).trained:
            keys.append("seed")
        if variant_name(method):
            keys.append(f"variants.{variant_name(method)}")
    dotted = [f"presets.{preset}.{key}" for key in keys]
    return ["methods", *dotted] if stage == "report" else dotted


def param_values(params: dict, keys: list[str]) -> dict:
    """{key: value} of dotted keys in resolved params (what a Snakemake rule declares)."""
    values = {}
    for key in keys:
        node = params
        for part in key.split("."):
            node = node[part]
        values[key] = node
    return values
