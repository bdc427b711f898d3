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
    takes_constraints: bool = False  # scipy passes a problem's constraints to it
    takes_x0: bool = True  # False: scipy's function has no starting point (shgo, direct)
    fixed_coordinates: bool = True  # False: scipy refuses a bound with equal sides (direct, dual_annealing)

    def option(self, name: str) -> Option | None:
        for o in self.options:
            if o.name == name:
                return o
        return None

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "short": self.short or self.title, "scipy": self.scipy,
                "needs_bounds": self.needs_bounds, "needs_x0": self.needs_x0, "takes_bounds": self.takes_bounds,
                "family": self.family, "takes_constraints": self.takes_constraints,
                "takes_x0": self.takes_x0,
                "options": [o.to_dict() for o in self.options]}


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("de", "Differential evolution", "scipy.optimize.differential_evolution", short="DE", family="global",
           takes_constraints=True,
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


_SEED = Option("seed", "seed", None, "integer seed for a legacy RandomState (scipy's seed=); null: unseeded", min=0)
_RNG = Option("rng", "seed", None, "integer seed for numpy.random.default_rng (scipy's rng=); null: unseeded", min=0)

# scipy's global optimizers other than DE (global_methods.py). Their defaults are scipy's
# (tests/test_optim_global.py reads them off scipy's signatures); minimizer_kwargs and shgo's
# options (dicts) are left to scipy's defaults.
GLOBAL_METHODS: dict[str, Method] = {m.name: m for m in [
    Method("dual_annealing", "Dual annealing", "scipy.optimize.dual_annealing", needs_bounds=True,
           needs_x0=False, family="global", fixed_coordinates=False, options=(
        Option("maxiter", "int", 1000, "maximum number of global search iterations", min=1),
        Option("initial_temp", "float", 5230.0, "initial temperature", min=0.01, max=5e4, min_exclusive=True),
        Option("restart_temp_ratio", "float", 2e-05, "re-anneal when the temperature falls to this share of the initial one",
               min=0, max=1, min_exclusive=True, max_exclusive=True),
        Option("visit", "float", 2.62, "parameter of the visiting distribution", min=1, max=3, min_exclusive=True),
        Option("accept", "float", -5.0, "parameter of the acceptance distribution", min=-1e4, max=-5),
        Option("maxfun", "int", 10_000_000, "soft limit on the number of function evaluations", min=1),
        _SEED, _RNG,
        Option("no_local_search", "bool", False, "skip the local search (classical generalized simulated annealing)"),
    )),
    Method("shgo", "Simplicial homology global optimization", "scipy.optimize.shgo", short="SHGO",
           needs_bounds=True, needs_x0=False, takes_x0=False, family="global", takes_constraints=True, options=(
        Option("n", "int", 100, "number of sampling points of the initial complex", min=1),
        Option("iters", "int", 1, "number of iterations building the complex", min=1),
        Option("sampling_method", "choice", "simplicial", "how the sampling points are made",
               choices=("simplicial", "halton", "sobol")),
    )),
    Method("direct", "DIRECT", "scipy.optimize.direct", needs_bounds=True, needs_x0=False, takes_x0=False,
           family="global", fixed_coordinates=False, options=(
        Option("eps", "float", 0.0001, "minimal required difference of f between hyperrectangles", min=0),
        Option("maxfun", "int", None, "maximum number of function evaluations; null: 1000 n", min=1, nullable=True),
        Option("maxiter", "int", 1000, "maximum number of iterations", min=1),
        Option("locally_biased", "bool", True, "DIRECT_L, the locally biased variant"),
        Option("f_min", "float", None, "the known global minimum; null: unknown (−∞)", nullable=True),
        Option("f_min_rtol", "float", 0.0001, "stop once f is within this relative tolerance of f_min", min=0, max=1),
        Option("vol_tol", "float", 1e-16, "stop once the best hyperrectangle's volume is this share of the bounds'",
               min=0, max=1),
        Option("len_tol", "float", 1e-06, "stop once the best hyperrectangle's side is this share of the bounds'",
               min=0, max=1),
    )),
    Method("basinhopping", "Basin-hopping", "scipy.optimize.basinhopping", needs_bounds=False, needs_x0=True,
           takes_bounds=False, family="global", options=(
        Option("niter", "int", 100, "number of basin-hopping iterations", min=0),
        Option("T", "float", 1.0, "temperature of the accept-or-reject criterion", min=0),
        Option("stepsize", "float", 0.5, "maximum step of the random displacement", min=0, min_exclusive=True),
        Option("interval", "int", 50, "how often to update the stepsize", min=1),
        Option("niter_success", "int", None, "stop when the best has not changed for this many iterations; null: never",
               min=1, nullable=True),
        _SEED, _RNG,
        Option("target_accept_rate", "float", 0.5, "the acceptance rate the stepsize adjusts to", min=0, max=1,
               min_exclusive=True, max_exclusive=True),
        Option("stepwise_factor", "float", 0.9, "what the stepsize is multiplied or divided by", min=0, max=1,
               min_exclusive=True, max_exclusive=True),
    )),
]}


def _register_minimize_methods() -> None:
    # scipy.optimize.minimize's other methods, whose defaults are read from scipy itself
    from .minimize_methods import MINIMIZE_METHODS
    METHODS.update(GLOBAL_METHODS)
    METHODS.update(MINIMIZE_METHODS)


_register_minimize_methods()


def method_catalogue() -> list[dict]:
    """The JSON list served by GET /api/methods/."""
    return [m.to_dict() for m in METHODS.values()]
