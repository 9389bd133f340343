"""The prepare stage: a preset's train/val/test splits from its downloads or sources."""

from __future__ import annotations

from pipeline.prepare import prepare
from sr3bench.core.atomic import staged_folder


def run(job) -> None:
    with staged_folder(job.paths.data) as staging:
        prepare(job.preset, staging)
