"""The methods and their options: scipy's names, scipy's defaults, types and valid ranges.

spec.py validates against these tables and /api/methods/ serves them, so the form, the socket
and the CLI all see one definition.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Option", "Method", "METHODS", "method_catalogue", "DE_STRATEGIES", "JAC_CHOICES", "FAMILIES"]

# scipy.optimize.DifferentialEvolutionSolver's binomial and exponential strategies
DE_STRATEGIES = (
    "best1bin", "best1exp", "rand1bin", "rand1exp", "rand2bin", "rand2exp",
    "randtobest1bin", "randtobest1exp", "currenttobest1bin", "currenttobest1exp",
    "best2bin", "best2exp",
)


# jac as scipy.optimize.minimize takes it: the problem's gradient, scipy's finite-difference
# strings (relative steps, finite_diff_rel_step), or null: what scipy does when no jac is given
# (forward differences with the absolute step eps).
JAC_CHOICES = ("analytic", "2-point", "3-point", "cs", None)
JAC_LABELS = (
    "analytic gradient",
    "2-point: forward differences, relative step",
    "3-point: central differences, relative step",
    "cs: complex step",
    "forward differences, absolute step eps (scipy's default without a gradient)",
)
JAC_DESCRIPTION = ('the gradient: "analytic" (the default where the problem has one), scipy\'s "2-point", '
                   '"3-point" or "cs", or null for scipy\'s default without one (forward differences, step eps)')


# The methods' families, in the order the new-run form shows them.
FAMILIES = (("global", "Global"), ("gradient", "Gradient and quasi-Newton"),
            ("newton", "Newton and trust region"), ("free", "Derivative-free"))


@dataclass(frozen=True)
class Option:
    name: str
    kind: str  # "int" | "float" | "bool" | "choice" | "mutation" | "seed" | "jac" | "hess"
    default: object
    description: str
    min: float | None = None
    max: float | None = None
    max_exclusive: bool = False
    min_exclusive: bool = False
    choices: tuple = ()
    max_reason: str = ""  # why max is what it is, where scipy sets it
    labels: tuple = ()  # words for each of the choices, in their order (the form shows these)
    nullable: bool = False  # null is a value of its own (a float option whose default is null)

    def to_dict(self) -> dict:
        d = {"name": self.name, "type": self.kind, "default": self.default,
             "description": self.description}
        if self.min is not None:
            d["min"] = self.min
            d["min_exclusive"] = self.min_exclusive
        if self.max is not None:
            d["max"] = self.max
            d["max_exclusive"] = self.max_exclusive
        if self.choices:
            d["choices"] = list(self.choices)
        if self.labels:
            d["labels"] = list(self.labels)
        if self.nullable:
            d["nullable"] = True
        return d


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    scipy: str
    needs_bounds: bool
    needs_x0: bool
    options: tuple[Option, ...]
    short: str = ""  # the name in tables, legends and headings ("DE"); the title where it is empty
    takes_bounds: bool = True  # False: scipy's method has no bounds (CG, BFGS, Newton-CG, trust-*)
    family: str = "gradient"  # one of FAMILIES: how the new-run form groups the methods

    def option(self, name: str) -> Option | None:
        for o in self.options:
            if o.name == name:
                return o
        return None

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "short": self.short or self.title, "scipy": self.scipy,
                "needs_bounds": self.needs_bounds, "needs_x0": self.needs_x0, "takes_bounds": self.takes_bounds,
                "family": self.family,
                "options": [o.to_dict() for o in self.options]}


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("de", "Differential evolution", "scipy.optimize.differential_evolution", short="DE", family="global",
           needs_bounds=True, needs_x0=False, options=(
        Option("strategy", "choice", "best1bin", "mutation strategy", choices=DE_STRATEGIES),
        Option("maxiter", "int", 1000, "maximum number of generations", min=0),
        Option("popsize", "int", 15, "population size multiplier (members = popsize * dim)",
               min=1),
        Option("tol", "float", 0.01, "relative convergence tolerance", min=0),
        Option("atol", "float", 0.0, "absolute convergence tolerance", min=0),
        Option("mutation", "mutation", [0.5, 1.0],
               "differential weight in [0, 2), or [lo, hi] for dithering", min=0, max=2,
               max_exclusive=True),
        Option("recombination", "float", 0.7, "crossover probability", min=0, max=1),
        Option("seed", "seed", None,
               "integer seed for a legacy RandomState (scipy's seed=); null: unseeded", min=0),
        Option("rng", "seed", None,
               "integer seed for numpy.random.default_rng (scipy's rng=); null: unseeded",
               min=0),
        Option("polish", "bool", True, "finish with an L-BFGS-B polish of the best member"),
        Option("init", "choice", "latinhypercube", "population initialisation",
               choices=("latinhypercube", "sobol", "halton", "random")),
        Option("updating", "choice", "immediate",
               "update the best member at once or once per generation",
               choices=("immediate", "deferred")),
    )),
    Method("lbfgsb", "L-BFGS-B", 'scipy.optimize.minimize(method="L-BFGS-B")',
           needs_bounds=False, needs_x0=True, options=(
        Option("maxcor", "int", 10, "number of stored correction pairs", min=1),
        Option("ftol", "float", 2.2204460492503131e-09,
               "stop when the relative reduction of f is at most ftol", min=0),
        Option("gtol", "float", 1e-05,
               "stop when the projected gradient's largest component is at most gtol", min=0),
        Option("eps", "float", 1e-08, "absolute finite-difference step for jac null (scipy's default)",
               min=0, min_exclusive=True),
        Option("finite_diff_rel_step", "float", None,
               'relative step for jac "2-point", "3-point" and "cs"; null: scipy\'s automatic step',
               min=0, min_exclusive=True, nullable=True),
        Option("maxfun", "int", 15000, "maximum number of function evaluations", min=1),
        Option("maxiter", "int", 15000, "maximum number of iterations", min=1),
        # scipy hands maxls to setulb as a C int: beyond it, minimize() raises OverflowError
        Option("maxls", "int", 20, "maximum number of line-search steps per iteration", min=1,
               max=2 ** 31 - 1, max_reason="scipy's L-BFGS-B takes a 32-bit integer"),
        Option("jac", "jac", None, JAC_DESCRIPTION, choices=JAC_CHOICES, labels=JAC_LABELS),
    )),
]}


def _register_minimize_methods() -> None:
    # scipy.optimize.minimize's other methods, whose defaults are read from scipy itself
    from .minimize_methods import MINIMIZE_METHODS
    METHODS.update(MINIMIZE_METHODS)


_register_minimize_methods()


def method_catalogue() -> list[dict]:
    """The JSON list served by GET /api/methods/."""
    return [m.to_dict() for m in METHODS.values()]
