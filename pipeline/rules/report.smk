# Outputs in `snakemake --report report.html`: file -> category (caption: ../report/<stem>.rst).
IN_SNAKEMAKE_REPORT = {"metrics.csv": "Results", "grid.png": "Images", "zoom.png": "Images", "diversity.png": "Images", "loss.png": "Training", "tuning.png": "Sampling"}


def report_output(name):
    path = str(layout.report_file("{preset}", name))
    if name not in IN_SNAKEMAKE_REPORT:
        return path
    return report(path, caption=f"../report/{Path(name).stem}.rst", category=IN_SNAKEMAKE_REPORT[name])


rule report:
    input:
        str(layout.data_dir("{preset}")),
        lambda w: [str(layout.samples_dir(w.preset, m)) for m in METHODS],
        lambda w: [str(layout.results_file(w.preset, m)) for m in METHODS],
        lambda w: [str(layout.set_metrics_file(w.preset, m)) for m in METHODS],
        lambda w: [str(layout.loss_file(w.preset, m)) for m in TRAINED_METHODS],
        lambda w: [str(layout.tune_table(w.preset, m)) for m in TUNED_METHODS],
        lambda w: [str(layout.diversity_dir(w.preset, m)) for m in DIVERSE_METHODS],
        code_deps.REPORT_CODE,
        str(layout.PAPER_TABLES_DIR),
    output:
        [report_output(name) for name in layout.REPORT_FILES],
    log:
        str(layout.log_file("{preset}", "report")),
    benchmark:
        str(layout.benchmark_file("{preset}", "report"))
    params:
        config=lambda w: stage_config(w, "report"),
    threads: config["threads"]["report"]
    shell:
        "sr3bench report --preset {wildcards.preset} --threads {threads} --log {log} {PARAMS_OPTION}"
