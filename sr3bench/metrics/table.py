"""The one table of the metrics: for each, its CSV column, how tables print it (label,
unit, decimals, the direction of better), whether it is computed per image or per set,
and the function computing it. Evaluate, the report, the README table, the front page,
the figures and the tune stage all read it; nothing else lists these facts.

The functions are named as ``"module:function"`` strings and imported only on use, so
reading the table imports neither torch nor lpips.

Decimals follow the published tables the report sets ours beside: PSNR 2 (SR3 Tables 1
and 2, EDSR/RCAN), SSIM 4 (the EDSR/RCAN benchmark values, 0.8104; SR3's 2- and
3-decimal values print exactly too), consistency 2 (SR3 Table 1: 2.71), LPIPS 3 (as most SR
papers print it; the 4th digit is far inside the bootstrap interval), FID and IS 2 (SR3
Table 2 prints 1: 5.2 shows as 5.20), KID 4 (torch-fidelity's raw value, about 1e-2).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

PER = ("image", "set")


@dataclass(frozen=True)
class Column:
    """How a numeric column is printed."""

    name: str  # the CSV column
    label: str
    unit: str  # "" when the value has none
    higher_is_better: bool
    decimals: int

    @property
    def header(self) -> str:
        """'PSNR (dB) ↑': the label, the unit, and an arrow towards the better values."""
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.label}{unit} {'↑' if self.higher_is_better else '↓'}"

    def format(self, value: float, signed: bool = False) -> str:
        """``value`` with this column's decimals (and its sign when ``signed``)."""
        return f"{value:{'+' if signed else ''}.{self.decimals}f}"


@dataclass(frozen=True)
class Metric(Column):
    """A column that evaluate computes: per image (averaged by the report) or per set."""

    per: str  # "image" or "set"
    compute: str  # "module:function"; the signatures differ, evaluate calls each

    def __post_init__(self):
        if self.per not in PER:
            raise ValueError(f"metric {self.name}: per is {self.per!r}, not one of {PER}")

    def function(self) -> Callable:
        """The function computing the metric (imported now, not when the table is read)."""
        module, name = self.compute.split(":")
        return getattr(importlib.import_module(module), name)


CONSISTENCY_UNIT = "MSE ×1e-5"  # consistency.UNIT: the MSE is reported in units of 1e-5

# In the order of the report's metrics.csv columns.
# name, label, unit, higher is better, decimals, per, computed by
METRICS = (
    Metric("psnr", "PSNR", "dB", True, 2, "image", "sr3bench.metrics.psnr_ssim:psnr"),
    Metric("ssim", "SSIM", "", True, 4, "image", "sr3bench.metrics.psnr_ssim:ssim"),
    Metric(
        "consistency", "Consistency", CONSISTENCY_UNIT, False, 2, "image", "sr3bench.metrics.consistency:consistency"
    ),
    Metric("fid", "FID", "", False, 2, "set", "sr3bench.metrics.fid_kid_is:set_metrics"),
    Metric("kid", "KID", "", False, 4, "set", "sr3bench.metrics.fid_kid_is:set_metrics"),
    Metric("is", "IS", "", True, 2, "set", "sr3bench.metrics.fid_kid_is:set_metrics"),
    Metric("lpips", "LPIPS", "", False, 3, "image", "sr3bench.metrics.lpips_metric:lpips_per_image"),
)
# The tune stage's table adds these to the per-image metrics.
TUNE_COLUMNS = (
    Column("consistency_reference_images", "Consistency on the reference images", CONSISTENCY_UNIT, False, 2),
    Column("seconds_per_image", "Time", "s per image", False, 2),
)
_BY_NAME = {column.name: column for column in METRICS + TUNE_COLUMNS}


def find(name: str) -> Column | None:
    """The metric (or tune column) called ``name``; None for any other column."""
    return _BY_NAME.get(name)


def by_name(name: str) -> Column:
    """The metric (or tune column) called ``name``; a KeyError for any other."""
    if name not in _BY_NAME:
        raise KeyError(f"unknown metric {name!r}; the metric table has {', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def names(per: str | None = None) -> list[str]:
    """The metrics' names in table order: all, or those computed per ``"image"`` or ``"set"``."""
    if per is not None and per not in PER:
        raise ValueError(f"per is {per!r}, not one of {PER}")
    return [metric.name for metric in METRICS if per is None or metric.per == per]


def header(name: str) -> str:
    """A table header for any column: the metric's, or the name itself for other columns."""
    column = find(name)
    return column.header if column else name.replace("_", " ")


def format_value(name: str, value: float, signed: bool = False) -> str:
    """``value`` with the decimals of the metric ``name`` (with its sign when ``signed``)."""
    return by_name(name).format(value, signed)
