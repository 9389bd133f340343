"""Loading and checking ``params.yaml``: the schema first, then what a schema cannot say."""
from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and what is allowed."""


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def validate(params: dict) -> None:
    """Raise ConfigError naming the offending key unless ``params`` fits the schema."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        allowed = ""
        if error.validator == "enum":
            allowed = f" (allowed: {', '.join(map(str, error.validator_value))})"
        elif error.validator == "additionalProperties":
            known = sorted(error.schema.get("properties", {}))
            allowed = f" (allowed keys: {', '.join(known)})" if known else ""
        raise ConfigError(f"params: {_key_path(error)}: {error.message}{allowed}")
    for name, preset in params["presets"].items():
        check_preset(name, preset)
    if params["preset"] not in params["presets"]:
        raise ConfigError(f"params: preset: unknown preset {params['preset']!r} (allowed: {', '.join(params['presets'])})")


def check_preset(name: str, preset: dict) -> None:
    """Constraints between values, which JSON schema cannot express."""
    where = f"params: presets.{name}"
    dataset = preset["dataset"]
    if dataset["hr_size"] % dataset["scale"]:
        raise ConfigError(f"{where}.dataset.scale: {dataset['scale']} does not divide hr_size {dataset['hr_size']}")
    depth = 2 ** (len(preset["model"]["channel_multipliers"]) - 1)
    for method, training in preset["training"].items():
        if training["patch_size"] > dataset["hr_size"] or training["patch_size"] % depth:
            raise ConfigError(
                f"{where}.training.{method}.patch_size: {training['patch_size']} must be at most hr_size "
                f"{dataset['hr_size']} and divisible by {depth} (2 ** (number of channel_multipliers - 1))"
            )
    if dataset["hr_size"] % depth:
        raise ConfigError(f"{where}.dataset.hr_size: {dataset['hr_size']} must be divisible by {depth} for this UNet depth")
    for key in ("training_schedule", "inference_schedule"):
        schedule = preset["diffusion"][key]
        if schedule["beta_start"] > schedule["beta_end"]:
            raise ConfigError(f"{where}.diffusion.{key}: beta_start {schedule['beta_start']} exceeds beta_end {schedule['beta_end']}")
    if dataset["source"] == "skimage":
        for key in ("train_images", "test_images"):
            if not dataset.get(key):
                raise ConfigError(f"{where}.dataset.{key}: list the scikit-image photographs to use")
        shared = set(dataset["train_images"]) & set(dataset["test_images"])
        if shared:
            raise ConfigError(f"{where}.dataset: {sorted(shared)} are in both train_images and test_images")
    elif not dataset.get("root"):
        raise ConfigError(f"{where}.dataset.root: a folder dataset needs the path of its local folder")


def load(params_path: Path | str = "params.yaml", preset: str | None = None) -> tuple[str, dict, dict]:
    """(preset name, preset config, whole params) from a params file, validated."""
    path = Path(params_path)
    if not path.exists():
        raise ConfigError(f"params file {path} not found; run from the project root or pass --params")
    try:
        with open(path) as handle:
            params = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        raise ConfigError(f"params file {path} is not valid YAML: {error}") from error
    if not isinstance(params, dict):
        raise ConfigError(f"params file {path} must hold a mapping (preset:, threads:, presets:), not {type(params).__name__}")
    if preset is not None:
        params["preset"] = preset
    validate(params)
    return params["preset"], params["presets"][params["preset"]], params
