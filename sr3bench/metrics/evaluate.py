"""The evaluation entry point: per-image metrics (PSNR, SSIM, consistency, LPIPS) and
set metrics (FID, KID, IS against the HR test images) of one method's saved SR images,
with the protocol they were computed under, as data that travels with the table."""

from __future__ import annotations

import logging
import math
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from sr3bench.core.images import list_images, read_image
from sr3bench.core.output_folder import listed
from sr3bench.core.progress import progress
from sr3bench.core.write_errors import reporting_writes

# Imported here, not resolved from the metric table's "module:function" names, so that the
# stage's tracked code (its import closure, pipeline/code_deps.py) includes them;
# tests/test_metric_table.py checks that the table names these same functions.
from sr3bench.metrics.consistency import consistency
from sr3bench.metrics.fid_kid_is import IS_MIN_SPLIT_IMAGES, IS_SPLITS, set_metrics
from sr3bench.metrics.lpips_metric import lpips_per_image, size_problem, trunk_description
from sr3bench.metrics.protocol import describe
from sr3bench.metrics.psnr_ssim import SSIM_SETTINGS, psnr, ssim
from sr3bench.metrics.table import names

log = logging.getLogger(__name__)

PER_IMAGE_COLUMNS = ["method", "name", "group", *names(per="image")]


SET_METRICS_NOT_REQUESTED = "not requested (protocol.set_metrics: false)"
# The per-image metrics that compare an output with its test HR image (consistency compares
# it with its own LR input).
AGAINST_HR = ("psnr", "ssim", "lpips")


def generated_input_reasons(generator: str) -> dict[str, str]:
    """Why PSNR, SSIM and LPIPS are empty for a cascade stage whose chain starts from a
    generator (``generator``: which, in words): its LR inputs are of no test image."""
    reason = (
        f"not applicable: the test LR images come from a chain that starts at {generator}, an unconditional "
        "generator (dataset.lr_from), so no output is an estimate of its test image; consistency (with those LR "
        "inputs) and the set metrics apply"
    )
    return dict.fromkeys(AGAINST_HR, reason)


def unpaired_reasons(method: str) -> dict[str, str]:
    """Why an unconditional generator's per-image metrics are empty: each compares an
    output with its own test image (or its LR input), which a generated image is not of."""
    reason = (
        f"not applicable: {method} generates images unconditionally, so none of its images is an estimate "
        "of a test image (only the set metrics compare it with them)"
    )
    return {metric: reason for metric in names(per="image")}


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def protocol_record(protocol: dict, scale: int, lpips_trunk: str | None = None) -> dict:
    """How the table's numbers were computed, for its JSON sidecar and the report;
    ``lpips_trunk``: which AlexNet weights LPIPS used (``lpips_metric.trunk_description``)."""
    color, border = protocol["color"], protocol["border_crop"]
    return {
        "color": color,
        "border_crop": border,
        "description": describe(color, border),
        "scale": scale,
        "pixels": "saved uint8 PNG images (values rounded to 0..255)",
        "psnr_ssim": f"scikit-image {package_version('scikit-image')}",
        "ssim_settings": SSIM_SETTINGS,
        "consistency": "MSE between the LR input and the SR output downsampled by the LR operator "
        "(MATLAB-compatible bicubic) and rounded to uint8 as the LR image is, pixels in [0, 1], x 1e-5; "
        "the paper states neither the range nor the operator (docs/protocol.md)",
        "lpips": f"AlexNet LPIPS v0.1, lpips {package_version('lpips')}" + (f"; {lpips_trunk}" if lpips_trunk else ""),
        "fid_kid_is": f"torch-fidelity {package_version('torch-fidelity')}, inception-v3-compat features"
        if protocol.get("set_metrics", True)
        else SET_METRICS_NOT_REQUESTED,
        "inception_score": f"torch-fidelity isc on logits_unbiased, {protocol.get('is_splits', IS_SPLITS)} splits "
        f"(fewer where a split would hold under {IS_MIN_SPLIT_IMAGES} images), mean and std over the splits",
    }


def evaluate_method(
    method: str,
    hr_dir: Path,
    lr_dir: Path,
    samples_dir: Path,
    groups: dict,
    protocol: dict,
    scale: int,
    weights_dir=None,
    again: str | None = None,
    paired: bool = True,
    generator: str | None = None,
) -> tuple[pd.DataFrame, dict, dict]:
    """One row per test image (PSNR and SSIM under ``protocol``, consistency, LPIPS), the
    protocol record, and why any metric is left empty (metric -> reason); ``groups`` maps
    image names to their test group; ``again``: what makes the samples again, for
    messages. Not ``paired`` (an unconditional generator's images): the rows with those
    metrics left empty. ``generator`` (a cascade stage whose chain starts from that
    generator, in words): consistency only, the metrics against the HR image
    (``AGAINST_HR``) left empty."""
    again = again or f"re-run the sample stage for {method}"
    names = [hr_path.name for hr_path in list_images(hr_dir)]
    missing = [name for name in names if not (Path(samples_dir) / name).exists()]
    if missing:
        where = (
            f"{samples_dir} lacks {len(missing)} of the {len(names)} test images"
            if len(missing) < len(names)
            else f"{samples_dir} is empty or missing"
        )
        raise FileNotFoundError(f"{where} ({listed(missing, 5)}): {again}")
    rows = [{"method": method, "name": name, "group": groups.get(name, "")} for name in names]
    record = protocol_record(protocol, scale, trunk_description(weights_dir))  # one record for every method
    if not paired:
        return pd.DataFrame(rows, columns=PER_IMAGE_COLUMNS), record, unpaired_reasons(method)
    sr_images, hr_images, lr_images = read_images(
        names, samples_dir, hr_dir, lr_dir, f"evaluate {method}", f"delete it, then {again}"
    )
    wrong = [
        (n, sr.shape[:2], hr.shape[:2])
        for n, sr, hr in zip(names, sr_images, hr_images)
        if sr.shape[:2] != hr.shape[:2]
    ]
    if wrong:
        name, sr, hr = wrong[0]
        raise ValueError(
            f"{len(wrong)} SR image(s) of {method} in {samples_dir} are not the size of their HR test image "
            f"(first {name}: {sr[1]}x{sr[0]} against {hr[1]}x{hr[0]}, width x height): they were not made from this "
            "test split; "
            f"{again}"
        )
    if generator is None:
        values = image_metrics(sr_images, hr_images, lr_images, protocol, scale, weights_dir, f"evaluate {method}")
        too_small = size_problem(sr_images)
        unavailable = {"lpips": too_small} if too_small else {}
        same = [name for name, value in zip(names, values) if math.isinf(value["psnr"])]
        if same:  # as sr3bench score: the mean left empty, each image's value kept in the CSV
            unavailable["psnr"] = infinite_mean(same)
            log.warning(
                "%s: %d of %d outputs equal their HR image pixel for pixel (%s): the HR images themselves?",
                method,
                len(same),
                len(names),
                listed(same, 5),
            )
    else:
        values = [{"consistency": consistency(sr, lr, scale)} for sr, lr in zip(sr_images, lr_images)]
        unavailable = generated_input_reasons(generator)
    for row, value in zip(rows, values):
        row.update(value)
    return pd.DataFrame(rows, columns=PER_IMAGE_COLUMNS), record, unavailable


def infinite_mean(same: list[str]) -> str:
    """Why a set's mean PSNR is left empty: ``same`` (names) equal their HR images."""
    return (
        f"infinite: {listed(same, 5)} {'is' if len(same) == 1 else 'are'} identical to the HR image, "
        "so the mean over the set is infinite too"
    )


def read_images(
    names, sr_dir: Path, hr_dir: Path, lr_dir: Path | None, desc: str, again: str = "replace it"
) -> tuple[list, list, list | None]:
    """The SR, HR and LR images called ``names`` in the three folders, as evaluate scores
    them: SR as RGB, a one-channel HR or LR file kept grey; no LR images without ``lr_dir``.
    An SR file that does not decode is named, with ``again`` (what makes it again)."""
    sr_images, hr_images, lr_images = [], [], []
    for name in progress(names, desc=f"{desc}: read", unit="image", mininterval=2):
        try:
            sr_images.append(read_image(Path(sr_dir) / name))
        except (OSError, SyntaxError, ValueError) as error:
            raise ValueError(f"{Path(sr_dir) / name} cannot be read as an image ({error}): {again}") from error
        hr_images.append(read_image(Path(hr_dir) / name, keep_grey=True))
        if lr_dir is not None:
            lr_images.append(read_image(Path(lr_dir) / name, keep_grey=True))
    return sr_images, hr_images, lr_images if lr_dir is not None else None


def image_metrics(
    sr_images, hr_images, lr_images, protocol: dict, scale: int, weights_dir=None, desc: str | None = None
) -> list[dict]:
    """PSNR and SSIM under ``protocol``, consistency and LPIPS of each SR image (uint8
    arrays; a grey HR image is scored in grey, and against its RGB replica for LPIPS).
    LPIPS is NaN for images too small for it (``lpips_metric.size_problem`` says why).
    ``desc``: the progress bars' prefix (None: no bars, as for tune's many small calls)."""
    rows = pixel_metrics(sr_images, hr_images, lr_images, protocol, scale, desc and f"{desc}: PSNR, SSIM")
    too_small = size_problem(sr_images)
    scores = (
        [math.nan] * len(rows)
        if too_small
        else lpips_scores(sr_images, hr_images, weights_dir, desc and f"{desc}: LPIPS")
    )
    for row, score in zip(rows, scores):
        row["lpips"] = score
    return rows


def pixel_metrics(
    sr_images, hr_images, lr_images, protocol: dict, scale: int | None, desc: str | None = None
) -> list[dict]:
    """PSNR and SSIM under ``protocol`` of each SR image, and its consistency with its LR
    image at ``scale`` (none without LR images: ``lr_images`` None), with a progress bar
    called ``desc`` (None: none)."""
    color, border = protocol["color"], protocol["border_crop"]
    pairs = progress(
        zip(sr_images, hr_images), desc=desc, total=len(sr_images), unit="image", mininterval=2, disable=desc is None
    )
    rows = [{"psnr": psnr(sr, hr, color, border), "ssim": ssim(sr, hr, color, border)} for sr, hr in pairs]
    if lr_images is not None:
        for row, sr, lr in zip(rows, sr_images, lr_images):
            row["consistency"] = consistency(sr, lr, scale)
    return rows


def lpips_scores(sr_images, hr_images, weights_dir=None, desc: str | None = None) -> list[float]:
    """LPIPS of each SR image against its HR image (a grey HR image as its RGB replica)."""
    rgb = [hr if hr.ndim == 3 else np.repeat(hr[..., None], 3, axis=-1) for hr in hr_images]
    return lpips_per_image(sr_images, rgb, weights_dir, desc)


def set_metrics_not_requested() -> dict:
    """What evaluate_set gives when the protocol asks for no set metrics (``protocol.set_metrics``
    false): FID, KID and IS empty, with the reason."""
    empty = dict.fromkeys(("fid", "kid", "is", "is_std", "is_splits"))
    return {
        **empty,
        "unavailable": dict.fromkeys(names(per="set"), SET_METRICS_NOT_REQUESTED),
        "inception_record": None,
    }


def evaluate_set(
    samples_dir: Path, hr_dir: Path, cache_dir: Path, weights_dir=None, inception_file=None, is_splits=IS_SPLITS
) -> dict:
    """FID, KID and IS of the SR images against the HR test images (the reference set),
    with the image count and the reasons for any metric left empty; ``inception_file``:
    the original Inception file (``weights.inception``), ``is_splits``: the splits wanted
    (``protocol.is_splits``)."""
    with reporting_writes(Path(cache_dir), Path(cache_dir)):  # torch-fidelity's cache: a full disk named
        result = set_metrics(
            samples_dir, hr_dir, cache_dir, weights_dir, inception_file=inception_file, is_splits=is_splits
        )
    result["reference_set"] = "HR test images of this preset"
    return result
