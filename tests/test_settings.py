"""Typed settings (pipeline/settings.py): each class has exactly the keys of its schema
section, so the schema stays the one place that declares a key and its default; the
settings are read-only, and built only from a resolved config."""

import dataclasses

import pytest
from projects import committed_params

from pipeline import config
from pipeline.settings import (
    CascadeSettings,
    DatasetSettings,
    DiffusionSettings,
    DiversitySettings,
    ExternalMethod,
    LinkSettings,
    PaperSettings,
    Preset,
    ProtocolSettings,
    RuntimeSettings,
    SamplingSettings,
    TrainingSettings,
    TuneSelect,
    TuneSettings,
    Variant,
    build,
)


def schema_keys(*path: str) -> set[str]:
    """The property names of a schema section, ``$ref``s followed."""
    schema = config._schema()
    node = schema["$defs"][path[0]]
    for part in path[1:]:
        node = node["properties"][part]
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].split("/")[-1]]
    return set(node["properties"])


@pytest.mark.parametrize(
    "cls, section",
    [
        (DatasetSettings, ("preset", "dataset")),
        (ProtocolSettings, ("preset", "protocol")),
        (RuntimeSettings, ("preset", "runtime")),
        (DiffusionSettings, ("preset", "diffusion")),
        (SamplingSettings, ("preset", "sampling")),
        (TuneSettings, ("preset", "tune")),
        (TuneSelect, ("preset", "tune", "select")),
        (DiversitySettings, ("preset", "diversity")),
        (PaperSettings, ("preset", "paper")),
        (Variant, ("variant",)),
        (ExternalMethod, ("external_method",)),
        (TrainingSettings, ("training",)),
        (LinkSettings, ("preset", "dataset", "lr_from")),
        (CascadeSettings, ("preset", "cascade")),
        (Preset, ("preset",)),
    ],
)
def test_each_class_has_the_keys_of_its_schema_section_and_no_defaults(cls, section):
    fields = {f.name for f in dataclasses.fields(cls)} - {"name", "paths", "config", "extra"}
    assert fields == schema_keys(*section)
    defaults = [f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING]
    assert not defaults, f"{cls.__name__}: defaults live in the schema, not here: {defaults}"


@pytest.mark.parametrize("name", sorted(committed_params()["presets"]))
def test_every_committed_preset_becomes_read_only_typed_settings(name):
    resolved = config.resolve({**committed_params(), "preset": name})
    settings = Preset.from_config(name, resolved["presets"][name])
    assert settings.dataset.scale == resolved["presets"][name]["dataset"]["scale"]
    assert settings.paths.split("test", "lr").as_posix() == f"data/{name}/test/lr"
    method = next(iter(resolved["presets"][name]["training"]))  # sr3, or the one trained method of the preset
    assert isinstance(settings.training[method], TrainingSettings)
    assert settings.diffusion.sampler == resolved["presets"][name]["diffusion"]["sampler"]  # the schema's default
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seed = 1
    with pytest.raises(TypeError):
        settings.training[method] = None


def test_a_methods_own_keys_are_kept_apart_and_a_missing_key_is_named():
    shared = config.with_defaults(committed_params()["presets"]["demo"]["training"]["sr3"], "#/$defs/training")
    training = build(TrainingSettings, {**shared, "width": 8})  # width: a method's settings_schema key
    assert training.extra == {"width": 8} and training.steps == shared["steps"]
    with pytest.raises(KeyError, match="SamplingSettings: the resolved config lacks compile, shards"):
        build(SamplingSettings, {"batch_size": 4, "channels_last": False})
