"""The report stage: metrics.csv, per_image.csv, metrics.json, classification.csv and index.html for a preset.

Reads only files (per-method metric CSVs and their JSON sidecars, which hold the set
metrics and the protocol; loss logs; SR images; the paper's tables); imports neither
``sr3`` nor ``baselines``. The caller says where each file is.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sr3bench.core.atomic import atomic_folder
from sr3bench.core.image_files import list_images
from sr3bench.core.stage_files import read_json, read_table
from sr3bench.metrics.table import find, header
from sr3bench.reporting import comparison, figures, paper
from sr3bench.reporting.cascade_section import CascadeInputs, cascade_section
from sr3bench.reporting.classification import classification_section, classification_table
from sr3bench.reporting.provenance import provenance_section
from sr3bench.reporting.study_section import extreme_rows, paper_fool_rates, study_section
from sr3bench.reporting.tables import METRIC_COLUMNS, PER_IMAGE_METRICS, comparable_protocol, summarise
from sr3bench.reporting.tuning import load_tuning, tuning_section
from sr3bench.study import analysis as study_analysis
from sr3bench.study.plan import read_plan

GRID_ROWS = 6
FID_MIN_IMAGES = 2048  # below the Inception feature size, FID's covariance is rank-deficient


def _format(value, column: str) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "&ndash;"
    metric = find(column)
    return metric.format(value) if metric and isinstance(value, (int, float)) else html.escape(str(value))


def _cell(row, column: str) -> str:
    """A value, with its 95% bootstrap interval below it where the table holds one, or its
    standard deviation over splits (IS: ``is_std``, ``is_splits``)."""
    text = _format(row[column], column)
    low, high = row.get(f"{column}_ci_low"), row.get(f"{column}_ci_high")
    if low is not None and high is not None and not (pd.isna(low) or pd.isna(high)):
        text += f"<br><span class='ci'>[{_format(low, column)}, {_format(high, column)}]</span>"
    std, splits = row.get(f"{column}_std"), row.get(f"{column}_splits")
    if std is not None and not pd.isna(std) and not pd.isna(row[column]):
        text += f"<br><span class='ci'>&plusmn; {_format(std, column)} ({int(splits)} splits)</span>"
    elif splits is not None and not pd.isna(splits) and not pd.isna(row[column]):
        text += f"<br><span class='ci'>({int(splits)} split{'s' if int(splits) != 1 else ''}, no spread)</span>"
    return text


def html_table(table: pd.DataFrame, columns: list[str]) -> str:
    """Headers with units and an arrow towards better values (``tables.header``)."""
    head = "".join(f"<th>{html.escape(header(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row, c)}</td>" for c in columns) + "</tr>" for _, row in table.iterrows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def paper_table(spec: dict) -> str:
    columns = spec["columns"]
    head = "<th>method</th>" + "".join(f"<th>{html.escape(header(c))}</th>" for c in columns)
    rows = "".join(
        f"<tr><td>{html.escape(m)}</td>" + "".join(f"<td>{_format(v.get(c), c)}</td>" for c in columns) + "</tr>"
        for m, v in spec["rows"].items()
    )
    return (
        f"<h3>{html.escape(spec['title'])}</h3><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        f"<p class='cite'>Source: {html.escape(spec['citation'])}</p>"
    )


def unavailable_notes(set_metrics: dict[str, dict]) -> dict[str, str]:
    """'metric (methods)' -> reason, for every metric a method left empty."""
    reasons: dict[tuple[str, str], list[str]] = {}
    for method, values in set_metrics.items():
        for metric, reason in values.get("unavailable", {}).items():
            reasons.setdefault((metric, reason), []).append(method)
    return {f"{_label(metric)} ({', '.join(methods)})": reason for (metric, reason), methods in reasons.items()}


def inception_source(record: dict) -> str:
    """How the protocol names the Inception weights: the source (which says whether it is the
    published file), file, its SHA-256 prefix."""
    text = str(record.get("source"))
    if record.get("file"):
        text += f", file {Path(record['file']).name}"
    if record.get("sha256"):
        text += f" (SHA-256 {record['sha256'][:16]}...)"
    return text


def _label(column: str) -> str:
    """How the text names a column: the metric's label ('IS'), else the column in capitals."""
    metric = find(column)
    return metric.label if metric else column.upper()


FEW_IMAGES = 20  # below this many test images the report says what its bootstrap intervals are worth


def few_images_note(count: int) -> str:
    """What a percentile bootstrap interval is worth over so few images ("" from FEW_IMAGES on):
    it is too narrow, and over 3 images its bounds are the smallest and largest per-image
    values (each image alone is a resample of probability 1/27, above the 2.5% tail)."""
    if count >= FEW_IMAGES:
        return ""
    return (
        f" <b>Over {count} images these intervals say little</b>: the percentile bootstrap is too narrow on few "
        "images, and over 3 its bounds are the smallest and largest per-image values."
    )


def read_protocol(set_metrics: dict[str, dict]) -> dict:
    """The one protocol all tables of the report were computed under (from their sidecars;
    the first method's). Where the weights file lay is not part of it, its SHA-256 is: the
    same file in another folder (another SR3BENCH_WEIGHTS) gives the same numbers."""
    flat = {method: _flattened(comparable_protocol(values["protocol"])) for method, values in set_metrics.items()}
    keys = sorted({key for values in flat.values() for key in values})
    differing = [key for key in keys if len({json.dumps(values.get(key)) for values in flat.values()}) > 1]
    if differing:
        shown = "; ".join(
            f"{key}: " + ", ".join(f"{values.get(key)!r} ({method})" for method, values in flat.items())
            for key in differing[:3]
        )
        raise ValueError(
            f"the results of {', '.join(set_metrics)} were computed under different protocols ({shown}"
            f"{' ...' if len(differing) > 3 else ''}); re-run evaluate for all of them"
        )
    return next(iter(set_metrics.values()))["protocol"]


def _flattened(values: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update(_flattened(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@dataclass(frozen=True)
class ReportInputs:
    """What a report is built from. ``results``: per-image CSV of each method (its set
    metrics and protocol in the ``.json`` beside it); ``titles``: how to print each method;
    ``scale_here``: this run's values of the rows of ``reporting.comparison.SCALE_ROWS``
    (as text); ``tuning``: the tune stage's table of each tuned method; ``diversity``: the
    folder of several seeds per test image of each stochastic method;
    ``provenance_record``: ``reporting.provenance``'s; ``schedules``: how the training and
    inference schedules are named (``sr3/schedule_spec.describe``: the report imports no
    method code); ``study_plan`` and ``study_results``: the human study's full plan and
    its analysis, where the preset has them."""

    results: dict[str, Path]
    titles: dict[str, str]
    test_hr: Path
    test_lr: Path
    samples: dict[str, Path]
    losses: dict[str, Path]
    paper_tables: Path
    out: Path
    scale_here: dict = field(default_factory=dict)
    tuning: dict[str, Path] = field(default_factory=dict)
    diversity: dict[str, Path] = field(default_factory=dict)
    provenance_record: dict = field(default_factory=dict)
    schedules: dict[str, str] = field(default_factory=dict)
    study_plan: Path | None = None
    study_results: Path | None = None
    classification: dict[str, Path] = field(default_factory=dict)  # Table 3: {"baseline" or method: result JSON}
    cascade: CascadeInputs | None = None  # the end of a chain of presets (dataset.lr_from)


@dataclass(frozen=True)
class PageParts:
    """The report page's pieces, computed from the inputs (``render_html``)."""

    summary: pd.DataFrame
    by_group: pd.DataFrame
    notes: dict
    has_losses: bool
    inception_sources: list
    protocol: dict
    paper_tables: list
    titles: dict
    beside: str = ""
    sampling: str = ""
    has_diversity: bool = False
    provenance_html: str = ""
    schedules: dict = field(default_factory=dict)
    study: str = ""
    classification: str = ""
    cascade: str = ""


TABLE3_KEY = "Table 3"  # metrics.json's Table 3 errors: method names have no spaces


def build_report(preset_name: str, preset: dict, inputs: ReportInputs) -> None:
    """The report folder ``inputs.out``: the page, the metric tables, the figures and the provenance."""
    results, titles, samples, losses = inputs.results, inputs.titles, inputs.samples, inputs.losses
    test_hr, test_lr, paper_tables, out = inputs.test_hr, inputs.test_lr, inputs.paper_tables, inputs.out
    tuning, diversity, provenance_record = inputs.tuning, inputs.diversity, inputs.provenance_record
    again = "run the evaluate stage of {} again (sr3bench evaluate --preset " + preset_name + " --method {})"
    per_image = pd.concat([read_table(path, again.format(m, m)) for m, path in results.items()], ignore_index=True)
    set_metrics = {m: read_json(p.with_suffix(".json"), again.format(m, m), ("protocol",)) for m, p in results.items()}
    protocol_record = read_protocol(set_metrics)
    protocol = protocol_record["description"]
    notes = unavailable_notes(set_metrics)
    summary = summarise(per_image, set_metrics, protocol)
    by_group = summarise(per_image, set_metrics, protocol, by=["group"])
    metrics_json = {
        row["method"]: {"n_images": int(row["n_images"])}
        | {c: (None if pd.isna(row[c]) else float(row[c])) for c in METRIC_COLUMNS}
        for _, row in summary.iterrows()
    }
    table3 = classification_table(inputs.classification, paper_tables, titles)
    if inputs.classification:  # under a key no method can have (DVC's metrics are JSON, TOML or YAML)
        metrics_json[TABLE3_KEY] = {
            row["row"]: {c: (None if pd.isna(row[c]) else float(row[c])) for c in ("top1_error", "top5_error")}
            for _, row in table3.iterrows()
            if row["row"] in inputs.classification
        }
    names = [path.name for path in list_images(Path(test_hr))]  # the images every stage lists
    grid_names = names[:: max(1, len(names) // GRID_ROWS)][:GRID_ROWS]
    columns = [("LR (input)", test_lr)] + [(titles[m], f) for m, f in samples.items()] + [("HR (truth)", test_hr)]
    sources = sorted({str(v.get("inception_weights")) for v in set_metrics.values()})
    if protocol_record.get("inception_weights"):  # one record, the same for every method (read_protocol)
        sources = [inception_source(protocol_record["inception_weights"])]
    tables = paper.load_tables(paper_tables)
    beside = beside_the_paper(
        preset,
        summary,
        tables,
        comparison.load_scale(paper_tables, preset.get("paper", {}).get("experiment")),
        inputs.scale_here,
        titles,
    )
    tuned = load_tuning(tuning)
    sampling = (
        tuning_section(
            tuned, preset["tune"]["select"], preset["tune"]["images"], preset["tune"]["reference_images"], _format
        )
        if tuned
        else ""
    )
    diversity_rows = [
        (
            titles[m],
            Path(test_lr) / name,
            sorted(Path(folder).glob(f"{Path(name).stem}_seed*.png")),
            Path(test_hr) / name,
        )
        for m, folder in diversity.items()
        for name in names[: preset["diversity"]["images"]]
    ]
    provenance_html = provenance_section(provenance_record) if provenance_record else ""
    analysis = study_analysis.read(inputs.study_results) if inputs.study_results else None
    study_html = study_section(
        read_plan(inputs.study_plan) if inputs.study_plan else None,
        analysis,
        paper_fool_rates(paper_tables),
        preset.get("paper", {}).get("experiment"),
        titles,
        preset_name,
    )
    parts = PageParts(
        summary,
        by_group,
        notes,
        bool(losses),
        sources,
        protocol_record,
        tables,
        titles,
        beside,
        sampling,
        bool(diversity_rows),
        provenance_html,
        inputs.schedules,
        study_html,
        classification_section(inputs.classification, paper_tables, titles),
        cascade_section(inputs.cascade, summary, tables, titles, _format, protocol_record),
    )
    page = render_html(preset_name, preset, parts)
    with atomic_folder(out) as staging:  # every file written in full before any is replaced
        summary.to_csv(staging / "metrics.csv", index=False)
        by_group.to_csv(staging / "metrics_by_group.csv", index=False)
        per_image.to_csv(staging / "per_image.csv", index=False)
        (staging / "metrics.json").write_text(json.dumps(metrics_json, indent=1))
        table3.to_csv(staging / "classification.csv", index=False)
        figures.image_grid(grid_names, columns, staging / "grid.png")
        figures.zoomed_crops(grid_names, columns[1:], staging / "zoom.png")
        figures.diversity_strip(diversity_rows, staging / "diversity.png")
        (staging / "provenance.json").write_text(json.dumps(provenance_record, indent=1))
        figures.loss_curves({titles[m]: path for m, path in losses.items()}, staging / "loss.png")
        figures.tuning_curves({titles[m]: value for m, value in tuned.items()}, staging / "tuning.png")
        figures.study_extremes(
            extreme_rows(analysis, samples, titles) if analysis else [],
            staging / "study_images.png",
            simulated=bool(analysis and analysis.simulated),
        )
        (staging / "index.html").write_text(page)


def _difference(value, column: str) -> str:
    """A signed difference with the metric's digits (3 for a column the metric table lacks)."""
    if value is None:
        return "&ndash;"
    metric = find(column)
    return metric.format(value, signed=True) if metric else f"{value:+.3f}"


def beside_the_paper(
    preset: dict, summary: pd.DataFrame, tables: list[dict], paper_scale: dict | None, scale_here: dict, titles: dict
) -> str:
    """The section that puts this preset's numbers beside the paper table it reproduces."""
    settings = preset.get("paper", {})
    table = next((t for t in tables if t["table"] == settings.get("table")), None)
    if table is None:
        return ""
    rows = comparison.side_by_side(table, summary)
    body = "".join(
        f"<tr><td>{html.escape(titles.get(r['method'], r['method']))}</td><td>{html.escape(header(r['metric']))}</td>"
        f"<td>{_format(r['here'], r['metric'])}</td><td>{_format(r['paper'], r['metric'])}</td>"
        f"<td>{_difference(r['difference'], r['metric'])}</td></tr>"
        for r in rows
    )
    checks = "".join(
        f"<li>{html.escape(_label(c['metric']))}: {html.escape(titles.get(c['better'], c['better']))} better than "
        f"{html.escape(titles.get(c['worse'], c['worse']))} in the paper; "
        f"here: <b>{'holds' if c['holds'] else 'does not hold'}</b></li>"
        for c in comparison.orderings(table, summary)
    )
    scale = ""
    if paper_scale:
        scale_rows = "".join(
            f"<tr><td>{label}</td><td>{html.escape(str(scale_here.get(key, '')))}</td>"
            f"<td>{html.escape(str(paper_scale.get(key, '')))}</td></tr>"
            for key, label in comparison.SCALE_ROWS
        )
        scale = (
            "<h3>Scale of the two runs</h3>"
            f"<table><thead><tr><th></th><th>here</th><th>paper</th></tr></thead><tbody>{scale_rows}</tbody></table>"
            f"<p class='cite'>Source: {html.escape(paper_scale.get('citation', ''))}</p>"
        )
    warning = (
        ""
        if settings.get("comparable")
        else "<p class='note'>This run is far smaller than the paper's (see the scale below): "
        "its numbers are <b>not comparable with the paper's in absolute terms, only in ordering</b>.</p>"
    )
    apart = comparison.other_reference_set(table)
    reference_note = "".join(
        f"<p class='note'>{html.escape(_label(metric))}: the paper's real HR images score {value:g}, so its "
        "reference statistics are of another set than its test images; here they are this preset's HR test "
        "images, which would score 0. The values differ by construction: no difference is given, only the "
        "orderings compare.</p>"
        for metric, value in apart.items()
    )
    return (
        f"<h2>Beside the paper: {html.escape(table['title'])}</h2>{warning}"
        "<table><thead><tr><th>method</th><th>metric</th><th>here</th><th>paper</th>"
        f"<th>here &minus; paper</th></tr></thead><tbody>{body}</tbody></table>{reference_note}"
        f"<p class='cite'>Source: {html.escape(table['citation'])}</p>"
        f"{'<p>Orderings of the paper, checked here:</p><ul>' + checks + '</ul>' if checks else ''}{scale}"
    )


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.cite{color:#666;font-size:.85em;margin-top:-1em}.ci{color:#777;font-size:.8em;white-space:nowrap}\
.note{background:#fff7e0;border-left:4px solid #e0a000;padding:.5em 1em}code{background:#f4f4f4;padding:0 .2em}
"""


def in_set_order(by_group: pd.DataFrame, dataset: dict) -> pd.DataFrame:
    """The per-group rows of a test split of several sets (``dataset.test_folders``) set by
    set, in the folders' order (Set5's methods, then Set14's); other splits as they are."""
    folders = list(dataset.get("test_folders") or [])
    if len(folders) < 2:
        return by_group
    order = {folder: index for index, folder in enumerate(folders)}
    return by_group.sort_values("group", key=lambda groups: groups.map(order), kind="stable")


def published_by_group(by_group: pd.DataFrame, tables: list[dict]) -> tuple[pd.DataFrame, list[str]]:
    """``by_group`` with the published PSNR and SSIM beside each row that a paper table has
    as "<method> on <group>" (the benchmarks' bicubic on Set5 and on Set14), and the
    columns added (none where no table has such a row)."""
    published = {name: values for spec in tables for name, values in spec["rows"].items()}
    added = []
    for metric in ("psnr", "ssim"):
        values = [
            published.get(f"{method} on {group}", {}).get(metric)
            for method, group in zip(by_group["method"], by_group["group"])
        ]
        if any(value is not None for value in values):
            column = f"published {find(metric).header.rsplit(' ', 1)[0]}"  # "published PSNR (dB)"
            shown = [None if value is None else find(metric).format(value) for value in values]
            by_group, added = by_group.assign(**{column: shown}), [*added, column]
    return by_group, added


def pooled_sets_note(by_group: pd.DataFrame, dataset: dict) -> str:
    """Where the test split is several sets (``dataset.test_folders``: Set5 and Set14), what
    the means above are: pooled over them, weighted by image count, which no published
    table is ("" otherwise)."""
    if len(dataset.get("test_folders") or []) < 2:
        return ""
    groups = by_group.drop_duplicates("group")
    counts = ", ".join(f"{html.escape(str(g))} {int(n)}" for g, n in zip(groups["group"], groups["n_images"]))
    return (
        f"<p class='note'>The test split holds {len(groups)} sets of images ({counts}). The means above pool "
        "them, each image weighing the same, and FID, KID and IS are over their union; published numbers are "
        "per set: compare those with <i>Per test group</i> below (and metrics_by_group.csv), which puts the "
        "published values beside the rows a published table has.</p>"
    )


def render_html(preset_name: str, preset: dict, parts: PageParts) -> str:
    summary, by_group, notes, titles, protocol = (
        parts.summary,
        parts.by_group,
        parts.notes,
        parts.titles,
        parts.protocol,
    )
    has_losses, inception_sources, paper_tables = parts.has_losses, parts.inception_sources, parts.paper_tables
    beside, sampling, has_diversity, provenance_html = (
        parts.beside,
        parts.sampling,
        parts.has_diversity,
        parts.provenance_html,
    )
    dataset, training = preset["dataset"], preset["training"]
    count = int(summary["n_images"].max())
    n_test = f"{count} test images"
    missing = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in notes.items())
    by_group = in_set_order(by_group, dataset)
    pooled = pooled_sets_note(by_group, dataset)
    inference = preset["diffusion"]["inference_schedule"]
    train_schedule = preset["diffusion"]["training_schedule"]
    papers = "".join(paper_table(spec) for spec in paper_tables)
    compared = set(summary["method"])
    by_group, published = published_by_group(by_group, paper_tables)
    summary, by_group = (table.assign(method=table["method"].map(titles)) for table in (summary, by_group))
    method_notes = ""
    if "sr3" in compared:
        sampler = preset["diffusion"]["sampler"]
        trained_with, sampled_with = parts.schedules["training"], parts.schedules["inference"]
        method_notes += (
            "<li>SR3: noise-conditioned on the continuous noise level gamma; "
            f"trained with a {train_schedule['steps']}-step {html.escape(trained_with)} schedule (beta); "
            f"sampled with the {html.escape(sampler)} sampler "
            f"over a {inference['steps']}-step {html.escape(sampled_with)} schedule from the EMA weights "
            "(variants: their own, below); "
            f"{training['sr3']['steps']} training steps.</li>"
        )
    if "regression" in compared:
        kept = (
            "the weights with the best validation PSNR"
            if training["regression"].get("keep") == "best_val_psnr"
            else "the last (EMA) weights"
        )
        method_notes += (
            "<li>Regression: the same UNet without noise conditioning, MSE to the HR image, "
            f"{training['regression']['steps']} steps; {kept}.</li>"
        )
    fid_warning = (
        f"<p class='note'>FID, KID and IS over {count} images are dominated by sampling noise "
        f"(FID needs thousands of images; below {FID_MIN_IMAGES} its covariance estimate is rank-deficient). "
        "KID is an unbiased estimate and can be negative on so few images. "
        "Compare these only between methods of this report, never with the paper.</p>"
        if count < FID_MIN_IMAGES and summary["fid"].notna().any()
        else ""  # none computed: nothing to warn of
    )
    set_metrics_computed = summary["fid"].notna().any() or summary["kid"].notna().any()
    is_note = (
        f"<li>IS: {html.escape(protocol['inception_score'])}.</li>"
        if set_metrics_computed and protocol.get("inception_score")
        else ""
    )
    set_metrics_note = (
        f"FID, KID and IS ({html.escape(protocol['fid_kid_is'])}; "
        f"Inception weights: {html.escape(', '.join(inception_sources))}) are computed on each method's {count} SR "
        f"images against the reference set of the {count} HR test images"
        if set_metrics_computed
        else f"FID, KID and IS: {html.escape(protocol['fid_kid_is'])}"
    )
    group_columns = ["method", "group", "n_images"] + [c for c in PER_IMAGE_METRICS if by_group[c].notna().any()]
    group_columns += published
    lr_origin = (
        "provided by the dataset (made by its publishers, with MATLAB's imresize for Set5 and Set14, not here); the "
        "bicubic baseline and SR3's conditioning input enlarge them"
        if dataset["lr_source"] == "provided"
        else "made from the HR images"
    )
    if dataset.get("lr_from"):  # a cascade: the test split's LR images are another preset's outputs
        link = dataset["lr_from"]
        lr_origin = (
            f"of the test split: the outputs of {html.escape(link['method'])} of preset "
            f"<code>{html.escape(link['preset'])}</code> (the cascade above); of training and validation: "
            "made from the HR images"
        )
    diversity_section = (
        "<h3>Sample diversity</h3><p>One input, several seeds (the paper shows such samples in its figures): "
        "a diffusion model draws different plausible details each time; "
        "the std map shows where its samples disagree.</p>"
        '<img src="diversity.png" alt="sample diversity">'
        if has_diversity
        else ""
    )
    paper_note = (
        ", for comparison when a preset matches the paper's setting; this one does not"
        if not beside and not published
        else ""
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>SR3 Bench: {html.escape(preset_name)}</title>
<style>{STYLE}</style></head><body>
<h1>SR3 Bench report: preset <code>{html.escape(preset_name)}</code></h1>
<p>{html.escape(preset["description"])}</p>
<h2>Reproduced metrics ({n_test})</h2>
{html_table(summary, ["method", "n_images"] + METRIC_COLUMNS)}
<p class='cite'>Means over the test images; in brackets, the 95% bootstrap interval of the mean \
(images resampled, 2000 times); IS: &plusmn; its standard deviation over the splits of the SR images. \
↑: higher is better, ↓: lower is better.{few_images_note(count)}</p>
{pooled}
{fid_warning}
{beside}
{parts.cascade}
{"<p>Metrics left empty, and why:</p><ul>" + missing + "</ul>" if missing else ""}
<h3>Per test group</h3>
{html_table(by_group, group_columns)}
<h2>Protocol</h2>
<ul>
<li>Scale x{protocol["scale"]}; LR images {lr_origin} \
with a MATLAB-compatible bicubic <code>imresize</code> (cubic kernel a = -0.5, antialiased).
The bicubic baseline and SR3's conditioning input use the same resizer for upsampling.</li>
<li>All metrics are computed on the {html.escape(protocol["pixels"])}.</li>
<li>PSNR and SSIM ({html.escape(protocol["psnr_ssim"])}): {html.escape(protocol["description"])}; \
SSIM: {html.escape(protocol["ssim_settings"])}.
Grey (one-channel) HR images are compared in their grey values, as the MATLAB scripts do.</li>
<li>{set_metrics_note}; LPIPS ({html.escape(protocol["lpips"])}) per image, averaged.</li>
{is_note}
<li>Consistency (the paper's Table 1): {html.escape(protocol["consistency"])}.</li>
{method_notes}
</ul>
<h2>Images</h2>
<p>Rows: test images; columns: LR input (enlarged, nearest neighbour), each method, HR ground truth.</p>
<img src="grid.png" alt="image grid">
<h3>Zoomed: the most detailed region of each image</h3>
<p>The same region (a quarter of the side, where the HR image has most gradient energy, outlined on the left) \
from every method, enlarged with nearest neighbour.</p>
<img src="zoom.png" alt="zoomed crops">
{diversity_section}
{'<h2>Training loss</h2><img src="loss.png" alt="training loss curves">' if has_losses else ""}
{sampling}
{parts.classification}
{parts.study}
<h2>The paper's numbers</h2>
<p>Published values{paper_note}.</p>
{papers}
{provenance_html}
<details><summary>Preset configuration (as it was when this page was written)</summary>\
<pre>{html.escape(json.dumps(preset, indent=1))}</pre></details>
</body></html>"""
