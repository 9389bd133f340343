"""The report's "Human study" section: the measured fool rates beside the paper's, each
with how many raters and trials stand behind it; simulated answers labelled as such."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from sr3bench.study.analysis import StudyAnalysis, bootstrap_without_spread, extreme_images
from sr3bench.study.plan import recognisable_trials

FOOL_RATES_FILE = "fool_rates.csv"  # in reports/paper/
EXTREMES = 3  # worst and best images shown per method


def paper_fool_rates(paper_tables: Path) -> pd.DataFrame:
    path = Path(paper_tables) / FOOL_RATES_FILE
    columns = ["experiment", "task", "method", "fool_rate", "statement", "citation"]
    return pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=columns)


def _percent(value) -> str:
    return "&ndash;" if value is None or pd.isna(value) else f"{100 * value:.1f}%"


def _interval(low, high) -> str:
    return f"<span style='white-space:nowrap'>[{_percent(low)}, {_percent(high)}]</span>"


def extreme_rows(analysis: StudyAnalysis, samples: dict[str, Path], titles: dict) -> list:
    """(method title, [(image file, caption)] of its worst images, then of its best) per
    method, from per-image fool rates pooled over the tasks; with few test images, fewer
    of each so that no image is both."""
    rows = []
    for method in dict.fromkeys(analysis.fool_rates["method"]):
        answered = analysis.per_image[analysis.per_image["method"] == method]
        if method not in samples or answered.empty:
            continue
        count = min(EXTREMES, answered["image"].nunique() // 2)  # no image both worst and best
        worst, best = extreme_images(analysis.per_image, method, max(1, count))
        best = best.head(count)
        tiles = [
            (Path(samples[method]) / row["image"], f"{row['image']}: {100 * row['rate']:.0f}% of {row['trials']}")
            for frame in (worst, best)
            for _, row in frame.iterrows()
        ]
        rows.append((titles.get(method, method), tiles, len(worst)))
    return rows


def study_section(
    plan: dict | None,
    analysis: StudyAnalysis | None,
    paper: pd.DataFrame,
    experiment: str | None,
    titles: dict,
    preset_name: str,
) -> str:
    """The section's HTML; empty without a study."""
    if plan is None:
        return ""
    study = plan["study"]
    design = (
        f"Two-alternative forced choice (SR3, Saharia et al. 2021, Sec. 4.3): a method's output and the real "
        f"photograph side by side for {study['display_ms']} ms, the rater picks the one from a camera. "
        + " ".join(f"Task {task}: &ldquo;{html.escape(text)}&rdquo;" for task, text in study["questions"].items())
        + f" Planned: {study['raters']} raters, each {study['practice_trials']} practice trials (with feedback, "
        f"not analysed), {study['main_trials']} main trials and {study['vigilance_trials']} vigilance trial(s) "
        "(the fake is the LR input enlarged by nearest neighbour)."
    )
    raters_affected, trials_affected = recognisable_trials(plan["raters"])
    if trials_affected:
        design += (
            f" <strong>{raters_affected} of {study['raters']} raters meet the image of {trials_affected} main "
            "trial(s) in another of their trials</strong> and can recognise its photograph there: the study has "
            "too few test images for its trials per rater (docs/human-study.md)."
        )
    if analysis is None:
        return (
            f"<h2>Human study</h2><p>{design}</p><p class='note'>The study is built "
            f"(<code>studies/{html.escape(preset_name)}/site/</code>) but no answers are analysed yet: run it with "
            f"<code>sr3bench study-serve --preset {html.escape(preset_name)}</code> (or host the folder and "
            f"<code>sr3bench study-import</code> the answers), then set <code>study.answers: collected</code> "
            "(docs/human-study.md).</p>"
        )
    label = (
        "<p class='note'><b>Simulated raters, not people.</b> These answers were drawn by the harness with the fool "
        "rates set in <code>study.simulated</code>, to show the analysis end to end. They are not a measurement "
        "and say nothing about the methods.</p>"
        if analysis.simulated
        else ""
    )
    published = paper[paper["experiment"] == experiment] if experiment else paper.iloc[0:0]
    rows = "".join(_row(row, titles, published) for _, row in analysis.fool_rates.iterrows())
    caption = "simulated answers" if analysis.simulated else "answers"
    paper_note = "".join(
        f"<li>{html.escape(str(row['method']))} ({html.escape(str(row['experiment']))}): "
        f"{html.escape(str(row['statement']))}. {html.escape(str(row['citation']))}</li>"
        for _, row in paper.iterrows()
    )
    return f"""<h2>Human study: fool rates{" (SIMULATED)" if analysis.simulated else ""}</h2>
{label}<p>{design}</p>
<table><thead><tr><th>method</th><th>task</th><th>fool rate</th><th>Wilson 95%</th>\
<th>bootstrap 95%</th><th>raters</th><th>trials</th><th>median reaction (ms)</th><th>paper</th></tr></thead>
<tbody>{rows}</tbody></table>
<p class='cite'>Fool rate: the share of main trials in which the method's output was picked as the photograph \
(50%: indistinguishable). Hierarchical bootstrap: raters resampled, then images within each rater, \
{analysis.resamples} times. From {caption} of {analysis.raters_included} raters ({analysis.trials} main trials); \
{analysis.raters_excluded} excluded for failing more than {analysis.max_failed_vigilance} vigilance trial(s), \
{analysis.raters_without_answers} without answers.</p>
<p>The paper's fool rates (SR3 at full scale; "paper" above where this preset reproduces its experiment):</p>
<ul>{paper_note}</ul>
<h3>The images that fooled raters least and most</h3>
<p>Per method, the test images with the lowest and with the highest fool rates (up to {EXTREMES} of each, \
pooled over tasks), as in the paper's appendix.</p>
<img src="study_images.png" alt="images with the lowest and highest fool rates">"""


def _row(row, titles: dict, published: pd.DataFrame) -> str:
    matches = published[
        (published["method"] == row["method"]) & (published["task"].isna() | (published["task"] == row["task"]))
    ]
    paper_text = html.escape(str(matches["statement"].iloc[0])) if len(matches) else "&ndash;"
    reaction = "&ndash;" if pd.isna(row["reaction_ms_median"]) else f"{row['reaction_ms_median']:.0f}"
    flat = (
        "<br><span class='ci'>no spread: every rater at the same end; read Wilson's</span>"
        if bootstrap_without_spread(row)
        else ""
    )
    return (
        f"<tr><td>{html.escape(titles.get(row['method'], row['method']))}</td><td>{int(row['task'])}</td>"
        f"<td>{_percent(row['rate'])}</td><td>{_interval(row['wilson_low'], row['wilson_high'])}</td>"
        f"<td>{_interval(row['bootstrap_low'], row['bootstrap_high'])}{flat}</td><td>{int(row['raters'])}</td>"
        f"<td>{int(row['trials'])}</td><td>{reaction}</td><td>{paper_text}</td></tr>"
    )
