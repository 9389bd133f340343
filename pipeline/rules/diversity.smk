rule diversity:
    input:
        str(layout.data_dir("{preset}")),
        str(layout.model_file("{preset}", "{method}")),
        lambda w: code_deps.sampling_code(w.method),
    output:
        directory(str(layout.diversity_dir("{preset}", "{method}"))),
    log:
        str(layout.log_file("{preset}", "diversity", "{method}")),
    benchmark:
        str(layout.benchmark_file("{preset}", "diversity", "{method}"))
    params:
        config=lambda w: rule_settings.stage_config(config, w, "diversity"),
    threads: config["threads"]["diversity"]
    resources:
        **rule_settings.resources(config, "diversity"),
    conda:
        ENV_FILE
    shell:
        "sr3bench diversity --preset {wildcards.preset} --method {wildcards.method} --threads {threads} --log {log}"
