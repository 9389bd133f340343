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
        [
            report(str(layout.report_file("{preset}", name)), caption=f"../report/{Path(name).stem}.rst", category=rule_settings.IN_SNAKEMAKE_REPORT[name])
            if name in rule_settings.IN_SNAKEMAKE_REPORT
            else str(layout.report_file("{preset}", name))
            for name in layout.REPORT_FILES
        ],
    log:
        str(layout.log_file("{preset}", "report")),
    benchmark:
        str(layout.benchmark_file("{preset}", "report"))
    params:
        config=lambda w: rule_settings.stage_config(config, w, "report"),
    threads: config["threads"]["report"]
    resources:
        **rule_settings.resources(config, "report"),
    conda:
        ENV_FILE
    shell:
        "sr3bench report --preset {wildcards.preset} --threads {threads} --log {log}"
