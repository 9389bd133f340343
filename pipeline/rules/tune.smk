rule tune:
    input:
        str(layout.data_dir("{preset}")),
        str(layout.model_file("{preset}", "{method}")),
        lambda w: code_deps.tuning_code(w.method),
    output:
        report(str(layout.tune_table("{preset}", "{method}")), caption="../report/tune_table.rst", category="Sampling"),
        str(layout.tune_choices_file("{preset}", "{method}")),
    log:
        str(layout.log_file("{preset}", "tune", "{method}")),
    benchmark:
        str(layout.benchmark_file("{preset}", "tune", "{method}"))
    params:
        config=lambda w: rule_settings.stage_config(config, w, "tune"),
    threads: config["threads"]["tune"]
    resources:
        **rule_settings.resources(config, "tune"),
    conda:
        ENV_FILE
    shell:
        "sr3bench tune --preset {wildcards.preset} --method {wildcards.method} --threads {threads} --log {log}"
