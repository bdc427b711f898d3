"""Min/max-preserving downsampling of a run's series, for plots of large runs.

Pure functions, no Django: the series endpoint (runs/exports.py) reads the Step scalar columns,
asks `keep_indices` which rows to keep, then parses `x` for those rows only.

The rule: split the rows into equal buckets (by position; seq, nit, nfev and elapsed all grow
with position) and keep, per bucket, its first and last row and the rows holding its lowest and
highest `fun`. So the drawn line passes through every extreme value of the full series (a
convergence plot never hides a spike or the best value) and the bucket edges keep the
line's shape. Output size is at most `points` (and the first and last rows are always kept).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# Each bucket contributes up to this many rows (first, last, min, max).
PER_BUCKET = 4
MIN_POINTS = 8
MAX_POINTS = 20_000


def clamp_points(points: int) -> int:
    return max(MIN_POINTS, min(MAX_POINTS, int(points)))


def _key(v: float | None) -> float:
    # A missing/non-finite fun (null in PROTOCOL JSON: nan or inf) ranks as the highest value, so
    # a blow-up stays visible as a gap instead of vanishing between kept rows.
    if v is None or not math.isfinite(v):
        return math.inf
    return v


def keep_indices(fun: Sequence[float | None], points: int) -> list[int]:
    """Sorted positions of the rows to keep so that at most `points` rows remain.

    Every position holding the global minimum and maximum of `fun` is represented (the first
    such position), as are the first and the last row.
    """
    n = len(fun)
    if points <= 0:
        raise ValueError("points must be positive")
    if n <= points:
        return list(range(n))
    if points < PER_BUCKET:
        # Too few to bucket: the ends and the global minimum.
        keys = [_key(v) for v in fun]
        best = min(range(n), key=keys.__getitem__)
        keep = [best] + [i for i in (n - 1, 0) if i != best]
        return sorted(keep[:points])
    buckets = points // PER_BUCKET
    kept: list[int] = []
    for b in range(buckets):
        lo = b * n // buckets
        hi = (b + 1) * n // buckets  # exclusive; buckets differ in size by at most one row
        if hi <= lo:
            continue
        imin = imax = lo
        vmin = vmax = _key(fun[lo])
        for i in range(lo + 1, hi):
            v = _key(fun[i])
            if v < vmin:
                vmin, imin = v, i
            elif v > vmax:
                vmax, imax = v, i
        kept.extend(sorted({lo, imin, imax, hi - 1}))
    return kept


def best_so_far(fun: Sequence[float | None]) -> list[float | None]:
    """Running minimum of fun (None where nothing finite has been seen yet)."""
    out: list[float | None] = []
    best = math.inf
    for v in fun:
        if v is not None and math.isfinite(v) and v < best:
            best = v
        out.append(best if math.isfinite(best) else None)
    return out
