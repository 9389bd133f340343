import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SR3BENCH_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def sr_benchmarks() -> Path:
    root = SHARED_DATA / "sr-benchmarks"
    if not (root / "Set5" / "HR").is_dir():
        pytest.skip(f"real benchmark images not found at {root} (set SR3BENCH_SHARED_DATA to the shared data folder)")
    return root
