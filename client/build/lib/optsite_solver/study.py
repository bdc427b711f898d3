"""Study specs: one problem × method configurations × repeats, validated through the run specs'
own path (every run a study would make is a run spec validate_spec accepts) and expanded into
exactly those runs.

Repeat r of a configuration whose method has a seed gets seeds[r] (default r + 1); a method
that needs a starting point gets the study's x0, or with x0 "random" repeat r's start, drawn
inside the bounds from numpy.random.default_rng(x0_seed) — the same start r for every such
configuration, so that the methods are compared from the same points. Methods that take no
bounds are given none; the study's bounds still frame its starts and its map.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .echo import bounded_errors, shown
from .methods import METHODS
from .problems import ALL_PROBLEMS
from .spec import MAX_SEED, Limits, SpecError, _Collector, _is_number, validate_spec

__all__ = ["StudyLimits", "StudySpec", "StudyRun", "validate_study"]

STUDY_FIELDS = ("problem", "params", "dim", "bounds", "x0", "x0_seed", "configs", "repeats", "seeds", "label")
CONFIG_FIELDS = ("method", "options", "stop", "label")
# what a run spec's error key becomes in the study's: the problem's fields are the study's own,
# the method's are the configuration's
SHARED = ("problem", "params", "dim", "bounds", "x0")
MAX_LABEL = 200


@dataclass(frozen=True)
class StudyLimits:
    max_runs: int = 200  # configurations × repeats
    max_configs: int = 12
    run: Limits = Limits()


@dataclass(frozen=True)
class StudyRun:
    config: int
    repeat: int
    seed: int | None
    spec: dict  # a normalised run spec (Spec.to_dict())


@dataclass(frozen=True)
class StudySpec:
    problem: str
    params: dict
    dim: int
    bounds: tuple  # closed ((lo, hi), ...): the starts are drawn inside them
    x0: tuple | str | None  # None, a point, or "random"
    x0_seed: int
    configs: tuple  # ({"method", "options", "stop"?, "label"}, ...) as given (normalised per run)
    repeats: int
    seeds: tuple
    label: str
    runs: tuple  # StudyRun, config-major

    def to_dict(self) -> dict:
        """The study spec as JSON: posting it again makes the same runs."""
        return {
            "problem": self.problem, "params": dict(self.params), "dim": self.dim,
            "bounds": [list(b) for b in self.bounds],
            "x0": list(self.x0) if isinstance(self.x0, tuple) else self.x0,
            "x0_seed": self.x0_seed,
            "configs": [dict(c) for c in self.configs],
            "repeats": self.repeats, "seeds": list(self.seeds), "label": self.label,
        }


def _seed_option(method: str) -> str | None:
    m = METHODS[method]
    return next((o.name for o in m.options if o.kind == "seed"), None)


def starts(bounds, repeats: int, x0_seed: int) -> list[list[float]]:
    """Repeat r's random start: uniform inside the bounds, from default_rng(x0_seed), r in order."""
    rng = np.random.default_rng(x0_seed)
    lo = np.array([b[0] for b in bounds], dtype=float)
    hi = np.array([b[1] for b in bounds], dtype=float)
    return [rng.uniform(lo, hi).tolist() for _ in range(repeats)]


def _prefix_errors(c: _Collector, errors: dict, config: int, title: str) -> None:
    for key, messages in errors.items():
        head = key.split(".", 1)[0].split("[", 1)[0]
        if head in SHARED:
            for msg in messages:
                c.add(key, f"{msg} (for configuration {config + 1}, {title})")
        else:
            for msg in messages:
                c.add(f"configs[{config}].{key}", msg)


def validate_study(data, limits: StudyLimits = StudyLimits(), problems: dict | None = None) -> StudySpec:
    """Check `data` (decoded JSON) and return the StudySpec with its runs, or raise SpecError
    with every problem found, keyed by field ("repeats", "configs[1].options.maxiter", ...).
    `problems`: the owner's own (name -> definition JSON), as validate_spec takes them."""
    c = _Collector()
    if not isinstance(data, dict):
        raise SpecError({"study": ["must be a JSON object with problem, configs, repeats, ..."]})
    for k in data:
        if k not in STUDY_FIELDS:
            c.add(str(k), f"unknown field; a study has {', '.join(STUDY_FIELDS)}")

    pname = data.get("problem")
    p = ALL_PROBLEMS.get(pname) if isinstance(pname, str) else None
    if p is None and isinstance(pname, str) and pname in (problems or {}):
        from .expressions import DefinitionError, definition_of
        try:
            p = definition_of(problems[pname]).problem
        except (DefinitionError, ValueError):
            p = None
    if p is None:
        c.add("problem", "is required" if "problem" not in data else
              f"unknown problem {shown(pname)}; choose one of {', '.join([*ALL_PROBLEMS, *(problems or {})])}")

    repeats = c.integer("repeats", data.get("repeats", 1), lo=1)
    label = data.get("label", "")
    if not isinstance(label, str) or "\x00" in label:
        c.add("label", "must be text (without NUL characters)")
        label = ""
    elif len(label) > MAX_LABEL:
        c.add("label", f"is {len(label):,} characters long; at most {MAX_LABEL} are kept")

    x0_seed = c.integer("x0_seed", data.get("x0_seed", 1), lo=0, hi=MAX_SEED)

    raw_configs = data.get("configs")
    configs: list[dict] = []
    if not isinstance(raw_configs, list) or not raw_configs:
        c.add("configs", "must be a non-empty list of {method, options} objects")
    elif len(raw_configs) > limits.max_configs:
        c.add("configs", f"has {len(raw_configs):,} configurations; a study takes at most {limits.max_configs}",
              limit=True)
    else:
        for i, cfg in enumerate(raw_configs):
            if not isinstance(cfg, dict):
                c.add(f"configs[{i}]", "must be an object with a method and its options")
                continue
            bad = [k for k in cfg if k not in CONFIG_FIELDS]
            for k in bad:
                c.add(f"configs[{i}].{k}", f"unknown field; a configuration has {', '.join(CONFIG_FIELDS)}")
            method = cfg.get("method")
            if not isinstance(method, str) or method not in METHODS:
                c.add(f"configs[{i}].method", f"unknown method {shown(method)}; choose one of {', '.join(METHODS)}")
                continue
            options = cfg.get("options", {})
            if options is None:
                options = {}
            if not isinstance(options, dict):
                c.add(f"configs[{i}].options", "must be an object of option names and values")
                continue
            cl = cfg.get("label", "")
            if not isinstance(cl, str) or len(cl) > MAX_LABEL or "\x00" in cl:
                c.add(f"configs[{i}].label", f"must be text of at most {MAX_LABEL} characters, without NUL")
                continue
            if bad:
                continue
            out = {"method": method, "options": dict(options), "label": cl or METHODS[method].short or METHODS[method].title}
            if cfg.get("stop") is not None:
                out["stop"] = cfg["stop"]
            configs.append(out)

    if repeats is not None and raw_configs and isinstance(raw_configs, list):
        total = repeats * len(raw_configs)
        if total > limits.max_runs:
            c.add("repeats", f"{len(raw_configs)} configuration{'s' if len(raw_configs) != 1 else ''} × "
                             f"{repeats:,} repeats make {total:,} runs; a study makes at most {limits.max_runs:,}",
                  limit=True)
            repeats = None

    seeds = None
    raw_seeds = data.get("seeds")
    if repeats is not None:
        if raw_seeds is None:
            seeds = tuple(range(1, repeats + 1))
        elif not isinstance(raw_seeds, list) or len(raw_seeds) != repeats:
            c.add("seeds", f"must be a list of {repeats:,} integer seeds, one per repeat"
                           + ("" if not isinstance(raw_seeds, list) else f" (got {len(raw_seeds):,})"))
        else:
            got = [c.integer(f"seeds[{i}]", s, lo=0, hi=MAX_SEED) for i, s in enumerate(raw_seeds[:limits.max_runs])]
            if all(s is not None for s in got):
                seeds = tuple(got)

    # The problem's own fields are checked once, through the run spec of a method that takes them all.
    dim = bounds = params = None
    if p is not None:
        probe = {k: data[k] for k in ("params", "dim") if k in data}
        guess = data.get("dim")
        if not (isinstance(guess, int) and not isinstance(guess, bool) and p.min_dim <= guess <= limits.run.max_dim):
            guess = p.default_dim
        try:
            base = validate_spec({"method": "de", "problem": pname, **probe, "bounds": p.default_bounds(guess),
                                  "options": {"maxiter": 0}}, limits.run, problems)
        except SpecError as exc:
            for key, messages in exc.errors.items():
                if key.split(".", 1)[0].split("[", 1)[0] in ("params", "dim"):
                    for msg in messages:
                        c.add(key, msg, limit=exc.code == "limit")
            if not c.errors:  # none of the problem's fields: say what the run spec said
                for key, messages in exc.errors.items():
                    for msg in messages:
                        c.add(key, msg)
            base = None
        if base is not None:
            dim, params = base.dim, base.params
            raw_bounds = data.get("bounds")
            if raw_bounds is None:
                bounds = tuple(tuple(b) for b in p.default_bounds(dim))
            else:
                try:
                    bounds = validate_spec({"method": "de", "problem": pname, "params": params, "dim": dim,
                                            "bounds": raw_bounds, "options": {"maxiter": 0}}, limits.run, problems).bounds
                except SpecError as exc:
                    for key, messages in exc.errors.items():
                        if key.startswith("bounds"):
                            for msg in messages:
                                c.add(key, msg)

    x0 = None
    raw_x0 = data.get("x0")
    if raw_x0 == "random":
        x0 = "random"
    elif raw_x0 is not None and not isinstance(raw_x0, list):
        c.add("x0", f"must be null, \"random\" or a list of {dim or 'dim'} numbers, not {shown(raw_x0)}")
    elif isinstance(raw_x0, list):
        if dim is not None and len(raw_x0) != dim:
            c.add("x0", f"has {len(raw_x0):,} numbers but dim is {dim}")
        elif not all(_is_number(v) and math.isfinite(float(v)) for v in raw_x0):
            c.add("x0", "must hold finite numbers only")
        else:
            x0 = tuple(float(v) for v in raw_x0)

    if c.errors:
        raise _error(c)

    if x0 is None and any(METHODS[cfg["method"]].needs_x0 for cfg in configs):
        needing = sorted({METHODS[cfg["method"]].title for cfg in configs if METHODS[cfg["method"]].needs_x0})
        c.add("x0", f"{', '.join(needing)} need{'s' if len(needing) == 1 else ''} a starting point: "
                    "give one, or \"random\" for a start drawn inside the bounds for each repeat")
        raise _error(c)

    points = starts(bounds, repeats, x0_seed) if x0 == "random" else None
    runs = []
    for i, cfg in enumerate(configs):
        m = METHODS[cfg["method"]]
        seed_name = _seed_option(cfg["method"])
        if seed_name == "seed" and cfg["options"].get("rng") is not None:
            seed_name = "rng"  # the configuration chose numpy's Generator: its repeats are seeded there
        for r in range(repeats):
            spec = {"method": cfg["method"], "problem": pname, "params": params, "dim": dim,
                    "options": dict(cfg["options"])}
            if m.takes_bounds:
                spec["bounds"] = [list(b) for b in bounds]
            if m.needs_x0:
                spec["x0"] = points[r] if points is not None else list(x0)
            if "stop" in cfg:
                spec["stop"] = cfg["stop"]
            seed = None
            if seed_name is not None:
                seed = seeds[r]
                spec["options"][seed_name] = seed
            try:
                normal = validate_spec(spec, limits.run, problems).to_dict()
            except SpecError as exc:
                _prefix_errors(c, exc.errors, i, cfg["label"])
                if exc.code == "limit":
                    c.limit_fields.update(k for k in c.errors)
                break  # its other repeats differ only in seed and start: one report is enough
            runs.append(StudyRun(config=i, repeat=r, seed=seed, spec=normal))
    if c.errors:
        raise _error(c)
    return StudySpec(problem=pname, params=params, dim=dim, bounds=tuple(tuple(b) for b in bounds), x0=x0,
                     x0_seed=x0_seed, configs=tuple(configs), repeats=repeats, seeds=seeds, label=label,
                     runs=tuple(runs))


def _error(c: _Collector) -> SpecError:
    code = "limit" if c.limit_fields and set(c.errors) <= c.limit_fields else "invalid_spec"
    err = SpecError(c.errors, code)
    lead = "The study asks for more than this server allows" if code == "limit" else "The study spec is invalid"
    first_field, first = next(iter(bounded_errors(c.errors).items()))
    more = sum(len(v) for v in c.errors.values()) - 1
    tail = f" (and {more:,} more problem{'s' if more > 1 else ''})" if more else ""
    err.message = f"{lead}: {first_field}: {first[0]}{tail}."
    err.args = (err.message,)
    return err
