"""Sampling speed per sampler: seconds per network evaluation, seconds per image at the
tuned schedules, and peak memory; and whether channels_last, bf16 autocast (CPU or
CUDA) or torch.compile (``sampling.compile``) sample faster, with the largest pixel
difference they make.

    python benchmarks/sampling.py [--preset demo] [--evaluations 20] [--batch 3] [--device cpu]

Uses the preset's trained SR3 model (models/<preset>/sr3/model.pt) and its test LR images;
the tuned schedules come from results/<preset>/tune/sr3.json when the tune stage ran.
Each measurement runs in its own process, so its peak memory (RSS on the CPU, allocated
memory on CUDA) is its own. Prints one table."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time

import torch

from pipeline import config, layout
from sr3 import diffusion
from sr3.method import load_model
from sr3bench.core.images import read_image, to_uint8, upsampled_tensor


def measure(job: dict) -> dict:
    """One timing in a fresh process: ``evaluations`` steps of ``sampler`` (a schedule of
    that many steps), after one warm-up step."""
    torch.set_num_threads(job["threads"])
    device = torch.device(job["device"])
    model = load_model(layout.model_file(job["preset"], "sr3")).to(device)
    lr = [read_image(path) for path in job["lr_files"]]
    upsampled = upsampled_tensor(lr, job["scale"]).to(device)
    if job["channels_last"]:
        model, upsampled = (
            model.to(memory_format=torch.channels_last),
            upsampled.contiguous(memory_format=torch.channels_last),
        )
    if job["compile"]:
        model = torch.compile(model)  # compiled during the warm-up step below
    schedule = job["schedule"]
    seeds = list(range(len(lr)))

    def run(steps_schedule):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=job["bf16"]):
            return diffusion.sample(
                model, upsampled, steps_schedule, seeds, None, job["parametrization"], job["sampler"]
            )

    run({**schedule, "steps": 1})  # warm-up: kernels chosen, caches filled
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    images = run(schedule)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "seconds": seconds,
        "peak_mib": peak,
        "images": to_uint8(images.float()).tolist() if job["keep_images"] else None,
    }


def in_own_process(job: dict) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (job,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=None)
    parser.add_argument("--evaluations", type=int, default=20, help="network evaluations timed per sampler")
    parser.add_argument("--batch", type=int, default=3, help="test images sampled at once")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    name, preset, _ = config.load("params.yaml", args.preset)
    lr_files = [str(p) for p in sorted(layout.split_dir(name, "test", "lr").iterdir())][: args.batch]
    base = {
        "preset": name,
        "lr_files": lr_files,
        "scale": preset["dataset"]["scale"],
        "threads": args.threads,
        "device": args.device,
        "parametrization": preset["diffusion"]["parametrization"],
        "channels_last": False,
        "bf16": False,
        "compile": False,
        "keep_images": False,
        "schedule": {"steps": args.evaluations, "shape": "cosine"},
    }
    size = read_image(lr_files[0]).shape[0] * preset["dataset"]["scale"]
    print(f"preset {name}: batch of {len(lr_files)} images of {size}x{size}, {args.threads} threads, {args.device}")
    print(f"{'sampler':<22}{'s / evaluation':>16}{'s / evaluation / image':>24}{'peak MiB':>10}")
    per_evaluation = {}
    for sampler in diffusion.SAMPLERS:
        result = in_own_process({**base, "sampler": sampler})
        per_evaluation[sampler] = result["seconds"] / args.evaluations
        per_image = per_evaluation[sampler] / len(lr_files)
        print(f"{sampler:<22}{per_evaluation[sampler]:>16.3f}{per_image:>24.3f}{result['peak_mib']:>10.0f}")

    choices_file = layout.tune_choices_file(name, "sr3")
    if choices_file.exists():
        choices = json.loads(choices_file.read_text())["choices"]
        reference = preset["diffusion"]["training_schedule"]["steps"]
        print(
            f"\ntuned schedules (the reference, ancestral over the training schedule: {reference} evaluations, "
            f"{reference * per_evaluation['ancestral'] / len(lr_files):.1f} s per image at this batch):"
        )
        for variant, choice in choices.items():
            steps = choice["inference_schedule"]["steps"]
            seconds = in_own_process({**base, "sampler": choice["sampler"], "schedule": choice["inference_schedule"]})[
                "seconds"
            ] / len(lr_files)
            print(
                f"  sr3@{variant}: {choice['sampler']}, {steps} steps: {seconds:.2f} s per image, "
                f"{reference / steps:.0f}x fewer evaluations"
            )

    print("\nvariants of the ddim sampler (same noise, deterministic):")
    plain = in_own_process({**base, "sampler": "ddim", "keep_images": True})
    changes = (
        ("channels_last", {"channels_last": True}),
        ("bf16 autocast", {"bf16": True}),
        ("both", {"channels_last": True, "bf16": True}),
        ("torch.compile", {"compile": True}),
    )
    for label, change in changes:
        result = in_own_process({**base, "sampler": "ddim", "keep_images": True, **change})
        difference = (torch.tensor(result["images"]) - torch.tensor(plain["images"])).abs().max().item()
        speedup = plain["seconds"] / result["seconds"]
        print(f"  {label:<14} {speedup:.2f}x the speed of fp32, largest pixel difference {difference:.0f} grey levels")


if __name__ == "__main__":
    main()
