"""Which files of a folder are images: by suffix, regular files only (imports no torch,
so the Snakefile can list a dataset folder too)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def named_like_an_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def image_files(paths) -> list[Path]:
    """The regular files among ``paths`` with an image suffix, sorted; a folder named like
    an image (``x.png/``) and macOS's ``._x.png`` metadata are skipped with a warning, not
    read as broken images. A broken link named like an image is refused: skipping it would
    silently shrink a set."""
    found = []
    for path in paths:
        if not named_like_an_image(path):
            continue
        if path.name.startswith("._"):  # macOS's AppleDouble metadata beside a copied image, not an image
            log.warning("%s is macOS metadata (AppleDouble), not an image: skipped", path)
            continue
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            log.warning("%s is a folder named like an image: skipped", path)
        elif path.is_symlink():
            raise FileNotFoundError(
                f"{path} is a link to {path.readlink()}, which does not exist: restore the image it "
                "points to, or remove the link"
            )
    return sorted(found)


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder, sorted by name."""
    return image_files(Path(folder).iterdir())


def list_images_recursive(folder: Path) -> list[Path]:
    """Image files of a folder and its sub-folders (ImageNet's class folders), sorted by path."""
    return image_files(Path(folder).rglob("*"))
