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
    kind: str  # "int" | "float" | "bool" | "choice" | "mutation" | "seed" | "jac" | "hess" | "minimizer_kwargs" | "dict"
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
    # "minimizer_kwargs" and "dict" (shgo's options): the keys the object takes, one level deep
    keys: tuple = ()
    # "minimizer_kwargs": per local method, (scipy's lower-case name, the catalogue entry whose
    # options it takes, the option names it takes there or None for all of them)
    local_methods: tuple = ()

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
        if self.keys:
            d["keys"] = [k.to_dict() for k in self.keys]
        if self.local_methods:
            from .minimize_methods import NEEDS_HESS
            d["local_methods"] = [{"name": name, "catalogue": cat, "options": None if names is None else list(names),
                                   "needs_hess": name in NEEDS_HESS} for name, cat, names in self.local_methods]
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
# options (objects of their own) are added once minimize's methods are known (_nested_options).
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


# scipy's words for what each global method does when minimizer_kwargs is null, and which local
# method it runs when minimizer_kwargs gives none (the validator fills that name in: the same call)
_LOCAL_DEFAULT = {
    "basinhopping": ("null: minimize's own choice, BFGS with its defaults",
                     "minimize's own choice: L-BFGS-B when bounds are given, else BFGS"),
    "dual_annealing": ("null: L-BFGS-B inside the bounds, maxiter min(max(6 n, 100), 1000); given, scipy adds "
                       "neither the bounds nor that maxiter",
                       "minimize's own choice: L-BFGS-B when bounds are given, else BFGS"),
    "shgo": ("null: SLSQP inside each sampling cell, ftol 1e-12; given, the options are only those it names",
             "SLSQP (shgo's default)"),
}

# shgo's options (its options= dict): the scalar keys scipy 1.17.1 documents. Left out: maxtime
# (a wall-clock stop no re-run can retrace: use the spec's stop.seconds), jac (scipy moves it to
# minimizer_kwargs: give it there), disp (prints to the server's log).
SHGO_OPTIONS = (
    Option("maxiter", "int", None, "maximum number of iterations; null: no limit (iters applies)", min=1, nullable=True),
    Option("maxfev", "int", None, "maximum number of evaluations in the feasible domain, checked once per "
           "iteration; null: no limit", min=1, nullable=True),
    Option("maxev", "int", None, "maximum number of sampling evaluations, infeasible points included; null: no limit",
           min=1, nullable=True),
    Option("f_min", "float", None, "the known minimum of f: stop once it is reached within f_tol; null: unknown",
           nullable=True),
    Option("f_tol", "float", 0.0001, "precision goal for f against f_min (relative; absolute when f_min is 0)", min=0),
    Option("minhgrd", "int", None, "stop once the homology group rank differential is at most this; null: never",
           min=0, nullable=True),
    Option("symmetry", "bool", False, "treat every variable as symmetric to x[0] (scipy's symmetry=True)"),
    Option("minimize_every_iter", "bool", True, "run the local minimizations every iteration, not only after the last"),
    Option("local_iter", "int", None, "local minimizations per iteration, best candidates first; null: all of them "
           "(scipy's False)", min=1, nullable=True),
    Option("infty_constraints", "bool", True, "keep infeasible sampling points (f = inf) rather than discard them"),
)


def _minimizer_kwargs(method: str) -> Option:
    """The minimizer_kwargs option of a global method: scipy's keys, one level deep."""
    from .minimize_methods import BOUNDED, LOCAL_METHODS, LOCAL_SCIPY_NAMES as METHOD_NAMES, SHGO_LOCAL_OPTIONS
    null_words, method_default = _LOCAL_DEFAULT[method]
    names = tuple(LOCAL_METHODS)
    shgo = method == "shgo"
    keys = [
        Option("method", "choice", "slsqp" if shgo else None, f"the local minimizer (scipy's name, any case); "
               f"{'' if shgo else 'null: '}{method_default}", choices=names,
               labels=tuple(METHOD_NAMES[n] if METHODS[c].title in (METHOD_NAMES[n], "L-BFGS-B")
                            else f"{METHOD_NAMES[n]} ({METHODS[c].title})" for n, c in LOCAL_METHODS.items()),
               nullable=not shgo),
        Option("jac", "jac", None, "the local minimizer's gradient, one of its jac choices (see its entry); null: "
               "scipy's default (none given)", choices=JAC_CHOICES, labels=JAC_LABELS, nullable=True),
        Option("hess", "hess", None, "the local minimizer's Hessian, one of its hess choices (see its entry); null: "
               "scipy's default, where the method has one", nullable=True),
    ]
    if not shgo:  # shgo gives the local minimizer bounds of its own (each sampling cell's)
        keys.append(Option("bounds", "bounds", None, "[lower, upper] per coordinate (null: open) for a method that "
                           f"takes bounds ({', '.join(METHOD_NAMES[n] for n in names if n in BOUNDED)}); null: none",
                           nullable=True))
    keys.append(Option("options", "dict", None, "the local minimizer's options, as its catalogue entry lists them"
                       + (" (shgo passes only ftol, catol and feasibility_tol on)" if shgo else "")
                       + "; null: scipy's defaults", nullable=True))
    local = []
    for name, cat in LOCAL_METHODS.items():
        opts = [o.name for o in METHODS[cat].options if o.name not in ("jac", "hess")]
        local.append((name, cat, tuple(o for o in opts if o in SHGO_LOCAL_OPTIONS) if shgo else None))
    return Option("minimizer_kwargs", "minimizer_kwargs", None, "the local minimizer and its options (scipy's "
                  "minimizer_kwargs); " + null_words, nullable=True, keys=tuple(keys), local_methods=tuple(local))


def _register_minimize_methods() -> None:
    # scipy.optimize.minimize's other methods, whose defaults are read from scipy itself
    from dataclasses import replace

    from .minimize_methods import MINIMIZE_METHODS
    METHODS.update(GLOBAL_METHODS)
    METHODS.update(MINIMIZE_METHODS)
    for name in ("dual_annealing", "shgo", "basinhopping"):
        extra = (_minimizer_kwargs(name),)
        if name == "shgo":
            extra += (Option("options", "dict", None, "shgo's own options (scipy's options=); null: scipy's defaults",
                             nullable=True, keys=SHGO_OPTIONS),)
        m = replace(METHODS[name], options=METHODS[name].options + extra)
        METHODS[name] = GLOBAL_METHODS[name] = m


_register_minimize_methods()


def method_catalogue() -> list[dict]:
    """The JSON list served by GET /api/methods/."""
    return [m.to_dict() for m in METHODS.values()]
