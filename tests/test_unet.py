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


@pytest.mark.parametrize(
    "config",
    [
        dict(base_channels=8, channel_multipliers=(1, 2), res_blocks=1),
        dict(base_channels=32, channel_multipliers=(1, 2, 2), res_blocks=2),
        dict(base_channels=12, channel_multipliers=(1, 3), res_blocks=1),
    ],
)
def test_the_config_check_knows_every_group_norm_of_the_network(config):
    from sr3.architecture import normalised_channel_counts

    model = UNet(in_channels=6, attention_resolutions=(), image_size=16, **config)
    built = [m.num_channels for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert sorted(built) == sorted(normalised_channel_counts(**config))


def test_one_batch_can_be_overfitted_and_the_fit_depends_on_the_noise_level():
    """The network can learn a batch, and learns to use gamma: targets that differ only by
    the noise level are told apart."""
    torch.manual_seed(0)
    model = UNet(
        6, 3, base_channels=8, channel_multipliers=(1, 2), res_blocks=1, attention_resolutions=(), image_size=8
    )
    inputs = torch.randn(1, 6, 8, 8).repeat(2, 1, 1, 1)  # the same input twice
    levels = torch.tensor([0.2, 0.8])
    targets = torch.stack([torch.full((3, 8, 8), 0.5), torch.full((3, 8, 8), -0.5)])
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    first = None
    for _ in range(100):
        loss = (model(inputs, levels) - targets).pow(2).mean()
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.01 * first
