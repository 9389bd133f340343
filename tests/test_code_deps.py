"""What each stage tracks as its code (pipeline/code_deps.py) covers every project module
that code imports, directly or not: editing any of them re-runs the stage under both
engines, and keys its checkpoints and sampling work. (Issue 14: an untracked module is
code the pipeline runs without tracking it; the report's comparison module was one.)"""
import ast
from pathlib import Path

import pytest

from conftest import REPO
from pipeline import code_deps, registry

PROJECT_PACKAGES = {"sr3bench", "pipeline", "sr3", "baselines"}


def imported_project_files(path: str) -> set[str]:
    """Project modules that ``path`` imports (``import a.b``, ``from a.b import c``, where c may be a module)."""
    found = set()
    for node in ast.walk(ast.parse((REPO / path).read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            candidate = name.replace(".", "/") + ".py"
            if name.split(".")[0] in PROJECT_PACKAGES and (REPO / candidate).is_file():
                found.add(candidate)
    return found


def import_closure(files: list[str]) -> set[str]:
    seen, pending = set(), list(files)
    while pending:
        path = pending.pop()
        if path not in seen:
            seen.add(path)
            pending.extend(imported_project_files(path))
    return seen


def tracked_code() -> dict[str, list[str]]:
    stages = {"download": code_deps.DOWNLOAD_CODE, "prepare": code_deps.PREPARE_CODE, "evaluate": code_deps.EVALUATE_CODE, "report": code_deps.REPORT_CODE, "front page": code_deps.FRONT_PAGE_CODE}
    for entry in registry.ENTRIES:
        stages[f"sample_{entry.name}"] = code_deps.sampling_code(entry.name)
        if entry.trained:
            stages[f"train_{entry.name}"] = code_deps.training_code(entry.name)
            stages[f"tune_{entry.name}"] = code_deps.tuning_code(entry.name)
    return stages


@pytest.mark.fault
@pytest.mark.parametrize("stage", list(tracked_code()))
def test_every_module_a_stage_imports_is_tracked(stage):
    files = tracked_code()[stage]
    untracked = import_closure(files) - set(files) - set(code_deps.UNTRACKED_CODE)
    assert not untracked, f"{stage} runs {sorted(untracked)} without tracking it: add it to pipeline/code_deps.py"


def test_the_check_sees_an_untracked_import():
    assert "sr3bench/reporting/comparison.py" in import_closure(["sr3bench/reporting/build.py"])
    assert "sr3/unet.py" in import_closure(["baselines/regression.py"])
