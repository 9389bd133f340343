"""The torch threads that trained a model are recorded (issue 28): another thread count sums
floats in another order and makes other weights, so the model file, its loss CSV, the train
log and the report's provenance say which count computed which steps."""

import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO
from projects import tiny_params

from sr3.data import PatchSampler
from sr3.model_file import save_model, training_record
from sr3.training import Trainer, write_loss_csv
from sr3.unet import UNet
from sr3bench.reporting.provenance import provenance, provenance_section, training_threads

SETTINGS = {
    "steps": 4,
    "batch_size": 2,
    "patch_size": 8,
    "learning_rate": 1e-3,
    "warmup_steps": 0,
    "ema_decay": 0.9,
    "checkpoint_every": 2,
    "log_every": 1,
    "keep": "last",
}
ARCHITECTURE = {
    "base_channels": 8,
    "channel_multipliers": [1],
    "res_blocks": 1,
    "attention_resolutions": [],
    "dropout": 0,
}


@pytest.fixture
def threads():
    """Set torch's thread count for a test, and restore it after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def trainer(folder, steps: int, used: list[int]) -> Trainer:
    def loss_fn(model, upsampled_lr, hr, generator, **_):
        used.append(torch.get_num_threads())  # the threads this step really computes with
        return (model(upsampled_lr) - hr).pow(2).mean()

    torch.manual_seed(0)
    model = UNet(3, 3, 8, (1,), 1, (), 0.0, 8, noise_conditioned=False)
    data = torch.rand(2, 3, 8, 8) * 2 - 1
    sampler = PatchSampler(list(zip(data, data)), 8, 2, 0)
    return Trainer(model, loss_fn, sampler, dict(SETTINGS, steps=steps), 0, folder / "last.pt", "threads")


def test_the_threads_each_step_used_are_recorded_across_a_resume_with_another_count(tmp_path, threads, caplog):
    used = []
    threads(1)
    trainer(tmp_path, 4, used).run()
    threads(2)
    resumed = trainer(tmp_path, 6, used)
    history = resumed.run()
    assert "resuming at step 4 with 2 torch thread(s), where the steps before ran with 1 torch thread(s)" in caplog.text
    assert used == [1, 1, 1, 1, 2, 2]
    assert resumed.threads_from_step == [(0, 1), (4, 2)]
    record = resumed.provenance()
    assert record["torch_threads"] == [[0, 1], [4, 2]] and record["processes"] == 1 and record["device"] == "cpu"

    save_model(tmp_path / "model.pt", resumed.final_model(), ARCHITECTURE, 8, False, record)
    assert training_record(tmp_path / "model.pt") == record
    write_loss_csv(history, tmp_path / "loss.csv", None, resumed.threads_from_step)
    assert list(pd.read_csv(tmp_path / "loss.csv")["torch_threads"]) == used
    assert training_threads({"Regression": tmp_path / "loss.csv"}) == {"Regression": "1 up to step 4, 2 up to step 6"}


def test_the_report_names_the_threads_that_trained_each_model_and_when_bytes_repeat(tmp_path, monkeypatch):
    pd.DataFrame({"step": [1, 2], "loss": [0.5, 0.4], "torch_threads": [2, 2]}).to_csv(
        tmp_path / "sr3.csv", index=False
    )
    pd.DataFrame({"step": [1, 2], "loss": [0.5, 0.4]}).to_csv(
        tmp_path / "old.csv", index=False
    )  # before the column existed
    (tmp_path / "manifest.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    record = provenance(
        {},
        {},
        {"train": 8},
        tmp_path,
        tmp_path / "manifest.json",
        {"SR3": tmp_path / "sr3.csv", "Old": tmp_path / "old.csv"},
    )
    assert record["training_threads"] == {"SR3": "2", "Old": "not recorded"}
    section = provenance_section(record)
    assert "Torch threads that trained each model: SR3 2, Old not recorded" in section
    assert "bit for bit only on the same machine with the same threads and processes" in section


def test_sr3bench_train_records_the_threads_it_was_given(tmp_path):
    """Through the CLI, as the engines call it: --threads 1 trains with one thread, and the
    model file, the loss CSV and the log say so."""
    params = tiny_params()
    params["presets"]["demo"]["training"]["regression"].update(steps=2, checkpoint_every=2, log_every=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "pipeline.cli"]
    prepare = [*cli, "prepare", "--preset", "demo", "--threads", "512", "--log", "prepare.log"]
    subprocess.run(prepare, cwd=tmp_path, env=env, check=True, capture_output=True)
    cores = len(os.sched_getaffinity(0))  # more threads than cores: the log says why it runs fewer
    assert f"{cores} thread(s) of the 512 asked ({cores} usable core(s))" in (tmp_path / "prepare.log").read_text()
    train = [*cli, "train", "--preset", "demo", "--method", "regression", "--threads", "1", "--log", "train.log"]
    result = subprocess.run(train, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    model = tmp_path / "models" / "demo" / "regression"
    assert training_record(model / "model.pt")["torch_threads"] == [[0, 1]]
    assert list(pd.read_csv(model / "loss.csv")["torch_threads"]) == [1, 1]
    assert "1 process(es), 1 torch thread(s) each" in (tmp_path / "train.log").read_text()


def test_provenance_declares_the_threads_of_the_stages_the_run_has_only():
    """The demo tunes nothing and has no classify section: its report names no threads of
    those stages (it did, from params.yaml's whole threads section)."""
    from pipeline import config
    from pipeline.stage_table import declared_threads

    _, _, params = config.load(REPO / "params.yaml", "demo")
    demo = declared_threads(params, "demo")
    assert {"prepare", "train", "sample", "evaluate", "report"} <= demo.keys()
    assert not {"classify", "tune"} & demo.keys()
    assert demo["train"] == params["threads"]["train"]
    classifying = [name for name, preset in params["presets"].items() if preset.get("classify")]
    assert classifying, "params.yaml has a preset with a classify section"
    _, _, params = config.load(REPO / "params.yaml", classifying[0])
    assert "classify" in declared_threads(params, classifying[0])
