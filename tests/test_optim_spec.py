"""validate_spec: one path for socket, form and CLI; every error keyed by field, in words."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runs.optim import (METHODS, PROBLEMS, Limits, SpecError, method_catalogue,
                        validate_spec)


def errors_of(data, limits=Limits()):
    with pytest.raises(SpecError) as info:
        validate_spec(data, limits)
    e = info.value
    assert e.message and e.code in ("invalid_spec", "limit")
    return e


DE = {"method": "de", "problem": "rosenbrock", "bounds": [[-2, 2], [-2, 2]]}
LB = {"method": "lbfgsb", "problem": "rosenbrock", "x0": [0.5, 0.5]}


def test_defaults_are_scipys():
    s = validate_spec(DE)
    assert s.options == {"strategy": "best1bin", "maxiter": 1000, "popsize": 15, "tol": 0.01,
                         "atol": 0.0, "mutation": [0.5, 1.0], "recombination": 0.7,
                         "seed": None, "rng": None, "polish": True, "init": "latinhypercube",
                         "updating": "immediate"}
    assert s.params == {"a": 1.0, "b": 100.0} and s.dim == 2 and s.x0 is None
    s = validate_spec(LB)
    assert s.options == {"maxcor": 10, "ftol": 2.2204460492503131e-09, "gtol": 1e-5,
                         "eps": 1e-8, "maxfun": 15000, "maxiter": 15000, "maxls": 20,
                         "jac": "analytic"}
    assert s.bounds is None


def test_to_dict_round_trips():
    for data in (DE, LB, {**LB, "bounds": [[None, 1], [None, None]],
                          "options": {"jac": "3-point", "maxiter": 5.0}},
                 {**DE, "options": {"mutation": 0.3, "seed": 4}, "x0": [0, 1]}):
        s = validate_spec(data)
        assert validate_spec(s.to_dict()) == s
        assert hash(validate_spec(s.to_dict())) == hash(s)


def test_lower_bound_above_upper_is_keyed_by_pair():
    e = errors_of({**DE, "bounds": [[-2, 2], [5, 2]]})
    assert e.code == "invalid_spec"
    assert e.errors == {"bounds[1]": ["lower bound 5 must be less than upper bound 2"]}
    assert "bounds[1]" in e.message


def test_all_errors_are_collected():
    e = errors_of({"method": "de", "problem": "rosenbrock", "dim": 3,
                   "bounds": [[0, 1], [1, 1]], "x0": [0, "a"], "params": {"a": True, "z": 1},
                   "options": {"maxiter": 1.5, "popsize": False, "strategy": "best9",
                               "mutation": [0.5, 2.5], "recombination": 1.2,
                               "init": "grid", "updating": "later", "seed": -1,
                               "polish": "yes", "workers": 2, "tol": math.nan},
                   "extra": 1})
    assert set(e.errors) >= {
        "bounds", "bounds[1]", "x0", "x0[1]", "params.a", "params.z", "options.maxiter",
        "options.popsize", "options.strategy", "options.mutation[1]", "options.recombination",
        "options.init", "options.updating", "options.seed", "options.polish", "options.workers",
        "options.tol", "extra"}
    assert "number" in e.errors["params.a"][0]  # bool is not a number
    assert e.code == "invalid_spec"


@pytest.mark.parametrize("data,field", [
    ({"problem": "rosenbrock"}, "method"),
    ({"method": "nelder", "problem": "rosenbrock"}, "method"),
    ({"method": "de"}, "problem"),
    ({**DE, "problem": "nope"}, "problem"),
    ({**DE, "bounds": None}, "bounds"),
    ({**DE, "bounds": [[-2, None], [0, 1]]}, "bounds[0]"),
    ({**DE, "bounds": [[-2, math.inf], [0, 1]]}, "bounds[0]"),
    ({**DE, "bounds": [[-2, 2]]}, "bounds"),
    ({**DE, "bounds": "wide"}, "bounds"),
    ({**DE, "bounds": [[-2, 2], [0]]}, "bounds[1]"),
    ({**DE, "x0": [0, 3]}, "x0[1]"),
    ({**DE, "x0": [0, 1, 2]}, "x0"),
    ({**DE, "dim": 1, "bounds": [[0, 1]]}, "dim"),
    ({**DE, "problem": "beale", "dim": 3, "bounds": [[0, 1]] * 3}, "dim"),
    ({**DE, "dim": True}, "dim"),
    ({**DE, "params": {"b": -1}}, "params.b"),
    ({**DE, "params": [1]}, "params"),
    ({**DE, "options": {"seed": 1, "rng": 2}}, "options.rng"),
    ({**DE, "options": {"seed": 1.5}}, "options.seed"),
    ({**DE, "options": {"mutation": [0.5]}}, "options.mutation"),
    ({**DE, "options": {"mutation": 2}}, "options.mutation"),
    ({**DE, "options": {"popsize": 0}}, "options.popsize"),
    ({**DE, "options": {"jac": "analytic"}}, "options.jac"),
    ({**DE, "options": {"strategy": "rand2bin", "popsize": 2}}, "options.strategy"),
    ({**DE, "options": {"maxiter": None}}, "options.maxiter"),
    ({**DE, "options": "fast"}, "options"),
    ({**LB, "x0": None}, "x0"),
    ({**LB, "x0": [0, math.nan]}, "x0[1]"),
    ({**LB, "x0": [0, 1e400]}, "x0[1]"),
    ({**LB, "bounds": [[1, 0], [None, None]]}, "bounds[0]"),
    ({**LB, "options": {"jac": "cs"}}, "options.jac"),
    ({**LB, "options": {"eps": 0}}, "options.eps"),
    ({**LB, "options": {"maxls": 0}}, "options.maxls"),
    ({**LB, "options": {"popsize": 5}}, "options.popsize"),
    ("not a spec", "spec"),
])
def test_each_error_names_its_field(data, field):
    e = errors_of(data)
    assert field in e.errors, e.errors
    assert all(isinstance(m, str) and m for msgs in e.errors.values() for m in msgs)


def test_lbfgsb_accepts_open_and_omitted_bounds_and_x0_outside_them():
    s = validate_spec({**LB, "bounds": [[None, 0.1], [-1, None]], "x0": [3, -4]})
    assert s.bounds == ((None, 0.1), (-1.0, None))  # scipy clips x0 into the box


def test_limits():
    e = errors_of({**DE, "options": {"maxiter": 20001}})
    assert e.code == "limit" and "options.maxiter" in e.errors
    e = errors_of({**DE, "options": {"popsize": 101}})
    assert e.code == "limit"
    e = errors_of({"method": "de", "problem": "sphere", "dim": 201,
                   "bounds": [[-1, 1]] * 201})
    assert e.code == "limit" and "dim" in e.errors
    e = errors_of({"method": "de", "problem": "sphere", "dim": 200, "bounds": [[-1, 1]] * 200,
                   "options": {"popsize": 100, "maxiter": 20000}})
    assert e.code == "limit" and "evaluations" in e.message
    # a limit error mixed with a real mistake is invalid_spec (fix the spec first)
    assert errors_of({**DE, "options": {"popsize": 101, "tol": -1}}).code == "invalid_spec"
    small = Limits(max_dim=5, max_maxiter=10, max_popsize=3, max_evaluations=1000)
    assert errors_of({**DE, "options": {"maxiter": 11}}, small).code == "limit"
    assert errors_of({**LB, "options": {"maxfun": 5000}}, small).code == "limit"


def test_default_limits_admit_the_protocol_minimums():
    validate_spec({"method": "de", "problem": "sphere", "dim": 200, "bounds": [[-1, 1]] * 200,
                   "options": {"maxiter": 10, "popsize": 1}})
    validate_spec({**DE, "options": {"maxiter": 20000, "popsize": 100, "polish": False}})
    validate_spec({"method": "de", "problem": "sphere", "dim": 2, "bounds": [[-1, 1]] * 2,
                   "options": {"maxiter": 20000, "popsize": 100}})  # ~4e6 evaluations
    validate_spec({**LB, "options": {"maxfun": 9_000_000, "maxiter": 20000}})


def test_method_catalogue_lists_every_option_with_its_default():
    cat = {m["name"]: m for m in method_catalogue()}
    assert set(cat) == set(METHODS) == {"de", "lbfgsb"}
    de_opts = {o["name"]: o for o in cat["de"]["options"]}
    assert de_opts["strategy"]["default"] == "best1bin" and "best2exp" in de_opts["strategy"]["choices"]
    assert "workers" not in de_opts


@st.composite
def good_specs(draw):
    name = draw(st.sampled_from(sorted(PROBLEMS)))
    p = PROBLEMS[name]
    dim = p.min_dim if p.max_dim == p.min_dim else draw(st.integers(p.min_dim, 6))
    bounds = p.default_bounds(dim)
    if draw(st.booleans()):
        return {"method": "de", "problem": name, "dim": dim, "bounds": bounds,
                "options": {"maxiter": draw(st.integers(0, 100)), "seed": draw(st.integers(0, 9))},
                "params": {q.name: draw(st.floats(q.min, q.max)) for q in p.params}}
    return {"method": "lbfgsb", "problem": name, "dim": dim,
            "x0": [draw(st.floats(-1e6, 1e6)) for _ in range(dim)],
            "bounds": draw(st.sampled_from([None, bounds, [[None, None]] * dim]))}


@settings(max_examples=60, deadline=None)
@given(good_specs())
def test_valid_specs_round_trip(data):
    s = validate_spec(data)
    assert validate_spec(s.to_dict()) == s


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(
                        st.sampled_from(["method", "problem", "dim", "bounds", "x0", "options",
                                         "params", "maxiter", "a", "seed"]), c, max_size=4),
                    max_leaves=12))
def test_garbage_never_crashes(data):
    try:
        validate_spec(data)
    except SpecError as e:
        assert e.errors and e.message
