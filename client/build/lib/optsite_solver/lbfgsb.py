"""L-BFGS-B, one iteration per step, bitwise equal to
scipy.optimize.minimize(method="L-BFGS-B").

This is _minimize_lbfgsb's reverse-communication loop (scipy 1.17: C `setulb`) cut open at
NEW_X, with the same scalar function (caching, finite differences, counters).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy.optimize import _lbfgsb
from scipy.optimize._constraints import old_bound_to_new
from scipy.optimize._lbfgsb_py import status_messages, task_messages
from scipy.optimize._optimize import _prepare_scalar_function

from .records import Result, Step
from .stepper import Stepper

__all__ = ["LBFGSBStepper", "projected_gradient_norm"]

START, NEW_X, FG, CONVERGENCE, STOP, ABNORMAL = 0, 1, 3, 4, 5, 8
MSG_STOP = "`callback` raised `StopIteration`."  # minimize()'s words for a callback stop
FG_LNSRCH = 302  # task[1] of an evaluation the line search asked for (301: the start point)

_REASONS = {
    401: "Converged: the largest component of the projected gradient is at most gtol.",
    402: "Converged: f decreased by less than ftol (relative) in the last iteration.",
    502: "Stopped by the evaluation limit (maxfun) before converging.",
    504: "Stopped by the iteration limit (maxiter) before converging.",
    505: "Stopped on request.",
    601: "Ended with a warning: rounding errors prevent further progress.",
    602: "Ended with a warning: the line search step hit its upper limit.",
    603: "Ended with a warning: the line search step hit its lower limit.",
    604: "Ended with a warning: the line search interval became too small (xtol).",
}
_ABNORMAL = ("The line search could not find a point that decreases f enough; this usually means "
             "an inaccurate gradient, a non-smooth function or non-finite values.")


def projected_gradient_norm(x, g, low, up, nbd) -> float:
    """max |proj g_i| as L-BFGS-B's projgr computes it (nbd: 0 free, 1 lower, 2 both, 3 upper)."""
    gi = np.array(g, dtype=float)
    neg, pos = gi < 0, ~(gi < 0) & (nbd != 0) & (nbd <= 2)
    neg &= nbd >= 2
    gi[neg] = np.maximum(x[neg] - up[neg], gi[neg])
    gi[pos] = np.minimum(x[pos] - low[pos], gi[pos])
    return float(np.max(np.abs(gi))) if gi.size else 0.0


class LBFGSBStepper(Stepper):
    method = "lbfgsb"

    def __init__(self, spec, **kw):
        super().__init__(spec, **kw)
        o = spec.options
        if o["jac"] == "analytic":
            if self._grad is None:
                raise ValueError('jac "analytic" needs a gradient')
            self._jac = self._grad
        else:
            # None is minimize's default (forward differences, absolute step eps); "2-point",
            # "3-point" and "cs" are minimize(jac=...) (relative steps, finite_diff_rel_step)
            self._jac = o["jac"]
        self._rel_step = o.get("finite_diff_rel_step")
        self._m = int(o["maxcor"])
        self._factr = o["ftol"] / np.finfo(float).eps
        self._pgtol = o["gtol"]
        self._eps = o["eps"]
        self._maxfun = o["maxfun"]
        self._maxiter = o["maxiter"]
        self._maxls = int(o["maxls"])

        x0 = np.asarray(spec.x0, dtype=float).ravel()
        n = x0.size
        if spec.bounds is None:
            self._bounds = None
        else:
            # what minimize hands _minimize_lbfgsb (old-style pairs, None = open) and how it
            # reads them back (+-inf); x0 is clipped into the box, as scipy does
            self._bounds = np.array(old_bound_to_new(list(spec.bounds)))
            x0 = np.clip(x0, self._bounds[0], self._bounds[1])
        self._x0 = x0
        self._nbd = np.zeros(n, np.int32)
        self._low = np.zeros(n, np.float64)
        self._up = np.zeros(n, np.float64)
        if self._bounds is not None:
            bounds_map = {(-np.inf, np.inf): 0, (1, np.inf): 1, (1, 1): 2, (-np.inf, 1): 3}
            for i in range(n):
                L, U = self._bounds[0, i], self._bounds[1, i]
                if not np.isinf(L):
                    self._low[i] = L
                    L = 1
                if not np.isinf(U):
                    self._up[i] = U
                    U = 1
                self._nbd[i] = bounds_map[L, U]
        m = self._m
        self._x = np.array(x0, dtype=np.float64)
        self._f = np.array(0.0, dtype=np.float64)
        self._g = np.zeros((n,), dtype=np.float64)
        self._wa = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m, np.float64)
        self._iwa = np.zeros(3 * n, dtype=np.int32)
        self._task = np.zeros(2, dtype=np.int32)
        self._ln_task = np.zeros(2, dtype=np.int32)
        self._lsave = np.zeros(4, dtype=np.int32)
        self._isave = np.zeros(44, dtype=np.int32)
        self._dsave = np.zeros(29, dtype=np.float64)
        self._nit = 0
        self._phase = "start"
        self._sf = None
        self._prev_nfev = self._prev_njev = 0

    def _make_sf(self, x):
        # evaluates f and g at x, like _minimize_lbfgsb does at x0
        self._sf = _prepare_scalar_function(
            self._fun, x, jac=self._jac, args=(), epsilon=self._eps, bounds=self._bounds,
            finite_diff_rel_step=self._rel_step, workers=None)
        self._fg = self._sf.fun_and_grad

    # -- stepping -------------------------------------------------------------------------
    def _advance(self):
        task = self._task
        if self._phase == "start":
            self._make_sf(self._x0)
            sf = self._sf
            self._phase = "iterate"
            self._prev_nfev, self._prev_njev = sf.nfev, sf.ngev
            pg = projected_gradient_norm(self._x, sf.g, self._low, self._up, self._nbd)
            return Step(self._seq, 0, self._x.copy(), sf.f, sf.nfev, sf.ngev, np.array(sf.g), "init", {
                "pg_norm": pg, "step_length": None, "step_norm": None,
                "nfev_iter": sf.nfev, "njev_iter": sf.ngev}, bulky={"line_search": {
                    "x": np.empty((0, self._x.size)), "f": np.empty(0)}})
        if self._phase != "iterate":
            return None
        sf = self._sf
        if task[0] == NEW_X:
            # scipy's checks right after its callback, in its order (limits override a stop)
            if self._stop:
                task[0], task[1] = STOP, 505
            if self._nit >= self._maxiter:
                task[0], task[1] = STOP, 504
            elif sf.nfev > self._maxfun:
                task[0], task[1] = STOP, 502
        elif task[0] == START and self._stop:
            # before the first iteration scipy has no callback; end as if it had asked to halt
            task[0], task[1] = STOP, 505
            self._f, self._g = sf.f, sf.g
            return self._finish()

        x, f, g, fg, setulb = self._x, self._f, self._g, self._fg, _lbfgsb.setulb
        m, low, up, nbd, factr, pgtol, wa, iwa, lsave, isave, dsave, maxls, ln_task = (
            self._m, self._low, self._up, self._nbd, self._factr, self._pgtol, self._wa,
            self._iwa, self._lsave, self._isave, self._dsave, self._maxls, self._ln_task)
        ls_x, ls_f = [], []
        while True:
            g = g.astype(np.float64)
            setulb(m, x, low, up, nbd, f, g, factr, pgtol, wa, iwa, task, lsave, isave, dsave,
                   maxls, ln_task)
            t = task[0]
            if t == FG:
                f, g = fg(x)
                if task[1] == FG_LNSRCH:
                    ls_x.append(x.copy())  # a copy: x is setulb's live buffer
                    ls_f.append(float(f))
            elif t == NEW_X:
                self._nit += 1
                # g is the scalar function's own array, replaced (never written) on the next
                # evaluation, so it can be handed out without a copy
                self._f, self._g = f, g
                nfev, njev = sf.nfev, sf.ngev
                stp = dsave.item(13)  # the line search's multiple of the search direction
                step = Step(self._seq, self._nit, x.copy(), f, nfev, njev, g, "iterate", {
                    "pg_norm": dsave.item(12),  # sbgnrm, computed at the new x
                    "step_length": stp,
                    "step_norm": stp * dsave.item(3),  # stp * |d|: the distance moved
                    "nfev_iter": nfev - self._prev_nfev, "njev_iter": njev - self._prev_njev},
                    bulky={"line_search": {  # the points the line search evaluated, in order
                        "x": np.array(ls_x) if ls_x else np.empty((0, x.size)), "f": np.array(ls_f)}})
                self._prev_nfev, self._prev_njev = nfev, njev
                return step
            else:
                break
        self._f, self._g = f, g
        return self._finish()

    def _finish(self):
        sf, task = self._sf, self._task
        if task[0] == CONVERGENCE:
            warnflag = 0
        elif sf.nfev > self._maxfun or self._nit >= self._maxiter:
            warnflag = 1
        else:
            warnflag = 2
        msg = status_messages[task[0]] + ": " + task_messages[task[1]]
        stopped = self._stop  # only looked at between steps, so a request always took effect
        if stopped:
            # what minimize() reports when the callback raised StopIteration (whatever the
            # task code, even a limit reached at the same iteration)
            warnflag, msg, reason = 99, MSG_STOP, _REASONS[505]
        elif task[0] == ABNORMAL:
            reason = _ABNORMAL
        else:
            reason = _REASONS.get(int(task[1]), f"Ended: {msg}")
        f, g = self._f, self._g
        if not math.isfinite(float(f)) or not np.isfinite(g).all():
            reason += (" The objective or its gradient returned a non-finite value (nan/inf) at"
                       " the last point evaluated.")
        self.result = Result(x=self._x.copy(), fun=f, nit=self._nit, nfev=sf.nfev, njev=sf.ngev,
                             success=warnflag == 0, status=warnflag, message=msg, jac=g,
                             reason=reason, stopped=stopped)
        self._phase = "end"
        return None

    # -- checkpoint -------------------------------------------------------------------------
    def _save(self, arrays, state):
        arrays.update(
            x=self._x.copy(), f=np.array(self._f, dtype=np.float64), g=np.array(self._g),
            wa=self._wa.copy(), iwa=self._iwa.copy(), task=self._task.copy(),
            ln_task=self._ln_task.copy(), lsave=self._lsave.copy(), isave=self._isave.copy(),
            dsave=self._dsave.copy())
        st = {"nit": self._nit, "phase": self._phase,
              "prev_nfev": int(self._prev_nfev), "prev_njev": int(self._prev_njev)}
        sf = self._sf
        if sf is not None:
            arrays.update(sf_x=np.array(sf.x), sf_f=np.array(sf.f, dtype=np.float64),
                          sf_g=np.array(sf.g))
            st["sf"] = {"nfev": int(sf._nfev), "grad_nfev": int(sf._wrapped_grad.nfev),
                        "ngev": int(sf._wrapped_grad.ngev), "fun_nfev": int(sf._wrapped_fun.nfev),
                        "f_updated": bool(sf.f_updated), "g_updated": bool(sf.g_updated)}
        state["lbfgsb"] = st

    def _load(self, arrays, state):
        st = state["lbfgsb"]
        self._x = np.array(arrays["x"], dtype=np.float64)
        self._g = np.array(arrays["g"], dtype=np.float64)
        self._wa = np.array(arrays["wa"], dtype=np.float64)
        for name in ("iwa", "task", "ln_task", "lsave", "isave"):
            setattr(self, "_" + name, np.array(arrays[name], dtype=np.int32))
        self._dsave = np.array(arrays["dsave"], dtype=np.float64)
        self._nit, self._phase = int(st["nit"]), st["phase"]
        self._prev_nfev, self._prev_njev = int(st["prev_nfev"]), int(st["prev_njev"])
        if "sf" in st and self._phase != "end":
            # rebuilding the scalar function evaluates f and g once more: then put back the
            # cached point and the counters so nothing downstream can tell
            self._make_sf(np.array(arrays["sf_x"]))
            sf, c = self._sf, st["sf"]
            sf.x = np.array(arrays["sf_x"])
            sf.f = np.float64(arrays["sf_f"][()])
            sf.g = np.array(arrays["sf_g"])
            sf.f_updated, sf.g_updated = c["f_updated"], c["g_updated"]
            sf._nfev = c["nfev"]
            sf._wrapped_grad.nfev, sf._wrapped_grad.ngev = c["grad_nfev"], c["ngev"]
            sf._wrapped_fun.nfev = c["fun_nfev"]
            # the loop variable f: the scalar function's float once the loop has run
            self._f = np.float64(arrays["f"][()]) if self._task[0] != START else np.array(
                arrays["f"], dtype=np.float64)
        else:
            self._f = np.array(arrays["f"], dtype=np.float64)


def fixed_coordinates(spec) -> np.ndarray | None:
    """The coordinates whose bounds are equal (a boolean mask), or None if there are none."""
    if spec.bounds is None:
        return None
    mask = np.array([lo is not None and lo == hi for lo, hi in spec.bounds])
    return mask if mask.any() else None


def lbfgsb_stepper(spec, **kw) -> Stepper:
    """The stepper for an L-BFGS-B spec. minimize() takes the fixed coordinates out of the problem
    when the gradient is numerical (differences across a zero-width box would divide by zero), and
    answers at once when every coordinate is fixed: so does this, for the same numbers."""
    mask = fixed_coordinates(spec)
    if mask is not None and (mask.all() or spec.options["jac"] != "analytic"):
        return FixedCoordinatesStepper(spec, mask, **kw)
    return LBFGSBStepper(spec, **kw)


class FixedCoordinatesStepper(Stepper):
    """L-BFGS-B over the free coordinates, as minimize() runs it when bounds fix some: an inner
    LBFGSBStepper on the reduced problem, its steps and result put back into the full space (the
    gradient's fixed components NaN, as minimize's result has them)."""

    method = "lbfgsb"

    def __init__(self, spec, mask, **kw):
        super().__init__(spec, **kw)
        self._mask = mask
        self._values = np.array([lo for (lo, _), m in zip(spec.bounds, mask) if m], dtype=float)
        self._inner = None
        if not mask.all():
            free = ~mask
            # the stopping rules are the outer run's (its dim, steps and time): checked out here
            inner = replace(spec, dim=int(free.sum()), bounds=tuple(b for b, m in zip(spec.bounds, mask) if not m),
                            x0=tuple(v for v, m in zip(spec.x0, mask) if not m), stop=None)
            fun = self._fun
            self._inner = LBFGSBStepper(inner, objective=lambda x: fun(self._full(x)))

    def _full(self, x, fill=None):
        # as minimize's _Remove_From_Func: the fixed values (or `fill`) around x, in x's dtype
        out = np.zeros(self._mask.shape, dtype=np.asarray(x).dtype if fill is None else float)
        out[self._mask] = self._values if fill is None else fill
        out[~self._mask] = x
        return out

    def request_stop(self) -> None:
        super().request_stop()
        if self._inner is not None:
            self._inner.request_stop()

    def _advance(self):
        if self._inner is None:
            return self._all_fixed()
        try:
            s = next(self._inner)
        except StopIteration:
            r = self._inner.result
            self.result = replace(r, x=self._full(r.x), jac=None if r.jac is None else self._full(r.jac, np.nan))
            return None
        ls = s.bulky.get("line_search")
        bulky = dict(s.bulky)
        if ls is not None:
            bulky["line_search"] = {"x": np.array([self._full(x) for x in ls["x"]]).reshape(-1, self._mask.size),
                                    "f": ls["f"]}
        return Step(self._seq, s.nit, self._full(s.x), s.fun, s.nfev, s.njev,
                    None if s.jac is None else self._full(s.jac, np.nan), s.phase, s.extra, bulky=bulky)

    def _all_fixed(self):
        # minimize's _optimize_result_for_equal_bounds: f once at the bounds, no iteration
        if self._seq:
            return None
        x = self._full(np.empty(0))
        fun = self._fun(x)
        self.result = Result(x=x.copy(), fun=fun, nit=0, nfev=1, njev=0, success=True, status=0,
                             message="All independent variables were fixed by bounds.", jac=None,
                             reason="Every coordinate is fixed by its bounds: there is nothing to optimize.",
                             stopped=False)
        return Step(0, 0, x, fun, 1, 0, None, "init", {
            "pg_norm": None, "step_length": None, "step_norm": None, "nfev_iter": 1, "njev_iter": 0},
            bulky={"line_search": {"x": np.empty((0, x.size)), "f": np.empty(0)}})

    def _save(self, arrays, state):
        state["inner"] = None
        if self._inner is not None:
            cp = self._inner.checkpoint()
            arrays.update({f"inner_{k}": v for k, v in cp["arrays"].items()})
            state["inner"] = cp["state"]

    def _load(self, arrays, state):
        if self._inner is not None:
            self._inner._restore({"arrays": {k[6:]: v for k, v in arrays.items() if k.startswith("inner_")},
                                  "state": state["inner"]})
