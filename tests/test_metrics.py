import numpy as np
import pytest

from sr3bench.core.resize import downsample, upsample
from sr3bench.metrics.consistency import consistency
from sr3bench.metrics.protocol import rgb_to_y
from sr3bench.metrics.psnr_ssim import psnr, ssim


def test_psnr_matches_a_hand_computed_value():
    hr = np.zeros((4, 4, 3), dtype=np.uint8)
    sr = hr.copy()
    sr[0, 0, 0] = 10  # MSE = 100 / 48
    expected = 10 * np.log10(255**2 / (100 / 48))
    assert psnr(sr, hr) == pytest.approx(expected)


def test_psnr_on_the_y_channel_uses_bt601_luma_and_crops_the_border():
    hr = np.zeros((12, 12, 3), dtype=np.uint8)
    sr = hr.copy()
    sr[0, :, :] = 255  # only the border row differs: invisible with a crop of 1
    assert psnr(sr, hr, "y", border=1) == float("inf")
    sr = hr.copy()
    sr[5, 5] = (255, 0, 0)
    # MATLAB rgb2ycbcr on uint8: Y = round(16 + 65.481 * R / 255) for pure red, 81 against black's 16
    y_difference = 81 - 16
    expected = 10 * np.log10(255**2 / (y_difference**2 / 100))
    assert psnr(sr, hr, "y", border=1) == pytest.approx(expected)
    assert rgb_to_y(np.array([[[255, 255, 255]]], dtype=np.uint8))[0, 0] == pytest.approx(235.0)


def test_ssim_is_one_for_identical_images_and_matches_the_formula_on_constants():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert ssim(image, image) == pytest.approx(1.0)
    # Two constant images: SSIM reduces to the luminance term (2ab + C1) / (a^2 + b^2 + C1).
    a, b, c1 = 100.0, 120.0, (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a**2 + b**2 + c1)
    first = np.full((32, 32, 3), 100, dtype=np.uint8)
    second = np.full((32, 32, 3), 120, dtype=np.uint8)
    assert ssim(first, second) == pytest.approx(expected, rel=1e-6)


def test_consistency_is_zero_when_the_output_downsamples_to_the_lr():
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    lr = downsample(hr, 4)
    assert consistency(hr, lr, 4) == 0.0
    assert consistency(upsample(lr, 4), lr, 4) > 0.0


def test_consistency_is_reported_in_units_of_1e_minus_5():
    lr = np.zeros((4, 4, 3), dtype=np.uint8)
    sr = np.full((16, 16, 3), 1, dtype=np.uint8)  # every LR pixel off by 1/255
    assert consistency(sr, lr, 4) == pytest.approx((1 / 255) ** 2 / 1e-5)


def test_grey_references_are_compared_in_grey_values():
    grey = np.random.default_rng(2).integers(0, 256, (16, 16), dtype=np.uint8)
    assert psnr(np.repeat(grey[..., None], 3, axis=-1), grey, "y", 2) > 200  # equal up to float rounding


@pytest.mark.fault
def test_a_border_crop_or_image_too_small_for_ssim_is_a_clear_error_naming_the_setting():
    image = np.zeros((192, 192, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="protocol.border_crop 96 crops 96 px from each side of a 192x192 image"):
        psnr(image, image, "rgb", 96)
    with pytest.raises(ValueError, match="cropped by 92 px a side .protocol.border_crop. leaves 8x8: lower"):
        ssim(image, image, "rgb", 92)  # scikit-image's own message would ask for a win_size argument
    with pytest.raises(ValueError, match="needs at least 11x11 pixels; this image is 8x8"):
        ssim(image[:8, :8], image[:8, :8])
    assert ssim(image[:11, :11], image[:11, :11]) == 1.0


def test_outputs_equal_to_their_hr_images_leave_the_mean_psnr_empty_with_the_reason(tmp_path, caplog):
    """The HR folder given as a method's outputs: PSNR infinite per image (the CSV keeps it),
    the set's mean left empty with the reason and a warning, as sr3bench score does (the
    report showed "inf" and numpy's divide-by-zero warning before)."""
    import warnings

    import pandas as pd

    from sr3bench.core.images import write_png
    from sr3bench.metrics.evaluate import evaluate_method
    from sr3bench.reporting.tables import summarise

    rng = np.random.default_rng(0)
    folders = {role: tmp_path / role for role in ("hr", "lr", "sr")}
    for name in ("a.png", "b.png"):
        hr = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
        for role, image in {"hr": hr, "lr": downsample(hr, 2), "sr": hr if name == "a.png" else 255 - hr}.items():
            write_png(image, folders[role] / name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        table, _, reasons = evaluate_method(
            "mine", folders["hr"], folders["lr"], folders["sr"], {}, {"color": "rgb", "border_crop": 0}, 2
        )
    assert np.isinf(table.set_index("name").loc["a.png", "psnr"])
    assert reasons["psnr"].startswith("infinite: a.png is identical to the HR image")
    assert "mine: 1 of 2 outputs equal their HR image pixel for pixel (a.png)" in caplog.text
    summary = summarise(table, {"mine": {}}, "rgb")
    assert pd.isna(summary.loc[0, "psnr"]) and summary.loc[0, "ssim"] < 1
