rule evaluate:
    input:
        "data/{preset}",
        "samples/{preset}/{method}",
        "metrics/evaluate.py",
        "metrics/psnr_ssim.py",
        "metrics/protocol.py",
        "metrics/consistency.py",
        "sr3/resize.py",
    output:
        "results/{preset}/{method}.csv",
    log:
        "logs/{preset}/evaluate_{method}.log",
    benchmark:
        "logs/{preset}/evaluate_{method}.benchmark.tsv"
    wildcard_constraints:
        method="|".join(METHODS),
    params:
        protocol=lambda w: preset_config(w)["protocol"],
    threads: config["threads"]["evaluate"]
    shell:
        "sr3bench evaluate --preset {wildcards.preset} --method {wildcards.method} --threads {threads} --log {log}"
