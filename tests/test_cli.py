"""The command line as a user meets it: --help says what every subcommand does, --version,
and list-presets."""

import subprocess
import sys

from conftest import REPO

from pipeline.cli import parser
from pipeline.stage_table import STAGES


def sr3bench(*arguments) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *arguments], cwd=REPO, capture_output=True, text=True)


def test_help_describes_every_subcommand():
    subcommands = parser()._subparsers._group_actions[0]
    described = {action.dest: action.help for action in subcommands._choices_actions}
    assert set(described) == set(subcommands.choices) and {stage.subcommand for stage in STAGES} <= set(described)
    assert all(text and len(text) > 20 for text in described.values()), described
    for name in subcommands.choices:
        result = sr3bench(name, "--help")
        assert result.returncode == 0 and described[name].split()[0] in result.stdout


def test_version_and_list_presets():
    version = sr3bench("--version")
    assert version.returncode == 0 and version.stdout.startswith("sr3bench ")
    listing = sr3bench("list-presets")
    assert listing.returncode == 0
    for name in ("demo", "faces16_128_small", "faces16_128", "imagenet64_256"):
        assert f" {name} " in listing.stdout
    assert "* demo" in listing.stdout and "16->128" in listing.stdout


def test_a_thread_count_below_one_is_refused_by_name():
    """--threads 0 and -3 ran with one thread, silently."""
    import pytest

    for value in ("0", "-3", "two"):
        for command in (["prepare"], ["score", "--sr", "a", "--hr", "b"], ["benchmark"]):
            with pytest.raises(SystemExit):
                parser().parse_args([*command, "--threads", value])
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "score", "--sr", "a", "--hr", "b", "--threads", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "'0' is not a thread count: give a whole number of at least 1" in result.stderr
    assert parser().parse_args(["prepare", "--threads", "3"]).threads == 3
