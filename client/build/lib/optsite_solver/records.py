"""Step and Result: the records a stepper hands out, and their PROTOCOL JSON form.

A Step keeps its bulky per-step arrays (DE population, L-BFGS-B line search) in `bulky`, apart
from the small `extra`: `to_dict()` is the light step that is stored as JSON and sent to
watchers, `bulky_dict()` the bulky part JSON-ready, `to_full_dict()` both (what PROTOCOL v1's
steps held: the bulky fields inside `extra`, under the same names).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Step", "Result", "jsonable", "finite_number"]


def finite_number(v) -> float | None:
    """A number fit for JSON: nan and inf become None (PROTOCOL sends them as null)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _array(a: np.ndarray):
    lst = a.tolist()
    if a.ndim == 1:
        return _floats(lst)
    if np.isfinite(a).all():
        return lst
    return _clean_nested(lst)


def _floats(lst: list) -> list:
    # A finite sum proves every term finite (inf/nan propagate): a cheap fast path; a sum that
    # overflows from finite terms merely takes the slow path.
    if math.isfinite(sum(lst)):
        return lst
    return [v if math.isfinite(v) else None for v in lst]


def _clean_nested(v):
    if isinstance(v, list):
        return [_clean_nested(i) for i in v]
    return v if math.isfinite(v) else None


def _list(v) -> list:
    if v:
        t0 = type(v[0])
        if t0 is float:
            try:
                if math.isfinite(sum(v)):
                    return list(v)
            except TypeError:  # mixed content: go item by item
                pass
        elif t0 is list:
            return [_list(i) if type(i) is list else jsonable(i) for i in v]
    return [jsonable(i) for i in v]


def jsonable(v: Any) -> Any:
    """Turn a value held in Step.extra (numbers, arrays, lists, dicts) into JSON-ready data.

    This runs for every step the app stores, so the common types are tested first by exact
    type, and flat float lists are checked with one sum.
    """
    t = type(v)
    if t is float:
        return v if v - v == 0.0 else None  # inf - inf and nan - nan are nan
    if t is dict:
        out = {}
        for k, i in v.items():  # scalars inline: saves a call per entry
            ti = type(i)
            if ti is float:
                out[k] = i if i - i == 0.0 else None
            elif ti is int or ti is bool or ti is str or i is None:
                out[k] = i
            else:
                out[k] = jsonable(i)
        return out
    if t is list or t is tuple:
        return _list(v)
    if v is None or t is int or t is bool or t is str:
        return v
    if t is np.ndarray:
        return _array(v) if v.dtype.kind == "f" else v.tolist()
    if isinstance(v, np.generic):
        return jsonable(v.item())
    if isinstance(v, float):
        return jsonable(float(v))
    if isinstance(v, (int, str)):
        return v
    raise TypeError(f"cannot make {type(v).__name__} JSON-ready")


@dataclass(slots=True)
class Step:
    """One iteration (L-BFGS-B), generation (DE), the start (seq 0) or the DE polish."""

    seq: int
    nit: int
    x: np.ndarray
    fun: float
    nfev: int
    njev: int
    jac: np.ndarray | None
    phase: str  # "init" | "iterate" | "polish"
    extra: dict = field(default_factory=dict)
    elapsed: float = 0.0
    # name -> float64 array, or -> {name: array} (line_search); stored apart (runs.optim.bulk)
    bulky: dict = field(default_factory=dict)

    def bulky_dict(self) -> dict:
        """The bulky arrays as JSON-ready lists (nan/inf as None), keyed as they go into `extra`."""
        return jsonable(self.bulky) if self.bulky else {}

    def to_full_dict(self) -> dict:
        """The light step with the bulky fields in `extra`: every field of the step."""
        d = self.to_dict()
        if self.bulky:
            d["extra"].update(self.bulky_dict())
        return d

    def to_dict(self) -> dict:
        """The light PROTOCOL step: scalar fields and small extras, without the bulky arrays."""
        # called for every step the app stores: x and jac are 1-D, checked with one sum
        x = self.x.tolist()
        if not math.isfinite(sum(x)):
            x = _floats(x)
        jac = self.jac
        if jac is not None:
            jac = jac.tolist()
            if not math.isfinite(sum(jac)):
                jac = _floats(jac)
        fun = float(self.fun)
        return {
            "seq": self.seq,
            "nit": self.nit,
            "x": x,
            "fun": fun if fun - fun == 0.0 else None,
            "nfev": self.nfev,
            "njev": self.njev,
            "jac": jac,
            "elapsed": self.elapsed,
            "phase": self.phase,
            "extra": jsonable(self.extra),
        }


@dataclass(slots=True)
class Result:
    """scipy's OptimizeResult vocabulary plus `reason` (words), `stopped` (a user or a stopping
    rule asked) and `rule` (which rule of the spec's "stop", runs.optim.stopping; None otherwise)."""

    x: np.ndarray
    fun: float
    nit: int
    nfev: int
    njev: int
    success: bool
    status: int
    message: str
    jac: np.ndarray | None
    reason: str
    stopped: bool
    nhev: int | None = None  # Hessian evaluations, for the minimize methods that count them
    rule: str | None = None  # "f" | "gap" | "nfev" | "seconds" | "stall": the rule that stopped it

    def to_dict(self) -> dict:
        d = {
            "x": _array(np.asarray(self.x, dtype=float)),
            "fun": finite_number(self.fun),
            "nit": self.nit,
            "nfev": self.nfev,
            "njev": self.njev,
            "success": self.success,
            "status": self.status,
            "message": self.message,
            "jac": None if self.jac is None else _array(np.asarray(self.jac, dtype=float)),
            "reason": self.reason,
            "stopped": self.stopped,
        }
        if self.nhev is not None:  # only then: results without it keep their old shape
            d["nhev"] = self.nhev
        if self.rule is not None:  # likewise
            d["rule"] = self.rule
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Result":
        """Inverse of to_dict (None in x/jac/fun comes back as nan)."""
        nan = float("nan")
        jac = d.get("jac")
        return cls(
            x=np.array([nan if v is None else v for v in d["x"]], dtype=float),
            fun=nan if d["fun"] is None else d["fun"],
            nit=d["nit"], nfev=d["nfev"], njev=d["njev"], success=d["success"],
            status=d["status"], message=d["message"],
            jac=None if jac is None else np.array([nan if v is None else v for v in jac], dtype=float),
            reason=d["reason"], stopped=d["stopped"], nhev=d.get("nhev"), rule=d.get("rule"),
        )
