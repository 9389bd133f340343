import copy

import jsonschema
import pytest
import yaml
from conftest import REPO

from pipeline import config


@pytest.fixture
def params():
    return yaml.safe_load((REPO / "params.yaml").read_text())


def demo(params):
    return params["presets"]["demo"]


def test_committed_params_are_valid(params):
    config.validate(params)


def tuned_below_the_grid(params):
    demo(params)["variants"] = {"t": {"tuned": {"max_steps": 3}}}  # the demo's tune.steps start at 5
    demo(params)["methods"] = ["sr3", "sr3@t"]


@pytest.mark.fault
@pytest.mark.parametrize(
    "change, key, hint",
    [
        (lambda p: demo(p)["dataset"].__setitem__("scale", "four"), "presets.demo.dataset.scale", "integer"),
        (
            lambda p: demo(p)["dataset"].__setitem__("hr_size", 64.0),
            "presets.demo.dataset.hr_size",
            "64.0 is not of type 'integer'",
        ),
        (lambda p: demo(p)["dataset"].__setitem__("colour", 1), "presets.demo.dataset", "allowed keys"),
        (lambda p: demo(p)["protocol"].__setitem__("color", "lab"), "presets.demo.protocol.color", "allowed: rgb, y"),
        (lambda p: demo(p)["dataset"].__setitem__("scale", 3), "presets.demo.dataset.scale", "does not divide"),
        (
            lambda p: demo(p)["diffusion"]["inference_schedule"].__setitem__("steps", 0),
            "inference_schedule.steps",
            "minimum",
        ),
        (lambda p: demo(p)["training"]["sr3"].__setitem__("patch_size", 30), "training.sr3.patch_size", "divisible"),
        (lambda p: p.__setitem__("preset", "nope"), "preset", "allowed: demo"),
        (lambda p: demo(p)["dataset"].__setitem__("test_images", ["astronaut"]), "presets.demo.dataset", "both"),
        (
            lambda p: demo(p)["dataset"].__setitem__("val_from_train", 1),  # skimage photographs: val_images
            "presets.demo.dataset.val_from_train",
            "name the validation ones in val_images",
        ),
        (
            lambda p: demo(p)["paper"].__setitem__("table", "sr3_table1_face"),
            "presets.demo.paper.table",
            "sr3_table1_faces",
        ),
        (
            lambda p: demo(p)["paper"].__setitem__("experiment", "faces16_12"),
            "presets.demo.paper.experiment",
            "faces16_128",
        ),
        (lambda p: p.__setitem__("datasets", {"celebhq": {"local": "x"}}), "datasets.celebhq", "celebahq"),
        (tuned_below_the_grid, "presets.demo.variants.t.tuned.max_steps", "below every step count"),
    ],
)
def test_bad_values_name_the_key(params, change, key, hint):
    broken = copy.deepcopy(params)
    change(broken)
    with pytest.raises(config.ConfigError) as error:
        config.validate(broken)
    assert key in str(error.value) and hint in str(error.value)


@pytest.mark.fault
def test_a_unet_that_cannot_be_built_is_refused_before_anything_runs(params):
    demo(params)["model"]["base_channels"] = 30  # group norms of 30, 60 channels: 7 and 15 groups
    with pytest.raises(
        config.ConfigError, match="presets.demo.model: a group norm over 30 channels would have 7 groups"
    ):
        config.validate(params)


def test_defaults_come_from_the_schema_and_are_filled_in(params):
    del demo(params)["runtime"]
    demo(params)["training"]["sr3"].pop("warmup_steps", None)
    resolved = config.resolve(params)
    preset = resolved["presets"]["demo"]
    assert preset["runtime"] == {
        "device": "cpu",
        "precision": "fp32",
        "channels_last": False,
        "gradient_checkpointing": False,
        "tf32": True,
        "data_workers": 0,
        "processes": 1,
    }
    assert preset["training"]["sr3"]["warmup_steps"] == 0
    assert preset["dataset"]["val_from_train"] == 0 and preset["diffusion"]["sampler"] == "ancestral_posterior"
    assert resolved["threads"]["tune"] == 8
    assert "runtime" not in demo(params)  # the caller's dict is left alone


def test_nested_config_strings_get_their_schema_types(params):
    """Snakemake reads nested --config values with YAML's base loader: all strings."""
    demo(params)["training"]["sr3"]["steps"] = "12"
    demo(params)["model"]["channel_multipliers"] = ["1", "2"]
    demo(params)["diffusion"]["inference_schedule"]["beta_end"] = "0.5"
    demo(params)["dataset"]["test_images"] = ["chelsea", "coffee", "rocket"]
    resolved = config.resolve(config.typed_engine_config(params))
    assert resolved["presets"]["demo"]["training"]["sr3"]["steps"] == 12
    assert resolved["presets"]["demo"]["model"]["channel_multipliers"] == [1, 2]
    assert resolved["presets"]["demo"]["diffusion"]["inference_schedule"]["beta_end"] == 0.5
    params["weights"] = {"inception": "null", "resnet50": "~"}  # --config 'weights={inception: null}'
    typed = config.typed_engine_config(params)
    assert typed["weights"] == {"inception": None, "resnet50": None}  # not a file called "null"
    demo(params)["training"]["sr3"]["learning_rate"] = "1e-3"  # YAML 1.2's float, text to YAML 1.1
    assert (
        config.resolve(config.typed_engine_config(params))["presets"]["demo"]["training"]["sr3"]["learning_rate"]
        == 1e-3
    )
    demo(params)["dataset"]["scale"] = "four"  # not a number in any reading: still refused
    with pytest.raises(config.ConfigError, match="presets.demo.dataset.scale"):
        config.resolve(config.typed_engine_config(params))


def test_a_quoted_number_in_the_params_file_is_refused_under_snakemake_as_under_dvc(params):
    """width: '32' in params.yaml trained under Snakemake (read as 32) and was refused by DVC."""
    import copy as copying

    written = copying.deepcopy(params)
    demo(written)["training"]["sr3"]["steps"] = "12"
    layers = [("params.yaml", written)]
    with pytest.raises(config.ConfigError, match=r"params.yaml: presets.demo.training.sr3.steps: '12' is not of type"):
        config.resolve_engine_config(copying.deepcopy(written), layers)
    given = layers + [("--config", {"presets": {"demo": {"training": {"sr3": {"steps": "12"}}}}})]
    resolved = config.resolve_engine_config(copying.deepcopy(written), given)  # --config's text: typed
    assert resolved["presets"]["demo"]["training"]["sr3"]["steps"] == 12


def test_methods_and_variants_are_checked(params):
    demo(params)["methods"] = ["bicubic", "sr3@fast"]
    with pytest.raises(config.ConfigError, match="methods: .*variant 'fast' is not defined"):
        config.validate(params)
    demo(params)["variants"] = {
        "fast": {"sampler": "ddim", "inference_schedule": {"steps": 5, "beta_start": 1e-3, "beta_end": 0.5}}
    }
    config.validate(params)
    demo(params)["methods"] = ["bicubic", "esrgan"]
    with pytest.raises(config.ConfigError, match="unknown method 'esrgan'"):
        config.validate(params)


def test_a_params_file_reads_exponent_floats_as_dvc_does(tmp_path):
    """PyYAML (YAML 1.1) reads 1e-3 as text, ruamel.yaml (DVC, YAML 1.2) as a number."""
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text().replace("learning_rate: 5.0e-4", "learning_rate: 5e-4"))
    assert config.resolve(config.read_params(path))["presets"]["demo"]["training"]["sr3"]["learning_rate"] == 5e-4


def test_another_presets_cross_references_do_not_block_a_run(params):
    """faces64_128_small compares faces16_128_small's results: a run of faces16_128_small with
    another seed is its own business (the compare check is the comparing preset's)."""
    params["presets"]["faces16_128_small"]["seed"] = 1
    params["preset"] = "faces16_128_small"
    config.resolve(params)
    params["preset"] = "faces64_128_small"
    with pytest.raises(config.ConfigError, match="cascade.compare.0.: faces16_128_small's test images"):
        config.resolve(params)


def test_a_presets_own_methods_replace_the_top_level_list(params):
    params["methods"] = ["bicubic"]
    demo(params)["methods"] = ["bicubic", "sr3", "sr3@tuned25"]
    assert config.resolve(params)["methods"] == ["bicubic", "sr3", "sr3@tuned25"]
    demo(params)["methods"] = None
    assert config.resolve(params)["methods"] == ["bicubic"]


@pytest.mark.parametrize(
    "where, value, message",
    [
        (
            "diffusion.inference_schedule",
            {"steps": 5, "shape": "cosine", "beta_start": 0.1},
            r"diffusion.inference_schedule: a cosine schedule takes steps and nothing else \(not beta_start\)",
        ),
        ("diffusion.inference_schedule", {"steps": 5, "shape": "geometric", "sigma_min": 1.0}, "missing sigma_max"),
        (
            "diffusion.inference_schedule",
            {"steps": 5, "shape": "geometric", "sigma_min": 2.0, "sigma_max": 1.0},
            "sigma_min < sigma_max",
        ),
        (
            "variants.both",
            {"tuned": {"max_steps": 5}, "inference_schedule": {"steps": 5, "beta_start": 1e-3, "beta_end": 0.5}},
            "variants.both: give either inference_schedule",
        ),
        ("variants.neither", {"sampler": "ddim"}, "variants.neither: give either"),
        (
            "tune.schedules",
            [{"shape": "linear", "beta_start": 0.5, "beta_end": 0.1}],
            r"tune.schedules\[0\]: need 0 < beta_start <= beta_end",
        ),
        ("dataset.val_images", [], "tune: the tune stage samples the validation split, and this preset has none"),
    ],
)
def test_schedules_variants_and_the_tune_grid_are_checked(params, where, value, message):
    section, key = where.split(".")
    demo(params)[section][key] = value
    with pytest.raises(
        config.ConfigError,
        match=f"presets.demo.{message}" if message.startswith(("diffusion", "variants", "tune")) else message,
    ):
        config.validate(params)


def test_a_tuned_variant_needs_a_tune_grid(params):
    demo(params)["tune"] = None
    demo(params)["dataset"]["val_images"] = []
    with pytest.raises(config.ConfigError, match="variants.tuned100.tuned: needs the preset's tune section"):
        config.validate(params)


def test_resolved_params_are_written_once_under_their_hash(params, tmp_path):
    resolved = config.resolve(params)
    first = config.write_resolved(resolved, tmp_path)
    assert first == config.write_resolved(resolved, tmp_path)
    assert yaml.safe_load((tmp_path / first).read_text()) == resolved
    changed = copy.deepcopy(resolved)
    changed["presets"]["demo"]["seed"] = 1
    assert config.write_resolved(changed, tmp_path) != first


@pytest.mark.fault
def test_the_cli_refuses_a_float_size_before_anything_runs(params, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    demo(params)["dataset"]["hr_size"] = 64.0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    sr3bench = Path(sys.executable).parent / "sr3bench"
    result = subprocess.run([str(sr3bench), "prepare"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    assert "presets.demo.dataset.hr_size: 64.0 is not of type 'integer'" in result.stderr
    assert not (tmp_path / "data").exists()


def test_the_global_batch_must_divide_over_processes_and_micro_batches(params):
    demo(params)["runtime"]["processes"] = 2
    demo(params)["training"]["sr3"].update(batch_size=12, gradient_accumulation=4)
    with pytest.raises(
        config.ConfigError,
        match=r"training.sr3.batch_size: 12 \(the global batch\) "
        r"must divide by runtime.processes x gradient_accumulation = 8",
    ):
        config.validate(params)
    demo(params)["training"]["sr3"]["batch_size"] = 16
    config.validate(params)


def test_a_methods_own_setting_without_a_default_is_required(params, monkeypatch):
    """A trained method's settings_schema key without a default was optional to the schema,
    then a KeyError in its train stage."""
    from pipeline import registry

    own = {
        "width": {"type": "integer", "minimum": 1},
        "depth": {"type": "integer", "minimum": 1, "default": 3},
        "note": {"type": "string"},  # optional: read with .get
        "steps": {"type": "integer", "minimum": 1},  # a shared key, already required: not twice
    }
    added = registry.MethodEntry(
        "srcnn", "baselines.bicubic", trained=True, title="SRCNN", settings_schema=own, optional_settings=("note",)
    )
    monkeypatch.setattr(registry, "ENTRIES", (*registry.ENTRIES, added))
    monkeypatch.setitem(registry.REGISTRY, "srcnn", added)
    config._schema.cache_clear()
    try:
        params["methods"] = ["bicubic", "srcnn"]
        params["presets"]["demo"]["training"]["srcnn"] = dict(params["presets"]["demo"]["training"]["regression"])
        with pytest.raises(config.ConfigError, match="presets.demo.training.srcnn: 'width' is a required property"):
            config.resolve(copy.deepcopy(params))
        params["presets"]["demo"]["training"]["srcnn"]["width"] = 8
        resolved = config.resolve(params)["presets"]["demo"]["training"]["srcnn"]
        assert (resolved["width"], resolved["depth"]) == (8, 3) and "note" not in resolved  # no default: absent
        jsonschema.Draft202012Validator.check_schema(config._schema())  # a required list without repeats
    finally:
        config._schema.cache_clear()


def test_a_method_name_off_the_pattern_is_told_what_a_name_may_hold(params):
    """It said only: 'lanczos-sharp' does not match '^[a-z0-9_]+(@[a-z0-9_-]+)?$'."""
    params["methods"] = ["bicubic", "lanczos-sharp"]
    with pytest.raises(config.ConfigError, match="methods.1: .* lower-case letters, digits and _"):
        config.resolve(params)


def test_settings_of_a_method_registered_untrained_say_so(params, monkeypatch):
    """A method with its own settings registered with trained=False said only "Additional
    properties are not allowed ('width' was unexpected)"."""
    from pipeline import registry

    untrained = registry.MethodEntry(
        "srcnn", "baselines.bicubic", trained=False, title="SRCNN", settings_schema={"width": {"type": "integer"}}
    )
    monkeypatch.setattr(registry, "ENTRIES", (*registry.ENTRIES, untrained))
    monkeypatch.setitem(registry.REGISTRY, "srcnn", untrained)
    config._schema.cache_clear()
    try:
        demo(params)["training"]["srcnn"] = {**demo(params)["training"]["regression"], "width": 8}
        with pytest.raises(config.ConfigError, match="srcnn is not a trained method .*trained=False"):
            config.resolve(params)
    finally:
        config._schema.cache_clear()
