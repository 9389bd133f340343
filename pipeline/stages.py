"""The stage functions behind the CLI: each reads files and writes files. Which method
does what comes from the registry; where files live comes from the layout."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import torch
from PIL import Image

from sr3bench.core.atomic import atomic_folder, atomic_path
from sr3bench.core.images import list_images, read_image, write_png
from sr3bench.core.progress import progress
from sr3bench.core.runtime import runtime_from_config, sampling_model
from sr3bench.core.seeds import numpy_seed
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
    from sr3bench.metrics.psnr_ssim import psnr

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


def _batches_by_shape(names: list[str], sizes: dict, batch_size: int):
    """Consecutive runs of same-sized images, at most ``batch_size`` long."""
    batch = []
    for name in names:
        if batch and (len(batch) == batch_size or sizes[batch[0]] != sizes[name]):
            yield batch
            batch = []
        batch.append(name)
    if batch:
        yield batch


def sample_work_dir(preset_name: str, settings: dict, method: str) -> Path:
    """Where samples accumulate while a stage runs: outside the declared outputs (which
    Snakemake deletes when a job fails), keyed by everything the samples depend on (model
    file, test set, diffusion settings, seed, sampling code), so a re-run after an
    interruption samples only the missing images. Shards of one method share it."""
    model = layout.model_file(preset_name, method)
    model_hash = hashlib.sha256(model.read_bytes()).hexdigest()[:12] if registry.entry(method).trained else "none"
    manifest = layout.manifest_file(preset_name).read_bytes()
    compiled = settings["sampling"].get("compile", False)  # compiled kernels round differently
    key = digest([model_hash, hashlib.sha256(manifest).hexdigest(), settings["diffusion"], settings["seed"], code_fingerprint(sampling_code(method))] + ([True] if compiled else []))
    return layout.sample_cache_dir(preset_name, method) / key


def publish(files: dict[str, Path], out: Path, link: bool = False) -> None:
    """Copy (or hard-link, where the filesystem allows) ``{name: source}`` into the stage
    output, which is renamed into place when complete."""
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, source in files.items():
        if link:
            try:
                os.link(source, staging / name)
                continue
            except OSError:  # across filesystems: copy instead
                pass
        shutil.copy2(source, staging / name)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def test_names(preset_name: str) -> list[str]:
    return [p.name for p in list_images(layout.split_dir(preset_name, "test", "lr"))]


def sampling_batches(preset_name: str, names: list[str], batch_size: int) -> list[list[str]]:
    """The batches a method samples ``names`` in: runs of equal-sized LR images (sizes
    read from the PNG headers), at most ``batch_size`` long."""
    lr_folder = layout.split_dir(preset_name, "test", "lr")
    sizes = {}
    for name in names:
        with Image.open(lr_folder / name) as image:
            sizes[name] = image.size
    return list(_batches_by_shape(names, sizes, batch_size))


def shard_names(batches: list[list[str]], index: int, count: int) -> list[str]:
    """The test images of shard ``index`` of ``count``: every count-th batch of the whole
    set's batches, so that each image is sampled in the batch one worker would put it in
    (equal bytes, whatever the sharding) and the shards get equal work."""
    return [name for batch in batches[index::count] for name in batch]


def run_sample(preset_name: str, preset: dict, method: str, shard: tuple[int, int] | None = None) -> None:
    """One SR PNG per test image. Each image is written atomically to the work folder; a
    re-run after an interruption samples only the missing ones.

    With ``sampling.shards`` N above 1, ``shard`` (i, N) samples shard i alone into
    ``samples/<preset>/shards/<method>/i-of-N`` (N workers: Snakemake jobs, cluster
    nodes); without it, the shards not yet there are sampled here and then merged into
    the method's samples. The work folder is removed once the samples are published."""
    settings = registry.apply_variant(preset, method, read_choices(preset_name, method))
    work = sample_work_dir(preset_name, settings, method)
    names = test_names(preset_name)
    count = settings["sampling"]["shards"]
    if shard is not None:
        index, given = shard
        if given != count or not 0 <= index < count:
            raise ValueError(f"--shard {index}/{given}: this preset has sampling.shards {count}, so the shards are 0/{count} ... {count - 1}/{count}")
    if count == 1:
        sample_missing(preset_name, settings, method, work, names, names)
        publish({name: work / name for name in names}, layout.samples_dir(preset_name, method))
    else:
        batches = sampling_batches(preset_name, names, settings["sampling"]["batch_size"])
        for index in [shard[0]] if shard else range(count):
            out = layout.sample_shard_dir(preset_name, method, index, count)
            if shard or _shard_key(out) != work.name:  # absent, or sampled with another model or config
                members = shard_names(batches, index, count)
                sample_missing(preset_name, settings, method, work, names, members)
                publish({name: work / name for name in members}, out)
                (out / SHARD_KEY).write_text(work.name)
        if shard:
            return  # the merge (sr3bench sample without --shard) removes the work folder
        merge_shards(preset_name, method, names, count, work.name)
    shutil.rmtree(layout.sample_cache_dir(preset_name, method), ignore_errors=True)  # published; older keys are stale too


SHARD_KEY = ".sampling-key"  # in a shard folder: the work folder's key (model, test set, settings, code) it was sampled under


def _shard_key(folder: Path) -> str | None:
    return (folder / SHARD_KEY).read_text() if (folder / SHARD_KEY).exists() else None


def merge_shards(preset_name: str, method: str, names: list[str], count: int, key: str) -> None:
    """The method's samples from its ``count`` shard folders, which must hold each test
    image exactly once, all sampled under ``key`` (hard links where the filesystem
    allows: no second copy)."""
    owner = {}
    for index in range(count):
        folder = layout.sample_shard_dir(preset_name, method, index, count)
        if _shard_key(folder) != key:
            raise ValueError(f"{folder} was sampled with another model or sampling config: sample it again (sr3bench sample --shard {index}/{count})")
        for path in list_images(folder):
            if path.name in owner:
                raise ValueError(f"{path.name} is in shards {owner[path.name].name} and {index}-of-{count}: remove {folder.parent} and sample again")
            owner[path.name] = folder
    missing = sorted(set(names) - set(owner))
    if missing:
        raise ValueError(f"the shards of {method} lack {len(missing)} test images ({', '.join(missing[:3])} ...): sample the missing shards (sr3bench sample --shard I/{count})")
    publish({name: owner[name] / name for name in names}, layout.samples_dir(preset_name, method), link=True)
    log.info("%s: merged %d shards (%d images)", method, count, len(names))


def sample_missing(preset_name: str, settings: dict, method: str, out: Path, names: list[str], members: list[str]) -> None:
    """Super-resolve the images of ``members`` not yet in ``out``, in batches of equal
    size; ``names`` (the whole test set, in order) gives each image its seed."""
    implementation = registry.load(method)
    scale = settings["dataset"]["scale"]
    todo = [name for name in members if not (out / name).exists()]
    log.info("%s: %d test images, %d to sample", method, len(members), len(todo))
    model = sampling_model(implementation, layout.model_file(preset_name, method), settings) if registry.entry(method).trained and todo else None
    lr_folder = layout.split_dir(preset_name, "test", "lr")
    lr_images = {name: read_image(lr_folder / name) for name in todo}
    index_of = {name: index for index, name in enumerate(names)}
    sizes = {name: image.shape for name, image in lr_images.items()}
    with progress(total=len(todo), desc=f"sample {method}", mininterval=2, bar_format="{l_bar}{bar}| {n:.1f}/{total} images [{elapsed}<{remaining}]") as bar:
        for batch in _batches_by_shape(todo, sizes, settings["sampling"]["batch_size"]):
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
    names = test_names(preset_name)[:count]
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
    from sr3bench.metrics.evaluate import evaluate_method, evaluate_set

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
    from sr3bench.reporting.build import build_report
    from sr3bench.reporting.provenance import provenance

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
