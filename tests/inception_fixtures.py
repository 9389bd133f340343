"""A synthetic original Inception file whose Inception Score is computed by hand (the
real file, 95 MB with its 1008-class head, is not here).

A full Inception state dict in torch-fidelity's layout whose logits are a known function
of the input. Every BasicConv2d is zero except the centre tap of one path (channels 0-2
from the first conv to the pooled 2048 features: each block's first branch), whose
BatchNorm is the identity; the first one adds 1 after its (x - 128) / 128. A
constant-colour image stays constant through every conv, pooling and resize, so its
pooled features are exactly (r, g, b) / 128, then 0, and with ``fc.weight`` = 4 on the
diagonal of the first three classes its unbiased logits are 4 (r, g, b) / 128 and 0 for
the other 1005 classes. ``fc.bias`` is random: IS is computed on the logits without it
(torch-fidelity's ``logits_unbiased``). Each file is named with its true SHA-256 prefix,
so the check passes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sr3bench.metrics import weights as W

# The path of channels 0-2: the first branch of each block (its first conv, for a chain).
ROUTE = (
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "Mixed_5b.branch1x1",
    "Mixed_5c.branch1x1",
    "Mixed_5d.branch1x1",
    "Mixed_6a.branch3x3",
    "Mixed_6b.branch1x1",
    "Mixed_6c.branch1x1",
    "Mixed_6d.branch1x1",
    "Mixed_6e.branch1x1",
    "Mixed_7a.branch3x3_1",
    "Mixed_7a.branch3x3_2",
    "Mixed_7b.branch1x1",
    "Mixed_7c.branch1x1",
)
LOGIT_GAIN = 4.0
# Six SR colours (3 splits of 2 images) and two HR ones (FID and KID need 2 per set).
SR_COLOURS = [(10, 200, 30), (255, 0, 128), (0, 0, 0), (77, 77, 77), (250, 250, 5), (40, 90, 230)]
HR_COLOURS = [(128, 128, 128), (200, 20, 20)]


def synthetic_inception() -> dict:
    """A full Inception state dict in torch-fidelity's layout, head included (above)."""
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d

    state = {}
    for name, module in W._inception_skeleton().named_modules():
        if isinstance(module, BasicConv2d):
            weight = torch.zeros_like(module.conv.weight)
            if name in ROUTE:
                height, width = weight.shape[2:]
                for channel in range(3):
                    weight[channel, channel, height // 2, width // 2] = 1.0
            n = module.bn.num_features
            state[f"{name}.conv.weight"] = weight
            state[f"{name}.bn.weight"] = torch.ones(n)
            state[f"{name}.bn.bias"] = torch.zeros(n)
            state[f"{name}.bn.running_mean"] = torch.zeros(n)
            state[f"{name}.bn.running_var"] = torch.full((n,), 1 - module.bn.eps)  # var + eps = 1
            state[f"{name}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    state["Conv2d_1a_3x3.bn.bias"][:3] = 1.0  # (x - 128) / 128 + 1 >= 0 passes the ReLUs
    state["fc.weight"] = torch.zeros(1008, 2048)
    for channel in range(3):
        state["fc.weight"][channel, channel] = LOGIT_GAIN
    state["fc.bias"] = torch.randn(1008, generator=torch.Generator().manual_seed(0)) * 3
    return state


def save_named(state: dict, folder: Path, start: str) -> Path:
    """``state`` saved as ``<start><sha256[:8]>.pth``, as the publishers name their files."""
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / "unnamed.pth"
    torch.save(state, temporary)
    digest = hashlib.sha256(temporary.read_bytes()).hexdigest()
    return temporary.rename(folder / f"{start}{digest[:8]}.pth")


def write_colours(folder: Path, colours, size: int = 24) -> Path:
    folder.mkdir(parents=True)
    for index, colour in enumerate(colours):
        Image.fromarray(np.full((size, size, 3), colour, dtype=np.uint8)).save(folder / f"{index:02d}.png")
    return folder


def inception_score_by_hand(logits: np.ndarray, splits: int, seed: int = 2020) -> tuple[float, float]:
    """Salimans et al. (2016): per split exp(mean over its images of KL(p(y|x) || p(y))),
    p(y) the split's mean; then mean and (population) std over the splits. The images are
    in torch-fidelity's order (sorted file names) shuffled by its default samples_shuffle
    with rng_seed 2020, and split at i * N // splits."""
    n = len(logits)
    shifted = logits[np.random.RandomState(seed).permutation(n)]
    shifted = shifted - shifted.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))  # log softmax
    p = np.exp(log_p)
    scores = []
    for i in range(splits):
        chunk, log_chunk = p[i * n // splits : (i + 1) * n // splits], log_p[i * n // splits : (i + 1) * n // splits]
        marginal = chunk.mean(0, keepdims=True)
        kl = (chunk * (log_chunk - np.log(marginal))).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def unbiased_logits(colours) -> np.ndarray:
    """The synthetic network's logits without the bias: LOGIT_GAIN * colour / 128, then 0."""
    logits = np.zeros((len(colours), 1008))
    logits[:, :3] = LOGIT_GAIN * np.asarray(colours, dtype=np.float64) / 128
    return logits
