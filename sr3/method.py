"""SR3 as a compared method (the protocol of ``pipeline/registry.py``): the noise-conditioned
UNet, trained by noise regression, sampled ancestrally from its EMA weights."""

from __future__ import annotations

from functools import partial

import torch

from sr3 import diffusion
from sr3.model_file import build_unet, load_model, save_model
from sr3.model_file import settings_mismatch as model_mismatch
from sr3.unet import padded_to_depth
from sr3bench.core.images import to_uint8, upsampled_tensor

__all__ = ["build_model", "training_loss", "save_model_file", "load_model", "model_mismatch", "super_resolve"]


def build_model(settings: dict, own: dict) -> torch.nn.Module:
    return build_unet(settings["model"], own["patch_size"], noise_conditioned=True)


def save_model_file(path, model, settings: dict, own: dict, training: dict) -> None:
    save_model(path, model, settings["model"], own["patch_size"], noise_conditioned=True, training=training)


def training_loss(settings: dict, conditional: bool = True):
    """loss_fn(model, upsampled_lr, hr, generator, rows, batch_size) for the shared Trainer;
    ``conditional=False`` (the base generator): the upsampled LR images are not the model's."""
    config = settings["diffusion"]
    return partial(
        _loss,
        training_schedule=config["training_schedule"],
        norm=config["loss"],
        parametrization=config["parametrization"],
        conditional=conditional,
    )


def _loss(
    model,
    upsampled_lr,
    hr,
    generator,
    rows=None,
    batch_size=None,
    *,
    training_schedule,
    norm,
    parametrization,
    conditional,
):
    condition = upsampled_lr if conditional else None
    return diffusion.training_loss(
        model, condition, hr, training_schedule, generator, norm, parametrization, rows, batch_size
    )


def super_resolve(model, lr_images, scale: int, seeds: list[int], settings: dict, progress) -> list:
    """uint8 SR images for one batch; image i's randomness comes only from seeds[i]."""
    device = next(model.parameters()).device
    upsampled, (height, width) = padded_to_depth(model, upsampled_tensor(lr_images, scale).to(device))
    config = settings["diffusion"]
    schedule, sampler = config["inference_schedule"], config["sampler"]
    steps = schedule["steps"]
    sr = diffusion.sample(
        model, upsampled, schedule, seeds, lambda: progress(1 / steps), config["parametrization"], sampler
    )
    return list(to_uint8(sr[..., :height, :width]))
