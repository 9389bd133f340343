"""The report stage: reports/<preset>/ (HTML, metric tables, figures, provenance) from the
results, samples and logs of the compared methods."""

from __future__ import annotations

import json

import torch

from pipeline import layout, registry
from sr3bench.reporting.build import build_report
from sr3bench.reporting.provenance import provenance


def parameter_count(method: str, preset: dict) -> int:
    """Parameters of a trained method's network (built on the meta device: no memory)."""
    with torch.device("meta"):
        model = registry.load(method).build_model(preset)
    return sum(p.numel() for p in model.parameters())


def run_scale(job, methods: list[str]) -> dict:
    """This run's scale, in the rows the report sets beside the paper's."""
    preset = job.preset
    trained = [m for m in registry.trained_methods(methods) if not layout.variant_name(m)]

    def per_method(value) -> str:
        return ", ".join(f"{registry.title(m)} {value(m)}" for m in trained)

    manifest = json.loads(job.paths.manifest.read_text())
    return {
        "training_images": f"{len(manifest['train'])} pairs",
        "training_steps": per_method(lambda m: f"{registry.method_settings(preset, m)['steps']:,}"),
        "batch_size": per_method(lambda m: registry.method_settings(preset, m)["batch_size"]),
        "parameters": per_method(lambda m: f"{parameter_count(m, preset) / 1e6:.2f}M"),
        "inference_steps": str(preset["diffusion"]["inference_schedule"]["steps"]),
        "test_images": str(len(manifest["test"])),
    }


def run(job) -> None:
    preset, paths, methods = job.preset, job.paths, job.methods
    build_report(
        job.preset_name,
        preset,
        results={m: paths.results(m) for m in methods},
        titles={m: registry.title(m) for m in methods},
        test_hr=paths.split("test", "hr"),
        test_lr=paths.split("test", "lr"),
        samples={m: paths.samples(m) for m in methods},
        losses={m: paths.loss(m) for m in registry.trained_methods(methods)},
        paper_tables=layout.PAPER_TABLES_DIR,
        out=paths.report_dir,
        scale_here=run_scale(job, methods),
        tuning={m: paths.tune_table(m) for m in registry.tuned_methods(preset, methods)},
        diversity={m: paths.diversity(m) for m in registry.diverse_methods(preset, methods)},
        provenance_record=provenance(preset, job.params["threads"], paths.log("report").parent, paths.manifest),
    )
