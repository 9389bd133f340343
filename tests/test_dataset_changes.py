"""Issue 28, item 1: a changed dataset folder is noticed by both engines. An added,
replaced or removed image re-runs prepare and everything after it; a folder only touched
re-runs nothing. Real folders, real Snakemake and DVC runs of a tiny folder preset."""

import os
import re
import sys
import time

import numpy as np
import pytest
from PIL import Image
from projects import dvc_project, make_project, run, tiny_params

from pipeline import dataset_listing, layout
from pipeline.config import with_defaults

pytestmark = pytest.mark.fault
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2"]
DVC = [sys.executable, "-m", "dvc"]
DOWNSTREAM = {"prepare", "sample", "evaluate", "report", "front_page"}


def save_image(path, seed: int) -> None:
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(path)


def folder_params(tmp_path) -> dict:
    """The tiny preset with its test images from a folder (two 48x48 PNGs), bicubic only."""
    test_set = tmp_path / "sets" / "SetX"
    test_set.mkdir(parents=True)
    for seed, name in enumerate(("a.png", "b.png")):
        save_image(test_set / name, seed)
    params = tiny_params()
    params["methods"] = ["bicubic"]
    demo = params["presets"]["demo"]
    demo["study"] = None
    demo["dataset"].update(source="folder", root=str(test_set.parent), test_folders=["SetX"], test_images=[])
    return params


def touch_every_image(folder) -> None:
    later = time.time() + 5
    for path in folder.iterdir():
        os.utime(path, (later, later))


def planned(project, *targets) -> set[str]:
    """The rules a dry run would run (empty: nothing to be done)."""
    result = run([*SNAKEMAKE, "--dry-run", *targets], project)
    jobs = re.findall(r"^(?:local)?rule (\w+):$", result.stdout + result.stderr, flags=re.MULTILINE)
    return set(jobs) - {"all"}


def test_the_listing_hashes_only_changed_files_and_changes_only_with_the_content(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "SetX"
    folder.mkdir()
    save_image(folder / "a.png", 0)
    save_image(folder / "b.png", 1)
    hashed = []
    hash_file = dataset_listing.file_sha256
    monkeypatch.setattr(dataset_listing, "file_sha256", lambda path: hashed.append(path.name) or hash_file(path))

    def refreshed() -> tuple[list[str], int, str]:
        hashed.clear()
        listing = dataset_listing.refresh("demo", [folder])
        return sorted(hashed), listing.stat().st_mtime_ns, listing.read_text()

    names, written, text = refreshed()
    assert names == ["a.png", "b.png"] and refreshed() == ([], written, text)
    touch_every_image(folder)
    assert refreshed() == (["a.png", "b.png"], written, text)  # hashed again, found unchanged: not rewritten
    save_image(folder / "b.png", 2)
    names, rewritten, changed = refreshed()
    assert names == ["b.png"] and changed != text and rewritten != written


def test_the_folders_of_a_preset_are_those_prepare_reads_outside_its_downloads():
    def folders(**dataset):
        section = {"source": "folder", "hr_size": 16, "scale": 4, "lr_source": "downsample", **dataset}
        return [
            str(f) for f in dataset_listing.dataset_folders(with_defaults(section, "#/$defs/preset/properties/dataset"))
        ]

    assert folders(root="../sets", test_folders=["Set5", "Set14"], val_folders=["Set5"]) == [
        "../sets/Set5",
        "../sets/Set14",
    ]
    assert folders(root="faces", image_split={"test": 1, "val": 1}) == ["faces"]
    assert folders(root="downloads", downloads=["ffhq"], train_folder="ffhq/train", test_folders=["mine"]) == [
        "downloads/mine"
    ]


@pytest.mark.slow
def test_snakemake_reruns_prepare_and_what_follows_only_when_an_image_changes(tmp_path):
    project = make_project(tmp_path / "project", folder_params(tmp_path))
    folder = tmp_path / "sets" / "SetX"
    run(SNAKEMAKE, project)
    listing = project / layout.dataset_listing_file("demo")
    written = listing.stat().st_mtime_ns

    touch_every_image(folder)
    assert planned(project) == set()
    assert listing.stat().st_mtime_ns == written, "a touch rewrote the listing"

    save_image(folder / "c.png", 2)  # added
    assert planned(project) == DOWNSTREAM
    run([*SNAKEMAKE, str(layout.data_dir("demo"))], project)
    assert planned(project, str(layout.data_dir("demo"))) == set()

    save_image(folder / "b.png", 3)  # replaced in place, same name and size
    assert planned(project, str(layout.data_dir("demo"))) == {"prepare"}
    run([*SNAKEMAKE, str(layout.data_dir("demo"))], project)

    (folder / "a.png").unlink()  # removed
    assert planned(project, str(layout.data_dir("demo"))) == {"prepare"}


def ran(result) -> set[str]:
    """The stages a `dvc repro` ran."""
    text = result.stdout + result.stderr
    return {line.split("'")[1] for line in text.splitlines() if line.startswith("Running stage '")}


@pytest.mark.slow
def test_dvc_reruns_prepare_and_what_follows_only_when_an_image_changes(tmp_path):
    project = dvc_project(tmp_path / "project", folder_params(tmp_path))
    folder = tmp_path / "sets" / "SetX"
    run([*DVC, "repro"], project)

    touch_every_image(folder)
    assert "Data and pipelines are up to date" in run([*DVC, "status"], project).stdout

    save_image(folder / "c.png", 2)  # added
    status = run([*DVC, "status"], project).stdout
    assert "prepare:" in status and str(folder) in status, status
    assert ran(run([*DVC, "repro"], project)) == {
        "prepare",
        "sample_bicubic",
        "evaluate_bicubic",
        "report",
        "front_page",
    }

    save_image(folder / "b.png", 3)  # replaced in place
    assert "prepare:" in run([*DVC, "status"], project).stdout
    assert ran(run([*DVC, "repro", "prepare"], project)) == {"prepare"}

    (folder / "a.png").unlink()  # removed
    assert "prepare:" in run([*DVC, "status"], project).stdout
