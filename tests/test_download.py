"""sr3bench.core.download against a real HTTP server on 127.0.0.1 (a thread in this process):
resume after a cut, servers that ignore Range, checksum and HTTP errors, no network,
and atomic, safe unpacking of tar and zip archives."""

from __future__ import annotations

import hashlib
import io
import logging
import random
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest
from local_http import http_server  # noqa: F401  (a fixture)

from sr3bench.core.download import DownloadError, fetch, md5_of, unpack

pytestmark = pytest.mark.fault

BODY = random.Random(0).randbytes(200_000)
BODY_MD5 = hashlib.md5(BODY).hexdigest()
ALTERNATIVE = "Download it elsewhere and set datasets.ffhq.local in params.yaml"


@pytest.fixture
def server(http_server):  # noqa: F811
    http_server.files["/data.bin"] = BODY
    return http_server


def _fetch(server, dest, **kwargs):
    kwargs.setdefault("md5", BODY_MD5)
    return fetch(f"{server.url}/data.bin", dest, timeout=5, progress=False, **kwargs)


def test_plain_download(server, tmp_path):
    dest = tmp_path / "sub" / "data.bin"
    assert _fetch(server, dest, size=len(BODY)) == dest
    assert dest.read_bytes() == BODY
    assert md5_of(dest) == BODY_MD5
    assert not (tmp_path / "sub" / "data.bin.part").exists()
    assert server.requests == [("/data.bin", None)]


def test_resume_after_cut_connection(server, tmp_path):
    dest, part = tmp_path / "data.bin", tmp_path / "data.bin.part"
    server.cut_after = 70_000
    with pytest.raises(DownloadError, match="resume") as caught:
        _fetch(server, dest)
    assert f"cut after 70000 of {len(BODY)} bytes" in str(caught.value)
    assert part.read_bytes() == BODY[:70_000]
    assert not dest.exists()

    server.cut_after = None
    _fetch(server, dest)
    assert server.requests == [("/data.bin", None), ("/data.bin", "bytes=70000-")]
    assert dest.read_bytes() == BODY
    assert not part.exists()


def test_checksum_mismatch_deletes_the_part_file(server, tmp_path):
    dest, wrong = tmp_path / "data.bin", "0" * 32
    with pytest.raises(DownloadError, match=wrong) as caught:
        _fetch(server, dest, md5=wrong)
    assert BODY_MD5 in str(caught.value) and "deleted" in str(caught.value)
    assert not dest.exists()
    assert not (tmp_path / "data.bin.part").exists()


def test_larger_than_expected_size_is_refused(server, tmp_path):
    with pytest.raises(DownloadError, match=f"expected {len(BODY) - 1}"):
        _fetch(server, tmp_path / "data.bin", md5=None, size=len(BODY) - 1)
    assert list(tmp_path.iterdir()) == []


def test_http_404_names_status_and_alternative(server, tmp_path):
    with pytest.raises(DownloadError) as caught:
        fetch(f"{server.url}/missing.tar", tmp_path / "missing.tar", alternative=ALTERNATIVE, timeout=5, progress=False)
    assert "HTTP 404" in str(caught.value) and ALTERNATIVE in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_server_ignoring_range_restarts_from_zero(server, tmp_path, caplog):
    dest, part = tmp_path / "data.bin", tmp_path / "data.bin.part"
    part.write_bytes(b"x" * 50_000)
    server.ignore_range = True
    with caplog.at_level(logging.WARNING, logger="sr3bench.core.download"):
        _fetch(server, dest)
    assert server.requests == [("/data.bin", "bytes=50000-")]
    assert dest.read_bytes() == BODY
    assert md5_of(dest) == BODY_MD5
    assert any("ignored the Range" in record.getMessage() for record in caplog.records)


def test_range_not_satisfiable_means_part_is_complete(server, tmp_path):
    dest, part = tmp_path / "data.bin", tmp_path / "data.bin.part"
    part.write_bytes(BODY)
    _fetch(server, dest, size=len(BODY))
    assert server.requests == [("/data.bin", f"bytes={len(BODY)}-")]
    assert dest.read_bytes() == BODY and not part.exists()


def test_network_unreachable(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadError) as caught:
        fetch(
            f"http://127.0.0.1:{port}/data.bin",
            tmp_path / "data.bin",
            alternative=ALTERNATIVE,
            timeout=5,
            progress=False,
        )
    assert "cannot reach 127.0.0.1" in str(caught.value) and ALTERNATIVE in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_existing_verified_dest_does_not_touch_the_network(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(BODY)
    assert _fetch(server, dest) == dest
    assert server.requests == []


def test_existing_dest_with_wrong_md5_is_reported(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"something else")
    with pytest.raises(DownloadError, match="delete it") as caught:
        _fetch(server, dest)
    assert str(dest) in str(caught.value) and BODY_MD5 in str(caught.value)
    assert server.requests == []


def test_file_url_mirror(tmp_path):
    source = tmp_path / "mirror" / "data.bin"
    source.parent.mkdir()
    source.write_bytes(BODY)
    (tmp_path / "data.bin.part").write_bytes(b"x" * 10)  # Range does not apply: starts over
    dest = fetch(source.as_uri(), tmp_path / "data.bin", md5=BODY_MD5, progress=False)
    assert dest.read_bytes() == BODY


# ---- unpack -------------------------------------------------------------------------

FILES = {f"images/{index:02d}.png": random.Random(index).randbytes(30_000) for index in range(6)}


def _make_tar_gz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_interrupted_unpack_leaves_nothing_then_intact_unpack_works(tmp_path):
    archive = _make_tar_gz(tmp_path / "ffhq.tar.gz", FILES)
    intact = archive.read_bytes()
    archive.write_bytes(intact[: len(intact) // 2])
    dest = tmp_path / "ffhq"
    with pytest.raises(DownloadError, match="damaged") as caught:
        unpack(archive, dest)
    assert str(archive) in str(caught.value)
    assert not dest.exists()
    assert not (tmp_path / "ffhq.unpacking").exists()

    archive.write_bytes(intact)
    assert unpack(archive, dest) == dest
    assert _contents(dest) == FILES
    assert not (tmp_path / "ffhq.unpacking").exists()


@pytest.mark.parametrize("data_filter", [True, False], ids=["tarfile-filter", "own-checks"])
def test_unpack_refuses_member_escaping_the_folder(tmp_path, monkeypatch, data_filter):
    if not data_filter:  # as on Pythons before tarfile's extraction filters
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    (tmp_path / "work").mkdir()
    archive = _make_tar_gz(tmp_path / "work" / "evil.tar.gz", {"ok.txt": b"fine", "../evil.txt": b"gotcha"})
    dest = tmp_path / "work" / "out"
    with pytest.raises(DownloadError, match=r"\.\./evil\.txt"):
        unpack(archive, dest)
    assert not any(path.name == "evil.txt" for path in tmp_path.rglob("*"))
    assert not dest.exists() and not (tmp_path / "work" / "out.unpacking").exists()


@pytest.mark.parametrize("data_filter", [True, False], ids=["tarfile-filter", "own-checks"])
def test_unpack_refuses_symlink_pointing_outside(tmp_path, monkeypatch, data_filter):
    if not data_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("escape")
        info.type, info.linkname = tarfile.SYMTYPE, "../../outside"
        tar.addfile(info)
    with pytest.raises(DownloadError, match="escape"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zip_unpack(tmp_path):
    archive = tmp_path / "set5.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in FILES.items():
            zipped.writestr(name, data)
    dest = tmp_path / "set5"
    assert unpack(archive, dest) == dest
    assert _contents(dest) == FILES
    # A second call finds the complete unpack and leaves it alone.
    (dest / "marker").write_bytes(b"kept")
    assert unpack(archive, dest) == dest and (dest / "marker").read_bytes() == b"kept"


def test_unknown_archive_type(tmp_path):
    archive = tmp_path / "data.rar"
    archive.write_bytes(b"rar")
    with pytest.raises(DownloadError, match=r"\.tar\.gz.*\.zip"):
        unpack(archive, tmp_path / "data")
