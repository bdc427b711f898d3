"""Every option value the validator accepts is one scipy runs: hypothesis draws values inside each
method's declared ranges (runs/optim/methods.py, minimize_methods.py) and the stepper takes a few
steps without an error. A value scipy refuses must be refused at the field, in words, before a
run is stored, never fail the run."""

import math
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runs.optim import METHODS, SpecError, make_stepper, validate_spec
from tests.fuzzing import fuzz_settings

NEW = [m for m in METHODS if m not in ("de", "lbfgsb")]


def values(o):
    if o.kind == "minimizer_kwargs":
        return minimizer_kwargs(o)
    if o.kind == "dict":  # shgo's options: any of its keys, each inside its range
        return st.fixed_dictionaries({}, optional={k.name: values(k) for k in o.keys})
    if o.kind == "bool":
        return st.booleans()
    if o.kind in ("choice", "jac", "hess"):
        return st.sampled_from(list(o.choices))
    if o.kind == "seed":
        return st.one_of(st.none(), st.integers(0, 2 ** 32 - 1))
    lo = -1e6 if o.min is None else o.min
    hi = 1e6 if o.max is None else o.max
    if o.kind == "int":
        return st.integers(int(math.ceil(lo)) + (1 if o.min_exclusive else 0),
                           min(int(hi) - (1 if o.max_exclusive else 0), int(lo) + 60))
    # Floats of sane magnitude: the relations scipy checks are the point here; a radius of 1e-283
    # is a valid value whose numerical breakdown (a failed run, in scipy's words) is scipy's own.
    if o.min_exclusive and lo == 0:
        lo, exclude = 1e-8, False
    else:
        exclude = o.min_exclusive
    return st.floats(max(lo, -1e8), min(hi, 1e8), exclude_min=exclude, exclude_max=o.max_exclusive, allow_nan=False)


@st.composite
def minimizer_kwargs(draw, o):
    """A local method and some of its options, drawn from the same tables as a run of it."""
    name, cat, kept = draw(st.sampled_from(o.local_methods))
    mk = {"method": draw(st.sampled_from([name, name.upper()]))}
    for lo in METHODS[cat].options:
        if not draw(st.booleans()):
            continue
        if lo.name in ("jac", "hess"):
            mk[lo.name] = draw(values(lo))
        elif kept is None or lo.name in kept:
            mk.setdefault("options", {})[lo.name] = draw(st.one_of(st.none(), values(lo)) if lo.nullable
                                                         else values(lo))
    return mk


@st.composite
def specs(draw):
    m = METHODS[draw(st.sampled_from(NEW))]
    options = {}
    for o in m.options:
        if draw(st.booleans()):
            options[o.name] = draw(st.one_of(st.none(), values(o)) if o.nullable else values(o))
    spec = {"method": m.name, "problem": draw(st.sampled_from(["rosenbrock", "sphere", "himmelblau"])), "dim": 2,
            "options": options}
    if m.needs_bounds:
        spec["bounds"] = [[-3, 3], [-3, 3]]
    if m.needs_x0:
        spec["x0"] = [0.7, -0.4]
    return spec


@fuzz_settings  # OPTSITE_FUZZ_EXAMPLES raises the count (bench/fuzz.py)
@given(specs())
def test_what_the_validator_accepts_scipy_runs(spec):
    try:
        s = validate_spec(spec)
    except SpecError as e:  # refused: in words, at a field
        assert e.errors and all(isinstance(v, list) and v for v in e.errors.values())
        return
    stepper = make_stepper(s)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's own warnings (e.g. COBYLA raising a small maxfun)
            for _, _ in zip(range(5), stepper):
                pass
    finally:
        close = getattr(stepper, "close", None)
        if close:
            close()


@pytest.mark.parametrize("name", NEW)
def test_each_method_runs_with_scipys_defaults(name):
    m = METHODS[name]
    spec = {"method": name, "problem": "rosenbrock", "dim": 2}
    if m.needs_bounds:
        spec["bounds"] = [[-3, 3], [-3, 3]]
    if m.needs_x0:
        spec["x0"] = [0.7, -0.4]
    stepper = make_stepper(validate_spec(spec))
    assert next(stepper).seq == 0
    stepper.close()


@pytest.mark.parametrize("name", ["basinhopping", "dual_annealing", "shgo"])
def test_every_local_method_is_offered_with_its_own_options(name):
    # minimizer_kwargs' options are the local method's own table, not a copy of it
    o = METHODS[name].option("minimizer_kwargs")
    for local, cat, kept in o.local_methods:
        own = [x.name for x in METHODS[cat].options if x.name not in ("jac", "hess")]
        assert kept is None if name != "shgo" else set(kept) <= set(own)
