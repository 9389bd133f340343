"""The dataset folders a preset's prepare reads, and a listing of their files that changes
only when their content does.

DVC tracks the folders themselves (dvc.yaml lists them as prepare's deps: it hashes them,
and a file whose inode, size and mtime are unchanged is not read again). Snakemake
compares mtimes, so it tracks a listing instead, ``cache/<preset>/dataset-listing.json``:
each image file's name, size and sha256. The Snakefile refreshes it whenever it plans
prepare, and writes it only when that content differs, so that

- an added, replaced or removed image rewrites it: prepare and everything after it re-run;
- a touched image is hashed again (its size or mtime changed), found unchanged, and the
  listing is left alone: nothing re-runs.

Only files whose size, mtime or inode changed since the last listing are hashed
(``cache/<preset>/dataset-stats.json`` keeps each file's stat and sha256), so a folder of
70,000 images costs a walk and a stat per file (a file rewritten in place with its old
size and mtime restored goes unnoticed, as it would by make or rsync). Folders inside a registered
download are left out: the download stage's output is tracked already. Bundled
scikit-image photographs need nothing.

An outside method's folder (``presets.<preset>.external.<method>``, read by the collect
stage) is tracked the same way, in a listing of its own,
``cache/<preset>/outside/<method>-listing.json``, of the images at its top level (those
the collect stage reads): a changed image re-runs that method's collect and evaluate
stages, and nothing of the other methods.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline import layout
from sr3bench.core.atomic import atomic_path
from sr3bench.core.checksums import file_sha256
from sr3bench.core.image_files import list_images, list_images_recursive


def dataset_folders(dataset: dict) -> list[Path]:
    """The folders of a (resolved) dataset section that prepare reads, outside the
    preset's downloads; [] for the bundled photographs."""
    if dataset["source"] != "folder" or not dataset["root"]:
        return []
    root = Path(dataset["root"]).expanduser()
    if dataset["image_split"]:
        folders = [root]
    else:
        names = [dataset["train_folder"], *dataset["val_folders"], *dataset["test_folders"]]
        folders = [root / name for name in names if name]
    downloads = [layout.download_dir(name) for name in dataset["downloads"]]
    normalised = dict.fromkeys(Path(os.path.normpath(folder)) for folder in folders)
    return [folder for folder in normalised if not any(folder.is_relative_to(d) for d in downloads)]


def listing(folders: list[Path], known: dict, recursive: bool = True) -> tuple[dict, dict]:
    """(listing, stats) of ``folders``: {folder: {file: [size, sha256]}} (None for a
    missing folder) and {path: [size, mtime_ns, inode, sha256]}; ``known`` is the
    previous stats, whose sha256 is reused for a file of unchanged size, mtime and inode.
    Not ``recursive``: the images at the folders' top level only."""
    files, stats = {}, {}
    for folder in folders:
        if not folder.is_dir():
            files[str(folder)] = None  # prepare (or collect) says what is missing
            continue
        entries = files[str(folder)] = {}
        for path in list_images_recursive(folder) if recursive else list_images(folder):
            status = path.stat()
            stat = [status.st_size, status.st_mtime_ns, status.st_ino]
            previous = known.get(str(path))
            digest = previous[3] if previous and previous[:3] == stat else file_sha256(path)
            stats[str(path)] = [*stat, digest]
            entries[path.relative_to(folder).as_posix()] = [status.st_size, digest]
    return files, stats


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` unless the file holds it already (its mtime is what Snakemake compares)."""
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    return True


def refresh(preset: str, folders: list[Path], method: str | None = None) -> Path:
    """Bring ``preset``'s listing of ``folders`` up to date (rewritten only when a file's
    name, size or content changed) and return its path; with ``method``, the listing of
    that outside method's folder (its top-level images)."""
    if method is None:
        stats_file, listing_file = layout.dataset_stats_file(preset), layout.dataset_listing_file(preset)
    else:
        stats_file, listing_file = (
            layout.outside_stats_file(preset, method),
            layout.outside_listing_file(preset, method),
        )
    try:
        known = json.loads(stats_file.read_text())
    except (OSError, ValueError):  # none yet, or damaged: hash every file again
        known = {}
    files, stats = listing(folders, known, recursive=method is None)
    write_if_changed(stats_file, json.dumps(stats, sort_keys=True))
    write_if_changed(listing_file, json.dumps(files, indent=1, sort_keys=True) + "\n")
    return listing_file


def outside_folder(preset: dict, method: str) -> Path:
    """The folder of an outside method of a (resolved) preset, ``external.<method>.folder``,
    as both engines track it and the collect stage reads it (``~`` expanded, normalised)."""
    return Path(os.path.normpath(Path(preset["external"][method]["folder"]).expanduser()))
