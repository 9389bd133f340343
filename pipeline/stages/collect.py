"""The collect stage: an outside method's samples (``presets.<preset>.external.<method>``,
docs/outside-outputs.md). Its folder is checked against the preset's test images
(``sr3bench/core/output_folder.py``: every test image present, each of its HR image's size
and 8-bit RGB, or grey where the HR image is), and its test images are copied into
``samples/<preset>/<method>/``, so that evaluate, the report and the human study treat
it as any other method. Files that are not test images are named in a warning and ignored."""

from __future__ import annotations

import logging

from pipeline.dataset_listing import outside_folder
from sr3bench.core.atomic import publish_folder
from sr3bench.core.output_folder import check_output_folder, folder_checksum, listed

log = logging.getLogger(__name__)


def run(job) -> None:
    settings, paths, method = job.settings, job.paths, job.method
    if method not in settings.external:
        raise ValueError(
            f"{method} is not an outside method of preset {settings.name} (presets.{settings.name}.external): "
            f"`sr3bench sample --method {method}` makes its samples"
        )
    folder = outside_folder(job.preset, method)
    checked = check_output_folder(
        folder, paths.split("test", "hr"), f"the outputs of {method} (external.{method})", settings.dataset.scale
    )
    if checked.extra:
        log.warning(
            "%s: files of %s are not test images and are ignored (%d): %s",
            method,
            folder,
            len(checked.extra),
            listed(checked.extra),
        )
    publish_folder(checked.images, paths.samples(method))  # copies: nothing downstream links the user's files
    checksum = folder_checksum(checked.images)
    log.info(
        "%s: %d test images from %s into %s (sha256 of their names and contents: %s)",
        method,
        checksum["images"],
        folder,
        paths.samples(method),
        checksum["sha256"],
    )
