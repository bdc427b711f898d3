"""`Client.minimize(...)` and `Client.differential_evolution(...)`: an optimization of the user's own
function, computed here, in the calling thread, by optsite's steppers (optsite_solver: the numbers
are scipy's), and streamed to the server as an external run (stream.py) while it goes on.

This file owns the optimization loop: the arguments made into a spec (checked here as the server
checks it), the stepper, the controls obeyed between steps, the user's callback, and scipy's
OptimizeResult at the end. It never encodes a step: the stream's thread does.
"""

from __future__ import annotations

import inspect
import os
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from optsite_solver import METHODS, SpecError, make_stepper, validate_spec
from optsite_solver.external import EXTERNAL, TITLE_LENGTH, bind
from optsite_solver.minimize import METHOD_NAMES
from scipy.optimize import Bounds, OptimizeResult
from scipy.optimize._optimize import MemoizeJac

from .errors import DeliveryWarning, Invalid, Limit, OptsiteError
from .spool import META, Backlog, Spool
from .stream import Stream

if TYPE_CHECKING:
    from .client import Client

DELIVER_TIMEOUT = 60.0
# scipy.optimize.differential_evolution's keywords that an external run takes (its options)
DE_OPTIONS = ("strategy", "maxiter", "popsize", "tol", "mutation", "recombination", "seed", "rng", "polish",
              "init", "atol", "updating")


# scipy.optimize.minimize's method names (lower case) -> the spec's method; "L-BFGS-B" is optsite's
# own port of scipy's loop (its line search is seen), bitwise scipy's
MINIMIZE = {**{name.lower(): name for name in METHOD_NAMES if name != "l-bfgs-b"}, "l-bfgs-b": "lbfgsb"}


def _invalid(field: str, words: str) -> Invalid:
    return Invalid(f"{field}: {words}.", "invalid_spec", {field: [words]})


def _spec_error(failed: SpecError) -> OptsiteError:
    cls = Limit if failed.code == "limit" else Invalid
    return cls(failed.message, failed.code, {k: list(v) for k, v in failed.errors.items()})


def _title(title: str | None, fun: Callable) -> str:
    if title is None:
        title = getattr(fun, "__qualname__", None) or getattr(fun, "__name__", None) or type(fun).__name__
    if not isinstance(title, str):
        raise _invalid("title", f"must be text, not {type(title).__name__}")
    title = "".join(ch if ch.isprintable() else " " for ch in title).strip()
    return title[:TITLE_LENGTH] or "function"


def _vector(value: Any, field: str) -> list[float]:
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise _invalid(field, "must be a list of numbers") from None
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise _invalid(field, f"must be one-dimensional, not of shape {a.shape}")
    return a.tolist()


def _bounds(bounds: Any, n: int | None) -> list[list[float | None]] | None:
    """scipy's bounds (pairs, or a Bounds object) as the spec's [[lo, hi], ...] with null for ±inf."""
    if bounds is None:
        return None
    if isinstance(bounds, Bounds):
        size = n or max(np.size(bounds.lb), np.size(bounds.ub))
        pairs = list(zip(np.broadcast_to(bounds.lb, (size,)).tolist(), np.broadcast_to(bounds.ub, (size,)).tolist()))
    else:
        try:
            pairs = [tuple(b) for b in bounds]
        except TypeError:
            raise _invalid("bounds", "must be a sequence of (min, max) pairs or a scipy.optimize.Bounds") from None
    out = []
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise _invalid(f"bounds[{i}]", "must be a (min, max) pair")
        side = []
        for v in pair:
            if v is None:
                side.append(None)
                continue
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise _invalid(f"bounds[{i}]", f"must hold numbers or None, not {v!r}") from None
            side.append(None if np.isinf(f) and f != 0 else f)  # nan is left for the spec check to name
        out.append(side)
    return out


def _with_args(f: Callable | None, args: tuple) -> Callable | None:
    if f is None or not args:
        return f
    return lambda x, *_: f(x, *args)


def minimize_spec(fun: Callable, x0: Any, args: tuple, method: str, jac: Any, hess: Any, bounds: Any,
                  options: dict | None, title: str | None) -> tuple[dict, tuple]:
    """(spec dict, (f, g, h) to bind) of a `scipy.optimize.minimize(...)` call."""
    if not callable(fun):
        raise _invalid("fun", "must be a function of x")
    if not isinstance(method, str):
        raise _invalid("method", "must be scipy's name of a method, e.g. \"L-BFGS-B\"")
    m = MINIMIZE.get(method.lower())
    if m is None:
        raise _invalid("method", f"unknown method {method!r}; one of scipy's: {', '.join(METHOD_NAMES.values())}")
    if not isinstance(args, tuple):
        args = (args,)
    x = _vector(x0, "x0")
    spec_method = METHODS[m]
    opts = dict(options or {})
    for name in ("jac", "hess"):
        if name in opts:
            raise _invalid(f"options.{name}", f"pass {name}= to minimize itself, as in scipy")
    f, g, h = _with_args(fun, args), None, None
    if spec_method.option("jac") is not None:
        if jac is True:
            memo = MemoizeJac(f)  # scipy's own: fun returns (f, g)
            f, g = memo, memo.derivative
            opts["jac"] = "analytic"
        elif callable(jac):
            g = _with_args(jac, args)
            opts["jac"] = "analytic"
        elif jac is None or jac is False:
            opts["jac"] = None
        elif isinstance(jac, str):
            opts["jac"] = jac
        else:
            raise _invalid("jac", "must be a function, True (fun returns f and the gradient), None, "
                                  "\"2-point\", \"3-point\" or \"cs\"")
    elif jac is not None and jac is not False:
        warnings.warn(f"Method {method} does not use gradient information (jac).", RuntimeWarning, stacklevel=4)
    if spec_method.option("hess") is not None:
        if callable(hess):
            h = _with_args(hess, args)
            opts["hess"] = "analytic"
        elif hess is None or isinstance(hess, str):
            if hess is not None or "hess" not in opts:
                opts["hess"] = hess.lower() if isinstance(hess, str) else None
        else:
            raise _invalid("hess", "must be a function, None, \"2-point\", \"3-point\", \"cs\", \"bfgs\" or \"sr1\"")
    elif hess is not None:
        warnings.warn(f"Method {method} does not use Hessian information (hess).", RuntimeWarning, stacklevel=4)
    data: dict[str, Any] = {"method": m, "problem": EXTERNAL, "dim": len(x), "x0": x,
                            "external": {"title": _title(title, fun), "gradient": g is not None,
                                         "hessian": h is not None}}
    b = _bounds(bounds, len(x))
    if b is not None:
        data["bounds"] = b
    if opts:
        data["options"] = opts
    return data, (f, g, h)


def de_spec(func: Callable, bounds: Any, args: tuple, kwargs: dict[str, Any], title: str | None) -> tuple[dict, tuple]:
    """(spec dict, (f, None, None)) of a `scipy.optimize.differential_evolution(...)` call."""
    if not callable(func):
        raise _invalid("func", "must be a function of x")
    if not isinstance(args, tuple):
        args = (args,)
    unknown = [k for k in kwargs if k not in DE_OPTIONS and k != "x0"]
    if unknown:
        raise _invalid(unknown[0], f"is not taken by an external run (it takes {', '.join(DE_OPTIONS)} and x0)")
    b = _bounds(bounds, None)
    if b is None:
        raise _invalid("bounds", "are required: one (min, max) pair per variable")
    data: dict[str, Any] = {"method": "de", "problem": EXTERNAL, "dim": len(b), "bounds": b,
                            "external": {"title": _title(title, func), "gradient": False, "hessian": False}}
    options = {k: v for k, v in kwargs.items() if k != "x0"}
    if isinstance(options.get("mutation"), tuple):
        options["mutation"] = list(options["mutation"])
    if options:
        data["options"] = options
    if kwargs.get("x0") is not None:
        data["x0"] = _vector(kwargs["x0"], "x0")
    return data, (_with_args(func, args), None, None)


def _callback_style(callback: Callable | None) -> str | None:
    """How scipy would call it: with the OptimizeResult ("result"), or with x (and DE's convergence)."""
    if callback is None:
        return None
    if not callable(callback):
        raise _invalid("callback", "must be a function")
    try:
        params = set(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        return "x"
    return "result" if params == {"intermediate_result"} else "x"


def _call_back(callback: Callable, style: str, step: Any, de: bool) -> bool:
    """True when the callback asks to stop (it returns True or raises StopIteration, as in scipy)."""
    try:
        if style == "result":
            ir = OptimizeResult(x=step.x.copy(), fun=step.fun, nit=step.nit, nfev=step.nfev)
            if de:
                ir.convergence = step.extra.get("tol_ratio")
            answer = callback(intermediate_result=ir)
        elif de:
            answer = callback(step.x.copy(), step.extra.get("tol_ratio"))
        else:
            answer = callback(step.x.copy())
    except StopIteration:
        return True
    return answer is True


def _error_words(error: BaseException) -> str:
    words = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    tb = traceback.extract_tb(error.__traceback__)
    if tb:
        where = tb[-1]
        words += f" (in {where.name}, {os.path.basename(where.filename)} line {where.lineno})"
    return words


def _warn(stream: Stream) -> None:
    while stream.notices:
        warnings.warn(stream.notices.popleft(), DeliveryWarning, stacklevel=4)


def run(client: Client, data: dict, functions: tuple, *, label: str, callback: Callable | None,
        deliver_timeout: float) -> OptimizeResult:
    """Validate, open the run, step it here with the stream alongside, and return scipy's result."""
    if not isinstance(label, str):
        raise _invalid("label", "must be text")
    style = _callback_style(callback)
    try:
        spec = validate_spec(data)
    except SpecError as failed:
        raise _spec_error(failed) from None
    try:
        stepper = make_stepper(bind(spec, *functions))
    except ValueError as failed:  # a choice the stepper refuses (e.g. hess for this method)
        raise Invalid(f"The optimization cannot start: {failed}.", "invalid_spec") from None
    de = spec.method == "de"
    backlog = Backlog(Spool(client.spool_dir), client.memory_limit, client.spool_limit)
    stream = Stream(client, spec.to_dict(), label, backlog, on_stop=stepper.request_stop)
    stream.start()
    stream.first_done.wait(client.timeout)
    if isinstance(stream.first, OptsiteError):
        _close(stepper)
        raise stream.first
    _warn(stream)
    try:
        for step in stepper:
            # the stream encodes the step later, in its own thread: x and jac may be the caller's
            # own arrays (a gradient that returns one buffer), so they are copied (the bulky
            # arrays are the stepper's fresh ones)
            step.x = step.x.copy()
            if step.jac is not None:
                step.jac = step.jac.copy()
            stream.put(step)
            if stream.notices:
                _warn(stream)
            if style is not None and step.phase == "iterate" and not stepper.stop_requested:
                if _call_back(callback, style, step, de):
                    stepper.request_stop()
            if stream.pause_requested and not stream.stop_requested:
                _pause(stream)
    except BaseException as failed:
        _close(stepper)
        stream.finish("failed", None, _error_words(failed),
                      deliver_timeout if isinstance(failed, Exception) else min(deliver_timeout, 5.0))
        _warn(stream)
        raise
    r = stepper.result
    stream.finish("stopped" if r.stopped else "finished", r.to_dict(), None, deliver_timeout)
    _warn(stream)
    return _result(r, stream, client)


def _pause(stream: Stream) -> None:
    """Obey a pause: say so (after the steps made so far), wait for resume or stop."""
    stream.paused()
    while not stream.go.wait(0.5):
        if stream.notices:
            _warn(stream)
    if not stream.stop_requested:
        stream.resumed()


def _close(stepper: Any) -> None:
    close = getattr(stepper, "close", None)
    if close is not None:
        close()


def _result(r: Any, stream: Stream, client: Client) -> OptimizeResult:
    """scipy's fields of the stepper's Result (status and njev even where scipy's own result has
    none, as for DE: they are known); not scipy's extras (hess_inv, final_simplex, population)."""
    res = OptimizeResult(x=np.array(r.x, dtype=float), fun=r.fun, nit=r.nit, nfev=r.nfev, njev=r.njev,
                         status=r.status, success=r.success, message=r.message)
    if r.jac is not None:
        res.jac = np.array(r.jac, dtype=float)
    if r.nhev is not None:
        res.nhev = r.nhev
    res.run_id = stream.run_id
    res.run_url = None if stream.run_id is None else f"{client.url}/runs/{stream.run_id}/"
    res.delivered = stream.delivered
    return res


def deliver_pending(client: Client, timeout: float) -> list[dict[str, Any]]:
    """Send the spools of earlier processes (for this server) that no process holds; the Runs
    delivered, as the server ended them. What cannot be delivered now stays (a warning says why)."""
    root = Path(client.spool_dir)
    if not root.is_dir():
        return []
    delivered = []
    for d in sorted(p for p in root.iterdir() if (p / META).is_file()):
        spool = Spool(root, d.name)
        if not spool.lock():
            continue  # a live process streams it
        meta = spool.read_meta()
        if meta is None or meta.get("url") != client.url or not isinstance(meta.get("spec"), dict):
            spool.release()
            continue
        end = meta.get("end")
        if not isinstance(end, dict):  # its process ended before the optimization did
            end = {"type": "end", "status": "failed", "result": None,
                   "error": "The optimization's process ended before the run did; the steps it had made "
                            "were delivered from its spool."}
        stream = Stream(client, meta["spec"], str(meta.get("label") or ""), Backlog(spool, client.memory_limit,
                        client.spool_limit), run_id=meta.get("run_id"), end=end, truncated=bool(meta.get("truncated")))
        stream.start()
        stream.first_done.wait(client.timeout)
        if not stream.done.wait(timeout):
            stream.inbox.put(("give up",))
            stream.done.wait(30)
        spool.release()
        if isinstance(stream.first, OptsiteError) and stream.first.code == "unauthorized":
            raise stream.first
        _warn(stream)
        if stream.delivered:
            delivered.append(stream.last_run)
    return delivered
