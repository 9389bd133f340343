rule prepare:
    input:
        "pipeline/prepare.py",
        "pipeline/image_check.py",
        "sr3/resize.py",
    output:
        directory("data/{preset}"),
    log:
        "logs/{preset}/prepare.log",
    params:
        dataset=lambda w: preset_config(w)["dataset"],
        seed=lambda w: preset_config(w)["seed"],
    threads: config["threads"]["prepare"]
    shell:
        "sr3bench prepare --preset {wildcards.preset} --threads {threads} --log {log}"
