"""Training pairs in memory and the random patches drawn from them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sr3.images import list_images, read_image, to_tensor
from sr3.resize import upsample


def load_pairs(split_folder: Path, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(bicubic-upsampled LR, HR) tensors in [-1, 1] for every pair of a prepared split."""
    hr_paths = list_images(Path(split_folder) / "hr")
    if not hr_paths:
        raise FileNotFoundError(f"no HR images in {split_folder}/hr; run the prepare stage first")
    hr = [read_image(p) for p in hr_paths]
    upsampled = [upsample(read_image(Path(split_folder) / "lr" / p.name), scale) for p in hr_paths]
    return to_tensor(upsampled), to_tensor(hr)


class PatchSampler:
    """Random aligned patches with random horizontal flips, drawn from a seeded generator.

    The generator's state is the position in the data order: saving and restoring it
    (``state_dict``) makes a resumed run draw the same batches as an uninterrupted one.
    """

    def __init__(self, upsampled_lr: torch.Tensor, hr: torch.Tensor, patch_size: int, batch_size: int, seed: int):
        self.upsampled_lr, self.hr = upsampled_lr, hr
        self.patch_size, self.batch_size = patch_size, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        count, _, height, width = self.hr.shape
        size = self.patch_size
        index = torch.randint(0, count, (self.batch_size,), generator=self.generator)
        tops = torch.randint(0, height - size + 1, (self.batch_size,), generator=self.generator)
        lefts = torch.randint(0, width - size + 1, (self.batch_size,), generator=self.generator)
        flips = torch.rand(self.batch_size, generator=self.generator) < 0.5
        lr_patches, hr_patches = [], []
        for i, top, left, flip in zip(index.tolist(), tops.tolist(), lefts.tolist(), flips.tolist()):
            window = (slice(None), slice(top, top + size), slice(left, left + size))
            lr_patch, hr_patch = self.upsampled_lr[i][window], self.hr[i][window]
            if flip:
                lr_patch, hr_patch = lr_patch.flip(-1), hr_patch.flip(-1)
            lr_patches.append(lr_patch)
            hr_patches.append(hr_patch)
        return torch.stack(lr_patches), torch.stack(hr_patches)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def numpy_seed(*parts: int) -> int:
    """A 63-bit seed derived from several integers (preset seed, image index, ...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)
