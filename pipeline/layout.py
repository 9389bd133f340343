"""Every file the pipeline reads and writes, relative to the project root: the one place
that builds paths, for the stages, the Snakemake rules and the generated dvc.yaml alike.

    downloads/<dataset>/                                          fetched (or linked) datasets
    data/<preset>/train/shards/, {val,test}/{hr,lr}/*.png, manifest.json   prepared splits
    models/<preset>/<method>/model.pt, loss.csv                   trained methods
    checkpoints/<preset>/<method>/last.pt                         resumable training state
    samples/<preset>/<method>[@<variant>]/*.png                   SR images, one slot per variant
    results/<preset>/<method>[@<variant>].csv, .json               per-image metrics, set metrics + protocol
    data/<preset>.classify/{original,lr}/*.png, classify.json    the classify set (presets with classify:)
    results/<preset>/classify/<method>.json, original-images.json  top-1/top-5 errors of a classifier
    cache/<preset>/classify/<method>/<key>/                       a classify job's SR images (resumable)
    reports/<preset>/...                                          generated report (reports/paper/: the paper's tables)
    cache/<preset>/samples/<method>[@<variant>]/<key>/             unfinished sampling runs
    cache/downloads/<dataset>/                                    fetched archives, resumable
    cache/<preset>/fidelity/                                      torch-fidelity reference statistics
    cache/params/<hash>.yaml                                      the config an engine resolved, as its jobs read it
    cache/stamps/<output>.json                                    the settings a stage's output was made with
    cache/<preset>/dataset-listing.json, dataset-stats.json       dataset folders' files, as the Snakefile tracks them
    cache/<preset>/outside/<method>-listing.json, -stats.json     an outside method's folder, as the Snakefile tracks it
    logs/<preset>/<stage>[_<method>].log, .benchmark.tsv          stage logs and Snakemake benchmarks
    logs/downloads/<dataset>.log                                  download stage logs
    studies/<preset>/site/, plan.json                             the human study's page and images; its full plan
    studies/<preset>/answers.sqlite                               its answers (never an output: nothing deletes them)
    studies/<preset>/simulated.sqlite                             simulated answers (study.answers: simulated)
    results/<preset>/study/                                       the study's analysis (fool rates, per image, raters)

Arguments may be Snakemake wildcards ("{preset}"), so the rules take their patterns from
here too. A method name is ``<method>`` or ``<method>@<variant>``; a variant reuses the
trained model of its base method.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "val", "test")
VARIANT_SEPARATOR = "@"


def base_method(method: str) -> str:
    """The method whose trained model a variant uses: ``sr3@fast`` -> ``sr3``."""
    return method.split(VARIANT_SEPARATOR, 1)[0]


def variant_name(method: str) -> str | None:
    """``sr3@fast`` -> ``fast``; ``sr3`` -> None."""
    return method.split(VARIANT_SEPARATOR, 1)[1] if VARIANT_SEPARATOR in method else None


def data_dir(preset: str) -> Path:
    return Path("data") / preset


def split_under(data_root: Path, split: str, kind: str | None = None) -> Path:
    """``<data_root>/<split>`` or, with ``kind`` ("hr" or "lr"), its image folder; the
    prepare stage writes under a staging root that is renamed to ``data_dir`` when done."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
    if kind not in (None, "hr", "lr"):
        raise ValueError(f"unknown image kind {kind!r}; kinds: hr, lr")
    folder = Path(data_root) / split
    return folder / kind if kind else folder


def split_dir(preset: str, split: str, kind: str | None = None) -> Path:
    return split_under(data_dir(preset), split, kind)


def shard_folder(data_root: Path, split: str) -> Path:
    """The shards of a split's pairs (the training split is stored so, sr3bench/core/shards.py)."""
    return split_under(data_root, split) / "shards"


def shard_dir(preset: str, split: str) -> Path:
    return shard_folder(data_dir(preset), split)


CLASSIFY_KINDS = ("original", "lr")  # the classify set: the classifier's originals and the SR methods' inputs
CLASSIFY_MANIFEST_NAME = "classify.json"
CLASSIFY_BASELINE = "original-images"  # the classify stage's baseline row (no method can have this name)


def classify_under(root: Path, kind: str | None = None) -> Path:
    """A classify set's folder ``root`` or, with ``kind``, its images (originals or LR
    inputs), as the prepare_classify stage writes them under its staging root
    (pipeline/classify_data.py)."""
    if kind not in (None, *CLASSIFY_KINDS):
        raise ValueError(f"unknown classify image kind {kind!r}; kinds: {', '.join(CLASSIFY_KINDS)}")
    return Path(root) / kind if kind else Path(root)


def classify_data_dir(preset: str, kind: str | None = None) -> Path:
    """``data/<preset>.classify``: beside the preset's splits, not in them, so that the two
    are written (and re-run) by stages of their own; no preset name holds a dot."""
    return classify_under(Path("data") / f"{preset}.classify", kind)


def classify_result_file(preset: str, member: str) -> Path:
    """A classify job's top-1/top-5 errors and protocol: ``member`` a method, or CLASSIFY_BASELINE."""
    return Path("results") / preset / "classify" / f"{member}.json"


def classify_cache_dir(preset: str, method: str) -> Path:
    """A method's super-resolved classify inputs while its classify job runs (resumable)."""
    return Path("cache") / preset / "classify" / method


def download_dir(dataset: str) -> Path:
    """A registered dataset as the download stage leaves it (pipeline/datasets.py)."""
    return Path("downloads") / dataset


MANIFEST_NAME = "manifest.json"


def manifest_file(preset: str) -> Path:
    return data_dir(preset) / MANIFEST_NAME


def model_dir(preset: str, method: str) -> Path:
    return Path("models") / preset / base_method(method)


def model_file(preset: str, method: str) -> Path:
    return model_dir(preset, method) / "model.pt"


def loss_file(preset: str, method: str) -> Path:
    return model_dir(preset, method) / "loss.csv"


def checkpoint_file(preset: str, method: str) -> Path:
    """Resumable training state, deliberately not a declared output of any stage."""
    return Path("checkpoints") / preset / base_method(method) / "last.pt"


def samples_dir(preset: str, method: str) -> Path:
    return Path("samples") / preset / method


def sample_shard_dir(preset: str, method: str, index: int, count: int) -> Path:
    """Shard ``index`` (from 0) of ``count`` of a method's samples, before the merge."""
    return Path("samples") / preset / "shards" / method / f"{index}-of-{count}"


def diversity_dir(preset: str, method: str) -> Path:
    """Several seeds of the first test images (<stem>_seed<k>.png), for the report."""
    return Path("samples") / preset / "diversity" / method


def results_file(preset: str, method: str) -> Path:
    """Per-image metrics (CSV); the set metrics and the protocol are its JSON sidecar."""
    return Path("results") / preset / f"{method}.csv"


def set_metrics_file(preset: str, method: str) -> Path:
    return results_file(preset, method).with_suffix(".json")


def tune_table(preset: str, method: str) -> Path:
    """Every point of the tune stage's grid (CSV); the choices are its JSON sidecar."""
    return Path("results") / preset / "tune" / f"{method}.csv"


def tune_choices_file(preset: str, method: str) -> Path:
    """The sampler and schedule the tune stage chose for each tuned variant of ``method``."""
    return tune_table(preset, method).with_suffix(".json")


def tune_cache_dir(preset: str, method: str) -> Path:
    """Metrics of each grid point already sampled, keyed by what they depend on (a changed
    grid samples only its new points; an interrupted tune resumes)."""
    return Path("cache") / preset / "tune" / method


REPORT_FILES = (
    "index.html",
    "metrics.csv",
    "per_image.csv",
    "metrics_by_group.csv",
    "metrics.json",
    "classification.csv",
    "grid.png",
    "zoom.png",
    "diversity.png",
    "loss.png",
    "tuning.png",
    "study_images.png",
    "provenance.json",
)


def report_dir(preset: str) -> Path:
    return Path("reports") / preset


def report_file(preset: str, name: str) -> Path:
    return report_dir(preset) / name


def study_dir(preset: str) -> Path:
    return Path("studies") / preset


def study_site_dir(preset: str) -> Path:
    """The self-contained study folder (sr3bench/study/build.py): served, or copied to a web server."""
    return study_dir(preset) / "site"


def study_plan_file(preset: str) -> Path:
    """The study's full plan (methods and sides of each trial): outside the served folder."""
    return study_dir(preset) / "plan.json"


def study_answers_file(preset: str) -> Path:
    """Answers of human raters (study-serve, study-import): an input only, so that no
    engine ever deletes it when it re-runs a stage."""
    return study_dir(preset) / "answers.sqlite"


def study_simulated_file(preset: str) -> Path:
    return study_dir(preset) / "simulated.sqlite"


def study_results_dir(preset: str) -> Path:
    return Path("results") / preset / "study"


def prepare_command(preset: str) -> str:
    """The command that writes ``data/<preset>/``, for messages about its files."""
    return f"sr3bench prepare --preset {preset}"


# The project's folders that stages write, and replace or delete files in.
PIPELINE_ROOTS = (
    "downloads",
    "data",
    "models",
    "checkpoints",
    "samples",
    "results",
    "reports",
    "cache",
    "logs",
    "studies",
)


def stamp_file(output: str) -> Path:
    """The settings stamp of one declared output (``samples/demo/sr3``)."""
    return Path("cache") / "stamps" / f"{output}.json"


PAPER_TABLES_DIR = Path("reports") / "paper"
FRONT_PAGE = Path("reports") / "index.html"  # every preset that has a report
ALL_PRESETS_CSV = Path("reports") / "all_presets.csv"  # their metrics.csv tables, one file
FRONT_PAGE_LOG = Path("logs") / "front_page.log"


def fidelity_cache_dir(preset: str) -> Path:
    """torch-fidelity's cache of reference-set features (kept between runs)."""
    return Path("cache") / preset / "fidelity"


def download_cache_dir(dataset: str) -> Path:
    """Archives and files of a dataset as fetched (kept, so an interrupted download resumes)."""
    return Path("cache") / "downloads" / dataset


def sample_cache_dir(preset: str, method: str) -> Path:
    """Samples of unfinished sampling runs, kept for resuming."""
    return Path("cache") / preset / "samples" / method


def dataset_listing_file(preset: str) -> Path:
    """The files of the dataset folders a preset's prepare reads (names, sizes, sha256),
    rewritten only when one of them changes: the Snakefile's stand-in for the folders."""
    return Path("cache") / preset / "dataset-listing.json"


def dataset_stats_file(preset: str) -> Path:
    """Size, mtime and sha256 of each listed file: a file whose size and mtime are
    unchanged is not hashed again."""
    return Path("cache") / preset / "dataset-stats.json"


def outside_listing_file(preset: str, method: str) -> Path:
    """The images of an outside method's folder (``presets.<preset>.external.<method>``),
    as the Snakefile tracks them for its collect stage (as the dataset listing)."""
    return Path("cache") / preset / "outside" / f"{method}-listing.json"


def outside_stats_file(preset: str, method: str) -> Path:
    return Path("cache") / preset / "outside" / f"{method}-stats.json"


def resolved_params_file(digest: str) -> Path:
    """The params an engine resolved (file + overrides), written once per distinct config."""
    return Path("cache") / "params" / f"{digest}.yaml"


def log_file(preset: str, stage: str, method: str | None = None) -> Path:
    return Path("logs") / preset / (f"{stage}_{method}.log" if method else f"{stage}.log")


def download_log_file(dataset: str) -> Path:
    return Path("logs") / "downloads" / f"{dataset}.log"


@dataclass(frozen=True)
class PresetPaths:
    """Every path of one preset, its name bound once: ``paths.split("test", "lr")``,
    ``paths.model("sr3")``. What stage functions get instead of a bare preset name."""

    preset: str

    @property
    def data(self) -> Path:
        return data_dir(self.preset)

    def split(self, split: str, kind: str | None = None) -> Path:
        return split_dir(self.preset, split, kind)

    def shards(self, split: str) -> Path:
        return shard_dir(self.preset, split)

    @property
    def manifest(self) -> Path:
        return manifest_file(self.preset)

    def model(self, method: str) -> Path:
        return model_file(self.preset, method)

    def loss(self, method: str) -> Path:
        return loss_file(self.preset, method)

    def checkpoint(self, method: str) -> Path:
        return checkpoint_file(self.preset, method)

    def samples(self, method: str) -> Path:
        return samples_dir(self.preset, method)

    def sample_shard(self, method: str, index: int, count: int) -> Path:
        return sample_shard_dir(self.preset, method, index, count)

    def sample_cache(self, method: str) -> Path:
        return sample_cache_dir(self.preset, method)

    def classify_data(self, kind: str | None = None) -> Path:
        return classify_data_dir(self.preset, kind)

    def classify_result(self, member: str) -> Path:
        return classify_result_file(self.preset, member)

    def classify_cache(self, method: str) -> Path:
        return classify_cache_dir(self.preset, method)

    def diversity(self, method: str) -> Path:
        return diversity_dir(self.preset, method)

    def results(self, method: str) -> Path:
        return results_file(self.preset, method)

    def set_metrics(self, method: str) -> Path:
        return set_metrics_file(self.preset, method)

    def tune_table(self, method: str) -> Path:
        return tune_table(self.preset, method)

    def tune_choices(self, method: str) -> Path:
        return tune_choices_file(self.preset, method)

    def tune_cache(self, method: str) -> Path:
        return tune_cache_dir(self.preset, method)

    @property
    def study_site(self) -> Path:
        return study_site_dir(self.preset)

    @property
    def study_plan(self) -> Path:
        return study_plan_file(self.preset)

    @property
    def study_answers(self) -> Path:
        return study_answers_file(self.preset)

    @property
    def study_simulated(self) -> Path:
        return study_simulated_file(self.preset)

    @property
    def study_results(self) -> Path:
        return study_results_dir(self.preset)

    @property
    def fidelity_cache(self) -> Path:
        return fidelity_cache_dir(self.preset)

    @property
    def report_dir(self) -> Path:
        return report_dir(self.preset)

    def report(self, name: str) -> Path:
        return report_file(self.preset, name)

    def log(self, stage: str, method: str | None = None) -> Path:
        return log_file(self.preset, stage, method)
