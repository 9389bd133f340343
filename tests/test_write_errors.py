"""Failed writes on real filesystems, not mocks (issue 28): a folder this user may not write
and a small filesystem that fills up. Each message names the file, the cause and the fix,
the previous file stays whole and no partial file is left.

Root ignores permission bits, so the writing code runs in a subprocess without the
capability (setpriv) or as the user nobody; the small filesystem is a 256 KiB tmpfs mounted
in a mount namespace of the subprocess's own (unshare), or, where that is impossible, the
file size limit (RLIMIT_FSIZE) stands in for it.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import REPO

pytestmark = pytest.mark.fault

SMALL_DISK = "256k"
NOBODY = 65534


def _probe_write(prefix: list[str], folder: Path, preexec=None) -> bool:
    """Whether a process started with ``prefix`` is refused a write into the read-only ``folder``."""
    code = f"open({str(folder / 'probe')!r}, 'w')"
    result = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, preexec_fn=preexec)
    return result.returncode != 0 and b"PermissionError" in result.stderr


@functools.lru_cache(maxsize=1)
def unprivileged() -> tuple[tuple[str, ...], bool] | None:
    """How to start a process that permission bits apply to: (command prefix, run as nobody),
    or None where this machine offers no way."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        Path(scratch).chmod(0o755)
        if os.geteuid() != 0:
            return ((), False) if _probe_write([], folder) else None
        setpriv = shutil.which("setpriv")
        prefix = (setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--")
        if setpriv and _probe_write(list(prefix), folder):
            return prefix, False
        if _probe_write([], folder, lambda: os.setuid(NOBODY)):
            return (), True
    return None


def run_unprivileged(code: str, *arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    way = unprivileged()
    if way is None:
        pytest.skip("no way to drop the permission to ignore file modes here (not root: no; setpriv, setuid failed)")
    prefix, as_nobody = way
    return subprocess.run(
        [*prefix, sys.executable, "-c", textwrap.dedent(code), *arguments],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        preexec_fn=(lambda: os.setuid(NOBODY)) if as_nobody else None,
    )


def read_only(folder: Path) -> Path:
    """``folder`` made, readable and writable by no one (run as nobody: its parents opened to it)."""
    folder.mkdir(parents=True, exist_ok=True)
    if unprivileged() and unprivileged()[1]:
        for parent in folder.parents:
            if parent in (Path("/tmp"), Path("/")):
                break
            parent.chmod(parent.stat().st_mode | 0o755)
    folder.chmod(0o555)
    return folder


@functools.lru_cache(maxsize=1)
def small_filesystem_prefix() -> tuple[str, ...] | None:
    """A command prefix mounting a 256 KiB tmpfs on its first argument, in a mount namespace
    that ends with the command (no mount is left behind), or None where none can be mounted."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    mapping = () if os.geteuid() == 0 else ("--map-root-user",)
    prefix = (unshare, "--mount", *mapping, "sh", "-c", f'mount -t tmpfs -o size={SMALL_DISK} tmpfs "$0" && exec "$@"')
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        probe = subprocess.run([*prefix, scratch, "df", "-k", scratch], capture_output=True, text=True)
    return prefix if probe.returncode == 0 and "tmpfs" in probe.stdout else None


@pytest.fixture(params=["tmpfs", "rlimit"])
def full_disk(request) -> str:
    """How the disk fills: a real small filesystem, or the file size limit standing in for it."""
    if request.param == "tmpfs" and small_filesystem_prefix() is None:
        pytest.skip("no tmpfs can be mounted here (neither as root nor in a user namespace); RLIMIT_FSIZE stands in")
    return request.param


def cause_of_a_full_disk(mode: str) -> str:
    return "disk full while writing" if mode == "tmpfs" else "file size limit reached while writing"


def run_on_a_full_disk(code: str, folder: Path, mode: str) -> dict:
    """Run ``code`` (a script whose first argument is the folder on the small filesystem and
    second the way it fills up, "tmpfs" or "rlimit") and return what it printed as JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = [*small_filesystem_prefix(), str(folder)] if mode == "tmpfs" else []
    command = [*prefix, sys.executable, "-c", textwrap.dedent(code)]
    result = subprocess.run(
        [*command, str(folder), mode],
        env=dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout.splitlines()[-1])


# Run in the subprocess: fill the small filesystem (tmpfs), or lower the file size limit
# below the next write (rlimit); SIGXFSZ ignored, as the CLI does, so the write fails with EFBIG.
FILL_UP = """
import errno, json, os, resource, signal, sys
from pathlib import Path

folder, mode = Path(sys.argv[1]), sys.argv[2]


def fill_up(limit_bytes):
    if mode == "rlimit":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))
        return
    with open(folder / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC


def outcome(error, **more):
    left = sorted(p.name for p in folder.rglob("*") if p.name != "filler")
    print(json.dumps({"type": type(error).__name__, "message": str(error), "left": left, **more}))
"""

CHECKPOINT_ON_A_FULL_DISK = (
    FILL_UP
    + """
import shutil, tempfile
from test_faults import SETTINGS, loss_that_explodes_at, trainer

work = Path(tempfile.mkdtemp())
first = trainer(work, loss_that_explodes_at(-1))
first.settings = dict(SETTINGS, steps=4)
first.run()
shutil.copy(work / "last.pt", folder / "last.pt")
before = (folder / "last.pt").read_bytes()
fill_up(limit_bytes=16384)
again = trainer(folder, loss_that_explodes_at(-1))
again.settings = dict(SETTINGS, steps=6)
try:
    again.run()
    outcome(None)
except Exception as error:
    outcome(error, intact=(folder / "last.pt").read_bytes() == before)
"""
)


def test_a_checkpoint_on_a_full_disk_names_the_file_and_keeps_the_previous_one(tmp_path, full_disk):
    """torch.save fails there with "RuntimeError: [enforce fail at inline_container.cc:672] .
    unexpected pos ...", which names neither the file nor the cause."""
    folder = tmp_path / "checkpoints"
    seen = run_on_a_full_disk(CHECKPOINT_ON_A_FULL_DISK, folder, full_disk)
    cause = cause_of_a_full_disk(full_disk)
    assert seen["type"] == "WriteError" and seen["message"].startswith(f"{cause} {folder / 'last.pt'}")
    assert "re-run" in seen["message"] and "enforce fail" not in seen["message"]
    assert seen["intact"] and seen["left"] == ["last.pt"]  # the previous checkpoint, and no partial file


SAMPLE_ON_A_FULL_DISK = (
    FILL_UP
    + """
import numpy as np
from sr3bench.core.images import write_png

image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # 12 KiB as PNG
write_png(image, folder / "done.png")
fill_up(limit_bytes=1024)
try:
    write_png(image, folder / "next.png")
    outcome(None)
except Exception as error:
    outcome(error)
"""
)


def test_a_sample_on_a_full_disk_names_the_file_and_leaves_no_png(tmp_path, full_disk):
    folder = tmp_path / "samples"
    seen = run_on_a_full_disk(SAMPLE_ON_A_FULL_DISK, folder, full_disk)
    cause = cause_of_a_full_disk(full_disk)
    assert seen["type"] == "WriteError" and seen["message"].startswith(f"{cause} {folder / 'next.png'}")
    assert seen["left"] == ["done.png"]


REPORT_ON_A_FULL_DISK = (
    FILL_UP
    + """
from sr3bench.core.atomic import atomic_folder

report = folder / "report"
with atomic_folder(report) as staging:
    (staging / "index.html").write_text("old report")
fill_up(limit_bytes=1024)
try:
    with atomic_folder(report) as staging:
        (staging / "metrics.csv").write_text("method,psnr\\n")
        (staging / "index.html").write_bytes(os.urandom(1 << 20))
    outcome(None)
except Exception as error:
    outcome(error, old=(report / "index.html").read_text())
"""
)


def test_a_report_on_a_full_disk_names_its_folder_and_keeps_the_previous_report(tmp_path, full_disk):
    folder = tmp_path / "reports"
    seen = run_on_a_full_disk(REPORT_ON_A_FULL_DISK, folder, full_disk)
    cause = cause_of_a_full_disk(full_disk)
    assert seen["type"] == "WriteError" and seen["message"].startswith(f"{cause} {folder / 'report'}")
    assert seen["old"] == "old report" and seen["left"] == ["index.html", "report"]  # no staging folder left


DOWNLOAD_ON_A_FULL_DISK = (
    FILL_UP
    + """
import tempfile
from sr3bench.core.download import fetch

source = Path(tempfile.mkdtemp()) / "archive.zip"
source.write_bytes(os.urandom(1 << 20))
fill_up(limit_bytes=65536)
try:
    fetch(source.as_uri(), folder / "archive.zip", progress=False)
    outcome(None)
except Exception as error:
    outcome(error)
"""
)


def test_a_download_on_a_full_disk_names_the_file_and_keeps_the_part_to_resume(tmp_path, full_disk):
    folder = tmp_path / "downloads"
    seen = run_on_a_full_disk(DOWNLOAD_ON_A_FULL_DISK, folder, full_disk)
    cause = cause_of_a_full_disk(full_disk)
    part = folder / "archive.zip.part"
    assert seen["type"] == "WriteError" and seen["message"].startswith(f"{cause} {part}")
    assert seen["message"].endswith(f"({part} is kept: the re-run resumes the download)")
    assert seen["left"] == ["archive.zip.part"]


WRITES_INTO_A_READ_ONLY_FOLDER = {
    "model (torch.save)": """
        import sys, torch
        from pathlib import Path
        from sr3.model_file import save_model
        from sr3.unet import UNet
        model = UNet(3, 3, 8, (1,), 1, (), 0.0, 8, noise_conditioned=False)
        architecture = {"base_channels": 8, "channel_multipliers": [1], "res_blocks": 1, "attention_resolutions": [],
                        "dropout": 0.0}
        save_model(Path(sys.argv[1]) / "model.pt", model, architecture, 8, False)
        """,
    "results (an atomic text file)": """
        import sys
        from pathlib import Path
        from sr3bench.core.atomic import atomic_path
        with atomic_path(Path(sys.argv[1]) / "sr3.json") as temporary:
            temporary.write_text("{}")
        """,
    "samples (a published folder)": """
        import sys, tempfile
        from pathlib import Path
        from sr3bench.core.atomic import publish_folder
        source = Path(tempfile.mkdtemp()) / "a.png"
        source.write_bytes(b"png")
        publish_folder({"a.png": source}, Path(sys.argv[1]) / "sr3")
        """,
}


@pytest.mark.parametrize("what", list(WRITES_INTO_A_READ_ONLY_FOLDER))
def test_a_write_into_a_read_only_folder_names_the_file_the_folder_and_the_fix(tmp_path, what):
    """torch.save said only "open file failed with strerror: Permission denied"; an atomic
    write named its temporary file (".sr3.json.partial-22788")."""
    folder = read_only(tmp_path / "results" / "demo")
    code = textwrap.dedent(WRITES_INTO_A_READ_ONLY_FOLDER[what]) + "print('written')\n"
    wrapped = f"""
        import json, textwrap
        try:
            exec(textwrap.dedent({code!r}))
        except Exception as error:
            print(json.dumps({{"type": type(error).__name__, "message": str(error)}}))
        """
    result = run_unprivileged(wrapped, str(folder))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["type"] == "WriteError"
    assert seen["message"].startswith(f"cannot write {folder}/") and "partial" not in seen["message"]
    assert f"permission denied in {folder} (read-only for this user)" in seen["message"]
    assert f"chmod u+w {folder}" in seen["message"] and "re-run" in seen["message"]
    assert list(folder.iterdir()) == []


def tiny_project(root: Path) -> Path:
    from projects import tiny_params

    root.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    return root


def sr3bench_train(project: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "train", "--preset", "demo", "--method", "sr3", *options]


def test_training_refuses_to_start_when_its_checkpoint_folder_is_read_only(tmp_path):
    """Checked before the first step: the training steps are not lost to a write at the end."""
    project = tiny_project(tmp_path / "project")
    checkpoints = read_only(project / "checkpoints")
    log = project / "logs" / "train_sr3.log"
    log.parent.mkdir()
    log.parent.chmod(0o777)
    code = "import sys; from pipeline.cli import main; sys.exit(main(sys.argv[1:]))"
    result = run_unprivileged(code, *sr3bench_train(project, "--log", str(log))[3:], cwd=project)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    message = (
        "train failed: cannot write checkpoints/demo/sr3: permission denied in checkpoints (read-only for this "
        "user): make it writable (chmod u+w checkpoints, or ask its owner) and re-run (checked before training "
        "sr3: nothing was lost)"
    )
    assert message in result.stderr and message in log.read_text()
    assert "step 1" not in log.read_text() and list(checkpoints.iterdir()) == []


def test_training_refuses_to_start_without_the_space_its_checkpoints_need(tmp_path):
    prefix = small_filesystem_prefix()
    if prefix is None:
        pytest.skip("no tmpfs can be mounted here (neither as root nor in a user namespace)")
    project = tiny_project(tmp_path / "project")
    (project / "checkpoints").mkdir()
    result = subprocess.run(
        [*prefix, str(project / "checkpoints"), *sr3bench_train(project)],
        cwd=project,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "train failed: not enough disk space for checkpoints/demo/sr3: 256.0 KiB free, about " in result.stderr
    assert "MiB needed: free space, or move the project to a larger disk, and re-run" in result.stderr


def test_an_unwritable_log_folder_is_one_message_with_the_fix(tmp_path):
    project = tiny_project(tmp_path / "project")
    logs = read_only(project / "logs" / "demo")
    code = "import sys; from pipeline.cli import main; sys.exit(main(sys.argv[1:]))"
    result = run_unprivileged(code, *sr3bench_train(project, "--log", "logs/demo/train_sr3.log")[3:], cwd=project)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "cannot write logs/demo/train_sr3.log: permission denied in logs/demo" in result.stderr
    assert "chmod u+w logs/demo" in result.stderr and "(nothing ran)" in result.stderr
    assert list(logs.iterdir()) == []


def test_a_snakemake_run_with_a_read_only_results_folder_stops_before_any_job_naming_it_and_the_fix(tmp_path):
    """Snakemake's own "Failed to create output directory" names the folder but not the fix."""
    project = tmp_path / "project"
    project.mkdir()
    results = read_only(project / "results" / "demo")
    (project / "Snakefile").write_text(
        textwrap.dedent(
            """
            from pipeline.writable_outputs import refuse_unwritable_output_folders

            onstart:
                refuse_unwritable_output_folders("demo")

            rule evaluate:
                output: "results/demo/tune/sr3.csv"
                shell: "echo > {output}"
            """
        )
    )
    (project / ".snakemake").mkdir(mode=0o777)
    project.chmod(0o777)
    code = "import sys; from snakemake.cli import main; sys.exit(main(sys.argv[1:]))"
    dry = run_unprivileged(code, "--cores", "1", "-n", cwd=project)
    assert dry.returncode == 0, dry.stderr[-3000:]  # a dry run of a read-only copy still plans
    result = run_unprivileged(code, "--cores", "1", cwd=project)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert (
        "cannot write results/demo: permission denied in results/demo (read-only for this user): make it writable "
        "(chmod u+w results/demo, or ask its owner) and re-run (no job has run)"
    ) in result.stderr
    assert list(results.iterdir()) == []


def test_a_tool_writing_into_a_read_only_folder_is_one_message_with_the_fix(tmp_path):
    project = tiny_project(tmp_path / "project")
    folder = read_only(project / "generated")
    code = "import sys; from pipeline.cli import main; sys.exit(main(sys.argv[1:]))"
    result = run_unprivileged(code, "dvc-yaml", "--out", "generated/dvc.yaml", cwd=project)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert (
        "dvc-yaml failed: cannot write generated/dvc.yaml: permission denied in generated (read-only for this user): "
        "make it writable (chmod u+w generated, or ask its owner) and re-run"
    ) in result.stderr
    assert list(folder.iterdir()) == []


SCORE_WITH_ITS_CACHE_ON_A_FULL_DISK = (
    FILL_UP
    + """
import tempfile
from test_score import WEIGHTS, synthetic
from sr3bench.metrics.score import score

folders = synthetic(Path(tempfile.mkdtemp()))
fill_up(limit_bytes=4096)
try:
    result = score(folders["sr"], folders["hr"], lpips=False, weights_dir=WEIGHTS, cache_dir=folder / "c")
    outcome(None, psnr=result.metrics["psnr"], fid=result.metrics["fid"], why=result.unavailable.get("fid", ""))
except Exception as error:
    outcome(error)
"""
)


def test_score_with_its_fid_cache_on_a_full_disk_prints_the_other_metrics_and_says_why(tmp_path, full_disk):
    """It failed with torch's "unexpected pos 64 vs 0" (or named another disk), and the
    per-image metrics it had computed were lost."""
    from test_score import WEIGHTS

    from sr3bench.metrics import weights

    if not weights.weights_status(WEIGHTS)["inception"]["present"]:
        pytest.skip(f"metric weights are not provisioned in {WEIGHTS}: `make weights` (sr3bench provision-weights)")
    seen = run_on_a_full_disk(SCORE_WITH_ITS_CACHE_ON_A_FULL_DISK, tmp_path / "small", full_disk)
    assert seen["type"] == "NoneType" and seen["psnr"] > 20 and seen["fid"] is None, seen
    assert seen["why"].startswith("not computed: ") and str(tmp_path / "small" / "c") in seen["why"], seen
    if full_disk == "tmpfs":  # under the file size limit torch's error names no cause, nor its file
        assert seen["why"].startswith(f"not computed: disk full while writing {tmp_path / 'small' / 'c'}"), seen


def test_publishing_onto_a_full_disk_names_the_folder_published_not_the_source(tmp_path, monkeypatch):
    """Samples are copied from cache/ into samples/ when the two are on different disks; a
    full samples/ was told as "disk full while writing cache/.../x.png (50 GiB free)"."""
    import errno
    import shutil

    from sr3bench.core.atomic import publish_folder
    from sr3bench.core.write_errors import WriteError

    source = tmp_path / "cache" / "x.png"
    source.parent.mkdir()
    source.write_bytes(b"png")

    def full_target(src, dst, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(src))  # as sendfile's error names it

    monkeypatch.setattr(shutil, "copy2", full_target)
    monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(OSError(errno.EXDEV, "cross-device")))
    out = tmp_path / "samples" / "sr3"
    with pytest.raises(WriteError, match=f"disk full while writing {out} "):
        publish_folder({"x.png": source}, out, link=True)
