"""The stage functions behind the CLI: each reads files and writes files. Which method
does what comes from the registry; where files live comes from the layout."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import torch

from core.atomic import atomic_folder, atomic_path
from core.images import list_images, read_image, write_png
from core.progress import progress
from core.runtime import runtime_from_config, sampling_model
from core.seeds import numpy_seed
from pipeline import layout, registry
from pipeline.code_deps import code_fingerprint, sampling_code, training_code
from pipeline.config import digest
from pipeline.prepare import prepare
from pipeline.tune_stage import read_choices

log = logging.getLogger(__name__)


def run_prepare(preset_name: str, preset: dict) -> None:
    out = layout.data_dir(preset_name)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    prepare(preset, staging)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def run_train(preset_name: str, preset: dict, method: str) -> None:
    from sr3.data import PairDataset, PatchSampler
    from sr3.training import Trainer, write_loss_csv

    entry = registry.entry(method)
    if not entry.trained or layout.variant_name(method):
        trained = [e.name for e in registry.ENTRIES if e.trained]
        raise ValueError(f"method {method!r} is not trained; trained methods: {', '.join(trained)}")
    implementation = registry.load(method)
    settings = preset["training"][method]
    runtime = runtime_from_config(preset["runtime"])
    torch.manual_seed(preset["seed"])  # the model's initial weights
    model = implementation.build_model(preset)
    dataset = PairDataset(layout.shard_dir(preset_name, "train"), preset["dataset"]["scale"])
    log.info("training %s on %d pairs of %dx%d (%s, %s, %d process(es))", method, len(dataset), *dataset.image_size, runtime.device, runtime.precision, runtime.world_size)
    sampler = PatchSampler(dataset, settings["patch_size"], settings["batch_size"], preset["seed"])
    training_diffusion = {key: value for key, value in preset["diffusion"].items() if key not in ("inference_schedule", "sampler")}
    fingerprint = digest([preset["model"], settings, training_diffusion, preset["dataset"], preset["seed"], method, code_fingerprint(training_code(method))])
    validate = validation_psnr(preset_name, preset, implementation) if settings["keep"] == "best_val_psnr" else None
    trainer = Trainer(model, implementation.training_loss(preset), sampler, settings, preset["seed"], layout.checkpoint_file(preset_name, method), fingerprint, runtime, validate)
    history = trainer.run()
    if runtime.writes_files:
        implementation.save_model_file(layout.model_file(preset_name, method), trainer.final_model().cpu(), preset)
        write_loss_csv(history, layout.loss_file(preset_name, method), trainer.validation_history)


def validation_psnr(preset_name: str, preset: dict, implementation):
    """A function of a model: its mean PSNR on the validation split, under the preset's
    protocol, each image super-resolved alone (seeded like the test images)."""
    from metrics.psnr_ssim import psnr

    hr_folder, lr_folder = layout.split_dir(preset_name, "val", "hr"), layout.split_dir(preset_name, "val", "lr")
    names = [p.name for p in list_images(hr_folder)]
    pairs = [(read_image(hr_folder / n), read_image(lr_folder / n)) for n in names]
    protocol, scale = preset["protocol"], preset["dataset"]["scale"]

    def validate(model) -> float:
        values = []
        for index, (hr, lr) in enumerate(pairs):
            (sr,) = implementation.super_resolve(model, [lr], scale, [numpy_seed(preset["seed"], index)], preset, lambda fraction: None)
            values.append(psnr(sr, hr, protocol["color"], protocol["border_crop"]))
        return sum(values) / len(values)

    return validate


def _batches_by_shape(names: list[str], lr_images: dict, batch_size: int):
    """Consecutive runs of same-sized images, at most ``batch_size`` long."""
    batch = []
    for name in names:
        if batch and (len(batch) == batch_size or lr_images[batch[0]].shape != lr_images[name].shape):
            yield batch
            batch = []
        batch.append(name)
    if batch:
        yield batch


def sample_work_dir(preset_name: str, settings: dict, method: str) -> Path:
    """Where samples accumulate while a stage runs: outside the declared outputs (which
    Snakemake deletes when a job fails), keyed by everything the samples depend on (model
    file, test set, diffusion settings, seed, sampling code), so a re-run after an
    interruption samples only the missing images."""
    model = layout.model_file(preset_name, method)
    model_hash = hashlib.sha256(model.read_bytes()).hexdigest()[:12] if registry.entry(method).trained else "none"
    manifest = layout.manifest_file(preset_name).read_bytes()
    compiled = settings["sampling"].get("compile", False)  # compiled kernels round differently
    key = digest([model_hash, hashlib.sha256(manifest).hexdigest(), settings["diffusion"], settings["seed"], code_fingerprint(sampling_code(method))] + ([True] if compiled else []))
    return layout.sample_cache_dir(preset_name, method) / key


def publish(work: Path, out: Path, names: list[str]) -> None:
    """Copy the finished samples to the stage output, renamed into place when complete."""
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in names:
        shutil.copy2(work / name, staging / name)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def run_sample(preset_name: str, preset: dict, method: str) -> None:
    """One SR PNG per test image. Each image is a shard, written atomically to the work
    folder; a re-run after an interruption samples only the missing ones. The work folder
    is removed once its images are published."""
    settings = registry.apply_variant(preset, method, read_choices(preset_name, method))
    work = sample_work_dir(preset_name, settings, method)
    names = [p.name for p in list_images(layout.split_dir(preset_name, "test", "lr"))]
    sample_missing(preset_name, settings, method, work, names)
    publish(work, layout.samples_dir(preset_name, method), names)
    shutil.rmtree(layout.sample_cache_dir(preset_name, method))  # published; older keys are stale too


def sample_missing(preset_name: str, settings: dict, method: str, out: Path, names: list[str]) -> None:
    """Super-resolve the test images not yet in ``out``, in batches of equal size."""
    implementation = registry.load(method)
    scale = settings["dataset"]["scale"]
    todo = [name for name in names if not (out / name).exists()]
    log.info("%s: %d test images, %d to sample", method, len(names), len(todo))
    model = sampling_model(implementation, layout.model_file(preset_name, method), settings) if registry.entry(method).trained else None
    lr_folder = layout.split_dir(preset_name, "test", "lr")
    lr_images = {name: read_image(lr_folder / name) for name in todo}
    index_of = {name: index for index, name in enumerate(names)}
    with progress(total=len(todo), desc=f"sample {method}", mininterval=2, bar_format="{l_bar}{bar}| {n:.1f}/{total} images [{elapsed}<{remaining}]") as bar:
        for batch in _batches_by_shape(todo, lr_images, settings["sampling"]["batch_size"]):
            seeds = [numpy_seed(settings["seed"], index_of[name]) for name in batch]
            images = implementation.super_resolve(
                model, [lr_images[name] for name in batch], scale, seeds, settings, lambda fraction: bar.update(fraction * len(batch))
            )
            for name, image in zip(batch, images):
                write_png(image, out / name)
            log.info("%s: wrote %d images (%s ...)", method, len(batch), batch[0])


def run_diversity(preset_name: str, preset: dict, method: str) -> None:
    """``diversity.seeds`` samples of each of the first ``diversity.images`` test images,
    with seeds other than the sample stage's, as <stem>_seed<k>.png."""
    count, seeds = preset["diversity"]["images"], preset["diversity"]["seeds"]
    implementation = registry.load(method)
    model = sampling_model(implementation, layout.model_file(preset_name, method), preset)
    names = [p.name for p in list_images(layout.split_dir(preset_name, "test", "lr"))][:count]
    out = layout.diversity_dir(preset_name, method)
    with atomic_folder(out) as staging, progress(total=len(names), desc=f"diversity {method}", mininterval=2) as bar:
        for index, name in enumerate(names):
            lr = read_image(layout.split_dir(preset_name, "test", "lr") / name)
            batch_seeds = [numpy_seed(preset["seed"], index, DIVERSITY_STREAM, k) for k in range(seeds)]
            images = implementation.super_resolve(model, [lr] * seeds, preset["dataset"]["scale"], batch_seeds, preset, lambda fraction: None)
            for k, image in enumerate(images, start=1):
                write_png(image, staging / f"{Path(name).stem}_seed{k}.png")
            bar.update(1)
    log.info("%s: %d seeds of %d test images in %s", method, seeds, len(names), out)


DIVERSITY_STREAM = 7  # a seed part that keeps the diversity samples apart from the test samples


def run_evaluate(preset_name: str, preset: dict, method: str, weights_dir=None) -> None:
    """Per-image metrics (CSV) and set metrics with the protocol they were computed under
    (the JSON sidecar, which the report prints)."""
    from metrics.evaluate import evaluate_method, evaluate_set

    samples, hr_dir = layout.samples_dir(preset_name, method), layout.split_dir(preset_name, "test", "hr")
    manifest = json.loads(layout.manifest_file(preset_name).read_text())
    groups = {row["name"]: row["group"] for row in manifest["test"]}
    lr_dir = layout.split_dir(preset_name, "test", "lr")
    table, protocol = evaluate_method(method, hr_dir, lr_dir, samples, groups, preset["protocol"], preset["dataset"]["scale"], weights_dir)
    set_level = evaluate_set(samples, hr_dir, layout.fidelity_cache_dir(preset_name), weights_dir)
    sidecar = {**set_level, "protocol": protocol}
    out = layout.results_file(preset_name, method)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(layout.set_metrics_file(preset_name, method)) as temporary:
        temporary.write_text(json.dumps(sidecar, indent=1))
    with atomic_path(out) as temporary:
        table.to_csv(temporary, index=False)
    log.info(
        "%s: PSNR %.3f dB, SSIM %.4f, LPIPS %.4f, FID %.2f over %d images",
        method, table["psnr"].mean(), table["ssim"].mean(), table["lpips"].mean(), set_level["fid"], len(table),
    )


def parameter_count(method: str, preset: dict) -> int:
    """Parameters of a trained method's network (built on the meta device: no memory)."""
    with torch.device("meta"):
        model = registry.load(method).build_model(preset)
    return sum(p.numel() for p in model.parameters())


def run_scale(preset_name: str, preset: dict, methods: list[str]) -> dict:
    """This run's scale, in the rows the report sets beside the paper's."""
    trained = [m for m in registry.trained_methods(methods) if not layout.variant_name(m)]
    per_method = lambda value: ", ".join(f"{registry.title(m)} {value(m)}" for m in trained)  # noqa: E731
    manifest = json.loads(layout.manifest_file(preset_name).read_text())
    return {
        "training_images": f"{len(manifest['train'])} pairs",
        "training_steps": per_method(lambda m: f"{preset['training'][m]['steps']:,}"),
        "batch_size": per_method(lambda m: preset["training"][m]["batch_size"]),
        "parameters": per_method(lambda m: f"{parameter_count(m, preset) / 1e6:.2f}M"),
        "inference_steps": str(preset["diffusion"]["inference_schedule"]["steps"]),
        "test_images": str(len(manifest["test"])),
    }


def run_report(preset_name: str, preset: dict, methods: list[str], threads: dict) -> None:
    from reporting.build import build_report
    from reporting.provenance import provenance

    build_report(
        preset_name,
        preset,
        results={m: layout.results_file(preset_name, m) for m in methods},
        titles={m: registry.title(m) for m in methods},
        test_hr=layout.split_dir(preset_name, "test", "hr"),
        test_lr=layout.split_dir(preset_name, "test", "lr"),
        samples={m: layout.samples_dir(preset_name, m) for m in methods},
        losses={m: layout.loss_file(preset_name, m) for m in registry.trained_methods(methods)},
        paper_tables=layout.PAPER_TABLES_DIR,
        out=layout.report_dir(preset_name),
        scale_here=run_scale(preset_name, preset, methods),
        tuning={m: layout.tune_table(preset_name, m) for m in registry.tuned_methods(preset, methods)},
        diversity={m: layout.diversity_dir(preset_name, m) for m in registry.diverse_methods(preset, methods)},
        provenance_record=provenance(preset, threads, layout.log_file(preset_name, "report").parent, layout.manifest_file(preset_name)),
    )
