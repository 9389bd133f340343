"""Noise schedules as data: ``{steps, shape, ...}``, where ``shape`` (absent: linear) is

* ``linear``: betas evenly spaced from ``beta_start`` to ``beta_end`` (Ho et al. 2020);
* ``cosine``: gamma_t = f(t) / f(0), f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2), s = 0.008,
  betas clipped at 0.999 (Nichol & Dhariwal 2021, Eq. 17);
* ``geometric``: the noise-to-signal ratio sigma = sqrt((1 - gamma) / gamma) spaced
  geometrically from ``sigma_max`` (step T) down to ``sigma_min`` (step 1), the spacing
  of Karras et al. 2022 with rho = infinity.

SR3 (Saharia et al. 2021, Sec. 2.4) writes the forward process with
``gamma_t = prod_{i<=t} alpha_i``, ``alpha_t = 1 - beta_t``; training uses a long schedule
(T = 2000 in the paper) and inference its own short one, which can have any shape since
the network is conditioned on gamma itself.
"""

from __future__ import annotations

import math

import torch

from sr3.schedule_spec import schedule_problem

COSINE_OFFSET = 0.008


def betas(schedule: dict) -> torch.Tensor:
    """float64 betas, index 0 is step t = 1."""
    problem = schedule_problem(schedule)
    if problem:
        raise ValueError(problem)
    steps, shape = schedule["steps"], schedule.get("shape", "linear")
    if shape == "linear":
        return torch.linspace(schedule["beta_start"], schedule["beta_end"], steps, dtype=torch.float64)
    if shape == "cosine":
        t = torch.arange(steps + 1, dtype=torch.float64) / steps
        f = torch.cos((t + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    sigma = torch.logspace(
        math.log10(schedule["sigma_min"]), math.log10(schedule["sigma_max"]), steps, dtype=torch.float64
    )
    gamma = torch.cat([torch.ones(1, dtype=torch.float64), 1 / (1 + sigma**2)])
    return 1 - gamma[1:] / gamma[:-1]


def gammas(schedule: dict) -> torch.Tensor:
    """float64 noise levels gamma_1..gamma_T (decreasing from about 1 towards 0)."""
    return torch.cumprod(1.0 - betas(schedule), dim=0)


def gammas_with_start(schedule: dict) -> torch.Tensor:
    """gamma_0 = 1 followed by gamma_1..gamma_T, so that entry t is gamma_t."""
    return torch.cat([torch.ones(1, dtype=torch.float64), gammas(schedule)])


def sample_training_noise_levels(schedule: dict, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """Continuous noise levels for a batch (SR3 Sec. 2.4): t ~ U{1..T}, gamma ~ U(gamma_t, gamma_{t-1})."""
    table = gammas_with_start(schedule)
    steps = torch.randint(1, len(table), (batch_size,), generator=generator)
    low, high = table[steps], table[steps - 1]
    fraction = torch.rand(batch_size, generator=generator, dtype=torch.float64)
    return (low + fraction * (high - low)).float()
