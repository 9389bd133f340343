"""Data-parallel training under torchrun (PyTorch DDP), and the same code path in one
process without it.

Each rank computes the loss of its rows of the global batch; DDP averages the gradients
over ranks, so with equal rows per rank a step equals one process's step on the whole
batch (PyTorch's DistributedDataParallel notes). Backend: NCCL on CUDA, gloo on the CPU.
torchrun sets ``MASTER_ADDR``/``MASTER_PORT``, ``RANK`` and ``WORLD_SIZE``, which
``init_process_group``'s default ``env://`` reads."""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist

from sr3bench.core.runtime import Runtime


def start(runtime: Runtime) -> None:
    """Join the process group when torchrun started several processes (once per process)."""
    if runtime.distributed and not dist.is_initialized():
        if runtime.device.type == "cuda":
            torch.cuda.set_device(runtime.device)
        dist.init_process_group("nccl" if runtime.device.type == "cuda" else "gloo")


def wrap(model: torch.nn.Module, runtime: Runtime) -> torch.nn.Module:
    """``model`` inside DistributedDataParallel when there are several ranks, else itself."""
    if not runtime.distributed:
        return model
    device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def without_gradient_sync(model: torch.nn.Module, skip: bool):
    """DDP's ``no_sync`` for the micro-batches of an accumulated step but the last."""
    return model.no_sync() if skip and hasattr(model, "no_sync") else contextlib.nullcontext()


def mean_over_ranks(value: float, runtime: Runtime) -> float:
    """The mean of a per-rank number (the loss a log line reports) over all ranks."""
    if not runtime.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=runtime.device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / runtime.world_size


def any_rank(flag: bool, runtime: Runtime) -> bool:
    """Whether ``flag`` holds on any rank: a stop signal that reached one rank a step
    before the others stops them all at the same step (none waits forever for the others)."""
    if not runtime.distributed:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=runtime.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def rows_of_rank(global_batch: int, runtime: Runtime, accumulation: int) -> list[slice]:
    """This rank's micro-batches as slices of the global batch: rank r takes the r-th of
    ``world_size`` equal blocks and splits it into ``accumulation`` equal micro-batches."""
    parts = runtime.world_size * accumulation
    if global_batch % parts:
        raise ValueError(
            f"training batch_size {global_batch} (the global batch) is not divisible by {runtime.world_size} processes "
            f"x {accumulation} gradient_accumulation steps: choose a batch size that is a multiple of {parts}"
        )
    micro = global_batch // parts
    start = runtime.rank * micro * accumulation
    return [slice(start + k * micro, start + (k + 1) * micro) for k in range(accumulation)]
