"""The diversity stage: several samples of the first test images, with seeds other than
the sample stage's, for the report's diversity figure."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline import registry
from pipeline.stages.sample import test_names
from sr3bench.core.atomic import atomic_folder
from sr3bench.core.images import read_image, write_png
from sr3bench.core.progress import progress
from sr3bench.core.runtime import sampling_model
from sr3bench.core.seeds import numpy_seed

log = logging.getLogger(__name__)

DIVERSITY_STREAM = 7  # a seed part that keeps the diversity samples apart from the test samples


def run(job) -> None:
    """``diversity.seeds`` samples of each of the first ``diversity.images`` test images,
    as <stem>_seed<k>.png."""
    settings, paths, method = job.settings, job.paths, job.method
    count, seeds, scale = settings.diversity.images, settings.diversity.seeds, settings.dataset.scale
    implementation = registry.load(method)
    model = sampling_model(implementation, paths.model(method), settings.config)
    names = test_names(paths)[:count]
    out = paths.diversity(method)
    with atomic_folder(out) as staging, progress(total=len(names), desc=f"diversity {method}", mininterval=2) as bar:
        for index, name in enumerate(names):
            lr = read_image(paths.split("test", "lr") / name)
            batch_seeds = [numpy_seed(settings.seed, index, DIVERSITY_STREAM, k) for k in range(seeds)]
            images = implementation.super_resolve(
                model, [lr] * seeds, scale, batch_seeds, settings.config, lambda fraction: None
            )
            shown = [f"{name}, seed {k}" for k in range(1, seeds + 1)]
            for k, image in enumerate(registry.checked_outputs(images, shown, lr.shape, scale, method), start=1):
                write_png(image, staging / f"{Path(name).stem}_seed{k}.png")
            bar.update(1)
    log.info("%s: %d seeds of %d test images in %s", method, seeds, len(names), out)
