"""Issue 27: a DVC remote over SSH, against a real OpenSSH server on 127.0.0.1
(tests/ssh_server.py). A tiny project (the prepare stage and one trained regression model)
is pushed with `dvc push` and pulled into a fresh git clone with `dvc pull`; a push killed
half-way is pushed again; a key the server does not know gives DVC's authentication error.
The commands are those of docs/scaling-out.md ("A DVC remote over SSH"). Every dvc call
runs under a hard timeout (SIGKILL to its process group)."""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ssh_server
import yaml
from projects import dvc_project, environment, kill_when, run, tiny_params
from ssh_server import SshServer, unavailable

pytestmark = pytest.mark.slow

DVC_TIMEOUT = 120  # seconds for one push, pull or status (each takes 1-3 s here)
TRAIN_TIMEOUT = 600  # seconds for `dvc repro` of the two stages (seconds on a free 2-core CPU)
TEST_CROPS = 150  # test crops, so 300 PNGs: enough files for a push to be killed half-way
STAGES = ("prepare", "train_regression")


def dvc(project: Path, *arguments: str, timeout: float = DVC_TIMEOUT, check: bool = True):
    """`dvc ARGUMENTS` in ``project``, SIGKILLed (with any process it started) after ``timeout``
    seconds; with ``check``, it must succeed. No SSH agent: only the configured key logs in."""
    env = environment(project)
    env.pop("SSH_AUTH_SOCK", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "dvc", *arguments],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(
            f"dvc {' '.join(arguments)} ran over {timeout} s and was killed:\n{stdout[-2000:]}\n{stderr[-3000:]}"
        )
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if check:
        assert result.returncode == 0, f"dvc {' '.join(arguments)} failed:\n{stdout[-2000:]}\n{stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def ssh(tmp_path_factory):
    try:
        import dvc_ssh  # noqa: F401
    except ImportError:
        unavailable("dvc-ssh is not installed (pip install -e '.[cluster]'; make install includes it)")
    with ssh_server.ssh_server(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="module")
def project(ssh, tmp_path_factory) -> Path:
    """A tiny project under git and DVC, its dvc.yaml cut to two stages: prepared data (300
    test PNGs) and a regression model trained for 10 steps, in DVC's cache, with the SSH
    remote ``shared`` as its default (the URL committed, the key's path in the clone's own
    config, as docs/scaling-out.md says)."""
    params = tiny_params()
    demo = params["presets"]["demo"]
    demo["dataset"]["test_crops_per_image"] = TEST_CROPS
    demo["training"]["regression"].update(steps=10, checkpoint_every=10, log_every=10)
    root = tmp_path_factory.mktemp("ssh-remote")
    project = dvc_project(root / "project", params)
    generated = yaml.safe_load((project / "dvc.yaml").read_text())  # every stage of the preset: keep two
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {name: generated["stages"][name] for name in STAGES}}))
    dvc(project, "repro", timeout=TRAIN_TIMEOUT)
    dvc(project, "remote", "add", "-d", "shared", ssh.url(root / "remote"))
    dvc(project, "remote", "modify", "--local", "shared", "keyfile", str(ssh.key))
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "tiny run"], project)
    return project


def tracked_files(project: Path) -> dict[str, bytes]:
    """Every file of the outputs dvc.lock records for STAGES, by path: their bytes."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    files = {}
    for stage in STAGES:
        for out in lock["stages"][stage]["outs"]:
            path = project / out["path"]
            for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
                if file.is_file():
                    files[str(file.relative_to(project))] = file.read_bytes()
    return files


def expected_objects(project: Path) -> set[str]:
    """The md5s a complete push puts on the remote: each output's (a folder's ends in .dir,
    its listing is in the cache), and each file's in a folder."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    objects = set()
    for stage in STAGES:
        for out in lock["stages"][stage]["outs"]:
            objects.add(out["md5"])
            if out["md5"].endswith(".dir"):
                listing = project / ".dvc" / "cache" / "files" / "md5" / out["md5"][:2] / out["md5"][2:]
                objects |= {entry["md5"] for entry in json.loads(listing.read_text())}
    return objects


def remote_objects(remote: Path) -> tuple[dict[str, Path], list[Path]]:
    """DVC 3's remote layout, files/md5/<2 hex>/<30 hex>[.dir]: the objects by md5, and any
    other file."""
    objects, others = {}, []
    for path in sorted(p for p in remote.rglob("*") if p.is_file()):
        found = re.fullmatch(r"files/md5/([0-9a-f]{2})/([0-9a-f]{30}(\.dir)?)", path.relative_to(remote).as_posix())
        if found:
            objects[found.group(1) + found.group(2)] = path
        else:
            others.append(path)
    return objects, others


def assert_remote_intact(remote: Path, expected: set[str] | None = None) -> None:
    """Every object on the remote has the md5 its path says; any other file is an upload's
    temporary name (dvc-ssh writes `.<random>.tmp` beside the object and renames it when
    complete: a killed push leaves them, and DVC never reads them); with ``expected``, the
    remote holds exactly those objects."""
    objects, others = remote_objects(remote)
    for oid, path in objects.items():
        assert hashlib.md5(path.read_bytes()).hexdigest() == oid.removesuffix(".dir"), f"corrupt object {path}"
    temporary = r"files/md5/[0-9a-f]{2}/\.[^/]+\.tmp"
    assert all(re.fullmatch(temporary, path.relative_to(remote).as_posix()) for path in others), others
    if expected is not None:
        assert set(objects) == expected, (
            f"missing {sorted(expected - set(objects))}, extra {sorted(set(objects) - expected)}"
        )


def fresh_clone(project: Path, destination: Path, key: Path) -> Path:
    """A git clone (no cache, no outputs) with this machine's key for the remote."""
    run(["git", "clone", "-q", str(project), str(destination)], destination.parent)
    dvc(destination, "remote", "modify", "--local", "shared", "keyfile", str(key))
    return destination


def assert_pulls_identical(project: Path, clone: Path, *remote: str) -> None:
    originals = tracked_files(project)
    assert len(originals) > 2 * TEST_CROPS and not any((clone / path).exists() for path in originals)
    dvc(clone, "pull", *remote)
    assert tracked_files(clone) == originals
    assert "are in sync" in dvc(clone, "status", "-c", *remote).stdout
    assert "Data and pipelines are up to date" in dvc(clone, "status").stdout  # nothing to re-run


def test_push_then_pull_into_a_fresh_clone_gives_the_same_bytes(project, ssh, tmp_path):
    pushed = dvc(project, "push")
    expected = expected_objects(project)
    assert f"{len(expected)} files pushed" in pushed.stdout
    assert_remote_intact(project.parent / "remote", expected)
    assert "are in sync" in dvc(project, "status", "-c").stdout
    assert_pulls_identical(project, fresh_clone(project, tmp_path / "clone", ssh.key))


def test_a_push_killed_half_way_completes_when_pushed_again(project, ssh: SshServer, tmp_path):
    """SIGKILL to `dvc push` once 10 objects are on the remote: those are whole; pushed
    again, it sends the rest, and a fresh clone pulls every file back."""
    remote = tmp_path / "remote"
    dvc(project, "remote", "add", "--local", "-f", "interrupted", ssh.url(remote))
    dvc(project, "remote", "modify", "--local", "interrupted", "keyfile", str(ssh.key))
    expected = expected_objects(project)
    env = environment(project)
    env.pop("SSH_AUTH_SOCK", None)
    push = subprocess.Popen(
        [sys.executable, "-m", "dvc", "push", "-r", "interrupted"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        kill_when(push, lambda: len(remote_objects(remote)[0]) >= 10, timeout=DVC_TIMEOUT)
    finally:
        if push.poll() is None:
            os.killpg(push.pid, signal.SIGKILL)
            push.wait()
    objects, _ = remote_objects(remote)
    assert 10 <= len(objects) < len(expected), "the kill did not land half-way"
    assert_remote_intact(remote)  # what arrived is whole
    assert "are in sync" not in dvc(project, "status", "-c", "-r", "interrupted").stdout
    again = dvc(project, "push", "-r", "interrupted")
    assert f"{len(expected) - len(objects)} files pushed" in again.stdout  # only what was missing
    assert_remote_intact(remote, expected)
    clone = fresh_clone(project, tmp_path / "clone", ssh.key)
    dvc(clone, "remote", "add", "--local", "-f", "interrupted", ssh.url(remote))
    dvc(clone, "remote", "modify", "--local", "interrupted", "keyfile", str(ssh.key))
    assert_pulls_identical(project, clone, "-r", "interrupted")


def test_a_key_the_server_does_not_know_is_an_authentication_error(project, ssh, tmp_path):
    """DVC says `ERROR: unexpected error - Permission denied for user USER on host HOST`
    (asyncssh's message); docs/scaling-out.md explains it. The project has no command of
    its own around push and pull, so this asserts DVC's message."""
    clone = fresh_clone(project, tmp_path / "clone", ssh.unknown_key)
    for command in (["pull"], ["status", "-c"]):
        result = dvc(clone, *command, check=False)
        assert result.returncode != 0
        assert f"Permission denied for user {ssh.user} on host 127.0.0.1" in result.stderr, result.stderr[-2000:]
    assert not any((clone / path).exists() for path in tracked_files(project))
    assert "Failed publickey" in ssh.log.read_text()  # the server saw, and refused, that key


def test_a_server_that_never_answers_fails_after_the_remotes_timeout(project):
    """A port that accepts connections but never sends SSH's banner: with the remote's
    `timeout` at 5 s, DVC gives up after about that long (its default is 1800 s), with an
    empty message (`ERROR: unexpected error - : :`, docs/scaling-out.md)."""
    with socket.socket() as silent:
        silent.bind((ssh_server.HOST, 0))
        silent.listen(8)  # the kernel completes the handshakes; nothing ever reads or writes
        url = f"ssh://user@{ssh_server.HOST}:{silent.getsockname()[1]}/x"
        dvc(project, "remote", "add", "--local", "-f", "silent", url)
        dvc(project, "remote", "modify", "--local", "silent", "timeout", "5")
        start = time.monotonic()
        result = dvc(project, "status", "-c", "-r", "silent", check=False, timeout=90)
        elapsed = time.monotonic() - start
    assert result.returncode != 0 and 5 <= elapsed < 60, (result.returncode, elapsed, result.stderr[-2000:])


def test_without_sshd_the_tests_skip_or_fail_as_ci_says(tmp_path, monkeypatch):
    """Without sshd they skip, saying why; with SR3BENCH_REQUIRE_SSH=1 (.ci/run sets it
    when openssh-server is installed) they fail."""
    monkeypatch.setattr(ssh_server, "sshd_binary", lambda: None)
    monkeypatch.delenv(ssh_server.REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no sshd"), ssh_server.ssh_server(tmp_path / "a"):
        pass
    monkeypatch.setenv(ssh_server.REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match="SR3BENCH_REQUIRE_SSH=1 but there is no sshd"):
        with ssh_server.ssh_server(tmp_path / "b"):
            pass
