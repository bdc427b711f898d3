"""Stopping rules (PROTOCOL v1.1's spec field "stop"), checked between steps for every method.

A spec's `stop` holds any of these keys (spec.py validates them):

- "f": x      fires at the first step with step.fun <= x.
- "gap": g    fires at the first step with step.fun - f* <= g, f* the problem's known minimum
              for the spec's params and dim (the validator refuses "gap" where it is unknown).
- "nfev": n   fires at the first step whose step.nfev (cumulative, as every stepper counts it)
              is >= n.
- "seconds": s fires at the first step after which the run's own compute time
              (Stepper._elapsed: time inside the stepper, which a checkpoint carries over a
              resume) is >= s.
- "stall": {"steps": N, "rtol": r, "atol": a}  fires when the best f has not improved by more
              than max(a, r·|best|) for N consecutive steps. `best` is the f of the last step
              that improved that much (the first finite f sets it), so improvements each too
              small to count still count once they add up to more than the tolerance.

Non-finite f (nan, ±inf) never satisfies "f"/"gap" and never counts as an improvement. Steps of
phase "polish" (DE's polish, made after the generations) are not checked; every other step is,
the start step (seq 0) included. Rules are checked in the order above: when several are met at
one step the first of them is the one that fired. Once one has fired nothing else fires.

`StopRules` is the state machine; its state is plain JSON (non-finite numbers as None), so it
goes into a checkpoint and a resumed run fires at the same step.
"""
from __future__ import annotations

import math

from .records import finite_number

__all__ = ["RULES", "STALL_KEYS", "StopRules"]

RULES = ("f", "gap", "nfev", "seconds", "stall")  # also the order in which they are checked
STALL_KEYS = ("steps", "rtol", "atol")


def _g(v) -> str:
    return f"{float(v):.6g}"


def _as_dict(v) -> dict:
    # a Spec holds stop (and stall) as tuples of pairs, to stay hashable
    return dict(v) if v is not None else {}


class StopRules:
    """The rules of one run. `check(step, elapsed)` after every step: the rule's name on the
    step where one fires, else None."""

    def __init__(self, spec_stop, fstar: float | None = None):
        stop = _as_dict(spec_stop)
        unknown = set(stop) - set(RULES)
        if unknown:
            raise ValueError(f"unknown stopping rules {sorted(unknown)}; known: {', '.join(RULES)}")
        self.f = stop.get("f")
        self.gap = stop.get("gap")
        self.nfev = stop.get("nfev")
        self.seconds = stop.get("seconds")
        stall = stop.get("stall")
        self.stall = None if stall is None else {"rtol": 0.0, "atol": 0.0, **_as_dict(stall)}
        if self.gap is not None and fstar is None:
            raise ValueError('the rule "gap" needs the problem\'s known minimum f*')
        self.fstar = None if fstar is None else float(fstar)
        # the state
        self.best: float | None = None  # stall's reference: None until a finite f
        self.since = 0  # steps since best last improved enough
        self.last_seq: int | None = None  # the last step checked (fired or not)
        self.fired: str | None = None
        self.at: dict | None = None  # the numbers of the firing step, for the words

    # -- checking ---------------------------------------------------------------------------
    def check(self, step, elapsed: float) -> str | None:
        if step.phase == "polish":
            return None
        self.last_seq = step.seq
        if self.fired is not None:
            return None
        f = float(step.fun)
        finite = math.isfinite(f)
        if self.stall is not None:
            best = self.best
            if finite and (best is None or best - f > max(self.stall["atol"],
                                                          self.stall["rtol"] * abs(best))):
                self.best, self.since = f, 0
            else:
                self.since += 1
        name = self._first_met(f, finite, int(step.nfev), float(elapsed))
        if name is not None:
            self.fired = name
            self.at = {"seq": int(step.seq), "fun": finite_number(f), "nfev": int(step.nfev),
                       "elapsed": float(elapsed), "best": finite_number(self.best)}
        return name

    def _first_met(self, f, finite, nfev, elapsed) -> str | None:
        if self.f is not None and finite and f <= self.f:
            return "f"
        if self.gap is not None and finite and f - self.fstar <= self.gap:
            return "gap"
        if self.nfev is not None and nfev >= self.nfev:
            return "nfev"
        if self.seconds is not None and elapsed >= self.seconds:
            return "seconds"
        if self.stall is not None and self.since >= self.stall["steps"]:
            return "stall"
        return None

    # -- words --------------------------------------------------------------------------------
    def describe(self) -> str:
        """The Result's reason for a run this rule stopped."""
        a = self.at
        seq, fun = a["seq"], a["fun"]
        f_txt = "nan/inf" if fun is None else _g(fun)
        if self.fired == "f":
            words = f"the rule f ≤ {_g(self.f)} at step {seq} (f = {f_txt})"
        elif self.fired == "gap":
            words = (f"the rule f − f* ≤ {_g(self.gap)} at step {seq} (f − f* = "
                     f"{_g(fun - self.fstar)}, with f* = {_g(self.fstar)})")
        elif self.fired == "nfev":
            words = f"the rule nfev ≥ {self.nfev} at step {seq} ({a['nfev']} evaluations)"
        elif self.fired == "seconds":
            words = (f"the rule seconds ≥ {_g(self.seconds)} at step {seq} "
                     f"({a['elapsed']:.3g} s of compute)")
        else:
            s = self.stall
            best = "none finite" if a["best"] is None else _g(a["best"])
            words = (f"the rule stall at step {seq}: the best f ({best}) had not improved by more "
                     f"than max(atol {_g(s['atol'])}, rtol {_g(s['rtol'])}·|best|) for "
                     f"{s['steps']} consecutive step{'s' if s['steps'] != 1 else ''}")
        text = f"Stopped by {words}."
        if self.last_seq is not None and self.last_seq > seq:
            text += f" The method could not stop before step {self.last_seq}."
        return text

    def describe_late(self) -> str:
        """A note for a run that ended on its own at the step where a rule fired."""
        return (f"(The stopping rule {self.fired!r} was met at step {self.at['seq']}, "
                "but the run had ended there anyway.)")

    # -- checkpoint ---------------------------------------------------------------------------
    def state(self) -> dict:
        return {"best": finite_number(self.best), "since": self.since, "last_seq": self.last_seq,
                "fired": self.fired, "at": self.at}

    def load(self, state: dict) -> None:
        best = state["best"]
        self.best = None if best is None else float(best)
        self.since = int(state["since"])
        self.last_seq = state["last_seq"]
        self.fired = state["fired"]
        self.at = state["at"]
