def sample_inputs(wildcards):
    inputs = [str(layout.data_dir(wildcards.preset)), *code_deps.sampling_code(wildcards.method)]
    if registry.entry(wildcards.method).trained:
        inputs.append(str(layout.model_file(wildcards.preset, wildcards.method)))
    if wildcards.method in TUNED_VARIANTS:
        inputs.append(str(layout.tune_choices_file(wildcards.preset, layout.base_method(wildcards.method))))
    return inputs


rule sample:
    input:
        sample_inputs,
    output:
        directory(str(layout.samples_dir("{preset}", "{method}"))),
    log:
        str(layout.log_file("{preset}", "sample", "{method}")),
    benchmark:
        str(layout.benchmark_file("{preset}", "sample", "{method}"))
    params:
        config=lambda w: stage_config(w, "sample"),
    threads: config["threads"]["sample"]
    shell:
        "sr3bench sample --preset {wildcards.preset} --method {wildcards.method} --threads {threads} --log {log} {PARAMS_OPTION}"
