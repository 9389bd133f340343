def sample_inputs(wildcards):
    inputs = [str(layout.data_dir(wildcards.preset)), *code_deps.sampling_code(wildcards.method)]
    if registry.entry(wildcards.method).trained:
        inputs.append(str(layout.model_file(wildcards.preset, wildcards.method)))
    return inputs


def sample_settings(wildcards):
    """What the samples depend on besides the inputs (the variant's settings applied)."""
    settings = registry.apply_variant(preset_config(wildcards), wildcards.method)
    keys = ["sampling"] + (["seed"] if registry.entry(wildcards.method).trained else [])
    return {"inference_schedule": settings["diffusion"]["inference_schedule"], **{k: settings[k] for k in keys}}


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
        settings=sample_settings,
    threads: config["threads"]["sample"]
    shell:
        "sr3bench sample --preset {wildcards.preset} --method {wildcards.method} --threads {threads} --log {log} {PARAMS_OPTION}"
