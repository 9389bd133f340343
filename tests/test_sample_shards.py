"""Sharded sampling: N workers each sample every N-th batch of the test images into a
shard folder, and the merge gives the bytes one worker writes, for every method."""

import filecmp
import re
import shutil
import sys

import pytest
import yaml
from projects import run

from pipeline.stages.sample import shard_names

CLI = [sys.executable, "-m", "pipeline.cli"]


def test_shards_take_every_nth_batch_whole():
    batches = [["a", "b"], ["c", "d"], ["e"], ["f", "g"]]
    assert [shard_names(batches, index, 3) for index in range(3)] == [["a", "b", "f", "g"], ["c", "d"], ["e"]]


def set_sampling(project, **values) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["presets"]["demo"]["sampling"].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def sampled_project(small_demo_project, tmp_path):
    """A copy of the small demo run (trained models, 3 test images), sampled in batches of 2."""
    project = tmp_path / "project"
    shutil.copytree(small_demo_project, project, ignore=shutil.ignore_patterns(".snakemake", "reports", "results"))
    set_sampling(project, batch_size=2)
    return project


def sample(project, method: str, shard=None) -> None:
    """``sr3bench sample`` in this process (the stage function; the CLI costs seconds of imports)."""
    from pipeline import config
    from pipeline.stage_table import Job
    from pipeline.stages.sample import run

    preset_name, _, params = config.load(project / "params.yaml")
    run(Job(params, preset_name, method, shard=shard))


@pytest.mark.parametrize("method", ["bicubic", "regression", "sr3"])
def test_merged_shards_equal_one_worker_byte_for_byte(sampled_project, method, monkeypatch):
    project = sampled_project
    monkeypatch.chdir(project)
    samples = project / "samples/demo" / method
    sample(project, method)
    one_worker = project / f"one-worker-{method}"
    samples.rename(one_worker)

    set_sampling(project, batch_size=2, shards=2)  # batches [img0, img1] and [img2]: one each
    for index in (1, 0):
        sample(project, method, (index, 2))
    shard_files = [
        sorted(p.name for p in (project / f"samples/demo/shards/{method}/{i}-of-2").glob("*.png")) for i in range(2)
    ]
    assert [len(files) for files in shard_files] == [2, 1]
    sample(project, method)  # the merge

    names = sorted(p.name for p in one_worker.iterdir())
    assert sorted(p.name for p in samples.iterdir()) == names and len(names) == 3
    match, mismatch, errors = filecmp.cmpfiles(one_worker, samples, names, shallow=False)
    assert match == names, (mismatch, errors)


def test_a_shard_of_another_count_is_refused(sampled_project):
    project = sampled_project
    set_sampling(project, batch_size=2, shards=2)
    wrong = subprocess_run([*CLI, "sample", "--preset", "demo", "--method", "bicubic", "--shard", "0/3"], project)
    assert wrong.returncode != 0 and "this preset has sampling.shards 2" in wrong.stderr


def subprocess_run(command, cwd):
    import subprocess

    from projects import environment

    return subprocess.run(command, cwd=cwd, env=environment(cwd), capture_output=True, text=True)


def test_snakemake_runs_one_job_per_shard_then_the_merge(sampled_project):
    project = sampled_project
    set_sampling(project, batch_size=2, shards=2)
    shutil.rmtree(project / "samples/demo/bicubic")
    result = run([sys.executable, "-m", "snakemake", "--cores", "2", "samples/demo/bicubic"], project)
    output = result.stdout + result.stderr
    assert output.count("rule sample_shard:") == 2 and "rule sample:" in output
    assert len(list((project / "samples/demo/bicubic").glob("*.png"))) == 3


def test_the_merge_refuses_a_missing_or_doubled_image(tmp_path, monkeypatch):
    import numpy as np

    from pipeline import layout
    from pipeline.stages.sample import SHARD_KEY, merge_shards
    from sr3bench.core.images import write_png

    monkeypatch.chdir(tmp_path)
    image = np.zeros((4, 4, 3), np.uint8)
    for index, names in enumerate([["a.png"], ["c.png"]]):
        folder = layout.sample_shard_dir("demo", "bicubic", index, 2)
        folder.mkdir(parents=True)
        for name in names:
            write_png(image, folder / name)
        (folder / SHARD_KEY).write_text("key")
    with pytest.raises(ValueError, match=r"the shards of bicubic lack 1 test images \(b.png"):
        merge_shards(layout.PresetPaths("demo"), "bicubic", ["a.png", "b.png", "c.png"], 2, "key")
    with pytest.raises(ValueError, match="0-of-2 was sampled with another model or sampling config"):
        merge_shards(layout.PresetPaths("demo"), "bicubic", ["a.png", "c.png"], 2, "another key")
    write_png(image, layout.sample_shard_dir("demo", "bicubic", 1, 2) / "a.png")
    with pytest.raises(ValueError, match="a.png is in shards 0-of-2 and 1-of-2"):
        merge_shards(layout.PresetPaths("demo"), "bicubic", ["a.png", "c.png"], 2, "key")
    assert not layout.samples_dir("demo", "bicubic").exists()  # nothing half-merged


def test_outputs_off_the_method_protocol_are_refused_before_anything_is_written(sampled_project, monkeypatch):
    """One uint8 (H x scale, W x scale, 3) array per LR image: an extra image was paired with
    the wrong test images (PSNR 15 dB instead of 29, no error); a float array failed in PIL."""
    import numpy as np

    import baselines.bicubic as bicubic

    monkeypatch.chdir(sampled_project)
    honest = bicubic.super_resolve
    wrong = {
        "returned 3 images for 2 LR images": lambda images: images[-1:] + images,
        "returned 1 images for 2 LR images": lambda images: images[:1],
        "returned a list for": lambda images: [image.tolist() for image in images],
        "returned an array of float32": lambda images: [image.astype(np.float32) / 255 for image in images],
        "returned an array of shape (96, 96) for": lambda images: [image[..., 0] for image in images],
        "returned an array of shape (96, 96, 4)": lambda images: [np.dstack([i, i[..., :1]]) for i in images],
        "returned an array of shape (48, 48, 3)": lambda images: [image[::2, ::2] for image in images],
    }
    for message, change in wrong.items():
        monkeypatch.setattr(bicubic, "super_resolve", lambda *arguments, change=change: change(honest(*arguments)))
        with pytest.raises(ValueError, match=re.escape(message)) as refused:
            sample(sampled_project, "bicubic")
        assert "bicubic's super_resolve (baselines.bicubic)" in str(refused.value)
        assert not list(sampled_project.glob("cache/demo/samples/bicubic/*/*.png"))  # nothing written
