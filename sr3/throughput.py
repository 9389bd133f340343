"""Training throughput and sampling speed of SR3 at one fixed reference config, so that
machines, precisions and code versions compare (``sr3bench benchmark [--json]``).

The reference: 16->64 (x4), UNet of 32 base channels with multipliers 1, 2, 4, 8,
self-attention at 16x16 (and in the middle), one residual block per level; batch 16,
Adam, EMA, SR3's loss (v-parametrised L1 over a 2000-step linear schedule). Each
measurement runs in a fresh process (its peak RSS is its own): a few warm-up steps, then
timed steps. Precisions: fp32, and bf16 autocast (CPU or CUDA).
"""

from __future__ import annotations

import multiprocessing
import platform
import resource
import time

import torch

from sr3 import diffusion
from sr3.model_file import build_unet
from sr3.training import update_ema
from sr3bench.core.machine import cpu_name

REFERENCE_MODEL = {
    "base_channels": 32,
    "channel_multipliers": [1, 2, 4, 8],
    "res_blocks": 1,
    "attention_resolutions": [16],
    "dropout": 0.0,
}
HR_SIZE, SCALE, BATCH = 64, 4, 16
SCHEDULE = {"steps": 2000, "beta_start": 1e-6, "beta_end": 0.01}
PRECISIONS = ("fp32", "bf16")


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _batch(device: torch.device, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    hr = torch.rand(BATCH, 3, HR_SIZE, HR_SIZE, generator=generator) * 2 - 1
    lr = torch.nn.functional.avg_pool2d(hr, SCALE)
    upsampled = torch.nn.functional.interpolate(lr, scale_factor=SCALE, mode="bicubic", align_corners=False)
    return upsampled.to(device), hr.to(device)


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if platform.system() == "Darwin" else peak / 1024


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_training(job: dict) -> dict:
    """Images per second of whole training steps (forward, backward, Adam, EMA)."""
    torch.set_num_threads(job["threads"])
    torch.manual_seed(0)
    device = torch.device(job["device"])
    model = build_unet(REFERENCE_MODEL, HR_SIZE, noise_conditioned=True).to(device)
    ema = build_unet(REFERENCE_MODEL, HR_SIZE, noise_conditioned=True).to(device).requires_grad_(False)
    ema.load_state_dict(model.state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    upsampled, hr = _batch(device, generator)
    losses, started = [], None
    for step in range(job["warmup"] + job["steps"]):
        if step == job["warmup"]:
            _synchronise(device)
            started = time.perf_counter()
        with _autocast(device, job["precision"]):
            loss = diffusion.training_loss(model, upsampled, hr, SCHEDULE, generator, "l1", "v")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        update_ema(ema, model, 0.999)
        losses.append(loss.item())
    _synchronise(device)
    seconds = time.perf_counter() - started
    return {
        "img_per_s": job["steps"] * BATCH / seconds,
        "s_per_step": seconds / job["steps"],
        "final_loss": losses[-1],
        "peak_rss_mib": _peak_rss_mib(),
    }


def measure_sampling(job: dict) -> dict:
    """Seconds per network evaluation of a batch of 16 (forward passes under inference_mode)."""
    torch.set_num_threads(job["threads"])
    torch.manual_seed(0)
    device = torch.device(job["device"])
    model = build_unet(REFERENCE_MODEL, HR_SIZE, noise_conditioned=True).to(device).eval()
    upsampled, hr = _batch(device, torch.Generator().manual_seed(0))
    noise_level = torch.full((BATCH,), 0.5, device=device)
    with torch.inference_mode(), _autocast(device, job["precision"]):
        for step in range(job["warmup"] + job["evaluations"]):
            if step == job["warmup"]:
                _synchronise(device)
                started = time.perf_counter()
            model(torch.cat([upsampled, hr], dim=1), noise_level)
    _synchronise(device)
    seconds = time.perf_counter() - started
    return {"s_per_evaluation": seconds / job["evaluations"], "peak_rss_mib": _peak_rss_mib()}


def training_step_flops(model: torch.nn.Module, loss_of) -> int:
    """Floating-point operations of one training step, ``loss_of(model)`` and its backward
    pass, counted by torch's FlopCounterMode: convolutions and matrix products (what tensor
    cores compute; group norms, activations and Adam are left out). Count on the meta
    device: there a paper-size UNet costs neither memory nor arithmetic, and attention runs
    as the matrix products the counter knows, where on the CPU torch's fused attention
    kernel is not counted at all (torch 2.14)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        loss_of(model).backward()
    return counter.get_total_flops()


def training_step_gflop() -> float:
    """GFLOP of one reference training step (forward and backward), counted on the meta device."""
    with torch.device("meta"):
        model = build_unet(REFERENCE_MODEL, HR_SIZE, noise_conditioned=True)
    upsampled = hr = torch.zeros(BATCH, 3, HR_SIZE, HR_SIZE, device="meta")
    noise = torch.Generator().manual_seed(0)
    return (
        training_step_flops(model, lambda m: diffusion.training_loss(m, upsampled, hr, SCHEDULE, noise, "l1", "v"))
        / 1e9
    )


def _in_fresh_process(function, job: dict) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, (job,))


def run_benchmark(
    device: str = "cpu",
    threads: int = 2,
    steps: int = 20,
    evaluations: int = 20,
    warmup: int = 3,
    precisions=PRECISIONS,
) -> dict:
    """One flat JSON object: ``train_img_per_s_<precision>``, ``sample_s_per_evaluation_<precision>``,
    peak RSS of each, the arithmetic rate reached (``train_gflop_per_s_<precision>``, from
    the step's counted ``train_gflop_per_step``), and the reference config and machine."""
    result = {
        "reference": {
            "model": REFERENCE_MODEL,
            "hr_size": HR_SIZE,
            "scale": SCALE,
            "batch_size": BATCH,
            "optimizer": "Adam",
            "ema": True,
        },
        "device": device,
        "threads": threads,
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "train_gflop_per_step": round(training_step_gflop(), 1),
    }
    for precision in precisions:
        job = {
            "device": device,
            "threads": threads,
            "precision": precision,
            "steps": steps,
            "evaluations": evaluations,
            "warmup": warmup,
        }
        training = _in_fresh_process(measure_training, job)
        sampling = _in_fresh_process(measure_sampling, job)
        result[f"train_img_per_s_{precision}"] = round(training["img_per_s"], 2)
        result[f"train_s_per_step_{precision}"] = round(training["s_per_step"], 4)
        result[f"train_gflop_per_s_{precision}"] = round(result["train_gflop_per_step"] / training["s_per_step"], 1)
        result[f"train_final_loss_{precision}"] = round(training["final_loss"], 4)
        result[f"train_peak_rss_mib_{precision}"] = round(training["peak_rss_mib"])
        result[f"sample_s_per_evaluation_{precision}"] = round(sampling["s_per_evaluation"], 4)
        result[f"sample_peak_rss_mib_{precision}"] = round(sampling["peak_rss_mib"])
    return result
