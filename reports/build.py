"""The report stage: metrics.csv, per_image.csv, metrics.json and index.html for a preset.

Reads only files (per-method metric CSVs, the dataset manifest, loss logs, SR images);
imports neither ``sr3`` nor ``baselines``.
"""
from __future__ import annotations

import datetime
import html
import json
import subprocess
from pathlib import Path

import pandas as pd

from reports import figures, paper
from reports.tables import METRIC_COLUMNS, summarise

METHOD_TITLES = {"bicubic": "Bicubic", "regression": "Regression", "sr3": "SR3"}
GRID_ROWS = 6
FID_MIN_IMAGES = 2048  # below the Inception feature size, FID's covariance is rank-deficient


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _format(value, column: str) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "&ndash;"
    digits = {"psnr": 2, "ssim": 4, "consistency": 2, "fid": 2, "kid": 4, "is": 2, "lpips": 4}.get(column)
    return f"{value:.{digits}f}" if digits is not None and isinstance(value, (int, float)) else html.escape(str(value))


def html_table(table: pd.DataFrame, columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_format(row[c], c)}</td>" for c in columns) + "</tr>" for _, row in table.iterrows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def paper_table(spec: dict) -> str:
    columns = spec["columns"]
    head = "<th>method</th>" + "".join(f"<th>{c}</th>" for c in columns)
    rows = "".join(
        f"<tr><td>{html.escape(m)}</td>" + "".join(f"<td>{_format(v.get(c), c)}</td>" for c in columns) + "</tr>"
        for m, v in spec["rows"].items()
    )
    return f"<h3>{html.escape(spec['title'])}</h3><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def unavailable_notes(set_metrics: dict[str, dict]) -> dict[str, str]:
    """'metric (methods)' -> reason, for every metric a method left empty."""
    reasons: dict[tuple[str, str], list[str]] = {}
    for method, values in set_metrics.items():
        for metric, reason in values.get("unavailable", {}).items():
            reasons.setdefault((metric, reason), []).append(method)
    return {f"{metric.upper()} ({', '.join(methods)})": reason for (metric, reason), methods in reasons.items()}


def build_report(preset_name: str, preset: dict, results: dict[str, Path], data_dir: Path, samples: dict[str, Path], losses: dict[str, Path], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    per_image = pd.concat([pd.read_csv(path) for path in results.values()], ignore_index=True)
    protocol = per_image.attrs.get("protocol") or describe_protocol(preset)
    set_metrics = {m: json.loads(p.with_suffix(".json").read_text()) if p.with_suffix(".json").exists() else {} for m, p in results.items()}
    notes = unavailable_notes(set_metrics)
    summary = summarise(per_image, set_metrics, protocol)
    by_group = summarise(per_image, set_metrics, protocol, by=["group"])
    summary.to_csv(out / "metrics.csv", index=False)
    by_group.to_csv(out / "metrics_by_group.csv", index=False)
    per_image.to_csv(out / "per_image.csv", index=False)
    metrics_json = {row["method"]: {c: (None if pd.isna(row[c]) else float(row[c])) for c in ["n_images"] + METRIC_COLUMNS} for _, row in summary.iterrows()}
    (out / "metrics.json").write_text(json.dumps(metrics_json, indent=1))

    test_dir = Path(data_dir) / "test"
    names = sorted(p.name for p in (test_dir / "hr").iterdir())
    step = max(1, len(names) // GRID_ROWS)
    grid_names = names[::step][:GRID_ROWS]
    columns = [("LR (input)", test_dir / "lr")] + [(METHOD_TITLES.get(m, m), f) for m, f in samples.items()] + [("HR (truth)", test_dir / "hr")]
    figures.image_grid(grid_names, columns, out / "grid.png")
    if losses:
        figures.loss_curves(losses, out / "loss.png")
    sources = sorted({str(v.get("inception_weights")) for v in set_metrics.values() if v})
    (out / "index.html").write_text(render_html(preset_name, preset, summary, by_group, notes, bool(losses), sources))


def describe_protocol(preset: dict) -> str:
    color, border = preset["protocol"]["color"], preset["protocol"]["border_crop"]
    return f"{'Y channel (BT.601)' if color == 'y' else 'RGB'}, border crop {border} px"


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.note{background:#fff7e0;border-left:4px solid #e0a000;padding:.5em 1em}code{background:#f4f4f4;padding:0 .2em}
"""


def render_html(preset_name, preset, summary, by_group, notes, has_losses, inception_sources) -> str:
    dataset, training = preset["dataset"], preset["training"]
    count = int(summary["n_images"].max())
    n_test = f"{count} test images"
    missing = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in notes.items())
    inference = preset["diffusion"]["inference_schedule"]
    train_schedule = preset["diffusion"]["training_schedule"]
    papers = "".join(paper_table(spec) for spec in paper.ALL_TABLES)
    fid_warning = (
        f"<p class='note'>FID, KID and IS over {count} images are dominated by sampling noise "
        f"(FID needs thousands of images; below {FID_MIN_IMAGES} its covariance estimate is rank-deficient). "
        "KID is an unbiased estimate and can be negative on so few images. "
        "Compare these only between methods of this report, never with the paper.</p>"
        if count < FID_MIN_IMAGES else ""
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>SR3 Bench: {html.escape(preset_name)}</title>
<style>{STYLE}</style></head><body>
<h1>SR3 Bench report: preset <code>{html.escape(preset_name)}</code></h1>
<p>{html.escape(preset.get('description', ''))}</p>
<h2>Reproduced metrics ({n_test})</h2>
{html_table(summary, ['method', 'n_images'] + METRIC_COLUMNS)}
{fid_warning}
{"<p>Metrics left empty, and why:</p><ul>" + missing + "</ul>" if missing else ""}
<h3>Per test group</h3>
{html_table(by_group, ['method', 'group', 'n_images', 'psnr', 'ssim', 'consistency'] + (['lpips'] if by_group['lpips'].notna().any() else []))}
<h2>Protocol</h2>
<ul>
<li>Scale x{dataset['scale']}; LR images {'provided by the dataset' if dataset['lr_source'] == 'provided' else 'made from the HR images'} with a MATLAB-compatible bicubic <code>imresize</code> (cubic kernel a = -0.5, antialiased).
The bicubic baseline and SR3's conditioning input use the same resizer for upsampling.</li>
<li>All metrics are computed on the saved uint8 PNG images (values rounded to 0..255).</li>
<li>PSNR and SSIM: {html.escape(summary['protocol'].iloc[0])}; SSIM with Gaussian window sigma 1.5, K1 = 0.01, K2 = 0.03, population covariance, data range 255 (Wang et al. 2004, scikit-image).
Grey (one-channel) HR images are compared in their grey values, as the MATLAB scripts do.</li>
<li>FID, KID (torch-fidelity, TF-Inception-compatible features; Inception weights: {html.escape(', '.join(inception_sources))}) and IS
are computed on each method's {count} SR images against the reference set of the {count} HR test images; LPIPS is AlexNet LPIPS v0.1 (lpips package), per image, averaged.</li>
<li>Consistency: MSE between the LR input and the SR output downsampled with the same operator, pixels in [0, 1], in units of 1e-5 (the paper's Table 1).</li>
<li>SR3: noise-conditioned on the continuous noise level gamma; trained with a {train_schedule['steps']}-step linear schedule
(beta {train_schedule['beta_start']:g} to {train_schedule['beta_end']:g}); sampled with ancestral sampling over a {inference['steps']}-step schedule
(beta {inference['beta_start']:g} to {inference['beta_end']:g}) from the EMA weights; {training['sr3']['steps']} training steps.
Regression: the same UNet without noise conditioning, MSE to the HR image, {training['regression']['steps']} steps.</li>
</ul>
<h2>Images</h2>
<p>Rows: test images; columns: LR input (enlarged, nearest neighbour), each method, HR ground truth.</p>
<img src="grid.png" alt="image grid">
{'<h2>Training loss</h2><img src="loss.png" alt="training loss curves">' if has_losses else ''}
<h2>The paper's numbers</h2>
<p>Published values, for comparison when this preset matches the paper's setting; the <code>demo</code> preset does not.</p>
{papers}
<h2>Provenance</h2>
<p>Generated {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} from commit <code>{git_commit()}</code>.
Per-image values: <a href="per_image.csv">per_image.csv</a>; summary: <a href="metrics.csv">metrics.csv</a>.</p>
<details><summary>Preset configuration</summary><pre>{html.escape(json.dumps(preset, indent=1))}</pre></details>
</body></html>"""
