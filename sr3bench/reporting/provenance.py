"""Where a report's numbers come from: the code (git commit, uncommitted changes), the
config (hash and full text), the packages, the machine, the torch threads that trained each
model, each stage's wall time and peak memory (Snakemake's ``benchmark:`` files),
checksums of the dataset splits, and those of the outside methods' folders."""

from __future__ import annotations

import datetime
import hashlib
import html
import json
import platform
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from sr3bench.core.checksums import split_sha256
from sr3bench.core.image_files import list_images
from sr3bench.core.machine import cpu_count, cpu_name
from sr3bench.core.output_folder import folder_checksum
from sr3bench.core.runtime import cpu_flags
from sr3bench.core.stage_files import read_json

PACKAGES = (
    "sr3-bench",
    "torch",
    "torchvision",
    "torch-fidelity",
    "lpips",
    "scikit-image",
    "numpy",
    "pandas",
    "pillow",
    "matplotlib",
    "snakemake",
    "dvc",
)


def _run(command: list[str]) -> str | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def git_state() -> dict:
    """{commit, dirty}: dirty when tracked files differ from the commit (untracked files,
    such as the run's outputs, do not count)."""
    commit = _run(["git", "rev-parse", "--short", "HEAD"])
    changes = _run(["git", "status", "--porcelain", "--untracked-files=no"])
    return {"commit": commit or "unknown (not a git checkout)", "dirty": bool(changes) if changes is not None else None}


def config_hash(settings: dict) -> str:
    """sha256 of settings as sorted JSON (first 16 hex digits)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine() -> dict[str, str]:
    cpu = cpu_name()
    usable = cpu_count()
    gpus = (
        _run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"])
        if shutil.which("nvidia-smi")
        else None
    )
    return {
        "cpu": cpu,
        **cpu_details(),
        "cores usable": str(usable),
        "gpu": gpus.replace("\n", "; ") if gpus else "none detected",
        "system": platform.platform(),
    }


# The instruction-set extensions torch's CPU kernels choose between (bf16 is fast only
# with the last three): two CPUs of one name ("AMD EPYC" in a virtual machine) can differ here.
VECTOR_EXTENSIONS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_details(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """An x86 CPU's family and model numbers and which of ``VECTOR_EXTENSIONS`` it has, as
    /proc/cpuinfo gives them ({} where it does not: another system or architecture)."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return {}
    fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)}
    if "cpu family" not in fields:
        return {}
    flags = cpu_flags(cpuinfo)
    return {
        "cpu family/model": f"{fields['cpu family']}/{fields.get('model', '?')}",
        "vector extensions": ", ".join(name for name in VECTOR_EXTENSIONS if name in flags) or "none of AVX2 and up",
    }


def stage_times(folder: Path) -> pd.DataFrame:
    """stage, wall seconds, peak RSS (MiB) from Snakemake's ``<stage>.benchmark.tsv`` files
    (columns ``s`` and ``max_rss``); empty under DVC, which writes none."""
    rows = []
    for path in sorted(Path(folder).glob("*.benchmark.tsv")):
        table = pd.read_csv(path, sep="\t")
        if len(table):
            rss = pd.to_numeric(table["max_rss"].iloc[-1], errors="coerce")
            rows.append(
                {
                    "stage": path.name.removesuffix(".benchmark.tsv"),
                    "seconds": float(table["s"].iloc[-1]),
                    "peak_rss_mib": None if pd.isna(rss) else float(rss),
                }
            )
    return pd.DataFrame(rows, columns=["stage", "seconds", "peak_rss_mib"])


def training_threads(losses: dict[str, Path]) -> dict[str, str]:
    """title -> the torch threads that computed the model's steps, from its loss CSV's
    torch_threads column ("2", or "1 up to step 100, 2 up to step 150" after a resume with
    other threads); "not recorded" for a model trained before the column existed."""
    described = {}
    for title, path in losses.items():
        table = pd.read_csv(path)
        if "torch_threads" not in table:
            described[title] = "not recorded"
            continue
        rows = table.dropna(subset=["torch_threads"])
        segments: list[list[int]] = []  # [threads, last step]
        for step, threads in zip(rows["step"].astype(int), rows["torch_threads"].astype(int)):
            if segments and segments[-1][0] == threads:
                segments[-1][1] = step
            else:
                segments.append([threads, step])
        if len(segments) > 1:
            described[title] = ", ".join(f"{threads} up to step {last}" for threads, last in segments)
        else:
            described[title] = str(segments[0][0]) if segments else "not recorded"
    return described


def pooled_test_sets(dataset: dict, manifest_file: Path) -> dict[str, int]:
    """Where the test split is several sets (``dataset.test_folders``: Set5 and Set14, one
    test group each), each set's number of test images, in the manifest's order; {} for a
    test split of one set (whose groups, such as the demo's one per photograph, are no sets)."""
    if len(dataset.get("test_folders") or []) < 2:
        return {}
    manifest = read_json(manifest_file, "run the prepare stage again (sr3bench prepare --preset PRESET)")
    groups = [row.get("group", "") for row in manifest.get("test", [])]
    return {group: groups.count(group) for group in dict.fromkeys(groups)}


def dataset_checksums(manifest_file: Path) -> dict[str, dict]:
    """split -> {images, sha256}: a digest over the split's image names and the sha256 of
    each HR and LR image (from prepare's manifest), so two runs on the same data agree;
    None for an empty split (which has no images to digest)."""
    manifest = read_json(manifest_file, "run the prepare stage again (sr3bench prepare --preset PRESET)")
    entries = {split: manifest.get(split, []) for split in ("train", "val", "test")}
    return {
        split: {"images": len(listed), "sha256": split_sha256(listed)[:16] if listed else None}
        for split, listed in entries.items()
    }


def outside_checksums(outside: dict[str, dict]) -> dict[str, dict]:
    """method -> {title, citation, folder, images, sha256} of each outside method, whose
    ``samples`` folder holds the test images of its ``folder`` (copied by the collect
    stage): the digest over their names and the sha256 of each, as the dataset's."""
    checksums = {}
    for method, source in outside.items():
        images = {path.name: path for path in list_images(source["samples"])}
        checksums[method] = {
            "title": source["title"],
            "citation": source["citation"],
            "folder": str(source["folder"]),
            **folder_checksum(images),
        }
    return checksums


def provenance(
    preset: dict,
    settings: dict,
    declared_threads: dict,
    benchmarks: Path,
    manifest_file: Path,
    losses: dict[str, Path] | None = None,
    outside: dict[str, dict] | None = None,
    titles: dict[str, str] | None = None,
    models: dict[str, dict] | None = None,
) -> dict:
    """Everything the report's provenance section prints, also written as provenance.json.
    ``settings``: {params.yaml key: value} of every setting the numbers rest on (the keys
    the run's stages track, a cascade's upstream presets' included), hashed;
    ``declared_threads``: params.yaml's ``threads.<stage>`` of each stage the run has;
    ``pooled_test_sets``: where the test split is several sets, the test images of each
    (the front page then says that the means pool them); ``titles``: method -> its title, as the front page and the
    README table print it;
    ``losses``: title -> loss CSV of each trained model, for the threads that trained it;
    ``outside``: method -> {title, citation, folder, samples} of each outside method;
    ``models``: title -> {file, sha256, training} of each trained model (how it was trained,
    from the model file itself)."""
    record = {
        "description": preset.get("description", ""),
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": git_state(),
        "config_sha256": config_hash(settings),
        "settings": settings,
        "packages": package_versions(),
        "machine": machine(),
        "declared_threads": declared_threads,
        "training_threads": training_threads(losses or {}),
        "stages": stage_times(benchmarks).to_dict(orient="records"),
        "datasets": dataset_checksums(manifest_file),
        "pooled_test_sets": pooled_test_sets(preset.get("dataset", {}), manifest_file),
        "titles": titles or {},
        "models": models or {},
    }
    if outside:
        record["outside_outputs"] = outside_checksums(outside)
    return record


def outside_section(outside: dict[str, dict]) -> str:
    """The outside methods' folders, checksums and citations ("" without any)."""
    if not outside:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(v['title'])}</td><td><code>{html.escape(v['folder'])}</code></td>"
        f"<td>{v['images']}</td><td><code>{v['sha256']}</code></td><td>{html.escape(v['citation'])}</td></tr>"
        for v in outside.values()
    )
    return (
        "<h3>Outside outputs</h3><table><thead><tr><th>method</th><th>folder</th><th>images</th>"
        "<th>sha256 of names and image hashes</th><th>citation</th></tr></thead>"
        f"<tbody>{rows}</tbody></table><p class='cite'>Scored from these folders as they were given "
        "(checked: every test image, its HR image's size, 8-bit RGB or grey where its HR image is grey); not "
        "computed by this project.</p>"
    )


def models_item(models: dict[str, dict]) -> str:
    """The trained models' files, hashes and how each was trained ("" without any)."""
    if not models:
        return ""
    described = []
    for title, model in models.items():
        training = model.get("training") or {}
        how = ", ".join(
            str(value)
            for value in (
                training.get("device") and f"on {training['device']}",
                training.get("cpu") and f"CPU {training['cpu']}",
                training.get("precision"),
                training.get("torch") and f"torch {training['torch']}",
                training.get("processes") and f"{training['processes']} process(es)",
            )
            if value
        )
        digest = f"SHA-256 <code>{model['sha256'][:16]}</code>..." if model.get("sha256") else "no file"
        described.append(
            f"{html.escape(title)}: <code>{html.escape(model['file'])}</code>, {digest}, "
            f"trained {html.escape(how) if how else '(not recorded)'}"
        )
    return (
        "<li>Trained models, and how each was trained (from the model file; the settings above are params.yaml's "
        f"when this report was written): {'; '.join(described)}.</li>"
    )


def _digest(sha256: str | None) -> str:
    return "&ndash; (no images)" if sha256 is None else f"<code>{sha256}</code>"


def provenance_section(record: dict) -> str:
    git = record["git"]
    dirty = {True: "<b>with uncommitted changes</b> to tracked files", False: "clean", None: "state unknown"}[
        git["dirty"]
    ]
    packages = ", ".join(f"{html.escape(name)} {html.escape(v)}" for name, v in record["packages"].items())
    machine = "; ".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in record["machine"].items())
    threads = ", ".join(f"{html.escape(stage)} {count}" for stage, count in record["declared_threads"].items())
    trained = ", ".join(f"{html.escape(title)} {html.escape(n)}" for title, n in record["training_threads"].items())
    trained_line = (
        f"<li>Torch threads that trained each model: {trained}. Trained weights, and the samples and metrics "
        "from them, repeat bit for bit only on the same machine with the same threads and processes: "
        "another thread count sums floats in another order.</li>"
        if trained
        else ""
    )
    models_line = models_item(record.get("models", {}))
    stages = record["stages"]
    if stages:
        memory = lambda mib: "&ndash;" if mib is None else f"{mib:.0f}"  # noqa: E731
        rows = "".join(
            f"<tr><td>{html.escape(s['stage'])}</td><td>{s['seconds']:.1f}</td>"
            f"<td>{memory(s['peak_rss_mib'])}</td></tr>"
            for s in stages
        )
        total = sum(s["seconds"] for s in stages)
        timing = (
            "<table><thead><tr><th>stage</th><th>wall time (s)</th><th>peak memory (MiB, RSS)</th></tr></thead>"
            f"<tbody>{rows}"
            f"<tr><td><b>sum</b></td><td><b>{total:.1f}</b></td><td></td></tr></tbody></table>"
            "<p class='cite'>From Snakemake's benchmark files (logs/&lt;preset&gt;/*.benchmark.tsv), "
            "the last run of each stage; "
            "stages that ran in parallel overlap, so the sum exceeds the wall time of the whole run. "
            "This report's own stage is not included.</p>"
        )
    else:
        timing = (
            "<p>No stage timings: Snakemake writes them (its <code>benchmark:</code> files); "
            "this run did not leave any (DVC writes none).</p>"
        )
    datasets = "".join(
        f"<tr><td>{html.escape(split)}</td><td>{v['images']}</td><td>{_digest(v['sha256'])}</td></tr>"
        for split, v in record["datasets"].items()
    )
    settings = json.dumps(record["settings"], indent=1, sort_keys=True)
    return f"""<h2>Provenance</h2>
<ul>
<li>Generated {html.escape(record["generated"])} from commit <code>{html.escape(git["commit"])}</code>, \
{dirty}.</li>
<li>Config hash <code>{record["config_sha256"]}</code>: the sha256 of the {len(record["settings"])} settings \
the numbers rest on, every params.yaml key that a stage of this run tracks (in a cascade, the upstream \
presets' too). Where and how fast stages ran (<code>runtime</code>, <code>threads</code>, \
<code>resources</code>) is not among them. \
<details><summary>The settings</summary><pre>{html.escape(settings)}</pre></details></li>
<li>Packages: {packages}.</li>
<li>Machine (of this report stage): {machine}. Threads declared (params.yaml's <code>threads</code>) \
for the stages of this run: {threads}.</li>
{trained_line}
{models_line}
</ul>
<h3>Wall time and peak memory per stage</h3>
{timing}
<h3>Dataset checksums</h3>
<table><thead><tr><th>split</th><th>images</th><th>sha256 of names and image hashes</th></tr></thead>\
<tbody>{datasets}</tbody></table>
{outside_section(record.get("outside_outputs", {}))}
<p>Per-image values: <a href="per_image.csv">per_image.csv</a>; summary: <a href="metrics.csv">metrics.csv</a>; \
this section as <a href="provenance.json">provenance.json</a>.</p>"""
