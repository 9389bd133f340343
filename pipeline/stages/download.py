"""The download stage: one registered dataset (``pipeline/datasets.py``) fetched, or taken
from the user's local copy, checked, and laid out under ``downloads/<name>/``.

Archives and per-file downloads are kept in ``cache/downloads/`` (outside the stage's
declared output, so a failed run that the engine cleans up still resumes), and their
files are hard-linked into the output (copied where links cannot be made). The output is
built under ``downloads/<name>.partial`` and renamed when complete, with a
``SOURCE.json`` saying where every file came from.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
from pathlib import Path

from pipeline import datasets, layout
from sr3bench.core.atomic import atomic_path
from sr3bench.core.download import DownloadError, fetch, md5_of, unpack
from sr3bench.core.images import IMAGE_SUFFIXES, list_images_recursive
from sr3bench.core.progress import progress

log = logging.getLogger(__name__)

SOURCE_FILE = "SOURCE.json"
ARCHIVE_SUFFIXES = (".tar", ".zip", ".tgz", ".gz")


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the filesystem allows one (no space used), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


class Sources:
    """Where a dataset's files come from: the user's local folder or archive, a mirror,
    or the publisher; each file is checked against its md5 before it is used."""

    def __init__(self, entry: datasets.DatasetEntry, settings: dict, cache: Path):
        self.entry, self.cache = entry, cache
        self.local = Path(settings["local"]).expanduser() if settings.get("local") else None
        self.mirror = settings.get("mirror")
        self.alternative = (
            f"Download it elsewhere and set datasets.{entry.name}.local in params.yaml to the folder or archive, "
            f"or datasets.{entry.name}.mirror to a mirror's base URL"
        )
        if self.local is not None and not self.local.exists():
            raise FileNotFoundError(
                f"datasets.{entry.name}.local: {self.local} does not exist; point it at your copy of {entry.title}"
            )
        if self.local is None and entry.access == "manual":
            raise DownloadError(
                f"{entry.title} cannot be downloaded automatically ({entry.licence}). {entry.how_to_get}. "
                f"The download stage then lays it out as downloads/{entry.name}/ ({entry.layout})."
            )
        self.record: list[dict] = []

    def local_file(self, name: str) -> Path | None:
        if self.local is None:
            return None
        if self.local.is_file():
            return self.local if self.local.name == name else None
        candidate = self.local / name
        return candidate if candidate.is_file() else None

    def file(self, remote: datasets.RemoteFile, relative: str | None = None) -> Path:
        """The checked file: the local copy of that name, or a download (resumed, verified)."""
        local = self.local_file(remote.name)
        if local is not None:
            actual = md5_of(local)
            if actual != remote.md5:
                raise DownloadError(
                    f"{local}: md5 {actual} differs from the published {remote.md5}; "
                    "the local copy is damaged or another version"
                )
            self.record.append({"file": remote.name, "from": str(local), "md5": remote.md5})
            return local
        url = f"{self.mirror.rstrip('/')}/{relative or remote.name}" if self.mirror else remote.url
        path = fetch(
            url,
            self.cache / (relative or remote.name),
            remote.md5,
            remote.size,
            alternative=self.alternative,
            progress=relative is None,
        )
        self.record.append({"file": relative or remote.name, "from": url, "md5": remote.md5})
        return path

    def unpacked(self, remote: datasets.RemoteFile) -> Path | None:
        """The archive's unpacked folder (in the cache), or None when the local copy is
        given as an already unpacked folder without the archive."""
        if self.local is not None and self.local_file(remote.name) is None:
            return None
        archive = self.file(remote)
        return unpack(archive, self.cache / "unpacked" / remote.name)

    def roots(self) -> list[Path]:
        """Folders to look for the dataset's files in: unpacked archives, else the local folder."""
        folders = [self.unpacked(remote) for remote in self.entry.files]
        found = [f for f in folders if f is not None]
        if not found and self.local is not None and self.local.is_dir():
            self.record.append({"folder": str(self.local)})
            return [self.local]
        return found


def find_folder(roots: list[Path], candidates: list[str]) -> Path | None:
    """The first existing folder among ``candidates`` (relative paths) under any root, at
    any depth (archives wrap their contents in a top folder)."""
    for root in roots:
        for candidate in candidates:
            for found in [root / candidate, *root.glob(f"**/{candidate}")]:
                if found.is_dir():
                    return found
    return None


def arrange_sr_sets(entry, sources: Sources, staging: Path) -> None:
    """<set>/HR and <set>/LR_bicubic_x<scale> with matching file names, from EDSR's
    (``benchmark/<set>/LR_bicubic/X4/<stem>x4.png``), DIV2K's (``DIV2K_train_HR``,
    ``DIV2K_train_LR_bicubic/X4``) or this project's layout."""
    roots, scale = sources.roots(), entry.options["scale"]
    for name in entry.options["sets"]:
        hr = find_folder(roots, [f"{name}/HR", f"{name}_HR"])
        lr = find_folder(
            roots, [f"{name}/LR_bicubic/X{scale}", f"{name}_LR_bicubic/X{scale}", f"{name}/LR_bicubic_x{scale}"]
        )
        if hr is None or lr is None:
            raise DownloadError(
                f"{entry.title}: no {name} HR and x{scale} LR folders in {', '.join(map(str, roots))} "
                f"(expected {entry.layout})"
            )
        for image in list_images_recursive(hr):
            matches = [lr / f"{image.stem}x{scale}{image.suffix}", lr / image.name]
            match = next((m for m in matches if m.exists()), None)
            if match is None:
                raise DownloadError(f"{image}: no LR image for it in {lr}")
            link_or_copy(image, staging / name / "HR" / image.name)
            link_or_copy(match, staging / name / f"LR_bicubic_x{scale}" / image.name)


def arrange_image_folder(entry, sources: Sources, staging: Path) -> None:
    (root,) = sources.roots()
    images = list_images_recursive(root)
    if not images:
        raise DownloadError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)}); {entry.how_to_get}")
    for image in progress(images, desc=entry.name, mininterval=2):
        link_or_copy(image, staging / image.name)


def arrange_ffhq(entry, sources: Sources, staging: Path) -> None:
    """Images by their FFHQ index into train/ and val/, each checked against the md5 of
    the metadata JSON (a local folder without the JSON is taken as it is, with a warning)."""
    kind = entry.options["kind"]
    metadata_file = sources.local_file(datasets.FFHQ_METADATA.name)
    if sources.local is not None and sources.local.is_dir() and metadata_file is None:
        log.warning(
            "%s has no %s: FFHQ images are taken by file name, without md5 checks",
            sources.local,
            datasets.FFHQ_METADATA.name,
        )
        by_name = {p.stem: p for p in list_images_recursive(sources.local)}
        for split in ("train", "val"):
            low, high = entry.options[split]
            for index in range(low, high):
                if f"{index:05d}" not in by_name:
                    raise DownloadError(f"FFHQ image {index:05d} is missing from {sources.local}")
                link_or_copy(by_name[f"{index:05d}"], staging / split / f"{index:05d}.png")
        return
    metadata = json.loads(sources.file(datasets.FFHQ_METADATA).read_text())
    for split in ("train", "val"):
        low, high = entry.options[split]
        for index in progress(range(low, high), desc=f"ffhq {split}", mininterval=2):
            spec = metadata[str(index)][kind]
            remote = datasets.RemoteFile(
                Path(spec["file_path"]).name, spec["file_url"], spec["file_md5"], spec["file_size"]
            )
            local = sources.local / spec["file_path"] if sources.local is not None and sources.local.is_dir() else None
            if local is not None and local.is_file():
                if md5_of(local) != remote.md5:
                    raise DownloadError(
                        f"{local}: md5 differs from the FFHQ metadata's {remote.md5}; the local copy is damaged"
                    )
                path = local
            else:
                path = sources.file(remote, relative=spec["file_path"])
            link_or_copy(path, staging / split / f"{index:05d}.png")


def arrange_imagenet(entry, sources: Sources, staging: Path) -> None:
    """The images as train/<wnid>/*.JPEG and val/*.JPEG, from the two archives (the train archive holds
    one tar per class, unpacked in turn into the cache) or from an extracted folder."""
    for split, remote in zip(("train", "val"), entry.files):
        folder = sources.unpacked(remote) or find_folder([sources.local], [split])
        if folder is None:
            raise DownloadError(
                f"no ImageNet {split} images in {sources.local}: neither {remote.name} nor a {split}/ folder; "
                f"{entry.how_to_get}"
            )
        for inner in sorted(folder.glob("*.tar")):  # a class of the train archive
            classes = unpack(inner, sources.cache / "unpacked" / f"{split}-classes" / inner.stem)
            for image in list_images_recursive(classes):
                link_or_copy(image, staging / split / inner.stem / image.name)
        for image in progress(list_images_recursive(folder), desc=f"imagenet {split}", mininterval=5):
            link_or_copy(image, staging / split / image.relative_to(folder))


def arrange_imagenet_devkit(entry, sources: Sources, staging: Path) -> None:
    """The devkit's two label files (``data/`` of ILSVRC2012_devkit_t12), from the archive
    or from an extracted folder (pipeline/imagenet_devkit.py reads them)."""
    roots = sources.roots()
    for name in entry.options["files"]:
        found = next((path for root in roots for path in sorted(root.rglob(name)) if path.is_file()), None)
        if found is None:
            raise DownloadError(
                f"no {name} in {', '.join(map(str, roots))} (expected ILSVRC2012_devkit_t12/data/{name}); "
                f"{entry.how_to_get}"
            )
        link_or_copy(found, staging / name)


ARRANGERS = {
    "sr_sets": arrange_sr_sets,
    "image_folder": arrange_image_folder,
    "ffhq": arrange_ffhq,
    "imagenet": arrange_imagenet,
    "imagenet_devkit": arrange_imagenet_devkit,
}


def run_download(name: str, settings: dict) -> None:
    """Fill ``downloads/<name>/`` from the dataset's source (``settings``: datasets.<name>)."""
    entry = datasets.entry(name)
    out = layout.download_dir(name)
    sources = Sources(entry, settings, layout.download_cache_dir(name))
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    ARRANGERS[entry.arrangement](entry, sources, staging)
    record = {
        "dataset": entry.name,
        "title": entry.title,
        "licence": entry.licence,
        "layout": entry.layout,
        "sources": sources.record,
        "files": sum(1 for p in staging.rglob("*") if p.is_file()),
        "made": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_path(staging / SOURCE_FILE) as temporary:
        temporary.write_text(json.dumps(record, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    log.info("%s: %d files in %s", name, record["files"], out)


def run(job) -> None:
    run_download(job.dataset, job.params["datasets"].get(job.dataset, {}))
