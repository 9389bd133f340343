"""The classify stages (the paper's Table 3) on a synthetic ImageNet (tests/classify_fixtures.py):
hand-computed top-1/top-5 errors of a tiny classifier on the originals and on bicubic's
outputs, the devkit's labels and its refusal of other images, the classifier weights'
download and checks, the report's section, the imagenet64_256 plan, and both engines."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import socket
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from classify_fixtures import ID_ORDER, IMAGES, WNIDS, devkit_archive, save_tiny_weights, write_devkit, write_images
from conftest import REPO
from local_http import http_server  # noqa: F401  (a fixture)
from projects import committed_params, dvc_project, make_project, run, tiny_params

from pipeline import config, datasets, layout
from pipeline.classify_data import prepare_classify
from pipeline.dvc_yaml import render
from pipeline.imagenet_devkit import DEVKIT_FILES, DevkitMismatchError, read_devkit
from pipeline.stage_table import Job
from sr3bench.core.download import DownloadError
from sr3bench.metrics import classifier
from sr3bench.reporting.classification import classification_section, classification_table

SIX = len(IMAGES)
# By hand (classify_fixtures.IMAGES): on the originals, image 2's truth is only 2nd nearest
# (top-1 wrong, top-5 right) and image 4's 7th (both wrong); bicubic also turns image 3's
# checkerboard into flat grey, whose nearest five classes leave out the checker class.
BASELINE = {"top1_error": 2 / SIX, "top5_error": 1 / SIX}
BICUBIC = {"top1_error": 3 / SIX, "top5_error": 2 / SIX}


def classify_params(root, weights) -> dict:
    """The tiny preset on the synthetic validation images (root/val), bicubic only, the
    tiny classifier, the devkit from root/devkit (extracted)."""
    params = tiny_params()
    params["methods"] = ["bicubic"]
    params["datasets"] = {"imagenet_devkit": {"local": str(root / "devkit")}}
    demo = params["presets"]["demo"]
    demo["dataset"].update(
        source="folder",
        root=str(root),
        test_folders=["val"],
        test_images=[],
        downloads=["imagenet_devkit"],
        test_crops_per_image=0,
        test_center_crop=32,
        train_images=["astronaut"],
        train_crops_per_image=2,
    )
    demo["classify"] = {"images": SIX, "classifier": "classify_fixtures:tiny_classifier", "weights": str(weights)}
    return params


@pytest.fixture
def synthetic(tmp_path):
    """root/val/ILSVRC2012_val_0000000{1..6}.PNG, root/devkit/ (extracted), the tiny weights."""
    root = tmp_path / "imagenet"
    labels = write_images(root / "val")
    write_devkit(root / "devkit", labels)
    return root, save_tiny_weights(tmp_path / "weights")


def run_stages(params, *jobs) -> None:
    from pipeline.stages import classify, download, prepare, prepare_classify

    resolved = config.resolve(params)
    download.run(Job(resolved, None, dataset="imagenet_devkit"))
    prepare.run(Job(resolved, "demo"))
    prepare_classify.run(Job(resolved, "demo"))
    for method in jobs:
        classify.run(Job(resolved, "demo", method))


def test_the_errors_are_the_hand_computed_ones_for_the_originals_and_for_bicubic(synthetic, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root, weights = synthetic
    run_stages(classify_params(root, weights), None, "bicubic")
    baseline = json.loads(layout.classify_result_file("demo", layout.CLASSIFY_BASELINE).read_text())
    bicubic = json.loads(layout.classify_result_file("demo", "bicubic").read_text())
    assert {k: baseline[k] for k in BASELINE} == pytest.approx(BASELINE)
    assert {k: bicubic[k] for k in BICUBIC} == pytest.approx(BICUBIC)
    # the devkit's ILSVRC2012_IDs (not in WNID order) became the sorted-WNID class indices
    assert [row["label"] for row in bicubic["per_image"]] == [label for _, label in IMAGES]
    assert bicubic["per_image"][2]["top5"][0] == 3 and baseline["per_image"][2]["top5"][0] == 2
    protocol = bicubic["protocol"]
    assert list(protocol["chain"]) == ["original", "lr", "input", "sr", "classifier_input"]
    assert "56x56 enlarged to 64x64" in protocol["chain"]["input"]
    assert "64x64 -> 256x256 by bicubic" in protocol["chain"]["sr"]
    assert protocol["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert protocol["labels"]["classes"] == len(WNIDS)
    assert list(baseline["protocol"]["chain"]) == ["original"]
    assert not layout.classify_cache_dir("demo", "bicubic").exists()  # the SR images go once classified
    originals = sorted(layout.classify_data_dir("demo", "original").iterdir())
    assert [p.name for p in originals] == [f"ILSVRC2012_val_{n:08d}.png" for n in range(1, SIX + 1)]
    # the Table 2 test split is the preset's own, untouched: 32x32 centre crops
    assert len(list(layout.split_dir("demo", "test", "hr").iterdir())) == SIX


def test_the_devkit_maps_its_ids_to_sorted_wnids(tmp_path):
    labels = [label for _, label in IMAGES]
    devkit = read_devkit(write_devkit(tmp_path, labels) / "data")
    assert devkit.classes == WNIDS  # the inner synset (it has children) is no class
    assert [devkit.label(number)[0] for number in range(1, SIX + 1)] == labels
    assert devkit.label(1)[1] == WNIDS[labels[0]] and devkit.ground_truth[0] == ID_ORDER.index(labels[0]) + 1


@pytest.mark.parametrize(
    "numbers, labels, message",
    [
        (None, [label for _, label in IMAGES][:-1], "holds 6 validation images, but the ILSVRC2012 devkit"),
        ([1, 2, 3, 4, 5, 9], [label for _, label in IMAGES], "no labels for images numbered \\[9\\]"),
    ],
    ids=["count", "names"],
)
def test_a_devkit_that_does_not_match_the_images_is_refused(tmp_path, monkeypatch, numbers, labels, message):
    monkeypatch.chdir(tmp_path)
    write_images(tmp_path / "val", numbers=numbers)
    extracted = write_devkit(tmp_path / "devkit", labels) / "data"
    shutil.copytree(extracted, layout.download_dir("imagenet_devkit"))
    sources = [("val", p.stem, p) for p in sorted((tmp_path / "val").iterdir())]
    with pytest.raises(DevkitMismatchError, match=message):
        prepare_classify(sources, {"classify": {"images": 3}}, tmp_path / "out")


def test_images_not_named_as_ilsvrc2012_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(write_devkit(tmp_path / "devkit", [0, 1]) / "data", layout.download_dir("imagenet_devkit"))
    sources = [("val", "cat", tmp_path / "cat.png"), ("val", "ILSVRC2012_val_00000001", tmp_path / "a.png")]
    with pytest.raises(DevkitMismatchError, match="not named ILSVRC2012_val_<8 digits> \\(cat"):
        prepare_classify(sources, {"classify": {"images": 1}}, tmp_path / "out")


def test_the_devkit_archive_is_downloaded_checked_and_laid_out(http_server, tmp_path, monkeypatch):  # noqa: F811
    from pipeline.stages.download import run_download

    monkeypatch.chdir(tmp_path)
    archive = devkit_archive(write_devkit(tmp_path / "src", [0, 1, 2]), tmp_path / "ILSVRC2012_devkit_t12.tar.gz")
    http_server.files["/mirror/ILSVRC2012_devkit_t12.tar.gz"] = archive
    entry = datasets.REGISTRY["imagenet_devkit"]
    assert entry.files[0].md5 == "fa75699e90414af021442c21a62c3abe"  # the published archive's
    assert entry.options["files"] == DEVKIT_FILES  # what the download keeps is what the labels are read from
    real = dataclasses.replace(entry.files[0], md5=hashlib.md5(archive).hexdigest())
    monkeypatch.setitem(datasets.REGISTRY, "imagenet_devkit", dataclasses.replace(entry, files=(real,)))
    run_download("imagenet_devkit", {"mirror": f"{http_server.url}/mirror"})
    ids = tuple(ID_ORDER.index(label) + 1 for label in (0, 1, 2))
    assert read_devkit(layout.download_dir("imagenet_devkit")).ground_truth == ids
    monkeypatch.setitem(datasets.REGISTRY, "imagenet_devkit", entry)  # the published md5: this archive is not it
    shutil.rmtree(layout.download_cache_dir("imagenet_devkit"))
    with pytest.raises(DownloadError, match="md5"):
        run_download("imagenet_devkit", {"mirror": f"{http_server.url}/mirror"})


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_resnet50_weights_are_downloaded_and_checked_by_the_hash_in_their_name(http_server, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    data = save_tiny_weights(tmp_path).read_bytes()
    prefix = hashlib.sha256(data).hexdigest()[:8]
    http_server.files[f"/models/resnet50-{prefix}.pth"] = data
    got = classifier.resolve_weights("resnet50", None, f"{http_server.url}/models/resnet50-{prefix}.pth")
    assert got.path.read_bytes() == data and got.path.is_relative_to(tmp_path / "torch")
    assert "torchvision download" in got.source
    http_server.files["/models/resnet50-00000000.pth"] = data  # a name whose hash is not the file's
    with pytest.raises(classifier.WeightsMismatchError, match="invalid hash value"):
        classifier.resolve_weights("resnet50", None, f"{http_server.url}/models/resnet50-00000000.pth")
    local = tmp_path / "my-resnet.pth"
    local.write_bytes(data)  # a local file is checked against torchvision's published prefix
    with pytest.raises(classifier.WeightsMismatchError, match="not the expected 0676ba61"):
        classifier.resolve_weights("resnet50", str(local))
    assert classifier.RESNET50_URL.endswith("/resnet50-0676ba61.pth")


def named_by_hash(folder, data: bytes, name: str = "mine"):
    path = folder / f"{name}-{hashlib.sha256(data).hexdigest()[:10]}.pth"
    path.write_bytes(data)
    return path


def saved(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda good: good[: len(good) // 2], "cannot be read as a state dict"),
        (lambda good: b"prototypes = 1, 2, 3\n", "cannot be read as a state dict"),
        (lambda good: saved({"model": {"prototypes": torch.zeros(8, 2)}}), "hold a dict with keys model, not a state"),
        (lambda good: saved({"weight": torch.zeros(8, 2)}), r"missing prototypes \(1\); unknown weight \(1\)"),
        (lambda good: saved({"prototypes": torch.zeros(4, 2)}), r"misshapen prototypes \(1\)"),
    ],
    ids=["truncated", "text", "wrapped", "other-network", "other-shape"],
)
def test_a_weights_file_that_is_no_state_dict_of_the_classifier_is_named_with_the_setting(tmp_path, content, message):
    """A file with the right hash in its name but the wrong contents: an error naming the
    file, classify.weights and what is wrong, never torch's bare message."""
    good = save_tiny_weights(tmp_path).read_bytes()
    path = named_by_hash(tmp_path, content(good))
    weights = classifier.resolve_weights("classify_fixtures:tiny_classifier", str(path))
    with pytest.raises(classifier.ClassifierWeightsError, match=message) as error:
        classifier.load_classifier("classify_fixtures:tiny_classifier", weights, torch.device("cpu"))
    assert str(path) in str(error.value) and "classify.weights" in str(error.value)


def test_a_users_file_whose_name_carries_another_hash_says_to_name_it_by_its_own(tmp_path):
    path = tmp_path / "mine-0000000000.pth"
    path.write_bytes(save_tiny_weights(tmp_path).read_bytes())
    with pytest.raises(classifier.WeightsMismatchError, match="its name does not carry its own hash") as error:
        classifier.resolve_weights("classify_fixtures:tiny_classifier", str(path))
    assert "published" not in str(error.value) and "fetched again" not in str(error.value)


def test_a_classifier_module_of_ones_own_beside_params_yaml_is_found(tmp_path, monkeypatch):
    """The sr3bench command's path holds the installed packages only: a module in the
    project folder (the stages' working folder) is found there, a missing one named."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # restored afterwards
    (tmp_path / "my_classifier.py").write_text("import torch\n\ndef build():\n    return torch.nn.Linear(2, 8)\n")
    assert isinstance(classifier.build("my_classifier:build"), torch.nn.Linear)
    with pytest.raises(ModuleNotFoundError, match=r"module absent_module not found .* put absent_module\.py there"):
        classifier.build("absent_module:build")


def test_snakemake_tracks_a_resnet50_file_that_appears_in_the_torch_hub_cache(tmp_path, monkeypatch):
    """After an offline run, the file placed where torchvision keeps it changes the classify
    rules' tracked values, so a plain `snakemake` re-runs them (DVC: the result says how)."""
    from pipeline import rule_settings
    from pipeline.stage_table import BY_NAME

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert rule_settings.torch_hub_checkpoints() == Path(torch.hub.get_dir()) / "checkpoints"
    assert classifier.RESNET50_URL.endswith("/" + rule_settings.RESNET50_FILE)
    params = classify_params(tmp_path, tmp_path / "unused.pth")
    params["presets"]["demo"]["classify"] = {"images": SIX}  # resnet50, weights.resnet50 null
    resolved = config.resolve(params)
    tracked = {name: rule_settings.tracked_values(resolved, BY_NAME[name]) for name in rule_settings.CLASSIFY_STAGES}
    wildcards = {"preset": "demo", "method": "bicubic"}
    before = {name: values(wildcards) for name, values in tracked.items()}
    assert all(v[rule_settings.DOWNLOADED_RESNET50] is None for v in before.values())
    (tmp_path / "torch/hub/checkpoints").mkdir(parents=True)
    (tmp_path / "torch/hub/checkpoints" / rule_settings.RESNET50_FILE).write_bytes(b"weights")
    after = {name: values(wildcards) for name, values in tracked.items()}
    assert all("(7 bytes)" in v[rule_settings.DOWNLOADED_RESNET50] for v in after.values())
    resolved["weights"]["resnet50"] = "/elsewhere/resnet50-0676ba61.pth"  # a file of the params: tracked as such
    assert (
        rule_settings.tracked_values(resolved, BY_NAME["classify"])(wildcards)[rule_settings.DOWNLOADED_RESNET50]
        is None
    )


def test_offline_without_weights_the_result_says_unavailable_and_how_to_provide_them(synthetic, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(classifier, "RESNET50_URL", f"http://127.0.0.1:{closed_port()}/resnet50-0676ba61.pth")
    root, weights = synthetic
    params = classify_params(root, weights)
    params["presets"]["demo"]["classify"] = {"images": SIX}  # resnet50, weights.resnet50 null
    run_stages(params, "bicubic")
    result = json.loads(layout.classify_result_file("demo", "bicubic").read_text())
    assert result["top1_error"] is None and "weights.resnet50" in result["unavailable"]
    assert "dvc repro --force --single-item" in result["unavailable"]  # DVC cannot see the torch hub cache
    assert not layout.classify_cache_dir("demo", "bicubic").exists()  # nothing was super-resolved


def test_the_report_sets_the_errors_beside_table_3_and_checks_its_orderings(tmp_path):
    def result(row, top1, top5, unavailable=None):
        path = tmp_path / f"{row}.json"
        record = {"row": row, "images": 1000, "top1_error": top1, "top5_error": top5, "unavailable": unavailable}
        path.write_text(json.dumps(record))
        return path

    files = {
        "baseline": result("baseline", 0.25, 0.08),
        "bicubic": result("bicubic", 0.50, 0.30),
        "regression": result("regression", 0.30, 0.15),
        "sr3": result("sr3", 0.35, 0.12),  # top-1 above regression's: the paper's ordering fails here
    }
    page = classification_section(files, REPO / "reports" / "paper", {"sr3": "SR3", "regression": "Regression"})
    assert "<td>SR3</td><td>0.350</td><td>0.317</td><td>0.120</td><td>0.120</td>" in page
    assert "<td>RCAN (paper only)</td>" in page
    table = classification_table(files, REPO / "reports" / "paper", {"sr3": "SR3", "regression": "Regression"})
    assert list(table["row"])[:4] == ["baseline", "bicubic", "regression", "sr3"]  # the paper's others after
    sr3 = table.set_index("row").loc["sr3"]
    assert (sr3["top1_error"], sr3["paper_top1_error"], sr3["images"]) == (0.35, 0.317, 1000)
    assert table.set_index("row").loc["RCAN"][["top1_error", "paper_top1_error"]].tolist()[1] == 0.393
    assert pd.isna(table.set_index("row").loc["RCAN"]["top1_error"])
    assert "top-1 error: SR3 below Regression in the paper; here: <b>does not hold</b>" in page
    assert "top-5 error: SR3 below Regression in the paper; here: <b>holds</b>" in page
    assert "top-1 error: Baseline (original images) below SR3 in the paper; here: <b>holds</b>" in page
    assert "every method above the baseline (original images), as in the paper; here: <b>holds</b>" in page
    offline = classification_section(
        {"baseline": result("baseline", None, None, "weights unavailable: set weights.resnet50")},
        REPO / "reports" / "paper",
        {},
    )
    assert "classifier's weights are unavailable" in offline and "set weights.resnet50" in offline
    assert classification_section({}, REPO / "reports" / "paper", {}) == ""


def test_imagenet64_256_plans_the_classify_jobs_for_both_engines(tmp_path):
    params = committed_params()
    params["preset"] = "imagenet64_256"
    stages = yaml.safe_load(render(config.resolve(params)))["stages"]
    for method in ("bicubic", "regression", "sr3"):
        stage = stages[f"classify_{method}"]
        assert stage["cmd"].startswith(f"sr3bench classify --preset ${{preset}} --method {method} ")
        assert stage["outs"] == [f"results/${{preset}}/classify/{method}.json"]
    assert "models/${preset}/sr3/model.pt" in stages["classify_sr3"]["deps"]
    assert stages["classify_baseline"]["outs"] == ["results/${preset}/classify/original-images.json"]
    assert "downloads/imagenet_devkit" in stages["prepare_classify"]["deps"]
    assert stages["prepare_classify"]["outs"] == ["data/${preset}.classify"]
    assert "data/${preset}.classify" in stages["classify_baseline"]["deps"] + stages["classify_sr3"]["deps"]
    # the splits' stage depends on no classify code: editing it re-runs no preset's prepare
    assert not [dep for dep in stages["prepare"]["deps"] if "classify" in dep or "devkit" in dep]
    assert "pipeline/classify_data.py" in stages["prepare_classify"]["deps"]
    assert "results/${preset}/classify/sr3.json" in stages["report"]["deps"]
    project = make_project(tmp_path / "project", committed_params())
    plan = run(
        [sys.executable, "-m", "snakemake", "--cores", "8", "--dry-run", "--config", "preset=imagenet64_256"], project
    )
    text = plan.stdout + plan.stderr
    for method in ("bicubic", "regression", "sr3"):
        assert f"results/imagenet64_256/classify/{method}.json" in text
    assert "results/imagenet64_256/classify/original-images.json" in text
    assert "downloads/imagenet_devkit" in text


def test_both_engines_run_the_classify_stages_to_the_same_result(synthetic, tmp_path):
    root, weights = synthetic
    params = classify_params(root, weights)
    targets = [str(layout.classify_result_file("demo", m)) for m in (layout.CLASSIFY_BASELINE, "bicubic")]
    snakemake_project = make_project(tmp_path / "snakemake", params)
    dvc = dvc_project(tmp_path / "dvc", params)
    for project in (snakemake_project, dvc):
        shutil.copy(REPO / "tests" / "classify_fixtures.py", project)  # the tiny classifier, importable by the jobs
    run([sys.executable, "-m", "snakemake", "--cores", "2", *targets], snakemake_project)
    run([sys.executable, "-m", "dvc", "repro", "classify_bicubic", "classify_baseline"], dvc)
    for target in targets:
        from_snakemake, from_dvc = (project / target for project in (snakemake_project, dvc))
        assert from_snakemake.read_bytes() == from_dvc.read_bytes(), target
    result = json.loads((dvc / targets[1]).read_text())
    assert {k: result[k] for k in BICUBIC} == pytest.approx(BICUBIC)


def test_the_chain_sizes_of_the_classify_set():
    from pipeline.classify_data import classify_input, standard_crop

    wide = torch.arange(300 * 451 * 3).reshape(300, 451, 3).remainder(256).to(torch.uint8).numpy()
    original = standard_crop(wide)  # 300x451 -> 256x384 (int(256 * 451 / 300) = 384) -> 224x224 at (16, 80)
    assert original.shape == (224, 224, 3) and classify_input(original).shape == (64, 64, 3)
    exact = wide[:256, :256]  # already 256 on its shorter side: cropped only, at round(16) = 16
    assert (standard_crop(exact) == exact[16:240, 16:240]).all()
