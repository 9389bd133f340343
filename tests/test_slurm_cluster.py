"""The SLURM profile on a real cluster (tests/slurm_cluster.py: munge, MariaDB and slurmdbd,
slurmctld and slurmd on localhost): the tiny preset through ``snakemake --profile
profiles/slurm`` equals a local run; a training job stopped with ``scancel`` and
submitted again resumes from its checkpoint; a DDP training of 2 tasks under ``srun``
equals one process; and without the accounting daemon, the profile's jobs complete with
``--slurm-status-command squeue``.

These take minutes: ``make test-cluster`` runs them (``make test`` leaves them out), and
they skip where SLURM is not installed (docs/scaling-out.md, "A SLURM cluster")."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from projects import environment, make_project, start, tiny_params
from slurm_cluster import free_port, slurm_cluster  # noqa: F401 (the session fixture)
from test_distributed import SCRIPT, assert_same_training, train

pytestmark = [pytest.mark.slow]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
ENGINE_TIMEOUT = 2400  # seconds: a hard limit on each engine run (SIGKILL to its process group); minutes are expected
TRAINING_STEPS = 150  # tiny_params: checkpointed every 25


def slurm_command(cluster) -> list[str]:
    """The profile as a user of a small cluster runs it: their account and partition, and
    no job asking for more cores than a node has (the preset's train and sample stages ask
    for 8). The first status check comes 2 s after a submission instead of the plugin's
    40 (each job here takes seconds); job states come from ``sacct`` (slurmdbd)."""
    return [
        *SNAKEMAKE,
        "--profile",
        "profiles/slurm",
        "--default-resources",
        f"slurm_account={cluster.account}",
        f"slurm_partition={cluster.partition}",
        "--max-threads",
        str(cluster.cpus),
        "--slurm-init-seconds-before-status-checks",
        "2",
    ]


def tail(path: Path, characters: int = 4000) -> str:
    return path.read_text(errors="replace")[-characters:] if path.exists() else "(no log)"


def finish(process: subprocess.Popen, log: Path, deadline: float, cluster=None) -> None:
    """Wait for an engine started with ``projects.start`` until ``deadline`` (time.monotonic):
    past it, SIGKILL its process group (and cancel its SLURM jobs) and fail with its log."""
    try:
        process.wait(max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if cluster is not None:
            cluster.command("scancel", "--partition", cluster.partition, check=False)
        pytest.fail(f"{' '.join(map(str, process.args))} ran past its time limit and was killed:\n{tail(log)}")
    assert process.returncode == 0, f"{' '.join(map(str, process.args))} failed:\n{tail(log)}"


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):  # noqa: F811
    """The tiny preset with bicubic and SR3 through the SLURM profile and, beside it,
    locally (the reference; the two share the cores, and the local run fills the SLURM
    run's waits). The regression's three jobs would add a minute of SLURM's job start-up
    and status polls, and nothing the SR3 jobs do not show."""
    root = tmp_path_factory.mktemp("slurm-runs")
    params = tiny_params()
    params["methods"] = ["bicubic", "sr3"]
    local = make_project(root / "local", params)
    on_slurm = make_project(root / "slurm", params)
    began = time.monotonic()
    deadline = began + ENGINE_TIMEOUT
    local_run = start([*SNAKEMAKE, "--cores", str(slurm_cluster.cpus)], local, root / "local.log")
    slurm_run = start(slurm_command(slurm_cluster), on_slurm, root / "slurm.log")
    try:
        finish(slurm_run, root / "slurm.log", deadline, slurm_cluster)
        slurm_seconds = time.monotonic() - began
        finish(local_run, root / "local.log", deadline)
    finally:
        for process in (local_run, slurm_run):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    print(f"\nSLURM run {slurm_seconds:.0f} s, both runs {time.monotonic() - began:.0f} s")
    return {
        "local": local,
        "slurm": on_slurm,
        "log": (root / "slurm.log").read_text(),
        "local_log": (root / "local.log").read_text(),
    }


def files_under(project: Path, folders: list[str]) -> dict[str, bytes]:
    return {
        str(path.relative_to(project)): path.read_bytes()
        for folder in folders
        for path in sorted((project / folder).rglob("*"))
        if path.is_file() and path.name != ".snakemake_timestamp"
    }


def accounted(cluster, jobs: list[str]) -> dict[str, tuple[str, str]]:
    """Each job's account and state as slurmdbd recorded them (``sacct``)."""
    out = cluster.command("sacct", "-n", "-X", "-P", "-j", ",".join(jobs), "-o", "JobID,Account,State").stdout
    return {
        job: (account, state.split()[0])
        for job, account, state in (line.split("|") for line in out.splitlines() if line)
    }


def test_the_tiny_preset_through_the_slurm_profile_equals_a_local_run(runs, slurm_cluster):  # noqa: F811
    """Each of the local run's jobs was an sbatch job here, charged to the user's account
    and COMPLETED; the data, models, samples and scores are byte-identical to the local
    run's."""
    local, on_slurm = runs["local"], runs["slurm"]
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", runs["log"])
    local_jobs = runs["local_log"].count("Finished jobid:") - 1  # not the target rule `all`
    # prepare, SR3's training, 2 samplings, diversity, 2 evaluations, report, front page
    assert local_jobs == 9 and len(set(submitted)) == len(submitted) == local_jobs
    records = accounted(slurm_cluster, submitted)
    assert {account for account, _ in records.values()} == {slurm_cluster.account}
    assert [state for _, state in records.values()] == ["COMPLETED"] * local_jobs
    compared = ["data", "models", "samples", "results"]
    ours, theirs = files_under(on_slurm, compared), files_under(local, compared)
    assert sorted(ours) == sorted(theirs) and len(ours) > 20
    assert [name for name in ours if ours[name] != theirs[name]] == []
    for name in ("metrics.csv", "per_image.csv", "metrics_by_group.csv"):
        assert (on_slurm / "reports/demo" / name).read_bytes() == (local / "reports/demo" / name).read_bytes(), name


def test_a_cancelled_training_job_resumes_from_its_checkpoint_when_submitted_again(runs, slurm_cluster, tmp_path):  # noqa: F811
    """SR3's training stage as a batch job (on the SLURM run's prepared data), stopped with
    ``scancel`` once it has checkpointed: SLURM's SIGTERM makes the trainer save its step
    and stop, sacct records the job CANCELLED; the same job submitted again resumes from the
    checkpoint, and its model equals the uninterrupted local run's."""
    project = make_project(tmp_path / "project", tiny_params())
    shutil.copytree(runs["slurm"] / "data", project / "data")
    threads = min(8, slurm_cluster.cpus)  # the local run's: params.yaml's 8, capped by snakemake --cores
    sbatch = [
        "sbatch",
        "--parsable",
        f"--account={slurm_cluster.account}",
        f"--chdir={project}",
        f"--cpus-per-task={threads}",
        "--mem=4000",
        "--time=30",
        "--output=slurm-%j.out",
        f"--wrap=exec {sys.executable} -m pipeline.cli train --preset demo --method sr3 --threads {threads} "
        "--log logs/demo/train_sr3.log",
    ]
    env = slurm_cluster.environment(environment(project))  # the project's code, as Snakemake's jobs get it
    submit = (
        lambda *options: subprocess.run(  # noqa: E731
            [*sbatch[:1], *options, *sbatch[1:]], env=env, capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
    )
    first = submit()
    checkpoint = project / "checkpoints/demo/sr3/last.pt"

    def checkpointed():
        ended = slurm_cluster.command("squeue", "-h", "-j", first, check=False).stdout.strip() == ""
        assert checkpoint.exists() or not ended, (
            f"the training job ended first:\n{tail(project / 'logs/demo/train_sr3.log')}"
        )
        return checkpoint.exists()

    slurm_cluster.wait_for(checkpointed, "the training job's first checkpoint", ENGINE_TIMEOUT, every=0.2)
    slurm_cluster.command("scancel", first)
    slurm_cluster.wait_for(
        lambda: accounted(slurm_cluster, [first]).get(first, ("", ""))[1] == "CANCELLED", "sacct to record it", 120
    )
    try:
        submit("--wait")
    except subprocess.CalledProcessError as error:
        pytest.fail(f"the resubmitted training failed: {error.stderr}\n{tail(project / 'logs/demo/train_sr3.log')}")
    training_log = (project / "logs/demo/train_sr3.log").read_text()
    assert "stopped by signal 15" in training_log  # SIGTERM from scancel, not SIGKILL after KillWait
    resumed = [
        int(line.rsplit(" ", 1)[1])
        for line in training_log.splitlines()
        if "resumed from checkpoints/demo/sr3/last.pt at step" in line
    ]
    assert len(resumed) == 1 and 0 < resumed[0] < TRAINING_STEPS, training_log[-2000:]
    ours = torch.load(project / "models/demo/sr3/model.pt", weights_only=True)["state_dict"]
    theirs = torch.load(runs["local"] / "models/demo/sr3/model.pt", weights_only=True)["state_dict"]
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[key], theirs[key]) for key in theirs)


def test_two_srun_tasks_train_with_ddp_over_gloo_as_one_process(slurm_cluster, tmp_path):  # noqa: F811
    """A batch job of 2 tasks: ``srun`` starts one rank in each (RANK, WORLD_SIZE and
    LOCAL_RANK from SLURM's SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID; rank 0's host and
    a free port for the gloo rendezvous), 2 micro-batches each; its losses and weights are
    the single process's (tests/test_distributed.py's tolerances)."""
    single = train(tmp_path / "single", steps=12)
    out = tmp_path / "ddp"
    out.mkdir()
    script = tmp_path / "ddp.sbatch"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH --ntasks=2 --cpus-per-task=1 --mem-per-cpu=1000 --time=10\n"
        'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"\n'
        f"export MASTER_PORT={free_port()}\n"
        'srun bash -c \'echo "task $SLURM_PROCID of $SLURM_NTASKS on $(hostname)"; '
        "RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID "
        f"exec {sys.executable} {SCRIPT} {out} 12 2'\n"
    )
    log = tmp_path / "ddp.log"
    sbatch = [
        "sbatch",
        "--wait",
        "--parsable",
        f"--account={slurm_cluster.account}",
        f"--chdir={tmp_path}",
        f"--output={log}",
        str(script),
    ]
    done = subprocess.run(sbatch, env=slurm_cluster.environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{done.stdout}{done.stderr}\n{tail(log)}"
    job = done.stdout.strip().split(";")[0]
    tasks = sorted(line for line in log.read_text().splitlines() if line.startswith("task "))
    assert tasks == [f"task 0 of 2 on {slurm_cluster.node}", f"task 1 of 2 on {slurm_cluster.node}"]
    steps = slurm_cluster.command("sacct", "-n", "-P", "-j", job, "-o", "JobID,NTasks,State").stdout.split()
    assert f"{job}.0|2|COMPLETED" in steps
    ddp = torch.load(out / "result.pt")
    assert ddp["world_size"] == 2 and single["world_size"] == 1
    assert_same_training(single, ddp)


def test_without_the_accounting_daemon_the_squeue_status_mode_still_sees_jobs_end(slurm_cluster, tmp_path):  # noqa: F811
    """Clusters without slurmdbd: ``--slurm-status-command squeue`` (the test cluster's
    MinJobAge, 300 s, is over 3 x the 2 s first check, so the plugin does not fall back to
    sacct, which would fail here and leave Snakemake waiting forever). The prepare job,
    submitted with no account, completes and Snakemake sees it."""
    project = make_project(tmp_path / "project", tiny_params())
    command = [
        *SNAKEMAKE,
        "--profile",
        "profiles/slurm",
        "--default-resources",
        f"slurm_partition={slurm_cluster.partition}",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--slurm-status-command",
        "squeue",
        "--until",
        "prepare",
    ]
    slurm_cluster.stop_daemon("slurmdbd")
    try:
        assert slurm_cluster.command("sacct", "-n", check=False).returncode != 0  # no accounting now
        log = tmp_path / "snakemake.log"
        finish(start(command, project, log), log, time.monotonic() + 300, slurm_cluster)
    finally:
        slurm_cluster.start_accounting()
    text = log.read_text()
    assert text.count("has been submitted with SLURM jobid") == 1 and "Falling back to 'sacct'" not in text
    assert (project / "data/demo/manifest.json").is_file()


def test_a_job_larger_than_every_node_is_refused_before_any_is_submitted(slurm_cluster, tmp_path):  # noqa: F811
    """The profile without --max-threads on nodes of fewer cores than the preset's train
    stage asks (8): sbatch would queue the jobs for ever; the run stops first, naming them."""
    project = make_project(tmp_path / "project", tiny_params())
    command = slurm_command(slurm_cluster)
    at = command.index("--max-threads")
    del command[at : at + 2]
    log = tmp_path / "snakemake.log"
    process = start(command, project, log)
    with pytest.raises(AssertionError, match=r"failed"):
        finish(process, log, time.monotonic() + 300, slurm_cluster)
    text = log.read_text()
    assert f"largest node of this SLURM cluster has {slurm_cluster.cpus} CPUs" in text, tail(log)
    assert f"--max-threads {slurm_cluster.cpus}" in text and "submitted with SLURM jobid" not in text
