"""The prepare_classify stage: a preset's classify set (the paper's Table 3) from the
source images of its test split and the ImageNet devkit's labels (pipeline/classify_data.py),
under ``data/<preset>.classify/``. A stage of its own, so that the prepare stage of every
preset does not depend on this code."""

from __future__ import annotations

from pipeline.classify_data import prepare_classify
from pipeline.prepare import dataset_sources
from sr3bench.core.atomic import staged_folder


def run(job) -> None:
    if not job.settings.classify:
        raise ValueError(
            f"presets.{job.preset_name}.classify: this preset has no classify section (docs/classification.md)"
        )
    with staged_folder(job.paths.classify_data()) as staging:
        prepare_classify(dataset_sources(job.preset["dataset"], job.preset["seed"])["test"], job.preset, staging)
