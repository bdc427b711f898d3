"""runs/downsample.py: bounded output that keeps every bucket's extremes (no database)."""

import math
import random

import pytest

from runs.downsample import MAX_POINTS, MIN_POINTS, best_so_far, clamp_points, keep_indices


def test_short_series_is_kept_whole():
    assert keep_indices([3.0, 2.0, 1.0], 10) == [0, 1, 2]
    assert keep_indices([], 10) == []


@pytest.mark.parametrize("n,points", [(100_000, 1000), (10_001, 8), (5_000, 4999), (1234, 37), (50, 9)])
def test_output_is_bounded_sorted_and_unique(n, points):
    rng = random.Random(n)
    fun = [rng.random() for _ in range(n)]
    kept = keep_indices(fun, points)
    assert len(kept) <= points
    assert kept == sorted(set(kept))
    assert kept[0] == 0 and kept[-1] == n - 1  # the ends are always drawn


def test_keeps_global_min_and_max_and_every_bucket_extreme():
    rng = random.Random(7)
    n, points = 100_000, 400
    fun = [rng.gauss(0, 1) for _ in range(n)]
    fun[31_337] = -50.0  # a dip deep inside a bucket
    fun[77_777] = 1e9  # a spike
    kept = set(keep_indices(fun, points))
    assert 31_337 in kept and 77_777 in kept
    # per bucket (the function's own split), min and max survive
    buckets = points // 4
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        chunk = fun[lo:hi]
        assert lo + chunk.index(min(chunk)) in kept
        assert lo + chunk.index(max(chunk)) in kept


def test_min_and_max_of_kept_values_equal_those_of_the_full_series():
    rng = random.Random(3)
    fun = [math.exp(-i / 5000) * (1 + 0.3 * rng.random()) for i in range(60_000)]
    kept = keep_indices(fun, 1000)
    assert min(fun[i] for i in kept) == min(fun)
    assert max(fun[i] for i in kept) == max(fun)


def test_non_finite_values_are_kept_visible():
    fun = [1.0] * 10_000
    fun[4321] = None  # nan/inf are stored as null
    kept = keep_indices(fun, 100)
    assert 4321 in kept


def test_tiny_budgets_keep_the_best_point():
    fun = [5.0, 4.0, 0.5, 3.0, 2.0]
    assert keep_indices(fun, 1) == [2]
    assert 2 in keep_indices(fun, 2)
    assert keep_indices(fun, 3) == [0, 2, 4]
    with pytest.raises(ValueError):
        keep_indices(fun, 0)


def test_clamp_points():
    assert clamp_points(0) == MIN_POINTS
    assert clamp_points(10**9) == MAX_POINTS
    assert clamp_points(500) == 500


def test_best_so_far():
    assert best_so_far([None, 3.0, 4.0, 1.0, None, 2.0]) == [None, 3.0, 3.0, 1.0, 1.0, 1.0]
