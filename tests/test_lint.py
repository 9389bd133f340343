"""The code stays lint-clean and formatted: `ruff check` and `ruff format --check` on the
repository (rules and line length in pyproject.toml's [tool.ruff]) must both pass."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO


def ruff_command() -> list[str]:
    """How to run the ruff of this environment: its module, else the executable next to
    this Python (a venv's bin/ or Scripts/); skips the test where neither is installed."""
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    for name in ("ruff", "ruff.exe"):
        beside = Path(sys.executable).with_name(name)
        if beside.is_file():
            return [str(beside)]
    pytest.skip("ruff is not installed in this environment (pip install -e '.[test]' installs it)")


def run_ruff(*arguments: str) -> subprocess.CompletedProcess:
    # --no-cache: no .ruff_cache is written into the checkout by the test run
    return subprocess.run(
        [*ruff_command(), *arguments, "--no-cache", "."], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_ruff_check_finds_nothing():
    result = run_ruff("check")
    assert result.returncode == 0, f"ruff check found problems:\n{result.stdout}{result.stderr}"


def test_ruff_format_would_change_nothing():
    result = run_ruff("format", "--check")
    assert result.returncode == 0, (
        f"ruff format --check would reformat files (run `ruff format FILE`):\n{result.stdout}{result.stderr}"
    )
