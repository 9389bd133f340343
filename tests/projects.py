"""Throw-away copies of the project, with small presets, for tests that run the real
pipeline (its CLI, Snakemake or DVC) in a temporary folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import REPO

PROJECT_FILES = [
    "Snakefile",
    "dvc.yaml",
    "profiles",
    "envs",
    "sr3bench",
    "pipeline",
    "sr3",
    "baselines",
    "reports/paper",
]  # not the checkout's own reports
BIN = Path(sys.executable).parent


def committed_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def tiny_params() -> dict:
    """The demo preset shrunk to seconds: 32x32 images, a two-level UNet, 150 training
    steps checkpointed every 25, and a 200-step inference schedule (long enough to be
    interrupted: about 1.5 s per image on a 2-core CPU); no human study, and no FID, KID
    or IS (``protocol.set_metrics: false``: FID's matrix square root alone costs 5 s per
    method on one core; the small demo computes them)."""
    params = committed_params()
    demo = params["presets"]["demo"]
    demo.update(methods=None, tune=None, variants={})  # the top-level methods; no tune stage
    demo["protocol"]["set_metrics"] = False
    demo["study"] = None  # the study's stages run in the small demo and in tests/test_engine_rerun.py
    demo["dataset"].update(
        train_images=["astronaut", "ihc"],
        val_images=[],
        test_images=["chelsea"],
        hr_size=32,
        train_crops_per_image=8,
        test_crops_per_image=3,
    )
    demo["model"].update(base_channels=8, channel_multipliers=[1, 2])
    for method in ("sr3", "regression"):
        demo["training"][method].update(steps=150, batch_size=4, patch_size=16, checkpoint_every=25, log_every=25)
    demo["diffusion"]["inference_schedule"] = {"steps": 200, "beta_start": 1e-4, "beta_end": 0.02}
    demo["diversity"] = {"images": 1, "seeds": 2}
    demo["sampling"]["batch_size"] = 1
    return params


def small_demo_params() -> dict:
    """The demo preset at a fraction of its cost (2.4 min on the 2-core CPU): a quarter of
    the training tiles, a UNet of 16 base channels, 96x96 test regions, 350 regression steps
    at a higher learning rate (it beats bicubic by 0.3 dB) and 100 SR3 steps (too few for
    good samples: the test checks that its loss falls, not its images), a 500-step training
    schedule (its reference sampler is what the tune stage spends most on), and a tune
    stage of 2 samplers x 2 step counts on the 96x96 validation image, for one tuned variant."""
    params = committed_params()
    demo = params["presets"]["demo"]
    demo["methods"] = ["bicubic", "regression", "sr3", "sr3@tuned10"]
    demo["variants"] = {"tuned10": {"tuned": {"max_steps": 10}}}
    demo["tune"].update(
        samplers=["ancestral_posterior", "ddim"],
        steps=[5, 10],
        schedules=[{"shape": "linear", "beta_start": 1e-3, "beta_end": 0.8}],
    )
    demo["dataset"].update(train_crops_per_image=48, test_center_crop=96)
    demo["model"].update(base_channels=16)
    demo["training"]["regression"].update(steps=350, learning_rate=2e-3)
    demo["training"]["sr3"].update(steps=100)
    demo["diffusion"]["training_schedule"] = {"steps": 500, "beta_start": 1e-6, "beta_end": 0.04}
    return params


def make_project(root: Path, params: dict) -> Path:
    """A copy of the workflow and its code, with ``params`` as params.yaml."""
    root.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(source, root / name)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def environment(project: Path) -> dict:
    """The test environment's tools, running the project copy's own code (PYTHONPATH comes
    before the editable install of the checkout)."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(project))
    env.setdefault("SR3BENCH_WEIGHTS", str(REPO / "weights"))  # metric weights, as `make weights` leaves them
    return env


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=environment(cwd), capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def dvc_project(root: Path, params: dict, commit: bool = False) -> Path:
    """A project under git and DVC (``commit``: with a first commit, as ``dvc exp run`` needs)."""
    project = make_project(root, params)
    for name in (".gitignore", ".dvcignore"):  # what git and DVC leave alone in a real clone
        shutil.copy(REPO / name, project / name)
    run([sys.executable, "-m", "pipeline.cli", "dvc-yaml"], project)  # the stages of these params
    run(["git", "init", "-q"], project)
    run([sys.executable, "-m", "dvc", "init", "-q"], project)
    run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], project)
    if commit:
        run(["git", "add", "-A"], project)
        run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "project"], project)
    return project


def start(command: list[str], cwd: Path, log: Path | None = None) -> subprocess.Popen:
    """Run ``command`` in the background, in a process group of its own (an engine and its jobs)."""
    output = open(log, "w") if log else subprocess.DEVNULL
    return subprocess.Popen(
        command, cwd=cwd, env=environment(cwd), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
    )


def kill_when(process: subprocess.Popen, condition, timeout: float = 300, signal_number=signal.SIGKILL) -> None:
    """Signal the whole process group (SIGKILL: like a pre-emption) as soon as ``condition()``
    holds, and wait for it to end."""
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, "the run finished before it could be interrupted; make it longer"
        assert time.time() < deadline, "the run never reached the point of interruption"
        time.sleep(0.05)
    os.killpg(process.pid, signal_number)
    process.wait()
