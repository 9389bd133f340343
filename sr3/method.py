"""SR3 as a method: training (noise regression) and sampling (ancestral, EMA weights)."""
from __future__ import annotations

from functools import partial

import torch

from sr3 import diffusion


def sr3_loss(diffusion_config: dict):
    """loss_fn(model, upsampled_lr, hr, generator) for the shared Trainer."""
    return partial(
        _loss,
        training_schedule=diffusion_config["training_schedule"],
        norm=diffusion_config["loss"],
        parametrization=diffusion_config["parametrization"],
    )


def _loss(model, upsampled_lr, hr, generator, training_schedule, norm, parametrization):
    return diffusion.training_loss(model, upsampled_lr, hr, training_schedule, generator, norm, parametrization)


def sr3_super_resolve(model, upsampled_lr: torch.Tensor, seeds: list[int], diffusion_config: dict, progress=None) -> torch.Tensor:
    """SR images in [-1, 1] for a batch; image i's randomness comes only from seeds[i]."""
    return diffusion.sample(
        model, upsampled_lr, diffusion_config["inference_schedule"], seeds, progress, diffusion_config["parametrization"]
    )
