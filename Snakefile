# SR3 Bench workflow. Every hyperparameter lives in params.yaml, which DVC reads too.
#   snakemake --cores 8                                          # the default preset (demo)
#   snakemake --cores 8 --config preset=NAME                     # another preset
#   snakemake --cores 8 --config "presets={demo: {training: {sr3: {steps: 100}}}}"   # nested values
#   snakemake --cores 8 --configfile my_overrides.yaml           # merged over params.yaml
# Methods come from pipeline/registry.py (the methods: list of params.yaml), paths from
# pipeline/layout.py; the rules in pipeline/rules/ only call the sr3bench CLI.
import re
from pathlib import Path

from pipeline import code_deps, layout, registry, rule_settings
from pipeline.config import PARAMS_FILE, option_for_resolved, read_params, resolve, typed_engine_config
from pipeline.snakemake_locks import clear_stale_locks, forget_run, record_run


# Read params.yaml once before Snakemake's loader does: a YAML error then names the file
# and the line instead of Snakemake's "Config file is not valid JSON or YAML".
read_params(PARAMS_FILE)


configfile: PARAMS_FILE


report: "pipeline/report/workflow.rst"


# Schema, defaults and cross-key checks (one message naming the key), then the resolved
# config replaces Snakemake's: the rules' params and the jobs see the same values.
_resolved = resolve(typed_engine_config(config))
config.clear()
config.update(_resolved)
# With overrides, the jobs read the resolved config from cache/params/<hash>.yaml (the
# CLI's --params defaults to the file this names); without, params.yaml as DVC does.
rule_settings.publish_params_option(option_for_resolved(config))
# Every rule's software (snakemake --use-conda); the default is the current environment.
ENV_FILE = str(Path(workflow.basedir) / "envs" / "sr3bench.yaml")

PRESET = config["preset"]
METHODS = config["methods"]
TRAINED_METHODS = registry.trained_methods(METHODS)
TUNED_VARIANTS = registry.tuned_variants(config["presets"][PRESET], METHODS)
TUNED_METHODS = registry.tuned_methods(config["presets"][PRESET], METHODS)  # tune stages
DIVERSE_METHODS = registry.diverse_methods(config["presets"][PRESET], METHODS)  # diversity stages

# After a kill -9 or a power cut: drop the dead run's locks (profiles/default sets
# rerun-incomplete, so its unfinished jobs run again and resume from their checkpoints).
clear_stale_locks()


onstart:
    record_run()


onsuccess:
    forget_run()


onerror:
    forget_run()


wildcard_constraints:
    method="|".join(re.escape(m) for m in METHODS),
    preset="[^/]+",
    dataset="[a-z0-9_]+",


include: "pipeline/rules/download.smk"
include: "pipeline/rules/prepare.smk"
include: "pipeline/rules/train.smk"
include: "pipeline/rules/tune.smk"
include: "pipeline/rules/sample.smk"
include: "pipeline/rules/diversity.smk"
include: "pipeline/rules/evaluate.smk"
include: "pipeline/rules/report.smk"
include: "pipeline/rules/front_page.smk"


# Every declared output, not only the report: Snakemake does not rebuild a missing
# intermediate file whose downstream outputs exist (it treats it as a removed temp file),
# so results deleted by hand or lost to a kill during --forcerun would stay missing.
rule all:
    input:
        str(layout.FRONT_PAGE),
        [str(layout.report_file(PRESET, name)) for name in layout.REPORT_FILES],
        [str(layout.results_file(PRESET, m)) for m in METHODS],
        [str(layout.set_metrics_file(PRESET, m)) for m in METHODS],
        [str(layout.samples_dir(PRESET, m)) for m in METHODS],
        [str(layout.model_file(PRESET, m)) for m in TRAINED_METHODS],
        [str(layout.loss_file(PRESET, m)) for m in TRAINED_METHODS],
        [str(layout.tune_table(PRESET, m)) for m in TUNED_METHODS],
        [str(layout.tune_choices_file(PRESET, m)) for m in TUNED_METHODS],
        [str(layout.diversity_dir(PRESET, m)) for m in DIVERSE_METHODS],
