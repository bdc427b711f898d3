"""L-BFGS-B stepper == scipy.optimize.minimize(method="L-BFGS-B"), bitwise; stop; nan/inf;
checkpoints."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from runs.optim import (SpecError, decode_checkpoint, encode_checkpoint, get_problem,
                        make_stepper, restore_stepper, validate_spec)
from runs.optim.lbfgsb import projected_gradient_norm
from runs.optim.oracle import assert_matches_scipy, steps_without_time as _dicts

# minimize(jac=...) as scipy takes it; None: no jac given (forward differences, absolute step eps)
JACS = ["analytic", "2-point", "3-point", "cs", None]


def lb(problem="rosenbrock", x0=None, dim=None, bounds="none", params=None, **options):
    p = get_problem(problem)
    dim = dim or (len(x0) if x0 else p.default_dim)
    spec = {"method": "lbfgsb", "problem": problem, "dim": dim,
            "x0": x0 if x0 is not None else [0.5 + 0.1 * i for i in range(dim)],
            "options": options}
    if bounds == "default":
        spec["bounds"] = p.default_bounds(dim)
    elif bounds != "none":
        spec["bounds"] = bounds
    if params:
        spec["params"] = params
    return validate_spec(spec)


CASES = [
    ("rosenbrock", [-1.2, 1.0], "none", {}),
    ("rosenbrock", [-1.2, 1.0, 0.7, -0.3], "none", {"a": 0.5, "b": 30}),
    ("rosenbrock", [-1.2, 1.0], [[None, 0.5], [-1, None]], {}),
    ("rosenbrock", [2.0, 2.0, 2.0], [[1.5, 3], [None, None], [0, 1]], {}),  # x0 clipped
    ("sphere", [3.0, -2.0, 1.0], [[1, 4], [-5, 5], [None, 0.5]], {}),
    ("rastrigin", [1.3, -2.2, 0.4], "default", {"A": 3}),
    ("ackley", [2.5, -1.5], "none", {"a": 10, "b": 0.5, "c": 3}),
    ("himmelblau", [0.0, 0.0], "default", {}),
    ("styblinski_tang", [0.1, -0.4, 3.0], "default", {}),
    ("beale", [1.0, 1.0], "none", {}),
    ("booth", [-5.0, 8.0], [[-10, 0], [None, 10]], {}),
    ("griewank", [100.0, -50.0, 20.0], "default", {}),
    ("levy", [3.0, -4.0, 2.0], "none", {}),
    ("six_hump_camel", [1.0, 1.0], "default", {}),
    ("goldstein_price", [1.0, 1.5], "default", {}),
]


@pytest.mark.parametrize("jac", JACS)
@pytest.mark.parametrize("problem,x0,bounds,params", CASES)
def test_it_matches_scipy(problem, x0, bounds, params, jac):
    if jac == "cs" and not get_problem(problem).complex_step:
        with pytest.raises(SpecError) as e:  # its f would drop the imaginary part
            lb(problem, x0, bounds=bounds, params=params, jac=jac)
        assert "complex" in e.value.errors["options.jac"][0]
        return
    assert_matches_scipy(lb(problem, x0, bounds=bounds, params=params, jac=jac, maxiter=60))


def test_2_point_is_scipys_relative_step_and_null_its_absolute_default():
    # Not the same numbers: minimize(jac="2-point") differs from minimize() without a jac.
    relative = assert_matches_scipy(lb("rosenbrock", [-1.2, 1.0, 0.5], jac="2-point"))[1]
    default = assert_matches_scipy(lb("rosenbrock", [-1.2, 1.0, 0.5], jac=None))[1]
    assert (relative.nfev, relative.fun) != (default.nfev, default.fun)


@pytest.mark.parametrize("problem", ["rosenbrock", "sphere", "rastrigin", "ackley", "himmelblau", "levy",
                                     "beale", "griewank", "six_hump_camel", "goldstein_price",
                                     "styblinski_tang", "booth"])
def test_complex_step_is_offered_exactly_where_f_takes_complex_numbers(problem):
    import warnings

    from scipy.optimize._numdiff import approx_derivative
    p = get_problem(problem)
    f, g = p.objective(), p.gradient()
    rng = np.random.default_rng(3)
    exact = True
    for _ in range(5):
        x = rng.uniform(*np.array(p.default_bounds(p.default_dim), dtype=float).T)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # ComplexWarning: the imaginary part was dropped
            try:
                exact &= np.allclose(approx_derivative(f, x, method="cs"), g(x), rtol=1e-7, atol=1e-9)
            except Warning:
                exact = False
    assert p.complex_step == exact


@pytest.mark.parametrize("options", [
    dict(maxcor=3, ftol=1e-12, gtol=1e-9),
    dict(maxcor=25, maxls=2),
    dict(maxfun=7),
    dict(maxiter=3),
    dict(jac=None, eps=1e-4),
    dict(jac="2-point", finite_diff_rel_step=1e-4),
    dict(jac="3-point", finite_diff_rel_step=1e-3),
    dict(jac="2-point", eps=1e-4),  # eps is for jac null only, as in scipy
    dict(gtol=10.0),  # converges with no iteration: only step 0
])
def test_options_match_scipy(options):
    options = {"maxiter": 80, **options}
    assert_matches_scipy(lb("rosenbrock", [-1.2, 1.0, 0.3, 2.0], **options))


def test_50d_rosenbrock_matches_scipy():
    x0 = list(np.linspace(-1.5, 1.5, 50))
    assert_matches_scipy(lb("rosenbrock", x0, maxiter=40))


def test_steps_carry_the_protocol_fields_and_extras():
    st = make_stepper(lb("rosenbrock", [-1.2, 1.0], bounds=[[-2, 0.9], [None, None]]))
    steps = list(st)
    s0 = steps[0]
    assert s0.phase == "init" and s0.nit == 0 and s0.nfev == 1 and s0.njev == 1
    assert s0.to_dict()["x"] == [-1.2, 1.0]
    for prev, s in zip(steps, steps[1:]):
        e = s.extra
        assert s.phase == "iterate" and s.nit == prev.nit + 1
        assert "line_search" not in e  # bulky: apart from the light extras
        ls = s.bulky["line_search"]
        assert e["nfev_iter"] == s.nfev - prev.nfev == len(ls["f"])
        assert np.array_equal(ls["x"][-1], s.x) and ls["f"][-1] == s.fun
        assert e["step_norm"] == pytest.approx(np.linalg.norm(s.x - prev.x))
        assert e["step_length"] > 0
        st_ = st
        assert e["pg_norm"] == pytest.approx(projected_gradient_norm(
            s.x, s.jac, st_._low, st_._up, st_._nbd), rel=1e-12, abs=0)
    d = steps[3].to_full_dict()
    assert isinstance(d["extra"]["line_search"]["x"][0], list)
    assert "line_search" not in steps[3].to_dict()["extra"]
    assert steps[0].to_full_dict()["extra"]["line_search"] == {"x": [], "f": []}
    assert st.result.x[0] <= 0.9


@pytest.mark.parametrize("at", [1, 5])
@pytest.mark.parametrize("jac", JACS)
def test_stop_request_matches_a_scipy_callback_stop(at, jac):
    steps, r = assert_matches_scipy(lb("rosenbrock", [-1.2, 1.0], jac=jac), stop_at=at)
    assert r.stopped and r.nit == at and r.status == 99 and not r.success
    assert r.message == "`callback` raised `StopIteration`." and "request" in r.reason


def test_a_stop_at_the_last_iteration_is_still_a_stop_like_scipy():
    steps, r = assert_matches_scipy(lb("rosenbrock", [-1.2, 1.0], maxiter=3), stop_at=3)
    assert r.status == 99 and r.stopped


def test_stop_before_the_first_iteration():
    st = make_stepper(lb("rosenbrock", [-1.2, 1.0]))
    s0 = next(st)
    st.request_stop()
    assert list(st) == []
    r = st.result
    assert r.stopped and r.nit == 0 and r.fun == s0.fun and np.array_equal(r.x, s0.x)


def _nan_beyond(f, limit=0.0):
    return lambda x: np.nan if x[0] > limit else f(x)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf in scipy's differences
@pytest.mark.parametrize("jac", JACS)
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_objective_does_what_scipy_does(jac, value):
    f0 = get_problem("rosenbrock").objective()
    f = lambda x: value if x[0] > 0.0 else f0(x)  # noqa: E731
    steps, r = assert_matches_scipy(lb("rosenbrock", [-1.2, 1.0], jac=jac), objective=f)
    for s in steps:
        s.to_dict()
    d = r.to_dict()
    assert d["reason"] and isinstance(d["message"], str)


def test_nan_at_the_start_gives_a_clear_reason():
    steps, r = assert_matches_scipy(lb("rosenbrock", [-1.2, 1.0], jac=None),
                                    objective=lambda x: np.nan)
    d = r.to_dict()
    assert d["fun"] is None and "non-finite" in d["reason"] and not d["success"]


# ---- checkpoints ----------------------------------------------------------------------
@pytest.mark.parametrize("jac", JACS)
@pytest.mark.parametrize("bounds", ["none", [[-2, 0.8], [None, 3]]])
def test_restore_at_any_step_continues_bitwise(jac, bounds):
    spec = lb("rosenbrock", [-1.2, 1.0], bounds=bounds, jac=jac, maxiter=40)
    full = make_stepper(spec)
    ref = _dicts(list(full))
    n = len(ref)
    rng = np.random.default_rng(n)
    for k in sorted({0, 1, n - 1, n, *rng.integers(0, n, 4)}):
        a = make_stepper(spec)
        head = [next(a) for _ in range(k)]
        b = restore_stepper(spec, decode_checkpoint(encode_checkpoint(a.checkpoint())))
        tail = list(b)
        assert _dicts(head) + _dicts(tail) == ref, f"resume after {k} steps differs"
        r1, r2 = full.result.to_dict(), b.result.to_dict()
        assert r1 == r2


def test_restore_twice_in_a_row():
    spec = lb("levy", [3.0, -4.0, 2.0], jac="3-point")
    ref = _dicts(list(make_stepper(spec)))
    a = make_stepper(spec)
    out = [next(a) for _ in range(3)]
    b = restore_stepper(spec, encode_checkpoint(a.checkpoint()))
    out += [next(b) for _ in range(2)]
    c = restore_stepper(spec, encode_checkpoint(b.checkpoint()))
    out += list(c)
    assert _dicts(out) == ref


def test_restore_after_stop_request_still_stops():
    spec = lb("rosenbrock", [-1.2, 1.0])
    a = make_stepper(spec)
    for _ in range(4):
        next(a)
    a.request_stop()
    b = restore_stepper(spec, a.checkpoint())
    assert list(b) == [] and b.result.stopped and b.result.nit == 3


def test_checkpoint_holds_the_fortran_state():
    a = make_stepper(lb("rosenbrock", [-1.2, 1.0]))
    for _ in range(3):
        next(a)
    cp = a.checkpoint()
    for k in ("wa", "iwa", "task", "ln_task", "lsave", "isave", "dsave", "x", "g"):
        assert k in cp["arrays"]
    assert cp["arrays"]["iwa"].dtype == np.int32
    assert cp["state"]["seq"] == 3 and cp["state"]["lbfgsb"]["sf"]["nfev"] >= 3


# ---- generated specs ------------------------------------------------------------------
@st.composite
def lb_specs(draw):
    problem = draw(st.sampled_from(["rosenbrock", "sphere", "rastrigin", "ackley", "levy",
                                    "himmelblau", "beale", "griewank", "six_hump_camel",
                                    "styblinski_tang", "booth", "goldstein_price"]))
    p = get_problem(problem)
    dim = p.default_dim if p.max_dim == p.min_dim else draw(st.integers(max(2, p.min_dim), 5))
    dom = p.default_bounds(dim)
    x0 = [draw(st.floats(lo, hi)) for lo, hi in dom]
    spec = {"method": "lbfgsb", "problem": problem, "dim": dim, "x0": x0,
            "options": {"jac": draw(st.sampled_from([j for j in JACS if j != "cs" or p.complex_step])),
                        "maxiter": draw(st.integers(1, 30)),
                        "maxcor": draw(st.integers(1, 12)),
                        "maxls": draw(st.integers(1, 25)),
                        "ftol": draw(st.sampled_from([2.220446049250313e-09, 1e-6, 0.0])),
                        "gtol": draw(st.sampled_from([1e-5, 1e-8, 0.0]))}}
    kind = draw(st.sampled_from(["none", "domain", "mixed"]))
    if kind == "domain":
        spec["bounds"] = dom
    elif kind == "mixed":
        spec["bounds"] = [[draw(st.one_of(st.none(), st.floats(lo, (lo + hi) / 2 - 0.1))),
                           draw(st.one_of(st.none(), st.floats((lo + hi) / 2, hi)))]
                          for lo, hi in dom]
    try:
        return validate_spec(spec)
    except SpecError:
        assume(False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lb_specs())
def test_generated_specs_match_scipy(spec):
    assert_matches_scipy(spec)


# ---- coordinates fixed by equal bounds -------------------------------------------------
FIXED_BOUNDS = [
    [[-5, 5], [2, 2]],
    [[-5, 5], [2, 2], [None, 3]],
    [[0.5, 0.5], [None, None], [-1, 2]],
    [[1, 1], [2, 2]],  # every coordinate fixed: minimize answers without iterating
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("jac", JACS)
@pytest.mark.parametrize("bounds", FIXED_BOUNDS)
def test_equal_bounds_fix_a_coordinate_as_minimize_does(bounds, jac):
    # With a numerical gradient minimize drops the fixed coordinates from the problem: the
    # stepper does the same, and a resume after any step goes on bitwise.
    spec = lb("rosenbrock", [0.5] * len(bounds), bounds=bounds, jac=jac)
    steps, r = assert_matches_scipy(spec)
    assert all(s.x[i] == lo for s in steps for i, (lo, hi) in enumerate(bounds) if lo is not None and lo == hi)
    if len(steps) > 2:
        assert_matches_scipy(spec, stop_at=1)
    ref = _dicts(steps)
    for k in range(len(steps) + 1):
        a = make_stepper(spec)
        head = [next(a) for _ in range(k)]
        b = restore_stepper(spec, encode_checkpoint(a.checkpoint()))
        assert _dicts(head) + _dicts(list(b)) == ref, f"resume after {k} steps differs"
        assert b.result.to_dict() == r.to_dict()
    if all(lo is not None and lo == hi for lo, hi in bounds):
        assert r.nit == 0 and r.nfev == 1 and r.success and "fixed" in r.reason
