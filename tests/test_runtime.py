"""The trainer's runtime settings: torchrun's variables, bf16 and fp16 autocast (fp16 with
a gradient scaler), channels_last, gradient checkpointing and read-ahead data workers.
Each keeps training what it was (equal weights, or a loss that falls) and resumes exactly."""

import pytest
import torch
import yaml
from conftest import REPO

from pipeline import config
from sr3.data import PatchSampler
from sr3.method import training_loss
from sr3.training import Trainer
from sr3.unet import UNet
from sr3bench.core import runtime as runtime_module
from sr3bench.core.runtime import Runtime, RuntimeSettingError, cpu_flags, resolve_precision, runtime_from_config

DIFFUSION = {
    "training_schedule": {"steps": 100, "beta_start": 1e-4, "beta_end": 0.05},
    "loss": "l1",
    "parametrization": "v",
}
SETTINGS = {
    "batch_size": 4,
    "patch_size": 16,
    "learning_rate": 1e-3,
    "warmup_steps": 0,
    "ema_decay": 0.9,
    "checkpoint_every": 3,
    "log_every": 1,
    "keep": "last",
}


def pairs():
    generator = torch.Generator().manual_seed(0)
    hr = torch.nn.functional.interpolate(
        torch.rand(6, 3, 4, 4, generator=generator) * 2 - 1, size=16, mode="bilinear", align_corners=False
    )
    upsampled = torch.nn.functional.avg_pool2d(hr, 4).repeat_interleave(4, -1).repeat_interleave(4, -2)
    return list(zip(upsampled, hr))


def trainer(checkpoint, steps, data=None, **runtime) -> Trainer:
    torch.manual_seed(0)
    model = UNet(6, 3, 8, (1, 2), 1, (8,), 0.0, 16)
    settings = dict(SETTINGS, steps=steps)
    sampler = PatchSampler(data or pairs(), 16, 4, seed=0)
    return Trainer(
        model,
        training_loss({"diffusion": DIFFUSION}),
        sampler,
        settings,
        0,
        checkpoint,
        "runtime-test",
        Runtime(torch.device("cpu"), **runtime),
    )


def weights(run: Trainer) -> dict:
    return {key: value.float() for key, value in run.model.state_dict().items()}


def test_torchrun_variables_make_the_rank():
    runtime = runtime_from_config(
        {"device": "cpu", "precision": "bf16"}, {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}
    )
    assert (runtime.rank, runtime.world_size, runtime.distributed, runtime.writes_files, runtime.precision) == (
        1,
        2,
        True,
        False,
        "bf16",
    )
    assert runtime_from_config({"device": "cpu", "precision": "fp32"}, {}).writes_files


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_learns_and_resumes_exactly(tmp_path, precision):
    """fp16 carries its gradient scaler through the checkpoint: a run stopped at step 3
    and resumed ends with the weights of an uninterrupted one."""
    uninterrupted = trainer(tmp_path / "whole.pt", 6, precision=precision)
    losses = [loss for _, loss in uninterrupted.run()]
    assert losses[-1] < losses[0]
    trainer(tmp_path / "parts.pt", 3, precision=precision).run()
    resumed = trainer(tmp_path / "parts.pt", 6, precision=precision)
    resumed.run()
    if precision == "fp16":
        assert (
            resumed.grad_scaler.is_enabled()
            and resumed.grad_scaler.state_dict() == uninterrupted.grad_scaler.state_dict()
        )
    assert all(torch.equal(value, weights(uninterrupted)[key]) for key, value in weights(resumed).items())


def test_a_resume_in_another_precision_is_recorded_in_the_provenance(tmp_path, caplog):
    trainer(tmp_path / "mixed.pt", 3).run()
    resumed = trainer(tmp_path / "mixed.pt", 6, precision="bf16")
    with caplog.at_level("WARNING"):
        resumed.run()
    assert resumed.provenance()["precision_from_step"] == [[0, "fp32"], [3, "bf16"]]
    assert "resuming at step 3 with bf16 precision, where the steps before ran with fp32 precision" in caplog.text


def test_channels_last_and_gradient_checkpointing_train_the_same_weights(tmp_path):
    plain = trainer(tmp_path / "plain.pt", 3)
    plain.run()
    for setting in ("channels_last", "gradient_checkpointing"):
        other = trainer(tmp_path / f"{setting}.pt", 3, **{setting: True})
        other.run()
        assert all(torch.allclose(value, weights(plain)[key], atol=1e-4) for key, value in weights(other).items()), (
            setting
        )


def test_read_ahead_workers_resume_as_an_uninterrupted_run(tmp_path):
    """The thread reads batches ahead of the step; the checkpoint keeps the data order of
    the last batch used, not of the last one read."""
    reference = trainer(tmp_path / "reference.pt", 8)
    reference.run()
    trainer(tmp_path / "ahead.pt", 4, data_workers=3).run()
    resumed = trainer(tmp_path / "ahead.pt", 8, data_workers=3)
    resumed.run()
    assert all(torch.equal(value, weights(reference)[key]) for key, value in weights(resumed).items())


def test_a_read_error_in_the_worker_thread_stops_training_with_its_message(tmp_path):
    class Damaged(list):
        def __getitem__(self, index):
            if index != 0:  # the sampler reads item 0 for the image size
                raise ValueError(f"item {index} is damaged")
            return super().__getitem__(index)

    with pytest.raises(ValueError, match="item .* is damaged"):
        trainer(tmp_path / "damaged.pt", 4, data=Damaged(pairs()), data_workers=2).run()


def test_the_trainer_waits_for_its_losses_only_at_log_lines_and_checkpoints(tmp_path, monkeypatch):
    """No per-step read of the loss (on a GPU each would wait for the step): 10 steps,
    a log line every 5 and a checkpoint every 3 read the losses at 3, 5, 6, 9 and 10."""
    reads = []
    read_losses = Trainer._read_losses

    def recording(self, running, count):
        reads.append((self.step, len(self.unread_losses)))
        return read_losses(self, running, count)

    monkeypatch.setattr(Trainer, "_read_losses", recording)
    monkeypatch.setitem(SETTINGS, "log_every", 5)
    run = trainer(tmp_path / "reads.pt", 10)
    history = run.run()
    assert reads == [(3, 3), (5, 2), (6, 1), (9, 3), (10, 1)]
    assert [step for step, _ in history] == [5, 10] and run.unread_losses == []


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: A CPU\nflags\t\t: fpu avx2 avx512_bf16 amx_bf16\n\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize(
    "flags, chosen, why",
    [
        ({"avx2", "amx_bf16", "amx_tile"}, "bf16", "has amx_bf16"),
        ({"avx512f", "avx512_bf16"}, "bf16", "has avx512_bf16"),
        ({"avx512f", "amx_bf16", "avx512_bf16"}, "bf16", "has amx_bf16 and avx512_bf16"),
        ({"avx2", "fma"}, "fp32", "neither amx_bf16 nor avx512_bf16"),
        (set(), "fp32", "neither amx_bf16 nor avx512_bf16"),
    ],
)
def test_precision_auto_takes_bf16_only_where_the_cpu_computes_it_natively(flags, chosen, why):
    precision, reason = resolve_precision("auto", torch.device("cpu"), flags)
    assert precision == chosen and why in reason and reason.startswith("runtime.precision auto")
    assert resolve_precision("fp32", torch.device("cpu"), {"amx_bf16"}) == ("fp32", "runtime.precision is fp32")
    assert resolve_precision("bf16", torch.device("cpu"), set()) == ("bf16", "runtime.precision is bf16")


def test_precision_auto_is_resolved_once_and_recorded_in_the_model_provenance(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime_module, "cpu_flags", lambda: {"avx2"})
    assert runtime_from_config({"device": "cpu", "precision": "auto"}, {}).precision == "fp32"
    monkeypatch.setattr(runtime_module, "cpu_flags", lambda: {"avx512f", "amx_bf16"})
    resolved = runtime_from_config({"device": "cpu", "precision": "auto"}, {})
    assert resolved.precision == "bf16" and "amx_bf16" in resolved.precision_reason
    run = trainer(tmp_path / "auto.pt", 2, precision=resolved.precision, precision_reason=resolved.precision_reason)
    run.run()
    record = run.provenance()
    assert record["precision"] == "bf16" and record["precision_reason"] == resolved.precision_reason
    with pytest.raises(RuntimeSettingError, match="runtime.precision auto is resolved by runtime_from_config"):
        Runtime(torch.device("cpu"), "auto")


def test_the_schema_takes_precision_auto_and_keeps_fp32_the_default():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["presets"]["demo"].setdefault("runtime", {})["precision"] = "auto"
    assert config.resolve(params)["presets"]["demo"]["runtime"]["precision"] == "auto"
    params["presets"]["demo"]["runtime"]["precision"] = "bf32"
    with pytest.raises(config.ConfigError, match="presets.demo.runtime.precision"):
        config.validate(params)
    del params["presets"]["demo"]["runtime"]["precision"]
    assert config.resolve(params)["presets"]["demo"]["runtime"]["precision"] == "fp32"
