"""Stale Snakemake locks: a run killed by SIGKILL or a power cut leaves its lock files in
``.snakemake/locks`` and the next ``snakemake`` refuses to start ("Directory cannot be
locked ... --unlock"). Snakemake's lock files do not say who wrote them, so the workflow
records its own process (``onstart``) and, before the next run locks, removes the locks
only when every recorded run is certainly gone: same host, and either another boot or a
process id that no longer belongs to a Snakemake process. Anything uncertain (another
host on a shared filesystem, no record) is left to Snakemake's own message.

Snakemake offers no API to release another run's locks from inside a workflow (only the
``--unlock`` command), so this relies on where its file-based persistence keeps them
(``.snakemake/locks/``). That is checked against the installed Snakemake by
tests/test_faults.py and holds for the versions in ``TESTED_SNAKEMAKE`` (pyproject.toml
pins the same range); with any other version the locks are left alone, with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
from pathlib import Path

log = logging.getLogger(__name__)

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
TESTED_SNAKEMAKE = (9,)  # major versions whose lock layout the tests have checked


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


def _is_running_snakemake(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or b"snakemake" in cmdline.read_bytes()


def _own_record(workdir: Path) -> Path:
    return _owners_dir(workdir) / f"{socket.gethostname()}-{os.getpid()}.json"


def record_run(workdir: Path = Path(".")) -> Path:
    """Note that this process holds the workflow's locks (call from ``onstart``)."""
    record = _own_record(workdir)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "boot_id": _boot_id()}))
    return record


def forget_run(workdir: Path = Path(".")) -> None:
    """Remove this process's record (call from ``onsuccess`` and ``onerror``)."""
    _own_record(workdir).unlink(missing_ok=True)


def _is_gone(record: dict) -> bool:
    if record.get("host") != socket.gethostname():
        return False
    if record.get("boot_id") and record["boot_id"] != _boot_id():
        return True
    return not _is_running_snakemake(record["pid"])


def clear_stale_locks(workdir: Path = Path(".")) -> bool:
    """Remove Snakemake's lock files if every run that may hold them is gone."""
    locks, owners = Path(workdir) / ".snakemake" / "locks", _owners_dir(workdir)
    if not locks.is_dir() or not any(locks.iterdir()) or not owners.is_dir():
        return False
    records = []
    for path in owners.glob("*.json"):
        try:
            record = json.loads(path.read_text())
            record["pid"] = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return False  # unreadable record: leave the decision to the user
        records.append(record)
    if not records or not all(_is_gone(record) for record in records):
        return False
    if not snakemake_version_is_tested():
        log.warning(
            "stale Snakemake locks found, but this Snakemake version is not one whose lock layout is tested; "
            "run `snakemake --unlock`"
        )
        return False
    pids = ", ".join(str(record["pid"]) for record in records)
    log.warning("removing stale Snakemake locks left by killed run(s) (pid %s); unfinished jobs are re-run", pids)
    shutil.rmtree(locks)
    for path in owners.glob("*.json"):
        path.unlink()
    return True
