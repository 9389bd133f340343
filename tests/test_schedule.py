import math

import pytest
import torch

from sr3 import diffusion, schedule

SCHEDULE = {"steps": 5, "beta_start": 0.1, "beta_end": 0.5}


def test_gamma_table_is_the_cumulative_product_of_alphas():
    betas = [0.1, 0.2, 0.3, 0.4, 0.5]
    expected, running = [], 1.0
    for beta in betas:
        running *= 1 - beta
        expected.append(running)
    assert torch.allclose(schedule.betas(SCHEDULE), torch.tensor(betas, dtype=torch.float64))
    assert torch.allclose(schedule.gammas(SCHEDULE), torch.tensor(expected, dtype=torch.float64))
    table = schedule.gammas_with_start(SCHEDULE)
    assert table[0] == 1.0 and torch.all(table[1:] < table[:-1])


def test_paper_training_schedule_ends_near_zero_noise_level():
    gammas = schedule.gammas({"steps": 2000, "beta_start": 1e-6, "beta_end": 0.01})
    assert gammas[0] == pytest.approx(1 - 1e-6) and gammas[-1] < 1e-4


def test_training_noise_levels_fill_the_intervals_between_table_entries():
    generator = torch.Generator().manual_seed(0)
    levels = schedule.sample_training_noise_levels(SCHEDULE, 20000, generator).double()
    table = schedule.gammas_with_start(SCHEDULE)
    assert levels.min() >= table[-1] - 1e-6 and levels.max() <= 1.0
    # Continuous: values are not confined to the table, and every interval gets about 1/T of them.
    assert len(torch.unique(levels)) > 19000
    for t in range(1, 6):
        inside = ((levels >= table[t] - 1e-6) & (levels <= table[t - 1] + 1e-6)).double().mean().item()
        assert abs(inside - 0.2) < 0.02


def test_forward_noising_has_the_stated_mean_and_variance():
    generator = torch.Generator().manual_seed(1)
    clean = torch.full((4000, 3, 4, 4), 0.6)
    gamma = torch.full((4000,), 0.36)
    noisy = diffusion.noisy_image(clean, gamma, torch.randn(clean.shape, generator=generator))
    assert abs(noisy.mean().item() - math.sqrt(0.36) * 0.6) < 0.01
    assert abs(noisy.var().item() - (1 - 0.36)) < 0.01


def test_bad_schedules_are_refused():
    import pytest

    with pytest.raises(ValueError, match="at least one step"):
        schedule.betas({"steps": 0, "beta_start": 0.1, "beta_end": 0.2})
    with pytest.raises(ValueError, match="beta_start"):
        schedule.betas({"steps": 3, "beta_start": 0.3, "beta_end": 0.2})
