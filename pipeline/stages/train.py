"""The train stage: one trained method's model file and loss curve, resumable from its
checkpoint; with ``runtime.processes`` above 1, the ranks of a torchrun (DDP)."""

from __future__ import annotations

import logging
import os
import sys

import torch

from pipeline import layout, registry
from pipeline.code_deps import code_fingerprint, stage_code
from pipeline.config import digest
from sr3bench.core.checksums import split_sha256
from sr3bench.core.images import list_images, read_image
from sr3bench.core.runtime import runtime_from_config
from sr3bench.core.seeds import numpy_seed
from sr3bench.core.stage_files import read_json
from sr3bench.core.write_errors import check_writable

log = logging.getLogger(__name__)

# Training settings a checkpoint continues across: more steps continue the same run (the
# learning rate does not depend on the step count), and checkpoints change no weights.
CONTINUABLE = ("steps", "checkpoint_every")


def run(job) -> None:
    processes = job.settings.runtime.processes
    if processes > 1 and "WORLD_SIZE" not in os.environ:
        train_with_torchrun(processes)
    else:
        train(job)


def train_with_torchrun(processes: int) -> None:
    """Run this same command as ``torchrun --standalone --nproc_per_node N``, in this
    process: each rank trains its share of the batch (DDP), rank 0 writes the log,
    checkpoint and model. torchrun passes a SIGTERM from Snakemake or SLURM on to the
    ranks, which checkpoint and stop. (The arguments are set after torchrun's parser,
    which would take this command's --log for an abbreviation of its own options.)"""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    options = torchrun.parse_args(["--standalone", f"--nproc_per_node={processes}", "-m", "pipeline.cli"])
    options.training_script_args = sys.argv[1:]
    log.info("runtime.processes is %d: starting them with torch.distributed.run (torchrun) --standalone", processes)
    try:
        torchrun.run(options)
    except ChildFailedError as error:
        failure = error.get_first_failure()[1].message
        raise RuntimeError(f"a torchrun rank failed ({failure}); rank 0's messages are above") from None


def train(job) -> None:
    from sr3.data import PairDataset, PatchSampler
    from sr3.training import Trainer, write_loss_csv

    method, settings, paths = job.method, job.settings, job.paths
    config = settings.config  # the mapping the method protocol and the trainer take
    entry = registry.entry(method)
    if not entry.trained or layout.variant_name(method):
        trained = [e.name for e in registry.ENTRIES if e.trained]
        raise ValueError(f"method {method!r} is not trained; trained methods: {', '.join(trained)}")
    implementation = registry.load(method)
    own = settings.training[method]
    runtime = runtime_from_config(config["runtime"])
    torch.manual_seed(settings.seed)  # the model's initial weights
    own_config = registry.method_settings(config, method)
    model = implementation.build_model(config, own_config)
    if runtime.writes_files:
        check_writable(space_needed(model, paths, method, own.keep == "best_val_psnr"), f"training {method}")
    dataset = PairDataset(paths.shards("train"), settings.dataset.scale)
    log.info(
        "training %s on %d pairs of %dx%d (%s, %s, %d process(es), %d torch thread(s) each)",
        method,
        len(dataset),
        *dataset.image_size,
        runtime.device,
        runtime.precision,
        runtime.world_size,
        torch.get_num_threads(),
    )
    sampler = PatchSampler(dataset, own.patch_size, own.batch_size, settings.seed)
    training_diffusion = {k: v for k, v in config["diffusion"].items() if k not in ("inference_schedule", "sampler")}
    code = code_fingerprint(stage_code(__name__, method))
    same_run = {k: v for k, v in own_config.items() if k not in CONTINUABLE}
    fingerprint = digest(
        [config["model"], same_run, training_diffusion, config["dataset"], training_data(paths)]
        + [settings.seed, method, code]
    )
    validate = validation_psnr(job, implementation) if own.keep == "best_val_psnr" else None
    trainer = Trainer(
        model,
        implementation.training_loss(config),
        sampler,
        own_config,
        settings.seed,
        paths.checkpoint(method),
        fingerprint,
        runtime,
        validate,
    )
    history = trainer.run()
    if runtime.writes_files:
        implementation.save_model_file(
            paths.model(method), trainer.final_model().cpu(), config, own_config, trainer.provenance()
        )
        write_loss_csv(history, paths.loss(method), trainer.validation_history, trainer.threads_from_step)


def training_data(paths) -> list[str]:
    """The digests of the training and validation splits (prepare's manifest): a checkpoint
    continues only on the same images. The test split is left out: a cascade's test LR
    images change with its upstream preset, which trains nothing here."""
    again = f"run the prepare stage again ({layout.prepare_command(paths.preset)})"
    manifest = read_json(paths.manifest, again, ("train",))
    return [split_sha256(manifest.get(split, [])) for split in ("train", "val")]  # no val split: none


MARGIN_BYTES = 1 << 20  # the checkpoint's RNG states, loss history and pickling


def space_needed(model: torch.nn.Module, paths, method: str, keeps_best: bool) -> dict:
    """The bytes the checkpoint and model folders take while training writes (a checkpoint:
    the weights, their EMA and Adam's two moments, one more EMA copy when the best is kept;
    written beside the previous one before it is replaced), by folder."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    checkpoint = (4 + keeps_best) * weights + MARGIN_BYTES
    return {paths.checkpoint(method).parent: checkpoint, paths.model(method).parent: weights + MARGIN_BYTES}


def validation_psnr(job, implementation):
    """A function of a model: its mean PSNR on the validation split, under the preset's
    protocol, each image super-resolved alone (seeded like the test images)."""
    from sr3bench.metrics.psnr_ssim import psnr

    settings = job.settings
    hr_folder, lr_folder = job.paths.split("val", "hr"), job.paths.split("val", "lr")
    names = [p.name for p in list_images(hr_folder)]
    pairs = [(read_image(hr_folder / n), read_image(lr_folder / n)) for n in names]
    protocol, scale = settings.protocol, settings.dataset.scale

    def validate(model) -> float:
        values = []
        for index, (hr, lr) in enumerate(pairs):
            seeds = [numpy_seed(settings.seed, index)]
            (sr,) = implementation.super_resolve(model, [lr], scale, seeds, settings.config, lambda fraction: None)
            values.append(psnr(sr, hr, protocol.color, protocol.border_crop))
        return sum(values) / len(values)

    return validate
