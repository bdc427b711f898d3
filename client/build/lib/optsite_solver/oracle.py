"""scipy's own answer for a spec: the reference the steppers must equal bitwise.

Used by the tests; also handy for checking a stored run against scipy by hand.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import differential_evolution, minimize

from .expressions import problem_of
from .spec import Spec

__all__ = ["scipy_reference"]


def scipy_reference(spec: Spec, *, objective=None, gradient=None, stop_at: int | None = None):
    """Run scipy.optimize.differential_evolution / minimize(method="L-BFGS-B") for `spec`.

    Returns (iterates, result): iterates is [(x, fun), ...] as scipy's callback saw them (one
    per generation / iteration, copied), result scipy's OptimizeResult. With `stop_at=k` the
    callback asks scipy to stop at iteration k (as a stop request after step k does).
    """
    problem = problem_of(spec)
    f = objective if objective is not None else problem.objective(spec.params)
    g = gradient if gradient is not None else problem.gradient(spec.params)
    o = spec.options
    iterates = []

    def callback(intermediate_result):
        iterates.append((np.copy(intermediate_result.x), intermediate_result.fun))
        if stop_at is not None and len(iterates) >= stop_at:
            raise StopIteration

    if spec.method == "de":
        kw = {}
        if o["seed"] is not None:
            kw["seed"] = o["seed"]
        elif o["rng"] is not None:
            kw["rng"] = o["rng"]
        mutation = tuple(o["mutation"]) if isinstance(o["mutation"], list) else o["mutation"]
        res = differential_evolution(
            f, [tuple(b) for b in spec.bounds], strategy=o["strategy"], maxiter=o["maxiter"],
            popsize=o["popsize"], tol=o["tol"], mutation=mutation,
            recombination=o["recombination"], callback=callback, polish=o["polish"],
            init=o["init"], atol=o["atol"], updating=o["updating"],
            x0=None if spec.x0 is None else np.array(spec.x0), **kw)
        return iterates, res
    jac = g if o["jac"] == "analytic" else o["jac"]  # None and scipy's strings as they are
    bounds = None if spec.bounds is None else [tuple(b) for b in spec.bounds]
    res = minimize(f, np.array(spec.x0), jac=jac, method="L-BFGS-B", bounds=bounds,
                   callback=callback, options={k: o[k] for k in (
                       "maxcor", "ftol", "gtol", "eps", "maxfun", "maxiter", "maxls", "finite_diff_rel_step")})
    return iterates, res


def _same(a, b) -> bool:
    # exact equality, with nan equal to nan (a nan objective is a legitimate, comparable value)
    return np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True)


def assert_matches_scipy(spec: Spec, *, objective=None, gradient=None,
                         stop_at: int | None = None):
    """Run the stepper and scipy for `spec`; raise AssertionError unless iterates (x, fun) and
    the result (x, fun, nit, nfev, message, success; njev/status for L-BFGS-B) are identical.
    Returns (steps, result) of the stepper."""
    from . import make_stepper

    st = make_stepper(spec, objective=objective, gradient=gradient)
    steps = []
    for step in st:
        steps.append(step)
        if stop_at is not None and step.phase == "iterate" and step.nit == stop_at:
            st.request_stop()
    iterates, ref = scipy_reference(spec, objective=objective, gradient=gradient,
                                    stop_at=stop_at)
    mine = [s for s in steps if s.phase == "iterate"]
    assert [s.seq for s in steps] == list(range(len(steps))), "seq must be 0, 1, 2, ..."
    assert steps[0].phase == "init" and steps[0].nit == 0
    assert len(mine) == len(iterates), f"{len(mine)} iterate steps, scipy made {len(iterates)}"
    for s, (x, fun) in zip(mine, iterates):
        assert _same(s.x, x) and _same(s.fun, fun), f"step {s.seq} differs from scipy"
    r = st.result
    for k in ("x", "fun"):
        assert _same(getattr(r, k), ref[k]), f"result.{k}: {getattr(r, k)!r} != {ref[k]!r}"
    # minimize's answer when bounds fix every coordinate has no nit, status nor jac
    absent = {"nit": 0, "status": 0}
    for k in ("nit", "nfev", "message", "success") + (
            ("njev", "status") if spec.method == "lbfgsb" else ()):
        want = ref.get(k, absent.get(k))
        assert getattr(r, k) == want, f"result.{k}: {getattr(r, k)!r} != {want!r}"
    if spec.method == "lbfgsb":
        assert (r.jac is None and ref.get("jac") is None) or _same(r.jac, ref.jac)
    elif "jac" in ref:
        assert _same(r.jac, ref.jac)
    return steps, r


def steps_without_time(steps) -> list[dict]:
    """Steps as complete PROTOCOL dicts (bulky fields included) minus `elapsed`: what must be
    equal between two runs of a spec."""
    out = []
    for s in steps:
        d = s.to_full_dict()
        d.pop("elapsed")
        out.append(d)
    return out
