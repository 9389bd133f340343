"""Reading and writing uint8 images, and converting them to model tensors in [-1, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sr3bench.core.atomic import atomic_path
from sr3bench.core.image_files import IMAGE_SUFFIXES as IMAGE_SUFFIXES  # re-exported: the stages list images here
from sr3bench.core.image_files import list_images as list_images
from sr3bench.core.image_files import list_images_recursive as list_images_recursive
from sr3bench.core.resize import upsample


def read_image(path: Path, keep_grey: bool = False) -> np.ndarray:
    """A uint8 (H, W, 3) RGB array; with ``keep_grey`` a one-channel file stays (H, W)."""
    with Image.open(path) as image:
        image.load()
        if keep_grey and image.mode == "L":
            return np.asarray(image)
        return np.asarray(image.convert("RGB"))


def write_png(image: np.ndarray, path: Path) -> None:
    """Write a uint8 image as PNG, atomically (a temporary name renamed when complete)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        Image.fromarray(image).save(temporary, format="PNG")


def to_tensor(images: list[np.ndarray] | np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    array = np.stack(images) if isinstance(images, list) else images
    return torch.from_numpy(array).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def upsampled_tensor(lr_images: list[np.ndarray], scale: int) -> torch.Tensor:
    """The learned methods' input: LR images enlarged by the MATLAB-compatible bicubic,
    as one float32 (N, 3, H, W) batch in [-1, 1]."""
    return to_tensor([upsample(image, scale) for image in lr_images])


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3), rounded as when saved."""
    scaled = ((tensor.detach().cpu().float().clamp(-1, 1) + 1.0) * 127.5).round()
    return scaled.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def batches_of_equal_size(names: list[str], sizes: dict, batch_size: int):
    """Consecutive runs of same-sized images, at most ``batch_size`` long."""
    batch = []
    for name in names:
        if batch and (len(batch) == batch_size or sizes[batch[0]] != sizes[name]):
            yield batch
            batch = []
        batch.append(name)
    if batch:
        yield batch
