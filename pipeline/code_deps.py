"""The code files each stage depends on, in one place: the Snakemake rules list them as
inputs, the generated dvc.yaml as deps, and checkpoints and unfinished sampling runs are
keyed by their hash, so a code change that re-runs a stage also stops it from continuing
work made by the old code. A method's own files come from its registry entry. Paths are
relative to the project root, which is also the folder holding the installed packages."""
from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline import registry

IMAGE_CODE = ["core/images.py", "core/resize.py"]
DOWNLOAD_CODE = ["pipeline/download_stage.py", "pipeline/datasets.py", "core/download.py", "core/images.py", "core/resize.py"]
PREPARE_CODE = ["pipeline/prepare.py", "core/image_check.py", "core/images.py", "core/resize.py", "core/shards.py"]
TRAINER_CODE = ["sr3/training.py", "sr3/data.py", "core/shards.py", "core/runtime.py", "core/distributed.py", *IMAGE_CODE]
EVALUATE_CODE = [
    "metrics/evaluate.py",
    "metrics/psnr_ssim.py",
    "metrics/protocol.py",
    "metrics/consistency.py",
    "metrics/fid_kid_is.py",
    "metrics/lpips_metric.py",
    "metrics/weights.py",
    "core/images.py",
    "core/resize.py",
]
TUNE_CODE = ["pipeline/tune_stage.py", *EVALUATE_CODE, "sr3/schedule_spec.py", "core/seeds.py", "core/runtime.py"]
REPORT_CODE = ["reporting/build.py", "reporting/figures.py", "reporting/tables.py", "reporting/paper.py", "reporting/comparison.py", "reporting/tuning.py", "reporting/provenance.py", "core/machine.py", "sr3/schedule_spec.py"]
FRONT_PAGE_CODE = ["reporting/front_page.py", "reporting/tables.py"]
# Imported by stage code but left untracked: they decide where and how files are written,
# never what is in them (tests/test_code_deps.py checks every other import is tracked).
UNTRACKED_CODE = {
    "core/atomic.py": "atomic writes",
    "core/progress.py": "progress lines",
    "pipeline/layout.py": "paths",
    # the tune stage's orchestration, like pipeline/stages.py: config, registry, code lists
    "pipeline/config.py": "orchestration",
    "pipeline/registry.py": "orchestration",
    "pipeline/code_deps.py": "orchestration",
    "pipeline/datasets.py": "orchestration",
}


def _unique(files) -> list[str]:
    return list(dict.fromkeys(files))


def training_code(method: str) -> list[str]:
    return _unique(TRAINER_CODE + list(registry.entry(method).code))


def sampling_code(method: str) -> list[str]:
    return _unique(IMAGE_CODE + ["core/runtime.py"] + list(registry.entry(method).code))


def tuning_code(method: str) -> list[str]:
    return _unique(TUNE_CODE + sampling_code(method))


PACKAGES_ROOT = Path(__file__).resolve().parents[1]


def code_fingerprint(files: list[str], root: Path = PACKAGES_ROOT) -> str:
    """Hash of the files' contents (the code this process runs, wherever it is installed)."""
    digest = hashlib.sha256()
    for name in files:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:16]
