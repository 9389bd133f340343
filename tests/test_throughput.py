"""The benchmarks: `sr3bench benchmark --json` (the figures issue 12 names), benchmarks/gpu_check.py on the CPU,
benchmarks/loss_curves.py."""

import json
import subprocess
import sys

from conftest import REPO


def test_the_benchmark_prints_one_json_object_with_throughput_and_memory():
    command = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "benchmark",
        "--json",
        "--steps",
        "1",
        "--evaluations",
        "1",
        "--warmup",
        "0",
        "--precisions",
        "fp32",
        "--threads",
        "2",
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    assert figures["train_img_per_s_fp32"] > 0 and figures["sample_s_per_evaluation_fp32"] > 0
    assert figures["train_peak_rss_mib_fp32"] > 100 and figures["reference"]["model"]["channel_multipliers"] == [
        1,
        2,
        4,
        8,
    ]
    assert figures["reference"]["batch_size"] == 16 and figures["cpu"]
    assert (
        150 < figures["train_gflop_per_step"] < 250 and figures["train_gflop_per_s_fp32"] > 0
    )  # forward 63 GFLOP, backward twice that


def test_the_gpu_check_runs_its_path_on_the_cpu_and_fails_clearly_without_cuda():
    import torch

    script = [sys.executable, "benchmarks/gpu_check.py"]
    dry = subprocess.run(
        [*script, "--device", "cpu", "--models", "demo", "--steps", "1", "--precision", "bf16"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert (
        "demo: 1.0M parameters; train" in dry.stdout
        and "s per step of 16" in dry.stdout
        and "s per network evaluation" in dry.stdout
    )
    if not torch.cuda.is_available():
        missing = subprocess.run(script, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert missing.returncode == 1 and "torch sees no CUDA device" in missing.stderr


def test_loss_curves_compare_runs_by_the_mean_of_their_last_tenth(tmp_path):
    steps = range(25, 1001, 25)
    (tmp_path / "a.csv").write_text("step,loss\n" + "".join(f"{s},{1.0 if s <= 900 else 0.1}\n" for s in steps))
    (tmp_path / "b.csv").write_text("step,loss\n" + "".join(f"{s},{1.0 if s <= 900 else 0.2}\n" for s in steps))
    out = tmp_path / "curves.png"
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/loss_curves.py",
            f"fp32={tmp_path / 'a.csv'}",
            f"bf16={tmp_path / 'b.csv'}",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:3]}
    assert float(rows["fp32"][2]) == 0.1 and float(rows["bf16"][2]) == 0.2  # steps above 900 only
    assert rows["bf16"][3] == "100.0%" and out.stat().st_size > 1000
    bad = subprocess.run(
        [sys.executable, "benchmarks/loss_curves.py", str(tmp_path / "a.csv")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "LABEL=path/to/loss.csv" in bad.stderr
