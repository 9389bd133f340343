"""Stale Snakemake locks: a run killed by SIGKILL or a power cut leaves its lock files in
``.snakemake/locks`` and the next ``snakemake`` refuses to start ("Directory cannot be
locked ... --unlock"). Snakemake's lock files do not say who wrote them, so each run
records itself (``.snakemake/sr3bench-runs/<host>-<pid>.json``) and the next run removes
the locks only when every recorded run is provably gone. Anything uncertain (another host
on a shared filesystem, a lock file with no record) is left to Snakemake's own message.

A record cannot be missing while its run holds locks: the Snakefile calls ``start_run``
while Snakemake reads it, before Snakemake takes its locks, and the record stays until the
process ends (an exit handler removes it, after Snakemake has released its locks). The run
holds an OS lock (flock) on its record all that time, which the kernel releases when the
process dies, however it dies: a record whose flock can be taken, whose process id is no
longer a Snakemake process (or from another boot), is provably dead. Checking the records
and removing the locks happen under one more flock, as does writing a record, so a run
that starts meanwhile is either seen alive or takes its locks after the removal.

Snakemake offers no API to release another run's locks from inside a workflow (only the
``--unlock`` command), so this relies on where its file-based persistence keeps them
(``.snakemake/locks/``). That is checked against the installed Snakemake by
tests/test_faults.py and holds for the versions in ``TESTED_SNAKEMAKE`` (pyproject.toml
pins the same range); with any other version the locks are left alone, with a warning.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
from pathlib import Path

log = logging.getLogger(__name__)

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
TESTED_SNAKEMAKE = (9,)  # major versions whose lock layout the tests have checked
_held_records: dict[Path, int] = {}  # this process's records -> the open descriptor holding their flock


def snakemake_version_is_tested() -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return int(version("snakemake").split(".")[0]) in TESTED_SNAKEMAKE
    except (PackageNotFoundError, ValueError):
        return False


def _boot_id() -> str | None:
    return BOOT_ID.read_text().strip() if BOOT_ID.exists() else None


def _owners_dir(workdir: Path) -> Path:
    return Path(workdir) / ".snakemake" / "sr3bench-runs"


def _locks_dir(workdir: Path) -> Path:
    return Path(workdir) / ".snakemake" / "locks"


def _is_running_snakemake(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or b"snakemake" in cmdline.read_bytes()


@contextlib.contextmanager
def _guard(workdir: Path):
    """One process at a time judges the records and removes locks, or writes a record."""
    owners = _owners_dir(workdir)
    owners.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(owners / ".guard", os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the flock


def _flock_is_free(path: Path) -> bool:
    """Whether no process holds the flock of ``path`` (a record's run holds it while it lives)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # another user's record this user may not open: not provably free
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)


def _is_gone(record: dict, path: Path) -> bool:
    """Provably dead: this host, and another boot, or the record's flock free and its process
    id no longer a Snakemake process (records of older versions hold no flock)."""
    if record.get("host") != socket.gethostname():
        return False
    if record.get("boot_id") and record["boot_id"] != _boot_id():
        return True
    return _flock_is_free(path) and not _is_running_snakemake(record["pid"])


def start_run(workflow, workdir: Path = Path(".")) -> None:
    """Call from the Snakefile, which Snakemake reads before it locks: remove a killed run's
    locks, then record this run. The jobs Snakemake spawns read the Snakefile too, but take
    no locks (their exec mode is not the default one): they do neither."""
    if getattr(getattr(workflow, "exec_mode", None), "name", "DEFAULT") != "DEFAULT":
        return
    try:
        clear_stale_locks(workdir)
        record_run(workdir)
    except OSError as error:  # a folder this user may not write: Snakemake's own locking says more
        log.warning(
            "could not record this run in %s (%s); stale locks are left to --unlock", _owners_dir(workdir), error
        )


def record_run(workdir: Path = Path(".")) -> Path:
    """Record this process as a run that may hold the workflow's locks, holding the record's
    flock until the process ends; the record is removed at exit. Once per process."""
    record = (_owners_dir(workdir) / f"{socket.gethostname()}-{os.getpid()}.json").absolute()
    if record in _held_records:
        return record
    with _guard(workdir):
        descriptor = os.open(record, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.write(
            descriptor, json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "boot_id": _boot_id()}).encode()
        )
        os.fsync(descriptor)
    _held_records[record] = descriptor
    atexit.register(_remove_record, record)
    return record


def _remove_record(record: Path) -> None:
    record.unlink(missing_ok=True)
    os.close(_held_records.pop(record))


def _read_records(owners: Path) -> list[tuple[dict, Path]] | None:
    """Every record with its file; None when one cannot be read (the user decides then)."""
    records = []
    for path in owners.glob("*.json"):
        try:
            record = json.loads(path.read_text())
            record["pid"] = int(record["pid"])
        except FileNotFoundError:
            continue  # its run ended meanwhile
        except (OSError, ValueError, KeyError, TypeError):
            return None
        records.append((record, path))
    return records


def clear_stale_locks(workdir: Path = Path(".")) -> bool:
    """Remove Snakemake's lock files if every run that may hold them is provably gone."""
    locks, owners = _locks_dir(workdir), _owners_dir(workdir)
    if not owners.is_dir():
        return False
    with _guard(workdir):
        records = _read_records(owners)
        if records is None:
            return False
        gone = [(record, path) for record, path in records if _is_gone(record, path)]
        if not locks.is_dir() or not any(locks.iterdir()):
            for _, path in gone:  # no locks they could have left: only their records
                path.unlink(missing_ok=True)
            return False
        if not records or len(gone) < len(records):
            return False
        if not snakemake_version_is_tested():
            log.warning(
                "stale Snakemake locks found, but this Snakemake version is not one whose lock layout is tested; "
                "run `snakemake --unlock`"
            )
            return False
        pids = ", ".join(str(record["pid"]) for record, _ in gone)
        log.warning("removing stale Snakemake locks left by killed run(s) (pid %s); unfinished jobs are re-run", pids)
        shutil.rmtree(locks)
        for _, path in gone:
            path.unlink(missing_ok=True)
        return True
