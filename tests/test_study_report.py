"""The report's "Human study" section: measured fool rates beside the paper's, cited, with
how many raters and trials stand behind each; simulated answers labelled wherever shown."""

from pathlib import Path

import pandas as pd
from conftest import REPO

from sr3bench.reporting.study_section import paper_fool_rates, study_section
from sr3bench.study import analysis
from sr3bench.study.plan import StudyDesign, plan_trials, recognisable_trials
from sr3bench.study.simulate import simulate_answers

DESIGN = StudyDesign(("regression", "sr3"), tuple(f"{i:02d}.png" for i in range(20)), (1, 2), 10, 20, 1, 0.1, 0)
PLAN = {
    "study": {
        "display_ms": 3000,
        "questions": {"1": "Which of the two...", "2": "Which image would you guess is from a camera?"},
        "raters": 10,
        "practice_trials": 1,
        "main_trials": 20,
        "vigilance_trials": 2,
    },
    "raters": plan_trials(DESIGN),  # every rater sees all 20 images: practice and vigilance reuse them
}


def analysed(origin: str) -> analysis.StudyAnalysis:
    trials = [trial for rater in plan_trials(DESIGN).values() for trial in rater]
    answers = simulate_answers(
        trials, {"regression": 0.2, "sr3": 0.45}, 0.5, 0.5, inattentive_share=0.1, seed=1, display_ms=3000
    ).assign(origin=origin)
    return analysis.analyse(answers, DESIGN.methods, DESIGN.images, resamples=500)


def section(result, experiment="faces16_128") -> str:
    titles = {"sr3": "SR3", "regression": "Regression"}
    return study_section(PLAN, result, paper_fool_rates(REPO / "reports" / "paper"), experiment, titles, "faces")


def test_simulated_answers_are_labelled_and_the_counts_stated():
    result = analysed("simulated")
    html = section(result)
    assert "Human study: fool rates (SIMULATED)" in html and "Simulated raters, not people." in html
    assert f"From simulated answers of {result.raters_included} raters ({result.trials} main trials)" in html
    assert "500 times" in html
    raters, trials = recognisable_trials(PLAN["raters"])
    assert (
        raters and f"{raters} of 10 raters meet the image of {trials} main trial(s) in another of their trials" in html
    )
    for _, row in result.fool_rates.iterrows():
        assert f"{100 * row['rate']:.1f}%" in html


def test_human_answers_are_not_labelled_simulated_and_the_paper_is_cited_beside_them():
    html = section(analysed("served"))
    assert "SIMULATED" not in html and "Simulated raters" not in html
    assert "close to 50%" in html.split("<tbody>")[1].split("</tbody>")[0]  # SR3's row, faces experiment
    assert "arXiv:2104.07636, abstract and Sec. 4.3" in html


def test_a_study_without_answers_says_how_to_run_it_and_no_study_no_section():
    html = section(None)
    assert "no answers are analysed yet" in html and "sr3bench study-serve --preset faces" in html
    assert study_section(None, None, pd.DataFrame(), None, {}, "demo") == ""


def test_the_paper_fool_rates_are_data_with_their_citation():
    table = paper_fool_rates(REPO / "reports" / "paper")
    assert set(table.columns) >= {"experiment", "task", "method", "fool_rate", "statement", "citation"}
    assert table["citation"].str.contains("Saharia et al. 2021").all()
    assert not paper_fool_rates(Path("/nonexistent")).shape[0]
