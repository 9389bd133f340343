"""Issue 28, items 6 and 11: a config error names the file (or ``--config``) and the key it
came from, in one message without a traceback, and a key given twice in a config file is
refused with its file, line and key, from the CLI and from a Snakemake dry run alike."""

import re
import subprocess
import sys

import pytest
import yaml
from projects import environment, make_project, tiny_params

from pipeline import config, strict_yaml

pytestmark = pytest.mark.fault


def one_message(result: subprocess.CompletedProcess) -> str:
    """The output of a refused command, checked to hold no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "Traceback" not in output and 'File "' not in output, output[-2000:]
    return output


def snakemake_dry_run(project, *options) -> str:
    command = [sys.executable, "-m", "snakemake", "--dry-run", "--cores", "1", *options]
    return one_message(subprocess.run(command, cwd=project, env=environment(project), capture_output=True, text=True))


def cli_prepare(folder, params_file) -> str:
    command = [sys.executable, "-m", "pipeline.cli", "prepare", "--params", str(params_file)]
    return one_message(subprocess.run(command, cwd=folder, env=environment(folder), capture_output=True, text=True))


def with_a_preset_key_twice() -> tuple[str, int, int]:
    """params.yaml's text with the first ``steps:`` of the demo's training given again on
    the next line, and the two line numbers."""
    text = yaml.safe_dump(tiny_params(), sort_keys=False)
    lines = text.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.strip().startswith("steps: 150"))
    lines.insert(first + 1, lines[first].replace("150", "12"))
    return "".join(lines), first + 1, first + 2


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("config-sources") / "project", tiny_params())


def set_key(params: dict, key: str, value) -> dict:
    """``params`` with the dotted ``key`` set to ``value`` (made where missing)."""
    *parents, last = key.split(".")
    node = params
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return params


@pytest.mark.parametrize(
    "key, methods, message",
    [
        ("methods", ["bicubic", "nosuch"], "unknown method 'nosuch'"),
        ("presets.demo.methods", ["bicubic", "sr3@nosuchvariant"], "'sr3@nosuchvariant': variant 'nosuchvariant'"),
    ],
)
def test_an_unknown_method_names_the_file_and_key_it_came_from(project, tmp_path, key, methods, message):
    (project / "over.yaml").write_text(yaml.safe_dump(set_key({}, key, methods)))
    assert f"over.yaml: {key}: {message}" in snakemake_dry_run(project, "--configfile", "over.yaml")
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(set_key(tiny_params(), key, methods)))
    assert f"mine.yaml: {key}: {message}" in cli_prepare(tmp_path, tmp_path / "mine.yaml")


def test_an_unknown_method_on_snakemakes_command_line_names_config(project):
    output = snakemake_dry_run(project, "--config", "methods=[sr3@nosuchvariant]")
    assert "--config: methods: 'sr3@nosuchvariant': variant 'nosuchvariant' is not defined" in output


def test_top_level_methods_on_the_command_line_for_a_preset_with_its_own_list_are_refused(project):
    output = snakemake_dry_run(project, "--config", "preset=faces16_128_small", "methods=[bicubic]")
    assert "--config: methods: preset faces16_128_small lists its own methods" in output
    assert "give presets.faces16_128_small.methods instead" in output


def test_a_misspelled_top_level_key_names_the_layer_that_gave_it(project):
    output = snakemake_dry_run(project, "--config", "prest=demo")
    assert "--config: prest: not a top-level key (allowed keys: datasets, methods, preset, presets" in output


def test_methods_given_twice_in_a_configfile_are_refused(project, tmp_path):
    (project / "twice.yaml").write_text("methods: [bicubic]\nmethods: [sr3]\n")
    output = snakemake_dry_run(project, "--configfile", "twice.yaml")
    assert "twice.yaml, line 2: methods is given twice (also on line 1)" in output
    (tmp_path / "twice.yaml").write_text(yaml.safe_dump(tiny_params()) + "methods: [sr3]\n")
    assert re.search(r"twice.yaml, line \d+: methods is given twice", cli_prepare(tmp_path, tmp_path / "twice.yaml"))


def test_a_presets_key_given_twice_in_params_yaml_is_refused(project, tmp_path):
    text, first, again = with_a_preset_key_twice()
    expected = (
        rf"params.yaml, line {again}: presets\.demo\.training\.\w+\.steps is given twice \(also on line {first}\)"
    )
    (tmp_path / "params.yaml").write_text(text)
    assert re.search(expected, cli_prepare(tmp_path, "params.yaml"))
    original = (project / "params.yaml").read_text()
    try:
        (project / "params.yaml").write_text(text)
        assert re.search(expected, snakemake_dry_run(project))
    finally:
        (project / "params.yaml").write_text(original)


def test_a_key_is_traced_to_the_last_file_that_states_most_of_it():
    layers = [
        ("params.yaml", {"methods": ["bicubic"], "presets": {"demo": {"training": {"sr3": {"steps": 5}}}}}),
        ("over.yaml", {"presets": {"demo": {"training": {"sr3": {"steps": 7}}}}}),
        ("--config", {"preset": "demo"}),
    ]
    assert config.source_of("presets.demo.training.sr3.steps", layers) == "over.yaml"
    assert config.source_of("presets.demo.training.sr3.steps.x", layers) == "over.yaml"
    assert config.source_of("methods", layers) == "params.yaml" and config.source_of("preset", layers) == "--config"
    assert config.source_of("datasets", layers) == "params.yaml"  # stated nowhere: defaults come with params.yaml


def test_yaml_merge_keys_may_override_but_a_key_twice_may_not():
    assert strict_yaml.load("base: &b {x: 1}\nuse:\n  <<: *b\n  x: 2\n") == {"base": {"x": 1}, "use": {"x": 2}}
    with pytest.raises(strict_yaml.DuplicateKeyError, match=r"line 4: use.x is given twice \(also on line 3\)"):
        strict_yaml.load("base: &b {x: 1}\nuse:\n  x: 1\n  x: 2\n")
