"""Settings stamps: each output of a stage's job records the values of the settings the
job tracks, and a stage run by hand or by Snakemake refuses an input whose stamp says it
was made with other settings than those it runs with now.

Snakemake re-runs a job whose tracked settings changed, and DVC a stage whose params did,
but a stage run by hand (``sr3bench sample ... --params other.yaml``, or after a change
of params.yaml) asks no engine: it took a model trained under the old settings, or a
hand-made output that Snakemake had no metadata for, as current. The stamp
(``cache/stamps/<output>.json``) holds the output's modification time: a file made since
by another route (DVC restoring it from its cache, a copy) has another, and its stamp no
longer speaks for it. Snakemake itself touches a job's outputs once the job has ended (a
directory's through its ``.snakemake_timestamp``): a stamp of its job also speaks for the
same file (inode and size) modified within ``SNAKEMAKE_TOUCH_NS`` after it was written.
Under DVC (which sees an output changed by hand itself) inputs are not checked; where DVC
re-links an output into its cache (reflink file systems), its job's stamp no longer speaks
for it: the check is lost, never a false refusal.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path

from pipeline import layout
from pipeline.config import ENGINE_VARIABLE
from pipeline.result_settings import tracked_keys
from pipeline.stage_table import BY_NAME, Plan, Stage, param_values
from sr3bench.core.atomic import atomic_path

log = logging.getLogger(__name__)

# How long after its job's stamp Snakemake may touch an output: it does so when it sees the
# job end, after the SLURM profile's status polls (up to 180 s apart) and latency-wait (120 s).
SNAKEMAKE_TOUCH_NS = 15 * 60 * 10**9
CLOCK_SKEW_NS = 60 * 10**9  # a SLURM job's node against the node Snakemake touches from


def under_dvc() -> bool:
    return "DVC_STAGE" in os.environ


def job_settings(params: dict, stage: Stage, preset: str, member: str | None) -> dict:
    """{dotted key: value} of what ``stage``'s job for ``member`` tracks, as JSON holds it."""
    keys = tracked_keys(params, stage, preset, member, Plan.of(params, preset))
    return json.loads(json.dumps(param_values(params, keys)))


def update_stamps(params: dict, stage: Stage, preset: str, member: str | None) -> None:
    """After a job, by hand or under an engine: stamp each of its outputs with the settings
    it was made with. Best effort: a stamp that cannot be written is a warning, never a
    failed job."""
    outputs = stage.output_paths(preset, member)
    try:
        settings = job_settings(params, stage, preset, member)
        for output in outputs:
            path, stamp = Path(output), layout.stamp_file(output)
            if not path.exists():
                stamp.unlink(missing_ok=True)
                continue
            record = {"stage": stage.name, "preset": preset, "member": member, "settings": settings}
            record.update(_identity(path.stat()), stamped_ns=time.time_ns(), snakemake=ENGINE_VARIABLE in os.environ)
            stamp.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(stamp) as temporary:
                temporary.write_text(json.dumps(record, indent=1))
    except Exception as error:  # noqa: BLE001 - the job's outputs are complete; only the check is lost
        log.warning("could not update the settings stamps of %s (%s): later runs will not check them", outputs, error)


def _identity(status: os.stat_result) -> dict:
    """What tells a file or folder from one made since: its modification time, inode and
    (a file's) size."""
    size = None if stat.S_ISDIR(status.st_mode) else status.st_size
    return {"mtime_ns": status.st_mtime_ns, "inode": status.st_ino, "size": size}


def _speaks_for(record: dict, status: os.stat_result) -> bool:
    """Whether the stamp ``record`` was written for the file or folder of ``status``: the
    same modification time, or Snakemake's touch of the same one after its job."""
    now = _identity(status)
    if record["mtime_ns"] == now["mtime_ns"]:
        return True
    if not record.get("snakemake") or (record["inode"], record["size"]) != (now["inode"], now["size"]):
        return False
    return -CLOCK_SKEW_NS <= now["mtime_ns"] - record["stamped_ns"] <= SNAKEMAKE_TOUCH_NS


def _record(output: str, preset: str) -> dict | None:
    """The stamp of ``output`` where it still speaks for the file there, else None."""
    stamp, path = layout.stamp_file(output), Path(output)
    if not stamp.is_file() or not path.exists():
        return None
    try:
        record = json.loads(stamp.read_text())
        current = _speaks_for(record, path.stat()) and record["preset"] == preset
        producer = BY_NAME[record["stage"]]
        ours = output in producer.output_paths(preset, record["member"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if current and ours else None


def stale_inputs(params: dict, stage: Stage, preset: str, member: str | None, params_option: str = "") -> list[str]:
    """Why each input of the job was made with other settings than ``params`` has now (one
    line per input; [] when none was). Not under DVC; inputs of other presets (a
    cascade's) are left to the engines. ``params_option``: the job's ``--params FILE``, for
    the command that makes an input again."""
    if under_dvc():
        return []
    try:
        inputs = stage.inputs(preset, member, Plan.of(params, preset))
    except Exception:  # noqa: BLE001 - a job the stage itself refuses (an outside method to sample): its message
        return []
    problems = []
    for output in inputs:
        record = _record(output, preset)
        if record is None:
            continue
        producer, made_for = BY_NAME[record["stage"]], record["member"]
        try:
            now = job_settings(params, producer, preset, made_for)
        except Exception:  # noqa: BLE001 - its producing job is gone from the plan: nothing to compare
            continue
        then = record.get("settings", {})
        differing = sorted(key for key in now.keys() | then.keys() if now.get(key) != then.get(key))
        if differing:
            command = producer.command(preset, made_for) + (f" {params_option}" if params_option else "")
            problems.append(
                f"{output} was made with other settings than the params file has now "
                f"({', '.join(differing[:4])}{' ...' if len(differing) > 4 else ''}): make it again first "
                f"({command}, or under Snakemake: snakemake --cores 8 --forcerun {output})"
            )
    return problems
