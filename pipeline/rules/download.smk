rule download:
    input:
        code_deps.DOWNLOAD_CODE,
    output:
        directory(str(layout.download_dir("{dataset}"))),
    log:
        str(layout.download_log_file("{dataset}")),
    benchmark:
        str(layout.download_log_file("{dataset}").with_suffix(".benchmark.tsv"))
    params:
        config=lambda w: config["datasets"].get(w.dataset, {}),
    resources:
        **rule_settings.resources(config, "download"),
    conda:
        ENV_FILE
    shell:
        "sr3bench download --dataset {wildcards.dataset} --log {log}"
