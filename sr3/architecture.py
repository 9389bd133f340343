"""The UNet's shape rules without torch, so that a config is checked before anything runs
(the Snakefile validates at every start and should not import torch to do it)."""

from __future__ import annotations


def norm_groups(channels: int) -> int:
    """Group count of the group norm over ``channels`` channels (at most 32, 4+ per group)."""
    return min(32, channels // 4) or 1


def normalised_channel_counts(base_channels: int, channel_multipliers, res_blocks: int) -> list[int]:
    """The channel count of every group norm in ``sr3.unet.UNet``, in construction order
    (tests/test_unet.py checks this against a built network)."""
    counts, skips, channels = [], [base_channels], base_channels
    for level, multiplier in enumerate(channel_multipliers):
        for _ in range(res_blocks):
            out = base_channels * multiplier
            counts += [channels, out]  # the residual block's two norms
            channels = out
            skips.append(channels)
        if level < len(channel_multipliers) - 1:
            skips.append(channels)
    counts += [channels, channels] * 2  # the two middle blocks
    for multiplier in reversed(channel_multipliers):
        for _ in range(res_blocks + 1):
            out = base_channels * multiplier
            counts += [channels + skips.pop(), out]
            channels = out
    return counts + [channels]  # the output norm


def unet_config_problems(model_config: dict) -> list[str]:
    """Why the UNet cannot be built from ``model_config`` (empty when it can)."""
    counts = normalised_channel_counts(
        model_config["base_channels"], model_config["channel_multipliers"], model_config["res_blocks"]
    )
    bad = sorted({c for c in counts if c % norm_groups(c)})
    return [
        f"a group norm over {c} channels would have {norm_groups(c)} groups, which do not divide it "
        "(choose base_channels as a multiple of 4 whose multiples by the channel_multipliers divide evenly, "
        "e.g. 32, 64, 128)"
        for c in bad
    ]
