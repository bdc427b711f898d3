"""Stopping rules (spec "stop"): each fires at the step an independent reading of an unstopped
run's steps says, ends the run exactly as a plain request_stop() after that step does (and, for
DE and L-BFGS-B, as scipy's own callback stop), survives a checkpoint, and is validated in words.
"""
import math
import time

import numpy as np
import pytest

from runs.optim import (SpecError, decode_checkpoint, encode_checkpoint, get_problem,
                        make_stepper, restore_stepper, validate_spec)
from runs.optim.oracle import scipy_reference, steps_without_time
from runs.optim.records import Result, Step
from runs.optim.stopping import StopRules

pytestmark = pytest.mark.filterwarnings("ignore")  # scipy's OptimizeWarning/RuntimeWarning

X0 = [-1.2, 1.0]
BASE = {  # small budgets: the file stays fast
    "de": {"method": "de", "problem": "rosenbrock", "dim": 2, "bounds": [[-2, 2], [-2, 2]],
           "options": {"seed": 1, "maxiter": 40}},
    "lbfgsb": {"method": "lbfgsb", "problem": "rosenbrock", "dim": 2, "x0": X0,
               "options": {"maxiter": 60}},
    "lbfgsb-fixed": {"method": "lbfgsb", "problem": "rosenbrock", "dim": 3, "x0": [-1.2, 1.0, 1.0],
                     "bounds": [[-2, 2], [-2, 2], [1, 1]], "options": {"maxiter": 60}},
    "nelder-mead": {"method": "nelder-mead", "problem": "rosenbrock", "dim": 2, "x0": X0,
                    "options": {"maxiter": 120}},
    "bfgs": {"method": "bfgs", "problem": "rosenbrock", "dim": 2, "x0": X0,
             "options": {"maxiter": 60}},
    "trust-constr": {"method": "trust-constr", "problem": "rosenbrock", "dim": 2, "x0": X0,
                     "options": {"maxiter": 40}},
    "cobyla": {"method": "cobyla", "problem": "rosenbrock", "dim": 2, "x0": X0,
               "options": {"maxiter": 80}},
    "dual_annealing": {"method": "dual_annealing", "problem": "rastrigin", "dim": 2,
                       "bounds": [[-5.12, 5.12]] * 2, "options": {"maxiter": 25, "seed": 3}},
    "basinhopping": {"method": "basinhopping", "problem": "rastrigin", "dim": 2, "x0": [2.5, 2.6],
                     "options": {"niter": 12, "seed": 3}},
}
CASES = list(BASE)
ORACLE = {"de", "lbfgsb"}  # runs.optim.oracle knows scipy's own call for these
SCIPY_FIELDS = ("fun", "nit", "nfev", "njev", "status", "message", "success", "nhev", "stopped")


def spec(case, stop=None):
    d = dict(BASE[case])
    if stop is not None:
        d["stop"] = stop
    return validate_spec(d)


def run(s, stop_after=None, objective=None):
    """All steps and the Result; with stop_after=k a plain request_stop() after step seq k."""
    st = make_stepper(s, objective=objective)
    steps = []
    try:
        for step in st:
            steps.append(step)
            if step.seq == stop_after:
                st.request_stop()
    finally:
        getattr(st, "close", lambda: None)()
    return steps, st.result


def fstar(s):
    return get_problem(s.problem).known_minimum(s.params, s.dim)["f"]


def expected_seq(steps, stop, f_star=None):
    """Where a rule should fire, read off an unstopped run's steps (written apart from
    runs/optim/stopping.py): the seq and the rule, or None."""
    stall = stop.get("stall")
    best, since = None, 0
    for s in steps:
        if s.phase == "polish":
            continue
        f = float(s.fun)
        ok = math.isfinite(f)
        if stall is not None:
            tol = None if best is None else max(stall.get("atol", 0.0), stall.get("rtol", 0.0) * abs(best))
            if ok and (best is None or best - f > tol):
                best, since = f, 0
            else:
                since += 1
        if "f" in stop and ok and f <= stop["f"]:
            return s.seq, "f"
        if "gap" in stop and ok and f - f_star <= stop["gap"]:
            return s.seq, "gap"
        if "nfev" in stop and s.nfev >= stop["nfev"]:
            return s.seq, "nfev"
        if stall is not None and since >= stall["steps"]:
            return s.seq, "stall"
    return None


def rules_for(case, steps):
    """Rule values that fire part-way through the unstopped run (never at the start step)."""
    s = spec(case)
    checked = [x for x in steps if x.phase != "polish"]
    mid = checked[max(1, len(checked) // 2)]
    f_star = fstar(s)
    return {
        "f": {"f": float(mid.fun)},
        "gap": {"gap": float(mid.fun) - f_star},
        "nfev": {"nfev": int(mid.nfev)},
        # atol: a third of the way from the start to mid-run, so that even a steady descent stalls
        "stall": {"stall": {"steps": 2, "rtol": 1e-3,
                            "atol": abs(float(checked[0].fun) - float(mid.fun)) / 3}},
        "several": {"f": float(mid.fun), "nfev": int(checked[1].nfev) + 1, "stall": {"steps": 3}},
    }


def same_result(a: Result, b: Result):
    for k in SCIPY_FIELDS:
        va, vb = getattr(a, k), getattr(b, k)
        assert va == vb or (isinstance(va, float) and math.isnan(va) and math.isnan(vb)), (k, va, vb)
    assert np.array_equal(a.x, b.x)
    assert (a.jac is None and b.jac is None) or np.array_equal(a.jac, b.jac, equal_nan=True)


_UNSTOPPED = {}


def unstopped(case):
    if case not in _UNSTOPPED:
        _UNSTOPPED[case] = run(spec(case))
    return _UNSTOPPED[case]


@pytest.mark.parametrize("rule", ["f", "gap", "nfev", "stall", "several"])
@pytest.mark.parametrize("case", CASES)
def test_rule_fires_where_the_steps_say_and_ends_as_a_stop_request(case, rule):
    steps0, _ = unstopped(case)
    stop = rules_for(case, steps0)[rule]
    s = spec(case, stop)
    want = expected_seq(steps0, stop, fstar(s))
    assert want is not None and want[0] >= 1, f"pick values that fire part-way ({want})"
    k, name = want
    steps, r = run(s)
    # the steps up to the firing one are the unstopped run's, and none after it but DE's polish
    assert steps_without_time([x for x in steps if x.phase != "polish"]) == \
        steps_without_time(steps0[:k + 1])
    plain_steps, plain = run(spec(case), stop_after=k)
    assert steps_without_time(steps) == steps_without_time(plain_steps)
    same_result(r, plain)
    assert r.stopped and plain.stopped
    assert r.rule == name and plain.rule is None
    assert r.reason.startswith(f"Stopped by the rule {name}" if name != "gap"
                               else "Stopped by the rule f − f*")
    assert f"at step {k}" in r.reason
    assert r.to_dict()["rule"] == name and "rule" not in plain.to_dict()
    if case in ORACLE:  # and what scipy's own callback stop gives
        _, ref = scipy_reference(spec(case), stop_at=k)
        assert np.array_equal(r.x, ref.x) and r.fun == ref.fun
        assert (r.nit, r.nfev, r.message, r.success) == (ref.nit, ref.nfev, ref.message, ref.success)


@pytest.mark.parametrize("rule", ["f", "stall", "nfev"])
@pytest.mark.parametrize("case", CASES)
def test_resume_before_the_firing_step_fires_at_the_same_step(case, rule):
    steps0, _ = unstopped(case)
    s = spec(case, rules_for(case, steps0)[rule])
    steps, r = run(s)
    k = expected_seq(steps0, dict(s.stop_dict()), fstar(s))[0]
    for cut in sorted({max(0, k - 2), k - 1, k}):  # k: just after it fired, before the stop acts
        st = make_stepper(s)
        for step in st:
            if step.seq == cut:
                break
        cp = encode_checkpoint(st.checkpoint())
        getattr(st, "close", lambda: None)()
        st2 = restore_stepper(s, decode_checkpoint(cp))
        rest = list(st2)
        assert steps_without_time(rest) == steps_without_time(steps[cut + 1:]), cut
        assert st2.result.to_dict() == r.to_dict(), cut
        # a finished run's checkpoint keeps the rule too
        done = restore_stepper(s, decode_checkpoint(encode_checkpoint(st2.checkpoint())))
        assert done.result.to_dict() == r.to_dict()


@pytest.mark.parametrize("case, seconds", [("de", 0.3), ("bfgs", 0.08)])
def test_seconds_counts_the_runs_own_compute_time(case, seconds):
    p = get_problem(BASE[case]["problem"])
    f0 = p.objective(p.defaults())

    def slow(x):  # deterministic values, time spent in the objective
        time.sleep(0.004)
        return f0(x)
    s = spec(case, {"seconds": seconds})
    steps, r = run(s, objective=slow)
    k = next(x.seq for x in steps if x.phase != "polish" and x.elapsed >= seconds)
    assert k >= 1
    assert [x.seq for x in steps if x.phase != "polish"][-1] == k
    assert r.rule == "seconds" and f"at step {k}" in r.reason
    _, plain = run(spec(case), stop_after=k, objective=slow)
    same_result(r, plain)


def test_a_user_stop_leaves_rule_none():
    s = spec("de", {"f": -1.0})  # never met: f >= 0
    steps, r = run(s, stop_after=3)
    assert r.stopped and r.rule is None and "rule" not in r.to_dict()
    assert r.reason == run(spec("de"), stop_after=3)[1].reason


def test_polish_steps_are_not_checked():
    steps0, r0 = unstopped("de")
    polish = steps0[-1]
    assert polish.phase == "polish" and polish.fun < min(x.fun for x in steps0[:-1])
    s = spec("de", {"f": float(polish.fun)})  # met by the polish alone
    steps, r = run(s)
    assert r.rule is None and not r.stopped
    same_result(r, r0)


def test_non_finite_f_never_satisfies_f_nor_improves():
    rules = StopRules({"f": 1.0, "stall": (("steps", 2), ("rtol", 0.0), ("atol", 0.0))})

    def step(seq, f):
        return Step(seq, seq, np.zeros(2), f, seq, 0, None, "iterate")
    assert rules.check(step(0, math.nan), 0.0) is None  # no finite f yet: not an improvement
    assert rules.check(step(1, 5.0), 0.0) is None  # the first finite f sets best
    assert rules.check(step(2, -math.inf), 0.0) is None
    state = rules.state()
    assert rules.check(step(3, math.nan), 0.0) == "stall"
    again = StopRules({"f": 1.0, "stall": {"steps": 2}})
    again.load(state)
    assert again.check(step(3, math.nan), 0.0) == "stall"  # the state survives


def test_stall_counts_improvements_that_add_up():
    rules = StopRules({"stall": {"steps": 3, "atol": 1.0}})
    fs = [10.0, 9.6, 9.3, 8.9, 8.8]  # each < 1 better, but 8.9 is 1.1 below 10
    got = [rules.check(Step(i, i, np.zeros(1), f, i, 0, None, "iterate"), 0.0)
           for i, f in enumerate(fs)]
    assert got == [None] * 5


def test_specs_without_stop_keep_their_dict_and_checkpoint():
    for case in ("de", "lbfgsb", "bfgs"):
        d = dict(BASE[case])
        s = validate_spec(d)
        assert s.stop is None
        assert list(s.to_dict()) == ["method", "problem", "params", "dim", "bounds", "x0", "options"]
        assert validate_spec({**d, "stop": None}).to_dict() == s.to_dict()
        assert validate_spec({**d, "stop": {}}) == s
        st = make_stepper(s)
        list(st)
        cp = st.checkpoint()["state"]
        assert "stop" not in cp and "rule" not in cp["result"]
        assert "rule" not in st.result.to_dict()


def test_stop_roundtrips_and_is_hashable():
    s = spec("de", {"stall": {"steps": 4}, "f": 1, "nfev": 30.0, "seconds": 2})
    assert s.stop_dict() == {"f": 1.0, "nfev": 30, "seconds": 2.0,
                             "stall": {"steps": 4, "rtol": 0.0, "atol": 0.0}}
    assert list(s.to_dict()["stop"]) == ["f", "nfev", "seconds", "stall"]
    assert validate_spec(s.to_dict()) == s
    assert hash(validate_spec(s.to_dict())) == hash(s)
    r = Result.from_dict({**run(s)[1].to_dict()})
    assert r.rule is not None


@pytest.mark.parametrize("stop, field, words", [
    ("x", "stop", "must be an object of stopping rules"),
    ({"tol": 1}, "stop.tol", "unknown stopping rule; the rules are f, gap, nfev, seconds, stall"),
    ({"f": "low"}, "stop.f", "must be a number"),
    ({"f": float("inf")}, "stop.f", "must be a finite number"),
    ({"gap": -0.1}, "stop.gap", "must be at least 0"),
    ({"nfev": 0}, "stop.nfev", "must be at least 1"),
    ({"nfev": 2.5}, "stop.nfev", "must be a whole number"),
    ({"seconds": 0}, "stop.seconds", "must be greater than 0"),
    ({"seconds": float("nan")}, "stop.seconds", "must be a finite number"),
    ({"stall": 3}, "stop.stall", "must be an object"),
    ({"stall": {}}, "stop.stall.steps", "is required"),
    ({"stall": {"steps": 0}}, "stop.stall.steps", "must be at least 1"),
    ({"stall": {"steps": 2, "rtol": -1}}, "stop.stall.rtol", "must be at least 0"),
    ({"stall": {"steps": 2, "atol": float("inf")}}, "stop.stall.atol", "must be a finite number"),
    ({"stall": {"steps": 2, "n": 1}}, "stop.stall.n", "unknown key; stall has steps, rtol, atol"),
])
def test_validation_errors_in_words(stop, field, words):
    with pytest.raises(SpecError) as e:
        spec("de", stop)
    assert any(words in m for m in e.value.errors[field]), e.value.errors


def test_gap_is_refused_where_the_minimum_is_unknown():
    d = {"method": "de", "problem": "rosenbrock_disk", "params": {"s": 1.0}, "dim": 2,
         "bounds": [[-1.5, 1.5]] * 2, "stop": {"gap": 0.1}}
    with pytest.raises(SpecError) as e:
        validate_spec(d)
    assert "minimum f* is not known" in e.value.errors["stop.gap"][0]
    validate_spec({**d, "params": {"s": 2.0}})  # known there


@pytest.mark.parametrize("where", ["start", "last"])
@pytest.mark.parametrize("case", CASES)
def test_rules_at_the_start_and_the_last_step_end_as_a_stop_request(case, where):
    # at the start step some methods can only stop later; at the last one a run may already
    # have ended on its own: either way the Result is the plain stop request's
    steps0, _ = unstopped(case)
    checked = [x for x in steps0 if x.phase != "polish"]
    stop = {"f": float(checked[0].fun)} if where == "start" else {"nfev": int(checked[-1].nfev)}
    k, _ = expected_seq(steps0, stop)
    steps, r = run(spec(case, stop))
    plain_steps, plain = run(spec(case), stop_after=k)
    assert steps_without_time(steps) == steps_without_time(plain_steps)
    same_result(r, plain)
    if r.stopped:
        assert r.rule == list(stop)[0] and f"at step {k}" in r.reason
    else:  # ended on its own there: the method's own Result, with a note
        assert r.rule is None and r.reason.startswith(plain.reason)
        assert "was met at step" in r.reason
