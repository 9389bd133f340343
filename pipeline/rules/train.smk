rule train:
    input:
        "data/{preset}",
        TRAINING_CODE,
    output:
        "models/{preset}/{method}/model.pt",
        "models/{preset}/{method}/loss.csv",
    log:
        "logs/{preset}/train_{method}.log",
    benchmark:
        "logs/{preset}/train_{method}.benchmark.tsv"
    wildcard_constraints:
        method="|".join(TRAINED_METHODS),
    params:
        model=lambda w: preset_config(w)["model"],
        training=lambda w: preset_config(w)["training"][w.method],
        diffusion=lambda w: preset_config(w)["diffusion"],
        seed=lambda w: preset_config(w)["seed"],
    threads: config["threads"]["train"]
    shell:
        "sr3bench train --preset {wildcards.preset} --method {wildcards.method} --threads {threads} --log {log}"
