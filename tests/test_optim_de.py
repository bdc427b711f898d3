"""DE stepper == scipy.optimize.differential_evolution, bitwise; stop; nan/inf; checkpoints."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from runs.optim import (decode_checkpoint, encode_checkpoint, get_problem, make_stepper,
                        restore_stepper, SpecError, validate_spec)
from runs.optim.methods import DE_STRATEGIES
from runs.optim.oracle import assert_matches_scipy, steps_without_time as _dicts


def de(problem="rosenbrock", dim=None, bounds=None, x0=None, params=None, **options):
    p = get_problem(problem)
    dim = dim or p.default_dim
    spec = {"method": "de", "problem": problem, "dim": dim,
            "bounds": bounds or p.default_bounds(dim), "options": options}
    if x0 is not None:
        spec["x0"] = x0
    if params:
        spec["params"] = params
    return validate_spec(spec)


MATRIX = [
    dict(seed=1, maxiter=30),
    dict(rng=1, maxiter=30),
    dict(seed=3, maxiter=20, updating="deferred"),
    dict(rng=5, maxiter=20, updating="deferred", polish=False),
    dict(seed=2, maxiter=15, strategy="rand1exp", popsize=6),
    dict(seed=2, maxiter=15, strategy="currenttobest1bin", mutation=0.6, recombination=0.3),
    dict(seed=4, maxiter=15, strategy="best2exp", init="sobol", popsize=5),
    dict(seed=4, maxiter=15, strategy="randtobest1bin", init="halton", popsize=5),
    dict(rng=7, maxiter=15, strategy="rand2bin", init="random", popsize=5, tol=0.1),
    dict(seed=8, maxiter=40, tol=0, atol=1e-3),
]


@pytest.mark.parametrize("options", MATRIX)
@pytest.mark.parametrize("problem,dim", [("rosenbrock", 2), ("rastrigin", 3), ("ackley", 2),
                                         ("himmelblau", 2), ("six_hump_camel", 2)])
def test_it_matches_scipy(problem, dim, options):
    assert_matches_scipy(de(problem, dim, **options))


@pytest.mark.parametrize("problem", ["sphere", "styblinski_tang", "beale", "booth", "griewank",
                                     "levy", "goldstein_price"])
def test_every_problem_matches_scipy(problem):
    assert_matches_scipy(de(problem, seed=11, maxiter=12, popsize=5))


def test_coefficients_x0_and_odd_bounds_match_scipy():
    spec = de("rosenbrock", 3, bounds=[[-3, 1], [0.5, 4], [-1, 1.5]], x0=[0.0, 1.0, 1.5],
              params={"a": 0.5, "b": 20}, seed=9, maxiter=25, mutation=[0.2, 1.5])
    steps, r = assert_matches_scipy(spec)
    # x0 replaces the first member before the energies are computed
    assert steps[0].fun <= get_problem("rosenbrock").objective({"a": 0.5, "b": 20})(
        np.array([0.0, 1.0, 1.5]))


def test_maxiter_zero_matches_scipy():
    steps, r = assert_matches_scipy(de(seed=1, maxiter=0))
    assert [s.phase for s in steps] == ["init", "polish"] and r.nit == 0


def test_steps_carry_the_protocol_fields_and_extras():
    st = make_stepper(de(seed=1, maxiter=5))
    steps = list(st)
    assert [s.phase for s in steps] == ["init"] + ["iterate"] * 5 + ["polish"]
    d = steps[1].to_dict()
    assert set(d) == {"seq", "nit", "x", "fun", "nfev", "njev", "jac", "elapsed", "phase", "extra"}
    e = d["extra"]
    assert e["best"] == d["fun"] and e["best"] <= e["median"] <= e["worst"]
    assert "population" not in e  # the light step: bulky arrays apart
    full = steps[1].to_full_dict()["extra"]
    assert len(full["population"]) == 30 and len(full["population"][0]) == 2
    assert full["population_energies"][0] == d["fun"] and len(full["population_energies"]) == 30
    assert {k: v for k, v in full.items() if not k.startswith("population")} == e
    assert {"convergence", "tol_ratio", "converged"} <= set(e)
    pol = steps[-1].to_dict()["extra"]
    assert set(pol) >= {"accepted", "nfev", "message"}
    assert steps[-1].nfev == st.result.nfev
    assert all(b.elapsed >= a.elapsed for a, b in zip(steps, steps[1:]))
    assert st.result.to_dict()["stopped"] is False


def test_population_is_kept_up_to_the_limit_and_left_out_beyond():
    st = make_stepper(de("rastrigin", 30, seed=1, maxiter=1, popsize=15, polish=False))
    assert next(st).bulky["population"].shape == (450, 30)  # 450 * 31 numbers <= 16,000
    st = make_stepper(de("rastrigin", 100, seed=1, maxiter=1, popsize=3, polish=False))
    assert next(st).bulky == {}  # 300 * 101 numbers > 16,000


def test_convergence_extra_is_scipys():
    st = make_stepper(de(seed=1, maxiter=40, polish=False))
    for s in st:
        pass
    e = st._solver.population_energies
    conv = np.std(e) / (abs(np.mean(e)) + np.finfo(float).eps)
    assert s.extra["convergence"] == conv == st._solver.convergence


@pytest.mark.parametrize("polish", [True, False])
@pytest.mark.parametrize("at", [1, 4])
def test_stop_request_matches_a_scipy_callback_stop(polish, at):
    steps, r = assert_matches_scipy(de(seed=1, maxiter=30, polish=polish), stop_at=at)
    assert r.stopped and r.message == "callback function requested stop early"
    assert "request" in r.reason and not r.success and r.nit == at
    assert steps[-1].phase == ("polish" if polish else "iterate")


def test_stop_before_the_first_generation_ends_at_step_0():
    st = make_stepper(de(seed=1, maxiter=30, polish=False))
    next(st)
    st.request_stop()
    assert list(st) == [] and st.result.stopped and st.result.nit == 0


def _nan_region(f):
    return lambda x: np.nan if x[0] > 1.0 else f(x)


def _inf_region(f):
    return lambda x: np.inf if x[1] < -1.0 else f(x)


@pytest.mark.parametrize("wrap", [_nan_region, _inf_region])
@pytest.mark.parametrize("updating", ["immediate", "deferred"])
def test_non_finite_objective_does_what_scipy_does(wrap, updating):
    spec = de(seed=2, maxiter=15, updating=updating)
    f = wrap(get_problem("rosenbrock").objective())
    steps, r = assert_matches_scipy(spec, objective=f)
    for s in steps:
        s.to_dict()  # nan/inf become None, nothing raises
    assert r.reason


def test_all_nan_objective_gives_a_clear_reason():
    steps, r = assert_matches_scipy(de(seed=2, maxiter=3), objective=lambda x: np.nan)
    d = r.to_dict()
    assert d["fun"] is None and "non-finite" in d["reason"]
    assert steps[1].to_dict()["extra"]["median"] is None


# ---- checkpoints ----------------------------------------------------------------------
def _check_resume_everywhere(spec, cuts):
    full = make_stepper(spec)
    ref = _dicts(list(full))
    for k in cuts:
        k = min(k, len(ref))
        a = make_stepper(spec)
        head = [next(a) for _ in range(k)]
        blob = encode_checkpoint(a.checkpoint())
        b = restore_stepper(spec, decode_checkpoint(blob))
        tail = list(b)
        assert _dicts(head) + _dicts(tail) == ref, f"resume after {k} steps differs"
        assert b.result.to_dict() == full.result.to_dict()
        assert b._elapsed >= a._elapsed


CHECKPOINT_SPECS = [
    dict(seed=1, maxiter=12),
    dict(rng=2, maxiter=12, updating="deferred"),
    dict(seed=3, maxiter=12, updating="deferred", strategy="best2bin", init="sobol", popsize=4),
    dict(rng=4, maxiter=12, strategy="randtobest1exp", mutation=0.7),
    dict(seed=5, maxiter=12, polish=False, init="random"),
]


@pytest.mark.parametrize("options", CHECKPOINT_SPECS)
def test_restore_at_any_step_continues_bitwise(options):
    spec = de("rastrigin", 2, **options)
    n = options["maxiter"] + 2
    rng = np.random.default_rng(abs(hash(str(options))) % 2**32)
    _check_resume_everywhere(spec, sorted({0, 1, n - 1, n, *rng.integers(0, n, 3)}))


def test_unseeded_run_checkpoints_exactly():
    spec = de(maxiter=10)
    a = make_stepper(spec)
    for _ in range(4):
        next(a)
    cp = a.checkpoint()
    b = restore_stepper(spec, cp)
    assert _dicts(list(a)) == _dicts(list(b))


def test_restore_after_stop_request_still_stops():
    spec = de(seed=1, maxiter=30)
    a = make_stepper(spec)
    for _ in range(3):
        next(a)
    a.request_stop()
    b = restore_stepper(spec, encode_checkpoint(a.checkpoint()))
    assert _dicts(list(a)) == _dicts(list(b))
    assert b.result.stopped and b.result.nit == 2


def test_restore_of_a_finished_run_keeps_the_result():
    spec = de(seed=1, maxiter=5)
    a = make_stepper(spec)
    r = a.run()
    b = restore_stepper(spec, encode_checkpoint(a.checkpoint()))
    assert b.done and list(b) == [] and b.result.to_dict() == r.to_dict()


def test_restore_refuses_another_spec():
    a = make_stepper(de(seed=1, maxiter=5))
    with pytest.raises(ValueError):
        restore_stepper(de(seed=2, maxiter=5), a.checkpoint())


def test_checkpoint_has_no_pickle_and_json_state():
    a = make_stepper(de(rng=1, maxiter=5))
    next(a)
    cp = a.checkpoint()
    assert all(arr.dtype != object for arr in cp["arrays"].values())
    assert cp["state"]["seq"] == 1 and cp["state"]["de"]["rng"]["kind"] == "Generator"
    assert "random_population_index" in cp["arrays"]


# ---- generated specs ------------------------------------------------------------------
@st.composite
def de_specs(draw):
    problem = draw(st.sampled_from(["rosenbrock", "sphere", "rastrigin", "ackley", "levy",
                                    "himmelblau", "beale", "styblinski_tang"]))
    p = get_problem(problem)
    dim = p.default_dim if p.max_dim == p.min_dim else draw(st.integers(max(2, p.min_dim), 4))
    bounds = []
    for lo, hi in p.default_bounds(dim):
        a = draw(st.floats(lo, hi - 0.5, allow_nan=False))
        b = draw(st.floats(a + 0.25, hi, allow_nan=False))
        bounds.append([a, b])
    opts = {"maxiter": draw(st.integers(0, 8)), "popsize": draw(st.integers(1, 5)),
            "strategy": draw(st.sampled_from(DE_STRATEGIES)),
            "updating": draw(st.sampled_from(["immediate", "deferred"])),
            "init": draw(st.sampled_from(["latinhypercube", "sobol", "halton", "random"])),
            "polish": draw(st.booleans()),
            "recombination": draw(st.floats(0, 1)),
            "mutation": draw(st.one_of(st.floats(0, 1.99),
                                       st.tuples(st.floats(0, 1.99), st.floats(0, 1.99)))),
            "tol": draw(st.sampled_from([0, 0.01, 0.5])),
            "atol": draw(st.sampled_from([0, 1e-3]))}
    if draw(st.booleans()):
        opts["seed"] = draw(st.integers(0, 2**31))
    else:
        opts["rng"] = draw(st.integers(0, 2**63))
    if isinstance(opts["mutation"], tuple):
        opts["mutation"] = list(opts["mutation"])
    try:
        return validate_spec({"method": "de", "problem": problem, "dim": dim,
                              "bounds": bounds, "options": opts})
    except SpecError:  # e.g. rand2* with fewer than 6 members, which scipy cannot run
        assume(False)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(de_specs())
def test_generated_specs_match_scipy(spec):
    assert_matches_scipy(spec)


# ---- populations: stored as bulk blobs, decoded, equal to scipy's own solver --------------
def _scipy_populations(spec):
    """scipy's DifferentialEvolutionSolver for `spec`: the population (problem coordinates) and
    energies at the start, after each generation (its callback) and after solve() (the polish)."""
    from scipy.optimize import differential_evolution
    from scipy.optimize._differentialevolution import DifferentialEvolutionSolver

    o = spec.options
    f = get_problem(spec.problem).objective(spec.params)
    bounds = [tuple(b) for b in spec.bounds]
    mutation = tuple(o["mutation"]) if isinstance(o["mutation"], list) else o["mutation"]
    kw = dict(strategy=o["strategy"], popsize=o["popsize"], tol=o["tol"], mutation=mutation,
              recombination=o["recombination"], init=o["init"], atol=o["atol"], updating=o["updating"])

    def rng():
        return np.random.RandomState(o["seed"]) if o["seed"] is not None else np.random.default_rng(o["rng"])

    start = differential_evolution(f, bounds, maxiter=0, polish=False, rng=rng(), **kw)
    pops = [(start.population, start.population_energies.copy())]

    def callback(intermediate_result):  # scipy passes the OptimizeResult to a parameter of this name
        res = intermediate_result
        pops.append((res.population, res.population_energies.copy()))  # energies: a live buffer

    with DifferentialEvolutionSolver(f, bounds, maxiter=o["maxiter"], polish=o["polish"], rng=rng(),
                                     callback=callback, **kw) as solver:
        solver.solve()
        if o["polish"]:
            pops.append((solver._scale_parameters(solver.population), solver.population_energies.copy()))
    return pops


@pytest.mark.parametrize("options", [
    dict(seed=1, maxiter=40),
    dict(rng=3, maxiter=25, updating="deferred", strategy="rand1bin"),
    dict(seed=5, maxiter=30, strategy="currenttobest1exp", popsize=6, polish=False),
])
@pytest.mark.parametrize("key_steps", [1, 7, 200])
def test_decoded_populations_equal_scipys_solver_at_every_generation(options, key_steps):
    from runs.optim import BulkDecoder, BulkEncoder

    spec = de("rastrigin", 4, **options)
    steps = list(make_stepper(spec))
    enc, dec = BulkEncoder(key_steps=key_steps), BulkDecoder()
    decoded = [dec.decode(s.seq, enc.encode(s.seq, s.bulky)) for s in steps]
    expected = _scipy_populations(spec)
    assert len(decoded) == len(expected) == len(steps)
    for step, got, (pop, energies) in zip(steps, decoded, expected):
        assert np.array_equal(got["population"], pop), f"population of step {step.seq}"
        assert np.array_equal(got["population_energies"], energies), f"energies of step {step.seq}"
        assert got["population_energies"][0] == step.fun


def test_resumed_run_has_the_same_populations():
    spec = de("rastrigin", 3, seed=2, maxiter=20)
    ref = [s.bulky for s in make_stepper(spec)]
    a = make_stepper(spec)
    head = [next(a).bulky for _ in range(8)]
    tail = [s.bulky for s in restore_stepper(spec, decode_checkpoint(encode_checkpoint(a.checkpoint())))]
    for x, y in zip(head + tail, ref, strict=True):
        assert np.array_equal(x["population"], y["population"])
        assert np.array_equal(x["population_energies"], y["population_energies"])


@pytest.mark.parametrize("polish", [True, False])
@pytest.mark.parametrize("bounds", [[[-5, 5], [2, 2]], [[-5, 5], [2, 2], [-3, 3]], [[1, 1], [2, 2]]])
def test_equal_bounds_fix_a_coordinate_as_scipy_does(bounds, polish):
    from runs.optim.oracle import assert_matches_scipy
    spec = validate_spec({"method": "de", "problem": "rosenbrock", "dim": len(bounds), "bounds": bounds,
                          "options": {"maxiter": 30, "seed": 1, "polish": polish}})
    steps, r = assert_matches_scipy(spec)
    assert all(s.x[i] == lo for s in steps for i, (lo, hi) in enumerate(bounds) if lo is not None and lo == hi)
