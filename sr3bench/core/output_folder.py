"""A folder of super-resolved outputs, checked against the HR test images it is scored
with, before anything scores it (docs/outside-outputs.md):

- every test image has its output, named like it (``chelsea_0.png`` for ``chelsea_0.png``);
- each output has its HR image's size and is 8-bit RGB, or 8-bit grey where the HR image
  is grey (a grey test image stays grey where the protocol scores grey, docs/protocol.md);
- a folder of another scale or crop is recognised and said so (every output its HR
  image's size / k, or k times it; a border or centre crop of it; its HR image a crop of it);
- other files are listed (``CheckedFolder.extra``) and ignored.

Every problem found is in one ``OutputFolderError``, naming the files. Only the files'
headers are read for sizes and modes, and each output is decoded once, to find the broken.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from sr3bench.core.checksums import file_sha256
from sr3bench.core.image_check import UPRIGHT_HINT, turning_orientation
from sr3bench.core.image_files import list_images

SHOWN = 12  # names listed per problem, then "and N more"
# What is wrong with an image of this PIL mode (an 8-bit RGB output is "RGB").
MODES = {
    "RGBA": "an alpha channel",
    "LA": "grey with an alpha channel",
    "PA": "palette with an alpha channel",
    "P": "palette colours",
    "1": "1-bit",
    "I;16": "16-bit grey",
    "I;16B": "16-bit grey",
    "I;16L": "16-bit grey",
    "I": "32-bit integer grey",
    "F": "32-bit float grey",
    "CMYK": "CMYK colours",
}
DEEP_PNG = ("RGB;16B", "RGBA;16B", "LA;16B")  # PIL opens these 16-bit PNGs as 8-bit modes


class OutputFolderError(ValueError):
    """A folder of outputs cannot be scored as it is; the message names every file at fault."""


@dataclass(frozen=True)
class CheckedFolder:
    """A folder that passed: ``images`` maps each test image's name to its output file;
    ``extra`` names the folder's other entries, which are ignored."""

    folder: Path
    images: dict[str, Path]
    extra: list[str]


def listed(names: list[str], shown: int = SHOWN) -> str:
    """``a.png, b.png`` or, for many, the first ``shown`` and how many more."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def image_header(path: Path) -> tuple[tuple[int, int], str, str | None, int | None]:
    """(size, mode, the PNG decoder's raw mode, an EXIF orientation that turns it) from the
    file's header."""
    with Image.open(path) as image:
        raw = image.tile[0][3] if image.format == "PNG" and len(image.tile) == 1 else None
        return image.size, image.mode, raw, turning_orientation(image)


def mode_problem(mode: str, raw: str | None, hr_mode: str) -> str | None:
    """Why an output of this mode (and PNG raw mode) cannot be scored against an HR image of
    ``hr_mode``; the rule of the collect stage and of ``sr3bench score`` alike."""
    if raw in DEEP_PNG:
        return f"{mode}: 16-bit colour" if raw != "LA;16B" else f"{mode}: 16-bit grey with an alpha channel"
    if mode == "RGB" or (mode == "L" and hr_mode == "L"):
        return None
    if mode == "L":
        return "L: grey, and its HR image is colour"
    return f"{mode}: {MODES[mode]}" if mode in MODES else mode


def _decodes(path: Path) -> str | None:
    """None, or why the file cannot be decoded (truncated, corrupt)."""
    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return str(error)
    return None


def _cut_to_multiples(size: tuple[int, int], hr_size: tuple[int, int], scale: int | None) -> tuple[int, ...]:
    """The scales (``scale``, or where it is not known 2 to 8) that cut the HR size down to a
    multiple of them gives this size: an output of an LR image made from a cut HR image."""
    (w, h), (hr_w, hr_h) = size, hr_size
    scales = (scale,) if scale else range(2, 9)
    return tuple(k for k in scales if (w, h) == (hr_w - hr_w % k, hr_h - hr_h % k) != (hr_w, hr_h))


def _shape(size: tuple[int, int], hr_size: tuple[int, int], scale: int | None = None) -> tuple:
    """How an output's size relates to its HR image's: (kind, parameter)."""
    (w, h), (hr_w, hr_h) = size, hr_size
    if w < hr_w and h < hr_h and hr_w % w == 0 and hr_h % h == 0 and hr_w // w == hr_h // h:
        return "divided", hr_w // w
    if w > hr_w and h > hr_h and w % hr_w == 0 and h % hr_h == 0 and w // hr_w == h // hr_h:
        return "multiplied", w // hr_w
    multiples = _cut_to_multiples(size, hr_size, scale)
    if multiples:
        return "cut", multiples
    margin_w, margin_h = hr_w - w, hr_h - h
    if margin_w == margin_h and margin_w % 2 == 0:
        return ("border", margin_w // 2) if margin_w > 0 else ("uncropped", -margin_w // 2)
    return "other", None


def _scales(scales: tuple[int, ...]) -> str:
    return ", ".join(map(str, scales[:-1])) + " or " + str(scales[-1]) if len(scales) > 1 else str(scales[0])


def size_hint(size: tuple[int, int], hr_size: tuple[int, int], scale: int | None = None) -> str:
    """What one output's size suggests ("" when nothing): the reading of ``size_explanation``
    for a single image (``sr3bench score`` names each image with it)."""
    kind, value = _shape(size, hr_size, scale)
    if kind == "divided":
        if value == scale:
            return f"its LR image's size (HR / {value}): the LR input itself, or an output not enlarged?"
        return f"HR / {value}: " + (
            "the output of another scale?" if scale else "LR images, or the output of another scale?"
        )
    if kind == "multiplied":
        return f"{value} times the HR size: the output of another scale?"
    if kind == "cut":
        return f"the HR size cut down to a multiple of {_scales(value)}: crop the HR images the same way"
    if kind == "border":
        return f"{value} px smaller on each side: border-cropped? give whole images, the protocol crops their border"
    if kind == "uncropped":
        return f"{value} px larger on each side: the HR image a centre crop of the image it is of?"
    return ""


def size_explanation(wrong: list[tuple[str, tuple[int, int], tuple[int, int]]], scale: int | None) -> str | None:
    """What a folder whose outputs are all of the wrong size holds, when one explanation
    fits every one of ``wrong`` ((name, size, HR size)): another scale or a crop."""
    shapes = {_shape(size, hr_size, scale) for _, size, hr_size in wrong}
    sizes = {size for _, size, _ in wrong}
    if len(shapes) == 1:
        kind, value = shapes.pop()
        if kind == "divided" and value == scale:
            return (
                f"every one has its LR image's size (HR / {value}): the LR inputs themselves, or outputs not "
                f"enlarged x{scale}?"
            )
        test = f" (the test enlarges its LR images x{scale})" if scale else ""
        if kind == "divided":
            return f"every one is its HR image's size / {value}: outputs of another scale{test}?"
        if kind == "multiplied":
            return f"every one is {value} times its HR image's size: outputs of another scale{test}?"
        if kind == "cut":
            return (
                f"every one is its HR image cut down to a multiple of {_scales(value)}: crop the HR images the same way"
            )
        if kind == "border":
            return (
                f"every one is its HR image less {value} pixels on each side: a border crop? Give whole images: "
                "the protocol crops its border itself when it scores"
            )
        if kind == "uncropped":
            return (
                f"every one is its HR image plus {value} pixels on each side: the HR test images are centre crops "
                "of the images these outputs are of; super-resolve the test LR images themselves, or crop the "
                "outputs the same way"
            )
    if len(sizes) == 1:
        w, h = next(iter(sizes))
        if all(w <= hr_w and h <= hr_h for _, _, (hr_w, hr_h) in wrong):
            return f"every one is {w}x{h}, smaller than its HR image: a crop of a fixed size (a centre crop?)"
    return None


def check_output_folder(
    folder: Path, hr_folder: Path, what: str = "outputs", scale: int | None = None
) -> CheckedFolder:
    """``folder`` checked against the HR test images of ``hr_folder`` (their LR images are
    enlarged x``scale``); raises OutputFolderError naming every file at fault."""
    folder, hr_folder = Path(folder), Path(hr_folder)
    if not folder.is_dir():
        raise OutputFolderError(f"{what}: {folder} is not a folder ({'missing' if not folder.exists() else 'a file'})")
    hr_files = list_images(hr_folder)
    if not hr_files:
        raise OutputFolderError(f"{what}: no test images in {hr_folder}: prepare the preset first")
    names = [path.name for path in hr_files]
    entries = sorted(path.name for path in folder.iterdir())
    present = [name for name in names if (folder / name).is_file()]
    dangling = [name for name in entries if (folder / name).is_symlink() and not (folder / name).exists()]
    found = set(present)
    extra = [name for name in entries if name not in found and name not in dangling]
    problems = []
    if dangling:
        problems.append(f"broken links (their targets do not exist): {listed(dangling)}")
    missing = [name for name in names if name not in found and name not in dangling]
    if missing:
        instead = f"; found instead: {listed(extra)}" if extra else ""
        problems.append(
            f"{len(missing)} of {len(names)} test images have no output: {listed(missing)} (each output is named "
            f"like its test image in {hr_folder}{instead})"
        )
    broken, modes, wrong, turned = [], [], [], []
    for name in present:
        hr_size, hr_mode, _, _ = image_header(hr_folder / name)
        try:
            size, mode, raw, orientation = image_header(folder / name)
        except (OSError, SyntaxError, ValueError) as error:
            broken.append(f"{name} ({error})")
            continue
        problem = mode_problem(mode, raw, hr_mode)
        if problem:
            modes.append(f"{name} ({problem})")
        if orientation:
            turned.append(f"{name} ({orientation})")
        if size != hr_size:
            wrong.append((name, size, hr_size))
        if not problem and size == hr_size:
            reason = _decodes(folder / name)
            if reason:
                broken.append(f"{name} ({reason})")
    if broken:
        problems.append(f"not readable images: {listed(broken)}")
    if modes:
        problems.append(
            f"not 8-bit RGB: {listed(modes)}; save them as 8-bit RGB (8-bit grey is allowed where the HR test "
            "image is grey)"
        )
    if turned:
        problems.append(f"with an EXIF orientation: {listed(turned)}; {UPRIGHT_HINT}")
    if wrong:
        sizes = [f"{name} ({w}x{h}, HR {hr_w}x{hr_h})" for name, (w, h), (hr_w, hr_h) in wrong]
        explanation = size_explanation(wrong, scale) if len(wrong) == len(present) else None
        problems.append(
            f"not of their HR image's size (width x height): {listed(sizes)}"
            + (f"\n  {explanation}" if explanation else "")
        )
    if problems:
        raise OutputFolderError(f"{what} in {folder}:\n- " + "\n- ".join(problems))
    return CheckedFolder(folder, {name: folder / name for name in names}, extra)


def folder_checksum(images: dict[str, Path]) -> dict:
    """{images, sha256}: the first 16 hex digits of the sha256 of ``name:<sha256 of the
    file>;`` for each image in name order (a dataset split's digest hashes
    ``name:<HR sha256>:<LR sha256>;`` of its pairs the same way)."""
    text = "".join(f"{name}:{file_sha256(path)};" for name, path in sorted(images.items()))
    return {"images": len(images), "sha256": hashlib.sha256(text.encode()).hexdigest()[:16]}
