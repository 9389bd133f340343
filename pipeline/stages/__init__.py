"""One module per pipeline stage, each with ``run(job)`` (a ``pipeline.stage_table.Job``):
the stage table names the module, and the module's import closure is the code the
engines track for the stage. A stage module imports only what its stage runs."""
