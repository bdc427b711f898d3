"""The global steppers (dual_annealing, shgo, direct, basinhopping) == scipy's own calls (scipy
is the oracle, `==` throughout); a callback changes nothing; stop; exact resume by re-run from
any step; thread hygiene."""
import gc
import inspect
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import BFGS, SR1, basinhopping, direct, dual_annealing, shgo
from scipy.optimize._dual_annealing import StrategyChain

from runs.optim import METHODS, decode_checkpoint, encode_checkpoint, get_problem
from runs.optim.global_methods import (GLOBAL_STEPPERS, OPTIONS, STATUS_STOPPED, da_temperature)
from runs.optim.hessians import hessian
from runs.optim.spec import Spec, validate_spec

from tests.resume_checks import assert_resumes_exactly, checkpoint_of_a_stop, comparable, stop_after

pytestmark = [pytest.mark.filterwarnings("ignore"),  # scipy's OptimizeWarning/RuntimeWarning
              pytest.mark.usefixtures("no_thread_left")]  # every scipy thread ends with its test

FUNCTIONS = {"dual_annealing": dual_annealing, "shgo": shgo, "direct": direct,
             "basinhopping": basinhopping}
BOX = {"rosenbrock": (-2.0, 2.0), "rastrigin": (-5.12, 5.12), "ackley": (-5.0, 5.0),
       "himmelblau": (-5.0, 5.0), "rosenbrock_disk": (-1.5, 1.5)}
X0 = {"rosenbrock": -1.2, "rastrigin": 2.5, "ackley": 1.7, "himmelblau": 0.3, "rosenbrock_disk": 0.2}


def spec_for(method, problem="rastrigin", dim=2, **options):
    p = get_problem(problem)
    lo, hi = BOX[problem]
    bounds = None if method == "basinhopping" else tuple((lo, hi) for _ in range(dim))
    x0 = tuple(X0[problem] + 0.1 * i for i in range(dim)) if method == "basinhopping" else None
    return Spec(method=method, problem=problem, params=p.defaults(), dim=dim, bounds=bounds,
                x0=x0, options=options)


def plain(spec, callback=None, seed=None, objective=None):
    """scipy's own call for the spec, written out independently of global_methods.py."""
    p = get_problem(spec.problem)
    f, g = objective or p.objective(spec.params), p.gradient(spec.params)
    kw = {k: v for k, v in spec.options.items() if v is not None}
    if "minimizer_kwargs" in kw:
        mk = dict(kw["minimizer_kwargs"])
        jac = mk.pop("jac", None)
        if jac is not None:
            mk["jac"] = g if jac == "analytic" else jac
        hess = mk.pop("hess", None)
        if hess is not None:
            mk["hess"] = {"analytic": hessian(spec.problem, spec.params), "bfgs": BFGS(),
                          "sr1": SR1()}.get(hess, hess)
        if "options" in mk:
            mk["options"] = dict(mk["options"])
        kw["minimizer_kwargs"] = mk
    if "options" in kw:
        kw["options"] = dict(kw["options"])
    if spec.method == "shgo" and p.has_constraints:
        kw["constraints"] = [c.scipy_dict() for c in p.constraints(spec.params, spec.dim)]
    if seed is not None and "seed" not in kw and "rng" not in kw:
        kw["seed"] = seed
    if callback is not None:
        kw["callback"] = callback
    fn = FUNCTIONS[spec.method]
    if spec.method == "basinhopping":
        return fn(f, np.array(spec.x0), **kw)
    if spec.x0 is not None:
        kw["x0"] = np.array(spec.x0)
    return fn(f, [tuple(b) for b in spec.bounds], **kw)


def message(ref):
    m = ref.message
    return "; ".join(m) if isinstance(m, list) else m


def assert_result_equal(r, ref):
    if ref.x is None:  # shgo found no feasible point: no x, said as NaN (null in JSON)
        assert np.isnan(r.x).all() and r.x.shape == (len(r.x),)
    else:
        assert np.array_equal(r.x, ref.x)
    assert r.fun == ref.fun
    assert r.nit == ref.nit
    assert r.nfev == ref.nfev
    assert r.njev == ref.get("njev", ref.get("nljev", 0))
    assert r.nhev == ref.get("nhev", ref.get("nlhev"))
    assert r.success == ref.success and r.status == ref.get("status", 0)
    assert r.message == message(ref)


def run(spec, **kw):
    s = GLOBAL_STEPPERS[spec.method](spec, **kw)
    return s, list(s)




def scipy_evaluations(spec):
    """Every (f, x) a plain scipy call evaluates, in order."""
    evals = []
    p = get_problem(spec.problem)
    f = p.objective(spec.params)

    def rec(x):
        evals.append((f(x), np.copy(x)))
        return evals[-1][0]
    plain(spec, objective=rec)
    return evals


def common_checks(s, steps):
    assert [x.seq for x in steps] == list(range(len(steps)))
    nf = [x.nfev for x in steps]
    assert nf == sorted(nf) and nf[-1] <= s.result.nfev
    assert sum(x.extra["nfev_step"] for x in steps) == steps[-1].nfev
    for x in steps:  # every step's trials are points really evaluated, with their f
        f = get_problem(s.spec.problem).objective(s.spec.params)
        for row in x.bulky["trials"][-3:]:
            assert f(row[:-1]) == row[-1]
    assert not s.result.stopped


def test_option_tables_are_scipys_defaults():
    for m, table in OPTIONS.items():
        params = inspect.signature(FUNCTIONS[m]).parameters
        for k, v in table.items():
            if k == "seed":  # scipy's decorator accepts the old name for rng
                continue
            d = params[k].default
            if m == "direct" and k == "f_min":
                assert d == -np.inf and v is None
            else:
                assert d == v, (m, k)


# ---- dual_annealing --------------------------------------------------------------------------
def da_observed(spec, callback=None):
    """scipy's own state at the start of every StrategyChain.run, read by a tracer."""
    code = StrategyChain.run.__code__
    seen = []

    def tracer(frame, event, arg):
        if event == "call" and frame.f_code is code:
            loc = frame.f_locals
            ch = loc["self"]
            es = ch.energy_state
            seen.append({"i": loc["step"], "T": loc["temperature"], "nfev": ch.func_wrapper.nfev,
                         "ngev": ch.func_wrapper.ngev, "xbest": np.copy(es.xbest),
                         "ebest": es.ebest, "current": es.current_energy})
    sys.settrace(tracer)
    try:
        res = plain(spec, callback)
    finally:
        sys.settrace(None)
    return seen, res


DA = [("rastrigin", 2, 1), ("rastrigin", 3, 7), ("ackley", 2, 11), ("himmelblau", 2, 5),
      ("rosenbrock", 3, 2)]


@pytest.mark.parametrize("prob,dim,seed", DA)
def test_dual_annealing_matches_scipy(prob, dim, seed):
    spec = spec_for("dual_annealing", prob, dim, maxiter=15, seed=seed)
    s, steps = run(spec)
    ref = plain(spec)
    assert_result_equal(s.result, ref)
    minima = []
    seen, ref_cb = da_observed(spec, lambda x, f, c: minima.append([float(f), int(c)]))
    assert_result_equal(s.result, ref_cb)  # neither a callback nor a tracer changes a number
    common_checks(s, steps)
    # one step per iteration: seq 0 the start, seq k the state when iteration k+1 begins
    assert len(steps) == ref.nit + 1 and [x.nit for x in steps] == list(range(ref.nit + 1))
    assert steps[0].phase == "init" and all(x.phase == "iterate" for x in steps[1:])
    for k, step in enumerate(steps[:-1]):
        o = seen[k]
        assert np.array_equal(step.x, o["xbest"]) and step.fun == o["ebest"]
        assert step.nfev == o["nfev"] and step.extra["current_fun"] == o["current"]
    last = steps[-1]
    assert np.array_equal(last.x, ref.x) and last.fun == ref.fun and last.nfev == ref.nfev
    # the temperature of the iteration a step ends is scipy's own, and scipy's schedule
    temps = [seen[0]["T"]] + [o["T"] for o in seen[:len(steps) - 1]]
    assert [x.extra["temperature"] for x in steps] == temps
    assert all(x.extra["temperature"] == da_temperature(x.extra["cycle_index"], 5230.0, 2.62)
               for x in steps)
    # scipy's callbacks (new minima and their context codes) are spread over the steps
    assert [m for x in steps for m in x.extra["minima"]] == minima
    assert all(x.extra["context"] == (x.extra["minima"][-1][1] if x.extra["minima"] else None)
               for x in steps)


def test_dual_annealing_reannealing_and_maxfun():
    # a high restart ratio re-anneals every few iterations; maxfun ends one mid-iteration
    spec = spec_for("dual_annealing", "rastrigin", 2, maxiter=30, seed=4, restart_temp_ratio=0.3,
                    maxfun=99, no_local_search=True, initial_temp=100.0, visit=2.0)
    s, steps = run(spec)
    seen, ref = da_observed(spec)
    assert_result_equal(s.result, ref)
    assert not ref.success and "function call" in message(ref)
    assert any(x.extra["reannealed"] for x in steps)
    assert [x.extra["reannealed"] for x in steps[1:-1]] == [  # never the first iteration
        j > 0 and o["i"] == 0 for j, o in enumerate(seen[:len(steps) - 2])]
    assert all(x.extra["temperature"] == da_temperature(x.extra["cycle_index"], 100.0, 2.0)
               for x in steps)
    assert steps[-1].extra["complete"] is False and steps[-1].nit == steps[-2].nit == ref.nit


def test_dual_annealing_with_minimizer_kwargs_and_x0():
    spec = Spec(method="dual_annealing", problem="rosenbrock", params={"a": 1.0, "b": 100.0},
                dim=2, bounds=((-2.0, 2.0), (-2.0, 2.0)), x0=(-1.0, 1.5),
                options={"maxiter": 8, "rng": 3,
                         "minimizer_kwargs": {"method": "bfgs", "jac": "analytic"}})
    s, steps = run(spec)
    ref = plain(Spec(**{**spec.__dict__, "options": {
        **spec.options, "minimizer_kwargs": {"method": "BFGS", "jac": "analytic"}}}))
    assert_result_equal(s.result, ref)
    assert steps[0].x.tolist() == [-1.0, 1.5] and steps[-1].njev > 0


# ---- shgo / direct -----------------------------------------------------------------------------
SHGO = [("rastrigin", 2, {}), ("himmelblau", 2, {"n": 30, "iters": 2}),
        ("ackley", 2, {"sampling_method": "sobol", "n": 32}),
        ("rosenbrock", 3, {"minimizer_kwargs": {"method": "L-BFGS-B", "jac": "analytic"}})]


@pytest.mark.parametrize("prob,dim,o", SHGO)
def test_shgo_matches_scipy(prob, dim, o):
    spec = spec_for("shgo", prob, dim, **o)
    s, steps = run(spec)
    assert_result_equal(s.result, plain(spec))
    xs, irs = [], []
    ref_x = plain(spec, lambda xk: xs.append(np.copy(xk)))
    ref_ir = plain(spec, lambda intermediate_result: irs.append(intermediate_result.fun))
    assert_result_equal(s.result, ref_x)  # callbacks of either form change nothing
    assert_result_equal(s.result, ref_ir)
    common_checks(s, steps)
    assert len(steps) == len(xs) > 0
    assert all(np.array_equal(a.x, b) for a, b in zip(steps, xs))
    assert [x.fun for x in steps] == irs
    li = [x.extra["local_index"] for x in steps]
    assert li == sorted(li) and li[0] == 1
    assert all(x.extra["shgo_nit"] >= 1 for x in steps)


DIRECT = [("rastrigin", 2, {"maxiter": 20}), ("ackley", 3, {"maxfun": 300}),
          ("himmelblau", 2, {"maxiter": 15, "locally_biased": False}),
          ("rosenbrock", 2, {"maxiter": 40, "eps": 1e-3, "len_tol": 1e-4})]


@pytest.mark.parametrize("prob,dim,o", DIRECT)
def test_direct_matches_scipy(prob, dim, o):
    spec = spec_for("direct", prob, dim, **o)
    f = get_problem(prob).objective(spec.params)
    s, steps = run(spec)
    evals = scipy_evaluations(spec)
    assert_result_equal(s.result, plain(spec))
    xs = []
    ref = plain(spec, lambda xk: xs.append(np.copy(xk)))
    assert_result_equal(s.result, ref)
    common_checks(s, steps)
    assert len(steps) == len(xs) and all(np.array_equal(a.x, b) for a, b in zip(steps, xs))
    assert all(x.fun == f(x.x) for x in steps)
    assert s.result.fun == min(e[0] for e in evals)  # the best point evaluated is the answer
    assert len(evals) == s.result.nfev
    for x in steps:
        assert x.extra["best_fun"] == min(e[0] for e in evals[:x.nfev])


# ---- basinhopping ------------------------------------------------------------------------------
BH = [("rastrigin", 2, {"niter": 12, "seed": 1}), ("ackley", 3, {"niter": 8, "rng": 5}),
      ("himmelblau", 2, {"niter": 10, "seed": 9, "interval": 3, "stepsize": 1.0, "T": 0.5}),
      ("rosenbrock", 2, {"niter": 6, "seed": 2, "minimizer_kwargs": {
          "method": "L-BFGS-B", "jac": "analytic", "bounds": [[-2, 2], [-2, 2]]}})]


@pytest.mark.parametrize("prob,dim,o", BH)
def test_basinhopping_matches_scipy(prob, dim, o):
    spec = spec_for("basinhopping", prob, dim, **o)
    s, steps = run(spec)
    assert_result_equal(s.result, plain(spec))
    seen = []

    def cb(x, f, accept):
        bh = sys._getframe(1).f_locals["bh"]
        seen.append((np.copy(x), f, accept, bh.step_taking.takestep.stepsize))
    ref = plain(spec, cb)
    assert_result_equal(s.result, ref)
    common_checks(s, steps)
    assert len(steps) == len(seen) == ref.nit + 1
    assert steps[0].phase == "init"
    for k, (step, (x, f, acc, size)) in enumerate(zip(steps, seen)):
        assert np.array_equal(step.x, x) and step.fun == f and step.extra["accepted"] == acc
        assert step.extra["stepsize"] == size and step.nit == k
    acc = [x.extra["accepted"] for x in steps[1:]]
    last = steps[-1].extra
    assert last["naccept"] == sum(acc) and last["nreject"] == len(acc) - sum(acc)
    assert steps[-1].extra["best_fun"] == ref.fun
    if o.get("interval") == 3:
        assert len({x.extra["stepsize"] for x in steps}) > 1  # the adaptive step size moved


# ---- minimizer_kwargs and shgo's options, through the validator ------------------------------
def validated(method, problem, dim, options):
    """(the validated spec, the same spec with the options as given): the run takes the first,
    scipy's own call the second."""
    base = spec_for(method, problem, dim)
    spec = validate_spec({"method": method, "problem": problem, "dim": dim, "options": options,
                          "bounds": None if base.bounds is None else [list(b) for b in base.bounds],
                          "x0": None if base.x0 is None else list(base.x0)})
    return spec, Spec(**{**spec.__dict__, "options": options})


def bh_seen(spec):
    seen = []
    plain(spec, lambda x, f, accept: seen.append((np.copy(x), f, accept)))
    return seen


NESTED = [
    ("basinhopping", "rosenbrock", 2, {"niter": 4, "seed": 3, "minimizer_kwargs": {
        "method": "Nelder-Mead", "options": {"xatol": 1e-6, "maxiter": 200, "adaptive": True}}}),
    ("basinhopping", "himmelblau", 2, {"niter": 5, "seed": 1, "minimizer_kwargs": {
        "method": "powell", "bounds": [[-5, 5], [None, 4.5]], "options": {"ftol": 1e-6}}}),
    ("basinhopping", "rosenbrock", 2, {"niter": 3, "rng": 2, "minimizer_kwargs": {
        "method": "trust-ncg", "jac": "analytic", "hess": "analytic", "options": {"gtol": 1e-6}}}),
    ("basinhopping", "rastrigin", 2, {"niter": 4, "seed": 5, "minimizer_kwargs": {  # minimize picks BFGS
        "jac": "analytic", "options": {"gtol": 1e-6, "c1": 1e-3, "c2": 0.8}}}),
    ("basinhopping", "ackley", 2, {"niter": 3, "seed": 7, "minimizer_kwargs": {
        "method": "Newton-CG", "jac": "analytic", "hess": "2-point"}}),
    ("basinhopping", "himmelblau", 2, {"niter": 3, "seed": 4, "minimizer_kwargs": {
        "method": "cobyqa", "options": {"maxfev": 60, "initial_tr_radius": 0.5}}}),
    ("dual_annealing", "rastrigin", 2, {"maxiter": 6, "seed": 4, "minimizer_kwargs": {
        "method": "L-BFGS-B", "bounds": [[-5.12, 5.12]] * 2, "jac": "analytic", "options": {"maxiter": 50}}}),
    ("dual_annealing", "himmelblau", 2, {"maxiter": 5, "seed": 2, "minimizer_kwargs": {
        "method": "nelder-mead", "options": {"maxfev": 80}}}),
    ("dual_annealing", "rosenbrock", 2, {"maxiter": 4, "seed": 8, "minimizer_kwargs": {
        "method": "TNC", "bounds": [[-2, 2], [-2, 2]], "jac": "2-point", "options": {"maxfun": 40}}}),
    ("dual_annealing", "rosenbrock", 3, {"maxiter": 3, "seed": 9, "minimizer_kwargs": {
        "method": "trust-constr", "jac": "analytic", "hess": "bfgs", "options": {"maxiter": 30}}}),
    ("dual_annealing", "ackley", 2, {"maxiter": 4, "rng": 6, "minimizer_kwargs": {  # bounds: L-BFGS-B
        "bounds": [[-5, 5], [-5, 5]], "options": {"maxls": 5}}}),
    ("shgo", "rosenbrock", 2, {"minimizer_kwargs": {"method": "L-BFGS-B", "jac": "analytic",
                                                    "options": {"ftol": 1e-10}}}),
    ("shgo", "himmelblau", 2, {"n": 30, "minimizer_kwargs": {"method": "cobyla", "options": {"catol": 1e-5}}}),
    ("shgo", "rastrigin", 2, {"n": 32, "sampling_method": "sobol", "minimizer_kwargs": {},  # SLSQP, ftol 1e-6
                              "options": {"maxiter": 2, "minimize_every_iter": False}}),
    ("shgo", "ackley", 2, {"n": 40, "options": {"maxfev": 300, "local_iter": 2, "symmetry": True}}),
    ("shgo", "himmelblau", 2, {"options": {"f_min": 0.0, "f_tol": 1e-6, "maxiter": 3, "infty_constraints": False,
                                           "minhgrd": 0}}),
    ("shgo", "rosenbrock", 2, {"options": {"maxev": 200}, "minimizer_kwargs": {
        "method": "newton-cg", "jac": "analytic", "hess": "analytic", "options": {}}}),
    ("shgo", "rosenbrock_disk", 2, {"n": 20, "minimizer_kwargs": {"method": "SLSQP", "jac": "analytic",
                                                                  "options": {"ftol": 1e-9}}}),
]


@pytest.mark.parametrize("m,prob,dim,o", NESTED, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(NESTED)])
def test_nested_options_match_scipys_own_call(m, prob, dim, o):
    spec, given = validated(m, prob, dim, o)
    s, steps = run(spec)
    ref = plain(given)
    assert_result_equal(s.result, ref)
    common_checks(s, steps)
    if m == "basinhopping":
        seen = bh_seen(given)
        assert len(steps) == len(seen) == ref.nit + 1
        for step, (x, f, acc) in zip(steps, seen):
            assert np.array_equal(step.x, x) and step.fun == f and step.extra["accepted"] == acc
    elif m == "shgo":
        xs = []
        assert_result_equal(s.result, plain(given, lambda xk: xs.append(np.copy(xk))))
        assert len(steps) == len(xs) > 0 and all(np.array_equal(a.x, b) for a, b in zip(steps, xs))
    else:
        seen, _ = da_observed(given)
        assert len(steps) == ref.nit + 1
        for k, step in enumerate(steps[:-1]):
            assert np.array_equal(step.x, seen[k]["xbest"]) and step.fun == seen[k]["ebest"]
            assert step.nfev == seen[k]["nfev"]


LOCALS = [o["name"] for o in METHODS["basinhopping"].option("minimizer_kwargs").to_dict()["local_methods"]]


@pytest.mark.parametrize("m", ["basinhopping", "dual_annealing", "shgo"])
@pytest.mark.parametrize("local", LOCALS)
def test_every_local_method_is_scipys(m, local):
    # each local minimizer the catalogue offers runs in each global method, as scipy's call does
    lm = METHODS[local if local != "l-bfgs-b" else "lbfgsb"]
    mk = {"method": local}
    if lm.option("jac") is not None:
        mk["jac"] = "analytic"
    if lm.option("hess") is not None and None not in lm.option("hess").choices:
        mk["hess"] = "analytic"
    o = {"basinhopping": {"niter": 2, "seed": 1}, "dual_annealing": {"maxiter": 2, "seed": 1},
         "shgo": {"n": 8}}[m]
    spec, given = validated(m, "rosenbrock", 2, {**o, "minimizer_kwargs": mk})
    s, steps = run(spec)
    assert_result_equal(s.result, plain(given))
    assert steps


def test_shgo_drops_the_local_options_it_refuses():
    # why the validator refuses them: scipy's run is the same with or without
    f = get_problem("rosenbrock").objective({"a": 1.0, "b": 100.0})
    a = shgo(f, [(-2, 2)] * 2, minimizer_kwargs={"method": "L-BFGS-B", "options": {"maxiter": 1, "gtol": 0.5}})
    b = shgo(f, [(-2, 2)] * 2, minimizer_kwargs={"method": "L-BFGS-B"})
    assert np.array_equal(a.x, b.x) and a.nfev == b.nfev and a.nlfev == b.nlfev
    c = shgo(f, [(-2, 2)] * 2, minimizer_kwargs={"method": "L-BFGS-B", "options": {"ftol": 1e-2}})
    assert c.nlfev != b.nlfev  # ftol is kept


def test_nested_options_change_the_run():
    # each kind of key reaches scipy: a run with it differs from the run without it
    for m, prob, dim, o in NESTED[0], NESTED[6], NESTED[11], NESTED[14]:
        spec, _ = validated(m, prob, dim, o)
        bare, _ = validated(m, prob, dim, {k: v for k, v in o.items() if k not in ("minimizer_kwargs", "options")})
        assert run(spec)[0].result.nfev != run(bare)[0].result.nfev, (m, prob)


def test_minimizer_kwargs_left_empty_is_scipys_default():
    # {} is scipy's "no minimizer_kwargs" for dual_annealing (its own L-BFGS-B in the box) and
    # basinhopping (minimize's BFGS); shgo's {} drops its ftol 1e-12: a different call, kept so
    for m, prob, o in (("dual_annealing", "rastrigin", {"maxiter": 4, "seed": 1}),
                       ("basinhopping", "rastrigin", {"niter": 3, "seed": 1}), ("shgo", "himmelblau", {"n": 20})):
        spec, given = validated(m, prob, 2, {**o, "minimizer_kwargs": {}})
        assert_result_equal(run(spec)[0].result, plain(given))
        default, _ = validated(m, prob, 2, o)
        same = run(default)[0].result.to_dict() == run(spec)[0].result.to_dict()
        assert same == (m != "shgo"), m
    assert validated("shgo", "himmelblau", 2, {"minimizer_kwargs": {}})[0].options["minimizer_kwargs"] == {
        "method": "slsqp"}


@pytest.mark.parametrize("i", [0, 6, 12, 15])
def test_resume_with_nested_options_is_exact(i):
    m, prob, dim, o = NESTED[i]
    spec, given = validated(m, prob, dim, o)
    ref = plain(given)
    assert_resumes_exactly(GLOBAL_STEPPERS[m], spec, lambda r: assert_result_equal(r, ref))


# ---- hypothesis ----------------------------------------------------------------------------
@st.composite
def specs(draw):
    m = draw(st.sampled_from(list(OPTIONS)))
    prob = draw(st.sampled_from(list(BOX)))
    dim = draw(st.integers(2, 3))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    o = {"dual_annealing": {"maxiter": draw(st.integers(1, 8)), "seed": seed},
         "shgo": {"n": draw(st.integers(8, 40)), "sampling_method": draw(
             st.sampled_from(["simplicial", "sobol", "halton"]))},
         "direct": {"maxiter": draw(st.integers(1, 25)),
                    "locally_biased": draw(st.booleans())},
         "basinhopping": {"niter": draw(st.integers(0, 6)), "rng": seed}}[m]
    return spec_for(m, prob, dim, **o)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(specs())
def test_hypothesis_specs_match_scipy(spec):
    s, steps = run(spec)
    assert_result_equal(s.result, plain(spec))
    if steps:
        assert steps[-1].nfev <= s.result.nfev


def test_shgo_without_a_feasible_point_ends_as_scipy_says_with_no_x():
    # 8 sampling points in 3-D, none of them feasible (found by hypothesis)
    spec = Spec(method="shgo", problem="rosenbrock_disk", params={"s": 2.0}, dim=3, bounds=((-1.5, 1.5),) * 3,
                x0=None, options={"n": 8, "sampling_method": "simplicial"})
    s, _ = run(spec)
    ref = plain(spec)
    assert ref.x is None and not ref.success
    assert_result_equal(s.result, ref)
    assert s.result.to_dict()["x"] == [None] * 3 and s.result.message == message(ref)


# ---- resume ----------------------------------------------------------------------------------
RESUME = {
    "dual_annealing": spec_for("dual_annealing", "rastrigin", 2, maxiter=10, seed=3),
    "shgo": spec_for("shgo", "himmelblau", 2, n=20),
    "direct": spec_for("direct", "ackley", 2, maxiter=12),
    "basinhopping": spec_for("basinhopping", "rastrigin", 2, niter=8, seed=6),
}


@pytest.mark.parametrize("m", list(OPTIONS))
def test_resume_is_exact(m):
    assert_resumes_exactly(GLOBAL_STEPPERS[m], RESUME[m])


@pytest.mark.parametrize("m", ["dual_annealing", "basinhopping"])
def test_without_a_seed_the_drawn_one_is_kept(m):
    o = dict(RESUME[m].options)
    o.pop("seed")
    spec = Spec(**{**RESUME[m].__dict__, "options": o})
    s = GLOBAL_STEPPERS[m](spec)
    steps = [next(s) for _ in range(3)]
    cp = encode_checkpoint(s.checkpoint())
    rest = list(s)
    assert_result_equal(s.result, plain(spec, seed=s._seed))  # a RandomState(seed), as scipy's
    r = GLOBAL_STEPPERS[m](spec)
    r._restore(decode_checkpoint(cp))
    assert [comparable(x) for x in r] == [comparable(x) for x in rest] and steps


def test_resume_refuses_a_run_that_does_not_retrace():
    spec = RESUME["dual_annealing"]
    s = GLOBAL_STEPPERS["dual_annealing"](spec)
    for _ in range(4):
        next(s)
    cp = s.checkpoint()
    s.close()
    f = get_problem(spec.problem).objective(spec.params)
    r = GLOBAL_STEPPERS["dual_annealing"](spec, objective=lambda x: f(x) + 1e-3 * x[0] ** 2)
    r._restore(cp)
    with pytest.raises(ValueError, match="resume failed"):
        list(r)


# ---- stop ------------------------------------------------------------------------------------
def stepped_until_stop(spec, k):
    s = GLOBAL_STEPPERS[spec.method](spec)
    steps = stop_after(s, k)
    r = s.result
    assert len(steps) == k + 1 and r.stopped and r.reason == "stopped by the user"
    return s, steps


@pytest.mark.parametrize("k", [0, 1, 4])
def test_stop_dual_annealing_at_an_iteration_boundary(k):
    spec = RESUME["dual_annealing"]
    s, steps = stepped_until_stop(spec, k)
    seen, _ = da_observed(spec)
    o, r = seen[k], s.result  # scipy's state when iteration k+1 was about to start
    assert np.array_equal(r.x, o["xbest"]) and r.fun == o["ebest"]
    assert r.nfev == o["nfev"] and r.njev == o["ngev"] and r.nit == k
    assert r.message == "Callback function requested to stop early by returning True"
    assert r.success is False and r.status == 0


@pytest.mark.parametrize("k", [0, 1, 4])
def test_stop_basinhopping_is_scipys_callback_stop(k):
    spec = RESUME["basinhopping"]
    s, steps = stepped_until_stop(spec, k)
    calls = []

    def cb(x, f, accept):
        calls.append(1)
        return len(calls) >= k + 1  # True from the (k+1)-th call (scipy ignores the first)
    assert_result_equal(s.result, plain(spec, cb))


@pytest.mark.parametrize("m", ["shgo", "direct"])
@pytest.mark.parametrize("k", [0, 2])
def test_stop_without_a_scipy_stop(m, k):
    spec = RESUME[m]
    s = GLOBAL_STEPPERS[m](spec)
    steps = stop_after(s, k)
    r = s.result
    assert len(steps) == k + 1 and r.stopped and r.status == STATUS_STOPPED and not r.success
    evals = scipy_evaluations(spec)[:r.nfev]  # what scipy had evaluated when it stopped
    best = min(evals, key=lambda e: e[0])
    assert r.fun == best[0] and np.array_equal(r.x, best[1])
    assert r.nfev == steps[-1].nfev


def test_stop_then_resume_keeps_the_stop():
    spec = RESUME["basinhopping"]
    cp = checkpoint_of_a_stop(GLOBAL_STEPPERS["basinhopping"](spec), 2)
    r = GLOBAL_STEPPERS["basinhopping"](spec)
    r._restore(cp)
    assert list(r) == [] and r.result.stopped
    s2, _ = stepped_until_stop(spec, 2)
    assert r.result.to_dict() == s2.result.to_dict()


# ---- threads, errors, specs ----------------------------------------------------------------
@pytest.mark.parametrize("m", list(OPTIONS))
def test_close_and_drop_end_the_thread(m):
    before = threading.active_count()
    s = GLOBAL_STEPPERS[m](RESUME[m])
    next(s), next(s)
    s.close()
    assert threading.active_count() == before and list(s) == []
    s = GLOBAL_STEPPERS[m](RESUME[m])
    next(s), next(s)
    del s
    gc.collect()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


def test_bad_specs_fail_at_construction():
    bad = [
        spec_for("dual_annealing", maxiter=0),  # scipy would loop forever
        spec_for("direct", nonsense=1),
        Spec(method="shgo", problem="rastrigin", params={"A": 10.0}, dim=2, bounds=None,
             x0=None, options={}),
        Spec(method="basinhopping", problem="rastrigin", params={"A": 10.0}, dim=2,
             bounds=((-1.0, 1.0), (-1.0, 1.0)), x0=(0.5, 0.5), options={}),
        spec_for("basinhopping", seed=1, rng=2),
    ]
    for spec in bad:
        with pytest.raises(ValueError):
            GLOBAL_STEPPERS[spec.method](spec)


def test_scipy_errors_reraise_in_the_consumer():
    spec = spec_for("dual_annealing", restart_temp_ratio=2.0, seed=1)
    s = GLOBAL_STEPPERS["dual_annealing"](spec)
    with pytest.raises(ValueError, match="Restart temperature"):
        next(s)
    assert list(s) == []


@pytest.mark.parametrize("m", list(OPTIONS))
def test_stop_asked_while_scipy_computes(m):
    # from scipy's own thread, mid-step: the run ends at the next observation point and that
    # step is not handed out
    spec = RESUME[m]
    full = list(GLOBAL_STEPPERS[m](spec))
    holder = []
    f = get_problem(spec.problem).objective(spec.params)
    n = full[2].nfev + 1  # during the step after seq 2

    def objective(x, calls=[0]):
        calls[0] += 1
        if calls[0] == n:
            holder[0].request_stop()
        return f(x)
    s = GLOBAL_STEPPERS[m](spec, objective=objective)
    holder.append(s)
    steps = list(s)
    assert s.result.stopped and len(steps) == 3
    assert [comparable(x) for x in steps] == [comparable(x) for x in full[:3]]
