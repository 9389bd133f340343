"""Training loss curves of several runs of one method side by side (e.g. fp32 against bf16,
or CPU against GPU), smoothed, in one figure; prints each run's mean loss over the last
tenth of its steps and its difference from the first run's.

    python benchmarks/loss_curves.py fp32=runs/fp32/loss.csv bf16=runs/bf16/loss.csv --out curves.png

Each file is a trainer's ``loss.csv`` (``models/<preset>/<method>/loss.csv``: step, loss).
SR3's loss is noisy step to step (each step draws its own noise levels), so the curves
are running means over ``--window`` logged points and the runs compare by their tails."""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def tail_mean(losses: pd.DataFrame, share: float = 0.1) -> float:
    """Mean loss over the last ``share`` of the run's steps."""
    last = losses["step"].max()
    return float(losses.loc[losses["step"] > last * (1 - share), "loss"].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="LABEL=path/to/loss.csv")
    parser.add_argument("--out", type=Path, default=Path("loss_curves.png"))
    parser.add_argument("--window", type=int, default=10, help="logged points per running mean")
    parser.add_argument("--title", default="training loss")
    args = parser.parse_args()
    runs = {}
    for run in args.runs:
        label, _, path = run.partition("=")
        if not path:
            parser.error(f"{run!r}: give each run as LABEL=path/to/loss.csv")
        runs[label] = pd.read_csv(path).dropna(subset=["loss"])
    fig, axis = plt.subplots(figsize=(6.5, 3.6))
    first = None
    print(f"{'run':<24}{'steps':>8}{'mean loss, last 10%':>22}{'vs first':>10}")
    for label, losses in runs.items():
        smooth = losses["loss"].rolling(args.window, min_periods=1).mean()
        axis.plot(losses["step"], smooth, label=label, linewidth=1.2)
        tail = tail_mean(losses)
        first = tail if first is None else first
        print(f"{label:<24}{int(losses['step'].max()):>8}{tail:>22.4f}{(tail / first - 1) * 100:>9.1f}%")
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel(f"loss (running mean of {args.window} logs)")
    axis.set_title(args.title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    plt.close(fig)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
