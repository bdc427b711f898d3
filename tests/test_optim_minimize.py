"""MinimizeStepper == scipy.optimize.minimize for every method, bitwise (scipy is the oracle);
exact resume by deterministic re-run; stop; thread hygiene; exceptions; analytic Hessians."""
import gc
import inspect
import itertools
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import BFGS, SR1, minimize

from runs.optim import PROBLEMS as CATALOGUE
from runs.optim import decode_checkpoint, encode_checkpoint, get_problem
from runs.optim.hessians import HESSIANS, hessian
from runs.optim.minimize import (BOUNDED, METHOD_NAMES, TRIALS_CAP, TRUST_REGION, USES_HESS,
                                 USES_JAC, MinimizeStepper, _current_trust_radius)
from runs.optim.spec import Spec

from tests.resume_checks import assert_resumes_exactly, checkpoint_of_a_stop, comparable

pytestmark = [pytest.mark.filterwarnings("ignore"),  # scipy's OptimizeWarning/RuntimeWarning
              pytest.mark.usefixtures("no_thread_left")]  # every scipy thread ends with its test

METHODS = list(METHOD_NAMES)  # the 14 of the brief, and l-bfgs-b
JAC_REQUIRED = {"newton-cg", "dogleg", "trust-ncg", "trust-krylov", "trust-exact"}

# two option sets per method, scipy's own names; budgets small to keep the file fast
OPTIONS = {
    "nelder-mead": [{"maxiter": 150}, {"xatol": 1e-6, "fatol": 1e-6, "adaptive": True, "maxiter": 100}],
    "powell": [{"maxiter": 20}, {"xtol": 1e-6, "ftol": 1e-9, "maxiter": 10}],
    "cg": [{"maxiter": 80}, {"gtol": 1e-7, "norm": 2, "maxiter": 40}],
    "bfgs": [{"maxiter": 80}, {"gtol": 1e-8, "xrtol": 1e-12, "maxiter": 40}],
    "newton-cg": [{"maxiter": 40}, {"xtol": 1e-10, "maxiter": 20}],
    "l-bfgs-b": [{"maxiter": 60}, {"maxcor": 4, "ftol": 1e-13, "maxiter": 40}],
    "tnc": [{"maxfun": 80}, {"maxfun": 50, "ftol": 1e-10, "eta": 0.5}],
    "cobyla": [{"maxiter": 50}, {"rhobeg": 0.5, "tol": 1e-7, "maxiter": 35}],
    "cobyqa": [{"maxfev": 40}, {"initial_tr_radius": 0.5, "final_tr_radius": 1e-8, "maxfev": 30}],
    "slsqp": [{"maxiter": 60}, {"ftol": 1e-11, "maxiter": 30}],
    "trust-constr": [{"maxiter": 20}, {"gtol": 1e-10, "xtol": 1e-10, "initial_tr_radius": 0.5,
                                       "maxiter": 12}],
    "dogleg": [{"maxiter": 60}, {"gtol": 1e-10, "initial_trust_radius": 0.5, "maxiter": 30}],
    "trust-ncg": [{"maxiter": 60}, {"gtol": 1e-10, "initial_trust_radius": 0.5, "maxiter": 30}],
    "trust-krylov": [{"maxiter": 40}, {"gtol": 1e-10, "initial_trust_radius": 0.5, "maxiter": 20}],
    "trust-exact": [{"maxiter": 60}, {"gtol": 1e-10, "initial_trust_radius": 0.5, "maxiter": 30}],
}
HESS_CHOICES = {  # what scipy accepts for each (dogleg/trust-exact: a callable only)
    "newton-cg": ["analytic", None], "trust-constr": ["analytic", "bfgs", "sr1", "2-point"],
    "dogleg": ["analytic"], "trust-exact": ["analytic"], "trust-ncg": ["analytic", "2-point", "sr1"],
    "trust-krylov": ["analytic", "2-point"],
}


def compatible_hess(jac, hess):
    # scipy refuses a finite-difference Hessian of a finite-difference gradient
    if jac != "analytic" and hess in ("2-point", "3-point", "cs"):
        return "bfgs"
    return hess


def jac_choices(m):
    if m not in USES_JAC:
        return [None]
    if m in JAC_REQUIRED:
        return ["analytic"]
    return ["analytic", "2-point", None]


def spec_for(method, problem="rosenbrock", dim=2, x0=None, bounds=None, jac=None, hess=None,
             params=None, **options):
    p = get_problem(problem)
    full = p.defaults()
    full.update(params or {})
    if x0 is None:
        x0 = [(-1.2 if i % 2 == 0 else 1.0) + 0.1 * i for i in range(dim)]
    opts = dict(options)
    if jac is not None:
        opts["jac"] = jac
    if hess is not None:
        opts["hess"] = hess
    return Spec(method=method, problem=problem, params=full, dim=dim,
                bounds=None if bounds is None else tuple(tuple(b) for b in bounds),
                x0=tuple(float(v) for v in x0), options=opts)


def plain_call(spec, callback=None):
    """scipy.optimize.minimize for the spec, written out independently of minimize.py."""
    p = get_problem(spec.problem)
    f, g = p.objective(spec.params), p.gradient(spec.params)
    o = dict(spec.options)
    jac, hess = o.pop("jac", None), o.pop("hess", None)
    kw = {}
    if jac == "analytic":
        kw["jac"] = g
    elif jac is not None:
        kw["jac"] = jac
    if hess == "analytic":
        kw["hess"] = hessian(spec.problem, spec.params)
    elif hess == "bfgs":
        kw["hess"] = BFGS()
    elif hess == "sr1":
        kw["hess"] = SR1()
    elif hess is not None:
        kw["hess"] = hess
    if spec.bounds is not None:
        kw["bounds"] = list(spec.bounds)
    if callback is not None:
        kw["callback"] = callback
    return minimize(f, np.array(spec.x0), method=METHOD_NAMES[spec.method], options=o, **kw)


def scipy_iterates(spec, stop_at=None):
    """(x, fun) per callback of a plain minimize call, and its result; fun None for TNC."""
    its = []

    def cb(intermediate_result):
        ir = intermediate_result
        if isinstance(ir, np.ndarray):
            its.append((np.copy(ir), None))
        else:
            its.append((np.copy(ir.x), ir.fun))
        if stop_at is not None and len(its) >= stop_at:
            raise StopIteration
    return its, plain_call(spec, cb)


def assert_result_equal(r, ref, method):
    assert np.array_equal(r.x, ref.x)
    assert r.fun == ref.fun
    assert r.nit == ref.get("nit", 0)
    assert r.nfev == ref.nfev
    assert r.njev == ref.get("njev", 0)
    assert r.nhev == ref.get("nhev")
    assert r.status == ref.status and r.message == ref.message and r.success == ref.success
    ref_jac = ref.get("grad") if method == "trust-constr" else ref.get("jac")
    assert (r.jac is None) == (ref_jac is None)
    if ref_jac is not None:
        assert np.array_equal(r.jac, ref_jac)


def run(spec, **kw):
    s = MinimizeStepper(spec, **kw)
    steps = list(s)
    return s, steps


def check_against_scipy(spec):
    s, steps = run(spec)
    ref = plain_call(spec)  # no callback at all
    assert_result_equal(s.result, ref, spec.method)
    its, ref_cb = scipy_iterates(spec)
    assert_result_equal(s.result, ref_cb, spec.method)  # a callback changes nothing
    assert [st_.seq for st_ in steps] == list(range(len(steps)))
    assert steps[0].phase == "init" and steps[0].nfev == 0
    mine = steps[1:]
    assert len(mine) == len(its)
    f = get_problem(spec.problem).objective(spec.params)
    for k, (step, (x, fun)) in enumerate(zip(mine, its), start=1):
        assert step.nit == k and step.phase == "iterate"
        assert np.array_equal(step.x, x)
        assert step.fun == (fun if fun is not None else f(x))
    nf = [st_.nfev for st_ in steps]
    assert nf == sorted(nf) and nf[-1] <= s.result.nfev
    assert sum(st_.extra["nfev_step"] for st_ in steps) == steps[-1].nfev
    assert s.result.stopped is False and s.result.reason
    return s, steps




# ---- fidelity: the matrix --------------------------------------------------------------------
PROBLEMS = [("rosenbrock", 2), ("rosenbrock", 5), ("styblinski_tang", 3)]


def matrix(m):
    out = []
    bounded = [False, True] if m in BOUNDED else [False]
    hess = HESS_CHOICES.get(m, [None])
    for i, ((prob, dim), bd, oi, jac) in enumerate(itertools.product(
            PROBLEMS, bounded, range(2), jac_choices(m))):
        h = compatible_hess(jac, hess[i % len(hess)])
        out.append(pytest.param(m, prob, dim, bd, oi, jac, h,
                                id=f"{m}-{prob}{dim}-{'box' if bd else 'free'}-o{oi}-{jac}-{h}"))
    return out


@pytest.mark.parametrize("m,prob,dim,bounded,oi,jac,hess",
                         [c for m in METHODS for c in matrix(m)])
def test_matches_scipy(m, prob, dim, bounded, oi, jac, hess):
    bounds = [(-2.0, 1.5)] * dim if bounded else None  # the minimiser of rosenbrock inside
    if bounded and prob == "styblinski_tang":
        bounds = [(-1.0, 4.0)] * dim  # its minimiser at -2.9 outside: active bounds
    x0 = [0.5 + 0.3 * ((-1) ** i) * i / dim for i in range(dim)] if prob == "styblinski_tang" else None
    check_against_scipy(spec_for(m, prob, dim, x0=x0, bounds=bounds, jac=jac, hess=hess,
                                 **OPTIONS[m][oi]))


@pytest.mark.parametrize("m", ["bfgs", "cg", "slsqp", "trust-constr", "tnc", "l-bfgs-b"])
def test_three_point_and_rastrigin(m):
    check_against_scipy(spec_for(m, "rastrigin", 3, x0=[0.4, -0.3, 1.2], jac="3-point",
                                 params={"A": 3.0}, maxiter=30) if m != "tnc" else
                        spec_for(m, "rastrigin", 3, x0=[0.4, -0.3, 1.2], jac="3-point",
                                 params={"A": 3.0}, maxfun=60))


FAST = ["nelder-mead", "powell", "cg", "bfgs", "newton-cg", "tnc", "slsqp", "trust-ncg",
        "trust-exact", "dogleg", "trust-krylov", "cobyqa"]


@st.composite
def specs(draw):
    m = draw(st.sampled_from(FAST))
    prob = draw(st.sampled_from(["rosenbrock", "sphere", "styblinski_tang", "rastrigin"]))
    dim = draw(st.integers(2, 6))
    lo = draw(st.lists(st.floats(-3, 0), min_size=dim, max_size=dim))
    width = draw(st.lists(st.floats(0.5, 4), min_size=dim, max_size=dim))
    frac = draw(st.lists(st.floats(0, 1), min_size=dim, max_size=dim))
    bounds = [(a, a + w) for a, w in zip(lo, width)]
    x0 = [a + f * w for a, w, f in zip(lo, width, frac)]  # inside the box
    use_bounds = m in BOUNDED and draw(st.booleans())
    jac = draw(st.sampled_from(jac_choices(m)))
    hess = compatible_hess(jac, draw(st.sampled_from(HESS_CHOICES.get(m, [None]))))
    budget = {"tnc": "maxfun", "cobyqa": "maxfev"}.get(m, "maxiter")
    return spec_for(m, prob, dim, x0=x0, bounds=bounds if use_bounds else None, jac=jac,
                    hess=hess, **{budget: draw(st.integers(1, 25))})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_hypothesis_specs_match_scipy(spec):
    check_against_scipy(spec)


# ---- what a step carries ---------------------------------------------------------------------
def test_steps_carry_trials_and_extras():
    spec = spec_for("powell", "rosenbrock", 8, maxiter=4)
    s, steps = run(spec)
    f = get_problem("rosenbrock").objective(spec.params)
    for prev, step in zip(steps, steps[1:]):
        tr = step.bulky["trials"]
        assert tr.shape[1] == 9 and 0 < len(tr) <= TRIALS_CAP
        assert len(tr) == min(TRIALS_CAP, step.extra["nfev_step"])
        for row in tr[-5:]:
            assert f(row[:8]) == row[8]
        assert step.extra["dx_norm"] == float(np.linalg.norm(step.x - prev.x))
        assert step.extra["df"] == float(step.fun) - float(prev.fun)
        g = get_problem("rosenbrock").gradient(spec.params)(step.x)
        assert np.array_equal(step.jac, g) and step.extra["grad_inf"] == np.max(np.abs(g))
    assert any(s_.extra["nfev_step"] > TRIALS_CAP for s_ in steps), "the cap was not exercised"
    assert steps[1].to_dict() and steps[1].bulky_dict()["trials"]


def test_nelder_mead_simplex_is_scipys():
    spec = spec_for("nelder-mead", "rosenbrock", 3, maxiter=40)
    s, steps = run(spec)
    f = get_problem("rosenbrock").objective(spec.params)
    for step in steps[1:]:
        sim = step.bulky["simplex"]
        assert sim.shape == (4, 4)
        assert np.array_equal(sim[0, :3], step.x) and sim[0, 3] == step.fun
        assert list(sim[:, 3]) == sorted(sim[:, 3])
        assert all(f(v[:3]) == v[3] for v in sim)
    ref = plain_call(spec)
    assert np.array_equal(steps[-1].bulky["simplex"][:, :3], ref.final_simplex[0])


def test_trust_constr_reports_radius_and_violation():
    spec = spec_for("trust-constr", "rosenbrock", 2, bounds=[(-2, 0.8), (-1, 2)],
                    jac="analytic", hess="analytic", maxiter=15)
    its = []
    plain_call(spec, lambda x, state: its.append((state.tr_radius, state.constr_violation)))
    s, steps = run(spec)
    assert [(st_.extra["tr_radius"], st_.extra["constr_violation"]) for st_ in steps[1:]] == its
    assert steps[-1].extra["nhev"] == s.result.nhev or steps[-1].extra["nhev"] <= s.result.nhev


# ---- resume ----------------------------------------------------------------------------------
RESUME = {m: spec_for(m, "rosenbrock", 3, jac=jac_choices(m)[0],
                      hess=HESS_CHOICES.get(m, [None])[0], **OPTIONS[m][1]) for m in METHODS}


@pytest.mark.parametrize("m", METHODS)
def test_resume_is_exact(m):
    spec = RESUME[m]
    assert_resumes_exactly(MinimizeStepper, spec, lambda r: assert_result_equal(r, plain_call(spec), m))


def test_resume_refuses_a_run_that_does_not_retrace():
    spec = RESUME["bfgs"]
    s = MinimizeStepper(spec)
    for _ in range(4):
        next(s)
    cp = s.checkpoint()
    s.close()
    f = get_problem("rosenbrock").objective(spec.params)
    r = MinimizeStepper(spec, objective=lambda x: f(x) * (1 + 1e-9))  # not the same function
    r._restore(cp)
    with pytest.raises(ValueError, match="resume failed"):
        next(r)


# ---- stop ------------------------------------------------------------------------------------
@pytest.mark.parametrize("m", METHODS)
@pytest.mark.parametrize("k", [0, 1, 3])
def test_stop(m, k):
    spec = RESUME[m]
    s = MinimizeStepper(spec)
    steps = []
    for step in s:
        steps.append(step)
        if step.seq == k:
            s.request_stop()
    assert len(steps) == k + 1  # nothing after the stop
    r = s.result
    assert r.stopped and r.reason == "stopped by the user"
    its, ref = scipy_iterates(spec, stop_at=max(k, 1)) if m != "tnc" else (None, None)
    if m == "tnc":  # TNC lets StopIteration out of minimize: the result is synthesized
        with pytest.raises(StopIteration):
            scipy_iterates(spec, stop_at=max(k, 1))
        assert r.status == 99 and not r.success and np.array_equal(r.x, steps[-1].x)
        return
    assert_result_equal(r, ref, m)
    for step, (x, _) in zip(steps[1:], its):
        assert np.array_equal(step.x, x)


def test_stop_then_resume_keeps_the_stop():
    spec = RESUME["slsqp"]
    cp = checkpoint_of_a_stop(MinimizeStepper(spec), 2)
    r = MinimizeStepper(spec)
    r._restore(cp)
    assert list(r) == []
    _, ref = scipy_iterates(spec, stop_at=2)
    assert r.result.stopped
    assert_result_equal(r.result, ref, "slsqp")


# ---- threads and errors ----------------------------------------------------------------------
def test_dropped_stepper_ends_its_thread():
    before = threading.active_count()
    s = MinimizeStepper(RESUME["nelder-mead"])
    for _ in range(3):
        next(s)
    assert threading.active_count() == before + 1
    del s
    gc.collect()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


@pytest.mark.parametrize("m", METHODS)
def test_close_ends_the_thread_for_every_method(m):
    before = threading.active_count()
    s = MinimizeStepper(RESUME[m])
    next(s), next(s), next(s)
    s.close()
    assert threading.active_count() == before
    assert list(s) == []


def test_scipy_errors_reraise_in_the_consumer():
    s = MinimizeStepper(spec_for("trust-exact", jac="analytic", hess="bfgs"))
    next(s)  # seq 0 needs no scipy
    with pytest.raises(ValueError, match="Hessian"):
        next(s)
    assert list(s) == []


def test_objective_errors_reraise_in_the_consumer():
    f = get_problem("rosenbrock").objective({"a": 1.0, "b": 100.0})
    calls = [0]

    def bad(x):
        calls[0] += 1
        if calls[0] > 20:
            raise RuntimeError("objective broke")
        return f(x)
    s = MinimizeStepper(spec_for("nelder-mead", maxiter=100), objective=bad)
    with pytest.raises(RuntimeError, match="objective broke"):
        for _ in s:
            pass


def test_bad_choices_fail_at_construction():
    with pytest.raises(ValueError, match="bounds"):
        MinimizeStepper(spec_for("bfgs", bounds=[(-1, 1), (-1, 1)]))
    with pytest.raises(ValueError, match="no analytic Hessian"):
        MinimizeStepper(spec_for("newton-cg", "ackley", jac="analytic", hess="analytic"))


def test_total_steps_hint():
    assert MinimizeStepper(spec_for("nelder-mead", dim=3)).total_steps_hint == 600
    assert MinimizeStepper(spec_for("bfgs", maxiter=7)).total_steps_hint == 7
    assert MinimizeStepper(spec_for("cobyqa", maxfev=9)).total_steps_hint == 9


# ---- Hessians ---------------------------------------------------------------------------------
def _hessian_dims(p):
    return sorted({d for d in (p.min_dim, p.default_dim, 3, 7, p.max_dim) if d is not None
                   and p.min_dim <= d <= (p.max_dim or d)})


@pytest.mark.parametrize("name", sorted(HESSIANS))
def test_hessian_matches_finite_differences_of_the_gradient(name):
    p = get_problem(name)
    rng = np.random.default_rng(7)
    for dim in _hessian_dims(p):
        params = {q.name: rng.uniform(max(q.min, 0.5), min(q.max, 5.0)) for q in p.params}
        lo, hi = np.array(p.default_bounds(dim)).T
        for prm in (None, params):
            g, h = p.gradient(prm), hessian(name, prm)
            # near the origin and anywhere in the problem's own box
            for x in [*rng.uniform(-2, 2, (10, dim)), *rng.uniform(lo, hi, (10, dim))]:
                eps = 1e-6 * np.maximum(1.0, np.abs(x))
                fd = np.array([(g(x + eps[i] * e) - g(x - eps[i] * e)) / (2 * eps[i])
                               for i, e in enumerate(np.eye(dim))])
                H = h(x)
                assert H.shape == (dim, dim) and np.array_equal(H, H.T)
                assert np.max(np.abs(H - fd)) <= 1e-6 * max(1.0, np.max(np.abs(H))), (name, dim, x)


def test_problems_without_hessian():
    assert hessian("ackley", {}) is None
    assert set(CATALOGUE) - set(HESSIANS) == {"ackley"}


# the methods that take a callable Hessian, on the problems whose Hessians came last
@pytest.mark.parametrize("m", ["newton-cg", "dogleg", "trust-ncg", "trust-krylov", "trust-exact"])
@pytest.mark.parametrize("prob,dim,x0", [("levy", 1, [3.3]), ("levy", 2, [-4.0, 2.5]),
                                         ("levy", 4, [2.0, -1.5, 0.7, 4.2]),
                                         ("goldstein_price", 2, [0.4, -0.3]),
                                         ("goldstein_price", 2, [-1.1, 1.3])])
def test_analytic_hessian_runs_match_scipy(m, prob, dim, x0):
    s, _ = check_against_scipy(spec_for(m, prob, dim, x0=x0, jac="analytic", hess="analytic",
                                        maxiter=40))
    assert s.result.nhev > 0


# ---- trust radius of dogleg, trust-ncg, trust-krylov, trust-exact -------------------------------
def scipy_radii(spec):
    """The trust radius after each iteration of a plain minimize call, read in its callback
    from the frame of scipy's trust-region loop (found here by name, not as minimize.py does)."""
    radii = []

    def cb(intermediate_result):
        f = sys._getframe(1)
        while f.f_code.co_name != "_minimize_trust_region":
            f = f.f_back
        assert f.f_code.co_filename.endswith("_trustregion.py")
        radii.append(f.f_locals["trust_radius"])
    plain_call(spec, cb)
    return radii


def scipy_default(option):
    from scipy.optimize._trustregion import _minimize_trust_region
    return inspect.signature(_minimize_trust_region).parameters[option].default


TRUST_SPECS = [
    ("rosenbrock", 2, None, {"maxiter": 60}),
    ("rosenbrock", 5, None, {"initial_trust_radius": 0.3, "max_trust_radius": 0.5,
                             "maxiter": 60}),  # the cap is reached
    ("styblinski_tang", 3, [0.5, -0.2, 0.9], {"initial_trust_radius": 2.0, "eta": 0.2,
                                              "maxiter": 40}),
    ("goldstein_price", 2, [-1.1, 1.3], {"maxiter": 40}),
    ("levy", 3, [-4.0, 2.5, 6.0], {"initial_trust_radius": 4.0, "maxiter": 40}),
]
_changes = set()  # which of scipy's rules the streams below used, over the whole set


@pytest.mark.parametrize("m", sorted(TRUST_REGION))
@pytest.mark.parametrize("prob,dim,x0,opts", TRUST_SPECS,
                         ids=[f"{p}{d}-{i}" for i, (p, d, _, _) in enumerate(TRUST_SPECS)])
def test_trust_radius_is_scipys(m, prob, dim, x0, opts):
    spec = spec_for(m, prob, dim, x0=x0, jac="analytic", hess="analytic", **opts)
    s, steps = check_against_scipy(spec)  # reading the radius leaves the run bitwise scipy's
    radii = [st_.extra["tr_radius"] for st_ in steps]
    assert radii[1:] == scipy_radii(spec)
    start = opts.get("initial_trust_radius", scipy_default("initial_trust_radius"))
    cap = opts.get("max_trust_radius", scipy_default("max_trust_radius"))
    assert radii[0] == start
    for a, b in zip(radii, radii[1:]):  # scipy's update: x0.25 (poor step), x2 up to the cap
        if b == a:
            _changes.add("same")
        elif b == a * 0.25:
            _changes.add("shrink")
        elif b == 2 * a <= cap:
            _changes.add("grow")
        else:
            assert a < b == cap < 2 * a, (a, b)
            _changes.add("cap")


def test_trust_radius_rules_were_all_exercised():
    # after the parametrized cases above (pytest runs a file's tests in order)
    assert _changes >= {"same", "shrink", "grow", "cap"}


def test_trust_radius_resumes_exactly():
    for m in sorted(TRUST_REGION):
        spec = spec_for(m, "rosenbrock", 3, jac="analytic", hess="analytic", maxiter=30,
                        initial_trust_radius=0.5)
        steps = assert_resumes_exactly(MinimizeStepper, spec)  # extras, radius included, equal
        assert all(isinstance(st_.extra["tr_radius"], float) for st_ in steps)
        assert [st_.extra["tr_radius"] for st_ in steps[1:]] == scipy_radii(spec)


def test_no_trust_radius_outside_scipys_loop():
    assert _current_trust_radius() is None  # e.g. a scipy whose loop has another name
    s, steps = run(spec_for("bfgs", jac="analytic", maxiter=5))
    assert all("tr_radius" not in st_.extra for st_ in steps)
