"""The bicubic baseline: MATLAB-compatible bicubic upsampling of the LR image (the
protocol of ``pipeline/registry.py``; untrained)."""

from __future__ import annotations

import numpy as np

from sr3bench.core.resize import upsample


def bicubic_super_resolve(lr_image: np.ndarray, scale: int) -> np.ndarray:
    """RGB uint8; a grey LR image is upsampled as one channel and replicated."""
    image = upsample(lr_image, scale)
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


def super_resolve(model, lr_images, scale: int, seeds, settings: dict, progress) -> list:
    images = [bicubic_super_resolve(image, scale) for image in lr_images]
    progress(1.0)
    return images
