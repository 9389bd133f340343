"""The human study's trial plans (sr3bench/study/plan.py) and its folder (build.py): balanced,
seeded, self-contained; and its place in the stage table and the config."""

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import config, stage_table
from sr3bench.study.build import StudyBuildError, build_study
from sr3bench.study.plan import (
    CLIENT_STUDY_KEYS,
    VIGILANCE,
    StudyDesign,
    page_link,
    plan_trials,
    rater_page,
    read_plan,
    recognisable_trials,
    shown_files,
)

PAPER = StudyDesign(
    methods=("sr3", "regression"),
    images=tuple(f"{i:03d}.png" for i in range(100)),
    tasks=(1, 2),
    raters=50,
    images_per_rater=50,
    practice_trials=3,
    vigilance_share=0.1,
    seed=0,
)


def main_trials(plans):
    return [t for trials in plans.values() for t in trials if t["kind"] == "main"]


def test_every_pair_is_shown_to_equally_many_raters_give_or_take_one_and_never_twice_to_one():
    plans = plan_trials(PAPER)
    shown = Counter((t["task"], t["image"], t["method"]) for t in main_trials(plans))
    assert len(shown) == 2 * 100 * 2  # every pair of both tasks
    assert max(shown.values()) - min(shown.values()) <= 1
    for trials in plans.values():
        pairs = [(t["image"], t["method"]) for t in trials if t["kind"] == "main"]
        assert len(pairs) == len(set(pairs)) == 50


def test_sides_are_balanced_per_rater_and_per_method_and_tasks_alternate_between_raters():
    plans = plan_trials(PAPER)
    for index, trials in enumerate(plans.values()):
        for method in PAPER.methods:
            sides = Counter(t["method_side"] for t in trials if t["kind"] == "main" and t["method"] == method)
            assert abs(sides["left"] - sides["right"]) <= 1
        assert {t["task"] for t in trials} == {1 + index % 2}
    per_method = Counter((t["task"], t["method"], t["method_side"]) for t in main_trials(plans))
    for task in PAPER.tasks:
        for method in PAPER.methods:
            assert abs(per_method[(task, method, "left")] - per_method[(task, method, "right")]) <= 1


def test_a_rater_sees_distinct_images_the_methods_in_turn_and_practice_and_vigilance_on_other_images():
    for trials in plan_trials(PAPER).values():
        main = [t for t in trials if t["kind"] == "main"]
        assert len({t["image"] for t in main}) == len(main) == 50
        assert Counter(t["method"] for t in main) == {"sr3": 25, "regression": 25}
        # a practice trial names the photograph, a vigilance trial shows it beside an obvious fake
        assert not {t["image"] for t in trials if t["kind"] != "main"} & {t["image"] for t in main}


def test_too_few_images_for_the_trials_per_rater_are_warned_of_at_build(sources, caplog):
    root, design = sources  # 3 images, every rater's main trials use them all
    with caplog.at_level(logging.WARNING):
        plan = build(root, design)
    raters, trials = recognisable_trials(plan["raters"])
    assert raters == 4 and trials > 0
    assert "study of demo: 4 of 4 raters see the photograph of one of their main trials again" in caplog.text
    assert f"({trials} main trials in all)" in caplog.text
    assert "3 test images are too few for 6 main, 1 practice and 1 vigilance trials per rater" in caplog.text
    assert "at most the 3 test images" in caplog.text


def test_too_few_images_for_the_trials_per_rater_are_counted_as_recognisable_trials():
    assert recognisable_trials(plan_trials(PAPER)) == (0, 0)
    tight = StudyDesign(("sr3", "regression"), tuple(f"{i}.png" for i in range(8)), (1,), 3, 8, 2, 0.25, 0)
    raters, trials = recognisable_trials(plan_trials(tight))
    assert raters == 3 and 3 * 2 <= trials <= 3 * 8, "practice and vigilance trials have no images of their own"
    repeated = StudyDesign(("sr3", "regression"), ("a.png", "b.png"), (1,), 1, 4, 0, 0, 0)
    assert recognisable_trials(plan_trials(repeated)) == (1, 4), "each image twice in the main trials"


def test_practice_first_vigilance_spread_never_first_and_indices_consecutive():
    for trials in plan_trials(PAPER).values():
        kinds = [t["kind"] for t in trials]
        assert kinds[:3] == ["practice"] * 3 and kinds[3] == "main"
        assert kinds.count("vigilance") == 5
        assert all(t["method"] == VIGILANCE for t in trials if t["kind"] == "vigilance")
        assert [t["trial"] for t in trials] == list(range(len(trials)))


def test_a_plan_is_the_same_for_a_seed_and_another_for_another_seed():
    assert plan_trials(PAPER) == plan_trials(PAPER)
    other = plan_trials(StudyDesign(**{**PAPER.__dict__, "seed": 1}))
    assert other != plan_trials(PAPER)


def test_a_small_set_caps_the_trials_at_one_per_pair_and_still_balances():
    small = StudyDesign(("a", "b", "c"), ("x.png", "y.png", "z.png"), (1, 2), 12, 50, 2, 0.1, 0)
    assert small.main_trials == 9 and small.vigilance_trials == 1
    plans = plan_trials(small)
    for trials in plans.values():
        assert len(trials) == 2 + 9 + 1
        assert len({(t["image"], t["method"]) for t in trials if t["kind"] == "main"}) == 9
    assert set(Counter((t["task"], t["image"], t["method"]) for t in main_trials(plans)).values()) == {6}


def test_a_raters_page_gets_their_trials_only_no_method_no_image_name_and_no_side_but_the_practice_feedback():
    plan = {"study": {key: 0 for key in CLIENT_STUDY_KEYS} | {"methods": ["sr3"]}, "raters": {}}
    trials = plan_trials(StudyDesign(("sr3", "bicubic"), ("a.png", "b.png"), (1,), 2, 4, 1, 0.25, 0))
    plan["raters"] = {
        r: [{**t, "left": f"images/{r}{t['trial']}l.png", "right": "images/2.png", "lr": "images/3.png"} for t in ts]
        for r, ts in trials.items()
    }
    page = rater_page(plan, "r001")
    text = json.dumps(page)
    assert not any(word in text for word in ("sr3", "bicubic", "a.png", "b.png", "method", 'image"', "r000"))
    assert page["rater"] == "r001" and len(page["trials"]) == len(plan["raters"]["r001"])
    for trial, full in zip(page["trials"], plan["raters"]["r001"]):
        assert trial["left"] == full["left"]
        assert ("real_side" in trial) == (full["kind"] == "practice")
        if "real_side" in trial:
            assert trial["real_side"] != full["method_side"]


def write_images(folder, names, size, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / name)


@pytest.fixture
def sources(tmp_path):
    names = ["a.png", "b.png", "c.png"]
    write_images(tmp_path / "hr", names, 32, 0)
    write_images(tmp_path / "lr", names, 8, 1)
    write_images(tmp_path / "sr3", names, 32, 2)
    write_images(tmp_path / "bicubic", names, 32, 3)
    return tmp_path, StudyDesign(("sr3", "bicubic"), tuple(names), (1, 2), 4, 50, 1, 0.1, 0)


def build(root, design, answers=None):
    methods = {m: root / m for m in design.methods}
    return build_study(
        root / "site", root / "plan.json", design, root / "hr", root / "lr", methods, 3000, "demo", answers
    )


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


def page_of(site, plan, rater):
    text = (site / "raters" / f"{plan['pages'][rater]}.js").read_text()
    assert text.startswith("window.STUDY = ") and text.endswith(";\n")
    return json.loads(text.removeprefix("window.STUDY = ").removesuffix(";\n"))


def test_the_study_folder_holds_every_image_of_its_plan_and_no_external_reference(sources):
    root, design = sources
    site = root / "site"
    plan = build(root, design)
    assert read_plan(root / "plan.json") == json.loads(json.dumps(plan)) and not (site / "plan.json").exists()
    assert sorted(p.name for p in (site / "raters").iterdir()) == sorted(
        f"{page}.js" for page in plan["pages"].values()
    )
    for rater, trials in plan["raters"].items():
        assert page_of(site, plan, rater) == json.loads(json.dumps(rater_page(plan, rater)))
        assert page_link(plan, rater) == f"index.html?plan={plan['pages'][rater]}"
        for trial in trials:
            for name in shown_files(trial):
                assert (site / name).is_file()
            real = trial["right"] if trial["method_side"] == "left" else trial["left"]
            assert np.array_equal(pixels(site / real), pixels(root / "hr" / trial["image"]))
            shown = trial["left"] if trial["method_side"] == "left" else trial["right"]
            if trial["method"] == VIGILANCE:  # the LR enlarged by nearest neighbour
                lr = pixels(root / "lr" / trial["image"])
                assert np.array_equal(pixels(site / shown), lr.repeat(4, 0).repeat(4, 1))
            else:
                assert np.array_equal(pixels(site / shown), pixels(root / trial["method"] / trial["image"]))
    for path in site.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):
            text = path.read_text()
            assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
            assert not any(word in text for word in ("method_side", '"sr3"', '"bicubic"', '"a.png"')), path


def test_what_a_rater_can_read_does_not_tell_the_photograph_from_the_output(tmp_path):
    """The served files a rater can reach (the page, their own plan, its images) give no sign
    of the real side: no file recurs in a page, files of one size weigh the same (a photograph
    has more detail than an output, so it would compress worse), names are no hash of the
    source files, and no served file but the rater's own plan names trials."""
    names = [f"{i}.png" for i in range(6)]
    rng = np.random.default_rng(5)
    for folder, size in (("hr", 32), ("lr", 8)):
        (tmp_path / folder).mkdir()
        for name in names:
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(tmp_path / folder / name)
    for method, level in (("sr3", 100), ("flat", 7)):  # smooth outputs compress far better than noise
        (tmp_path / method).mkdir()
        for index, name in enumerate(names):
            Image.new("RGB", (32, 32), (level, index, level)).save(tmp_path / method / name)
    design = StudyDesign(("sr3", "flat"), tuple(names), (1, 2), 4, 3, 2, 0.4, 0)
    plan = build(tmp_path, design)
    site = tmp_path / "site"
    sources = {hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.glob("*/*.png") if site not in p.parents}
    for rater in plan["raters"]:
        shown = [f for t in page_of(site, plan, rater)["trials"] for f in shown_files(t)]
        main = [f for t in plan["raters"][rater] if t["kind"] == "main" for f in shown_files(t)]
        assert all(shown.count(name) == 1 for name in main), "a main trial's file recurs in the rater's page"
        sizes = {}
        for name in shown:
            sizes.setdefault(Image.open(site / name).size, set()).add((site / name).stat().st_size)
            served = hashlib.sha256((site / name).read_bytes()).hexdigest()
            assert not any(digest.startswith(Path(name).stem[:16]) for digest in sources | {served})
        assert all(len(weights) == 1 for weights in sizes.values()), sizes
    trial_names = {t["left"] for trials in plan["raters"].values() for t in trials}
    for path in site.rglob("*.*"):
        if path.suffix in (".html", ".js", ".css") and path.parent.name != "raters":
            assert not any(name in path.read_text() for name in trial_names), path
            assert not any(page in path.read_text() for page in plan["pages"].values()), path


def test_a_missing_or_wrong_sized_output_is_refused_and_the_previous_folder_kept(sources):
    root, design = sources
    site = root / "site"
    build(root, design)
    before = sorted(p.name for p in (site / "images").iterdir()), (root / "plan.json").read_bytes()
    (root / "sr3" / "b.png").unlink()
    with pytest.raises(StudyBuildError, match=r"sr3: no b.png"):
        build(root, design)
    Image.new("RGB", (16, 16)).save(root / "sr3" / "b.png")
    with pytest.raises(StudyBuildError, match=r"b.png: the outputs of sr3 are not the HR image's size"):
        build(root, design)
    assert (sorted(p.name for p in (site / "images").iterdir()), (root / "plan.json").read_bytes()) == before
    assert not [p for p in root.iterdir() if p.name.startswith(".site")]


def test_a_rebuild_that_would_orphan_collected_answers_is_refused(sources):
    from sr3bench.study import store
    from sr3bench.study.plan import plan_fingerprint

    root, design = sources
    answers = root / "answers.sqlite"
    plan = build(root, design, answers)  # no answers yet: fine
    trial = plan["raters"]["r000"][0]
    connection = store.open_store(answers)
    store.bind_plan(connection, plan_fingerprint(root / "plan.json"))
    store.record(
        connection,
        {
            **{key: trial[key] for key in ("rater", "trial", "kind", "task", "image", "method", "method_side")},
            **{"session": "s", "choice": "left", "reaction_ms": 800.0, "display_ms": 3000.0},
            **{"timestamp": "2026-12-07T10:00:00Z", "user_agent": "test", "origin": "served"},
        },
    )
    connection.close()
    build(root, design, answers)  # the same inputs: the same plan, fine
    (root / "bicubic" / "a.png").unlink()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "bicubic" / "a.png")
    before = (root / "plan.json").read_bytes()
    with pytest.raises(StudyBuildError, match=r"answers.sqlite holds answers given under the study as it was built"):
        build(root, design, answers)
    assert (root / "plan.json").read_bytes() == before


def demo_params():
    params = config.read_params("params.yaml")
    params["preset"] = "demo"
    return params


def test_the_demo_plans_the_study_stages_and_a_preset_without_a_study_none():
    params = config.resolve(demo_params())
    plan = stage_table.Plan.of(params, "demo")
    assert plan.study == plan.study_simulated == plan.study_analysed == [None]
    assert plan.study_methods == ["bicubic", "regression", "sr3"]
    params["presets"]["demo"]["study"] = None
    plan = stage_table.Plan.of(params, "demo")
    assert plan.study == plan.study_simulated == plan.study_analysed == []


def test_narrowing_the_compared_methods_narrows_the_study_and_none_left_plans_none():
    params = demo_params()
    params["presets"]["demo"]["methods"] = ["bicubic", "sr3@tuned25"]
    plan = stage_table.Plan.of(config.resolve(params), "demo")
    assert plan.study_methods == ["bicubic"] and plan.study_analysed == [None]
    params["presets"]["demo"]["methods"] = ["sr3@tuned25"]
    plan = stage_table.Plan.of(config.resolve(params), "demo")
    assert plan.study_methods == [] and plan.study == plan.study_simulated == plan.study_analysed == []


def test_collected_answers_are_the_analysis_input_and_never_a_declared_output():
    params = demo_params()
    params["presets"]["demo"]["study"]["answers"] = "collected"
    params = config.resolve(params)
    plan = stage_table.Plan.of(params, "demo")
    assert plan.study_simulated == [] and plan.study_analysed == [None]
    analyse = stage_table.BY_NAME["study_analyse"]
    assert "studies/demo/answers.sqlite" in analyse.inputs("demo", None, plan)
    outputs = [p for s in stage_table.STAGES for m in plan.members(s.fan_out) for p in s.output_paths("demo", m)]
    assert not any("answers.sqlite" in p for p in outputs)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"methods": ["sr3", "nosuch"]}, r"study.methods: .*nosuch"),
        ({"simulated": {"fool_rates": {"sr3": 0.3}}}, r"study.simulated.fool_rates: .* for bicubic, regression"),
        ({"tasks": [3]}, r"study.tasks.0: 3 is not one of \[1, 2\]"),
        ({"display_ms": 50}, r"study.display_ms: 50 is less than the minimum of 100"),
    ],
)
def test_a_wrong_study_setting_names_its_key(change, message):
    params = demo_params()
    params["presets"]["demo"]["study"].update(change)
    with pytest.raises(config.ConfigError, match=message):
        config.resolve(params)


def test_the_page_is_tracked_code_of_the_build_and_the_analysis_reruns_for_answers_not_pages():
    from pipeline.code_deps import DATA_FILES
    from sr3bench.study.build import PAGE_FILES

    assert DATA_FILES["sr3bench/study/build.py"] == tuple(f"sr3bench/study/page/{name}" for name in PAGE_FILES)
    build_code = stage_table.BY_NAME["study_build"].code()
    assert {f"sr3bench/study/page/{name}" for name in PAGE_FILES} <= set(build_code)
    analyse_code = stage_table.BY_NAME["study_analyse"].code()
    assert "sr3bench/study/analysis.py" in analyse_code and "sr3bench/study/store.py" in analyse_code
    assert not any("page/" in f or f.endswith("build.py") or f.startswith(("sr3/", "baselines/")) for f in analyse_code)
