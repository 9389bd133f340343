"""The study-build stage: the human study's folder (studies/<preset>/site/) from the
preset's test images and the samples of the methods it compares (sr3bench/study/build.py)."""

from __future__ import annotations

from sr3bench.core.images import list_images
from sr3bench.study.build import build_study
from sr3bench.study.plan import StudyDesign
from sr3bench.study.selection import shown_methods


def study_design(job) -> StudyDesign:
    """The study's design from the preset: its methods, test images, tasks and counts."""
    settings, study = job.settings, job.settings.study
    return StudyDesign(
        methods=tuple(shown_methods(study.methods, job.methods)),
        images=tuple(p.name for p in list_images(job.paths.split("test", "hr"))),
        tasks=tuple(study.tasks),
        raters=study.raters,
        images_per_rater=study.images_per_rater,
        practice_trials=study.practice_trials,
        vigilance_share=study.vigilance_share,
        seed=settings.seed,
    )


def run(job) -> None:
    design, paths = study_design(job), job.paths
    build_study(
        paths.study_site,
        paths.study_plan,
        design,
        paths.split("test", "hr"),
        paths.split("test", "lr"),
        {method: paths.samples(method) for method in design.methods},
        job.settings.study.display_ms,
        job.preset_name,
        answers=paths.study_answers,
    )
