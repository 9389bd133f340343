import pandas as pd
import pytest
import torch

from baselines.regression import regression_loss
from sr3.data import PatchSampler
from sr3.method import training_loss as sr3_training_loss
from sr3.training import Trainer, write_loss_csv
from sr3.unet import UNet

SETTINGS = {
    "steps": 60,
    "batch_size": 4,
    "patch_size": 16,
    "learning_rate": 1e-3,
    "warmup_steps": 0,
    "ema_decay": 0.9,
    "checkpoint_every": 1000,
    "log_every": 10,
    "keep": "last",
}
DIFFUSION = {
    "training_schedule": {"steps": 100, "beta_start": 1e-4, "beta_end": 0.05},
    "loss": "l2",
    "parametrization": "eps",
}


def tiny_data():
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(4, 3, 4, 4, generator=generator) * 2 - 1
    hr = torch.nn.functional.interpolate(coarse, size=16, mode="bilinear", align_corners=False)  # learnable from its LR
    upsampled = torch.nn.functional.avg_pool2d(hr, 4).repeat_interleave(4, -1).repeat_interleave(4, -2)
    return upsampled, hr


def train(model, loss_fn, tmp_path, name):
    upsampled, hr = tiny_data()
    sampler = PatchSampler(list(zip(upsampled, hr)), 16, 4, seed=0)
    trainer = Trainer(model, loss_fn, sampler, SETTINGS, 0, tmp_path / f"{name}.pt", "test")
    return [loss for _, loss in trainer.run()]


def test_sr3_loss_falls_on_a_tiny_batch(tmp_path):
    torch.manual_seed(0)
    model = UNet(6, 3, 8, (1, 2), 1, (), 0.0, 16)
    history = train(model, sr3_training_loss({"diffusion": DIFFUSION}), tmp_path, "sr3")
    assert history[-1] < 0.7 * history[0]


def test_regression_loss_falls_on_a_tiny_batch(tmp_path):
    torch.manual_seed(0)
    model = UNet(3, 3, 8, (1, 2), 1, (), 0.0, 16, noise_conditioned=False)
    history = train(model, regression_loss, tmp_path, "regression")
    assert history[-1] < 0.5 * history[0]


def test_warmup_raises_the_learning_rate_linearly_and_survives_a_resume(tmp_path):
    def trainer(steps):
        torch.manual_seed(0)
        model = UNet(3, 3, 8, (1, 2), 1, (), 0.0, 16, noise_conditioned=False)
        sampler = PatchSampler(list(zip(*tiny_data())), 16, 4, seed=0)
        settings = dict(SETTINGS, steps=steps, warmup_steps=8)
        return Trainer(model, regression_loss, sampler, settings, 0, tmp_path / f"{steps}.pt", "warmup")

    first = trainer(3)
    assert first.optimizer.param_groups[0]["lr"] == 1e-3 / 8
    first.run()
    assert first.optimizer.param_groups[0]["lr"] == 1e-3 * 4 / 8
    (tmp_path / "3.pt").rename(tmp_path / "10.pt")
    resumed = trainer(10)
    resumed.run()
    assert resumed.optimizer.param_groups[0]["lr"] == 1e-3

    uninterrupted = trainer(10)
    (tmp_path / "10.pt").unlink()
    uninterrupted.run()
    theirs = uninterrupted.model.state_dict()
    assert all(torch.equal(value, theirs[key]) for key, value in resumed.model.state_dict().items())


def test_best_on_validation_keeps_the_best_scored_weights_across_a_resume(tmp_path):
    """keep: best_val_psnr (the regression baseline's selection): the model that comes out
    is the EMA model as it was when validation scored best, even after a resume."""
    scores = iter([20.0, 25.0, 21.0, 22.0])  # validations at steps 10, 20, 30, 40
    seen = {}

    def validate(model):
        score = next(scores)
        seen[score] = {k: v.clone() for k, v in model.state_dict().items()}
        return score

    def trainer(steps):
        torch.manual_seed(0)
        model = UNet(3, 3, 8, (1, 2), 1, (), 0.0, 16, noise_conditioned=False)
        sampler = PatchSampler(list(zip(*tiny_data())), 16, 4, seed=0)
        settings = dict(SETTINGS, steps=steps, keep="best_val_psnr", validate_every=10)
        return Trainer(model, regression_loss, sampler, settings, 0, tmp_path / "best.pt", "best", validate=validate)

    trainer(20).run()  # scores 20 (step 10) and 25 (step 20); checkpoint at the end
    resumed = trainer(40)
    resumed.run()
    final = resumed.final_model().state_dict()
    assert resumed.best["step"] == 20 and resumed.best["psnr"] == 25.0
    assert all(torch.equal(final[k], seen[25.0][k]) for k in final)
    assert not all(torch.equal(final[k], seen[22.0][k]) for k in final)  # not simply the last weights
    assert resumed.validation_history == [(10, 20.0), (20, 25.0), (30, 21.0), (40, 22.0)]  # kept across the resume
    write_loss_csv(resumed.loss_history, tmp_path / "loss.csv", resumed.validation_history)
    table = pd.read_csv(tmp_path / "loss.csv").set_index("step")
    assert list(table["val_psnr"].dropna()) == [20.0, 25.0, 21.0, 22.0] and table["loss"].notna().all()


@pytest.mark.fault
def test_sampling_refuses_a_model_trained_with_another_model_section(tmp_path):
    """A model file whose UNet is not the preset's model: (trained under other settings,
    copied from elsewhere) is refused by name instead of silently sampled."""
    from sr3 import method as sr3_method
    from sr3.model_file import build_unet, save_model
    from sr3bench.core.runtime import sampling_model

    config = {
        "base_channels": 8,
        "channel_multipliers": [1, 2],
        "res_blocks": 1,
        "attention_resolutions": [],
        "dropout": 0.0,
    }
    path = tmp_path / "models" / "demo" / "sr3" / "model.pt"
    save_model(path, build_unet(config, 16, noise_conditioned=True), config, 16, noise_conditioned=True)
    runtime = {"device": "cpu", "precision": "fp32", "channels_last": False}
    settings = {"model": dict(config), "runtime": runtime, "sampling": {"compile": False}}
    assert sampling_model(sr3_method, path, settings) is not None  # the same network: loaded
    settings["model"]["base_channels"] = 16
    with pytest.raises(
        ValueError, match=r"model.pt was trained with another model: .*base_channels 8 \(the preset's: 16\)"
    ):
        sampling_model(sr3_method, path, settings)
