"""Cost of reading training pairs from disk by index (sr3.data.PairDataset without its
cache, as a split larger than the cache streams) against the same pairs held in memory,
per batch of the demo preset, and next to one training step.

    python benchmarks/training_data.py [--preset demo] [--batches 200]

Needs a prepared split (`sr3bench prepare`). Prints seconds per batch for both sources,
and for one SR3 training step of the preset's model, so the overhead reads as a share."""

from __future__ import annotations

import argparse
import time

import torch

from pipeline import config, layout, registry
from sr3.data import PairDataset, PatchSampler


def seconds_per_call(function, calls: int) -> float:
    function()  # warm-up
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=None)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name, preset, _ = config.load("params.yaml", args.preset)
    settings = preset["training"]["sr3"]
    dataset = PairDataset(layout.shard_dir(name, "train"), preset["dataset"]["scale"], cache_bytes=0)
    in_memory = [dataset[i] for i in range(len(dataset))]  # what the default cache holds after the first epoch
    disk = PatchSampler(dataset, settings["patch_size"], settings["batch_size"], 0)
    memory = PatchSampler(in_memory, settings["patch_size"], settings["batch_size"], 0)
    method = registry.load("sr3")
    torch.manual_seed(0)
    model = method.build_model(preset, settings)
    loss_fn = method.training_loss(preset)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    generator = torch.Generator().manual_seed(1)
    lr_batch, hr_batch = memory()

    def step():
        loss = loss_fn(model, lr_batch, hr_batch, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    disk_s, memory_s = seconds_per_call(disk, args.batches), seconds_per_call(memory, args.batches)
    step_s = seconds_per_call(step, max(10, args.batches // 10))
    patch = settings["patch_size"]
    print(
        f"preset {name}: {len(dataset)} training pairs, batch {settings['batch_size']} of {patch}x{patch}, "
        f"{args.threads} thread(s)"
    )
    print(f"batch from disk (no cache): {disk_s * 1e3:7.2f} ms")
    print(f"batch from memory:          {memory_s * 1e3:7.2f} ms")
    disk_share = 100 * (disk_s - memory_s) / step_s
    print(f"SR3 training step:          {step_s * 1e3:7.2f} ms  (disk reading adds {disk_share:.1f}% to a step)")


if __name__ == "__main__":
    main()
