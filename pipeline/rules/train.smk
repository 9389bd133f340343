rule train:
    input:
        str(layout.data_dir("{preset}")),
        lambda w: code_deps.training_code(w.method),
    output:
        str(layout.model_file("{preset}", "{method}")),
        str(layout.loss_file("{preset}", "{method}")),
    log:
        str(layout.log_file("{preset}", "train", "{method}")),
    benchmark:
        str(layout.benchmark_file("{preset}", "train", "{method}"))
    wildcard_constraints:
        method="|".join(TRAINED_METHODS),
    params:
        config=lambda w: rule_settings.stage_config(config, w, "train"),
    threads: config["threads"]["train"]
    resources:
        **rule_settings.resources(config, "train"),
    conda:
        ENV_FILE
    shell:
        "sr3bench train --preset {wildcards.preset} --method {wildcards.method} --threads {threads} --log {log}"
