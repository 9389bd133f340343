"""Before any job of a Snakemake run on SLURM: every job fits on some node. A job asking
more CPUs (``--cpus-per-task``, its rule's threads: ``threads.<stage>`` in params.yaml)
than the largest node has is accepted by sbatch and then waits in the queue for ever
(``squeue`` reason ``PartitionConfig``) while Snakemake prints nothing; here the run
stops before any submission, naming the rules and ``--max-threads``. Called from the
Snakefile's ``onstart`` (not in a dry run)."""

from __future__ import annotations

import subprocess


def largest_node_cpus() -> int | None:
    """The most CPUs of any node ``sinfo`` lists (None where sinfo cannot tell)."""
    try:
        listed = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    counts = [int(field) for field in listed.stdout.replace("+", " ").split() if field.isdigit()]
    return max(counts) if counts else None


def oversized_threads(job_threads: dict[str, int], node_cpus: int | None) -> str | None:
    """The message for the rules whose jobs ask more threads than any node has (None:
    every job fits, or sinfo could not tell)."""
    if node_cpus is None:
        return None
    too_many = {rule: n for rule, n in job_threads.items() if n > node_cpus}
    if not too_many:
        return None
    named = ", ".join(f"{rule} {n} threads" for rule, n in sorted(too_many.items()))
    return (
        f"jobs of {named} (threads.<stage> in params.yaml): the largest node of this SLURM cluster has {node_cpus} "
        "CPUs (sinfo), so they would wait in the queue for ever (squeue reason PartitionConfig). Add "
        f"--max-threads {node_cpus} to the snakemake command, or lower threads in params.yaml"
    )


def refuse_jobs_larger_than_any_node(workflow) -> None:
    """End a SLURM run whose planned jobs no node can hold (a SystemExit: Snakemake prints
    the message alone). The jobs' threads are those Snakemake submits, after --max-threads."""
    plugin = workflow.executor_plugin
    if plugin is None or plugin.name != "slurm":
        return
    threads = {}
    for job in workflow.dag.needrun_jobs():
        if not job.is_local:
            threads[job.rule.name] = max(threads.get(job.rule.name, 0), job.threads)
    problem = oversized_threads(threads, largest_node_cpus())
    if problem:
        raise SystemExit(problem)
