"""The front page: reports/index.html (every preset with a report, its headline numbers)
and reports/all_presets.csv."""

from __future__ import annotations

import logging

from pipeline import layout
from sr3bench.reporting.front_page import build_front_page

log = logging.getLogger(__name__)


def run(job) -> None:
    build_front_page(layout.FRONT_PAGE.parent, layout.FRONT_PAGE, layout.ALL_PRESETS_CSV)
    log.info("wrote %s and %s", layout.FRONT_PAGE, layout.ALL_PRESETS_CSV)
