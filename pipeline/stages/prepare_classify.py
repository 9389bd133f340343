"""The prepare_classify stage: a preset's classify set (the paper's Table 3) from the
source images of its test split and the ImageNet devkit's labels (pipeline/classify_data.py),
under ``data/<preset>.classify/``. A stage of its own, so that the prepare stage of every
preset does not depend on this code."""

from __future__ import annotations

import shutil

from pipeline.classify_data import prepare_classify
from pipeline.prepare import dataset_sources


def run(job) -> None:
    out = job.paths.classify_data()
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    prepare_classify(dataset_sources(job.preset["dataset"], job.preset["seed"])["test"], job.preset, staging)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
