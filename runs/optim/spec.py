"""The one validation path for run specs (socket, HTTP form, CLI): errors keyed by field."""
from __future__ import annotations

import json
import math
import numbers
import sys
from dataclasses import dataclass

import numpy as np

from .echo import bounded_errors, shown
from .hessians import HESSIANS
from .methods import METHODS, Method, Option
from .minimize_methods import relation_errors  # (after .methods, which registers them)
from .external import EXTERNAL
from .problems import ALL_PROBLEMS
from .stopping import RULES, STALL_KEYS

__all__ = ["Limits", "Spec", "SpecError", "validate_spec", "validate_params",
           "estimate_evaluations", "estimate_checkpoint_bytes"]

SPEC_FIELDS = ("method", "problem", "params", "dim", "bounds", "x0", "options", "stop", "definition", "external")


@dataclass(frozen=True)
class Limits:
    """Caps on what one run may ask for; beyond them the answer is code "limit"."""

    max_dim: int = 200
    max_maxiter: int = 20_000
    max_popsize: int = 100
    max_evaluations: int = 10_000_000
    # L-BFGS-B keeps maxcor correction pairs and an 11 maxcor² work array: memory and checkpoint
    # bytes grow with its square
    max_maxcor: int = 500
    # what one checkpoint (rewritten with every batch of steps) may weigh
    max_checkpoint_bytes: int = 64 * 2 ** 20


# For a spec that was accepted once (a stored run's): the caps of its day are not re-applied.
UNLIMITED = Limits(max_dim=sys.maxsize, max_maxiter=sys.maxsize, max_popsize=sys.maxsize,
                   max_evaluations=sys.maxsize, max_maxcor=sys.maxsize,
                   max_checkpoint_bytes=sys.maxsize)

# What scipy itself refuses at start: RandomState seeds are 32-bit, setulb's maxls a C int.
MAX_SEED = 2 ** 32 - 1
MAX_C_INT = 2 ** 31 - 1


class SpecError(ValueError):
    """An invalid spec: `.code` ("invalid_spec" | "limit"), `.errors` {field: [words]}, `.message`."""

    def __init__(self, errors: dict[str, list[str]], code: str = "invalid_spec"):
        # a spec of 20,000 bad pairs has as many errors: count them all, list a bounded few
        more = sum(len(v) for v in errors.values()) - 1
        self.errors = bounded_errors(errors)
        self.code = code
        first_field, first = next(iter(self.errors.items()))
        lead = ("The run asks for more than this server allows" if code == "limit"
                else "The run spec is invalid")
        tail = f" (and {more:,} more problem{'s' if more > 1 else ''})" if more else ""
        self.message = f"{lead}: {first_field}: {first[0]}{tail}."
        super().__init__(self.message)


@dataclass(frozen=True)
class Spec:
    """A validated, normalised run spec (every param and option filled in)."""

    method: str
    problem: str
    params: dict
    dim: int
    bounds: tuple | None  # ((lo | None, hi | None), ...); None: unbounded (lbfgsb only)
    x0: tuple | None
    options: dict
    # the stopping rules (runs.optim.stopping) as ((rule, value), ...) in RULES order, "stall"'s
    # value itself ((key, value), ...): hashable; None: no rules
    stop: tuple | None = None
    # a user's own problem (runs.optim.expressions.Definition): the snapshot the run was made
    # with, so that the spec alone rebuilds it; None for a catalogue problem
    definition: object = None
    # an external run's problem (runs.optim.external.ExternalDef): the user's own function,
    # stepped in the user's process; None otherwise
    external: object = None

    def stop_dict(self) -> dict | None:
        """`stop` as the spec's JSON has it, or None."""
        if not self.stop:
            return None
        return {k: dict(v) if k == "stall" else v for k, v in self.stop}

    def to_dict(self) -> dict:
        d = {
            "method": self.method,
            "problem": self.problem,
            "params": dict(self.params),
            "dim": self.dim,
            "bounds": None if self.bounds is None else [list(b) for b in self.bounds],
            "x0": None if self.x0 is None else list(self.x0),
            "options": {k: (list(v) if isinstance(v, (list, tuple)) else v)
                        for k, v in self.options.items()},
        }
        if self.stop:  # only then: specs without rules (and checkpoints holding them) keep their bytes
            d["stop"] = self.stop_dict()
        if self.definition is not None:
            d["definition"] = self.definition.to_dict()
        if self.external is not None:
            d["external"] = self.external.to_dict()
        return d

    def __hash__(self):
        return hash(json.dumps(self.to_dict(), sort_keys=True))


def _fmt(v) -> str:
    """A value as a message quotes it: whole floats as integers, anything clipped (echo.shown)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
        return str(int(v))
    return shown(v)


def _float(v) -> float | None:
    """float(v) for a JSON number; None where it has no float (an integer of 400 digits)."""
    try:
        return float(v)
    except OverflowError:
        return None


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


class _Collector:
    def __init__(self):
        self.errors: dict[str, list[str]] = {}
        self.limit_fields: set[str] = set()

    def add(self, field: str, msg: str, limit: bool = False):
        self.errors.setdefault(field, []).append(msg)
        if limit:
            self.limit_fields.add(field)

    def number(self, field, v, *, lo=None, hi=None, lo_open=False, hi_open=False):
        """A finite real number within [lo, hi] (bounds may be open), or None after an error."""
        if not _is_number(v):
            self.add(field, f"must be a number, not {_fmt(v)}")
            return None
        as_float = _float(v)
        if as_float is None or not math.isfinite(as_float):
            self.add(field, f"must be a finite number, not {_fmt(v)}")
            return None
        v = as_float
        if lo is not None and (v < lo or (lo_open and v == lo)):
            self.add(field, f"must be {'greater than' if lo_open else 'at least'} {_fmt(lo)}"
                            f" (got {_fmt(v)})")
            return None
        if hi is not None and (v > hi or (hi_open and v == hi)):
            self.add(field, f"must be {'less than' if hi_open else 'at most'} {_fmt(hi)}"
                            f" (got {_fmt(v)})")
            return None
        return v

    def integer(self, field, v, *, lo=None, hi=None, why=""):
        """A whole number within [lo, hi] (a JSON 1.0 counts), or None after an error; `why` says
        where hi comes from."""
        if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            v = int(v)  # exact, however many digits: no detour through float
        elif _is_number(v) and math.isfinite(float(v)) and float(v).is_integer():
            v = int(v)
        else:
            self.add(field, f"must be a whole number, not {_fmt(v)}")
            return None
        if lo is not None and v < lo:
            self.add(field, f"must be at least {lo} (got {_fmt(v)})")
            return None
        if hi is not None and v > hi:
            self.add(field, f"must be at most {hi:,}{why} (got {_fmt(v)})")
            return None
        return v


def _option(c: _Collector, m: Method, o: Option, v, problem, field: str | None = None, ctx=None):
    """One option's value checked (None when it is wrong: c has the error); `problem` may be None
    (an unknown name, reported apart); `field`: where it is reported (a nested option's key);
    `ctx`: (dim, limits) for the options that are objects of their own."""
    f = field or f"options.{o.name}"
    if o.kind == "minimizer_kwargs":
        return _minimizer_kwargs(c, m, o, v, problem, f, *(ctx or (None, Limits())))
    if o.kind == "dict":
        return _object(c, m, o, v, problem, f, *(ctx or (None, Limits())))
    if o.kind == "int":
        hi = o.max if o.max is not None else None
        return c.integer(f, v, lo=o.min, hi=None if hi is None else int(hi),
                         why=f" ({o.max_reason})" if o.max_reason else "")
    if o.kind == "float":
        return c.number(f, v, lo=o.min, hi=o.max, lo_open=o.min_exclusive,
                        hi_open=o.max_exclusive)
    if o.kind == "bool":
        if not isinstance(v, bool):
            c.add(f, f"must be true or false, not {_fmt(v)}")
            return None
        return v
    if o.kind in ("choice", "jac"):
        if not isinstance(v, str) or v not in o.choices:
            named = ", ".join("null" if x is None else repr(x) for x in o.choices)
            c.add(f, f"must be one of {named}, not {_fmt(v)}")
            return None
        if o.kind == "jac" and v == "analytic" and problem is not None and not problem.has_gradient:
            c.add(f, 'this problem has no analytic gradient: use "2-point", "3-point", "cs" or null')
            return None
        if o.kind == "jac" and v == "cs" and problem is not None and not problem.complex_step:
            c.add(f, f"{problem.title}'s f does not take complex numbers (it uses abs or a cast to "
                     'float): a complex step would be wrong; use "2-point" or "3-point"')
            return None
        return v
    if o.kind == "hess":
        if not isinstance(v, str) or v not in o.choices:
            named = ", ".join("null" if x is None else repr(x) for x in o.choices)
            c.add(f, f"must be one of {named}, not {_fmt(v)}")
            return None
        if v == "analytic" and problem is not None and not _has_hessian(problem):
            c.add(f, f"{problem.title} has no analytic Hessian here: "
                     + ("use one of " + ", ".join(repr(x) for x in o.choices if x not in ("analytic", None))
                        if len(o.choices) > 1 else f"{m.title} needs one"))
            return None
        if v == "cs" and problem is not None and not problem.complex_step:
            c.add(f, f"{problem.title}'s f does not take complex numbers: a complex step would be wrong")
            return None
        return v
    if o.kind == "seed":
        if v is None:
            return None
        if o.name == "seed":  # scipy's seed= is a legacy RandomState: 32 bits; rng= takes any size
            return c.integer(f, v, lo=0, hi=MAX_SEED,
                             why=" (a legacy RandomState seed is 32-bit; rng takes larger seeds)")
        return c.integer(f, v, lo=0)
    if o.kind == "mutation":
        if isinstance(v, (list, tuple)):
            if len(v) != 2:
                c.add(f, "must be a number or a [lo, hi] pair")
                return None
            pair = [c.number(f"{f}[{i}]", x, lo=o.min, hi=o.max, hi_open=True)
                    for i, x in enumerate(v)]
            return None if None in pair else pair
        return c.number(f, v, lo=o.min, hi=o.max, hi_open=True)
    raise AssertionError(o.kind)


def _limit_nested(c: _Collector, field: str, options: dict, limits: Limits) -> None:
    """The caps of the top-level options, for the same names one level down."""
    for name, cap, tail in (("maxiter", limits.max_maxiter, ""),
                            ("maxcor", limits.max_maxcor, " (memory grows with its square)"),
                            ("maxfev", limits.max_evaluations, ""), ("maxev", limits.max_evaluations, ""),
                            ("maxfun", limits.max_evaluations, "")):
        v = options.get(name)
        if isinstance(v, int) and v > cap:
            c.add(f"{field}.{name}", f"{_fmt(v)} is more than the limit of {cap:,}{tail}", limit=True)


def _object(c: _Collector, m: Method, o: Option, raw, p, field: str, dim, limits: Limits) -> dict | None:
    """An option that is an object of scalar options (shgo's options): each key checked as a
    top-level option is; the keys given, nulls left out (scipy's defaults). None for {}."""
    if not isinstance(raw, dict):
        c.add(field, f"must be an object of {m.name}'s {o.name} ({', '.join(k.name for k in o.keys)}) or null")
        return None
    out = {}
    for k, v in raw.items():
        key = next((x for x in o.keys if x.name == k), None)
        f = f"{field}.{k}"
        if key is None:
            c.add(f, f"unknown key; {o.name} takes {', '.join(x.name for x in o.keys)}"
                  + (" (maxtime is left out: a wall-clock stop cannot be retraced on resume; use the stopping "
                     "rule seconds)" if k == "maxtime" else ""))
        elif v is None:
            if not key.nullable:
                c.add(f, "must not be null")
        elif (val := _option(c, m, key, v, p, f)) is not None:
            out[k] = val
    if m.name == "shgo":
        if "f_tol" in out and "f_min" not in out and f"{field}.f_min" not in c.errors:
            c.add(f"{field}.f_tol", "applies only with f_min (scipy ignores it otherwise): give f_min, or leave f_tol out")
        if "f_min" in out and not any(k in out for k in ("maxiter", "maxfev", "maxev")):
            c.add(f"{field}.f_min", "needs maxiter, maxfev or maxev beside it: shgo iterates until it reaches f_min, "
                                    "which may never happen")
    _limit_nested(c, field, out, limits)
    return out or None


def _local_method_name(raw) -> str | None:
    """A local method's name as the catalogue keys it: scipy's, lower case ("L-BFGS-B" -> "l-bfgs-b")."""
    if not isinstance(raw, str):
        return None
    n = raw.strip().lower()
    return "l-bfgs-b" if n == "lbfgsb" else n


def _minimizer_kwargs(c: _Collector, m: Method, o: Option, raw, p, field: str, dim, limits: Limits) -> dict | None:
    """minimizer_kwargs normalised: {"method", then "jac", "hess", "bounds", "options" where given}.
    The method's options are checked by the same tables as a run of that method; what scipy
    would refuse or silently drop is refused here, at its key. None: scipy's own default."""
    from .minimize_methods import BOUNDED, CONSTRAINED, LOCAL_SCIPY_NAMES, NEEDS_HESS
    keys = [k.name for k in o.keys]
    if not isinstance(raw, dict):
        c.add(field, 'must be an object such as {"method": "bfgs", "options": {"gtol": 1e-6}}, or null')
        return None
    for k in raw:
        if k not in keys:
            c.add(f"{field}.{k}", f"unknown key; minimizer_kwargs takes {', '.join(keys)} here"
                  + (" (shgo bounds each local search by its sampling cell)" if k == "bounds" else ""))
    if not raw and m.name == "dual_annealing":
        return None  # scipy treats {} as no minimizer_kwargs (its own L-BFGS-B inside the bounds)
    local = {name: cat for name, cat, _ in o.local_methods}
    allowed = {name: names for name, _, names in o.local_methods}
    mf = f"{field}.method"
    if raw.get("method") is None:
        # what minimize itself picks (shgo: SLSQP); written out, the call is the same
        name = "slsqp" if m.name == "shgo" else "l-bfgs-b" if raw.get("bounds") is not None else "bfgs"
    else:
        name = _local_method_name(raw["method"])
        if name not in local:
            c.add(mf, f"must be one of {', '.join(LOCAL_SCIPY_NAMES.values())} (any case), not {_fmt(raw['method'])}")
            return None
    lm = METHODS[local[name]]
    title = LOCAL_SCIPY_NAMES[name]
    if p is not None and p.has_constraints and name not in CONSTRAINED:
        c.add(mf, f"{title} cannot take {p.title}'s constraints (shgo would drop them from the local searches): "
                  f"use {', '.join(LOCAL_SCIPY_NAMES[x] for x in LOCAL_SCIPY_NAMES if x in CONSTRAINED)}")
    out = {"method": name}
    for key in ("jac", "hess"):
        lo = lm.option(key)
        v = raw.get(key)
        f = f"{field}.{key}"
        if v is None:
            if lo is not None and key == "jac" and lo.choices == ("analytic",):
                c.add(f, f'{title} needs the gradient: give "analytic"'
                      + (f" (which {p.title} does not have: choose another method)" if p and not p.has_gradient else ""))
            elif key == "hess" and name in NEEDS_HESS:
                c.add(f, f"{title} needs a Hessian: one of "
                      + ", ".join(f'"{x}"' for x in lo.choices))
            continue
        if lo is None:
            c.add(f, f"{title} uses no {'gradient' if key == 'jac' else 'Hessian'} "
                     f"(scipy would warn and ignore it): leave {key} out")
            continue
        val = _option(c, lm, lo, v, p, f)
        if val is not None:
            out[key] = val
    if out.get("hess") in ("2-point", "3-point") and out.get("jac") != "analytic" and f"{field}.jac" not in c.errors:
        c.add(f"{field}.hess", 'a finite-difference Hessian needs jac "analytic" (scipy refuses differences of '
                               'differences)' + (': use "bfgs" or "sr1"' if "bfgs" in lm.option("hess").choices else ""))
    if raw.get("bounds") is not None and m.name != "shgo":
        b = _local_bounds(c, f"{field}.bounds", raw["bounds"], name, title, dim, BOUNDED)
        if b is not None:
            out["bounds"] = b
    opts_raw = raw.get("options")
    if opts_raw is not None:
        of = f"{field}.options"
        if not isinstance(opts_raw, dict):
            c.add(of, f"must be an object of {title}'s options, or null")
        else:
            names = [x.name for x in lm.options if x.name not in ("jac", "hess")]
            kept = allowed[name]
            opts = {}
            for k, v in opts_raw.items():
                f = f"{of}.{k}"
                lo = lm.option(k) if k in names else None
                if k in ("jac", "hess") and lm.option(k) is not None:
                    c.add(f, f"give {k} beside options, as minimize takes it (minimizer_kwargs.{k})")
                elif lo is None:
                    c.add(f, f"unknown option for {title}; its options are {', '.join(names)}")
                elif kept is not None and k not in kept:
                    c.add(f, f"shgo drops every option of the local minimizer but ftol, catol and feasibility_tol "
                             f"(SHGO's own restriction), so {k} would have no effect: leave it out")
                elif v is None:
                    if not lo.nullable:
                        c.add(f, "must not be null")
                elif (val := _option(c, lm, lo, v, p, f)) is not None:
                    opts[k] = val
            # against the method's defaults where a side is not given (c2 alone below c1's default)
            whole = {**{x.name: x.default for x in lm.options if x.default is not None}, **opts}
            for rf, words in relation_errors(name, whole).items():
                c.add(of + rf[len("options"):], words)
            _limit_nested(c, of, opts, limits)
            if opts:
                out["options"] = opts
    return out


def _local_bounds(c: _Collector, field: str, raw, name: str, title: str, dim, bounded) -> list | None:
    if name not in bounded:
        c.add(field, f"{title} takes no bounds (scipy's minimize would warn and ignore them): leave them out")
        return None
    if not isinstance(raw, (list, tuple)):
        c.add(field, "must be a list of [lower, upper] pairs (null for an open side)")
        return None
    if dim is not None and len(raw) != dim:
        c.add(field, f"has {len(raw)} pair{'s' if len(raw) != 1 else ''} but dim is {dim}")
        return None
    out = []
    for i, b in enumerate(raw):
        f = f"{field}[{i}]"
        if not isinstance(b, (list, tuple)) or len(b) != 2:
            c.add(f, "must be a [lower, upper] pair")
            return None
        sides = []
        for side, v in zip(("lower", "upper"), b):
            if v is not None and (not _is_number(v) or (fv := _float(v)) is None or not math.isfinite(fv)):
                c.add(f, f"{side} bound must be a finite number or null, not {_fmt(v)}")
                return None
            sides.append(None if v is None else float(v))
        if None not in sides and sides[0] > sides[1]:
            c.add(f, f"lower bound {_fmt(sides[0])} must not be greater than upper bound {_fmt(sides[1])}")
            return None
        out.append(sides)
    return out


def _has_hessian(p) -> bool:
    # an expression problem derives its own; the catalogue's are listed in HESSIANS
    return getattr(p, "has_hessian", False) or p.name in HESSIANS


def _problem(c: _Collector, data: dict, problems):
    """(problem, definition) the spec names: a catalogue problem, or a user's own, rebuilt from
    the spec's "definition" snapshot if it has one, else from `problems` (the owner's: name ->
    definition JSON). (None, None) when there is none (the error is recorded)."""
    pname = data.get("problem")
    if pname == EXTERNAL or "external" in data:
        return _external(c, data)
    raw = data.get("definition")
    if not isinstance(pname, str):
        raw = None
    elif raw is None and pname not in ALL_PROBLEMS:
        raw = (problems or {}).get(pname)
    if raw is None:
        p = ALL_PROBLEMS.get(pname) if isinstance(pname, str) else None
        if "problem" not in data:
            c.add("problem", "is required")
        elif p is None:
            names = [*ALL_PROBLEMS, *(problems or {})]
            c.add("problem", f"unknown problem {_fmt(pname)}; choose one of {', '.join(names)}")
        return p, None
    from .expressions import DefinitionError, definition_of
    try:
        d = definition_of(raw)
    except DefinitionError as exc:
        for f, words in exc.errors.items():
            for w in words:
                c.add(f"definition.{f}", w)
        return None, None
    if d.name != pname:
        c.add("definition.name", f"is {_fmt(d.name)}, but the spec's problem is {_fmt(pname)}")
        return None, None
    return d.problem, d


def _external(c: _Collector, data: dict):
    """(ExternalProblem, None) for an external run's spec; (None, None) after recording errors."""
    from .external import ExternalProblem, external_of
    if data.get("problem") != EXTERNAL:
        c.add("external", f'belongs to a spec whose problem is "{EXTERNAL}" (a function of your own, '
                          "stepped in your process by the Python client)")
        return None, None
    if "definition" in data:
        c.add("definition", "an external run's function is the user's own: it has no definition here")
    d = external_of(data.get("external"), c.errors)
    dim = data.get("dim")
    if dim is None:
        c.add("dim", "is required for an external run: the number of variables of the function")
        return None, None
    if d is None:
        return None, None
    dim = c.integer("dim", dim, lo=1)
    return (None, None) if dim is None else (ExternalProblem(d, dim), None)


def default_hess(m: Method, p) -> str | None:
    """The analytic Hessian where the problem has one; else scipy's own default (null) where the
    method has one; else an update strategy or differences of the gradient."""
    choices = m.option("hess").choices
    if "analytic" in choices and (p is None or _has_hessian(p)):
        return "analytic"
    for c in (None, "bfgs", "2-point"):
        if c in choices:
            return c
    return "analytic"  # dogleg, trust-exact: the only choice (refused below if there is none)


def _check_derivatives(c: _Collector, m: Method, p, options: dict) -> None:
    """What scipy needs of jac and hess together, for the chosen problem."""
    jac, hess = m.option("jac"), m.option("hess")
    if p is None or jac is None or "options.jac" in c.errors:
        return
    if options.get("jac") not in jac.choices:
        c.add("options.jac", f"{m.title} needs the analytic gradient, which {p.title} does not have")
        return
    if hess is None or "options.hess" in c.errors:
        return
    h = options.get("hess")
    if h == "analytic" and not _has_hessian(p):
        c.add("options.hess", f"{m.title} needs an analytic Hessian, which {p.title} does not have here")
    elif h in ("2-point", "3-point", "cs") and options.get("jac") != "analytic":
        c.add("options.hess", "a finite-difference Hessian needs the analytic gradient (scipy refuses "
                              'differences of differences): use "bfgs" or "sr1"')


def _members(dim: int, popsize: int, init: str) -> int:
    # as DifferentialEvolutionSolver sizes its population (Sobol' rounds up to a power of 2)
    n = max(5, popsize * max(1, dim))
    return int(2 ** math.ceil(math.log2(n))) if init == "sobol" else n


def estimate_evaluations(spec: Spec) -> int:
    """An upper estimate of the function evaluations the run can make."""
    o, n = spec.options, spec.dim
    if spec.method == "de":
        evals = _members(n, o["popsize"], o["init"]) * (o["maxiter"] + 1)
        if o["polish"]:  # L-BFGS-B defaults: maxfun 15000 checked per iteration, 2-point FD
            evals += 15000 + 22 * (n + 1)
        return evals
    if spec.method != "lbfgsb":
        # minimize's other methods: what the run says it may spend, where it says so (their own
        # defaults are bounded by scipy: 200 n iterations and the like)
        return max([int(o[k]) for k in ("maxfev", "maxfun") if o.get(k) is not None], default=0)
    per_point = {"analytic": 1, None: n + 1, "2-point": n + 1, "3-point": 2 * n + 1, "cs": n + 1}[o["jac"]]
    by_fun = o["maxfun"] + (o["maxls"] + 1) * per_point  # maxfun is checked once per iteration
    by_iter = (o["maxiter"] * (o["maxls"] + 1) + 1) * per_point
    return min(by_fun, by_iter)


def _params(c: _Collector, p, raw) -> dict | None:
    """The problem's coefficients: its defaults overlaid with `raw`, each checked against its range."""
    if raw is not None and not isinstance(raw, dict):
        c.add("params", "must be an object of coefficient values")
        return None
    if p is None:
        return None
    params = p.defaults()
    for k, v in (raw or {}).items():
        spec_p = next((q for q in p.params if q.name == k), None)
        if spec_p is None:
            names = ", ".join(q.name for q in p.params) or "none"
            c.add(f"params.{k}", f"unknown parameter for {p.name} (it has: {names})")
            continue
        val = c.number(f"params.{k}", v, lo=spec_p.min, hi=spec_p.max)
        if val is not None:
            params[k] = val
    return params


def validate_params(problem: str, raw, problems: dict | None = None) -> dict:
    """A problem's coefficients as validate_spec checks them (for the contour grid and f*, which
    take params without a whole spec); SpecError keyed "params.a" otherwise. `problems` as for
    validate_spec."""
    c = _Collector()
    p, _ = _problem(c, {"problem": problem}, problems)
    params = _params(c, p, raw)
    if c.errors:
        raise SpecError(c.errors)
    return params


def validate_spec(data, limits: Limits = Limits(), problems: dict | None = None) -> Spec:
    """Check `data` (decoded JSON) and return a normalised Spec, or raise SpecError with every
    problem found, keyed by field ("bounds[1]", "options.maxiter", "params.a", ...).

    `problems`: the user's own problems a "problem" name may also mean (name -> definition
    JSON, runs.optim.expressions); the Spec then carries the definition (to_dict: "definition"),
    and validating that dict again rebuilds the same problem without `problems`."""
    c = _Collector()
    if not isinstance(data, dict):
        raise SpecError({"spec": ["must be a JSON object with method, problem, ..."]})
    for k in data:
        if k not in SPEC_FIELDS:
            c.add(str(k), f"unknown field; a spec has {', '.join(SPEC_FIELDS)}")

    method = data.get("method")
    m = METHODS.get(method) if isinstance(method, str) else None
    if "method" not in data:
        c.add("method", f"is required: one of {', '.join(METHODS)}")
    elif m is None:
        c.add("method", f"unknown method {_fmt(method)}; choose one of {', '.join(METHODS)}")

    p, definition = _problem(c, data, problems)

    params = _params(c, p, data.get("params"))

    # dim
    dim = None
    if p is not None:
        raw = data.get("dim")
        dim = p.default_dim if raw is None else c.integer("dim", raw, lo=1)
        if dim is not None:
            if dim < p.min_dim or (p.max_dim is not None and dim > p.max_dim):
                allowed = (f"exactly {p.min_dim}" if p.max_dim == p.min_dim else
                           f"at least {p.min_dim}" if p.max_dim is None else
                           f"between {p.min_dim} and {p.max_dim}")
                c.add("dim", f"{p.name} needs a dimension {allowed} (got {_fmt(dim)})")
                dim = None
            elif dim > limits.max_dim:
                c.add("dim", f"{_fmt(dim)} is more than the limit of {limits.max_dim:,}", limit=True)
                dim = None
            elif definition is not None:
                from .expressions import ExpressionError
                try:
                    definition.check(dim)
                except ExpressionError as exc:
                    c.add("dim", f"{p.name}: {exc}")
                    dim = None

    # bounds
    bounds = None
    raw = data.get("bounds")
    open_ok = m is not None and not m.needs_bounds
    if raw is None:
        if m is not None and m.needs_bounds:
            c.add("bounds", f"are required for {m.name}: one [lower, upper] pair per dimension")
    elif m is not None and not m.takes_bounds:
        takers = ", ".join(x.title for x in METHODS.values() if x.takes_bounds)
        c.add("bounds", f"{m.title} takes no bounds (as in scipy); leave them out, or choose a method that does: {takers}")
    elif not isinstance(raw, (list, tuple)):
        c.add("bounds", "must be a list of [lower, upper] pairs")
    else:
        if dim is not None and len(raw) != dim:
            c.add("bounds", f"has {len(raw)} pair{'s' if len(raw) != 1 else ''} but dim is {dim}")
        out, ok = [], True
        for i, b in enumerate(raw):
            f = f"bounds[{i}]"
            if not isinstance(b, (list, tuple)) or len(b) != 2:
                c.add(f, "must be a [lower, upper] pair")
                ok = False
                continue
            sides = []
            for j, (side, v) in enumerate(zip(("lower", "upper"), b)):
                if v is None:
                    if not open_ok:
                        c.add(f, f"{side} bound is missing ({m.name if m else 'this method'}"
                                 " needs finite bounds)")
                        ok = False
                    sides.append(None)
                    continue
                if not _is_number(v) or (f_v := _float(v)) is None or not math.isfinite(f_v):
                    c.add(f, f"{side} bound must be a finite number"
                             f"{' or null' if open_ok else ''}, not {_fmt(v)}")
                    ok = False
                    sides.append(None)
                    continue
                sides.append(float(v))
            lo, hi = sides
            if lo is not None and hi is not None and lo > hi:  # equal: a fixed coordinate, as scipy allows
                c.add(f, f"lower bound {_fmt(lo)} must not be greater than upper bound {_fmt(hi)}")
                ok = False
            elif lo is not None and lo == hi and m is not None and not m.fixed_coordinates:
                c.add(f, f"lower bound {_fmt(lo)} must be less than upper bound {_fmt(hi)}: "
                         f"{m.title} takes no fixed coordinate (as in scipy)")
                ok = False
            out.append((lo, hi))
        if ok:
            bounds = tuple(out)

    # x0
    x0 = None
    raw = data.get("x0")
    if raw is not None and m is not None and not m.takes_x0:
        c.add("x0", f"{m.title} takes no starting point (as in scipy): leave it out")
    elif raw is None:
        if m is not None and m.needs_x0:
            c.add("x0", f"is required for {m.name}: a starting point with one number per dimension")
    elif not isinstance(raw, (list, tuple)):
        c.add("x0", "must be a list of numbers")
    else:
        if dim is not None and len(raw) != dim:
            c.add("x0", f"has {len(raw)} number{'s' if len(raw) != 1 else ''} but dim is {dim}")
        vals = [c.number(f"x0[{i}]", v) for i, v in enumerate(raw)]
        if None not in vals:
            x0 = tuple(vals)
            if m is not None and m.name == "de" and bounds is not None and len(x0) == len(bounds):
                # scipy's own test (after scaling to the unit cube) so we refuse exactly what
                # DifferentialEvolutionSolver would refuse
                lim = np.array(bounds, dtype=float).T
                scaled = (np.array(x0) - 0.5 * (lim[0] + lim[1])) * (1 / np.fabs(lim[0] - lim[1])) + 0.5
                for i in np.flatnonzero((scaled > 1.0) | (scaled < 0.0)):
                    c.add(f"x0[{i}]", f"{_fmt(x0[i])} lies outside bounds[{i}] "
                                      f"[{_fmt(bounds[i][0])}, {_fmt(bounds[i][1])}]")

    # a constrained problem: only for the methods scipy passes constraints to
    if m is not None and p is not None and p.has_constraints and not m.takes_constraints:
        takers = ", ".join(x.short or x.title for x in METHODS.values() if x.takes_constraints)
        c.add("method", f"{m.title} cannot take {p.title}'s constraints (scipy would ignore them); "
                        f"choose one that can: {takers}")

    # options
    options = None
    raw = data.get("options")
    if raw is not None and not isinstance(raw, dict):
        c.add("options", "must be an object of option values")
    elif m is not None:
        options = {o.name: (list(o.default) if isinstance(o.default, list) else o.default)
                   for o in m.options}
        if m.option("jac") is not None:  # without a gradient, what scipy does when given no jac
            options["jac"] = "analytic" if (p is None or p.has_gradient) else None
        if m.option("hess") is not None:
            options["hess"] = default_hess(m, p)
        for k, v in (raw or {}).items():
            o = m.option(k)
            if o is None:
                c.add(f"options.{k}", f"unknown option for {m.name}; options are "
                                      f"{', '.join(x.name for x in m.options)}")
                continue
            if v is None:
                if o.kind in ("seed", "jac") or o.nullable or (o.kind == "hess" and None in o.choices):
                    options[k] = None  # a value of its own (jac: scipy's default without a gradient)
                else:
                    c.add(f"options.{k}", "must not be null")
                continue
            val = _option(c, m, o, v, p, ctx=(dim, limits))
            if val is not None or o.kind == "seed":
                options[k] = val
        for o in m.options:
            # scipy's own default for an object option is its absence: a spec (and the checkpoints
            # holding it) made before these options existed stays byte for byte what it was
            if o.kind in ("minimizer_kwargs", "dict") and options.get(o.name) is None:
                options.pop(o.name, None)
        _check_derivatives(c, m, p, options)
        for field, words in relation_errors(m.name, options).items():
            c.add(field, words)
        if options.get("seed") is not None and options.get("rng") is not None:
            c.add("options.rng", "give seed (legacy RandomState) or rng (Generator), not both")
        mi = options.get("maxiter")
        if isinstance(mi, int) and mi > limits.max_maxiter:
            c.add("options.maxiter", f"{_fmt(mi)} is more than the limit of {limits.max_maxiter:,}",
                  limit=True)
        ps = options.get("popsize")
        if isinstance(ps, int) and ps > limits.max_popsize:
            c.add("options.popsize", f"{_fmt(ps)} is more than the limit of {limits.max_popsize:,}",
                  limit=True)
        mc = options.get("maxcor")
        if isinstance(mc, int) and mc > limits.max_maxcor:
            c.add("options.maxcor", f"{_fmt(mc)} is more than the limit of {limits.max_maxcor:,} "
                  "(memory and checkpoints grow with its square)", limit=True)
        strategy = options.get("strategy")
        if (isinstance(strategy, str) and strategy.startswith("rand2") and isinstance(ps, int)
                and dim is not None and isinstance(options.get("init"), str)
                and _members(dim, ps, options["init"]) < 6):
            # scipy draws 5 members besides the candidate: it fails with fewer than 6
            c.add("options.strategy", f"{strategy} needs at least 6 population members, but "
                  f"popsize {ps} with dim {dim} gives {_members(dim, ps, options['init'])}; "
                  "raise popsize")

    stop = _stop(c, data.get("stop"), p, params, dim)

    if c.errors:
        code = "limit" if set(c.errors) <= c.limit_fields else "invalid_spec"
        raise SpecError(c.errors, code)

    spec = Spec(method=m.name, problem=p.name, params=params, dim=dim, bounds=bounds,
                x0=x0, options=options, stop=stop, definition=definition,
                external=getattr(p, "definition", None) if p.name == EXTERNAL else None)
    est = estimate_evaluations(spec)
    if est > limits.max_evaluations:
        field = "options.maxiter" if m.name == "de" else "options.maxfun" if m.option("maxfun") else "options.maxfev"
        raise SpecError({field: [
            f"the run could take about {est:,} function evaluations, more than the limit of "
            f"{limits.max_evaluations:,}; lower maxiter"
            + (", popsize or dim" if m.name == "de" else ", maxfun or maxls")]}, "limit")
    size = estimate_checkpoint_bytes(spec)
    if size > limits.max_checkpoint_bytes:
        field = "options.popsize" if m.name == "de" else "options.maxcor"
        raise SpecError({field: [
            f"the run's checkpoint would take about {_mib(size)}, more than the limit of "
            f"{_mib(limits.max_checkpoint_bytes)}; lower "
            + ("popsize or dim" if m.name == "de" else "maxcor or dim")]}, "limit")
    return spec


def _stop(c: _Collector, raw, p, params, dim) -> tuple | None:
    """The stopping rules as Spec.stop holds them (None for absent, null or {})."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        c.add("stop", "must be an object of stopping rules (" + ", ".join(RULES) + ") or null")
        return None
    out = {}
    for k in raw:
        if k not in RULES:
            c.add(f"stop.{k}", f"unknown stopping rule; the rules are {', '.join(RULES)}")
    if "f" in raw:
        out["f"] = c.number("stop.f", raw["f"])
    if "gap" in raw:
        out["gap"] = c.number("stop.gap", raw["gap"], lo=0)
        if out["gap"] is not None and p is not None and params is not None and dim is not None:
            if p.known_minimum(params, dim) is None:
                c.add("stop.gap", f"{p.title}'s minimum f* is not known for these parameters and "
                                  "dimension, so f − f* cannot be measured: use the rule f instead")
    if "nfev" in raw:
        out["nfev"] = c.integer("stop.nfev", raw["nfev"], lo=1)
    if "seconds" in raw:
        out["seconds"] = c.number("stop.seconds", raw["seconds"], lo=0, lo_open=True)
    if "stall" in raw:
        st = raw["stall"]
        if not isinstance(st, dict):
            c.add("stop.stall", 'must be an object {"steps": N, "rtol": r, "atol": a}')
            out["stall"] = None
        else:
            for k in st:
                if k not in STALL_KEYS:
                    c.add(f"stop.stall.{k}", f"unknown key; stall has {', '.join(STALL_KEYS)}")
            if "steps" not in st:
                c.add("stop.stall.steps", "is required: how many steps without improvement")
                steps = None
            else:
                steps = c.integer("stop.stall.steps", st["steps"], lo=1)
            rtol = c.number("stop.stall.rtol", st.get("rtol", 0.0), lo=0)
            atol = c.number("stop.stall.atol", st.get("atol", 0.0), lo=0)
            out["stall"] = (None if None in (steps, rtol, atol)
                            else (("steps", steps), ("rtol", rtol), ("atol", atol)))
    if None in out.values():  # an error was recorded
        return None
    return tuple((k, out[k]) for k in RULES if k in out) or None


def _mib(n: int) -> str:
    return f"{n / 2 ** 20:,.1f} MiB"


# Bytes an .npz adds per array (zip64 headers, the .npy header), and the JSON state beside the
# spec (with a legacy RandomState, its 624-word key): measured on numpy 2.4, rounded up.
_NPZ_PER_ARRAY = 300
_STATE_BASE, _RANDOMSTATE = 2_000, 7_000


def estimate_checkpoint_bytes(spec: Spec) -> int:
    """An upper estimate of the size of the run's checkpoint (runs.optim.checkpoint), from the
    arrays each stepper saves (de.py, lbfgsb.py) and the spec it carries. It holds at every
    step: the arrays' sizes are fixed by the spec from the start."""
    n, o = spec.dim, spec.options
    result = [n, 1, n]  # result_x, result_fun, result_jac once the run has ended
    if spec.method not in ("de", "lbfgsb"):
        sizes = [n * 8, 8]  # minimize.py: the last x and f (a resume runs scipy again up to them)
    elif spec.method == "de":
        members = _members(n, o["popsize"], o["init"])
        # population, energies, feasible (1 byte), constraint_violation, random_population_index
        sizes = [members * n * 8, members * 8, members, members * 8, members * 8]
    else:
        m = o["maxcor"]
        floats = [n, 1, n, 2 * m * n + 5 * n + 11 * m * m + 8 * m, 29, n, 1, n]  # x f g wa dsave sf_*
        ints = [3 * n, 2, 2, 4, 44]  # iwa task ln_task lsave isave (int32)
        sizes = [k * 8 for k in floats] + [k * 4 for k in ints]
    sizes += [k * 8 for k in result]
    spec_text = len(json.dumps(spec.to_dict(), separators=(",", ":")))
    state = _STATE_BASE + (_RANDOMSTATE if spec.method == "de" and o["rng"] is None else 0)
    return sum(sizes) + _NPZ_PER_ARRAY * (len(sizes) + 1) + state + spec_text
