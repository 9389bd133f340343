"""The prepare stage: HR images and the LR images made from them, split into train and test.

Layout written under ``data/<preset>/``::

    train/{hr,lr}/*.png  val/{hr,lr}/*.png  test/{hr,lr}/*.png  manifest.json

(as ``pipeline.layout`` names them; ``val`` only when the preset lists validation images).
Validation images are treated as test images are (whole, or centre-cropped), and are
prepared after the test split, so adding them changes neither of the other splits.
LR images are made by ``core.resize.downsample`` (MATLAB-compatible bicubic, antialiased)
unless a folder dataset provides them (``lr_source: provided``).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from core.image_check import load_dataset_image
from core.atomic import atomic_path
from core.images import list_images, write_png
from core.resize import downsample, imresize
from pipeline import layout

log = logging.getLogger(__name__)


def skimage_photo_path(name: str) -> Path:
    """Path of a photograph bundled inside the scikit-image wheel (never downloaded)."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"  # layout: another package's folder
    matches = sorted(folder.glob(f"{name}.*"))
    if not matches:
        bundled = sorted(p.stem for p in folder.iterdir() if p.suffix in (".png", ".jpg"))
        raise FileNotFoundError(
            f"scikit-image photograph {name!r} is not bundled in {folder} (it would need a download); "
            f"bundled: {', '.join(bundled)}"
        )
    return matches[0]


def random_crops(image: np.ndarray, size: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    height, width = image.shape[:2]
    if height < size or width < size:
        raise ValueError(f"image of {height}x{width} is smaller than the HR crop size {size}")
    tops = rng.integers(0, height - size + 1, count)
    lefts = rng.integers(0, width - size + 1, count)
    return [image[top : top + size, left : left + size] for top, left in zip(tops, lefts)]


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central size x size region (the whole image when size is 0 or too large)."""
    height, width = image.shape[:2]
    if not size or size >= min(height, width):
        return image
    top, left = (height - size) // 2, (width - size) // 2
    return image[top : top + size, left : left + size]


def shrink(image: np.ndarray, factor: int) -> np.ndarray:
    """The photograph reduced by ``factor`` (MATLAB-compatible bicubic, antialiased) before
    any cropping: camera blur and sensor/JPEG noise shrink with it, so the HR images are
    sharp and clean, as in thumbnail datasets (FFHQ 128x128)."""
    if factor <= 1:
        return image
    image = crop_to_multiple(image, factor)
    return imresize(image, (image.shape[0] // factor, image.shape[1] // factor))


def crop_to_multiple(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so both sides are multiples of ``scale`` (the 'mod crop')."""
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def write_pair(out: Path, split: str, name: str, hr: np.ndarray, lr: np.ndarray) -> None:
    write_png(hr, layout.split_under(out, split, "hr") / name)
    write_png(lr, layout.split_under(out, split, "lr") / name)


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR from HR; a grey HR gives a grey LR (resized as one channel)."""
    return downsample(hr, scale)


def prepare_split(sources: list[tuple[str, str, Path]], split: str, dataset: dict, out: Path, rng, provided_lr=None):
    """Crop (or keep whole) each source image, make its LR, write the pairs; return manifest rows."""
    size, scale = dataset["hr_size"], dataset["scale"]
    crops = dataset["train_crops_per_image" if split == "train" else "test_crops_per_image"]
    rows = []
    for group, stem, path in sources:
        keep_grey = split != "train" and crops == 0
        image = shrink(load_dataset_image(path, min_size=size, keep_grey=keep_grey), dataset["source_downscale"])
        if crops == 0:
            hr = crop_to_multiple(center_crop(image, dataset["test_center_crop"]), scale)
            lr = provided_lr(group, path) if provided_lr else make_lr(hr, scale)
            expected = (hr.shape[0] // scale, hr.shape[1] // scale)
            if lr.shape[:2] != expected:
                raise ValueError(f"{path}: provided LR image is {lr.shape[:2]}, expected {expected} for scale {scale}")
            pieces = [(f"{group}_{stem}.png", hr, lr)]
        else:
            pieces = [
                (f"{group}_{stem}_{index:03d}.png", crop, make_lr(crop, scale))
                for index, crop in enumerate(random_crops(image, size, crops, rng))
            ]
        for name, hr, lr in pieces:
            write_pair(out, split, name, hr, lr)
            rows.append({"name": name, "group": group, "source": str(path), "grey": hr.ndim == 2})
        log.info("%s: %s -> %d pair(s)", split, path, len(pieces))
    return rows


def dataset_sources(dataset: dict) -> dict[str, list]:
    """{split: [(group, stem, path), ...]} for the train, val and test splits."""
    train = [("train", name, skimage_photo_path(name)) for name in dataset["train_images"]]
    if dataset["source"] == "skimage":
        return {
            "train": train,
            "val": [(name, name, skimage_photo_path(name)) for name in dataset["val_images"]],
            "test": [(name, name, skimage_photo_path(name)) for name in dataset["test_images"]],
        }
    root = Path(dataset["root"]).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset folder {root} not found; set presets.<preset>.dataset.root in params.yaml to your local copy"
        )
    if dataset["train_folder"]:
        train = [("train", p.stem, p) for p in list_images(root / dataset["train_folder"])]
    return {"train": train, "val": _set_folders(root, dataset["val_folders"], "val"), "test": _set_folders(root, dataset["test_folders"], "test")}


def _set_folders(root: Path, folders: list[str], split: str) -> list:
    """(set name, stem, path) of the HR images of each ``<root>/<set>/HR`` folder."""
    sources = []
    for folder in folders:
        hr_folder = root / folder / "HR"
        if not hr_folder.is_dir():
            raise FileNotFoundError(f"{split} folder {hr_folder} not found (expected <root>/<set>/HR/ with the HR images)")
        images = list_images(hr_folder)
        if not images:
            raise FileNotFoundError(f"{split} folder {hr_folder} holds no images (png, jpg ...)")
        sources += [(folder, p.stem, p) for p in images]
    return sources


def prepare(preset: dict, out: Path) -> None:
    dataset = preset["dataset"]
    rng = np.random.default_rng(preset["seed"])
    sources = dataset_sources(dataset)
    root = Path(dataset["root"]).expanduser() if dataset["root"] else None

    def provided_lr(group: str, hr_path: Path) -> np.ndarray:
        lr_path = root / group / dataset["lr_folder"] / hr_path.name
        if not lr_path.exists():
            raise FileNotFoundError(f"provided LR image {lr_path} for {hr_path} not found")
        return load_dataset_image(lr_path, min_size=1, keep_grey=True)

    lr_maker = provided_lr if dataset["lr_source"] == "provided" else None
    manifest = {
        "downsampling": "MATLAB-compatible bicubic imresize (a = -0.5, antialiased), core/resize.py",
        "lr_source": dataset["lr_source"],
        "scale": dataset["scale"],
        "train": prepare_split(sources["train"], "train", dataset, out, rng),
        "test": prepare_split(sources["test"], "test", dataset, out, rng, lr_maker),
    }
    if sources["val"]:  # after the test split: the other splits' crops do not move
        manifest["val"] = prepare_split(sources["val"], "val", dataset, out, rng, lr_maker)
    with atomic_path(out / layout.MANIFEST_NAME) as temporary:
        temporary.write_text(json.dumps(manifest, indent=1))
