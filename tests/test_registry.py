"""The method registry: adding a method is one module and one registry line, and the
engines then sample, evaluate and report it like any other; variants are methods too."""

import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from projects import make_project, run, tiny_params

from pipeline import registry

NEAREST_MODULE = '''"""Nearest-neighbour upsampling: each LR pixel becomes a scale x scale block."""
import numpy as np


def super_resolve(model, lr_images, scale, seeds, settings, progress):
    images = [np.repeat(np.repeat(image, scale, axis=0), scale, axis=1) for image in lr_images]
    progress(1.0)
    return images
'''
NEAREST_ENTRY = '    MethodEntry("nearest", "baselines.nearest", trained=False, title="Nearest neighbour"),\n'


def add_nearest_method(project):
    """What a newcomer does: one new file, one registry line, and list it in params.yaml."""
    (project / "baselines" / "nearest.py").write_text(NEAREST_MODULE)
    registry_file = project / "pipeline" / "registry.py"
    source = registry_file.read_text()
    anchor = ")\nREGISTRY = "
    assert anchor in source
    registry_file.write_text(source.replace(anchor, NEAREST_ENTRY + anchor, 1))


@pytest.mark.slow
def test_a_registered_toy_method_runs_through_sample_evaluate_and_report(tmp_path):
    params = tiny_params()
    params["methods"] = ["bicubic", "nearest"]
    project = make_project(tmp_path / "project", params)
    add_nearest_method(project)

    run([sys.executable, "-m", "snakemake", "--cores", "2"], project)

    names = sorted(p.name for p in (project / "data/demo/test/lr").iterdir())
    for name in names:
        lr = np.asarray(Image.open(project / "data/demo/test/lr" / name).convert("RGB"))
        sr = np.asarray(Image.open(project / "samples/demo/nearest" / name))
        assert np.array_equal(sr, lr.repeat(4, axis=0).repeat(4, axis=1))
    metrics = pd.read_csv(project / "reports/demo/metrics.csv").set_index("method")
    assert list(metrics.index) == ["bicubic", "nearest"]
    assert metrics.loc["nearest", "psnr"] < metrics.loc["bicubic", "psnr"]  # blocks are further from the truth
    assert (metrics["n_images"] == len(names)).all()
    assert "Nearest neighbour" in (project / "reports/demo/index.html").read_text()

    run([sys.executable, "-m", "pipeline.cli", "dvc-yaml"], project)  # DVC: regenerate, and it has the stages
    dvc_yaml = (project / "dvc.yaml").read_text()
    assert "sample_nearest:" in dvc_yaml and "baselines/nearest.py" in dvc_yaml and "train_" not in dvc_yaml


def test_unknown_methods_and_variants_are_named():
    with pytest.raises(
        registry.UnknownMethodError, match="unknown method 'esrgan'; registered methods: bicubic, regression, sr3"
    ):
        registry.entry("esrgan")
    with pytest.raises(registry.UnknownMethodError, match="variants .* of trained methods only"):
        registry.entry("bicubic@fast")
    with pytest.raises(registry.UnknownMethodError, match="variant 'fast' is not defined"):
        registry.apply_variant({"variants": {}, "diffusion": {}, "sampling": {}}, "sr3@fast")


def test_a_variant_samples_with_its_own_schedule_and_reuses_the_base_model():
    from pipeline import layout

    preset = tiny_params()["presets"]["demo"]
    preset["variants"] = {"short": {"inference_schedule": {"steps": 5, "beta_start": 1e-3, "beta_end": 0.5}}}
    settings = registry.apply_variant(preset, "sr3@short")
    assert settings["diffusion"]["inference_schedule"]["steps"] == 5
    assert preset["diffusion"]["inference_schedule"]["steps"] == 200  # the preset itself is unchanged
    assert settings["diffusion"]["training_schedule"] == preset["diffusion"]["training_schedule"]
    assert layout.model_file("demo", "sr3@short") == layout.model_file("demo", "sr3")
    assert layout.samples_dir("demo", "sr3@short") != layout.samples_dir("demo", "sr3")
    assert registry.trained_methods(["bicubic", "sr3@short", "sr3"]) == ["sr3"]
