"""SR3 Bench's shared code under one import name, so that installing the project claims no
generic top-level names: ``sr3bench.core`` (images, resizing, atomic writes, runtime),
``sr3bench.metrics`` (one module per metric) and ``sr3bench.reporting`` (CSV, HTML, figures).
The mission's folders ``pipeline/``, ``sr3/`` and ``baselines/`` stay top-level packages."""
