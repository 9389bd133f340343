"""Failed writes in words a user can act on: the file, the cause (permission denied, a
read-only filesystem, a full disk or quota, the file size limit) and what to do.

torch.save reports these as RuntimeErrors of its zip writer that name no file ("open file
failed with strerror: Permission denied"; on a full disk "unexpected pos 576 vs 534");
they are read here too, the full disk from the free space the failed write left.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import resource
from pathlib import Path

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
WRITE_ERRNOS = (*DISK_FULL, *NOT_WRITABLE, errno.EFBIG)
NEARLY_FULL_BYTES = 1 << 20  # a write that failed with less free than this ran out of space
INTACT = " (any previous version of it is intact)"

_TORCH_OPEN = re.compile(r"open file failed.*?(?:errno (?P<number>\d+)|strerror: (?P<text>[^\n]+))")
_TORCH_WRITE = re.compile(r"unexpected pos|file write failed|PytorchStreamWriter failed")
_ERRNO_OF_TEXT = {os.strerror(number): number for number in (*WRITE_ERRNOS, errno.ENOENT, errno.EISDIR)}


class WriteError(OSError):
    """A write that failed; its message names the file, the cause and what to do."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def readable_size(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def free_bytes(folder: Path) -> int:
    """Bytes this user may still write on the filesystem of ``folder`` (or of its nearest existing parent)."""
    stats = os.statvfs(existing_folder(folder))
    return stats.f_bavail * stats.f_frsize


def existing_folder(path: Path) -> Path:
    """``path`` if it is a folder, else its nearest existing parent folder."""
    path = Path(path)
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path


def file_size_limit() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def cause(error: BaseException, written: Path | None = None) -> int | None:
    """The errno of ``error`` when it is a failed write, else None. ``written``: the file
    being written, for torch's errors, which name no cause when the disk fills."""
    if isinstance(error, OSError):
        return error.errno if error.errno in WRITE_ERRNOS else None
    if not isinstance(error, RuntimeError):
        return None
    message = str(error)
    opened = _TORCH_OPEN.search(message)
    if opened:
        if opened["number"]:
            return int(opened["number"])
        return _ERRNO_OF_TEXT.get(opened["text"].strip(), errno.EIO)
    if not _TORCH_WRITE.search(message):
        return None
    limit = file_size_limit()
    if written is not None and limit is not None and written.is_file() and written.stat().st_size >= limit:
        return errno.EFBIG
    if written is not None and free_bytes(written if written.is_dir() else written.parent) < NEARLY_FULL_BYTES:
        return errno.ENOSPC
    return errno.EIO


def describe(number: int, path: Path | None, blocked: Path, note: str = INTACT) -> str:
    """The message for a write of ``path`` (None: a file the error did not name) that failed
    with errno ``number`` in the folder ``blocked``."""
    path = path if path is not None else "a file (the error names none)"
    if number == errno.ENOSPC:
        return (
            f"disk full while writing {path} ({readable_size(free_bytes(blocked))} free on its filesystem): "
            f"free space, or move the project to a larger disk, and re-run{note}"
        )
    if number == errno.EDQUOT:
        return f"disk quota exceeded while writing {path}: free space within your quota (quota -s) and re-run{note}"
    if number == errno.EFBIG:
        limit = file_size_limit()
        allowed = readable_size(limit) if limit is not None else "a limit"
        return (
            f"file size limit reached while writing {path} (ulimit -f allows {allowed}): "
            f"raise it (ulimit -f unlimited) and re-run{note}"
        )
    if number == errno.EROFS:
        return (
            f"cannot write {path}: {blocked} is on a read-only filesystem: remount it read-write, "
            f"or run the project from a writable disk, and re-run{note}"
        )
    if number in (errno.EACCES, errno.EPERM):
        return (
            f"cannot write {path}: permission denied in {blocked} (read-only for this user): make it writable "
            f"(chmod u+w {blocked}, or ask its owner) and re-run{note}"
        )
    return f"the write of {path} failed ({os.strerror(number)}): check the disk (free space, dmesg) and re-run{note}"


def _is_part_of(name: str | os.PathLike | None, path: Path, written: Path | None) -> bool:
    """Whether an error's file is the written one, inside it (a staging folder) or a folder above ``path``."""
    if name is None:
        return True
    failed = Path(name).absolute()
    targets = [path.absolute()] + ([written.absolute()] if written is not None else [])
    return any(failed == t or failed.is_relative_to(t) or t.is_relative_to(failed) for t in targets)


def explain(error: BaseException, path: Path, written: Path | None = None, note: str = INTACT) -> WriteError | None:
    """A WriteError for ``error`` when it is the failed write of ``path`` (through the temporary
    file or folder ``written``); None when it is another error, or another file's."""
    filename = getattr(error, "filename", None)
    if not _is_part_of(filename, Path(path), written):
        return None
    number = cause(error, written)
    if number is None:
        return None
    blocked = existing_folder(Path(filename).parent if filename is not None else (written or Path(path)).parent)
    if not Path(path).is_absolute() and blocked.is_relative_to(Path.cwd()):  # named as the path is
        blocked = blocked.relative_to(Path.cwd())
    return WriteError(number, describe(number, Path(path), blocked, note), str(path))


def explain_unattributed(error: BaseException) -> WriteError | None:
    """For an error caught far from its write (the CLI): a WriteError naming the file the
    error names, when it is a failed write; None otherwise. Permission denied on a file that
    exists may have been a read: its message says so."""
    if isinstance(error, WriteError):
        return error
    filename = getattr(error, "filename", None)
    number = cause(error)
    if number is None:
        return None
    if filename is None:
        return WriteError(number, describe(number, None, Path.cwd()))
    if number in (errno.EACCES, errno.EPERM) and Path(filename).exists():
        return WriteError(
            number,
            f"permission denied on {filename} (this user may not read or write it): fix its permissions "
            f"(chmod u+rw {filename}, or ask its owner) and re-run",
            filename,
        )
    return explain(error, Path(filename))


@contextlib.contextmanager
def reporting_writes(path: Path, written: Path | None = None, note: str = INTACT):
    """Failed writes in the body become WriteErrors naming ``path``; other errors pass unchanged."""
    try:
        yield
    except Exception as error:  # a WriteError of a file inside ``written`` is told as one of ``path``
        explained = explain(error, path, written, note)
        if explained is None:
            raise
        raise explained from error


def check_writable(needs: dict[Path, int], before: str) -> None:
    """Refuse, before a long computation, when a folder cannot be written or its filesystem
    lacks the bytes ``needs`` says the folders will take (summed per filesystem)."""
    note = f" (checked before {before}: nothing was lost)"
    by_filesystem: dict[int, tuple[list[Path], int]] = {}
    for folder, size in needs.items():
        folder = Path(folder)
        probe = folder / f".write-test-{os.getpid()}"
        with reporting_writes(folder, probe, note):
            folder.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"\0")
            probe.unlink()
        folders, total = by_filesystem.get(os.stat(folder).st_dev, ([], 0))
        by_filesystem[os.stat(folder).st_dev] = (folders + [folder], total + size)
    for folders, total in by_filesystem.values():
        free = free_bytes(folders[0])
        if free < total:
            names = " and ".join(str(f) for f in folders)
            raise WriteError(
                errno.ENOSPC,
                f"not enough disk space for {names}: {readable_size(free)} free, about {readable_size(total)} "
                f"needed: free space, or move the project to a larger disk, and re-run{note}",
                str(folders[0]),
            )
