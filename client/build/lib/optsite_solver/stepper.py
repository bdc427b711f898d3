"""What every stepper shares: the iterator protocol, seq/elapsed bookkeeping, stop requests,
the spec's stopping rules (runs.optim.stopping), and the generic half of checkpoint/restore."""
from __future__ import annotations

from time import perf_counter

import numpy as np

from .expressions import problem_of
from .records import Result, Step
from .spec import Spec
from .stopping import StopRules

__all__ = ["Stepper"]

CHECKPOINT_VERSION = 1


class Stepper:
    """Iterate to get Steps; when exhausted, `.result` is the Result.

    Subclasses implement `_advance()` (compute and return the next Step, or None when the run
    has ended and `self.result` is set) and `_save(arrays, state)` / `_load(arrays, state)`.

    Stopping rules (`spec.stop`): after each step is made the rules are checked; when one fires
    the stepper calls its own `request_stop()`, so the run ends exactly as if a user had asked
    after that step (scipy's fields are what scipy gives for a callback stop, `stopped` is True:
    a rule stop is a stop). The Result then also names the rule (`result.rule`) and says why in
    `result.reason`. A user's stop request before a rule fired leaves `rule` None. Should the run
    end on its own at the step where a rule fired (no stop takes effect after a run's last
    callback), the Result stays the method's own, `rule` None, with a note in `reason`.
    """

    method = ""

    def __init__(self, spec: Spec, *, objective=None, gradient=None):
        # objective/gradient replace the problem's functions (tests use this to inject nan/inf)
        self.spec = spec
        problem = problem_of(spec)
        self._fun = objective if objective is not None else problem.objective(spec.params)
        self._grad = gradient if gradient is not None else problem.gradient(spec.params)
        self.result: Result | None = None
        self.done = False
        self._stop = False  # a plain attribute: assignment is atomic, the check costs nothing
        self._seq = 0
        self._elapsed = 0.0
        self._rules = None
        if spec.stop:
            fstar = None
            if "gap" in dict(spec.stop):
                known = problem.known_minimum(spec.params, spec.dim)
                fstar = None if known is None else known["f"]
            self._rules = StopRules(spec.stop, fstar)

    # -- public API ------------------------------------------------------------------------
    @property
    def total_steps_hint(self) -> int:
        return int(self.spec.options["maxiter"])

    @property
    def stop_requested(self) -> bool:
        return self._stop

    def request_stop(self) -> None:
        """Ask the run to end at the next step boundary (safe to call from any thread)."""
        self._stop = True

    def __iter__(self):
        return self

    def __next__(self) -> Step:
        if self.done:
            raise StopIteration
        rules = self._rules
        had_result = self.result is not None
        t0 = perf_counter()
        step = self._advance()
        self._elapsed += perf_counter() - t0
        if step is not None:
            step.elapsed = self._elapsed
            self._seq += 1
            # after a user's stop no rule fires; after a rule fired, check() only notes the seq
            if rules is not None and (rules.fired is not None or not self._stop):
                if rules.check(step, self._elapsed) is not None:
                    self.request_stop()
        if rules is not None and not had_result and self.result is not None and rules.fired:
            self._name_rule(self.result)
        if step is None:
            self.done = True
            raise StopIteration
        return step

    def _name_rule(self, r: Result) -> None:
        if r.stopped:
            r.rule = self._rules.fired
            r.reason = self._rules.describe()
        else:
            r.reason = f"{r.reason} {self._rules.describe_late()}"

    def run(self) -> Result:
        """Step to the end (discarding the steps) and return the Result."""
        for _ in self:
            pass
        return self.result

    def checkpoint(self) -> dict:
        """The whole state after the last step handed out: {"arrays": {...}, "state": {...}}."""
        arrays: dict[str, np.ndarray] = {}
        state = {
            "version": CHECKPOINT_VERSION,
            "method": self.method,
            "spec": self.spec.to_dict(),
            "seq": self._seq,
            "elapsed": self._elapsed,
            "done": self.done,
            "stop_requested": self._stop,
            "result": None,
        }
        r = self.result
        if r is not None:
            arrays["result_x"] = np.array(r.x, dtype=float)
            arrays["result_fun"] = np.array(r.fun, dtype=float)
            if r.jac is not None:
                arrays["result_jac"] = np.array(r.jac, dtype=float)
            state["result"] = {k: getattr(r, k) for k in (
                "nit", "nfev", "njev", "success", "status", "message", "reason", "stopped")}
            state["result"] = {k: (v.item() if isinstance(v, np.generic) else v)
                               for k, v in state["result"].items()}
            if r.rule is not None:  # only then: checkpoints of runs without rules keep their shape
                state["result"]["rule"] = r.rule
        if self._rules is not None:
            state["stop"] = self._rules.state()
        self._save(arrays, state)
        return {"arrays": arrays, "state": state}

    def _restore(self, cp: dict) -> None:
        arrays, state = cp["arrays"], cp["state"]
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"unsupported checkpoint version {state.get('version')!r}")
        if state.get("method") != self.method:
            raise ValueError(f"checkpoint is for method {state.get('method')!r}, not {self.method!r}")
        if state.get("spec") != self.spec.to_dict():
            raise ValueError("checkpoint was made for a different spec")
        self._seq = int(state["seq"])
        self._elapsed = float(state["elapsed"])
        self.done = bool(state["done"])
        self._stop = bool(state["stop_requested"])
        if state["result"] is not None:
            self.result = Result(
                x=np.array(arrays["result_x"]), fun=np.float64(arrays["result_fun"]),
                jac=np.array(arrays["result_jac"]) if "result_jac" in arrays else None,
                **state["result"])
        if self._rules is not None and "stop" in state:
            self._rules.load(state["stop"])
        self._load(arrays, state)

    # -- for subclasses --------------------------------------------------------------------
    def _advance(self) -> Step | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _save(self, arrays: dict, state: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load(self, arrays: dict, state: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
