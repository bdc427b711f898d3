"""A study's aggregates, computed from its runs' traces (runs/study_trace.py), never their steps.

Per method configuration:
- `final`: quartiles, min and max of the runs' best f − f* (best f where f* is unknown), over the
  `valued` runs: those with a (feasible) value yet;
- `bands`: on each axis's grid, the median, quartiles, min and max of best-so-far, over the runs
  known there: a run that has ended keeps its final best past its end; a running one is known
  only up to where it has got, and a run with no (feasible) value yet is not counted (`n` says
  how many runs each point is over);
- `targets` (f* known): for each target, the runs that reached it, the ECDF of the evaluations
  they needed, and the expected running time ERT = the evaluations all runs spent until they
  reached the target or until now (their end, or where a running one has got) ÷ the hits;
- `budgets`: the distribution of best-so-far after B evaluations, for the runs known at B.
Quartiles are numpy.percentile's (linear interpolation).
"""
from __future__ import annotations

import math

import numpy as np

from runs.study_trace import AXES, GRIDS, TARGETS

# Budgets offered by default: the powers of ten inside the study's reach.
DEFAULT_BUDGETS = tuple(10 ** k for k in range(1, 8))
NFEV_GRID = {g: i for i, g in enumerate(GRIDS["nfev"])}


def _stats(values: np.ndarray) -> dict | None:
    if values.size == 0:
        return None
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "min": float(values.min()),
            "max": float(values.max()), "n": int(values.size)}


def _curve(trace: dict, axis: str, length: int, ended: bool) -> np.ndarray:
    """Best-so-far on the first `length` grid points; NaN where not known."""
    out = np.full(length, np.nan)
    closed = trace["closed"][axis][:length]
    out[:len(closed)] = [np.nan if v is None else v for v in closed]
    if ended and trace["best"] is not None and len(closed) < length:
        out[len(closed):] = trace["best"]
    return out


def _column_stats(matrix: np.ndarray) -> dict:
    n = np.sum(~np.isnan(matrix), axis=0)
    out = {"n": n.tolist()}
    with np.errstate(all="ignore"):
        known = n > 0
        for name, q in (("q1", 25), ("median", 50), ("q3", 75)):
            col = np.full(matrix.shape[1], np.nan)
            if known.any():
                col[known] = np.nanpercentile(matrix[:, known], q, axis=0)
            out[name] = col
        for name, f in (("min", np.nanmin), ("max", np.nanmax)):
            col = np.full(matrix.shape[1], np.nan)
            if known.any():
                col[known] = f(matrix[:, known], axis=0)
            out[name] = col
    return {k: (v if k == "n" else [None if math.isnan(x) else float(x) for x in v]) for k, v in out.items()}


def summarize(*, configs: list[dict], runs: list[dict], fstar: float | None,
              budgets: tuple | None = None) -> dict:
    """`runs`: {"config", "status", "ended", "trace": dict | None} for each run of the study."""
    shift = 0.0 if fstar is None else fstar
    by_config: list[list[dict]] = [[] for _ in configs]
    for run in runs:
        by_config[run["config"]].append(run)
    traced = [r for r in runs if r["trace"] and r["trace"]["last"]]
    # every configuration is drawn over the same x-range: up to the grid point past the furthest run
    lengths = {}
    for axis, k in zip(AXES, (1, 2, 3)):
        reach = max((r["trace"]["last"][k] for r in traced), default=0)
        grid = GRIDS[axis]
        lengths[axis] = min(len(grid), next((i for i, g in enumerate(grid) if g >= reach), len(grid)) + 1)
    reach_nfev = max((r["trace"]["last"][1] for r in traced), default=0)
    if budgets is None:
        budgets = tuple(b for b in DEFAULT_BUDGETS if b <= max(reach_nfev, 10))
    budgets = tuple(b for b in budgets if b in NFEV_GRID)

    out = []
    for index, (config, members) in enumerate(zip(configs, by_config)):
        counts = {s: 0 for s in ("queued", "running", "paused")}
        ended = 0
        for r in members:
            if r["ended"]:
                ended += 1
            elif r["status"] in counts:
                counts[r["status"]] += 1
        with_trace = [r for r in members if r["trace"] and r["trace"]["last"]]
        bests = np.array([r["trace"]["best"] - shift for r in with_trace if r["trace"]["best"] is not None])
        bands = {}
        for axis in AXES:
            matrix = np.array([_curve(r["trace"], axis, lengths[axis], r["ended"]) for r in with_trace]).reshape(
                len(with_trace), lengths[axis]) - shift
            bands[axis] = _column_stats(matrix)
        targets = []
        if fstar is not None:
            for k, gap in enumerate(TARGETS):
                hit_nfev = sorted(r["trace"]["hits"][k][0] for r in with_trace if r["trace"]["hits"][k] is not None)
                spent = sum(r["trace"]["hits"][k][0] if r["trace"]["hits"][k] is not None else r["trace"]["last"][1]
                            for r in with_trace)
                hits = len(hit_nfev)
                targets.append({"gap": gap, "hits": hits, "runs": len(members),
                                "rate": hits / len(members) if members else 0.0,
                                "ert": spent / hits if hits else None, "ecdf": hit_nfev})
        budget_rows = []
        for b in budgets:
            j = NFEV_GRID[b]
            values = np.array([v for r in with_trace
                               if not math.isnan(v := _curve(r["trace"], "nfev", j + 1, r["ended"])[j])]) - shift
            row = {"budget": b, "median": None, "q1": None, "q3": None, "min": None, "max": None,
                   **(_stats(values) or {}), "n": int(values.size), "values": values.tolist()}
            budget_rows.append(row)
        out.append({"index": index, "method": config["method"], "label": config["label"], "runs": len(members),
                    "finished": ended, **counts, "valued": int(bests.size), "final": _stats(bests), "bands": bands, "targets": targets,
                    "budgets": budget_rows})
    return {"fstar": fstar, "measure": "f" if fstar is None else "gap",
            "grids": {axis: list(GRIDS[axis][:lengths[axis]]) for axis in AXES},
            "targets": list(TARGETS) if fstar is not None else [], "budgets": list(budgets), "configs": out}
