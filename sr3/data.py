"""Training pairs read from disk by index, and the random patches drawn from them."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import torch

from sr3bench.core.images import to_tensor, upsampled_tensor
from sr3bench.core.shards import ShardReader


class PairDataset:
    """The (bicubic-upsampled LR, HR) pairs of a prepared training split, stored as shards
    (``sr3bench.core.shards``) and read by index when first asked for, so that a split need not
    fit in memory. Items are float32 (3, H, W) tensors in [-1, 1]; all HR images of a
    training split have one size.

    Decoded pairs are kept until they fill ``cache_bytes`` (later ones are read from disk
    at every use): a small split is decoded once, a large one streams. Reading a batch of
    the demo's pairs from disk takes about 13 ms, 5% of a CPU training step
    (benchmarks/training_data.py)."""

    def __init__(self, shard_folder: Path, scale: int, cache_bytes: int = 1 << 30):
        self.reader, self.scale = ShardReader(shard_folder), scale
        self.cache, self.cache_room = {}, cache_bytes
        if not len(self.reader):
            raise FileNotFoundError(f"no training pairs in {shard_folder}; run the prepare stage first")
        self.image_size = self.reader[0][0].shape[:2]

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index in self.cache:
            return self.cache[index]
        pair = self.read(index)
        size = sum(t.numel() * t.element_size() for t in pair)
        if size <= self.cache_room:
            self.cache[index], self.cache_room = pair, self.cache_room - size
        return pair

    def read(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pair ``index`` decoded from its shard."""
        hr, lr = self.reader[index]
        if hr.shape[:2] != self.image_size:
            raise ValueError(
                f"training pair {self.reader.name(index)!r} is {hr.shape[:2]}, "
                f"the split's images are {self.image_size}; re-run prepare"
            )
        return upsampled_tensor([lr], self.scale)[0], to_tensor([hr])[0]


class PatchSampler:
    """Random aligned patches with random horizontal flips, drawn from a seeded generator.

    ``dataset[i]`` gives pair i as (upsampled LR, HR) tensors; a list of pairs or a
    ``PairDataset`` both work. The generator's state is the position in the data order:
    saving and restoring it (``state_dict``) makes a resumed run draw the same batches as
    an uninterrupted one. Every call draws the whole batch's plan (images, windows,
    flips); ``rows`` reads only some of its rows (a data-parallel rank's share), so each
    rank keeps the same generator and reads only its own images.
    """

    def __init__(self, dataset, patch_size: int, batch_size: int, seed: int):
        self.dataset = dataset
        self.patch_size, self.batch_size = patch_size, batch_size
        self.height, self.width = dataset[0][1].shape[-2:]
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, rows: slice | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.patch_size
        index = torch.randint(0, len(self.dataset), (self.batch_size,), generator=self.generator)
        tops = torch.randint(0, self.height - size + 1, (self.batch_size,), generator=self.generator)
        lefts = torch.randint(0, self.width - size + 1, (self.batch_size,), generator=self.generator)
        flips = torch.rand(self.batch_size, generator=self.generator) < 0.5
        rows = rows or slice(None)
        lr_patches, hr_patches = [], []
        for i, top, left, flip in zip(
            index[rows].tolist(), tops[rows].tolist(), lefts[rows].tolist(), flips[rows].tolist()
        ):
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


class Prefetcher:
    """Batches of ``sampler(rows)`` drawn ``depth`` ahead by a background thread (PNG
    decoding releases the GIL), each with the sampler state after it: a checkpoint saves
    the state after the last batch *used*, so a resume draws what an uninterrupted run
    would have, however far ahead the thread was. ``pin`` puts batches in pinned memory
    for non-blocking copies to a GPU. Use as a context manager: leaving stops the thread."""

    def __init__(self, sampler: PatchSampler, rows: slice, depth: int, pin: bool = False):
        self.sampler, self.rows, self.pin = sampler, rows, pin
        self.batches: queue.Queue = queue.Queue(maxsize=max(depth, 1))
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._fill, name="prefetch", daemon=True)

    def _fill(self) -> None:
        try:
            while not self.stopping.is_set():
                batch = self.sampler(self.rows)
                if self.pin:
                    batch = tuple(t.pin_memory() for t in batch)
                self._put((batch, self.sampler.state_dict()))
        except Exception as error:  # handed to the training thread, which raises it
            self._put((error, None))

    def _put(self, item) -> None:
        while not self.stopping.is_set():
            try:
                self.batches.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __enter__(self) -> "Prefetcher":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join()

    def next(self) -> tuple[tuple[torch.Tensor, torch.Tensor], dict]:
        batch, state = self.batches.get()
        if isinstance(batch, Exception):
            raise batch
        return batch, state
