"""The config every job runs with: ``params.yaml``, plus the engine's overrides, with the
schema's defaults filled in and every constraint checked before anything runs.

- Defaults are stated once, in ``config.schema.yaml``; ``resolve`` writes them into the
  config, so no code falls back on a value of its own.
- Overrides: DVC ``exp run -S presets.demo.training.sr3.steps=12``; Snakemake
  ``--configfile FILE`` or ``--config 'presets={demo: {training: {sr3: {steps: 12}}}}'``
  (nested values merged into params.yaml; ``typed_engine_config`` restores their types).
- Snakemake merges ``--configfile`` / ``--config`` in memory only, so the Snakefile writes
  the resolved config to ``cache/params/<digest>.yaml`` and every job reads that file;
  DVC's ``exp run -S`` edits params.yaml itself, which its jobs read.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import os
from pathlib import Path

import jsonschema
import yaml

from pipeline import datasets as dataset_registry
from pipeline import layout, registry, strict_yaml
from pipeline.layout import variant_name
from sr3.architecture import unet_config_problems
from sr3.schedule_spec import schedule_problem
from sr3bench.study.selection import shown_methods

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    """The schema, read once per process (validators copy defaults out; none writes to it),
    completed from the declarations it depends on: a ``threads`` and a ``resources`` key
    for each stage of the stage table, and each trained method's own training settings
    (the shared ones plus its registry entry's ``settings_schema``)."""
    from pipeline.stage_table import PRESET_STAGE_SETTINGS

    schema = strict_yaml.load(SCHEMA_PATH.read_text())
    threads = schema["properties"]["threads"]
    threads["properties"] = {key: {"$ref": "#/$defs/stage_threads"} for key in PRESET_STAGE_SETTINGS}
    threads["required"] = list(PRESET_STAGE_SETTINGS)
    preset = schema["$defs"]["preset"]["properties"]
    preset["resources"]["properties"] = {
        key: {"$ref": "#/$defs/resources", "default": {}} for key in PRESET_STAGE_SETTINGS
    }
    shared = schema["$defs"]["training"]
    preset["training"]["properties"] = {  # a key of its own without a default must be given
        entry.name: {
            **shared,
            "properties": {**shared["properties"], **entry.settings_schema},
            "required": shared["required"] + own_required(entry, shared["properties"]),
        }
        for entry in registry.ENTRIES
        if entry.trained and entry.settings_schema
    }
    return schema


def own_required(entry, shared: dict) -> list[str]:
    """The settings a trained method adds that every preset training it must give: those of
    its ``settings_schema`` without a default, other than the shared ones and those the
    entry names optional."""
    return [
        key
        for key, schema in entry.settings_schema.items()
        if "default" not in schema and key not in shared and key not in entry.optional_settings
    ]


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and what is allowed:
    ``params: <dotted key>: <problem>``, ``params`` standing for the config's files until
    ``located`` names the one the key came from."""

    @property
    def key(self) -> str | None:
        """The dotted key the message is about (None when it names none)."""
        text = str(self)
        if not text.startswith("params: ") or ": " not in text[len("params: ") :]:
            return None
        key = text[len("params: ") :].split(": ", 1)[0]
        return None if key.startswith("(") else key

    def located(self, source: str) -> ConfigError:
        """The same message naming ``source`` (a file, ``--config``) instead of ``params``."""
        text = str(self)
        return ConfigError(source + text[len("params") :]) if text.startswith("params: ") else self


@contextlib.contextmanager
def one_line_errors():
    """For the Snakefile: a ConfigError ends the run with its message alone (Snakemake would
    print the frames of its traceback after it)."""
    try:
        yield
    except ConfigError as error:
        raise SystemExit(str(error)) from None


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def _filling_defaults(validator_class):
    """A validator that writes each property's schema ``default`` into the instance before
    validating it (the recipe of the jsonschema FAQ, "Why doesn't my schema's default
    property set the default on my instance?")."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _strict_integers(validator_class):
    """JSON Schema's ``integer`` accepts 64.0; a count or a size must be a whole number
    as written (``hr_size: 64.0`` would reach the stages as a float)."""
    checker = validator_class.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return jsonschema.validators.extend(validator_class, type_checker=checker)


DefaultFillingValidator = _filling_defaults(_strict_integers(jsonschema.Draft202012Validator))


def resolve(params: dict) -> dict:
    """A validated copy of ``params`` with every default filled in; raises ConfigError
    naming the offending key."""
    params = copy.deepcopy(params)
    schema = _schema()
    errors = sorted(DefaultFillingValidator(schema).iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        allowed = ""
        if error.validator == "enum":
            allowed = f" (allowed: {', '.join(map(str, error.validator_value))})"
        elif error.validator == "pattern" and error.schema.get("x-hint"):
            allowed = f" ({error.schema['x-hint']})"
        elif error.validator == "additionalProperties":
            known = sorted(error.schema.get("properties", {}))
            allowed = f" (allowed keys: {', '.join(known)})" if known else ""
            extra = sorted(set(error.instance) - set(known)) if isinstance(error.instance, dict) else []
            if not error.absolute_path and extra:  # the key itself, so that the layer that gave it is named
                raise ConfigError(f"params: {extra[0]}: not a top-level key{allowed}")
        allowed += untrained_hint(list(error.absolute_path))
        raise ConfigError(f"params: {_key_path(error)}: {error.message}{allowed}")
    for name, preset in params["presets"].items():
        check_preset(name, preset)
    if params["preset"] not in params["presets"]:
        raise ConfigError(
            f"params: preset: unknown preset {params['preset']!r} (allowed: {', '.join(params['presets'])})"
        )
    unknown = [name for name in params.get("datasets") or {} if name not in dataset_registry.REGISTRY]
    if unknown:
        raise ConfigError(
            f"params: datasets.{unknown[0]}: not a registered dataset (registered: "
            f"{', '.join(dataset_registry.REGISTRY)})"
        )
    check_cascades(params["presets"], params["preset"])
    active = params["presets"][params["preset"]]
    methods_key = "methods"
    if active["methods"]:
        params["methods"] = list(active["methods"])  # what every stage and engine compares
        methods_key = f"presets.{params['preset']}.methods"
    check_methods(params["methods"], active, params["preset"], methods_key)
    check_study(params["methods"], active, params["preset"])
    return params


def untrained_hint(path: list) -> str:
    """Why a method's training section (``presets.<p>.training.<method>``) takes none of its
    own settings, when the method is registered untrained ("" otherwise)."""
    if len(path) != 4 or path[0] != "presets" or path[2] != "training" or path[3] not in registry.REGISTRY:
        return ""
    entry = registry.REGISTRY[path[3]]
    if entry.trained:
        return ""
    return (
        f"; {entry.name} is not a trained method (its registry entry has trained=False), so no preset trains it "
        "and its settings_schema does not apply: remove this section, or register the method as trained"
    )


def top_level_methods(raw: dict) -> list[str]:
    """The params file's own top-level ``methods:`` (the schema's default where it has
    none): what a preset without a ``methods:`` list compares. ``resolve`` replaces it
    with the default preset's list."""
    return list(raw.get("methods") or _schema()["properties"]["methods"]["default"])


def with_defaults(values: dict, pointer: str) -> dict:
    """A copy of one section (``pointer`` into the schema, e.g.
    ``#/$defs/preset/properties/dataset``) with its defaults filled in and validated."""
    schema = _schema()
    values = copy.deepcopy(values)
    error = jsonschema.exceptions.best_match(
        DefaultFillingValidator({"$defs": schema["$defs"], "$ref": pointer}).iter_errors(values)
    )
    if error is not None:
        raise ConfigError(f"{pointer}: {_key_path(error)}: {error.message}")
    return values


def validate(params: dict) -> None:
    """Raise ConfigError naming the offending key unless ``params`` is a valid config."""
    resolve(params)


def check_methods(methods: list[str], preset: dict, preset_name: str, key: str = "methods") -> None:
    """Every compared method is registered (or an outside method of the preset), every
    variant is defined by the preset, and every trained method has its training settings
    (``key``: where the list was given)."""
    for method in methods:
        try:
            entry = registry.entry(method, preset)
            if variant_name(method) and variant_name(method) not in preset["variants"]:
                raise registry.UnknownMethodError(
                    f"{method!r}: variant {variant_name(method)!r} is not defined under variants of this preset"
                )
        except registry.UnknownMethodError as error:
            raise ConfigError(f"params: {key}: {error} (preset {preset_name})") from error
        if entry.trained and entry.name not in preset["training"]:
            shared = _schema()["$defs"]["training"]
            needed = shared["required"] + own_required(entry, shared["properties"])
            raise ConfigError(
                f"params: presets.{preset_name}.training.{entry.name}: missing; {method} is trained, so it needs its "
                f"training settings ({', '.join(needed)})"
            )
        problem = None if entry.conditional else unconditional_problem(method, entry, preset)
        if problem:
            raise ConfigError(f"params: presets.{preset_name}.{problem}")


def unconditional_problem(method: str, entry: registry.MethodEntry, preset: dict) -> str | None:
    """What ``preset`` asks of an unconditional generator (``method``) that only outputs of
    given images have, as "<key>: <why>" (None: nothing): a validation PSNR to keep weights
    by, a tuned sampler (the tune stage scores validation outputs against their HR images)."""
    variant = variant_name(method)
    if variant and "tuned" in preset["variants"][variant]:
        return (
            f"variants.{variant}.tuned: {method} is an unconditional generator, and the tune stage chooses a "
            "sampler by its outputs' PSNR and LPIPS against their validation images, which a generated image is "
            "not of; give the variant an inference_schedule (and a sampler) instead"
        )
    if entry.trained and preset["training"][entry.name]["keep"] == "best_val_psnr":
        return (
            f"training.{entry.name}.keep: best_val_psnr scores the validation images' PSNR, which an unconditional "
            f"generator's images ({method}) have none of (they are not of those images); set keep: last"
        )
    return None


def check_cascades(presets: dict, active: str) -> None:
    """The ``dataset.lr_from`` and ``cascade`` of the active preset and its chain (pipeline/cascade.py)."""
    from pipeline.cascade import CascadeError, check

    try:
        check(presets, check_methods, active)
    except CascadeError as error:
        raise ConfigError(f"params: {error}") from None


def check_study(methods: list[str], preset: dict, preset_name: str) -> None:
    """A study names registered methods; simulated answers need the fool rate of each
    method shown (those of study.methods that the run compares)."""
    study = preset["study"]
    if not study:
        return
    where = f"params: presets.{preset_name}.study"
    for method in study["methods"] or []:
        try:
            registry.entry(method, preset)
        except registry.UnknownMethodError as error:
            raise ConfigError(f"{where}.methods: {error}") from error
    generators = [m for m in shown_methods(study["methods"], methods) if not registry.entry(m, preset).conditional]
    if generators:
        raise ConfigError(
            f"{where}.methods: {', '.join(generators)} generate{'s' * (len(generators) == 1)} images "
            "unconditionally, and each study trial sets a method's output beside the test image it super-resolves; "
            "list the methods the study shows without "
            f"{'it' if len(generators) == 1 else 'them'}"
        )
    if study["answers"] == "simulated":
        missing = [m for m in shown_methods(study["methods"], methods) if m not in study["simulated"]["fool_rates"]]
        if missing:
            raise ConfigError(
                f"{where}.simulated.fool_rates: give the fool rate the simulated raters are drawn with for "
                f"{', '.join(missing)} (answers: simulated)"
            )


def check_preset(name: str, preset: dict) -> None:
    """Constraints between values, which JSON schema cannot express."""
    where = f"params: presets.{name}"
    dataset = preset["dataset"]
    if dataset["hr_size"] % dataset["scale"]:
        raise ConfigError(f"{where}.dataset.scale: {dataset['scale']} does not divide hr_size {dataset['hr_size']}")
    for problem in unet_config_problems(preset["model"]):
        raise ConfigError(f"{where}.model: {problem}")
    depth = 2 ** (len(preset["model"]["channel_multipliers"]) - 1)
    for method, training in preset["training"].items():
        if training["patch_size"] > dataset["hr_size"] or training["patch_size"] % depth:
            raise ConfigError(
                f"{where}.training.{method}.patch_size: {training['patch_size']} must be at most hr_size "
                f"{dataset['hr_size']} and divisible by {depth} (2 ** (number of channel_multipliers - 1))"
            )
    if dataset["hr_size"] % depth:
        raise ConfigError(
            f"{where}.dataset.hr_size: {dataset['hr_size']} must be divisible by {depth} for this UNet depth"
        )
    check_schedules(where, preset)
    check_classify(where, preset)
    check_paper(where, preset["paper"])
    for method, spec in preset["external"].items():
        if method in registry.REGISTRY:
            raise ConfigError(
                f"{where}.external.{method}: {method} is a registered method; give the outside method another name"
            )
        inside = pipeline_root_of(spec["folder"])
        if inside:
            raise ConfigError(
                f"{where}.external.{method}.folder: {spec['folder']} is under {inside}/, which the pipeline writes "
                f"and replaces (collect copies the outputs to {layout.samples_dir('<preset>', method)}); keep your "
                "outputs in a folder of their own, outside it"
            )
    if dataset["source"] == "skimage":
        for key in ("train_images", "test_images"):
            if not dataset[key]:
                raise ConfigError(f"{where}.dataset.{key}: list the scikit-image photographs to use")
        if dataset["val_from_train"]:
            raise ConfigError(
                f"{where}.dataset.val_from_train: holds out images of a folder dataset; for scikit-image "
                "photographs, name the validation ones in val_images"
            )
        splits = {key: set(dataset[key]) for key in ("train_images", "val_images", "test_images")}
        for first, second in (
            ("train_images", "test_images"),
            ("train_images", "val_images"),
            ("val_images", "test_images"),
        ):
            shared = splits[first] & splits[second]
            if shared:
                raise ConfigError(f"{where}.dataset: {sorted(shared)} are in both {first} and {second}")
    elif not dataset["root"]:
        raise ConfigError(f"{where}.dataset.root: a folder dataset needs the path of its local folder")
    if dataset["image_split"] and (dataset["source"] != "folder" or dataset["train_folder"] or dataset["test_folders"]):
        raise ConfigError(
            f"{where}.dataset.image_split: splits the images of root itself; "
            "it needs source: folder and no train_folder or test_folders"
        )
    if dataset["fit"] != "crop" and dataset["lr_source"] == "provided":
        raise ConfigError(
            f"{where}.dataset.fit: {dataset['fit']} makes new HR images, "
            "so their LR images must be made too (lr_source: downsample)"
        )
    for name in dataset["downloads"]:
        if name not in dataset_registry.REGISTRY:
            raise ConfigError(
                f"{where}.dataset.downloads: unknown dataset {name!r}; "
                f"registered: {', '.join(dataset_registry.REGISTRY)}"
            )
    has_val = (
        dataset["val_images"]
        or dataset["val_folders"]
        or dataset["val_from_train"]
        or (dataset["image_split"] or {}).get("val")
    )
    if preset["tune"] and preset["tune"]["crop"] % dataset["scale"]:
        raise ConfigError(
            f"{where}.tune.crop: {preset['tune']['crop']} must be a multiple of the scale {dataset['scale']}"
        )
    if preset["tune"] and not has_val:
        raise ConfigError(
            f"{where}.tune: the tune stage samples the validation split, and this preset has none "
            "(dataset val_images, val_folders, val_from_train or image_split.val)"
        )
    for method, training in preset["training"].items():
        if training["keep"] == "best_val_psnr" and not has_val:
            raise ConfigError(
                f"{where}.training.{method}.keep: best_val_psnr needs a validation split "
                "(dataset val_images, val_folders, val_from_train or image_split.val)"
            )
        parts = preset["runtime"]["processes"] * training["gradient_accumulation"]
        if training["batch_size"] % parts:
            raise ConfigError(
                f"{where}.training.{method}.batch_size: {training['batch_size']} (the global batch) "
                f"must divide by runtime.processes x gradient_accumulation = {parts}: "
                f"each process computes batch_size / {parts} images per micro-batch"
            )


def check_schedules(where: str, preset: dict) -> None:
    """Each schedule has the values its shape needs; each variant says how it samples."""
    schedules = [
        ("diffusion.training_schedule", preset["diffusion"]["training_schedule"]),
        ("diffusion.inference_schedule", preset["diffusion"]["inference_schedule"]),
    ]
    for name, variant in preset["variants"].items():
        if ("tuned" in variant) == ("inference_schedule" in variant) or ("tuned" in variant and "sampler" in variant):
            raise ConfigError(
                f"{where}.variants.{name}: give either inference_schedule (and optionally sampler) "
                "or tuned: {max_steps: N}"
            )
        if "tuned" in variant and not preset["tune"]:
            raise ConfigError(
                f"{where}.variants.{name}.tuned: needs the preset's tune section (the grid the tune stage searches)"
            )
        if "tuned" in variant and variant["tuned"]["max_steps"] < min(preset["tune"]["steps"]):
            raise ConfigError(
                f"{where}.variants.{name}.tuned.max_steps: {variant['tuned']['max_steps']} is below every step count "
                f"of the tune grid (tune.steps: {', '.join(map(str, preset['tune']['steps']))}), so no point could be "
                "chosen; raise it or add smaller steps to tune.steps"
            )
        if "inference_schedule" in variant:
            schedules.append((f"variants.{name}.inference_schedule", variant["inference_schedule"]))
    if preset["tune"]:
        schedules += [
            (f"tune.schedules[{index}]", {"steps": 1, **shape})
            for index, shape in enumerate(preset["tune"]["schedules"])
        ]
    for key, schedule in schedules:
        problem = schedule_problem(schedule)
        if problem:
            raise ConfigError(f"{where}.{key}: {problem}")


def pipeline_root_of(folder: str) -> str | None:
    """The project folder the pipeline writes (``layout.PIPELINE_ROOTS``) that holds ``folder``,
    relative to the project root (the working directory), or None; through links too (a
    link elsewhere to samples/<preset>/<method> is that folder)."""
    given = Path(folder).expanduser()
    paths = (Path(os.path.normpath(given.absolute())), given.resolve())
    for root in layout.PIPELINE_ROOTS:
        if any(path.is_relative_to(base / root) for path in paths for base in (Path.cwd(), Path.cwd().resolve())):
            return root
    return None


def check_paper(where: str, paper: dict) -> None:
    """``paper.table`` and ``paper.experiment`` name a table and a row of the project's
    reports/paper/ (not checked where that folder is absent: an installed copy)."""
    from sr3bench.reporting.paper import experiments, table_names

    folder = Path(__file__).resolve().parents[1] / layout.PAPER_TABLES_DIR
    if not folder.is_dir():
        return
    if paper.get("table") and paper["table"] not in table_names(folder):
        raise ConfigError(
            f"{where}.paper.table: no table {paper['table']!r} in {layout.PAPER_TABLES_DIR}/ "
            f"(tables: {', '.join(table_names(folder))})"
        )
    if paper.get("experiment") and paper["experiment"] not in experiments(folder):
        raise ConfigError(
            f"{where}.paper.experiment: no row {paper['experiment']!r} in {layout.PAPER_TABLES_DIR / 'scale.csv'} "
            f"(rows: {', '.join(experiments(folder))})"
        )


def check_classify(where: str, preset: dict) -> None:
    """The classify stage's labels come from the ILSVRC2012 devkit, a download of the
    preset; a classifier other than ResNet-50 brings its weights file."""
    classify = preset["classify"]
    if not classify:
        return
    if "imagenet_devkit" not in preset["dataset"]["downloads"]:
        raise ConfigError(
            f"{where}.dataset.downloads: classify labels the validation images with the ILSVRC2012 devkit; "
            "add imagenet_devkit (docs/classification.md)"
        )
    if classify["classifier"] != "resnet50" and not classify["weights"]:
        raise ConfigError(f"{where}.classify.weights: the classifier {classify['classifier']} needs its weights file")


YAML_NULLS = ("null", "Null", "NULL", "~")


def typed_engine_config(engine_config: dict, layers: list[tuple[str, dict]] = ()) -> dict:
    """Snakemake's ``config`` with the strings of ``--config`` given their schema's types.

    ``--config 'presets={demo: {training: {sr3: {steps: 12}}}}'`` is merged into
    params.yaml by Snakemake, but read with YAML's base loader, so every nested scalar
    arrives as a string ("12"). Where the schema does not allow a string at that place, the
    string is read as YAML (12); strings the schema wants stay strings, and so does a string
    that the params file (``layers[0]``, no later layer stating the key) holds there itself
    (``width: '32'``, which DVC refuses too)."""
    params = _nulls(copy.deepcopy(engine_config))
    # One pass finds every misplaced string: Snakemake already built the nesting, so each
    # one is a leaf whose parent validates (a default-filled copy is what is validated).
    for error in DefaultFillingValidator(_schema()).iter_errors(copy.deepcopy(params)):
        if error.validator == "type" and isinstance(error.instance, str) and error.absolute_path:
            path = error.absolute_path
            *parents, leaf = path
            stating = [mapping for _, mapping in layers if _value_at(mapping, path) is not None]
            if stating and stating[-1] is layers[0][1] and _value_at(stating[-1], path) == error.instance:
                continue  # written so in the params file (no later layer states it): not --config's
            node = params
            for key in parents:
                node = node[key]
            try:
                value = strict_yaml.load(error.instance)
            except yaml.YAMLError:
                continue
            if not isinstance(value, str):
                node[leaf] = value
    return params


def _value_at(tree, path) -> object:
    """The value at ``path`` (keys and list indices) of ``tree``, or None."""
    for key in path:
        try:
            tree = tree[key]
        except (KeyError, IndexError, TypeError):
            return None
    return tree


def _nulls(node):
    """``node`` with YAML's spellings of null as None: ``--config 'weights={inception: null}'``
    arrives as the text "null", which a key that takes a file name would keep as one."""
    if isinstance(node, dict):
        return {key: _nulls(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_nulls(value) for value in node]
    return None if isinstance(node, str) and node in YAML_NULLS else node


def read_params(path: Path | str) -> dict:
    """The raw mapping of a params file, or a ConfigError naming the file (and the line and
    key of a key given twice)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"params file {path} not found; run from the project root or pass --params")
    if not path.is_file():
        raise ConfigError(f"params file {path} is a folder, not a file; pass --params params.yaml (or another file)")
    try:
        with open(path, encoding="utf-8") as handle:
            params = strict_yaml.load(handle)
    except (UnicodeDecodeError, ValueError) as error:  # a binary file; PyYAML's reader raises a ValueError subclass
        raise ConfigError(
            f"params file {path} is not a YAML text file ({error.__class__.__name__}); pass the params file"
        ) from error
    except strict_yaml.DuplicateKeyError as error:
        raise ConfigError(f"params file {path}, {error}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"params file {path} is not valid YAML: {error}") from error
    if not isinstance(params, dict):
        raise ConfigError(
            f"params file {path} must hold a mapping (preset:, threads:, presets:), not {type(params).__name__}"
        )
    return params


def load(params_path: Path | str = "params.yaml", preset: str | None = None) -> tuple[str, dict, dict]:
    """(preset name, preset config, whole params), resolved, from a params file; a
    ConfigError names the file (or ``--preset``)."""
    params = read_params(params_path)
    if preset is not None:
        params["preset"] = preset
    try:
        params = resolve(params)
    except ConfigError as error:
        raise error.located("--preset" if preset is not None and error.key == "preset" else str(params_path)) from None
    return params["preset"], params["presets"][params["preset"]], params


def engine_layers(params_file: Path | str, configfiles=(), command_line=None) -> list[tuple[str, dict]]:
    """Where Snakemake's config comes from, lowest precedence first: (name, raw mapping) of
    the params file, of each ``--configfile`` (read again here: Snakemake's loader keeps
    the last of a key given twice) and of ``--config``."""
    layers = [(str(params_file), read_params(params_file))]
    for path in configfiles:
        shown = os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else str(path)
        layers.append((shown, read_params(shown)))
    if command_line:
        layers.append(("--config", dict(command_line)))
    return layers


def source_of(key: str | None, layers: list[tuple[str, dict]]) -> str:
    """The layer that states most of ``key`` (its deepest part), the last one of those:
    the one whose value the merged config holds; the params file when none states it."""

    def depth(mapping) -> int:
        parts = key.split(".")
        for stated, part in enumerate(parts):
            if not isinstance(mapping, dict) or part not in mapping:
                return stated
            mapping = mapping[part]
        return len(parts)

    depths = [depth(mapping) if key else 0 for _, mapping in layers]
    if not max(depths):
        return layers[0][0]
    return [name for (name, _), stated in zip(layers, depths) if stated == max(depths)][-1]


def resolve_engine_config(engine_config: dict, layers: list[tuple[str, dict]]) -> dict:
    """Snakemake's merged config, typed and resolved; a ConfigError names the file (or
    ``--config``) that gave the key."""
    try:
        resolved = resolve(typed_engine_config(engine_config, layers))
    except ConfigError as error:
        raise error.located(source_of(error.key, layers)) from None
    active = resolved["preset"]
    own = resolved["presets"][active]["methods"]
    stated = layers[0][1].get("methods")  # the params file's: a full copy of it as --configfile changes nothing
    for name, layer in layers[1:]:
        if "methods" in layer and own and layer["methods"] != stated and (layer["methods"] or []) != own:
            raise ConfigError(
                f"{name}: methods: preset {active} lists its own methods (presets.{active}.methods: "
                f"{', '.join(own)}), which replace this list; give presets.{active}.methods instead"
            )
    return resolved


def digest(value) -> str:
    """A short, stable hash of a JSON-able value (configs, fingerprints)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def write_resolved(params: dict, root: Path = Path(".")) -> Path:
    """Write resolved params to ``cache/params/<digest>.yaml`` (once; the name is the
    content's hash) and return the path relative to ``root``."""
    from sr3bench.core.atomic import atomic_path

    relative = layout.resolved_params_file(digest(params))
    path = Path(root) / relative
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            temporary.write_text(
                "# written by the Snakefile: params.yaml with the run's overrides and the schema's defaults\n"
                + yaml.safe_dump(params, sort_keys=False)
            )
    return relative


PARAMS_FILE = "params.yaml"
# The environment variable through which the Snakefile hands its jobs the resolved config's
# file, when overrides make it differ from params.yaml (pipeline/rule_settings.py).
RESOLVED_PARAMS_VARIABLE = "SR3BENCH_RESOLVED_PARAMS"
# Set by the Snakefile for its jobs: a stage run by Snakemake (pipeline/settings_stamps.py).
ENGINE_VARIABLE = "SR3BENCH_ENGINE"


def default_params_file(environ=os.environ) -> str:
    """The CLI's --params: the file a Snakemake job was handed, else params.yaml."""
    return environ.get(RESOLVED_PARAMS_VARIABLE, PARAMS_FILE)


def option_for_resolved(resolved: dict, params_file: Path | str = PARAMS_FILE) -> str:
    """The ``--params`` option a job needs to run with ``resolved``: none when the params
    file alone resolves to it (so both engines run the same commands), else the path of
    the resolved config, written once under ``cache/params/``."""
    try:
        if resolve(read_params(params_file)) == resolved:
            return ""
    except ConfigError:  # the file alone is not valid; the overrides made it so
        pass
    return f"--params {write_resolved(resolved)}"
