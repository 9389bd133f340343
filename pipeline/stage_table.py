"""The pipeline's stages, declared once. The Snakefile generates its rules from this table
(one ``rule`` per entry, in a loop), ``sr3bench dvc-yaml`` generates dvc.yaml from it, the
CLI makes one subcommand per entry, and the code each stage tracks is the import closure
of its module. Adding a stage is its module in ``pipeline/stages/`` (with ``run(job)``),
one entry here and its tests.

An entry says:
- ``fan_out``: what one job of the stage is for: one preset (``preset``); one preset
  with a human study (``study``), with simulated answers (``study_simulated``) or with
  answers to analyse (``study_analysed``); each compared
  method (``method``), each compared method that is sampled here (``sampled``) or is an
  outside method, a folder of someone's outputs (``external``), each trained, tuned or
  stochastic base method (``trained``, ``tuned``, ``diverse``), each dataset a preset
  downloads (``dataset``), each shard of a sampled method's samples (``shard``: Snakemake
  only; DVC samples the shards in one job), one preset with a classify section
  (``classify``) and each method it classifies (``classified``), or the whole project
  (``project``);
- ``outputs`` and ``inputs``: paths from ``pipeline/layout.py`` (patterns such as
  ``{preset}`` for Snakemake, ``${preset}`` for DVC);
- ``folders``: the folders outside the pipeline that a job reads (the dataset's, an
  outside method's): DVC hashes them (deps of the stage), the Snakefile tracks a listing
  of their files (``pipeline/dataset_listing.py``), since it compares mtimes;
- ``params``: the config keys under ``presets.<preset>`` its results depend on (both
  engines re-run the stage when one changes; ``runtime`` and ``threads`` say where and
  how fast a stage computes, not what, and are tracked by neither); ``plan_params``:
  those that depend on what the run compares (the report: each outside method's entry);
  ``tracks_results``: the job tracks, beside its own keys, every key that any job of the
  preset's run tracks (the report, whose provenance hashes them: ``pipeline/result_settings.py``);
- ``module``: whose ``run(job)`` the CLI calls; ``method_code``: whether the stage also
  runs the method's module (its code is tracked too).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline import layout, registry
from pipeline.code_deps import stage_code
from pipeline.dataset_listing import dataset_folders, outside_folder
from pipeline.imagenet_devkit import DEVKIT_DATASET
from pipeline.settings import Preset, WeightsSettings, build
from sr3bench.study.selection import shown_methods

STUDY_FAN_OUTS = ("study", "study_simulated", "study_analysed")
METHOD_FAN_OUTS = ("method", "sampled", "external", "trained", "tuned", "diverse", "shard", "classified")
FAN_OUTS = ("project", "dataset", "preset", *STUDY_FAN_OUTS, "classify", *METHOD_FAN_OUTS)


@dataclass(frozen=True)
class Plan:
    """What one preset's run compares: the members each fan-out iterates over."""

    methods: tuple[str, ...]
    downloads: tuple[str, ...]
    shards: int
    preset: dict = field(repr=False, compare=False)

    @classmethod
    def of(cls, params: dict, preset_name: str) -> Plan:
        preset = params["presets"][preset_name]
        methods = tuple(preset["methods"] or params["methods"])  # resolve() puts the active preset's in methods
        return cls(methods, tuple(preset["dataset"]["downloads"]), preset["sampling"]["shards"], preset)

    @property
    def external(self) -> list[str]:
        """The compared methods that are outside methods: folders of someone's outputs."""
        return registry.outside_methods(self.preset, list(self.methods))

    @property
    def sampled(self) -> list[str]:
        """The compared methods whose samples the sample stage makes (all but the outside ones)."""
        outside = set(self.external)
        return [m for m in self.methods if m not in outside]

    @property
    def trained(self) -> list[str]:
        return registry.trained_methods(list(self.methods), self.preset)

    @property
    def tuned(self) -> list[str]:
        return registry.tuned_methods(self.preset, list(self.methods))

    @property
    def tuned_variants(self) -> list[str]:
        return registry.tuned_variants(self.preset, list(self.methods))

    @property
    def diverse(self) -> list[str]:
        return registry.diverse_methods(self.preset, list(self.methods))

    @property
    def study_methods(self) -> list[str]:
        """The methods a human study shows against the real image ([] without a study)."""
        study = self.preset.get("study")
        return shown_methods(study["methods"], list(self.methods)) if study else []

    @property
    def study(self) -> list:
        """One job when the preset plans a study of at least one compared method."""
        return [None] if self.study_methods else []

    @property
    def study_simulated(self) -> list:
        return self.study if self.study and self.preset["study"]["answers"] == "simulated" else []

    @property
    def study_analysed(self) -> list:
        return self.study if self.study and self.preset["study"]["answers"] != "none" else []

    @property
    def classify(self) -> list:
        """One job (the classifier on the original images) when the preset has a classify section."""
        return [None] if self.preset.get("classify") else []

    @property
    def classified(self) -> list[str]:
        """The methods whose outputs the classify stage classifies: those sampled here
        that super-resolve an LR input (none without a classify section)."""
        return registry.classified_methods(self.preset, list(self.methods))

    def study_answers(self, preset: str) -> Path:
        """The answers the study's analysis reads: simulated, or those of human raters."""
        if self.study_simulated:
            return layout.study_simulated_file(preset)
        return layout.study_answers_file(preset)

    def members(self, fan_out: str) -> list:
        """The methods (or datasets) a fan-out makes one job each for; [None] for one job.
        Only the asked fan-out's list is computed (rules ask for each job's inputs)."""
        if fan_out in ("project", "preset"):
            return [None]
        if fan_out == "dataset":
            return list(self.downloads)
        if fan_out == "method":
            return list(self.methods)
        if fan_out == "shard":
            return self.sampled
        return getattr(self, fan_out)  # sampled, external, trained, tuned, diverse, study*, classify*


@dataclass(frozen=True)
class Output:
    """One declared output: ``path(preset, member)`` from the layout."""

    path: Callable[[str, str | None], Path]
    directory: bool = False
    dvc: str = "outs"  # outs | uncached (written by every run, not cached) | metrics | plots
    dvc_plot: dict | None = None  # the plot's x/y/template, for dvc: plots
    # in `snakemake --report`: (category, caption file pipeline/report/<caption>.rst)
    snakemake_report: tuple[str, str] | None = None


@dataclass(frozen=True)
class Stage:
    name: str
    summary: str  # the CLI's help line
    module: str
    fan_out: str
    outputs: tuple[Output, ...]
    inputs: Callable[[str, str | None, Plan], list[str]] = lambda preset, member, plan: []
    # the folders outside the pipeline that the job for ``member`` reads
    folders: Callable[[Plan, str | None], list[Path]] = lambda plan, member=None: []
    params: Callable[[str | None], list[str]] = lambda member: []
    plan_params: Callable[[Plan], list[str]] = lambda plan: []
    method_code: bool = False
    tracks_results: bool = False
    cli_name: str = ""  # the CLI subcommand (default: the name, with - for _)
    threads_key: str = ""  # threads.<key> and resources.<key> (default: the name)

    @property
    def subcommand(self) -> str:
        return self.cli_name or self.name.replace("_", "-")

    @property
    def settings_key(self) -> str:
        return self.threads_key or self.name

    @property
    def per_preset(self) -> bool:
        return self.fan_out not in ("project", "dataset")

    def code(self, member: str | None = None) -> list[str]:
        return stage_code(self.module, member if self.method_code else None)

    def output_paths(self, preset: str, member: str | None) -> list[str]:
        return [str(output.path(preset, member)) for output in self.outputs]

    def log(self, preset: str, member: str | None) -> Path:
        if self.fan_out == "dataset":
            return layout.download_log_file(member)
        if self.fan_out == "project":
            return layout.FRONT_PAGE_LOG
        if self.fan_out == "shard":
            return layout.log_file(preset, "sample-{shard}-of-{shards}", member)
        return layout.log_file(preset, self.name, member)

    def command(self, preset: str | None, member: str | None, shard: str | None = None) -> str:
        """A job's command without its ``--threads`` and ``--log``, which every stage takes
        last; ``preset`` and ``member`` may be patterns (``${preset}``); ``shard`` is "I/N"."""
        if self.fan_out == "dataset":
            return f"sr3bench {self.subcommand} --dataset {member}"
        if self.fan_out == "project":
            return f"sr3bench {self.subcommand}"
        method = f" --method {member}" if self.fan_out in METHOD_FAN_OUTS else ""
        return f"sr3bench {self.subcommand} --preset {preset}{method}" + (f" --shard {shard}" if shard else "")

    def entry_function(self) -> Callable:
        return importlib.import_module(self.module).run


def _data(preset, member, plan) -> list[str]:
    return [str(layout.data_dir(preset))]


def _data_and_model(preset, member, plan) -> list[str]:
    return [str(layout.data_dir(preset)), str(layout.model_file(preset, member))]


def _prepare_inputs(preset, member, plan) -> list[str]:
    """Its downloads (not the devkit, whose labels only the classify set takes), and in a
    cascade the upstream outputs it takes its test LR from."""
    chained = plan.preset["dataset"].get("lr_from")
    upstream = [str(layout.samples_dir(chained["preset"], chained["method"]))] if chained else []
    images = [name for name in plan.downloads if name != DEVKIT_DATASET]
    return [str(layout.download_dir(name)) for name in images] + upstream


def _classify_set(preset, member, plan) -> list[str]:
    return [str(layout.classify_data_dir(preset))]


def _classify_inputs(preset, method, plan) -> list[str]:
    """The classify set and what sampling the method needs (its model, its tuned choices)."""
    return [*_classify_set(preset, method, plan), *_sample_inputs(preset, method, plan, shard=True)]


def _sample_inputs(preset, method, plan, shard: bool = False) -> list[str]:
    """What sampling a method needs; for the merge (sampling.shards above 1), its shards."""
    inputs = [str(layout.data_dir(preset))]
    if registry.entry(method).trained:
        inputs.append(str(layout.model_file(preset, method)))
    if method in plan.tuned_variants:
        inputs.append(str(layout.tune_choices_file(preset, layout.base_method(method))))
    if not shard and plan.shards > 1:
        inputs += [str(layout.sample_shard_dir(preset, method, index, plan.shards)) for index in range(plan.shards)]
    return inputs


def _sample_params(method) -> list[str]:
    keys = ["diffusion", "sampling"] if registry.entry(method).diffusion else ["sampling"]
    if registry.entry(method).trained:
        keys.append("seed")
    if layout.variant_name(method):
        keys.append(f"variants.{layout.variant_name(method)}")
    return keys


def _report_inputs(preset, member, plan) -> list[str]:
    return [
        str(layout.data_dir(preset)),
        *[str(layout.samples_dir(preset, m)) for m in plan.methods],
        *[str(layout.results_file(preset, m)) for m in plan.methods],
        *[str(layout.set_metrics_file(preset, m)) for m in plan.methods],
        *[str(layout.loss_file(preset, m)) for m in plan.trained],
        *[str(layout.tune_table(preset, m)) for m in plan.tuned],
        *[str(layout.diversity_dir(preset, m)) for m in plan.diverse],
        *[str(layout.study_plan_file(preset)) for _ in plan.study],
        *[str(layout.study_results_dir(preset)) for _ in plan.study_analysed],
        *[str(layout.classify_result_file(preset, layout.CLASSIFY_BASELINE)) for _ in plan.classify],
        *[str(layout.classify_result_file(preset, m)) for m in plan.classified],
        str(layout.PAPER_TABLES_DIR),
    ]


def _study_build_inputs(preset, member, plan) -> list[str]:
    return [str(layout.data_dir(preset)), *[str(layout.samples_dir(preset, m)) for m in plan.study_methods]]


REPORT_OUTPUT_KINDS = {
    # the page and its provenance are cached like the rest: a clone's `dvc pull` brings them,
    # and `dvc checkout` of another revision the page that goes with its numbers
    "index.html": {},
    "provenance.json": {},
    "metrics.json": {"dvc": "metrics"},
    # horizontal bars: the value on x
    "metrics.csv": {"dvc": "plots", "dvc_plot": {"x": "psnr", "y": "method", "template": "bar_horizontal"}},
}
IN_SNAKEMAKE_REPORT = {
    "metrics.csv": "Results",
    "grid.png": "Images",
    "zoom.png": "Images",
    "diversity.png": "Images",
    "loss.png": "Training",
    "tuning.png": "Sampling",
    "study_images.png": "Human study",
}


def _report_output(name: str) -> Output:
    return Output(
        lambda preset, member, name=name: layout.report_file(preset, name),
        snakemake_report=(IN_SNAKEMAKE_REPORT[name], Path(name).stem) if name in IN_SNAKEMAKE_REPORT else None,
        **REPORT_OUTPUT_KINDS.get(name, {}),
    )


STAGES = (
    Stage(
        "download",
        "fetch a registered dataset (pipeline/datasets.py), or take it from datasets.<name>.local",
        "pipeline.stages.download",
        "dataset",
        (Output(lambda preset, dataset: layout.download_dir(dataset), directory=True),),
    ),
    Stage(
        "prepare",
        "lay out a preset's train/val/test splits from its downloads (data/<preset>/)",
        "pipeline.stages.prepare",
        "preset",
        (Output(lambda preset, member: layout.data_dir(preset), directory=True),),
        inputs=_prepare_inputs,
        folders=lambda plan, member=None: dataset_folders(plan.preset["dataset"]),
        params=lambda member: ["dataset", "seed"],
    ),
    # The paper's Table 3 (docs/classification.md): the classify set, beside the splits.
    Stage(
        "prepare_classify",
        "lay out a preset's classify set (data/<preset>.classify/): its first classify.images validation images "
        "as the classifier's originals and the SR methods' 64x64 inputs, with the devkit's labels",
        "pipeline.stages.prepare_classify",
        "classify",
        (Output(lambda preset, member: layout.classify_data_dir(preset), directory=True),),
        inputs=lambda preset, member, plan: [str(layout.download_dir(name)) for name in plan.downloads],
        folders=lambda plan, member=None: dataset_folders(plan.preset["dataset"]),
        params=lambda member: ["dataset", "seed", "classify.images"],
        threads_key="prepare",  # threads.prepare and resources.prepare serve both
    ),
    Stage(
        "train",
        "train one method of a preset (models/<preset>/<method>/model.pt and loss.csv); resumes from its checkpoint",
        "pipeline.stages.train",
        "trained",
        (Output(layout.model_file), Output(layout.loss_file)),
        inputs=_data,
        # not diffusion.inference_schedule: sampling settings never retrain a model
        params=lambda method: [
            "model",
            f"training.{method}",
            "diffusion.training_schedule",
            "diffusion.loss",
            "diffusion.parametrization",
            "seed",
        ],
        method_code=True,
    ),
    Stage(
        "tune",
        "search inference schedules on the validation split (results/<preset>/tune/<method>.csv and .json)",
        "pipeline.stages.tune",
        "tuned",
        (Output(layout.tune_table, snakemake_report=("Sampling", "tune_table")), Output(layout.tune_choices_file)),
        inputs=_data_and_model,
        params=lambda method: ["tune", "variants", "diffusion", "sampling", "protocol", "seed"],
        method_code=True,
    ),
    Stage(
        "sample",
        "super-resolve the test images with one method (samples/<preset>/<method>/); resumes",
        "pipeline.stages.sample",
        "sampled",
        (Output(layout.samples_dir, directory=True),),
        inputs=_sample_inputs,
        params=_sample_params,
        method_code=True,
    ),
    # With sampling.shards N above 1: N jobs (cluster nodes) each sample every N-th batch
    # of the test images; the sample stage then merges them.
    Stage(
        "sample_shard",
        "sample one shard of a method's test images (sr3bench sample --shard I/N)",
        "pipeline.stages.sample",
        "shard",
        (
            Output(
                lambda preset, method: layout.sample_shard_dir(preset, method, "{shard}", "{shards}"), directory=True
            ),
        ),
        inputs=lambda preset, method, plan: _sample_inputs(preset, method, plan, shard=True),
        params=_sample_params,
        method_code=True,
        cli_name="sample",
        threads_key="sample",
    ),
    # An outside method's samples: its folder, checked (every test image, each of its HR
    # image's size and 8-bit RGB, or grey where the HR image is) and copied; like prepare,
    # it reads and writes image files, with prepare's threads (one) and resources.
    Stage(
        "collect",
        "check an outside method's folder of outputs (presets.<preset>.external.<method>) and copy its test "
        "images into samples/<preset>/<method>/",
        "pipeline.stages.collect",
        "external",
        (Output(layout.samples_dir, directory=True),),
        inputs=_data,
        folders=lambda plan, method=None: [outside_folder(plan.preset, method)],
        params=lambda method: [f"external.{method}.folder"],
        threads_key="prepare",
    ),
    Stage(
        "diversity",
        "sample the first test images with several seeds, for the report's diversity figure "
        "(samples/<preset>/diversity/<method>/)",
        "pipeline.stages.diversity",
        "diverse",
        (Output(layout.diversity_dir, directory=True),),
        inputs=_data_and_model,
        params=lambda method: ["diversity", "diffusion", "sampling", "seed"],
        method_code=True,
    ),
    Stage(
        "evaluate",
        "PSNR, SSIM, consistency, LPIPS per image and FID, KID, IS per set for one method (results/<preset>/)",
        "pipeline.stages.evaluate",
        "method",
        (Output(layout.results_file), Output(layout.set_metrics_file)),
        inputs=lambda preset, method, plan: [str(layout.data_dir(preset)), str(layout.samples_dir(preset, method))],
        params=lambda method: ["protocol"],
    ),
    # The paper's Table 3 (docs/classification.md): a classifier's top-1/top-5 error on
    # each method's super-resolved classify set, and on the original images (the baseline).
    Stage(
        "classify",
        "top-1/top-5 error of an ImageNet classifier on one method's 4x super-resolved classify set "
        "(results/<preset>/classify/<method>.json)",
        "pipeline.stages.classify",
        "classified",
        (Output(layout.classify_result_file),),
        inputs=_classify_inputs,
        params=lambda method: ["classify", *_sample_params(method)],
        method_code=True,
    ),
    Stage(
        "classify_baseline",
        "top-1/top-5 error of an ImageNet classifier on the original images of the classify set "
        "(results/<preset>/classify/original-images.json)",
        "pipeline.stages.classify",
        "classify",
        (Output(lambda preset, member: layout.classify_result_file(preset, layout.CLASSIFY_BASELINE)),),
        inputs=_classify_set,
        params=lambda member: ["classify"],
        threads_key="classify",
    ),
    Stage(
        "study_build",
        "build the human study (studies/<preset>/site/): page, each rater's trial plan, images",
        "pipeline.stages.study_build",
        "study",
        # The study folder is written beside the plan but not declared: the engines delete a
        # job's outputs before running it, and a live study's page must outlive a build that
        # refuses (its answers were given under another plan). The plan is not cached by DVC,
        # whose run cache would restore it without the folder.
        (Output(lambda preset, member: layout.study_plan_file(preset), dvc="uncached"),),
        inputs=_study_build_inputs,
        params=lambda member: ["study", "seed"],
    ),
    Stage(
        "study_simulate",
        "answers of simulated raters with study.simulated's fool rates (studies/<preset>/simulated.sqlite), "
        "labelled simulated wherever they appear",
        "pipeline.stages.study_simulate",
        "study_simulated",
        (Output(lambda preset, member: layout.study_simulated_file(preset)),),
        inputs=lambda preset, member, plan: [str(layout.study_plan_file(preset))],
        params=lambda member: ["study", "seed"],
    ),
    Stage(
        "study_analyse",
        "fool rates per method and task with Wilson and hierarchical-bootstrap intervals, per image and per "
        "rater (results/<preset>/study/)",
        "pipeline.stages.study_analyse",
        "study_analysed",
        (Output(lambda preset, member: layout.study_results_dir(preset), directory=True),),
        inputs=lambda preset, member, plan: [str(layout.study_plan_file(preset)), str(plan.study_answers(preset))],
        params=lambda member: ["study", "seed"],
    ),
    Stage(
        "report",
        "write reports/<preset>/: index.html, metrics CSV/JSON, figures and provenance",
        "pipeline.stages.report",
        "preset",
        tuple(_report_output(name) for name in layout.REPORT_FILES),
        inputs=_report_inputs,
        params=lambda member: ["description", "diffusion", "training", "model", "paper"],
        plan_params=lambda plan: [f"external.{method}" for method in plan.external],  # titles, citations
        tracks_results=True,
    ),
    Stage(
        "front_page",
        "write reports/index.html (every preset with a report, its headline numbers) and reports/all_presets.csv",
        "pipeline.stages.front_page",
        "project",
        (
            Output(lambda preset, member: layout.FRONT_PAGE),
            Output(lambda preset, member: layout.ALL_PRESETS_CSV),
        ),
        inputs=lambda preset, member, plan: [
            str(layout.report_file(preset, "metrics.csv")),
            str(layout.report_file(preset, "provenance.json")),
        ],
    ),
)
BY_NAME = {stage.name: stage for stage in STAGES}
assert all(stage.fan_out in FAN_OUTS for stage in STAGES)

# The jobs' settings that are not results: threads and cluster resources per stage.
PRESET_STAGE_SETTINGS = tuple(dict.fromkeys(s.settings_key for s in STAGES if s.per_preset))


def declared_threads(params: dict, preset_name: str) -> dict[str, int]:
    """``threads.<key>`` as params.yaml declares it, for each stage that has a job in the
    preset's run (a preset without a classify section or a study has none of theirs)."""
    plan = Plan.of(params, preset_name)
    run = [stage for stage in STAGES if stage.per_preset and plan.members(stage.fan_out)]
    return {stage.settings_key: params["threads"][stage.settings_key] for stage in run}


# Stages whose results depend on the list of compared methods itself: the report, and the
# study, which shows every compared method when study.methods is null.
TRACK_METHODS = ("report", "study_build")
# Top-level keys (outside presets.<preset>) a stage's results depend on: the Inception
# weights file FID, KID and IS are computed with.
TRACK_TOP_LEVEL = {
    "evaluate": ("weights.inception",),
    "classify": ("weights.resnet50",),  # the classifier's weights file
    "classify_baseline": ("weights.resnet50",),
}


def stage_keys(stage: Stage, preset: str, member: str | None, plan: Plan | None) -> list[str]:
    """Dotted keys of params.yaml a job's results depend on (``presets.<preset>.seed``);
    ``plan``: what the preset's run compares (None for the stages of no preset)."""
    if stage.fan_out == "dataset":
        return ["datasets"]
    keys = [*stage.params(member), *(stage.plan_params(plan) if plan is not None else [])]
    dotted = [f"presets.{preset}.{key}" for key in keys]
    dotted += TRACK_TOP_LEVEL.get(stage.name, ())
    return ["methods", *dotted] if stage.name in TRACK_METHODS else dotted


def param_values(params: dict, keys: list[str]) -> dict:
    """{key: value} of dotted keys in resolved params (what a Snakemake rule declares)."""
    values = {}
    for key in keys:
        node = params
        for part in key.split("."):
            node = node[part]
        values[key] = node
    return values


@dataclass(frozen=True)
class Job:
    """What a stage's ``run`` gets: the resolved config, its preset's typed settings and
    paths, and the member of the fan-out it is for; ``result_settings``: for a stage that
    tracks the results (the report), {dotted key: value} of every setting they rest on."""

    params: dict
    preset_name: str | None
    method: str | None = None
    dataset: str | None = None
    shard: tuple[int, int] | None = None
    weights_dir: str | None = None
    result_settings: dict | None = None

    @property
    def preset(self) -> dict:
        """The preset as the resolved mapping (what the layers below the pipeline take)."""
        return self.params["presets"][self.preset_name]

    @functools.cached_property
    def settings(self) -> Preset:
        return Preset.from_config(self.preset_name, self.preset)

    @property
    def paths(self) -> layout.PresetPaths:
        return layout.PresetPaths(self.preset_name)

    @property
    def methods(self) -> list[str]:
        return list(self.params["methods"])

    @property
    def weights(self) -> WeightsSettings:
        """The top-level ``weights`` section: local metric weight files."""
        return build(WeightsSettings, self.params.get("weights", {}))
