"""What a noise schedule's values must be, without torch (the config check imports it;
sr3/schedule.py computes the schedules)."""

from __future__ import annotations

SHAPES = ("linear", "cosine", "geometric")
SHAPE_KEYS = {"linear": ("beta_start", "beta_end"), "cosine": (), "geometric": ("sigma_min", "sigma_max")}


def schedule_problem(schedule: dict) -> str | None:
    """What is wrong with a schedule's values, or None."""
    shape = schedule.get("shape", "linear")
    if shape not in SHAPES:
        return f"unknown shape {shape!r}; one of {', '.join(SHAPES)}"
    if schedule["steps"] < 1:
        return f"a noise schedule needs at least one step, got steps={schedule['steps']}"
    missing = [key for key in SHAPE_KEYS[shape] if key not in schedule]
    extra = [key for key in schedule if key not in ("steps", "shape", *SHAPE_KEYS[shape])]
    if missing or extra:
        return f"a {shape} schedule takes steps and {', '.join(SHAPE_KEYS[shape]) or 'nothing else'}" + (
            f" (missing {', '.join(missing)})" if missing else f" (not {', '.join(extra)})"
        )
    if shape == "linear" and not 0 < schedule["beta_start"] <= schedule["beta_end"] < 1:
        return f"need 0 < beta_start <= beta_end < 1, got {schedule['beta_start']} and {schedule['beta_end']}"
    if shape == "geometric" and not 0 < schedule["sigma_min"] < schedule["sigma_max"]:
        return f"need 0 < sigma_min < sigma_max, got {schedule['sigma_min']} and {schedule['sigma_max']}"
    return None


def describe(schedule: dict) -> str:
    """A short text for tables: ``linear 1e-03..0.8``, ``cosine``, ``geometric 0.01..100``."""
    shape = schedule.get("shape", "linear")
    values = [schedule[key] for key in SHAPE_KEYS[shape]]
    return " ".join([shape] + ([f"{values[0]:g}..{values[1]:g}"] if values else []))
