"""Constrained problems: the literature's optima vs converged scipy runs, derivatives vs finite
differences, and the steppers == scipy's own minimize / differential_evolution called with the
constraints as a scipy user writes them (scipy is the oracle)."""
import dataclasses
import json

import numpy as np
import pytest
from scipy.optimize import NonlinearConstraint, differential_evolution, minimize

from runs.optim import (decode_checkpoint, encode_checkpoint, get_problem, make_stepper,
                        problem_catalogue, restore_stepper, validate_spec)
from runs.optim.minimize import CONSTRAINED, METHOD_NAMES, MinimizeStepper, scipy_constraints
from runs.optim.problems import CONSTRAINED_PROBLEMS, FEASIBILITY_TOL, PROBLEMS
from runs.optim.spec import Spec

pytestmark = [pytest.mark.filterwarnings("ignore"),  # scipy's OptimizeWarning/UserWarning
              pytest.mark.usefixtures("no_thread_left")]  # every scipy thread ends with its test

NAMES = sorted(CONSTRAINED_PROBLEMS)


def spec_for(method, problem, x0, **options):
    p = get_problem(problem)
    return Spec(method=method, problem=problem, params=p.defaults(), dim=p.default_dim,
                bounds=tuple(tuple(b) for b in p.default_bounds()),
                x0=tuple(float(v) for v in x0), options=options)


def user_constraints(method, p, params=None):
    """The constraints as a scipy user passes them, written out from the problem's data."""
    out = []
    for c in p.constraints(params):
        if method == "slsqp":
            out.append({"type": c.kind, "fun": c.fun, "jac": c.jac})
        elif method == "cobyla":
            out.append({"type": c.kind, "fun": c.fun})
        else:
            out.append(NonlinearConstraint(c.fun, 0, np.inf if c.kind == "ineq" else 0, jac=c.jac))
    return out




# ---- the catalogue ---------------------------------------------------------------------------
def test_catalogue_lists_constraints_and_keeps_the_old_problems_unconstrained():
    assert not set(PROBLEMS) & set(CONSTRAINED_PROBLEMS)
    cat = {e["name"]: e for e in json.loads(json.dumps(problem_catalogue(), allow_nan=False))}
    assert set(cat) == set(PROBLEMS) | set(CONSTRAINED_PROBLEMS)
    for name in PROBLEMS:
        assert cat[name]["constraints"] == [] and not get_problem(name).has_constraints
        assert get_problem(name).violation() is None
    for name in NAMES:
        p = get_problem(name)
        assert name == name.lower() and p.has_constraints and p.known_minimum() is not None
        cons = cat[name]["constraints"]
        assert cons and all(set(c) == {"kind", "formula", "latex"} for c in cons)
        assert all(c["kind"] in ("ineq", "eq") and c["formula"] and c["latex"] for c in cons)
        assert len(cat[name]["default_bounds"]) == p.default_dim == 2
    assert {c.kind for n in NAMES for c in get_problem(n).constraints()} == {"ineq", "eq"}


@pytest.mark.parametrize("name", NAMES)
def test_known_optimum_is_what_a_converged_slsqp_run_finds(name):
    p = get_problem(name)
    km = p.known_minimum()
    xs, fs = np.array(km["x"]), km["f"]
    f, g = p.objective(), p.gradient()
    lo, hi = np.array(p.default_bounds()).T
    assert np.all((lo <= xs) & (xs <= hi))
    assert p.violation()(xs) <= 1e-6  # the literature's digits are rounded
    assert f(xs) == pytest.approx(fs, abs=1e-6)
    for shift in ([0.05, 0.05], [-0.04, 0.03]):
        x0 = np.clip(xs + shift, lo, hi)
        res = minimize(f, x0, jac=g, method="SLSQP", bounds=p.default_bounds(),
                       constraints=user_constraints("slsqp", p),
                       options={"ftol": 1e-14, "maxiter": 500})
        assert res.success, res.message
        assert np.abs(res.x - xs).max() < 1e-5, (res.x, xs)
        assert res.fun == pytest.approx(fs, rel=1e-7, abs=1e-9)
        assert p.violation()(res.x) <= FEASIBILITY_TOL
    # trust-constr, another algorithm, agrees too, as closely as its barrier lets it (an
    # interior-point method stops a barrier parameter ~1e-6 away from active constraints)
    res = minimize(f, np.clip(xs + 0.05, lo, hi), jac=g, method="trust-constr",
                   bounds=p.default_bounds(), constraints=user_constraints("trust-constr", p),
                   options={"gtol": 1e-10, "xtol": 1e-12, "maxiter": 1000})
    assert np.abs(res.x - xs).max() < 1e-3 and res.fun == pytest.approx(fs, rel=1e-5, abs=1e-5)


def test_known_optimum_follows_the_coefficients():
    disk, sim = get_problem("rosenbrock_disk"), get_problem("simionescu")
    assert disk.known_minimum({"s": 1.0}) is None  # (1, 1) is cut off
    km = sim.known_minimum({"r_T": 0.8, "r_S": 0.1})
    p = {"r_T": 0.8, "r_S": 0.1}
    res = minimize(sim.objective(p), [0.5, -0.7], jac=sim.gradient(p), method="SLSQP",
                   bounds=sim.default_bounds(), constraints=user_constraints("slsqp", sim, p),
                   options={"ftol": 1e-14, "maxiter": 500})
    assert np.abs(res.x - km["x"]).max() < 1e-6 and res.fun == pytest.approx(km["f"], rel=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_and_jacobians_match_finite_differences(name):
    p = get_problem(name)
    rng = np.random.default_rng(3)
    lo, hi = np.array(p.default_bounds()).T
    f, g, cons = p.objective(), p.gradient(), p.constraints()

    def central(fun, x):
        h = 1e-6 * np.maximum(1.0, np.abs(x))
        return np.array([(fun(x + h[i] * e) - fun(x - h[i] * e)) / (2 * h[i])
                         for i, e in enumerate(np.eye(x.size))])
    for _ in range(20):
        x = rng.uniform(lo, hi)
        for fun, jac in [(f, g)] + [(c.fun, c.jac) for c in cons]:
            ga = jac(x)
            assert ga.shape == (2,)
            scale = max(1.0, np.abs(ga).max())
            assert np.abs(ga - central(fun, x)).max() / scale < 1e-5, (name, x)


@pytest.mark.parametrize("name", NAMES)
def test_constraints_evaluate_on_a_whole_grid_as_point_by_point(name):
    p = get_problem(name)
    (x0, x1), (y0, y1) = p.default_bounds()
    X, Y = np.meshgrid(np.linspace(x0, x1, 7), np.linspace(y0, y1, 5))
    grid = np.array([X, Y])
    viol = p.violation()
    for c in p.constraints():
        vals = c.fun(grid)
        assert vals.shape == X.shape
        for j in range(X.shape[0]):
            for i in range(X.shape[1]):
                pt = np.array([X[j, i], Y[j, i]])
                assert vals[j, i] == c.fun(pt)
    pts = np.array([[viol(np.array([X[j, i], Y[j, i]])) for i in range(X.shape[1])]
                    for j in range(X.shape[0])])
    assert np.array_equal(viol(grid), pts) and np.all(pts >= 0)


def test_violation_is_zero_inside_and_the_distance_outside():
    disk = get_problem("rosenbrock_disk")
    v = disk.violation()
    assert v(np.array([0.5, 0.5])) == 0.0 and v(np.array([2.0, 0.0])) == 2.0
    hs6 = get_problem("hs006").violation()
    assert hs6(np.array([2.0, 4.0])) == 0.0 and hs6(np.array([0.0, -1.0])) == 10.0


# ---- minimize with constraints == scipy ----------------------------------------------------
OPTIONS = {
    "slsqp": [{"jac": "analytic", "maxiter": 60}, {"ftol": 1e-10, "maxiter": 40}],
    "cobyla": [{"maxiter": 60}, {"rhobeg": 0.3, "tol": 1e-8, "maxiter": 40}],
    "cobyqa": [{"maxfev": 40}, {"initial_tr_radius": 0.3, "maxfev": 30}],
    "trust-constr": [{"jac": "analytic", "maxiter": 25}, {"jac": "analytic", "hess": "bfgs",
                                                          "maxiter": 15}],
}
CASES = [("rosenbrock_cubic_line", (-1.0, 2.0)), ("townsend", (0.5, 0.3)),
         ("hs021", (-1.0, -1.0)), ("hs007", (2.0, 2.0)), ("mishra_bird", (-4.0, -2.5)),
         ("simionescu", (0.3, -0.9))]


def plain_call(spec, callback=None):
    """minimize for the spec, written out as a scipy user would, independently of minimize.py."""
    from scipy.optimize import BFGS
    p = get_problem(spec.problem)
    o = dict(spec.options)
    jac, hess = o.pop("jac", None), o.pop("hess", None)
    kw = {}
    if jac == "analytic":
        kw["jac"] = p.gradient(spec.params)
    if hess == "bfgs":
        kw["hess"] = BFGS()
    if callback is not None:
        kw["callback"] = callback
    return minimize(p.objective(spec.params), np.array(spec.x0), method=METHOD_NAMES[spec.method],
                    bounds=list(spec.bounds), constraints=user_constraints(spec.method, p),
                    options=o, **kw)


def scipy_iterates(spec):
    its = []

    def cb(intermediate_result):
        its.append((np.copy(intermediate_result.x), intermediate_result.fun))
    return its, plain_call(spec, cb)


def assert_result_equal(r, ref, method):
    assert np.array_equal(r.x, ref.x) and r.fun == ref.fun
    assert r.nit == ref.get("nit", 0) and r.nfev == ref.nfev and r.njev == ref.get("njev", 0)
    assert r.status == ref.status and r.message == ref.message and r.success == ref.success
    ref_jac = ref.get("grad") if method == "trust-constr" else ref.get("jac")
    assert (r.jac is None) == (ref_jac is None)
    if ref_jac is not None:
        assert np.array_equal(r.jac, ref_jac)


@pytest.mark.parametrize("method", sorted(CONSTRAINED))
@pytest.mark.parametrize("k", range(2))
def test_constrained_minimize_equals_scipy(method, k):
    for name, x0 in CASES[k::2]:
        spec = spec_for(method, name, x0, **OPTIONS[method][k])
        s = MinimizeStepper(spec)
        steps = list(s)
        assert_result_equal(s.result, plain_call(spec), method)
        its, ref = scipy_iterates(spec)
        assert_result_equal(s.result, ref, method)
        assert len(steps) == len(its) + 1
        for step, (x, fun) in zip(steps[1:], its):
            assert np.array_equal(step.x, x) and step.fun == fun
        viol = get_problem(name).violation()
        for step in steps:
            v = step.extra["violation"]
            assert v == viol(step.x) >= 0 and step.extra["feasible"] == (v <= FEASIBILITY_TOL)
            assert json.dumps(step.to_dict(), allow_nan=False)


def test_violation_extra_costs_no_evaluation():
    spec = spec_for("slsqp", "hs007", (2.0, 2.0), jac="analytic", maxiter=50)
    s = MinimizeStepper(spec)
    steps = list(s)
    ref = plain_call(spec)
    assert (s.result.nfev, s.result.njev) == (ref.nfev, ref.njev)
    assert not steps[0].extra["feasible"] and steps[-1].extra["feasible"]


def test_scipy_constraints_are_the_forms_scipy_takes():
    sl = scipy_constraints(spec_for("slsqp", "hs006", (0, 0)))
    assert [set(c) for c in sl] == [{"type", "fun", "jac"}] and sl[0]["type"] == "eq"
    assert [set(c) for c in scipy_constraints(spec_for("cobyla", "townsend", (0, 0)))] == [
        {"type", "fun"}]
    for m in ("trust-constr", "cobyqa"):
        (nc,) = scipy_constraints(spec_for(m, "hs006", (0, 0)))
        assert isinstance(nc, NonlinearConstraint) and nc.lb == nc.ub == 0
        a, b = scipy_constraints(spec_for(m, "rosenbrock_cubic_line", (0, 0)))
        assert a.ub == b.ub == np.inf and a.hess is not b.hess
    assert scipy_constraints(spec_for("bfgs", "rosenbrock", (0, 0))) == []


@pytest.mark.parametrize("method", sorted(set(METHOD_NAMES) - CONSTRAINED))
def test_methods_without_constraints_refuse_a_constrained_problem(method):
    spec = Spec(method=method, problem="hs021", params={}, dim=2, bounds=None, x0=(3.0, 1.0),
                options={})
    with pytest.raises(ValueError) as e:
        MinimizeStepper(spec)
    assert method in str(e.value) and "'hs021'" in str(e.value) and "slsqp" in str(e.value)


def comparable(step):
    return (step.seq, step.nit, step.x.tolist(), float(step.fun), step.nfev, step.njev,
            None if step.jac is None else step.jac.tolist(), step.phase, dict(step.extra),
            {k: v.tolist() for k, v in step.bulky.items()})


@pytest.mark.parametrize("method,name,x0,opts", [
    ("slsqp", "hs007", (2.0, 2.0), {"jac": "analytic", "maxiter": 40}),
    ("trust-constr", "townsend", (0.5, 0.3), {"jac": "analytic", "maxiter": 20}),
    ("cobyla", "simionescu", (0.3, -0.9), {"maxiter": 30}),
])
def test_constrained_resume_by_rerun_is_exact(method, name, x0, opts):
    spec = spec_for(method, name, x0, **opts)
    s = MinimizeStepper(spec)
    steps, cps = [], []
    for step in s:
        steps.append(step)
        cps.append(encode_checkpoint(s.checkpoint()))
    n = len(steps)
    assert n >= 4
    for k in (1, n // 2, n - 1):
        r = MinimizeStepper(spec)
        r._restore(decode_checkpoint(cps[k]))
        assert [comparable(x) for x in r] == [comparable(x) for x in steps[k + 1:]]
        assert r.result.to_dict() == s.result.to_dict()


# ---- differential evolution with constraints == scipy ----------------------------------------
def de_spec(name, **options):
    p = get_problem(name)
    # the validator fills DE's options; the problem is swapped in after (it does not know it)
    base = validate_spec({"method": "de", "problem": "rosenbrock", "dim": 2,
                          "bounds": [[-1, 1], [-1, 1]], "options": options})
    return dataclasses.replace(base, problem=name, params=p.defaults(),
                               bounds=tuple(tuple(b) for b in p.default_bounds()))


def scipy_de(spec):
    p = get_problem(spec.problem)
    o = spec.options
    its = []

    def callback(intermediate_result):
        its.append((np.copy(intermediate_result.x), intermediate_result.fun))
    cons = [NonlinearConstraint(c.fun, 0, np.inf if c.kind == "ineq" else 0, jac=c.jac)
            for c in p.constraints(spec.params)]
    res = differential_evolution(
        p.objective(spec.params), [tuple(b) for b in spec.bounds], strategy=o["strategy"],
        maxiter=o["maxiter"], popsize=o["popsize"], tol=o["tol"], atol=o["atol"],
        mutation=tuple(o["mutation"]) if isinstance(o["mutation"], list) else o["mutation"],
        recombination=o["recombination"], seed=o["seed"], polish=o["polish"], init=o["init"],
        updating=o["updating"], constraints=cons, callback=callback)
    return its, res


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name,opts", [
    ("rosenbrock_disk", {"maxiter": 25}),
    ("townsend", {"maxiter": 20, "updating": "deferred"}),
    ("simionescu", {"maxiter": 20, "popsize": 8}),
    ("hs007", {"maxiter": 15, "popsize": 6}),
    ("hs021", {"maxiter": 10, "polish": False}),
])
def test_de_with_constraints_equals_scipy(name, opts, seed):
    spec = de_spec(name, seed=seed, **opts)
    st = make_stepper(spec)
    steps = list(st)
    its, ref = scipy_de(spec)
    r = st.result
    mine = [s for s in steps if s.phase == "iterate"]
    assert len(mine) == len(its)
    for s, (x, fun) in zip(mine, its):
        assert np.array_equal(s.x, x) and s.fun == fun
    assert np.array_equal(r.x, ref.x) and r.fun == ref.fun
    assert (r.nit, r.nfev, r.message, r.success) == (ref.nit, ref.nfev, ref.message, ref.success)
    assert all("violation" in s.extra and "feasible" in s.extra for s in steps)
    last = steps[-1]
    assert last.extra["violation"] == ref.maxcv and last.extra["feasible"] == (ref.maxcv == 0)
    if last.phase == "polish" and last.extra["accepted"]:
        # scipy's DE result keeps trust-constr's `jac` (the constraints' Jacobians); ours is the
        # objective gradient trust-constr ended with, 1-D like every step's jac
        assert isinstance(ref.jac, list) and r.jac.shape == (2,)
    assert json.dumps([s.to_full_dict() for s in steps], allow_nan=False)


def test_de_that_finds_no_feasible_point_fails_in_scipys_words():
    spec = de_spec("hs007", seed=1, maxiter=3, popsize=3, polish=False)
    st = make_stepper(spec)
    steps = list(st)
    _, ref = scipy_de(spec)
    assert ref.maxcv > 0 and not ref.success
    assert st.result.message == ref.message and not st.result.success
    assert "violates the constraints" in st.result.reason
    assert not steps[-1].extra["feasible"] and steps[-1].extra["violation"] == ref.maxcv


@pytest.mark.parametrize("name", ["townsend", "hs007"])
def test_de_with_constraints_resumes_exactly_from_a_checkpoint(name):
    spec = de_spec(name, seed=4, maxiter=12, popsize=6)
    full = make_stepper(spec)
    ref = [s.to_full_dict() for s in full]
    for k in (1, 5, len(ref) - 1):
        a = make_stepper(spec)
        head = [next(a).to_full_dict() for _ in range(k)]
        b = restore_stepper(spec, encode_checkpoint(a.checkpoint()))
        tail = [s.to_full_dict() for s in b]
        strip = [{kk: v for kk, v in d.items() if kk != "elapsed"} for d in head + tail]
        assert strip == [{kk: v for kk, v in d.items() if kk != "elapsed"} for d in ref]
        assert b.result.to_dict() == full.result.to_dict()
