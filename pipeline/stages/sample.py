"""The sample stage: one SR PNG per test image for one method (or variant), resumable,
optionally in shards that separate jobs sample and this stage merges."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

from PIL import Image

from pipeline import layout, registry
from pipeline.code_deps import code_fingerprint, stage_code
from pipeline.config import digest
from pipeline.settings import Preset
from sr3bench.core.atomic import publish_folder
from sr3bench.core.images import batches_of_equal_size, list_images, read_image, write_png
from sr3bench.core.progress import progress
from sr3bench.core.runtime import sampling_model
from sr3bench.core.seeds import numpy_seed
from sr3bench.core.stage_files import read_json

log = logging.getLogger(__name__)

SHARD_KEY = (
    ".sampling-key"  # in a shard folder: the work folder's key (model, test set, settings, code) it was sampled under
)


def run(job) -> None:
    """One SR PNG per test image. Each image is written atomically to the work folder; a
    re-run after an interruption samples only the missing ones.

    With ``sampling.shards`` N above 1, ``job.shard`` (i, N) samples shard i alone into
    ``samples/<preset>/shards/<method>/i-of-N`` (N workers: Snakemake jobs, cluster
    nodes); without it, the shards not yet there are sampled here and then merged into
    the method's samples. The work folder is removed once the samples are published."""
    paths, method, shard = job.paths, job.method, job.shard
    if method in registry.outside_methods(job.preset, [method]):
        raise ValueError(
            f"{method} is an outside method (presets.{job.preset_name}.external.{method}): its samples are its "
            f"folder, which `sr3bench collect --preset {job.preset_name} --method {method}` checks and copies"
        )
    settings = Preset.from_config(
        job.preset_name, registry.apply_variant(job.preset, method, read_choices(paths, method))
    )
    work = sample_work_dir(paths, settings, method)
    names = test_names(paths)
    count = settings.sampling.shards
    if shard is not None:
        index, given = shard
        if given != count or not 0 <= index < count:
            raise ValueError(
                f"--shard {index}/{given}: this preset has sampling.shards {count}, "
                f"so the shards are 0/{count} ... {count - 1}/{count}"
            )
    if count == 1:
        sample_missing(paths, settings, method, work, names, names)
        publish_folder({name: work / name for name in names}, paths.samples(method))
    else:
        batches = sampling_batches(paths, names, settings.sampling.batch_size)
        for index in [shard[0]] if shard else range(count):
            out = paths.sample_shard(method, index, count)
            if shard or _shard_key(out) != work.name:  # absent, or sampled with another model or config
                members = shard_names(batches, index, count)
                sample_missing(paths, settings, method, work, names, members)
                publish_folder({name: work / name for name in members}, out)
                (out / SHARD_KEY).write_text(work.name)
        if shard:
            return  # the merge (sr3bench sample without --shard) removes the work folder
        merge_shards(paths, method, names, count, work.name)
    shutil.rmtree(paths.sample_cache(method), ignore_errors=True)  # published; older keys are stale too


def read_choices(paths: layout.PresetPaths, method: str) -> dict | None:
    """{variant: {sampler, inference_schedule}} from the tune stage, or None before it ran."""
    base = layout.base_method(method)
    path = paths.tune_choices(base)
    if not path.exists():
        return None
    again = f"run the tune stage again (sr3bench tune --preset {paths.preset} --method {base})"
    choices = read_json(path, again, ("choices",))["choices"]
    return {name: {key: choice[key] for key in ("sampler", "inference_schedule")} for name, choice in choices.items()}


def sample_work_dir(paths: layout.PresetPaths, settings: Preset, method: str) -> Path:
    """Where samples accumulate while a stage runs: outside the declared outputs (which
    Snakemake deletes when a job fails), keyed by everything the samples depend on (model
    file, test set, a diffusion method's diffusion settings, seed, sampling code), so a re-run after an
    interruption samples only the missing images. Shards of one method share it."""
    trained = registry.entry(method).trained
    if trained and not paths.model(method).is_file():
        raise FileNotFoundError(
            f"model file {paths.model(method)} not found; run the training stage first "
            f"(sr3bench train --preset {paths.preset} --method {layout.base_method(method)})"
        )
    model_hash = hashlib.sha256(paths.model(method).read_bytes()).hexdigest()[:12] if trained else "none"
    if not paths.manifest.is_file():
        raise FileNotFoundError(
            f"{paths.manifest} not found: run the prepare stage first ({layout.prepare_command(paths.preset)})"
        )
    manifest = hashlib.sha256(paths.manifest.read_bytes()).hexdigest()
    compiled = settings.sampling.compile  # compiled kernels round differently
    code = code_fingerprint(stage_code(__name__, method))
    diffusion = settings.config["diffusion"] if registry.entry(method).diffusion else None
    key = digest([model_hash, manifest, diffusion, settings.seed, code] + ([True] if compiled else []))
    return paths.sample_cache(method) / key


def test_names(paths: layout.PresetPaths) -> list[str]:
    folder = paths.split("test", "lr")
    return [p.name for p in list_images(folder)]


def sampling_batches(paths: layout.PresetPaths, names: list[str], batch_size: int) -> list[list[str]]:
    """The batches a method samples ``names`` in: runs of equal-sized LR images (sizes
    read from the PNG headers), at most ``batch_size`` long."""
    lr_folder = paths.split("test", "lr")
    sizes = {}
    for name in names:
        with Image.open(lr_folder / name) as image:
            sizes[name] = image.size
    return list(batches_of_equal_size(names, sizes, batch_size))


def shard_names(batches: list[list[str]], index: int, count: int) -> list[str]:
    """The test images of shard ``index`` of ``count``: every count-th batch of the whole
    set's batches, so that each image is sampled in the batch one worker would put it in
    (equal bytes, whatever the sharding) and the shards get equal work."""
    return [name for batch in batches[index::count] for name in batch]


def _shard_key(folder: Path) -> str | None:
    return (folder / SHARD_KEY).read_text() if (folder / SHARD_KEY).exists() else None


def merge_shards(paths: layout.PresetPaths, method: str, names: list[str], count: int, key: str) -> None:
    """The method's samples from its ``count`` shard folders, which must hold each test
    image exactly once, all sampled under ``key`` (hard links where the filesystem
    allows: no second copy)."""
    owner = {}
    for index in range(count):
        folder = paths.sample_shard(method, index, count)
        if _shard_key(folder) != key:
            raise ValueError(
                f"{folder} was sampled with another model or sampling config: "
                f"sample it again (sr3bench sample --shard {index}/{count})"
            )
        for path in list_images(folder):
            if path.name in owner:
                raise ValueError(
                    f"{path.name} is in shards {owner[path.name].name} and {index}-of-{count}: "
                    f"remove {folder.parent} and sample again"
                )
            owner[path.name] = folder
    missing = sorted(set(names) - set(owner))
    if missing:
        raise ValueError(
            f"the shards of {method} lack {len(missing)} test images ({', '.join(missing[:3])} ...): "
            f"sample the missing shards (sr3bench sample --shard I/{count})"
        )
    publish_folder({name: owner[name] / name for name in names}, paths.samples(method), link=True)
    log.info("%s: merged %d shards (%d images)", method, count, len(names))


def sample_missing(
    paths, settings: Preset, method: str, out: Path, names: list[str], members: list[str], lr_folder: Path | None = None
) -> None:
    """Super-resolve the images of ``members`` not yet in ``out``, in batches of equal
    size; ``names`` (the whole test set, in order) gives each image its seed. ``lr_folder``:
    where the LR images are (default: the test split's; the classify stage's inputs)."""
    implementation = registry.load(method)
    scale = settings.dataset.scale
    todo = [name for name in members if not (out / name).exists()]
    log.info("%s: %d test images, %d to sample", method, len(members), len(todo))
    if registry.entry(method).diffusion and todo:
        schedule = dict(settings.diffusion.inference_schedule)
        log.info("%s: sampler %s, inference schedule %s", method, settings.diffusion.sampler, schedule)
    trained = registry.entry(method).trained
    model = sampling_model(implementation, paths.model(method), settings.config) if trained and todo else None
    lr_folder = lr_folder or paths.split("test", "lr")
    lr_images = {name: read_image(lr_folder / name) for name in todo}
    index_of = {name: index for index, name in enumerate(names)}
    sizes = {name: image.shape for name, image in lr_images.items()}
    bar_format = "{l_bar}{bar}| {n:.1f}/{total} images [{elapsed}<{remaining}]"
    with progress(total=len(todo), desc=f"sample {method}", unit="image", mininterval=2, bar_format=bar_format) as bar:
        for batch in batches_of_equal_size(todo, sizes, settings.sampling.batch_size):
            seeds = [numpy_seed(settings.seed, index_of[name]) for name in batch]
            with bar.batch(len(batch)) as advance:
                images = implementation.super_resolve(
                    model, [lr_images[name] for name in batch], scale, seeds, settings.config, advance
                )
            for name, image in zip(batch, registry.checked_outputs(images, batch, sizes[batch[0]], scale, method)):
                write_png(image, out / name)
            log.info("%s: wrote %d image(s) (%s ...)", method, len(batch), batch[0])
