import copy

import pytest
import yaml

from pipeline import config
from conftest import REPO


@pytest.fixture
def params():
    return yaml.safe_load((REPO / "params.yaml").read_text())


def demo(params):
    return params["presets"]["demo"]


def test_committed_params_are_valid(params):
    config.validate(params)


@pytest.mark.fault
@pytest.mark.parametrize(
    "change, key, hint",
    [
        (lambda p: demo(p)["dataset"].__setitem__("scale", "four"), "presets.demo.dataset.scale", "integer"),
        (lambda p: demo(p)["dataset"].__setitem__("colour", 1), "presets.demo.dataset", "allowed keys"),
        (lambda p: demo(p)["protocol"].__setitem__("color", "lab"), "presets.demo.protocol.color", "allowed: rgb, y"),
        (lambda p: demo(p)["dataset"].__setitem__("scale", 3), "presets.demo.dataset.scale", "does not divide"),
        (lambda p: demo(p)["diffusion"]["inference_schedule"].__setitem__("steps", 0), "inference_schedule.steps", "minimum"),
        (lambda p: demo(p)["training"]["sr3"].__setitem__("patch_size", 30), "training.sr3.patch_size", "divisible"),
        (lambda p: p.__setitem__("preset", "nope"), "preset", "allowed: demo"),
        (lambda p: demo(p)["dataset"].__setitem__("test_images", ["astronaut"]), "presets.demo.dataset", "both"),
    ],
)
def test_bad_values_name_the_key(params, change, key, hint):
    broken = copy.deepcopy(params)
    change(broken)
    with pytest.raises(config.ConfigError) as error:
        config.validate(broken)
    assert key in str(error.value) and hint in str(error.value)
