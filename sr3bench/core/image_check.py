"""Loading one dataset image with the documented conversion rules, or a clear error naming it.

Rules: grey and palette images are replicated to RGB (or kept grey where the protocol
needs it); RGBA/LA are composited onto white; 16-bit images are scaled to 8 bits
(value / 257, rounded; 16-bit colour and grey+alpha PNGs are read at their full depth,
which PIL alone would cut to the high byte); CMYK is converted with PIL's conversion; an
EXIF orientation is applied as image viewers apply it, and logged. Corrupt, truncated,
non-image and too-small files raise ``BadImageError`` with the path.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

log = logging.getLogger(__name__)

# How image viewers (and PIL's ImageOps.exif_transpose) turn a picture by its EXIF orientation.
ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# PIL decodes a 16-bit colour or grey+alpha PNG to 8 bits by keeping the high byte of each
# value. Decoded again through the same PNG decoder with another raw mode, the file gives
# the other bytes: as little-endian (RGB, RGBA), or byte by byte as RGBA (grey+alpha).
DEEP_PNG_RAW_MODES = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L", "LA;16B": "RGBA"}


class BadImageError(ValueError):
    """A dataset file cannot be used; the message names it and says why."""


def to_8_bit(values: np.ndarray) -> np.ndarray:
    """16-bit values scaled to 8 bits: value / 257, rounded (65535 -> 255)."""
    return np.clip(np.round(values.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


def _raw_mode(image: Image.Image) -> str | None:
    return image.tile[0][3] if image.format == "PNG" and len(image.tile) == 1 else None


def _decoded_as(path: Path, raw_mode: str) -> np.ndarray:
    """A PNG's pixels decoded with ``raw_mode`` instead of the one PIL chose."""
    with Image.open(path) as image:
        tile = image.tile[0]
        image.tile = [tile._replace(args=raw_mode) if hasattr(tile, "_replace") else (*tile[:3], raw_mode)]
        image.load()
        return np.asarray(image).astype(np.uint16)


def _deep_png(image: Image.Image, raw_mode: str, path: Path) -> Image.Image:
    """A loaded 16-bit colour or grey+alpha PNG (PIL's ``raw_mode``) as the 8-bit image of
    value / 257, rounded (grey+alpha becomes RGBA, grey replicated, as PIL itself makes it)."""
    other = _decoded_as(path, DEEP_PNG_RAW_MODES[raw_mode])
    if raw_mode == "LA;16B":
        grey, alpha = other[..., 0] << 8 | other[..., 1], other[..., 2] << 8 | other[..., 3]
        values = np.stack([grey, grey, grey, alpha], axis=-1)
    else:
        values = np.asarray(image).astype(np.uint16) << 8 | other
    return Image.fromarray(to_8_bit(values))


def _to_uint8_rgb(image: Image.Image, keep_grey: bool) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = to_8_bit(np.asarray(image))
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


def turning_orientation(image: Image.Image) -> int | None:
    """The EXIF orientation (2-8) by which image viewers turn this open image, else None."""
    if image.format == "PNG" and "exif" not in image.info:  # else getexif() decodes it all for a late chunk
        return None
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    return orientation if orientation in ORIENTATIONS else None


UPRIGHT_HINT = (
    "viewers show it turned, the metrics would read its stored pixels: save it upright without the tag "
    "(PIL's ImageOps.exif_transpose)"
)


def oriented(array: np.ndarray, orientation: int | None, path: Path) -> np.ndarray:
    """The pixels turned as image viewers show them, by the file's EXIF orientation (1-8;
    None: none that turns it)."""
    if orientation not in ORIENTATIONS:
        return array
    turned = np.asarray(Image.fromarray(array).transpose(ORIENTATIONS[orientation]))
    log.info(
        "%s: EXIF orientation %d applied, as image viewers show it: stored %dx%d, used %dx%d (width x height)",
        path,
        orientation,
        array.shape[1],
        array.shape[0],
        turned.shape[1],
        turned.shape[0],
    )
    return turned


def load_dataset_image(path: Path, min_size: int, keep_grey: bool = False) -> np.ndarray:
    """uint8 (H, W, 3) array (or (H, W) for a grey file with ``keep_grey``)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            raw_mode = _raw_mode(image)  # before load(), which drops it
            image.load()
            orientation = turning_orientation(image)
            decoded = _deep_png(image, raw_mode, path) if raw_mode in DEEP_PNG_RAW_MODES else image
            array = _to_uint8_rgb(decoded, keep_grey)
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
    array = oriented(array, orientation, path)
    height, width = array.shape[:2]
    if min(height, width) < min_size:
        raise BadImageError(
            f"{path}: {height}x{width} is smaller than the required {min_size}x{min_size}; remove it or lower hr_size"
        )
    return array
