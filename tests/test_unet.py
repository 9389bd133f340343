import pytest
import torch

from sr3.unet import UNet

SMALL = dict(base_channels=8, channel_multipliers=(1, 2), res_blocks=1, attention_resolutions=(8,), image_size=16)


def test_sr3_unet_maps_six_channels_to_an_image():
    model = UNet(in_channels=6, **SMALL)
    out = model(torch.randn(2, 6, 16, 16), torch.tensor([0.3, 0.9]))
    assert out.shape == (2, 3, 16, 16)


def test_fully_convolutional_on_other_sizes():
    model = UNet(in_channels=6, **SMALL)
    assert model(torch.randn(1, 6, 24, 32), torch.tensor([0.5])).shape == (1, 3, 24, 32)


def test_output_depends_on_the_noise_level():
    torch.manual_seed(0)
    model = UNet(in_channels=6, **SMALL).eval()
    x = torch.randn(1, 6, 16, 16)
    low, high = model(x, torch.tensor([0.1])), model(x, torch.tensor([0.9]))
    nearby = model(x, torch.tensor([0.1001]))
    assert (low - high).abs().mean() > 1e-3
    assert (low - nearby).abs().mean() > 0  # continuous gamma, not a step index


def test_regression_unet_takes_no_noise_level():
    model = UNet(in_channels=3, noise_conditioned=False, **SMALL)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 3, 16, 16)
    conditioned = UNet(in_channels=6, **SMALL)
    with pytest.raises(ValueError, match="noise level"):
        conditioned(torch.randn(1, 6, 16, 16))


def test_input_size_must_fit_the_depth():
    model = UNet(in_channels=6, **SMALL)
    with pytest.raises(ValueError, match="divisible"):
        model(torch.randn(1, 6, 15, 16), torch.tensor([0.5]))
