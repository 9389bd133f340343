rule evaluate:
    input:
        "data/{preset}",
        "samples/{preset}/{method}",
        "metrics/evaluate.py",
        "metrics/psnr_ssim.py",
        "metrics/protocol.py",
        "metrics/consistency.py",
        "metrics/fid_kid_is.py",
        "metrics/lpips_metric.py",
        "metrics/weights.py",
        "sr3/resize.py",
    output:
        "results/{preset}/{method}.csv",
        "results/{preset}/{method}.json",
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
