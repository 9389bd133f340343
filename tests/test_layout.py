"""pipeline/layout.py owns every path the pipeline reads and writes: no other module
builds one of its folders by hand."""

import re

import pytest
from conftest import REPO

from pipeline import layout

OWNED = "data|models|checkpoints|samples|results|reports|cache|logs|train|val|test|hr|lr"
HAND_BUILT = re.compile(rf'/ "({OWNED})"|"({OWNED})/|Path\("({OWNED})"\)')
SOURCES = [
    "Snakefile",
    "pipeline/*.py",
    "pipeline/stages/*.py",
    "sr3bench/core/*.py",
    "sr3/*.py",
    "baselines/*.py",
    "sr3bench/metrics/*.py",
    "sr3bench/reporting/*.py",
]


def test_no_module_but_the_layout_builds_a_pipeline_path():
    offenders = []
    for pattern in SOURCES:
        for path in sorted(REPO.glob(pattern)):
            if path.name == "layout.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if HAND_BUILT.search(line) and "layout: another package" not in line:
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "paths built by hand (use pipeline/layout.py):\n" + "\n".join(offenders)


def test_variants_have_their_own_samples_and_results_and_share_the_base_model():
    assert str(layout.samples_dir("demo", "sr3@fast")) == "samples/demo/sr3@fast"
    assert str(layout.results_file("demo", "sr3@fast")) == "results/demo/sr3@fast.csv"
    assert str(layout.set_metrics_file("demo", "sr3@fast")) == "results/demo/sr3@fast.json"
    assert layout.checkpoint_file("demo", "sr3@fast") == layout.checkpoint_file("demo", "sr3")
    assert str(layout.split_dir("{preset}", "val", "lr")) == "data/{preset}/val/lr"  # Snakemake wildcards pass through


def test_unknown_splits_are_refused():
    with pytest.raises(ValueError, match="unknown split 'valid'; splits: train, val, test"):
        layout.split_dir("demo", "valid")
