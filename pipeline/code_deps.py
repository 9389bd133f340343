"""The code files each stage depends on, derived from imports: the import closure of the
stage's module (``pipeline/stages/<stage>.py``) and, for stages that run a method, of the
method's module. The Snakemake rules list them as inputs, the generated dvc.yaml as deps,
and checkpoints and unfinished sampling runs are keyed by their hash, so a code change
that re-runs a stage also stops it from continuing work made by the old code. Paths are
relative to the project root, which is also the folder holding the installed packages."""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

from pipeline import registry

PACKAGES_ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("sr3bench", "pipeline", "sr3", "baselines")

# Imported by stage code but left untracked: they decide where and how files are written,
# or which stage runs, never what is in a stage's outputs. Their own imports are not
# followed (the config's checks import model code that a stage need not run).
UNTRACKED_CODE = {
    "sr3bench/__init__.py": "package docstring",
    "sr3bench/core/__init__.py": "package docstring",
    "sr3bench/metrics/__init__.py": "package docstring",
    "sr3bench/reporting/__init__.py": "package docstring",
    "sr3bench/study/__init__.py": "package docstring",
    "pipeline/__init__.py": "package docstring",
    "pipeline/stages/__init__.py": "package docstring",
    "sr3/__init__.py": "package docstring",
    "baselines/__init__.py": "package docstring",
    "sr3bench/core/atomic.py": "atomic writes",
    "sr3bench/core/write_errors.py": "messages of failed writes, the check for space before training",
    "sr3bench/core/progress.py": "progress lines",
    "pipeline/layout.py": "paths",
    "pipeline/config.py": "orchestration: reading and checking params",
    "pipeline/settings.py": "orchestration: the typed view of the checked params",
    "pipeline/registry.py": "orchestration: which method module runs",
    "pipeline/code_deps.py": "orchestration: this list",
}


# Files other than Python that a module reads, tracked with it: the study's page, which
# study-build copies into each study folder.
DATA_FILES = {
    "sr3bench/study/build.py": (
        "sr3bench/study/page/index.html",
        "sr3bench/study/page/study.js",
        "sr3bench/study/page/study.css",
    ),
}


def module_file(module: str) -> str:
    """``pipeline.stages.train`` -> ``pipeline/stages/train.py`` (or its package's __init__.py)."""
    path = module.replace(".", "/")
    return f"{path}/__init__.py" if (PACKAGES_ROOT / path).is_dir() else f"{path}.py"


@functools.lru_cache(maxsize=None)
def imported_files(path: str, root: Path = PACKAGES_ROOT) -> frozenset[str]:
    """Project files that ``path`` imports anywhere in it (``import a.b``, ``from a.b import
    c`` where c may be a module), read from its syntax tree (nothing is imported)."""
    found = set()
    for node in ast.walk(ast.parse((root / path).read_text(), filename=path)):  # a SyntaxError names the file
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PROJECT_PACKAGES:
                candidate = name.replace(".", "/")
                for file in (f"{candidate}.py", f"{candidate}/__init__.py"):
                    if (root / file).is_file():
                        found.add(file)
    return frozenset(found)


def import_closure(files, root: Path = PACKAGES_ROOT, stop_at=()) -> set[str]:
    """``files`` and every project file they import, directly or not; the imports of the
    files in ``stop_at`` are not followed."""
    seen, pending = set(), list(files)
    while pending:
        path = pending.pop()
        if path not in seen:
            seen.add(path)
            if path not in stop_at:
                pending.extend(imported_files(path, root))
    return seen


def stage_code(module: str, method: str | None = None) -> list[str]:
    """The tracked code of a stage module, and of ``method``'s module when the stage runs
    it: their import closures without the untracked files (whose imports, orchestration
    too, are not followed), sorted."""
    files = [module_file(module)]
    if method is not None:
        method_module = registry.entry(method).module
        files.append(module_file(method_module))
        if not (PACKAGES_ROOT / files[-1]).is_file():
            raise registry.UnknownMethodError(
                f"method {method}: its registry entry (pipeline/registry.py) names the module {method_module}, "
                f"but there is no {files[-1]} in {PACKAGES_ROOT}"
            )
    code = import_closure(files, stop_at=UNTRACKED_CODE) - set(UNTRACKED_CODE)
    return sorted(code | {data for file in code for data in DATA_FILES.get(file, ())})


def code_fingerprint(files: list[str], root: Path = PACKAGES_ROOT) -> str:
    """Hash of the files' contents (the code this process runs, wherever it is installed)."""
    digest = hashlib.sha256()
    for name in files:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:16]
