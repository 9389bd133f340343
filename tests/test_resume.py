"""kill -9 (or SIGTERM) in the middle of training or sampling, re-run, and get bit-for-bit
the result of an uninterrupted run."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from projects import kill_when, start, tiny_params

pytestmark = pytest.mark.fault


def sr3bench(project: Path, *arguments, background=False):
    command = [str(Path(sys.executable).parent / "sr3bench"), *arguments, "--threads", "1"]
    if background:
        return start(command, project)
    result = subprocess.run(command, cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture
def project(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    sr3bench(tmp_path, "prepare")
    return tmp_path


def model_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[dict, str]:
    """The weights and loss curve of one uninterrupted training run, shared by the tests."""
    reference = tmp_path_factory.mktemp("uninterrupted")
    (reference / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    sr3bench(reference, "prepare")
    sr3bench(reference, "train", "--method", "sr3")
    return model_state(reference / "models/demo/sr3/model.pt"), (reference / "models/demo/sr3/loss.csv").read_text()


def assert_same_training(project: Path, reference: tuple[dict, str]) -> None:
    weights, loss_csv = reference
    resumed = model_state(project / "models/demo/sr3/model.pt")
    assert all(torch.equal(resumed[k], weights[k]) for k in weights)
    assert (project / "models/demo/sr3/loss.csv").read_text() == loss_csv


def test_training_killed_mid_run_resumes_to_identical_weights(project, reference):
    checkpoint = project / "checkpoints" / "demo" / "sr3" / "last.pt"
    process = sr3bench(project, "train", "--method", "sr3", background=True)
    kill_when(
        process,
        lambda: (
            checkpoint.exists()
            and checkpoint.stat().st_size > 0
            and torch.load(checkpoint, weights_only=False)["step"] >= 75
        ),
    )
    assert not (project / "models" / "demo" / "sr3" / "model.pt").exists()
    sr3bench(project, "train", "--method", "sr3")
    assert_same_training(project, reference)


def test_sigterm_checkpoints_the_current_step_and_resumes_to_identical_weights(project, reference):
    log = project / "stopped.log"
    process = sr3bench(project, "train", "--method", "sr3", "--log", str(log), background=True)
    kill_when(process, lambda: log.exists() and "step 50 loss" in log.read_text(), signal_number=signal.SIGTERM)
    assert process.returncode == 130
    stopped = re.search(r"stopped by signal 15 at step (\d+); checkpoint saved", log.read_text())
    assert stopped, log.read_text()[-2000:]
    assert torch.load(project / "checkpoints/demo/sr3/last.pt", weights_only=False)["step"] == int(stopped[1])
    sr3bench(project, "train", "--method", "sr3")
    assert_same_training(project, reference)


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


def with_training(project: Path, **changes) -> None:
    """The project's params.yaml with the demo's SR3 training section changed."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["presets"]["demo"]["training"]["sr3"].update(changes)
    (project / "params.yaml").write_text(yaml.safe_dump(params))


def trained_twice(project: Path, first: dict, then: dict) -> str:
    """Train SR3 with the training settings ``first``, then with ``then``: the second run's log."""
    with_training(project, **first)
    sr3bench(project, "train", "--method", "sr3")
    with_training(project, **then)
    log = project / "second.log"
    sr3bench(project, "train", "--method", "sr3", "--log", str(log))
    return log.read_text()


def test_raising_steps_continues_the_finished_run_to_the_weights_of_a_longer_one(project, reference):
    """A finished 75-step run, then steps raised to the reference's 150: training goes on
    from step 75 and ends where an uninterrupted 150-step run ends. Switching to another
    config and back resumes the first config's checkpoint, set aside meanwhile."""
    folder = project / "checkpoints" / "demo" / "sr3"
    log = trained_twice(project, {"steps": 75, "checkpoint_every": 50}, {"steps": 150, "checkpoint_every": 25})
    assert re.search(r"resumed from \S+last\.pt at step 75\b", log)
    assert_same_training(project, reference)

    with_training(project, learning_rate=3e-4)
    sr3bench(project, "train", "--method", "sr3")  # another config: from scratch, the 150-step one set aside
    (aside,) = folder.glob("last.*.step150.pt")
    with_training(project, learning_rate=tiny_params()["presets"]["demo"]["training"]["sr3"]["learning_rate"])
    back = project / "back.log"
    sr3bench(project, "train", "--method", "sr3", "--log", str(back))
    assert "set aside earlier" in back.read_text() and "at step 150" in back.read_text()
    assert not aside.exists() and len(list(folder.glob("last.*.step150.pt"))) == 1  # the other config's now
    assert_same_training(project, reference)


def test_a_checkpoint_past_lowered_steps_is_set_aside_not_continued(project):
    """steps lowered below a checkpoint's step: the weights of fewer steps cannot be had
    from it, so training starts afresh and the checkpoint waits for its steps to return."""
    log = trained_twice(project, {"steps": 100}, {"steps": 50})
    assert "is at step 100, past steps 50" in log and "resumed" not in log
    assert torch.load(project / "checkpoints/demo/sr3/last.pt", weights_only=False)["step"] == 50
    assert len(list((project / "checkpoints/demo/sr3").glob("last.*.step100.pt"))) == 1


def test_a_checkpoint_continues_on_the_same_training_images_only(tmp_path):
    """The test images changed (as a cascade's upstream preset changes them): training
    finds its finished checkpoint and writes the same model at once. A training image
    changed: the checkpoint was made on other images, so training starts afresh."""
    root = tmp_path / "images"
    for folder, names in (("train", ("a.png", "b.png")), ("SetX", ("c.png",))):
        (root / folder).mkdir(parents=True)
        for seed, name in enumerate(names):
            save_noise(root / folder / name, seed + len(folder))
    params = tiny_params()
    params["presets"]["demo"]["dataset"].update(
        source="folder", root=str(root), train_folder="train", test_folders=["SetX"], train_images=[], test_images=[]
    )
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    model = project / "models/demo/sr3/model.pt"

    def retrained(log_name: str) -> tuple[bytes, str]:
        sr3bench(project, "prepare")
        sr3bench(project, "train", "--method", "sr3", "--log", str(project / log_name))
        return model.read_bytes(), (project / log_name).read_text()

    first, _ = retrained("first.log")
    save_noise(root / "SetX" / "c.png", 99)
    again, log = retrained("test-changed.log")
    assert "resumed from checkpoints/demo/sr3/last.pt at step 150" in log and again == first
    save_noise(root / "train" / "b.png", 99)
    other, log = retrained("train-changed.log")
    assert "resumed" not in log and "kept as" in log and other != first


def save_noise(path: Path, seed: int) -> None:
    from PIL import Image

    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(path)


def test_a_run_that_ended_off_the_log_grid_is_not_continued_but_trained_afresh(project, reference):
    """A run's last step logs (and validates) wherever it falls: a 70-step run logged at 70,
    which a 150-step run with log_every 25 never does. Raising steps to 150 therefore
    trains afresh, to the uninterrupted run's weights and loss log."""
    log = trained_twice(project, {"steps": 70}, {"steps": 150})
    assert "off the log_every/validate_every grid (25)" in log and "resumed" not in log
    assert_same_training(project, reference)
