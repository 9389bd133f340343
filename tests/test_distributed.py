"""Data-parallel training: two torchrun processes on the gloo backend train as one process
on the same global batch, with gradient accumulation and a resume in between."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sr3bench.core.distributed import rows_of_rank
from sr3bench.core.runtime import Runtime

SCRIPT = Path(__file__).parent / "ddp_training_run.py"


def train(out: Path, steps: int, accumulation: int = 1, processes: int = 1) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        if processes > 1
        else [sys.executable]
    )
    done = subprocess.run(
        [*launcher, str(SCRIPT), str(out), str(steps), str(accumulation)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out / "result.pt")


# Summing gradients in another order changes their last bits; Adam divides each gradient
# by its running magnitude, so a parameter whose gradient is near zero can move by up to a
# step (the learning rate, 1e-3) on that noise. A tenth of a step is the weights' tolerance.
WEIGHT_TOLERANCE = 1e-4


def assert_same_training(first: dict, second: dict) -> None:
    steps, losses = zip(*first["losses"])
    other_steps, other_losses = zip(*second["losses"])
    assert steps == other_steps
    assert torch.allclose(torch.tensor(losses), torch.tensor(other_losses), rtol=1e-5, atol=0), (losses, other_losses)
    for kind in ("weights", "ema"):
        for key, value in first[kind].items():
            assert torch.allclose(value, second[kind][key], rtol=0, atol=WEIGHT_TOLERANCE), (
                kind,
                key,
                (value - second[kind][key]).abs().max(),
            )


def test_two_gloo_processes_with_accumulation_and_a_resume_train_as_one_process(tmp_path):
    """One process on batch 4, against two ranks of 2 images each in 2 micro-batches of 1,
    stopped after 6 steps and resumed by both ranks from rank 0's checkpoint."""
    single = train(tmp_path / "single", steps=12)
    train(tmp_path / "ddp", steps=6, accumulation=2, processes=2)
    resumed = train(tmp_path / "ddp", steps=12, accumulation=2, processes=2)
    assert single["world_size"] == 1 and resumed["world_size"] == 2
    assert single["losses"][-1][1] < single["losses"][0][1]  # it learns, so equal trajectories mean something
    assert_same_training(single, resumed)


def test_gradient_accumulation_in_one_process_equals_the_whole_batch(tmp_path):
    import ddp_training_run

    for name, accumulation in (("whole", 1), ("accumulated", 4)):
        (tmp_path / name).mkdir()
        ddp_training_run.main(tmp_path / name, 4, accumulation)  # in this process: no torchrun here
    assert_same_training(torch.load(tmp_path / "whole/result.pt"), torch.load(tmp_path / "accumulated/result.pt"))


def test_each_rank_takes_its_block_of_the_global_batch_in_micro_batches():
    cpu = torch.device("cpu")
    assert rows_of_rank(8, Runtime(cpu, rank=1, world_size=2), 2) == [slice(4, 6), slice(6, 8)]
    assert rows_of_rank(8, Runtime(cpu), 1) == [slice(0, 8)]
    with pytest.raises(ValueError, match="batch_size 6 .* not divisible by 2 processes x 2 gradient_accumulation"):
        rows_of_rank(6, Runtime(cpu, rank=0, world_size=2), 2)


def test_the_train_stage_starts_torchrun_itself_and_trains_what_one_process_trains(tmp_path):
    """``runtime.processes: 2`` makes ``sr3bench train`` relaunch itself under torchrun;
    its model equals the one-process model, and the log has rank 0's lines only."""
    import yaml
    from projects import make_project, run, tiny_params

    params = tiny_params()
    demo = params["presets"]["demo"]
    demo["training"]["sr3"].update(steps=20, checkpoint_every=10, log_every=5)
    project = make_project(tmp_path / "project", params)
    cli = [sys.executable, "-m", "pipeline.cli"]
    run([*cli, "prepare", "--preset", "demo"], project)
    trained = {}
    for processes in (2, 1):
        demo["runtime"]["processes"] = processes
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        for folder in ("checkpoints", "models"):
            shutil.rmtree(project / folder, ignore_errors=True)
        log = project / f"train{processes}.log"
        run([*cli, "train", "--preset", "demo", "--method", "sr3", "--threads", "2", "--log", str(log)], project)
        trained[processes] = torch.load(project / "models/demo/sr3/model.pt")["state_dict"]
        lines = log.read_text()
        assert lines.count("step 20 loss") == 1
    assert "starting them with torch.distributed.run" in (project / "train2.log").read_text()
    for key, value in trained[1].items():
        assert torch.allclose(value, trained[2][key], rtol=0, atol=WEIGHT_TOLERANCE), key
