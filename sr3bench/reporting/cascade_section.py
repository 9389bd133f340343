"""The report's cascade section (docs/cascade.md): a preset whose test LR images are another
preset's outputs (``dataset.lr_from``) ends a chain of models, as SR3's cascades do
(Saharia et al. 2021, Sec. 4.4 and Table 4: a 64x64 class-conditional ImageNet model
followed by SR3 4x, FID-50k 11.3 beside BigGAN's 7.4 / 11.8 and VQ-VAE-2's 38.1). The
section sets the chain's metrics against this preset's test HR images beside single-stage
SR of the same images (``cascade.compare``, read from those presets' result files), and
Table 4 as published, in its shape: method and FID.

Reads files only: this preset's summary (computed by the report) and the compared
presets' ``results/<preset>/<method>.csv`` and ``.json``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from sr3bench.core.stage_files import read_json, read_table
from sr3bench.metrics.table import header
from sr3bench.reporting.tables import comparable_protocol, summarise

TABLE = "sr3_table4_cascade"  # reports/paper/<TABLE>.csv
SET_COLUMNS = ["fid", "kid", "is"]
# Metrics of an output against its own test image: empty when the chain starts from a
# generator, whose images are not of the test images (the evaluate stage leaves them so).
PAIRED_COLUMNS = ["psnr", "ssim", "lpips"]


@dataclass(frozen=True)
class CascadeInputs:
    """``chain``: the stages above this preset, farthest first, each ``{"preset", "title",
    "sizes"}`` (``sizes``: "16x16" for a generator, "16x16 -> 64x64" for SR); ``sizes``:
    this preset's; ``generated``: the chain starts from an unconditional generator;
    ``compare``: single-stage methods of other presets, ``{"preset", "method", "title",
    "sizes", "results"}`` (``results``: the per-image CSV, its set metrics beside it)."""

    chain: list[dict]
    sizes: str
    generated: bool
    compare: list[dict] = field(default_factory=list)


def read_results(results: Path, method: str) -> tuple[pd.DataFrame, dict] | None:
    """One summary row of a compared preset's method and the protocol it was computed
    under (None when it has not run)."""
    results, sidecar = Path(results), Path(results).with_suffix(".json")
    if not results.is_file() or not sidecar.is_file():
        return None
    again = f"run the evaluate stage of {method} again (sr3bench evaluate --method {method}) for that preset"
    set_metrics = read_json(sidecar, again)
    protocol = set_metrics.get("protocol", {})
    row = summarise(
        read_table(results, again).assign(method=method), {method: set_metrics}, protocol.get("description", "")
    )
    return row, protocol


def protocol_differences(ours: dict, theirs: dict) -> list[str]:
    """The protocol's keys whose values differ, but the scale (which a cascade changes) and
    where the weights lay (``comparable_protocol``)."""
    ours, theirs = comparable_protocol(ours), comparable_protocol(theirs)
    return sorted(key for key in set(ours) | set(theirs) if key != "scale" and ours.get(key) != theirs.get(key))


def _chain_text(inputs: CascadeInputs) -> str:
    stages = [
        f"<code>{html.escape(s['preset'])}</code>: {html.escape(s['title'])} ({s['sizes']})" for s in inputs.chain
    ]
    return " &rarr; ".join(stages + [f"this preset ({inputs.sizes})"])


def cascade_section(
    inputs: CascadeInputs | None,
    summary: pd.DataFrame,
    tables: list[dict],
    titles: dict,
    fmt: Callable,
    protocol: dict | None = None,
) -> str:
    """The section's HTML; empty for a preset that is not the end of a chain.
    ``summary``: this preset's metrics (``tables.summarise``); ``fmt(value, column)``:
    how the report prints a value; ``protocol``: the one this preset's results were
    computed under (a compared preset's is checked against it)."""
    if inputs is None:
        return ""
    columns = ["n_images", *SET_COLUMNS, *PAIRED_COLUMNS]
    rows, notes = [], []
    for _, row in summary.iterrows():
        values = {c: row[c] for c in columns}  # a generated chain's PSNR, SSIM, LPIPS: empty since evaluate
        rows.append((f"cascade, last stage {titles.get(row['method'], row['method'])}", inputs.sizes, values))
    for entry in inputs.compare:
        found = read_results(entry["results"], entry["method"])
        label = f"direct: {entry['title']} (<code>{html.escape(entry['preset'])}</code>)"
        if found is None:
            rows.append((label, entry["sizes"], {}))
            notes.append(
                f"{html.escape(str(entry['results']))} not found: run that preset first "
                f"(<code>snakemake --cores 8 --config preset={html.escape(entry['preset'])}</code>); "
                "it is not part of this preset's run."
            )
            continue
        direct, theirs = found
        differences = protocol_differences(protocol or {}, theirs) if protocol is not None else []
        if differences:
            notes.append(
                f"<code>{html.escape(entry['preset'])}</code> was evaluated under another protocol "
                f"({html.escape(', '.join(differences))} differ): re-run its evaluation for numbers that compare "
                "with the chain's."
            )
        rows.append((label, entry["sizes"], {c: direct[c].iloc[0] for c in columns}))
    head = "".join(f"<th>{html.escape(header(c))}</th>" for c in ["method", "sizes", *columns])
    body = "".join(
        f"<tr><td>{label}</td><td>{sizes}</td>"
        + "".join(f"<td>{fmt(values.get(c), c)}</td>" for c in columns)
        + "</tr>"
        for label, sizes, values in rows
    )
    generated = (
        "<p>The chain starts from an unconditional generator: its images are not of the test images, so "
        "PSNR, SSIM and LPIPS against them mean nothing and are left empty; FID and KID compare the sets.</p>"
        if inputs.generated
        else ""
    )
    paper = next((t for t in tables if t["table"] == TABLE), None)
    published = ""
    if paper:
        paper_rows = "".join(
            f"<tr><td>{html.escape(method)}</td><td>{fmt(values.get('fid'), 'fid')}</td></tr>"
            for method, values in paper["rows"].items()
        )
        published = (
            f"<h3>The paper: {html.escape(paper['title'])}</h3>"
            f"<table><thead><tr><th>method</th><th>{html.escape(header('fid'))}</th></tr></thead>"
            f"<tbody>{paper_rows}</tbody></table><p class='cite'>Source: {html.escape(paper['citation'])}</p>"
        )
    count = int(summary["n_images"].max()) if len(summary) else 0
    return (
        f"<h2>Cascade</h2><p>Chain: {_chain_text(inputs)}. Each stage's test LR images are the outputs of the "
        "stage before it (<code>dataset.lr_from</code>); all are scored against this preset's test HR images.</p>"
        f"<p class='note'><b>A miniature</b>: {count} test images and models trained for minutes, not the paper's "
        "cascade; its FID over so few images is dominated by sampling noise and compares only within this table, "
        "never with the paper's FID-50k below (ImageNet, class-conditional, 256x256), whose shape it follows.</p>"
        f"{generated}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        + "".join(f"<p class='note'>{note}</p>" for note in notes)
        + published
    )
