"""Faults during a run: non-finite loss, interrupted writes, damaged files,
stale locks of a killed Snakemake run."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import config, snakemake_locks
from sr3.data import PatchSampler
from sr3.model_file import load_model, save_model
from sr3.training import CheckpointError, NonFiniteLossError, Trainer
from sr3.unet import UNet
from sr3bench.core.atomic import atomic_path

pytestmark = pytest.mark.fault

SETTINGS = {
    "steps": 10,
    "batch_size": 2,
    "patch_size": 8,
    "learning_rate": 1e-3,
    "warmup_steps": 0,
    "ema_decay": 0.9,
    "checkpoint_every": 2,
    "log_every": 1,
    "keep": "last",
}


def trainer(tmp_path, loss_fn):
    torch.manual_seed(0)
    model = UNet(3, 3, 8, (1,), 1, (), 0.0, 8, noise_conditioned=False)
    data = torch.rand(2, 3, 8, 8) * 2 - 1
    return Trainer(
        model, loss_fn, PatchSampler(list(zip(data, data)), 8, 2, 0), SETTINGS, 0, tmp_path / "last.pt", "fault-test"
    )


def loss_that_explodes_at(step_number):
    calls = {"n": 0}

    def loss_fn(model, upsampled_lr, hr, generator, **_):
        calls["n"] += 1
        loss = (model(upsampled_lr) - hr).pow(2).mean()
        return loss * float("nan") if calls["n"] == step_number else loss

    return loss_fn


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    run = trainer(tmp_path, loss_that_explodes_at(5))
    with pytest.raises(NonFiniteLossError, match="loss became nan at step 5.*last good checkpoint"):
        run.run()
    kept = torch.load(tmp_path / "last.pt", weights_only=False)
    assert kept["step"] == 4
    assert all(torch.isfinite(v).all() for v in kept["model"].values())


def test_a_divergence_between_log_lines_is_caught_before_the_next_checkpoint(tmp_path, monkeypatch):
    """The trainer reads its losses from the device only at log lines and checkpoints (no
    wait per step): a NaN at step 3, logged every 10 steps, still names step 3, and the
    step-4 checkpoint, which would hold its weights, is not written."""
    monkeypatch.setitem(SETTINGS, "log_every", 10)
    run = trainer(tmp_path, loss_that_explodes_at(3))
    with pytest.raises(NonFiniteLossError, match="loss became nan at step 3;.*last good checkpoint"):
        run.run()
    kept = torch.load(tmp_path / "last.pt", weights_only=False)
    assert kept["step"] == 2 and run.step == 4
    assert all(torch.isfinite(v).all() for v in kept["model"].values())


def test_a_divergence_before_the_first_checkpoint_does_not_claim_one(tmp_path):
    """Issue 14: the message named a 'last good checkpoint' that did not exist."""
    run = trainer(tmp_path, loss_that_explodes_at(1))
    with pytest.raises(
        NonFiniteLossError, match=r"at step 1; no checkpoint had been written yet \(the first comes at step 2\)"
    ) as error:
        run.run()
    assert "last good checkpoint" not in str(error.value) and not (tmp_path / "last.pt").exists()


def test_an_interrupted_write_leaves_no_file_that_looks_complete(tmp_path):
    target = tmp_path / "result.csv"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_from_another_config_is_kept_aside_not_resumed(tmp_path):
    first = trainer(tmp_path, loss_that_explodes_at(-1))
    first.settings = dict(SETTINGS, steps=4)
    first.run()
    other = trainer(tmp_path, loss_that_explodes_at(-1))
    other.fingerprint = "another config"
    assert other.resume() is False and other.step == 0
    assert torch.load(tmp_path / "last.fault-test.step4.pt", weights_only=False)["step"] == 4  # kept, not overwritten


def test_a_damaged_checkpoint_is_refused_with_its_path_and_kept(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"PK\x03\x04 half of a zip archive")
    run = trainer(tmp_path, loss_that_explodes_at(-1))
    with pytest.raises(CheckpointError, match=f"checkpoint {tmp_path / 'last.pt'} cannot be read.*move it away"):
        run.run()
    assert (tmp_path / "last.pt").read_bytes().startswith(b"PK")  # left for the user to inspect


@pytest.mark.parametrize(
    "content, message", [(None, "not found; run the training stage"), (b"\x80\x04 garbage", "cannot be read")]
)
def test_a_missing_or_damaged_model_file_is_named(tmp_path, content, message):
    path = tmp_path / "model.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises((FileNotFoundError, RuntimeError), match=message) as error:
        load_model(path)
    assert str(path) in str(error.value)


def test_a_model_file_of_another_architecture_is_named(tmp_path):
    model = UNet(3, 3, 8, (1,), 1, (), 0.0, 8, noise_conditioned=False)
    path = tmp_path / "model.pt"
    save_model(
        path,
        model,
        {"base_channels": 8, "channel_multipliers": [1], "res_blocks": 1, "attention_resolutions": [], "dropout": 0.0},
        8,
        False,
    )
    payload = torch.load(path, weights_only=True)
    payload["model_config"]["base_channels"] = 16  # weights no longer fit the recorded architecture
    torch.save(payload, path)
    with pytest.raises(RuntimeError, match=f"model file {path} cannot be read.*re-run"):
        load_model(path)


@pytest.mark.parametrize(
    "text, message",
    [("preset: demo\nthreads: [1\n", "(?s)not valid YAML.*line 2"), ("- a list\n", "must hold a mapping")],
)
def test_a_params_file_that_is_not_yaml_or_not_a_mapping_names_the_file(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=message) as error:
        config.load(path)
    assert str(path) in str(error.value)


def killed_snakemake_leftovers(workdir, record: dict):
    locks = workdir / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("models/demo/sr3/model.pt\n")
    runs = workdir / ".snakemake" / "sr3bench-runs"
    runs.mkdir()
    (runs / "run.json").write_text(json.dumps(record))
    return locks


def test_locks_of_a_killed_snakemake_run_are_removed(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = {"host": socket.gethostname(), "pid": int(finished.stdout), "boot_id": snakemake_locks._boot_id()}
    locks = killed_snakemake_leftovers(tmp_path, record)
    assert snakemake_locks.clear_stale_locks(tmp_path) is True
    assert not locks.exists()


@pytest.mark.parametrize("who", ["a live snakemake", "another host", "no record"])
def test_locks_that_may_belong_to_a_live_run_are_kept(tmp_path, who):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "snakemake"])
    try:
        while Path("/proc").is_dir() and b"snakemake" not in Path(f"/proc/{live.pid}/cmdline").read_bytes():
            time.sleep(0.01)  # until the child has exec'd (before that it shows pytest's command line)
        record = {"host": socket.gethostname(), "pid": live.pid, "boot_id": snakemake_locks._boot_id()}
        if who == "another host":
            record.update(host="another-node", pid=1)
        locks = killed_snakemake_leftovers(tmp_path, record)
        if who == "no record":
            (tmp_path / ".snakemake" / "sr3bench-runs" / "run.json").unlink()
        assert snakemake_locks.clear_stale_locks(tmp_path) is False
        assert (locks / "0.output.lock").exists()
    finally:
        live.kill()
        live.wait()


@pytest.mark.parametrize(
    "method, edited",
    [("sr3", "sr3/diffusion.py"), ("regression", "baselines/regression.py"), ("sr3", "sr3/training.py")],
)
def test_code_changes_change_the_checkpoint_and_sample_cache_keys(tmp_path, method, edited):
    """The keys are hashes of the real files each stage runs: a copy of them hashes the
    same, and an edit of any one of them changes the key."""
    import shutil

    from conftest import REPO

    from pipeline.code_deps import code_fingerprint
    from pipeline.stage_table import BY_NAME

    training_code, sampling_code = BY_NAME["train"].code, BY_NAME["sample"].code
    files = sorted(set(training_code(method)) | set(sampling_code(method)))
    assert edited in files
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    keys = [training_code(method), sampling_code(method)]
    before = [code_fingerprint(k, root=tmp_path) for k in keys]
    assert before == [code_fingerprint(k) for k in keys]
    with open(tmp_path / edited, "a") as handle:
        handle.write("\n# edited\n")
    after = [code_fingerprint(k, root=tmp_path) for k in keys]
    assert [a != b for a, b in zip(after, before)] == [edited in k for k in keys]


def test_a_write_reaches_the_disk_before_it_is_renamed_into_place(tmp_path, monkeypatch):
    """Power-cut safety: fsync the data, then rename, then fsync the folder's entry."""
    from sr3bench.core import atomic

    calls = []
    real_fsync, real_replace = atomic.os.fsync, atomic.os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: calls.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: calls.append("rename") or real_replace(a, b))
    with atomic_path(tmp_path / "checkpoint.pt") as temporary:
        temporary.write_bytes(b"state")
    assert calls == ["fsync", "rename", "fsync"]
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"state"


def test_the_installed_snakemake_keeps_its_locks_where_the_clean_up_looks(tmp_path):
    """The stale-lock clean-up edits .snakemake/locks: check that the installed Snakemake
    (a version pinned in pyproject.toml) really locks there while a job runs."""
    assert snakemake_locks.snakemake_version_is_tested()
    (tmp_path / "Snakefile").write_text(
        'rule seen:\n    output: "seen.txt"\n    shell: "ls .snakemake/locks > {output}"\n'
    )
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1"], cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / "seen.txt").read_text().split()  # lock files existed during the run
    locks = tmp_path / ".snakemake" / "locks"
    assert not locks.exists() or not any(locks.iterdir())  # and are gone after it


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    """Issue 14: the CLI caught only OSError, ValueError and RuntimeError; any other error
    a damaged file causes (here a manifest.json whose test rows are numbers) printed a traceback."""
    import yaml
    from projects import committed_params

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(committed_params()))
    (tmp_path / "data" / "demo").mkdir(parents=True)
    (tmp_path / "data" / "demo" / "manifest.json").write_text('{"test": [1]}')
    command = [sys.executable, "-m", "pipeline.cli", "evaluate", "--preset", "demo", "--method", "bicubic"]
    plain = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert "evaluate failed: TypeError" in plain.stderr and "--debug shows the traceback" in plain.stderr
    debug = subprocess.run(command + ["--debug"], cwd=tmp_path, capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    logged = subprocess.run(command + ["--log", "logs/evaluate.log"], cwd=tmp_path, capture_output=True, text=True)
    log_text = (tmp_path / "logs" / "evaluate.log").read_text()
    assert (
        logged.returncode == 1
        and "Traceback" not in logged.stderr
        and "the traceback is in logs/evaluate.log" in logged.stderr
    )
    assert "Traceback (most recent call last)" in log_text and "TypeError" in log_text  # the rule's log has it
    (tmp_path / "data" / "demo" / "manifest.json").write_text("not json")  # an expected error: one line...
    expected = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert expected.returncode == 1 and "evaluate failed: " in expected.stderr and "Traceback" not in expected.stderr
    expected_debug = subprocess.run(command + ["--debug"], cwd=tmp_path, capture_output=True, text=True)
    assert expected_debug.returncode == 1 and "Traceback" in expected_debug.stderr  # ...and its traceback when asked


def test_warnings_and_progress_reach_the_log_file_as_plain_lines(tmp_path):
    """Issue 13: Python warnings went only to the terminal, and a log must not hold tqdm's
    carriage-return bar updates: progress comes as plain lines."""
    import logging
    import warnings

    from pipeline.cli import setup_logging
    from sr3bench.core.progress import progress

    log_file = tmp_path / "stage.log"
    try:
        setup_logging(str(log_file))
        warnings.warn("a library complains", UserWarning, stacklevel=2)
        for _ in progress(range(3), desc="sample sr3", log_every_s=0):
            pass
        for handler in logging.getLogger().handlers:
            handler.flush()
        text = log_file.read_text()
    finally:
        logging.captureWarnings(False)
        setup_logging(None)
    assert "UserWarning: a library complains" in text
    assert "sample sr3: 3/3 (100%)" in text and "\r" not in text


@pytest.mark.parametrize("a_terminal", [True, False])
def test_the_terminal_gets_log_lines_beside_the_bars_and_the_bars_own_lines_only_in_the_file(
    tmp_path, capfd, monkeypatch, a_terminal
):
    """On the terminal a log line was appended to a progress bar's line, and the bar's own
    log line repeated what the bar showed; where stderr is no terminal (a SLURM job's log,
    a pipe) the bars' lines are the readable ones and stay."""
    import logging

    from pipeline.cli import setup_logging
    from sr3bench.core.progress import progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: a_terminal)
    log_file = tmp_path / "stage.log"
    try:
        setup_logging(str(log_file))
        with progress(total=2, desc="train", log_every_s=0) as bar:
            bar.update(1)
            logging.getLogger("sr3.training").info("step 1 loss 0.5")
            bar.update(1)
        for handler in logging.getLogger().handlers:
            handler.flush()
    finally:
        setup_logging(None)
    terminal, text = capfd.readouterr().err, log_file.read_text()
    assert "train: 2/2 (100%)" in text and ("train: 2/2 (100%)" in terminal) is not a_terminal
    line = next(line for line in terminal.split("\n") if "step 1 loss 0.5" in line)
    assert "%|" not in line.split("step 1 loss")[0].rsplit("\r", 1)[-1]  # the bar was cleared (\r) before it
    assert "step 1 loss 0.5" in text


def test_a_resumed_loop_logs_the_rate_of_its_own_steps(caplog):
    """A training resumed at step 300 of 350 logged 346 it/s: the 300 earlier steps counted."""
    import re
    import time

    from sr3bench.core.progress import progress

    with caplog.at_level("INFO", logger="sr3bench.progress"):
        with progress(total=350, initial=300, desc="train", log_every_s=3600) as bar:
            for _ in range(5):
                time.sleep(0.04)
                bar.update(10)
    (rate,) = re.findall(r"([\d.e+]+) it/s", caplog.text)
    assert "350/350" in caplog.text and float(rate) <= 50 / 0.2  # at least 0.2 s for these 50 steps


def test_a_batch_advanced_in_fractions_ends_on_its_whole_count_without_a_tqdm_warning():
    """A sampler's steps advance the bar by fractions of a batch: five fifths of 3 summed to
    3.0000000000000004 and tqdm warned "clamping frac to range [0, 1]" in the stage log."""
    import warnings

    from sr3bench.core.progress import progress

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with progress(total=6, desc="sample", disable=False) as bar:
            for _ in range(2):
                with bar.batch(3) as advance:
                    for _ in range(5):
                        advance(1 / 5)
                assert bar.n in (3, 6)
    assert bar.n == 6


def test_lpips_is_built_and_scores_images_as_read_without_warnings(tmp_path):
    """Every evaluate log held torchvision's two deprecation warnings (lpips calls
    alexnet(pretrained=...)) and torch's warning of a read-only NumPy array."""
    import warnings

    import numpy as np
    from PIL import Image

    from sr3bench.core.images import read_image
    from sr3bench.metrics.lpips_metric import _lpips, lpips_per_image

    path = tmp_path / "image.png"
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _lpips(pnet_rand=True)
        image = read_image(path)  # read-only, as np.asarray of a PIL image is
        assert lpips_per_image([image], [image]) == [0.0]


def test_a_checkout_refuses_to_run_another_checkouts_code(tmp_path):
    """Issue 14: an environment installed (editable) from checkout A, run in checkout B,
    imported A's code while the engine tracked B's files."""
    import shutil

    from conftest import REPO

    other = tmp_path / "other-clone"
    shutil.copytree(REPO / "pipeline", other / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "params.yaml", other / "params.yaml")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    sr3bench = Path(sys.executable).parent / "sr3bench"  # the installed entry point, as the engines call it
    result = subprocess.run([str(sr3bench), "prepare"], cwd=other, env=env, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"runs the code in {REPO}" in result.stderr and f"the project here is {other}" in result.stderr
    assert "PYTHONPATH" in result.stderr and not (other / "data").exists()


@pytest.mark.parametrize("find", ["offline_inception", "offline_alexnet_trunk"])
def test_a_truncated_metric_weights_file_is_named_and_checked_against_its_sha256(tmp_path, find):
    """Issue 14: a truncated weights file gave torch's "checkpoint file is corrupted" with
    no path, and a user may then delete their real training checkpoint."""
    from sr3bench.metrics import weights

    path = tmp_path / (weights.INCEPTION_FILE if find == "offline_inception" else weights.ALEXNET_FILE)
    weights._save({"w": torch.ones(1000)}, path, {"source": "test"})
    assert getattr(weights, find)(tmp_path)[0] == path  # intact: accepted
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(
        weights.WeightsUnavailableError,
        match=f"metric weights file {path} is damaged or incomplete"
        ".*provision-weights.*training checkpoints and models are not",
    ):
        getattr(weights, find)(tmp_path)
    weights._save({"w": torch.ones(1000)}, path, {"source": "test"})
    sidecar = path.with_name(path.name + ".json")
    sidecar.write_text("{not json")  # a damaged sidecar: named (it was a JSONDecodeError naming no file)
    with pytest.raises(weights.WeightsUnavailableError, match=f"sidecar {sidecar} is damaged.*provision-weights"):
        getattr(weights, find)(tmp_path)


def test_a_truncated_fid_reference_cache_is_computed_again_not_loaded(tmp_path):
    from sr3bench.metrics.fid_kid_is import discard_damaged_cache

    name = "sr3bench-ref-0123456789abcdef-fidhelper"
    intact, truncated = (
        tmp_path / f"{name}-inception-v3-compat-stat-fid-2048.pt",
        tmp_path / f"{name}-inception-v3-compat-features-2048.pt",
    )
    torch.save({"mu": torch.zeros(4)}, intact)
    torch.save({"features": torch.zeros(64, 4)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    other = tmp_path / "sr3bench-ref-ffffffffffffffff-fidhelper-x.pt"  # another reference set's: not ours to judge
    other.write_bytes(b"not a zip")
    assert discard_damaged_cache(tmp_path, name) == [truncated]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([intact.name, other.name])


@pytest.mark.parametrize("method", ["sr3", "regression"])
def test_a_test_image_the_unet_depth_does_not_divide_is_sampled_at_its_own_size(method):
    """Issue 14: whole test images (Set14, DIV2K) of a size that 2 ** (levels - 1) does not
    divide failed only at sampling, after training. They are padded for the UNet and cropped back."""
    from projects import tiny_params

    from pipeline import config, registry

    settings = config.resolve(tiny_params())["presets"]["demo"]  # as a stage gets it: defaults filled in
    settings["model"]["channel_multipliers"] = [1, 2, 2, 2]  # depth 8
    settings["diffusion"]["inference_schedule"] = {"steps": 2, "beta_start": 1e-3, "beta_end": 0.5}
    module = registry.load(method)
    torch.manual_seed(0)
    model = module.build_model(settings, settings["training"][method]).eval()
    lr = [np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)]  # HR 20x28: 8 divides neither
    with torch.inference_mode():
        sr = module.super_resolve(model, lr, 4, [0], settings, lambda fraction: None)
    assert sr[0].shape == (20, 28, 3) and sr[0].dtype == np.uint8


def test_a_yaml_error_in_params_names_the_file_and_line_under_snakemake(tmp_path):
    """Issue 14: Snakemake said only "Config file is not valid JSON or YAML"."""
    from projects import committed_params, make_project

    project = make_project(tmp_path / "project", committed_params())
    (project / "params.yaml").write_text("preset: demo\nmethods: [bicubic\nthreads: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1"], cwd=project, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "params file params.yaml is not valid YAML" in result.stderr + result.stdout
    assert "line 3" in result.stderr + result.stdout


@pytest.mark.fault
def test_a_staged_folder_replaces_its_output_whole_or_not_at_all_and_clears_dead_runs(tmp_path):
    """prepare and prepare_classify stage in a folder of their own process (two runs at once
    no longer delete each other's staging), and a killed run's folder goes with the next run."""
    from sr3bench.core.atomic import staged_folder

    out = tmp_path / "data" / "demo"
    dead = tmp_path / "data" / ".demo.partial-999999999"  # no such process
    dead.mkdir(parents=True)
    (dead / "half.png").write_bytes(b"x")
    with staged_folder(out) as staging:
        assert staging.name == f".demo.partial-{os.getpid()}" and staging.is_dir() and not dead.exists()
        (staging / "manifest.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"] and not staging.exists()
    with pytest.raises(RuntimeError), staged_folder(out) as staging:
        (staging / "other.json").write_text("{}")
        raise RuntimeError("a failed run")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"] and not staging.exists()  # kept whole


@pytest.mark.fault
@pytest.mark.parametrize("kind", ["folder", "binary"])
def test_a_params_file_that_is_a_folder_or_binary_is_a_clear_error(tmp_path, kind):
    from pipeline import config

    path = tmp_path / "params"
    if kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(config.ConfigError, match=f"params file {path} is (a folder|not a YAML text file)"):
        config.read_params(path)


@pytest.mark.fault
def test_evaluate_refuses_images_that_are_not_test_images_and_a_test_split_changed_by_hand(tmp_path, monkeypatch):
    """FID, KID and IS read the whole folder: an image left over would count beside the test set."""
    import shutil
    import sys

    from projects import environment, make_project, run, tiny_params

    project = make_project(tmp_path / "project", tiny_params())
    run([sys.executable, "-m", "snakemake", "--cores", "2", "samples/demo/bicubic"], project)
    samples = project / "samples" / "demo" / "bicubic"
    shutil.copy(next(samples.iterdir()), samples / "left_over.png")
    command = [sys.executable, "-m", "pipeline.cli", "evaluate", "--preset", "demo", "--method", "bicubic"]
    result = subprocess.run(command, cwd=project, env=environment(project), capture_output=True, text=True)
    assert result.returncode != 0 and "holds 1 image(s) that are not test images of preset demo" in result.stderr
    assert "left_over.png" in result.stderr and "Traceback" not in result.stderr

    # the test split itself changed by hand: a manifest row deleted, then one naming no image
    (samples / "left_over.png").unlink()
    manifest_file = project / "data" / "demo" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    dropped = manifest["test"].pop()["name"]
    manifest_file.write_text(json.dumps(manifest))
    result = subprocess.run(command, cwd=project, env=environment(project), capture_output=True, text=True)
    assert result.returncode != 0 and "the test split was changed after it was prepared" in result.stderr
    assert f"but not in data/demo/manifest.json ({dropped})" in result.stderr and "Traceback" not in result.stderr
    manifest["test"].append({"name": "gone.png", "group": "x"})
    manifest_file.write_text(json.dumps(manifest))
    result = subprocess.run(command, cwd=project, env=environment(project), capture_output=True, text=True)
    assert "of data/demo/manifest.json not in data/demo/test/hr (gone.png)" in result.stderr, result.stderr

    # a sample missing, then one of another size: named, with the command that makes them again
    manifest["test"] = [row for row in manifest["test"] if row["name"] != "gone.png"] + [{"name": dropped, "group": ""}]
    manifest_file.write_text(json.dumps(manifest))
    first = sorted(samples.glob("*.png"))[0]
    image = first.read_bytes()
    first.unlink()
    result = subprocess.run(command, cwd=project, env=environment(project), capture_output=True, text=True)
    again = "re-run the sample stage (sr3bench sample --preset demo --method bicubic)"
    assert f"samples/demo/bicubic lacks 1 of the 3 test images ({first.name}): {again}" in result.stderr, result.stderr
    from PIL import Image

    first.write_bytes(image)
    with Image.open(first) as sample:
        sample.resize((sample.width // 2, sample.height // 2)).save(first)
    result = subprocess.run(command, cwd=project, env=environment(project), capture_output=True, text=True)
    sizes = f"(first {first.name}: 16x16 against 32x32, width x height)"
    assert f"are not the size of their HR test image {sizes}" in result.stderr
    first.write_bytes(image[:200])  # truncated: named, with what makes it again (it said "image file is truncated")
    result = subprocess.run(command, cwd=project, env=environment(project), capture_output=True, text=True)
    assert f"samples/demo/bicubic/{first.name} cannot be read as an image (" in result.stderr, result.stderr
    assert f"delete it, then {again}" in result.stderr and "Traceback" not in result.stderr

    # a test image edited in place (its name, size and mode kept): the numbers would change
    # while the report gave prepare's checksum of the split
    first.write_bytes(image)
    hashed = sorted(row["name"] for row in manifest["test"] if "hr_sha256" in row)
    hr = project / "data" / "demo" / "test" / "hr" / hashed[0]
    with Image.open(hr) as picture:
        edited = picture.copy()
    edited.putpixel((0, 0), tuple(255 - value for value in edited.getpixel((0, 0))))
    edited.save(hr)
    result = subprocess.run(command, cwd=project, env=environment(project), capture_output=True, text=True)
    assert result.returncode != 0 and "1 test image(s) differ from what the prepare stage wrote" in result.stderr
    assert f"(data/demo/test/hr/{hr.name}; their sha256 is in data/demo/manifest.json)" in result.stderr, result.stderr
    assert "sr3bench prepare --preset demo" in result.stderr and "Traceback" not in result.stderr
    assert not (project / "results" / "demo" / "bicubic.csv").exists()


@pytest.mark.fault
@pytest.mark.parametrize(
    "content, message",
    [
        (None, "manifest.json not found: run the prepare stage again"),
        ('{"test": [', r"manifest.json is damaged \(not valid JSON: .*\): run the prepare stage again"),
        ("{}", "manifest.json holds no train, test: run the prepare stage again"),
        ("[1, 2]", "manifest.json holds a list, not an object"),
    ],
)
def test_a_damaged_stage_file_is_named_with_the_stage_that_makes_it(tmp_path, content, message):
    from sr3bench.core.stage_files import StageFileError, read_json, read_table

    path = tmp_path / "data" / "demo" / "manifest.json"
    path.parent.mkdir(parents=True)
    if content is not None:
        path.write_text(content)
    with pytest.raises(StageFileError, match=message):
        read_json(path, "run the prepare stage again (sr3bench prepare --preset demo)", ("train", "test"))
    empty = tmp_path / "results.csv"
    empty.write_text("")
    with pytest.raises(StageFileError, match=r"results.csv is damaged .*: run evaluate"):
        read_table(empty, "run evaluate")


def damaged_json_readers(folder):
    """(reader, damaged file, the stage its message names) of the stage files read outside
    the stages that check them: the tune choices, the report's inputs, the shard index, the
    study's plan and analysis."""
    from pipeline import layout
    from pipeline.stages.sample import read_choices
    from sr3bench.core.shards import ShardReader
    from sr3bench.reporting.cascade_section import read_results as cascade_results
    from sr3bench.reporting.classification import read_results as classify_results
    from sr3bench.reporting.provenance import dataset_checksums
    from sr3bench.reporting.tuning import load_tuning
    from sr3bench.study import analysis
    from sr3bench.study.plan import read_plan

    paths = layout.PresetPaths("demo")  # relative paths: ``folder`` is the working folder
    folder = Path(".")
    tune_table = folder / "tune" / "sr3.csv"
    study = folder / "study"
    return [
        (lambda: read_choices(paths, "sr3@tuned"), paths.tune_choices("sr3"), "sr3bench tune --preset demo"),
        (lambda: load_tuning({"sr3": tune_table}), tune_table.with_suffix(".json"), "run the tune stage of sr3"),
        (lambda: classify_results({"sr3": folder / "c.json"}), folder / "c.json", "sr3bench classify --preset"),
        (lambda: cascade_results(folder / "r.csv", "sr3"), folder / "r.json", "run the evaluate stage of sr3"),
        (lambda: dataset_checksums(folder / "m.json"), folder / "m.json", "run the prepare stage again"),
        (lambda: ShardReader(folder / "shards"), folder / "shards" / "index.json", "run the prepare stage again"),
        (lambda: read_plan(folder / "plan.json"), folder / "plan.json", "sr3bench study-build"),
        (lambda: analysis.read(study), study / "summary.json", "run the study_analyse stage again"),
    ]


@pytest.mark.fault
def test_every_stage_file_read_elsewhere_names_the_file_and_its_stage_when_damaged(tmp_path, monkeypatch):
    from sr3bench.core.stage_files import StageFileError
    from sr3bench.study import analysis

    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.csv").write_text("name,psnr\na.png,30\n")
    (tmp_path / "tune").mkdir()
    (tmp_path / "tune" / "sr3.csv").write_text("steps\n10\n")
    (tmp_path / "study").mkdir()
    for name in analysis.FILES:
        (tmp_path / "study" / name).write_text("method,image,rater,tasks,status\n")
    for read, damaged, stage in damaged_json_readers(tmp_path):
        damaged.parent.mkdir(parents=True, exist_ok=True)
        damaged.write_text('{"items": [')  # cut short, as by a full disk
        with pytest.raises(StageFileError) as error:
            read()
        assert str(damaged) in str(error.value) and "is damaged" in str(error.value), error.value
        assert stage in str(error.value), (stage, str(error.value))

    from sr3bench.reporting.tuning import load_tuning

    (tmp_path / "tune" / "sr3.json").write_text('{"choices": {}}')
    (tmp_path / "tune" / "sr3.csv").write_text("")  # the table emptied
    with pytest.raises(StageFileError, match=r"tune/sr3.csv is damaged .*: run the tune stage of sr3 again"):
        load_tuning({"sr3": Path("tune") / "sr3.csv"})


@pytest.mark.fault
def test_an_input_made_by_hand_with_other_settings_is_refused(tmp_path):
    """A stage run by hand with another params file leaves no Snakemake metadata, and the
    next run took its output as current (the report then printed numbers of settings it did
    not record). Each output of a hand run now carries a stamp of its settings; a stage
    refuses an input made with others, naming it and the command that makes it again."""
    import yaml
    from projects import environment, make_project, tiny_params

    params = tiny_params()
    project = make_project(tmp_path / "project", params)
    params["presets"]["demo"]["sampling"]["batch_size"] += 1
    (project / "other.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    by_hand = {k: v for k, v in environment(project).items() if k != "DVC_STAGE"}

    def stage(*arguments):
        command = [sys.executable, "-m", "pipeline.cli", *arguments]
        return subprocess.run(command, cwd=project, env=by_hand, capture_output=True, text=True)

    assert stage("prepare", "--preset", "demo").returncode == 0
    assert stage("sample", "--preset", "demo", "--method", "bicubic", "--params", "other.yaml").returncode == 0
    refused = stage("evaluate", "--preset", "demo", "--method", "bicubic")
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "samples/demo/bicubic was made with other settings than the params file has now" in refused.stderr
    assert (
        "presets.demo.sampling" in refused.stderr and "sr3bench sample --preset demo --method bicubic" in refused.stderr
    )
    assert "--forcerun samples/demo/bicubic" in refused.stderr and "Traceback" not in refused.stderr
    assert not (project / "results" / "demo" / "bicubic.csv").exists()


def test_a_stamp_is_void_once_its_output_changes_and_dvc_jobs_are_not_checked(tmp_path, monkeypatch):
    """Made again with the current settings: accepted. Made since by another route (a DVC
    restore, a copy): the stamp no longer speaks for it. A DVC job stamps its outputs too
    (a hand run after it is checked) but checks no input: DVC tracks its own."""
    import copy
    import json

    from pipeline.settings_stamps import stale_inputs, update_stamps
    from pipeline.stage_table import BY_NAME

    _, _, params = config.load(Path(__file__).resolve().parents[1] / "params.yaml", "demo")
    other = copy.deepcopy(params)
    other["presets"]["demo"]["sampling"]["batch_size"] += 1
    monkeypatch.chdir(tmp_path)
    for variable in ("DVC_STAGE", "SR3BENCH_ENGINE"):  # by hand
        monkeypatch.delenv(variable, raising=False)
    samples = tmp_path / "samples" / "demo" / "bicubic"
    samples.mkdir(parents=True)
    sample, evaluate = BY_NAME["sample"], BY_NAME["evaluate"]
    stamp = tmp_path / "cache" / "stamps" / "samples" / "demo" / "bicubic.json"

    update_stamps(other, sample, "demo", "bicubic")
    assert stamp.is_file() and "presets.demo.sampling" in stale_inputs(params, evaluate, "demo", "bicubic")[0]
    update_stamps(params, sample, "demo", "bicubic")  # made again with the current settings
    assert stale_inputs(params, evaluate, "demo", "bicubic") == []
    update_stamps(other, sample, "demo", "bicubic")
    then = samples.stat().st_mtime_ns
    os.utime(samples, ns=(then, then + 10**9))  # the folder changed since (a DVC restore): its stamp is void
    assert stale_inputs(params, evaluate, "demo", "bicubic") == []
    with monkeypatch.context() as dvc:
        dvc.setenv("DVC_STAGE", "sample_bicubic")
        update_stamps(other, sample, "demo", "bicubic")
        assert stale_inputs(params, evaluate, "demo", "bicubic") == []
    assert "presets.demo.sampling" in stale_inputs(params, evaluate, "demo", "bicubic")[0]

    # Snakemake touches a job's outputs after it: its job's stamp speaks for the same folder
    # touched within minutes, not for one touched later, nor for another folder
    with monkeypatch.context() as snakemake:
        snakemake.setenv("SR3BENCH_ENGINE", "snakemake")
        update_stamps(other, sample, "demo", "bicubic")
    stamped = json.loads(stamp.read_text())["stamped_ns"]
    for touched, speaks in ((5, True), (14 * 60, True), (16 * 60, False)):
        os.utime(samples, ns=(stamped, stamped + touched * 10**9))
        assert bool(stale_inputs(params, evaluate, "demo", "bicubic")) is speaks, touched
    os.utime(samples, ns=(stamped, stamped + 5 * 10**9))
    samples.rename(tmp_path / "old")
    samples.mkdir()  # made since: another inode
    os.utime(samples, ns=(stamped, stamped + 5 * 10**9))
    assert stale_inputs(params, evaluate, "demo", "bicubic") == []


def test_the_stamp_check_leaves_a_job_it_cannot_plan_to_the_stages_own_message(tmp_path, monkeypatch):
    """`sr3bench sample` of an outside method says "is an outside method ... collect"; the
    stamp check computing the job's inputs first turned that into a traceback."""
    from pipeline.settings_stamps import stale_inputs
    from pipeline.stage_table import BY_NAME

    _, _, params = config.load(Path(__file__).resolve().parents[1] / "params.yaml", "demo")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_STAGE", raising=False)
    assert stale_inputs(params, BY_NAME["sample"], "demo", "no_such_method") == []
    assert stale_inputs(params, BY_NAME["evaluate"], "demo", "sr3") == []  # no stamps: nothing to say
