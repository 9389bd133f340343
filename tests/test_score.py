"""``sr3bench score`` (sr3bench/metrics/score.py, docs/score-images.md): a folder of SR images
against a folder of HR images, with the evaluate stage's code and protocol record.

The commands run the real CLI in a subprocess, with one thread (FID and LPIPS are several
times faster so on a small, busy machine). Tests that compute FID or LPIPS need
the provisioned metric weights (``make weights``) and skip without them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO
from inception_fixtures import (
    SR_COLOURS,
    inception_score_by_hand,
    save_named,
    synthetic_inception,
    unbiased_logits,
    write_colours,
)
from PIL import Image

from sr3bench.core.images import list_images, read_image, write_png
from sr3bench.core.resize import downsample, upsample
from sr3bench.metrics import weights as W
from sr3bench.metrics.score import FID_MIN_IMAGES, ScoreError, score
from sr3bench.metrics.table import by_name, names

PUBLISHED_SET5_BICUBIC_X4 = (28.42, 0.8104)  # EDSR and RCAN tables: PSNR (dB), SSIM; Y channel, 4-pixel crop
WEIGHTS = Path(os.environ.get(W.WEIGHTS_ENV) or REPO / "weights")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
PAGE = REPO / "docs" / "score-images.md"


def sr3bench(*arguments, cwd: Path) -> subprocess.CompletedProcess:
    """The CLI, with one thread (``--threads 1`` added to ``score``) and the project's metric weights."""
    env = {**os.environ, **ONE_THREAD, W.WEIGHTS_ENV: str(WEIGHTS)}
    command = [sys.executable, "-m", "pipeline.cli", *arguments, *(["--threads", "1"] if "score" in arguments else [])]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def weights() -> Path:
    status = W.weights_status(WEIGHTS)
    if not (status["inception"]["present"] and status["alexnet"]["present"]):
        pytest.skip(f"metric weights are not provisioned in {WEIGHTS}: `make weights` (sr3bench provision-weights)")
    return WEIGHTS


def synthetic(root: Path, count: int = 3, size: int = 48, scale: int = 4, grey: tuple = ()) -> dict[str, Path]:
    """HR images (smooth patterns with an edge), their LR images (the project's
    downsampling) and bicubic SR images (RGB), one folder each, named 0000.png, ...; the
    HR and LR images of the indices in ``grey`` are one-channel files."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    folders = {role: root / role for role in ("hr", "lr", "sr")}
    for index in range(count):
        frequency, phase = rng.uniform(0.05, 0.3, (3, 2)), rng.uniform(0, 6.3, 3)
        channels = [128 + 90 * np.sin(frequency[c, 0] * xx + frequency[c, 1] * yy + phase[c]) for c in range(3)]
        hr = np.stack(channels, axis=-1)
        hr[: size // 2, : size // 3] = rng.uniform(0, 255, 3)
        hr = hr.clip(0, 255).astype(np.uint8)
        hr = hr[..., 1] if index in grey else hr
        lr = downsample(hr, scale)
        sr = upsample(lr, scale)
        for role, image in (("hr", hr), ("lr", lr), ("sr", np.dstack([sr] * 3) if sr.ndim == 2 else sr)):
            write_png(image, folders[role] / f"{index:04d}.png")
    return folders


def table_row(stdout: str) -> dict[str, str]:
    """The printed Markdown table as {column header: cell}."""
    rows = [line for line in stdout.splitlines() if line.startswith("| ")]
    header, values = ([cell.strip() for cell in row.strip("|").split("|")] for row in rows[:2])
    return dict(zip(header, values))


# ----------------------------------------------------------------------------- Set5


@pytest.fixture
def set5_bicubic(sr_benchmarks, tmp_path_factory) -> Path:
    """The bicubic method's outputs on Set5's provided LR images, made as the pipeline's
    sample stage makes them (baselines/bicubic.py)."""
    from baselines.bicubic import super_resolve

    paths = list_images(sr_benchmarks / "Set5" / "LR_bicubic_x4")
    images = super_resolve(None, [read_image(path) for path in paths], 4, None, {}, lambda fraction: None)
    out = tmp_path_factory.mktemp("set5") / "bicubic"
    for path, image in zip(paths, images):
        write_png(image, out / path.name)
    return out


def test_the_set5_bicubic_outputs_give_the_published_numbers(sr_benchmarks, set5_bicubic, tmp_path):
    """28.42 dB / 0.8104 (Y channel, 4-pixel crop) within 0.01 dB / 0.001: the printed table
    and the unrounded values of --json."""
    set5 = sr_benchmarks / "Set5"
    options = ["--sr", set5_bicubic, "--hr", set5 / "HR", "--lr", set5 / "LR_bicubic_x4", "--color", "y", "--crop", "4"]
    status = W.weights_status(WEIGHTS)
    full = status["inception"]["present"] and status["alexnet"]["present"]
    printed = sr3bench("score", *map(str, options), *([] if full else ["--no-fid", "--no-lpips"]), cwd=tmp_path)
    print(printed.stdout)
    assert printed.returncode == 0, printed.stderr
    row = table_row(printed.stdout)
    psnr, ssim = float(row[by_name("psnr").header]), float(row[by_name("ssim").header])
    published_psnr, published_ssim = PUBLISHED_SET5_BICUBIC_X4
    assert row["images"] == "5" and row[by_name("consistency").header] != "n/a"
    assert "Per-image values: bicubic-per-image.csv" in printed.stdout
    exact = sr3bench("score", *map(str, options), "--no-fid", "--no-lpips", "--json", cwd=tmp_path)
    metrics = json.loads(exact.stdout)["metrics"]
    assert abs(metrics["psnr"] - published_psnr) <= 0.01 and abs(metrics["ssim"] - published_ssim) <= 0.001, metrics
    assert abs(psnr - published_psnr) <= 0.01 and abs(ssim - published_ssim) <= 0.001, (psnr, ssim)
    per_image = pd.read_csv(tmp_path / "bicubic-per-image.csv")
    assert len(per_image) == 5 and by_name("psnr").format(per_image["psnr"].mean()) == row[by_name("psnr").header]
    if full:
        assert f"below {FID_MIN_IMAGES} its covariance estimate is rank-deficient" in printed.stdout
        assert float(row[by_name("fid").header]) > 0


# ----------------------------------------------------------------------------- the CLI on synthetic images


@pytest.fixture(scope="module")
def scored(weights, tmp_path_factory) -> tuple[dict, dict, Path]:
    """One full run of the CLI (FID and LPIPS included) on 4 synthetic images, as JSON."""
    root = tmp_path_factory.mktemp("score")
    folders = synthetic(root, count=4, grey=(1,))  # a grey HR image is scored in grey
    out = root / "per-image.csv"
    arguments = ["--sr", folders["sr"], "--hr", folders["hr"], "--lr", folders["lr"], "--color", "y", "--crop", "2"]
    run = sr3bench("score", *map(str, arguments), "--json", "--out", str(out), "--weights", str(weights), cwd=root)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout), folders, out


def test_the_per_image_csv_holds_the_evaluate_stages_values(scored, weights):
    from sr3bench.metrics.evaluate import evaluate_method

    result, folders, out = scored
    protocol = {"color": "y", "border_crop": 2}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the command ran: LPIPS's sums in the same order
    try:
        table, record, _ = evaluate_method("m", folders["hr"], folders["lr"], folders["sr"], {}, protocol, 4, weights)
    finally:
        torch.set_num_threads(threads)
    columns = ["name", *names(per="image")]
    assert out.read_text() == table[columns].to_csv(index=False)  # the same values, to every digit
    assert result["protocol"] == record and result["per_image_csv"] == str(out)
    # an unconditional generator's rows, and a cascade stage fed by a generator, compute no
    # LPIPS but record the same protocol: the report compares every method's
    for options in ({"paired": False}, {"generator": "sr3_base of preset faces16_base_small"}):
        images = (folders["hr"], folders["lr"], folders["sr"])
        _, other, _ = evaluate_method("m", *images, {}, protocol, 4, weights, **options)
        assert other == record, options
    trunk = W.offline_alexnet_trunk(str(weights))  # which AlexNet weights LPIPS used, as for Inception's
    if trunk is not None:
        assert (
            f"AlexNet trunk {trunk[0].name} from {trunk[1]['source']} (SHA-256 {trunk[1]['sha256'][:16]}"
            in (record["lpips"])
        )
    else:
        assert record["lpips"].endswith("AlexNet trunk: torchvision's ImageNet download")


def test_the_json_has_every_metric_and_the_fid_warning(scored):
    result = scored[0]
    assert set(result["metrics"]) == set(names()) and result["n_images"] == 4
    for metric in ("psnr", "ssim", "consistency", "lpips", "fid", "kid"):
        assert isinstance(result["metrics"][metric], float), metric
    if result["metrics"]["is"] is None:  # the offline Inception weights have no classifier head
        assert "classifier" in result["unavailable"]["is"]
    assert len(result["warnings"]) == 1 and f"below {FID_MIN_IMAGES}" in result["warnings"][0]
    assert "over 4 images" in result["warnings"][0]
    assert result["set_metrics"]["n_sr"] == result["set_metrics"]["n_hr"] == 4


def test_protocol_of_a_preset_applies_its_protocol_and_refuses_a_contradiction(tmp_path):
    from pipeline.cli import preset_protocol
    from sr3bench.metrics.evaluate import protocol_record

    folders = synthetic(tmp_path)
    options = ["score", "--sr", str(folders["sr"]), "--hr", str(folders["hr"]), "--params", str(REPO / "params.yaml")]
    run = sr3bench(*options, "--protocol-of", "benchmarks", "--json", "--no-fid", "--no-lpips", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    protocol = {"color": "y", "crop": 4, "scale": 4, "is_splits": 10, "inception_file": None}
    assert preset_protocol("benchmarks", REPO / "params.yaml") == protocol
    assert result["protocol"] == protocol_record({"color": "y", "border_crop": 4}, 4) | {"fid_kid_is": "not requested"}
    assert result["metrics"]["consistency"] is not None and "made from the HR images" in result["lr"]

    clash = sr3bench(*options, "--protocol-of", "benchmarks", "--color", "rgb", cwd=tmp_path)
    assert clash.returncode == 2 and "--color rgb contradicts it" in clash.stderr, clash.stderr


def test_an_inception_file_gives_is_with_its_spread_and_protocol_of_reads_the_params_one(tmp_path):
    """IS of the synthetic Inception file (tests/inception_fixtures.py) equals the hand
    computation, from --inception-weights and from the params file's weights.inception."""
    original = save_named(synthetic_inception(), tmp_path / "weights", "weights-inception-2015-12-05-")
    sr = write_colours(tmp_path / "sr", SR_COLOURS)
    hr = write_colours(tmp_path / "hr", SR_COLOURS[::-1])  # the same names, other colours
    options = ["score", "--sr", str(sr), "--hr", str(hr)]
    run = sr3bench(*options, "--json", "--inception-weights", str(original), "--is-splits", "3", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert "at least 31x31 pixels, and 6 of 6 are smaller (the smallest 24x24)" in result["unavailable"]["lpips"]
    expected, expected_std = inception_score_by_hand(unbiased_logits(SR_COLOURS), splits=3)
    assert result["metrics"]["is"] == pytest.approx(expected, rel=1e-6) and "is" not in result["unavailable"]
    assert result["set_metrics"]["is_std"] == pytest.approx(expected_std, rel=1e-6)
    assert result["set_metrics"]["is_splits"] == 3 and "3 splits" in result["protocol"]["inception_score"]
    assert result["set_metrics"]["inception_record"]["file"] == str(original)

    params = tmp_path / "params.yaml"
    text = (REPO / "params.yaml").read_text()
    assert text.count("  inception: null\n") == 1
    params.write_text(text.replace("  inception: null\n", f"  inception: {original}\n"))
    table = sr3bench(*options, "--protocol-of", "benchmarks", "--params", str(params), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    is_cell = table_row(table.stdout)[by_name("is").header]
    assert is_cell == f"{by_name('is').format(expected)} ± {by_name('is').format(expected_std)}"
    assert "over 3 splits of the SR images" in table.stdout  # protocol.is_splits 10, six images: three splits

    wrong = original.with_name("weights-inception-2015-12-05-00000000.pth")
    shutil.copy(original, wrong)
    preset_and_option = sr3bench(
        *options,
        "--protocol-of",
        "benchmarks",
        "--params",
        str(params),
        "--inception-weights",
        str(wrong),
        cwd=tmp_path,
    )
    assert preset_and_option.returncode == 1 and str(wrong) in preset_and_option.stderr  # the option wins
    assert "Traceback" not in preset_and_option.stderr
    refused = sr3bench(*options, "--inception-weights", str(wrong), cwd=tmp_path)
    assert refused.returncode == 1 and str(wrong) in refused.stderr and "SHA-256" in refused.stderr, refused.stderr
    assert "params.yaml" not in refused.stderr  # the command's fix is its option, not the pipeline's key
    assert refused.stderr.count(str(wrong)) == 1
    params.write_text(text.replace("  inception: null\n", f"  inception: {wrong}\n"))
    from_params = sr3bench(*options, "--protocol-of", "benchmarks", "--params", str(params), cwd=tmp_path)
    assert from_params.returncode == 1 and "weights.inception" in from_params.stderr  # the file's own setting
    assert "--inception-weights" not in from_params.stderr, from_params.stderr
    bad_splits = sr3bench(*options, "--inception-weights", str(original), "--is-splits", "0", cwd=tmp_path)
    assert bad_splits.returncode == 2 and "--is-splits 0" in bad_splits.stderr


def test_a_folder_error_names_the_files_and_exits_1(tmp_path):
    folders = synthetic(tmp_path)
    (folders["sr"] / "0001.png").unlink()
    (folders["sr"] / "notes.txt").write_text("x")
    run = sr3bench("score", "--sr", str(folders["sr"]), "--hr", str(folders["hr"]), "--no-fid", cwd=tmp_path)
    assert run.returncode == 1 and "notes.txt" in run.stderr and "move it out" in run.stderr, run.stderr
    assert not list(tmp_path.glob("*.csv"))


# ----------------------------------------------------------------------------- the Python function


def quick(folders, **options):
    return score(folders["sr"], folders["hr"], fid=False, lpips=False, **options)


def test_consistency_only_with_the_lr_images_or_the_scale(tmp_path):
    folders = synthetic(tmp_path)
    without = quick(folders)
    assert without.metrics["consistency"] is None and "--lr" in without.unavailable["consistency"]
    assert without.per_image["consistency"].isna().all() and without.protocol["scale"] is None
    with_lr = quick(folders, lr_dir=folders["lr"])
    assert with_lr.protocol["scale"] == 4 and with_lr.metrics["consistency"] > 0  # the scale read from the sizes
    with_scale = quick(folders, scale=4)  # LR made from HR by the same operator that made these LR images
    assert with_scale.per_image["consistency"].tolist() == with_lr.per_image["consistency"].tolist()
    assert "consistency" not in with_lr.unavailable and "made from the HR images" in with_scale.lr
    assert with_lr.metrics["psnr"] == without.metrics["psnr"] and "n/a" in without.table()


def test_the_table_prints_the_metric_tables_decimals(tmp_path):
    result = quick(synthetic(tmp_path), lr_dir=tmp_path / "lr", color="y", crop=4)
    row = table_row(result.table())
    for metric in ("psnr", "ssim", "consistency"):
        assert row[by_name(metric).header] == by_name(metric).format(result.metrics[metric])
    assert row[by_name("fid").header] == "n/a" and result.unavailable["fid"] == "not requested"
    assert result.warnings == []  # no FID, no warning


def test_unavailable_weights_leave_their_columns_empty_with_the_reason(tmp_path, monkeypatch):
    from sr3bench.metrics import fid_kid_is, lpips_metric

    def missing(weights_dir, *_):
        raise W.WeightsUnavailableError(W.missing_message("the weights", OSError("no network"), weights_dir))

    monkeypatch.setattr(lpips_metric, "lpips_model", missing)
    monkeypatch.setattr(fid_kid_is, "resolve_inception_weights", missing)
    folders = synthetic(tmp_path)
    result = score(folders["sr"], folders["hr"], weights_dir=tmp_path / "none")
    for metric in ("lpips", "fid", "kid", "is"):
        assert result.metrics[metric] is None and "sr3bench provision-weights" in result.unavailable[metric]
    assert result.metrics["psnr"] > 20 and result.warnings == []
    row = table_row(result.table())
    assert row[by_name("lpips").header] == row[by_name("fid").header] == "n/a"
    assert "- LPIPS: the weights are not provisioned" in result.table()


def save(image: np.ndarray, path: Path, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, **options)


def break_names(folders):
    (folders["sr"] / "0001.png").unlink()
    shutil.copy(folders["sr"] / "0000.png", folders["sr"] / "zzz.png")
    shutil.move(folders["sr"] / "0002.png", folders["sr"] / "0002.jpg")


def sizes(factor: float):
    def change(folders):
        for path in list_images(folders["sr"]):
            image = Image.open(path)
            image.resize((int(image.width * factor), int(image.height * factor))).save(path)

    return change


def sizes_plus(margin: int):
    def change(folders):
        for path in list_images(folders["sr"]):
            save(np.pad(read_image(path), ((margin, margin), (margin, margin), (0, 0)), mode="edge"), path)

    return change


def cropped(folders):
    for path in list_images(folders["sr"]):
        save(read_image(path)[4:-4, 4:-4], path)


def cut_to_a_multiple(folders):
    for path in list_images(folders["hr"]):  # HR 50x50: the SR images are 48x48
        save(np.pad(read_image(path), ((0, 2), (0, 2), (0, 0))), path)


def stray(name: str, folder: bool = False):
    def add(folders):
        (folders["sr"] / name).mkdir() if folder else (folders["sr"] / name).write_bytes(b"not an image")

    return add


def damaged(folders):
    (folders["sr"] / "0002.png").write_bytes((folders["sr"] / "0002.png").read_bytes()[:100])


def empty(folders):
    for path in list_images(folders["sr"]):
        path.unlink()


def sixteen_bit(folders):
    save(read_image(folders["sr"] / "0000.png")[..., 0].astype(np.uint16) * 257, folders["sr"] / "0000.png")


def transparent(folders):
    image = np.dstack([read_image(folders["sr"] / "0000.png"), np.full((48, 48), 128, dtype=np.uint8)])
    save(image, folders["sr"] / "0000.png")


def sixteen_bit_tiff(folders):
    """Pillow opens a 16-bit RGB TIFF as mode RGB, each sample shifted to 8 bits."""
    import tifffile

    for role in ("sr", "hr"):
        image = read_image(folders[role] / "0000.png")
        (folders[role] / "0000.png").unlink()
        if role == "sr":
            tifffile.imwrite(folders[role] / "0000.tif", image.astype(np.uint16) * 257, photometric="rgb")
        else:
            save(image, folders[role] / "0000.tif")


def palette_with_a_transparent_index(folders):
    image = Image.fromarray(read_image(folders["sr"] / "0000.png")).convert("P")
    image.save(folders["sr"] / "0000.png", transparency=image.getpixel((0, 0)))


def recoloured(mode: str):
    """The SR image 0000.png saved opaque in ``mode`` (palette, grey of a colour HR image, RGBA)."""

    def change(folders):
        Image.fromarray(read_image(folders["sr"] / "0000.png")).convert(mode).save(folders["sr"] / "0000.png")

    return change


def exif_turned(folders):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: viewers turn it 90 degrees clockwise
    Image.open(folders["sr"] / "0001.png").save(folders["sr"] / "0001.png", exif=exif)


def lr_of_another_scale(folders):
    for path in list_images(folders["lr"]):
        save(downsample(read_image(folders["hr"] / path.name), 2), path)


ERRORS = {
    "missing and extra names": (
        break_names,
        {},
        [r"missing from SR \(2\): 0001.png, 0002.png", r"in SR but not in HR \(2\): 0002.jpg, zzz.png", "suffix"],
    ),
    "SR images of the LR size": (
        sizes(0.25),
        {},
        [
            "3 of the 3 SR images",
            "0000.png: SR 12x12, HR 48x48",
            r"HR / 4: LR images, or the output of another scale\?",
        ],
    ),
    "SR images of the LR size, the scale given": (
        sizes(0.25),
        {"scale": 4},
        [r"SR 12x12, HR 48x48 \(its LR image's size \(HR / 4\): the LR input itself"],
    ),
    "SR images larger than HR by a margin": (sizes_plus(3), {}, [r"SR 54x54, HR 48x48 \(3 px larger on each side"]),
    "SR images twice the HR size": (sizes(2), {}, ["SR 96x96, HR 48x48", "2 times the HR size: the output of another"]),
    "border-cropped SR images": (cropped, {}, ["SR 40x40, HR 48x48", "4 px smaller on each side: border-cropped"]),
    "HR not cut to a multiple": (
        cut_to_a_multiple,
        {},
        ["SR 48x48, HR 50x50", "cut down to a multiple of 3, 4, 6 or 8: crop the HR images the same way"],
    ),
    "HR not cut to a multiple of the scale given": (cut_to_a_multiple, {"scale": 4}, [r"a multiple of 4: crop"]),
    "a file that is not an image": (stray("notes.txt"), {}, ["an entry that is not an image file", "notes.txt"]),
    "a folder in the SR folder": (stray("extra", folder=True), {}, [r"extra \(a folder\)"]),
    "a broken link": (
        lambda folders: (
            (folders["sr"] / "0000.png").unlink() or (folders["sr"] / "0000.png").symlink_to("/nowhere.png")
        ),
        {},
        [r"0000.png \(a broken link\)"],
    ),
    "an image that does not decode": (damaged, {}, [r"0002.png cannot be read as an image"]),
    "an empty folder": (empty, {}, ["the SR folder .* is empty: no images to score"]),
    "a missing folder": (lambda folders: shutil.rmtree(folders["sr"]), {}, ["the SR folder .* does not exist"]),
    "a 16-bit image": (sixteen_bit, {}, ["0000.png is not an 8-bit image"]),
    "a transparent image": (transparent, {}, ["0000.png has transparent pixels"]),
    "a 16-bit TIFF": (sixteen_bit_tiff, {}, ["0000.tif is not an 8-bit image"]),
    "an image with an EXIF orientation": (exif_turned, {}, ["0001.png has the EXIF orientation 6", "upright"]),
    "a palette image with a transparent index": (palette_with_a_transparent_index, {}, ["0000.png has transparent"]),
    "an opaque palette image (collect refuses it too)": (
        recoloured("P"),
        {},
        [r"1 of the 3 SR images .* are not 8-bit RGB: 0000.png \(P: palette colours\)"],
    ),
    "a grey image of a colour HR image": (recoloured("L"), {}, [r"0000.png \(L: grey, and its HR image is colour\)"]),
    "an opaque RGBA image": (recoloured("RGBA"), {}, [r"0000.png \(RGBA: an alpha channel\)"]),
    "a crop that leaves less than SSIM's window": (
        lambda folders: None,
        {"crop": 19},
        [r"SSIM's 11x11 Gaussian window needs images of at least 11x11 pixels after the border crop", "lower --crop"],
    ),
    "LR images of another scale": (lr_of_another_scale, {"lr": True, "scale": 4}, ["not the HR size divided by 4"]),
    "the HR folder given as the LR one": (
        lambda folders: shutil.rmtree(folders["lr"]) or shutil.copytree(folders["hr"], folders["lr"]),
        {"lr": True},
        [r"have their HR images' sizes \(scale 1\): give the folder of LR inputs as --lr"],
    ),
    "HR sizes the scale does not divide": (lambda folders: None, {"scale": 5}, [r"multiples of 5: 0000.png \(48x48\)"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_each_folder_problem_is_a_clear_error(tmp_path, case):
    change, options, messages = ERRORS[case]
    folders = synthetic(tmp_path)
    change(folders)
    lr_dir = folders["lr"] if options.get("lr") else None
    with pytest.raises(ScoreError) as raised:
        quick(folders, lr_dir=lr_dir, scale=options.get("scale"), crop=options.get("crop", 0))
    for message in messages:
        assert re.search(message, str(raised.value)), (message, str(raised.value))


def test_names_that_differ_only_in_their_unicode_form_are_said_to(tmp_path):
    folders = synthetic(tmp_path)
    nfc, nfd = "caf\u00e9.png", "cafe\u0301.png"  # the same name, as Linux and macOS write it
    (folders["hr"] / "0000.png").rename(folders["hr"] / nfc)
    (folders["sr"] / "0000.png").rename(folders["sr"] / nfd)
    with pytest.raises(ScoreError, match="differ only in how their accented letters are encoded"):
        quick(folders)


def test_names_with_one_prefix_or_ending_more_than_the_hr_names_are_said_to_have_it(tmp_path):
    """A multi-set preset's samples (Set5_0000.png) scored against one set's HR folder, or
    outputs named as many SR codes name them (0000_x4.png), listed only the names."""
    folders = synthetic(tmp_path)
    for image in sorted(folders["sr"].iterdir()):
        image.rename(folders["sr"] / f"Set5_{image.name}")
    shutil.copy(folders["sr"] / "Set5_0000.png", folders["sr"] / "Set14_0000.png")
    with pytest.raises(ScoreError) as prefixed:
        quick(folders)
    assert "with a prefix, 'Set5_' (Set5_0000.png for 0000.png)" in str(prefixed.value)
    assert "data/<preset>/test/hr" in str(prefixed.value)
    (folders["sr"] / "Set14_0000.png").unlink()
    for image in sorted(folders["sr"].iterdir()):
        image.rename(folders["sr"] / f"{image.stem.removeprefix('Set5_')}_x4.png")
    with pytest.raises(ScoreError) as ended:
        quick(folders)
    assert "with an ending, '_x4' (0000_x4.png for 0000.png)" in str(ended.value)
    assert "data/<preset>" not in str(ended.value)
    (folders["sr"] / "0001_x4.png").rename(folders["sr"] / "0001-sr.png")  # not one ending for all: no hint
    with pytest.raises(ScoreError) as mixed:
        quick(folders)
    assert "with a prefix" not in str(mixed.value) and "with an ending" not in str(mixed.value)


def test_an_infinite_mean_is_left_empty_with_the_images_that_make_it(tmp_path):
    folders = synthetic(tmp_path)
    shutil.copy(folders["hr"] / "0001.png", folders["sr"] / "0001.png")  # identical: PSNR infinite
    result = quick(folders)
    assert result.metrics["psnr"] is None and result.metrics["ssim"] is not None
    assert result.unavailable["psnr"].startswith("infinite: 0001.png is identical to the HR image")
    assert np.isinf(result.per_image.set_index("name").loc["0001.png", "psnr"])  # the CSV keeps it


def test_where_it_would_write_is_checked_before_any_scoring(tmp_path):
    folders = synthetic(tmp_path)
    options = ["score", "--sr", str(folders["sr"]), "--hr", str(folders["hr"]), "--no-fid", "--no-lpips"]
    into_a_folder = sr3bench(*options, "--out", str(folders["hr"]), cwd=tmp_path)
    assert into_a_folder.returncode == 2 and "is a folder: give the per-image CSV's file name" in into_a_folder.stderr
    cache_file = sr3bench(*options, "--cache", str(folders["hr"] / "0000.png"), cwd=tmp_path)
    assert cache_file.returncode == 2 and "--cache" in cache_file.stderr and "is a file" in cache_file.stderr
    assert "Traceback" not in into_a_folder.stderr + cache_file.stderr


def test_the_per_image_csv_is_not_written_into_a_folder_it_scores(tmp_path):
    """`sr3bench score --sr . --hr ../hr` wrote sr-per-image.csv among the SR images, and the
    next score refused the folder for it."""
    folders = synthetic(tmp_path)
    command = [sys.executable, "-m", "pipeline.cli", "score", "--sr", ".", "--hr", str(folders["hr"]), "--no-fid"]
    result = subprocess.run(
        command + ["--no-lpips"],
        cwd=folders["sr"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "would be written into the folder . it scores" in result.stderr, result.stderr
    assert sorted(p.name for p in folders["sr"].iterdir()) == ["0000.png", "0001.png", "0002.png"]


def test_hidden_files_that_are_not_images_are_ignored(tmp_path):
    folders = synthetic(tmp_path)
    (folders["sr"] / ".DS_Store").write_bytes(b"\0")
    (folders["sr"] / "._0000.png").write_bytes(b"\0\5\26\7")  # macOS's metadata of 0000.png (it was an extra)
    assert quick(folders).n_images == 3


def test_fid_reads_the_checked_images_only(tmp_path, monkeypatch):
    """torch-fidelity reads every .png of a folder: a macOS ._0000.png, skipped by the checks,
    must not reach it (it failed to decode there, a traceback)."""
    import sr3bench.metrics.score as scoring

    folders = synthetic(tmp_path)
    (folders["sr"] / "._0000.png").write_bytes(b"\0\5\26\7")
    seen = {}

    def fake_set_metrics(sr_dir, hr_dir, cache, weights_dir, **options):
        seen["sr"] = sorted(p.name for p in Path(sr_dir).iterdir())
        seen["hr"] = Path(hr_dir)
        seen["bytes"] = (Path(sr_dir) / "0000.png").read_bytes()
        return {"fid": 1.0, "kid": 0.0, "is": None, "unavailable": {"is": "no head"}, "n_sr": 3, "n_hr": 3}

    monkeypatch.setattr(scoring, "set_metrics", fake_set_metrics)
    result = score(folders["sr"], folders["hr"], lpips=False)
    assert seen["sr"] == ["0000.png", "0001.png", "0002.png"] and result.metrics["fid"] == 1.0
    assert seen["bytes"] == (folders["sr"] / "0000.png").read_bytes()
    assert seen["hr"] == folders["hr"]  # a folder of only the images is given as it is
    assert result.protocol["fid_kid_is"].startswith("torch-fidelity")
    assert quick(folders).protocol["fid_kid_is"] == "not requested"  # it said torch-fidelity


def test_the_warning_threshold_is_the_reports():
    from sr3bench.reporting.build import FID_MIN_IMAGES as REPORT_FID_MIN_IMAGES

    assert FID_MIN_IMAGES == REPORT_FID_MIN_IMAGES == 2048


# ----------------------------------------------------------------------------- the documentation page


def page_blocks(language: str) -> list[str]:
    """The page's fenced blocks in ``language`` ("" for plain ones), in order."""
    blocks = re.findall(r"^```([^\n]*)\n(.*?)^```", PAGE.read_text(), re.M | re.S)
    return [body for tag, body in blocks if tag.strip() == language]


def test_the_pages_commands_run(weights, tmp_path, monkeypatch):
    """docs/score-images.md: its `sr3bench score` commands and its Python example, on Set5
    where it is present, else on synthetic images laid out as Set5."""
    set5 = Path(os.environ.get("SR3BENCH_SHARED_DATA", REPO.parent / "shared" / "data")) / "sr-benchmarks" / "Set5"
    if (set5 / "HR").is_dir():
        shutil.copytree(set5, tmp_path / "Set5")
    else:
        folders = synthetic(tmp_path / "synthetic")
        shutil.copytree(folders["hr"], tmp_path / "Set5" / "HR")
        shutil.copytree(folders["lr"], tmp_path / "Set5" / "LR_bicubic_x4")
    for path in list_images(tmp_path / "Set5" / "LR_bicubic_x4"):
        write_png(upsample(read_image(path), 4), tmp_path / "outputs" / "bicubic" / path.name)
    shutil.copy(REPO / "params.yaml", tmp_path)  # --protocol-of reads ./params.yaml

    commands = [line for block in page_blocks("bash") for line in block.splitlines() if line.startswith("sr3bench ")]
    assert len(commands) == 2
    runs = [sr3bench(*command.split()[1:], cwd=tmp_path) for command in commands]
    for command, run in zip(commands, runs):
        assert run.returncode == 0, (command, run.stderr)
    assert json.loads(runs[1].stdout)["protocol"]["description"].startswith("Y channel")
    assert (tmp_path / "bicubic-per-image.csv").is_file()
    if (set5 / "HR").is_dir():  # the page shows the first command's output: its per-image metrics are these
        shown, printed = table_row(page_blocks("")[0]), table_row(runs[0].stdout)
        for metric in names(per="image"):
            assert shown[by_name(metric).header] == printed[by_name(metric).header], metric

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(W.WEIGHTS_ENV, str(weights))
    (tmp_path / "bicubic-per-image.csv").unlink()
    for block in page_blocks("python"):
        exec(compile(block, str(PAGE), "exec"), {})
    assert (tmp_path / "bicubic-per-image.csv").is_file()
