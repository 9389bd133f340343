"""MATLAB-compatible bicubic ``imresize``.

Written from MATLAB's documented ``imresize`` behaviour (Image Processing Toolbox
documentation, "imresize": bicubic kernel of Keys with a = -0.5, antialiasing when
shrinking, symmetric padding at the borders, each dimension resized separately).

How it differs from the other bicubics:

* PIL's ``Image.BICUBIC`` uses a = -0.5 too and also antialiases when shrinking, but it
  works on uint8 with fixed-point weights and rounds after each pass, so results differ
  by up to a few grey levels.
* ``torch.nn.functional.interpolate(mode="bicubic")`` uses a = -0.75, pads by clamping
  the edge pixel instead of mirroring, and does not antialias unless ``antialias=True``.

The classic SR benchmark numbers (Set5/Set14 bicubic PSNR) are computed with MATLAB's
resizer, so they are reproduced only with this one.
"""

from __future__ import annotations

import functools

import numpy as np

KERNEL_WIDTH = 4.0  # the cubic kernel is non-zero on (-2, 2)


def cubic_kernel(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    absx = np.abs(x)
    absx2, absx3 = absx**2, absx**3
    near = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1)
    far = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2))
    return near + far


@functools.lru_cache(maxsize=256)
def resize_matrix(in_length: int, out_length: int, antialias: bool = True) -> np.ndarray:
    """The (out_length, in_length) matrix that resizes one dimension like MATLAB (cached:
    a dataset resizes the same sizes again and again; the array is read-only)."""
    scale = out_length / in_length
    kernel_width = KERNEL_WIDTH
    kernel = cubic_kernel
    if scale < 1 and antialias:
        kernel_width = KERNEL_WIDTH / scale

        def kernel(x):  # stretched kernel: low-pass before decimation
            return scale * cubic_kernel(scale * x)

    out_coords = np.arange(1, out_length + 1, dtype=np.float64)
    # Position of each output pixel centre in input coordinates (1-based, as in MATLAB).
    centres = out_coords / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(centres - kernel_width / 2)
    taps = int(np.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(centres[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric padding: index 0 maps to 1, in_length + 1 to in_length, and so on.
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    source = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    rows = np.repeat(np.arange(out_length), taps)
    np.add.at(matrix, (rows, source.ravel()), weights.ravel())
    matrix.setflags(write=False)
    return matrix


def imresize(image: np.ndarray, output_hw: tuple[int, int], antialias: bool = True) -> np.ndarray:
    """Resize an (H, W) or (H, W, C) image like MATLAB ``imresize(image, output_hw, 'bicubic')``.

    A uint8 input is computed in float64 and returned as uint8 rounded and clipped, as
    MATLAB does; a float input is returned as float64 without clipping.
    """
    if image.ndim not in (2, 3):
        raise ValueError(f"imresize expects an (H, W) or (H, W, C) array, got shape {image.shape}")
    out_h, out_w = output_hw
    in_h, in_w = image.shape[:2]
    # MATLAB resizes the dimension with the smaller scale factor first (rows on a tie).
    height_first = out_h / in_h <= out_w / in_w
    return _separable(
        image, output_hw, (0, 1) if height_first else (1, 0), functools.partial(resize_matrix, antialias=antialias)
    )


@functools.lru_cache(maxsize=64)
def area_matrix(in_length: int, out_length: int) -> np.ndarray:
    """The (out_length, in_length) matrix of area interpolation when shrinking: each
    output pixel is the mean of the input pixels it covers, weighted by the covered
    fraction of each (OpenCV's ``INTER_AREA`` for downscaling, by its documented
    definition: resampling using pixel area relation)."""
    if out_length > in_length:
        raise ValueError(f"area interpolation only shrinks; asked for {in_length} -> {out_length}")
    step = in_length / out_length
    starts, ends = np.arange(out_length) * step, (np.arange(out_length) + 1) * step
    pixels = np.arange(in_length)
    overlap = np.clip(
        np.minimum(ends[:, None], pixels[None, :] + 1) - np.maximum(starts[:, None], pixels[None, :]), 0, None
    )
    matrix = overlap / step
    matrix.setflags(write=False)
    return matrix


def area_resize(image: np.ndarray, output_hw: tuple[int, int]) -> np.ndarray:
    """Shrink an image by area interpolation (the paper's ImageNet preprocessing)."""
    return _separable(image, output_hw, (0, 1), area_matrix)


def _separable(image: np.ndarray, output_hw, dims, matrix_for) -> np.ndarray:
    """Apply one resize matrix per dimension, in the order ``dims``, in float64; a uint8
    input is returned rounded and clipped to uint8 (as MATLAB does)."""
    data = image.astype(np.float64)
    for dim in dims:
        matrix = matrix_for(data.shape[dim], output_hw[dim])
        data = np.moveaxis(np.tensordot(matrix, np.moveaxis(data, dim, 0), axes=1), 0, dim)
    if image.dtype == np.uint8:
        return np.clip(np.round(data), 0, 255).astype(np.uint8)
    return data


def downsample(image: np.ndarray, scale: int) -> np.ndarray:
    """Shrink an HR image by an integer ``scale`` (the operator that makes LR images)."""
    height, width = image.shape[:2]
    if height % scale or width % scale:
        raise ValueError(f"image of {height}x{width} is not divisible by scale {scale}; crop it first")
    return imresize(image, (height // scale, width // scale))


def upsample(image: np.ndarray, scale: int) -> np.ndarray:
    """Enlarge an LR image by an integer ``scale`` (the bicubic baseline and SR3's input)."""
    height, width = image.shape[:2]
    return imresize(image, (height * scale, width * scale))
