"""Installing the project claims only its own top-level import names: the shared code is one
namespace (``sr3bench``), beside the mission's packages ``pipeline``, ``sr3`` and
``baselines``; no ``core``, ``metrics`` or ``reporting`` lands in a user's site-packages."""

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

EXPECTED = {"sr3bench", "pipeline", "sr3", "baselines"}


def pip(*arguments, cwd=REPO) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "pip", *arguments], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built offline with this environment's setuptools."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md", "sr3bench", "pipeline", "sr3", "baselines"):  # setuptools builds in
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy  # <source>/build: not in the checkout
        copy(REPO / name, source / name)
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet", str(source), "--wheel-dir", str(out))
    (built,) = out.glob("sr3_bench-*.whl")
    return built


def test_a_fresh_venv_gets_only_the_projects_own_top_level_names(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    before = set(Path(purelib).iterdir())
    pip("--python", str(python), "install", "--no-deps", "--no-index", "--quiet", str(wheel))
    added = {path.name for path in set(Path(purelib).iterdir()) - before}
    packages = {name for name in added if not name.endswith((".dist-info", ".pth"))}
    assert packages == EXPECTED, f"installed top-level names: {sorted(added)}"
    imported = subprocess.run(  # the torch-free modules import from the venv alone
        [str(python), "-c", "import pipeline.stage_table, sr3bench.metrics.table as t; print(t.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0 and imported.stdout.startswith(purelib), imported.stderr
    assert sysconfig.get_paths()["purelib"] != purelib  # a venv of its own, not this environment


def test_the_wheel_carries_the_schema_and_the_report_captions(wheel):
    """The Snakefile's rules read pipeline/config.schema.yaml and pipeline/report/*.rst."""
    names = zipfile.ZipFile(wheel).namelist()
    assert "pipeline/config.schema.yaml" in names
    assert "pipeline/report/workflow.rst" in names and "pipeline/stages/sample.py" in names
    assert not [n for n in names if n.split("/")[0] in ("core", "metrics", "reporting", "tests", "benchmarks")]
