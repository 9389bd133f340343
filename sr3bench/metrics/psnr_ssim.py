"""PSNR and SSIM with scikit-image, on uint8 images as saved.

SSIM uses the settings of Wang et al. 2004 (Gaussian window, sigma 1.5,
``use_sample_covariance=False``, K1 = 0.01, K2 = 0.03, data range 255), as documented
for ``skimage.metrics.structural_similarity``.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sr3bench.metrics.protocol import metric_arrays

DATA_RANGE = 255.0
# scikit-image's Gaussian window at sigma 1.5: 2 * round(3.5 * 1.5) + 1 = 11 pixels a side.
SSIM_WINDOW = 11
SSIM_SETTINGS = (
    "Gaussian window sigma 1.5, K1 = 0.01, K2 = 0.03, population covariance, data range 255 (Wang et al. 2004)"
)


def psnr(sr_image: np.ndarray, hr_image: np.ndarray, color: str = "rgb", border: int = 0) -> float:
    """PSNR in dB of an SR image against its HR image under the given protocol."""
    estimate, reference = metric_arrays(sr_image, hr_image, color, border)
    with np.errstate(divide="ignore"):  # an SR image equal to its HR image: inf, without numpy's warning
        return float(peak_signal_noise_ratio(reference, estimate, data_range=DATA_RANGE))


def ssim(sr_image: np.ndarray, hr_image: np.ndarray, color: str = "rgb", border: int = 0) -> float:
    """SSIM (mean over the image, and over channels for RGB) under the given protocol.
    ValueError, naming the border crop, for an image under the window's 11x11 pixels."""
    estimate, reference = metric_arrays(sr_image, hr_image, color, border)
    if min(reference.shape[:2]) < SSIM_WINDOW:
        height, width = hr_image.shape[:2]
        left = f"{reference.shape[0]}x{reference.shape[1]}"
        where = f"a {height}x{width} image cropped by {border} px a side (protocol.border_crop) leaves {left}"
        raise ValueError(
            f"SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} Gaussian window needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels; "
            + (f"{where}: lower protocol.border_crop" if border else f"this image is {left}")
        )
    return float(
        structural_similarity(
            reference,
            estimate,
            data_range=DATA_RANGE,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=-1 if reference.ndim == 3 else None,
        )
    )
