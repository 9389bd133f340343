"""A split of image pairs stored as shards: uncompressed tar files of PNGs plus an
``index.json`` that gives every item's byte range and sha256 in its shard.

A reader seeks to an item and decodes it, so a split of 1.28M ImageNet pairs streams by
index without being loaded into memory, and 70k FFHQ pairs live in 18 files instead of
140k. Each read checks the item's sha256: a damaged item is an error naming the item and
the shard, never silently replaced by another image. The shards are ordinary tar files
(``tar tf shard-00000.tar`` lists them), the index ordinary JSON.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from sr3bench.core.atomic import atomic_path
from sr3bench.core.stage_files import read_json

INDEX_NAME = "index.json"
KINDS = ("hr", "lr")


class DamagedShardError(ValueError):
    """An item's bytes differ from the sha256 its index recorded, or its shard is missing."""


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


class ShardWriter:
    """Adds (name, HR, LR) pairs in order, ``items_per_shard`` to a shard; ``close``
    writes the index and returns its items. Each shard is written under a temporary
    name and renamed when complete."""

    def __init__(self, folder: Path, items_per_shard: int):
        self.folder, self.items_per_shard = Path(folder), items_per_shard
        self.folder.mkdir(parents=True, exist_ok=True)
        self.items, self.pending = [], []

    def add(self, name: str, hr: np.ndarray, lr: np.ndarray) -> dict:
        item = {"name": name, **{kind: png_bytes(image) for kind, image in zip(KINDS, (hr, lr))}}
        self.pending.append(item)
        if len(self.pending) == self.items_per_shard:
            self._write_shard()
        return {"name": name, **{f"{kind}_sha256": hashlib.sha256(item[kind]).hexdigest() for kind in KINDS}}

    def _write_shard(self) -> None:
        shard = f"shard-{len(self.items) // self.items_per_shard:05d}.tar"
        with atomic_path(self.folder / shard) as temporary:
            with tarfile.open(temporary, "w", format=tarfile.PAX_FORMAT) as tar:
                for item in self.pending:
                    for kind in KINDS:
                        info = tarfile.TarInfo(f"{item['name']}.{kind}.png")
                        info.size = len(item[kind])
                        tar.addfile(info, io.BytesIO(item[kind]))
            with tarfile.open(temporary) as tar:  # where each member's bytes landed
                ranges = {m.name: (m.offset_data, m.size) for m in tar.getmembers()}
        for item in self.pending:
            record = {"name": item["name"], "shard": shard}
            for kind in KINDS:
                offset, size = ranges[f"{item['name']}.{kind}.png"]
                record[kind] = {"offset": offset, "size": size, "sha256": hashlib.sha256(item[kind]).hexdigest()}
            self.items.append(record)
        self.pending = []

    def close(self) -> list[dict]:
        if self.pending:
            self._write_shard()
        with atomic_path(self.folder / INDEX_NAME) as temporary:
            temporary.write_text(json.dumps({"format": "sr3bench-shards/1", "items": self.items}))
        return self.items


class ShardReader:
    """Item ``i`` of a shard folder as (HR, LR) uint8 arrays, read and checked on demand."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        index = self.folder / INDEX_NAME
        again = "the split has not been prepared (or was damaged): run the prepare stage again"
        self.items = read_json(index, again, ("items",))["items"]
        self.handles: dict[str, object] = {}

    def __len__(self) -> int:
        return len(self.items)

    def name(self, index: int) -> str:
        return self.items[index]["name"]

    def _bytes(self, item: dict, kind: str) -> bytes:
        shard = self.folder / item["shard"]
        if item["shard"] not in self.handles:
            if not shard.exists():
                raise DamagedShardError(
                    f"{shard} (listed in {self.folder / INDEX_NAME}) is missing: re-run the prepare stage"
                )
            self.handles[item["shard"]] = open(shard, "rb")
        handle = self.handles[item["shard"]]
        handle.seek(item[kind]["offset"])
        data = handle.read(item[kind]["size"])
        if hashlib.sha256(data).hexdigest() != item[kind]["sha256"]:
            raise DamagedShardError(
                f"item {item['name']!r} ({kind}) in {shard} does not match the sha256 recorded in its index: "
                "the prepared data is damaged; re-run the prepare stage (snakemake --forcerun prepare)"
            )
        return data

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        item = self.items[index]
        return tuple(np.asarray(Image.open(io.BytesIO(self._bytes(item, kind))).convert("RGB")) for kind in KINDS)

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles = {}
