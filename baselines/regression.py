"""The regression baseline of SR3 (Sec. 5): the same UNet, without noise conditioning,
trained with MSE to output the HR image from the bicubic-upsampled LR image.

The output is the HR image estimate itself; it is parametrised as the upsampled input
plus the UNet's output (a global residual connection, as in VDSR, Kim et al. 2016), which
makes the short CPU trainings of small presets start from bicubic instead of from zero."""
from __future__ import annotations

import torch
from torch.nn import functional as F


def predict_hr(model, upsampled_lr: torch.Tensor) -> torch.Tensor:
    return upsampled_lr + model(upsampled_lr)


def regression_loss(model, upsampled_lr, hr, generator):
    """loss_fn(model, upsampled_lr, hr, generator) for the shared Trainer (generator unused)."""
    return F.mse_loss(predict_hr(model, upsampled_lr), hr)


@torch.no_grad()
def regression_super_resolve(model, upsampled_lr: torch.Tensor) -> torch.Tensor:
    return predict_hr(model, upsampled_lr).clamp(-1, 1)
