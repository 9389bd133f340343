"""Every message a stage prints reaches its --log file too (issue 28): Snakemake says "check
log file(s) for error details", so a refusal before the stage runs must be there as well."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from projects import tiny_params

pytestmark = pytest.mark.fault


def test_a_refusal_to_run_another_checkouts_code_reaches_the_stage_log(tmp_path):
    other = tmp_path / "other-clone"
    shutil.copytree(REPO / "pipeline", other / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "params.yaml", other / "params.yaml")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    sr3bench = Path(sys.executable).parent / "sr3bench"  # the installed entry point, as the engines call it
    log = other / "logs" / "demo" / "prepare.log"
    result = subprocess.run(
        [str(sr3bench), "prepare", "--log", str(log)], cwd=other, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    refusal = f"this sr3bench runs the code in {REPO}, but the project here is {other}"
    assert refusal in result.stderr and refusal in log.read_text()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["train", "--preset", "demo"], "sr3bench train: error: the following arguments are required: --method"),
        (["prepare", "--preset", "nosuch"], "nosuch"),
    ],
)
def test_an_argument_or_config_error_reaches_the_stage_log(tmp_path, arguments, message):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    log = tmp_path / "logs" / "stage.log"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *arguments, "--log", str(log)],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert message in result.stderr and message in log.read_text()
