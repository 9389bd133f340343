"""Top-1 and top-5 classification error of images (the paper's Table 3): each image
resized to the classifier's 224x224 input, normalised as torchvision's ImageNet models
expect (RGB in [0, 1], mean 0.485, 0.456, 0.406, std 0.229, 0.224, 0.225: torchvision's
documentation of its pre-trained weights), classified in batches."""

from __future__ import annotations

import numpy as np
import torch

from sr3bench.core.resize import imresize

CLASSIFIER_SIZE = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
TOP = 5
NORMALISATION = f"RGB in [0, 1], normalised by the ImageNet mean {MEAN} and std {STD}"
RESIZE = (
    f"resized to {CLASSIFIER_SIZE}x{CLASSIFIER_SIZE} by MATLAB-compatible bicubic (antialiased: "
    "sr3bench/core/resize.py)"
)


def to_classifier_size(image: np.ndarray) -> np.ndarray:
    """A uint8 image as the classifier takes it (the SR output, 256 -> 224)."""
    if image.shape[:2] == (CLASSIFIER_SIZE, CLASSIFIER_SIZE):
        return image
    return imresize(image, (CLASSIFIER_SIZE, CLASSIFIER_SIZE))


def normalised(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 (H, W, 3) images -> float32 (N, 3, H, W), normalised as above."""
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    return (batch - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


@torch.no_grad()
def top_classes(
    model: torch.nn.Module, images: list[np.ndarray], device: torch.device, classes: int
) -> list[list[int]]:
    """The ``TOP`` highest-scoring classes of each image, best first; the classifier must
    score the ``classes`` classes the labels number."""
    logits = model(normalised([to_classifier_size(image) for image in images]).to(device))
    if logits.shape[1] != classes:
        raise ValueError(
            f"the classifier scores {logits.shape[1]} classes, the labels (the devkit) number {classes}: "
            "they are not of one label set"
        )
    if logits.shape[1] < TOP:
        raise ValueError(f"the classifier scores {logits.shape[1]} classes; top-{TOP} error needs at least {TOP}")
    return logits.float().topk(TOP, dim=1).indices.cpu().tolist()


def errors(labels: list[int], predictions: list[list[int]]) -> dict:
    """Top-1 and top-5 error: the share of images whose label is not the best class, and
    not among the five best."""
    if len(labels) != len(predictions) or not labels:
        raise ValueError(f"{len(labels)} labels for {len(predictions)} predictions")
    top1 = sum(label != best[0] for label, best in zip(labels, predictions)) / len(labels)
    top5 = sum(label not in best[:TOP] for label, best in zip(labels, predictions)) / len(labels)
    return {"top1_error": top1, "top5_error": top5}
