rule evaluate:
    input:
        str(layout.data_dir("{preset}")),
        str(layout.samples_dir("{preset}", "{method}")),
        code_deps.EVALUATE_CODE,
    output:
        str(layout.results_file("{preset}", "{method}")),
        str(layout.set_metrics_file("{preset}", "{method}")),
    log:
        str(layout.log_file("{preset}", "evaluate", "{method}")),
    benchmark:
        str(layout.benchmark_file("{preset}", "evaluate", "{method}"))
    params:
        config=lambda w: rule_settings.stage_config(config, w, "evaluate"),
    threads: config["threads"]["evaluate"]
    resources:
        **rule_settings.resources(config, "evaluate"),
    conda:
        ENV_FILE
    shell:
        "sr3bench evaluate --preset {wildcards.preset} --method {wildcards.method} --threads {threads} --log {log}"
