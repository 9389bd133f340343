"""The classify set (the paper's Table 3): the first ``classify.images`` ImageNet validation
images as the classifier's originals and as the SR methods' inputs, with their labels.

Written by the prepare_classify stage of a preset with a ``classify`` section, beside (and
independent of) its test split, under ``data/<preset>.classify/``::

    original/<stem>.png   224x224: shorter side resized to 256 (PIL bilinear, antialiased),
                          centre crop 224x224, as torchvision's ImageNet evaluation of
                          ResNet-50 (the baseline row)
    lr/<stem>.png         64x64: the 224x224 image shrunk 4x to 56x56 by the project's
                          resize (MATLAB-compatible bicubic, antialiased), then enlarged to
                          64x64 by the same bicubic; what each method super-resolves
    classify.json         the chain (every size and resampling), the devkit's files and
                          their sha256, and each image's source, class index and WNID

Saharia et al. 2021, Sec. 4.4 (Table 3): 4x super-resolution of 56x56 centre crops of the
first 1,000 validation images, classified by a pre-trained ResNet-50; the later version of
the paper states the chain: bicubic 56 -> 64, SR 64 -> 256, resize to 224.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline import layout
from pipeline.imagenet_devkit import DEVKIT_DATASET, DEVKIT_FILES, check_matches, read_devkit, validation_number
from sr3bench.core.atomic import atomic_path
from sr3bench.core.checksums import file_sha256
from sr3bench.core.image_check import load_dataset_image
from sr3bench.core.images import write_png
from sr3bench.core.progress import progress
from sr3bench.core.resize import downsample, imresize

log = logging.getLogger(__name__)

SHORTER_SIDE = 256
CROP = 224
LR_FACTOR = 4  # 224 -> 56
INPUT_SIZE = 64  # 56 -> 64, the SR methods' input

CHAIN = {
    "original": f"shorter side resized to {SHORTER_SIDE} (PIL bilinear, antialiased; the longer side "
    f"truncated to an integer, as torchvision's Resize({SHORTER_SIDE})), centre crop {CROP}x{CROP} "
    "(torchvision's CenterCrop): the standard ResNet-50 evaluation",
    "lr": f"the {CROP}x{CROP} original shrunk {LR_FACTOR}x to {CROP // LR_FACTOR}x{CROP // LR_FACTOR} "
    "(MATLAB-compatible bicubic, a = -0.5, antialiased: sr3bench/core/resize.py)",
    "input": f"{CROP // LR_FACTOR}x{CROP // LR_FACTOR} enlarged to {INPUT_SIZE}x{INPUT_SIZE} "
    "(MATLAB-compatible bicubic)",
}


def standard_crop(image: np.ndarray) -> np.ndarray:
    """Shorter side to 256 by PIL's antialiased bilinear filter, then the central 224x224
    (torchvision's ``Resize(256)`` and ``CenterCrop(224)`` on a PIL image, as their
    documentation defines them: the longer side is ``int(256 * long / short)``, the crop's
    top-left corner ``round((size - 224) / 2)``)."""
    height, width = image.shape[:2]
    short, long = min(height, width), max(height, width)
    other = int(SHORTER_SIDE * long / short)
    size = (SHORTER_SIDE, other) if height <= width else (other, SHORTER_SIDE)  # (height, width)
    if size != (height, width):
        image = np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.BILINEAR))
    top, left = round((size[0] - CROP) / 2), round((size[1] - CROP) / 2)
    return image[top : top + CROP, left : left + CROP]


def classify_input(original: np.ndarray) -> np.ndarray:
    """The 64x64 input of the SR methods: 224 -> 56 -> 64, the project's bicubic."""
    small = downsample(original, LR_FACTOR)
    return imresize(small, (INPUT_SIZE, INPUT_SIZE))


def prepare_classify(test_sources: list[tuple[str, str, Path]], preset: dict, out: Path) -> None:
    """Lay out the classify set under ``out`` (the stage's staging folder) from the test
    split's source images, which must be the ImageNet validation images its devkit labels."""
    count = preset["classify"]["images"]
    devkit_folder = layout.download_dir(DEVKIT_DATASET)
    devkit = read_devkit(devkit_folder)
    folders = sorted({str(path.parent) for _, _, path in test_sources}) or ["(no test images)"]
    check_matches(devkit, [stem for _, stem, _ in test_sources], " and ".join(folders))
    by_number = sorted(test_sources, key=lambda source: validation_number(source[1]))
    if len(by_number) < count:
        raise ValueError(
            f"classify.images is {count}, but the test folders hold {len(by_number)} validation images; lower it"
        )
    rows = []
    for _, stem, path in progress(by_number[:count], desc="prepare classify", mininterval=2):
        original = standard_crop(load_dataset_image(path, min_size=1))
        name = f"{stem}.png"
        write_png(original, layout.classify_under(out, "original") / name)
        write_png(classify_input(original), layout.classify_under(out, "lr") / name)
        index, wnid = devkit.label(validation_number(stem))
        rows.append({"name": name, "source": str(path), "label": index, "wnid": wnid})
    manifest = {
        "images": len(rows),
        "chain": CHAIN,
        "sizes": {"original": CROP, "lr": CROP // LR_FACTOR, "input": INPUT_SIZE},
        "labels": {
            "source": f"ILSVRC2012 devkit ({devkit_folder}): {' and '.join(DEVKIT_FILES)}; "
            "class index: the WNID's position among the sorted WNIDs of the classes (torchvision's order)",
            "classes": len(devkit.classes),
            "sha256": {name: file_sha256(devkit_folder / name) for name in DEVKIT_FILES},
        },
        "rows": rows,
    }
    with atomic_path(layout.classify_under(out) / layout.CLASSIFY_MANIFEST_NAME) as temporary:
        temporary.write_text(json.dumps(manifest, indent=1))
    log.info("classify: %d validation images, %d classes", len(rows), len(devkit.classes))
