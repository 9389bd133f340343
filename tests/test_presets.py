"""The paper's presets: their UNets have the sizes of the paper's Table A.1, and they name
every choice the paper leaves open."""

import pytest
import torch
from conftest import REPO
from projects import committed_params

from pipeline import config, registry

# Saharia et al. 2021, Table A.1: parameters of the SR3 UNets (the faces cascade's two
# SR3 stages, Sec. 4.4, are its 64x64 -> 256x256 and 256x256 -> 1024x1024 rows).
PAPER_PARAMETERS = {"faces16_128": 550e6, "imagenet64_256": 625e6, "faces64_256": 625e6, "faces256_1024": 150e6}


@pytest.mark.parametrize("preset_name", sorted(PAPER_PARAMETERS))
def test_full_size_unets_have_the_papers_parameter_counts(preset_name):
    params = config.resolve(committed_params())
    preset = params["presets"][preset_name]
    for method in ("sr3", "regression"):
        with torch.device("meta"):  # 550M+ parameters, no memory
            model = registry.load(method).build_model(preset, preset["training"][method])
        count = sum(p.numel() for p in model.parameters())
        assert abs(count - PAPER_PARAMETERS[preset_name]) <= 0.1 * PAPER_PARAMETERS[preset_name], (
            f"{method}: {count / 1e6:.1f}M"
        )


def test_the_paper_presets_state_where_their_values_come_from():
    text = (REPO / "params.yaml").read_text()
    for preset in PAPER_PARAMETERS:
        block = text[text.index(f"  {preset}:") :]
        for marker in ("Table A.1", "Sec. 4", "App. A", "unknown"):
            assert marker in block, f"{preset}: {marker}"
