"""Scoring a folder of SR images against a folder of HR images, outside the pipeline
(``sr3bench score``; docs/score-images.md).

The numbers come from the evaluate stage's own code: the images are read by
``evaluate.read_images``, PSNR, SSIM and consistency computed by ``evaluate.pixel_metrics``,
LPIPS by ``evaluate.lpips_scores`` and FID, KID and IS by ``fid_kid_is.set_metrics``; the
protocol is recorded by ``evaluate.protocol_record``. What this module adds is the checks
of folders that no pipeline stage made (names, sizes, modes, stray files), LR images made
from the HR ones when only the scale is given, and metrics left empty, with the reason,
when their weights are not available.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from sr3bench.core.atomic import atomic_path
from sr3bench.core.image_check import UPRIGHT_HINT, turning_orientation
from sr3bench.core.image_files import IMAGE_SUFFIXES, named_like_an_image
from sr3bench.core.output_folder import SHOWN as LISTED
from sr3bench.core.output_folder import image_header, listed, mode_problem, size_hint
from sr3bench.core.resize import downsample
from sr3bench.core.write_errors import WriteError, reporting_writes
from sr3bench.metrics.evaluate import infinite_mean, lpips_scores, pixel_metrics, protocol_record, read_images
from sr3bench.metrics.fid_kid_is import IMAGE_EXTENSIONS, IS_SPLITS, set_metrics
from sr3bench.metrics.lpips_metric import size_problem, trunk_description
from sr3bench.metrics.protocol import PROTOCOLS
from sr3bench.metrics.psnr_ssim import SSIM_WINDOW
from sr3bench.metrics.table import by_name, names
from sr3bench.metrics.weights import InceptionSetting, WeightsUnavailableError

# As the report's (sr3bench/reporting/build.py, which this package does not import; a test
# checks that they agree): below the Inception feature size FID's covariance is rank-deficient.
FID_MIN_IMAGES = 2048
PER_IMAGE_COLUMNS = ["name", *names(per="image")]
# Modes read as they are saved: 8-bit RGB, grey, palette; RGBA and LA only when opaque.
EIGHT_BIT_MODES = ("RGB", "L", "P")
WITH_ALPHA = ("RGBA", "LA")
BITS_PER_SAMPLE = 258  # the TIFF tag: Pillow opens a 16-bit RGB TIFF as mode RGB, its samples shifted to 8 bits
LR_OPERATOR = "MATLAB-compatible bicubic (sr3bench/core/resize.py)"
NOT_REQUESTED = "not requested"


class ScoreError(ValueError):
    """The folders cannot be scored as given; the message names the files and says why."""


@dataclass(frozen=True)
class ScoreResult:
    """What :func:`score` computed: ``per_image`` (a row per image: name and the per-image
    metrics), ``metrics`` (each metric of the metric table: the per-image ones averaged,
    the set ones as computed; None when left empty), ``unavailable`` (metric -> why it is
    empty), ``warnings``, ``protocol`` (the evaluate stage's protocol record), ``lr`` (where
    the LR images for consistency came from, or None) and ``set_info`` (torch-fidelity's
    image counts and the Inception weights used)."""

    name: str
    sr_dir: Path
    hr_dir: Path
    per_image: pd.DataFrame
    metrics: dict
    unavailable: dict
    protocol: dict
    lr: str | None = None
    warnings: list = field(default_factory=list)
    set_info: dict = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        return len(self.per_image)

    def cell(self, metric: str) -> str:
        """The metric's value with the metric table's decimals (and ± its standard deviation
        over splits, IS's), or "n/a"."""
        value, spread = self.metrics.get(metric), self.set_info.get(f"{metric}_std")
        if value is None:
            return "n/a"
        return by_name(metric).format(value) + ("" if spread is None else f" ± {by_name(metric).format(spread)}")

    def table(self) -> str:
        """The result as text: the protocol, a Markdown table (the metric table's headers and
        decimals), why any metric is empty, and the warnings."""
        columns = names()
        headers = ["method", "images", *(by_name(metric).header for metric in columns)]
        values = [self.name, str(self.n_images), *(self.cell(metric) for metric in columns)]
        lines = [
            f"{self.sr_dir} against {self.hr_dir}: {self.n_images} images",
            f"protocol: {self.protocol['description']}; scale {self.protocol['scale'] or 'not given'}; "
            f"LR images: {self.lr or 'none'}",
            "",
            "| " + " | ".join(headers) + " |",
            "|" + "---|" * len(headers),
            "| " + " | ".join(values) + " |",
        ]
        if self.set_info.get("is_splits"):
            splits = self.set_info["is_splits"]
            lines += [
                "",
                f"IS: mean ± standard deviation over {splits} split{'s' * (splits != 1)} of the SR images, "
                f"with {self.set_info['inception_weights']}",
            ]
        if self.unavailable:
            lines += ["", "Left empty (n/a), and why:"]
            lines += [f"- {by_name(metric).label}: {reason}" for metric, reason in self.unavailable.items()]
        lines += [f"\nWarning: {warning}" for warning in self.warnings]
        return "\n".join(lines)

    def to_json(self) -> dict:
        """The result as plain data (``sr3bench score --json``)."""
        return {
            "name": self.name,
            "sr": str(self.sr_dir),
            "hr": str(self.hr_dir),
            "lr": self.lr,
            "n_images": self.n_images,
            "metrics": self.metrics,
            "unavailable": self.unavailable,
            "warnings": self.warnings,
            "protocol": self.protocol,
            "set_metrics": self.set_info,
        }

    def write_csv(self, path) -> Path:
        """The per-image values as CSV (written under a temporary name, then renamed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            self.per_image.to_csv(temporary, index=False)
        return path


def folder_images(folder, role: str) -> dict[str, Path]:
    """The image files of ``folder`` by name; a ScoreError when it is missing or empty, or
    holds anything but image files (hidden files that are not images, .DS_Store, and macOS's
    ._x.png metadata are left alone)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScoreError(f"the {role} folder {folder} {'is not a folder' if folder.exists() else 'does not exist'}")
    entries = sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith("._") and (named_like_an_image(p) or not p.name.startswith("."))
    )
    strays = [
        p.name + (" (a folder)" if p.is_dir() else " (a broken link)" if p.is_symlink() else "")
        for p in entries
        if not p.is_file()
    ]
    strays += [p.name for p in entries if p.is_file() and not named_like_an_image(p)]
    if strays:
        what = (
            "an entry that is not an image file"
            if len(strays) == 1
            else f"{len(strays)} entries that are not image files"
        )
        raise ScoreError(
            f"the {role} folder {folder} holds {what} ({', '.join(IMAGE_SUFFIXES)}): {listed(sorted(strays))}; "
            f"move {'it' if len(strays) == 1 else 'them'} out"
        )
    if not entries:
        raise ScoreError(f"the {role} folder {folder} is empty: no images to score")
    return {p.name: p for p in entries}


def check_names(images: dict, hr: dict, role: str, folder, hr_dir) -> None:
    """Every HR image has its ``role`` image of the same name, and there is no other."""
    missing, extra = sorted(set(hr) - set(images)), sorted(set(images) - set(hr))
    if not (missing or extra):
        return
    lines = [f"the {role} images in {folder} are not named like the HR images in {hr_dir}:"]
    if missing:
        lines.append(f"  missing from {role} ({len(missing)}): {listed(missing)}")
    if extra:
        lines.append(f"  in {role} but not in HR ({len(extra)}): {listed(extra)}")
    unicode_forms = sorted(
        {unicodedata.normalize("NFC", n) for n in missing} & {unicodedata.normalize("NFC", n) for n in extra}
    )
    if unicode_forms:
        lines.append(
            f"  {listed(unicode_forms)}: the names differ only in how their accented letters are encoded "
            "(Unicode NFC against NFD, as macOS writes them); rename the images with the HR images' names"
        )
    same_stem = sorted({Path(n).stem for n in missing} & {Path(n).stem for n in extra})
    if same_stem:
        lines.append(
            f"  {listed(same_stem)}: the names differ only in their suffix; name each image exactly as its HR image"
        )
    renamed = _one_renaming(missing, extra)
    if renamed:
        kind, addition = renamed
        first = Path(missing[0])
        example = f"{addition}{first.name}" if kind == "prefix" else f"{first.stem}{addition}{first.suffix}"
        lines.append(
            f"  every missing name is among the {role} names with {'a prefix' if kind == 'prefix' else 'an ending'}, "
            f"{addition!r} ({example} for {first.name}): name each image exactly as its HR image"
        )
        if kind == "prefix" and addition.endswith("_"):
            lines.append(
                "  (a preset with several test sets, dataset.test_folders, names its samples <set>_<name>: score "
                "those against the preset's own HR images, data/<preset>/test/hr, named alike)"
            )
    raise ScoreError("\n".join(lines))


def _one_renaming(missing: list[str], extra: list[str]) -> tuple[str, str] | None:
    """("prefix" or "ending", the text) that every missing name has in front of it, or
    behind its stem, among the ``extra`` names ('Set5_' in Set5_baby.png, '_x4' in
    baby_x4.png); None when there is no such one. The candidates come from the first
    missing name, each checked against the others by set lookups."""
    if not missing or not extra:
        return None
    extras, first = set(extra), missing[0]
    prefixes = sorted((e[: -len(first)] for e in extras if e.endswith(first) and e != first), key=len)
    for prefix in prefixes:
        if all(prefix + name in extras for name in missing):
            return "prefix", prefix
    stem, suffix = Path(first).stem, Path(first).suffix
    endings = sorted(
        (Path(e).stem[len(stem) :] for e in extras if e.startswith(stem) and e.endswith(suffix) and e != first), key=len
    )
    for ending in endings:
        if all(f"{Path(name).stem}{ending}{Path(name).suffix}" in extras for name in missing):
            return "ending", ending
    return None


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an 8-bit image file that decodes in full; a ScoreError naming the
    file otherwise (not an image, truncated, 16-bit, another mode, transparent)."""
    try:
        with Image.open(path) as image:
            raw_mode = image.tile[0][3] if image.format == "PNG" and image.tile else ""
            bits = image.tag_v2.get(BITS_PER_SAMPLE, ()) if image.format == "TIFF" else ()
            image.load()
            mode, size, orientation = image.mode, image.size, turning_orientation(image)
            opaque = mode not in WITH_ALPHA or image.getchannel("A").getextrema()[0] == 255
            if "transparency" in image.info:  # a palette index or an RGB/grey colour key: transparent
                opaque = opaque and image.convert("RGBA").getchannel("A").getextrema()[0] == 255
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ScoreError(f"{path} cannot be read as an image ({error})") from None
    if ";16" in str(raw_mode) or mode.startswith("I") or mode == "F" or any(b > 8 for b in _as_tuple(bits)):
        depth = f"16-bit {mode}" if ";16" in str(raw_mode) else f"mode {mode}"  # PIL opens 16-bit RGB as RGB
        raise ScoreError(f"{path} is not an 8-bit image ({depth}): the metrics are computed on 8-bit images")
    if mode not in EIGHT_BIT_MODES + WITH_ALPHA:
        raise ScoreError(f"{path} has mode {mode}: save it as an 8-bit RGB or greyscale image")
    if not opaque:
        raise ScoreError(f"{path} has transparent pixels (mode {mode}): save it as an 8-bit RGB image")
    if orientation:
        raise ScoreError(f"{path} has the EXIF orientation {orientation}: {UPRIGHT_HINT}")
    return size


def size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def check_sizes(sizes: dict, hr_sizes: dict, role: str, folder, scale: int | None) -> None:
    """Each image has its HR image's size; each that has not is named with what its size
    suggests (``output_folder.size_hint``, collect's reading)."""
    wrong = [name for name in hr_sizes if sizes[name] != hr_sizes[name]]
    if not wrong:
        return
    lines = [f"{len(wrong)} of the {len(hr_sizes)} {role} images in {folder} do not have their HR image's size:"]
    for name in wrong[:LISTED]:
        hint = size_hint(sizes[name], hr_sizes[name], scale)
        lines.append(
            f"  {name}: {role} {size_text(sizes[name])}, HR {size_text(hr_sizes[name])}"
            + (f" ({hint})" if hint else "")
        )
    if len(wrong) > LISTED:
        lines.append(f"  and {len(wrong) - LISTED} more")
    raise ScoreError("\n".join(lines))


def check_modes(sr: dict, hr: dict, folder) -> None:
    """Each SR image is 8-bit RGB, or grey where its HR image is grey: the rule by which the
    collect stage takes an outside method's outputs (``output_folder.mode_problem``), so
    that a folder scores here only where the pipeline would score it too."""
    wrong = []
    for image, path in sr.items():
        _, mode, raw, _ = image_header(path)
        problem = mode_problem(mode, raw, image_header(hr[image])[1])
        if problem:
            wrong.append(f"{image} ({problem})")
    if wrong:
        raise ScoreError(
            f"{len(wrong)} of the {len(sr)} SR images in {folder} are not 8-bit RGB: {listed(wrong)}; save them as "
            "8-bit RGB (8-bit grey where the HR image is grey)"
        )


def lr_scale(lr_sizes: dict, hr_sizes: dict, scale: int | None, lr_dir) -> int:
    """The scale from HR to LR: ``scale`` when every LR image is its HR image divided by it,
    or the one integer scale they all share when ``scale`` is None."""
    ratios = {}
    for name, (w, h) in lr_sizes.items():
        hw, hh = hr_sizes[name]
        ratios[name] = hw // w if hw % w == 0 and hh % h == 0 and hw // w == hh // h else None
    wanted = scale
    if wanted is None:  # the scale most of them share
        found = [ratio for ratio in ratios.values() if ratio is not None]
        wanted = max(set(found), key=found.count) if found else None
    wrong = [name for name, ratio in ratios.items() if ratio is None or ratio != wanted]
    if not wrong and wanted == 1:
        raise ScoreError(
            f"the LR images in {lr_dir} have their HR images' sizes (scale 1): give the folder of LR inputs as --lr, "
            "not the HR folder"
        )
    if not wrong:
        return wanted
    expected = f"the HR size divided by {wanted}" if wanted else "the HR size divided by one integer scale"
    lines = [f"{len(wrong)} of the LR images in {lr_dir} are not {expected}:"]
    lines += [f"  {name}: LR {size_text(lr_sizes[name])}, HR {size_text(hr_sizes[name])}" for name in wrong[:LISTED]]
    if len(wrong) > LISTED:
        lines.append(f"  and {len(wrong) - LISTED} more")
    raise ScoreError("\n".join(lines))


def check_options(color: str, crop: int, scale: int | None) -> None:
    if color not in PROTOCOLS:
        raise ScoreError(f"colour protocol {color!r} is not one of {', '.join(PROTOCOLS)}")
    if not isinstance(crop, Integral) or crop < 0:
        raise ScoreError(f"border crop {crop!r} is not a whole number of pixels >= 0")
    if scale is not None and (not isinstance(scale, Integral) or scale < 1):
        raise ScoreError(f"scale {scale!r} is not a whole number >= 1")


ON_THE_COMMAND_LINE = InceptionSetting(
    "--inception-weights", "`--inception-weights FILE`", "leave out --inception-weights"
)  # how score's user names the original Inception file, in the fixes messages give


def score(
    sr_dir,
    hr_dir,
    lr_dir=None,
    scale: int | None = None,
    color: str = "rgb",
    crop: int = 0,
    weights_dir=None,
    cache_dir=None,
    fid: bool = True,
    lpips: bool = True,
    name: str | None = None,
    inception_file=None,
    is_splits: int = IS_SPLITS,
    inception_setting: InceptionSetting = ON_THE_COMMAND_LINE,
) -> ScoreResult:
    """Score the SR images of ``sr_dir`` against the HR images of the same names in ``hr_dir``.

    PSNR and SSIM under ``color`` (``rgb`` or ``y``) with ``crop`` border pixels cropped;
    consistency when the LR images (``lr_dir``) or the ``scale`` are given (the LR images
    are then made from the HR ones by the MATLAB-compatible bicubic, as the prepare stage
    makes them); LPIPS and, with ``fid``, FID, KID and IS over the set. ``weights_dir``:
    the metric weights (default ``$SR3BENCH_WEIGHTS`` or ``./weights``); ``cache_dir``: where
    torch-fidelity keeps the HR features (default: a temporary folder); ``name``: the
    method's name in the table (default: the SR folder's name); ``inception_file``: the
    original Inception file with its classifier head, for IS (``weights.inception``; checked
    by the SHA-256 prefix in its name; ``inception_setting``: how the user named it, for the
    messages, by default ``--inception-weights``); ``is_splits``: IS splits wanted (``protocol.is_splits``,
    fewer where a split would hold under two images). A metric whose weights are unavailable
    is left empty, with the reason. Raises ScoreError for folders that cannot be scored as
    given.
    """
    check_options(color, crop, scale)
    sr_dir, hr_dir = Path(sr_dir), Path(hr_dir)
    hr = folder_images(hr_dir, "HR")
    sr = folder_images(sr_dir, "SR")
    check_names(sr, hr, "SR", sr_dir, hr_dir)
    hr_sizes = {image: image_size(path) for image, path in hr.items()}
    check_sizes({image: image_size(path) for image, path in sr.items()}, hr_sizes, "SR", sr_dir, scale)
    check_modes(sr, hr, sr_dir)
    smallest = min(min(size) for size in hr_sizes.values())
    if 2 * crop >= smallest:
        raise ScoreError(f"a border crop of {crop} px leaves nothing of the smallest HR image ({smallest} px)")
    if smallest - 2 * crop < SSIM_WINDOW:
        small = sorted(image for image, size in hr_sizes.items() if min(size) - 2 * crop < SSIM_WINDOW)
        raise ScoreError(
            f"SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} Gaussian window needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} "
            f"pixels after the border crop ({crop} px a side); {listed(small)} "
            f"{'is' if len(small) == 1 else 'are'} smaller (the smallest side: {smallest} px)"
            + ("; lower --crop" if crop else "")
        )
    if lr_dir is not None:
        lr_dir = Path(lr_dir)
        lr = folder_images(lr_dir, "LR")
        check_names(lr, hr, "LR", lr_dir, hr_dir)
        scale = lr_scale({image: image_size(path) for image, path in lr.items()}, hr_sizes, scale, lr_dir)
    elif scale is not None:
        odd = [f"{image} ({size_text(size)})" for image, size in hr_sizes.items() if size[0] % scale or size[1] % scale]
        if odd:
            raise ScoreError(
                f"consistency at scale {scale} makes the LR images by downsampling the HR ones, whose sizes must then "
                f"be multiples of {scale}: {listed(odd)} are not; give the LR images (--lr) or crop the HR images"
            )

    images = sorted(hr)
    sr_images, hr_images, lr_images = read_images(images, sr_dir, hr_dir, lr_dir, "score")
    unavailable, lr_origin = {}, None
    if lr_dir is not None:
        lr_origin = f"{lr_dir} (x{scale})"
    elif scale is not None:
        lr_images = [downsample(image, scale) for image in hr_images]
        lr_origin = f"made from the HR images by the {LR_OPERATOR}, x{scale}"
    else:
        unavailable["consistency"] = "no LR images: give the LR folder (--lr) or the scale (--scale)"
    rows = pixel_metrics(
        sr_images, hr_images, lr_images, {"color": color, "border_crop": crop}, scale, "score: PSNR, SSIM"
    )
    too_small = size_problem(sr_images)
    if not lpips:
        unavailable["lpips"] = NOT_REQUESTED
    elif too_small:
        unavailable["lpips"] = too_small
    else:
        try:
            for row, value in zip(rows, lpips_scores(sr_images, hr_images, weights_dir, "score: LPIPS")):
                row["lpips"] = value
        except WeightsUnavailableError as error:
            unavailable["lpips"] = str(error)
    per_image = pd.DataFrame([{"name": image, **row} for image, row in zip(images, rows)], columns=PER_IMAGE_COLUMNS)

    set_level, set_info = score_set(
        sr_dir, hr_dir, images, cache_dir, weights_dir, fid, inception_file, is_splits, inception_setting
    )
    metrics = {}
    for metric in names():
        if metric in per_image and per_image[metric].notna().all():
            metrics[metric] = float(per_image[metric].mean())
        else:
            metrics[metric] = set_level.get(metric)
        if metric in per_image and metrics[metric] is not None and not math.isfinite(metrics[metric]):
            same = per_image.loc[~np.isfinite(per_image[metric].astype(float)), "name"].tolist()
            metrics[metric] = None  # the per-image CSV keeps each image's value
            unavailable[metric] = infinite_mean(same)
    for metric, reason in set_level.get("unavailable", {}).items():
        unavailable.setdefault(metric, reason)
    warnings = []
    if metrics["fid"] is not None and len(images) < FID_MIN_IMAGES:
        warnings.append(
            f"FID, KID and IS over {len(images)} images are dominated by sampling noise (FID needs thousands of "
            f"images; below {FID_MIN_IMAGES} its covariance estimate is rank-deficient). KID is an unbiased estimate "
            "and can be negative on so few images. Compare these only between methods scored on the same images, "
            "never with numbers over another test set."
        )
    return ScoreResult(
        name or sr_dir.resolve().name,
        sr_dir,
        hr_dir,
        per_image,
        metrics,
        {metric: unavailable[metric] for metric in names() if metric in unavailable},
        protocol_record(
            {"color": color, "border_crop": crop, "is_splits": is_splits},
            scale,
            trunk_description(weights_dir) if lpips else None,
        )
        | ({} if fid else {"fid_kid_is": NOT_REQUESTED}),
        lr_origin,
        warnings,
        set_info,
    )


def score_set(
    sr_dir: Path,
    hr_dir: Path,
    images: list,
    cache_dir,
    weights_dir,
    wanted: bool,
    inception_file,
    is_splits: int,
    setting: InceptionSetting,
) -> tuple[dict, dict]:
    """FID, KID and IS of the SR folder against the HR folder (``fid_kid_is.set_metrics``),
    or the reason each is empty; and the counts, IS's spread and the weights used."""
    set_names = names(per="set")
    unreadable = [image for image in images if Path(image).suffix.lower()[1:] not in IMAGE_EXTENSIONS]
    if not wanted:
        reason = NOT_REQUESTED
    elif len(images) < 2:
        reason = f"FID/KID need at least 2 images per set, and there is {len(images)}"
    elif unreadable:
        reason = (
            f"torch-fidelity reads .{', .'.join(IMAGE_EXTENSIONS)} files only, not {listed(unreadable)}: "
            "save the images as PNG for FID, KID and IS"
        )
    else:
        try:
            options = {"inception_file": inception_file, "is_splits": is_splits, "setting": setting}
            folder = (
                contextlib.nullcontext(cache_dir)
                if cache_dir is not None
                else tempfile.TemporaryDirectory(prefix="sr3bench-score-")
            )
            with folder as cache, tempfile.TemporaryDirectory(prefix="sr3bench-score-images-") as staging:
                sr_only, hr_only = (
                    only_the_images(given, images, Path(staging) / role)
                    for given, role in ((sr_dir, "sr"), (hr_dir, "hr"))
                )
                with reporting_writes(Path(cache), Path(cache)):
                    result = set_metrics(sr_only, hr_only, cache, weights_dir, **options)
        except WeightsUnavailableError as error:
            if inception_file is not None:  # a file the user named: refused, not left empty
                raise ScoreError(str(error)) from error  # it names the file
            reason = str(error)
        except WriteError as error:  # the per-image metrics are computed: print them, say why these are not
            reason = f"not computed: {error}"
        else:
            keys = ("n_sr", "n_hr", "inception_weights", "inception_record", "is_std", "is_splits")
            info = {key: result[key] for key in keys if key in result}
            info["reference_set"] = f"the HR images of {hr_dir}"
            values = {metric: result[metric] for metric in set_names}
            for metric, value in values.items():
                if value is not None and not math.isfinite(value):
                    values[metric] = None
                    result["unavailable"].setdefault(metric, f"{value} (not a finite number)")
            return {**values, "unavailable": result["unavailable"]}, info
    return {"unavailable": dict.fromkeys(set_names, reason)}, {}


def only_the_images(folder: Path, images: list[str], staging: Path) -> Path:
    """``folder`` where torch-fidelity, which reads every file of its extensions there,
    would read just ``images``; else ``staging``, a new folder of links to them (a macOS
    ``._x.png``, which the checks skip, would be read as an image and fail to decode)."""
    wanted = set(images)
    if not any(p.name not in wanted for p in folder.iterdir() if p.suffix.lower()[1:] in IMAGE_EXTENSIONS):
        return folder
    staging.mkdir()
    for image in images:
        try:
            (staging / image).symlink_to((folder / image).resolve())
        except OSError:  # a filesystem without symbolic links
            shutil.copyfile(folder / image, staging / image)
    return staging


def result_json(result: ScoreResult, **more) -> str:
    """``result.to_json()`` and ``more`` as text (NaN and infinity written as null)."""
    data = {**result.to_json(), **more}
    data["metrics"] = {k: (v if v is None or math.isfinite(v) else None) for k, v in data["metrics"].items()}
    return json.dumps(data, indent=1)
