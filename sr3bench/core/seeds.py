"""Seeds derived from several integers, so that each image's randomness is its own."""

from __future__ import annotations

import numpy as np


def numpy_seed(*parts: int) -> int:
    """A 63-bit seed derived from several integers (preset seed, image index, ...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)
