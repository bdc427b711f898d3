"""The problem catalogue: formulas, analytic gradients vs finite differences, known minima."""
import json
import math

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from runs.optim import PROBLEMS, get_problem, problem_catalogue

REQUIRED = {"rosenbrock", "sphere", "rastrigin", "ackley", "himmelblau", "styblinski_tang",
            "beale", "booth", "griewank", "levy", "six_hump_camel", "goldstein_price"}


def _dims(p):
    if p.max_dim == p.min_dim:
        return [p.min_dim]
    return sorted({p.min_dim, p.default_dim, 3, 7})


def test_catalogue_has_every_required_problem_and_is_json():
    assert REQUIRED <= set(PROBLEMS)
    cat = json.loads(json.dumps(problem_catalogue(), allow_nan=False))
    for entry in cat:
        assert {"name", "title", "formula", "latex", "params", "default_dim", "min_dim",
                "max_dim", "default_bounds", "known_minimum", "has_gradient"} <= set(entry)
        assert len(entry["default_bounds"]) == entry["default_dim"]
        for prm in entry["params"]:
            assert prm["min"] <= prm["default"] <= prm["max"] and prm["description"]


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_gradient_matches_finite_differences(name):
    p = get_problem(name)
    rng = np.random.default_rng(42)
    for dim in _dims(p):
        params = {q.name: float(rng.uniform(max(q.min, q.default * 0.5), min(q.max, q.default * 1.5)))
                  for q in p.params}
        for prm in (None, params):
            f, g = p.objective(prm), p.gradient(prm)
            lo, hi = np.array(p.default_bounds(dim)).T
            for _ in range(8):
                x = rng.uniform(lo, hi)
                # central differences with a scale-aware step; compare relative to |g|
                h = 1e-6 * np.maximum(1.0, np.abs(x))
                fd = np.array([(f(x + h[i] * e) - f(x - h[i] * e)) / (2 * h[i])
                               for i, e in enumerate(np.eye(dim))])
                ga = g(x)
                assert ga.shape == (dim,)
                scale = max(1.0, np.abs(ga).max(), abs(f(x)) * 1e-3)
                assert np.abs(ga - fd).max() / scale < 1e-5, (name, dim, x)
                # forward differences as scipy approximates them agree too, more loosely
                assert np.allclose(approx_fprime(x, f, 1e-7 * np.maximum(1, np.abs(x))), ga,
                                   rtol=1e-3, atol=1e-3 * scale)


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_known_minimum_is_a_minimum(name):
    p = get_problem(name)
    rng = np.random.default_rng(1)
    for dim in _dims(p):
        km = p.known_minimum(dim=dim)
        assert km is not None
        x = np.array(km["x"])
        f, g = p.objective(), p.gradient()
        assert len(x) == dim
        assert f(x) == pytest.approx(km["f"], abs=1e-9)
        assert np.abs(g(x)).max() < 1e-6
        lo, hi = np.array(p.default_bounds(dim)).T
        assert np.all((lo <= x) & (x <= hi))
        samples = rng.uniform(lo, hi, size=(200, dim))
        assert min(f(s) for s in samples) >= km["f"] - 1e-9


def test_known_minimum_depends_on_coefficients():
    r = get_problem("rosenbrock")
    assert r.known_minimum({"a": 2.0, "b": 5.0}, 2) == {"x": [2.0, 4.0], "f": 0.0}
    assert r.known_minimum({"a": 2.0}, 3) is None  # x_i = a = a^2 cannot hold
    assert r.known_minimum({"b": 0.0}, 2) is None
    st = get_problem("styblinski_tang").known_minimum(dim=4)
    assert st["f"] == pytest.approx(-39.16616570377142 * 4)


def test_rosenbrock_2d_is_exactly_the_textbook_expression():
    rng = np.random.default_rng(7)
    p = get_problem("rosenbrock")
    for _ in range(200):
        a, b = rng.uniform(-3, 3), rng.uniform(0, 200)
        x0, x1 = rng.uniform(-5, 5, 2)
        f = p.objective({"a": a, "b": b})
        assert f(np.array([x0, x1])) == (a - x0) ** 2 + b * (x1 - x0 ** 2) ** 2


def test_textbook_values():
    v = {n: get_problem(n).objective() for n in PROBLEMS}
    assert v["rastrigin"](np.array([1.0, 0.0])) == pytest.approx(1.0)
    assert v["ackley"](np.zeros(3)) == pytest.approx(0.0, abs=1e-15)
    assert v["himmelblau"](np.array([-2.805118, 3.131312])) == pytest.approx(0.0, abs=1e-9)
    assert v["styblinski_tang"](np.array([0.0, 0.0])) == 0.0
    assert v["beale"](np.array([0.0, 0.0])) == pytest.approx(1.5**2 + 2.25**2 + 2.625**2)
    assert v["booth"](np.array([0.0, 0.0])) == 74.0
    assert v["griewank"](np.array([0.0])) == 0.0
    assert v["levy"](np.ones(5)) == pytest.approx(0.0, abs=1e-15)
    assert v["six_hump_camel"](np.array([-0.0898, 0.7126])) == pytest.approx(-1.0316, abs=1e-4)
    assert v["goldstein_price"](np.array([0.0, -1.0])) == 3.0
    assert v["sphere"](np.array([3.0, 4.0])) == 25.0
    assert math.isclose(v["rosenbrock"](np.array([1.0, 1.0, 1.0])), 0.0)


def test_ackley_gradient_is_finite_at_the_origin():
    g = get_problem("ackley").gradient()
    assert np.all(np.isfinite(g(np.zeros(4))))
