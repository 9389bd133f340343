"""The evaluation entry point: per-image metrics (PSNR, SSIM, consistency, LPIPS) and
set metrics (FID, KID, IS against the HR test images) of one method's saved SR images."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from metrics.consistency import consistency
from metrics.fid_kid_is import set_metrics
from metrics.lpips_metric import lpips_per_image
from metrics.protocol import describe
from metrics.psnr_ssim import psnr, ssim
from sr3.images import list_images, read_image

PER_IMAGE_COLUMNS = ["method", "name", "group", "psnr", "ssim", "consistency", "lpips"]


def evaluate_method(method: str, data_dir: Path, samples_dir: Path, protocol: dict, scale: int, weights_dir=None) -> pd.DataFrame:
    """One row per test image: PSNR, SSIM (under ``protocol``) and consistency."""
    manifest = json.loads((Path(data_dir) / "manifest.json").read_text())
    groups = {row["name"]: row["group"] for row in manifest["test"]}
    color, border = protocol["color"], protocol["border_crop"]
    rows, sr_images, hr_images = [], [], []
    for hr_path in tqdm(list_images(Path(data_dir) / "test" / "hr"), desc=f"evaluate {method}", mininterval=2):
        sr_path = Path(samples_dir) / hr_path.name
        if not sr_path.exists():
            raise FileNotFoundError(f"{sr_path} is missing; re-run the sample stage for {method}")
        hr = read_image(hr_path, keep_grey=True)
        lr = read_image(Path(data_dir) / "test" / "lr" / hr_path.name, keep_grey=True)
        sr = read_image(sr_path)
        rows.append(
            {
                "method": method,
                "name": hr_path.name,
                "group": groups.get(hr_path.name, ""),
                "psnr": psnr(sr, hr, color, border),
                "ssim": ssim(sr, hr, color, border),
                "consistency": consistency(sr, lr, scale),
            }
        )
        sr_images.append(sr)
        hr_images.append(hr if hr.ndim == 3 else np.repeat(hr[..., None], 3, axis=-1))
    scores = lpips_per_image(sr_images, hr_images, weights_dir)
    for row, score in zip(rows, scores):
        row["lpips"] = score
    table = pd.DataFrame(rows, columns=PER_IMAGE_COLUMNS)
    table.attrs["protocol"] = describe(color, border)
    return table


def evaluate_set(samples_dir: Path, data_dir: Path, cache_dir: Path, weights_dir=None) -> dict:
    """FID, KID and IS of the SR images against the HR test images (the reference set),
    with the image count and the reasons for any metric left empty."""
    result = set_metrics(samples_dir, Path(data_dir) / "test" / "hr", cache_dir, weights_dir)
    result["reference_set"] = "HR test images of this preset"
    return result
