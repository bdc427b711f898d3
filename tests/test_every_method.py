"""Every method of scipy.optimize.minimize through the app: launched on the socket, run by a real
worker process, stored, and equal to scipy's own call; paused and resumed (a resume runs scipy
again up to the checkpoint) without a number changed; listed by /api/methods/ with scipy's own
defaults."""

import asyncio
import inspect
import json

import numpy as np
import pytest
from scipy.optimize import minimize

from runs.optim import METHODS, get_problem, validate_spec
from runs.optim.minimize import scipy_arguments
from runs.optim.minimize_methods import MINIMIZE_METHODS, _scipy_function
from tests.test_consumers import collect, connect, start, stored, until_steps

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords", "workers")]


def scipy_run(spec: dict):
    """scipy's iterates (x as its callback saw them) and result for the spec, without optsite."""
    s = validate_spec(spec)
    p = get_problem(s.problem)
    fun, x0, kw = scipy_arguments(s, p.objective(s.params), p.gradient(s.params))
    seen = []
    kw["callback"] = lambda *a, **k: seen.append(np.copy(k["intermediate_result"].x if "intermediate_result" in k
                                                          else getattr(a[0], "x", a[0])))
    res = minimize(fun, x0, **kw)
    return seen, res


@pytest.mark.parametrize("method", ["nelder-mead", "powell", "bfgs", "newton-cg", "slsqp", "trust-constr",
                                    "trust-exact", "cobyqa"])
async def test_a_launched_run_of_each_method_is_scipys(alice, method):
    spec = {"method": method, "problem": "rosenbrock", "dim": 3, "x0": [-1.2, 1.0, 0.5]}
    comm = await connect("/ws/runs/", alice)
    run = await start(comm, spec)
    messages = await collect(comm)
    finished = messages[-1]["run"]
    assert finished["status"] == "finished", finished
    steps = await stored(run["id"])
    assert [s["seq"] for s in steps] == list(range(finished["n_steps"]))
    iterates, ref = await asyncio.to_thread(scipy_run, spec)
    if method != "cobyqa":  # COBYQA's callback comes once per evaluation: the steps follow it (tests/test_optim_minimize.py)
        assert [s["x"] for s in steps if s["phase"] == "iterate"] == [list(x) for x in iterates]
    result = finished["result"]
    assert result["x"] == list(ref.x) and result["fun"] == float(ref.fun)
    assert (result["nfev"], result["success"], result["message"]) == (ref.nfev, bool(ref.success), ref.message)
    await comm.disconnect()


async def test_a_paused_and_resumed_minimize_run_goes_on_exactly(alice):
    # 30-D Nelder-Mead: thousands of fast steps; the resume re-runs scipy up to the checkpoint.
    spec = {"method": "nelder-mead", "problem": "rosenbrock", "dim": 30, "x0": [0.3] * 30,
            "options": {"maxiter": 6000, "xatol": 0, "fatol": 0}}
    comm = await connect("/ws/runs/", alice)
    run = await start(comm, spec)
    await until_steps(comm)
    await comm.send_json_to({"type": "pause"})
    before = await collect(comm, until="status")
    assert before[-1]["run"]["status"] == "paused"
    await comm.send_json_to({"type": "resume"})
    messages = await collect(comm, timeout=120)
    assert messages[-1]["run"]["status"] == "finished"
    steps = await stored(run["id"])
    iterates, ref = await asyncio.to_thread(scipy_run, spec)
    assert [s["x"] for s in steps if s["phase"] == "iterate"] == [list(x) for x in iterates]
    assert messages[-1]["run"]["result"]["x"] == list(ref.x)
    await comm.disconnect()


async def test_the_catalogue_lists_every_method_with_scipys_defaults(alice_client):
    data = (await asyncio.to_thread(alice_client.get, "/api/methods/")).json()
    names = [m["name"] for m in data]
    assert set(names) == set(METHODS) == {"de", "lbfgsb", "dual_annealing", "shgo", "direct", "basinhopping", *MINIMIZE_METHODS}
    for m in data:
        if m["name"] not in MINIMIZE_METHODS:
            continue
        scipy_defaults = {k: p.default for k, p in inspect.signature(_scipy_function(m["name"])).parameters.items()}
        for o in m["options"]:
            if o["type"] in ("jac", "hess") or o["name"] not in scipy_defaults:
                continue
            want = scipy_defaults[o["name"]]
            assert o["default"] == (None if isinstance(want, float) and not np.isfinite(want) else want), (m["name"], o)
        json.dumps(m, allow_nan=False)
    # the global methods' defaults are those global_methods.py reads off scipy's signatures
    from runs.optim.global_methods import OPTIONS
    for name, scipy_options in OPTIONS.items():
        offered = {o.name: o.default for o in METHODS[name].options}
        assert offered == {k: scipy_options[k] for k in offered}, name


@pytest.mark.parametrize("spec,field,words", [
    ({"method": "bfgs", "problem": "rosenbrock", "x0": [0, 0], "bounds": [[-1, 1], [-1, 1]]}, "bounds", "takes no bounds"),
    ({"method": "dogleg", "problem": "ackley", "x0": [1, 1]}, "options.hess", "analytic Hessian"),
    ({"method": "trust-constr", "problem": "rosenbrock", "x0": [1, 1], "options": {"jac": "2-point", "hess": "2-point"}},
     "options.hess", "differences of differences"),
    ({"method": "nelder-mead", "problem": "rosenbrock", "x0": [1, 1], "options": {"maxfev": 0}}, "options.maxfev", ""),
    ({"method": "newton-cg", "problem": "rosenbrock", "x0": [1, 1], "options": {"jac": "2-point"}}, "options.jac", ""),
])
async def test_what_a_method_cannot_do_is_said_at_its_field(alice, spec, field, words):
    comm = await connect("/ws/runs/", alice)
    await comm.send_json_to({"type": "start", "spec": spec})
    reply = await comm.receive_json_from(timeout=10)
    assert reply["type"] == "error" and reply["code"] == "invalid_spec" and field in reply["errors"], reply
    assert words in " ".join(reply["errors"][field])
    await comm.disconnect()


@pytest.mark.parametrize("spec", [
    {"method": "dual_annealing", "problem": "rastrigin", "dim": 2, "bounds": [[-5.12, 5.12]] * 2,
     "options": {"maxiter": 40, "seed": 3}},
    {"method": "shgo", "problem": "himmelblau", "dim": 2, "bounds": [[-5, 5]] * 2},
    {"method": "direct", "problem": "rastrigin", "dim": 2, "bounds": [[-5.12, 5.12]] * 2, "options": {"maxiter": 30}},
    {"method": "basinhopping", "problem": "rastrigin", "dim": 2, "x0": [2.2, -1.7], "options": {"niter": 8, "seed": 2}},
], ids=lambda s: s["method"])
async def test_a_launched_run_of_each_global_method_is_scipys(alice, spec):
    from runs.optim.global_methods import scipy_call

    comm = await connect("/ws/runs/", alice)
    run = await start(comm, spec)
    messages = await collect(comm, timeout=60)
    finished = messages[-1]["run"]
    assert finished["status"] == "finished", finished
    assert [s["seq"] for s in await stored(run["id"])] == list(range(finished["n_steps"]))

    def reference():
        s = validate_spec(spec)
        p = get_problem(s.problem)
        function, args, kwargs = scipy_call(s, p.objective(s.params), p.gradient(s.params))
        return function(*args, **kwargs)

    ref = await asyncio.to_thread(reference)
    result = finished["result"]
    assert result["x"] == list(ref.x) and result["fun"] == float(ref.fun) and result["nfev"] == ref.nfev
    await comm.disconnect()


@pytest.mark.parametrize("spec,field", [
    ({"method": "shgo", "problem": "rastrigin", "bounds": [[-5, 5]] * 2, "x0": [1, 1]}, "x0"),
    ({"method": "direct", "problem": "rastrigin"}, "bounds"),
    ({"method": "basinhopping", "problem": "rastrigin", "x0": [1, 1], "bounds": [[-5, 5]] * 2}, "bounds"),
    ({"method": "lbfgsb", "problem": "rosenbrock_disk", "x0": [0, 0]}, "method"),  # constraints it cannot take
    ({"method": "bfgs", "problem": "hs006", "x0": [0, 0]}, "method"),
])
async def test_what_a_method_cannot_take_is_refused_at_its_field(alice, spec, field):
    comm = await connect("/ws/runs/", alice)
    await comm.send_json_to({"type": "start", "spec": spec})
    reply = await comm.receive_json_from(timeout=10)
    assert reply["type"] == "error" and field in reply["errors"], reply
    await comm.disconnect()


@pytest.mark.parametrize("method", ["slsqp", "trust-constr", "cobyqa"])
async def test_a_constrained_problem_runs_with_its_constraints_as_scipy_does(alice, method):
    spec = {"method": method, "problem": "rosenbrock_disk", "dim": 2, "x0": [-1.0, 0.5]}
    comm = await connect("/ws/runs/", alice)
    await start(comm, spec)
    messages = await collect(comm, timeout=60)
    finished = messages[-1]["run"]
    _, ref = await asyncio.to_thread(scipy_run, spec)  # scipy_arguments passes the problem's constraints
    assert finished["result"]["x"] == list(ref.x) and finished["result"]["nfev"] == ref.nfev
    steps = [s for m in messages if m["type"] == "steps" for s in m["steps"]]
    assert steps[-1]["extra"]["feasible"] is True and steps[-1]["extra"]["violation"] <= 1e-6
    await comm.disconnect()


async def test_a_stopping_rule_ends_a_run_as_finished_with_the_rule_named(alice):
    from runs.optim import make_stepper
    from runs.outcomes import run_outcome
    from tests.test_consumers import run_row

    spec = {"method": "lbfgsb", "problem": "rosenbrock", "x0": [-1.2, 1.0], "stop": {"nfev": 20}}
    comm = await connect("/ws/runs/", alice)
    run = await start(comm, spec)
    messages = await collect(comm)
    finished = messages[-1]["run"]
    assert finished["status"] == "finished" and finished["result"]["rule"] == "nfev"
    steps = await stored(run["id"])
    assert steps[-1]["nfev"] >= 20 > steps[-2]["nfev"]  # the first step at or past 20 evaluations
    plain = await asyncio.to_thread(lambda: make_stepper(validate_spec(spec)).run().to_dict())
    assert finished["result"] == plain  # the same as the stepper run by hand, numbers and words
    assert run_outcome(await run_row(run["id"])) == "rule"
    await comm.send_json_to({"type": "start", "spec": {**spec, "stop": {"stall": {"steps": 0}}}})
    reply = await comm.receive_json_from(timeout=10)
    assert reply["code"] == "invalid_spec" and "stop.stall.steps" in reply["errors"], reply
    await comm.disconnect()


async def test_shgo_takes_a_constrained_problems_constraints_as_scipy_does(alice):
    import scipy.optimize as so

    spec = {"method": "shgo", "problem": "rosenbrock_disk", "dim": 2, "bounds": [[-1.5, 1.5]] * 2}
    comm = await connect("/ws/runs/", alice)
    await start(comm, spec)
    messages = await collect(comm, timeout=60)
    result = messages[-1]["run"]["result"]

    def reference():  # scipy's own shgo, the disk written out by hand: x² + y² <= s
        p = get_problem("rosenbrock_disk")
        s = p.defaults()["s"]
        disk = {"type": "ineq", "fun": lambda x: s - x[0] ** 2 - x[1] ** 2, "jac": lambda x: np.array([-2 * x[0], -2 * x[1]])}
        return so.shgo(p.objective(), [(-1.5, 1.5)] * 2, constraints=[disk])

    ref = await asyncio.to_thread(reference)
    assert result["x"] == list(ref.x) and result["fun"] == float(ref.fun) and result["nfev"] == ref.nfev
    free = await asyncio.to_thread(lambda: so.shgo(get_problem("rosenbrock_disk").objective(), [(-1.5, 1.5)] * 2))
    assert free.nfev != ref.nfev  # the constraint made a difference: the run was given it
    await comm.disconnect()
