"""Noise schedules as data: a schedule is ``{steps, beta_start, beta_end}`` (linear betas).

SR3 (Saharia et al. 2021, Sec. 2.4) writes the forward process with
``gamma_t = prod_{i<=t} alpha_i``, ``alpha_t = 1 - beta_t``; training uses a long schedule
(T = 2000 in the paper) and inference its own short one.
"""
from __future__ import annotations

import torch


def betas(schedule: dict) -> torch.Tensor:
    """float64 betas of a linear schedule, index 0 is step t = 1."""
    steps, start, end = schedule["steps"], schedule["beta_start"], schedule["beta_end"]
    if steps < 1:
        raise ValueError(f"a noise schedule needs at least one step, got steps={steps}")
    if not 0 < start <= end < 1:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {start} and {end}")
    return torch.linspace(start, end, steps, dtype=torch.float64)


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
