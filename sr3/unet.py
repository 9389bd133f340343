"""The SR3 UNet: residual blocks, self-attention at chosen resolutions, and an optional
conditioning on the continuous noise level gamma (Saharia et al. 2021, Sec. 3 and App. A;
Ho et al. 2020 for the block design). It knows nothing of schedules: it maps
(channels-concatenated input, gamma) to an image-shaped output."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from sr3.architecture import norm_groups

# gamma lies in [0, 1]; stretching it before the sinusoids lets the high frequencies of
# the embedding resolve small differences in noise level (as WaveGrad's scale factor).
NOISE_LEVEL_SCALE = 1000.0


def noise_level_embedding(noise_level: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (Vaswani et al. 2017) of the continuous noise level gamma."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=noise_level.device) / half)
    angles = NOISE_LEVEL_SCALE * noise_level.float()[:, None] * frequencies[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=norm_groups(channels), num_channels=channels)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with the noise embedding added between them, plus a skip.
    With ``skip_rescale`` the sum is divided by sqrt(2), which keeps its variance from
    growing with depth (SR3 App. A, after BigGAN and Song et al. 2021)."""

    def __init__(
        self, in_channels: int, out_channels: int, embedding_dim: int | None, dropout: float, skip_rescale: bool = False
    ):
        super().__init__()
        self.output_scale = 1 / math.sqrt(2) if skip_rescale else 1.0
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.noise_projection = nn.Linear(embedding_dim, out_channels) if embedding_dim else None
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, embedding: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.noise_projection is not None:
            h = h + self.noise_projection(embedding)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (h + self.skip(x)) * self.output_scale


class SelfAttention(nn.Module):
    def __init__(self, channels: int, heads: int = 1):
        super().__init__()
        self.norm = group_norm(channels)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return x + attended.transpose(1, 2).reshape(batch, channels, height, width)


class Stage(nn.Module):
    """A residual block, followed by self-attention where the resolution asks for it."""

    def __init__(self, in_channels, out_channels, embedding_dim, dropout, attention, skip_rescale=False):
        super().__init__()
        self.block = ResidualBlock(in_channels, out_channels, embedding_dim, dropout, skip_rescale)
        self.attention = SelfAttention(out_channels) if attention else nn.Identity()

    def forward(self, x, embedding):
        return self.attention(self.block(x, embedding))


class UNet(nn.Module):
    """UNet of Ho et al. 2020 as used by SR3.

    ``in_channels`` is 6 for SR3 (bicubic-upsampled LR and y_t) and 3 for the regression
    baseline, which is built with ``noise_conditioned=False``, and for SR3's unconditional
    base generator (y_t alone; ``sr3/model_file.py``'s ``lr_channels`` 0). ``attention_resolutions``
    are feature-map sizes (for an ``image_size`` input) that get self-attention, the
    middle of the UNet included; without any the network is fully convolutional and
    runs on images of any size (whole test images), at a cost linear in their area.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 3,
        base_channels: int = 64,
        channel_multipliers=(1, 2, 4, 8),
        res_blocks: int = 2,
        attention_resolutions=(16,),
        dropout: float = 0.0,
        image_size: int = 128,
        noise_conditioned: bool = True,
        skip_rescale: bool = False,
    ):
        super().__init__()
        self.noise_conditioned = noise_conditioned
        embedding_dim = base_channels * 4 if noise_conditioned else None
        if noise_conditioned:
            self.noise_mlp = nn.Sequential(
                nn.Linear(base_channels, embedding_dim), nn.SiLU(), nn.Linear(embedding_dim, embedding_dim)
            )
        self.base_channels = base_channels
        self.input_conv = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down_stages, self.downsamplers = nn.ModuleList(), nn.ModuleList()
        skip_channels, channels, resolution = [base_channels], base_channels, image_size
        for level, multiplier in enumerate(channel_multipliers):
            for _ in range(res_blocks):
                out = base_channels * multiplier
                attend = resolution in attention_resolutions
                self.down_stages.append(Stage(channels, out, embedding_dim, dropout, attend, skip_rescale))
                channels = out
                skip_channels.append(channels)
            last = level == len(channel_multipliers) - 1
            self.downsamplers.append(nn.Identity() if last else nn.Conv2d(channels, channels, 3, stride=2, padding=1))
            if not last:
                skip_channels.append(channels)
                resolution //= 2
        attend = resolution in attention_resolutions
        self.middle = nn.ModuleList(
            [
                Stage(channels, channels, embedding_dim, dropout, attend, skip_rescale),
                Stage(channels, channels, embedding_dim, dropout, False, skip_rescale),
            ]
        )
        self.up_stages, self.upsamplers = nn.ModuleList(), nn.ModuleList()
        for level, multiplier in reversed(list(enumerate(channel_multipliers))):
            for _ in range(res_blocks + 1):
                out = base_channels * multiplier
                attend = resolution in attention_resolutions
                self.up_stages.append(
                    Stage(channels + skip_channels.pop(), out, embedding_dim, dropout, attend, skip_rescale)
                )
                channels = out
            first = level == 0
            self.upsamplers.append(nn.Identity() if first else nn.Conv2d(channels, channels, 3, padding=1))
            if not first:
                resolution *= 2
        self.res_blocks = res_blocks
        self.levels = len(channel_multipliers)
        self.gradient_checkpointing = False  # runtime.gradient_checkpointing: recompute stages in backward
        self.output = nn.Sequential(group_norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor | None = None) -> torch.Tensor:
        factor = 2 ** (self.levels - 1)
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"input of {tuple(x.shape[-2:])} must be divisible by {factor} (the UNet's depth)")
        embedding = None
        if self.noise_conditioned:
            if noise_level is None:
                raise ValueError("this UNet is noise-conditioned: pass the noise level gamma")
            embedding = self.noise_mlp(noise_level_embedding(noise_level, self.base_channels))
        h = self.input_conv(x)
        skips = [h]
        stages = iter(self.down_stages)
        for level in range(self.levels):
            for _ in range(self.res_blocks):
                h = self._run(next(stages), h, embedding)
                skips.append(h)
            if level < self.levels - 1:
                h = self.downsamplers[level](h)
                skips.append(h)
        for stage in self.middle:
            h = self._run(stage, h, embedding)
        stages = iter(self.up_stages)
        for index, level in enumerate(reversed(range(self.levels))):
            for _ in range(self.res_blocks + 1):
                h = self._run(next(stages), torch.cat([h, skips.pop()], dim=1), embedding)
            if level > 0:
                h = self.upsamplers[index](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.output(h)

    def _run(self, stage: Stage, h: torch.Tensor, embedding: torch.Tensor | None) -> torch.Tensor:
        """A stage, its activations kept for backward, or (gradient checkpointing, for
        the paper-size models) recomputed there: less memory for about a third more compute."""
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(stage, h, embedding, use_reentrant=False)
        return stage(h, embedding)


def padded_to_depth(model: UNet, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """``x`` grown at the bottom and right (edge pixels repeated) to the next size that the
    UNet's 2 ** (levels - 1) divides, and its own (height, width) to crop the result back
    to. Whole test images (Set14, DIV2K) need not fit the depth; sizes that do are unchanged."""
    factor = 2 ** (model.levels - 1)
    height, width = x.shape[-2:]
    grow_h, grow_w = -height % factor, -width % factor
    if grow_h or grow_w:
        x = F.pad(x, (0, grow_w, 0, grow_h), mode="replicate")
    return x, (height, width)
