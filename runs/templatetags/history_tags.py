"""Formatting for the history and compare pages: numbers, durations, status badges."""

import math

from django import template

register = template.Library()

STATUS_CLASSES = {
    "queued": "text-bg-secondary",
    "running": "text-bg-primary",
    "paused": "text-bg-warning",
    "finished": "text-bg-success",
    "stopped": "text-bg-dark",
    "failed": "text-bg-danger",
    "interrupted": "text-bg-warning",
}
DASH = "—"


@register.filter
def status_class(status: str) -> str:
    return STATUS_CLASSES.get(status, "text-bg-light")


@register.filter
def num(value, digits: int = 6) -> str:
    """A float to `digits` significant digits (scientific when tiny or huge); — when missing."""
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.{int(digits)}g}".replace("-", "−")


@register.filter
def count(value) -> str:
    if value is None or value == "":
        return DASH
    return f"{int(value):,}"


@register.filter
def duration(seconds) -> str:
    """0.0042 -> '4.2 ms', 3.5 -> '3.50 s', 75 -> '1 min 15 s', 3700 -> '1 h 1 min'."""
    if seconds is None or seconds == "":
        return DASH
    s = float(seconds)
    if not math.isfinite(s) or s < 0:
        return DASH
    if s < 1:
        return f"{s * 1000:.3g} ms"
    if s < 60:
        return f"{s:.3g} s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m} min {sec} s"
    h, m = divmod(m, 60)
    return f"{h} h {m} min"
