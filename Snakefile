# SR3 Bench workflow. Every hyperparameter lives in params.yaml, which DVC reads too.
#   snakemake --cores 8                        # the default preset (demo)
#   snakemake --cores 8 --config preset=NAME   # another preset
from pipeline.code_deps import SAMPLING_CODE, TRAINING_CODE
from pipeline.config import validate
from pipeline.paths import METHODS, TRAINED_METHODS
from pipeline.snakemake_locks import clear_stale_locks, forget_run, record_run


configfile: "params.yaml"


validate(config)  # schema + cross-key checks; one message naming the key

PRESET = config["preset"]

# After a kill -9 or a power cut: drop the dead run's locks (profiles/default sets
# rerun-incomplete, so its unfinished jobs run again and resume from their checkpoints).
clear_stale_locks()


onstart:
    record_run()


onsuccess:
    forget_run()


onerror:
    forget_run()


def preset_config(wildcards):
    return config["presets"][wildcards.preset]


include: "pipeline/rules/prepare.smk"
include: "pipeline/rules/train.smk"
include: "pipeline/rules/sample.smk"
include: "pipeline/rules/evaluate.smk"
include: "pipeline/rules/report.smk"


rule all:
    input:
        f"reports/{PRESET}/index.html",
        f"reports/{PRESET}/metrics.csv",
