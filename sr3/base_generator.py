"""SR3's unconditional base generator as a method (the protocol of ``pipeline/registry.py``):
SR3's UNet without the LR input (y_t alone, 3 input channels), trained with SR3's noise
schedule, loss and EMA on the HR training images as an unconditional diffusion model (Ho
et al. 2020), and sampled with SR3's samplers.

It is the first stage of the paper's cascades (Saharia et al. 2021, Sec. 4.4: an
unconditional 64x64 face model followed by SR3 64->256 and 256->1024): its images at a
preset's HR size are what a cascade preset takes as its LR input (``dataset.lr_from``).
The LR test images it is given say only how many images to generate and of which size."""

from __future__ import annotations

import torch

from sr3 import diffusion
from sr3 import method as sr3_method
from sr3.model_file import build_unet, load_model, save_model
from sr3.model_file import settings_mismatch as model_mismatch
from sr3bench.core.images import to_uint8

__all__ = ["build_model", "training_loss", "save_model_file", "load_model", "model_mismatch", "super_resolve"]

LR_CHANNELS = 0  # the UNet sees y_t alone


def build_model(settings: dict, own: dict) -> torch.nn.Module:
    if own.get("keep") == "best_val_psnr":
        raise ValueError(
            "training.sr3_base.keep: best_val_psnr scores the validation images' PSNR, which an unconditional "
            "generator's images have none of (they are not of those images); set keep: last"
        )
    return build_unet(settings["model"], own["patch_size"], noise_conditioned=True, lr_channels=LR_CHANNELS)


def save_model_file(path, model, settings: dict, own: dict, training: dict) -> None:
    save_model(
        path,
        model,
        settings["model"],
        own["patch_size"],
        noise_conditioned=True,
        training=training,
        lr_channels=LR_CHANNELS,
    )


def training_loss(settings: dict):
    """SR3's loss (Eq. 6) on the HR patches, the upsampled LR images unused."""
    return sr3_method.training_loss(settings, conditional=False)


def super_resolve(model, lr_images, scale: int, seeds: list[int], settings: dict, progress) -> list:
    """One generated uint8 image per LR image, of its size times ``scale``; image i's
    randomness comes only from seeds[i] (as SR3's samples). The LR pixels are not read."""
    height, width = lr_images[0].shape[0] * scale, lr_images[0].shape[1] * scale
    factor = 2 ** (model.levels - 1)  # generated at the next size the UNet's depth divides, then cropped
    shape = (3, height + -height % factor, width + -width % factor)
    config = settings["diffusion"]
    schedule = config["inference_schedule"]
    steps = schedule["steps"]
    images = diffusion.sample(
        model,
        None,
        schedule,
        seeds,
        lambda: progress(1 / steps),
        config["parametrization"],
        config["sampler"],
        shape=shape,
    )
    return list(to_uint8(images[..., :height, :width]))
