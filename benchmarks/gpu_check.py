"""The CUDA path, checked on a GPU machine before a long run: for the demo's SR3 model and
a paper-size one, training through the real Trainer (bf16 autocast, channels_last, a
checkpoint written and resumed on the GPU), then sampling; prints images/s and seconds
per optimisation step (one batch, data loading left out), seconds per network evaluation
and peak GPU memory of each, and exits non-zero when any of it fails or gives a
non-finite number.

    python benchmarks/gpu_check.py                          # CUDA, bf16, demo + faces16_128
    python benchmarks/gpu_check.py --paper imagenet64_256 --models paper --precision fp32
    python benchmarks/gpu_check.py --device cpu --models demo --steps 2   # the same code on the CPU

The paper-size model trains at its preset's batch per GPU (the global batch over
runtime.processes and gradient_accumulation) with its preset's gradient checkpointing,
unless --batch or --checkpointing say otherwise.

Synthetic images stand in for data (no dataset needed); the models and the noise schedule
are the presets' own."""

from __future__ import annotations

import argparse
import gc
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import config  # noqa: E402
from sr3 import diffusion, method  # noqa: E402
from sr3.data import PatchSampler  # noqa: E402
from sr3.training import Trainer  # noqa: E402
from sr3bench.core.runtime import Runtime, runtime_from_config  # noqa: E402


def synthetic_pairs(size: int, count: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    hr = torch.rand(count, 3, size, size, generator=generator) * 2 - 1
    return list(zip(torch.nn.functional.avg_pool2d(hr, 3, 1, 1), hr))


def check_model(name: str, preset: dict, runtime: Runtime, batch: int, steps: int) -> dict:
    """Train one step, resume from its checkpoint for one more (the trainer's whole path),
    then time ``steps`` optimisation steps alone, and sample. The timing leaves out the
    checkpoint's reading and writing: for a 550M-parameter model that is gigabytes (the
    weights, their EMA and Adam's moments), which would swamp a few steps."""
    size = preset["training"]["sr3"]["patch_size"]
    settings = dict(
        preset["training"]["sr3"],
        batch_size=batch,
        gradient_accumulation=1,
        checkpoint_every=10**9,
        log_every=1,
        keep="last",
        warmup_steps=0,
    )
    torch.manual_seed(0)
    model = method.build_model(preset, preset["training"]["sr3"])
    parameters = sum(p.numel() for p in model.parameters())
    loss_fn = method.training_loss(preset)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "checkpoint.pt"
        Trainer(
            model,
            loss_fn,
            PatchSampler(synthetic_pairs(size), size, batch, 0),
            dict(settings, steps=1),
            0,
            checkpoint,
            name,
            runtime,
        ).run()
        del model  # the first trainer's weights: not part of what the peaks below measure
        torch.manual_seed(0)
        trainer = Trainer(
            method.build_model(preset, preset["training"]["sr3"]),
            loss_fn,
            PatchSampler(synthetic_pairs(size), size, batch, 0),
            dict(settings, steps=2),
            0,
            checkpoint,
            name,
            runtime,
        )
        trainer.run()
        if trainer.step != 2:
            raise RuntimeError(f"{name}: the resumed trainer ended at step {trainer.step}, not 2")
    batch_tensors = trainer.sampler(trainer.rank_rows)
    if runtime.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(runtime.device)
    # the trainer's own step, the one run() repeats, timed without run()'s checkpointing
    trainer._optimisation_step(*batch_tensors)  # warm-up (allocator, cuDNN's algorithm search)
    synchronise(runtime)
    started = time.perf_counter()
    for _ in range(steps):
        loss = trainer._optimisation_step(*batch_tensors)
    synchronise(runtime)
    train_seconds = time.perf_counter() - started
    result = {
        "model": name,
        "parameters_m": parameters / 1e6,
        "train_img_per_s": steps * batch / train_seconds,
        "train_s_per_step": train_seconds / steps,
        "final_loss": float(loss),  # the step returns it on the device, unread
    }
    result["train_peak_gpu_mib"] = peak_memory_mib(runtime)
    model = trainer.ema_model.eval()
    del trainer, batch_tensors  # sampling's peak: the EMA model and its activations only
    gc.collect()
    schedule = dict(preset["diffusion"]["inference_schedule"], steps=4)
    upsampled = runtime.layout(torch.stack([lr for lr, _ in synthetic_pairs(size, batch)]).to(runtime.device))
    if runtime.device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(runtime.device)
    sampling = preset["diffusion"]["parametrization"], preset["diffusion"]["sampler"]
    with runtime.autocast():
        diffusion.sample(
            model,
            upsampled,
            dict(schedule, steps=1),
            list(range(batch)),
            None,
            *sampling,  # warm-up
        )
        synchronise(runtime)
        started = time.perf_counter()
        sr = diffusion.sample(model, upsampled, schedule, list(range(batch)), None, *sampling)
        synchronise(runtime)
    result["sample_s_per_evaluation"] = (time.perf_counter() - started) / schedule["steps"]
    result["sample_peak_gpu_mib"] = peak_memory_mib(runtime)
    if not (math.isfinite(result["final_loss"]) and torch.isfinite(sr).all()):
        raise RuntimeError(f"{name}: non-finite loss ({result['final_loss']}) or samples in {runtime.precision}")
    return result


def synchronise(runtime: Runtime) -> None:
    if runtime.device.type == "cuda":
        torch.cuda.synchronize(runtime.device)


def peak_memory_mib(runtime: Runtime) -> float | None:
    return torch.cuda.max_memory_allocated(runtime.device) / 2**20 if runtime.device.type == "cuda" else None


def _peak_memory(result: dict, key: str) -> str:
    """The ", peak N MiB" note of a result's peak GPU memory under key, empty where it has none."""
    return f", peak {result[key]:.0f} MiB" if result[key] is not None else ""


def paper_batch(preset: dict) -> int:
    """The images one GPU computes at once in the preset: its global batch over the
    processes and the micro-batches of each."""
    training, runtime = preset["training"]["sr3"], preset["runtime"]
    return training["batch_size"] // (runtime["processes"] * training["gradient_accumulation"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (the same code, for a dry run)")
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--paper", default="faces16_128", help="the paper-size preset whose model is checked")
    parser.add_argument("--models", nargs="+", default=["demo", "paper"], choices=["demo", "paper"])
    parser.add_argument("--steps", type=int, default=10, help="timed training steps of each model (at least 1)")
    parser.add_argument(
        "--batch", type=int, help="the paper-size model's batch (default: its preset's per GPU; the demo's is 16)"
    )
    parser.add_argument(
        "--checkpointing",
        choices=["preset", "on", "off"],
        default="preset",
        help="the paper-size model's gradient checkpointing (default: its preset's runtime.gradient_checkpointing)",
    )
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "gpu_check: torch sees no CUDA device (torch.cuda.is_available() is False): "
            "install a CUDA build of torch or run on a GPU machine",
            file=sys.stderr,
        )
        return 1
    device = torch.device(args.device)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {device_name}, {args.precision}")
    failures = 0
    for which in args.models:
        preset_name = "demo" if which == "demo" else args.paper
        _, preset, _ = config.load("params.yaml", preset_name)
        checkpointing = (
            which == "paper"
            and {"preset": preset["runtime"]["gradient_checkpointing"], "on": True, "off": False}[args.checkpointing]
        )
        # as a stage builds it (TF32 on CUDA as runtime.tf32 says, by default on)
        runtime = runtime_from_config(
            dict(
                preset["runtime"],
                device=args.device,
                precision=args.precision,
                channels_last=True,
                gradient_checkpointing=checkpointing,
            )
        )
        try:
            batch = 16 if which == "demo" else args.batch or paper_batch(preset)
            result = check_model(preset_name, preset, runtime, batch, args.steps)
        except Exception as error:  # any failure of the path is the finding: report it, go on, exit non-zero
            print(f"FAILED {preset_name}: {type(error).__name__}: {error}", file=sys.stderr)
            failures += 1
            continue
        checkpointing_note = ", gradient checkpointing" if checkpointing else ""
        train_peak = _peak_memory(result, "train_peak_gpu_mib")
        sample_peak = _peak_memory(result, "sample_peak_gpu_mib")
        print(
            f"{preset_name}: {result['parameters_m']:.1f}M parameters{checkpointing_note}; "
            f"train {result['train_img_per_s']:.2f} images/s "
            f"({result['train_s_per_step']:.3f} s per step of {batch}){train_peak}, "
            f"final loss {result['final_loss']:.4f}; "
            f"sampling {result['sample_s_per_evaluation']:.4f} s per network evaluation{sample_peak}"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
