"""External runs in the solver core (runs/optim/external.py): a user's own function, bound to an
"external" spec, steps exactly as scipy runs that function; the wire form of its steps and result
makes the same records again; what a client sends that is not a step is refused in words."""

import json
import math

import numpy as np
import pytest
from scipy.optimize import differential_evolution, minimize

from runs.optim import SpecError, decode_checkpoint, encode_checkpoint, make_stepper, restore_stepper, validate_spec
from runs.optim.external import (BULKY_NUMBERS, EXTRA_DEPTH, NotHere, WireError, bind, is_external,
                                 result_from_wire, step_from_wire, wire_step)


def f(x):
    return (x[0] - 1) ** 2 + 10 * (x[1] + 0.5) ** 2 + np.sin(3 * x[0]) * x[1] ** 2


def g(x):
    return np.array([2 * (x[0] - 1) + 3 * np.cos(3 * x[0]) * x[1] ** 2,
                     20 * (x[1] + 0.5) + 2 * np.sin(3 * x[0]) * x[1]])


def h(x):
    return np.array([[2 - 9 * np.sin(3 * x[0]) * x[1] ** 2, 6 * np.cos(3 * x[0]) * x[1]],
                     [6 * np.cos(3 * x[0]) * x[1], 20 + 2 * np.sin(3 * x[0])]])


def external(method, *, gradient=False, hessian=False, **fields):
    data = {"method": method, "problem": "external", "dim": 2,
            "external": {"title": "a function of mine", "gradient": gradient, "hessian": hessian}, **fields}
    return validate_spec(data)


def through_wire(steps, spec):
    """The steps as a client sends them and the server makes them again."""
    return [step_from_wire(json.loads(json.dumps(wire_step(s))), spec, s.seq) for s in steps]


CASES = [
    # (method, spec fields, scipy's minimize keywords)
    ("lbfgsb", dict(x0=[0.3, 0.2], gradient=True), dict(method="L-BFGS-B", jac=g)),
    ("lbfgsb", dict(x0=[0.3, 0.2], bounds=[[-1, 0.8], [-0.4, 1]], options={"jac": None}),
     dict(method="L-BFGS-B", bounds=[(-1, 0.8), (-0.4, 1)])),
    ("bfgs", dict(x0=[0.3, 0.2], gradient=True), dict(method="BFGS", jac=g)),
    ("nelder-mead", dict(x0=[0.3, 0.2]), dict(method="Nelder-Mead")),
    ("trust-exact", dict(x0=[0.3, 0.2], gradient=True, hessian=True), dict(method="trust-exact", jac=g, hess=h)),
    ("cg", dict(x0=[0.3, 0.2], options={"jac": "3-point"}), dict(method="CG", jac="3-point")),
    ("powell", dict(x0=[0.3, 0.2], bounds=[[-1, 2], [-1, 2]]), dict(method="Powell", bounds=[(-1, 2), (-1, 2)])),
]


@pytest.mark.parametrize("method,fields,keywords", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_a_bound_external_spec_steps_as_scipy_runs_the_function(method, fields, keywords):
    gradient, hessian = fields.pop("gradient", False), fields.pop("hessian", False)
    spec = external(method, gradient=gradient, hessian=hessian, **fields)
    assert is_external(spec) and is_external(spec.to_dict())
    stepper = make_stepper(bind(spec, f, g if gradient else None, h if hessian else None))
    steps = list(stepper)
    seen = []

    def callback(intermediate_result):  # scipy passes the OptimizeResult to a parameter of this name
        seen.append(np.copy(intermediate_result.x))
    ref = minimize(f, np.array(fields["x0"], dtype=float), callback=callback, **keywords)
    mine = [s.x for s in steps if s.phase == "iterate"]
    assert len(mine) == len(seen) and all(np.array_equal(a, b) for a, b in zip(mine, seen))
    r = stepper.result
    assert np.array_equal(r.x, ref.x) and r.fun == ref.fun and (r.nit, r.nfev) == (ref.nit, ref.nfev)
    # the wire gives the very same records: the server stores what the client computed
    again = through_wire(steps, spec)
    assert [json.dumps(wire_step(s)) for s in again] == [json.dumps(wire_step(s)) for s in steps]
    assert result_from_wire(json.loads(json.dumps(r.to_dict())), spec).to_dict() == r.to_dict()


def test_de_on_an_external_function_is_scipys_with_its_population_on_the_wire():
    spec = external("de", bounds=[[-2, 2], [-2, 2]], options={"seed": 4, "maxiter": 25})
    stepper = make_stepper(bind(spec, f))
    steps = list(stepper)
    ref = differential_evolution(f, [(-2, 2), (-2, 2)], seed=4, maxiter=25)
    assert np.array_equal(stepper.result.x, ref.x) and stepper.result.nfev == ref.nfev
    again = through_wire(steps, spec)
    assert set(wire_step(steps[1])["bulky"]["population"]) == {"shape", "f8"}  # packed on the wire
    for mine, theirs in zip(steps, again):
        assert set(theirs.bulky) == set(mine.bulky) == {"population", "population_energies"}
        for name in mine.bulky:
            assert np.array_equal(mine.bulky[name], theirs.bulky[name], equal_nan=True)


def test_an_external_run_checkpoints_and_resumes_exactly_in_the_client():
    def timeless(step):
        return {k: v for k, v in step.to_dict().items() if k != "elapsed"}
    spec = bind(external("lbfgsb", x0=[0.3, 0.2], gradient=True), f, g)
    whole = [timeless(s) for s in make_stepper(spec)]
    first = make_stepper(spec)
    head = [timeless(next(first)) for _ in range(3)]
    resumed = restore_stepper(spec, decode_checkpoint(encode_checkpoint(first.checkpoint())))
    assert head + [timeless(s) for s in resumed] == whole


def test_an_unbound_external_spec_refuses_to_compute_in_words():
    spec = external("nelder-mead", x0=[0.3, 0.2])
    with pytest.raises(NotHere, match="computed in its owner's Python process"):
        make_stepper(spec).run()
    with pytest.raises(ValueError, match="pass jac"):
        bind(external("bfgs", x0=[0, 0], gradient=True), f)


@pytest.mark.parametrize("data,field,words", [
    ({"x0": [1, 1]}, "external", "must be an object"),
    ({"x0": [1], "dim": 1, "external": {"title": " "}}, "external.title", "a name for the function"),
    ({"x0": [1], "dim": 1, "external": {"title": "t" * 101}}, "external.title", "at most 100"),
    ({"x0": [1], "dim": 1, "external": {"title": "t", "gradient": "yes"}}, "external.gradient", "true or false"),
    ({"x0": [1], "dim": 1, "external": {"title": "t", "code": "import os"}}, "external.code", "unknown field"),
    ({"x0": [1], "external": {"title": "t"}}, "dim", "required for an external run"),
    ({"x0": [1], "dim": 1, "external": {"title": "t"}, "options": {"jac": "analytic"}}, "options.jac", "no analytic gradient"),
    ({"x0": [1], "dim": 1, "external": {"title": "t"}, "definition": {"name": "x"}}, "definition", "has no definition"),
])
def test_external_specs_are_refused_in_words(data, field, words):
    with pytest.raises(SpecError) as info:
        validate_spec({"method": "lbfgsb", "problem": "external", **data})
    assert any(words in w for w in info.value.errors[field]), info.value.errors


def test_external_belongs_only_to_the_external_problem():
    with pytest.raises(SpecError) as info:
        validate_spec({"method": "lbfgsb", "problem": "rosenbrock", "x0": [0, 0], "external": {"title": "t"}})
    assert "external" in info.value.errors


def good_step(spec):
    return wire_step(next(make_stepper(bind(spec, f, g))))


@pytest.mark.parametrize("change,field,words", [
    (lambda s: s.update(seq=3), "steps[0].seq", "is 3 where 0 was due"),
    (lambda s: s.update(x=[1.0]), "steps[0].x", "list of 2 numbers"),
    (lambda s: s.update(x=[1.0, "1"]), "steps[0].x[1]", "must be a number"),
    (lambda s: s.update(fun=10 ** 400), "steps[0].fun", "finite number"),
    (lambda s: s.update(nfev=-1), "steps[0].nfev", "whole number of at least 0"),
    (lambda s: s.update(nfev=True), "steps[0].nfev", "whole number"),
    (lambda s: s.update(elapsed=None), "steps[0].elapsed", "must be a number"),
    (lambda s: s.update(phase="__init__"), "steps[0].phase", "one of init, iterate, polish"),
    (lambda s: s.update(extra=[1]), "steps[0].extra", "must be an object"),
    (lambda s: s.update(extra={"a": "t" * 5000}), "steps[0].extra.a", "longer than"),
    (lambda s: s.update(extra={"deep": json.loads("[" * 50 + "]" * 50)}), "steps[0].extra.deep" + "[0]" * (EXTRA_DEPTH - 1), "deeper"),
    (lambda s: s.update(extra={"many": list(range(5000))}), "steps[0].extra.many[1998]", "more than"),
    (lambda s: s.update(bulky={"population": [[1, 2], [3]]}), "steps[0].bulky.population", "rows of one length"),
    (lambda s: s.update(bulky={"a/b": [1]}), "steps[0].bulky", "without '/'"),
    (lambda s: s.update(bulky={"p": [1e400 if False else 10 ** 400]}), "steps[0].bulky.p", "too large"),
    (lambda s: s.update(bulky={"p": [0.0] * (BULKY_NUMBERS + 1)}), "steps[0].bulky.p", "more than"),
    (lambda s: s.update(secret=1), "steps[0].secret", "unknown field"),
    (lambda s: s.update(bulky={"p": {"shape": [2, 2], "f8": "AAAA"}}), "steps[0].bulky.p", "must hold 4 float64"),
    (lambda s: s.update(bulky={"p": {"shape": [1], "f8": "!!!!!!!!!!!="}}), "steps[0].bulky.p", "not base64"),
    (lambda s: s.update(bulky={"p": {"shape": [1, 1, 1], "f8": ""}}), "steps[0].bulky.p", "one or two whole numbers"),
    (lambda s: s.update(bulky={"p": {"shape": [10 ** 7], "f8": ""}}), "steps[0].bulky.p", "more than"),
    (lambda s: s.update(bulky={"p": {"shape": [1], "f8": "AAAAAAAAAAA=", "x": 1}}), "steps[0].bulky.p", "a packed array is"),
])
def test_what_is_not_a_step_is_refused_in_words(change, field, words):
    spec = external("lbfgsb", x0=[0.3, 0.2], gradient=True)
    step = good_step(spec)
    step_from_wire(step, spec, 0)  # as sent: taken
    change(step)
    with pytest.raises(WireError) as info:
        step_from_wire(step, spec, 0)
    assert any(words in w for w in info.value.errors.get(field, [])), info.value.errors
    assert info.value.message.startswith(next(iter(info.value.errors)))


@pytest.mark.parametrize("bad", [None, [], "step", 7])
def test_a_step_that_is_not_an_object_is_refused(bad):
    with pytest.raises(WireError, match="must be a step object"):
        step_from_wire(bad, external("nelder-mead", x0=[0, 0]), 0)


def test_a_result_is_checked_field_by_field():
    spec = external("nelder-mead", x0=[0.3, 0.2])
    stepper = make_stepper(bind(spec, f))
    stepper.run()
    good = json.loads(json.dumps(stepper.result.to_dict()))
    assert result_from_wire(good, spec).to_dict() == stepper.result.to_dict()
    for change, field in [(dict(x=[1]), "result.x"), (dict(success="yes"), "result.success"),
                          (dict(status=10 ** 9), "result.status"), (dict(message=["x"]), "result.message"),
                          (dict(rule="mine"), "result.rule"), (dict(nit=-2), "result.nit")]:
        with pytest.raises(WireError) as info:
            result_from_wire({**good, **change}, spec)
        assert field in info.value.errors
    with pytest.raises(WireError):
        result_from_wire("done", spec)
    assert math.isnan(result_from_wire({**good, "fun": None}, spec).fun)


@pytest.mark.parametrize("method,keywords", [("nelder-mead", {}), ("bfgs", {"jac": True}), ("cg", {"jac": True}),
                                             ("powell", {}), ("lbfgsb", {"jac": True})])
def test_the_users_function_is_called_as_often_as_scipy_calls_it(method, keywords):
    """Steps show f and the gradient at points scipy evaluated without costing the user's function an
    evaluation scipy does not make."""
    calls = {"f": 0, "g": 0}

    def counted_f(x):
        calls["f"] += 1
        return f(x)

    def counted_g(x):
        calls["g"] += 1
        return g(x)
    gradient = bool(keywords.get("jac"))
    spec = external(method, x0=[0.3, 0.2], gradient=gradient)
    steps = list(make_stepper(bind(spec, counted_f, counted_g if gradient else None)))
    mine = dict(calls)
    calls.update(f=0, g=0)
    scipy_names = {"nelder-mead": "Nelder-Mead", "bfgs": "BFGS", "cg": "CG", "powell": "Powell", "lbfgsb": "L-BFGS-B"}
    minimize(counted_f, np.array([0.3, 0.2]), method=scipy_names[method], jac=counted_g if gradient else None)
    # never more; fewer where scipy itself evaluates a point again (Powell's line searches do)
    assert mine["f"] <= calls["f"] and mine["g"] <= calls["g"]
    assert mine == calls or method == "powell"
    assert steps[0].fun == f(np.array([0.3, 0.2]))
