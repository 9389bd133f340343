rule prepare:
    input:
        lambda w: rule_settings.prepare_inputs(config, w),
    output:
        directory(str(layout.data_dir("{preset}"))),
    log:
        str(layout.log_file("{preset}", "prepare")),
    benchmark:
        str(layout.benchmark_file("{preset}", "prepare"))
    params:
        config=lambda w: rule_settings.stage_config(config, w, "prepare"),
    threads: config["threads"]["prepare"]
    resources:
        **rule_settings.resources(config, "prepare"),
    conda:
        ENV_FILE
    shell:
        "sr3bench prepare --preset {wildcards.preset} --threads {threads} --log {log}"
