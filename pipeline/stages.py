"""The stage functions behind the CLI: each reads files and writes files."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from baselines.bicubic import bicubic_super_resolve
from baselines.regression import regression_loss, regression_super_resolve
from pipeline import paths
from pipeline.code_deps import SAMPLING_CODE, TRAINING_CODE, code_fingerprint
from pipeline.prepare import prepare
from sr3.data import PatchSampler, load_pairs, numpy_seed
from sr3.images import list_images, read_image, to_tensor, to_uint8, write_png
from sr3.method import sr3_loss, sr3_super_resolve
from sr3.model_file import build_unet, load_model, save_model
from sr3.resize import upsample
from sr3.training import Trainer, write_loss_csv

log = logging.getLogger(__name__)


def run_prepare(preset_name: str, preset: dict) -> None:
    out = paths.data_dir(preset_name)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    prepare(preset, staging)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def config_fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def run_train(preset_name: str, preset: dict, method: str) -> None:
    if method not in paths.TRAINED_METHODS:
        raise ValueError(f"method {method!r} is not trained; trained methods: {', '.join(paths.TRAINED_METHODS)}")
    settings = preset["training"][method]
    torch.manual_seed(preset["seed"])
    upsampled_lr, hr = load_pairs(paths.data_dir(preset_name) / "train", preset["dataset"]["scale"])
    log.info("training %s on %d pairs of %dx%d", method, len(hr), hr.shape[-2], hr.shape[-1])
    noise_conditioned = method == "sr3"
    model = build_unet(preset["model"], settings["patch_size"], noise_conditioned)
    loss_fn = sr3_loss(preset["diffusion"]) if noise_conditioned else regression_loss
    sampler = PatchSampler(upsampled_lr, hr, settings["patch_size"], settings["batch_size"], preset["seed"])
    fingerprint = config_fingerprint(preset["model"], settings, preset["diffusion"], preset["dataset"], preset["seed"], method, code_fingerprint(TRAINING_CODE))
    trainer = Trainer(model, loss_fn, sampler, settings, preset["seed"], paths.checkpoint_file(preset_name, method), fingerprint)
    history = trainer.run()
    save_model(paths.model_file(preset_name, method), trainer.ema_model, preset["model"], settings["patch_size"], noise_conditioned)
    write_loss_csv(history, paths.loss_file(preset_name, method))


def _as_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


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


def sample_work_dir(preset_name: str, preset: dict, method: str) -> Path:
    """Where samples accumulate while a stage runs: outside the declared outputs (which
    Snakemake deletes when a job fails), keyed by everything the samples depend on (model
    file, test set, diffusion settings, seed, sampling code), so a re-run after an
    interruption samples only the missing images."""
    model = paths.model_file(preset_name, method)
    model_hash = hashlib.sha256(model.read_bytes()).hexdigest()[:12] if model.exists() else "none"
    manifest = (paths.data_dir(preset_name) / "manifest.json").read_bytes()
    key = config_fingerprint(model_hash, hashlib.sha256(manifest).hexdigest(), preset["diffusion"], preset["seed"], code_fingerprint(SAMPLING_CODE))
    return paths.sample_cache_dir(preset_name, method) / key


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
    test = paths.data_dir(preset_name) / "test"
    work = sample_work_dir(preset_name, preset, method)
    names = [p.name for p in list_images(test / "lr")]
    sample_missing(preset_name, preset, method, work, names)
    publish(work, paths.samples_dir(preset_name, method), names)
    shutil.rmtree(paths.sample_cache_dir(preset_name, method))  # published; older keys are stale too


def sample_missing(preset_name: str, preset: dict, method: str, out: Path, names: list[str]) -> None:
    scale = preset["dataset"]["scale"]
    test = paths.data_dir(preset_name) / "test"
    todo = [name for name in names if not (out / name).exists()]
    log.info("%s: %d test images, %d to sample", method, len(names), len(todo))
    if method == "bicubic":
        for name in tqdm(todo, desc="bicubic", mininterval=2):
            write_png(_as_rgb(bicubic_super_resolve(read_image(test / "lr" / name), scale)), out / name)
        return
    model = load_model(paths.model_file(preset_name, method))
    lr_images = {name: read_image(test / "lr" / name) for name in todo}
    index_of = {name: index for index, name in enumerate(names)}
    steps = preset["diffusion"]["inference_schedule"]["steps"] if method == "sr3" else 1
    with tqdm(total=len(todo) * steps, desc=f"sample {method}", mininterval=2) as bar:
        for batch in _batches_by_shape(todo, lr_images, preset["sampling"]["batch_size"]):
            upsampled = to_tensor([upsample(lr_images[name], scale) for name in batch])
            if method == "sr3":
                seeds = [numpy_seed(preset["seed"], index_of[name]) for name in batch]
                sr = sr3_super_resolve(model, upsampled, seeds, preset["diffusion"], lambda: bar.update(len(batch)))
            else:
                sr = regression_super_resolve(model, upsampled)
                bar.update(len(batch))
            for name, image in zip(batch, to_uint8(sr)):
                write_png(image, out / name)
            log.info("%s: wrote %d images (%s ...)", method, len(batch), batch[0])
