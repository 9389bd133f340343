"""Issue 26, part 1: a folder of outside outputs scored as a method (docs/outside-outputs.md).
Its checks name the files at fault (missing, wrong size, wrong mode, unreadable; another
scale or crop recognised; other files listed and ignored); the stage table, both engines'
tracking and the report take it as a method of its preset; and a tiny project whose
outside method holds the bicubic outputs gets the bicubic row under both engines."""

import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time

import numpy as np
import pytest
import yaml
from conftest import REPO
from PIL import Image
from projects import dvc_project, run, tiny_params
from test_bad_images import png_16_bit

from baselines.bicubic import bicubic_super_resolve
from pipeline import config, dataset_listing, layout, registry, rule_settings
from pipeline.dvc_yaml import render
from pipeline.stage_table import BY_NAME, Job, Plan, param_values, stage_keys
from pipeline.stages import collect
from sr3bench.core.output_folder import OutputFolderError, check_output_folder, folder_checksum

PAGE = REPO / "docs" / "outside-outputs.md"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2"]
DVC = [sys.executable, "-m", "dvc"]
RNG = np.random.default_rng(26)


def image(width: int, height: int, grey: bool = False) -> Image.Image:
    shape = (height, width) if grey else (height, width, 3)
    return Image.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8))


@pytest.fixture
def test_set(tmp_path):
    """HR test images (a colour square, a colour oblong, a grey square) and a folder of
    outputs that passes: copies of them, the grey one's output in RGB."""
    hr, outputs = tmp_path / "hr", tmp_path / "outputs"
    hr.mkdir()
    outputs.mkdir()
    for name, picture in {"a.png": image(32, 32), "b.png": image(32, 24), "g.png": image(32, 32, grey=True)}.items():
        picture.save(hr / name)
        picture.convert("RGB").save(outputs / name)
    return hr, outputs


def problems(outputs, hr, scale=4) -> str:
    with pytest.raises(OutputFolderError) as error:
        check_output_folder(outputs, hr, "mine", scale)
    return str(error.value)


def test_every_test_image_in_rgb_or_grey_where_its_hr_image_is_grey_passes_and_other_files_are_ignored(test_set):
    hr, outputs = test_set
    Image.open(hr / "g.png").save(outputs / "g.png")  # grey, as its HR image
    image(32, 32).save(outputs / "a_x4_SR.png")
    (outputs / "notes.txt").write_text("how these were made")
    (outputs / "old").mkdir()
    checked = check_output_folder(outputs, hr, "mine", 4)
    assert checked.images == {name: outputs / name for name in ("a.png", "b.png", "g.png")}
    assert checked.extra == ["a_x4_SR.png", "notes.txt", "old"]


def test_missing_outputs_are_named_with_the_files_found_instead(test_set):
    hr, outputs = test_set
    (outputs / "a.png").rename(outputs / "a_x4_SR.png")
    message = problems(outputs, hr)
    assert "1 of 3 test images have no output: a.png" in message and "found instead: a_x4_SR.png" in message


def test_outputs_of_the_wrong_size_are_named_with_their_hr_images_size(test_set):
    hr, outputs = test_set
    image(30, 30).save(outputs / "a.png")
    message = problems(outputs, hr)
    assert "not of their HR image's size (width x height): a.png (30x30, HR 32x32)" in message
    assert "every one" not in message  # one wrong output explains nothing about the folder


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda path: image(32, 32).convert("RGBA").save(path), "a.png (RGBA: an alpha channel)"),
        (lambda path: image(32, 32).convert("P").save(path), "a.png (P: palette colours)"),
        (lambda path: image(32, 32, grey=True).save(path), "a.png (L: grey, and its HR image is colour)"),
        (lambda path: Image.fromarray(np.full((32, 32), 9000, np.uint16)).save(path), "a.png (I;16: 16-bit grey)"),
        (lambda path: png_16_bit(path, np.full((32, 32, 3), 9000, np.uint16), 2), "a.png (RGB: 16-bit colour)"),
    ],
    ids=["rgba", "palette", "grey", "16-bit-grey", "16-bit-colour"],
)
def test_outputs_that_are_not_8_bit_rgb_are_named_with_their_mode(test_set, make, expected):
    hr, outputs = test_set
    make(outputs / "a.png")
    message = problems(outputs, hr)
    assert f"not 8-bit RGB: {expected}" in message
    assert "b.png" not in message and "g.png" not in message


def test_an_output_with_an_exif_orientation_is_refused(test_set):
    """Viewers turn it; the metrics would read its stored pixels (scored a rotated image)."""
    hr, outputs = test_set
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    Image.open(outputs / "a.png").save(outputs / "a.png", exif=exif)
    message = problems(outputs, hr)
    assert "with an EXIF orientation: a.png (6)" in message and "save it upright" in message


def test_a_broken_link_is_named_as_one(test_set, tmp_path):
    """It read "has no output: a.png (... found instead: a.png)"."""
    hr, outputs = test_set
    (outputs / "a.png").unlink()
    (outputs / "a.png").symlink_to(tmp_path / "gone.png")
    message = problems(outputs, hr)
    assert "broken links (their targets do not exist): a.png" in message and "found instead" not in message


def test_an_unreadable_output_is_named(test_set):
    hr, outputs = test_set
    (outputs / "b.png").write_bytes((outputs / "b.png").read_bytes()[:200])  # truncated
    assert "not readable images: b.png" in problems(outputs, hr)


@pytest.mark.parametrize(
    "resize, expected",
    [
        (lambda w, h: (w // 4, h // 4), "every one has its LR image's size (HR / 4): the LR inputs themselves"),
        (lambda w, h: (w // 2, h // 2), "every one is its HR image's size / 2: outputs of another scale"),
        (lambda w, h: (w * 2, h * 2), "every one is 2 times its HR image's size: outputs of another scale"),
        (lambda w, h: (w - 8, h - 8), "every one is its HR image less 4 pixels on each side: a border crop?"),
        (lambda w, h: (w + 6, h + 6), "every one is its HR image plus 3 pixels on each side: the HR test images"),
        (lambda w, h: (20, 20), "every one is 20x20, smaller than its HR image: a crop of a fixed size"),
    ],
    ids=["lr-size", "half", "double", "border-crop", "uncropped", "fixed-crop"],
)
def test_a_folder_of_another_scale_or_crop_is_recognised(test_set, resize, expected):
    hr, outputs = test_set
    for path in hr.iterdir():
        image(*resize(*Image.open(path).size)).save(outputs / path.name)
    message = problems(outputs, hr)
    assert "a.png (" in message and "b.png (" in message and expected in message, message


def outside_params(folder, methods=("bicubic", "mine")) -> dict:
    params = tiny_params()
    params["methods"] = list(methods)
    params["presets"]["demo"]["external"] = {"mine": {"folder": str(folder), "title": "My method"}}
    return params


def test_an_outside_method_is_a_method_of_its_preset():
    resolved = config.resolve(outside_params("outside/mine"))
    preset = resolved["presets"]["demo"]
    plan = Plan.of(resolved, "demo")
    assert plan.external == ["mine"] and plan.sampled == ["bicubic"] and plan.members("method") == ["bicubic", "mine"]
    assert registry.title("mine", preset) == "My method" and preset["external"]["mine"]["citation"] == ""
    assert not registry.entry("mine", preset).trained and plan.trained == [] and plan.diverse == []
    with pytest.raises(registry.UnknownMethodError, match="outside methods: mine"):
        registry.entry("yours", preset)
    params = outside_params("outside/mine")
    params["presets"]["demo"]["study"] = {"methods": ["mine"]}
    assert Plan.of(config.resolve(params), "demo").study_methods == ["mine"]
    refused = [
        (
            "methods",
            ["bicubic", "mine@fast"],
            "variants (@name) are of trained methods only; mine is an outside method",
        ),
        ("external", {"bicubic": {"folder": "x", "title": "B"}}, "external.bicubic: bicubic is a registered method"),
        ("external", {"mine": {"folder": "x"}}, "'title' is a required property"),
        (  # collect would replace the user's folder with its copy of the outputs: lost work
            "external",
            {"mine": {"folder": "samples/demo/mine", "title": "M"}},
            "external.mine.folder: samples/demo/mine is under samples/, which the pipeline writes and replaces",
        ),
        ("external", {"mine": {"folder": "./results/../data/x", "title": "M"}}, "is under data/"),
    ]
    for key, value, expected in refused:
        params = outside_params("outside/mine")
        if key == "methods":
            params["methods"] = value
        else:
            params["presets"]["demo"]["external"] = value
        with pytest.raises(config.ConfigError, match=re.escape(expected)):
            config.resolve(params)


class Wildcards(dict):
    __getattr__ = dict.__getitem__


def test_both_engines_track_the_folder_its_path_and_the_title_and_citation_for_the_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "outside" / "mine"
    resolved = config.resolve(outside_params(folder))
    plan = Plan.of(resolved, "demo")
    stages = yaml.safe_load(render(resolved))["stages"]
    stage, wildcards = BY_NAME["collect"], Wildcards(preset="demo", method="mine")
    listing = str(layout.outside_listing_file("demo", "mine"))
    inputs = rule_settings.inputs(stage, resolved, "demo")(wildcards)
    deps = {dep.replace("${preset}", "demo") for dep in stages["collect_mine"]["deps"]}
    assert listing in inputs and set(inputs) - {listing} | {str(folder)} == deps
    assert set(stages) == {"prepare", "sample_bicubic", "collect_mine", "evaluate_bicubic", "evaluate_mine"} | {
        "report",
        "front_page",
    }
    assert rule_settings.tracked_values(resolved, stage)(wildcards) == {
        "presets.demo.external.mine.folder": str(folder)
    }
    assert stages["collect_mine"]["params"] == ["presets.${preset}.external.mine.folder"]
    report_keys = stage_keys(BY_NAME["report"], "demo", None, plan)
    assert (
        "presets.demo.external.mine" in report_keys and "presets.${preset}.external.mine" in stages["report"]["params"]
    )
    assert param_values(resolved, report_keys)["presets.demo.external.mine"]["title"] == "My method"


def test_the_listing_of_an_outside_folder_changes_with_its_images_only(test_set, tmp_path, monkeypatch):
    """What the Snakefile tracks: the folder's top-level images; touched, the listing is
    not rewritten; a changed image rewrites it."""
    hr, outputs = test_set
    monkeypatch.chdir(tmp_path)
    (outputs / "old").mkdir()
    image(8, 8).save(outputs / "old" / "a.png")  # below the top level: not what collect reads
    listing = dataset_listing.refresh("demo", [outputs], "mine")
    assert listing == layout.outside_listing_file("demo", "mine")
    assert sorted(json.loads(listing.read_text())[str(outputs)]) == ["a.png", "b.png", "g.png"]
    written, text = listing.stat().st_mtime_ns, listing.read_text()
    later = time.time() + 5
    for path in outputs.glob("*.png"):
        os.utime(path, (later, later))
    assert dataset_listing.refresh("demo", [outputs], "mine").stat().st_mtime_ns == written
    image(32, 32).save(outputs / "a.png")
    assert dataset_listing.refresh("demo", [outputs], "mine").read_text() != text
    assert dataset_listing.refresh("demo", [outputs]) == layout.dataset_listing_file("demo")  # the dataset's own


def test_the_collect_stage_copies_the_test_images_warns_of_the_others_and_sampling_refuses(
    test_set, tmp_path, monkeypatch, caplog
):
    hr, outputs = test_set
    (outputs / "notes.txt").write_text("how these were made")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(hr, layout.split_dir("demo", "test", "hr"))
    job = Job(config.resolve(outside_params(outputs)), "demo", "mine")
    with caplog.at_level(logging.WARNING):
        collect.run(job)
    copied = job.paths.samples("mine")
    assert sorted(p.name for p in copied.iterdir()) == ["a.png", "b.png", "g.png"]
    assert all((copied / n).read_bytes() == (outputs / n).read_bytes() for n in ("a.png", "b.png", "g.png"))
    assert "files of" in caplog.text and "are not test images and are ignored (1): notes.txt" in caplog.text
    from pipeline.stages import sample

    with pytest.raises(ValueError, match="mine is an outside method .*sr3bench collect --preset demo --method mine"):
        sample.run(job)


def page_blocks(kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```", PAGE.read_text(), flags=re.M | re.S)


def page_commands(block: str) -> list[list[str]]:
    """The commands of a bash block of the page, without their comments."""
    return [line.split("#", 1)[0].split() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def metrics_rows(project) -> dict[str, list[str]]:
    """method -> its other columns in reports/demo/metrics.csv, as written (every digit)."""
    lines = (project / layout.report_file("demo", "metrics.csv")).read_text().splitlines()
    return {line.split(",", 1)[0]: line.split(",")[1:] for line in lines[1:]}


def changed_stages(status: str) -> list[str]:
    """The stages `dvc status` names (their changed deps and outputs below each)."""
    return re.findall(r"^(\S+):$", status, flags=re.M)


def commands(dry_run: str) -> set[str]:
    """The stage commands a dry run plans, without their threads and log."""
    return {
        line[line.index("sr3bench ") :].split(" --threads")[0] for line in dry_run.splitlines() if "sr3bench " in line
    }


@pytest.mark.slow
def test_the_pages_folder_of_bicubic_outputs_gets_the_bicubic_row_and_both_engines_track_its_images(tmp_path):
    """The page's config and commands on the tiny preset, its outside method a folder of the
    bicubic outputs: under Snakemake its row equals bicubic's to every digit; for both
    engines a changed image re-runs the method's collect and evaluate (and the report),
    nothing of bicubic. DVC, given the Snakemake run's outputs, runs the collect stage (the
    evaluate it then plans is the command the Snakemake run ran: each evaluate costs some
    10 s of FID, so the test runs two)."""
    (declared,) = page_blocks("yaml")
    params = tiny_params()
    params["methods"] = yaml.safe_load(declared)["methods"]
    params["presets"]["demo"]["external"] = yaml.safe_load(declared)["presets"]["demo"]["external"]
    project = dvc_project(tmp_path / "project", params)
    folder = project / params["presets"]["demo"]["external"]["mine"]["folder"]
    prepare, score = page_blocks("bash")

    for command in page_commands(prepare):
        run(command, project)
    folder.mkdir(parents=True)
    for path in sorted((project / layout.split_dir("demo", "test", "lr")).iterdir()):  # "my method": bicubic's outputs
        Image.fromarray(bicubic_super_resolve(np.asarray(Image.open(path)), 4)).save(folder / path.name)
    for command in page_commands(score):
        run(command, project)

    rows = metrics_rows(project)
    assert list(rows) == ["bicubic", "mine"] and rows["mine"] == rows["bicubic"]
    provenance = json.loads((project / layout.report_file("demo", "provenance.json")).read_text())
    images = {path.name: path for path in folder.iterdir()}
    assert provenance["outside_outputs"]["mine"] == {
        "title": "My method",
        "citation": params["presets"]["demo"]["external"]["mine"]["citation"],
        "folder": "outside/mine",
        **folder_checksum(images),
    }
    by_hand = "".join(f"{n}:{hashlib.sha256(images[n].read_bytes()).hexdigest()};" for n in sorted(images))
    assert folder_checksum(images)["sha256"] == hashlib.sha256(by_hand.encode()).hexdigest()[:16]  # as the page says
    assert "My method" in (project / layout.report_file("demo", "index.html")).read_text()

    run([*DVC, "commit", "-f", "-q"], project)  # DVC takes the Snakemake run's outputs as its own
    assert "Data and pipelines are up to date" in run([*DVC, "status"], project).stdout
    changed = folder / sorted(images)[0]
    pixels = np.array(Image.open(changed))
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(changed)
    assert commands(run([*SNAKEMAKE, "--dry-run", "--printshellcmds"], project).stdout) == {
        "sr3bench collect --preset demo --method mine",
        "sr3bench evaluate --preset demo --method mine",
        "sr3bench report --preset demo",
        "sr3bench front-page",
    }
    status = run([*DVC, "status"], project).stdout
    assert changed_stages(status) == ["collect_mine"] and "outside/mine" in status, status
    repro = run([*DVC, "repro", "collect_mine"], project)  # its evaluate, as Snakemake's, runs the same command
    assert "Running stage 'collect_mine'" in repro.stdout + repro.stderr
    assert set(changed_stages(run([*DVC, "status"], project).stdout)) == {"evaluate_mine", "report"}


def test_a_link_to_a_folder_the_pipeline_writes_is_refused_as_that_folder(tmp_path, monkeypatch):
    """collect copied samples/demo/mine onto itself through a link elsewhere (and dropped
    its other files); the path's own spelling was refused, the link was not."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "samples" / "demo" / "mine").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "link").symlink_to(tmp_path / "samples" / "demo" / "mine")
    with pytest.raises(config.ConfigError, match=re.escape("is under samples/, which the pipeline writes")):
        config.resolve(outside_params(str(tmp_path / "elsewhere" / "link")))
    config.resolve(outside_params(str(tmp_path / "elsewhere")))  # a folder of its own: accepted
