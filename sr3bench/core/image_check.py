"""Loading one dataset image with the documented conversion rules, or a clear error naming it.

Rules: grey and palette images are replicated to RGB (or kept grey where the protocol
needs it); RGBA/LA are composited onto white; 16-bit images are scaled to 8 bits
(value / 257); CMYK is converted with PIL's conversion. Corrupt, truncated, non-image
and too-small files raise ``BadImageError`` with the path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


class BadImageError(ValueError):
    """A dataset file cannot be used; the message names it and says why."""


def _to_uint8_rgb(image: Image.Image, keep_grey: bool) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = np.asarray(image, dtype=np.float64)
        grey = np.clip(np.round(grey / 257.0), 0, 255).astype(np.uint8)
        return grey if keep_grey else np.repeat(grey[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if image.mode == "L" and keep_grey:
        return np.asarray(image)
    if image.mode == "1":
        return np.asarray(image.convert("L").convert("RGB"))
    return np.asarray(image.convert("RGB"))


def load_dataset_image(path: Path, min_size: int, keep_grey: bool = False) -> np.ndarray:
    """uint8 (H, W, 3) array (or (H, W) for a grey file with ``keep_grey``)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            array = _to_uint8_rgb(image, keep_grey)
    except Image.DecompressionBombError as error:
        raise BadImageError(
            f"{path}: too many pixels to open safely ({error}); shrink the image, or remove it from the dataset folder"
        ) from error
    except UnidentifiedImageError as error:
        raise BadImageError(
            f"{path}: not an image file PIL can read ({error}); remove it from the dataset folder"
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise BadImageError(f"{path}: corrupt or truncated image ({error}); re-download or remove it") from error
    height, width = array.shape[:2]
    if min(height, width) < min_size:
        raise BadImageError(
            f"{path}: {height}x{width} is smaller than the required {min_size}x{min_size}; remove it or lower hr_size"
        )
    return array
