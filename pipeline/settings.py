"""Typed settings: one preset of the resolved config as frozen dataclasses, which the stage
functions receive (``job.settings``) instead of nested dicts.

The schema (``pipeline/config.schema.yaml``) stays the one place where defaults live:
these classes have none, and are built only from a config that ``pipeline/config.py``
has validated and filled in. Each class has exactly the keys of its schema section
(``tests/test_settings.py`` checks it), so a key added to the schema without its field
here fails at once. Schedules stay mappings: they are specifications that
``sr3/schedule_spec.py`` reads, and they are hashed into cache keys as they are.

The layers below the pipeline (the method protocol of ``pipeline/registry.py``, the
trainer, the report) take the plain mapping, ``Preset.config``.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from pipeline.layout import PresetPaths


@dataclass(frozen=True)
class LinkSettings:
    """A preset's method: ``dataset.lr_from`` (the upstream stage of a cascade), or an
    entry of ``cascade.compare``."""

    preset: str
    method: str


@dataclass(frozen=True)
class CascadeSettings:
    """``cascade``: what the report sets beside this preset's chain (docs/cascade.md)."""

    compare: list


@dataclass(frozen=True)
class DatasetSettings:
    source: str
    root: str | None
    downloads: list
    fit: str
    image_split: dict | None
    train_images: list
    val_images: list
    test_images: list
    train_folder: str | None
    val_from_train: int
    val_folders: list
    test_folders: list
    lr_folder: str | None
    hr_size: int
    source_downscale: int
    scale: int
    lr_source: str
    train_crops_per_image: int
    test_crops_per_image: int
    test_center_crop: int | None
    max_test_pixels: int
    lr_from: LinkSettings | None


@dataclass(frozen=True)
class ProtocolSettings:
    color: str
    border_crop: int
    is_splits: int
    set_metrics: bool  # false: FID, KID and IS left empty, "not requested"


@dataclass(frozen=True)
class RuntimeSettings:
    device: str
    precision: str  # as configured: fp32, bf16, fp16, or auto (resolved by sr3bench.core.runtime per stage)
    channels_last: bool
    gradient_checkpointing: bool
    tf32: bool
    data_workers: int
    processes: int


@dataclass(frozen=True)
class DiffusionSettings:
    parametrization: str
    training_schedule: Mapping
    inference_schedule: Mapping
    sampler: str
    loss: str


@dataclass(frozen=True)
class TrainingSettings:
    """A trained method's own section, ``training.<method>``; a method's extra keys (its
    registry entry's ``settings_schema``) are in ``extra``."""

    steps: int
    batch_size: int
    patch_size: int
    learning_rate: float
    warmup_steps: int
    ema_decay: float
    checkpoint_every: int
    log_every: int
    gradient_accumulation: int
    keep: str
    validate_every: int
    extra: Mapping = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class SamplingSettings:
    batch_size: int
    compile: bool
    shards: int
    channels_last: bool


@dataclass(frozen=True)
class TuneSelect:
    metric: str
    max_consistency_ratio: float


@dataclass(frozen=True)
class TuneSettings:
    samplers: list
    steps: list
    schedules: list
    images: int
    crop: int
    reference_images: int
    select: TuneSelect


@dataclass(frozen=True)
class DiversitySettings:
    images: int
    seeds: int


@dataclass(frozen=True)
class SimulatedStudy:
    fool_rates: Mapping
    rater_sd: float
    image_sd: float
    inattentive_share: float


@dataclass(frozen=True)
class StudySettings:
    """``study``: the human fool-rate study (sr3bench/study/)."""

    methods: list | None
    tasks: list
    display_ms: int
    images_per_rater: int
    practice_trials: int
    vigilance_share: float
    raters: int
    answers: str
    simulated: SimulatedStudy
    max_failed_vigilance: int
    bootstrap_resamples: int


@dataclass(frozen=True)
class ClassifySettings:
    """``classify``: the paper's Table 3, a classifier on each method's outputs."""

    images: int
    classifier: str
    weights: str | None


@dataclass(frozen=True)
class PaperSettings:
    table: str | None
    experiment: str | None
    comparable: bool


@dataclass(frozen=True)
class Variant:
    """``variants.<name>``: a fixed inference schedule (and sampler), or ``tuned``."""

    sampler: str | None
    inference_schedule: Mapping | None
    tuned: Mapping | None
    batch_size: int | None


@dataclass(frozen=True)
class ExternalMethod:
    """``external.<name>``: an outside method, a folder of someone's outputs."""

    folder: str
    title: str
    citation: str


@dataclass(frozen=True)
class Preset:
    """One preset, resolved: its name, paths and typed sections; ``config`` is the same
    preset as the plain mapping the layers below the pipeline take."""

    name: str
    paths: PresetPaths
    config: Mapping
    description: str
    methods: list | None
    paper: PaperSettings
    seed: int
    runtime: RuntimeSettings
    resources: Mapping
    variants: Mapping[str, Variant]
    external: Mapping[str, ExternalMethod]
    tune: TuneSettings | None
    diversity: DiversitySettings
    study: StudySettings | None
    classify: ClassifySettings | None
    cascade: CascadeSettings | None
    dataset: DatasetSettings
    protocol: ProtocolSettings
    model: Mapping
    diffusion: DiffusionSettings
    training: Mapping[str, TrainingSettings]
    sampling: SamplingSettings

    @classmethod
    def from_config(cls, name: str, preset: Mapping) -> Preset:
        """The typed view of a resolved preset (``pipeline.config.resolve``)."""
        return build(cls, {**preset, "name": name, "paths": PresetPaths(name), "config": preset})


@dataclass(frozen=True)
class WeightsSettings:
    """``weights``, a top-level section (``job.weights``): local files of the networks the
    metrics use (None: the provisioned offline files, else the libraries' downloads)."""

    inception: str | None
    resnet50: str | None


def _is_union(hint) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _optional_keys(cls) -> set[str]:
    """Fields that the schema may leave out (no default there): ``X | None``."""
    hints = typing.get_type_hints(cls)
    return {
        f.name
        for f in dataclasses.fields(cls)
        if _is_union(hints[f.name]) and type(None) in typing.get_args(hints[f.name])
    }


def build(cls, values: Mapping) -> Any:
    """``cls`` from a mapping with its fields' keys, nested dataclasses (and mappings of
    them) built too; a missing optional key is None. TrainingSettings keeps the keys it
    has no field for in ``extra`` (a method's own settings)."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
    optional = _optional_keys(cls)
    missing = [n for n in names if n not in values and n not in optional]
    if missing:
        raise KeyError(f"{cls.__name__}: the resolved config lacks {', '.join(missing)} (was it resolved?)")
    kwargs = {name: _typed(hints[name], values.get(name)) for name in names}
    if cls is TrainingSettings:
        kwargs["extra"] = MappingProxyType({k: v for k, v in values.items() if k not in names})
    return cls(**kwargs)


def _typed(hint, value):
    if value is None:
        return None
    if _is_union(hint):  # X | None
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else build(hint, value)
    if typing.get_origin(hint) in (collections.abc.Mapping, dict) and typing.get_args(hint):
        item = typing.get_args(hint)[1]
        return MappingProxyType({key: _typed(item, entry) for key, entry in value.items()})
    return value
