"""The bicubic baseline: MATLAB-compatible bicubic upsampling of the LR image."""
from __future__ import annotations

import numpy as np

from sr3.resize import upsample


def bicubic_super_resolve(lr_image: np.ndarray, scale: int) -> np.ndarray:
    return upsample(lr_image, scale)
