"""Cascades (docs/cascade.md): a preset takes its test LR images from another preset's
method outputs (``dataset.lr_from``). Both engines run the upstream preset's jobs first,
give the same downstream bytes, and re-run downstream after an upstream change, and only
what depends on it; a link that cannot be chained is refused naming its key.

The presets are tiny (two scikit-image photographs, square crops): an upstream 8->16 and a
downstream 16->32, bicubic in both, so nothing trains; the engines run up to the
downstream samples (evaluation would add a minute of metric-network loading)."""

import copy
import json
import re
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
from projects import dvc_project, make_project, run, tiny_params
from test_engines_agree import dvc_stages, snakemake_jobs

from pipeline import cascade, config, layout
from pipeline.cascade_plan import plans, upstream_jobs
from sr3bench.core.image_check import load_dataset_image

UP, DOWN = "up8_16", "down16_32"
TARGET = str(layout.samples_dir(DOWN, "bicubic"))
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2"]
DVC_REPRO = [sys.executable, "-m", "dvc", "repro", "sample_bicubic"]  # with its upstream stages
DVC_STATUS = [sys.executable, "-m", "dvc", "status", "--json", "--with-deps", "sample_bicubic"]


def cascade_params() -> dict:
    params = tiny_params()
    demo = params["presets"].pop("demo")
    demo["dataset"].update(fit="square_crop_area", test_images=["chelsea", "coffee"], train_crops_per_image=1)
    up, down = copy.deepcopy(demo), copy.deepcopy(demo)
    up["methods"] = down["methods"] = ["bicubic"]
    up["dataset"].update(hr_size=16, scale=2)
    down["dataset"].update(hr_size=32, scale=2, lr_from={"preset": UP, "method": "bicubic"})
    params["presets"] = {UP: up, DOWN: down}
    params["preset"] = DOWN
    return params


def resolve_error(params: dict) -> str:
    with pytest.raises(config.ConfigError) as error:
        config.resolve(params)
    return str(error.value)


def test_a_bad_lr_from_is_refused_naming_its_key():
    def changed(edit) -> dict:
        params = cascade_params()
        edit(params["presets"][UP], params["presets"][DOWN], params)
        return params

    def lr_from(**link):
        return lambda up, down, params: down["dataset"]["lr_from"].update(link)

    where = f"params: presets.{DOWN}.dataset.lr_from"
    message = resolve_error(changed(lr_from(preset="nope")))
    assert message.startswith(f"{where}.preset: unknown preset 'nope'") and UP in message
    message = resolve_error(changed(lr_from(method="regression")))
    assert message.startswith(f"{where}.method: {UP} does not compare 'regression' (it compares bicubic)")
    message = resolve_error(changed(lambda up, down, params: up.update(methods=None)))
    assert message.startswith(f"params: presets.{UP}.methods: {UP} is the upstream preset of {DOWN}")
    message = resolve_error(changed(lambda up, down, params: up["dataset"].update(hr_size=24, scale=2)))
    assert message.startswith(f"{where}: {UP}'s outputs are 24x24") and "LR images are 16x16" in message
    message = resolve_error(changed(lambda up, down, params: up["dataset"].update(test_images=["chelsea"])))
    assert message.startswith(f"{where}: {UP}'s test images are not this preset's: dataset.test_images differs")
    message = resolve_error(changed(lambda up, down, params: up["dataset"].update(fit="crop")))
    assert message.startswith(f"params: presets.{UP}.dataset.fit: crop keeps each image's own size")
    cycle = {"preset": DOWN, "method": "bicubic"}
    message = resolve_error(changed(lambda up, down, params: up["dataset"].update(lr_from=cycle)))
    assert f"form a cycle ({UP} -> {DOWN} -> {UP})" in message or f"({DOWN} -> {UP} -> {DOWN})" in message
    compare = {"compare": [{"preset": "nope", "method": "sr3"}]}
    message = resolve_error(changed(lambda up, down, params: down.update(cascade=compare)))
    assert message.startswith(f"params: presets.{DOWN}.cascade.compare[0].preset: unknown preset 'nope'")


def three_level_params() -> dict:
    """A chain of three presets, the middle one trained (regression): 8 -> 16 -> 32 -> 64."""
    params = cascade_params()
    middle = params["presets"][DOWN]
    middle["methods"] = ["bicubic", "regression"]
    top = copy.deepcopy(middle)
    top["dataset"].update(hr_size=64, lr_from={"preset": DOWN, "method": "regression"})
    params["presets"]["top32_64"] = top
    params["preset"] = "top32_64"
    return config.resolve(params)


def test_the_upstream_jobs_are_those_that_lead_to_the_outputs_read_downstream():
    params = three_level_params()
    assert [link.preset for link in cascade.links(params["presets"], "top32_64")] == [DOWN, UP]
    jobs = [(job.preset, job.stage.name, job.member) for job in upstream_jobs(params, "top32_64")]
    assert jobs == [  # farthest first; no evaluation, report or other method of an upstream preset
        (UP, "prepare", None),
        (UP, "sample", "bicubic"),
        (DOWN, "prepare", None),
        (DOWN, "train", "regression"),
        (DOWN, "sample", "regression"),
    ]
    planned = plans(params, "top32_64")
    assert list(planned) == ["top32_64", DOWN, UP] and planned[DOWN].methods == ("regression",)
    prepare = next(
        job for job in upstream_jobs(params, "top32_64") if job.preset == DOWN and job.stage.name == "prepare"
    )
    assert str(layout.samples_dir(UP, "bicubic")) in prepare.stage.inputs(DOWN, None, prepare.plan)


def test_prepare_refuses_upstream_outputs_of_other_test_images(tmp_path, monkeypatch):
    from pipeline.prepare import prepare
    from sr3bench.core.images import write_png

    monkeypatch.chdir(tmp_path)
    preset = config.resolve(cascade_params())["presets"][DOWN]
    with pytest.raises(FileNotFoundError, match=f"samples/{UP}/bicubic not found: dataset.lr_from"):
        prepare(preset, tmp_path / "out")
    folder = layout.samples_dir(UP, "bicubic")
    folder.mkdir(parents=True)
    write_png(np.zeros((16, 16, 3), np.uint8), folder / "chelsea_chelsea.png")
    with pytest.raises(FileNotFoundError, match=f"coffee_coffee.png not found: dataset.lr_from \\({UP}, bicubic\\)"):
        prepare(preset, tmp_path / "out")
    write_png(np.zeros((16, 16, 3), np.uint8), folder / "coffee_coffee.png")
    write_png(np.zeros((16, 16, 3), np.uint8), folder / "rocket_rocket.png")
    with pytest.raises(ValueError, match="1 image\\(s\\) that are not test images of this preset \\(rocket_rocket"):
        prepare(preset, tmp_path / "out")
    (folder / "rocket_rocket.png").unlink()
    write_png(np.zeros((8, 8, 3), np.uint8), folder / "coffee_coffee.png")
    with pytest.raises(ValueError, match="dataset.lr_from's LR image is \\(8, 8\\), expected \\(16, 16\\)"):
        prepare(preset, tmp_path / "out")


def test_both_engines_plan_the_same_upstream_jobs(tmp_path):
    project = dvc_project(tmp_path / "project", cascade_params())
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert [name for name in stages if "--" in name] == [f"{UP}--prepare", f"{UP}--sample_bicubic"]
    assert str(layout.samples_dir(UP, "bicubic")) in stages["prepare"]["deps"]
    from_snakemake, from_dvc = snakemake_jobs(project), dvc_stages(project)
    assert set(from_snakemake) == set(from_dvc)
    assert {c for c in from_dvc if f"--preset {UP}" in c} == {
        f"sr3bench prepare --preset {UP} --log logs/{UP}/prepare.log",
        f"sr3bench sample --preset {UP} --method bicubic --log logs/{UP}/sample_bicubic.log",
    }
    for command, inputs in from_snakemake.items():
        listing = {name for name in inputs if name.endswith("dataset-listing.json")}
        assert inputs - listing == from_dvc[command], command  # skimage photographs: no dataset folder


CHAIN_STAGES = sorted([f"{UP}--prepare", f"{UP}--sample_bicubic", "prepare", "sample_bicubic"])
DOWNSTREAM_FILES = ("data/down16_32/manifest.json", "data/down16_32/test/lr", "data/down16_32/test/hr", TARGET)


def files(project) -> dict[str, bytes]:
    """Every file of the downstream results, by path (Snakemake's timestamp files aside)."""
    found = {}
    for name in DOWNSTREAM_FILES:
        path = project / name
        for file in [path] if path.is_file() else sorted(path.iterdir()):
            if not file.name.startswith(".snakemake"):
                found[str(file.relative_to(project))] = file.read_bytes()
    return found


def chained_correctly(project) -> None:
    """The downstream test LR images are the upstream's bicubic outputs, pixel for pixel."""
    lr = sorted((project / "data/down16_32/test/lr").iterdir())
    assert [p.name for p in lr] == ["chelsea_chelsea.png", "coffee_coffee.png"]
    for path in lr:
        upstream = load_dataset_image(project / layout.samples_dir(UP, "bicubic") / path.name, 1)
        assert upstream.shape == (16, 16, 3)
        assert np.array_equal(load_dataset_image(path, 1), upstream)


def set_value(project, preset: str, section: str, key: str, value) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["presets"][preset][section][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def planned(project) -> list[str]:
    """The jobs a Snakemake run of the target would run now (dry run), as their commands."""
    result = run(SNAKEMAKE + ["--dry-run", "--printshellcmds", TARGET], project)
    lines = [
        line.strip().removeprefix("Shell command:").strip() for line in (result.stdout + result.stderr).splitlines()
    ]
    return sorted(line.split(" --threads")[0] for line in lines if line.startswith("sr3bench "))


def dvc_ran(project) -> list[str]:
    result = run(DVC_REPRO, project)
    return sorted(line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage"))


@pytest.mark.slow
def test_both_engines_chain_the_presets_and_rerun_what_an_upstream_change_touches(tmp_path):
    snakemake = make_project(tmp_path / "snakemake", cascade_params())
    dvc = dvc_project(tmp_path / "dvc", cascade_params())
    run(SNAKEMAKE + [TARGET], snakemake)
    assert dvc_ran(dvc) == CHAIN_STAGES
    chained_correctly(snakemake)
    first = files(snakemake)
    assert files(dvc) == first, "the engines' downstream results differ"
    manifest = yaml.safe_load(first["data/down16_32/manifest.json"])
    assert manifest["lr_from"] == {"preset": UP, "method": "bicubic", "folder": f"samples/{UP}/bicubic"}

    # Upstream, a value its chained jobs do not track (its evaluation's): nothing re-runs.
    for project in (snakemake, dvc):
        set_value(project, UP, "protocol", "border_crop", 2)
    assert planned(snakemake) == [] and dvc_ran(dvc) == []
    # Downstream sampling: only the downstream sampling is out of date (not run: it is the same bicubic).
    for project in (snakemake, dvc):
        set_value(project, DOWN, "sampling", "batch_size", 2)
    assert planned(snakemake) == [f"sr3bench sample --preset {DOWN} --method bicubic"]
    assert list(json.loads(run(DVC_STATUS, dvc).stdout)) == ["sample_bicubic"]
    # Upstream HR images (each photograph shrunk first): the chain re-runs from there on.
    for project in (snakemake, dvc):
        set_value(project, UP, "dataset", "source_downscale", 2)
    assert planned(snakemake) == [
        f"sr3bench prepare --preset {DOWN}",
        f"sr3bench prepare --preset {UP}",
        f"sr3bench sample --preset {DOWN} --method bicubic",
        f"sr3bench sample --preset {UP} --method bicubic",
    ]
    assert dvc_ran(dvc) == CHAIN_STAGES
    run(SNAKEMAKE + [TARGET], snakemake)
    chained_correctly(snakemake)
    second = files(snakemake)
    assert files(dvc) == second, "the engines' downstream results differ after the upstream change"
    assert second[f"{TARGET}/chelsea_chelsea.png"] != first[f"{TARGET}/chelsea_chelsea.png"]
    assert second["data/down16_32/test/hr/chelsea_chelsea.png"] == first["data/down16_32/test/hr/chelsea_chelsea.png"]

    # An upstream output deleted by hand: a plain run rebuilds it (rule all lists the chain's outputs).
    shutil.rmtree(snakemake / layout.samples_dir(UP, "bicubic"))
    plan = run(SNAKEMAKE + ["--dry-run", "--printshellcmds"], snakemake)
    assert f"sr3bench sample --preset {UP} --method bicubic" in plan.stdout + plan.stderr


def test_the_report_sets_the_chain_beside_direct_sr_and_table_4(tmp_path):
    from conftest import REPO

    from sr3bench.reporting.build import _format
    from sr3bench.reporting.cascade_section import CascadeInputs, cascade_section
    from sr3bench.reporting.paper import load_tables
    from sr3bench.reporting.tables import summarise

    protocol = {"description": "RGB, no border crop"}
    per_image = pd.DataFrame({"method": "sr3", "name": ["a.png", "b.png"], "psnr": [20.0, 22.0], "lpips": [0.3, 0.1]})
    summary = summarise(per_image, {"sr3": {"fid": 150.0, "kid": 0.05}}, protocol["description"])
    direct = tmp_path / "results/direct/sr3.csv"
    direct.parent.mkdir(parents=True)
    per_image.assign(psnr=[23.0, 25.0]).to_csv(direct, index=False)
    direct.with_suffix(".json").write_text(json.dumps({"fid": 120.0, "kid": 0.04, "protocol": protocol}))
    chain = [
        {"preset": "base", "title": "SR3 base generator", "sizes": "16x16"},
        {"preset": "middle", "title": "SR3", "sizes": "16x16 → 64x64"},
    ]
    compare = [
        {"preset": "direct", "method": "sr3", "title": "SR3", "sizes": "16x16 → 128x128", "results": direct},
        {
            "preset": "absent",
            "method": "sr3",
            "title": "SR3",
            "sizes": "16x16 → 128x128",
            "results": tmp_path / "no.csv",
        },
    ]
    tables = load_tables(REPO / "reports" / "paper")
    titles = {"sr3": "SR3"}

    def cells(page: str) -> list[list[str]]:
        first = page.split("<table>")[1]
        return [re.findall(r"<td>(.*?)</td>", row) for row in first.split("<tr>")[2:]]

    inputs = CascadeInputs(chain, "64x64 → 128x128", False, compare)
    page = cascade_section(inputs, summary, tables, titles, _format, {**protocol, "scale": 2})  # another scale: fine
    assert "<code>base</code>: SR3 base generator (16x16) &rarr; <code>middle</code>: SR3" in page
    assert "A miniature" in page and "FID-50k" in page
    chain_row, direct_row, absent_row = cells(page)
    # n_images, FID, KID, IS, PSNR (the mean of 20 and 22), SSIM, LPIPS
    assert chain_row[2:] == ["2", "150.00", "0.0500", "&ndash;", "21.00", "&ndash;", "0.200"]
    assert direct_row[2:6] == ["2", "120.00", "0.0400", "&ndash;"] and direct_row[6] == "24.00"
    assert set(absent_row[2:]) == {"&ndash;"} and "no.csv not found: run that preset first" in page
    for method, fid in {"VQ-VAE-2": "38.10", "BigGAN (truncation 1.0)": "7.40", "SR3 (two stages)": "11.30"}.items():
        assert f"<td>{method}</td><td>{fid}</td>" in page
    as_evaluated = summarise(
        per_image.assign(psnr=float("nan"), lpips=float("nan")),
        {"sr3": {"fid": 150.0, "kid": 0.05}},
        protocol["description"],
    )
    generated = cascade_section(
        CascadeInputs(chain, "64x64 → 128x128", True, compare), as_evaluated, tables, titles, _format
    )
    assert cells(generated)[0][2:] == ["2", "150.00", "0.0500", "&ndash;", "&ndash;", "&ndash;", "&ndash;"]
    assert "PSNR, SSIM and LPIPS against them mean nothing" in generated
    assert cascade_section(None, summary, tables, titles, _format) == ""
    assert "another protocol" not in page
    other = cascade_section(inputs, summary, tables, titles, _format, {"description": "Y, border crop 4 px"})
    assert "was evaluated under another protocol (description differ)" in other


def test_a_chain_from_a_generator_leaves_the_metrics_against_the_test_images_empty(tmp_path):
    """Below an unconditional generator no output is an estimate of its test image: the
    evaluate stage computes consistency with the generated LR inputs (the same numbers as
    a paired evaluation) and leaves PSNR, SSIM and LPIPS empty, with the reason."""
    from pipeline import registry
    from sr3bench.core.images import read_image, write_png
    from sr3bench.core.resize import downsample, upsample
    from sr3bench.metrics.evaluate import AGAINST_HR, evaluate_method, generated_input_reasons
    from sr3bench.metrics.lpips_metric import lpips_per_image

    presets = config.resolve(config.read_params(REPO / "params.yaml"))["presets"]
    generator = registry.chain_generator(presets, "faces64_128_small")
    assert (generator.preset, generator.method) == ("faces16_base_small", "sr3_base")
    assert registry.chain_generator(presets, "faces16_64_small") == generator
    assert registry.chain_generator(presets, "faces256_1024") is None  # its chain starts at SR3 64->256
    assert registry.chain_generator(presets, "demo") is None

    rng = np.random.default_rng(0)
    folders = {role: tmp_path / role for role in ("hr", "lr", "sr")}
    for name in ("a.png", "b.png"):
        hr = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
        lr = downsample(hr, 2)
        for role, image in {"hr": hr, "lr": lr, "sr": upsample(lr, 2)}.items():
            write_png(image, folders[role] / name)
    groups = {"a.png": "g", "b.png": "g"}
    arguments = (folders["hr"], folders["lr"], folders["sr"], groups, {"color": "rgb", "border_crop": 0}, 2)
    paired, _, too_small = evaluate_method("bicubic", *arguments)  # 16x16: under LPIPS's 31x31 (left empty)
    origin = "sr3_base of preset faces16_base_small"
    generated, _, reasons = evaluate_method("bicubic", *arguments, generator=origin)
    assert generated["consistency"].tolist() == paired["consistency"].tolist()
    assert generated[list(AGAINST_HR)].isna().all().all() and paired["psnr"].notna().all()
    assert paired["lpips"].isna().all() and list(too_small) == ["lpips"] and "at least 31x31" in too_small["lpips"]
    with pytest.raises(ValueError, match="2 of 2 are smaller"):  # called directly: a clear error, no traceback
        lpips_per_image(
            [read_image(folders["sr"] / n) for n in groups], [read_image(folders["hr"] / n) for n in groups]
        )
    assert reasons == generated_input_reasons(origin) and set(reasons) == set(AGAINST_HR)
    assert "unconditional generator" in reasons["psnr"] and origin in reasons["psnr"]
