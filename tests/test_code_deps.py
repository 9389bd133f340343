"""What each stage tracks as its code is the import closure of its module (and of the
method's module, for stages that run a method), less a short list of orchestration files:
editing any other module a stage runs re-runs it under both engines, and keys its
checkpoints and sampling work. (Issue 14: an untracked module is code the pipeline runs
without tracking it; the report's comparison module was one.)"""

import pytest
from conftest import REPO

from pipeline import code_deps, registry
from pipeline.stage_table import STAGES


def tracked_code() -> dict[str, list[str]]:
    stages = {}
    for stage in STAGES:
        for member in [entry.name for entry in registry.ENTRIES] if stage.method_code else [None]:
            if member is None or registry.entry(member).trained or stage.name in ("sample", "sample_shard"):
                stages[f"{stage.name}_{member}" if member else stage.name] = stage.code(member)
    return stages


def test_the_closure_sees_direct_indirect_and_local_imports():
    assert "sr3bench/reporting/comparison.py" in code_deps.import_closure(["sr3bench/reporting/build.py"])
    assert "sr3/unet.py" in code_deps.import_closure(["baselines/regression.py"])  # through sr3/model_file.py
    # imported inside validation_psnr only: the best-PSNR choice of the model depends on it
    assert "sr3bench/metrics/psnr_ssim.py" in tracked_code()["train_sr3"]


@pytest.mark.fault
@pytest.mark.parametrize("stage", list(tracked_code()))
def test_every_tracked_file_exists_and_no_orchestration_file_is_tracked(stage):
    files = tracked_code()[stage]
    assert files and all((REPO / name).is_file() for name in files)
    assert not set(files) & set(code_deps.UNTRACKED_CODE)


def test_a_stage_tracks_its_own_code_only():
    """A report edit re-runs no training, a metric edit no sampling, an SR3 edit no bicubic."""
    code = tracked_code()
    assert not [
        f for f in code["train_sr3"] if f.startswith("sr3bench/reporting/") or f.endswith("metrics/evaluate.py")
    ]
    assert "sr3/training.py" not in code["evaluate"] and "sr3/training.py" not in code["report"]
    assert not [f for f in code["sample_bicubic"] if f.startswith("sr3/")]
    assert "sr3/diffusion.py" in code["sample_sr3"] and "sr3/diffusion.py" not in code["sample_regression"]


def test_the_imports_of_orchestration_files_are_not_followed(tmp_path):
    """pipeline/config.py imports the UNet's config checks; a stage that reads the config
    does not run the UNet."""
    for name, text in {
        "pipeline/stages/toy.py": "from pipeline.config import digest\nfrom sr3bench.core import seeds\n",
        "pipeline/config.py": "from sr3 import unet\n",
        "sr3bench/core/seeds.py": "",
        "sr3/unet.py": "",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    closure = code_deps.import_closure(["pipeline/stages/toy.py"], root=tmp_path, stop_at=code_deps.UNTRACKED_CODE)
    assert closure == {"pipeline/stages/toy.py", "pipeline/config.py", "sr3bench/core/seeds.py"}


def test_every_untracked_file_exists_and_says_why():
    for name, reason in code_deps.UNTRACKED_CODE.items():
        assert (REPO / name).is_file() and reason, name


def test_a_registry_entry_with_a_wrong_module_or_a_syntax_error_is_named(tmp_path, monkeypatch):
    """Snakemake's planning printed a FileNotFoundError, or 'invalid syntax (<unknown>, line 1)'."""
    typo = registry.MethodEntry("lanczos", "baselines.lanczoss", trained=False, title="Lanczos")
    monkeypatch.setitem(registry.REGISTRY, "lanczos", typo)
    with pytest.raises(registry.UnknownMethodError, match="names the module baselines.lanczoss, but there is no"):
        code_deps.stage_code("pipeline.stages.sample", "lanczos")
    (tmp_path / "broken.py").write_text("def oops(:\n")
    with pytest.raises(SyntaxError, match=r"broken\.py, line 1"):
        code_deps.imported_files("broken.py", tmp_path)


def test_a_module_without_the_protocols_functions_is_refused_when_loaded(tmp_path, monkeypatch):
    """A trained method without save_model_file failed after its last training step."""
    (tmp_path / "nosave.py").write_text(
        "".join(
            f"def {name}(*arguments): pass\n"
            for name in ("super_resolve", "build_model", "training_loss", "load_model")
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.REGISTRY, "nosave", registry.MethodEntry("nosave", "nosave", True, "No save"))
    with pytest.raises(registry.UnknownMethodError, match=r"nosave \(.*nosave.py\) has no save_model_file"):
        registry.load("nosave")
    monkeypatch.setitem(registry.REGISTRY, "nosave", registry.MethodEntry("nosave", "nosave", False, "No save"))
    assert registry.load("nosave").super_resolve  # untrained: super_resolve is all it needs
    for method in registry.REGISTRY:
        if method != "nosave":
            registry.load(method)  # every registered method has its protocol
