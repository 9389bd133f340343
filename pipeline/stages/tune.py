"""The tune stage: the sampler and inference schedule each tuned variant samples with,
chosen on the validation split (never the test split).

SR3 conditions on the noise level itself, not on a step index, so it can sample with any
schedule; the paper picks its (at most 100 steps) by a search on held-out data (Saharia
et al. 2021, Sec. 4). Every point of ``presets.<p>.tune``'s grid (sampler x steps x schedule
shape) samples the first ``images`` validation images. The reference is SR3's own
ancestral sampler over the whole training schedule, on the first ``reference_images``
of them. Each tuned variant (``variants.<v>.tuned.max_steps``) takes, among the points of
at most ``max_steps`` steps whose consistency on the reference images is at most
``select.max_consistency_ratio`` times the reference's, the best ``select.metric``.

Outputs: ``results/<p>/tune/<method>.csv`` (every point, the reference first) and its
``.json`` (the choices, which the sample stage reads). Each point's metrics are cached
under ``cache/<p>/tune/<method>/``, keyed by the model, the images, the point and the code,
so a grown grid samples only its new points and an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

import numpy as np
import pandas as pd

from pipeline import layout, registry
from pipeline.code_deps import code_fingerprint, stage_code
from pipeline.config import digest
from pipeline.settings import Preset
from sr3.schedule_spec import describe
from sr3bench.core.atomic import atomic_path
from sr3bench.core.images import list_images, read_image
from sr3bench.core.progress import progress
from sr3bench.core.runtime import sampling_model
from sr3bench.core.seeds import numpy_seed
from sr3bench.metrics.lpips_metric import MIN_SIDE
from sr3bench.metrics.table import TUNE_COLUMNS, by_name, format_value, names

log = logging.getLogger(__name__)
METRICS = names(per="image")  # each point's mean of the per-image metrics evaluate computes
POINT_COLUMNS = ["sampler", "steps", "schedule", "reference", "network_evaluations"]
COLUMNS = [*POINT_COLUMNS, *METRICS, *(column.name for column in TUNE_COLUMNS)]


def grid(tune: dict) -> list[dict]:
    """Every (sampler, schedule) point of the grid, in the order the CSV lists them."""
    return [
        {"sampler": sampler, "inference_schedule": {"steps": steps, **shape}}
        for sampler in tune["samplers"]
        for shape in tune["schedules"]
        for steps in sorted(tune["steps"])
    ]


def reference_point(settings: Preset) -> dict:
    """SR3's own sampler (Algorithm 2, variance beta_t) over the training schedule."""
    return {"sampler": "ancestral", "inference_schedule": settings.diffusion.training_schedule}


def choose(table: pd.DataFrame, max_steps: int, select: dict) -> tuple[pd.Series, bool]:
    """The best grid row of at most ``max_steps`` steps under the criterion, and whether
    any row met the consistency bound (if none did: the most consistent row)."""
    reference = table[table["reference"]].iloc[0]
    rows = table[~table["reference"] & (table["steps"] <= max_steps)]
    if rows.empty:
        raise ValueError(f"the tune grid has no point of at most {max_steps} steps; add such steps to tune.steps")
    bound = select["max_consistency_ratio"] * reference["consistency_reference_images"]
    allowed = rows[rows["consistency_reference_images"] <= bound]
    if allowed.empty:
        return rows.loc[rows["consistency_reference_images"].idxmin()], False
    metric = select["metric"]
    if allowed[metric].isna().all():
        raise ValueError(
            f"tune.select.metric: {metric} is empty for every grid point (LPIPS: the validation images, or their "
            f"tune.crop, are under {MIN_SIDE}x{MIN_SIDE} pixels); choose another metric, or a larger tune.crop"
        )
    best = allowed[metric].idxmax() if by_name(metric).higher_is_better else allowed[metric].idxmin()
    return allowed.loc[best], True


class PointSampler:
    """Samples and scores validation images at one grid point, with a cache per point."""

    def __init__(self, settings: Preset, method: str, weights_dir=None):
        from sr3bench.metrics.evaluate import image_metrics

        paths, preset = settings.paths, settings.config  # the mapping the method protocol takes
        self.image_metrics, self.weights_dir = image_metrics, weights_dir
        self.preset, self.method = preset, method
        self.implementation = registry.load(method)
        model_file = paths.model(method)
        self.model = sampling_model(self.implementation, model_file, preset)
        hr_folder, lr_folder = paths.split("val", "hr"), paths.split("val", "lr")
        names = [p.name for p in list_images(hr_folder)][: settings.tune.images]
        if not names:
            raise FileNotFoundError(
                f"{hr_folder} holds no validation images; the tune stage samples the validation split"
            )
        self.names = names
        crop, scale = settings.tune.crop, settings.dataset.scale
        pairs = [
            central_pair(
                read_image(hr_folder / n, keep_grey=True), read_image(lr_folder / n, keep_grey=True), crop, scale
            )
            for n in names
        ]
        self.hr = [hr for hr, _ in pairs]
        self.lr_as_stored = [lr for _, lr in pairs]  # scored as evaluate scores it
        self.lr = [
            lr if lr.ndim == 3 else np.repeat(lr[..., None], 3, axis=-1) for lr in self.lr_as_stored
        ]  # the model's input
        self.cache = paths.tune_cache(method)
        images = hashlib.sha256(
            b"".join((hr_folder / n).read_bytes() + (lr_folder / n).read_bytes() for n in names)
        ).hexdigest()
        model = hashlib.sha256(model_file.read_bytes()).hexdigest()
        self.key_parts = [
            model,
            images,
            preset["seed"],
            preset["protocol"],
            preset["diffusion"]["parametrization"],
            preset["sampling"],
            crop,
            code_fingerprint(stage_code(__name__, method)),
        ]

    def scores(self, point: dict, count: int, desc: str | None = None) -> list[dict]:
        """Per-image metrics of the first ``count`` images, and seconds per image; ``desc``:
        a progress bar of the sampling (None: none)."""
        key = digest([*self.key_parts, point, self.names[:count]])
        cached = self.cache / f"{key}.json"
        if cached.exists():
            return json.loads(cached.read_text())
        settings = {**self.preset, "diffusion": {**self.preset["diffusion"], **point}}
        batch_size = self.preset["sampling"]["batch_size"]
        scale = self.preset["dataset"]["scale"]
        start, sr = time.perf_counter(), []
        with progress(total=count, desc=desc, unit="image", mininterval=2, disable=desc is None) as bar:
            for first in range(0, count, batch_size):
                indices = range(first, min(count, first + batch_size))
                seeds = [numpy_seed(self.preset["seed"], index) for index in indices]
                with bar.batch(len(indices)) as advance:
                    images = self.implementation.super_resolve(
                        self.model, [self.lr[i] for i in indices], scale, seeds, settings, advance
                    )
                names = [self.names[i] for i in indices]
                sr += registry.checked_outputs(images, names, self.lr[first].shape, scale, self.method)
        seconds = (time.perf_counter() - start) / count
        rows = self.image_metrics(
            sr, self.hr[:count], self.lr_as_stored[:count], self.preset["protocol"], scale, self.weights_dir
        )
        for row in rows:
            row["seconds"] = seconds
        self.cache.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as temporary:
            temporary.write_text(json.dumps(rows))
        return rows


def central_pair(hr, lr, crop: int, scale: int):
    """The central crop x crop region of an HR image and the LR region it is made from
    (both whole when crop is 0 or not smaller than the image)."""
    size = crop // scale
    height, width = lr.shape[:2]
    if not size or size >= min(height, width):
        return hr, lr
    top, left = (height - size) // 2, (width - size) // 2
    return hr[top * scale : (top + size) * scale, left * scale : (left + size) * scale], lr[
        top : top + size, left : left + size
    ]


def table_row(point: dict, scores: list[dict], reference_count: int, is_reference: bool) -> dict:
    frame = pd.DataFrame(scores)
    schedule = point["inference_schedule"]
    return {
        "sampler": point["sampler"],
        "steps": schedule["steps"],
        "schedule": describe(schedule),
        "reference": is_reference,
        "network_evaluations": schedule["steps"],
        **{metric: frame[metric].mean() for metric in METRICS},
        "consistency_reference_images": frame["consistency"].iloc[:reference_count].mean(),
        "seconds_per_image": frame["seconds"].iloc[0],
    }


def run_tune(settings: Preset, method: str, variants: list[str], weights_dir=None) -> None:
    """Sample the grid on the validation split and write the table and the choices of
    ``variants`` (the tuned variants of ``method`` among the compared methods)."""
    paths, tune = settings.paths, settings.config["tune"]  # the grid, as the table and the record show it
    points = PointSampler(settings, method, weights_dir)
    reference_count = min(settings.tune.reference_images, len(points.names))
    log.info(
        "tune %s: %d grid points on %d validation images; reference on %d",
        method,
        len(grid(tune)),
        len(points.names),
        reference_count,
    )
    reference = reference_point(settings)
    reference_scores = points.scores(reference, reference_count, f"tune {method}: reference")
    rows = [table_row(reference, reference_scores, reference_count, True)]
    log.info(
        "reference (%s, %d steps): %s",
        reference["sampler"],
        reference["inference_schedule"]["steps"],
        _summary(rows[0]),
    )
    for point in progress(grid(tune), desc=f"tune {method}", mininterval=2):
        rows.append(table_row(point, points.scores(point, len(points.names)), reference_count, False))
        log.info("%s %s, %d steps: %s", point["sampler"], rows[-1]["schedule"], rows[-1]["steps"], _summary(rows[-1]))
    table = pd.DataFrame(rows, columns=COLUMNS)
    choices = {}
    for variant in variants:
        max_steps = settings.variants[layout.variant_name(variant)].tuned["max_steps"]
        row, met = choose(table, max_steps, tune["select"])
        point = grid(tune)[row.name - 1]
        choices[layout.variant_name(variant)] = {**point, "met_criterion": met, "row": int(row.name)}
        log.info(
            "%s: %s %s, %d steps%s",
            variant,
            point["sampler"],
            row["schedule"],
            row["steps"],
            "" if met else " (no point met the consistency bound: the most consistent one)",
        )
    paths.tune_table(method).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(paths.tune_table(method)) as temporary:
        table.to_csv(temporary, index=False)
    record = {
        "criterion": tune["select"],
        "reference": reference,
        "validation_images": points.names,
        "choices": choices,
    }
    with atomic_path(paths.tune_choices(method)) as temporary:
        temporary.write_text(json.dumps(record, indent=1))


def _summary(row: dict) -> str:
    scores = ", ".join(f"{metric} {format_value(metric, row[metric])}" for metric in METRICS)
    return f"{scores}, {format_value('seconds_per_image', row['seconds_per_image'])} s/image"


def run(job) -> None:
    """The tune stage of ``job.method``, for its tuned variants among the compared methods."""
    settings, method = job.settings, job.method
    variants = [m for m in registry.tuned_variants(job.preset, job.methods) if layout.base_method(m) == method]
    if not registry.entry(method, job.preset).stochastic:
        raise ValueError(
            f"{method} has no sampler or schedule to tune: the tune stage is for diffusion methods (sr3, sr3_janspiry)"
        )
    if not settings.tune or not variants:
        raise ValueError(
            f"nothing to tune for {method}: list a tuned variant ({method}@<name> with variants.<name>.tuned) "
            f"in methods, and a tune grid under presets.{job.preset_name}.tune"
        )
    run_tune(settings, method, variants, job.weights_dir)
