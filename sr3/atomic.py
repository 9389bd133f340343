"""Write-then-rename, so an interrupted write never leaves a file that looks complete."""
from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"disk full while writing {path}; free space and re-run (nothing was lost)") from error
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
