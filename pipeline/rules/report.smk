rule report:
    input:
        str(layout.data_dir("{preset}")),
        lambda w: [str(layout.samples_dir(w.preset, m)) for m in METHODS],
        lambda w: [str(layout.results_file(w.preset, m)) for m in METHODS],
        lambda w: [str(layout.set_metrics_file(w.preset, m)) for m in METHODS],
        lambda w: [str(layout.loss_file(w.preset, m)) for m in TRAINED_METHODS],
        lambda w: [str(layout.tune_table(w.preset, m)) for m in TUNED_METHODS],
        code_deps.REPORT_CODE,
        str(layout.PAPER_TABLES_DIR),
    output:
        [str(layout.report_file("{preset}", name)) for name in layout.REPORT_FILES],
    log:
        str(layout.log_file("{preset}", "report")),
    benchmark:
        str(layout.benchmark_file("{preset}", "report"))
    params:
        config=lambda w: stage_config(w, "report"),
    threads: config["threads"]["report"]
    shell:
        "sr3bench report --preset {wildcards.preset} --threads {threads} --log {log} {PARAMS_OPTION}"
