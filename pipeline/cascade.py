"""Cascades of presets (docs/cascade.md): a preset whose ``dataset.lr_from`` names another
preset's method takes its test LR images from that method's outputs,
``samples/<upstream>/<method>/``, as SR3 chains its models (Saharia et al. 2021, Sec. 4.4:
faces 64->256->1024; ImageNet generation at 64x64 followed by SR3 4x, Table 4).

This module reads the config only: the chain of a preset, and the checks that make a link
valid (the upstream preset exists and compares the method, no cycle, its outputs are this
preset's LR size, and they are of this preset's test images). The engines' side (the
upstream jobs each engine must reach) is ``pipeline/cascade_plan.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Fits that make every test HR image hr_size x hr_size (pipeline/prepare.py), so that one
# preset's outputs have a known size: the next preset's LR size.
SQUARE_FITS = ("resize", "square_crop_area")
# The dataset keys that choose the test images and name them (``<group>_<stem>.png``).
TEST_SELECTION = ("source", "root", "image_split", "test_images", "test_folders")


@dataclass(frozen=True)
class Link:
    """``downstream`` takes its test LR images from ``method`` of ``preset``."""

    downstream: str
    preset: str
    method: str


class CascadeError(ValueError):
    """A ``dataset.lr_from`` that cannot be chained: ``key`` is the dotted key at fault."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key


def lr_from(preset: dict) -> dict | None:
    return preset["dataset"].get("lr_from")


def links(presets: dict, name: str) -> list[Link]:
    """The chain above preset ``name``, nearest first: its upstream, that one's upstream, ..."""
    chain, seen = [], [name]
    while (source := lr_from(presets[name])) is not None:
        upstream = source["preset"]
        if upstream in seen:
            cycle = " -> ".join([*seen[seen.index(upstream) :], upstream])
            raise CascadeError(
                f"presets.{name}.dataset.lr_from",
                f"the presets' lr_from form a cycle ({cycle}); the first preset of a chain takes its LR "
                "from its own HR images (no lr_from)",
            )
        if upstream not in presets:
            raise CascadeError(
                f"presets.{name}.dataset.lr_from.preset",
                f"unknown preset {upstream!r} (allowed: {', '.join(p for p in presets if p != name)})",
            )
        chain.append(Link(name, upstream, source["method"]))
        seen.append(upstream)
        name = upstream
    return chain


def upstream_presets(presets: dict, name: str) -> list[str]:
    """The presets whose outputs preset ``name`` needs, nearest first."""
    return [link.preset for link in links(presets, name)]


def _same_folder(first, second) -> bool:
    if first is None or second is None:
        return first == second
    return Path(first).expanduser().resolve() == Path(second).expanduser().resolve()


def link_problem(presets: dict, link: Link) -> tuple[str, str] | None:
    """(key, problem) of a link whose upstream outputs cannot be this preset's test LR
    images; None when they can. The upstream's method list is checked by ``check``."""
    down, up = presets[link.downstream], presets[link.preset]
    key = f"presets.{link.downstream}.dataset.lr_from"
    dataset, upstream = down["dataset"], up["dataset"]
    if dataset["lr_source"] != "downsample":
        return f"presets.{link.downstream}.dataset.lr_source", (
            "lr_from replaces the test LR images and the others are made from this preset's HR images: "
            "lr_source must be downsample"
        )
    for name, fit in ((link.downstream, dataset["fit"]), (link.preset, upstream["fit"])):
        if fit not in SQUARE_FITS:
            return f"presets.{name}.dataset.fit", (
                f"{fit} keeps each image's own size; the presets of a cascade need square hr_size images "
                f"(fit: {' or '.join(SQUARE_FITS)})"
            )
    lr_size = dataset["hr_size"] // dataset["scale"]
    if upstream["hr_size"] != lr_size:
        return key, (
            f"{link.preset}'s outputs are {upstream['hr_size']}x{upstream['hr_size']} "
            f"(presets.{link.preset}.dataset.hr_size) but this preset's LR images are {lr_size}x{lr_size} "
            f"(hr_size {dataset['hr_size']} / scale {dataset['scale']}); make them equal"
        )
    selection = selection_problem(down, up, link.preset)
    if selection:
        return key, selection + "; the chained LR images must be of the same test images, with the same names"
    return None


def check(presets: dict, check_methods, active: str) -> None:
    """The chain of the ``active`` preset is valid, and so is what its report compares
    (``cascade.compare``); raises CascadeError naming the key. Only the presets a run of
    ``active`` reads are checked: another preset's cross-references never block it.
    ``check_methods (methods, preset, preset_name, key)``: the config's check that a method
    is registered and has its training settings (``pipeline.config.check_methods``)."""
    for name in [active, *upstream_presets(presets, active)]:
        preset = presets[name]
        for link in links(presets, name)[:1]:  # each preset checks its own link
            up = presets[link.preset]
            key = f"presets.{name}.dataset.lr_from.method"
            if not up["methods"]:
                raise CascadeError(
                    f"presets.{link.preset}.methods",
                    f"{link.preset} is the upstream preset of {name} (dataset.lr_from) and must state its own "
                    "methods: list (the top-level methods: is the active preset's)",
                )
            if link.method not in up["methods"]:
                raise CascadeError(
                    key,
                    f"{link.preset} does not compare {link.method!r} (it compares {', '.join(up['methods'])}); "
                    f"add it to presets.{link.preset}.methods or name one of those",
                )
            check_methods([link.method], up, link.preset, key)
            problem = link_problem(presets, link)
            if problem:
                raise CascadeError(*problem)
        compare = (preset.get("cascade") or {}).get("compare") or []
        for index, entry in enumerate(compare):
            key = f"presets.{name}.cascade.compare[{index}]"
            if entry["preset"] not in presets:
                raise CascadeError(
                    f"{key}.preset", f"unknown preset {entry['preset']!r} (allowed: {', '.join(presets)})"
                )
            other = presets[entry["preset"]]
            if other["methods"] and entry["method"] not in other["methods"]:
                raise CascadeError(
                    f"{key}.method",
                    f"{entry['preset']} does not compare {entry['method']!r} (it compares "
                    f"{', '.join(other['methods'])}), so it has no results of it; name one of those",
                )
            check_methods([entry["method"]], other, entry["preset"], f"{key}.method")
            problem = compare_problem(preset, other, entry["preset"])
            if problem:
                raise CascadeError(key, problem)


def selection_problem(preset: dict, other: dict, other_name: str) -> str | None:
    """Why ``other``'s test images are not ``preset``'s, named alike (None when they are)."""
    dataset, theirs = preset["dataset"], other["dataset"]
    for name in TEST_SELECTION:
        same = _same_folder(dataset[name], theirs[name]) if name == "root" else dataset[name] == theirs[name]
        if not same:
            return (
                f"{other_name}'s test images are not this preset's: dataset.{name} differs "
                f"({other_name}: {theirs[name]!r}, here: {dataset[name]!r})"
            )
    if dataset["image_split"] and preset["seed"] != other["seed"]:
        return (
            f"{other_name}'s test images are not this preset's: image_split draws them with the seed, "
            f"and the seeds differ ({other_name}: {other['seed']}, here: {preset['seed']})"
        )
    return None


def compare_problem(preset: dict, other: dict, other_name: str) -> str | None:
    """Why a single-stage preset's results cannot stand beside this preset's (None when
    they can): they must be of the same test images at the same HR size."""
    size, theirs = preset["dataset"]["hr_size"], other["dataset"]["hr_size"]
    if size != theirs:
        return f"{other_name}'s HR images are {theirs}x{theirs}, this preset's {size}x{size}"
    return selection_problem(preset, other, other_name)
