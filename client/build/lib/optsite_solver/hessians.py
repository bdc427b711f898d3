"""Analytic Hessians for the catalogue problems, for the minimize methods that take one
(newton-cg, trust-constr, dogleg, trust-ncg, trust-krylov, trust-exact).

Kept apart from problems.py (which another part of the code owns): `hessian(name, params)` is
the Hessian callable of problem `name` with coefficients `params` (the problem's defaults
overlaid, as Problem.objective does), or None where none is written down here (ackley: not
twice differentiable at the origin). Each one is checked against finite differences of the
problem's analytic gradient in tests/test_optim_minimize.py.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .problems import get_problem

__all__ = ["hessian", "HESSIANS"]

PI = math.pi


def _rosen_h(a, b):
    def h(x):
        x = np.asarray(x, dtype=float)
        n = x.size
        H = np.zeros((n, n))
        x0, x1 = x[:-1], x[1:]
        d = np.zeros(n)
        d[:-1] += 2.0 - 4.0 * b * x1 + 12.0 * b * x0 ** 2  # from (a - x_i)^2 + b (x_{i+1} - x_i^2)^2
        d[1:] += 2.0 * b  # from b (x_i - x_{i-1}^2)^2
        H[np.arange(n), np.arange(n)] = d
        off = -4.0 * b * x0
        H[np.arange(n - 1), np.arange(1, n)] = off
        H[np.arange(1, n), np.arange(n - 1)] = off
        return H
    return h


def _sphere_h():
    return lambda x: 2.0 * np.eye(np.asarray(x).size)


def _rastrigin_h(A):
    return lambda x: np.diag(2.0 + 4 * PI * PI * A * np.cos(2 * PI * np.asarray(x, dtype=float)))


def _himmelblau_h():
    def h(x):
        u, v = float(x[0]), float(x[1])
        p, q = u * u + v - 11, u + v * v - 7
        return np.array([[4 * p + 8 * u * u + 2, 4 * u + 4 * v],
                         [4 * u + 4 * v, 2 + 4 * q + 8 * v * v]])
    return h


def _st_h():
    return lambda x: np.diag(6.0 * np.asarray(x, dtype=float) ** 2 - 16.0)


def _beale_h():
    def h(x):
        u, v = float(x[0]), float(x[1])
        ts = (1.5 - u + u * v, 2.25 - u + u * v * v, 2.625 - u + u * v ** 3)
        grads = (np.array([v - 1, u]), np.array([v * v - 1, 2 * u * v]),
                 np.array([v ** 3 - 1, 3 * u * v * v]))
        hs = (np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0.0, 2 * v], [2 * v, 2 * u]]),
              np.array([[0.0, 3 * v * v], [3 * v * v, 6 * u * v]]))
        return sum(2 * (np.outer(g, g) + t * hh) for t, g, hh in zip(ts, grads, hs))
    return h


def _booth_h():
    return lambda x: np.array([[10.0, 8.0], [8.0, 10.0]])


def _camel_h():
    def h(x):
        u, v = float(x[0]), float(x[1])
        return np.array([[8 - 25.2 * u * u + 10 * u ** 4, 1.0], [1.0, -8 + 48 * v * v]])
    return h


def _griewank_h():
    def h(x):
        x = np.asarray(x, dtype=float)
        n = x.size
        sq = np.sqrt(np.arange(1, n + 1))
        c, s = np.cos(x / sq), np.sin(x / sq) / sq
        H = np.eye(n) / 2000.0
        for i in range(n):
            for j in range(n):
                others = np.prod(np.delete(c, [i] if i == j else [i, j]))
                # -prod cos: d2/dxi2 = cos_i / i * prod_{k != i}; d2/dxi dxj = -s_i s_j prod_{k != i, j}
                H[i, j] += c[i] / sq[i] ** 2 * others if i == j else -s[i] * s[j] * others
        return H
    return h


def _levy_h():
    # each term of Levy's sum depends on one w_i = 1 + (x_i - 1)/4, so the Hessian is diagonal:
    # d2f/dx_i2 = (1/16) d2/dw_i2 of the terms w_i is in (w_1 also in the first, w_n in the last)
    def h(x):
        w = 1.0 + (np.asarray(x, dtype=float) - 1.0) / 4.0
        d = np.zeros_like(w)
        d[0] += 2 * PI * PI * np.cos(2 * PI * w[0])  # sin^2(pi w_1)
        wi = w[:-1] - 1
        ai = PI * w[:-1] + 1
        d[:-1] += (2 * (1 + 10 * np.sin(ai) ** 2) + 40 * PI * wi * np.sin(2 * ai)
                   + 20 * PI * PI * wi * wi * np.cos(2 * ai))
        wn = w[-1] - 1
        d[-1] += (2 * (1 + np.sin(2 * PI * w[-1]) ** 2) + 8 * PI * wn * np.sin(4 * PI * w[-1])
                  + 8 * PI * PI * wn * wn * np.cos(4 * PI * w[-1]))
        return np.diag(d / 16.0)
    return h


def _gp_h():
    # f = F1 F2, F1 = 1 + A^2 P, F2 = 30 + B^2 Q (the parts of problems.py's gradient):
    # H = F2 H1 + F1 H2 + g1 g2^T + g2 g1^T
    from .problems import _gp_parts

    def h(x):
        u, v = float(x[0]), float(x[1])
        A, P, B, Q = _gp_parts(u, v)
        F1, F2 = 1 + A * A * P, 30 + B * B * Q
        dP = -14 + 6 * u + 6 * v  # dP/du == dP/dv; d2P = 6 everywhere
        dF1 = 2 * A * P + A * A * dP  # dF1/du == dF1/dv
        c1 = 2 * P + 4 * A * dP + 6 * A * A  # every second derivative of F1
        Qu, Qv = -32 + 24 * u - 36 * v, 48 - 36 * u + 54 * v  # d2Q: 24, -36, 54
        Bu, Bv = 2.0, -3.0
        g2u = 2 * B * Bu * Q + B * B * Qu
        g2v = 2 * B * Bv * Q + B * B * Qv
        h2uu = 2 * Q * Bu * Bu + 4 * B * Bu * Qu + B * B * 24
        h2vv = 2 * Q * Bv * Bv + 4 * B * Bv * Qv + B * B * 54
        h2uv = 2 * Q * Bu * Bv + 2 * B * (Bu * Qv + Bv * Qu) - B * B * 36
        huu = F2 * c1 + F1 * h2uu + 2 * dF1 * g2u
        hvv = F2 * c1 + F1 * h2vv + 2 * dF1 * g2v
        huv = F2 * c1 + F1 * h2uv + dF1 * (g2u + g2v)
        return np.array([[huu, huv], [huv, hvv]])
    return h


HESSIANS: dict[str, Callable[..., Callable]] = {
    "rosenbrock": _rosen_h, "sphere": _sphere_h, "rastrigin": _rastrigin_h,
    "himmelblau": _himmelblau_h, "styblinski_tang": _st_h, "beale": _beale_h,
    "booth": _booth_h, "six_hump_camel": _camel_h, "griewank": _griewank_h,
    "levy": _levy_h, "goldstein_price": _gp_h,
}


def hessian(problem_name, params: dict | None = None) -> Callable | None:
    """The analytic Hessian x -> (n, n) array of the problem, or None where there is none here.
    `problem_name` may also be a problem object that derives its own (an expression problem)."""
    if not isinstance(problem_name, str):
        return problem_name.hessian(params)
    make = HESSIANS.get(problem_name)
    if make is None:
        return None
    full = get_problem(problem_name).defaults()
    full.update(params or {})
    return make(**full)
