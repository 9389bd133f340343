"""kill -9 in the middle of training or sampling, re-run, and get bit-for-bit the result of
an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO


def tiny_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    demo = params["presets"]["demo"]
    demo["dataset"].update(train_images=["astronaut", "ihc"], test_images=["chelsea"], hr_size=32, train_crops_per_image=8, test_crops_per_image=3)
    demo["model"].update(base_channels=8, channel_multipliers=[1, 2])
    for method in ("sr3", "regression"):
        demo["training"][method].update(steps=300, batch_size=4, patch_size=16, checkpoint_every=25, log_every=25)
    demo["diffusion"]["inference_schedule"] = {"steps": 400, "beta_start": 1e-4, "beta_end": 0.02}
    demo["sampling"]["batch_size"] = 1
    return params


def sr3bench(project: Path, *arguments, background=False):
    command = [str(Path(sys.executable).parent / "sr3bench"), *arguments, "--threads", "1"]
    if background:
        return subprocess.Popen(command, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = subprocess.run(command, cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture
def project(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    sr3bench(tmp_path, "prepare")
    return tmp_path


def kill_when(process, condition, timeout=120):
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, "the run finished before it could be interrupted; make it longer"
        assert time.time() < deadline, "the run never reached the point of interruption"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def model_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_training_killed_mid_run_resumes_to_identical_weights(project, tmp_path_factory):
    reference = tmp_path_factory.mktemp("uninterrupted")
    (reference / "params.yaml").write_text((project / "params.yaml").read_text())
    os.symlink(project / "data", reference / "data")
    sr3bench(reference, "train", "--method", "sr3")

    checkpoint = project / "checkpoints" / "demo" / "sr3" / "last.pt"
    process = sr3bench(project, "train", "--method", "sr3", background=True)
    kill_when(process, lambda: checkpoint.exists() and checkpoint.stat().st_size > 0 and torch.load(checkpoint, weights_only=False)["step"] >= 100)
    assert not (project / "models" / "demo" / "sr3" / "model.pt").exists()
    sr3bench(project, "train", "--method", "sr3")

    resumed, uninterrupted = model_state(project / "models/demo/sr3/model.pt"), model_state(reference / "models/demo/sr3/model.pt")
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)
    assert (project / "models/demo/sr3/loss.csv").read_text() == (reference / "models/demo/sr3/loss.csv").read_text()


def test_sampling_killed_mid_run_samples_only_the_missing_images(project, tmp_path_factory):
    sr3bench(project, "train", "--method", "sr3")
    cache = project / "cache" / "demo" / "samples" / "sr3"
    process = sr3bench(project, "sample", "--method", "sr3", background=True)
    kill_when(process, lambda: len(list(cache.glob("*/*.png"))) >= 1)
    finished = {p.name: p.read_bytes() for p in cache.glob("*/*.png")}
    log = project / "resumed.log"
    sr3bench(project, "sample", "--method", "sr3", "--log", str(log))
    assert f"sr3: 3 test images, {3 - len(finished)} to sample" in log.read_text()
    resumed = {p.name: p.read_bytes() for p in (project / "samples/demo/sr3").iterdir()}
    assert all(resumed[name] == data for name, data in finished.items())  # kept, not redone
    assert not cache.exists(), "the work folder is removed once its samples are published"

    reference = tmp_path_factory.mktemp("uninterrupted")
    for name in ("params.yaml", "data", "models"):
        os.symlink(project / name, reference / name)
    sr3bench(reference, "sample", "--method", "sr3")
    fresh = {p.name: p.read_bytes() for p in (reference / "samples/demo/sr3").iterdir()}
    assert len(fresh) == 3 and resumed == fresh
