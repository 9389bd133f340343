"""The stale-lock clean-up never removes the locks of a live run (issue 28): a run records
itself before Snakemake locks, and holds its record's flock until it ends."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

from pipeline import snakemake_locks

pytestmark = pytest.mark.fault

RUN_THAT_LOCKS = """
import sys, time
from pathlib import Path
from pipeline.snakemake_locks import record_run
record_run(Path(sys.argv[1]))
locks = Path(sys.argv[1]) / ".snakemake" / "locks"
locks.mkdir(parents=True, exist_ok=True)
(locks / "0.output.lock").write_text("models/demo/sr3/model.pt\\n")
print("locked", flush=True)
time.sleep(120)
"""


def dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(finished.stdout)


def stale_record(workdir, pid: int) -> None:
    """What a run that ended without its exit handler (a Snakemake-level WorkflowError, a kill) leaves."""
    runs = workdir / ".snakemake" / "sr3bench-runs"
    runs.mkdir(parents=True, exist_ok=True)
    record = {"host": socket.gethostname(), "pid": pid, "boot_id": snakemake_locks._boot_id()}
    (runs / f"{socket.gethostname()}-{pid}.json").write_text(json.dumps(record))


def start_locking_run(workdir) -> subprocess.Popen:
    """A run that has recorded itself and taken its locks; its command line does not say
    snakemake (as under Snakemake's Python API), so its process id alone cannot tell it is alive."""
    script = workdir / "run_that_locks.py"
    script.write_text(RUN_THAT_LOCKS)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.Popen([sys.executable, str(script), str(workdir)], env=env, stdout=subprocess.PIPE)
    assert run.stdout.readline() == b"locked\n"
    return run


def test_a_stale_record_does_not_let_the_clean_up_remove_a_live_runs_locks(tmp_path):
    stale_record(tmp_path, dead_pid())
    live = start_locking_run(tmp_path)
    try:
        assert snakemake_locks.clear_stale_locks(tmp_path) is False
        assert (tmp_path / ".snakemake" / "locks" / "0.output.lock").exists()
    finally:
        live.kill()
        live.wait()


def test_the_locks_of_a_killed_run_are_removed_once_its_flock_is_released(tmp_path):
    stale_record(tmp_path, dead_pid())
    killed = start_locking_run(tmp_path)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert snakemake_locks.clear_stale_locks(tmp_path) is True
    assert not (tmp_path / ".snakemake" / "locks").exists()
    assert list((tmp_path / ".snakemake" / "sr3bench-runs").glob("*.json")) == []


def test_a_run_removes_its_record_when_it_ends_and_jobs_record_nothing(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from types import SimpleNamespace
        from pipeline.snakemake_locks import start_run
        start_run(SimpleNamespace(exec_mode=SimpleNamespace(name=sys.argv[2])), Path(sys.argv[1]))
        print(sorted(p.name for p in (Path(sys.argv[1]) / ".snakemake" / "sr3bench-runs").glob("*.json")))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for mode, recorded in (("DEFAULT", 1), ("SUBPROCESS", 0)):
        result = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path), mode], env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert len(eval(result.stdout)) == recorded  # while the run lives
        assert list((tmp_path / ".snakemake" / "sr3bench-runs").glob("*.json")) == []  # after it ended


def test_a_clean_up_in_a_real_runs_window_after_locking_keeps_its_locks(tmp_path):
    """The probe of issue 28: another run's clean-up, with a stale record present, called
    after this Snakemake run has taken its locks (its onstart hook comes after them).
    Recorded at onstart, the run was not yet known there and lost its locks."""
    stale = dead_pid()
    stale_record(tmp_path / "left-behind", stale)
    left_behind = tmp_path / "left-behind" / ".snakemake" / "sr3bench-runs" / f"{socket.gethostname()}-{stale}.json"
    clean_up = "from pipeline.snakemake_locks import clear_stale_locks; print(clear_stale_locks())"
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent(
            f"""
            from pipeline.snakemake_locks import start_run

            start_run(workflow)

            onstart:
                shell("cp {left_behind} .snakemake/sr3bench-runs/")
                shell("{sys.executable} -c '{clean_up}' > onstart-clean-up.txt")

            rule seen:
                output: "seen.txt"
                shell: "ls .snakemake/locks > {{output}}"
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "onstart-clean-up.txt").read_text().strip() == "False"
    assert (tmp_path / "seen.txt").read_text().split()  # the run's locks were still there for its job
    records = [p.name for p in (tmp_path / ".snakemake" / "sr3bench-runs").glob("*.json")]
    assert records == [left_behind.name]  # the run's own record went at its end
