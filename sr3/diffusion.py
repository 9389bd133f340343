"""SR3's diffusion around a noise-conditioned UNet (Saharia et al. 2021, Sec. 2).

Images are in [-1, 1]. The model f(concat(x, y_t), gamma) predicts the noise eps in
y_t = sqrt(gamma) y_0 + sqrt(1 - gamma) eps, where x is the bicubic-upsampled LR image.
Without x (``upsampled_lr`` None) the same loss and samplers train and sample an
unconditional model f(y_t, gamma) (Ho et al. 2020; the base of SR3's cascades, Sec. 4.4).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.nn import functional as F

from sr3 import schedule as schedules


def noisy_image(clean: torch.Tensor, noise_level: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """y_t = sqrt(gamma) y_0 + sqrt(1 - gamma) eps, with one gamma per batch element."""
    gamma = noise_level.view(-1, 1, 1, 1)
    return gamma.sqrt() * clean + (1 - gamma).sqrt() * noise


def network_input(upsampled_lr: torch.Tensor | None, noisy: torch.Tensor) -> torch.Tensor:
    """What the UNet sees: the conditioning x and y_t concatenated on channels (SR3), or
    y_t alone when there is no conditioning (an unconditional model)."""
    return noisy if upsampled_lr is None else torch.cat([upsampled_lr, noisy], dim=1)


def predict_noise(model, upsampled_lr, noisy, noise_level, parametrization: str) -> torch.Tensor:
    """The noise estimate eps_hat(x, y_t, gamma).

    ``eps``: the UNet's output itself (SR3, Eq. 6). ``v``: the UNet predicts
    v = sqrt(gamma) eps - sqrt(1 - gamma) y_0 (Salimans & Ho 2022, Sec. 4) and
    eps_hat = sqrt(gamma) v_hat + sqrt(1 - gamma) y_t; the identity path that eps needs
    at high noise is then built in, so small models trained briefly do not amplify
    their errors by sqrt((1 - gamma) / gamma) when y_0 is recovered.
    """
    output = model(network_input(upsampled_lr, noisy), noise_level)
    if parametrization == "eps":
        return output
    gamma = noise_level.view(-1, 1, 1, 1)
    return gamma.sqrt() * output + (1 - gamma).sqrt() * noisy


def training_loss(
    model,
    upsampled_lr,
    hr,
    training_schedule: dict,
    generator: torch.Generator,
    norm: str,
    parametrization: str,
    rows: slice | None = None,
    batch_size: int | None = None,
):
    """SR3 objective (Eq. 6): E || f(x, y_t, gamma) - eps ||_p with continuous gamma.

    With the ``v`` parametrisation the same norm is taken between v_hat and v, the
    target of Salimans & Ho (their loss weighting).

    ``hr`` may be the ``rows`` of a global batch of ``batch_size`` (a data-parallel rank's
    share, a micro-batch): the noise is drawn for the whole batch and these rows taken,
    so that the pieces of a batch see the noise one process would draw for all of it.
    ``upsampled_lr`` None: the loss of an unconditional model (no x)."""
    batch_size = batch_size or hr.shape[0]
    rows = rows or slice(0, batch_size)
    noise_level = schedules.sample_training_noise_levels(training_schedule, batch_size, generator)[rows].to(hr.device)
    noise = torch.randn((batch_size, *hr.shape[1:]), generator=generator)[rows].to(hr.device)
    predicted = model(network_input(upsampled_lr, noisy_image(hr, noise_level, noise)), noise_level)
    target = noise
    if parametrization == "v":
        gamma = noise_level.view(-1, 1, 1, 1)
        target = gamma.sqrt() * noise - (1 - gamma).sqrt() * hr
    return F.l1_loss(predicted, target) if norm == "l1" else F.mse_loss(predicted, target)


def per_image_noise(shape, seeds: list[int], device="cpu") -> Callable[[], torch.Tensor]:
    """A source of N(0, I) batches in which image i's noise depends only on seeds[i],
    so a sample does not depend on the batch it was drawn in. The generators live on
    ``device``, so that no noise crosses from host to device inside the sampling loop
    (a CUDA generator draws other numbers than a CPU one with the same seed)."""
    generators = [torch.Generator(device).manual_seed(int(seed)) for seed in seeds]

    def draw() -> torch.Tensor:
        return torch.stack([torch.randn(shape, generator=g, device=device) for g in generators])

    return draw


SAMPLERS = ("ancestral", "ancestral_posterior", "ddim", "dpmpp_2m")


@torch.inference_mode()
def sample(
    model,
    upsampled_lr: torch.Tensor,
    inference_schedule: dict,
    seeds: list[int],
    progress,
    parametrization: str,
    sampler: str,
    shape: tuple[int, int, int] | None = None,
) -> torch.Tensor:
    """SR images from y_T ~ N(0, I), one network evaluation per step of the inference schedule.
    Without conditioning (``upsampled_lr`` None) an unconditional model's images of
    ``shape`` (channels, height, width), one per seed, on the model's device.

    Every sampler predicts y_0 from the noise estimate and clips it to [-1, 1]; the last
    step returns that estimate's mean without noise.

    * ``ancestral``: SR3's Algorithm 2: the mean of q(y_{t-1} | y_t, y_0) (Ho et al. 2020,
      Eq. 7; equal to SR3's Eq. 8 before clipping) plus noise of variance beta_t.
    * ``ancestral_posterior``: the same mean with the posterior's own variance
      beta_t (1 - gamma_{t-1}) / (1 - gamma_t) (Ho et al. 2020, Sec. 3.2, the smaller choice).
    * ``ddim``: deterministic DDIM (Song et al. 2021, Eq. 12 with eta = 0) on the noise
      levels: y_{t-1} = sqrt(gamma_{t-1}) y0_hat + sqrt(1 - gamma_{t-1}) eps_hat, with eps_hat
      recomputed from the clipped y0_hat.
    * ``dpmpp_2m``: DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), second-order multistep
      in the log signal-to-noise ratio lambda = log(sqrt(gamma) / sqrt(1 - gamma)), on the
      clipped y0_hat; first order at its first step.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; one of {', '.join(SAMPLERS)}")
    if upsampled_lr is None and shape is None:
        raise ValueError("sampling without conditioning needs the images' shape (channels, height, width)")
    device = next(model.parameters()).device if upsampled_lr is None else upsampled_lr.device
    betas = schedules.betas(inference_schedule)
    gamma = schedules.gammas_with_start(inference_schedule)
    draw_noise = per_image_noise(upsampled_lr.shape[1:] if upsampled_lr is not None else shape, seeds, device)
    y = draw_noise()
    previous_clean, previous_h = None, None
    for t in range(len(betas), 0, -1):
        gamma_t, gamma_prev, beta_t = gamma[t], gamma[t - 1], betas[t - 1]
        level = torch.full((y.shape[0],), float(gamma_t), device=device)
        eps = predict_noise(model, upsampled_lr, y, level, parametrization)
        predicted_clean = ((y - (1 - gamma_t).sqrt() * eps) / gamma_t.sqrt()).clamp(-1, 1)
        if t == 1:
            y = (
                _posterior_mean(predicted_clean, y, gamma_t, gamma_prev, beta_t)
                if sampler.startswith("ancestral")
                else predicted_clean
            )
        elif sampler == "ddim":
            eps = (y - gamma_t.sqrt() * predicted_clean) / (1 - gamma_t).sqrt()
            y = float(gamma_prev.sqrt()) * predicted_clean + float((1 - gamma_prev).sqrt()) * eps
        elif sampler == "dpmpp_2m":
            h = float(_log_snr(gamma_prev) - _log_snr(gamma_t))
            data = predicted_clean
            if previous_clean is not None:
                ratio = previous_h / h
                data = (1 + 1 / (2 * ratio)) * predicted_clean - (1 / (2 * ratio)) * previous_clean
            y = float(((1 - gamma_prev) / (1 - gamma_t)).sqrt()) * y - float(gamma_prev.sqrt() * math.expm1(-h)) * data
            previous_clean, previous_h = predicted_clean, h
        else:
            mean = _posterior_mean(predicted_clean, y, gamma_t, gamma_prev, beta_t)
            noise = draw_noise()
            variance = beta_t if sampler == "ancestral" else beta_t * (1 - gamma_prev) / (1 - gamma_t)
            y = mean + float(variance.sqrt()) * noise
        if progress is not None:
            progress()
    return y


def _posterior_mean(predicted_clean, y, gamma_t, gamma_prev, beta_t) -> torch.Tensor:
    clean_coefficient = gamma_prev.sqrt() * beta_t / (1 - gamma_t)
    noisy_coefficient = (1 - beta_t).sqrt() * (1 - gamma_prev) / (1 - gamma_t)
    return float(clean_coefficient) * predicted_clean + float(noisy_coefficient) * y


def _log_snr(gamma: torch.Tensor) -> torch.Tensor:
    return 0.5 * (gamma.log() - (1 - gamma).log())
