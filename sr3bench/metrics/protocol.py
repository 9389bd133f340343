"""How images are prepared before PSNR and SSIM: colour space and border crop.

Two protocols (chosen per preset in ``params.yaml``):

* ``rgb``: all three channels of the saved uint8 images, as SR3 re-implementations
  report it.
* ``y``: the luma channel of YCbCr, ITU-R BT.601 studio swing as MATLAB's
  ``rgb2ycbcr`` gives it for uint8 images (Y in [16, 235], rounded to whole levels), with
  ``border`` pixels cropped on each side: the classic SR protocol (the EDSR and RCAN
  evaluation scripts, which call ``rgb2ycbcr`` on the uint8 images they read).
"""

from __future__ import annotations

import numpy as np

PROTOCOLS = ("rgb", "y")
# MATLAB rgb2ycbcr, row for Y, applied to RGB in [0, 1], giving Y in [16, 235].
BT601_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Luma of a uint8 RGB image as MATLAB ``rgb2ycbcr`` returns it for uint8 input: whole
    levels in [16, 235] (rounded half up), as float64. Kept in float instead, Set5's
    bicubic x4 would score 28.43 dB / 0.8113, not the published 28.42 / 0.8104."""
    return np.floor(16.0 + image.astype(np.float64) @ BT601_Y_WEIGHTS / 255.0 + 0.5)


# Full-range BT.601 luma: equals the grey value for an image with R = G = B.
FULL_RANGE_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def metric_arrays(sr_image: np.ndarray, hr_image: np.ndarray, color: str, border: int):
    """The two float64 arrays (SR, HR) that PSNR/SSIM compare, in the [0, 255] scale.

    A single-channel (grey) HR image is compared in its own grey values, as the MATLAB
    evaluation scripts do for one-channel images (they skip ``rgb2ycbcr``); the RGB SR
    output is then reduced to full-range luma, which is its grey value when R = G = B.
    """
    if color not in PROTOCOLS:
        raise ValueError(f"unknown colour protocol {color!r}; allowed: {', '.join(PROTOCOLS)}")
    if sr_image.shape[:2] != hr_image.shape[:2]:
        raise ValueError(f"SR image is {sr_image.shape[:2]} but HR image is {hr_image.shape[:2]}")
    if hr_image.ndim == 2:
        reference = hr_image.astype(np.float64)
        estimate = sr_image.astype(np.float64)
        if estimate.ndim == 3:
            estimate = estimate @ FULL_RANGE_LUMA_WEIGHTS
        if color == "rgb":
            reference, estimate = (np.repeat(a[..., None], 3, axis=-1) for a in (reference, estimate))
    elif color == "y":
        reference, estimate = rgb_to_y(hr_image), rgb_to_y(sr_image)
    else:
        reference, estimate = hr_image.astype(np.float64), sr_image.astype(np.float64)
    if 2 * border >= min(hr_image.shape[:2]):
        height, width = hr_image.shape[:2]
        raise ValueError(
            f"protocol.border_crop {border} crops {border} px from each side of a {height}x{width} image, "
            "which leaves nothing; lower it"
        )
    if border:
        reference = reference[border:-border, border:-border]
        estimate = estimate[border:-border, border:-border]
    return estimate, reference


def describe(color: str, border: int) -> str:
    """One sentence for reports and the CSV ``protocol`` column."""
    space = "Y channel (BT.601, MATLAB rgb2ycbcr)" if color == "y" else "RGB"
    return f"{space}, border crop {border} px"
