"""Write, fsync, rename: an interrupted write (a kill, a full disk, a power cut) never
leaves a file that looks complete."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from sr3bench.core.write_errors import explain, reporting_writes


def _flush_to_disk(path: Path) -> None:
    """fsync a file or folder, so that after a power cut the renamed file is either the
    complete new one or the old one, never empty (rename alone orders nothing on disk)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success. A failed
    write (torch.save's too) is a WriteError naming ``path``, its cause and what to do."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        yield temporary
        _flush_to_disk(temporary)
        os.replace(temporary, path)
        _flush_to_disk(path.parent)
    except BaseException as error:
        explained = explain(error, path, temporary) if isinstance(error, Exception) else None  # before the unlink
        temporary.unlink(missing_ok=True)
        if explained is not None:
            raise explained from error
        raise


@contextlib.contextmanager
def atomic_folder(path: Path):
    """Yield an empty staging folder beside ``path``; on success move each file written
    there onto ``path/<name>`` (each replaced atomically, after all of them were written
    in full). On failure ``path`` keeps its previous files and the staging folder goes."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with reporting_writes(path, staging):
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            yield staging
            path.mkdir(parents=True, exist_ok=True)
            for written in sorted(staging.iterdir()):
                _flush_to_disk(written)
                os.replace(written, path / written.name)
            _flush_to_disk(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(out: Path):
    """Yield an empty staging folder of this process beside ``out``, which replaces ``out``
    whole when the block ends without error (the old folder is moved aside first and
    removed after); on error it goes and ``out`` stays as it was, a failed write told as a
    WriteError naming ``out``. Two runs of one job at once stage apart (the last to finish
    wins, complete), and what a killed run left beside ``out`` goes with the next run."""
    out = Path(out)
    prefixes = (f".{out.name}.partial-", f".{out.name}.previous-")
    for stale in [path for prefix in prefixes for path in out.parent.glob(f"{prefix}*")]:
        pid = stale.name.rsplit("-", 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    staging, previous = (out.with_name(f"{prefix}{os.getpid()}") for prefix in prefixes)
    try:
        with reporting_writes(out, staging):
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            yield staging
            if out.exists():
                os.replace(out, previous)
            os.replace(staging, out)
            shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def publish_folder(files: dict[str, Path], out: Path, link: bool = False) -> None:
    """The folder ``out`` holding exactly ``{name: source}``: copied (or hard-linked, where
    the filesystem allows) into a staging folder that replaces ``out`` when complete."""
    with staged_folder(out) as staging:
        for name, source in files.items():
            if link:
                try:
                    os.link(source, staging / name)
                    continue
                except OSError:  # across filesystems: copy instead
                    pass
            try:
                shutil.copy2(source, staging / name)
            except OSError as error:  # a full target names the source (sendfile's error): name the copy
                if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
                    error.filename = str(staging / name)
                raise
