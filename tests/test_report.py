"""The report is built from files only: per-image CSVs, their JSON sidecars (set metrics
and the protocol they were computed under), loss logs, images and the paper's tables."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from PIL import Image

from sr3bench.reporting.build import ReportInputs, build_report
from sr3bench.reporting.paper import load_tables
from sr3bench.reporting.tables import SUMMARY_COLUMNS, bootstrap_interval, header

NAMES = ["a.png", "b.png", "c.png"]
PROTOCOL = {
    "color": "y",
    "border_crop": 4,
    "description": "Y channel (test marker), border crop 4 px",
    "scale": 4,
    "pixels": "saved uint8 PNG images",
    "psnr_ssim": "scikit-image 0.0-test",
    "ssim_settings": "sigma 1.5 (test)",
    "consistency": "MSE x 1e-5 (test)",
    "lpips": "lpips 0.0-test",
    "fid_kid_is": "torch-fidelity 0.0-test",
}
PSNR = {"bicubic": [20.0, 22.0, 24.0], "sr3": [21.0, 23.0, 28.0]}


def image(path, size, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


@pytest.fixture
def inputs(tmp_path):
    for index, name in enumerate(NAMES):
        image(tmp_path / "hr" / name, 16, 40 * index)
        image(tmp_path / "lr" / name, 4, 40 * index)
    results, samples = {}, {}
    for method, psnrs in PSNR.items():
        for name in NAMES:
            image(tmp_path / "samples" / method / name, 16, 90)
        rows = [
            {"method": method, "name": n, "group": "g", "psnr": p, "ssim": 0.5, "consistency": 1.0, "lpips": 0.2}
            for n, p in zip(NAMES, psnrs)
        ]
        results[method] = tmp_path / "results" / f"{method}.csv"
        results[method].parent.mkdir(exist_ok=True)
        pd.DataFrame(rows).to_csv(results[method], index=False)
        sidecar = {
            "fid": 100.0,
            "kid": 0.01,
            "is": None,
            "unavailable": {"is": "no classifier head (test)"},
            "n_sr": 3,
            "n_hr": 3,
            "inception_weights": "test-weights",
            "protocol": PROTOCOL,
        }
        results[method].with_suffix(".json").write_text(json.dumps(sidecar))
        samples[method] = tmp_path / "samples" / method
    loss = tmp_path / "loss.csv"
    loss.write_text("step,loss\n1,0.5\n2,0.25\n")
    return dict(
        results=results,
        samples=samples,
        losses={"sr3": loss},
        test_hr=tmp_path / "hr",
        test_lr=tmp_path / "lr",
        schedules={"training": "linear 0.0001..0.02", "inference": "linear 0.001..0.5"},
    )


def build(tmp_path, inputs, preset=None):
    preset = preset or {
        "description": "a test preset",
        "dataset": {"lr_source": "downsample"},
        "diffusion": {
            "training_schedule": {"steps": 10, "beta_start": 1e-4, "beta_end": 0.02},
            "inference_schedule": {"steps": 5, "beta_start": 1e-3, "beta_end": 0.5},
            "sampler": "ancestral_posterior",
        },
        "training": {"sr3": {"steps": 7}},
    }
    out = tmp_path / "report"
    build_report(
        "test",
        preset,
        ReportInputs(
            titles={"bicubic": "Bicubic", "sr3": "SR3"},
            paper_tables=REPO / "reports" / "paper",
            out=out,
            **inputs,
        ),
    )
    return out


def test_tables_hold_the_means_and_the_protocol_from_the_sidecars(tmp_path, inputs):
    out = build(tmp_path, inputs)
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns)[: len(SUMMARY_COLUMNS)] == SUMMARY_COLUMNS
    assert {"psnr_ci_low", "psnr_ci_high", "lpips_ci_low", "lpips_ci_high"} <= set(metrics.columns)
    sr3 = metrics.set_index("method").loc["sr3"]
    assert (
        21.0 <= sr3["psnr_ci_low"] < 24.0 < sr3["psnr_ci_high"] <= 28.0
    )  # inside the per-image range, around the mean
    assert metrics.set_index("method").loc["sr3", "psnr"] == pytest.approx(24.0)
    assert (metrics["protocol"] == PROTOCOL["description"]).all()
    assert metrics["is"].isna().all() and (metrics["n_images"] == 3).all()
    page = (out / "index.html").read_text()
    assert "Over 3 images these intervals say little" in page and "smallest and largest per-image values" in page
    assert json.loads((out / "metrics.json").read_text())["bicubic"]["fid"] == 100.0
    assert '"n_images": 3,' in (out / "metrics.json").read_text()  # a count, not 3.0
    by_group = pd.read_csv(out / "metrics_by_group.csv")  # per-image means; no column that is always empty
    assert {"group", "psnr", "lpips"} <= set(by_group.columns) and not {"fid", "kid", "is"} & set(by_group.columns)
    assert len(pd.read_csv(out / "per_image.csv")) == 6
    assert pd.read_csv(out / "classification.csv").empty and "Table 3" not in json.loads(
        (out / "metrics.json").read_text()
    )


def test_table_3_is_a_csv_and_a_dvc_metric_beside_the_page(tmp_path, inputs):
    results = {}
    for row, top1, top5 in (("baseline", 0.25, 0.08), ("sr3", 0.35, 0.12)):
        results[row] = tmp_path / f"{row}.json"
        results[row].write_text(json.dumps({"row": row, "images": 10, "top1_error": top1, "top5_error": top5}))
    out = build(tmp_path, dict(inputs, classification=results))
    table = pd.read_csv(out / "classification.csv").set_index("row")
    assert table.loc["sr3", "top1_error"] == 0.35 and table.loc["sr3", "paper_top1_error"] == 0.317
    assert json.loads((out / "metrics.json").read_text())["Table 3"] == {
        "baseline": {"top1_error": 0.25, "top5_error": 0.08},
        "sr3": {"top1_error": 0.35, "top5_error": 0.12},
    }


def test_the_page_prints_the_stored_protocol_the_paper_and_the_warnings(tmp_path, inputs):
    page = (build(tmp_path, inputs) / "index.html").read_text()
    for text in (
        "Y channel (test marker)",
        "scikit-image 0.0-test",
        "torch-fidelity 0.0-test",
        "lpips 0.0-test",
        "no classifier head (test)",
    ):
        assert text in page, text
    assert "dominated by sampling noise" in page  # FID over 3 images
    assert "arXiv:2104.07636, Table 1" in page and "23.96" in page  # the paper's tables, with their source
    assert "<td>SR3</td>" in page and "<td>Bicubic</td>" in page
    assert "600 training steps" not in page and "7 training steps" in page


def test_set_metrics_not_requested_leave_no_noise_warning_and_say_so_in_the_protocol(tmp_path, inputs):
    from sr3bench.metrics.evaluate import SET_METRICS_NOT_REQUESTED, set_metrics_not_requested

    for results in inputs["results"].values():
        sidecar = results.with_suffix(".json")
        protocol = {**PROTOCOL, "fid_kid_is": SET_METRICS_NOT_REQUESTED, "inception_weights": None}
        sidecar.write_text(json.dumps({**set_metrics_not_requested(), "protocol": protocol}))
    page = (build(tmp_path, inputs) / "index.html").read_text()
    assert "dominated by sampling noise" not in page  # nothing computed, nothing to warn of
    assert f"FID, KID and IS: {SET_METRICS_NOT_REQUESTED}" in page and "<li>IS: " not in page
    assert f"<b>FID (bicubic, sr3)</b>: {SET_METRICS_NOT_REQUESTED}" in page


def test_results_under_different_protocols_are_refused_naming_what_differs(tmp_path, inputs):
    """The same Inception file in another folder (another SR3BENCH_WEIGHTS) is the same
    protocol: the report refused it, without saying what differed."""
    weights = {"source": "a user's file", "file": "/a/weights/pt_inception.pth", "sha256": "ab" * 32}
    for method, results in inputs["results"].items():
        sidecar = results.with_suffix(".json")
        data = json.loads(sidecar.read_text())
        folder = "/a" if method == "bicubic" else "/b"
        data["protocol"] = dict(PROTOCOL, inception_weights={**weights, "file": f"{folder}/weights/pt_inception.pth"})
        sidecar.write_text(json.dumps(data))
    build(tmp_path, inputs)
    sidecar = inputs["results"]["sr3"].with_suffix(".json")
    data = json.loads(sidecar.read_text())
    data["protocol"] = dict(PROTOCOL, color="rgb", inception_weights={**weights, "sha256": "cd" * 32})
    sidecar.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="computed under different protocols") as refused:
        build(tmp_path, inputs)
    assert "color: 'y' (bicubic), 'rgb' (sr3)" in str(refused.value)
    assert f"inception_weights.sha256: '{'ab' * 32}' (bicubic), '{'cd' * 32}' (sr3)" in str(refused.value)
    assert str(refused.value).endswith("re-run evaluate for all of them")
    from sr3bench.reporting.cascade_section import protocol_differences  # a cascade's compared presets too

    here, there = (dict(PROTOCOL, inception_weights={**weights, "file": f"/{d}/pt_inception.pth"}) for d in "ab")
    assert protocol_differences(here, there) == [] and protocol_differences(here, dict(there, color="rgb")) == ["color"]


def test_the_paper_tables_are_data_with_a_citation():
    tables = load_tables(REPO / "reports" / "paper")
    assert {t["title"].split(":")[0] for t in tables} >= {"Table 1", "Table 2"}
    faces = next(t for t in tables if t["title"].startswith("Table 1"))
    assert faces["rows"]["sr3"] == {"psnr": 23.04, "ssim": 0.65, "consistency": 2.68}
    assert all(t["citation"] for t in tables)


def test_the_page_sets_the_reproduced_numbers_beside_the_papers_table(tmp_path, inputs):
    preset = {
        "description": "a small faces run",
        "dataset": {"lr_source": "downsample"},
        "paper": {"table": "sr3_table1_faces", "experiment": "faces16_128", "comparable": False},
        "diffusion": {
            "training_schedule": {"steps": 10, "beta_start": 1e-4, "beta_end": 0.02},
            "inference_schedule": {"steps": 5, "beta_start": 1e-3, "beta_end": 0.5},
            "sampler": "ancestral_posterior",
        },
        "training": {"sr3": {"steps": 7}},
    }
    scale = {
        "training_images": "176 pairs",
        "training_steps": "SR3 7",
        "batch_size": "SR3 4",
        "parameters": "SR3 1.05M",
        "inference_steps": "5",
        "test_images": "3",
    }
    out = tmp_path / "report"
    build_report(
        "test",
        preset,
        ReportInputs(
            titles={"bicubic": "Bicubic", "sr3": "SR3"},
            paper_tables=REPO / "reports" / "paper",
            out=out,
            scale_here=scale,
            **inputs,
        ),
    )
    page = (out / "index.html").read_text()
    assert "Beside the paper: Table 1" in page and "not comparable" in page
    assert (
        "<td>SR3</td><td>PSNR (dB) ↑</td><td>24.00</td><td>23.04</td><td>+0.96</td>" in page
    )  # here, paper, here - paper
    assert "176 pairs" in page and "550M" in page and "1.05M" in page  # the two runs' scale side by side


def test_orderings_of_the_paper_are_checked_in_each_metrics_direction():
    from sr3bench.reporting.comparison import orderings

    table = {
        "columns": ["psnr", "consistency"],
        "rows": {
            "regression": {"psnr": 23.96, "consistency": 2.71},
            "sr3": {"psnr": 23.04, "consistency": 2.68},
            "PULSE": {"psnr": 16.88, "consistency": 161.1},
        },
    }
    here = pd.DataFrame(
        [
            {"method": "regression", "psnr": 22.9, "consistency": 8.1},
            {"method": "sr3", "psnr": 22.0, "consistency": 28.0},
        ]
    )
    checks = {(c["metric"], c["better"]): c["holds"] for c in orderings(table, here)}
    assert checks == {("psnr", "regression"): True, ("consistency", "sr3"): False}  # lower consistency is better


def test_fid_against_another_reference_set_than_the_papers_gives_no_difference():
    """Table 2's real HR images score FID 1.9: the paper's reference statistics are not of
    its test images, while here they are (and would score 0). No "here - paper" for FID,
    which the report printed; the ordering and the other metrics still compare."""
    from sr3bench.reporting.comparison import orderings, side_by_side
    from sr3bench.reporting.paper import load_tables

    table = next(t for t in load_tables(REPO / "reports" / "paper") if t["table"] == "sr3_table2_imagenet")
    here = pd.DataFrame(
        [
            {"method": "regression", "fid": 30.0, "psnr": 27.0, "ssim": 0.8, "is": None},
            {"method": "sr3", "fid": 10.0, "psnr": 26.0, "ssim": 0.7, "is": None},
        ]
    )
    rows = {(r["method"], r["metric"]): r for r in side_by_side(table, here)}
    assert rows["sr3", "fid"]["here"] == 10.0 and rows["sr3", "fid"]["difference"] is None
    assert rows["sr3", "psnr"]["difference"] == pytest.approx(26.0 - 26.4)
    assert {"metric": "fid", "better": "sr3", "worse": "regression", "holds": True} in orderings(table, here)
    from sr3bench.reporting.build import beside_the_paper

    page = beside_the_paper({"paper": {"table": table["table"], "comparable": True}}, here, [table], None, {}, {})
    assert "FID: the paper's real HR images score 1.9" in page and "only the orderings compare" in page
    without = {"columns": ["fid"], "rows": {"sr3": {"fid": 5.2}}}  # no reference row: the difference stands
    assert side_by_side(without, here)[0]["difference"] == pytest.approx(10.0 - 5.2)


def test_means_pooled_over_several_test_sets_are_said_to_be_no_published_number():
    """Set5 and Set14: the headline row pools 19 images (bicubic 26.6 dB, a number no one
    publishes); the page says so and points to the per-set table."""
    from sr3bench.reporting.build import pooled_sets_note

    by_group = pd.DataFrame(
        [{"method": m, "group": g, "n_images": n} for m in ("bicubic", "sr3") for g, n in (("Set5", 5), ("Set14", 14))]
    )
    note = pooled_sets_note(by_group, {"test_folders": ["Set5", "Set14"]})
    assert "2 sets of images (Set5 5, Set14 14)" in note and "Per test group" in note
    demo = pd.DataFrame([{"method": "sr3", "group": g, "n_images": 1} for g in ("chelsea", "coffee", "rocket")])
    assert pooled_sets_note(demo, {"test_images": ["chelsea", "coffee", "rocket"]}) == ""  # one image per group


@pytest.mark.fault
def test_full_disk_while_writing_the_report_names_it_and_keeps_the_previous_report(tmp_path, inputs, monkeypatch):
    """Issue 14: "[Errno 28] No space left on device" with no path, and a half-written report."""
    import errno

    from sr3bench.reporting import figures

    out = build(tmp_path, inputs)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(figures, "loss_curves", no_space)  # after the CSVs, before index.html
    inputs["results"]["sr3"].write_text(inputs["results"]["sr3"].read_text().replace("28.0", "29.0"))
    with pytest.raises(OSError, match=f"disk full while writing {out}"):
        build(tmp_path, inputs)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing half-new
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_columns_carry_units_and_the_direction_of_better():
    assert header("psnr") == "PSNR (dB) ↑" and header("lpips") == "LPIPS ↓" and header("consistency").endswith("↓")


def test_the_bootstrap_interval_covers_the_mean_with_the_expected_width():
    values = np.random.default_rng(1).normal(0.0, 1.0, 400)
    low, high = bootstrap_interval(values)
    assert low < values.mean() < high and low < 0.0 < high
    assert high - low == pytest.approx(2 * 1.96 / np.sqrt(400), rel=0.25)  # the normal interval of the mean
    assert bootstrap_interval(values) == (low, high)  # seeded: the same report twice
    three = [26.68, 27.97, 28.575]  # each value alone is a resample of probability 1/27, above the 2.5% tail
    assert bootstrap_interval(three) == pytest.approx((min(three), max(three)))  # the report says so below 20
    assert bootstrap_interval([*values, np.nan]) == (low, high)  # an empty value is out of the mean too
    assert np.isnan(bootstrap_interval([*values, np.inf])).all()  # an infinite mean has no interval


def test_the_zoom_takes_the_most_detailed_region():
    from sr3bench.reporting.figures import detailed_region

    picture = np.full((40, 40, 3), 128, np.uint8)
    picture[20:30, 4:14] = np.random.default_rng(0).integers(0, 255, (10, 10, 3))
    top, left = detailed_region(picture, 10)
    assert abs(top - 20) <= 1 and abs(left - 4) <= 1


def test_the_page_shows_zoomed_crops_diversity_and_provenance(tmp_path, inputs, monkeypatch):
    from sr3bench.reporting.provenance import provenance

    diversity = tmp_path / "diversity" / "sr3"
    for name in NAMES[:2]:
        for seed in (1, 2, 3):
            image(diversity / f"{name[:-4]}_seed{seed}.png", 16, 60 * seed)
    benchmarks = tmp_path / "logs"
    benchmarks.mkdir()
    (benchmarks / "train_sr3.benchmark.tsv").write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t321.0\n")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"test": [{"name": n, "hr_sha256": "h" + n, "lr_sha256": "l" + n} for n in NAMES]}))
    monkeypatch.chdir(tmp_path)  # not a git checkout: the commit is unknown, not an error
    preset = {
        "description": "p",
        "dataset": {"lr_source": "downsample"},
        "diversity": {"images": 2, "seeds": 3},
        "training": {"sr3": {"steps": 7}},
        "diffusion": {
            "training_schedule": {"steps": 10, "beta_start": 1e-4, "beta_end": 0.02},
            "inference_schedule": {"steps": 5, "beta_start": 1e-3, "beta_end": 0.5},
            "sampler": "ancestral_posterior",
        },
    }
    settings = {"presets.test.seed": 1, "presets.test.diversity": preset["diversity"]}
    record = provenance(preset, settings, {"train": 8}, benchmarks, manifest)
    out = tmp_path / "report"
    build_report(
        "test",
        preset,
        ReportInputs(
            titles={"bicubic": "Bicubic", "sr3": "SR3"},
            paper_tables=REPO / "reports" / "paper",
            out=out,
            diversity={"sr3": diversity},
            provenance_record=record,
            **inputs,
        ),
    )
    page = (out / "index.html").read_text()
    for figure in ("zoom.png", "diversity.png"):
        assert f'src="{figure}"' in page and Image.open(out / figure).size[0] > 200
    assert "train_sr3" in page and "12.5" in page and "321" in page  # the stage's wall time and peak memory
    assert "torch " in page and "not a git checkout" in page and record["config_sha256"] in page
    assert "2 settings" in page and "presets.test.diversity" in page
    assert record["datasets"]["test"]["images"] == 3 and "val" in record["datasets"]
    assert json.loads((out / "provenance.json").read_text())["settings"] == settings
    # the hash is of the settings: another value of one, another hash
    changed = provenance(preset, {**settings, "presets.test.seed": 2}, {"train": 8}, benchmarks, manifest)
    assert changed["config_sha256"] != record["config_sha256"]


def test_dataset_checksums_change_with_any_image_and_pooled_test_sets_are_counted():
    from sr3bench.reporting.provenance import dataset_checksums, pooled_test_sets

    def checksum(tmp, hr_of_b):
        rows = [
            {"name": "a.png", "hr_sha256": "1", "lr_sha256": "2"},
            {"name": "b.png", "hr_sha256": hr_of_b, "lr_sha256": "4"},
        ]
        tmp.write_text(json.dumps({"test": rows}))
        return dataset_checksums(tmp)["test"]["sha256"]

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "manifest.json"
        assert checksum(path, "3") == checksum(path, "3") != checksum(path, "5")
        assert dataset_checksums(path)["val"] == {"images": 0, "sha256": None}  # not the digest of nothing
        manifest = json.loads(path.read_text())
        manifest["test"] = [{"name": f"{n}.png", "group": g} for n, g in enumerate(["Set5", "Set5", "Set14"])]
        path.write_text(json.dumps(manifest))
        assert pooled_test_sets({"test_folders": ["Set5", "Set14"]}, path) == {"Set5": 2, "Set14": 1}
        # one set whose groups are its photographs (the demo's): nothing pooled
        manifest["test"] = [{"name": f"{n}.png", "group": n} for n in ("chelsea", "coffee", "rocket")]
        path.write_text(json.dumps(manifest))
        assert pooled_test_sets({"test_images": ["chelsea", "coffee", "rocket"]}, path) == {}


def test_the_front_page_lists_every_preset_and_one_csv_holds_them_all(tmp_path):
    from sr3bench.reporting.front_page import build_front_page

    for preset, psnr in (("demo", 27.6), ("faces16_128_small", 23.1)):
        folder = tmp_path / "reports" / preset
        folder.mkdir(parents=True)
        pd.DataFrame(
            [
                {
                    "method": "bicubic",
                    "n_images": 3,
                    "psnr": psnr,
                    "ssim": 0.8,
                    "consistency": 1.0,
                    "fid": 10.0,
                    "lpips": 0.3,
                }
            ]
        ).to_csv(folder / "metrics.csv", index=False)
        groups = {"Set5": 5, "Set14": 14} if preset == "demo" else {}
        (folder / "provenance.json").write_text(
            json.dumps(
                {"description": f"about {preset}", "generated": "today"}
                | {"git": {"commit": "abc1234", "dirty": preset == "demo"}}
                | {"pooled_test_sets": groups}
                | ({"titles": {"bicubic": "Bicubic (MATLAB)"}} if preset == "demo" else {})
            )
        )
    (tmp_path / "reports" / "paper").mkdir()  # the paper's tables are no preset
    build_front_page(
        tmp_path / "reports", tmp_path / "reports" / "index.html", tmp_path / "reports" / "all_presets.csv"
    )
    combined = pd.read_csv(tmp_path / "reports" / "all_presets.csv")
    assert list(combined["preset"]) == ["demo", "faces16_128_small"] and list(combined["psnr"]) == [27.6, 23.1]
    page = (tmp_path / "reports" / "index.html").read_text()
    assert (
        "href='demo/index.html'" in page
        and "href='faces16_128_small/index.html'" in page
        and "about faces16_128_small" in page
        and "23.10" in page
    )
    assert page.count("These means pool") == 1 and "pool 2 test sets (Set5 5, Set14 14)" in page
    assert "href='demo/metrics_by_group.csv'" in page
    assert "<td>Bicubic (MATLAB)</td>" in page and "<td>bicubic</td>" in page  # the report's title, else the id
    assert page.count("with uncommitted changes") == 1  # as the report says of a dirty checkout


def test_the_readme_table_is_regenerated_from_metrics_csv(tmp_path, inputs):
    from sr3bench.reporting.readme_table import update_readme

    out = build(tmp_path, inputs)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:test -->\n| stale | 27.75 |\n<!-- /results:test -->\nafter\n")
    update_readme(readme, "test", out / "metrics.csv", {"sr3": "SR3", "bicubic": "Bicubic"})
    text = readme.read_text()
    assert "27.75" not in text and text.startswith("intro\n") and text.endswith("after\n")
    assert "| SR3 | 24.00 | 0.5000 | 1.00 | 100.00 | 0.200 |" in text and "| PSNR (dB) ↑ |" in text
    update_readme(readme, "test", out / "metrics.csv", {"sr3": "SR3", "bicubic": "Bicubic"})
    assert readme.read_text() == text  # regenerating changes nothing
    timed = "<!-- timings:test -->\n<!-- /timings:test -->\n"
    readme.write_text(text + timed)
    stages = pd.DataFrame(
        [
            {"stage": "train_sr3", "seconds": 754.0, "peak_rss_mib": 980.0},
            {"stage": "report", "seconds": 9.5, "peak_rss_mib": None},
        ]
    )
    update_readme(readme, "test", out / "metrics.csv", {}, stages, "logs/test/*.benchmark.tsv")
    assert (
        "| train_sr3 | 12 min 34 s | 980 MiB |" in readme.read_text()
        and "| sum of the stages | 12 min 44 s | |" in readme.read_text()
    )
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="no <!-- results:test -->"):
        update_readme(readme, "test", out / "metrics.csv", {})


@pytest.mark.fault
def test_readme_table_leaves_the_readme_alone_for_a_metrics_csv_without_rows_and_names_a_missing_readme(tmp_path):
    import subprocess
    import sys

    metrics = tmp_path / "reports" / "demo" / "metrics.csv"
    metrics.parent.mkdir(parents=True)
    metrics.write_text("method,n_images,psnr\n")  # a report cut short: its header alone
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:demo -->\n| Bicubic | 27.61 |\n<!-- /results:demo -->\n")

    def readme_table(*options):
        command = [sys.executable, "-m", "pipeline.cli", "readme-table", "--preset", "demo", *options]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    emptied = readme_table("--readme", str(readme))
    assert emptied.returncode == 1 and "holds no rows; the README is left as it is" in emptied.stderr
    assert "| Bicubic | 27.61 |" in readme.read_text()
    missing = readme_table("--readme", str(tmp_path / "NONE.md"))
    assert missing.returncode == 1 and "NONE.md is not a file" in missing.stderr and "Traceback" not in missing.stderr
    metrics.write_text("method,n_images,psnr,ssim\nbicubic,3,27.61,0.8\nmine,3,28.0,0.81\n")
    (metrics.parent / "provenance.json").write_text(json.dumps({"titles": {"mine": "My method"}}))
    filled = readme_table("--readme", str(readme))  # an outside method's title is in its preset: the report's
    assert filled.returncode == 0, filled.stderr
    assert "| My method | 28.00 |" in readme.read_text() and "| Bicubic | 27.61 |" in readme.read_text()
    assert "The means pool" not in readme.read_text()
    pooled = {"titles": {}, "pooled_test_sets": {"Set5": 5, "Set14": 14}}
    (metrics.parent / "provenance.json").write_text(json.dumps(pooled))
    assert readme_table("--readme", str(readme)).returncode == 0  # Set5 and Set14 pooled: said below the table
    assert "The means pool Set5 (5 images), Set14 (14 images), as no published table does" in readme.read_text()
    assert readme.read_text().rstrip().endswith("<!-- /results:demo -->")


def test_per_set_rows_come_set_by_set_with_the_published_values_beside_them():
    """The benchmarks page said "compare with Per test group", whose rows alternated Set14 and
    Set5 and had no published column; the published bicubic rows were at the page's end."""
    from sr3bench.reporting.build import in_set_order, published_by_group

    by_group = pd.DataFrame(
        [
            {"method": m, "group": g, "n_images": n, "psnr": p}
            for m in ("bicubic", "sr3")
            for g, n, p in (("Set14", 14, 25.99), ("Set5", 5, 28.42))
        ]
    )
    ordered = in_set_order(by_group, {"test_folders": ["Set5", "Set14"]})
    assert list(zip(ordered["group"], ordered["method"])) == [
        ("Set5", "bicubic"),
        ("Set5", "sr3"),
        ("Set14", "bicubic"),
        ("Set14", "sr3"),
    ]
    assert in_set_order(by_group, {"test_images": ["a", "b"]}) is by_group  # one set: as it was
    tables = [{"rows": {"bicubic on Set5": {"psnr": 28.42, "ssim": 0.8104}, "bicubic on Set14": {"psnr": 26.0}}}]
    shown, added = published_by_group(ordered, tables)
    assert added == ["published PSNR (dB)", "published SSIM"]
    assert [None if pd.isna(v) else v for v in shown["published PSNR (dB)"]] == ["28.42", None, "26.00", None]
    assert [None if pd.isna(v) else v for v in shown["published SSIM"]] == ["0.8104", None, None, None]
    unchanged, none = published_by_group(ordered, [{"rows": {"SR3": {"psnr": 23.4}}}])  # no "<method> on <set>" row
    assert none == [] and unchanged is ordered


def test_the_provenance_tells_cpus_of_one_name_apart_by_family_model_and_vector_extensions(tmp_path):
    """Two 2-core "AMD EPYC" guests gave different SR3 rows; the record named only "AMD EPYC"."""
    from sr3bench.reporting.provenance import cpu_details

    zen2 = tmp_path / "zen2"
    zen2.write_text("cpu family\t: 23\nmodel\t\t: 49\nmodel name\t: AMD EPYC\nflags\t\t: sse2 avx avx2\n")
    assert cpu_details(zen2) == {"cpu family/model": "23/49", "vector extensions": "avx2"}
    xeon = tmp_path / "xeon"
    xeon.write_text("cpu family\t: 6\nmodel\t\t: 143\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n")
    assert cpu_details(xeon)["vector extensions"] == "avx2, avx512f, avx512_bf16, amx_tile, amx_bf16"
    assert cpu_details(tmp_path / "none") == {}  # no /proc/cpuinfo: nothing claimed
