"""Building the UNet from the config, and the trained-model file (EMA weights + how to rebuild)."""

from __future__ import annotations

from pathlib import Path

import torch

from sr3.unet import UNet
from sr3bench.core.atomic import atomic_path


def build_unet(model_config: dict, image_size: int, noise_conditioned: bool, lr_channels: int = 3) -> UNet:
    """SR3's UNet (6 input channels, noise-conditioned) or the regression one (3, not);
    ``lr_channels`` 0: SR3's without the LR input, an unconditional generator (3, noise-conditioned)."""
    return UNet(
        in_channels=lr_channels + (3 if noise_conditioned else 0),
        out_channels=3,
        base_channels=model_config["base_channels"],
        channel_multipliers=tuple(model_config["channel_multipliers"]),
        res_blocks=model_config["res_blocks"],
        attention_resolutions=tuple(model_config["attention_resolutions"]),
        dropout=model_config["dropout"],
        image_size=image_size,
        noise_conditioned=noise_conditioned,
        skip_rescale=model_config.get("skip_rescale", False),  # files written before the key existed: False
    )


def save_model(
    path: Path,
    model: torch.nn.Module,
    model_config: dict,
    image_size: int,
    noise_conditioned: bool,
    training: dict | None = None,
    lr_channels: int = 3,
) -> None:
    """The EMA weights, how to rebuild the network, and ``training``: how the weights were
    computed (torch threads per step range, processes, device, CPU; the trainer's provenance)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "state_dict": model.state_dict(),
        "model_config": model_config,
        "image_size": image_size,
        "noise_conditioned": noise_conditioned,
        "training": training,
    }
    if lr_channels != 3:  # only where it differs, so that the files of SR3 and regression keep their bytes
        payload["lr_channels"] = lr_channels
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def training_record(path: Path) -> dict | None:
    """The ``training`` record of a model file (None for files written before it existed),
    read without loading the weights into memory."""
    payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return payload.get("training")


def settings_mismatch(path: Path, model_config: dict) -> str | None:
    """How the UNet of the model file ``path`` differs from ``model_config`` (a preset's
    ``model:``), in words, or None (also for a file of another format: its loader judges it)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # missing or unreadable: load_model says so, naming the file
        return None
    recorded = payload.get("model_config") if isinstance(payload, dict) else None
    if not isinstance(recorded, dict):
        return None
    differences = [
        f"{key} {recorded[key]!r} (the preset's: {model_config[key]!r})"
        for key in model_config
        if key in recorded and list(_as_list(recorded[key])) != list(_as_list(model_config[key]))
    ]
    return ", ".join(differences) or None


def _as_list(value):
    return value if isinstance(value, (list, tuple)) else [value]


def load_model(path: Path) -> UNet:
    """The UNet with the weights saved by ``save_model`` (in eval mode)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} not found; run the training stage first (sr3bench train)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model = build_unet(
            payload["model_config"],
            payload["image_size"],
            payload["noise_conditioned"],
            payload.get("lr_channels", 3),  # files written before the key existed: with the LR input
        )
        model.load_state_dict(payload["state_dict"])
    except Exception as error:  # unpickling and state-dict mismatches raise many types
        reason = " ".join(str(error).splitlines()[:2])[:300]  # state-dict errors run to pages
        raise RuntimeError(
            f"model file {path} cannot be read as an SR3 Bench model ({type(error).__name__}: {reason}); "
            "delete it and re-run the pipeline to train it again"
        ) from error
    return model.eval()
