rule front_page:
    input:
        lambda w: [str(layout.report_file(PRESET, name)) for name in ("metrics.csv", "provenance.json")],
        "reporting/front_page.py",
    output:
        str(layout.FRONT_PAGE),
        str(layout.ALL_PRESETS_CSV),
    log:
        "logs/front_page.log",
    benchmark:
        "logs/front_page.benchmark.tsv"
    shell:
        "sr3bench front-page --log {log}"
