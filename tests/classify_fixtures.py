"""A synthetic ImageNet for the classify stages: validation images named as ILSVRC2012's,
an ILSVRC2012-shaped devkit (ground truth and meta.mat), and a tiny classifier whose
logits are a fixed function of two image features, so that its top-1/top-5 errors can be
computed by hand.

The classifier scores class k by minus the squared distance between the image's
(mean grey level, mean absolute difference of horizontal neighbours) and the class's
prototype. It gets the images normalised as ResNet-50 does (per-channel mean and std), on
which both features are one affine map of the pixel ones for a grey image, so the
ranking is that of the distances in pixel units: the prototypes below are in pixel units
and converted when the weights are saved.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import scipy.io
import torch
from PIL import Image

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# Classes in sorted-WNID order (the classifier's index k) and their prototypes:
# (mean grey level, mean |horizontal difference|).
WNIDS = ["n01000001", "n02000002", "n03000003", "n04000004", "n05000005", "n06000006", "n07000007", "n08000008"]
PROTOTYPES = [(30, 0), (200, 0), (128, 255), (128, 0), (60, 0), (90, 0), (160, 0), (250, 0)]
# The devkit's ILSVRC2012_IDs, deliberately not in WNID order: ID i is WNIDS[ID_ORDER[i - 1]].
ID_ORDER = [7, 2, 4, 0, 6, 1, 5, 3]


class TinyClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.prototypes = torch.nn.Parameter(torch.zeros(len(WNIDS), 2))

    def forward(self, x):
        brightness = x.mean(dim=(1, 2, 3))
        contrast = (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3))
        features = torch.stack([brightness, contrast], dim=1)
        return -((features[:, None, :] - self.prototypes[None]) ** 2).sum(dim=2)


def tiny_classifier() -> torch.nn.Module:
    """The classify stage's ``classify.classifier: classify_fixtures:tiny_classifier``."""
    return TinyClassifier()


def save_tiny_weights(folder: Path) -> Path:
    """The prototypes in normalised units, as a state dict named <name>-<sha256 prefix>.pth."""
    scale = np.mean([1 / (255 * s) for s in STD])
    offset = -np.mean([m / s for m, s in zip(MEAN, STD)])
    prototypes = torch.tensor([[scale * g + offset, scale * d] for g, d in PROTOTYPES], dtype=torch.float32)
    buffer = io.BytesIO()
    torch.save({"prototypes": prototypes}, buffer)
    data = buffer.getvalue()
    path = Path(folder) / f"tiny-{hashlib.sha256(data).hexdigest()[:10]}.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def solid(grey: int, height: int = 256, width: int = 256) -> np.ndarray:
    return np.full((height, width, 3), grey, np.uint8)


def checkerboard(size: int = 256) -> np.ndarray:
    """Black and white one-pixel squares: mean 127.5, every neighbour differs by 255; 4x
    downsampling (antialiased) leaves a flat grey, whatever the method makes of it."""
    board = (np.indices((size, size)).sum(axis=0) % 2 * 255).astype(np.uint8)
    return np.repeat(board[..., None], 3, axis=-1)


# Validation image i: (image, its true class). The hand-computed outcome of each, for the
# originals (baseline) and for bicubic, is in tests/test_classify.py.
IMAGES = [
    (solid(30), 0),
    (solid(200, 260, 390), 6),  # nearest 200 (class 1); the truth, 160, is the 2nd nearest
    (checkerboard(), 2),  # original: the checker class; bicubic's: flat grey, the nearest class 3
    (solid(120), 7),  # 250 is the 7th nearest of 8
    (solid(90), 5),
    (solid(250), 7),
]


def write_images(folder: Path, images=IMAGES, numbers=None) -> list[int]:
    """ILSVRC2012_val_%08d.PNG files (numbers from 1 unless given); their true classes."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, (image, _) in zip(numbers or range(1, len(images) + 1), images):
        Image.fromarray(image).save(folder / f"ILSVRC2012_val_{number:08d}.PNG")
    return [label for _, label in images]


def write_devkit(folder: Path, labels: list[int]) -> Path:
    """An extracted devkit, ILSVRC2012_devkit_t12/data/{ground truth, meta.mat}: labels
    (class indices) as ILSVRC2012_IDs, one leaf synset per class and one synset above them."""
    data = Path(folder) / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True, exist_ok=True)
    id_of = {ID_ORDER[i]: i + 1 for i in range(len(WNIDS))}  # class index -> ILSVRC2012_ID
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{id_of[k]}\n" for k in labels))
    synsets = np.zeros(len(WNIDS) + 1, dtype=[(f, "O") for f in ("ILSVRC2012_ID", "WNID", "words", "num_children")])
    for i in range(len(WNIDS)):
        synsets[i] = (i + 1, WNIDS[ID_ORDER[i]], f"class {ID_ORDER[i]}", 0)
    synsets[len(WNIDS)] = (len(WNIDS) + 1, "n09000000", "an inner synset", 2)
    scipy.io.savemat(data / "meta.mat", {"synsets": synsets})
    return Path(folder) / "ILSVRC2012_devkit_t12"


def devkit_archive(extracted: Path, target: Path) -> bytes:
    """The extracted devkit as ILSVRC2012_devkit_t12.tar.gz (its bytes)."""
    with tarfile.open(target, "w:gz") as tar:
        tar.add(extracted, arcname=extracted.name)
    return target.read_bytes()
