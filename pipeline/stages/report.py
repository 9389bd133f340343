"""The report stage: reports/<preset>/ (HTML, metric tables, figures, provenance) from the
results, samples and logs of the compared methods."""

from __future__ import annotations

import json
import logging

import torch

from pipeline import cascade, layout, registry
from pipeline.stage_table import declared_threads
from sr3.model_file import training_record
from sr3.schedule_spec import describe
from sr3bench.core.checksums import file_sha256
from sr3bench.core.stage_files import read_json
from sr3bench.reporting.build import ReportInputs, build_report
from sr3bench.reporting.cascade_section import CascadeInputs
from sr3bench.reporting.provenance import provenance
from sr3bench.study.selection import shown_methods

log = logging.getLogger(__name__)


def parameter_count(method: str, preset: dict) -> int:
    """Parameters of a trained method's network (built on the meta device: no memory)."""
    with torch.device("meta"):
        model = registry.load(method).build_model(preset, registry.method_settings(preset, method))
    return sum(p.numel() for p in model.parameters())


def run_scale(job, methods: list[str]) -> dict:
    """This run's scale, in the rows the report sets beside the paper's."""
    settings = job.settings
    trained = [m for m in registry.trained_methods(methods, job.preset) if not layout.variant_name(m)]

    def per_method(value) -> str:
        return ", ".join(f"{registry.title(m)} {value(m)}" for m in trained)

    manifest = read_json(
        job.paths.manifest,
        f"run the prepare stage again ({layout.prepare_command(job.preset_name)})",
        ("train", "test"),
    )
    return {
        "training_images": f"{len(manifest['train'])} pairs",
        "training_steps": per_method(lambda m: f"{settings.training[m].steps:,}"),
        "batch_size": per_method(lambda m: settings.training[m].batch_size),
        "parameters": per_method(lambda m: f"{parameter_count(m, settings.config) / 1e6:.2f}M"),
        "inference_steps": str(settings.diffusion.inference_schedule["steps"]),
        "test_images": str(len(manifest["test"])),
    }


def outside_outputs(job, methods: list[str]) -> dict:
    """Each compared outside method's title, citation, folder and samples (its copied test images)."""
    return {
        m: {
            "title": job.settings.external[m].title,
            "citation": job.settings.external[m].citation,
            "folder": job.settings.external[m].folder,
            "samples": job.paths.samples(m),
        }
        for m in registry.outside_methods(job.preset, methods)
    }


def classification_results(job) -> dict:
    """The classify stages' result files (Table 3): the baseline's, and those of the
    methods sampled here that super-resolve an input)."""
    if not job.settings.classify:
        return {}
    return {"baseline": job.paths.classify_result(layout.CLASSIFY_BASELINE)} | {
        m: job.paths.classify_result(m) for m in registry.classified_methods(job.preset, job.methods)
    }


def cascade_inputs(job) -> CascadeInputs | None:
    """The chain above this preset (``dataset.lr_from``) and the single-stage results set
    beside it (``cascade.compare``, read if present: not inputs of this run); None when the
    preset is not the end of a chain."""
    presets = job.params["presets"]
    links = cascade.links(presets, job.preset_name)
    if not links:
        return None

    def sizes(name: str, generator: bool = False) -> str:
        dataset = presets[name]["dataset"]
        hr, lr = dataset["hr_size"], dataset["hr_size"] // dataset["scale"]
        return f"{hr}x{hr}" if generator else f"{lr}x{lr} → {hr}x{hr}"

    generators = {link.preset for link in links if not registry.entry(link.method, presets[link.preset]).conditional}
    chain = [
        {
            "preset": link.preset,
            "title": registry.title(link.method, presets[link.preset]),
            "sizes": sizes(link.preset, link.preset in generators),
        }
        for link in reversed(links)
    ]
    compare = [
        {
            "preset": entry["preset"],
            "method": entry["method"],
            "title": registry.title(entry["method"], presets[entry["preset"]]),
            "sizes": sizes(entry["preset"]),
            "results": layout.results_file(entry["preset"], entry["method"]),
        }
        for entry in (job.settings.cascade.compare if job.settings.cascade else [])
    ]
    return CascadeInputs(chain, sizes(job.preset_name), bool(generators), compare)


def model_record(path) -> dict:
    """A trained model's file and SHA-256, and how it was trained (its ``training`` record:
    device, precision, torch, CPU, processes; None for a file of another format or written
    before the record existed): the report's settings are params.yaml's when the report is
    written, which need not be those the model was trained under."""
    try:
        training = training_record(path)
    except Exception:  # noqa: BLE001 - a method's own format: its file and hash still say which model
        training = None
    training = json.loads(json.dumps(training, default=str)) if isinstance(training, dict) else None
    return {"file": str(path), "sha256": file_sha256(path) if path.is_file() else None, "training": training}


def run(job) -> None:
    settings, paths, methods, preset = job.settings, job.paths, job.methods, job.preset
    trained = registry.trained_methods(methods, preset)
    studied = bool(settings.study and shown_methods(settings.study.methods, methods))  # as Plan.study
    titles = {m: registry.title(m, preset) for m in methods}
    inputs = ReportInputs(
        results={m: paths.results(m) for m in methods},
        titles=titles,
        test_hr=paths.split("test", "hr"),
        test_lr=paths.split("test", "lr"),
        samples={m: paths.samples(m) for m in methods},
        losses={m: paths.loss(m) for m in trained},
        paper_tables=layout.PAPER_TABLES_DIR,
        out=paths.report_dir,
        scale_here=run_scale(job, methods),
        tuning={m: paths.tune_table(m) for m in registry.tuned_methods(job.preset, methods)},
        diversity={m: paths.diversity(m) for m in registry.diverse_methods(job.preset, methods)},
        schedules={
            "training": describe(settings.diffusion.training_schedule),
            "inference": describe(settings.diffusion.inference_schedule),
        },
        study_plan=paths.study_plan if studied else None,
        study_results=paths.study_results if studied and settings.study.answers != "none" else None,
        classification=classification_results(job),
        cascade=cascade_inputs(job),
        provenance_record=provenance(
            settings.config,
            job.result_settings,
            declared_threads(job.params, job.preset_name),
            paths.log("report").parent,
            paths.manifest,
            {registry.title(m): paths.loss(m) for m in trained},
            outside_outputs(job, methods),
            titles,
            {registry.title(m): model_record(paths.model(m)) for m in trained},
        ),
    )
    build_report(settings.name, settings.config, inputs)
    log.info("wrote %s: %s", paths.report_dir, ", ".join(layout.REPORT_FILES))
