"""Per-image LPIPS (Zhang et al. 2018), version 0.1 with the AlexNet trunk.

The linear calibration layers ship with the ``lpips`` package. The ImageNet AlexNet
trunk is loaded from the provisioned offline file (see :mod:`metrics.weights`) when
present, else downloaded by torchvision as usual; if neither works the error names
``sr3bench provision-weights``.

Reference: lpips 0.1.4 ``LPIPS.__init__`` (``pnet_rand=True`` skips the trunk download,
``pretrained=True`` still loads the linear layers) and ``LPIPS.forward`` (inputs in
[-1, 1], NCHW); ``pretrained_networks.alexnet`` (``net.net.slice{1..5}`` hold the
modules of ``torchvision.models.alexnet().features`` under their original indices).
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from sr3bench.core.progress import progress
from sr3bench.metrics.weights import (
    DOWNLOAD_ERRORS,
    WeightsUnavailableError,
    default_weights_dir,
    missing_message,
    offline_alexnet_trunk,
)


def load_trunk_into(net, trunk_state: dict) -> None:
    """Load a torchvision ``features.*`` state dict into lpips' sliced AlexNet (strict)."""
    renamed = {}
    for key in net.state_dict():
        # slice2.3.weight -> features.3.weight
        renamed[key] = trunk_state[re.sub(r"^slice\d+\.", "features.", key)]
    net.load_state_dict(renamed, strict=True)


@lru_cache(maxsize=4)
def lpips_model(weights_dir: str):
    """``lpips.LPIPS(net='alex', version='0.1')`` in eval mode, trunk as described above.
    Returns (model, trunk source)."""
    found = offline_alexnet_trunk(weights_dir)
    if found is not None:
        path, meta = found
        model = _lpips(pnet_rand=True)
        load_trunk_into(model.net, torch.load(path, map_location="cpu", weights_only=True))
        source = meta["source"]
    else:
        try:
            model = _lpips(pnet_rand=False)
        except DOWNLOAD_ERRORS as e:
            raise WeightsUnavailableError(missing_message("ImageNet AlexNet weights for LPIPS", e, weights_dir)) from e
        source = "torchvision download"
    return model.eval().requires_grad_(False), source


def trunk_description(weights_dir=None) -> str:
    """Which AlexNet trunk LPIPS uses with ``weights_dir``, for the protocol record: the
    provisioned file (its source and SHA-256) or torchvision's ImageNet download."""
    found = offline_alexnet_trunk(weights_dir)  # None: $SR3BENCH_WEIGHTS or ./weights, as lpips_model's
    if found is None:
        return "AlexNet trunk: torchvision's ImageNet download"
    meta = found[1]
    return f"AlexNet trunk {meta.get('file')} from {meta.get('source')} (SHA-256 {str(meta.get('sha256'))[:16]}...)"


def _lpips(pnet_rand: bool):
    """``lpips.LPIPS`` without the two torchvision deprecation warnings its call of
    ``alexnet(pretrained=...)`` raises in every stage log (lpips 0.1.4; nothing a user can do)."""
    import lpips

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The parameter 'pretrained' is deprecated", UserWarning)
        warnings.filterwarnings("ignore", "Arguments other than a weight enum", UserWarning)
        return lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=pnet_rand, verbose=False)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float 1x3xHxW in [-1, 1]."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3 images, got {image.dtype} {image.shape}")
    # a copy: images as read (np.asarray of a PIL image) are read-only, which torch warns of
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


# AlexNet's trunk (an 11x11 stride-4 convolution, then three 3x3 stride-2 max-poolings)
# leaves its last pooling nothing to pool on a side under 31 pixels.
MIN_SIDE = 31


def size_problem(images) -> str | None:
    """Why LPIPS cannot score ``images`` (HxW[xC] arrays), or None: a side under MIN_SIDE."""
    small = [image.shape[:2] for image in images if min(image.shape[:2]) < MIN_SIDE]
    if not small:
        return None
    height, width = min(small, key=min)
    return (
        f"LPIPS's AlexNet needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels, and {len(small)} of "
        f"{len(images)} are smaller (the smallest {height}x{width})"
    )


def lpips_per_image(sr_images, hr_images, weights_dir=None, desc: str | None = None) -> list[float]:
    """LPIPS distance of each SR image to its HR image (lower is more similar), with a
    progress bar called ``desc`` (None: none). Raises ValueError for images LPIPS cannot score
    (``size_problem``)."""
    if len(sr_images) != len(hr_images):
        raise ValueError(f"{len(sr_images)} SR images but {len(hr_images)} HR images")
    problem = size_problem(sr_images)
    if problem:
        raise ValueError(problem)
    model, _ = lpips_model(str(Path(weights_dir) if weights_dir is not None else default_weights_dir()))
    scores = []
    with torch.no_grad():
        pairs = zip(sr_images, hr_images)
        for sr, hr in progress(
            pairs, desc=desc, total=len(sr_images), unit="image", mininterval=2, disable=desc is None
        ):
            if sr.shape != hr.shape:
                raise ValueError(f"SR shape {sr.shape} != HR shape {hr.shape}")
            scores.append(float(model(_to_tensor(sr), _to_tensor(hr)).item()))
    return scores
