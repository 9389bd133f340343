# SR3 Bench workflow. Every hyperparameter lives in params.yaml, which DVC reads too.
#   snakemake --cores 8                                          # the default preset (demo)
#   snakemake --cores 8 --config preset=NAME                     # another preset
#   snakemake --cores 8 --config "presets={demo: {training: {sr3: {steps: 100}}}}"   # nested values
#   snakemake --cores 8 --configfile my_overrides.yaml           # merged over params.yaml
# The rules are generated from the stage table (pipeline/stage_table.py), one per stage, and
# only call the sr3bench CLI; methods come from pipeline/registry.py, paths from pipeline/layout.py.
from pathlib import Path

from pipeline import cascade_plan, rule_settings, stage_table
from pipeline.config import PARAMS_FILE, engine_layers, one_line_errors, option_for_resolved, resolve_engine_config
from pipeline.snakemake_locks import start_run
from pipeline.slurm_nodes import refuse_jobs_larger_than_any_node
from pipeline.writable_outputs import refuse_unwritable_output_folders


# Read params.yaml and the --configfile files before Snakemake's loader does: a YAML error
# or a key given twice then names the file and the line (Snakemake's says "Config file is
# not valid JSON or YAML", or keeps the last value). A config error is one message.
with one_line_errors():
    CONFIG_LAYERS = engine_layers(PARAMS_FILE, workflow.overwrite_configfiles, workflow.config_settings.config)


configfile: PARAMS_FILE


report: "pipeline/report/workflow.rst"


# Schema, defaults and cross-key checks (one message naming the file and the key), then the
# resolved config replaces Snakemake's: the rules' params and the jobs see the same values.
with one_line_errors():
    _resolved = resolve_engine_config(config, CONFIG_LAYERS)
config.clear()
config.update(_resolved)
# With overrides, the jobs read the resolved config from cache/params/<hash>.yaml (the
# CLI's --params defaults to the file this names); without, params.yaml as DVC does.
rule_settings.publish_params_option(option_for_resolved(config))
# Every rule's software (snakemake --use-conda); the default is the current environment.
ENV_FILE = str(Path(workflow.basedir) / "envs" / "sr3bench.yaml")

PRESET = config["preset"]
PLAN = stage_table.Plan.of(config, PRESET)
# In a cascade (dataset.lr_from), the presets above this one: their jobs that lead to the
# outputs it reads are reachable through the {preset} wildcard (pipeline/cascade_plan.py).
PLANS = list(cascade_plan.plans(config, PRESET).values())

# After a kill -9 or a power cut: drop the dead run's locks (profiles/default sets
# rerun-incomplete, so its unfinished jobs run again and resume from their checkpoints),
# then record this run: Snakemake locks only after reading this file, so a run that holds
# locks always has a live record, and no clean-up can remove a live run's locks.
start_run(workflow)


# Before the first job (not in a dry run): a folder this user cannot write gets one message
# naming it and the fix, instead of Snakemake's "Failed to create output directory"; on
# SLURM, a job larger than every node, instead of a job that waits in the queue for ever.
onstart:
    refuse_unwritable_output_folders(PRESET)
    refuse_jobs_larger_than_any_node(workflow)


wildcard_constraints:
    preset="[^/.]+",  # not data/<preset>.classify
    dataset="[a-z0-9_]+",


def declared(output, preset, member):
    """An output pattern as Snakemake declares it: a folder, a file of its report, a file."""
    path = str(output.path(preset, member))
    if output.directory:
        return directory(path)
    if output.snakemake_report:
        category, caption = output.snakemake_report
        return report(path, caption=f"pipeline/report/{caption}.rst", category=category)
    return path


# Every declared output, not only the report, and in a cascade the upstream presets' ones
# it reads: Snakemake does not rebuild a missing intermediate file whose downstream outputs
# exist (it treats it as a removed temp file), so results deleted by hand or lost to a kill
# during --forcerun would stay missing.
rule all:
    input:
        rule_settings.run_outputs(PLAN, PRESET, config),


for stage in stage_table.STAGES:
    if stage.fan_out != "dataset" and not any(plan.members(stage.fan_out) for plan in PLANS):  # download: any dataset
        continue
    preset = rule_settings.preset_pattern(stage, PRESET)
    member = rule_settings.member_pattern(stage)
    log_file = stage.log(preset, member)

    rule:
        name:
            stage.name
        input:
            rule_settings.inputs(stage, config, PRESET),
        output:
            [declared(output, preset, member) for output in stage.outputs],
        log:
            str(log_file),
        benchmark:
            str(log_file.with_suffix(".benchmark.tsv"))
        params:
            config=rule_settings.tracked_values(config, stage),
            command=rule_settings.command(stage),
        threads: rule_settings.threads(config, stage)
        resources:
            **rule_settings.resources(config, stage),
        wildcard_constraints:
            **rule_settings.wildcard_constraints(stage, *PLANS),
        conda:
            ENV_FILE
        shell:
            "{params.command} --threads {threads} --log {log}"
