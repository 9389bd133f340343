"""benchmarks/gpu_efficiency.py: its dry run on the CPU (tiny UNets of the paper presets'
depth) writes every part, with MFU = achieved FLOP/s / the peak; the datasheet table
is keyed by the names torch gives the cards."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_efficiency  # noqa: E402

PEAKS = ["fp32=0.5", "bf16=2.0"]  # the CPU has no datasheet entry: the dry run takes these


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("efficiency") / "efficiency.json"
    command = [sys.executable, "benchmarks/gpu_efficiency.py", "--dry-run", "--out", str(out), "--peak-tflops", *PEAKS]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text()), result.stdout


def test_the_dry_run_measures_both_paper_unets_in_both_precisions_with_mfu_against_the_peak(dry_run):
    result, printed = dry_run
    assert result["dry_run"] and result["device"] == "cpu" and result["peak"]["tflops"] == {"fp32": 0.5, "bf16": 2.0}
    assert set(result["models"]) == {"faces16_128", "imagenet64_256"}
    for model in result["models"].values():
        assert model["batch"] == 2 and model["patch_size"] == 32 and model["train_gflop_per_step"] > 0
        assert model["train_gflop_per_image"] == pytest.approx(model["train_gflop_per_step"] / 2)
        assert set(model["precisions"]) == {"fp32", "bf16"}
        for precision, entry in model["precisions"].items():
            assert entry["peak_kind"] == precision  # on the CPU fp32 is fp32, not TF32
            assert entry["img_per_s"] == pytest.approx(2 / entry["s_per_step"])
            achieved = model["train_gflop_per_step"] / entry["s_per_step"] / 1e3
            assert entry["achieved_tflop_per_s"] == pytest.approx(achieved)
            assert entry["peak_tflop_per_s"] == {"fp32": 0.5, "bf16": 2.0}[precision]
            assert entry["mfu"] == pytest.approx(achieved / entry["peak_tflop_per_s"])
            assert 0 < entry["mfu"] < 1 and entry["final_loss"] > 0
    imagenet, faces = result["models"]["imagenet64_256"], result["models"]["faces16_128"]
    assert imagenet["parameters_m"] > faces["parameters_m"]  # a level more (multipliers 1,2,4,4,8,8)
    assert "faces16_128" in printed and "MFU" in printed


def test_the_flop_counter_counts_self_attention_as_the_hand_formula_says():
    """One SR3 self-attention layer over N = 8x8 tokens of C channels, batch B, forward and
    backward: q.k and attention.v are 2N^2C each per image forward and twice that backward
    (12BN^2C); the q, k, v and output projections 8BNC^2 forward, twice that backward
    (the group norm before them needs their input's gradient): 24BNC^2. Counted on the meta
    device, as the script counts the UNets (on the CPU torch leaves its fused attention
    kernel out of the count)."""
    from sr3.throughput import training_step_flops
    from sr3.unet import SelfAttention

    batch, channels, side = 2, 16, 8
    tokens = side * side
    with torch.device("meta"):
        layer = SelfAttention(channels)
    x = torch.zeros(batch, channels, side, side, device="meta")
    flops = training_step_flops(layer, lambda m: m(x).sum())
    assert flops == 12 * batch * tokens**2 * channels + 24 * batch * tokens * channels**2


def test_the_reference_step_counts_its_attention_too():
    """The benchmark's reference step (sr3bench benchmark): 190 GFLOP of convolutions and
    projections, plus three attention layers at 16x16 (N = 256 tokens of 128 channels,
    batch 16) of 12BN^2C each."""
    from sr3.throughput import training_step_gflop

    attention = 3 * 12 * 16 * 256**2 * 128 / 1e9
    assert attention == pytest.approx(4.83, abs=0.01)
    assert training_step_gflop() == pytest.approx(189.96 + attention, abs=0.01)


def test_the_dry_run_compiles_and_profiles(dry_run):
    result, _ = dry_run
    compiled = result["compile"]
    assert compiled["backend"] == "aot_eager" and compiled["preset"] == "faces16_128"
    assert compiled["speedup"] == pytest.approx(compiled["eager_s_per_step"] / compiled["compiled_s_per_step"])
    profile = result["profile"]
    assert profile["preset"] == "demo" and profile["batch"] == 16 and profile["wall_ms_per_step"] > 0
    assert profile["device_busy_fraction"] is None and profile["host_syncs_per_step"] is None  # no device
    shares = [entry["share"] for entry in profile["top"]]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-9
    assert any("convolution" in entry["name"] for entry in profile["top"][:3])  # the UNet's arithmetic leads
    assert "re-implementation" in result["reimplementation"]["skipped"]


@pytest.mark.parametrize(
    "device_name, card, bf16, tf32, fp32",
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM", 989.5, 494.5, 67.0),
        ("NVIDIA H100 PCIe", "H100 PCIe", 756.5, 378.0, 51.0),
        ("NVIDIA H100 NVL", "H100 NVL", 835.5, 417.5, 60.0),
        ("NVIDIA H200", "H200 SXM", 989.5, 494.5, 67.0),
        ("NVIDIA A100-SXM4-80GB", "A100", 312.0, 156.0, 19.5),
        ("NVIDIA A100 80GB PCIe", "A100", 312.0, 156.0, 19.5),
    ],
)
def test_the_peak_table_is_keyed_by_the_names_torch_gives_the_cards(device_name, card, bf16, tf32, fp32):
    peak = gpu_efficiency.peak_of(device_name)
    assert peak["card"] == card and peak["tflops"] == {"bf16": bf16, "tf32": tf32, "fp32": fp32}
    assert peak["source"].startswith("https://www.nvidia.com/") and "half" in peak["note"]


def test_a_card_without_a_datasheet_entry_gets_no_peak_and_cuda_is_required_without_dry_run():
    assert gpu_efficiency.peak_of("Tesla T4") is None
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    missing = subprocess.run(
        [sys.executable, "benchmarks/gpu_efficiency.py"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert missing.returncode == 1 and "torch sees no CUDA device" in missing.stderr


def test_a_step_that_runs_out_of_memory_is_measured_again_with_gradient_checkpointing(monkeypatch):
    """faces16_128 has no gradient checkpointing: a step that does not fit is timed again
    with it (the FLOPs stay the model's); any other failure is recorded as it is."""
    import argparse

    def time_steps(name, preset, own, batch, runtime, warmup, steps):
        if runtime.precision == "bf16":
            raise ValueError("not this one")
        if not runtime.gradient_checkpointing:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return {"s_per_step": 0.5, "img_per_s": batch / 0.5, "first_step_s": 1.0, "final_loss": 0.1}

    monkeypatch.setattr(gpu_efficiency, "time_steps", time_steps)
    args = argparse.Namespace(tiny=True, device="cpu", precisions=["fp32", "bf16"], tf32=True, warmup=1, steps=1)
    record = gpu_efficiency.measure_model("faces16_128", args, {"fp32": 0.25})
    fp32, bf16 = record["precisions"]["fp32"], record["precisions"]["bf16"]
    assert not record["gradient_checkpointing"] and fp32["gradient_checkpointing"]
    assert "out of memory" in fp32["note"] and fp32["s_per_step"] == 0.5
    assert fp32["mfu"] == pytest.approx(record["train_gflop_per_step"] / 0.5 / 1e3 / 0.25)
    assert bf16["error"] == "ValueError: not this one" and "mfu" not in bf16
