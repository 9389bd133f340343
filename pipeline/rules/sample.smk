rule sample:
    input:
        lambda w: rule_settings.sample_inputs(TUNED_VARIANTS, w),
    output:
        directory(str(layout.samples_dir("{preset}", "{method}"))),
    log:
        str(layout.log_file("{preset}", "sample", "{method}")),
    benchmark:
        str(layout.benchmark_file("{preset}", "sample", "{method}"))
    params:
        config=lambda w: rule_settings.stage_config(config, w, "sample"),
    threads: config["threads"]["sample"]
    resources:
        **rule_settings.resources(config, "sample"),
    conda:
        ENV_FILE
    shell:
        "sr3bench sample --preset {wildcards.preset} --method {wildcards.method} --threads {threads} --log {log}"
