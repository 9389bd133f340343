"""The settings a preset's numbers rest on: every params.yaml key that a job of its run
tracks (its own stages' and, in a cascade, those of the upstream jobs that lead to what
it reads). The report tracks them all and its provenance hashes them, so that a report
both engines consider up to date carries the hash of the current settings. Keys that say
where and how fast a stage computes (``runtime``, ``threads``, ``resources``) are tracked
by no stage, so they are in neither, and a change of them re-runs nothing. The keys are
those the stages track, whole sections included (a download tracks the project's whole
``datasets``, as dvc.yaml must: params.yaml need not name a registry dataset).
"""

from __future__ import annotations

from pipeline.cascade_plan import upstream_jobs
from pipeline.stage_table import STAGES, Plan, Stage, stage_keys


def _outermost(keys: list[str]) -> list[str]:
    """``keys`` without repeats and without those inside another (``a.b`` beside ``a``)."""
    unique = list(dict.fromkeys(keys))
    return [key for key in unique if not any(key.startswith(f"{other}.") for other in unique)]


def result_keys(params: dict, preset_name: str, written_as: str | None = None) -> list[str]:
    """Dotted keys of resolved ``params`` the numbers of ``preset_name``'s run rest on, the
    upstream presets' first; ``written_as``: how the active preset is named in the keys
    (``${preset}`` in dvc.yaml)."""
    keys = []
    for job in upstream_jobs(params, preset_name):
        keys += stage_keys(job.stage, job.preset, job.member, job.plan)
    plan = Plan.of(params, preset_name)
    for stage in STAGES:
        for member in plan.members(stage.fan_out):
            keys += stage_keys(stage, written_as or preset_name, member, plan)
    return _outermost(keys)


def tracked_keys(
    params: dict, stage: Stage, preset_name: str, member: str | None, plan: Plan, written_as: str | None = None
) -> list[str]:
    """What a job of ``stage`` tracks: its own keys, or, for a stage that tracks the
    results (the report), every setting they rest on."""
    if stage.tracks_results:
        return result_keys(params, preset_name, written_as)
    return stage_keys(stage, written_as or preset_name, member, plan)
