"""Formatting for the history, compare and run pages: numbers, durations, status badges and notes."""

import math
from functools import lru_cache

from django import template

from runs import outcomes

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


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def queue_text(position) -> str:
    if not position:
        return "waiting for a worker"
    return "next in line" if position == 1 else f"{ordinal(position)} in line"


# An external run is computed by its owner's Python process (runtext.js's externalNote says the same).
EXTERNAL_NOTES = {"running": "in its owner's Python process", "paused": "its Python process waits",
                  "interrupted": "its Python process is not connected; the steps come when it is"}


@register.filter
def status_note(run: dict, where: str = "history") -> str:
    """Where a run is, as words after its status badge: '2nd in line', 'on pool@host:1234'.

    `run` has a Run object's status, queue_position, worker, stopping. The history says where
    queued and running runs are; the run page (where="page") also explains paused and interrupted.
    runview.js's statusNote says the same on the page as things change.
    """
    status = run.get("status")
    if run.get("stopping") and status in ("queued", "running", "paused"):
        return "stopping…"
    if run.get("problem") == "external":
        return EXTERNAL_NOTES.get(status, "")
    if status == "queued":
        return queue_text(run.get("queue_position"))
    if status == "running":
        return f"on {run['worker']}" if run.get("worker") else ""
    if where != "page":
        return ""
    if status == "paused":
        return "holds no worker"
    if status == "interrupted":
        return "the worker went away"
    return ""


@register.filter
def num(value, digits: int = 6) -> str:
    """A float to `digits` significant digits (scientific when tiny or huge); — when missing.

    The same rules as fmtSig in runs/static/runs/format.js: one format per quantity, site-wide."""
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
    return _exponent(f"{v:.{int(digits)}g}").replace("-", "−")


def _exponent(text: str) -> str:
    # "1.5e-07" -> "1.5e-7", "2e+10" -> "2e10": the exponent as runs/static/runs/format.js writes it
    mantissa, e, exp = text.partition("e")
    return f"{mantissa}e{int(exp)}" if e else text


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


# -- names and outcomes -----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _method_titles() -> dict[str, str]:
    from runs.optim import method_catalogue

    return {m["name"]: m.get("short") or m.get("title") or m["name"] for m in method_catalogue()}


@lru_cache(maxsize=1)
def _problem_titles() -> dict[str, str]:
    from runs.optim import problem_catalogue

    return {p["name"]: p.get("title") or p["name"] for p in problem_catalogue()}


@register.filter
def method_title(name: str) -> str:
    """'de' -> 'DE': the method catalogue's short name (the name itself if it has none)."""
    return _method_titles().get(name, name)


@register.filter
def problem_title(name: str) -> str:
    return _problem_titles().get(name, name)


@register.filter
def run_problem_title(run) -> str:
    """The title of the problem a run ran: an external run's is the one its owner gave the function."""
    external = (run.spec or {}).get("external") if run.problem == "external" else None
    if isinstance(external, dict) and isinstance(external.get("title"), str):
        return external["title"]
    return problem_title(run.problem)


@register.filter
def problem_label(run) -> str:
    """'Rosenbrock (a=1, b=100), 2-D': the problem's title with its coefficients and dimension."""
    spec = run.spec or {}
    coeffs = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in (spec.get("params") or {}).items())
    text = run_problem_title(run) + (f" ({coeffs})" if coeffs else "")
    return f"{text}, {spec['dim']}-D" if spec.get("dim") else text


@register.filter
def outcome_label(key) -> str:
    o = outcomes.OUTCOMES.get(key)
    return o.label if o else ""


@register.filter
def outcome_help(key) -> str:
    o = outcomes.OUTCOMES.get(key)
    return o.help if o else ""


@register.filter
def outcome_class(key) -> str:
    o = outcomes.OUTCOMES.get(key)
    return o.badge if o else ""
