"""The download stage end to end: registry entries fetched from a mirror on 127.0.0.1 (the
real download, unpack and layout code; only the checksums are those of the test files),
local copies, manual datasets and an unreachable host, each leaving either a complete
downloads/<name>/ or nothing that looks complete."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import socket
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import yaml
from local_http import http_server  # noqa: F401  (a fixture)
from PIL import Image
from projects import committed_params

from pipeline import datasets
from pipeline.stages.download import SOURCE_FILE, run_download
from sr3bench.core.download import DownloadError

pytestmark = pytest.mark.fault


def png(value: int, size: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def registered(monkeypatch, name, **changes):
    """The registry entry ``name`` with test files (the real entry's code paths)."""
    entry = dataclasses.replace(datasets.REGISTRY[name], **changes)
    monkeypatch.setitem(datasets.REGISTRY, name, entry)
    return entry


def edsr_benchmark_tar() -> bytes:
    """benchmark.tar as EDSR lays it out: <set>/HR/<stem>.png, <set>/LR_bicubic/X4/<stem>x4.png."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for number, name in enumerate(("Set5", "Set14", "B100", "Urban100")):
            for path, data in (
                (f"benchmark/{name}/HR/img{number}.png", png(number, 16)),
                (f"benchmark/{name}/LR_bicubic/X4/img{number}x4.png", png(number, 4)),
            ):
                info = tarfile.TarInfo(path)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_sr_benchmarks_from_a_mirror_are_checked_unpacked_and_laid_out(http_server, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    archive = edsr_benchmark_tar()
    http_server.files["/mirror/benchmark.tar"] = archive
    entry = datasets.REGISTRY["sr_benchmarks"]
    registered(monkeypatch, "sr_benchmarks", files=(dataclasses.replace(entry.files[0], md5=md5(archive)),))
    run_download("sr_benchmarks", {"mirror": f"{http_server.url}/mirror"})
    out = tmp_path / "downloads" / "sr_benchmarks"
    assert sorted(p.name for p in out.iterdir()) == sorted(["B100", "Set14", "Set5", "Urban100", SOURCE_FILE])
    assert (out / "Set14" / "HR" / "img1.png").read_bytes() == png(1, 16)
    assert (out / "Set14" / "LR_bicubic_x4" / "img1.png").read_bytes() == png(1, 4)  # renamed to the HR name
    record = json.loads((out / SOURCE_FILE).read_text())
    assert record["sources"] == [
        {"file": "benchmark.tar", "from": f"{http_server.url}/mirror/benchmark.tar", "md5": md5(archive)}
    ]
    run_download("sr_benchmarks", {"mirror": f"{http_server.url}/mirror"})  # again: from the cache, no second transfer
    assert [path for path, _ in http_server.requests] == ["/mirror/benchmark.tar"]


def test_a_damaged_archive_leaves_nothing_that_looks_complete(http_server, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    archive = edsr_benchmark_tar()
    http_server.files["/mirror/benchmark.tar"] = archive[: len(archive) // 2]  # what a bad mirror serves
    entry = datasets.REGISTRY["sr_benchmarks"]
    registered(monkeypatch, "sr_benchmarks", files=(dataclasses.replace(entry.files[0], md5=md5(archive)),))
    with pytest.raises(DownloadError, match="md5"):
        run_download("sr_benchmarks", {"mirror": f"{http_server.url}/mirror"})
    assert not (tmp_path / "downloads" / "sr_benchmarks").exists()
    assert not list((tmp_path / "cache" / "downloads").rglob("benchmark.tar*"))  # the corrupt file is not kept


def ffhq_server(http_server, images):  # noqa: F811
    """A mirror with a metadata JSON listing ``images`` (index -> bytes) as thumbnails."""
    metadata = {
        str(index): {
            "thumbnail": {
                "file_url": f"{http_server.url}/drive/{index}",
                "file_path": f"thumbnails128x128/00000/{index:05d}.png",
                "file_size": len(data),
                "file_md5": md5(data),
            }
        }
        for index, data in images.items()
    }
    text = json.dumps(metadata).encode()
    http_server.files["/mirror/ffhq-dataset-v2.json"] = text
    for index, data in images.items():
        http_server.files[f"/mirror/thumbnails128x128/00000/{index:05d}.png"] = data
    return datasets.RemoteFile("ffhq-dataset-v2.json", "https://drive.google.com/unused", md5(text), len(text))


def test_ffhq_images_come_from_the_metadata_and_are_each_checked(http_server, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    images = {index: png(index, 8) for index in range(5)}
    metadata = ffhq_server(http_server, images)
    monkeypatch.setattr(datasets, "FFHQ_METADATA", metadata)
    registered(monkeypatch, "ffhq", files=(metadata,), options={"kind": "thumbnail", "train": (0, 3), "val": (3, 5)})
    run_download("ffhq", {"mirror": f"{http_server.url}/mirror"})
    out = tmp_path / "downloads" / "ffhq"
    assert sorted(p.name for p in (out / "train").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    assert (out / "val" / "00004.png").read_bytes() == images[4]

    http_server.files["/mirror/thumbnails128x128/00000/00003.png"] = png(99, 8)  # the mirror changed an image
    (tmp_path / "cache" / "downloads" / "ffhq" / "thumbnails128x128" / "00000" / "00003.png").unlink()
    shutil.rmtree(out)
    with pytest.raises(DownloadError, match="md5"):
        run_download("ffhq", {"mirror": f"{http_server.url}/mirror"})
    assert not out.exists() and not (tmp_path / "downloads" / "ffhq.partial" / SOURCE_FILE).exists()


def test_a_local_folder_replaces_the_download(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    faces = tmp_path / "my-celebahq"
    faces.mkdir()
    for index in range(3):
        (faces / f"{index:06d}.jpg").write_bytes(png(index, 8))
    run_download("celebahq", {"local": str(faces)})
    out = tmp_path / "downloads" / "celebahq"
    assert sorted(p.name for p in out.iterdir()) == ["000000.jpg", "000001.jpg", "000002.jpg", SOURCE_FILE]
    assert (out / "000001.jpg").stat().st_ino == (faces / "000001.jpg").stat().st_ino  # a hard link, no copy


def test_an_unreachable_host_names_the_local_and_mirror_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadError, match="cannot reach") as error:
        run_download("sr_benchmarks", {"mirror": f"http://127.0.0.1:{port}/edsr"})
    assert "datasets.sr_benchmarks.local" in str(error.value) and "datasets.sr_benchmarks.mirror" in str(error.value)
    assert not (tmp_path / "downloads" / "sr_benchmarks").exists()


def test_a_manual_dataset_says_where_to_put_it_through_the_real_cli(tmp_path):
    params = committed_params()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "download", "--dataset", "imagenet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    for text in ("cannot be downloaded automatically", "ILSVRC2012_img_train.tar", "datasets.imagenet.local"):
        assert text in result.stderr, text
    assert "Traceback" not in result.stderr and not (tmp_path / "downloads" / "imagenet").exists()
