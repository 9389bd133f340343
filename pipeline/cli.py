"""``sr3bench``: one subcommand per pipeline stage, called identically by Snakemake and DVC.

    sr3bench prepare  --preset demo
    sr3bench train    --preset demo --method sr3
    sr3bench sample   --preset demo --method sr3
    sr3bench evaluate --preset demo --method sr3
    sr3bench report   --preset demo
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipeline import config, paths

log = logging.getLogger("sr3bench")


def set_threads(requested: int) -> int:
    """Use exactly the declared threads, capped at the cores this process may run on."""
    import torch

    from sr3.images import cpu_count

    threads = max(1, min(requested, cpu_count()))
    torch.set_num_threads(threads)
    return threads


def setup_logging(log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True)


def command_prepare(preset_name, preset, args):
    from pipeline.stages import run_prepare

    run_prepare(preset_name, preset)


def command_train(preset_name, preset, args):
    from pipeline.stages import run_train

    run_train(preset_name, preset, args.method)


def command_sample(preset_name, preset, args):
    from pipeline.stages import run_sample

    run_sample(preset_name, preset, args.method)


def command_evaluate(preset_name, preset, args):
    from metrics.evaluate import evaluate_method
    from sr3.atomic import atomic_path

    table = evaluate_method(
        args.method, paths.data_dir(preset_name), paths.samples_dir(preset_name, args.method), preset["protocol"], preset["dataset"]["scale"]
    )
    out = paths.results_file(preset_name, args.method)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as temporary:
        table.to_csv(temporary, index=False)
    log.info("%s: mean PSNR %.3f dB, SSIM %.4f over %d images", args.method, table["psnr"].mean(), table["ssim"].mean(), len(table))


def command_report(preset_name, preset, args):
    from reports.build import build_report

    results = {m: paths.results_file(preset_name, m) for m in paths.METHODS}
    samples = {m: paths.samples_dir(preset_name, m) for m in paths.METHODS}
    losses = {m: paths.loss_file(preset_name, m) for m in paths.TRAINED_METHODS}
    notes = {
        "FID, KID, IS, LPIPS": "not computed yet by this version of the evaluate stage",
    }
    build_report(preset_name, preset, results, paths.data_dir(preset_name), samples, losses, paths.report_dir(preset_name), notes)


COMMANDS = {
    "prepare": (command_prepare, False),
    "train": (command_train, True),
    "sample": (command_sample, True),
    "evaluate": (command_evaluate, True),
    "report": (command_report, False),
}


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="sr3bench", description="SR3 Bench pipeline stages")
    sub = main.add_subparsers(dest="command", required=True)
    for name, (_, needs_method) in COMMANDS.items():
        command = sub.add_parser(name)
        command.add_argument("--preset", help="preset name (default: the preset key of the params file)")
        command.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        command.add_argument("--threads", type=int, default=1, help="threads this stage may use")
        command.add_argument("--log", help="also write the log to this file")
        if needs_method:
            allowed = paths.TRAINED_METHODS if name == "train" else paths.METHODS
            command.add_argument("--method", required=True, choices=allowed)
    return main


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.log)
    try:
        preset_name, preset, _ = config.load(args.params, args.preset)
    except config.ConfigError as error:
        log.error("%s", error)
        return 2
    threads = set_threads(args.threads)
    log.info("%s: preset %s, %d thread(s)", args.command, preset_name, threads)
    function, _ = COMMANDS[args.command]
    try:
        function(preset_name, preset, args)
    except (FileNotFoundError, ValueError, OSError, RuntimeError) as error:
        log.error("%s failed: %s", args.command, error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
