"""Each odd or broken dataset file is converted by a documented rule or refused with its path."""

import numpy as np
import pytest
from PIL import Image

from pipeline.config import with_defaults
from pipeline.prepare import dataset_sources, prepare
from sr3bench.core.image_check import BadImageError, load_dataset_image

pytestmark = pytest.mark.fault
RNG = np.random.default_rng(0)


def save(path, array, mode=None, **options):
    Image.fromarray(array, mode=mode).save(path, **options) if mode else Image.fromarray(array).save(path, **options)
    return path


def rgb(size=32):
    return RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_grey_is_replicated_to_rgb_or_kept(tmp_path):
    grey = RNG.integers(0, 256, (32, 32), dtype=np.uint8)
    path = save(tmp_path / "grey.png", grey)
    image = load_dataset_image(path, min_size=16)
    assert image.shape == (32, 32, 3) and np.array_equal(image[..., 1], grey)
    assert load_dataset_image(path, min_size=16, keep_grey=True).shape == (32, 32)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:16, :, 3] = 255  # top half opaque red, bottom half fully transparent
    image = load_dataset_image(save(tmp_path / "rgba.png", rgba), min_size=16)
    assert tuple(image[0, 0]) == (200, 0, 0) and tuple(image[-1, -1]) == (255, 255, 255)


def test_16_bit_is_scaled_to_8_bit(tmp_path):
    deep = np.full((32, 32), 257 * 100, dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(deep).save(path)
    image = load_dataset_image(path, min_size=16)
    assert image.dtype == np.uint8 and np.all(image == 100)


def test_cmyk_is_converted(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb()).convert("CMYK").save(path)
    image = load_dataset_image(path, min_size=16)
    assert image.shape == (32, 32, 3)


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("corrupt.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "not an image|corrupt"),
        ("notes.jpg", b"these are not pixels", "not an image"),
    ],
)
def test_unreadable_files_are_named(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadImageError, match=reason) as error:
        load_dataset_image(path, min_size=16)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_truncated_files_are_named(tmp_path, suffix):
    whole = save(tmp_path / f"whole.{suffix}", rgb(64))
    data = whole.read_bytes()
    path = tmp_path / f"truncated.{suffix}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImageError, match="corrupt or truncated") as error:
        load_dataset_image(path, min_size=16)
    assert str(path) in str(error.value)


def test_a_decompression_bomb_is_named_not_a_traceback(tmp_path, monkeypatch):
    """Issue 14: a 20000x20000 PNG raised PIL's DecompressionBombError. The same check,
    with PIL's limit lowered so that a 64x64 image trips it."""
    from PIL import Image

    path = save(tmp_path / "huge.png", rgb(64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64 // 3)  # PIL refuses beyond twice the limit
    with pytest.raises(BadImageError, match="too many pixels to open safely") as error:
        load_dataset_image(path, min_size=16)
    assert str(path) in str(error.value)


def test_too_small_images_are_named(tmp_path):
    path = save(tmp_path / "small.png", rgb(20))
    with pytest.raises(BadImageError, match="smaller than the required 64x64") as error:
        load_dataset_image(path, min_size=64)
    assert str(path) in str(error.value)


def folder_dataset(**values) -> dict:
    """A folder dataset section with the schema's defaults, as the stages receive it."""
    return with_defaults(
        {"source": "folder", "hr_size": 16, "scale": 4, "lr_source": "downsample", **values},
        "#/$defs/preset/properties/dataset",
    )


def test_an_empty_test_folder_is_reported(tmp_path):
    (tmp_path / "Set0" / "HR").mkdir(parents=True)
    dataset = folder_dataset(root=str(tmp_path), test_folders=["Set0"])
    with pytest.raises(FileNotFoundError, match="holds no images") as error:
        dataset_sources(dataset)
    assert "Set0" in str(error.value)


def test_a_missing_dataset_root_names_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.root"):
        dataset_sources(folder_dataset(root=str(tmp_path / "nowhere"), test_folders=["Set5"]))


def benchmark_folder(root, lr_size):
    """<root>/SetX/HR/baby.png (32x32) and its provided LR (``lr_size``, or none)."""
    (root / "SetX" / "HR").mkdir(parents=True)
    save(root / "SetX" / "HR" / "baby.png", rgb(32))
    if lr_size:
        (root / "SetX" / "LR_bicubic_x4").mkdir()
        save(root / "SetX" / "LR_bicubic_x4" / "baby.png", rgb(lr_size))
    return folder_dataset(
        root=str(root), test_folders=["SetX"], lr_folder="LR_bicubic_x4", lr_source="provided", hr_size=16
    )


@pytest.mark.parametrize(
    "lr_size, message",
    [(None, "provided LR image .*not found"), (6, r"provided LR image is \(6, 6\), expected \(8, 8\)")],
)
def test_a_missing_or_mis_sized_provided_lr_image_is_named(tmp_path, lr_size, message):
    dataset = benchmark_folder(tmp_path / "sets", lr_size)
    with pytest.raises((FileNotFoundError, ValueError), match=message) as error:
        prepare({"dataset": dataset, "seed": 0}, tmp_path / "out")
    assert "baby.png" in str(error.value)


def test_a_test_image_too_large_to_sample_whole_is_refused_at_prepare(tmp_path):
    """Issue 14: a 6000x6000 test image passed prepare and failed on memory at sampling,
    after training, naming no file. Prepare refuses it, naming the file and the keys."""
    (tmp_path / "SetX" / "HR").mkdir(parents=True)
    save(tmp_path / "SetX" / "HR" / "huge.png", rgb(64))
    dataset = folder_dataset(root=str(tmp_path), test_folders=["SetX"], hr_size=16, max_test_pixels=48 * 48)
    with pytest.raises(
        BadImageError, match=r"huge.png: the test image would be 64x64 .*dataset.max_test_pixels.*test_center_crop"
    ):
        prepare({"dataset": dataset, "seed": 0}, tmp_path / "out")
    dataset["test_center_crop"] = 48
    prepare({"dataset": dataset, "seed": 0}, tmp_path / "out")  # the fix the message gives
