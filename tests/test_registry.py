"""The method registry: adding a method is one module and one registry line, and the
engines then sample, evaluate and report it like any other; variants are methods too."""

import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
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

# A trained method that is not SR3: bicubic plus a learned 3x3 correction, with a setting
# of its own (width) declared in its registry entry, not in the schema file.
RESIDUAL_MODULE = '''"""A two-layer residual CNN on the bicubic upsampling (a test method)."""
import torch
from torch.nn import functional as F

from sr3bench.core.images import to_uint8, upsampled_tensor


class ResidualCNN(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.width = width
        self.features = torch.nn.Conv2d(3, width, 3, padding=1)
        self.correction = torch.nn.Conv2d(width, 3, 3, padding=1)
        torch.nn.init.zeros_(self.correction.weight)  # starts as bicubic
        torch.nn.init.zeros_(self.correction.bias)

    def forward(self, upsampled):
        return upsampled + self.correction(F.relu(self.features(upsampled)))


def build_model(settings, own):
    return ResidualCNN(own["width"])


def training_loss(settings):
    return lambda model, upsampled_lr, hr, generator, rows=None, batch_size=None: F.mse_loss(model(upsampled_lr), hr)


def save_model_file(path, model, settings, own, training):
    torch.save({"width": model.width, "state_dict": model.state_dict(), "training": training}, path)


def load_model(path):
    payload = torch.load(path, weights_only=True)
    model = ResidualCNN(payload["width"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()


@torch.no_grad()
def super_resolve(model, lr_images, scale, seeds, settings, progress):
    sr = model(upsampled_tensor(lr_images, scale)).clamp(-1, 1)
    progress(1.0)
    return list(to_uint8(sr))
'''
RESIDUAL_ENTRY = (
    '    MethodEntry("residual_cnn", "baselines.residual_cnn", trained=True, title="Residual CNN",\n'
    '                settings_schema={"width": {"type": "integer", "minimum": 1}}),\n'
)


def add_method(project, name: str, module: str, entry: str):
    """What a newcomer does (docs/extending.md): one new file, one registry entry."""
    (project / "baselines" / f"{name}.py").write_text(module)
    registry_file = project / "pipeline" / "registry.py"
    source = registry_file.read_text()
    anchor = ")\nREGISTRY = "
    assert anchor in source
    registry_file.write_text(source.replace(anchor, entry + anchor, 1))


def add_nearest_method(project):
    add_method(project, "nearest", NEAREST_MODULE, NEAREST_ENTRY)


@pytest.mark.slow
def test_new_methods_run_through_both_engines_with_one_module_and_one_registry_entry_each(tmp_path):
    """An untrained and a trained method (not SR3), added as docs/extending.md says: a
    module, a registry entry, the methods: line and the trained one's settings; no schema,
    rule or dvc.yaml edit by hand."""
    params = tiny_params()
    params["methods"] = ["bicubic", "nearest", "residual_cnn"]
    training = params["presets"]["demo"]["training"]
    training["residual_cnn"] = {**training["regression"], "steps": 60, "learning_rate": 1e-2, "width": 8}
    project = make_project(tmp_path / "project", params)
    add_method(project, "nearest", NEAREST_MODULE, NEAREST_ENTRY)
    add_method(project, "residual_cnn", RESIDUAL_MODULE, RESIDUAL_ENTRY)
    untouched = ["pipeline/config.schema.yaml", "Snakefile", "pipeline/stage_table.py", "dvc.yaml"]

    run([sys.executable, "-m", "snakemake", "--cores", "2"], project)

    names = sorted(p.name for p in (project / "data/demo/test/lr").iterdir())
    for name in names:
        lr = np.asarray(Image.open(project / "data/demo/test/lr" / name).convert("RGB"))
        sr = np.asarray(Image.open(project / "samples/demo/nearest" / name))
        assert np.array_equal(sr, lr.repeat(4, axis=0).repeat(4, axis=1))
    loss = pd.read_csv(project / "models/demo/residual_cnn/loss.csv")
    assert loss["loss"].iloc[-1] < loss["loss"].iloc[0]  # it trained
    metrics = pd.read_csv(project / "reports/demo/metrics.csv").set_index("method")
    assert list(metrics.index) == ["bicubic", "nearest", "residual_cnn"]
    assert metrics.loc["nearest", "psnr"] < metrics.loc["bicubic", "psnr"]  # blocks are further from the truth
    assert metrics.loc["residual_cnn", "psnr"] != metrics.loc["bicubic", "psnr"]  # its learned correction was applied
    assert (metrics["n_images"] == len(names)).all()
    page = (project / "reports/demo/index.html").read_text()
    assert "Nearest neighbour" in page and "Residual CNN" in page
    for name in untouched:
        assert (project / name).read_bytes() == (REPO / name).read_bytes(), f"{name} was edited"

    run([sys.executable, "-m", "pipeline.cli", "dvc-yaml"], project)  # DVC: regenerated, and it has the stages
    dvc_yaml = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert "baselines/nearest.py" in dvc_yaml["sample_nearest"]["deps"] and "train_nearest" not in dvc_yaml
    assert "baselines/residual_cnn.py" in dvc_yaml["train_residual_cnn"]["deps"]
    assert "presets.${preset}.training.residual_cnn" in dvc_yaml["train_residual_cnn"]["params"]
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        run(command, project)
    planned = run([sys.executable, "-m", "dvc", "repro", "--dry", "--force"], project).stdout
    for stage in ("train_residual_cnn", "sample_residual_cnn", "evaluate_residual_cnn", "report"):
        assert f"'{stage}'" in planned, planned[-2000:]


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
