"""The test-function catalogue: objectives, analytic gradients, domains and known minima.

Objectives and gradients are the hot path (scipy calls them thousands of times per run), so
each is a closure over its coefficients doing a handful of numpy operations on a 1-D x.

Constrained problems (CONSTRAINED_PROBLEMS) carry their constraints as data (`Constraint`):
kind, function, analytic Jacobian and formulas. They live in a dict of their own because their
known optimum is a constrained one (the gradient there need not vanish); `get_problem` and
`problem_catalogue` serve both dicts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Param", "Problem", "Constraint", "PROBLEMS", "CONSTRAINED_PROBLEMS", "ALL_PROBLEMS", "get_problem",
           "problem_catalogue", "FEASIBILITY_TOL"]

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


# a point counts as feasible (Step extra "feasible") when its violation is at most this: an
# equality constraint is only met to within the solver's tolerance, and SLSQP reports success
# on hs007 with a violation of 3e-8
FEASIBILITY_TOL = 1e-6


@dataclass(frozen=True)
class Constraint:
    """One scalar constraint in scipy's dict sense: "ineq" means fun(x) >= 0, "eq" fun(x) == 0.

    `fun` is written on x[0], x[1], ... with numpy operations only, so it takes one point
    (shape (dim,)) or a whole grid at once (shape (dim, ...)) and broadcasts; `jac` takes one
    point and returns the gradient of fun, shape (dim,).
    """

    kind: str  # "ineq" | "eq"
    fun: Callable[[np.ndarray], float]
    jac: Callable[[np.ndarray], np.ndarray]
    formula: str  # plain text, as the constraint reads in the literature
    latex: str

    def violation(self, x):
        """How far x is from satisfying it: max(0, -fun) for "ineq", |fun| for "eq"."""
        v = self.fun(x)
        return np.abs(v) if self.kind == "eq" else np.maximum(-v, 0.0)

    def scipy_dict(self, *, jac: bool = True) -> dict:
        """scipy's dict form, {"type", "fun"[, "jac"]}, as minimize(constraints=[...]) takes it."""
        d = {"type": self.kind, "fun": self.fun}
        if jac:
            d["jac"] = self.jac
        return d

    def scipy_nonlinear(self):
        """scipy's NonlinearConstraint: 0 <= fun(x) <= inf ("ineq") or 0 <= fun(x) <= 0 ("eq")."""
        from scipy.optimize import NonlinearConstraint
        # a fresh object each time: its default Hessian approximation, BFGS(), holds state
        return NonlinearConstraint(self.fun, 0.0, np.inf if self.kind == "ineq" else 0.0,
                                   jac=self.jac)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "formula": self.formula, "latex": self.latex}


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
    # (params, dim) -> (Constraint, ...); None: unconstrained (every problem of PROBLEMS)
    make_constraints: Callable[[dict, int], tuple] | None = None

    @property
    def has_gradient(self) -> bool:
        return self.make_grad is not None

    @property
    def has_constraints(self) -> bool:
        return self.make_constraints is not None

    def constraints(self, params: dict | None = None, dim: int | None = None) -> tuple:
        """The Constraints for these coefficients and dimension; () when unconstrained."""
        if self.make_constraints is None:
            return ()
        return tuple(self.make_constraints(self._params(params),
                                           self.default_dim if dim is None else dim))

    def violation(self, params: dict | None = None, dim: int | None = None):
        """x -> the largest violation over the constraints (0.0 when feasible), or None when
        unconstrained. Vectorised like Constraint.fun: a (dim, ...) grid gives a (...) array."""
        cons = self.constraints(params, dim)
        if not cons:
            return None
        if len(cons) == 1:
            return cons[0].violation

        def violation(x):
            return np.maximum.reduce([c.violation(x) for c in cons])
        return violation

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
            "constraints": [c.to_dict() for c in self.constraints()],
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


# ======== constrained problems ===========================================================
# Each constraint function indexes x[0], x[1] and uses numpy only, so the page can evaluate it
# on a whole contour grid at once (Constraint.fun).

def _ineq(fun, jac, formula, latex):
    return Constraint("ineq", fun, jac, formula, latex)


def _eq(fun, jac, formula, latex):
    return Constraint("eq", fun, jac, formula, latex)


def _polar_angle_derivatives(u, v):
    """d/du, d/dv of t = atan2(u, v); 0 at the origin, where t has no derivative."""
    r2 = u * u + v * v
    if r2 == 0.0:
        return 0.0, 0.0
    return v / r2, -u / r2


# ---- rosenbrock_disk: Rosenbrock on the disk x^2 + y^2 <= s (Wikipedia, "Test functions
# for optimization", constrained section, s = 2) --------------------------------------------
def _disk_constraints(p, dim):
    s = p["s"]
    return (_ineq(lambda x: s - x[0] ** 2 - x[1] ** 2,
                  lambda x: np.array([-2.0 * x[0], -2.0 * x[1]]),
                  f"x^2 + y^2 <= {s:g}", rf"x^2 + y^2 \le {s:g}"),)


def _disk_min(p, dim):
    # (1, 1), the unconstrained minimum, is feasible exactly when s >= 2; else it is unknown
    return ([1.0, 1.0], 0.0) if p["s"] >= 2.0 else None


# ---- rosenbrock_cubic_line: Rosenbrock with (x-1)^3 - y + 1 <= 0 and x + y - 2 <= 0 --------
def _cubic_line_constraints(p, dim):
    return (
        _ineq(lambda x: x[1] - 1.0 - (x[0] - 1.0) ** 3,
              lambda x: np.array([-3.0 * (x[0] - 1.0) ** 2, 1.0]),
              "(x - 1)^3 - y + 1 <= 0", r"(x - 1)^3 - y + 1 \le 0"),
        _ineq(lambda x: 2.0 - x[0] - x[1],
              lambda x: np.array([-1.0, -1.0]),
              "x + y - 2 <= 0", r"x + y - 2 \le 0"),
    )


# ---- mishra_bird: Mishra's bird, constrained to (x + 5)^2 + (y + 5)^2 < 25 -----------------
def _mishra_f():
    def f(x):
        u, v = x[0], x[1]
        return (np.sin(v) * np.exp((1 - np.cos(u)) ** 2) + np.cos(u) * np.exp((1 - np.sin(v)) ** 2)
                + (u - v) ** 2)
    return f


def _mishra_g():
    def g(x):
        u, v = x[0], x[1]
        a, b = np.exp((1 - np.cos(u)) ** 2), np.exp((1 - np.sin(v)) ** 2)
        return np.array([
            np.sin(v) * a * 2 * (1 - np.cos(u)) * np.sin(u) - np.sin(u) * b + 2 * (u - v),
            np.cos(v) * a - np.cos(u) * b * 2 * (1 - np.sin(v)) * np.cos(v) - 2 * (u - v),
        ])
    return g


def _mishra_constraints(p, dim):
    return (_ineq(lambda x: 25.0 - (x[0] + 5.0) ** 2 - (x[1] + 5.0) ** 2,
                  lambda x: np.array([-2.0 * (x[0] + 5.0), -2.0 * (x[1] + 5.0)]),
                  "(x + 5)^2 + (y + 5)^2 < 25", r"(x + 5)^2 + (y + 5)^2 < 25"),)


# ---- townsend: Townsend function (modified), inside a cardioid-like curve -------------------
def _townsend_f():
    def f(x):
        u, v = x[0], x[1]
        return -np.cos((u - 0.1) * v) ** 2 - u * np.sin(3 * u + v)
    return f


def _townsend_g():
    def g(x):
        u, v = x[0], x[1]
        s2 = np.sin(2 * (u - 0.1) * v)  # d/dw of -cos^2(w) is sin(2w)
        return np.array([s2 * v - np.sin(3 * u + v) - 3 * u * np.cos(3 * u + v),
                         s2 * (u - 0.1) - u * np.cos(3 * u + v)])
    return g


def _townsend_constraints(p, dim):
    def fun(x):
        u, v = x[0], x[1]
        t = np.arctan2(u, v)
        a = 2 * np.cos(t) - 0.5 * np.cos(2 * t) - 0.25 * np.cos(3 * t) - 0.125 * np.cos(4 * t)
        return a ** 2 + (2 * np.sin(t)) ** 2 - u * u - v * v

    def jac(x):
        u, v = x[0], x[1]
        t = math.atan2(u, v)
        a = (2 * math.cos(t) - 0.5 * math.cos(2 * t) - 0.25 * math.cos(3 * t)
             - 0.125 * math.cos(4 * t))
        da = -2 * math.sin(t) + math.sin(2 * t) + 0.75 * math.sin(3 * t) + 0.5 * math.sin(4 * t)
        dr2 = 2 * a * da + 8 * math.sin(t) * math.cos(t)  # d/dt of a^2 + 4 sin^2 t
        tu, tv = _polar_angle_derivatives(u, v)
        return np.array([dr2 * tu - 2 * u, dr2 * tv - 2 * v])

    return (_ineq(fun, jac,
                  "x^2 + y^2 < (2 cos t - cos(2t)/2 - cos(3t)/4 - cos(4t)/8)^2 + (2 sin t)^2,"
                  " t = atan2(x, y)",
                  r"x^2 + y^2 < \left(2\cos t - \tfrac12\cos 2t - \tfrac14\cos 3t"
                  r" - \tfrac18\cos 4t\right)^2 + (2\sin t)^2,\ t = \operatorname{atan2}(x, y)"),)


# ---- gomez_levy: the six-hump camel with -sin(4 pi x) + 2 sin^2(2 pi y) <= 1.5 ---------------
def _gomez_levy_constraints(p, dim):
    return (_ineq(lambda x: 1.5 + np.sin(4 * PI * x[0]) - 2 * np.sin(2 * PI * x[1]) ** 2,
                  lambda x: np.array([4 * PI * math.cos(4 * PI * x[0]),
                                      -4 * PI * math.sin(4 * PI * x[1])]),
                  "-sin(4 pi x) + 2 sin^2(2 pi y) <= 1.5",
                  r"-\sin(4\pi x) + 2\sin^2(2\pi y) \le 1.5"),)


# ---- simionescu: 0.1 x y inside the flower x^2 + y^2 <= (r_T + r_S cos(n arctan(x/y)))^2 ----
_SIM_N = 8  # petals; even, so atan2(x, y) may stand for arctan(x/y) (cos(8t) has period pi/4)


def _simionescu_f():
    return lambda x: 0.1 * x[0] * x[1]


def _simionescu_g():
    return lambda x: np.array([0.1 * x[1], 0.1 * x[0]])


def _simionescu_constraints(p, dim):
    rt, rs, n = p["r_T"], p["r_S"], _SIM_N

    def fun(x):
        # atan2 rather than arctan(x / y): defined on y = 0 too, and equal under cos(8 .)
        r = rt + rs * np.cos(n * np.arctan2(x[0], x[1]))
        return r * r - x[0] ** 2 - x[1] ** 2

    def jac(x):
        u, v = x[0], x[1]
        t = math.atan2(u, v)
        r = rt + rs * math.cos(n * t)
        dr2 = -2 * r * rs * n * math.sin(n * t)
        tu, tv = _polar_angle_derivatives(u, v)
        return np.array([dr2 * tu - 2 * u, dr2 * tv - 2 * v])

    return (_ineq(fun, jac,
                  f"x^2 + y^2 <= ({rt:g} + {rs:g} cos({n} arctan(x/y)))^2",
                  rf"x^2 + y^2 \le \left({rt:g} + {rs:g}"
                  rf"\cos\left({n}\arctan\frac{{x}}{{y}}\right)\right)^2"),)


def _simionescu_min(p, dim):
    # f = 0.1 r^2 sin(t) cos(t) with x = r sin t, y = r cos t: lowest at t = 3 pi/4 (and
    # -pi/4), where cos(8t) = 1 gives the largest radius r_T + r_S
    rt, rs = p["r_T"], p["r_S"]
    if not 0.0 <= rs < rt:
        return None
    r = rt + rs
    return [r / math.sqrt(2.0), -r / math.sqrt(2.0)], -0.05 * r * r


# ---- hs021: Hock-Schittkowski problem 21 (a quadratic, one linear constraint, bounds) --------
def _hs021_f():
    return lambda x: 0.01 * x[0] ** 2 + x[1] ** 2 - 100.0


def _hs021_g():
    return lambda x: np.array([0.02 * x[0], 2.0 * x[1]])


def _hs021_constraints(p, dim):
    return (_ineq(lambda x: 10.0 * x[0] - x[1] - 10.0, lambda x: np.array([10.0, -1.0]),
                  "10 x_1 - x_2 - 10 >= 0", r"10x_1 - x_2 - 10 \ge 0"),)


# ---- hs006: Hock-Schittkowski problem 6 (one equality constraint) ----------------------------
def _hs006_f():
    return lambda x: (1.0 - x[0]) ** 2


def _hs006_g():
    return lambda x: np.array([-2.0 * (1.0 - x[0]), 0.0])


def _hs006_constraints(p, dim):
    return (_eq(lambda x: 10.0 * (x[1] - x[0] ** 2), lambda x: np.array([-20.0 * x[0], 10.0]),
                "10 (x_2 - x_1^2) = 0", r"10\,(x_2 - x_1^2) = 0"),)


# ---- hs007: Hock-Schittkowski problem 7 (one equality constraint) ----------------------------
def _hs007_f():
    return lambda x: np.log(1.0 + x[0] ** 2) - x[1]


def _hs007_g():
    return lambda x: np.array([2.0 * x[0] / (1.0 + x[0] ** 2), -1.0])


def _hs007_constraints(p, dim):
    return (_eq(lambda x: (1.0 + x[0] ** 2) ** 2 + x[1] ** 2 - 4.0,
                lambda x: np.array([4.0 * x[0] * (1.0 + x[0] ** 2), 2.0 * x[1]]),
                "(1 + x_1^2)^2 + x_2^2 - 4 = 0", r"(1 + x_1^2)^2 + x_2^2 - 4 = 0"),)


_ROSEN = "f(x, y) = (1 - x)^2 + 100 (y - x^2)^2"
_ROSEN_TEX = r"f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2"
# formula/latex are the objective's; each Constraint carries its own (to_dict lists them)
_CAMEL = "f(x, y) = 4x^2 - 2.1x^4 + x^6/3 + xy - 4y^2 + 4y^4"
_CAMEL_TEX = r"f(x, y) = 4x^2 - 2.1x^4 + \frac{x^6}{3} + xy - 4y^2 + 4y^4"

# Optima: the literature's (x*, f*), each checked in tests/test_optim_constrained.py against a
# converged SLSQP run. Sources: Wikipedia "Test functions for optimization" (constrained
# section: rosenbrock_*, mishra_bird, townsend, gomez_levy, simionescu); W. Hock and
# K. Schittkowski, "Test Examples for Nonlinear Programming Codes", 1981 (hs*).
CONSTRAINED_PROBLEMS: dict[str, Problem] = {p.name: p for p in [
    Problem(
        "rosenbrock_disk", "Rosenbrock on a disk", _ROSEN, _ROSEN_TEX,
        (Param("s", 2.0, 0.01, 100.0, "squared radius of the feasible disk"),),
        2, 2, 2, _box(-1.5, 1.5), lambda s: _rosen_f(1.0, 100.0), lambda s: _rosen_g(1.0, 100.0),
        _disk_min, make_constraints=_disk_constraints),
    Problem(
        "rosenbrock_cubic_line", "Rosenbrock with a cubic and a line", _ROSEN, _ROSEN_TEX, (),
        2, 2, 2, lambda d: [[-1.5, 1.5], [-0.5, 2.5]],
        lambda: _rosen_f(1.0, 100.0), lambda: _rosen_g(1.0, 100.0),
        lambda p, d: ([1.0, 1.0], 0.0), make_constraints=_cubic_line_constraints),
    Problem(
        "mishra_bird", "Mishra's bird (constrained)",
        "f(x, y) = sin(y) e^{(1 - cos x)^2} + cos(x) e^{(1 - sin y)^2} + (x - y)^2",
        r"f(x, y) = \sin(y)\,e^{(1-\cos x)^2} + \cos(x)\,e^{(1-\sin y)^2} + (x-y)^2", (),
        2, 2, 2, lambda d: [[-10.0, 0.0], [-6.5, 0.0]], _mishra_f, _mishra_g,
        lambda p, d: ([-3.1302468, -1.5821422], -106.7645367),
        make_constraints=_mishra_constraints),
    Problem(
        "townsend", "Townsend (modified)",
        "f(x, y) = -cos^2((x - 0.1) y) - x sin(3x + y)",
        r"f(x, y) = -\cos^2\big((x - 0.1)y\big) - x\sin(3x + y)", (),
        2, 2, 2, lambda d: [[-2.25, 2.25], [-2.5, 1.75]], _townsend_f, _townsend_g,
        lambda p, d: ([2.0052938, 1.1944509], -2.0239884),
        make_constraints=_townsend_constraints),
    Problem(
        "gomez_levy", "Gomez-Levy (modified)", _CAMEL, _CAMEL_TEX, (),
        2, 2, 2, lambda d: [[-1.0, 0.75], [-1.0, 1.0]], _camel_f, _camel_g,
        # the six-hump camel's minimum with x > 0; its mirror image is infeasible
        lambda p, d: ([0.08984201368301331, -0.7126564032704135], -1.0316284534898774),
        make_constraints=_gomez_levy_constraints),
    Problem(
        "simionescu", "Simionescu", "f(x, y) = 0.1 x y", r"f(x, y) = 0.1\,xy",
        (Param("r_T", 1.0, 0.01, 10.0, "mean radius of the flower"),
         Param("r_S", 0.2, 0.0, 10.0, "depth of its petals")),
        2, 2, 2, _box(-1.25, 1.25), lambda r_T, r_S: _simionescu_f(),
        lambda r_T, r_S: _simionescu_g(),
        # two minima, (+-r, -+r)/sqrt 2; this is the one with x > 0
        _simionescu_min, make_constraints=_simionescu_constraints),
    Problem(
        "hs021", "Hock-Schittkowski 21", "f(x) = 0.01 x_1^2 + x_2^2 - 100",
        r"f(x) = 0.01x_1^2 + x_2^2 - 100", (),
        2, 2, 2, lambda d: [[2.0, 50.0], [-50.0, 50.0]], _hs021_f, _hs021_g,
        lambda p, d: ([2.0, 0.0], -99.96), make_constraints=_hs021_constraints),
    Problem(
        "hs006", "Hock-Schittkowski 6", "f(x) = (1 - x_1)^2", r"f(x) = (1 - x_1)^2", (),
        2, 2, 2, lambda d: [[-2.0, 2.0], [-1.0, 4.0]], _hs006_f, _hs006_g,
        lambda p, d: ([1.0, 1.0], 0.0), make_constraints=_hs006_constraints),
    Problem(
        "hs007", "Hock-Schittkowski 7", "f(x) = ln(1 + x_1^2) - x_2",
        r"f(x) = \ln(1 + x_1^2) - x_2", (),
        2, 2, 2, _box(-2.5, 2.5), _hs007_f, _hs007_g,
        lambda p, d: ([0.0, math.sqrt(3.0)], -math.sqrt(3.0)), make_constraints=_hs007_constraints),
]}


# Every problem a spec may name: the unconstrained ones, then the constrained ones.
ALL_PROBLEMS: dict[str, Problem] = {**PROBLEMS, **CONSTRAINED_PROBLEMS}


def get_problem(name: str) -> Problem:
    """The problem called `name` (unconstrained or constrained); KeyError if there is none."""
    return ALL_PROBLEMS[name]


def problem_catalogue() -> list[dict]:
    """The JSON list served by GET /api/problems/: the unconstrained problems, then the
    constrained ones (each lists its constraints)."""
    return [p.to_dict() for p in ALL_PROBLEMS.values()]
