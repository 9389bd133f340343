"""A throw-away OpenSSH server on 127.0.0.1, for the tests of a DVC remote over SSH
(tests/test_ssh_remote.py): Debian's ``sshd`` run as the current user on a free port, with
keys generated in a temporary folder (its own host key, one authorized user key and one
the server does not know), its own config, pid file and authorized keys, and SFTP served
in-process. Nothing of the machine's own SSH setup is read or changed (as root, sshd needs
its privilege separation folder, /run/sshd, which is created when missing).

Where ``sshd`` or ``ssh-keygen`` is missing, or the server cannot start, the tests skip and
say why; with ``SR3BENCH_REQUIRE_SSH=1`` (set by .ci/run when openssh-server is installed)
they fail instead. The options are those of sshd_config(5)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRE = "SR3BENCH_REQUIRE_SSH"
START_TIMEOUT = 20  # seconds for sshd to answer with its banner
LIFETIME = 1800  # seconds: `timeout` kills sshd after this even if the test session never stops it
HOST = "127.0.0.1"


@dataclass(frozen=True)
class SshServer:
    port: int
    user: str
    key: Path  # a private key the server accepts
    unknown_key: Path  # a private key it does not
    log: Path  # sshd's own log (-E): what it accepted and refused

    def url(self, path: Path) -> str:
        """The ``ssh://`` URL of ``path`` on this server, as ``dvc remote add`` takes it."""
        return f"ssh://{self.user}@{HOST}:{self.port}{Path(path).resolve()}"


def unavailable(reason: str) -> None:
    """Skip, saying why; fail instead where the CI said SSH must work."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{REQUIRE}=1 but {reason}")
    pytest.skip(reason)


def sshd_binary() -> str | None:
    """sshd's absolute path (it re-executes itself, so it must be started by one)."""
    found = shutil.which("sshd") or next(
        (path for path in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.access(path, os.X_OK)), None
    )
    return str(Path(found).resolve()) if found else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def generate_key(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


def answers(port: int) -> bool:
    """Whether an SSH server answers on ``port`` with its identification line (RFC 4253, 4.2)."""
    try:
        with socket.create_connection((HOST, port), timeout=2) as connection:
            return connection.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def write_config(folder: Path, port: int) -> Path:
    config = folder / "sshd_config"
    config.write_text(
        f"""ListenAddress {HOST}
Port {port}
HostKey {folder / "host_key"}
PidFile {folder / "sshd.pid"}
AuthorizedKeysFile {folder / "authorized_keys"}
AllowUsers {getpass.getuser()}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
MaxSessions 64
MaxStartups 64
LogLevel VERBOSE
"""
    )
    return config


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to sshd's process group (the listener and its connections), SIGKILL after 5 s."""
    if process.poll() is not None:
        return
    for signal_number, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, signal_number)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(log: Path) -> str:
    return log.read_text()[-1500:] if log.exists() else ""


def login_fails(port: int, key: Path) -> str | None:
    """Why OpenSSH's client cannot log in with ``key`` and run `true` (None: it can, or
    there is no client to try; an account sshd refuses, a locked one say, shows here)."""
    if shutil.which("ssh") is None:
        return None
    options = ["BatchMode=yes", "IdentitiesOnly=yes", "StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"]
    command = ["ssh", "-F", "/dev/null", "-i", str(key), "-p", str(port), *(f"-o{o}" for o in options)]
    env = {name: value for name, value in os.environ.items() if name != "SSH_AUTH_SOCK"}
    try:
        result = subprocess.run(
            [*command, f"{getpass.getuser()}@{HOST}", "true"], env=env, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "ssh did not log in within 30 s"
    return None if result.returncode == 0 else result.stderr.strip()[-500:] or f"ssh exit {result.returncode}"


@contextmanager
def ssh_server(folder: Path) -> Iterator[SshServer]:
    """Run sshd on a free port of 127.0.0.1 until the block ends (skips, or fails under
    SR3BENCH_REQUIRE_SSH=1, where it cannot)."""
    sshd = sshd_binary()
    if sshd is None:
        unavailable("there is no sshd (apt-get install -y openssh-server)")
    if shutil.which("ssh-keygen") is None:
        unavailable("there is no ssh-keygen (apt-get install -y openssh-client)")
    folder.mkdir(parents=True, exist_ok=True)
    generate_key(folder / "host_key")
    key = generate_key(folder / "user_key")
    unknown_key = generate_key(folder / "unknown_key")
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    if os.geteuid() == 0:
        try:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        except OSError as error:
            unavailable(f"sshd runs as root here and needs /run/sshd, which cannot be created: {error}")
    log = folder / "sshd.log"
    hard_limit = ["timeout", "--signal=KILL", str(LIFETIME)] if shutil.which("timeout") else []
    process = None
    for _attempt in range(3):  # another process may take the free port before sshd binds it
        port = free_port()
        command = [*hard_limit, sshd, "-D", "-f", str(write_config(folder, port)), "-E", str(log)]
        with log.open("a") as errors:  # what sshd says before it opens its log
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline and not answers(port):
            time.sleep(0.1)
        if process.poll() is None and answers(port):
            break
        stop(process)
        process = None
    if process is None:
        unavailable(f"sshd did not start on {HOST} within {START_TIMEOUT} s (3 tries); its log:\n{tail(log)}")
    refused = login_fails(port, key)
    if refused:
        stop(process)
        unavailable(f"sshd started but refused the test key ({refused}); its log:\n{tail(log)}")
    try:
        yield SshServer(port=port, user=getpass.getuser(), key=key, unknown_key=unknown_key, log=log)
    finally:
        stop(process)
