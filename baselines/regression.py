"""The regression baseline of SR3 (Sec. 5): the same UNet, without noise conditioning,
trained with MSE to output the HR image directly from the bicubic-upsampled LR image."""
from __future__ import annotations

import torch
from torch.nn import functional as F


def regression_loss(model, upsampled_lr, hr, generator):
    """loss_fn(model, upsampled_lr, hr, generator) for the shared Trainer (generator unused)."""
    return F.mse_loss(model(upsampled_lr), hr)


@torch.no_grad()
def regression_super_resolve(model, upsampled_lr: torch.Tensor) -> torch.Tensor:
    return model(upsampled_lr).clamp(-1, 1)
