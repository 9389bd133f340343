"""Write, fsync, rename: an interrupted write (a kill, a full disk, a power cut) never
leaves a file that looks complete."""
from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path


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
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        yield temporary
        _flush_to_disk(temporary)
        os.replace(temporary, path)
        _flush_to_disk(path.parent)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"disk full while writing {path}; free space and re-run (nothing was lost)") from error
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
