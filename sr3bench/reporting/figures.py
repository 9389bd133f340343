"""The report's figures: the image grid and the training-loss curves (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from sr3bench.metrics.table import by_name  # noqa: E402


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def image_grid(names: list[str], columns: list[tuple[str, Path]], out: Path) -> None:
    """One row per test image, one column per (title, folder); LR shown enlarged with
    nearest-neighbour so its pixels stay visible."""
    fig, axes = plt.subplots(len(names), len(columns), figsize=(2.2 * len(columns), 2.2 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        for col, (title, folder) in enumerate(columns):
            axis = axes[row][col]
            axis.imshow(_load(Path(folder) / name), interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize=10)
            if col == 0:
                axis.set_ylabel(Path(name).stem, fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def detailed_region(image: np.ndarray, size: int) -> tuple[int, int]:
    """(top, left) of the ``size`` x ``size`` window with the most gradient energy: where
    methods differ most (edges, texture), found with a summed-area table."""
    grey = image.astype(np.float64).mean(axis=-1) if image.ndim == 3 else image.astype(np.float64)
    energy = np.zeros_like(grey)
    energy[:, 1:] += np.diff(grey, axis=1) ** 2
    energy[1:, :] += np.diff(grey, axis=0) ** 2
    table = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]
    top, left = np.unravel_index(np.argmax(sums), sums.shape)
    return int(top), int(left)


def zoomed_crops(names: list[str], columns: list[tuple[str, Path]], out: Path) -> None:
    """Per test image: the HR image with the zoomed region outlined, then the same region
    (a quarter of the side, where the HR has most detail) from every column, enlarged with
    nearest-neighbour. The last column is the HR truth; LR crops are scaled to match."""
    fig, axes = plt.subplots(
        len(names), len(columns) + 1, figsize=(2.2 * (len(columns) + 1), 2.3 * len(names)), squeeze=False
    )
    for row, name in enumerate(names):
        truth = _load(Path(columns[-1][1]) / name)
        size = max(8, min(truth.shape[:2]) // 4)
        top, left = detailed_region(truth, size)
        axis = axes[row][0]
        axis.imshow(truth)
        axis.add_patch(
            matplotlib.patches.Rectangle(
                (left - 0.5, top - 0.5), size, size, fill=False, edgecolor="red", linewidth=1.5
            )
        )
        axis.set_ylabel(Path(name).stem, fontsize=7)
        if row == 0:
            axis.set_title("region (HR)", fontsize=10)
        for col, (title, folder) in enumerate(columns, start=1):
            image = _load(Path(folder) / name)
            ratio = image.shape[0] / truth.shape[0]
            y, x, side = int(round(top * ratio)), int(round(left * ratio)), max(1, int(round(size * ratio)))
            axes[row][col].imshow(image[y : y + side, x : x + side], interpolation="nearest")
            if row == 0:
                axes[row][col].set_title(title, fontsize=10)
        for axis in axes[row]:
            axis.set_xticks([])
            axis.set_yticks([])
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def diversity_strip(rows: list[tuple[str, Path, list[Path], Path]], out: Path) -> None:
    """Per input: its LR, several SR samples of it (one seed each), their per-pixel standard
    deviation (where the samples disagree), and the HR truth. ``rows``: (method title, LR
    file, sample files, HR file)."""
    if not rows:
        return _placeholder("no stochastic method in this comparison", out)
    width = max(len(samples) for _, _, samples, _ in rows) + 3
    fig, axes = plt.subplots(len(rows), width, figsize=(2.2 * width, 2.4 * len(rows)), squeeze=False)
    for axis_row, (title, lr, samples, hr) in zip(axes, rows):
        images = [_load(path) for path in samples]
        spread = np.stack(images).astype(np.float64).std(axis=0).mean(axis=-1)
        panels = [("LR (input)", _load(lr))] + [(f"{title}, seed {k + 1}", image) for k, image in enumerate(images)]
        panels += [("std over seeds", spread), ("HR (truth)", _load(hr))]
        for axis in axis_row:
            axis.set_axis_off()
        for axis, (label, image) in zip(axis_row, panels):
            axis.imshow(image, interpolation="nearest", cmap="magma" if image.ndim == 2 else None)
            axis.set_title(label, fontsize=9)
            axis.set_axis_on()
            axis.set_xticks([])
            axis.set_yticks([])
        axis_row[0].set_ylabel(Path(hr).stem, fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def study_extremes(rows: list[tuple[str, list[tuple[Path, str]], int]], out: Path, simulated: bool = False) -> None:
    """Per method: the images whose outputs fooled the raters least, then most, each with
    its fool rate. ``rows``: (method title, [(image file, caption)], how many are worst);
    ``simulated``: the answers were simulated, and the figure says so in its title."""
    if not rows:
        return _placeholder("no human study analysed for this preset", out)
    width = max(len(tiles) for _, tiles, _ in rows)
    top = 0.4 if simulated else 0.0  # inches for the title
    fig, axes = plt.subplots(len(rows), width, figsize=(2.2 * width, 2.8 * len(rows) + top), squeeze=False)
    for axis_row, (title, tiles, worst) in zip(axes, rows):
        for axis in axis_row:
            axis.set_axis_off()
        for index, (axis, (path, caption)) in enumerate(zip(axis_row, tiles)):
            axis.imshow(_load(path))
            kind = "least fooled" if index < worst else "most fooled"
            axis.set_title(f"{title}, {kind}\n{caption}", fontsize=8)
    if simulated:
        fig.suptitle("SIMULATED raters, not people: fool rates drawn by the harness", color="#b00000", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - top / fig.get_figheight()))
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _placeholder(text: str, out: Path) -> None:
    """A declared figure with nothing to plot: a line that says why."""
    fig = plt.figure(figsize=(5, 1))
    fig.text(0.5, 0.5, text, ha="center", va="center")
    fig.savefig(out, dpi=110)
    plt.close(fig)


def loss_curves(curves: dict[str, Path], out: Path) -> None:
    """Training loss against step, one panel per trained method (their losses differ in kind),
    with the validation PSNR on a second axis where the method was validated; with no
    trained method, a figure that says so (the file is a declared output)."""
    if not curves:
        return _placeholder("no trained method in this comparison", out)
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.2), squeeze=False)
    for axis, (method, path) in zip(axes[0], curves.items()):
        table = pd.read_csv(path)
        losses = table.dropna(subset=["loss"])
        axis.plot(losses["step"], losses["loss"], label="training loss")
        axis.set_yscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel("loss (log scale)")
        axis.set_title(f"{method} training loss", fontsize=10)
        axis.grid(alpha=0.3)
        if "val_psnr" in table and table["val_psnr"].notna().any():
            scores = table.dropna(subset=["val_psnr"])
            twin = axis.twinx()
            twin.plot(
                scores["step"], scores["val_psnr"], "o-", color="tab:orange", markersize=3, label="validation PSNR"
            )
            psnr = by_name("psnr")
            twin.set_ylabel(f"validation {psnr.label} ({psnr.unit})", color="tab:orange")
            axis.set_title(f"{method}: training loss and validation PSNR", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


TUNING_PANELS = ("psnr", "lpips", "consistency")


def panel_title(metric: str) -> str:
    """'PSNR (dB, higher is better)': a metric's label, unit and direction, for a figure."""
    column = by_name(metric)
    unit = f"{column.unit}, " if column.unit else ""
    return f"{column.label} ({unit}{'higher' if column.higher_is_better else 'lower'} is better)"


def tuning_curves(tables: dict[str, tuple[pd.DataFrame, dict]], out: Path) -> None:
    """Quality against network evaluations per image on the validation split: one line per
    sampler and schedule shape, the reference as a dashed line, the chosen points starred;
    each axis spans the best three quarters of the points (the worst run off the top).
    ``tables``: method -> (tune table, {variant: row index}). Without a tune stage, a figure
    that says so (the file is a declared output)."""
    if not tables:
        return _placeholder("no tuned sampling schedule in this comparison", out)
    fig, axes = plt.subplots(len(tables), 3, figsize=(15, 4.4 * len(tables)), squeeze=False)
    for row_axes, (method, (table, chosen)) in zip(axes, tables.items()):
        reference = table[table["reference"]].iloc[0]
        points = table[~table["reference"]]
        colours = {sampler: f"C{index}" for index, sampler in enumerate(dict.fromkeys(points["sampler"]))}
        styles = {
            schedule: style for schedule, style in zip(dict.fromkeys(points["schedule"]), ("-", ":", "-.", (0, (5, 2))))
        }
        for axis, metric in zip(row_axes, TUNING_PANELS):
            for (sampler, schedule), line in points.groupby(["sampler", "schedule"], sort=False):
                axis.plot(
                    line["network_evaluations"],
                    line[metric],
                    marker="o",
                    markersize=3,
                    color=colours[sampler],
                    linestyle=styles.get(schedule, "-"),
                    label=f"{sampler}, {schedule}",
                )
            axis.axhline(
                reference[metric],
                color="black",
                linestyle="--",
                linewidth=1,
                label=f"reference: ancestral, {int(reference['steps'])} steps",
            )
            for variant, index in chosen.items():
                axis.plot(
                    table.loc[index, "network_evaluations"],
                    table.loc[index, metric],
                    marker="*",
                    markersize=14,
                    color="black",
                    linestyle="none",
                )
                axis.annotate(
                    variant,
                    (table.loc[index, "network_evaluations"], table.loc[index, metric]),
                    textcoords="offset points",
                    xytext=(6, 6),
                    fontsize=8,
                )
            values = pd.concat([points[metric], pd.Series([reference[metric]])])
            higher = by_name(metric).higher_is_better
            low, high = (values.quantile(0.25), values.max()) if higher else (values.min(), values.quantile(0.75))
            margin = 0.15 * (high - low) or 0.01 * abs(high) or 0.01
            axis.set_ylim(
                low - margin, high + margin
            )  # the best three quarters of the points: the choice is among them
            axis.set_xscale("log")
            axis.set_xticks(sorted(set(points["network_evaluations"])))
            axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            axis.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            axis.set_xlabel("network evaluations per image")
            axis.set_title(f"{method}: {panel_title(metric)}", fontsize=10)
            axis.grid(alpha=0.3)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.16 / len(tables), 1, 1))  # room for the legend below the panels
    fig.savefig(out, dpi=110)
    plt.close(fig)
