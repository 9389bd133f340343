"""How close SR3's training comes to the GPU's physical limit: model FLOP utilisation (MFU)
of the paper-size UNets' training step, the speed-up of torch.compile, and a profile of the
demo's small (launch-bound) step. One JSON file and a printed table.

    python benchmarks/gpu_efficiency.py                    # CUDA: faces16_128 and imagenet64_256, fp32 and bf16
    python benchmarks/gpu_efficiency.py --dry-run          # every part on the CPU with tiny UNets, in under a minute

Parts, each written to the JSON as soon as it is done (a run cut short keeps the parts before):

* ``models``: for each preset, the FLOPs of one training step of its UNet at its per-GPU
  batch (sr3/throughput.py's counter, torch's FlopCounterMode, on the meta device: model
  FLOPs, without the recomputation of gradient checkpointing), then seconds per step of
  the real trainer's step (sr3/training.py, channels_last, the preset's gradient
  checkpointing) in fp32 (TF32 tensor cores where ``runtime.tf32`` is on, as the stages run
  it) and bf16 autocast. MFU = achieved FLOP/s / the card's dense peak for that arithmetic
  (PaLM's definition: Chowdhery et al. 2022, "PaLM", Appendix B).
* ``compile``: the same step with the UNet under ``torch.compile``, its compile time and
  speed-up over eager.
* ``profile``: torch.profiler over the demo's training step (1M parameters, 16 patches of
  32x32): device busy time against wall time, kernels and host waits per step, the top
  kernels (or CPU ops).
* ``reimplementation``: the most-used re-implementation's training beside this one, where
  ``sr3bench benchmark`` supports that comparison (it does not yet: recorded as skipped).

Synthetic images stand in for data, as in benchmarks/gpu_check.py; the models, schedules
and batches are the presets' own. A step the card's memory cannot hold is retried with
gradient checkpointing, and the JSON says so."""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_check import paper_batch, peak_memory_mib, synchronise, synthetic_pairs  # noqa: E402

from pipeline import config  # noqa: E402
from sr3 import method  # noqa: E402
from sr3.architecture import unet_config_problems  # noqa: E402
from sr3.data import PatchSampler  # noqa: E402
from sr3.throughput import training_step_flops  # noqa: E402
from sr3.training import Trainer  # noqa: E402
from sr3bench.core.machine import cpu_name  # noqa: E402
from sr3bench.core.runtime import runtime_from_config  # noqa: E402

DATASHEET_NOTE = (
    "dense tensor-core figures: NVIDIA's datasheets give TF32, BF16 and FP16 with 2:4 sparsity, "
    "the dense figure is half of it (the A100 datasheet states both); FP32 is the CUDA cores' non-tensor figure"
)
# (words the device name must contain, card, dense peak TFLOP/s by arithmetic, datasheet)
PEAKS = [
    (
        ("H100", "NVL"),
        "H100 NVL",
        {"bf16": 835.5, "tf32": 417.5, "fp32": 60.0},
        "https://www.nvidia.com/en-us/data-center/h100/",
    ),
    (
        ("H100", "PCIE"),
        "H100 PCIe",
        {"bf16": 756.5, "tf32": 378.0, "fp32": 51.0},
        "https://www.nvidia.com/en-us/data-center/h100/",
    ),
    (
        ("H100",),
        "H100 SXM",
        {"bf16": 989.5, "tf32": 494.5, "fp32": 67.0},
        "https://www.nvidia.com/en-us/data-center/h100/",
    ),
    (
        ("H200", "NVL"),
        "H200 NVL",
        {"bf16": 835.5, "tf32": 417.5, "fp32": 60.0},
        "https://www.nvidia.com/en-us/data-center/h200/",
    ),
    (
        ("H200",),
        "H200 SXM",
        {"bf16": 989.5, "tf32": 494.5, "fp32": 67.0},
        "https://www.nvidia.com/en-us/data-center/h200/",
    ),
    (
        ("A100",),
        "A100",
        {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5},
        "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf",
    ),
]
TINY_MODEL = {"base_channels": 8, "res_blocks": 1}  # the dry run's UNets: the presets' depth and attention, narrow
TINY_PATCH, TINY_BATCH = 32, 2
# the host waiting for the GPU (an .item() of a CUDA tensor or a blocking copy waits in cudaStreamSynchronize;
# the .item()s Adam does on its CPU step counters wait for nothing)
SYNC_EVENTS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy")
LAUNCH_EVENTS = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")
REIMPLEMENTATION_SKIPPED = (
    "sr3/throughput.py (sr3bench benchmark) has no run of the re-implementation's training "
    "(sr3/janspiry.py holds its UNet for loading checkpoints only), so there is no ratio to give"
)


def peak_of(device_name: str) -> dict | None:
    """The card's dense peaks from ``PEAKS`` (None for a card not in it)."""
    name = device_name.upper()
    for words, card, tflops, source in PEAKS:
        if all(word in name for word in words):
            return {"card": card, "tflops": dict(tflops), "source": source, "note": DATASHEET_NOTE}
    return None


def preset_for(preset_name: str, tiny: bool) -> tuple[dict, dict, int]:
    """The preset, its SR3 training settings and the per-GPU batch; ``tiny``: a narrow UNet
    of the same depth and attention, on small patches and batches."""
    _, preset, _ = config.load("params.yaml", preset_name)
    own = dict(preset["training"]["sr3"])
    if not tiny:
        return preset, own, paper_batch(preset)
    preset = dict(preset, model=dict(preset["model"], **TINY_MODEL))
    problems = unet_config_problems(preset["model"])
    if problems:
        raise ValueError(f"the tiny UNet of {preset_name}: {'; '.join(problems)}")
    return preset, dict(own, patch_size=TINY_PATCH), TINY_BATCH


def step_gflop(preset: dict, own: dict, batch: int) -> float:
    """GFLOP of one training step of the preset's UNet at ``batch`` (counted on the meta device)."""
    with torch.device("meta"):
        model = method.build_model(preset, own)
    size = own["patch_size"]
    hr = torch.zeros(batch, 3, size, size, device="meta")
    loss_fn, noise = method.training_loss(preset), torch.Generator().manual_seed(0)
    flops = training_step_flops(model, lambda m: loss_fn(m, hr, hr, noise, rows=slice(0, batch), batch_size=batch))
    return flops / 1e9


def time_steps(name, preset, own, batch, runtime, warmup: int, steps: int, compile_backend=None) -> dict:
    """Seconds per step of the trainer's own optimisation step (forward, backward, Adam,
    EMA) on one batch reused, after ``warmup`` untimed steps (the first also compiles)."""
    size = own["patch_size"]
    settings = dict(
        own,
        batch_size=batch,
        gradient_accumulation=1,
        checkpoint_every=10**9,
        log_every=10**9,
        keep="last",
        warmup_steps=0,
    )
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:  # the trainer is never run: no checkpoint is written
        trainer = Trainer(
            method.build_model(preset, own),
            method.training_loss(preset),
            PatchSampler(synthetic_pairs(size), size, batch, 0),
            settings,
            0,
            Path(folder) / "unused.pt",
            name,
            runtime,
        )
    if compile_backend:
        trainer.network = torch.compile(trainer.model, backend=compile_backend)
    batch_tensors = trainer.sampler(trainer.rank_rows)
    if runtime.device.type == "cuda":
        batch_tensors = tuple(t.pin_memory() for t in batch_tensors)  # as the trainer's batches are on CUDA
        torch.cuda.reset_peak_memory_stats(runtime.device)
    started = time.perf_counter()
    for k in range(max(warmup, 1)):
        trainer._optimisation_step(*batch_tensors)
        if k == 0:
            synchronise(runtime)
            first_step = time.perf_counter() - started
    synchronise(runtime)
    started = time.perf_counter()
    for _ in range(steps):
        loss = trainer._optimisation_step(*batch_tensors)
    synchronise(runtime)
    seconds = (time.perf_counter() - started) / steps
    result = {
        "s_per_step": seconds,
        "img_per_s": batch / seconds,
        "first_step_s": first_step,
        "final_loss": float(loss),
        "peak_gpu_mib": peak_memory_mib(runtime),
    }
    del trainer, batch_tensors
    free_memory()
    if not math.isfinite(result["final_loss"]):
        raise RuntimeError(f"{name}: non-finite loss {result['final_loss']} in {runtime.precision}")
    return result


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def make_runtime(preset: dict, device: str, precision: str, checkpointing: bool, tf32: bool):
    """The runtime a stage would build (channels_last, the preset's other runtime keys)."""
    return runtime_from_config(
        dict(
            preset["runtime"],
            device=device,
            precision=precision,
            channels_last=True,
            gradient_checkpointing=checkpointing,
            tf32=tf32,
        )
    )


def peak_kind(precision: str, device: str, tf32: bool) -> str:
    """The arithmetic whose peak applies: fp32 convolutions run as TF32 on CUDA when allowed."""
    return "tf32" if precision == "fp32" and device == "cuda" and tf32 else precision


def utilisation(gflop: float, s_per_step: float, peak_tflops: float | None) -> dict:
    achieved = gflop / s_per_step / 1e3
    return {
        "achieved_tflop_per_s": achieved,
        "peak_tflop_per_s": peak_tflops,
        "mfu": achieved / peak_tflops if peak_tflops else None,
    }


def is_out_of_memory(error: Exception) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def measure_model(preset_name: str, args, peaks: dict) -> dict:
    preset, own, batch = preset_for(preset_name, args.tiny)
    checkpointing = preset["runtime"]["gradient_checkpointing"]
    gflop = step_gflop(preset, own, batch)
    with torch.device("meta"):
        parameters = sum(p.numel() for p in method.build_model(preset, own).parameters())
    record = {
        "parameters_m": parameters / 1e6,
        "batch": batch,
        "patch_size": own["patch_size"],
        "gradient_checkpointing": checkpointing,
        "train_gflop_per_step": gflop,
        "train_gflop_per_image": gflop / batch,
        "precisions": {},
    }
    for precision in args.precisions:
        kind = peak_kind(precision, args.device, args.tf32)
        entry = {"peak_kind": kind, "gradient_checkpointing": checkpointing}
        tries = [checkpointing] if checkpointing else [False, True]  # without it, then with it if memory runs out
        for with_checkpointing in tries:
            try:
                runtime = make_runtime(preset, args.device, precision, with_checkpointing, args.tf32)
                timing = time_steps(preset_name, preset, own, batch, runtime, args.warmup, args.steps)
            except Exception as error:  # the traceback holds the trainer until this block ends
                failure, out_of_memory = f"{type(error).__name__}: {error}"[:500], is_out_of_memory(error)
            else:
                entry.update(timing, **utilisation(gflop, timing["s_per_step"], peaks.get(kind)))
                entry["gradient_checkpointing"] = with_checkpointing
                break
            free_memory()
            if not out_of_memory or with_checkpointing:
                entry["error"] = failure
                break
            entry["note"] = "out of memory without gradient checkpointing: measured with it"
        record["precisions"][precision] = entry
    return record


def measure_compile(args, peaks: dict) -> dict:
    preset, own, batch = preset_for(args.compile_preset, args.tiny)
    precision = args.compile_precision
    checkpointing = preset["runtime"]["gradient_checkpointing"]
    runtime = make_runtime(preset, args.device, precision, checkpointing, args.tf32)
    gflop = step_gflop(preset, own, batch)
    eager = time_steps(args.compile_preset, preset, own, batch, runtime, args.warmup, args.steps)
    compiled = time_steps(
        args.compile_preset, preset, own, batch, runtime, args.warmup, args.steps, compile_backend=args.compile_backend
    )
    peak = peaks.get(peak_kind(precision, args.device, args.tf32))
    return {
        "preset": args.compile_preset,
        "precision": precision,
        "backend": args.compile_backend,
        "batch": batch,
        "eager_s_per_step": eager["s_per_step"],
        "compiled_s_per_step": compiled["s_per_step"],
        "speedup": eager["s_per_step"] / compiled["s_per_step"],
        "compile_s": compiled["first_step_s"] - eager["first_step_s"],
        "eager_mfu": utilisation(gflop, eager["s_per_step"], peak)["mfu"],
        "compiled_mfu": utilisation(gflop, compiled["s_per_step"], peak)["mfu"],
    }


def profile_demo(args) -> dict:
    """torch.profiler over the demo's training step as the demo trains (fp32, its batch and
    patch), on ``args.device``."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    _, preset, _ = config.load("params.yaml", "demo")
    own, steps = preset["training"]["sr3"], args.profile_steps
    runtime = runtime_from_config(dict(preset["runtime"], device=args.device, precision="fp32", tf32=args.tf32))
    settings = dict(own, gradient_accumulation=1, checkpoint_every=10**9, log_every=10**9, keep="last")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(
            method.build_model(preset, own),
            method.training_loss(preset),
            PatchSampler(synthetic_pairs(own["patch_size"]), own["patch_size"], own["batch_size"], 0),
            settings,
            0,
            Path(folder) / "unused.pt",
            "demo",
            runtime,
        )
    batch = trainer.sampler(trainer.rank_rows)
    for _ in range(3):
        trainer._optimisation_step(*batch)
    synchronise(runtime)
    cuda = runtime.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as profiler:
        started = time.perf_counter()
        for _ in range(steps):
            trainer._optimisation_step(*batch)
        synchronise(runtime)
        wall = (time.perf_counter() - started) / steps
    averages = profiler.key_averages()
    host = [e for e in averages if e.device_type == DeviceType.CPU]
    kernels = [e for e in averages if e.device_type == DeviceType.CUDA]
    busy_us = sum(e.self_device_time_total for e in kernels) if cuda else None
    top_events = kernels if cuda else host
    time_of = (lambda e: e.self_device_time_total) if cuda else (lambda e: e.self_cpu_time_total)
    total_us = sum(time_of(e) for e in top_events) or 1.0
    top = sorted(top_events, key=time_of, reverse=True)[: args.top]
    return {
        "preset": "demo",
        "batch": own["batch_size"],
        "patch_size": own["patch_size"],
        "steps": steps,
        "wall_ms_per_step": wall * 1e3,
        "device_busy_ms_per_step": busy_us / steps / 1e3 if cuda else None,
        "device_busy_fraction": busy_us / 1e6 / steps / wall if cuda else None,
        "kernels_per_step": sum(e.count for e in kernels) / steps if cuda else None,
        "launches_per_step": sum(e.count for e in host if e.key in LAUNCH_EVENTS) / steps,
        "host_ops_ms_per_step": sum(e.self_cpu_time_total for e in host) / steps / 1e3,
        "host_syncs_per_step": sum(e.count for e in host if e.key in SYNC_EVENTS) / steps if cuda else None,
        "host_sync_ms_per_step": (
            sum(e.self_cpu_time_total for e in host if e.key in SYNC_EVENTS) / steps / 1e3 if cuda else None
        ),
        "top_by": "device time" if cuda else "CPU self time",
        "top": [
            {
                "name": e.key[:120],
                "calls_per_step": e.count / steps,
                "ms_per_step": time_of(e) / steps / 1e3,
                "share": time_of(e) / total_us,
            }
            for e in top
        ],
    }


def print_table(result: dict) -> None:
    peak = result["peak"]
    card = f"{peak['card']} ({peak['source']})" if peak else "no datasheet peak (see --peak-tflops)"
    print(f"\n{result['device_name']}, torch {result['torch']}; peaks: {card}")
    print(
        f"{'model':<16}{'precision':<12}{'batch':>6}{'GFLOP/step':>12}{'s/step':>9}{'img/s':>9}{'TFLOP/s':>9}{'MFU':>8}"
    )
    for name, model in result["models"].items():
        for precision, entry in model["precisions"].items():
            label = f"{precision} ({entry['peak_kind']})" if entry["peak_kind"] != precision else precision
            if "error" in entry:
                print(f"{name:<16}{label:<12}{model['batch']:>6}  {entry['error'][:60]}")
                continue
            mfu = f"{entry['mfu']:.1%}" if entry["mfu"] is not None else "-"
            print(
                f"{name:<16}{label:<12}{model['batch']:>6}{model['train_gflop_per_step']:>12.0f}"
                f"{entry['s_per_step']:>9.3f}{entry['img_per_s']:>9.1f}{entry['achieved_tflop_per_s']:>9.1f}{mfu:>8}"
            )
    compiled = result.get("compile")
    if compiled and "error" not in compiled:
        print(
            f"torch.compile ({compiled['backend']}), {compiled['preset']} {compiled['precision']}: "
            f"{compiled['eager_s_per_step']:.3f} -> {compiled['compiled_s_per_step']:.3f} s/step, "
            f"{compiled['speedup']:.2f}x, compiled in {compiled['compile_s']:.0f} s"
        )
    elif compiled:
        print(f"torch.compile: {compiled['error']}")
    profile = result.get("profile")
    if profile and "error" not in profile:
        busy = (
            f", device busy {profile['device_busy_ms_per_step']:.1f} ms ({profile['device_busy_fraction']:.0%}), "
            f"{profile['kernels_per_step']:.0f} kernels"
            if profile["device_busy_fraction"] is not None
            else ""
        )
        waits = (
            f", {profile['host_syncs_per_step']:.1f} host waits ({profile['host_sync_ms_per_step']:.1f} ms)"
            if profile["host_syncs_per_step"] is not None
            else ""
        )
        print(
            f"demo step profile: {profile['wall_ms_per_step']:.1f} ms wall{busy}, host ops "
            f"{profile['host_ops_ms_per_step']:.1f} ms{waits} per step; top by {profile['top_by']}:"
        )
        for entry in profile["top"]:
            share, calls = entry["share"], entry["calls_per_step"]
            print(f"  {entry['ms_per_step']:8.2f} ms {share:6.1%} x{calls:<5.0f} {entry['name'][:90]}")
    elif profile:
        print(f"profile: {profile['error']}")
    print(f"re-implementation: {result['reimplementation'].get('skipped', '')}")


def parse_peaks(values: list[str]) -> dict:
    peaks = {}
    for value in values:
        kind, _, figure = value.partition("=")
        if kind not in ("bf16", "tf32", "fp32") or not figure:
            raise argparse.ArgumentTypeError(f"--peak-tflops {value!r}: give KIND=TFLOPS with KIND bf16, tf32 or fp32")
        peaks[kind] = float(figure)
    return peaks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--dry-run", action="store_true", help="every part on the CPU, tiny UNets, a few steps")
    parser.add_argument("--tiny", action="store_true", help="narrow UNets of the presets' depth on 32x32 patches")
    parser.add_argument("--presets", nargs="+", default=["faces16_128", "imagenet64_256"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (the first compiles)")
    parser.add_argument("--no-tf32", dest="tf32", action="store_false", help="fp32 without TF32 tensor cores")
    parser.add_argument("--compile-preset", default="faces16_128", help="the preset whose step torch.compile gets")
    parser.add_argument("--compile-precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--compile-backend", help="torch.compile's backend (default inductor; aot_eager in a dry run)")
    parser.add_argument("--profile-steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=12, help="kernels (CPU ops on the CPU) the profile lists")
    parser.add_argument("--parts", nargs="+", default=["models", "compile", "profile"])
    parser.add_argument("--peak-tflops", nargs="+", default=[], metavar="KIND=TFLOPS", help="peaks to use instead")
    parser.add_argument("--out", default="gpu_efficiency.json")
    args = parser.parse_args()
    if args.dry_run:
        args.device, args.tiny = "cpu", True
        args.steps, args.warmup, args.profile_steps = 1, 1, 1
        torch.set_num_threads(1)  # tiny steps: a second thread only adds waiting on a shared machine
        args.compile_backend = args.compile_backend or "aot_eager"  # dynamo and autograd's tracing, no C++ build
    args.compile_backend = args.compile_backend or "inductor"
    try:
        overrides = parse_peaks(args.peak_tflops)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "gpu_efficiency: torch sees no CUDA device; run it on a GPU machine, or --dry-run on the CPU",
            file=sys.stderr,
        )
        return 1
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else cpu_name()
    peak = peak_of(device_name) if args.device == "cuda" else None
    peaks = dict(peak["tflops"] if peak else {}, **overrides)
    if overrides:
        peak = dict(peak or {"card": device_name, "source": "--peak-tflops"}, tflops=peaks)
    result = {
        "dry_run": args.dry_run,
        "tiny": args.tiny,
        "device": args.device,
        "device_name": device_name,
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "peak": peak,
        "steps": args.steps,
        "models": {},
        "reimplementation": {"skipped": REIMPLEMENTATION_SKIPPED},
    }
    out = Path(args.out)
    started = time.perf_counter()

    def write() -> None:
        result["seconds"] = time.perf_counter() - started
        out.write_text(json.dumps(result, indent=1))

    failures = 0
    if "models" in args.parts:
        for preset_name in args.presets:
            try:
                result["models"][preset_name] = measure_model(preset_name, args, peaks)
            except Exception as error:  # report it, go on to the other parts
                print(f"FAILED {preset_name}: {type(error).__name__}: {error}", file=sys.stderr)
                failures += 1
            write()
    for part, function in (("compile", measure_compile), ("profile", profile_demo)):
        if part in args.parts:
            try:
                result[part] = function(args, peaks) if part == "compile" else function(args)
            except Exception as error:
                print(f"FAILED {part}: {type(error).__name__}: {error}", file=sys.stderr)
                result[part] = {"error": f"{type(error).__name__}: {error}"[:500]}
                failures += 1
            free_memory()
            write()
    failures += sum("error" in e for m in result["models"].values() for e in m["precisions"].values())
    write()
    print_table(result)
    print(f"wrote {out} ({result['seconds']:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
