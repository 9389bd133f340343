"""The regression baseline of SR3 (Sec. 5): the same UNet, without noise conditioning,
trained with MSE to output the HR image from the bicubic-upsampled LR image (the
protocol of ``pipeline/registry.py``).

The output is the HR image estimate itself; it is parametrised as the upsampled input
plus the UNet's output (a global residual connection, as in VDSR, Kim et al. 2016), which
makes the short CPU trainings of small presets start from bicubic instead of from zero."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from sr3.model_file import build_unet, load_model, save_model
from sr3.model_file import settings_mismatch as model_mismatch
from sr3.unet import padded_to_depth
from sr3bench.core.images import to_uint8, upsampled_tensor

__all__ = ["build_model", "training_loss", "save_model_file", "load_model", "model_mismatch", "super_resolve"]


def predict_hr(model, upsampled_lr: torch.Tensor) -> torch.Tensor:
    return upsampled_lr + model(upsampled_lr)


def regression_loss(model, upsampled_lr, hr, generator, rows=None, batch_size=None):
    """loss_fn(model, upsampled_lr, hr, generator, rows, batch_size) for the shared Trainer;
    it draws no randomness, so the generator and the rows' place in the batch are unused."""
    return F.mse_loss(predict_hr(model, upsampled_lr), hr)


def build_model(settings: dict, own: dict) -> torch.nn.Module:
    return build_unet(settings["model"], own["patch_size"], noise_conditioned=False)


def save_model_file(path, model, settings: dict, own: dict, training: dict) -> None:
    save_model(path, model, settings["model"], own["patch_size"], noise_conditioned=False, training=training)


def training_loss(settings: dict):
    return regression_loss


@torch.no_grad()
def regression_super_resolve(model, upsampled_lr: torch.Tensor) -> torch.Tensor:
    return predict_hr(model, upsampled_lr).clamp(-1, 1)


def super_resolve(model, lr_images, scale: int, seeds, settings: dict, progress) -> list:
    device = next(model.parameters()).device
    upsampled, (height, width) = padded_to_depth(model, upsampled_tensor(lr_images, scale).to(device))
    sr = regression_super_resolve(model, upsampled)
    progress(1.0)
    return list(to_uint8(sr[..., :height, :width]))
