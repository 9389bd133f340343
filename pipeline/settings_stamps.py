"""Settings stamps: each output of a stage records the values of the settings its job
tracks, and a stage refuses an input made with other settings than those it runs with.

Snakemake re-runs a job whose tracked settings changed only where its own metadata knows
the settings a file was made with; a stage run by hand (``sr3bench sample ... --params
other.yaml``, or before a change of params.yaml) leaves none, and the next run took the
file as current. The stamp (``cache/stamps/<output>.json``) closes that gap for both
engines and by hand. It holds the output's modification time: a file made since by
another route (DVC restoring it from its cache, Snakemake's timestamp in a folder it
made) has another, and its stamp no longer speaks for it; the engines' own tracking does.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline import layout
from pipeline.result_settings import tracked_keys
from pipeline.stage_table import BY_NAME, Plan, Stage, param_values
from sr3bench.core.atomic import atomic_path


def job_settings(params: dict, stage: Stage, preset: str, member: str | None) -> dict:
    """{dotted key: value} of what ``stage``'s job for ``member`` tracks, as JSON holds it."""
    keys = tracked_keys(params, stage, preset, member, Plan.of(params, preset))
    return json.loads(json.dumps(param_values(params, keys)))


def write_stamps(params: dict, stage: Stage, preset: str, member: str | None) -> None:
    """Stamp each output of a job that has just run."""
    settings = job_settings(params, stage, preset, member)
    for output in stage.output_paths(preset, member):
        path = Path(output)
        if not path.exists():
            continue
        record = {
            "stage": stage.name,
            "preset": preset,
            "member": member,
            "mtime_ns": path.stat().st_mtime_ns,
            "settings": settings,
        }
        stamp = layout.stamp_file(output)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(stamp) as temporary:
            temporary.write_text(json.dumps(record, indent=1))


def _record(output: str) -> dict | None:
    """The stamp of ``output`` where it still speaks for the file there, else None."""
    stamp, path = layout.stamp_file(output), Path(output)
    if not stamp.is_file() or not path.exists():
        return None
    try:
        record = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    current = isinstance(record, dict) and record.get("mtime_ns") == path.stat().st_mtime_ns
    return record if current and record.get("stage") in BY_NAME else None


def stale_inputs(params: dict, stage: Stage, preset: str, member: str | None) -> list[str]:
    """Why each input of the job was made with other settings than ``params`` has now
    (one line per input; [] when none was). Inputs of other presets (a cascade's) are
    left to the engines."""
    problems = []
    for output in stage.inputs(preset, member, Plan.of(params, preset)):
        record = _record(output)
        if record is None or record.get("preset") != preset:
            continue
        producer, made_for = BY_NAME[record["stage"]], record.get("member")
        now, then = job_settings(params, producer, preset, made_for), record.get("settings", {})
        differing = sorted(key for key in now.keys() | then.keys() if now.get(key) != then.get(key))
        if differing:
            command = producer.command(preset, made_for)
            problems.append(
                f"{output} was made with other settings than the params file has now ({', '.join(differing[:4])}"
                f"{' ...' if len(differing) > 4 else ''}): make it again first ({command}, or under Snakemake "
                f"snakemake --cores 8 --forcerun {producer.name})"
            )
    return problems
