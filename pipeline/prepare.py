"""The prepare stage: HR images and the LR images made from them, split into train and test.

Layout written under ``data/<preset>/``::

    train/shards/shard-*.tar, index.json   training pairs, streamed by index (sr3bench/core/shards.py)
    val/{hr,lr}/*.png  test/{hr,lr}/*.png  whole images, read by sampling and evaluation
    manifest.json                          every item of every split with its sha256

(as ``pipeline.layout`` names them; ``val`` only when the preset has validation images).
Validation images are treated as test images are (whole, or centre-cropped), and are
prepared after the test split, so adding them changes neither of the other splits.

How an HR image is made from a source image (``dataset.fit``):

* ``crop``: random ``hr_size`` crops for training, the whole (or centre-cropped) image
  for test and validation;
* ``resize``: the whole square image resized to ``hr_size`` (faces, Saharia et al. 2021
  Sec. 4: FFHQ and CelebA-HQ at 128x128);
* ``square_crop_area``: images whose shorter side is below ``hr_size`` are dropped (and
  counted in the manifest), the rest cropped to their largest central square and shrunk
  to ``hr_size`` by area interpolation (the paper's ImageNet preprocessing, Sec. 4).

LR images are made by ``sr3bench.core.resize.downsample`` (MATLAB-compatible bicubic, antialiased)
unless a folder dataset provides them (``lr_source: provided``); in a cascade
(``dataset.lr_from``, docs/cascade.md) the test split's LR images are an upstream preset's
outputs, read from its samples folder and recorded in the manifest. Two source images with
one file stem in a split are refused: they would be written to one name. A source image
whose pixels equal one of another split (a copy under another name) is refused where the
splits are drawn from one folder (``dataset.image_split``: the copy would leak test images
into training), and named in a warning where the dataset's own folders hold both.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from pipeline import layout
from sr3bench.core.atomic import atomic_path
from sr3bench.core.checksums import file_sha256
from sr3bench.core.image_check import BadImageError, load_dataset_image
from sr3bench.core.images import IMAGE_SUFFIXES, list_images, list_images_recursive, write_png
from sr3bench.core.progress import progress
from sr3bench.core.resize import area_resize, downsample, imresize
from sr3bench.core.shards import ShardWriter

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


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR from HR; a grey HR gives a grey LR (resized as one channel)."""
    return downsample(hr, scale)


def square_crop_area(image: np.ndarray, size: int) -> np.ndarray:
    """The largest central square, shrunk to size x size by area interpolation."""
    side = min(image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    square = image[top : top + side, left : left + side]
    return square if side == size else area_resize(square, (size, size))


def resized_square(image: np.ndarray, size: int, path: Path) -> np.ndarray:
    height, width = image.shape[:2]
    if height != width:
        raise BadImageError(
            f"{path}: {height}x{width} is not square; "
            "dataset.fit 'resize' expects aligned square images (use 'square_crop_area')"
        )
    return image if height == size else imresize(image, (size, size))


def hr_pieces(
    image: np.ndarray, split: str, stem: str, group: str, dataset: dict, rng, path: Path
) -> list[tuple[str, np.ndarray]]:
    """The HR images one source image gives in a split, with their file names."""
    size, fit = dataset["hr_size"], dataset["fit"]
    if fit == "resize":
        return [(f"{group}_{stem}.png", resized_square(image, size, path))]
    if fit == "square_crop_area":
        return [(f"{group}_{stem}.png", square_crop_area(image, size))]
    crops = dataset["train_crops_per_image" if split == "train" else "test_crops_per_image"]
    if crops == 0:
        return [
            (f"{group}_{stem}.png", crop_to_multiple(center_crop(image, dataset["test_center_crop"]), dataset["scale"]))
        ]
    return [
        (f"{group}_{stem}_{index:03d}.png", crop) for index, crop in enumerate(random_crops(image, size, crops, rng))
    ]


def prepare_split(
    sources: list[tuple[str, str, Path]],
    split: str,
    dataset: dict,
    out: Path,
    rng,
    provided_lr=None,
    items_per_shard: int = 4096,
    chained_lr=None,
    shared: SharedImages | None = None,
):
    """Make the HR/LR pairs of a split and write each as it is made (training split:
    shards, in the order of the sources; the others: PNG folders), so that a split of
    any size passes through memory one image at a time. Returns the manifest rows and
    the number of dropped images."""
    scale = dataset["scale"]
    whole = split != "train" and dataset["fit"] == "crop" and dataset["test_crops_per_image"] == 0
    minimum = 1 if dataset["fit"] == "square_crop_area" else dataset["hr_size"]
    writer = ShardWriter(layout.shard_folder(out, split), items_per_shard) if split == "train" else None
    rows, dropped = [], 0
    for group, stem, path in progress(sources, desc=f"prepare {split}", mininterval=2):
        image = load_dataset_image(path, min_size=minimum, keep_grey=whole)
        if shared is not None:
            shared.add(image, split, path)
        image = shrink(image, dataset["source_downscale"])
        if dataset["fit"] == "square_crop_area" and min(image.shape[:2]) < dataset["hr_size"]:
            dropped += 1
            log.info(
                "%s: %s is %dx%d, below %d: dropped (square_crop_area)",
                split,
                path,
                *image.shape[:2],
                dataset["hr_size"],
            )
            continue
        for name, hr in hr_pieces(image, split, stem, group, dataset, rng, path):
            if writer is None:
                refuse_too_large(hr, path, split, dataset["max_test_pixels"])
            if chained_lr is not None:  # a cascade: the upstream preset's output of this test image
                lr = chained_lr(name)
            else:
                lr = provided_lr(group, path) if provided_lr and whole else make_lr(hr, scale)
            expected = (hr.shape[0] // scale, hr.shape[1] // scale)
            if lr.shape[:2] != expected:
                origin = "dataset.lr_from's" if chained_lr is not None else "provided"
                raise ValueError(f"{path}: {origin} LR image is {lr.shape[:2]}, expected {expected} for scale {scale}")
            row = {"name": name, "group": group, "source": str(path)}
            if writer is not None:
                row.update(writer.add(name, hr, lr))
            else:
                row["grey"] = hr.ndim == 2
                for kind, image_out in (("hr", hr), ("lr", lr)):
                    target = layout.split_under(out, split, kind) / name
                    write_png(image_out, target)
                    row[f"{kind}_sha256"] = file_sha256(target)
            rows.append(row)
    if writer is not None:
        writer.close()
    log.info("%s: %d source images -> %d pairs (%d dropped)", split, len(sources), len(rows), dropped)
    return rows, dropped


class SharedImages:
    """Source images whose decoded pixels appear in more than one split (16-byte digests:
    ImageNet's 1.28M training images take about 250 MiB)."""

    def __init__(self) -> None:
        self.first: dict[bytes, tuple[str, Path]] = {}
        self.shared: list[tuple[tuple[str, Path], tuple[str, Path]]] = []

    def add(self, image: np.ndarray, split: str, path: Path) -> None:
        digest = hashlib.sha256(str(image.shape).encode() + image.tobytes()).digest()[:16]
        seen = self.first.setdefault(digest, (split, path))
        if seen[0] != split:
            self.shared.append((seen, (split, path)))

    def check(self, refuse: bool) -> None:
        if not self.shared:
            return
        pairs = "; ".join(f"{a[0]} {a[1]} = {b[0]} {b[1]}" for a, b in self.shared[:5])
        more = f" and {len(self.shared) - 5} more" if len(self.shared) > 5 else ""
        message = f"{len(self.shared)} source image(s) of one split are pixel for pixel in another: {pairs}{more}"
        if refuse:
            raise ValueError(
                f"{message}. Test images would leak into training: remove the copies from dataset.root "
                "(dataset.image_split draws the splits from that folder)"
            )
        log.warning("%s: the dataset's own folders hold these copies (an image of one split also in another)", message)


def refuse_too_large(hr: np.ndarray, path: Path, split: str, limit: int) -> None:
    """A test or validation image is super-resolved whole: one too large for the machine's
    memory would fail only at sampling, after training. Refuse it here, naming it."""
    height, width = hr.shape[:2]
    if height * width > limit:
        raise BadImageError(
            f"{path}: the {split} image would be {height}x{width} ({height * width / 1e6:.1f} M pixels), above "
            f"dataset.max_test_pixels ({limit / 1e6:.1f} M), and sampled whole. Set dataset.test_center_crop to "
            "keep a central region, or raise dataset.max_test_pixels if this machine has the memory."
        )


def refuse_duplicate_stems(split: str, sources: list[tuple[str, str, Path]]) -> None:
    """Two images of one group and stem would be written to one file: one would be lost."""
    seen: dict[tuple[str, str], Path] = {}
    for group, stem, path in sources:
        if (group, stem) in seen:
            raise ValueError(
                f"{split} split: {seen[group, stem]} and {path} have the same name stem {stem!r}, and the prepared "
                "images are named by stem; rename or remove one of them"
            )
        seen[group, stem] = path


def split_by_image(root: Path, counts: dict, seed: int) -> dict[str, list]:
    """A flat (or nested) folder of images split into test, val and train by a seeded
    permutation of the sorted file list: the same folder and seed give the same split."""
    images = list_images_recursive(root)
    needed = counts["test"] + counts["val"] + 1
    if len(images) < needed:
        raise FileNotFoundError(
            f"{root} (dataset.root) holds {len(images)} images; dataset.image_split needs at least {needed} "
            f"(test {counts['test']}, val {counts['val']}, and training images)"
        )
    order = np.random.default_rng(seed).permutation(len(images))
    chosen = [images[i] for i in order]
    test, val, train = chosen[: counts["test"]], chosen[counts["test"] : needed - 1], chosen[needed - 1 :]
    group = root.name
    return {
        "train": [("train", p.stem, p) for p in sorted(train)],
        "val": [(group, p.stem, p) for p in sorted(val)],
        "test": [(group, p.stem, p) for p in sorted(test)],
    }


def dataset_sources(dataset: dict, seed: int = 0) -> dict[str, list]:
    """{split: [(group, stem, path), ...]} for the train, val and test splits."""
    if dataset["source"] == "skimage":
        return {
            "train": [("train", name, skimage_photo_path(name)) for name in dataset["train_images"]],
            "val": [(name, name, skimage_photo_path(name)) for name in dataset["val_images"]],
            "test": [(name, name, skimage_photo_path(name)) for name in dataset["test_images"]],
        }
    root = Path(dataset["root"]).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset folder {root} not found; set presets.<preset>.dataset.root in params.yaml to your local copy"
            + (" (or run the download stage: sr3bench download)" if dataset["downloads"] else "")
        )
    if dataset["image_split"]:
        return split_by_image(root, dataset["image_split"], seed)
    train = [("train", name, skimage_photo_path(name)) for name in dataset["train_images"]]
    if dataset["train_folder"]:
        folder = root / dataset["train_folder"]
        if not folder.is_dir():
            raise FileNotFoundError(f"training folder {folder} not found (dataset.root / dataset.train_folder)")
        train = [("train", p.stem, p) for p in list_images_recursive(folder)]
        if not train:
            raise FileNotFoundError(
                f"training folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); put the images there, "
                "or point dataset.root / dataset.train_folder at a folder that has them"
            )
    val = _set_folders(root, dataset["val_folders"], "val")
    if dataset["val_from_train"]:
        train, held_out = hold_out(train, dataset["val_from_train"], seed)
        val += [("val", stem, path) for _, stem, path in held_out]
    return {"train": train, "val": val, "test": _set_folders(root, dataset["test_folders"], "test")}


def hold_out(sources: list, count: int, seed: int) -> tuple[list, list]:
    """(kept, held out): ``count`` sources chosen by a seeded permutation, order kept."""
    if count >= len(sources):
        raise ValueError(
            f"dataset.val_from_train: {count} of {len(sources)} training images would leave none to train on"
        )
    chosen = set(np.random.default_rng(seed).permutation(len(sources))[:count].tolist())
    return [s for i, s in enumerate(sources) if i not in chosen], [s for i, s in enumerate(sources) if i in chosen]


def _set_folders(root: Path, folders: list[str], split: str) -> list:
    """(set name, stem, path) of the HR images of each ``<root>/<set>/HR`` folder, or of
    ``<root>/<set>`` itself when it has no HR sub-folder."""
    sources, keys = [], f"dataset.root / dataset.{split}_folders"
    for folder in folders:
        hr_folder = root / folder / "HR" if (root / folder / "HR").is_dir() else root / folder
        if not hr_folder.is_dir():
            raise FileNotFoundError(
                f"{split} folder {root / folder} not found "
                f"(expected <root>/<set>/HR/ or <root>/<set>/ with the HR images; {keys})"
            )
        images = list_images(hr_folder)
        if not images:
            raise FileNotFoundError(
                f"{split} folder {hr_folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); put the images there, "
                f"or point {keys} at a folder that has them"
            )
        sources += [(Path(folder).name, p.stem, p) for p in images]
    return sources


class ChainedLR:
    """The test LR images of a cascade's preset (``dataset.lr_from``): the upstream preset's
    outputs, ``samples/<preset>/<method>/<name>``, one per test image and named like it."""

    def __init__(self, lr_from: dict):
        self.link = lr_from
        self.folder = layout.samples_dir(lr_from["preset"], lr_from["method"])
        self.key = "dataset.lr_from"
        if not self.folder.is_dir():
            raise FileNotFoundError(
                f"{self.folder} not found: {self.key} takes the test LR images from {lr_from['method']} of preset "
                f"{lr_from['preset']}; run that preset first (the engines do: snakemake or dvc repro)"
            )

    def read(self, name: str) -> np.ndarray:
        path = self.folder / name
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: {self.key} ({self.link['preset']}, {self.link['method']}) has no output for the "
                f"test image {name}; the upstream preset must have this preset's test images"
            )
        return load_dataset_image(path, min_size=1, keep_grey=True)

    def check_all_read(self, names: list[str]) -> None:
        """Every upstream output is a test image here (one left over means other test images)."""
        extra = sorted({p.name for p in list_images(self.folder)} - set(names))
        if extra:
            raise ValueError(
                f"{self.folder} holds {len(extra)} image(s) that are not test images of this preset "
                f"({', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''}): {self.key} must name a preset with "
                "the same test images"
            )

    def record(self) -> dict:
        return {**self.link, "folder": str(self.folder)}


def prepare(preset: dict, out: Path) -> None:
    dataset = preset["dataset"]
    rng = np.random.default_rng(preset["seed"])
    sources = dataset_sources(dataset, preset["seed"])
    for split, items in sources.items():
        refuse_duplicate_stems(split, items)
    root = Path(dataset["root"]).expanduser() if dataset["root"] else None

    def provided_lr(group: str, hr_path: Path) -> np.ndarray:
        lr_path = root / group / dataset["lr_folder"] / hr_path.name
        if not lr_path.exists():
            raise FileNotFoundError(f"provided LR image {lr_path} for {hr_path} not found")
        return load_dataset_image(lr_path, min_size=1, keep_grey=True)

    lr_maker = provided_lr if dataset["lr_source"] == "provided" else None
    manifest = {
        "downsampling": "MATLAB-compatible bicubic imresize (a = -0.5, antialiased), sr3bench/core/resize.py",
        "fit": dataset["fit"],
        "lr_source": dataset["lr_source"],
        "scale": dataset["scale"],
        "dropped": {},
    }
    chained = ChainedLR(dataset["lr_from"]) if dataset["lr_from"] else None
    if chained:
        manifest["lr_from"] = chained.record()  # the test split's LR images: an upstream preset's outputs
    order = ["train", "test"] + (["val"] if sources["val"] else [])  # val last: the other splits' crops do not move
    shared = SharedImages()
    for split in order:
        manifest[split], manifest["dropped"][split] = prepare_split(
            sources[split],
            split,
            dataset,
            out,
            rng,
            None if split == "train" else lr_maker,
            chained_lr=chained.read if chained and split == "test" else None,
            shared=shared,
        )
    shared.check(refuse=bool(dataset["image_split"]))
    if chained:
        chained.check_all_read([row["name"] for row in manifest["test"]])
    with atomic_path(out / layout.MANIFEST_NAME) as temporary:
        temporary.write_text(json.dumps(manifest, indent=1))
