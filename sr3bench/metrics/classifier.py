"""The ImageNet classifier of the paper's Table 3 and its weights: torchvision's ResNet-50
with the ``IMAGENET1K_V1`` weights ("a pre-trained ResNet-50" in 2021, 76.13% top-1 on
the validation set by torchvision's documentation), or another architecture named
``module:function`` (a function returning the ``torch.nn.Module``; the tests' small one).

Weights come from a local file (``weights.resnet50`` in params.yaml for ResNet-50,
``classify.weights`` for another architecture) or, for ResNet-50, from torchvision's
download into the torch hub cache (where torchvision keeps it). Either way the file's
SHA-256 must begin with the prefix its published name carries (``resnet50-0676ba61.pth``:
``0676ba61``), the convention of ``torch.hub``'s ``check_hash`` (torch.hub documentation,
``load_state_dict_from_url``). A download that cannot be made raises
``WeightsUnavailableError`` naming the setting that provides the file; a file whose hash
differs is refused, naming it.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from sr3bench.core.checksums import file_sha256
from sr3bench.metrics.weights import (
    DOWNLOAD_ERRORS,
    WeightsUnavailableError,
    hash_prefix_in_name,
    state_dict_problems,
)

RESNET50 = "resnet50"
RESNET50_URL = "https://download.pytorch.org/models/resnet50-0676ba61.pth"  # torchvision ResNet50_Weights.IMAGENET1K_V1
RESNET50_SETTING = "weights.resnet50"
OTHER_SETTING = "classify.weights"


class WeightsMismatchError(ValueError):
    """A classifier weights file whose bytes are not the published ones."""


@dataclass(frozen=True)
class ClassifierWeights:
    """A checked weights file, and where it came from."""

    path: Path
    sha256: str
    source: str


def check_file(path: Path, prefix: str, where: str, fix: str) -> str:
    """The file's SHA-256, which must begin with ``prefix``; ``fix`` says what to do if not."""
    digest = file_sha256(path)
    if not digest.startswith(prefix):
        raise WeightsMismatchError(
            f"classifier weights {path} ({where}) have SHA-256 {digest[:16]}..., not the expected {prefix}...: {fix}"
        )
    return digest


PUBLISHED_FIX = "the file is damaged or other weights; replace it with torchvision's file"
DOWNLOADED_FIX = "the file is damaged or other weights; delete it and it is fetched again"
OWN_FIX = (
    "the file is damaged, or its name does not carry its own hash: name it <name>-<first 8 or more hex digits "
    "of its SHA-256>.<ext> (sha256sum prints them)"
)


def download(url: str, folder: Path) -> Path:
    """``url`` into ``folder`` unless there already, its hash checked while it downloads
    (``torch.hub.download_url_to_file``'s ``hash_prefix``)."""
    target = Path(folder) / url.rsplit("/", 1)[-1]
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(target), hash_prefix=hash_prefix_in_name(target.name), progress=False)
    except RuntimeError as error:  # torch.hub: "invalid hash value"
        raise WeightsMismatchError(f"{url}: {error}; the download was discarded") from error
    except DOWNLOAD_ERRORS as error:
        raise WeightsUnavailableError(
            f"the ResNet-50 weights could not be downloaded from {url} ({error}). Download "
            f"{target.name} elsewhere and set {RESNET50_SETTING} in params.yaml to its path, or put it in "
            f"{target.parent} (the torch hub cache)"
        ) from error
    return target


def resolve_weights(classifier: str, local: str | None, url: str | None = None) -> ClassifierWeights:
    """The classifier's weights file, checked: ``local`` (its setting's path) or, for
    ResNet-50, torchvision's file (``url``, default RESNET50_URL) from the torch hub
    cache, downloaded there if absent."""
    url = url or RESNET50_URL
    setting = RESNET50_SETTING if classifier == RESNET50 else OTHER_SETTING
    if local is not None:
        path = Path(local).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{setting}: {path} does not exist; point it at the classifier's weights file")
        published = classifier == RESNET50
        prefix = hash_prefix_in_name(Path(url).name) if published else hash_prefix_in_name(path.name)
        if prefix is None:
            raise ValueError(
                f"{setting}: {path.name} has no SHA-256 prefix in its name; name it <name>-<first 8 or more hex "
                "digits of its SHA-256>.<ext> (torch.hub's convention), so that it is checked"
            )
        digest = check_file(path, prefix, setting, PUBLISHED_FIX if published else OWN_FIX)
        return ClassifierWeights(path, digest, f"local file ({setting})")
    if classifier != RESNET50:
        raise ValueError(f"{OTHER_SETTING}: the classifier {classifier} needs its weights file")
    path = download(url, Path(torch.hub.get_dir()) / "checkpoints")  # layout: another package's folder
    return ClassifierWeights(
        path, check_file(path, hash_prefix_in_name(path.name), url, DOWNLOADED_FIX), f"torchvision download ({url})"
    )


def build(classifier: str) -> torch.nn.Module:
    """The architecture, without weights: torchvision's ResNet-50, or ``module:function``'s."""
    if classifier == RESNET50:
        import torchvision

        return torchvision.models.resnet50(weights=None)
    module, _, function = classifier.partition(":")
    return getattr(import_from_project(module), function)()


def import_from_project(module: str):
    """``module`` from the installed packages or, as a module of one's own beside
    params.yaml, from the project folder (the stages' working folder), which the
    ``sr3bench`` command does not have on its path."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module.split(".")[0]:  # the module was found; something it imports was not
            raise
    try:
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module.split(".")[0]:
            raise
        raise ModuleNotFoundError(
            f"{OTHER_SETTING.split('.')[0]}.classifier: module {module} not found in the installed packages or in "
            f"the project folder {Path.cwd()}; put {module.replace('.', '/')}.py there, or on PYTHONPATH"
        ) from error


class ClassifierWeightsError(ValueError):
    """A weights file with the right hash that is not a state dict of the classifier."""


def load_classifier(classifier: str, weights: ClassifierWeights, device: torch.device) -> torch.nn.Module:
    """The architecture with its weights (a state dict, loaded strictly), in eval mode; a
    file that is not its state dict is named with what is wrong."""
    model = build(classifier)
    setting = RESNET50_SETTING if classifier == RESNET50 else OTHER_SETTING
    fix = f"save the network's state_dict() alone (torch.save(model.state_dict(), path)) and point {setting} at it"
    try:
        state = torch.load(weights.path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, not a torch file, a pickled module: all unreadable as weights
        reason = str(error).splitlines()[0][:200]
        raise ClassifierWeightsError(
            f"classifier weights {weights.path} ({setting}) cannot be read as a state dict "
            f"({type(error).__name__}: {reason}): {fix}"
        ) from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        held = type(state).__name__ if not isinstance(state, dict) else f"a dict with keys {', '.join(list(state)[:4])}"
        raise ClassifierWeightsError(
            f"classifier weights {weights.path} ({setting}) hold {held}, not a state dict of tensors: {fix}"
        )
    problems = state_dict_problems({key: value.shape for key, value in model.state_dict().items()}, state)
    if problems:
        raise ClassifierWeightsError(
            f"classifier weights {weights.path} ({setting}) are not a state dict of "
            f"{describe_architecture(classifier)}: {'; '.join(problems)}"
        )
    model.load_state_dict(state, strict=True)
    return model.eval().to(device)


def describe_architecture(classifier: str) -> str:
    return "torchvision's ResNet-50" if classifier == RESNET50 else classifier


def describe(classifier: str, weights: ClassifierWeights) -> dict:
    """The protocol record of a classifier and its weights."""
    name = "torchvision ResNet-50, IMAGENET1K_V1 weights" if classifier == RESNET50 else classifier
    return {"classifier": name, "weights_file": weights.path.name, "sha256": weights.sha256, "source": weights.source}
