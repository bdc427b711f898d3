"""validate_spec: one path for socket, form and CLI; every error keyed by field, in words."""
import json
import math

import numpy as np

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runs.optim import (METHODS, PROBLEMS, UNLIMITED, Limits, SpecError, method_catalogue,
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
    # scipy's own defaults, read from the function minimize(method="L-BFGS-B") calls
    import inspect

    from scipy.optimize._lbfgsb_py import _minimize_lbfgsb
    scipy_defaults = {k: v.default for k, v in inspect.signature(_minimize_lbfgsb).parameters.items()}
    assert s.options == {**{k: scipy_defaults[k] for k in (
        "maxcor", "ftol", "gtol", "eps", "maxfun", "maxiter", "maxls", "finite_diff_rel_step")},
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
    assert e.errors == {"bounds[1]": ["lower bound 5 must not be greater than upper bound 2"]}
    assert "bounds[1]" in e.message


def test_all_errors_are_collected():
    e = errors_of({"method": "de", "problem": "rosenbrock", "dim": 3,
                   "bounds": [[0, 1], [1, 0]], "x0": [0, "a"], "params": {"a": True, "z": 1},
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
    ({**LB, "problem": "ackley", "options": {"jac": "cs"}}, "options.jac"),  # abs: no complex step
    ({**LB, "options": {"jac": "5-point"}}, "options.jac"),
    ({**LB, "options": {"finite_diff_rel_step": 0}}, "options.finite_diff_rel_step"),
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
    assert set(cat) == set(METHODS) >= {"de", "lbfgsb", "nelder-mead", "trust-exact"}
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


# -- hostile input: huge integers, bounded echoes, specs scipy itself would refuse ------------
HUGE = 10 ** 400  # an integer JSON may carry (runs.optim.jsoninput returns it as an int)


@pytest.mark.parametrize("data, field", [
    ({**DE, "dim": HUGE}, "dim"),
    ({**DE, "params": {"a": HUGE}}, "params.a"),
    ({**DE, "params": {"b": -HUGE}}, "params.b"),
    ({**DE, "bounds": [[-HUGE, 2], [-2, 2]]}, "bounds[0]"),
    ({**LB, "x0": [HUGE, 0.5]}, "x0[0]"),
    *[({**DE, "options": {name: HUGE}}, f"options.{name}")
      for name in ("maxiter", "popsize", "seed", "tol", "atol", "mutation", "recombination")],
    ({**DE, "options": {"mutation": [0.5, HUGE]}}, "options.mutation[1]"),
    *[({**LB, "options": {name: HUGE}}, f"options.{name}")
      for name in ("maxcor", "maxiter", "maxls", "ftol", "gtol", "eps")],
])
def test_a_huge_integer_is_refused_in_words_at_its_field(data, field):
    e = errors_of(data)
    assert field in e.errors
    words = " ".join(e.errors[field])
    assert "401 digits" in words or "more than the limit" in words, words
    assert len(e.message) < 400 and str(HUGE)[:80] not in e.message


def test_a_huge_maxfun_is_what_scipy_runs():
    # scipy compares nfev with maxfun in Python: any size runs, and the iteration cap decides
    s = validate_spec({**LB, "options": {"maxfun": HUGE, "maxiter": 50}})
    from runs.optim.oracle import assert_matches_scipy

    assert_matches_scipy(s)


def test_seeds_are_what_scipy_takes():
    from scipy.optimize import differential_evolution

    with pytest.raises(ValueError):  # scipy's own answer to a legacy seed of 2**32
        differential_evolution(lambda x: x @ x, [(-1, 1)], seed=2 ** 32, maxiter=1)
    e = errors_of({**DE, "options": {"seed": 2 ** 32}})
    assert "at most 4,294,967,295" in e.errors["options.seed"][0]
    assert validate_spec({**DE, "options": {"seed": 2 ** 32 - 1}}).options["seed"] == 2 ** 32 - 1
    # rng= is numpy's default_rng: any non-negative integer, and scipy runs it
    from runs.optim.oracle import assert_matches_scipy

    for rng in (2 ** 32, 2 ** 64, 2 ** 200):
        s = validate_spec({**DE, "options": {"rng": rng, "maxiter": 5}})
        assert s.options["rng"] == rng
        assert_matches_scipy(s)


def test_maxls_beyond_a_c_int_is_refused_as_scipy_refuses_it():
    from scipy.optimize import minimize

    with pytest.raises(OverflowError):
        minimize(lambda x: x @ x, [1.0, 1.0], method="L-BFGS-B", options={"maxls": 2 ** 31})
    e = errors_of({**LB, "options": {"maxls": 2 ** 31}})
    assert e.code == "invalid_spec" and "32-bit" in e.errors["options.maxls"][0]
    validate_spec({**LB, "options": {"maxls": 2 ** 31 - 1}}, UNLIMITED)


def test_maxcor_is_capped():
    e = errors_of({**LB, "options": {"maxcor": 10 ** 9}})
    assert e.code == "limit" and "limit of 500" in e.errors["options.maxcor"][0]
    assert errors_of({**LB, "options": {"maxcor": 501}}).code == "limit"
    assert errors_of({**LB, "options": {"maxcor": 11}}, Limits(max_maxcor=10)).code == "limit"
    validate_spec({**LB, "dim": 200, "x0": [0.5] * 200, "options": {"maxcor": 500}})


def test_levy_far_out_runs_as_scipy_runs_it():
    # math.sin(inf) raised inside the gradient at x0 = 1e308; scipy's own loop then ends ABNORMAL
    from runs.optim.oracle import assert_matches_scipy

    steps, result = assert_matches_scipy(validate_spec(
        {"method": "lbfgsb", "problem": "levy", "x0": [1e308, 1e308]}))
    assert not result.success


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(PROBLEMS)), st.data())
def test_no_objective_or_gradient_raises_at_any_finite_point(name, data):
    p = PROBLEMS[name]
    dim = p.min_dim if p.max_dim == p.min_dim else data.draw(st.integers(p.min_dim, 5))
    x = np.array(data.draw(st.lists(st.floats(allow_nan=False, allow_infinity=False),
                                    min_size=dim, max_size=dim)))
    with np.errstate(all="ignore"):
        f = p.objective()(x)
        g = None if p.gradient() is None else p.gradient()(x)
    assert np.ndim(f) == 0 and (g is None or np.shape(g) == (dim,))


def test_a_huge_echo_gives_a_small_error():
    e = errors_of({"method": "x" * 600_000, "problem": "sphere", "bounds": [[-1, 1]] * 2})
    assert len(e.message) < 500 and "600,002 characters" in e.errors["method"][0]
    e = errors_of({"method": "de", "problem": "sphere", "dim": 2, "bounds": [[3, 1]] * 20_000})
    assert len(json.dumps(e.errors)) < 10_000 and "20,000" in e.message
    assert "…" in e.errors and "more field" in e.errors["…"][0]
    e = errors_of({"method": "de", "problem": "sphere", ("k" * 10 ** 5): 1, "bounds": [[-1, 1]] * 2})
    assert len(json.dumps(e.errors)) < 2_000


# -- checkpoint size: estimated from the spec, checked against what the steppers write -------
CHECKPOINT_SPECS = [
    *[{"method": "de", "problem": "rastrigin", "dim": d, "bounds": [[-5, 5]] * d,
       "options": {"maxiter": 3, "popsize": p, "init": i, "seed": 1, **extra}}
      for d in (1, 2, 7, 30) for p in (1, 15) for i in ("latinhypercube", "sobol")
      for extra in ({}, {"rng": 2 ** 200, "seed": None})],
    *[{"method": "lbfgsb", "problem": "rosenbrock", "dim": d, "x0": [0.3] * d,
       "bounds": b, "options": {"maxcor": m, "maxiter": 5}}
      for d in (2, 40) for m in (1, 10, 300) for b in (None, [[-2, 2]] * d)],
]


@pytest.mark.parametrize("data", CHECKPOINT_SPECS, ids=lambda d: f"{d['method']}-{d['dim']}")
def test_the_checkpoint_estimate_bounds_every_real_checkpoint(data):
    from runs.optim import encode_checkpoint, make_stepper
    from runs.optim.spec import estimate_checkpoint_bytes

    spec = validate_spec(data)
    estimate = estimate_checkpoint_bytes(spec)
    stepper = make_stepper(spec)
    sizes = [len(encode_checkpoint(stepper.checkpoint()))]
    for _ in stepper:
        sizes.append(len(encode_checkpoint(stepper.checkpoint())))
    assert stepper.done
    # never under, and close above: off by a few kilobytes of headers at most
    assert max(sizes) <= estimate <= max(sizes) * 1.01 + 8_000, (estimate, max(sizes))


def test_a_spec_whose_checkpoint_is_too_big_is_a_limit_naming_what_to_lower():
    small = Limits(max_checkpoint_bytes=2 ** 20)
    e = errors_of({**LB, "dim": 2, "options": {"maxcor": 300}}, small)  # ~7.6 MiB of work array
    assert e.code == "limit" and "lower maxcor or dim" in e.errors["options.maxcor"][0]
    assert "1.0 MiB" in e.errors["options.maxcor"][0]
    e = errors_of({"method": "de", "problem": "sphere", "dim": 40, "bounds": [[-1, 1]] * 40,
                   "options": {"popsize": 100, "maxiter": 1}}, small)
    assert e.code == "limit" and "lower popsize or dim" in e.errors["options.popsize"][0]
    # the default admits the PROTOCOL's largest DE population: dim 200 x popsize 100
    validate_spec({"method": "de", "problem": "sphere", "dim": 200, "bounds": [[-1, 1]] * 200,
                   "options": {"popsize": 100, "maxiter": 1, "polish": False}})


# -- the global methods' nested options: minimizer_kwargs, shgo's options ---------------------
BH = {"method": "basinhopping", "problem": "rosenbrock", "x0": [0.5, 0.5]}
DA = {"method": "dual_annealing", "problem": "rosenbrock", "bounds": [[-2, 2], [-2, 2]]}
SH = {"method": "shgo", "problem": "rosenbrock", "bounds": [[-2, 2], [-2, 2]]}
MK = "options.minimizer_kwargs"


def test_minimizer_kwargs_are_normalised_to_scipys_call():
    s = validate_spec({**BH, "options": {"minimizer_kwargs": {
        "method": "L-BFGS-B", "jac": "analytic", "bounds": [[-1, 1], [None, 2]],
        "options": {"maxiter": 5.0, "finite_diff_rel_step": None}}}})
    # the name lower case, the integer whole, a null left to scipy's default
    assert s.options["minimizer_kwargs"] == {"method": "l-bfgs-b", "jac": "analytic",
                                             "bounds": [[-1.0, 1.0], [None, 2.0]], "options": {"maxiter": 5}}
    assert validate_spec(s.to_dict()) == s and hash(validate_spec(s.to_dict())) == hash(s)
    # no method: minimize's own choice, written out (the same call)
    assert validate_spec({**BH, "options": {"minimizer_kwargs": {"options": {"gtol": 1e-6}}}}).options[
        "minimizer_kwargs"] == {"method": "bfgs", "options": {"gtol": 1e-6}}
    assert validate_spec({**DA, "options": {"minimizer_kwargs": {"bounds": [[-2, 2]] * 2}}}).options[
        "minimizer_kwargs"]["method"] == "l-bfgs-b"
    assert validate_spec({**SH, "options": {"minimizer_kwargs": {"jac": "analytic"}}}).options[
        "minimizer_kwargs"] == {"method": "slsqp", "jac": "analytic"}
    assert "minimizer_kwargs" not in validate_spec({**DA, "options": {"minimizer_kwargs": {}}}).options
    s = validate_spec({**SH, "options": {"options": {"maxiter": 3, "symmetry": True, "local_iter": None}}})
    assert s.options["options"] == {"maxiter": 3, "symmetry": True}
    assert "options" not in validate_spec({**SH, "options": {"options": {}}}).options


def test_a_spec_without_nested_options_keeps_its_bytes():
    # specs stored (and checkpointed) before the nested options existed re-validate to themselves
    for base in (BH, DA, SH):
        s = validate_spec(base)
        assert "minimizer_kwargs" not in s.options and "options" not in s.options
        nulls = {"minimizer_kwargs": None, **({"options": None} if base is SH else {})}
        assert validate_spec({**base, "options": nulls}) == s
        assert validate_spec({**base, "options": {"minimizer_kwargs": {"method": "bfgs"}}}) != s


@pytest.mark.parametrize("data, field, words", [
    ({**BH, "options": {"minimizer_kwargs": "bfgs"}}, MK, "must be an object"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "simplex"}}}, f"{MK}.method", "must be one of"),
    ({**BH, "options": {"minimizer_kwargs": {"method": 3}}}, f"{MK}.method", "must be one of"),
    ({**BH, "options": {"minimizer_kwargs": {"tol": 1e-3}}}, f"{MK}.tol", "unknown key"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "bfgs", "options": {"xatol": 1}}}},
     f"{MK}.options.xatol", "unknown option for BFGS"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "bfgs", "options": {"gtol": "small"}}}},
     f"{MK}.options.gtol", "must be a number"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "bfgs", "options": {"gtol": math.nan}}}},
     f"{MK}.options.gtol", "finite"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "bfgs", "options": {"gtol": 1e400}}}},
     f"{MK}.options.gtol", "finite"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "bfgs", "options": {"maxiter": {"deeper": 1}}}}},
     f"{MK}.options.maxiter", "whole number"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "bfgs", "options": [1, 2]}}}, f"{MK}.options", "object"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "bfgs", "options": {"maxiter": 10 ** 400}}}},
     f"{MK}.options.maxiter", "more than the limit"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "bfgs", "options": {"jac": "analytic"}}}},
     f"{MK}.options.jac", "beside options"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "bfgs", "options": {"c1": 0.9, "c2": 0.5}}}},
     f"{MK}.options.c2", "greater than c1"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "nelder-mead", "jac": "analytic"}}}, f"{MK}.jac", "no gradient"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "bfgs", "options": {"c2": 1e-8}}}},  # below c1's default
     f"{MK}.options.c2", "greater than c1"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "bfgs", "jac": "4-point"}}}, f"{MK}.jac", "must be one of"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "newton-cg"}}}, f"{MK}.jac", 'needs the gradient'),
    ({**BH, "options": {"minimizer_kwargs": {"method": "trust-exact", "jac": "analytic"}}}, f"{MK}.hess",
     "needs a Hessian"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "bfgs", "hess": "analytic"}}}, f"{MK}.hess", "no Hessian"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "trust-constr", "jac": "2-point", "hess": "2-point"}}},
     f"{MK}.hess", "differences of differences"),
    ({**BH, "problem": "ackley", "options": {"minimizer_kwargs": {"method": "dogleg", "jac": "analytic",
                                                                  "hess": "analytic"}}},
     f"{MK}.hess", "no analytic Hessian"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "bfgs", "bounds": [[-1, 1]] * 2}}}, f"{MK}.bounds",
     "takes no bounds"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "tnc", "bounds": [[-1, 1]]}}}, f"{MK}.bounds", "dim is 2"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "tnc", "bounds": [[1, -1], [0, 1]]}}}, f"{MK}.bounds[0]",
     "must not be greater"),
    ({**BH, "options": {"minimizer_kwargs": {"method": "tnc", "bounds": [[0, "1"], [0, 1]]}}}, f"{MK}.bounds[0]",
     "finite number or null"),
    ({**SH, "options": {"minimizer_kwargs": {"method": "l-bfgs-b", "options": {"maxiter": 3}}}},
     f"{MK}.options.maxiter", "shgo drops"),
    ({**SH, "options": {"minimizer_kwargs": {"method": "l-bfgs-b", "bounds": [[0, 1]] * 2}}}, f"{MK}.bounds",
     "sampling cell"),
    ({**SH, "problem": "rosenbrock_disk", "bounds": [[-1.5, 1.5]] * 2,
      "options": {"minimizer_kwargs": {"method": "bfgs"}}}, f"{MK}.method", "constraints"),
    ({**SH, "options": {"options": 5}}, "options.options", "must be an object"),
    ({**SH, "options": {"options": {"maxtime": 1}}}, "options.options.maxtime", "stop.seconds"[5:]),
    ({**SH, "options": {"options": {"disp": True}}}, "options.options.disp", "unknown key"),
    ({**SH, "options": {"options": {"maxiter": 0}}}, "options.options.maxiter", "at least 1"),
    ({**SH, "options": {"options": {"maxiter": 10 ** 9}}}, "options.options.maxiter", "more than the limit"),
    ({**SH, "options": {"options": {"maxfev": 10 ** 12}}}, "options.options.maxfev", "more than the limit"),
    ({**SH, "options": {"options": {"f_min": math.inf, "maxiter": 2}}}, "options.options.f_min", "finite"),
    ({**SH, "options": {"options": {"f_min": 0}}}, "options.options.f_min", "needs maxiter"),
    ({**SH, "options": {"options": {"f_tol": 1e-3}}}, "options.options.f_tol", "only with f_min"),
    ({**SH, "options": {"options": {"symmetry": [0, 0]}}}, "options.options.symmetry", "true or false"),
    ({**SH, "options": {"options": {"minimize_every_iter": None}}}, "options.options.minimize_every_iter",
     "must not be null"),
])
def test_nested_errors_are_keyed_in_words(data, field, words):
    e = errors_of(data)
    assert field in e.errors, e.errors
    assert words in " ".join(e.errors[field]), e.errors[field]
    assert len(e.message) < 400


def test_the_catalogue_lists_the_nested_options():
    cat = {m["name"]: {o["name"]: o for o in m["options"]} for m in method_catalogue()}
    for m in ("basinhopping", "dual_annealing", "shgo"):
        mk = cat[m]["minimizer_kwargs"]
        assert mk["type"] == "minimizer_kwargs" and mk["default"] is None and mk["description"]
        keys = {k["name"]: k for k in mk["keys"]}
        assert set(keys) == {"method", "jac", "hess", "options"} | ({"bounds"} if m != "shgo" else set())
        assert all(k["description"] and "type" in k and "default" in k for k in keys.values())
        locals_ = {x["name"]: x for x in mk["local_methods"]}
        assert len(locals_) == 15 and all(x["catalogue"] in cat for x in locals_.values())
        # a local method's options are those of its own catalogue entry (shgo: the few it passes on)
        for x in locals_.values():
            own = {n for n in cat[x["catalogue"]] if n not in ("jac", "hess")}
            assert (x["options"] is None) == (m != "shgo") and set(x["options"] or ()) <= own
    assert {x["name"]: x["options"] for x in cat["shgo"]["minimizer_kwargs"]["local_methods"]}["slsqp"] == ["ftol"]
    shgo_keys = {k["name"]: k for k in cat["shgo"]["options"]["keys"]}
    assert set(shgo_keys) == {"maxiter", "maxfev", "maxev", "f_min", "f_tol", "minhgrd", "symmetry",
                              "minimize_every_iter", "local_iter", "infty_constraints"}
    assert shgo_keys["f_tol"]["default"] == 1e-4 and shgo_keys["minimize_every_iter"]["default"] is True
    json.dumps(method_catalogue(), allow_nan=False)  # JSON as it is served


_LEAF = st.none() | st.booleans() | st.floats() | st.integers(-2 ** 70, 2 ** 70) | st.text(max_size=6)
_NESTED_KEYS = st.sampled_from(["method", "jac", "hess", "bounds", "options", "maxiter", "gtol", "ftol",
                                "f_min", "symmetry", "xatol", "c1"])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([BH, DA, SH]), st.sampled_from(["minimizer_kwargs", "options"]),
       st.recursive(_LEAF, lambda c: st.lists(c, max_size=3) | st.dictionaries(_NESTED_KEYS, c, max_size=4),
                    max_leaves=14))
def test_nested_garbage_never_crashes(base, key, value):
    try:
        s = validate_spec({**base, "options": {key: value}})
    except SpecError as e:
        assert e.errors and e.message and all(isinstance(v, list) and v for v in e.errors.values())
        return
    assert validate_spec(s.to_dict()) == s
