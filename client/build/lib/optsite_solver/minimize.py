"""Every method of scipy.optimize.minimize, one Step per callback, scipy's own numbers.

Unlike lbfgsb.py and de.py (ports of scipy's loops), this runs scipy's own
`scipy.optimize.minimize(...)` in a background thread. The callback hands each iterate to the
consumer and then *waits* until the consumer asks for the next step, so scipy never runs ahead
of what has been handed out. The numbers are scipy's by construction: counted wrappers around
fun/jac/hess return exactly what the problem's functions return, and the callback only reads.

Thread protocol (see docs/solver-minimize.md):
- `_Runner` owns the thread and two queues; it holds no reference to the stepper, so a stepper
  that is dropped can be collected while scipy waits in the callback. A weakref finalizer (and
  `close()`) then tells the thread to die: the waiting callback (or the next call of fun/jac/
  hess, if scipy is computing) raises the private `_Abandon` (a BaseException, which scipy's
  `except Exception`/`except StopIteration` do not swallow) and scipy unwinds.
- A stop request makes the waiting callback raise StopIteration: scipy ends the run as for any
  callback that stops it (TNC does not know StopIteration: see `_tnc_stopped_result`).
- Exceptions raised by scipy (bad options...) travel to the consumer and re-raise in __next__.

Resume: scipy's state is out of reach, so a checkpoint is (spec, seq, elapsed, last x/f); the
restored stepper re-runs scipy from the start and silently skips the callbacks already handed
out, checks that the last skipped iterate is bitwise the checkpointed x (ValueError if not),
and goes on from there. Its cost is the run's own cost up to that point.
"""
from __future__ import annotations

import inspect
import math
import queue
import sys
import threading
import weakref
from collections import deque

import numpy as np

from .hessians import hessian as analytic_hessian
from .minimize_methods import BOUNDED, CONSTRAINED
from .expressions import hessian_source, problem_of
from .problems import FEASIBILITY_TOL
from .records import Result, Step
from .stepper import Stepper

__all__ = ["MinimizeStepper", "METHOD_NAMES", "BOUNDED", "CONSTRAINED", "USES_JAC", "USES_HESS",
           "TRUST_REGION", "scipy_arguments", "scipy_constraints", "initial_trust_radius",
           "TRIALS_CAP"]

# spec.method (lower case) -> scipy's own spelling
METHOD_NAMES = {
    "nelder-mead": "Nelder-Mead", "powell": "Powell", "cg": "CG", "bfgs": "BFGS",
    "newton-cg": "Newton-CG", "l-bfgs-b": "L-BFGS-B", "tnc": "TNC", "cobyla": "COBYLA",
    "cobyqa": "COBYQA", "slsqp": "SLSQP", "trust-constr": "trust-constr", "dogleg": "dogleg",
    "trust-ncg": "trust-ncg", "trust-krylov": "trust-krylov", "trust-exact": "trust-exact",
}
USES_JAC = frozenset({"cg", "bfgs", "newton-cg", "l-bfgs-b", "tnc", "slsqp", "trust-constr",
                      "dogleg", "trust-ncg", "trust-krylov", "trust-exact"})
USES_HESS = frozenset({"newton-cg", "trust-constr", "dogleg", "trust-ncg", "trust-krylov",
                       "trust-exact"})
# methods whose callback comes once per objective evaluation rather than once per iteration
PER_EVALUATION = frozenset({"cobyqa", "cobyla"})
# methods run by scipy's `_minimize_trust_region`, whose radius the callback is not given
TRUST_REGION = frozenset({"dogleg", "trust-ncg", "trust-krylov", "trust-exact"})

TRIALS_CAP = 64  # points kept per step in bulky["trials"] (the last ones evaluated)
MSG_STOP = "`callback` raised `StopIteration`."
STOP_REASON = "stopped by the user"


def _default_maxiter(method: str, n: int) -> int:
    """scipy's default iteration (callback) budget, for total_steps_hint."""
    return {
        "nelder-mead": 200 * n, "powell": 1000 * n, "cg": 200 * n, "bfgs": 200 * n,
        "newton-cg": 200 * n, "l-bfgs-b": 15000, "tnc": max(100, 10 * n),  # TNC: maxfun
        "cobyla": 1000 * n, "cobyqa": 500 * n,  # their callbacks: one per evaluation
        "slsqp": 100, "trust-constr": 1000,
    }.get(method, 200 * n)  # dogleg, trust-ncg, trust-krylov, trust-exact


def _trust_region_loop():
    """scipy's `_minimize_trust_region` (private), or None in a scipy that has none."""
    try:
        from scipy.optimize._trustregion import _minimize_trust_region
    except ImportError:
        return None
    return _minimize_trust_region


def initial_trust_radius(spec):
    """The radius scipy's trust-region loop starts with for this spec: its option, else the
    loop's own default; None where the loop is not found (no radius is shown then)."""
    loop = _trust_region_loop()
    if loop is None:
        return None
    r = spec.options.get("initial_trust_radius")
    if r is None:
        r = inspect.signature(loop).parameters["initial_trust_radius"].default
    return float(r)


def _current_trust_radius():
    # the loop's local `trust_radius` (its value after this iteration's update), read and never
    # written, from the frame of scipy's loop that is calling the callback; None if not found
    loop = _trust_region_loop()
    if loop is None:
        return None
    code = loop.__code__
    f = sys._getframe(1)
    while f is not None and f.f_code is not code:
        f = f.f_back
    if f is None:
        return None
    r = f.f_locals.get("trust_radius")
    return None if r is None else float(r)


def _hess_argument(choice, problem, params, count):
    from scipy.optimize import BFGS, SR1
    if choice is None:
        return None
    if choice == "analytic":
        h = analytic_hessian(problem, params)
        if h is None:
            raise ValueError(f'hess "analytic": no analytic Hessian for problem {problem!r} '
                             '(use "2-point", "3-point", "bfgs" or "sr1" where the method allows)')
        return count(h)
    if choice == "bfgs":
        return BFGS()  # a fresh (stateful) object per run: re-runs start from the same state
    if choice == "sr1":
        return SR1()
    if choice in ("2-point", "3-point", "cs"):
        return choice
    raise ValueError(f"unknown hess choice {choice!r}")


def scipy_constraints(spec) -> list:
    """The spec's problem's constraints as a scipy user hands them to minimize(method=...):
    dicts with the analytic Jacobian for SLSQP, dicts without for COBYLA (derivative-free),
    NonlinearConstraint for trust-constr and COBYQA; [] for an unconstrained problem.
    ValueError for a method that takes no constraints."""
    cons = problem_of(spec).constraints(spec.params, spec.dim)
    if not cons:
        return []
    m = spec.method
    if m not in CONSTRAINED:
        raise ValueError(
            f"{m} cannot take constraints, and problem {spec.problem!r} has {len(cons)}; "
            f"use one of {', '.join(sorted(CONSTRAINED))}")
    if m == "slsqp":
        return [c.scipy_dict() for c in cons]
    if m == "cobyla":
        return [c.scipy_dict(jac=False) for c in cons]
    return [c.scipy_nonlinear() for c in cons]


def scipy_arguments(spec, fun, grad, *, count_hess=lambda h: h, constraints=None):
    """(fun, x0, kwargs) of the `scipy.optimize.minimize` call a spec stands for.

    `fun`/`grad` are the objective and gradient to hand scipy (counted wrappers in the stepper,
    the raw functions for a plain reference call); `count_hess` wraps an analytic Hessian.
    `constraints`: None for the problem's own (`scipy_constraints`), else what to pass."""
    m = spec.method
    if m not in METHOD_NAMES:
        raise ValueError(f"unknown minimize method {m!r}; one of {', '.join(METHOD_NAMES)}")
    if constraints is None:
        constraints = scipy_constraints(spec)
    o = dict(spec.options)
    jac_choice, hess_choice = o.pop("jac", None), o.pop("hess", None)
    kwargs = {"method": METHOD_NAMES[m]}
    if jac_choice is not None:
        if jac_choice == "analytic":
            if grad is None:
                raise ValueError(f'jac "analytic": problem {spec.problem!r} has no gradient')
            kwargs["jac"] = grad
        elif jac_choice in ("2-point", "3-point", "cs"):
            kwargs["jac"] = jac_choice
        else:
            raise ValueError(f"unknown jac choice {jac_choice!r}")
    h = _hess_argument(hess_choice, hessian_source(spec), spec.params, count_hess)
    if h is not None:
        kwargs["hess"] = h
    if spec.bounds is not None:
        if m not in BOUNDED:
            raise ValueError(f"{m} does not take bounds (those that do: {', '.join(sorted(BOUNDED))})")
        kwargs["bounds"] = [(lo, hi) for lo, hi in spec.bounds]
    if constraints:
        kwargs["constraints"] = constraints
    # null is scipy's default for every option that may be null (maxiter None, or norm's inf that
    # JSON cannot hold): what is left out takes it
    kwargs["options"] = {k: v for k, v in o.items() if v is not None}
    return fun, np.array(spec.x0, dtype=float), kwargs


def result_reason(stopped: bool, success: bool, message: str) -> str:
    """The Result's reason, in words, from scipy's success and message."""
    if stopped:
        return STOP_REASON
    return ("Converged: " if success else "Ended without converging: ") + message.rstrip(". ") + "."


class _Abandon(BaseException):
    """Raised inside the scipy thread to unwind it (the stepper was closed or collected)."""


class _Mismatch(BaseException):
    """Raised inside the scipy thread when a resumed run does not retrace the checkpointed one."""


def _copy_real(x):
    return None if np.iscomplexobj(x) else np.array(x, dtype=float)


class _Runner:
    """The scipy thread and its two queues. No reference to the stepper in here."""

    def __init__(self, method, raw_fun, raw_grad, make_call, skip, last_x, stop):
        self.method = method
        self.raw_fun, self.raw_grad = raw_fun, raw_grad
        self.out: queue.Queue = queue.Queue()  # -> consumer: (kind, payload)
        self.cmd: queue.Queue = queue.Queue()  # -> thread: "go" | "stop" | "kill"
        self.stop = stop  # a stop asked for while scipy computes: the next callback raises
        self.killed = False
        self.skip, self.last_x = skip, last_x
        self.nfev = self.njev = self.nhev = 0
        self.ncb = 0
        self.step_nfev = 0
        self.trials: deque = deque(maxlen=TRIALS_CAP)
        self.last_cb_x = None
        self.last_cb_fun = None
        fun, x0, kwargs = make_call(self._count_fun, self._count_grad, self._count_hess)
        self._call = (fun, x0, kwargs)
        self.thread = threading.Thread(target=self._main, name=f"minimize-{method}", daemon=True)

    # -- counted wrappers (scipy sees exactly the problem's values) --------------------------
    def _count_fun(self, x, *args):
        if self.killed:
            raise _Abandon
        v = self.raw_fun(x, *args)
        self.nfev += 1
        self.step_nfev += 1
        xr = _copy_real(x)
        if xr is not None:  # complex-step points are not places the method visited
            self.trials.append((xr, v))
        return v

    def _count_grad(self, x, *args):
        if self.killed:
            raise _Abandon
        self.njev += 1
        return self.raw_grad(x, *args)

    def _count_hess(self, h):
        def counted(x, *args):
            if self.killed:
                raise _Abandon
            self.nhev += 1
            return h(x, *args)
        return counted

    # -- the thread -------------------------------------------------------------------------
    def start(self):
        self.thread.start()

    def _solve(self):
        """scipy's own call; subclasses (runs/optim/global_methods.py) call another function."""
        from scipy.optimize import minimize
        fun, x0, kwargs = self._call
        return minimize(fun, x0, callback=self._callback, **kwargs)

    def _main(self):
        try:
            res = self._solve()
        except _Abandon:
            self.out.put(("abandoned", None))
            return
        except _Mismatch as e:
            self.out.put(("error", ValueError(str(e))))
            return
        except StopIteration:
            if self.method == "tnc":  # TNC lets a callback's StopIteration out of minimize
                self.out.put(("tnc_stopped", self))  # the counts for the synthesized Result
            else:
                self.out.put(("error", RuntimeError("StopIteration escaped scipy.optimize.minimize")))
            return
        except BaseException as e:  # noqa: BLE001 - everything goes back to the consumer
            self.out.put(("error", e))
            return
        self.out.put(("done", res))

    def _simplex(self):
        # Nelder-Mead's current simplex, read (never written) from the frame of scipy's loop:
        # its local `sim`/`fsim`, sorted, best first, exactly what scipy holds at the callback
        f = sys._getframe(2)
        while f is not None and f.f_code.co_name != "_minimize_neldermead":
            f = f.f_back
        if f is None:
            return None
        loc = f.f_locals
        return np.column_stack([np.array(loc["sim"], dtype=float),
                                np.array(loc["fsim"], dtype=float)])

    def _callback(self, intermediate_result):
        if self.killed:
            raise _Abandon
        self.ncb += 1
        i = self.ncb
        ir = intermediate_result
        if isinstance(ir, np.ndarray):  # TNC calls callback(xk) whatever the parameter's name
            x, fun, ir = np.array(ir, dtype=float), None, None
        else:
            x, fun = np.array(ir.x, dtype=float), ir.get("fun")

        def data():
            d = {"nit": i, "x": x, "fun": fun, "nfev": self.nfev, "njev": self.njev,
                 "nhev": self.nhev, "nfev_step": self.step_nfev,
                 "trials": list(self.trials), "ir": ir}
            if self.method == "nelder-mead":
                d["simplex"] = self._simplex()
            elif self.method in TRUST_REGION:
                d["tr_radius"] = _current_trust_radius()
            return d
        if self._hand_out(i, x, data):
            raise StopIteration

    def _hand_out(self, i, x, data):
        """Skip hand-out i (a resume fast-forwards) or put data() on the queue and wait for the
        consumer; True when the run is to stop here (the caller stops scipy its own way)."""
        if i <= self.skip:  # fast-forward through callbacks handed out before the checkpoint
            self.step_nfev = 0
            self.trials.clear()
            self.last_cb_x = x
            if i == self.skip:
                if not np.array_equal(x, self.last_x, equal_nan=True):
                    raise _Mismatch(
                        f"resume failed: re-running scipy gave x = {x.tolist()} at step {i}, the "
                        f"checkpoint has {np.asarray(self.last_x).tolist()}; the objective is "
                        "not deterministic (or the code changed) so the run cannot continue "
                        "exactly")
                return self.stop
            return False
        if self.stop:
            return True
        d = data()
        self.step_nfev = 0
        self.trials.clear()
        self.last_cb_x = x
        self.out.put(("step", d))
        c = self.cmd.get()
        if c == "kill":
            raise _Abandon
        return c == "stop"

    # -- consumer side ----------------------------------------------------------------------
    def kill(self):
        self.killed = True
        self.cmd.put("kill")

    def join(self, timeout=10.0):
        if self.thread.ident is not None and threading.current_thread() is not self.thread:
            self.thread.join(timeout)


class _ThreadStepper(Stepper):
    """What a stepper driving a scipy function in a `_Runner` thread needs: stop, close, the
    hand-off with the thread, and the (spec, seq, last x/f) checkpoint of a resume by re-run.
    Subclasses implement `_make_runner(skip)` and `_advance()`."""

    def __init__(self, spec, **kw):
        super().__init__(spec, **kw)
        self._runner: _Runner | None = None
        self._finalizer = None
        self._last_x: np.ndarray | None = None
        self._last_fun: float | None = None

    def request_stop(self) -> None:
        self._stop = True
        if self._runner is not None:
            self._runner.stop = True

    def close(self) -> None:
        """End the scipy thread now (the stepper hands out nothing more)."""
        r = self._runner
        if r is not None:
            r.kill()
            r.join()
            self._runner = None
        if self._finalizer is not None:
            self._finalizer.detach()
        self.done = True

    def _start(self, skip):
        r = self._make_runner(skip)
        self._runner = r
        self._finalizer = weakref.finalize(self, r.kill)
        r.start()
        return r

    def _next_from_thread(self, skip):
        """(kind, data) of the thread's next message, starting it (skipping `skip` hand-outs)
        if need be; re-raises scipy's errors; kind "step" leaves the thread waiting."""
        r = self._runner
        if r is None:
            r = self._start(skip=skip)
        else:
            r.cmd.put("stop" if self._stop else "go")
        kind, data = r.out.get()
        if kind == "step":
            return kind, data
        r.join()
        self._runner = None
        if self._finalizer is not None:
            self._finalizer.detach()
        if kind == "error":
            self.done = True
            raise data
        if kind == "abandoned":  # closed under our feet
            self.done = True
        return kind, data

    # -- checkpoint -------------------------------------------------------------------------
    def _save(self, arrays, state):
        st = {"steps": self._seq}
        if self._last_x is not None:
            arrays["last_x"] = np.array(self._last_x, dtype=float)
            arrays["last_fun"] = np.array(self._last_fun, dtype=float)
        if self.result is not None and self.result.nhev is not None:
            st["result_nhev"] = self.result.nhev
        state["minimize"] = st

    def _load(self, arrays, state):
        st = state["minimize"]
        if int(st["steps"]) != self._seq:
            raise ValueError("checkpoint is inconsistent: steps != seq")
        if "last_x" in arrays:
            self._last_x = np.array(arrays["last_x"], dtype=float)
            self._last_fun = float(arrays["last_fun"][()])
        if self.result is not None and "result_nhev" in st:
            self.result.nhev = int(st["result_nhev"])
        # nothing else: the next step re-runs scipy and skips what was handed out


class MinimizeStepper(_ThreadStepper):
    """scipy.optimize.minimize(method=spec.method) one callback at a time."""

    def __init__(self, spec, **kw):
        super().__init__(spec, **kw)
        self.method = spec.method  # per instance: one class serves every minimize method
        # build the call once now so that bad jac/hess/bounds choices fail at construction
        scipy_arguments(spec, self._fun, self._grad)
        # x -> largest constraint violation, evaluated apart from scipy (no count changes)
        self._violation = problem_of(spec).violation(spec.params, spec.dim)
        self._x0 = np.array(spec.x0, dtype=float)
        self._initial_radius = initial_trust_radius(spec) if self.method in TRUST_REGION else None
        if spec.bounds is not None:  # where scipy starts (methods clip x0 into the box)
            lo = np.array([-np.inf if b[0] is None else b[0] for b in spec.bounds], dtype=float)
            hi = np.array([np.inf if b[1] is None else b[1] for b in spec.bounds], dtype=float)
            self._x0 = np.clip(self._x0, lo, hi)

    @property
    def total_steps_hint(self) -> int:
        o = self.spec.options
        for k in ("maxiter", "maxfev", "maxfun"):
            if o.get(k) is not None:
                if self.method == "cobyqa" and k == "maxiter":
                    continue  # cobyqa's callback counts evaluations: maxfev bounds it
                return int(o[k])
        return _default_maxiter(self.method, self.spec.dim)

    # -- stepping ---------------------------------------------------------------------------
    def _grad_at(self, x):
        if self._grad is None:
            return None
        return np.array(self._grad(x), dtype=float)

    def _advance(self):
        if self._seq == 0:
            x = self._x0.copy()
            f = self._fun(x)  # the raw function: scipy's counts and iterates stay untouched
            g = self._grad_at(x)
            self._last_x, self._last_fun = x, float(f)
            extra = {"dx_norm": None, "df": None, "nfev_step": 0, "nhev": 0}
            if g is not None:
                extra.update(grad_norm=float(np.linalg.norm(g)), grad_inf=float(np.max(np.abs(g))))
            if self._initial_radius is not None:  # dogleg, trust-ncg, trust-krylov, trust-exact
                extra["tr_radius"] = self._initial_radius
            self._add_violation(extra, x)
            return Step(0, 0, x, f, 0, 0, g, "init", extra)
        kind, data = self._next_from_thread(self._seq - 1)
        if kind == "step":
            return self._step(data)
        if kind == "done":
            self._finish(data)
        elif kind == "tnc_stopped":
            self._tnc_stopped_result(data)
        return None

    def _make_runner(self, skip):
        spec = self.spec

        def make_call(fun, grad, count_hess):
            return scipy_arguments(spec, fun, None if self._grad is None else grad,
                                   count_hess=count_hess)
        r = _Runner(self.method, self._fun, self._grad if self._grad is not None else None,
                    make_call, skip, self._last_x, self._stop)
        return r

    def _step(self, d):
        x, fun = d["x"], d["fun"]
        if fun is None:  # TNC's callback has x only: f computed apart, uncounted
            fun = self._fun(x)
        ir = d["ir"]
        g = None
        extra = {}
        if ir is not None and self.method == "trust-constr":
            g = np.array(ir["grad"], dtype=float)
            extra["tr_radius"] = float(ir["tr_radius"])
            extra["constr_violation"] = float(ir["constr_violation"])
            extra["optimality"] = float(ir["optimality"])
            extra["scipy_nit"] = int(ir["nit"])
        elif ir is not None and self.method == "cobyla":
            extra["scipy_nf"] = int(ir["nfev"])
            extra["constr_violation"] = float(ir["maxcv"])
        elif ir is not None and "jac" in ir:
            g = np.array(ir["jac"], dtype=float)
        if d.get("tr_radius") is not None:  # dogleg, trust-ncg, trust-krylov, trust-exact
            extra["tr_radius"] = d["tr_radius"]
        if g is None:
            g = self._grad_at(x)
        f = float(fun)
        extra.update(
            dx_norm=float(np.linalg.norm(x - self._last_x)),
            df=f - self._last_fun,
            nfev_step=d["nfev_step"], nhev=d["nhev"])
        if g is not None:
            extra.update(grad_norm=float(np.linalg.norm(g)), grad_inf=float(np.max(np.abs(g))))
        self._add_violation(extra, x)
        bulky = {"trials": np.array([list(tx) + [float(tf)] for tx, tf in d["trials"]],
                                    dtype=float).reshape(-1, x.size + 1)}
        if d.get("simplex") is not None:
            bulky["simplex"] = d["simplex"]
        self._last_x, self._last_fun = x, f
        return Step(self._seq, d["nit"], x, fun, d["nfev"], d["njev"], g, "iterate", extra,
                    bulky=bulky)

    def _add_violation(self, extra, x):
        if self._violation is not None:
            v = float(self._violation(x))
            extra["violation"] = v
            extra["feasible"] = v <= FEASIBILITY_TOL

    def _finish(self, res):
        stopped = bool(self._stop)
        jac = res.get("grad") if self.method == "trust-constr" else res.get("jac")
        message = str(res.get("message", ""))
        success = bool(res.get("success", False))
        reason = result_reason(stopped, success, message)
        nhev = res.get("nhev")
        self.result = Result(
            x=np.array(res.x, dtype=float), fun=res.fun, nit=int(res.get("nit", 0) or 0),
            nfev=int(res.get("nfev", 0) or 0), njev=int(res.get("njev", 0) or 0),
            success=success, status=int(res.get("status", 0)), message=message,
            jac=None if jac is None else np.array(jac, dtype=float), reason=reason,
            stopped=stopped, nhev=None if nhev is None else int(nhev))

    def _tnc_stopped_result(self, r):
        # TNC has no callback halt: its StopIteration leaves minimize without a result. This is
        # the one Result not scipy's own: the last iterate handed out, our counts, and the
        # message minimize() gives every other method stopped by its callback.
        x = np.array(self._last_x, dtype=float)
        self.result = Result(
            x=x, fun=np.float64(self._last_fun), nit=r.ncb, nfev=r.nfev, njev=r.njev,
            success=False, status=99, message=MSG_STOP, jac=self._grad_at(x), reason=STOP_REASON,
            stopped=True)
