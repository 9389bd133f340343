"""The prepare stage at paper scale: the faces' resize and split by image, ImageNet's
square crop with area resizing, training pairs in shards, a sha256 for every item, and no
image silently lost."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image
from projects import committed_params

from pipeline.config import with_defaults
from pipeline.prepare import prepare, square_crop_area
from sr3bench.core.resize import area_resize
from sr3bench.core.shards import ShardReader


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def faces(folder, count, size=64):
    rng = np.random.default_rng(1)
    for index in range(count):
        save(folder / f"{index:06d}.jpg", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return folder


def dataset(**values):
    return with_defaults(
        {"source": "folder", "scale": 4, "lr_source": "downsample", **values}, "#/$defs/preset/properties/dataset"
    )


def test_a_folder_of_faces_is_split_by_image_resized_and_hashed(tmp_path):
    root = faces(tmp_path / "faces", 12)
    out = tmp_path / "out"
    prepare(
        {"dataset": dataset(root=str(root), image_split={"test": 3, "val": 2}, fit="resize", hr_size=32), "seed": 0},
        out,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    splits = {split: {row["source"] for row in manifest[split]} for split in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [7, 2, 3]
    assert (
        not (splits["train"] & splits["test"])
        and not (splits["train"] & splits["val"])
        and not (splits["val"] & splits["test"])
    )
    for row in manifest["test"]:  # each test image: the whole face at hr_size, its hash in the manifest
        hr = out / "test" / "hr" / row["name"]
        assert np.asarray(Image.open(hr)).shape == (32, 32, 3)
        assert hashlib.sha256(hr.read_bytes()).hexdigest() == row["hr_sha256"]
    reader = ShardReader(out / "train" / "shards")
    assert [reader.name(i) for i in range(len(reader))] == [row["name"] for row in manifest["train"]]
    hr, lr = reader[0]
    assert hr.shape == (32, 32, 3) and lr.shape == (8, 8, 3)
    again = tmp_path / "again"
    prepare(
        {"dataset": dataset(root=str(root), image_split={"test": 3, "val": 2}, fit="resize", hr_size=32), "seed": 0},
        again,
    )
    assert json.loads((again / "manifest.json").read_text())["test"] == manifest["test"]  # the split is reproducible


def test_imagenet_preprocessing_drops_small_images_and_area_resizes_the_central_square(tmp_path):
    rng = np.random.default_rng(2)
    wide = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    save(tmp_path / "imagenet" / "train" / "n001" / "wide.png", wide)
    save(tmp_path / "imagenet" / "train" / "n002" / "small.png", rng.integers(0, 256, (20, 50, 3), dtype=np.uint8))
    save(tmp_path / "imagenet" / "val" / "v1.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    values = dataset(
        root=str(tmp_path),
        train_folder="imagenet/train",
        test_folders=["imagenet/val"],
        fit="square_crop_area",
        hr_size=32,
    )
    out = tmp_path / "out"
    prepare({"dataset": values, "seed": 0}, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dropped"]["train"] == 1 and [row["name"] for row in manifest["train"]] == ["train_wide.png"]
    hr, _ = ShardReader(out / "train" / "shards")[0]
    assert np.array_equal(hr, area_resize(wide[:, 10:50], (32, 32)))
    assert np.array_equal(square_crop_area(wide, 40), wide[:, 10:50])  # no resize when the square has the size


def test_area_resize_averages_the_pixels_each_output_covers():
    image = np.arange(36, dtype=np.float64).reshape(6, 6)
    assert np.allclose(area_resize(image, (2, 3)), image.reshape(2, 3, 3, 2).mean(axis=(1, 3)))
    assert np.allclose(area_resize(np.full((7, 5), 3.0), (3, 2)), 3.0)  # fractional coverage keeps a constant


@pytest.mark.fault
def test_two_images_with_one_stem_are_refused_by_the_real_cli(tmp_path):
    """Issue 14: img_002.png and img_002.jpg (different pictures) used to become one
    prepared image while the manifest listed both."""
    rng = np.random.default_rng(3)
    for name in ("img_002.png", "img_003.png", "img_002.jpg"):
        save(tmp_path / "sets" / "SetX" / "HR" / name, rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    params = committed_params()
    params["preset"] = "dup"
    params["presets"] = {
        "dup": dict(
            params["presets"]["demo"],
            dataset={
                "source": "folder",
                "root": str(tmp_path / "sets"),
                "test_folders": ["SetX"],
                "train_images": ["astronaut"],
                "hr_size": 16,
                "scale": 4,
                "lr_source": "downsample",
            },
            methods=None,
            tune=None,
            variants={},
            model=dict(params["presets"]["demo"]["model"], channel_multipliers=[1, 2]),
            training={m: dict(params["presets"]["demo"]["training"][m], patch_size=16) for m in ("sr3", "regression")},
        )
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "prepare"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "img_002.png" in result.stderr and "img_002.jpg" in result.stderr and "same name stem" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "data" / "dup").exists()


def test_a_copy_of_an_image_in_another_split_is_refused_where_the_splits_are_drawn(tmp_path, caplog):
    """A folder holding each face twice under two names (x.jpg, "x copy.png"): a random
    split puts copies of test images into training, silently before."""
    root = faces(tmp_path / "faces", 10)
    for path in sorted(root.iterdir()):
        Image.open(path).save(root / f"{path.stem} copy.png")
    preset = {
        "dataset": dataset(root=str(root), image_split={"test": 3, "val": 2}, fit="resize", hr_size=32),
        "seed": 0,
    }
    with pytest.raises(ValueError, match="pixel for pixel in another.*remove the copies from dataset.root"):
        prepare(preset, tmp_path / "out")

    from pipeline.prepare import SharedImages  # the dataset's own folders: named in a warning, not refused

    shared, image = SharedImages(), np.zeros((4, 4, 3), np.uint8)
    shared.add(image, "train", root / "a.png")
    shared.add(image + 1, "test", root / "b.png")
    shared.add(image, "train", root / "c.png")  # a copy inside one split: not a leak
    shared.check(refuse=True)
    shared.add(image, "test", root / "d.png")
    shared.check(refuse=False)
    assert f"train {root / 'a.png'} = test {root / 'd.png'}" in caplog.text


def test_a_broken_link_in_a_dataset_folder_is_named_not_skipped(tmp_path):
    root = faces(tmp_path / "faces", 8)
    (root / "gone.png").symlink_to(tmp_path / "nowhere.png")
    preset = {
        "dataset": dataset(root=str(root), image_split={"test": 2, "val": 1}, fit="resize", hr_size=32),
        "seed": 0,
    }
    with pytest.raises(FileNotFoundError, match="gone.png is a link to .*nowhere.png, which does not exist"):
        prepare(preset, tmp_path / "out")


def test_macos_metadata_files_beside_the_images_are_skipped_with_a_warning(tmp_path, caplog):
    """A folder copied from a Mac holds ._000001.jpg beside 000001.jpg: not an image (prepare failed on it)."""
    from sr3bench.core.image_files import list_images

    root = faces(tmp_path / "faces", 3)
    (root / "._000001.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    assert [p.name for p in list_images(root)] == ["000000.jpg", "000001.jpg", "000002.jpg"]
    assert "._000001.jpg is macOS metadata (AppleDouble), not an image: skipped" in caplog.text
