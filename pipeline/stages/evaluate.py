"""The evaluate stage: per-image metrics (CSV) and set metrics with the protocol they were
computed under (the JSON sidecar, which the report prints)."""

from __future__ import annotations

import json
import logging

from pipeline import registry
from pipeline.layout import prepare_command
from sr3bench.core.atomic import atomic_path
from sr3bench.core.checksums import file_sha256
from sr3bench.core.images import list_images
from sr3bench.core.output_folder import listed
from sr3bench.core.stage_files import read_json
from sr3bench.metrics.evaluate import (
    SET_METRICS_NOT_REQUESTED,
    evaluate_method,
    evaluate_set,
    set_metrics_not_requested,
)
from sr3bench.metrics.table import by_name

log = logging.getLogger(__name__)


def run(job) -> None:
    settings, paths, method = job.settings, job.paths, job.method
    samples, hr_dir, lr_dir = paths.samples(method), paths.split("test", "hr"), paths.split("test", "lr")
    manifest = read_json(paths.manifest, f"run the prepare stage again ({prepare_command(job.preset_name)})", ("test",))
    groups = {row["name"]: row["group"] for row in manifest["test"]}
    test_images = {path.name for path in list_images(hr_dir)}
    _check_test_split(test_images, groups, hr_dir, paths.manifest, job.preset_name)
    _check_test_bytes(manifest["test"], hr_dir, lr_dir, paths.manifest, job.preset_name)
    protocol, scale = settings.config["protocol"], settings.dataset.scale  # evaluate records the protocol as given
    sampled = {path.name for path in list_images(samples)} if samples.is_dir() else set()
    stage = "collect" if registry.outside_methods(job.preset, [method]) else "sample"
    again = f"re-run the {stage} stage (sr3bench {stage} --preset {job.preset_name} --method {method})"
    extra = sorted(sampled - test_images)
    if extra:  # FID, KID and IS would count them beside the test images
        raise ValueError(
            f"{samples} holds {len(extra)} image(s) that are not test images of preset {job.preset_name} "
            f"({listed(extra, 5)}): {again} or move them away"
        )
    paired = registry.entry(method, job.preset).conditional  # an unconditional generator's: FID and KID only
    generator = registry.chain_generator(job.params["presets"], job.preset_name)  # a cascade's generated inputs
    table, protocol, unavailable = evaluate_method(
        method,
        hr_dir,
        lr_dir,
        samples,
        groups,
        protocol,
        scale,
        job.weights_dir,
        again,
        paired=paired,
        generator=None if generator is None else f"{generator.method} of preset {generator.preset}",
    )
    if settings.protocol.set_metrics:
        log.info("%s: FID, KID and IS over %d images (torch-fidelity, Inception features)", method, len(table))
        set_level = evaluate_set(
            samples, hr_dir, paths.fidelity_cache, job.weights_dir, job.weights.inception, settings.protocol.is_splits
        )
    else:
        set_level = set_metrics_not_requested()
    protocol = {**protocol, "inception_weights": set_level.pop("inception_record")}  # one for all methods of a report
    set_reasons = set_level["unavailable"]  # missing weights, too few images: a user can act on them
    set_level["unavailable"] = {**set_reasons, **unavailable}
    out = paths.results(method)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(paths.set_metrics(method)) as temporary:
        temporary.write_text(json.dumps({**set_level, "protocol": protocol}, indent=1))
    with atomic_path(out) as temporary:
        table.to_csv(temporary, index=False)
    shown = [
        f"{title} not computed" if value is None or value != value else f"{title} {form.format(value)}"  # None, NaN
        for title, value, form in (
            ("PSNR", table["psnr"].mean(), "{:.3f} dB"),
            ("SSIM", table["ssim"].mean(), "{:.4f}"),
            ("LPIPS", table["lpips"].mean(), "{:.4f}"),
            ("FID", set_level["fid"], "{:.2f}"),
        )
    ]
    log.info("%s over %d images: %s", method, len(table), ", ".join(shown))
    by_reason = {}
    for metric, reason in set_level["unavailable"].items():
        by_reason.setdefault(reason, []).append(metric)
    for reason, metrics in by_reason.items():  # the preset's design (its sizes, a generator, the protocol): no warning
        actionable = reason in set_reasons.values() and reason != SET_METRICS_NOT_REQUESTED
        log.log(
            logging.WARNING if actionable else logging.INFO,
            "%s: %s left empty: %s",
            method,
            ", ".join(by_name(metric).label for metric in metrics),  # "IS", not "is"
            reason,
        )


def _check_test_bytes(rows: list[dict], hr_dir, lr_dir, manifest, preset: str) -> None:
    """Each test image holds what prepare wrote (its manifest's sha256): one edited in
    place by hand changed the numbers, and the report still gave prepare's checksum."""
    changed = [
        str(folder / row["name"])
        for row in rows
        for folder, key in ((hr_dir, "hr_sha256"), (lr_dir, "lr_sha256"))
        if row.get(key) and (folder / row["name"]).is_file() and file_sha256(folder / row["name"]) != row[key]
    ]
    if changed:
        raise ValueError(
            f"{len(changed)} test image(s) differ from what the prepare stage wrote ({listed(changed, 5)}; "
            f"their sha256 is in {manifest}): restore them, or run the prepare stage again "
            f"({prepare_command(preset)})"
        )


def _check_test_split(test_images: set[str], groups: dict, hr_dir, manifest, preset: str) -> None:
    """The test images are the manifest's: one added or removed by hand would change the
    numbers, or drop out of the per-group table, without a word."""
    unlisted, missing = sorted(test_images - set(groups)), sorted(set(groups) - test_images)
    if unlisted or missing:
        problems = [
            f"{len(names)} image(s) {where} ({listed(names, 5)})"
            for names, where in (
                (unlisted, f"in {hr_dir} but not in {manifest}"),
                (missing, f"of {manifest} not in {hr_dir}"),
            )
            if names
        ]
        raise ValueError(
            f"the test split was changed after it was prepared: {'; '.join(problems)}; restore the images, or "
            f"run the prepare stage again ({prepare_command(preset)})"
        )
