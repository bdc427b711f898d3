"""External runs: a user's own Python function, stepped in the user's own process.

The Python client (client/optsite_client) steps such a run with the very steppers of this package
and streams the steps to the server, which stores and publishes them; the server never has the
function. The spec names the problem "external" and describes it in "external":

    {"method": "lbfgsb", "problem": "external", "dim": 2, "x0": [...], "options": {...},
     "external": {"title": "fit of my model", "gradient": true, "hessian": false}}

`gradient`/`hessian` say whether the user handed a gradient / a Hessian (then jac/hess "analytic"
mean those). `bind(spec, fun, jac, hess)` attaches the callables in the client; a spec that was not
bound (the server's) has functions that refuse to be called.

The wire form of a step is `wire_step(step)`: its light dict, plus its bulky arrays under "bulky",
each packed as {"shape": [...], "f8": base64 of its little-endian float64 bytes} (exact, and a
DE population packs in microseconds where its JSON numbers took a millisecond of the optimization's
process); nested lists of numbers (null: nan) are taken too.
`step_from_wire` / `result_from_wire` check what a client sent (it is untrusted input) and make
the records again, so that the server stores exactly what the stepper made.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .echo import shown
from .problems import Param
from .records import Result, Step

__all__ = ["EXTERNAL", "ExternalDef", "ExternalProblem", "WireError", "is_external", "external_of",
           "bind", "wire_step", "pack_arrays", "step_from_wire", "result_from_wire", "PHASES", "TITLE_LENGTH"]

EXTERNAL = "external"
TITLE_LENGTH = 100
PHASES = ("init", "iterate", "polish")
# What one step's `extra` may hold (it is shown and stored as sent): depth, entries, text.
EXTRA_DEPTH = 4
EXTRA_ITEMS = 2_000
TEXT_LENGTH = 1_000
# Bulky arrays of one step (a DE population of 100 × 15 members in 200 dimensions is 300,000).
BULKY_NUMBERS = 1_000_000
NAME_LENGTH = 64


class NotHere(RuntimeError):
    """An external run's function was called where it is not (the server)."""


def _absent(kind: str, title: str) -> Callable:
    def absent(x, *args):
        raise NotHere(f"the {kind} of {title!r} is computed in its owner's Python process, not here")
    return absent


@dataclass(frozen=True)
class ExternalDef:
    """What a spec says of an external problem; `functions` (f, g, h) only where it was bound."""

    title: str
    gradient: bool = False
    hessian: bool = False
    functions: tuple | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {"title": self.title, "gradient": self.gradient, "hessian": self.hessian}


class ExternalProblem:
    """An ExternalDef with the interface of problems.Problem (for the spec checks and steppers)."""

    name = EXTERNAL
    formula = ""
    latex = ""
    params: tuple[Param, ...] = ()
    min_dim, max_dim = 1, None
    has_constraints = False
    # The user's function may take complex numbers or not: that is the user's call, as in scipy.
    complex_step = True

    def __init__(self, definition: ExternalDef, dim: int):
        self.definition = definition
        self.title = definition.title
        self.default_dim = dim
        self.has_gradient = definition.gradient
        self.has_hessian = definition.hessian

    def _function(self, index: int, kind: str):
        bound = self.definition.functions
        return bound[index] if bound is not None else _absent(kind, self.title)

    def defaults(self) -> dict:
        return {}

    def objective(self, params: dict | None = None):
        return self._function(0, "function")

    def gradient(self, params: dict | None = None):
        return self._function(1, "gradient") if self.has_gradient else None

    def hessian(self, params: dict | None = None):
        return self._function(2, "Hessian") if self.has_hessian else None

    def constraints(self, params=None, dim=None) -> tuple:
        return ()

    def violation(self, params=None, dim=None):
        return None

    def default_bounds(self, dim: int | None = None) -> list:
        return [[None, None] for _ in range(self.default_dim if dim is None else dim)]

    def known_minimum(self, params=None, dim=None) -> dict | None:
        return None

    def to_dict(self) -> dict:
        return {"name": EXTERNAL, "title": self.title, "formula": "", "latex": "", "params": [],
                "default_dim": self.default_dim, "min_dim": 1, "max_dim": None,
                "default_bounds": None, "known_minimum": None, "has_gradient": self.has_gradient,
                "complex_step": True, "has_hessian": self.has_hessian, "constraints": [],
                "external": self.definition.to_dict()}


def is_external(spec) -> bool:
    """Whether a Spec (or a spec's dict) is an external run's."""
    problem = spec.get("problem") if isinstance(spec, dict) else getattr(spec, "problem", None)
    return problem == EXTERNAL


def external_of(raw, errors: dict[str, list[str]]) -> ExternalDef | None:
    """The spec's "external" object checked; None after recording errors (keyed "external.x")."""
    if not isinstance(raw, dict):
        errors.setdefault("external", []).append(
            'must be an object: {"title": ..., "gradient": true | false, "hessian": true | false}')
        return None
    ok = True
    for k in raw:
        if k not in ("title", "gradient", "hessian"):
            errors.setdefault(f"external.{str(k)[:NAME_LENGTH]}", []).append("unknown field; it has title, gradient, hessian")
            ok = False
    title = raw.get("title", "")
    if not isinstance(title, str) or not title.strip():
        errors.setdefault("external.title", []).append("must be a name for the function, in words")
        ok = False
    elif len(title) > TITLE_LENGTH or not title.isprintable():
        errors.setdefault("external.title", []).append(
            f"must be at most {TITLE_LENGTH} printable characters")
        ok = False
    flags = {}
    for k in ("gradient", "hessian"):
        v = raw.get(k, False)
        if not isinstance(v, bool):
            errors.setdefault(f"external.{k}", []).append(f"must be true or false, not {shown(v)}")
            ok = False
        flags[k] = v is True
    return ExternalDef(title.strip(), **flags) if ok else None


class _Recent:
    """The user's function, its values at the last few points kept: a stepper shows each step's f
    and gradient at a point scipy has just evaluated (the start, each iterate), and asking the
    user's function again would cost an evaluation scipy does not make (an evaluation may be
    expensive, or counted). Only a float64 point equal to a kept one, bit for bit, is answered
    from here; complex steps and extra arguments always reach the function."""

    KEEP = 4

    def __init__(self, fun: Callable):
        self.fun = fun
        self.kept: list = []  # [(x's bytes, value)], newest last

    def __call__(self, x, *args):
        plain = not args and isinstance(x, np.ndarray) and x.dtype == float
        if plain:
            key = x.tobytes()
            for k, value in self.kept:
                if k == key:
                    return value.copy() if isinstance(value, np.ndarray) else value
        value = self.fun(x, *args)
        if plain:
            self.kept.append((key, value.copy() if isinstance(value, np.ndarray) else value))
            del self.kept[:-self.KEEP]
        return value


def bind(spec, fun: Callable, jac: Callable | None = None, hess: Callable | None = None):
    """The validated external spec with the user's callables attached (where it is stepped)."""
    d = spec.external
    if d.gradient and jac is None:
        raise ValueError("the spec says the user gives a gradient: pass jac")
    if d.hessian and hess is None:
        raise ValueError("the spec says the user gives a Hessian: pass hess")
    functions = (_Recent(fun), None if jac is None else _Recent(jac), hess)
    return dataclasses.replace(spec, external=dataclasses.replace(d, functions=functions))


# ---- the wire -----------------------------------------------------------------------------------
def _pack(a) -> dict:
    a = np.ascontiguousarray(a, dtype="<f8")
    return {"shape": list(a.shape), "f8": base64.b64encode(a.tobytes()).decode("ascii")}


def pack_arrays(bulky: dict) -> dict:
    """A step's bulky arrays (name -> array, or -> {name: array}) in their packed wire form."""
    return {name: ({k: _pack(a) for k, a in v.items()} if isinstance(v, dict) else _pack(v))
            for name, v in bulky.items()}


def wire_step(step: Step) -> dict:
    """What a client sends for a step: the light dict, with the bulky arrays apart (packed)."""
    d = step.to_dict()
    if step.bulky:
        d["bulky"] = pack_arrays(step.bulky)
    return d


class WireError(ValueError):
    """A step or result a client sent that is not one: `.message` (words), `.errors` by field."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        where, words = next(iter(errors.items()))
        more = sum(len(v) for v in errors.values()) - 1
        self.message = f"{where}: {words[0]}" + (f" (and {more} more)" if more else "") + "."
        super().__init__(self.message)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


class _Checks:
    def __init__(self, where: str):
        self.where = where
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, words: str) -> None:
        self.errors.setdefault(f"{self.where}.{name}" if name else self.where, []).append(words)

    def count(self, name, v, lo=0):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or v > 2 ** 63 - 1:
            self.add(name, f"must be a whole number of at least {lo}, not {shown(v)}")
            return None
        return v

    def real(self, name, v, *, null=True):
        """A finite float, or nan for null (JSON's nan/inf) where null is allowed."""
        if v is None and null:
            return math.nan
        if not _is_number(v):
            self.add(name, f"must be a number{' or null' if null else ''}, not {shown(v)}")
            return None
        try:
            f = float(v)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f):
            self.add(name, f"must be a finite number{' or null' if null else ''}, not {shown(v)}")
            return None
        return f

    def vector(self, name, v, dim: int, *, null_ok=False):
        if v is None and null_ok:
            return None
        if not isinstance(v, list) or len(v) != dim:
            self.add(name, f"must be a list of {dim} numbers (the dimension), not {shown(v)}")
            return None
        out = [self.real(f"{name}[{i}]", x) for i, x in enumerate(v)]
        return None if any(x is None for x in out) else np.array(out, dtype=float)


def _json_value(c: _Checks, name: str, v, depth: int, budget: list[int]):
    """A JSON-ready copy of `v` (a step's extra), refused past the depth, size and text limits."""
    budget[0] -= 1
    if budget[0] < 0:
        c.add(name, f"holds more than {EXTRA_ITEMS:,} values")
        return None
    if v is None or isinstance(v, (bool, str)):
        if isinstance(v, str) and len(v) > TEXT_LENGTH:
            c.add(name, f"is text longer than {TEXT_LENGTH:,} characters")
            return None
        return v
    if _is_number(v):
        if isinstance(v, int):
            return v if abs(v) <= 2 ** 63 else float(v)
        return v if math.isfinite(v) else None
    if depth >= EXTRA_DEPTH:
        c.add(name, f"is nested deeper than {EXTRA_DEPTH} levels")
        return None
    if isinstance(v, list):
        return [_json_value(c, f"{name}[{i}]", x, depth + 1, budget) for i, x in enumerate(v)]
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str) or len(k) > NAME_LENGTH:
                c.add(name, f"has a key that is not a name of at most {NAME_LENGTH} characters")
                return None
            out[k] = _json_value(c, f"{name}.{k}", x, depth + 1, budget)
        return out
    c.add(name, f"holds {type(v).__name__}, not JSON")
    return None


def _unpack(c: _Checks, name: str, v: dict, budget: list[int]):
    """A packed array ({"shape", "f8"}) of up to 2 dimensions; None after an error."""
    shape, text = v.get("shape"), v.get("f8")
    if set(v) != {"shape", "f8"} or not isinstance(shape, list) or not isinstance(text, str):
        c.add(name, 'a packed array is {"shape": [rows, columns] or [length], "f8": base64 of float64 bytes}')
        return None
    if not 1 <= len(shape) <= 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in shape):
        c.add(name, f"shape must be one or two whole numbers, not {shown(shape)}")
        return None
    count = math.prod(shape)
    budget[0] -= count
    if budget[0] < 0:
        c.add(name, f"the step's bulky arrays hold more than {BULKY_NUMBERS:,} numbers")
        return None
    if len(text) != 4 * math.ceil(8 * count / 3):
        c.add(name, f"f8 must hold {count:,} float64 numbers, base64-encoded, for shape {shape}")
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        c.add(name, "f8 is not base64")
        return None
    return np.frombuffer(raw, dtype="<f8").astype(float).reshape(shape)


def _array(c: _Checks, name: str, v, budget: list[int]):
    """A float64 array of up to 2 dimensions, packed or from nested lists (null: nan); None after an error."""
    if isinstance(v, dict) and "f8" in v:
        return _unpack(c, name, v, budget)
    if not isinstance(v, list):
        c.add(name, f"must be a list of numbers (or of rows of numbers), not {shown(v)}")
        return None
    rows = v if v and isinstance(v[0], list) else None
    if rows is not None:
        width = len(rows[0])
        if any(not isinstance(r, list) or len(r) != width for r in rows):
            c.add(name, "must have rows of one length")
            return None
        flat = [x for r in rows for x in r]
    else:
        flat = v
    budget[0] -= len(flat)
    if budget[0] < 0:
        c.add(name, f"the step's bulky arrays hold more than {BULKY_NUMBERS:,} numbers")
        return None
    out = np.empty(len(flat), dtype=float)
    for i, x in enumerate(flat):
        if x is None:
            out[i] = math.nan
        elif _is_number(x):
            try:
                out[i] = float(x)
            except OverflowError:
                c.add(name, f"holds a number too large for a float: {shown(x)}")
                return None
        else:
            c.add(name, f"must hold numbers or null, not {shown(x)}")
            return None
    return out.reshape(len(rows), width) if rows is not None else out


def _bulky(c: _Checks, raw) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        c.add("bulky", f"must be an object of arrays, not {shown(raw)}")
        return {}
    budget = [BULKY_NUMBERS]
    out: dict[str, Any] = {}
    for name, v in raw.items():
        if not isinstance(name, str) or not name or len(name) > NAME_LENGTH or "/" in name:
            c.add("bulky", f"names must be words of at most {NAME_LENGTH} characters without '/', not {shown(name)}")
            continue
        if isinstance(v, dict) and "f8" not in v:  # one level of nesting, as the line search's {x, f, ...}
            inner = {}
            for k, a in v.items():
                if not isinstance(k, str) or not k or len(k) > NAME_LENGTH or "/" in k:
                    c.add(f"bulky.{name}", f"names must be words without '/', not {shown(k)}")
                    continue
                arr = _array(c, f"bulky.{name}.{k}", a, budget)
                if arr is not None:
                    inner[k] = arr
            out[name] = inner
        else:
            arr = _array(c, f"bulky.{name}", v, budget)
            if arr is not None:
                out[name] = arr
    return out


STEP_FIELDS = ("seq", "nit", "x", "fun", "nfev", "njev", "jac", "elapsed", "phase", "extra", "bulky")


def step_from_wire(data, spec, seq: int) -> Step:
    """The Step a client sent as step `seq` of an external run of `spec`; WireError otherwise."""
    c = _Checks(f"steps[{seq}]" if isinstance(seq, int) else "step")
    if not isinstance(data, dict):
        raise WireError({c.where: [f"must be a step object ({', '.join(STEP_FIELDS[:-1])}), not {shown(data)}"]})
    for k in data:
        if k not in STEP_FIELDS:
            c.add(str(k)[:NAME_LENGTH], f"unknown field; a step has {', '.join(STEP_FIELDS)}")
    got = c.count("seq", data.get("seq"))
    if got is not None and got != seq:
        c.add("seq", f"is {got} where {seq} was due")
    nit = c.count("nit", data.get("nit"))
    x = c.vector("x", data.get("x"), spec.dim)
    fun = c.real("fun", data.get("fun"))
    nfev = c.count("nfev", data.get("nfev"))
    njev = c.count("njev", data.get("njev"))
    jac = c.vector("jac", data.get("jac"), spec.dim, null_ok=True)
    elapsed = c.real("elapsed", data.get("elapsed"), null=False)
    if elapsed is not None and elapsed < 0:
        c.add("elapsed", f"must not be negative (got {shown(elapsed)})")
    phase = data.get("phase")
    if phase not in PHASES:
        c.add("phase", f"must be one of {', '.join(PHASES)}, not {shown(phase)}")
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        c.add("extra", f"must be an object, not {shown(extra)}")
        extra = {}
    extra = _json_value(c, "extra", extra, 0, [EXTRA_ITEMS])
    bulky = _bulky(c, data.get("bulky"))
    if c.errors:
        raise WireError(c.errors)
    return Step(seq, nit, x, fun, nfev, njev, jac, phase, extra, elapsed, bulky)


RESULT_FIELDS = ("x", "fun", "nit", "nfev", "njev", "success", "status", "message", "jac", "reason",
                 "stopped", "nhev", "rule")


def result_from_wire(data, spec) -> Result:
    """The Result a client sent for an external run of `spec`; WireError otherwise."""
    c = _Checks("result")
    if not isinstance(data, dict):
        raise WireError({"result": [f"must be a result object (x, fun, nit, ...), not {shown(data)}"]})
    for k in data:
        if k not in RESULT_FIELDS:
            c.add(str(k)[:NAME_LENGTH], f"unknown field; a result has {', '.join(RESULT_FIELDS)}")
    x = c.vector("x", data.get("x"), spec.dim)
    fun = c.real("fun", data.get("fun"))
    counts = {k: c.count(k, data.get(k)) for k in ("nit", "nfev", "njev")}
    nhev = None if data.get("nhev") is None else c.count("nhev", data.get("nhev"))
    jac = c.vector("jac", data.get("jac"), spec.dim, null_ok=True)
    flags = {}
    for k in ("success", "stopped"):
        if not isinstance(data.get(k), bool):
            c.add(k, f"must be true or false, not {shown(data.get(k))}")
        flags[k] = data.get(k) is True
    status = data.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or abs(status) > 1000:
        c.add("status", f"must be scipy's status code, a small whole number, not {shown(status)}")
    texts = {}
    for k in ("message", "reason"):
        v = data.get(k, "")
        if not isinstance(v, str) or len(v) > TEXT_LENGTH:
            c.add(k, f"must be text of at most {TEXT_LENGTH:,} characters")
        texts[k] = v if isinstance(v, str) else ""
    rule = data.get("rule")
    from .stopping import RULES
    if rule is not None and rule not in RULES:
        c.add("rule", f"must be one of {', '.join(RULES)} or null, not {shown(rule)}")
    if c.errors:
        raise WireError(c.errors)
    return Result(x=x, fun=fun, jac=jac, status=status, nhev=nhev, rule=rule, **counts, **flags, **texts)
