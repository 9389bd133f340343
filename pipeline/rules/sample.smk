def sample_inputs(wildcards):
    inputs = [f"data/{wildcards.preset}", *SAMPLING_CODE]
    if wildcards.method in TRAINED_METHODS:
        inputs.append(f"models/{wildcards.preset}/{wildcards.method}/model.pt")
    return inputs


rule sample:
    input:
        sample_inputs,
    output:
        directory("samples/{preset}/{method}"),
    log:
        "logs/{preset}/sample_{method}.log",
    benchmark:
        "logs/{preset}/sample_{method}.benchmark.tsv"
    wildcard_constraints:
        method="|".join(METHODS),
    params:
        inference_schedule=lambda w: preset_config(w)["diffusion"]["inference_schedule"],
        sampling=lambda w: preset_config(w)["sampling"],
    threads: config["threads"]["sample"]
    shell:
        "sr3bench sample --preset {wildcards.preset} --method {wildcards.method} --threads {threads} --log {log}"
