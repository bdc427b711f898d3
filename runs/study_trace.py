"""A study run's best-so-far curve, folded step by step: what a study's aggregates are made of.

The driver folds each batch of a study run's steps into its Trace and stores it with the batch
(one transaction: the trace always matches the stored steps and the checkpoint), so a study's
summary reads one small record per run, never its steps.

The curve is kept on fixed log-spaced grids of evaluations, iterations and seconds: grid point g
of an axis holds the best f among the steps with axis value ≤ g, written when the first step
beyond g arrives (the axes never decrease). The first step at which best − f* falls to each
target is kept exactly. Only feasible steps count towards the best (a step's constraint
violation at most FEASIBLE): an infeasible f below f* is no success.
"""
from __future__ import annotations

import json
import math

# 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 per decade: the 1-2-5 budgets a person picks are on it
MANTISSAS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)


def _counts(decades: int) -> tuple:
    return tuple(sorted({int(round(m * 10 ** k)) for k in range(decades) for m in MANTISSAS} | {10 ** decades}))


def _seconds(lo: int, hi: int) -> tuple:
    return tuple(float(f"{m}e{k}") for k in range(lo, hi) for m in MANTISSAS) + (float(f"1e{hi}"),)


GRIDS = {"nfev": _counts(8), "nit": _counts(6), "elapsed": _seconds(-3, 5)}
AXES = tuple(GRIDS)
TARGETS = tuple(float(f"1e-{k}") for k in range(1, 9))
FEASIBLE = 1e-6


class Trace:
    """Folds (nfev, nit, elapsed, fun, violation) of a run's steps in order; JSON in and out."""

    def __init__(self, fstar: float | None):
        self.fstar = fstar
        self.best: float | None = None
        self.closed: dict[str, list] = {axis: [] for axis in AXES}
        self.hits: list = [None] * len(TARGETS)  # [nfev, nit, elapsed] of the step that reached it
        self.last: list | None = None  # [steps, nfev, nit, elapsed] of the newest step

    def fold(self, seq: int, nfev: int, nit: int, elapsed: float, fun: float | None,
             violation: float | None = None) -> None:
        at = {"nfev": nfev, "nit": nit, "elapsed": elapsed}
        for axis in AXES:
            closed, grid, value = self.closed[axis], GRIDS[axis], at[axis]
            while len(closed) < len(grid) and value > grid[len(closed)]:
                closed.append(self.best)
        if (fun is not None and math.isfinite(fun) and (violation is None or violation <= FEASIBLE)
                and (self.best is None or fun < self.best)):
            self.best = fun
            if self.fstar is not None:
                gap = fun - self.fstar
                for k, target in enumerate(TARGETS):
                    if self.hits[k] is None and gap <= target:
                        self.hits[k] = [nfev, nit, elapsed]
        self.last = [seq + 1, nfev, nit, elapsed]

    def fold_step(self, step) -> None:
        """A runs.optim Step."""
        violation = step.extra.get("violation") if step.extra else None
        self.fold(step.seq, step.nfev, step.nit, step.elapsed, step.fun,
                  violation if isinstance(violation, (int, float)) else None)

    def to_json(self) -> str:
        return json.dumps({"fstar": self.fstar, "best": self.best, "closed": self.closed, "hits": self.hits,
                           "last": self.last}, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "Trace":
        d = json.loads(text)
        t = cls(d["fstar"])
        t.best, t.closed, t.hits, t.last = d["best"], d["closed"], d["hits"], d["last"]
        return t
