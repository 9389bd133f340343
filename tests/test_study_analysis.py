"""The study analysis: exact fool rates, intervals, exclusions and per-image rates of a
hand-written answer table; the bootstrap's edge cases; rates recovered from simulated
answers; and malformed answers refused with a message naming the problem."""

import dataclasses
import json
import math
import time

import numpy as np
import pandas as pd
import pytest

from sr3bench.study import analysis
from sr3bench.study.analysis import ANSWER_COLUMNS, StudyError, analyse, extreme_images, wilson_interval
from sr3bench.study.simulate import simulate_answers

METHODS = ["sr3", "regression"]
IMAGES = ["im1.png", "im2.png", "im3.png", "im4.png"]


def answer(rater, trial, kind, image, method, fooled, reaction_ms=1500.0, task=1, origin="served"):
    method_side = "left" if trial % 2 else "right"
    other_side = "right" if method_side == "left" else "left"
    return {
        "rater": rater,
        "session": f"session-{rater}",
        "trial": trial,
        "kind": kind,
        "task": task,
        "image": image,
        "method": method,
        "method_side": method_side,
        "choice": method_side if fooled else other_side,
        "reaction_ms": reaction_ms,
        "display_ms": 3000.0 + trial,
        "timestamp": f"2021-01-01T00:00:{trial:02d}.000Z",
        "user_agent": "test",
        "origin": origin,
    }


def rater_rows(rater, sr3_fooled, regression_fooled, vigilance_fooled, reactions):
    """A practice trial (fooled: must not count), four sr3 and four regression main trials
    (one per image), and a vigilance trial."""
    rows = [answer(rater, 0, "practice", "im1.png", "sr3", True)]
    for index, (image, fooled) in enumerate(zip(IMAGES, sr3_fooled)):
        rows.append(answer(rater, 1 + index, "main", image, "sr3", fooled, reactions[index]))
    for index, (image, fooled) in enumerate(zip(IMAGES, regression_fooled)):
        rows.append(answer(rater, 5 + index, "main", image, "regression", fooled))
    rows.append(answer(rater, 9, "vigilance", "im2.png", "vigilance", vigilance_fooled))
    return rows


def hand_table() -> pd.DataFrame:
    """Raters A and B pass vigilance; C fails it, and would have been fooled every time."""
    rows = (
        rater_rows("A", [1, 1, 0, 0], [0, 0, 0, 0], False, [1000, 1100, 1200, 1300])
        + rater_rows("B", [1, 0, 0, 0], [0, 0, 0, 1], False, [1400, 1500, 1600, 1700])
        + rater_rows("C", [1, 1, 1, 1], [1, 1, 1, 1], True, [100, 100, 100, 100])
    )
    return pd.DataFrame(rows, columns=list(ANSWER_COLUMNS))


def test_wilson_bounds_match_the_closed_form_and_solve_the_score_equation():
    # 3 of 8, z = 1.959963984540054: the closed form evaluated with 50-digit decimals
    low, high = wilson_interval(3, 8)
    assert low == pytest.approx(0.13684428582359737258, abs=1e-9)
    assert high == pytest.approx(0.69425760539737268064, abs=1e-9)
    # Wilson's bounds are the p with (3/8 - p)^2 = z^2 p (1 - p) / 8
    for p in (low, high):
        assert (0.375 - p) ** 2 == pytest.approx(1.959963984540054**2 * p * (1 - p) / 8, abs=1e-12)
    assert wilson_interval(1, 8) == pytest.approx((0.02241749145005667280, 0.47088818221285348687), abs=1e-9)
    assert wilson_interval(2, 4) == pytest.approx((0.15003898915214951416, 0.84996101084785048584), abs=1e-9)
    assert all(math.isnan(bound) for bound in wilson_interval(0, 0))


def test_hand_table_fool_rates_exclusions_and_per_image_rates():
    result = analyse(hand_table(), METHODS, IMAGES, max_failed_vigilance=0, resamples=200, seed=1)
    rates = result.fool_rates.set_index("method")
    assert list(result.fool_rates["method"]) == METHODS and set(result.fool_rates["task"]) == {1}
    assert rates.loc["sr3", ["trials", "raters", "fooled"]].tolist() == [8, 2, 3]
    assert rates.loc["sr3", "rate"] == 3 / 8
    assert rates.loc["sr3", "wilson_low"] == pytest.approx(0.13684428582359737258, abs=1e-9)
    assert rates.loc["sr3", "wilson_high"] == pytest.approx(0.69425760539737268064, abs=1e-9)
    assert rates.loc["regression", ["trials", "fooled"]].tolist() == [8, 1]
    assert rates.loc["regression", "rate"] == 1 / 8
    for method in METHODS:
        low, rate, high = rates.loc[method, ["bootstrap_low", "rate", "bootstrap_high"]]
        assert 0 <= low <= rate <= high <= 1 and low < high
    assert (result.fool_rates["bootstrap_resamples"] == 200).all()
    # reaction times of sr3's 8 included trials, 1000..1700 ms: numpy's linear percentiles
    assert rates.loc["sr3", ["reaction_ms_q25", "reaction_ms_median", "reaction_ms_q75"]].tolist() == [
        1175.0,
        1350.0,
        1525.0,
    ]
    assert rates.loc["sr3", "display_ms_median"] == 3002.5  # trials 1..4 of A and B

    raters = result.raters.set_index("rater")
    assert raters.loc["C", "excluded"] and raters.loc["C", "status"] == "failed vigilance"
    assert not raters.loc["A", "excluded"] and not raters.loc["B", "excluded"]
    assert raters.loc["C", ["main_trials", "vigilance_trials", "failed_vigilance"]].tolist() == [8, 1, 1]
    assert raters.loc["B", ["main_trials", "main_fooled", "failed_vigilance"]].tolist() == [8, 2, 0]
    assert raters.loc["A", "tasks"] == "1"
    assert (result.raters_included, result.raters_excluded, result.trials) == (2, 1, 16)
    assert not result.simulated

    per_image = result.per_image.set_index(["method", "image"])
    assert per_image.loc[("sr3", "im1.png"), ["trials", "fooled"]].tolist() == [2, 2]
    assert [per_image.loc[("sr3", image), "rate"] for image in IMAGES] == [1.0, 0.5, 0.0, 0.0]
    assert [per_image.loc[("regression", image), "rate"] for image in IMAGES] == [0.0, 0.0, 0.0, 0.5]
    worst, best = extreme_images(result.per_image, "sr3", k=2)
    assert list(worst["image"]) == ["im3.png", "im4.png"] and list(best["image"]) == ["im1.png", "im2.png"]


def test_a_higher_vigilance_threshold_keeps_the_rater_who_failed_once():
    result = analyse(hand_table(), METHODS, IMAGES, max_failed_vigilance=1, resamples=50)
    rates = result.fool_rates.set_index("method")
    assert rates.loc["sr3", ["trials", "raters", "fooled"]].tolist() == [12, 3, 7]
    assert not result.raters["excluded"].any()


def test_expected_raters_without_main_answers_are_listed_and_left_out():
    practice_only = pd.DataFrame([answer("E", 0, "practice", "im1.png", "sr3", False)])
    table = pd.concat([hand_table(), practice_only], ignore_index=True)
    result = analyse(table, METHODS, IMAGES, resamples=50, raters=["A", "B", "C", "D", "E"])
    raters = result.raters.set_index("rater")
    for rater in ("D", "E"):
        assert raters.loc[rater, "status"] == "no answers" and raters.loc[rater, "excluded"]
        assert raters.loc[rater, "main_trials"] == 0
    assert result.raters_without_answers == 2 and result.raters_included == 2
    with pytest.raises(StudyError, match=r"rater.*'C'.*expected raters"):
        analyse(hand_table(), METHODS, IMAGES, raters=["A", "B"])


def test_write_and_read_give_the_same_analysis(tmp_path):
    result = analyse(hand_table(), METHODS, IMAGES, resamples=100, seed=3, raters=["A", "B", "C", "D"])
    assert result.raters.set_index("rater").loc["D", "tasks"] == ""  # expected, never answered
    analysis.write(result, tmp_path / "study")
    again = analysis.read(tmp_path / "study")
    for table in ("fool_rates", "per_image", "raters"):
        pd.testing.assert_frame_equal(getattr(again, table), getattr(result, table), check_exact=True)
    for field in dataclasses.fields(analysis.StudyAnalysis)[3:]:
        assert getattr(again, field.name) == getattr(result, field.name), field.name
    facts = json.loads((tmp_path / "study" / "summary.json").read_text())
    assert facts["resamples"] == 100 and facts["simulated"] is False and facts["max_failed_vigilance"] == 0
    assert {(row["method"], row["rate"]) for row in facts["headline"]} == {("sr3", 3 / 8), ("regression", 1 / 8)}


def test_bootstrap_of_one_rater_with_identical_answers_is_a_point():
    rows = [answer("A", index, "main", IMAGES[index % 4], "sr3", True) for index in range(6)]
    result = analyse(pd.DataFrame(rows), ["sr3"], IMAGES, resamples=1000)
    row = result.fool_rates.iloc[0]
    assert row["bootstrap_low"] == row["bootstrap_high"] == row["rate"] == 1.0
    assert row["wilson_low"] < 1.0  # Wilson's interval does not collapse
    assert analysis.bootstrap_without_spread(row)  # the log and the report say so
    from sr3bench.reporting.study_section import _row

    assert "no spread: every rater at the same end; read Wilson's" in _row(
        row, {}, pd.DataFrame(columns=["method", "task"])
    )


def test_a_planned_task_without_answers_keeps_its_rows():
    rows = [answer("A", index, "main", IMAGES[index % 4], "sr3", index % 2 == 0) for index in range(4)]
    result = analyse(pd.DataFrame(rows), ["sr3"], IMAGES, resamples=50, tasks=[1, 2])
    rates = result.fool_rates.set_index("task")
    assert list(rates.index) == [1, 2] and rates.loc[2, "trials"] == 0 and rates.loc[1, "trials"] == 4
    assert not analysis.bootstrap_without_spread(rates.loc[2])  # nothing answered: nothing to flag


def test_bootstrap_is_deterministic_for_a_seed_and_changes_with_it():
    table = hand_table()
    first, second = (analyse(table, METHODS, IMAGES, resamples=1000, seed=7) for _ in range(2))
    pd.testing.assert_frame_equal(first.fool_rates, second.fool_rates, check_exact=True)
    trials, fooled = np.full(50, 50), np.arange(50)
    draws = [analysis.hierarchical_bootstrap(trials, fooled, 1000, np.random.default_rng(seed)) for seed in (7, 7, 8)]
    assert draws[0] == draws[1] != draws[2]


def test_bootstrap_of_50_raters_by_50_trials_by_1000_resamples_is_fast():
    rng = np.random.default_rng(0)
    trials, fooled = np.full(50, 50), rng.integers(0, 51, 50)
    started = time.perf_counter()
    low, high = analysis.hierarchical_bootstrap(trials, fooled, 1000, rng)
    assert time.perf_counter() - started < 1.0
    assert low < fooled.sum() / trials.sum() < high


def simulated_plan(raters=40, images=40, vigilance=10):
    """Each rater answers every image once, half with each method (alternating across
    raters), after two practice trials, with vigilance trials at the end."""
    names = [f"im{index:02d}.png" for index in range(images)]
    plan = []
    for rater_index in range(raters):
        rater = f"r{rater_index:03d}"
        trials = [("practice", names[0], "a"), ("practice", names[1], "b")]
        trials += [("main", name, "ab"[(rater_index + index) % 2]) for index, name in enumerate(names)]
        trials += [("vigilance", names[index], "vigilance") for index in range(vigilance)]
        for index, (kind, image, method) in enumerate(trials):
            side = "left" if (rater_index + index) % 3 else "right"
            plan.append(
                {
                    "rater": rater,
                    "trial": index,
                    "kind": kind,
                    "task": 1,
                    "image": image,
                    "method": method,
                    "method_side": side,
                }
            )
    return plan, names


TRUE_RATES = {"a": 0.5, "b": 0.3}


def population_rate(rate, sd):
    """E[sigmoid(logit(rate) + e)], e ~ N(0, sd): the pooled rate the simulation aims at
    (Gauss-Hermite quadrature)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    logit = math.log(rate / (1 - rate))
    return float(np.sum(weights / (1 + np.exp(-(logit + sd * nodes)))) / math.sqrt(2 * math.pi))


def test_simulated_rates_are_recovered_and_inattentive_raters_excluded():
    plan, images = simulated_plan(vigilance=16)
    answers = simulate_answers(plan, TRUE_RATES, 0.3, 0.3, inattentive_share=0.1, seed=11, display_ms=3000)
    result = analyse(answers, ["a", "b"], images, max_failed_vigilance=3, resamples=1000, seed=0)
    assert result.simulated
    for method, rate in TRUE_RATES.items():
        row = result.fool_rates.set_index("method").loc[method]
        assert row["bootstrap_low"] <= rate <= row["bootstrap_high"], (method, row)
    # 4 inattentive raters of 40 answer vigilance at random (8 of 16 failed, on average);
    # the attentive ones fail 2% of them
    inattentive = answers.attrs["inattentive_raters"]
    assert len(inattentive) == 4
    excluded = result.raters.loc[result.raters["excluded"], "rater"]
    assert sorted(excluded) == inattentive
    assert result.raters_included == 36 and result.trials == 36 * 40


def test_bootstrap_interval_covers_the_population_rate_over_seeds():
    plan, images = simulated_plan(vigilance=0)
    target = {method: population_rate(rate, math.hypot(0.3, 0.3)) for method, rate in TRUE_RATES.items()}
    covered = dict.fromkeys(TRUE_RATES, 0)
    for seed in range(20):
        answers = simulate_answers(plan, TRUE_RATES, 0.3, 0.3, inattentive_share=0, seed=100 + seed, display_ms=3000)
        rates = analyse(answers, ["a", "b"], images, resamples=1000, seed=seed).fool_rates.set_index("method")
        for method in TRUE_RATES:
            covered[method] += bool(
                rates.loc[method, "bootstrap_low"] <= target[method] <= rates.loc[method, "bootstrap_high"]
            )
    assert all(count >= 16 for count in covered.values()), covered


def test_simulation_is_deterministic_labelled_and_shaped_like_answers():
    plan, _ = simulated_plan(raters=4, images=6, vigilance=2)
    first = simulate(plan, seed=5)
    pd.testing.assert_frame_equal(first, simulate(list(reversed(plan)), seed=5))
    assert not first.equals(simulate(plan, seed=6))
    assert list(first.columns) == list(ANSWER_COLUMNS) and len(first) == len(plan)
    assert set(first["origin"]) == {"simulated"} and set(first["user_agent"]) == {"simulated rater"}
    assert first.groupby("rater")["session"].nunique().eq(1).all() and first["session"].nunique() == 4
    assert (first["display_ms"] >= 3000).all() and (first["display_ms"] < 3100).all()
    assert 1000 < first["reaction_ms"].median() < 2200
    assert pd.to_datetime(first["timestamp"]).is_monotonic_increasing
    with pytest.raises(ValueError, match="lacks method_side"):
        simulate([{k: v for k, v in plan[0].items() if k != "method_side"}])
    with pytest.raises(ValueError, match="no fool rate given for method.*b"):
        simulate(plan, rates={"a": 0.5})


def refused(table, match, **options):
    with pytest.raises(StudyError, match=match):
        analyse(table, METHODS, IMAGES, **options)


def test_malformed_answers_are_refused_naming_the_problem():
    table = hand_table()
    refused(table.drop(columns=["choice"]), r"lack column\(s\) choice")
    refused(table.assign(comment="x"), r"unknown column\(s\) comment")
    refused(table.replace({"method": {"regression": "sr4"}}), r"method is 'sr4'.*rater 'A', trial 5.*study's methods")
    refused(table.iloc[0:0], "no answers: the table is empty")
    refused(table[table["kind"] == "practice"], "no answers: none of the 3 rows is a main trial")
    duplicated = pd.concat([table, table.iloc[[3]]], ignore_index=True)
    refused(duplicated, r"answered more than once \(rater 'A', trial 3\)")
    mixed = table.assign(origin=np.where(table["rater"] == "C", "simulated", "served"))
    refused(mixed, "simulated answers are mixed with served ones")
    bad_choice = table.copy()
    bad_choice.loc[4, "choice"] = "middle"
    refused(bad_choice, r"choice is 'middle'.*rater 'A', trial 4.*left \| right")
    refused(table.assign(task=3), r"task is 3.*1 \| 2")
    refused(table.replace({"image": {"im4.png": "im9.png"}}), r"image is 'im9.png'")


def simulate(plan, seed=0, rates=None):
    return simulate_answers(plan, rates or TRUE_RATES, 0.3, 0.3, inattentive_share=0, seed=seed, display_ms=3000)
