"""The test-function catalogue: objectives, analytic gradients, domains and known minima.

Objectives and gradients are the hot path (scipy calls them thousands of times per run), so
each is a closure over its coefficients doing a handful of numpy operations on a 1-D x.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Param", "Problem", "PROBLEMS", "get_problem", "problem_catalogue"]

PI = math.pi
E = math.e


@dataclass(frozen=True)
class Param:
    name: str
    default: float
    min: float
    max: float
    description: str

    def to_dict(self) -> dict:
        return {"name": self.name, "default": self.default, "min": self.min,
                "max": self.max, "description": self.description}


@dataclass(frozen=True)
class Problem:
    name: str
    title: str
    formula: str  # plain text
    latex: str
    params: tuple[Param, ...]
    default_dim: int
    min_dim: int
    max_dim: int | None  # None: any dimension
    domain: Callable[[int], list]  # dim -> [[lo, hi], ...] (the textbook search domain)
    make_f: Callable[..., Callable]
    make_grad: Callable[..., Callable] | None
    minimum: Callable[..., tuple | None]  # (params, dim) -> (x*, f*) or None
    # f gives the exact derivative along a complex step (jac "cs"): no abs, no cast to float
    complex_step: bool = True

    @property
    def has_gradient(self) -> bool:
        return self.make_grad is not None

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def _params(self, params):
        full = self.defaults()
        full.update(params or {})
        return full

    def objective(self, params: dict | None = None) -> Callable[[np.ndarray], float]:
        return self.make_f(**self._params(params))

    def gradient(self, params: dict | None = None) -> Callable[[np.ndarray], np.ndarray] | None:
        return None if self.make_grad is None else self.make_grad(**self._params(params))

    def default_bounds(self, dim: int | None = None) -> list:
        return self.domain(self.default_dim if dim is None else dim)

    def known_minimum(self, params: dict | None = None, dim: int | None = None) -> dict | None:
        """{"x": [...], "f": f*} for these coefficients and dimension, or None if unknown."""
        found = self.minimum(self._params(params), self.default_dim if dim is None else dim)
        if found is None:
            return None
        x, f = found
        return {"x": [float(v) for v in x], "f": float(f)}

    def to_dict(self) -> dict:
        return {
            "name": self.name, "title": self.title, "formula": self.formula,
            "latex": self.latex, "params": [p.to_dict() for p in self.params],
            "default_dim": self.default_dim, "min_dim": self.min_dim, "max_dim": self.max_dim,
            "default_bounds": self.default_bounds(),
            "known_minimum": self.known_minimum(),
            "has_gradient": self.has_gradient,
            "complex_step": self.complex_step,
            "has_hessian": self.name in _hessians(),
        }


def _hessians():
    from .hessians import HESSIANS  # (hessians.py reads this catalogue)
    return HESSIANS


def _box(lo, hi):
    return lambda dim: [[lo, hi] for _ in range(dim)]


# ---- rosenbrock -------------------------------------------------------------------------
def _rosen_f(a, b):
    def f(x):
        x0, x1 = x[:-1], x[1:]
        return np.sum((a - x0) ** 2 + b * (x1 - x0 ** 2) ** 2)
    return f


def _rosen_g(a, b):
    def g(x):
        x0 = x[:-1]
        t = x[1:] - x0 ** 2
        out = np.zeros_like(x, dtype=float)
        out[:-1] = -2.0 * (a - x0) - 4.0 * b * x0 * t
        out[1:] += 2.0 * b * t
        return out
    return g


def _rosen_min(p, dim):
    a, b = p["a"], p["b"]
    if b <= 0:
        return None  # with b = 0 the last coordinate is free: no unique minimiser
    if dim == 2:
        return [a, a * a], 0.0
    if a in (0.0, 1.0):  # only then can x_i = a and x_{i+1} = x_i^2 hold along the chain
        return [a] * dim, 0.0
    return None


# ---- sphere -----------------------------------------------------------------------------
def _sphere_f():
    return lambda x: np.dot(x, x)


def _sphere_g():
    return lambda x: 2.0 * x


# ---- rastrigin --------------------------------------------------------------------------
def _rastrigin_f(A):
    def f(x):
        return A * x.size + np.sum(x * x - A * np.cos(2 * PI * x))
    return f


def _rastrigin_g(A):
    def g(x):
        return 2.0 * x + 2 * PI * A * np.sin(2 * PI * x)
    return g


# ---- ackley -----------------------------------------------------------------------------
def _ackley_f(a, b, c):
    def f(x):
        n = x.size
        r = math.sqrt(np.dot(x, x) / n)
        return -a * math.exp(-b * r) - math.exp(np.sum(np.cos(c * x)) / n) + a + E
    return f


def _ackley_g(a, b, c):
    def g(x):
        n = x.size
        r = math.sqrt(np.dot(x, x) / n)
        cx = c * x
        s = math.exp(np.sum(np.cos(cx)) / n) * c / n * np.sin(cx)
        if r == 0.0:
            return s  # the first term has no derivative at the origin; 0 is its subgradient
        return a * b * math.exp(-b * r) / (n * r) * x + s
    return g


# ---- himmelblau -------------------------------------------------------------------------
def _himmelblau_f():
    def f(x):
        u, v = x[0], x[1]
        return (u * u + v - 11) ** 2 + (u + v * v - 7) ** 2
    return f


def _himmelblau_g():
    def g(x):
        u, v = x[0], x[1]
        p, q = u * u + v - 11, u + v * v - 7
        return np.array([4 * u * p + 2 * q, 2 * p + 4 * v * q])
    return g


# ---- styblinski_tang --------------------------------------------------------------------
def _st_f():
    def f(x):
        x2 = x * x
        return 0.5 * np.sum(x2 * x2 - 16 * x2 + 5 * x)
    return f


def _st_g():
    return lambda x: 2.0 * x ** 3 - 16.0 * x + 2.5


# the minimiser is the smallest real root of 4x^3 - 32x + 5 (derivative of x^4 - 16x^2 + 5x)
_ST_X = float(min(r.real for r in np.roots([4.0, 0.0, -32.0, 5.0]) if abs(r.imag) < 1e-12))
_ST_F1 = 0.5 * (_ST_X ** 4 - 16 * _ST_X ** 2 + 5 * _ST_X)


# ---- beale ------------------------------------------------------------------------------
def _beale_f():
    def f(x):
        u, v = x[0], x[1]
        return ((1.5 - u + u * v) ** 2 + (2.25 - u + u * v * v) ** 2
                + (2.625 - u + u * v ** 3) ** 2)
    return f


def _beale_g():
    def g(x):
        u, v = x[0], x[1]
        t1, t2, t3 = 1.5 - u + u * v, 2.25 - u + u * v * v, 2.625 - u + u * v ** 3
        return np.array([
            2 * t1 * (v - 1) + 2 * t2 * (v * v - 1) + 2 * t3 * (v ** 3 - 1),
            2 * t1 * u + 4 * t2 * u * v + 6 * t3 * u * v * v,
        ])
    return g


# ---- booth ------------------------------------------------------------------------------
def _booth_f():
    def f(x):
        u, v = x[0], x[1]
        return (u + 2 * v - 7) ** 2 + (2 * u + v - 5) ** 2
    return f


def _booth_g():
    def g(x):
        p, q = x[0] + 2 * x[1] - 7, 2 * x[0] + x[1] - 5
        return np.array([2 * p + 4 * q, 4 * p + 2 * q])
    return g


# ---- griewank ---------------------------------------------------------------------------
def _griewank_f():
    def f(x):
        return 1.0 + np.dot(x, x) / 4000.0 - np.prod(np.cos(x / np.sqrt(np.arange(1, x.size + 1))))
    return f


def _griewank_g():
    def g(x):
        sq = np.sqrt(np.arange(1, x.size + 1))
        cs = np.cos(x / sq)
        # product of all cosines but the i-th, without dividing (a cosine may be 0)
        left = np.concatenate(([1.0], np.cumprod(cs[:-1])))
        right = np.concatenate((np.cumprod(cs[::-1][:-1])[::-1], [1.0]))
        return x / 2000.0 + np.sin(x / sq) / sq * left * right
    return g


# ---- levy -------------------------------------------------------------------------------
def _sin(v) -> float:
    """math.sin, but nan where the argument overflowed to ±inf (math.sin raises there; numpy's
    answer is nan): far out, x = 1e308, the run goes on as scipy's would, with nan values."""
    return math.sin(v) if math.isfinite(v) else math.nan


def _levy_f():
    def f(x):
        w = 1.0 + (x - 1.0) / 4.0
        wi, wn = w[:-1], w[-1]
        return (_sin(PI * w[0]) ** 2
                + np.sum((wi - 1) ** 2 * (1 + 10 * np.sin(PI * wi + 1) ** 2))
                + (wn - 1) ** 2 * (1 + _sin(2 * PI * wn) ** 2))
    return f


def _levy_g():
    def g(x):
        w = 1.0 + (x - 1.0) / 4.0
        dw = np.zeros_like(w)
        dw[0] += PI * _sin(2 * PI * w[0])
        wi = w[:-1]
        dw[:-1] += (2 * (wi - 1) * (1 + 10 * np.sin(PI * wi + 1) ** 2)
                    + (wi - 1) ** 2 * 10 * PI * np.sin(2 * (PI * wi + 1)))
        wn = w[-1]
        dw[-1] += (2 * (wn - 1) * (1 + _sin(2 * PI * wn) ** 2)
                   + (wn - 1) ** 2 * 2 * PI * _sin(4 * PI * wn))
        return dw / 4.0
    return g


# ---- six_hump_camel ---------------------------------------------------------------------
def _camel_f():
    def f(x):
        u, v = x[0], x[1]
        u2, v2 = u * u, v * v
        return (4 - 2.1 * u2 + u2 * u2 / 3) * u2 + u * v + (-4 + 4 * v2) * v2
    return f


def _camel_g():
    def g(x):
        u, v = x[0], x[1]
        return np.array([8 * u - 8.4 * u ** 3 + 2 * u ** 5 + v, u - 8 * v + 16 * v ** 3])
    return g


# ---- goldstein_price --------------------------------------------------------------------
def _gp_parts(u, v):
    A = u + v + 1
    P = 19 - 14 * u + 3 * u * u - 14 * v + 6 * u * v + 3 * v * v
    B = 2 * u - 3 * v
    Q = 18 - 32 * u + 12 * u * u + 48 * v - 36 * u * v + 27 * v * v
    return A, P, B, Q


def _gp_f():
    def f(x):
        A, P, B, Q = _gp_parts(x[0], x[1])
        return (1 + A * A * P) * (30 + B * B * Q)
    return f


def _gp_g():
    def g(x):
        u, v = x[0], x[1]
        A, P, B, Q = _gp_parts(u, v)
        F1, F2 = 1 + A * A * P, 30 + B * B * Q
        dP = -14 + 6 * u + 6 * v  # dP/du == dP/dv
        dF1 = 2 * A * P + A * A * dP
        dF2u = 4 * B * Q + B * B * (-32 + 24 * u - 36 * v)
        dF2v = -6 * B * Q + B * B * (48 - 36 * u + 54 * v)
        return np.array([dF1 * F2 + F1 * dF2u, dF1 * F2 + F1 * dF2v])
    return g


_ANY = None
PROBLEMS: dict[str, Problem] = {p.name: p for p in [
    Problem(
        "rosenbrock", "Rosenbrock",
        "f(x) = sum_{i<n-1} (a - x_i)^2 + b (x_{i+1} - x_i^2)^2",
        r"f(x) = \sum_{i=0}^{n-2} (a - x_i)^2 + b\,(x_{i+1} - x_i^2)^2",
        (Param("a", 1.0, -100.0, 100.0, "shift of the valley floor"),
         Param("b", 100.0, 0.0, 1e6, "steepness of the valley walls")),
        2, 2, _ANY, _box(-5.0, 10.0), _rosen_f, _rosen_g, _rosen_min),
    Problem(
        "sphere", "Sphere", "f(x) = sum x_i^2", r"f(x) = \sum_i x_i^2", (),
        2, 1, _ANY, _box(-5.12, 5.12), _sphere_f, _sphere_g,
        lambda p, d: ([0.0] * d, 0.0)),
    Problem(
        "rastrigin", "Rastrigin", "f(x) = A n + sum (x_i^2 - A cos(2 pi x_i))",
        r"f(x) = A n + \sum_i \left(x_i^2 - A\cos(2\pi x_i)\right)",
        (Param("A", 10.0, 0.0, 1000.0, "amplitude of the cosine ripples"),),
        2, 1, _ANY, _box(-5.12, 5.12), _rastrigin_f, _rastrigin_g,
        lambda p, d: ([0.0] * d, 0.0)),
    Problem(
        "ackley", "Ackley",
        "f(x) = -a exp(-b sqrt(mean x_i^2)) - exp(mean cos(c x_i)) + a + e",
        r"f(x) = -a\,e^{-b\sqrt{\frac1n\sum_i x_i^2}} - e^{\frac1n\sum_i\cos(c x_i)} + a + e",
        (Param("a", 20.0, 0.0, 1000.0, "depth of the outer funnel"),
         Param("b", 0.2, 0.0, 100.0, "width of the outer funnel"),
         Param("c", 2 * PI, 0.0, 1000.0, "frequency of the ripples")),
        2, 1, _ANY, _box(-32.768, 32.768), _ackley_f, _ackley_g,
        lambda p, d: ([0.0] * d, 0.0), complex_step=False),
    Problem(
        "himmelblau", "Himmelblau", "f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2",
        r"f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2", (),
        2, 2, 2, _box(-5.0, 5.0), _himmelblau_f, _himmelblau_g,
        # four global minima with f* = 0; (3, 2) is the one with integer coordinates
        lambda p, d: ([3.0, 2.0], 0.0)),
    Problem(
        "styblinski_tang", "Styblinski-Tang", "f(x) = 0.5 sum (x_i^4 - 16 x_i^2 + 5 x_i)",
        r"f(x) = \frac12 \sum_i \left(x_i^4 - 16x_i^2 + 5x_i\right)", (),
        2, 1, _ANY, _box(-5.0, 5.0), _st_f, _st_g,
        lambda p, d: ([_ST_X] * d, _ST_F1 * d)),
    Problem(
        "beale", "Beale",
        "f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
        r"f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2", (),
        2, 2, 2, _box(-4.5, 4.5), _beale_f, _beale_g, lambda p, d: ([3.0, 0.5], 0.0)),
    Problem(
        "booth", "Booth", "f(x, y) = (x + 2y - 7)^2 + (2x + y - 5)^2",
        r"f(x, y) = (x + 2y - 7)^2 + (2x + y - 5)^2", (),
        2, 2, 2, _box(-10.0, 10.0), _booth_f, _booth_g, lambda p, d: ([1.0, 3.0], 0.0)),
    Problem(
        "griewank", "Griewank", "f(x) = 1 + sum x_i^2 / 4000 - prod cos(x_i / sqrt(i))",
        r"f(x) = 1 + \frac{1}{4000}\sum_i x_i^2 - \prod_i \cos\frac{x_i}{\sqrt{i}}", (),
        2, 1, _ANY, _box(-600.0, 600.0), _griewank_f, _griewank_g,
        lambda p, d: ([0.0] * d, 0.0)),
    Problem(
        "levy", "Levy",
        "w_i = 1 + (x_i - 1)/4; f = sin^2(pi w_1) + sum_{i<n} (w_i - 1)^2 (1 + 10 sin^2(pi w_i + 1))"
        " + (w_n - 1)^2 (1 + sin^2(2 pi w_n))",
        r"f(x) = \sin^2(\pi w_1) + \sum_{i=1}^{n-1}(w_i-1)^2\left[1+10\sin^2(\pi w_i+1)\right]"
        r" + (w_n-1)^2\left[1+\sin^2(2\pi w_n)\right],\ w_i = 1 + \frac{x_i-1}{4}", (),
        2, 1, _ANY, _box(-10.0, 10.0), _levy_f, _levy_g, lambda p, d: ([1.0] * d, 0.0),
        complex_step=False),
    Problem(
        "six_hump_camel", "Six-hump camel",
        "f(x, y) = (4 - 2.1 x^2 + x^4/3) x^2 + x y + (-4 + 4 y^2) y^2",
        r"f(x, y) = \left(4 - 2.1x^2 + \frac{x^4}{3}\right)x^2 + xy + (-4 + 4y^2)\,y^2", (),
        2, 2, 2, lambda d: [[-3.0, 3.0], [-2.0, 2.0]], _camel_f, _camel_g,
        # two symmetric global minima; this is the one with x > 0
        lambda p, d: ([0.08984201368301331, -0.7126564032704135], -1.0316284534898774)),
    Problem(
        "goldstein_price", "Goldstein-Price",
        "f(x, y) = [1 + (x + y + 1)^2 (19 - 14x + 3x^2 - 14y + 6xy + 3y^2)]"
        " [30 + (2x - 3y)^2 (18 - 32x + 12x^2 + 48y - 36xy + 27y^2)]",
        r"f(x, y) = \left[1 + (x+y+1)^2(19 - 14x + 3x^2 - 14y + 6xy + 3y^2)\right]"
        r"\left[30 + (2x-3y)^2(18 - 32x + 12x^2 + 48y - 36xy + 27y^2)\right]", (),
        2, 2, 2, _box(-2.0, 2.0), _gp_f, _gp_g, lambda p, d: ([0.0, -1.0], 3.0)),
]}


def get_problem(name: str) -> Problem:
    """The problem called `name`; KeyError if there is none."""
    return PROBLEMS[name]


def problem_catalogue() -> list[dict]:
    """The JSON list served by GET /api/problems/."""
    return [p.to_dict() for p in PROBLEMS.values()]
