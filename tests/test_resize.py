import numpy as np
import pytest
from PIL import Image

from sr3bench.core.images import list_images
from sr3bench.core.resize import cubic_kernel, downsample, imresize, resize_matrix, upsample
from sr3bench.metrics.psnr_ssim import psnr, ssim

PUBLISHED_BICUBIC_X4 = {"Set5": (28.42, 0.8104), "Set14": (26.00, 0.7027)}


def test_cubic_kernel_is_keys_with_a_minus_half():
    assert cubic_kernel(np.array([0.0]))[0] == 1.0
    assert np.allclose(cubic_kernel(np.array([1.0, 2.0, -2.5])), 0.0)
    # a = -0.5 at x = 1.5: a|x|^3 - 5a|x|^2 + 8a|x| - 4a = -0.0625
    assert np.isclose(cubic_kernel(np.array([1.5]))[0], -0.0625)


def test_resize_rows_sum_to_one_and_constant_images_stay_constant():
    for in_length, out_length in [(64, 16), (16, 64), (10, 7)]:
        assert np.allclose(resize_matrix(in_length, out_length).sum(axis=1), 1.0)
    flat = np.full((32, 24, 3), 77, dtype=np.uint8)
    assert np.all(downsample(flat, 4) == 77) and np.all(upsample(flat, 2) == 77)


def test_downsampling_antialiases_unlike_plain_decimation():
    noise = np.random.default_rng(0).normal(128, 40, (64, 64))
    smooth, aliased = imresize(noise, (16, 16)), imresize(noise, (16, 16), antialias=False)
    # The stretched kernel averages about 16 input pixels per output: far less variance left.
    assert smooth.std() < 0.5 * aliased.std()


def test_scale_must_divide_the_image():
    with pytest.raises(ValueError, match="not divisible"):
        downsample(np.zeros((10, 12, 3), dtype=np.uint8), 4)


def load(path):
    with Image.open(path) as image:
        return np.asarray(image)


@pytest.mark.parametrize("set_name", ["Set5", "Set14"])
@pytest.mark.parametrize("lr_source", ["provided", "own downsampling"])
def test_bicubic_reproduces_published_benchmark_numbers(sr_benchmarks, set_name, lr_source):
    """EDSR/RCAN bicubic x4 numbers on the Y channel with a 4-pixel border crop."""
    psnrs, ssims = [], []
    for hr_path in list_images(sr_benchmarks / set_name / "HR"):
        hr = load(hr_path)
        lr = (
            load(sr_benchmarks / set_name / "LR_bicubic_x4" / hr_path.name)
            if lr_source == "provided"
            else downsample(hr, 4)
        )
        sr = upsample(lr, 4)
        if sr.ndim == 2:
            sr = np.repeat(sr[..., None], 3, axis=-1)
        psnrs.append(psnr(sr, hr, "y", 4))
        ssims.append(ssim(sr, hr, "y", 4))
    published_psnr, published_ssim = PUBLISHED_BICUBIC_X4[set_name]
    assert abs(np.mean(psnrs) - published_psnr) < 0.02  # the MATLAB-made LR: 0.001 dB, 0.0002 off
    assert abs(np.mean(ssims) - published_ssim) < 0.002
