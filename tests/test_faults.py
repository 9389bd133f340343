"""Faults during a run: non-finite loss, a full disk, interrupted writes."""
import errno

import pytest
import torch

from sr3 import training
from sr3.atomic import atomic_path
from sr3.data import PatchSampler
from sr3.training import NonFiniteLossError, Trainer
from sr3.unet import UNet

SETTINGS = {"steps": 10, "batch_size": 2, "patch_size": 8, "learning_rate": 1e-3, "ema_decay": 0.9, "checkpoint_every": 2, "log_every": 1}


def trainer(tmp_path, loss_fn):
    torch.manual_seed(0)
    model = UNet(3, 3, 8, (1,), 1, (), 0.0, 8, noise_conditioned=False)
    data = torch.rand(2, 3, 8, 8) * 2 - 1
    return Trainer(model, loss_fn, PatchSampler(data, data, 8, 2, 0), SETTINGS, 0, tmp_path / "last.pt", "fault-test")


def loss_that_explodes_at(step_number):
    calls = {"n": 0}

    def loss_fn(model, upsampled_lr, hr, generator):
        calls["n"] += 1
        loss = (model(upsampled_lr) - hr).pow(2).mean()
        return loss * float("nan") if calls["n"] == step_number else loss

    return loss_fn


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    run = trainer(tmp_path, loss_that_explodes_at(5))
    with pytest.raises(NonFiniteLossError, match="loss became nan at step 5.*last good checkpoint"):
        run.run()
    kept = torch.load(tmp_path / "last.pt", weights_only=False)
    assert kept["step"] == 4
    assert all(torch.isfinite(v).all() for v in kept["model"].values())


def test_full_disk_while_checkpointing_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    run = trainer(tmp_path, loss_that_explodes_at(-1))
    run.settings = dict(SETTINGS, steps=4)
    run.run()
    before = (tmp_path / "last.pt").read_bytes()

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(training.torch, "save", no_space)
    again = trainer(tmp_path, loss_that_explodes_at(-1))
    with pytest.raises(OSError, match="disk full while writing .*last.pt"):
        again.run()
    assert (tmp_path / "last.pt").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no partial file left


def test_an_interrupted_write_leaves_no_file_that_looks_complete(tmp_path):
    target = tmp_path / "result.csv"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_from_another_config_is_not_resumed(tmp_path):
    first = trainer(tmp_path, loss_that_explodes_at(-1))
    first.settings = dict(SETTINGS, steps=4)
    first.run()
    other = trainer(tmp_path, loss_that_explodes_at(-1))
    other.fingerprint = "another config"
    assert other.resume() is False and other.step == 0
