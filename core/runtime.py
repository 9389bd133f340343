"""Where and how a stage computes: device, precision and process rank.

Today's path is one process in fp32 on the CPU (or one CUDA device); the fields are the
seams the scale-out work fills in (bf16/fp16, torchrun ranks). ``RANK`` and
``WORLD_SIZE`` are the variables torchrun sets."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


class RuntimeSettingError(RuntimeError):
    """A runtime setting this machine or this version cannot honour."""


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: str = "fp32"
    rank: int = 0
    world_size: int = 1

    @property
    def writes_files(self) -> bool:
        """Only rank 0 writes checkpoints, models and logs."""
        return self.rank == 0


def resolve_device(setting: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when present) as a torch device."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeSettingError("runtime.device is cuda but torch sees no CUDA device; set it to cpu or auto")
    return torch.device(setting)


def runtime_from_config(runtime_config: dict, environ=os.environ) -> Runtime:
    """The runtime of this process from the preset's ``runtime`` section and torchrun's variables."""
    rank, world_size = int(environ.get("RANK", 0)), int(environ.get("WORLD_SIZE", 1))
    if world_size != 1:
        raise RuntimeSettingError(f"WORLD_SIZE={world_size}: distributed training is not supported yet; run one process (no torchrun)")
    if runtime_config["precision"] != "fp32":
        raise RuntimeSettingError(f"runtime.precision {runtime_config['precision']!r} is not supported yet; use fp32")
    return Runtime(resolve_device(runtime_config["device"]), runtime_config["precision"], rank, world_size)


def sampling_model(implementation, path, settings: dict) -> torch.nn.Module:
    """A method's trained model, loaded onto the preset's device and compiled when
    ``sampling.compile`` asks (``torch.compile``: the first batch pays the compilation;
    benchmarks/sampling.py measures it)."""
    model = implementation.load_model(path).to(runtime_from_config(settings["runtime"]).device)
    return torch.compile(model) if settings["sampling"]["compile"] else model
