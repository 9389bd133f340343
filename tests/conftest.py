import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SR3BENCH_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def sr_benchmarks() -> Path:
    root = SHARED_DATA / "sr-benchmarks"
    if not (root / "Set5" / "HR").is_dir():
        pytest.skip(f"real benchmark images not found at {root} (set SR3BENCH_SHARED_DATA to the shared data folder)")
    return root


def pytest_configure(config):
    """An xdist worker runs on cores of its own (its share of this process's), and so do
    the pipeline stages it starts, which take their thread count from the affinity mask
    (sr3bench/core/machine.py): two workers sharing two cores with two threads each would spend
    their time waiting on each other's OpenMP threads."""
    config.addinivalue_line(
        "markers", "slurm_cluster: runs on the SLURM test cluster (tests/slurm_cluster.py); make test-cluster"
    )
    worker = getattr(config, "workerinput", None)
    if worker is None or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    share = cores[int(worker["workerid"].removeprefix("gw")) :: int(worker["workercount"])] or cores
    os.sched_setaffinity(0, share)
    os.environ["OMP_NUM_THREADS"] = str(len(share))  # read when torch is first imported


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Groups for pytest-xdist's ``--dist loadgroup`` (``make test`` runs two workers):
    the tests of one file stay on one worker, so that each module fixture (a pipeline
    run, a trained model) is built once, and so do all the users of the session's small
    demo run, wherever their file, and the users of the SLURM test cluster (which are also
    marked ``slurm_cluster``: ``make test`` leaves them to ``make test-cluster``). Without
    xdist the groups do nothing."""
    for item in items:
        if "slurm_cluster" in item.fixturenames:
            item.add_marker(pytest.mark.slurm_cluster)
        if not item.get_closest_marker("xdist_group"):
            group = "small-demo" if "small_demo_project" in item.fixturenames else item.path.name
            group = "slurm-cluster" if "slurm_cluster" in item.fixturenames else group
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_xdist_node_collection_finished(node, ids):
    """xdist groups by appending ``@group`` to the node ids a worker collects, which
    pytest 9.2 ignores (pytest-dev/pytest-xdist#1386): every worker would then silently
    build the small demo. Stop instead, saying why."""
    if node.config.getvalue("dist") == "loadgroup" and any("@" not in nodeid for nodeid in ids):
        pytest.exit(
            f"pytest-xdist did not group the tests (pytest {pytest.__version__}; see pytest-dev/pytest-xdist#1386): "
            "install 'pytest<9.2' (pip install -e '.[test]'), or run them in one process: make test TEST_WORKERS=0",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


@pytest.fixture(scope="session")
def small_demo_project(tmp_path_factory) -> Path:
    """A copy of the project run through Snakemake with the small demo preset (a few
    minutes), shared by the end-to-end and tune tests; tests that change it copy it first."""
    import sys

    from projects import make_project, run, small_demo_params

    project = make_project(tmp_path_factory.mktemp("small-demo"), small_demo_params())
    run([sys.executable, "-m", "snakemake", "--cores", "8"], project)
    return project
