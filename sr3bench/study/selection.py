"""Which methods a study shows: numpy-free, since the stage table and the config, which
must import without the scientific stack, ask it."""

from __future__ import annotations


def shown_methods(chosen: list[str] | None, compared: list[str]) -> list[str]:
    """The methods a study shows: those of ``study.methods`` (all when None) that the run
    compares, so that narrowing a run's methods narrows its study instead of failing it."""
    return [method for method in (chosen or compared) if method in compared]
