"""The ILSVRC2012 validation labels, read from the devkit (``ILSVRC2012_devkit_t12.tar.gz``,
which the download stage lays out as ``downloads/imagenet_devkit/``).

The devkit's readme (``ILSVRC2012_devkit_t12/readme.txt``) defines both files:

- ``data/ILSVRC2012_validation_ground_truth.txt``: line i holds the ILSVRC2012_ID (1 to
  1000) of validation image i, ``ILSVRC2012_val_%08d.JPEG``;
- ``data/meta.mat``: the struct array ``synsets``, one entry per WordNet synset with its
  ``ILSVRC2012_ID``, ``WNID`` and ``num_children``; the classes are its leaves (no
  children).

A classifier trained with torchvision's ImageFolder layout numbers the classes by their
WNIDs in sorted order (torchvision's ImageNet classes), so the class index of an image is
the position of its WNID among the sorted leaf WNIDs.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

DEVKIT_DATASET = "imagenet_devkit"  # the registered dataset the labels come from (pipeline/datasets.py)
GROUND_TRUTH_FILE = "ILSVRC2012_validation_ground_truth.txt"
META_FILE = "meta.mat"
DEVKIT_FILES = (GROUND_TRUTH_FILE, META_FILE)  # what the download stage keeps (pipeline/datasets.py's entry)
VALIDATION_STEM = re.compile(r"^ILSVRC2012_val_(\d{8})$")


class DevkitMismatchError(ValueError):
    """The devkit does not describe the images it is asked to label."""


@dataclass(frozen=True)
class Devkit:
    """``ground_truth[i]``: the ILSVRC2012_ID of validation image i + 1; ``wnids``: the
    WNID of each class's ILSVRC2012_ID."""

    folder: Path
    ground_truth: tuple[int, ...]
    wnids: dict[int, str]

    @functools.cached_property
    def classes(self) -> list[str]:
        """The leaf WNIDs in sorted order: the classifier's class indices."""
        return sorted(self.wnids.values())

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {wnid: index for index, wnid in enumerate(self.classes)}

    def label(self, number: int) -> tuple[int, str]:
        """(class index, WNID) of validation image ``number`` (from 1)."""
        wnid = self.wnids[self.ground_truth[number - 1]]
        return self._index[wnid], wnid


def read_devkit(folder: Path) -> Devkit:
    """The devkit's two files in ``folder``; an error naming what is missing or malformed."""
    import scipy.io

    folder = Path(folder)
    missing = [name for name in DEVKIT_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {', '.join(missing)} of the ILSVRC2012 devkit: run `sr3bench download --dataset "
            "imagenet_devkit` (or set datasets.imagenet_devkit.local in params.yaml to the devkit archive or its "
            "extracted folder)"
        )
    lines = (folder / GROUND_TRUTH_FILE).read_text().split()
    try:
        ground_truth = tuple(int(line) for line in lines)
    except ValueError as error:
        raise DevkitMismatchError(f"{folder / GROUND_TRUTH_FILE}: not one class id per line ({error})") from error
    synsets = scipy.io.loadmat(folder / META_FILE, squeeze_me=True)["synsets"]
    wnids = {
        int(synsets["ILSVRC2012_ID"][i]): str(synsets["WNID"][i])
        for i in range(synsets.size)
        if int(synsets["num_children"][i]) == 0
    }
    unknown = sorted(set(ground_truth) - set(wnids))
    if unknown:
        raise DevkitMismatchError(
            f"{folder / GROUND_TRUTH_FILE} names class ids {unknown[:5]} that {folder / META_FILE} does not define "
            "as classes (synsets without children): the two files are not of one devkit"
        )
    return Devkit(folder, ground_truth, wnids)


def validation_number(stem: str) -> int | None:
    """7 for ``ILSVRC2012_val_00000007``; None for any other name."""
    match = VALIDATION_STEM.match(stem)
    return int(match.group(1)) if match else None


def check_matches(devkit: Devkit, stems: list[str], folder: str) -> None:
    """The devkit labels exactly these validation images: ILSVRC2012_val_00000001 to
    ILSVRC2012_val_<N> for the N lines of its ground truth (the images of ``folder``)."""
    where = f"the ILSVRC2012 devkit in {devkit.folder} ({len(devkit.ground_truth)} validation labels)"
    strangers = [stem for stem in stems if validation_number(stem) is None]
    if strangers:
        raise DevkitMismatchError(
            f"{folder} holds images not named ILSVRC2012_val_<8 digits> ({', '.join(strangers[:3])} ...): "
            f"{where} cannot label them; the classify set needs the ImageNet validation images as published"
        )
    numbers = {validation_number(stem) for stem in stems}
    expected = set(range(1, len(devkit.ground_truth) + 1))
    if len(stems) != len(devkit.ground_truth) or numbers != expected:
        absent = sorted(expected - numbers)[:3]
        beyond = sorted(numbers - expected)[:3]
        raise DevkitMismatchError(
            f"{folder} holds {len(stems)} validation images, but {where} does not match them"
            + (f": no images numbered {absent} ..." if absent else "")
            + (f": no labels for images numbered {beyond} ..." if beyond else "")
            + ". Use the devkit of these images (ILSVRC2012_devkit_t12 for the 50,000 ILSVRC2012 validation images)"
        )
