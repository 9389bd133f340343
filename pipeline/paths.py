"""Where each stage reads and writes, relative to the project root (one place for both engines)."""
from __future__ import annotations

from pathlib import Path

METHODS = ("bicubic", "regression", "sr3")
TRAINED_METHODS = ("regression", "sr3")


def data_dir(preset: str) -> Path:
    return Path("data") / preset


def model_file(preset: str, method: str) -> Path:
    return Path("models") / preset / method / "model.pt"


def loss_file(preset: str, method: str) -> Path:
    return Path("models") / preset / method / "loss.csv"


def checkpoint_file(preset: str, method: str) -> Path:
    """Resumable training state, deliberately not a declared output of any stage."""
    return Path("checkpoints") / preset / method / "last.pt"


def samples_dir(preset: str, method: str) -> Path:
    return Path("samples") / preset / method


def results_file(preset: str, method: str) -> Path:
    return Path("results") / preset / f"{method}.csv"


def report_dir(preset: str) -> Path:
    return Path("reports") / preset


def fidelity_cache_dir(preset: str) -> Path:
    """torch-fidelity's cache of reference-set features (kept between runs)."""
    return Path("cache") / preset / "fidelity"


def sample_cache_dir(preset: str, method: str) -> Path:
    """Samples of unfinished sampling runs, kept for resuming."""
    return Path("cache") / preset / "samples" / method
