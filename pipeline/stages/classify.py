"""The classify stages (the paper's Table 3): top-1 and top-5 error of an ImageNet
classifier on each method's super-resolved classify set (``sr3bench classify --method M``)
and on the original images (``sr3bench classify-baseline``), with the whole chain in the
result's protocol record.

A method's job super-resolves the 64x64 inputs of ``data/<preset>/classify/lr/`` as the
sample stage does (its helpers: the method from the registry, the trained model, the
variant's settings, resumable in ``cache/<preset>/classify/<method>/``), resizes each
output to 224x224 and classifies it. Without the classifier's weights (offline, no local
file) the result says "unavailable" and how to provide them, and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil

from pipeline import layout, registry
from pipeline.config import digest
from pipeline.settings import Preset
from pipeline.stages.sample import read_choices, sample_missing, sample_work_dir
from sr3bench.core.atomic import atomic_path
from sr3bench.core.images import read_image
from sr3bench.core.progress import progress
from sr3bench.core.runtime import runtime_from_config
from sr3bench.core.stage_files import read_json
from sr3bench.metrics.classification import NORMALISATION, RESIZE, errors, top_classes
from sr3bench.metrics.classifier import RESNET50, describe, load_classifier, resolve_weights
from sr3bench.metrics.weights import WeightsUnavailableError

log = logging.getLogger(__name__)

# What re-runs the stages once the file is there (pipeline/rule_settings.py: Snakemake
# tracks the torch hub cache's file; DVC tracks weights.resnet50 only).
RERUN_WHEN_THERE = (
    "Once the file is there, run again: Snakemake re-runs the classify stages by itself; DVC does for "
    "weights.resnet50 set in params.yaml, and for a file put in the torch hub cache needs "
    "dvc repro --force --single-item on each classify stage"
)

BATCH = 50  # images per classifier batch


def run(job) -> None:
    """The baseline (``job.method`` None): the classifier on the originals; else on the
    method's super-resolved inputs."""
    settings, paths, method = job.settings, job.paths, job.method
    if settings.classify is None:
        raise ValueError(
            f"presets.{job.preset_name}.classify: this preset has no classify section (docs/classification.md)"
        )
    if method is not None and not registry.entry(method, job.preset).conditional:
        raise ValueError(f"{method} is not conditioned on an LR image: there is nothing of the input to classify")
    if method in registry.outside_methods(job.preset, [method] if method else []):
        raise ValueError(f"{method} is an outside method: the classify set is super-resolved here, and it cannot be")
    manifest = read_json(
        paths.classify_data() / layout.CLASSIFY_MANIFEST_NAME,
        f"run the prepare_classify stage again (sr3bench prepare-classify --preset {job.preset_name})",
        ("images", "rows"),
    )
    out = paths.classify_result(method or layout.CLASSIFY_BASELINE)
    record = {"row": method or "baseline", "method": method, "images": manifest["images"]}
    classifier = settings.classify.classifier
    local = settings.classify.weights if classifier != RESNET50 else job.weights.resnet50
    try:
        weights = resolve_weights(classifier, local)
    except WeightsUnavailableError as error:
        log.warning("classify: the classifier's weights are unavailable: %s", error)
        unavailable = f"{error}. {RERUN_WHEN_THERE}"
        write(out, {**record, "top1_error": None, "top5_error": None, "unavailable": unavailable})
        return
    device = runtime_from_config(settings.config["runtime"]).device
    model = load_classifier(classifier, weights, device)
    names = [row["name"] for row in manifest["rows"]]
    if method is None:
        folder, steps = paths.classify_data("original"), ["original"]
    else:
        folder, steps = super_resolved(job, names, manifest), ["original", "lr", "input", "sr", "classifier_input"]
    predictions = []
    with progress(total=len(names), desc=f"classify {method or 'originals'}", mininterval=2) as bar:
        for start in range(0, len(names), BATCH):
            batch = [read_image(folder / name) for name in names[start : start + BATCH]]
            predictions += top_classes(model, batch, device, manifest["labels"]["classes"])
            bar.update(len(batch))
    labels = [row["label"] for row in manifest["rows"]]
    result = errors(labels, predictions)
    chain = {**manifest["chain"], **method_chain(method, manifest["sizes"]["input"], settings.dataset.scale)}
    write(
        out,
        {
            **record,
            **result,
            "unavailable": None,
            "protocol": {
                "chain": {step: chain[step] for step in steps},
                "normalisation": NORMALISATION,
                **describe(classifier, weights),
                "labels": manifest["labels"],
            },
            "per_image": [
                {"name": name, "label": label, "top5": top} for name, label, top in zip(names, labels, predictions)
            ],
        },
    )
    if method is not None:
        shutil.rmtree(paths.classify_cache(method), ignore_errors=True)  # classified; older keys are stale too
    log.info(
        "classify %s: top-1 error %.3f, top-5 error %.3f over %d images",
        method or "originals",
        result["top1_error"],
        result["top5_error"],
        len(names),
    )


def method_chain(method: str | None, size: int, scale: int) -> dict:
    """The steps after the classify set's: the method's SR, then the classifier's resize."""
    return {
        "sr": f"{size}x{size} -> {size * scale}x{size * scale} by {method} (x{scale}: the method's super_resolve)",
        "classifier_input": f"{size * scale}x{size * scale} {RESIZE}",
    }


def super_resolved(job, names: list[str], manifest: dict):
    """The folder of the method's outputs for the classify inputs, sampled as the sample
    stage samples (resuming a folder keyed by the model, settings, code and classify set)."""
    paths, method = job.paths, job.method
    settings = Preset.from_config(
        job.preset_name, registry.apply_variant(job.preset, method, read_choices(paths, method))
    )
    classify_set = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    work = paths.classify_cache(method) / digest([sample_work_dir(paths, settings, method).name, classify_set])
    sample_missing(paths, settings, method, work, names, names, lr_folder=paths.classify_data("lr"))
    return work


def write(path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(result, indent=1))
