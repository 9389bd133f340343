"""Where and how a stage computes: device, precision, memory layout and process rank.

``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` are the variables torchrun sets; without them
the process is rank 0 of 1 and runs the same code path. None of these settings changes
what a stage computes beyond float rounding, so neither engine tracks them (see
``pipeline/stage_table.py``); the report's provenance records them.

``runtime.precision: auto`` is resolved once, when a stage builds its runtime: bf16 where
the hardware computes it natively (a CUDA GPU that supports bfloat16; a CPU with AMX or
AVX-512 BF16, as ``/proc/cpuinfo``'s flags ``amx_bf16`` and ``avx512_bf16`` say), fp32
elsewhere. The choice and its reason travel in ``Runtime.precision_reason`` into the model
file's provenance; weights trained in bf16 differ from fp32 ones, so ``auto`` makes a
model depend on the machine (docs/performance.md)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from sr3bench.core.machine import cpu_name


class RuntimeSettingError(RuntimeError):
    """A runtime setting this machine or this version cannot honour."""


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo's names for native bf16 arithmetic


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: str = "fp32"
    rank: int = 0
    world_size: int = 1
    channels_last: bool = False
    gradient_checkpointing: bool = False
    data_workers: int = 0
    precision_reason: str = ""  # why this precision: the setting, or what runtime.precision auto found

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise RuntimeSettingError(
                f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)} "
                "(runtime.precision auto is resolved by runtime_from_config)"
            )
        if not 0 <= self.rank < self.world_size:
            raise RuntimeSettingError(
                f"RANK={self.rank} is not one of the WORLD_SIZE={self.world_size} ranks: "
                "start the processes with torchrun"
            )

    @property
    def writes_files(self) -> bool:
        """Only rank 0 writes checkpoints, models and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self):
        """Mixed precision around a forward pass (and its loss): bf16 or fp16 autocast on
        the CPU or CUDA; nothing in fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    def layout(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` in the memory format the model computes in."""
        return (
            tensor.contiguous(memory_format=torch.channels_last) if self.channels_last and tensor.dim() == 4 else tensor
        )

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.gradient_checkpointing:
            if not hasattr(model, "gradient_checkpointing"):
                raise RuntimeSettingError(f"runtime.gradient_checkpointing: {type(model).__name__} does not support it")
            model.gradient_checkpointing = True
        return model


def resolve_device(setting: str, local_rank: int = 0) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when present) as a torch device; under torchrun
    each process on a node takes the GPU of its ``LOCAL_RANK``."""
    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeSettingError("runtime.device is cuda but torch sees no CUDA device; set it to cpu or auto")
        if local_rank >= torch.cuda.device_count():
            raise RuntimeSettingError(
                f"LOCAL_RANK={local_rank} but this node has {torch.cuda.device_count()} GPUs: "
                "start at most that many processes per node"
            )
        return torch.device("cuda", local_rank)
    return torch.device(setting)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as Linux lists them (empty where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):  # x86, ARM
            return set(line.split(":", 1)[1].split())
    return set()


def resolve_precision(setting: str, device: torch.device, flags: set[str] | None = None) -> tuple[str, str]:
    """The precision a stage computes in and why: the setting itself, or for ``auto`` bf16
    where ``device`` computes it natively and fp32 elsewhere. ``flags``: the CPU's (read
    from /proc/cpuinfo when None)."""
    if setting != "auto":
        return setting, f"runtime.precision is {setting}"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return "bf16", f"runtime.precision auto: {name} computes bfloat16 natively"
        return "fp32", f"runtime.precision auto: {name} has no native bfloat16"
    if device.type == "cpu":
        found = [flag for flag in CPU_BF16_FLAGS if flag in (cpu_flags() if flags is None else flags)]
        if found:
            return "bf16", f"runtime.precision auto: the CPU ({cpu_name()}) has {' and '.join(found)}"
        return "fp32", (
            f"runtime.precision auto: the CPU ({cpu_name()}) has neither {' nor '.join(CPU_BF16_FLAGS)}, "
            "so bf16 would be emulated (many times slower)"
        )
    return "fp32", f"runtime.precision auto: fp32 on {device.type}"


def runtime_from_config(runtime_config: dict, environ=os.environ) -> Runtime:
    """The runtime of this process from the preset's ``runtime`` section and torchrun's variables."""
    rank, world_size = int(environ.get("RANK", 0)), int(environ.get("WORLD_SIZE", 1))
    device = resolve_device(runtime_config["device"], int(environ.get("LOCAL_RANK", 0)))
    precision, reason = resolve_precision(runtime_config["precision"], device)
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise RuntimeSettingError(
            f"runtime.precision bf16: {torch.cuda.get_device_name(device)} does not support bfloat16; use fp16 or fp32"
        )
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = runtime_config.get("tf32", True)
        torch.backends.cudnn.allow_tf32 = runtime_config.get("tf32", True)
    return Runtime(
        device,
        precision,
        rank,
        world_size,
        channels_last=runtime_config.get("channels_last", False),
        gradient_checkpointing=runtime_config.get("gradient_checkpointing", False),
        data_workers=runtime_config.get("data_workers", 0),
        precision_reason=reason,
    )


def sampling_model(implementation, path, settings: dict) -> torch.nn.Module:
    """A method's trained model, loaded onto the preset's device (in channels_last when
    ``sampling.channels_last`` asks) and compiled when ``sampling.compile`` asks
    (``torch.compile``: the first batch pays the compilation; benchmarks/sampling.py
    measures it). A model file whose network is not the preset's ``model:`` is refused, where
    the method's module can tell (its optional ``model_mismatch(path, model_config)``)."""
    check = getattr(implementation, "model_mismatch", None)
    mismatch = check(path, settings["model"]) if check else None
    if mismatch:
        raise ValueError(
            f"{path} was trained with another model: than the preset's ({mismatch}); train it again "
            f"(sr3bench train --method {Path(path).parent.name}), which the engines do when model: changes"
        )
    model = implementation.load_model(path).to(runtime_from_config(settings["runtime"]).device)
    if settings["sampling"].get("channels_last", False):
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if settings["sampling"]["compile"] else model
