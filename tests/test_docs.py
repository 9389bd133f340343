"""The README and the pages of docs/ name only what the project has.

For README.md and every docs/*.md page:
- a project path written in backticks, in a code block or as a link (``sr3/unet.py``,
  ``pipeline/stages/``, ``[protocol](protocol.md)``) exists; paths under the generated
  output folders (``data/``, ``models/``, ``reports/<preset>/``, ...) are not checked;
- a dotted project module (``pipeline.cli``) exists;
- ``sr3bench <subcommand>`` is a subcommand of the CLI (read from ``pipeline.cli.parser()``)
  and ``make <target>`` a target of the Makefile;
- a config key, written as ``presets.<name>.<key>...``, as a top-level key
  (``datasets.<name>.local``), as a key of a preset (``runtime.device``) or in a YAML block
  of params, is defined by the schema (``pipeline/config.schema.yaml``, completed by
  ``pipeline/config.py`` with the keys that follow the stage table and the registry);
- a link to a section of a page names a heading of that page.
And: the README is at most README_MAX_LINES lines and states CI's test command, and no file
tracked by git says which working session measured what (``session`` and a number).
"""

from __future__ import annotations

import argparse
import glob
import itertools
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_LINES = 220

# First path segments of the project's own files (the rest of the top level is generated:
# data/, models/, samples/, results/, checkpoints/, cache/, logs/, downloads/, weights/ ...).
# core/, metrics/ and reporting/ are the old places of sr3bench/core/ and its siblings: a
# page naming them names files that are gone.
SOURCE_ROOTS = {
    "pipeline",
    "sr3",
    "baselines",
    "sr3bench",
    "tests",
    "benchmarks",
    "docs",
    "profiles",
    "envs",
    ".ci",
    ".dvc",
    "core",
    "metrics",
    "reporting",
}
SOURCE_PREFIXES = ("reports/paper/",)
TOP_LEVEL_FILES = {"Snakefile", "Makefile"}
MODULE_ROOTS = {"pipeline", "sr3", "baselines", "sr3bench", "benchmarks", "core", "metrics", "reporting"}
FILE_SUFFIXES = (
    ".py",
    ".yaml",
    ".yml",
    ".toml",
    ".md",
    ".csv",
    ".json",
    ".png",
    ".jpg",
    ".jpeg",
    ".html",
    ".tsv",
    ".smk",
    ".pt",
    ".rst",
    ".txt",
    ".tar",
    ".zip",
    ".gz",
    ".lock",
    ".log",
    ".JPEG",
)
SESSION_PATTERN = "session [0-9]"

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
YAML_FENCE = re.compile(r"^```yaml\n(.*?)^```", re.M | re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.M)
SUBCOMMAND = re.compile(r"(?<![\w/.-])sr3bench[ \t]+([a-z][\w-]*)")
MAKE_TARGET = re.compile(r"(?<![\w/.-])make[ \t]+([a-z][\w-]*)")
PRESETS_KEY = re.compile(r"(?<![\w./-])presets\.([\w<>@-]+)((?:\.[\w<>@-]+)*)")
DOTTED = re.compile(r"^[a-z_]+(?:\.[\w<>@-]+)+$")


def doc_pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


# ---------------------------------------------------------------- what the project has


def cli_subcommands() -> set[str]:
    from pipeline.cli import parser

    for action in parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("pipeline.cli.parser() has no subcommands")


def make_targets() -> set[str]:
    return set(re.findall(r"^([\w.-]+)\s*:(?!=)", (ROOT / "Makefile").read_text(), re.M))


def config_schema() -> dict:
    """The schema as the config check uses it: the YAML file, completed by pipeline/config.py
    with one threads and resources key per stage and each method's own settings."""
    try:
        from pipeline.config import _schema
    except ImportError:
        return yaml.safe_load((ROOT / "pipeline" / "config.schema.yaml").read_text())
    return _schema()


# ---------------------------------------------------------------- extraction


def split_code(text: str) -> tuple[str, list[str]]:
    """The prose (fenced blocks blanked out) and the fenced blocks' contents."""
    blocks = FENCE.findall(text)
    return FENCE.sub("", text), blocks


def strip_token(token: str) -> str:
    """A word of code without the punctuation around it; of ``key=value``, the key, or the
    value where that is a path (``cpu=models/demo/sr3/loss.csv``)."""
    token = token.strip("\"'()[],;").rstrip(".:")
    if "=" in token:
        key, value = token.split("=", 1)
        token = value if "/" in value else key
    return token.strip("\"'()[],;").rstrip(".:")


def tokens(span: str) -> list[str]:
    return [t for t in (strip_token(raw) for raw in re.split(r"[\s|]+", span)) if t]


def is_project_path(token: str) -> bool:
    if token in TOP_LEVEL_FILES or token.startswith(SOURCE_PREFIXES):
        return True
    first, sep, rest = token.partition("/")
    return bool(sep) and first in SOURCE_ROOTS and "://" not in token


def path_exists(token: str, base: Path = ROOT) -> bool:
    """Whether ``token`` names something under ``base``; ``<placeholder>`` and ``*`` match
    any name, ``[...]`` is optional, ``{a,b}`` either."""
    token = token.split("#", 1)[0]
    pattern = re.sub(r"\[[^\]]*\]", "", token)
    pattern = re.sub(r"<[^>]*>", "*", pattern)
    alternatives = [pattern]
    while any("{" in p for p in alternatives):
        expanded = []
        for p in alternatives:
            match = re.search(r"\{([^{}]*)\}", p)
            if not match:
                expanded.append(p)
                continue
            expanded += [p[: match.start()] + choice + p[match.end() :] for choice in match.group(1).split(",")]
        alternatives = expanded
    for candidate in alternatives:
        if "*" in candidate or "?" in candidate:
            if glob.glob(str(base / candidate.rstrip("/"))):
                return True
        elif (base / candidate).exists():
            return True
    return False


def module_exists(token: str) -> bool:
    """``pipeline.cli`` or ``pipeline.cli.parser()``: the first two segments, at least, are
    a package or a module of the project (further segments may be attributes)."""
    parts = token.rstrip("()").split(".")
    return any(
        (ROOT / Path(*parts[:n])).is_dir() or (ROOT / Path(*parts[:n])).with_suffix(".py").is_file()
        for n in range(2, len(parts) + 1)
    )


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# ---------------------------------------------------------------- the schema


def _resolve(schema: dict, node: dict | None) -> dict | None:
    while isinstance(node, dict) and "$ref" in node:
        node = schema["$defs"][node["$ref"].split("/")[-1]]
    return node


def _children(schema: dict, node: dict, key: str) -> list[dict]:
    """The schemas a key may have under ``node``; [] when it may not be there."""
    node = _resolve(schema, node)
    if not isinstance(node, dict):
        return []
    properties = node.get("properties", {})
    placeholder = key.startswith("<") and key.endswith(">")
    if not placeholder and key in properties:
        return [properties[key]]
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return [extra]
    if placeholder:  # training.<method>: any of the named keys
        return list(properties.values())
    return []


def key_problem(schema: dict, root: dict, path: list[str], where: str) -> str | None:
    """None when the schema defines ``path`` below ``root``, else what is wrong."""
    nodes = [root]
    for depth, key in enumerate(path):
        nodes = [child for node in nodes for child in _children(schema, node, key)]
        if not nodes:
            return f"{where}.{'.'.join(path[: depth + 1])}: the schema has no such key"
    return None


def yaml_key_paths(value, prefix=()):
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, str(key))
            yield from yaml_key_paths(child, (*prefix, str(key)))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield from yaml_key_paths(item, (*prefix, "<item>"))


def yaml_block_problems(schema: dict, block: str) -> list[str]:
    """Keys of a YAML block that reads as params.yaml, or as a preset's section, that the
    schema does not define; other YAML (a profile, a dvc.yaml excerpt) is left alone."""
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError:
        return []
    if not isinstance(data, dict) or not data:
        return []
    preset = schema["$defs"]["preset"]
    if set(data) <= set(schema["properties"]):
        root, where = schema, "params"
    elif set(data) <= set(preset["properties"]):
        root, where = preset, "presets.<preset>"
    else:
        return []
    problems = []
    for path in yaml_key_paths(data):
        path = [p for p in path if p != "<item>"]
        nodes = [root]
        for depth, key in enumerate(path):
            nodes = [_resolve(schema, n) for n in nodes]
            # list items: descend into the array's item schema
            nodes = [
                (
                    _resolve(schema, n.get("items"))
                    if isinstance(n, dict) and "items" in n and "properties" not in n
                    else n
                )
                for n in nodes
            ]
            nodes = [child for node in nodes for child in _children(schema, node, key)]
            if not nodes:
                problems.append(f"YAML block: {where}.{'.'.join(path[: depth + 1])}: the schema has no such key")
                break
    return sorted(set(problems))


def config_key_problems(schema: dict, text_spans: list[str], code: str) -> list[str]:
    problems = []
    preset = schema["$defs"]["preset"]
    for match in PRESETS_KEY.finditer(code):
        rest = [p for p in match.group(2).split(".") if p]
        if rest and not rest[-1].endswith(FILE_SUFFIXES):
            problem = key_problem(schema, preset, rest, f"presets.{match.group(1)}")
            if problem:
                problems.append(problem)
    for span in text_spans:
        for token in tokens(span):
            if not DOTTED.match(token) or token.endswith(FILE_SUFFIXES) or token.startswith("presets."):
                continue
            first, *rest = token.split(".")
            if first in schema["properties"]:
                problem = key_problem(schema, schema, [first, *rest], "params")
            elif first in preset["properties"]:
                problem = key_problem(schema, preset, [first, *rest], "presets.<preset>")
            else:
                continue
            if problem:
                problems.append(problem)
    return problems


# ---------------------------------------------------------------- one page


def page_problems(text: str, page: Path, subcommands: set[str], targets: set[str], schema: dict) -> list[str]:
    """Everything ``text`` (the page ``page``) names that the project does not have."""
    prose, blocks = split_code(text)
    spans = INLINE_CODE.findall(prose)
    code_text = "\n".join([*spans, *blocks])
    problems = []

    for token in itertools.chain.from_iterable(tokens(span) for span in spans):
        if is_project_path(token) and not path_exists(token):
            problems.append(f"path {token}: no such file or folder")
        elif (
            re.fullmatch(r"[a-z_][a-z_0-9]*(\.[a-z_0-9]+)+(\(\))?", token)
            and token.split(".")[0] in MODULE_ROOTS
            and not token.endswith(FILE_SUFFIXES)
            and not module_exists(token)
        ):
            problems.append(f"module {token}: no such module")
    for block in blocks:
        for token in tokens(block):
            if is_project_path(token) and not path_exists(token):
                problems.append(f"path {token} (code block): no such file or folder")
    for target in LINK.findall(prose):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            anchor_page, anchor = (page, target[1:]) if target.startswith("#") else (None, None)
        else:
            file_part, _, anchor = target.partition("#")
            anchor_page = (page.parent / file_part).resolve()
            if not path_exists(file_part, page.parent):
                problems.append(f"link {target}: no such file or folder")
                continue
        if anchor and anchor_page and anchor_page.suffix == ".md" and anchor_page.is_file():
            anchors = {slug(h) for h in HEADING.findall(split_code(anchor_page.read_text())[0])}
            if anchor not in anchors:
                problems.append(f"link {target}: {anchor_page.name} has no section #{anchor}")

    for name in SUBCOMMAND.findall(code_text):
        if name not in subcommands:
            problems.append(f"sr3bench {name}: the CLI has no such subcommand ({', '.join(sorted(subcommands))})")
    for name in MAKE_TARGET.findall(code_text):
        if name not in targets:
            problems.append(f"make {name}: the Makefile has no such target")

    problems += config_key_problems(schema, spans, code_text)
    for block in YAML_FENCE.findall(text):
        problems += yaml_block_problems(schema, block)
    if re.search(SESSION_PATTERN, text, re.I):
        problems.append("names a working session; name the commit and the machine instead")
    return problems


@pytest.fixture(scope="module")
def project_facts():
    return cli_subcommands(), make_targets(), config_schema()


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_page_names_only_what_the_project_has(page, project_facts):
    problems = page_problems(page.read_text(), page, *project_facts)
    assert not problems, f"{page.relative_to(ROOT)}:\n  " + "\n  ".join(dict.fromkeys(problems))


def test_the_checks_catch_a_wrong_path_command_key_and_section(project_facts):
    page = ROOT / "docs" / "made-up.md"
    good = (
        "Run `sr3bench train --preset demo --method sr3` after `make run`; the code is in "
        "`sr3/unet.py` and `pipeline/stage_table.py`'s neighbour `pipeline/layout.py`, "
        "writes `models/<preset>/sr3/model.pt`, reads `runtime.device`, "
        "`training.<method>.keep: best_val_psnr`, `datasets.<name>.local`, "
        "`presets.demo.sampling.shards` and `variants.ancestral-2000`; see "
        "[the protocol](protocol.md#metrics) and `python -m pipeline.cli`.\n\n"
        "```bash\ndvc exp run -S presets.demo.training.regression.steps=12\n"
        "python benchmarks/gpu_check.py\n```\n\n"
        "```yaml\npresets:\n  demo:\n    tune:\n      schedules: [{shape: cosine}]\n"
        "      select: {metric: lpips}\n```\n"
    )
    assert page_problems(good, page, *project_facts) == []

    bad = {
        "`pipeline/no_such_module.py`": "path pipeline/no_such_module.py",
        "`core/distributed.py`": "path core/distributed.py",
        "```bash\npython benchmarks/no_such_script.py\n```": "path benchmarks/no_such_script.py (code block)",
        "[a page](no-such-page.md)": "link no-such-page.md",
        "[a section](protocol.md#no-such-section)": "has no section #no-such-section",
        "`sr3bench no-such-command --preset demo`": "sr3bench no-such-command",
        "`make no-such-target`": "make no-such-target",
        "`presets.demo.training.sr3.no_such_key`": "presets.demo.training.sr3.no_such_key",
        "`presets.demo.no_such_section`": "presets.demo.no_such_section",
        "`runtime.no_such_key`": "presets.<preset>.runtime.no_such_key",
        "`datasets.ffhq.no_such_key`": "params.datasets.ffhq.no_such_key",
        "```yaml\npresets:\n  demo:\n    sampling: {no_such_key: 1}\n```": "presets.demo.sampling.no_such_key",
        "`pipeline.no_such_module`": "module pipeline.no_such_module",
        "measured in " + "Session" + " 12": "names a working session",
    }
    for text, expected in bad.items():
        problems = page_problems(text, page, *project_facts)
        assert any(expected in problem for problem in problems), (text, problems)


def test_the_readme_is_short_and_states_the_ci_test_command():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; at most {README_MAX_LINES}: move detail to docs/"
    )
    ci_commands = [
        line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip().startswith("make ")
    ]
    assert ci_commands, ".ci/run runs no make command"
    for command in ci_commands:
        assert f"`{command}`" in README.read_text() or f"\n{command}" in README.read_text(), (
            f"README.md does not state CI's command {command!r}"
        )


def test_no_tracked_file_names_a_working_session():
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed: the tracked files cannot be listed")
    inside = subprocess.run([git, "rev-parse", "--is-inside-work-tree"], cwd=ROOT, capture_output=True, text=True)
    if inside.returncode != 0:
        pytest.skip(f"{ROOT} is not a git work tree: {inside.stderr.strip()}")
    found = subprocess.run(
        [git, "grep", "-n", "-i", "-I", "-E", SESSION_PATTERN], cwd=ROOT, capture_output=True, text=True
    )
    assert found.returncode in (0, 1), found.stderr
    assert found.stdout == "", (
        "tracked files name a working session (name the commit and the machine instead):\n" + found.stdout
    )
