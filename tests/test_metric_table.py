"""The metric table (sr3bench/metrics/table.py) is the one place that says what the metrics
are and how they print: evaluate writes exactly its columns, every consumer prints them
with its decimals, and every "better" follows its direction (issue 23)."""

import ast
import html
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from sr3bench.metrics.table import METRICS, TUNE_COLUMNS, by_name, format_value, header, names

# Values whose printed digits cannot depend on the CPU: far from any rounding boundary.
VALUES = {name: 10.0 + index + 0.123456 for index, name in enumerate(names() + [c.name for c in TUNE_COLUMNS])}
NUMBER = re.compile(r"[-+]?\d+\.(\d+)")


def decimals_of(text: str) -> list[int]:
    """The number of decimals of each decimal number in ``text``."""
    return [len(match.group(1)) for match in NUMBER.finditer(text)]


def cells(page: str) -> list[str]:
    return re.findall(r"<td>(.*?)</td>", page)


def test_reading_the_table_imports_neither_torch_nor_lpips():
    code = (
        "import sys; import sr3bench.metrics.table, sr3bench.reporting.front_page, sr3bench.reporting.readme_table; "
        "print(sorted({'torch', 'lpips', 'torch_fidelity'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_table_is_well_formed():
    assert len({m.name for m in METRICS} | {c.name for c in TUNE_COLUMNS}) == len(METRICS) + len(TUNE_COLUMNS)
    assert {m.per for m in METRICS} == {"image", "set"}
    assert names() == ["psnr", "ssim", "consistency", "fid", "kid", "is", "lpips"]  # metrics.csv's column order
    for metric in METRICS:
        assert callable(metric.function()), metric.name
    with pytest.raises(KeyError, match="unknown metric 'niqe'"):
        by_name("niqe")


def test_evaluate_writes_exactly_the_per_image_metrics_with_the_tables_functions(monkeypatch):
    from sr3bench.metrics import evaluate

    assert evaluate.PER_IMAGE_COLUMNS == ["method", "name", "group", *names("image")]
    used = {"psnr": evaluate.psnr, "ssim": evaluate.ssim, "consistency": evaluate.consistency}
    used["lpips"] = evaluate.lpips_per_image
    assert {name: by_name(name).function() for name in names("image")} == used
    monkeypatch.setattr(
        evaluate, "lpips_per_image", lambda sr, hr, weights_dir, desc=None: [0.5] * len(sr)
    )  # no AlexNet here
    hr = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    lr = hr[::4, ::4]
    rows = evaluate.image_metrics([255 - hr], [hr], [lr], {"color": "rgb", "border_crop": 0}, 4)
    assert sorted(rows[0]) == sorted(names("image"))


def test_the_set_function_returns_exactly_the_per_set_metrics():
    """What ``set_metrics`` returns, read from its source (running it needs the Inception weights)."""
    functions = {by_name(name).compute for name in names("set")}
    assert len(functions) == 1  # one torch-fidelity call computes FID, KID and IS
    module, function = functions.pop().split(":")
    tree = ast.parse((REPO / (module.replace(".", "/") + ".py")).read_text())
    body = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == function)
    returns = [node.value for node in ast.walk(body) if isinstance(node, ast.Return)]
    returned = next(value for value in returns if isinstance(value, ast.Dict))
    keys = {key.value for key in returned.keys}
    bookkeeping = {"unavailable", "n_sr", "n_hr", "inception_weights", "inception_record", "is_std", "is_splits"}
    assert keys - set(names("set")) == bookkeeping  # IS's spread and where the weights came from
    assert set(names("set")) <= keys
    from sr3bench.metrics.evaluate import set_metrics

    assert by_name("fid").function() is set_metrics


def test_the_published_values_print_with_all_their_digits():
    """Each column of the paper's tables is a metric of the table whose decimals show every published digit."""
    from sr3bench.reporting.paper import OTHER_FILES

    for path in sorted((REPO / "reports" / "paper").glob("*.csv")):
        if path.name in OTHER_FILES:
            continue
        frame = pd.read_csv(path, dtype=str)
        for column in frame.columns.drop(["table", "title", "method", "citation"]):
            for value in frame[column].dropna():
                assert max(decimals_of(value) or [0]) <= by_name(column).decimals, (path.name, column, value)


def test_the_report_tables_print_the_tables_decimals():
    from sr3bench.reporting.build import _difference, html_table, paper_table

    summary = pd.DataFrame([{"method": "SR3", "n_images": 3, **{name: VALUES[name] for name in names()}}])
    page = html_table(summary, ["method", "n_images"] + names())
    assert decimals_of(" ".join(cells(page)[2:])) == [by_name(name).decimals for name in names()]
    assert [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", page)[2:]] == [header(name) for name in names()]
    spec = {"title": "t", "citation": "c", "columns": names(), "rows": {"SR3": {n: VALUES[n] for n in names()}}}
    assert decimals_of(" ".join(cells(paper_table(spec))[1:])) == [by_name(name).decimals for name in names()]
    for name in names():
        difference = _difference(VALUES[name], name)
        assert difference == format_value(name, VALUES[name], signed=True) and difference.startswith("+")
        assert decimals_of(difference) == decimals_of(_difference(-VALUES[name], name)) == [by_name(name).decimals]


def test_the_front_page_and_the_readme_print_the_tables_decimals(tmp_path):
    from sr3bench.reporting.front_page import build_front_page
    from sr3bench.reporting.readme_table import markdown_table
    from sr3bench.reporting.tables import HEADLINE

    folder = tmp_path / "demo"
    folder.mkdir()
    metrics = pd.DataFrame([{"method": "sr3", "n_images": 3, **{name: VALUES[name] for name in names()}}])
    metrics.to_csv(folder / "metrics.csv", index=False)
    build_front_page(tmp_path, tmp_path / "index.html", tmp_path / "all.csv")
    page = (tmp_path / "index.html").read_text()
    assert decimals_of(" ".join(cells(page)[2:])) == [by_name(name).decimals for name in HEADLINE]
    assert all(html.escape(header(name)) in page for name in HEADLINE)
    readme = markdown_table(pd.read_csv(folder / "metrics.csv"), {"sr3": "SR3"})
    row = readme.splitlines()[2].split("|")[2:-2]
    assert [decimals_of(value) for value in row] == [[by_name(name).decimals] for name in HEADLINE]
    assert readme.splitlines()[0].split("|")[2:-2] == [f" {header(name)} " for name in HEADLINE]


def test_the_tuning_section_prints_the_tables_decimals_and_headers():
    import pipeline.stages.tune as tune_stage
    from sr3bench.reporting.build import _format
    from sr3bench.reporting.tuning import COLUMNS, tuning_section

    assert set(COLUMNS) <= set(tune_stage.COLUMNS) and tune_stage.METRICS == names("image")
    row = {"sampler": "ddim", "schedule": "cosine", "steps": 4, "reference": True, **VALUES}
    criterion = {"metric": "lpips", "max_consistency_ratio": 1.1}
    section = tuning_section({"sr3": (pd.DataFrame([row]), {})}, criterion, 2, 1, _format)
    numbers = cells(section.split("<tbody>")[1].split("</tbody>")[0])[3:-1]  # the chosen rows' table: the reference
    assert [decimals_of(value) for value in numbers] == [[by_name(c).decimals] for c in COLUMNS[3:]]
    assert "the best LPIPS" in section


def test_every_better_follows_the_tables_direction():
    """The arrows of the headers, the paper's orderings, the tune stage's choice and the figures' titles."""
    from pipeline.stages.tune import choose
    from sr3bench.reporting.comparison import orderings
    from sr3bench.reporting.figures import TUNING_PANELS, panel_title

    for metric in METRICS:
        higher = metric.higher_is_better
        assert header(metric.name).endswith("↑" if higher else "↓")
        paper = {"columns": [metric.name], "rows": {"a": {metric.name: 2.0}, "b": {metric.name: 1.0}}}
        here = pd.DataFrame([{"method": "a", metric.name: 2.0}, {"method": "b", metric.name: 1.0}])
        better, worse = ("a", "b") if higher else ("b", "a")
        assert orderings(paper, here) == [{"metric": metric.name, "better": better, "worse": worse, "holds": True}]
    for name in TUNING_PANELS:
        assert ("higher is better" in panel_title(name)) == by_name(name).higher_is_better
    schema = yaml.safe_load((REPO / "pipeline" / "config.schema.yaml").read_text())
    select = schema["$defs"]["preset"]["properties"]["tune"]["properties"]["select"]["properties"]
    assert set(select["metric"]["enum"]) <= set(names("image"))  # the metrics the tune stage may choose by
    for name in names("image"):
        grid = pd.DataFrame(
            [
                {"steps": 1000, "reference": True, name: 0.0, "consistency_reference_images": 1.0},
                {"steps": 5, "reference": False, name: 1.0, "consistency_reference_images": 1.0},
                {"steps": 5, "reference": False, name: 2.0, "consistency_reference_images": 1.0},
            ]
        )
        best, met = choose(grid, 10, {"metric": name, "max_consistency_ratio": 1.0})
        assert met and best[name] == (2.0 if by_name(name).higher_is_better else 1.0)


def damaged_provenance_beside_new_numbers(folder):
    """New numbers that all_presets.csv would take, with a provenance the page cannot read:
    the CSV must not be written before the page has been rendered."""
    pd.DataFrame([{"method": "sr3", "n_images": 3, "psnr": 28.0}]).to_csv(folder / "metrics.csv", index=False)
    (folder / "provenance.json").write_text("{")


@pytest.mark.fault
@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda folder: (folder / "metrics.csv").write_text(""), r"old/metrics.csv cannot be read as a table"),
        (
            lambda folder: (folder / "metrics.csv").write_text("method,psnr\nsr3,27\n"),
            r"old/metrics.csv has no column n_images",
        ),
        (damaged_provenance_beside_new_numbers, r"old/provenance.json is not valid JSON"),
    ],
)
def test_a_damaged_report_is_named_and_the_front_page_files_stay_as_they_were(tmp_path, damage, message):
    from sr3bench.reporting.front_page import FrontPageError, build_front_page

    demo, old = tmp_path / "demo", tmp_path / "old"
    for folder in (demo, old):
        folder.mkdir()
        pd.DataFrame([{"method": "sr3", "n_images": 3, "psnr": 27.0}]).to_csv(folder / "metrics.csv", index=False)
    build_front_page(tmp_path, tmp_path / "index.html", tmp_path / "all.csv")
    before = (tmp_path / "index.html").read_text(), (tmp_path / "all.csv").read_text()
    damage(old)
    with pytest.raises(FrontPageError, match=message):
        build_front_page(tmp_path, tmp_path / "index.html", tmp_path / "all.csv")
    assert ((tmp_path / "index.html").read_text(), (tmp_path / "all.csv").read_text()) == before
