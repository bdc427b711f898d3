"""Step and Result: the records a stepper hands out, and their PROTOCOL JSON form."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Step", "Result", "jsonable"]


def _num(v):
    # JSON has no nan/inf: PROTOCOL sends them as null.
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _array(a: np.ndarray):
    lst = a.tolist()
    if a.ndim == 1:
        # A finite sum proves every term finite (inf/nan propagate): a cheap fast path.
        if math.isfinite(sum(lst)):
            return lst
        return [v if math.isfinite(v) else None for v in lst]
    if np.isfinite(a).all():
        return lst
    return _clean_nested(lst)


def _clean_nested(v):
    if isinstance(v, list):
        return [_clean_nested(i) for i in v]
    return v if math.isfinite(v) else None


def jsonable(v: Any) -> Any:
    """Turn a value held in Step.extra (numbers, arrays, lists, dicts) into JSON-ready data."""
    if v is None or isinstance(v, (bool, str, int)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, np.ndarray):
        return _array(np.asarray(v, dtype=float)) if v.dtype.kind == "f" else v.tolist()
    if isinstance(v, np.generic):
        return jsonable(v.item())
    if isinstance(v, dict):
        return {k: jsonable(i) for k, i in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(i) for i in v]
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

    def to_dict(self) -> dict:
        return {
            "seq": self.seq,
            "nit": self.nit,
            "x": _array(self.x),
            "fun": _num(self.fun),
            "nfev": self.nfev,
            "njev": self.njev,
            "jac": None if self.jac is None else _array(self.jac),
            "elapsed": self.elapsed,
            "phase": self.phase,
            "extra": jsonable(self.extra),
        }


@dataclass(slots=True)
class Result:
    """scipy's OptimizeResult vocabulary plus `reason` (words) and `stopped` (a user asked)."""

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

    def to_dict(self) -> dict:
        return {
            "x": _array(np.asarray(self.x, dtype=float)),
            "fun": _num(self.fun),
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
            reason=d["reason"], stopped=d["stopped"],
        )
