"""Training pairs read from disk by index, and the random patches drawn from them."""
from __future__ import annotations

from pathlib import Path

import torch

from core.images import list_images, read_image, to_tensor, upsampled_tensor


class PairDataset:
    """The (bicubic-upsampled LR, HR) pairs of a prepared split (same-named PNGs in an HR
    and an LR folder), each read from disk when first asked for, so that a split need not
    fit in memory. Items are float32 (3, H, W) tensors in [-1, 1]; all HR images of a
    training split have one size.

    Decoded pairs are kept until they fill ``cache_bytes`` (later ones are read from disk
    at every use): a small split is decoded once, a large one streams. Reading a batch of
    the demo's pairs from disk takes about 13 ms, 5% of a CPU training step
    (benchmarks/training_data.py)."""

    def __init__(self, hr_folder: Path, lr_folder: Path, scale: int, cache_bytes: int = 1 << 30):
        self.hr_folder, self.lr_folder, self.scale = Path(hr_folder), Path(lr_folder), scale
        self.cache, self.cache_room = {}, cache_bytes
        self.names = [p.name for p in list_images(self.hr_folder)] if self.hr_folder.is_dir() else []
        if not self.names:
            raise FileNotFoundError(f"no HR images in {self.hr_folder}; run the prepare stage first")
        self.image_size = read_image(self.hr_folder / self.names[0]).shape[:2]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index in self.cache:
            return self.cache[index]
        pair = self.read(index)
        size = sum(t.numel() * t.element_size() for t in pair)
        if size <= self.cache_room:
            self.cache[index], self.cache_room = pair, self.cache_room - size
        return pair

    def read(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pair ``index`` decoded from its files."""
        name = self.names[index]
        hr = read_image(self.hr_folder / name)
        if hr.shape[:2] != self.image_size:
            raise ValueError(f"{self.hr_folder / name} is {hr.shape[:2]}, the split's images are {self.image_size}; re-run prepare")
        return upsampled_tensor([read_image(self.lr_folder / name)], self.scale)[0], to_tensor([hr])[0]


class PatchSampler:
    """Random aligned patches with random horizontal flips, drawn from a seeded generator.

    ``dataset[i]`` gives pair i as (upsampled LR, HR) tensors; a list of pairs or a
    ``PairDataset`` both work. The generator's state is the position in the data order:
    saving and restoring it (``state_dict``) makes a resumed run draw the same batches as
    an uninterrupted one.
    """

    def __init__(self, dataset, patch_size: int, batch_size: int, seed: int):
        self.dataset = dataset
        self.patch_size, self.batch_size = patch_size, batch_size
        self.height, self.width = dataset[0][1].shape[-2:]
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.patch_size
        index = torch.randint(0, len(self.dataset), (self.batch_size,), generator=self.generator)
        tops = torch.randint(0, self.height - size + 1, (self.batch_size,), generator=self.generator)
        lefts = torch.randint(0, self.width - size + 1, (self.batch_size,), generator=self.generator)
        flips = torch.rand(self.batch_size, generator=self.generator) < 0.5
        lr_patches, hr_patches = [], []
        for i, top, left, flip in zip(index.tolist(), tops.tolist(), lefts.tolist(), flips.tolist()):
            upsampled_lr, hr = self.dataset[i]
            window = (slice(None), slice(top, top + size), slice(left, left + size))
            lr_patch, hr_patch = upsampled_lr[window], hr[window]
            if flip:
                lr_patch, hr_patch = lr_patch.flip(-1), hr_patch.flip(-1)
            lr_patches.append(lr_patch)
            hr_patches.append(hr_patch)
        return torch.stack(lr_patches), torch.stack(hr_patches)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
