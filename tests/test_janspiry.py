"""The public-checkpoint method (docs/public-checkpoints.md): the network written in
sr3/janspiry.py reproduces the Janspiry re-implementation's outputs (a fixture made with
their code by tests/fixtures/make_janspiry_fixture.py), their checkpoints are checked
tensor by tensor, and the miniature preset runs through Snakemake as the page says."""

import re
import shutil
import subprocess

import pandas as pd
import pytest
import torch
from conftest import REPO
from projects import committed_params, environment, make_project

from pipeline import config, registry
from sr3 import diffusion, janspiry, janspiry_method
from sr3 import schedule as schedules

FIXTURES = REPO / "tests" / "fixtures" / "janspiry"
CHECKPOINT = FIXTURES / "sr3_tiny_gen.pth"
PAGE = REPO / "docs" / "public-checkpoints.md"


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIXTURES / "equivalence.pt", weights_only=True)


@pytest.fixture(scope="module")
def tiny(fixture):
    """(config, training schedule) of the fixture's checkpoint, in this project's terms."""
    theirs = fixture["schedule"]
    schedule = {"steps": theirs["n_timestep"], "beta_start": theirs["linear_start"], "beta_end": theirs["linear_end"]}
    return janspiry.resolve_config(fixture["config"])[1], schedule


@pytest.fixture(scope="module")
def network(tiny):
    config, schedule = tiny
    network, _ = janspiry.read_checkpoint(CHECKPOINT, "custom", config, training_schedule=schedule)
    return network.eval()


def mini_preset() -> dict:
    return config.resolve({**committed_params(), "preset": "janspiry_mini"})["presets"]["janspiry_mini"]


# ---------------------------------------------------------------- the equivalence with their code


def test_the_network_reproduces_their_unet_outputs_to_1e_5(fixture, network):
    with torch.no_grad():
        output = network(fixture["input"], fixture["noise_level"])
        wrapped = janspiry.GammaConditioned(network)(fixture["input"], fixture["noise_level"].reshape(-1) ** 2)
        unmapped = network(fixture["input"], fixture["noise_level"] ** 2)
    assert (output - fixture["output"]).abs().max() <= 1e-5
    assert (wrapped - fixture["output"]).abs().max() <= 1e-5  # the harness's gamma, mapped to their sqrt(gamma)
    assert (unmapped - fixture["output"]).abs().max() > 1e-3  # the test tells the noise levels apart


def test_one_step_of_their_sampler_is_the_same_step_of_ancestral_posterior(fixture, network, tiny):
    """Their p_mean_variance at their step index i conditions on sqrt(gamma_{i+1}); the
    harness's posterior mean at step t = i + 1 of the same schedule, from gamma_t."""
    _, schedule = tiny
    step, model = fixture["step"], janspiry.GammaConditioned(network)
    gamma, betas = schedules.gammas_with_start(schedule), schedules.betas(schedule)
    t = step["t"] + 1
    y = step["noisy"]
    with torch.no_grad():
        level = torch.full((y.shape[0],), float(gamma[t]))
        eps = diffusion.predict_noise(model, step["condition"], y, level, janspiry_method.PARAMETRIZATION)
        clean = ((y - (1 - gamma[t]).sqrt() * eps) / gamma[t].sqrt()).clamp(-1, 1)
        mean = diffusion._posterior_mean(clean, y, gamma[t], gamma[t - 1], betas[t - 1])
    assert (mean - step["mean"]).abs().max() <= 1e-5


def test_their_configs_build_the_names_and_shapes_their_code_builds(fixture):
    for name, layout in fixture["layouts"].items():
        assert janspiry.CONFIGS[name] == layout["config"], f"{name}: the config differs from their JSON file"
        assert janspiry.expected_shapes(janspiry.CONFIGS[name]) == {k: tuple(v) for k, v in layout["shapes"].items()}
    schema = registry.REGISTRY["sr3_janspiry"].settings_schema["config"]["anyOf"][0]["enum"]
    assert schema == list(janspiry.CONFIGS)


def test_the_norm_channel_rule_matches_the_network(tiny):
    config, _ = tiny
    for candidate in (config, *janspiry.CONFIGS.values()):
        with torch.device("meta"):
            network = janspiry.JanspiryUNet(candidate)
        norms = sorted(m.num_channels for m in network.modules() if isinstance(m, torch.nn.GroupNorm))
        assert sorted(set(janspiry.group_norm_channels(candidate))) == sorted(set(norms))


# ---------------------------------------------------------------- checkpoints that do not fit


def save(path, state):
    torch.save(state, path)
    return path


def test_a_missing_and_an_unexpected_tensor_are_named_with_the_file_and_config(tmp_path, tiny):
    config, _ = tiny
    state = torch.load(CHECKPOINT, weights_only=True)
    del state["denoise_fn.mid.0.attn.qkv.weight"]
    state["denoise_fn.mid.2.res_block.block1.block.3.weight"] = torch.zeros(1)
    path = save(tmp_path / "edited_gen.pth", state)
    with pytest.raises(janspiry.CheckpointError) as error:
        janspiry.read_checkpoint(path, "custom", config)
    message = str(error.value)
    for part in (
        str(path),
        "config custom (in_channel 6, out_channel 3, inner_channel 4",
        "1 missing: mid.0.attn.qkv.weight",
        "1 unexpected: mid.2.res_block.block1.block.3.weight",
    ):
        assert part in message, message


def test_a_checkpoint_of_another_config_lists_its_shapes(tmp_path, tiny):
    config, schedule = tiny
    other = {**config, "inner_channel": 8}
    state = {f"denoise_fn.{k}": v for k, v in janspiry.JanspiryUNet(other).state_dict().items()}
    path = save(tmp_path / "other_gen.pth", state)
    with pytest.raises(janspiry.CheckpointError) as error:
        janspiry.read_checkpoint(path, "custom", config, training_schedule=schedule)
    message = str(error.value)
    assert str(path) in message and "inner_channel 4" in message
    assert "of another shape: " in message
    assert "downs.0.weight (8, 6, 3, 3) (expected (4, 6, 3, 3))" in message
    assert message.index("noise_level_mlp.1.weight (32, 8) (expected (16, 4))") < message.index("downs.0.weight")


def test_a_checkpoint_of_one_of_their_configs_is_recognised():
    state = {
        name: torch.empty(shape, device="meta")
        for name, shape in janspiry.expected_shapes(janspiry.CONFIGS["sr_sr3_64_512"]).items()
    }
    assert janspiry.matching_configs(state) == ["sr_sr3_64_512"]
    problems = janspiry.layout_problems(state, janspiry.CONFIGS["sr_sr3_16_128"])
    assert any(re.match(r"\d+ missing: ", p) for p in problems)
    assert any("... and" in p for p in problems)  # long lists are cut, with their count


def test_an_absent_file_says_where_to_download_it(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        janspiry.read_checkpoint(tmp_path / "I640000_E37_gen.pth", "sr_sr3_16_128", janspiry.CONFIGS["sr_sr3_16_128"])
    message = str(error.value)
    assert "https://drive.google.com/drive/folders/12jh0K8XoM1FqpeByXvugHHAF3oAZ8KRu" in message
    assert "I640000_E37_gen.pth" in message and "training.<method>.checkpoint" in message


def test_their_optimizer_state_a_wrong_sha256_and_another_schedule_are_refused(tmp_path, tiny):
    config, schedule = tiny
    optimizer = save(tmp_path / "I1_E1_opt.pth", {"epoch": 1, "iter": 1, "scheduler": None, "optimizer": {}})
    with pytest.raises(janspiry.CheckpointError, match=r"training state \(\*_opt.pth.*give the \*_gen.pth"):
        janspiry.read_checkpoint(optimizer, "custom", config)
    with pytest.raises(janspiry.CheckpointError, match="has sha256 .* not the 0000"):
        janspiry.read_checkpoint(CHECKPOINT, "custom", config, sha256="0" * 64)
    with pytest.raises(janspiry.CheckpointError, match=r"set diffusion.training_schedule to \{steps: 100, beta_start"):
        janspiry.read_checkpoint(CHECKPOINT, "custom", config, training_schedule={**schedule, "steps": 2000})
    with pytest.raises(janspiry.CheckpointError, match="unknown: channels"):
        janspiry.resolve_config({**config, "channels": 3})
    with pytest.raises(janspiry.CheckpointError, match="not one of their configs"):
        janspiry.resolve_config("sr_sr3_32_256")


def test_a_named_config_of_another_scale_is_refused():
    preset = mini_preset()
    preset["dataset"]["scale"] = 4
    own = {**preset["training"]["sr3_janspiry"], "config": "sr_sr3_16_128"}
    with pytest.raises(janspiry.CheckpointError, match=r"super-resolves x8 .* dataset.scale is 4"):
        janspiry_method.build_model(preset, own)


# ---------------------------------------------------------------- the method


def test_the_import_keeps_the_weights_and_records_where_they_came_from(tmp_path, fixture):
    preset = mini_preset()
    own = preset["training"]["sr3_janspiry"]
    model = janspiry_method.build_model(preset, own)
    janspiry_method.save_model_file(tmp_path / "model.pt", model, preset, own, {"device": "cpu"})
    loaded = janspiry_method.load_model(tmp_path / "model.pt")
    source = torch.load(tmp_path / "model.pt", weights_only=True)["source"]
    assert source["sha256"] == own["sha256"] and source["file"] == own["checkpoint"]
    assert source["repository"] == janspiry.SOURCE and source["schedule_buffers"]
    with torch.no_grad():
        output = loaded(fixture["input"], fixture["noise_level"].reshape(-1) ** 2)
    assert (output - fixture["output"]).abs().max() <= 1e-5
    with torch.device("meta"):  # as the report counts parameters: the file is not read
        counted = janspiry_method.build_model(preset, {**own, "checkpoint": str(tmp_path / "absent.pth")})
    assert sum(p.numel() for p in counted.parameters()) == sum(p.numel() for p in loaded.parameters())


def test_the_faces_preset_names_their_config_and_schedule():
    params = committed_params()
    resolved = config.resolve({**params, "preset": "faces16_128_janspiry"})
    preset = resolved["presets"]["faces16_128_janspiry"]
    assert preset["training"]["sr3_janspiry"]["config"] == "sr_sr3_16_128"
    assert preset["diffusion"]["training_schedule"] == {"steps": 2000, "beta_start": 1e-6, "beta_end": 0.01}
    assert preset["diffusion"]["inference_schedule"] == preset["diffusion"]["training_schedule"]
    assert preset["diffusion"]["sampler"] == "ancestral_posterior"  # their p_sample
    assert preset["dataset"] == resolved["presets"]["faces16_128_small"]["dataset"]  # the same test faces


# ---------------------------------------------------------------- the page's commands, on the miniature


def page_commands() -> list[str]:
    text = PAGE.read_text()
    section = text[text.index("### The miniature, step by step") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


@pytest.mark.slow
def test_the_miniature_runs_tune_sample_evaluate_and_report_under_snakemake(tmp_path):
    """docs/public-checkpoints.md's commands, in a project copy with the fixture."""
    project = make_project(tmp_path / "project", committed_params())
    (project / FIXTURES.relative_to(REPO)).mkdir(parents=True)
    shutil.copy(CHECKPOINT, project / CHECKPOINT.relative_to(REPO))
    for command in page_commands():
        result = subprocess.run(
            ["bash", "-c", command], cwd=project, env=environment(project), capture_output=True, text=True
        )
        assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"

    preset = mini_preset()
    tune = pd.read_csv(project / "results/janspiry_mini/tune/sr3_janspiry.csv")
    assert len(tune) == 3 and tune["reference"].iloc[0] and tune["steps"].iloc[0] == 100  # reference + 2 points
    metrics = pd.read_csv(project / "reports/janspiry_mini/metrics.csv").set_index("method")
    assert list(metrics.index) == ["sr3_janspiry", "sr3_janspiry@tuned10"]
    assert (metrics["n_images"] == 2).all() and metrics["psnr"].notna().all()
    assert "Janspiry SR3 (tuned10)" in (project / "reports/janspiry_mini/index.html").read_text()
    model = torch.load(project / "models/janspiry_mini/sr3_janspiry/model.pt", weights_only=True)
    assert model["source"]["sha256"] == preset["training"]["sr3_janspiry"]["sha256"]
    assert "sr3_janspiry@tuned10" in result.stdout  # the page's second command printed the tables
