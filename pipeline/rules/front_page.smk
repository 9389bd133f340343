rule front_page:
    input:
        lambda w: [str(layout.report_file(PRESET, name)) for name in ("metrics.csv", "provenance.json")],
        code_deps.FRONT_PAGE_CODE,
    output:
        str(layout.FRONT_PAGE),
        str(layout.ALL_PRESETS_CSV),
    log:
        str(layout.FRONT_PAGE_LOG),
    benchmark:
        str(layout.FRONT_PAGE_LOG.with_suffix(".benchmark.tsv"))
    resources:
        **rule_settings.resources(config, "front_page"),
    conda:
        ENV_FILE
    shell:
        "sr3bench front-page --log {log}"
