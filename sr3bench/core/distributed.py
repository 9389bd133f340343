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


def over_ranks(loss: torch.Tensor, stopping: bool, runtime: Runtime) -> tuple[torch.Tensor, bool]:
    """A step's loss averaged over all ranks (a float64 tensor left on the device) and whether
    ``stopping`` holds on any rank, in one all-reduce of two numbers: a stop signal that
    reached one rank a step before the others stops them all at the same step (none waits
    forever for the others). On several ranks, reading the flag waits for the step; in one
    process nothing waits (the trainer reads its losses once per log line)."""
    if not runtime.distributed:
        return loss, stopping
    both = torch.stack([loss.double(), loss.new_full((), float(stopping), dtype=torch.float64)])
    dist.all_reduce(both)
    return both[0] / runtime.world_size, bool(both[1] > 0)


def barrier(runtime: Runtime) -> None:
    """Wait until every rank is here (nothing to wait for in one process, or in a rank
    simulated without a process group)."""
    if runtime.distributed and dist.is_initialized():
        dist.barrier()


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
