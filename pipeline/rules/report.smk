rule report:
    input:
        "data/{preset}",
        expand("samples/{{preset}}/{method}", method=METHODS),
        expand("results/{{preset}}/{method}.{ext}", method=METHODS, ext=["csv", "json"]),
        expand("models/{{preset}}/{method}/loss.csv", method=TRAINED_METHODS),
        "reports/build.py",
        "reports/figures.py",
        "reports/tables.py",
        "reports/paper.py",
    output:
        "reports/{preset}/index.html",
        "reports/{preset}/metrics.csv",
        "reports/{preset}/per_image.csv",
        "reports/{preset}/metrics_by_group.csv",
        "reports/{preset}/metrics.json",
        "reports/{preset}/grid.png",
        "reports/{preset}/loss.png",
    log:
        "logs/{preset}/report.log",
    threads: config["threads"]["report"]
    shell:
        "sr3bench report --preset {wildcards.preset} --threads {threads} --log {log}"
