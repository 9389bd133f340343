"""A public SR3 checkpoint as a compared method (the protocol of ``pipeline/registry.py``):
the generator of the Janspiry re-implementation (``sr3/janspiry.py``), sampled by this
project's samplers, so that its variants and the tune stage apply to it.

It is a *trained* method whose training starts from their file: ``build_model`` reads
``training.<method>.checkpoint`` into the network of ``training.<method>.config`` (checking
every tensor, and the file's noise schedule against ``diffusion.training_schedule``), and
the train stage then runs ``steps`` steps of the shared trainer on it (their objective: L1
on the noise, eps parametrisation). ``steps: 0``, the default of the presets, imports the
checkpoint as released: the model file holds its weights unchanged, with the file's path and
sha256 as provenance. Their network predicts eps, so this method samples with the ``eps``
parametrisation whatever ``diffusion.parametrization`` says (that key is SR3's own).
"""

from __future__ import annotations

from functools import partial

import torch

from sr3 import diffusion, janspiry
from sr3 import method as sr3_method

__all__ = ["build_model", "training_loss", "save_model_file", "load_model", "super_resolve"]
PARAMETRIZATION = "eps"  # their UNet's output is the noise estimate
LOSS = "l1"  # their define_G's loss_type


def build_model(settings: dict, own: dict) -> torch.nn.Module:
    """Their checkpoint in the network written here, wrapped for this project's samplers
    (built on the meta device, as the report does to count parameters: the network alone)."""
    for key in ("checkpoint", "config"):
        if key not in own:
            raise janspiry.CheckpointError(
                f"training.<method>.{key} is not set: this method imports {janspiry.SOURCE}'s generator "
                "(checkpoint: the *_gen.pth file; config: their config's name or its model.unet keys)"
            )
    name, config = janspiry.resolve_config(own["config"])
    if torch.empty(()).device.type == "meta":  # the report counts parameters: the structure, not the file
        return janspiry.GammaConditioned(janspiry.JanspiryUNet(config))
    release = janspiry.RELEASES.get(name)
    scale = settings["dataset"]["scale"]
    if release and release["scale"] != scale:
        raise janspiry.CheckpointError(
            f"their config {name} super-resolves x{release['scale']} ({release['task']}); "
            f"this preset's dataset.scale is {scale}"
        )
    network, source = janspiry.read_checkpoint(
        own["checkpoint"], name, config, own.get("sha256"), settings["diffusion"]["training_schedule"]
    )
    return janspiry.GammaConditioned(network, source)


def save_model_file(path, model, settings: dict, own: dict, training: dict) -> None:
    janspiry.save_model(path, model, training)


def load_model(path) -> torch.nn.Module:
    return janspiry.load_model(path)


def training_loss(settings: dict):
    """Fine-tuning from the checkpoint: their objective on the preset's training schedule."""
    return partial(_loss, training_schedule=settings["diffusion"]["training_schedule"])


def _loss(model, upsampled_lr, hr, generator, rows=None, batch_size=None, *, training_schedule):
    return diffusion.training_loss(
        model, upsampled_lr, hr, training_schedule, generator, LOSS, PARAMETRIZATION, rows, batch_size
    )


def super_resolve(model, lr_images, scale: int, seeds: list[int], settings: dict, progress) -> list:
    """SR3's sampling (``sr3.method.super_resolve``: the preset's or the variant's sampler and
    inference schedule, per-image seeds) with the eps parametrisation of their network."""
    settings = {**settings, "diffusion": {**settings["diffusion"], "parametrization": PARAMETRIZATION}}
    return sr3_method.super_resolve(model, lr_images, scale, seeds, settings, progress)
