"""The code files each stage depends on, in one place: the Snakemake rules list them as
inputs, and checkpoints and unfinished sampling runs are keyed by their hash, so a code
change that re-runs a stage also stops it from continuing work made by the old code.
dvc.yaml lists the same files (checked by tests/test_engines_agree.py). Paths are relative
to the project root, which is also the folder holding the installed packages."""
from __future__ import annotations

import hashlib
from pathlib import Path

TRAINING_CODE = [
    "sr3/unet.py",
    "sr3/model_file.py",
    "sr3/diffusion.py",
    "sr3/schedule.py",
    "sr3/method.py",
    "sr3/training.py",
    "sr3/data.py",
    "sr3/images.py",
    "sr3/resize.py",
    "baselines/regression.py",
]

SAMPLING_CODE = [
    "sr3/unet.py",
    "sr3/model_file.py",
    "sr3/diffusion.py",
    "sr3/schedule.py",
    "sr3/method.py",
    "sr3/images.py",
    "sr3/resize.py",
    "baselines/bicubic.py",
    "baselines/regression.py",
]

PACKAGES_ROOT = Path(__file__).resolve().parents[1]


def code_fingerprint(files: list[str], root: Path = PACKAGES_ROOT) -> str:
    """Hash of the files' contents (the code this process runs, wherever it is installed)."""
    digest = hashlib.sha256()
    for name in files:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:16]
