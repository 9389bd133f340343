"""Per-method summary tables from the per-image metric CSVs."""
from __future__ import annotations

import pandas as pd

METRIC_COLUMNS = ["psnr", "ssim", "consistency", "fid", "kid", "is", "lpips"]
SUMMARY_COLUMNS = ["method", "n_images"] + METRIC_COLUMNS + ["protocol"]
# Metrics computed per image (averaged here) versus per set (FID, KID, IS: one value).
PER_IMAGE_METRICS = ["psnr", "ssim", "consistency", "lpips"]


def summarise(per_image: pd.DataFrame, set_metrics: dict[str, dict], protocol: str, by: list[str] | None = None) -> pd.DataFrame:
    """One row per method (and per ``by`` group): image count, mean of each per-image
    metric, the set-level metrics, and the protocol. Missing metrics stay empty."""
    keys = ["method"] + (by or [])
    present = [c for c in PER_IMAGE_METRICS if c in per_image.columns]
    table = per_image.groupby(keys, sort=False).agg(n_images=("name", "size"), **{c: (c, "mean") for c in present})
    table = table.reset_index()
    for column in METRIC_COLUMNS:
        if column not in table.columns:
            table[column] = [set_metrics.get(m, {}).get(column) for m in table["method"]] if not by else None
    table["protocol"] = protocol
    return table[keys + SUMMARY_COLUMNS[1:]]
