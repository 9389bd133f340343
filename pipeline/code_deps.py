"""The code files each stage depends on, in one place: the Snakemake rules list them as
inputs, the generated dvc.yaml as deps, and checkpoints and unfinished sampling runs are
keyed by their hash, so a code change that re-runs a stage also stops it from continuing
work made by the old code. A method's own files come from its registry entry. Paths are
relative to the project root, which is also the folder holding the installed packages."""
from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline import registry

IMAGE_CODE = ["sr3bench/core/images.py", "sr3bench/core/resize.py"]
DOWNLOAD_CODE = ["pipeline/download_stage.py", "pipeline/datasets.py", "sr3bench/core/download.py", "sr3bench/core/images.py", "sr3bench/core/resize.py"]
PREPARE_CODE = ["pipeline/prepare.py", "sr3bench/core/image_check.py", "sr3bench/core/images.py", "sr3bench/core/resize.py", "sr3bench/core/shards.py"]
TRAINER_CODE = ["sr3/training.py", "sr3/data.py", "sr3bench/core/shards.py", "sr3bench/core/runtime.py", "sr3bench/core/distributed.py", *IMAGE_CODE]
EVALUATE_CODE = [
    "sr3bench/metrics/evaluate.py",
    "sr3bench/metrics/psnr_ssim.py",
    "sr3bench/metrics/protocol.py",
    "sr3bench/metrics/consistency.py",
    "sr3bench/metrics/fid_kid_is.py",
    "sr3bench/metrics/lpips_metric.py",
    "sr3bench/metrics/weights.py",
    "sr3bench/core/images.py",
    "sr3bench/core/resize.py",
]
TUNE_CODE = ["pipeline/tune_stage.py", *EVALUATE_CODE, "sr3/schedule_spec.py", "sr3bench/core/seeds.py", "sr3bench/core/runtime.py"]
REPORT_CODE = ["sr3bench/reporting/build.py", "sr3bench/reporting/figures.py", "sr3bench/reporting/tables.py", "sr3bench/reporting/paper.py", "sr3bench/reporting/comparison.py", "sr3bench/reporting/tuning.py", "sr3bench/reporting/provenance.py", "sr3bench/core/machine.py", "sr3/schedule_spec.py"]
FRONT_PAGE_CODE = ["sr3bench/reporting/front_page.py", "sr3bench/reporting/tables.py"]
# Imported by stage code but left untracked: they decide where and how files are written,
# never what is in them (tests/test_code_deps.py checks every other import is tracked).
UNTRACKED_CODE = {
    "sr3bench/core/atomic.py": "atomic writes",
    "sr3bench/core/progress.py": "progress lines",
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
    return _unique(IMAGE_CODE + ["sr3bench/core/runtime.py"] + list(registry.entry(method).code))


def tuning_code(method: str) -> list[str]:
    return _unique(TUNE_CODE + sampling_code(method))


PACKAGES_ROOT = Path(__file__).resolve().parents[1]


def code_fingerprint(files: list[str], root: Path = PACKAGES_ROOT) -> str:
    """Hash of the files' contents (the code this process runs, wherever it is installed)."""
    digest = hashlib.sha256()
    for name in files:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:16]
