"""The compared methods: one entry per method, the one list that the CLI, the Snakemake
rules, the generated ``dvc.yaml`` and the report take their methods from.

An entry names the module that implements the method; the code the engines track for it
is that module's import closure (``pipeline/code_deps.py``). Entries are plain data, so
reading the registry imports neither torch nor the methods (the Snakefile reads it at
every start); a stage imports the module of the one method it runs (``load``).

A method module provides::

    super_resolve(model, lr_images, scale, seeds, settings, progress) -> list of uint8 images
        one numpy array of shape (H x scale, W x scale, 3) per LR image, in their order
        (``checked_outputs`` refuses anything else);
        lr_images: uint8 RGB LR arrays of one size; seeds: one per image (its randomness);
        settings: the preset, with the variant's overrides applied; progress(fraction of
        the batch done); model: the trained model, or None for an untrained method
    # trained methods only; ``own`` is the method's own section, training.<method>
    # (a module never looks its own name up in the config):
    build_model(settings, own) -> torch.nn.Module   (initialised from torch's global RNG)
    training_loss(settings) -> loss_fn(model, upsampled_lr, hr, generator, rows, batch_size)
    save_model_file(path, model, settings, own, training)  and  load_model(path) -> model in eval mode
        training: how the weights were computed (torch threads per step range, processes,
        device, CPU; a dict of plain values), kept in the file as its provenance
    model_mismatch(path, model_config) -> str | None   (optional: how the file's network
        differs from the preset's model: section; sampling then refuses the file)

``load`` refuses a module without the functions its entry needs, before a stage runs it.
Adding a method is one module and one line in ``ENTRIES``; listing it under ``methods:``
in params.yaml (and running ``sr3bench dvc-yaml`` for DVC) makes the engines run it. A
trained method's settings are its own section, ``presets.<preset>.training.<method>``
(the schema's ``training`` settings, plus the keys of the entry's ``settings_schema``, each
required unless it has a default or is in ``optional_settings``):
no edit of the schema file.

A *variant* ``<method>@<name>`` samples a trained method with other sampling settings
(``presets.<preset>.variants.<name>``, e.g. another inference schedule); it has its own
samples and results and reuses the base method's model.

An *outside method* is a preset's folder of someone's outputs, ``presets.<preset>.external.
<name>`` (docs/outside-outputs.md): listed in ``methods:`` like a registered one, its
entry made from the preset (``entry(method, preset)``); the collect stage checks and copies
its folder into its samples, and every later stage treats it as any other method.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from pipeline import cascade
from pipeline.layout import VARIANT_SEPARATOR, base_method, variant_name


@dataclass(frozen=True)
class MethodEntry:
    name: str
    module: str  # implements the method protocol (module docstring)
    trained: bool
    title: str  # as the report prints it
    stochastic: bool = False  # its samples depend on the seed: the report shows several
    diffusion: bool = False  # it samples with the preset's diffusion settings (sampler, inference schedule)
    # its output is made from the test image's LR input; False: an unconditional generator
    # (FID and KID only: evaluate leaves the paired metrics, PSNR, SSIM, consistency, LPIPS, empty)
    conditional: bool = True
    # JSON schema properties of settings the method adds to the shared training settings;
    # one without a "default" must be given in every preset that trains the method, unless
    # it is named in optional_settings (then the module reads it with .get)
    settings_schema: dict = field(default_factory=dict)
    optional_settings: tuple[str, ...] = ()


ENTRIES = (
    MethodEntry("bicubic", "baselines.bicubic", trained=False, title="Bicubic"),
    MethodEntry("regression", "baselines.regression", trained=True, title="Regression"),
    MethodEntry("sr3", "sr3.method", trained=True, title="SR3", stochastic=True, diffusion=True),
    MethodEntry(  # SR3's UNet without the LR input: the unconditional first stage of a cascade
        "sr3_base",
        "sr3.base_generator",
        trained=True,
        title="SR3 base generator",
        stochastic=True,
        diffusion=True,
        conditional=False,
    ),
    MethodEntry(  # a public checkpoint, imported by its train stage (docs/public-checkpoints.md)
        "sr3_janspiry",
        "sr3.janspiry_method",
        trained=True,
        title="Janspiry SR3",
        stochastic=True,
        diffusion=True,
        settings_schema={
            "checkpoint": {"type": "string", "description": "their generator file (*_gen.pth) the train stage imports"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "the file's: checked and tracked"},
            "config": {
                "anyOf": [{"enum": ["sr_sr3_16_128", "sr_sr3_64_512"]}, {"type": "object"}],
                "description": "their config's name, or its model.unet keys and image_size",
            },
            "steps": {"type": "integer", "minimum": 0, "description": "fine-tuning steps (0: the checkpoint as is)"},
        },
        optional_settings=("sha256",),  # without it, the file is imported unchecked
    ),
)
REGISTRY = {entry.name: entry for entry in ENTRIES}


class UnknownMethodError(ValueError):
    """A method name that is not registered (or a variant of an untrained method)."""


# What the collect stage runs for an outside method (its folder checked and copied).
OUTSIDE_MODULE = "pipeline.stages.collect"


def outside_entry(name: str, spec: dict) -> MethodEntry:
    """An outside method of a preset, ``presets.<preset>.external.<name>``: its samples are
    a folder of someone's outputs, which the collect stage checks and copies (no module of
    the method protocol; never trained, never sampled here)."""
    return MethodEntry(name, OUTSIDE_MODULE, trained=False, title=spec["title"])


def outside_methods(preset: dict | None, methods: list[str]) -> list[str]:
    """The compared methods that are outside methods of ``preset`` (its ``external``)."""
    outside = (preset or {}).get("external") or {}
    return [m for m in methods if m in outside]


def entry(method: str, preset: dict | None = None) -> MethodEntry:
    """The registry entry of a method or of the base of a variant (``sr3@fast`` -> sr3);
    with ``preset`` (resolved), also of its outside methods (``external``)."""
    base = base_method(method)
    outside = (preset or {}).get("external") or {}
    if base in outside:
        if variant_name(method) is not None:
            raise UnknownMethodError(
                f"{method!r}: variants ({VARIANT_SEPARATOR}name) are of trained methods only; "
                f"{base} is an outside method (external.{base})"
            )
        return outside_entry(base, outside[base])
    if base not in REGISTRY:
        known = ", ".join(REGISTRY) + (f"; this preset's outside methods: {', '.join(outside)}" if outside else "")
        raise UnknownMethodError(f"unknown method {base!r}; registered methods: {known}")
    if variant_name(method) is not None and not REGISTRY[base].trained:
        raise UnknownMethodError(
            f"{method!r}: variants ({VARIANT_SEPARATOR}name) are of trained methods only; {base} is not trained"
        )
    return REGISTRY[base]


# The method protocol's functions (module docstring): of every method, and of trained ones.
PROTOCOL = ("super_resolve",)
TRAINED_PROTOCOL = ("build_model", "training_loss", "save_model_file", "load_model")


def load(method: str) -> ModuleType:
    """The module implementing ``method`` (imported now, with its dependencies), once it is
    seen to have the protocol's functions: a trained method without ``save_model_file``
    failed only after its last training step."""
    method_entry = entry(method)
    module = importlib.import_module(method_entry.module)
    wanted = PROTOCOL + (TRAINED_PROTOCOL if method_entry.trained else ())
    missing = [name for name in wanted if not callable(getattr(module, name, None))]
    if missing:
        kind = "a trained method" if method_entry.trained else "a method"
        raise UnknownMethodError(
            f"{method_entry.module} ({module.__file__}) has no {', '.join(missing)}: {kind} needs "
            f"{', '.join(wanted)} (the method protocol: pipeline/registry.py's docstring, docs/extending.md)"
        )
    return module


def trained_methods(methods: list[str], preset: dict | None = None) -> list[str]:
    """The trained base methods that ``methods`` need, in order, without repeats (``preset``:
    where ``methods`` may name its outside methods)."""
    bases = [base_method(m) for m in methods if entry(m, preset).trained]
    return list(dict.fromkeys(bases))


def diverse_methods(preset: dict, methods: list[str]) -> list[str]:
    """The stochastic base methods ``methods`` need (the diversity stage samples each with
    several seeds, for the same LR input), none when the preset's ``diversity.images`` is 0.
    Not an unconditional generator: its images are of no LR input."""
    if not preset["diversity"]["images"]:
        return []
    chosen = [m for m in methods if entry(m, preset).stochastic and entry(m, preset).conditional]
    return list(dict.fromkeys(base_method(m) for m in chosen))


def chain_generator(presets: dict, name: str) -> cascade.Link | None:
    """The link of the chain above preset ``name`` (``dataset.lr_from``) whose method is an
    unconditional generator, or None: below it no image is of a test image, so none of this
    preset's outputs is an estimate of its own test HR image."""
    links = cascade.links(presets, name)
    return next((link for link in links if not entry(link.method, presets[link.preset]).conditional), None)


def method_settings(preset: dict, method: str) -> dict:
    """A trained method's own settings: ``training.<base method>`` of the preset."""
    return preset["training"][base_method(method)]


def title(method: str, preset: dict | None = None) -> str:
    variant = variant_name(method)
    return entry(method, preset).title + (f" ({variant})" if variant else "")


def apply_variant(preset: dict, method: str, tuned: dict | None = None) -> dict:
    """The preset as a variant samples with it: its ``variants.<name>`` sampler and
    inference schedule (and sampling batch size, when given) replace the preset's. A
    tuned variant takes them from ``tuned``, the tune stage's choices by variant name."""
    variant = variant_name(method)
    if variant is None:
        return preset
    overrides = preset["variants"].get(variant)
    if overrides is None:
        raise UnknownMethodError(f"{method!r}: variant {variant!r} is not defined under variants of this preset")
    if "tuned" in overrides:
        if tuned is None or variant not in tuned:
            raise UnknownMethodError(
                f"{method!r} takes the schedule chosen by the tune stage; "
                f"run `sr3bench tune --method {base_method(method)}` first"
            )
        overrides = {**overrides, **tuned[variant]}
    settings = {**preset, "diffusion": dict(preset["diffusion"]), "sampling": dict(preset["sampling"])}
    settings["diffusion"]["inference_schedule"] = overrides["inference_schedule"]
    if "sampler" in overrides:
        settings["diffusion"]["sampler"] = overrides["sampler"]
    if "batch_size" in overrides:
        settings["sampling"]["batch_size"] = overrides["batch_size"]
    return settings


def tuned_variants(preset: dict, methods: list[str]) -> list[str]:
    """The compared methods that are tuned variants of this preset."""
    return [m for m in methods if variant_name(m) and "tuned" in preset["variants"].get(variant_name(m), {})]


def tuned_methods(preset: dict, methods: list[str]) -> list[str]:
    """The base methods a tune stage runs for: those with a tuned variant among ``methods``."""
    return list(dict.fromkeys(base_method(m) for m in tuned_variants(preset, methods)))


def classified_methods(preset: dict, methods: list[str]) -> list[str]:
    """The compared methods the classify stage (Table 3) runs: those sampled here (not the
    outside ones) that super-resolve an LR input; none without the preset's ``classify``."""
    if not preset.get("classify"):
        return []
    outside = set(outside_methods(preset, methods))
    return [m for m in methods if m not in outside and entry(m, preset).conditional]


def checked_outputs(images, names: list[str], lr_shape: tuple, scale: int, method: str) -> list:
    """What ``super_resolve`` returned for the LR images ``names`` (of ``lr_shape``), held to
    the method protocol before it is written or scored: one uint8 (H x scale, W x scale, 3)
    numpy array per input, in their order (more or fewer images were paired with the wrong
    test images, or failed late naming a cache file; a float, 16-bit, grey or RGBA array
    was written as PIL saw fit, or failed in PIL)."""
    import numpy as np  # here: reading the registry imports no numerical package

    where = f"{method}'s super_resolve ({entry(method).module})"
    images = list(images)
    if len(images) != len(names):
        raise ValueError(
            f"{where} returned {len(images)} images for {len(names)} LR images ({names[0]} ...): it must return one "
            "per LR image, in their order"
        )
    expected = (lr_shape[0] * scale, lr_shape[1] * scale, 3)
    for name, image in zip(names, images):
        if not isinstance(image, np.ndarray):
            raise ValueError(
                f"{where} returned a {type(image).__name__} for {name}: it must return numpy arrays "
                "(a torch tensor: .cpu().numpy(), with the channels last)"
            )
        if image.dtype != np.uint8:
            raise ValueError(
                f"{where} returned an array of {image.dtype} for {name}: it must return uint8 images (values rounded "
                "and clipped to 0..255)"
            )
        if image.shape != expected:
            raise ValueError(
                f"{where} returned an array of shape {image.shape} for {name}, whose LR image is "
                f"{lr_shape[1]}x{lr_shape[0]} (width x height): it must return (height, width, 3) = {expected}, the LR "
                f"image enlarged x{scale}, RGB, channels last"
            )
    return images
