rule sample:
    input:
        lambda w: rule_settings.sample_inputs(config, TUNED_VARIANTS, w),
    output:
        directory(str(layout.samples_dir("{preset}", "{method}"))),
    log:
        str(layout.log_file("{preset}", "sample", "{method}")),
    benchmark:
        str(layout.benchmark_file("{preset}", "sample", "{method}"))
    params:
        config=lambda w: rule_settings.stage_config(config, w, "sample"),
    threads: config["threads"]["sample"]
    resources:
        **rule_settings.resources(config, "sample"),
    conda:
        ENV_FILE
    shell:
        "sr3bench sample --preset {wildcards.preset} --method {wildcards.method} --threads {threads} --log {log}"


# With sampling.shards N above 1: N jobs (cluster nodes) each sample every N-th batch of
# the test images; the sample rule above then merges them.
rule sample_shard:
    input:
        lambda w: rule_settings.sample_inputs(config, TUNED_VARIANTS, w, shard=True),
    output:
        directory(str(layout.sample_shard_dir("{preset}", "{method}", "{shard}", "{shards}"))),
    log:
        str(layout.log_file("{preset}", "sample-{shard}-of-{shards}", "{method}")),
    benchmark:
        str(layout.benchmark_file("{preset}", "sample-{shard}-of-{shards}", "{method}"))
    wildcard_constraints:
        shard=r"\d+",
        shards=r"\d+",
    params:
        config=lambda w: rule_settings.stage_config(config, w, "sample"),
    threads: config["threads"]["sample"]
    resources:
        **rule_settings.resources(config, "sample"),
    conda:
        ENV_FILE
    shell:
        "sr3bench sample --preset {wildcards.preset} --method {wildcards.method} --shard {wildcards.shard}/{wildcards.shards} --threads {threads} --log {log}"
