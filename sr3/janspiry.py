"""SR3 as the most-used public re-implementation builds it, so that its released generator
checkpoints load here (github.com/Janspiry/Image-Super-Resolution-via-Iterative-Refinement,
read at commit 01d27a7: ``model/sr3_modules/unet.py``, ``model/sr3_modules/diffusion.py``,
``model/networks.py``, ``config/sr_sr3_16_128.json``, ``config/sr_sr3_64_512.json``).

The network is written here; what it shares with theirs are the facts a checkpoint fixes:
the state-dict names, the tensor shapes, and the arithmetic. Their UNet:

* the noise level is ``sqrt(gamma)`` (their ``continuous_sqrt_alpha_cumprod``), put through
  sinusoids as it is (no scale factor: frequencies 1 down to 1e-4 per unit), then
  Linear(C, 4C), Swish, Linear(4C, C), C the inner channel count (``noise_level_mlp.1``, ``.3``);
* each residual block: GroupNorm, Swish, 3x3 conv (``block1.block.{0,3}``), the noise
  embedding's Linear added per channel (``noise_func.noise_func.0``), GroupNorm, Swish,
  dropout, 3x3 conv (``block2.block.{0,3}``), a 1x1 conv on the skip where the channel
  count changes (``res_conv``); no rescaling of the sum;
* self-attention (one head, softmax of q.k / sqrt(channels)) after the blocks of the levels
  whose nominal size is in ``attn_res`` (nominal: from ``image_size``, whatever the input
  size), and always after the first middle block; a 1x1 conv without bias makes q, k, v
  in that order (``attn.qkv``), a 1x1 conv projects back (``attn.out``);
* ``downs``: the input conv, ``res_blocks`` blocks per level, a stride-2 conv between levels;
  ``mid``: two blocks; ``ups``: ``res_blocks + 1`` blocks per level, each on its input
  concatenated with the matching ``downs`` output (input first), nearest x2 then a 3x3 conv
  between levels; ``final_conv``: GroupNorm, Swish, 3x3 conv;
* the input is concat(bicubic-upsampled LR, y_t), the output the noise estimate eps.

Their ``*_gen.pth`` files are the state dict of their ``GaussianDiffusion``: the UNet under
``denoise_fn.`` and the buffers of the noise schedule it was saved with (``betas`` and
eleven values computed from them). :func:`read_checkpoint` takes that or the UNet's own
state dict, and names every missing, unexpected or mis-shaped tensor when it does not fit.

This project's samplers call ``model(x, gamma)`` with gamma itself; :class:`GammaConditioned`
is the thin wrapper that hands the network sqrt(gamma), so every sampler and schedule of
``sr3/diffusion.py`` applies unchanged (docs/public-checkpoints.md).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from sr3 import schedule as schedules
from sr3bench.core.atomic import atomic_path
from sr3bench.core.checksums import file_sha256

SOURCE = "github.com/Janspiry/Image-Super-Resolution-via-Iterative-Refinement"
FILE_FORMAT = "janspiry-sr3"  # the "format" of this project's model file for these networks

# Their configs' ``model.unet`` section plus ``model.diffusion.image_size`` (norm_groups:
# 32 where the file leaves it out, as their model/networks.py does).
CONFIG_KEYS = (
    "in_channel",
    "out_channel",
    "inner_channel",
    "norm_groups",
    "channel_multiplier",
    "attn_res",
    "res_blocks",
    "dropout",
    "image_size",
)
CONFIG_DEFAULTS = {"in_channel": 6, "out_channel": 3, "norm_groups": 32, "dropout": 0.0}
CONFIGS = {
    "sr_sr3_16_128": {
        "in_channel": 6,
        "out_channel": 3,
        "inner_channel": 64,
        "norm_groups": 32,
        "channel_multiplier": [1, 2, 4, 8, 8],
        "attn_res": [16],
        "res_blocks": 2,
        "dropout": 0.2,
        "image_size": 128,
    },
    "sr_sr3_64_512": {
        "in_channel": 6,
        "out_channel": 3,
        "inner_channel": 64,
        "norm_groups": 16,
        "channel_multiplier": [1, 2, 4, 8, 16],
        "attn_res": [],
        "res_blocks": 1,
        "dropout": 0.0,
        "image_size": 512,
    },
}
# Where each config's trained generator is published (their README, "Pretrained Model";
# the file name is the resume_state their config's comment gives, plus _gen.pth).
RELEASES = {
    "sr_sr3_16_128": {
        "task": "16x16 -> 128x128 on FFHQ-CelebaHQ",
        "scale": 8,
        "file": "I640000_E37_gen.pth",
        "google_drive": "https://drive.google.com/drive/folders/12jh0K8XoM1FqpeByXvugHHAF3oAZ8KRu?usp=sharing",
        "baidu": "https://pan.baidu.com/s/1OzsGZA2Vmq1ZL_VydTbVTQ",
    },
    "sr_sr3_64_512": {
        "task": "64x64 -> 512x512 on FFHQ-CelebaHQ",
        "scale": 8,
        "file": "I830000_E32_gen.pth",
        "google_drive": "https://drive.google.com/drive/folders/1mCiWhFqHyjt5zE4IdA41fjFwCYdqDzSF?usp=sharing",
        "baidu": "https://pan.baidu.com/s/1orzFmVDxMmlXQa2Ty9zY3g",
    },
}
DIFFUSION_PREFIX = "denoise_fn."  # their GaussianDiffusion holds the UNet as denoise_fn
SCHEDULE_BUFFERS = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)
LISTED = 40  # names listed per kind of mismatch in an error; the count says how many more


class CheckpointError(ValueError):
    """A file that is not a generator checkpoint of the expected config; the message names
    the file, the config and every tensor that does not fit."""


# ---------------------------------------------------------------- configs


def resolve_config(setting) -> tuple[str, dict]:
    """(name, full config) of ``training.<method>.config``: the name of one of their configs
    (``sr_sr3_16_128``, ``sr_sr3_64_512``) or a mapping of their ``model.unet`` keys plus
    ``image_size`` (a network of one's own in their layout; "custom")."""
    if isinstance(setting, str):
        if setting not in CONFIGS:
            raise CheckpointError(
                f"config {setting!r} is not one of their configs this project knows ({', '.join(CONFIGS)}); "
                f"give their model.unet keys and image_size instead ({', '.join(CONFIG_KEYS)})"
            )
        return setting, dict(CONFIGS[setting])
    config = {**CONFIG_DEFAULTS, **setting}
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    missing = [key for key in CONFIG_KEYS if key not in config]
    if unknown or missing:
        raise CheckpointError(
            "config: their model.unet keys and image_size are "
            + ", ".join(CONFIG_KEYS)
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    config["channel_multiplier"], config["attn_res"] = list(config["channel_multiplier"]), list(config["attn_res"])
    if config["in_channel"] != 6 or config["out_channel"] != 3:
        raise CheckpointError(
            "config: super-resolution takes in_channel 6 (the upsampled LR image and y_t) and out_channel 3 "
            f"(the noise estimate), not {config['in_channel']} and {config['out_channel']}"
        )
    bad = [c for c in group_norm_channels(config) if c % config["norm_groups"]]
    if bad:
        raise CheckpointError(
            f"config: norm_groups {config['norm_groups']} does not divide the channel counts {sorted(set(bad))}"
        )
    return "custom", config


def describe_config(name: str, config: dict) -> str:
    keys = ", ".join(f"{key} {config[key]}" for key in CONFIG_KEYS)
    return f"{name} ({keys})"


def group_norm_channels(config: dict) -> list[int]:
    """The channel count of every group norm of the network, without building it."""
    inner, counts, skips = config["inner_channel"], [], [config["inner_channel"]]
    channels = inner
    for level, multiplier in enumerate(config["channel_multiplier"]):
        for _ in range(config["res_blocks"]):
            counts += [channels, inner * multiplier]
            channels = inner * multiplier
            skips.append(channels)
        if level < len(config["channel_multiplier"]) - 1:
            skips.append(channels)
    counts += [channels] * 5  # the middle blocks' four norms and its attention's
    for multiplier in reversed(config["channel_multiplier"]):
        for _ in range(config["res_blocks"] + 1):
            counts += [channels + skips.pop(), inner * multiplier]
            channels = inner * multiplier
    return counts + [channels]


# ---------------------------------------------------------------- the network


class NoiseLevelEncoding(nn.Module):
    """Sinusoids of the noise level sqrt(gamma) as it is: sin(l w_k), cos(l w_k) with
    w_k = 10000^(-k / (dim / 2)), k = 0 .. dim / 2 - 1."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, level: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        exponents = torch.arange(half, dtype=level.dtype, device=level.device) / half
        angles = level[:, None] * torch.exp(-math.log(1e4) * exponents)[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class NormActConv(nn.Module):
    """GroupNorm, Swish, dropout (absent when 0), 3x3 conv, as one ``block`` sequence."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, dropout: float = 0.0):
        super().__init__()
        self.block = nn.Sequential(
            nn.GroupNorm(groups, in_channels),
            nn.SiLU(),
            nn.Dropout(dropout) if dropout else nn.Identity(),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class NoiseShift(nn.Module):
    """A per-channel shift computed from the noise embedding (their feature-wise affine
    conditioning without its scale term, which their UNet leaves off)."""

    def __init__(self, embedding_dim: int, channels: int):
        super().__init__()
        self.noise_func = nn.Sequential(nn.Linear(embedding_dim, channels))

    def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return h + self.noise_func(embedding).reshape(h.shape[0], -1, 1, 1)


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int, groups: int, dropout: float):
        super().__init__()
        self.noise_func = NoiseShift(embedding_dim, out_channels)
        self.block1 = NormActConv(in_channels, out_channels, groups)
        self.block2 = NormActConv(out_channels, out_channels, groups, dropout)
        self.res_conv = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.block2(self.noise_func(self.block1(x), embedding))
        return h + self.res_conv(x)


class Attention(nn.Module):
    """One-head self-attention over the pixels, scaled by 1 / sqrt(channels), residual."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1, bias=False)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        query, key, value = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=-1)
        attended = F.scaled_dot_product_attention(query, key, value)  # scale 1 / sqrt(channels): one head
        return x + self.out(attended.transpose(1, 2).reshape(batch, channels, height, width))


class Stage(nn.Module):
    """A residual block, then attention where the level asks for it."""

    def __init__(self, in_channels, out_channels, embedding_dim, groups, dropout, attention: bool):
        super().__init__()
        self.res_block = ResidualBlock(in_channels, out_channels, embedding_dim, groups, dropout)
        if attention:
            self.attn = Attention(out_channels, groups)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.res_block(x, embedding)
        return self.attn(h) if hasattr(self, "attn") else h


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class JanspiryUNet(nn.Module):
    """Their SR3 UNet: ``forward(concat(upsampled LR, y_t), sqrt(gamma))`` -> eps estimate.
    The noise level may be of shape (B,) or (B, 1), as their sampler passes it."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)  # what the model file records to rebuild it
        inner, groups, dropout = config["inner_channel"], config["norm_groups"], config["dropout"]
        multipliers, attention_at = config["channel_multiplier"], set(config["attn_res"])
        self.levels = len(multipliers)
        self.noise_level_mlp = nn.Sequential(
            NoiseLevelEncoding(inner), nn.Linear(inner, 4 * inner), nn.SiLU(), nn.Linear(4 * inner, inner)
        )
        downs = [nn.Conv2d(config["in_channel"], inner, 3, padding=1)]
        skips, channels, size = [inner], inner, config["image_size"]  # size: the nominal one attn_res names
        for level, multiplier in enumerate(multipliers):
            for _ in range(config["res_blocks"]):
                downs.append(Stage(channels, inner * multiplier, inner, groups, dropout, size in attention_at))
                channels = inner * multiplier
                skips.append(channels)
            if level < self.levels - 1:
                downs.append(Downsample(channels))
                skips.append(channels)
                size //= 2
        self.downs = nn.ModuleList(downs)
        self.mid = nn.ModuleList(
            [
                Stage(channels, channels, inner, groups, dropout, attention=True),
                Stage(channels, channels, inner, groups, dropout, attention=False),
            ]
        )
        ups = []
        for level in reversed(range(self.levels)):
            for _ in range(config["res_blocks"] + 1):
                out = inner * multipliers[level]
                ups.append(Stage(channels + skips.pop(), out, inner, groups, dropout, size in attention_at))
                channels = out
            if level > 0:
                ups.append(Upsample(channels))
                size *= 2
        self.ups = nn.ModuleList(ups)
        self.final_conv = NormActConv(channels, config["out_channel"], groups)

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor) -> torch.Tensor:
        embedding = self.noise_level_mlp(noise_level.reshape(x.shape[0]))
        h, skips = x, []
        for layer in self.downs:
            h = layer(h, embedding) if isinstance(layer, Stage) else layer(h)
            skips.append(h)
        for layer in self.mid:
            h = layer(h, embedding)
        for layer in self.ups:
            h = layer(torch.cat([h, skips.pop()], dim=1), embedding) if isinstance(layer, Stage) else layer(h)
        return self.final_conv(h)


class GammaConditioned(nn.Module):
    """This project's model interface, ``model(x, gamma)``, on their network, which is
    conditioned on sqrt(gamma): the one translation between their noise level and the
    harness's schedules and samplers. ``levels`` is what ``sr3.unet.padded_to_depth`` reads."""

    def __init__(self, network: JanspiryUNet, source: dict | None = None):
        super().__init__()
        self.network = network
        self.levels = network.levels
        self.source = source  # where the weights came from (the model file keeps it)

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor) -> torch.Tensor:
        return self.network(x, noise_level.sqrt())


def expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor of the network's state dict (built on the meta device)."""
    with torch.device("meta"):
        network = JanspiryUNet(config)
    return {name: tuple(tensor.shape) for name, tensor in network.state_dict().items()}


# ---------------------------------------------------------------- their checkpoint files


def where_to_get(name: str) -> str:
    release = RELEASES.get(name)
    if release is None:
        return f"a generator file (*_gen.pth) saved by {SOURCE} with this config"
    return (
        f"their released {release['task']} generator, {release['file']} (the *_gen.pth file, not *_opt.pth), "
        f"linked from their README's 'Pretrained Model' table ({SOURCE}): Google Drive "
        f"{release['google_drive']} or Baidu Yun {release['baidu']} (code qwer)"
    )


def _listed(names) -> str:
    """Names in the order given (the network's, the file's), the first LISTED of them."""
    names = list(names)
    more = f" ... and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return ", ".join(names[:LISTED]) + more


def layout_problems(state: dict, config: dict) -> list[str]:
    """Why ``state`` (the UNet's tensors) does not fit the network of ``config``, each kind
    of mismatch with the names (and shapes) it concerns; empty when it fits."""
    expected = expected_shapes(config)
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    shapes = [
        f"{name} {tuple(state[name].shape)} (expected {expected[name]})"
        for name in expected
        if name in state and tuple(state[name].shape) != expected[name]
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {_listed(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: {_listed(unexpected)}")
    if shapes:
        problems.append(f"{len(shapes)} of another shape: {_listed(shapes)}")
    return problems


def matching_configs(state: dict) -> list[str]:
    """Their known configs whose network the tensors of ``state`` fit exactly."""
    shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
    return [name for name, config in CONFIGS.items() if expected_shapes(config) == shapes]


def _unet_tensors(raw, path: Path, expected: str) -> tuple[dict, dict]:
    """(the UNet's tensors, the schedule buffers) of a loaded file: their GaussianDiffusion's
    state dict (UNet under denoise_fn.) or the UNet's own."""
    if not isinstance(raw, dict) or not all(isinstance(value, torch.Tensor) for value in raw.values()):
        kind = type(raw).__name__
        if isinstance(raw, dict) and {"optimizer", "iter"} <= set(raw):
            raise CheckpointError(
                f"{path} is their training state (*_opt.pth: {', '.join(map(str, raw))}), not the generator; "
                f"give the *_gen.pth file beside it (config {expected})"
            )
        keys = f" with keys {_listed(map(str, raw))}" if isinstance(raw, dict) else ""
        raise CheckpointError(
            f"{path} is not a generator checkpoint of {SOURCE} (a {kind}{keys}, where a state dict of tensors "
            f"is expected; config {expected})"
        )
    wrapped = any(name.startswith(DIFFUSION_PREFIX) for name in raw)
    buffers = {name: tensor for name, tensor in raw.items() if wrapped and name in SCHEDULE_BUFFERS}
    unet = {
        (name[len(DIFFUSION_PREFIX) :] if wrapped and name.startswith(DIFFUSION_PREFIX) else name): tensor
        for name, tensor in raw.items()
        if name not in buffers
    }
    return unet, buffers


def check_schedule(buffers: dict, training_schedule: dict, path: Path) -> None:
    """The file's ``betas`` (the schedule it was saved with) against the preset's training
    schedule, which the tune stage's reference and any fine-tuning use."""
    if "betas" not in buffers:
        return
    stored = buffers["betas"].double()
    ours = schedules.betas(training_schedule)
    if len(stored) == len(ours) and torch.allclose(stored, ours, rtol=1e-5, atol=1e-10):
        return
    linear = torch.linspace(float(stored[0]), float(stored[-1]), len(stored), dtype=torch.float64)
    suggestion = (
        f"{{steps: {len(stored)}, beta_start: {float(stored[0]):.6g}, beta_end: {float(stored[-1]):.6g}}}"
        if torch.allclose(stored, linear, rtol=1e-5, atol=1e-10)
        else "the schedule it was trained with"
    )
    raise CheckpointError(
        f"{path} was saved with a noise schedule of {len(stored)} steps, betas {float(stored[0]):.6g} to "
        f"{float(stored[-1]):.6g} (its 'betas' buffer), but diffusion.training_schedule is {training_schedule}: "
        f"set diffusion.training_schedule to {suggestion} (the tune stage's reference samples over it)"
    )


def read_checkpoint(
    path, name: str, config: dict, sha256: str | None = None, training_schedule: dict | None = None
) -> tuple[JanspiryUNet, dict]:
    """Their generator file at ``path`` in a :class:`JanspiryUNet` of ``config`` (``name``:
    the config's name, for messages), and its provenance (file, sha256, config). Raises
    FileNotFoundError (saying where to get it) or CheckpointError (naming every mismatch)."""
    path = Path(path)
    expected = describe_config(name, config)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} not found (config {name}). Download {where_to_get(name)}, "
            "and set training.<method>.checkpoint to its path"
        )
    digest = file_sha256(path)
    if sha256 and digest != sha256:
        raise CheckpointError(
            f"{path} has sha256 {digest}, not the {sha256} that training.<method>.sha256 expects: "
            "another file, or a damaged download"
        )
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling raises many types; all mean the same here
        reason = " ".join(str(error).splitlines()[:2])[:300]
        raise CheckpointError(
            f"{path} cannot be read as a torch checkpoint ({type(error).__name__}: {reason}); config {name}"
        ) from error
    state, buffers = _unet_tensors(raw, path, expected)
    problems = layout_problems(state, config)
    if problems:
        wrapped = any(key.startswith(DIFFUSION_PREFIX) for key in raw)
        names = f" (the UNet's names; the file holds them under {DIFFUSION_PREFIX!r})" if wrapped else ""
        fits = [other for other in matching_configs(state) if other != name]
        hint = f" It fits their config {' and '.join(fits)}: set training.<method>.config to it." if fits else ""
        raise CheckpointError(
            f"{path} does not fit the network of config {expected}{names}: " + "; ".join(problems) + "." + hint
        )
    if training_schedule is not None:
        check_schedule(buffers, training_schedule, path)
    network = JanspiryUNet(config)
    network.load_state_dict({key: value.float() for key, value in state.items()})
    source = {
        "repository": SOURCE,
        "file": str(path),
        "sha256": digest,
        "bytes": path.stat().st_size,
        "config": name,
        "schedule_buffers": bool(buffers),
    }
    return network, source


# ---------------------------------------------------------------- this project's model file


def save_model(path, model: GammaConditioned, training: dict | None) -> None:
    """The network's weights in their names, its config, where the weights came from (their
    file and its sha256) and how this project computed them (``training``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FILE_FORMAT,
        "state_dict": model.network.state_dict(),
        "config": model.network.config,
        "source": model.source,
        "training": training,
    }
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def load_model(path) -> GammaConditioned:
    """The wrapped network saved by :func:`save_model`, in eval mode."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} not found; run the training stage first (sr3bench train)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != FILE_FORMAT:
            raise ValueError(f"format {payload.get('format')!r}, not {FILE_FORMAT!r}")
        network = JanspiryUNet(payload["config"])
        network.load_state_dict(payload["state_dict"])
    except Exception as error:  # unpickling and state-dict mismatches raise many types
        reason = " ".join(str(error).splitlines()[:2])[:300]
        raise RuntimeError(
            f"model file {path} cannot be read as an imported SR3 checkpoint ({type(error).__name__}: {reason}); "
            "delete it and re-run the pipeline to import it again"
        ) from error
    return GammaConditioned(network, payload.get("source")).eval()
