"""Downloads that resume with HTTP Range, are verified (size, md5) before they count and
are moved into place atomically; and unpacking that is atomic (an interrupted unpack
leaves nothing that looks complete).

A download grows in ``<dest>.part``; only a part file whose size and md5 check out is
renamed onto ``dest``. An archive is extracted into ``<dest>.unpacking`` and renamed
onto ``dest`` only when every member is out.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from sr3bench.core.progress import progress as progress_bar
from sr3bench.core.write_errors import reporting_writes

log = logging.getLogger(__name__)

CHUNK = 1 << 16
# What a connection cut in the middle of the body raises (socket.timeout is TimeoutError).
_CUT = (http.client.IncompleteRead, ConnectionError, TimeoutError)
# What a damaged archive raises while it is read.
_DAMAGED = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError)
SUPPORTED = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")


class DownloadError(RuntimeError):
    """A download or unpack that failed; the message says what happened and what to do."""


def md5_of(path: Path, chunk: int = 1 << 20) -> str:
    """The hex md5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _with(text: str, alternative: str) -> str:
    return f"{text} {alternative}".strip() if alternative else text


def _check_existing(dest: Path, md5: str | None, size: int | None) -> None:
    """Raise if a file already at dest is not the expected one."""
    actual_size = dest.stat().st_size
    if size is not None and actual_size != size:
        raise DownloadError(f"{dest} exists but has {actual_size} bytes, expected {size}: delete it and re-run")
    if md5 is not None and (actual := md5_of(dest)) != md5.lower():
        raise DownloadError(f"{dest} exists but its md5 is {actual}, expected {md5}: delete it and re-run")


def _open(url: str, have: int, timeout: float, alternative: str):
    """Open url asking for the bytes from ``have`` on; None when the server answers 416."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and have:
            return None
        raise DownloadError(_with(f"HTTP {error.code} {error.reason} for {url}.", alternative)) from error
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", error)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "file":
            raise DownloadError(_with(f"cannot read {url} ({reason}).", alternative)) from error
        text = f"cannot reach {parts.hostname or url} ({reason}): this machine may have no internet access."
        raise DownloadError(_with(text, alternative)) from error


def fetch(
    url: str,
    dest: Path,
    md5: str | None = None,
    size: int | None = None,
    *,
    alternative: str = "",
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download url to dest, resuming a ``<dest>.part`` left by an earlier cut; returns dest.

    An existing dest is checked (size, md5) and returned without touching the network.
    ``alternative`` is appended to the errors that mean "this source does not work"
    (HTTP errors, no network), e.g. how to provide the file by hand.
    """
    dest = Path(dest)
    if dest.exists():
        _check_existing(dest, md5, size)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.parent / (dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    response = _open(url, have, timeout, alternative)
    if response is None:  # 416: the part file already holds everything the server has
        announced = None
        if size is not None and have < size:
            part.unlink()
            raise DownloadError(
                f"{url} is smaller than the expected {size} bytes; the partial file was "
                f"deleted; check the URL or the mirror"
            )
    else:
        with response:
            status = getattr(response, "status", None) or 200  # file:// has no status
            if status == 206 and not (response.headers.get("Content-Range") or "").startswith(f"bytes {have}-"):
                raise DownloadError(f"{url} answered a range other than bytes {have}-; delete {part} and re-run")
            if status != 206:
                if have and urllib.parse.urlsplit(url).scheme != "file":
                    log.warning("%s ignored the Range request; downloading from byte 0 again", url)
                have = 0
            length = response.headers.get("Content-Length")
            announced = have + int(length) if length is not None else None
            total = size if size is not None else announced
            received, cut = have, None
            with (
                reporting_writes(part, note=f" ({part} is kept: the re-run resumes the download)"),
                open(part, "ab" if have else "wb") as out,
                progress_bar(
                    total=total,
                    initial=have,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=dest.name,
                    disable=not progress,
                ) as bar,
            ):
                while True:
                    try:
                        block = response.read(CHUNK)
                    except _CUT as error:
                        cut = error
                        break
                    if not block:
                        break
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
                out.flush()
                os.fsync(out.fileno())
            if cut is not None or (announced is not None and received < announced):
                raise DownloadError(
                    f"download of {url} cut after {received} of {total or '?'} bytes; {part} is kept: re-run to resume"
                ) from cut
    _verify(url, part, md5, size, announced)
    os.replace(part, dest)
    return dest


def _verify(url: str, part: Path, md5: str | None, size: int | None, announced: int | None) -> None:
    """Raise unless the finished part file has the expected size and md5."""
    got = part.stat().st_size
    if size is not None and got < size:
        raise DownloadError(f"download of {url} cut after {got} of {size} bytes; {part} is kept: re-run to resume")
    if size is not None and got > size:
        part.unlink()
        raise DownloadError(
            f"{url} gave {got} bytes, expected {size}; the partial file was deleted; "
            f"re-run to download again, or check the mirror"
        )
    if md5 is not None and (actual := md5_of(part)) != md5.lower():
        part.unlink()
        raise DownloadError(
            f"{url} has md5 {actual}, expected {md5}; the partial file was deleted; "
            f"re-run to download again, or check the mirror"
        )


def _inside(root: Path, name: str) -> bool:
    """Whether the relative archive path name stays within root."""
    if PurePosixPath(name).is_absolute() or os.path.isabs(name):
        return False
    return (root / name).resolve().is_relative_to(root.resolve())


def _extract_tar(archive: Path, into: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar.getmembers():
            ok = _inside(into, member.name)
            if member.issym():
                ok = ok and _inside(into, str(PurePosixPath(member.name).parent / member.linkname))
            elif member.islnk():
                ok = ok and _inside(into, member.linkname)
            if not ok:
                raise DownloadError(f"{archive} has a member that points outside the folder: {member.name!r}; refused")
        try:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, filter="data")
            else:
                tar.extractall(into)
        except getattr(tarfile, "FilterError", ()) as error:
            raise DownloadError(f"{archive}: member {error.tarinfo.name!r} refused ({error})") from error


def _extract_zip(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as zipped:
        for name in zipped.namelist():
            if not _inside(into, name) or "\\" in name:
                raise DownloadError(f"{archive} has a member that points outside the folder: {name!r}; refused")
        zipped.extractall(into)


def unpack(archive: Path, dest: Path) -> Path:
    """Extract a .tar, .tar.gz/.tgz (.tar.bz2, .tar.xz) or .zip archive into the folder
    dest, atomically: members go to ``<dest>.unpacking``, renamed onto dest at the end.
    An existing dest is a previous complete unpack and is returned unchanged."""
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        return dest
    name = archive.name.lower()
    if name.endswith(".zip"):
        extract = _extract_zip
    elif name.endswith(SUPPORTED):
        extract = _extract_tar
    else:
        raise DownloadError(f"cannot unpack {archive}: unknown archive type (supported: {', '.join(SUPPORTED)})")
    if not archive.is_file():
        raise DownloadError(f"cannot unpack {archive}: no such file")
    staging = dest.parent / (dest.name + ".unpacking")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with reporting_writes(dest, staging, note=f" ({archive} is kept: the re-run unpacks it again)"):
            staging.mkdir(parents=True)
            extract(archive, staging)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        # An OSError with an errno (disk full, permissions) is not damage to the archive.
        if isinstance(error, _DAMAGED) and not (isinstance(error, OSError) and error.errno):
            raise DownloadError(f"{archive} is damaged ({error}): delete it and re-run to download it again") from error
        raise
    os.replace(staging, dest)
    return dest
