"""The prepare stage: a preset's train/val/test splits from its downloads or sources."""

from __future__ import annotations

import shutil

from pipeline.prepare import prepare


def run(job) -> None:
    out = job.paths.data
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    prepare(job.preset, staging)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
