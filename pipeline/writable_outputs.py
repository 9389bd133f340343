"""Before any job of a Snakemake run: the folders a preset's stages write into can be
written. Snakemake would fail later, per job, with "Failed to create output directory"
(the folder, no fix) or the stage with its own message; here the run stops at once with
one message naming the folder and what to do. Called from the Snakefile's ``onstart``,
which Snakemake skips in a dry run (``snakemake -n`` still works on a read-only copy)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from pipeline import layout
from sr3bench.core.write_errors import describe, existing_folder

ANY = "any"  # a member name, for the folder that holds every member's files


def output_folders(preset: str) -> list[Path]:
    """The folders under which the preset's stages write, and the front page's."""
    return [
        layout.data_dir(preset),
        layout.model_dir(preset, ANY).parent,
        layout.checkpoint_file(preset, ANY).parent.parent,
        layout.samples_dir(preset, ANY).parent,
        layout.results_file(preset, ANY).parent,
        layout.report_dir(preset),
        layout.fidelity_cache_dir(preset).parent,
        layout.log_file(preset, ANY).parent,
        layout.study_dir(preset),
        layout.FRONT_PAGE.parent,
    ]


def unwritable_output_folder(preset: str) -> str | None:
    """The message for the first folder (or, where it is still to be made, the folder it goes
    in) that this user cannot write; None when all can be written."""
    for folder in output_folders(preset):
        blocked = existing_folder(folder)
        if not os.access(blocked, os.W_OK):
            number = errno.EROFS if _on_a_read_only_filesystem(blocked) else errno.EACCES
            return describe(number, folder, blocked, note=" (no job has run)")
    return None


def _on_a_read_only_filesystem(folder: Path) -> bool:
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)


def refuse_unwritable_output_folders(preset: str) -> None:
    """End the run with the message of ``unwritable_output_folder``, if any (a SystemExit:
    Snakemake prints its message alone, without a traceback)."""
    problem = unwritable_output_folder(preset)
    if problem:
        raise SystemExit(problem)
