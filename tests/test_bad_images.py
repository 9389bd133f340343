"""Each odd or broken dataset file is converted by a documented rule or refused with its path."""

import logging
import struct
import zlib

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps

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


def png_16_bit(path, values: np.ndarray, colour_type: int):
    """A 16-bit PNG written byte by byte (PIL cannot write 16-bit colour): ``values`` uint16
    (H, W, channels); colour type 2 RGB, 4 grey+alpha, 6 RGBA."""
    height, width = values.shape[:2]
    rows = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("colour_type, channels", [(2, 3), (6, 4), (4, 2)])
def test_16_bit_colour_pngs_are_read_at_full_depth_and_scaled_by_the_rule(tmp_path, colour_type, channels):
    """Issue 28: PIL reads a 48-bit PNG as 8 bits by dropping the low byte (v >> 8), one
    level off round(v / 257) for a fifth of the values. Every 16-bit value, once."""
    every = np.arange(65536, dtype=np.int64).reshape(256, 256)
    colour = [every, 65535 - every, every * 7919 % 65536][: 1 if channels == 2 else 3]
    alpha = [np.full_like(every, 65535)] if channels in (2, 4) else []  # opaque
    values = np.stack(colour + alpha, axis=-1).astype(np.uint16)
    path = png_16_bit(tmp_path / "deep.png", values, colour_type)
    expected = np.round(values[..., : 3 if channels > 2 else 1] / 257).astype(np.uint8)
    image = load_dataset_image(path, min_size=16)
    assert np.array_equal(image, np.broadcast_to(expected, image.shape))
    assert not np.array_equal(image[..., 0], (every >> 8).astype(np.uint8))  # what PIL alone gives


def test_an_exif_orientation_is_applied_as_viewers_show_it_and_logged(tmp_path, caplog):
    """Issue 28: a JPEG stored 96 wide with orientation 6 (rotate 90 degrees clockwise to
    view) was prepared as stored, sideways in the report."""
    stored = np.zeros((64, 96, 3), dtype=np.uint8)
    stored[:8] = 255  # the stored top edge: the right edge once turned
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    path = tmp_path / "portrait.jpg"
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)
    with caplog.at_level(logging.INFO):
        image = load_dataset_image(path, min_size=16)
    assert image.shape == (96, 64, 3)
    with Image.open(path) as viewed:
        assert np.array_equal(image, np.asarray(ImageOps.exif_transpose(viewed)))
    assert image[:, -4:].mean() > 200 and image[:, :8].mean() < 50
    assert f"{path}: EXIF orientation 6 applied, as image viewers show it: stored 96x64, used 64x96" in caplog.text


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
    assert "dataset.root / dataset.test_folders" in str(error.value)  # issue 28: the keys to change


def test_a_folder_named_like_an_image_is_skipped_with_a_warning(tmp_path, caplog):
    """Issue 28: a folder "x.png/" among the test images was opened as an image and
    refused as "corrupt or truncated ([Errno 21] Is a directory)"."""
    (tmp_path / "SetX" / "x.png").mkdir(parents=True)
    save(tmp_path / "SetX" / "baby.png", rgb(32))
    dataset = folder_dataset(root=str(tmp_path), test_folders=["SetX"])
    with caplog.at_level(logging.WARNING):
        sources = dataset_sources(dataset)
        prepare({"dataset": dataset, "seed": 0}, tmp_path / "out")
    assert [path.name for _, _, path in sources["test"]] == ["baby.png"]
    assert f"{tmp_path / 'SetX' / 'x.png'} is a folder named like an image: skipped" in caplog.text


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
