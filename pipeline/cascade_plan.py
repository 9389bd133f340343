"""What the engines run for a cascade (docs/cascade.md): the active preset's own plan, and
for each preset above it in the chain (``dataset.lr_from``, ``pipeline/cascade.py``) the
jobs that lead to the method outputs its downstream preset reads: that preset's prepare
(and downloads), the method's training, tuning and sampling. Not its evaluation or report:
the downstream run does not need them.

Snakemake reaches those jobs through its ``{preset}`` wildcard, once the rules exist and
their wildcard constraints admit the upstream presets' methods (``plans``); DVC gets them
as stages of their own in the generated dvc.yaml (``upstream_jobs``), named per preset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pipeline import cascade, layout
from pipeline.stage_table import BY_NAME, STAGES, Plan, Stage


def link_plan(params: dict, link: cascade.Link) -> Plan:
    """An upstream preset's plan in a chain: only the method its downstream preset reads."""
    upstream = params["presets"][link.preset]
    return Plan(
        methods=(link.method,),
        downloads=tuple(upstream["dataset"]["downloads"]),
        shards=upstream["sampling"]["shards"],
        preset=upstream,
    )


def plans(params: dict, active: str) -> dict[str, Plan]:
    """{preset: plan} of the active preset and of every preset above it in its chain."""
    chain = {link.preset: link_plan(params, link) for link in cascade.links(params["presets"], active)}
    return {active: Plan.of(params, active), **chain}


def plan_of(params: dict, active: str, preset: str) -> Plan:
    """The plan of a job's preset: an upstream preset of the active one plans only the
    method its downstream preset reads; any other preset plans its own run."""
    for link in cascade.links(params["presets"], active):
        if link.preset == preset:
            return link_plan(params, link)
    return Plan.of(params, preset)


@dataclass(frozen=True)
class UpstreamJob:
    preset: str
    stage: Stage
    member: str | None
    plan: Plan


def upstream_jobs(params: dict, active: str) -> list[UpstreamJob]:
    """The upstream presets' jobs the active preset's run needs, farthest preset first and
    in the stage table's order: those whose outputs lead to ``samples/<upstream>/<method>/``
    (sharded sampling is one job, as in dvc.yaml). A download is the project's, not the
    preset's: the caller keeps one job per dataset."""
    jobs = []
    for link in reversed(cascade.links(params["presets"], active)):
        plan = dataclasses.replace(link_plan(params, link), shards=1)
        producers = {
            path: (stage.name, member)
            for stage in STAGES
            if stage.fan_out != "shard"
            for member in plan.members(stage.fan_out)
            for path in stage.output_paths(link.preset, member)
        }
        needed, todo = set(), [str(layout.samples_dir(link.preset, link.method))]
        while todo:
            path = todo.pop()
            if path not in producers or producers[path] in needed:
                continue
            name, member = producers[path]
            needed.add((name, member))
            todo += BY_NAME[name].inputs(link.preset, member, plan)
        jobs += [
            UpstreamJob(link.preset, stage, member, plan)
            for stage in STAGES
            for member in plan.members(stage.fan_out)
            if (stage.name, member) in needed
        ]
    return jobs
