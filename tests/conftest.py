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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Groups for pytest-xdist's ``--dist loadgroup`` (``make test`` runs two workers):
    the tests of one file stay on one worker, so that each module fixture (a pipeline
    run, a trained model) is built once, and so do all the users of the session's small
    demo run, wherever their file. Without xdist the marks do nothing."""
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            group = "small-demo" if "small_demo_project" in item.fixturenames else item.path.name
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def small_demo_project(tmp_path_factory) -> Path:
    """A copy of the project run through Snakemake with the small demo preset (a few
    minutes), shared by the end-to-end and tune tests; tests that change it copy it first."""
    import sys

    from projects import make_project, run, small_demo_params

    project = make_project(tmp_path_factory.mktemp("small-demo"), small_demo_params())
    run([sys.executable, "-m", "snakemake", "--cores", "8"], project)
    return project
