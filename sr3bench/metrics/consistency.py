"""SR3's consistency metric (Table 1): MSE between the LR input and the SR output
downsampled with the operator that made the LR, pixels in [0, 1], in units of 1e-5."""

from __future__ import annotations

import numpy as np

from sr3bench.core.resize import downsample

UNIT = 1e-5


def consistency(sr_image: np.ndarray, lr_image: np.ndarray, scale: int) -> float:
    """MSE / 1e-5 of downsample(SR) against LR, both as uint8 images scaled to [0, 1]."""
    if lr_image.ndim == 2:
        lr_image = np.repeat(lr_image[..., None], 3, axis=-1)
    reduced = downsample(sr_image, scale)
    if reduced.shape != lr_image.shape:
        raise ValueError(f"downsampled SR is {reduced.shape} but LR is {lr_image.shape}")
    difference = (reduced.astype(np.float64) - lr_image.astype(np.float64)) / 255.0
    return float(np.mean(difference**2) / UNIT)
