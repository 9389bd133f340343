def prepare_inputs(wildcards):
    downloads = config["presets"][wildcards.preset]["dataset"]["downloads"]
    return [*code_deps.PREPARE_CODE, *[str(layout.download_dir(name)) for name in downloads]]


rule prepare:
    input:
        prepare_inputs,
    output:
        directory(str(layout.data_dir("{preset}"))),
    log:
        str(layout.log_file("{preset}", "prepare")),
    benchmark:
        str(layout.benchmark_file("{preset}", "prepare"))
    params:
        config=lambda w: stage_config(w, "prepare"),
    threads: config["threads"]["prepare"]
    shell:
        "sr3bench prepare --preset {wildcards.preset} --threads {threads} --log {log} {PARAMS_OPTION}"
