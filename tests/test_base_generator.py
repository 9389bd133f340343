"""SR3's unconditional base generator (sr3/base_generator.py): SR3's UNet without the LR
input, trained and sampled by SR3's own diffusion code with no conditioning, learns a
simple distribution; SR3's conditional path is what it was before the parametrisation."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO
from torch.nn import functional as F

from pipeline import config, registry
from sr3 import base_generator, diffusion
from sr3 import method as sr3_method
from sr3 import schedule as schedules
from sr3.data import PatchSampler
from sr3.model_file import load_model
from sr3.training import Trainer
from sr3bench.metrics.evaluate import evaluate_method, unpaired_reasons
from sr3bench.metrics.table import names
from sr3bench.reporting.build import unavailable_notes
from sr3bench.reporting.tables import summarise

# The training distribution: flat 8x8 images, half of one colour, half of the other.
MODES = np.array([[200, 40, 120], [40, 180, 60]], dtype=np.float64)
SCHEDULE = {"steps": 100, "beta_start": 1e-4, "beta_end": 0.2}
SETTINGS = {
    "model": {
        "base_channels": 16,
        "channel_multipliers": [1, 2],
        "res_blocks": 1,
        "attention_resolutions": [4],
        "dropout": 0.0,
    },
    "diffusion": {
        "training_schedule": SCHEDULE,
        "inference_schedule": SCHEDULE,
        "sampler": "ancestral_posterior",
        "loss": "l2",
        "parametrization": "v",
    },
}
OWN = {
    "steps": 400,
    "batch_size": 16,
    "patch_size": 8,
    "learning_rate": 2e-3,
    "warmup_steps": 0,
    "ema_decay": 0.98,
    "checkpoint_every": 100_000,
    "log_every": 50,
    "keep": "last",
}
SEEDS = list(range(16))


def lr_inputs(count: int) -> list[np.ndarray]:
    """LR images of 2x2 (x4: 8x8 generated images): only their count and size are read."""
    return [np.full((2, 2, 3), 255, np.uint8)] * count


def generate(model, seeds: list[int]) -> list[np.ndarray]:
    return base_generator.super_resolve(model, lr_inputs(len(seeds)), 4, seeds, SETTINGS, lambda fraction: None)


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    """A tiny generator trained through the method protocol on the two flat colours."""
    flat = torch.tensor(MODES, dtype=torch.float32).div(127.5).sub(1)[:, :, None, None].expand(2, 3, 8, 8)
    pairs = [(torch.zeros(3, 8, 8), flat[i % 2]) for i in range(16)]  # the upsampled LR, unused
    torch.manual_seed(0)
    model = base_generator.build_model(SETTINGS, OWN)
    loss = base_generator.training_loss(SETTINGS)
    checkpoint = tmp_path_factory.mktemp("generator") / "last.pt"
    trainer = Trainer(model, loss, PatchSampler(pairs, 8, OWN["batch_size"], seed=0), OWN, 0, checkpoint, "test")
    trainer.run()
    return trainer.ema_model.eval()


def test_the_unconditional_unet_sees_y_t_alone_and_lacks_only_the_lr_inputs_weights():
    own = dict(OWN, patch_size=16)
    sr3 = sr3_method.build_model(SETTINGS, own)
    base = base_generator.build_model(SETTINGS, own)
    assert (sr3.input_conv.in_channels, base.input_conv.in_channels) == (6, 3)
    shapes = {name: p.shape for name, p in base.named_parameters()}
    assert shapes.keys() == dict(sr3.named_parameters()).keys()
    different = {name for name, p in sr3.named_parameters() if p.shape != shapes[name]}
    assert different == {"input_conv.weight"}
    base_channels = SETTINGS["model"]["base_channels"]
    count = sum(p.numel() for p in base.parameters())
    assert sum(p.numel() for p in sr3.parameters()) - count == 3 * base_channels * 3 * 3  # the LR's 3 input channels
    level = torch.full((2,), 0.5)
    assert base(torch.zeros(2, 3, 16, 16), level).shape == (2, 3, 16, 16)
    with pytest.raises(RuntimeError):
        base(torch.zeros(2, 6, 16, 16), level)  # an LR input has nowhere to go


def test_the_generator_draws_flat_images_of_the_training_colours_both_of_them(generator):
    images = generate(generator, SEEDS)
    assert all(image.shape == (8, 8, 3) and image.dtype == np.uint8 for image in images)
    means = np.array([image.reshape(-1, 3).mean(axis=0) for image in images])
    distance = np.linalg.norm(means[:, None, :] - MODES[None], axis=-1)  # to each colour, in 0..255 levels
    # Noise (or any image without the colours) averages to mid-grey, 113.9 and 122.3 levels
    # from the two colours; every sample is within a third of that of one of them.
    grey = np.linalg.norm(np.full(3, 127.5) - MODES, axis=-1)
    assert np.allclose(grey, [113.9, 122.3], atol=0.05)
    assert distance.min(axis=1).max() < grey.min() / 3, distance.min(axis=1)
    assert set(distance.argmin(axis=1)) == {0, 1}  # both colours, not one
    spread = np.array([image.reshape(-1, 3).std(axis=0).mean() for image in images])
    assert np.median(spread) < 20, spread  # flat: N(0, 1) noise clipped to [-1, 1] spreads by 92 levels


def test_seeds_make_the_samples_reproducible_and_independent_of_their_batch(generator):
    first = generate(generator, [3, 4, 5])
    assert all(np.array_equal(a, b) for a, b in zip(first, generate(generator, [3, 4, 5])))
    (alone,) = generate(generator, [4])
    assert np.array_equal(alone, first[1])
    assert not np.array_equal(first[0], first[1])


def test_a_size_the_unet_depth_does_not_divide_is_generated_and_cropped(generator):
    (image,) = base_generator.super_resolve(
        generator, [np.zeros((3, 5, 3), np.uint8)], 2, [0], SETTINGS, lambda fraction: None
    )
    assert image.shape == (6, 10, 3)


def test_the_model_file_rebuilds_the_unconditional_unet(tmp_path, generator):
    path = tmp_path / "model.pt"
    base_generator.save_model_file(path, generator, SETTINGS, OWN, {"device": "cpu"})
    loaded = load_model(path)
    assert loaded.input_conv.in_channels == 3
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), generator.state_dict().values()))
    # SR3's files keep their bytes (no lr_channels key) and load with the LR input, as before
    sr3_path = tmp_path / "sr3.pt"
    sr3_method.save_model_file(sr3_path, sr3_method.build_model(SETTINGS, OWN), SETTINGS, OWN, {})
    assert "lr_channels" not in torch.load(sr3_path, weights_only=True)
    assert load_model(sr3_path).input_conv.in_channels == 6


def test_keeping_the_best_validation_psnr_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="keep: last"):
        base_generator.build_model(SETTINGS, dict(OWN, keep="best_val_psnr"))


def generator_params(change) -> dict:
    """The committed params, active preset faces16_base_small (sr3_base) changed by ``change``."""
    params = config.read_params(REPO / "params.yaml")
    params["preset"] = "faces16_base_small"
    change(params["presets"]["faces16_base_small"])
    return params


def tuned_variant(preset: dict) -> None:
    preset["tune"] = {"samplers": ["ddim"], "steps": [5], "schedules": [{"shape": "cosine"}]}
    preset["variants"] = {"t": {"tuned": {"max_steps": 10}}}
    preset["methods"] = ["sr3_base", "sr3_base@t"]


def study_of_every_method(preset: dict) -> None:
    preset["study"] = copy.deepcopy(config.read_params(REPO / "params.yaml")["presets"]["demo"]["study"])
    preset["study"].update(methods=None, answers="collected")


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda preset: preset["training"]["sr3_base"].update(keep="best_val_psnr"), "training.sr3_base.keep"),
        (tuned_variant, "variants.t.tuned"),
        (study_of_every_method, "study.methods"),
    ],
    ids=["keep-best", "tuned-variant", "study"],
)
def test_what_needs_outputs_of_given_images_is_refused_for_a_generator_before_a_run(change, key):
    with pytest.raises(config.ConfigError) as error:
        config.resolve(generator_params(change))
    assert f"presets.faces16_base_small.{key}:" in str(error.value) and "unconditional" in str(error.value)


def test_a_generator_may_sample_other_ways_and_is_left_out_of_the_diversity_stage():
    def other_sampler_and_diversity(preset):
        preset["variants"] = {
            "fast": {"sampler": "ddim", "inference_schedule": {"steps": 10, "beta_start": 1e-4, "beta_end": 0.2}}
        }
        preset["methods"] = ["sr3_base", "sr3_base@fast"]
        preset["diversity"] = {"images": 2, "seeds": 2}

    resolved = config.resolve(generator_params(other_sampler_and_diversity))
    preset = resolved["presets"]["faces16_base_small"]
    assert registry.diverse_methods(preset, ["sr3_base", "sr3_base@fast"]) == []  # its images are of no LR input
    demo = resolved["presets"]["demo"]
    assert registry.diverse_methods(demo, ["bicubic", "sr3"]) == (["sr3"] if demo["diversity"]["images"] else [])


# SR3's conditional path as it was before the conditioning became optional (sr3/diffusion.py
# at commit b1a4896): the loss and the noise estimate, for a whole batch.
def loss_before(model, upsampled_lr, hr, training_schedule, generator, norm, parametrization):
    batch_size = hr.shape[0]
    noise_level = schedules.sample_training_noise_levels(training_schedule, batch_size, generator)
    noise = torch.randn((batch_size, *hr.shape[1:]), generator=generator)
    predicted = model(torch.cat([upsampled_lr, diffusion.noisy_image(hr, noise_level, noise)], dim=1), noise_level)
    target = noise
    if parametrization == "v":
        gamma = noise_level.view(-1, 1, 1, 1)
        target = gamma.sqrt() * noise - (1 - gamma).sqrt() * hr
    return F.l1_loss(predicted, target) if norm == "l1" else F.mse_loss(predicted, target)


def noise_estimate_before(model, upsampled_lr, noisy, noise_level, parametrization):
    output = model(torch.cat([upsampled_lr, noisy], dim=1), noise_level)
    if parametrization == "eps":
        return output
    gamma = noise_level.view(-1, 1, 1, 1)
    return gamma.sqrt() * output + (1 - gamma).sqrt() * noisy


@pytest.mark.parametrize("parametrization, norm", [("eps", "l1"), ("eps", "l2"), ("v", "l1"), ("v", "l2")])
def test_sr3s_loss_and_noise_estimate_are_those_before_the_parametrisation(parametrization, norm):
    torch.manual_seed(0)
    model = sr3_method.build_model(SETTINGS, OWN).eval()
    upsampled, hr = torch.rand(2, 4, 3, 8, 8).mul(2).sub(1)
    new = diffusion.training_loss(
        model, upsampled, hr, SCHEDULE, torch.Generator().manual_seed(7), norm, parametrization
    )
    old = loss_before(model, upsampled, hr, SCHEDULE, torch.Generator().manual_seed(7), norm, parametrization)
    assert torch.equal(new, old)
    level, noisy = torch.tensor([0.3, 0.5, 0.7, 0.9]), torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(
            diffusion.predict_noise(model, upsampled, noisy, level, parametrization),
            noise_estimate_before(model, upsampled, noisy, level, parametrization),
        )


class FixedCondition(torch.nn.Module):
    """SR3's UNet with its conditioning built in: an unconditional model of y_t."""

    def __init__(self, model, condition):
        super().__init__()
        self.model, self.condition = model, condition

    def forward(self, noisy, level):
        return self.model(torch.cat([self.condition, noisy], dim=1), level)


@pytest.mark.parametrize("sampler", diffusion.SAMPLERS)
def test_sampling_without_conditioning_is_sr3s_sampler(sampler):
    """An unconditional sample of a model that holds x itself equals SR3's sample given x:
    the same steps and the same seeded noise, only the conditioning moved."""
    torch.manual_seed(0)
    model = sr3_method.build_model(SETTINGS, OWN).eval()
    upsampled = torch.rand(2, 3, 8, 8).mul(2).sub(1)
    schedule = {"steps": 6, "beta_start": 1e-3, "beta_end": 0.5}
    conditional = diffusion.sample(model, upsampled, schedule, [1, 2], None, "v", sampler)
    unconditional = diffusion.sample(
        FixedCondition(model, upsampled), None, schedule, [1, 2], None, "v", sampler, (3, 8, 8)
    )
    assert torch.equal(conditional, unconditional)
    with pytest.raises(ValueError, match="shape"):
        diffusion.sample(model, None, schedule, [1], None, "v", sampler)


def test_only_the_generator_is_unconditional_and_evaluate_leaves_its_paired_metrics_empty(tmp_path):
    assert [e.name for e in registry.ENTRIES if not e.conditional] == ["sr3_base"]
    assert registry.entry("sr3_base").trained and registry.entry("sr3_base").title == "SR3 base generator"
    hr, samples = tmp_path / "hr", tmp_path / "samples"
    for folder in (hr, samples):
        folder.mkdir()
        for name in ("a.png", "b.png"):
            (folder / name).write_bytes(b"not read")  # a generated image is compared with no test image
    protocol = {"color": "rgb", "border_crop": 0}
    table, record, reasons = evaluate_method("sr3_base", hr, tmp_path / "lr", samples, {}, protocol, 4, paired=False)
    assert list(table["name"]) == ["a.png", "b.png"] and record["scale"] == 4
    assert table[names(per="image")].isna().all().all() and reasons == unpaired_reasons("sr3_base")
    assert set(reasons) == {"psnr", "ssim", "consistency", "lpips"}
    set_metrics = {"sr3_base": {"fid": 80.0, "kid": 0.05, "is": None, "unavailable": reasons}}
    notes = unavailable_notes(set_metrics)
    assert "PSNR (sr3_base)" in notes and notes["LPIPS (sr3_base)"].startswith("not applicable")
    summary = summarise(table, set_metrics, "RGB").iloc[0]
    assert math.isnan(summary["psnr"]) and math.isnan(summary["lpips"]) and summary["fid"] == 80.0
    assert pd.isna(summary["psnr_ci_low"])
