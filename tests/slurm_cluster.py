"""A real single-node SLURM cluster on localhost for the tests (issue 27): munge, MariaDB
with slurmdbd (the accounting daemon real clusters run), slurmctld and slurmd, all in a
temporary folder, started once per test session and stopped afterwards.

Debian's packages: ``apt-get install slurm-wlm slurmdbd munge mariadb-server`` (.ci/run
installs them). The daemons run as root (slurmd starts each job as its user); without the
packages or root, or where a daemon does not start, the tests skip and say why, and fail
instead where ``SR3BENCH_REQUIRE_SLURM=1`` (set by .ci/run when the install worked).

The configuration follows SLURM's slurm.conf(5) and slurmdbd.conf(5) manual pages for a
machine without systemd or cgroups: processes tracked by their parents
(``proctrack/linuxproc``), no task confinement (``task/none``), cores and memory as the
consumable resources (``select/cons_tres``, ``CR_Core_Memory``) with ``DefMemPerCPU`` so
that a job without ``--mem`` does not take the node's whole memory. Snakemake's SLURM
job-step plugin removes every ``SLURM_*`` variable, ``SLURM_CONF`` included, before its
``srun``: the configuration must be at SLURM's default path, ``/etc/slurm/slurm.conf``, where
the fixture puts a symbolic link to its own (and removes it afterwards); it refuses to
replace a file that is there already."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
REQUIRED = "SR3BENCH_REQUIRE_SLURM"
CLUSTER, PARTITION, ACCOUNT = "sr3bench", "debug", "tests"
COMMANDS = {
    "munge": ["munged", "munge", "unmunge"],
    "mariadb-server": ["mariadbd|mysqld", "mariadb-install-db|mysql_install_db", "mariadb|mysql"],
    "slurmdbd": ["slurmdbd"],
    "slurm-wlm": ["slurmctld", "slurmd", "sinfo", "sbatch", "srun", "squeue", "scancel", "sacct", "sacctmgr"],
}
START_TIMEOUT = 60  # seconds for each daemon to answer
DEF_MEM_PER_CPU = 2000  # MB: a job that asks no --mem gets this per CPU, not the node's whole memory


def unavailable(reason: str):
    """Skip the test, saying why; fail instead where the cluster is required (CI after its install)."""
    if os.environ.get(REQUIRED) == "1":
        pytest.fail(f"a SLURM test cluster is required ({REQUIRED}=1) but {reason}", pytrace=False)
    pytest.skip(f"no SLURM test cluster: {reason}")


def find_command(alternatives: str) -> str | None:
    return next((path for name in alternatives.split("|") if (path := shutil.which(name, path=SBIN_PATH))), None)


SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin"])


def missing_packages() -> list[str]:
    return [package for package, names in COMMANDS.items() if not all(find_command(name) for name in names)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tail(path: Path, characters: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-characters:]
    except OSError:
        return "(no log)"


@dataclass
class SlurmCluster:
    """The running cluster: its folder, its node and partition, the account its jobs are
    charged to, and the environment its commands need (the daemons' own configuration
    folder; clients also find it at /etc/slurm/slurm.conf)."""

    root: Path
    node_line: str  # as ``slurmd -C`` prints it: NodeName=... CPUs=... RealMemory=...
    partition: str = PARTITION
    account: str = ACCOUNT
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def node(self) -> str:
        return self.node_setting("NodeName")

    @property
    def cpus(self) -> int:
        return int(self.node_setting("CPUs"))

    def node_setting(self, key: str) -> str:
        return next(item.split("=", 1)[1] for item in self.node_line.split() if item.startswith(f"{key}="))

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    def environment(self, base: dict | None = None) -> dict:
        env = dict(os.environ if base is None else base, SLURM_CONF=str(self.conf))
        env["PATH"] = os.pathsep.join([env.get("PATH", ""), "/usr/sbin", "/sbin"])
        return env

    def command(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """A SLURM client command (sinfo, squeue, sacctmgr, ...) against this cluster."""
        done = subprocess.run(args, env=self.environment(), capture_output=True, text=True, timeout=timeout)
        if check and done.returncode:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr}")
        return done

    def job_state(self, job_id: str) -> str:
        """The job's state as accounting records it (PENDING, RUNNING, COMPLETED, CANCELLED, ...)."""
        out = self.command("sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State").stdout.split()
        return out[0].split()[0] if out else "UNKNOWN"

    def wait_for(self, condition, what: str, timeout: float = 120, every: float = 0.5):
        deadline = time.monotonic() + timeout
        while not (value := condition()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f} s for {what}")
            time.sleep(every)
        return value

    def start(self, name: str, command: list[str], user: str | None = None) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")
        self.daemons[name] = subprocess.Popen(
            command,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped by process group
            user=user,
            cwd=self.root,
        )

    def start_accounting(self) -> None:
        """Start slurmdbd (again) and wait until it answers."""
        self.start("slurmdbd", [find_command("slurmdbd"), "-D"])

        def answers():
            self.check_alive("slurmdbd")
            return self.command("sacctmgr", "-n", "list", "cluster", check=False).returncode == 0

        self.wait_for(answers, "slurmdbd to answer", START_TIMEOUT)

    def stop_daemon(self, name: str) -> None:
        process = self.daemons[name]
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def check_alive(self, name: str) -> None:
        process = self.daemons[name]
        if process.poll() is not None:
            logs = f"{tail(self.root / 'log' / f'{name}.out')}\n{tail(self.root / 'log' / f'{name}.log')}"
            raise RuntimeError(f"{name} exited with status {process.returncode}:\n{logs}")

    def stop(self) -> None:
        """Cancel what is left of the jobs, then stop the daemons in reverse order."""
        if "slurmctld" in self.daemons and self.daemons["slurmctld"].poll() is None:
            with contextlib.suppress(Exception):
                self.command("scancel", "--partition", self.partition, check=False)
                self.wait_for(
                    lambda: not self.command("squeue", "-h", check=False).stdout.strip(), "the jobs to end", 20
                )
        for name in reversed(list(self.daemons)):
            self.stop_daemon(name)


def write_munge_files(root: Path) -> list[str]:
    """munged's own key, socket and state under ``root/munge`` (owned by the munge user,
    which munged runs as): the command that starts it in the foreground."""
    folder = root / "munge"
    folder.mkdir()
    folder.chmod(0o755)  # every client reaches the socket; the key itself is the munge user's alone
    key = folder / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)
    for path in (folder, key):
        shutil.chown(path, "munge", "munge")
    return [
        find_command("munged"),
        "--foreground",
        f"--key-file={key}",
        f"--socket={folder / 'munge.socket'}",
        f"--pid-file={folder / 'munged.pid'}",
        f"--log-file={folder / 'munged.log'}",
        f"--seed-file={folder / 'munged.seed'}",
    ]


def write_configuration(root: Path, node_line: str, ports: dict[str, int], database_password: str) -> None:
    """slurm.conf and slurmdbd.conf (slurm.conf(5), slurmdbd.conf(5)) under ``root/etc``."""
    node = node_line.split()[0].removeprefix("NodeName=")
    munge = f"AuthType=auth/munge\nAuthInfo=socket={root / 'munge' / 'munge.socket'}\n"
    (root / "etc" / "slurm.conf").write_text(
        f"""# A single-node test cluster written by tests/slurm_cluster.py
ClusterName={CLUSTER}
SlurmctldHost={node}
SlurmctldPort={ports["slurmctld"]}
SlurmdPort={ports["slurmd"]}
SlurmUser=root
SlurmdUser=root
{munge}CredType=cred/munge
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU={DEF_MEM_PER_CPU}
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={ports["slurmdbd"]}
AccountingStoragePass={root / "munge" / "munge.socket"}
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
ReturnToService=2
KillWait=30
MpiDefault=none
SchedulerParameters=sched_interval=2
{node_line} State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
    )
    dbd = root / "etc" / "slurmdbd.conf"
    dbd.write_text(
        f"""# The accounting daemon of the test cluster (tests/slurm_cluster.py)
DbdHost=localhost
DbdPort={ports["slurmdbd"]}
SlurmUser=root
{munge}PidFile={root / "slurmdbd.pid"}
LogFile={root / "log" / "slurmdbd.log"}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports["mariadb"]}
StorageUser=slurm
StoragePass={database_password}
StorageLoc=slurm_acct_db
"""
    )
    dbd.chmod(0o600)  # slurmdbd refuses a configuration others can read (it holds the password)


def start_database(cluster: SlurmCluster, port: int, password: str) -> None:
    """A MariaDB server of its own (data, socket and port in the cluster's folder) with
    the database user slurmdbd connects as."""
    folder = cluster.root / "mysql"  # the server's data, socket and log, owned by the mysql user
    data = folder / "data"
    data.mkdir(parents=True)
    for path in (folder, data):
        shutil.chown(path, "mysql", "mysql")
    install = [find_command("mariadb-install-db|mysql_install_db"), "--no-defaults", "--user=mysql"]
    done = subprocess.run(
        [*install, f"--datadir={data}", "--skip-test-db", "--auth-root-authentication-method=socket"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode:
        raise RuntimeError(f"mariadb-install-db failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")
    sock = folder / "mysql.sock"
    cluster.start(
        "mariadbd",
        [
            find_command("mariadbd|mysqld"),
            "--no-defaults",
            "--user=mysql",
            f"--datadir={data}",
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            f"--pid-file={folder / 'mariadbd.pid'}",
            f"--log-error={folder / 'mariadbd.log'}",
            "--innodb-buffer-pool-size=64M",
            "--innodb-lock-wait-timeout=900",  # slurmdbd.conf(5) asks for at least 900
        ],
    )
    client = [find_command("mariadb|mysql"), "--no-defaults", f"--socket={sock}", "-uroot"]

    def answers():
        cluster.check_alive("mariadbd")
        return subprocess.run([*client, "-e", "SELECT 1"], capture_output=True).returncode == 0

    cluster.wait_for(answers, "MariaDB to answer", START_TIMEOUT)
    grant = (
        f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}'; "
        "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
    )
    subprocess.run([*client, "-e", grant], check=True, capture_output=True, timeout=30)


def start_cluster(root: Path) -> SlurmCluster:
    node_line = subprocess.run([find_command("slurmd"), "-C"], capture_output=True, text=True, check=True)
    node_line = node_line.stdout.splitlines()[0]  # NodeName=... CPUs=... RealMemory=...
    cluster = SlurmCluster(root, node_line)
    for folder in ("etc", "log", "state", "spool"):
        (root / folder).mkdir()
    ports = {name: free_port() for name in ("slurmctld", "slurmd", "slurmdbd", "mariadb")}
    password = secrets.token_hex(12)
    write_configuration(root, node_line, ports, password)
    try:
        cluster.start("munged", write_munge_files(root), user="munge")
        cluster.wait_for(lambda: cluster.check_alive("munged") or (root / "munge" / "munge.socket").exists(), "munged")
        start_database(cluster, ports["mariadb"], password)
        cluster.start_accounting()
        # The cluster, an account and this user in it, as an administrator sets them up.
        cluster.command("sacctmgr", "-i", "add", "cluster", CLUSTER)
        cluster.command("sacctmgr", "-i", "add", "account", ACCOUNT, f"cluster={CLUSTER}", "description=tests")
        cluster.command("sacctmgr", "-i", "add", "user", "root", f"account={ACCOUNT}", f"cluster={CLUSTER}")
        cluster.start("slurmctld", [find_command("slurmctld"), "-D", "-i"])
        cluster.start("slurmd", [find_command("slurmd"), "-D"])

        def node_idle():
            for name in ("slurmctld", "slurmd"):
                cluster.check_alive(name)
            return cluster.command("sinfo", "-h", "-o", "%t", check=False).stdout.strip() == "idle"

        cluster.wait_for(node_idle, "the node to be idle in sinfo", START_TIMEOUT)
    except Exception:
        cluster.stop()
        raise
    return cluster


def is_stale(target: Path) -> bool:
    """Whether ``target`` is a test cluster's configuration whose slurmctld no longer runs
    (or whose folder is gone)."""
    root = target.parent.parent
    if not root.name.startswith("sr3bench-slurm-"):
        return False
    try:
        os.kill(int((root / "slurmctld.pid").read_text()), 0)
    except (OSError, ValueError):
        return True
    return False


@contextlib.contextmanager
def default_path_link(target: Path):
    """``/etc/slurm/slurm.conf`` pointing at ``target`` while the cluster runs (created
    here, removed afterwards); refuses to touch a real configuration."""
    link = DEFAULT_CONF
    if link.is_symlink() and is_stale(Path(os.readlink(link))):
        link.unlink()  # left behind by a test session that was killed
    if link.exists() or link.is_symlink():
        unavailable(
            f"{link} exists already (a real SLURM configuration, or another test session's cluster): "
            "the fixture will not replace it; run the tests on a machine without a SLURM setup"
        )
    made_folder = not link.parent.exists()
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    try:
        yield
    finally:
        if link.is_symlink() and Path(os.readlink(link)) == target:
            link.unlink()
        if made_folder:
            with contextlib.suppress(OSError):
                link.parent.rmdir()


@pytest.fixture(scope="session")
def slurm_cluster():
    """The running single-node cluster (see the module's docstring)."""
    missing = missing_packages()
    if missing:
        unavailable(f"Debian packages missing: {', '.join(missing)} (apt-get install {' '.join(missing)})")
    if os.geteuid() != 0:
        unavailable("its daemons need root (slurmd starts each job as its user): run the tests as root")
    # Not under pytest's temporary folder: the munge and mysql users must reach their files.
    root = Path(tempfile.mkdtemp(prefix="sr3bench-slurm-"))
    root.chmod(0o755)
    keep = os.environ.get("SR3BENCH_KEEP_SLURM") == "1"  # the folder and its logs, for debugging
    try:
        with default_path_link(root / "etc" / "slurm.conf"):
            try:
                cluster = start_cluster(root)
            except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as error:
                keep = True
                unavailable(f"it did not start ({error}); its logs are kept under {root}")
            try:
                yield cluster
            finally:
                cluster.stop()
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
