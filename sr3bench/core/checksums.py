"""A file's sha256, read in blocks (dataset listings, manifests, outside outputs, checkpoints),
and the digest of a prepared split from its manifest rows."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_sha256(rows: list[dict]) -> str:
    """sha256 over a split's image names and each HR and LR image's sha256 (prepare's
    manifest rows), in name order, hashed row by row (ImageNet's 1.28M training rows make
    no large string): the same prepared images give the same digest."""
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda row: row["name"]):
        digest.update(f"{row['name']}:{row.get('hr_sha256')}:{row.get('lr_sha256')};".encode())
    return digest.hexdigest()
