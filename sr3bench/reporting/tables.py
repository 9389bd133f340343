"""Per-method summary tables from the per-image metric CSVs, with 95% bootstrap intervals
of the per-image metrics; labels, units, directions and decimals come from
``sr3bench.metrics.table``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sr3bench.metrics.table import header, names  # noqa: F401 (header: the report's column headers)

METRIC_COLUMNS = names()
SUMMARY_COLUMNS = ["method", "n_images"] + METRIC_COLUMNS + ["protocol"]
# Metrics computed per image (averaged here) versus per set (FID, KID, IS: one value).
PER_IMAGE_METRICS = names(per="image")
# The metrics the README table and the front page show.
HEADLINE = ["psnr", "ssim", "consistency", "fid", "lpips"]
# Set metrics whose spread the set metrics carry: ``<metric>_std`` (IS: the standard
# deviation over its splits, torch-fidelity's inception_score_std) and ``<metric>_splits``.
SPREAD_METRICS = ("is",)
BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


def comparable_protocol(protocol: dict) -> dict:
    """A protocol record as results are compared by it: where the Inception weights file lay
    is not part of it, its SHA-256 is (the same file in another folder, another
    SR3BENCH_WEIGHTS, gives the same numbers)."""
    weights = protocol.get("inception_weights")
    if isinstance(weights, dict) and weights.get("sha256"):
        return {**protocol, "inception_weights": {key: value for key, value in weights.items() if key != "file"}}
    return protocol


def bootstrap_interval(values, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean (images resampled with replacement;
    Efron & Tibshirani 1993, ch. 13), seeded so a report is reproducible. Over the images
    the mean covers (empty values left out, as pandas' mean does); none where a value is
    infinite (PSNR of an image equal to its truth), which makes the mean infinite."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0 or not np.isfinite(values).all():
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def summarise(
    per_image: pd.DataFrame, set_metrics: dict[str, dict], protocol: str, by: list[str] | None = None
) -> pd.DataFrame:
    """One row per method (and per ``by`` group): image count, mean of each per-image
    metric, the set-level metrics (not per group: FID, KID and IS are of a whole set), and
    the protocol; without ``by``, also each per-image metric's 95% interval
    (``<metric>_ci_low``, ``<metric>_ci_high``) and the spread of the set metrics that have
    one (``is_std``, ``is_splits``). Missing metrics stay empty."""
    keys = ["method"] + (by or [])
    present = [c for c in PER_IMAGE_METRICS if c in per_image.columns]
    table = per_image.groupby(keys, sort=False).agg(n_images=("name", "size"), **{c: (c, "mean") for c in present})
    table = table.reset_index()
    table[present] = table[present].replace([np.inf, -np.inf], np.nan)  # an SR image equal to its truth: PSNR inf
    columns = PER_IMAGE_METRICS if by else METRIC_COLUMNS
    for column in columns:
        if column not in table.columns:
            table[column] = [set_metrics.get(m, {}).get(column) for m in table["method"]] if not by else None
    table["protocol"] = protocol
    table = table[[*keys, "n_images", *columns, "protocol"]]
    if by:
        return table
    for column in present:
        intervals = [bootstrap_interval(per_image.loc[per_image["method"] == m, column]) for m in table["method"]]
        table[f"{column}_ci_low"], table[f"{column}_ci_high"] = [i[0] for i in intervals], [i[1] for i in intervals]
    for column in SPREAD_METRICS:
        for spread in ("std", "splits"):
            table[f"{column}_{spread}"] = [set_metrics.get(m, {}).get(f"{column}_{spread}") for m in table["method"]]
    return table
