"""The methods of scipy.optimize.minimize that run on minimize.py's stepper: their options as
scipy names them, with scipy's defaults read from the functions minimize calls (so that a default
here is scipy's by construction), types, ranges and words.

Options a run cannot carry as a number, a flag or a name (initial_simplex, direc, hess_inv0,
scale/offset arrays, disp, return_all, workers) are left out: scipy's defaults apply to them.
"""
from __future__ import annotations

import inspect
import math

from .methods import JAC_CHOICES, JAC_DESCRIPTION, JAC_LABELS, Method, Option

__all__ = ["MINIMIZE_METHODS", "HESS_CHOICES", "BOUNDED", "CONSTRAINED", "relation_errors"]

# The methods minimize passes constraints to (any other warns and ignores them: refused).
CONSTRAINED = frozenset({"cobyla", "cobyqa", "slsqp", "trust-constr"})
# The methods that take bounds (minimize's own list, and our L-BFGS-B's scipy name).
BOUNDED = frozenset({"nelder-mead", "powell", "tnc", "cobyla", "cobyqa", "slsqp", "trust-constr", "l-bfgs-b"})

# What scipy accepts as `hess` for each method that uses one ("analytic": the catalogue's Hessian;
# "bfgs"/"sr1": scipy's quasi-Newton update strategies). dogleg and trust-exact need a matrix.
# ("cs" is left out: it would differentiate the catalogue's gradients, which are real-only.)
HESS_CHOICES = {
    "newton-cg": ("analytic", "2-point", "3-point", None),
    "trust-constr": ("analytic", "2-point", "3-point", "bfgs", "sr1"),
    "trust-ncg": ("analytic", "2-point", "3-point", "bfgs", "sr1"),
    "trust-krylov": ("analytic", "2-point", "3-point"),
    "dogleg": ("analytic",),
    "trust-exact": ("analytic",),
}
_HESS_LABELS = {
    "analytic": "analytic Hessian", "2-point": "2-point differences of the gradient",
    "3-point": "3-point differences of the gradient",
    "bfgs": "BFGS update (scipy.optimize.BFGS)", "sr1": "SR1 update (scipy.optimize.SR1)",
    None: "none: Hessian-vector products by differences of the gradient",
}
# Methods that need a gradient function (scipy refuses finite-difference strings for them).
_GRADIENT_ONLY = {"newton-cg", "dogleg", "trust-ncg", "trust-krylov", "trust-exact"}


def _scipy_function(method: str):
    from scipy.optimize import _optimize, _trustregion
    from scipy.optimize._cobyla_py import _minimize_cobyla
    from scipy.optimize._cobyqa_py import _minimize_cobyqa
    from scipy.optimize._slsqp_py import _minimize_slsqp
    from scipy.optimize._tnc import _minimize_tnc
    from scipy.optimize._trustregion_constr import _minimize_trustregion_constr
    return {
        "nelder-mead": _optimize._minimize_neldermead, "powell": _optimize._minimize_powell,
        "cg": _optimize._minimize_cg, "bfgs": _optimize._minimize_bfgs,
        "newton-cg": _optimize._minimize_newtoncg, "tnc": _minimize_tnc, "cobyla": _minimize_cobyla,
        "cobyqa": _minimize_cobyqa, "slsqp": _minimize_slsqp, "trust-constr": _minimize_trustregion_constr,
        # dogleg, trust-ncg, trust-krylov and trust-exact take their options through this one
        "dogleg": _trustregion._minimize_trust_region, "trust-ncg": _trustregion._minimize_trust_region,
        "trust-krylov": _trustregion._minimize_trust_region, "trust-exact": _trustregion._minimize_trust_region,
    }[method]


def _defaults(method: str) -> dict:
    out = {}
    for name, p in inspect.signature(_scipy_function(method)).parameters.items():
        d = p.default
        if d is inspect.Parameter.empty:
            continue
        out[name] = float(d) if isinstance(d, float) else d  # numpy float64 -> float
    return out


# (name, kind, description, extra) per option; the default comes from scipy.
_POS = {"min": 0, "min_exclusive": True}
_NONNEG = {"min": 0}
_MAXITER = ("maxiter", "int", "maximum number of iterations; null: scipy's own default", {"min": 1, "nullable": True})
_MAXFEV = ("maxfev", "int", "maximum number of function evaluations; null: scipy's own default",
           {"min": 1, "nullable": True})
_EPS = ("eps", "float", "absolute finite-difference step for jac null (scipy's default)", _POS)
_REL = ("finite_diff_rel_step", "float", 'relative step for jac "2-point", "3-point" and "cs"; null: automatic',
        {**_POS, "nullable": True})
_C12 = [("c1", "float", "Armijo condition parameter of the line search", {"min": 0, "min_exclusive": True, "max": 1,
                                                                         "max_exclusive": True}),
        ("c2", "float", "curvature condition parameter of the line search", {"min": 0, "min_exclusive": True, "max": 1,
                                                                            "max_exclusive": True})]
_TRUST = [("initial_trust_radius", "float", "initial trust-region radius", _POS),
          ("max_trust_radius", "float", "largest trust-region radius", _POS),
          ("eta", "float", "accept a step when the actual reduction exceeds eta × the predicted one",
           {"min": 0, "max": 0.25, "max_exclusive": True}),
          ("gtol", "float", "stop when the gradient norm is below gtol", _NONNEG), _MAXITER]

_TABLES = {
    "nelder-mead": ("Nelder–Mead simplex", "Nelder-Mead", [
        _MAXITER, _MAXFEV,
        ("xatol", "float", "absolute change of x between iterations acceptable for convergence", _NONNEG),
        ("fatol", "float", "absolute change of f between iterations acceptable for convergence", _NONNEG),
        ("adaptive", "bool", "adapt the parameters to the dimension (useful in high dimensions)", {})]),
    "powell": ("Powell", "Powell", [
        ("xtol", "float", "relative error in x acceptable for convergence", _NONNEG),
        ("ftol", "float", "relative error in f acceptable for convergence", _NONNEG), _MAXITER, _MAXFEV]),
    "cg": ("Conjugate gradient", "CG", [
        ("gtol", "float", "stop when the gradient norm is below gtol", _NONNEG),
        ("norm", "float", "order (≥ 1) of the gradient norm", {"min": 1}),
        _EPS, _MAXITER, _REL, *_C12]),
    "bfgs": ("BFGS", "BFGS", [
        ("gtol", "float", "stop when the gradient norm is below gtol", _NONNEG),
        ("norm", "float", "order (≥ 1) of the gradient norm", {"min": 1}),
        _EPS, _MAXITER, _REL, ("xrtol", "float", "relative tolerance for x", _NONNEG), *_C12]),
    "newton-cg": ("Newton-CG", "Newton-CG", [
        ("xtol", "float", "average relative error in x acceptable for convergence", _POS),
        _EPS, _MAXITER, *_C12]),
    "tnc": ("Truncated Newton (TNC)", "TNC", [
        _EPS, ("maxCGit", "int", "maximum Hessian-vector products per iteration; -1: automatic", {"min": -1}),
        ("eta", "float", "severity of the line search; -1: 0.25", {"min": -1, "max": 1, "max_exclusive": True}),
        ("stepmx", "float", "largest step of the line search; 0: automatic", _NONNEG),
        ("accuracy", "float", "relative precision of f; 0: automatic", _NONNEG),
        ("minfev", "float", "an estimate of the lowest f", {}),
        ("ftol", "float", "precision goal for f; -1: automatic", {"min": -1}),
        ("xtol", "float", "precision goal for x; -1: automatic", {"min": -1}),
        ("gtol", "float", "precision goal for the projected gradient; -1: automatic", {"min": -1}),
        ("rescale", "float", "scaling factor in log10 for f; -1: automatic", {"min": -1}),
        _REL, ("maxfun", "int", "maximum number of function evaluations; null: max(100, 10 n)",
               {"min": 1, "nullable": True})]),
    "cobyla": ("COBYLA", "COBYLA", [
        ("rhobeg", "float", "reasonable initial changes to the variables", _POS),
        ("tol", "float", "final accuracy in the optimization", _POS),
        ("maxiter", "int", "maximum number of function evaluations", {"min": 1}),
        ("catol", "float", "tolerance for constraint violations; null: scipy's default", {**_NONNEG, "nullable": True}),
        ("f_target", "float", "stop once f is at or below this", {})]),
    "cobyqa": ("COBYQA", "COBYQA", [
        _MAXFEV, _MAXITER, ("f_target", "float", "stop once f is at or below this (at a feasible point)", {}),
        ("feasibility_tol", "float", "tolerance on the constraint violation", _NONNEG),
        ("initial_tr_radius", "float", "initial trust-region radius", _POS),
        ("final_tr_radius", "float", "final trust-region radius", _POS),
        ("scale", "bool", "scale the variables by the bounds", {})]),
    "slsqp": ("SLSQP", "SLSQP", [
        ("maxiter", "int", "maximum number of iterations", {"min": 1}),
        ("ftol", "float", "precision goal for f in the stopping criterion", _NONNEG), _EPS, _REL]),
    "trust-constr": ("Trust-region constrained", "trust-constr", [
        ("xtol", "float", "stop when the trust radius is below xtol", _NONNEG),
        ("gtol", "float", "stop when the Lagrangian's gradient norm is below gtol", _NONNEG),
        ("barrier_tol", "float", "barrier parameter threshold (inequality constraints)", _NONNEG),
        ("maxiter", "int", "maximum number of iterations", {"min": 1}), _REL,
        ("initial_constr_penalty", "float", "initial penalty of the merit function", _POS),
        ("initial_tr_radius", "float", "initial trust-region radius", _POS),
        ("initial_barrier_parameter", "float", "initial barrier parameter", _POS),
        ("initial_barrier_tolerance", "float", "initial tolerance of the barrier subproblem", _POS)]),
    "dogleg": ("Dog-leg trust region", "dogleg", _TRUST),
    "trust-ncg": ("Newton conjugate-gradient trust region", "trust-ncg", _TRUST),
    "trust-krylov": ("Nearly exact trust region (Krylov)", "trust-krylov", [
        *_TRUST, ("inexact", "bool", "solve the subproblems only roughly (faster)", {})]),
    "trust-exact": ("Nearly exact trust region", "trust-exact", _TRUST),
}

# scipy's own default for an option the stepper reads but the function leaves to **options
_MISSING_DEFAULT = {("trust-krylov", "inexact"): True}


def _method(name: str) -> Method:
    title, scipy_name, table = _TABLES[name]
    defaults = _defaults(name)
    options = []
    for opt, kind, description, extra in table:
        default = defaults[opt] if opt in defaults else _MISSING_DEFAULT[(name, opt)]
        if kind == "float" and isinstance(default, (int, float)) and not isinstance(default, bool):
            default = float(default)
        if kind == "float" and default is not None and not math.isfinite(default):
            # JSON holds no infinity: null stands for scipy's default (the stepper passes no null on)
            description += f"; null: scipy's default, {'−' if default < 0 else ''}∞"
            default, extra = None, {**extra, "nullable": True}
        options.append(Option(opt, kind, default, description, **extra))
    if name in _GRADIENT_ONLY:
        options.append(Option("jac", "jac", None, "the gradient: this method needs the analytic one",
                              choices=("analytic",), labels=("analytic gradient",)))
    elif name not in ("nelder-mead", "powell", "cobyla", "cobyqa"):
        options.append(Option("jac", "jac", None, JAC_DESCRIPTION, choices=JAC_CHOICES, labels=JAC_LABELS))
    if name in HESS_CHOICES:
        choices = HESS_CHOICES[name]
        options.append(Option("hess", "hess", None,
                              "the Hessian: " + ", ".join("null" if c is None else f'"{c}"' for c in choices),
                              choices=choices, labels=tuple(_HESS_LABELS[c] for c in choices)))
    return Method(name, title, f'scipy.optimize.minimize(method="{scipy_name}")', needs_bounds=False,
                  needs_x0=True, takes_bounds=name in BOUNDED, options=tuple(options), short=scipy_name,
                  family=_FAMILY.get(name, "gradient"), takes_constraints=name in CONSTRAINED)


_FAMILY = {"nelder-mead": "free", "powell": "free", "cobyla": "free", "cobyqa": "free",
           **{m: "newton" for m in ("newton-cg", "trust-constr", "dogleg", "trust-ncg", "trust-krylov", "trust-exact")}}


MINIMIZE_METHODS: dict[str, Method] = {name: _method(name) for name in _TABLES}


# (first, second, holds(first, second), the field it is reported at, words): what scipy checks
# of two options together, found by tests/test_optim_method_options.py.
_RELATIONS = (
    ("c1", "c2", lambda a, b: a < b, "options.c2",
     "must be greater than c1 ({a:g}): scipy's line search needs 0 < c1 < c2 < 1"),
    ("initial_trust_radius", "max_trust_radius", lambda a, b: a < b, "options.initial_trust_radius",
     "must be less than max_trust_radius ({b:g}), as scipy requires"),
    ("final_tr_radius", "initial_tr_radius", lambda a, b: a <= b, "options.final_tr_radius",
     "must not be greater than initial_tr_radius ({b:g}), as scipy requires"),
)


def relation_errors(method: str, options: dict) -> dict[str, str]:
    """What scipy requires of options together (each alone is checked against its range):
    {field: words} for every relation the values break."""
    errors = {}
    for first, second, holds, field, words in _RELATIONS:
        a, b = options.get(first), options.get(second)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not holds(a, b):
            errors[field] = words.format(a=a, b=b)
    return errors


# -- the local minimizers of the global methods (their minimizer_kwargs) ------------------------
# minimize's methods by scipy's lower-case names, in METHOD_NAMES' order, and the catalogue entry
# whose options each takes ("l-bfgs-b": lbfgsb's, the L-BFGS-B of minimize).
LOCAL_METHODS = {name: ("lbfgsb" if name == "l-bfgs-b" else name) for name in (
    "nelder-mead", "powell", "cg", "bfgs", "newton-cg", "l-bfgs-b", "tnc", "cobyla", "cobyqa", "slsqp",
    "trust-constr", "dogleg", "trust-ncg", "trust-krylov", "trust-exact")}
# scipy's own spelling of each ("L-BFGS-B"), as minimize takes it
LOCAL_SCIPY_NAMES = {name: ("L-BFGS-B" if name == "l-bfgs-b" else _TABLES[name][1]) for name in LOCAL_METHODS}
# What shgo keeps of the local minimizer's options: SHGO.__init__ restricts them to ftol and its
# solver arguments (catol for COBYLA, feasibility_tol for COBYQA) and drops any other silently.
SHGO_LOCAL_OPTIONS = frozenset({"ftol", "catol", "feasibility_tol"})
# Methods that cannot run without a Hessian (trust-constr and newton-cg can: scipy has defaults).
NEEDS_HESS = frozenset(m for m, c in HESS_CHOICES.items() if None not in c and m != "trust-constr")
