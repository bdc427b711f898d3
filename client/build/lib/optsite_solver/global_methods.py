"""scipy.optimize's global optimizers step by step, with scipy's own numbers: dual_annealing,
shgo, direct, basinhopping.

As minimize.py does (and with its machinery: `_Runner`, `_ThreadStepper`), each stepper runs
scipy's own function in a background thread, with counted wrappers around fun/jac/hess, and
hands one Step out at each point where scipy lets us look, waiting there until the consumer
asks for the next step. Resume is by deterministic re-run: the restored stepper re-runs scipy,
skips the steps already handed out and checks that the last of them is bitwise the
checkpointed x. See docs/solver-global.md for what one step is per method.

- dual_annealing: one step per annealing iteration. scipy's callback only fires on a new best,
  so the iterations are observed on scipy's own `StrategyChain` object: the first evaluation
  made from `StrategyChain.run` finds that object (one frame look-up), and an instance
  attribute `run` then shadows the method with a wrapper that hands out the iteration that
  has just ended before calling scipy's method. Nothing scipy computes is touched.
- shgo: one step per scipy callback; shgo hands its callback to the local minimizer, so that
  is one local-minimizer iteration (see docs).
- direct: one step per callback(xk).
- basinhopping: one step per callback(x, f, accept), i.e. the initial minimization and each hop.
"""
from __future__ import annotations

import secrets
import sys

import numpy as np

from .minimize import (METHOD_NAMES, _Abandon, _hess_argument, _Runner,
                       _ThreadStepper, result_reason)
from .expressions import hessian_source, problem_of
from .records import Result, Step

__all__ = ["DualAnnealingStepper", "ShgoStepper", "DirectStepper", "BasinhoppingStepper",
           "GLOBAL_STEPPERS", "OPTIONS", "da_temperature", "scipy_call"]

# scipy 1.17.1's keyword names and defaults (tests/test_optim_global.py checks them against
# inspect.signature). A None value is not passed: scipy's own default applies (direct's f_min
# -inf has no JSON form). `seed` and `rng` keep scipy's meanings (seed=int: RandomState).
OPTIONS = {
    "dual_annealing": {"maxiter": 1000, "minimizer_kwargs": None, "initial_temp": 5230.0,
                       "restart_temp_ratio": 2e-05, "visit": 2.62, "accept": -5.0,
                       "maxfun": 10_000_000.0, "seed": None, "rng": None,
                       "no_local_search": False},
    "shgo": {"n": 100, "iters": 1, "minimizer_kwargs": None, "options": None,
             "sampling_method": "simplicial"},
    "direct": {"eps": 0.0001, "maxfun": None, "maxiter": 1000, "locally_biased": True,
               "f_min": None, "f_min_rtol": 0.0001, "vol_tol": 1e-16, "len_tol": 1e-06},
    "basinhopping": {"niter": 100, "T": 1.0, "stepsize": 0.5, "minimizer_kwargs": None,
                     "interval": 50, "niter_success": None, "seed": None, "rng": None,
                     "target_accept_rate": 0.5, "stepwise_factor": 0.9},
}
RANDOM = frozenset({"dual_annealing", "basinhopping"})
MSG_DA_STOP = "Callback function requested to stop early by returning True"  # scipy's words
STATUS_STOPPED = 99  # as minimize.py's stopped TNC: a Result scipy cannot give


class _Halt(BaseException):
    """Raised in the scipy thread to end a run whose function has no callback stop (scipy's
    `except Exception` clauses and context managers let a BaseException through)."""


def da_temperature(i, initial_temp, visit):
    """dual_annealing's temperature at index i of an annealing cycle, scipy's expression
    (same operations in the same order: bitwise scipy's)."""
    t1 = np.exp((visit - 1) * np.log(2.0)) - 1.0
    s = float(i) + 2.0
    t2 = np.exp((visit - 1) * np.log(s)) - 1.0
    return initial_temp * t1 / t2


def _local_kwargs(mk, spec, grad, count_hess):
    """minimizer_kwargs as scipy takes them, from the JSON form: "method" in any case, "jac" /
    "hess" as minimize.py's choices ("analytic" -> the counted problem functions)."""
    if mk is None:
        return None
    out = dict(mk)
    if "method" in out and isinstance(out["method"], str):
        out["method"] = METHOD_NAMES.get(out["method"].lower(), out["method"])
    jac = out.pop("jac", None)
    if jac == "analytic":
        if grad is None:
            raise ValueError(f'minimizer_kwargs jac "analytic": problem {spec.problem!r} has no '
                             "gradient")
        out["jac"] = grad
    elif jac is not None:
        out["jac"] = jac
    hess = _hess_argument(out.pop("hess", None), hessian_source(spec), spec.params, count_hess)
    if hess is not None:
        out["hess"] = hess
    if isinstance(out.get("options"), dict):
        out["options"] = dict(out["options"])  # scipy pops from it (shgo: "args")
    if "bounds" in out and out["bounds"] is not None:
        out["bounds"] = [tuple(b) for b in out["bounds"]]
    return out


def scipy_call(spec, fun, grad, *, count_hess=lambda h: h, seed=None):
    """(function, args, kwargs) of the scipy call a spec stands for, without callback.

    `fun`/`grad` are what scipy is handed (counted wrappers in a stepper, the raw problem
    functions for a reference call); `seed` replaces a missing seed/rng (see `_seed_for`)."""
    import scipy.optimize as so
    m = spec.method
    if m not in OPTIONS:
        raise ValueError(f"unknown global method {m!r}; one of {', '.join(OPTIONS)}")
    unknown = sorted(set(spec.options) - set(OPTIONS[m]))
    if unknown:
        raise ValueError(f"{m} has no option {', '.join(map(repr, unknown))} (scipy's names: "
                         f"{', '.join(OPTIONS[m])})")
    kw = {k: v for k, v in spec.options.items() if v is not None}
    if "minimizer_kwargs" in kw:
        kw["minimizer_kwargs"] = _local_kwargs(kw["minimizer_kwargs"], spec, grad, count_hess)
    if isinstance(kw.get("options"), dict):
        kw["options"] = dict(kw["options"])
    if m in RANDOM and "seed" not in kw and "rng" not in kw and seed is not None:
        kw["seed"] = seed
    if "seed" in kw and "rng" in kw:
        raise ValueError("give seed or rng, not both (scipy refuses both)")
    if m == "basinhopping":
        if spec.bounds is not None:
            raise ValueError("basinhopping takes no bounds: give the local minimizer its own in "
                             "minimizer_kwargs")
        if spec.x0 is None:
            raise ValueError("basinhopping needs x0")
        return so.basinhopping, (fun, np.array(spec.x0, dtype=float)), kw
    if spec.bounds is None or any(lo is None or hi is None for lo, hi in spec.bounds):
        raise ValueError(f"{m} needs finite bounds for every coordinate")
    bounds = [(float(lo), float(hi)) for lo, hi in spec.bounds]
    if m == "dual_annealing":
        if int(kw.get("maxiter", 1000)) < 1:
            # scipy's `for i in range(maxiter)` inside `while not need_to_stop` never ends
            raise ValueError("dual_annealing needs maxiter >= 1 (scipy loops forever on 0)")
        if spec.x0 is not None:
            kw["x0"] = np.array(spec.x0, dtype=float)
        return so.dual_annealing, (fun, bounds), kw
    if spec.x0 is not None:
        raise ValueError(f"{m} takes no x0")
    if m == "shgo":
        constraints = problem_of(spec).constraints(spec.params, spec.dim)
        if constraints:  # shgo takes minimize's dict form (and hands it to its local searches)
            kw["constraints"] = [c.scipy_dict() for c in constraints]
        return so.shgo, (fun, bounds), kw
    return so.direct, (fun, bounds), kw


def _message(res) -> str:
    msg = res.get("message", "")
    return "; ".join(map(str, msg)) if isinstance(msg, (list, tuple)) else str(msg)


class _GlobalRunner(_Runner):
    """A `_Runner` whose thread calls a global optimizer; hand-outs are counted from 1."""

    def __init__(self, method, raw_fun, raw_grad, make_call, skip, last_x, stop):
        self.best_f, self.best_x = np.inf, None
        super().__init__(method, raw_fun, raw_grad, make_call, skip, last_x, stop)
        self.thread.name = f"global-{method}"
        self.nout = 0  # hand-outs so far (skipped ones included)
        self.nfev_out = -1  # nfev at the last hand-out

    def _count_fun(self, x, *args):
        v = _Runner._count_fun(self, x, *args)
        if v < self.best_f:  # the best point evaluated: what a stop without scipy's stop reports
            self.best_f, self.best_x = v, np.array(x, dtype=float)
        return v

    def _emit(self, nit, x, fun, phase, extra):
        """Hand out (or skip, when resuming) one step; True when the run is to stop here."""
        self.nout += 1
        self.nfev_out = self.nfev
        x = np.array(x, dtype=float)
        return self._hand_out(self.nout, x, lambda: {
            "nit": nit, "x": x, "fun": fun, "phase": phase, "extra": extra() if callable(extra)
            else extra, "nfev": self.nfev, "njev": self.njev, "nhev": self.nhev,
            "nfev_step": self.step_nfev, "trials": list(self.trials)})

    def _solve(self):
        func, args, kw = self._call
        try:
            res = self._scipy(func, args, kw)
        except _Halt:
            res = self._halted()
            res["halted"] = True
        return res

    def _scipy(self, func, args, kw):  # pragma: no cover - per method
        raise NotImplementedError

    def _halted(self) -> dict:  # pragma: no cover - per method
        raise NotImplementedError


# -- dual_annealing -------------------------------------------------------------------------
def _run_code():
    from scipy.optimize._dual_annealing import StrategyChain
    return StrategyChain.run.__code__


class _DARunner(_GlobalRunner):
    def __init__(self, *a, initial_temp, visit):
        self.chain = None
        self.initial_temp, self.visit = initial_temp, visit
        self.minima: list = []  # [f, context] of scipy's callbacks since the last step
        self.cycle_i = None  # index in the annealing cycle of the iteration under way
        self.ncalls = 0  # StrategyChain.run calls
        super().__init__(*a)

    def _scipy(self, func, args, kw):
        self._code = _run_code()
        res = func(*args, callback=self._minimum, **kw)
        if self.nfev != self.nfev_out:  # the last iteration (or the part maxfun left of it)
            self._emit(int(res.nit), res.x, res.fun, "iterate", self._extra(
                complete=self.ncalls == int(res.nit)))
        return res

    def _minimum(self, x, f, context):
        self.minima.append([float(f), int(context)])
        return None  # never True: a stop ends the run at an iteration boundary (_run)

    def _count_fun(self, x, *args):
        if self.chain is None and not self.killed:
            f = sys._getframe(2)  # counted <- ObjectiveFunWrapper.fun <- its caller
            if f.f_code is self._code:
                self._hook(f)
        return _GlobalRunner._count_fun(self, x, *args)

    def _hook(self, run_frame):
        # the first evaluation inside StrategyChain.run of iteration 0: scipy's objects are
        # set up; shadow the chain's `run` to see every later iteration start
        loc = run_frame.f_locals
        chain = self.chain = loc["self"]
        orig = chain.run
        self.cycle_i = int(loc["step"])
        self.ncalls = 1

        def run(step, temperature):
            if self._emit(self.ncalls, chain.energy_state.xbest, chain.energy_state.ebest,
                          "iterate", self._extra):
                raise _Halt
            self.cycle_i = int(step)
            self.ncalls += 1
            return orig(step, temperature)
        chain.run = run
        es = chain.energy_state
        if self._emit(0, es.xbest, es.ebest, "init", self._extra):
            raise _Halt

    def _extra(self, complete=True):
        es = self.chain.energy_state if self.chain is not None else None
        minima, self.minima = self.minima, []
        if es is None:
            return {"minima": minima, "context": minima[-1][1] if minima else None}
        i = self.cycle_i
        return {
            "temperature": float(da_temperature(i, self.initial_temp, self.visit)),
            "cycle_index": i,  # restarts from 0 after each re-annealing
            "reannealed": i == 0 and self.ncalls > 1,
            "current_fun": float(es.current_energy),
            "current_x": np.array(es.current_location, dtype=float).tolist(),
            "minima": minima,  # [f, context] of each new best found (scipy's callback calls)
            "context": minima[-1][1] if minima else None,
            "complete": complete,
        }

    def _emit(self, nit, x, fun, phase, extra):
        stop = _GlobalRunner._emit(self, nit, x, fun, phase, extra)
        self.minima = []  # they belonged to this step, handed out or skipped
        return stop

    def _halted(self):
        # what dual_annealing returns when its callback returns True (with the iteration count
        # of the boundary where the stop came)
        es, fw = self.chain.energy_state, self.chain.func_wrapper
        # nfev is ours: a stop at the start step is raised from inside scipy's wrapper, which
        # has counted an evaluation that was never made
        return {"x": es.xbest, "fun": es.ebest, "nit": self.ncalls - (self.nout == 1),
                "nfev": self.nfev, "njev": fw.ngev, "nhev": fw.nhev, "success": False,
                "status": 0, "message": [MSG_DA_STOP]}


# -- shgo -----------------------------------------------------------------------------------
class _ShgoRunner(_GlobalRunner):
    def __init__(self, *a):
        self.shc = None
        self.local_frame = None
        self.nlocal = 0
        super().__init__(*a)

    def _scipy(self, func, args, kw):
        from scipy.optimize._shgo import SHGO
        self._code = SHGO.minimize.__code__
        return func(*args, callback=self._callback, **kw)

    def _callback(self, intermediate_result):
        if self.killed:
            raise _Abandon
        ir = intermediate_result
        if isinstance(ir, np.ndarray):  # TNC (and others) pass x alone
            x, fun = np.array(ir, dtype=float), None
        else:
            x, fun = np.array(ir.x, dtype=float), ir.get("fun")
        f = sys._getframe(1)
        while f is not None and f.f_code is not self._code:
            f = f.f_back
        start = None
        if f is not None:  # SHGO.minimize(self, x_min, ind): which local minimization this is
            if f is not self.local_frame:
                self.local_frame = f
                self.nlocal += 1
            loc = f.f_locals
            self.shc = loc["self"]
            start = np.array(loc["x_min"], dtype=float).tolist()
        shc = self.shc
        if fun is None:
            fun = self.raw_fun(x)  # uncounted: scipy's counts stay its own
        extra = {"local_index": self.nlocal, "local_start": start,
                 "shgo_nit": None if shc is None else int(shc.iters_done) + 1}
        if self._emit(self.nout + 1, x, fun, "iterate", extra):
            raise _Halt

    def _halted(self):
        shc = self.shc
        return {"x": self.best_x, "fun": self.best_f,
                "nit": 0 if shc is None else int(shc.iters_done), "nfev": self.nfev,
                "nljev": self.njev, "nlhev": self.nhev, "success": False,
                "status": STATUS_STOPPED, "message": _NO_STOP_MSG}


_NO_STOP_MSG = ("stopped on request; scipy has no callback stop here: x/fun are the best point "
                "evaluated so far")


# -- direct ---------------------------------------------------------------------------------
class _DirectRunner(_GlobalRunner):
    def _scipy(self, func, args, kw):
        return func(*args, callback=self._callback, **kw)

    def _callback(self, xk):
        if self.killed:
            raise _Abandon
        x = np.array(xk, dtype=float)
        extra = {"best_fun": float(self.best_f), "best_x": self.best_x.tolist()}
        # scipy's callback has x only; it is the last point evaluated, whose f we hold
        if self.trials and np.array_equal(self.trials[-1][0], x):
            f = self.trials[-1][1]
        else:  # not so in some other scipy version: f apart, uncounted
            f = self.raw_fun(x)
        if self._emit(self.nout + 1, x, float(np.asarray(f).item()), "iterate", extra):
            raise _Halt

    def _halted(self):
        return {"x": self.best_x, "fun": self.best_f, "nit": self.nout, "nfev": self.nfev,
                "success": False, "status": STATUS_STOPPED, "message": _NO_STOP_MSG}


# -- basinhopping ---------------------------------------------------------------------------
class _BHRunner(_GlobalRunner):
    def __init__(self, *a):
        self.naccept = self.nreject = 0
        super().__init__(*a)

    def _scipy(self, func, args, kw):
        return func(*args, callback=self._callback, **kw)

    def _callback(self, x, f, accept):
        if self.killed:
            raise _Abandon
        bh = sys._getframe(1).f_locals.get("bh")  # basinhopping's own runner object
        hop = self.nout  # 0: the initial minimization, then one per hop
        if hop:
            if accept:
                self.naccept += 1
            else:
                self.nreject += 1
        extra = {"accepted": bool(accept), "naccept": self.naccept, "nreject": self.nreject,
                 "local_nfev": self.step_nfev}
        if bh is not None:
            ts = bh.step_taking
            size = getattr(getattr(ts, "takestep", ts), "stepsize", None)
            extra["stepsize"] = None if size is None else float(size)  # the one this hop used
            best = bh.storage.minres
            extra["best_fun"] = float(best.fun)
            extra["best_x"] = np.array(best.x, dtype=float).tolist()
        # scipy's own stop: True from the callback (it ignores the value after the first local
        # minimization, so the earliest stop is at the end of the first hop)
        return True if self._emit(hop, x, f, "init" if hop == 0 else "iterate", extra) else None


# -- the steppers -----------------------------------------------------------------------------

class _GlobalStepper(_ThreadStepper):
    method = ""
    _runner_cls = _GlobalRunner

    def __init__(self, spec, **kw):
        if spec.method != self.method:
            raise ValueError(f"{type(self).__name__} runs {self.method!r}, not {spec.method!r}")
        super().__init__(spec, **kw)
        o = spec.options
        # a missing seed/rng would be numpy's global state: not re-runnable. Draw one (same
        # distribution, a fresh RandomState) and keep it in the checkpoint.
        self._seed = (secrets.randbits(32) if self.method in RANDOM and o.get("seed") is None
                      and o.get("rng") is None else None)
        scipy_call(spec, self._fun, self._grad, seed=self._seed)  # bad specs fail now

    @property
    def total_steps_hint(self) -> int:
        return 100

    def _runner_kwargs(self):
        return {}

    def _make_runner(self, skip):
        spec, seed = self.spec, self._seed

        def make_call(fun, grad, count_hess):
            return scipy_call(spec, fun, None if self._grad is None else grad,
                              count_hess=count_hess, seed=seed)
        return self._runner_cls(self.method, self._fun, self._grad, make_call, skip,
                                self._last_x, self._stop, **self._runner_kwargs())

    def _advance(self):
        kind, data = self._next_from_thread(self._seq)  # every step comes from the thread
        if kind == "step":
            return self._step(data)
        if kind == "done":
            self._finish(data)
        return None

    def _step(self, d):
        x, fun = d["x"], d["fun"]
        f = float(fun)
        extra = dict(d["extra"])
        first = self._last_x is None
        extra.update(dx_norm=None if first else float(np.linalg.norm(x - self._last_x)),
                     df=None if first else f - self._last_fun, nfev_step=d["nfev_step"],
                     nhev=d["nhev"])
        bulky = {"trials": np.array([list(tx) + [float(tf)] for tx, tf in d["trials"]],
                                    dtype=float).reshape(-1, x.size + 1)}
        self._last_x, self._last_fun = x, f
        return Step(self._seq, d["nit"], x, fun, d["nfev"], d["njev"], None, d["phase"], extra,
                    bulky=bulky)

    def _finish(self, res):
        halted = bool(res.get("halted", False))
        stopped = halted or (self._stop and self._scipy_stopped(res))
        message = _message(res)
        success = bool(res.get("success", False))
        reason = result_reason(stopped, success, message)
        njev = res.get("njev", res.get("nljev", 0))
        nhev = res.get("nhev", res.get("nlhev"))
        # shgo finding no feasible point answers x None: a point of NaN here (null in JSON)
        x = np.full(self.spec.dim, np.nan) if res["x"] is None else np.array(res["x"], dtype=float)
        self.result = Result(
            x=x, fun=res["fun"], nit=int(res.get("nit", 0) or 0),
            nfev=int(res.get("nfev", 0) or 0), njev=int(njev or 0), success=success,
            status=int(res.get("status", 0)), message=message, jac=None, reason=reason,
            stopped=bool(stopped), nhev=None if nhev is None else int(nhev))

    def _scipy_stopped(self, res) -> bool:
        return False

    # the drawn seed is part of what makes the re-run the same run
    def _save(self, arrays, state):
        super()._save(arrays, state)
        state["global"] = {"seed": self._seed}

    def _load(self, arrays, state):
        super()._load(arrays, state)
        self._seed = state["global"]["seed"]


class DualAnnealingStepper(_GlobalStepper):
    """scipy.optimize.dual_annealing, one step per annealing iteration (seq 0: the start)."""

    method = "dual_annealing"
    _runner_cls = _DARunner

    def _runner_kwargs(self):
        o = self.spec.options
        return {"initial_temp": o.get("initial_temp") or OPTIONS[self.method]["initial_temp"],
                "visit": o.get("visit") or OPTIONS[self.method]["visit"]}

    @property
    def total_steps_hint(self) -> int:
        return int(self.spec.options.get("maxiter") or 1000) + 1


class ShgoStepper(_GlobalStepper):
    """scipy.optimize.shgo, one step per callback (a local-minimizer iteration)."""

    method = "shgo"
    _runner_cls = _ShgoRunner


class DirectStepper(_GlobalStepper):
    """scipy.optimize.direct, one step per callback(xk)."""

    method = "direct"
    _runner_cls = _DirectRunner

    @property
    def total_steps_hint(self) -> int:
        return int(self.spec.options.get("maxiter") or 1000)


class BasinhoppingStepper(_GlobalStepper):
    """scipy.optimize.basinhopping, one step per callback: the initial minimum, then each hop."""

    method = "basinhopping"
    _runner_cls = _BHRunner

    @property
    def total_steps_hint(self) -> int:
        return int(self.spec.options.get("niter") or 100) + 1

    def _scipy_stopped(self, res):
        return _message(res).startswith("callback function requested stop")


GLOBAL_STEPPERS = {c.method: c for c in (DualAnnealingStepper, ShgoStepper, DirectStepper,
                                         BasinhoppingStepper)}
