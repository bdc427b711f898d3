"""Differential evolution, one generation per step, bitwise equal to
scipy.optimize.differential_evolution.

scipy's DifferentialEvolutionSolver does one generation per next() but ignores maxiter there,
so this drives it the way its solve() does: initial energies, then generations with scipy's
callback/convergence/maxiter order, then the L-BFGS-B polish (its own step).

A constrained problem's constraints go to the solver as `differential_evolution(constraints=
[NonlinearConstraint, ...])` takes them; scipy then ranks members by feasibility first, polishes
with trust-constr instead of L-BFGS-B, and reports an infeasible answer as a failure.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.optimize import Bounds, minimize
from scipy.optimize._differentialevolution import DifferentialEvolutionSolver
from scipy.optimize._optimize import _status_message

from .expressions import problem_of
from .records import Result, Step
from .rng import make_rng, rng_state, set_rng_state
from .stepper import Stepper

__all__ = ["DEStepper", "POPULATION_LIMIT"]

_MACHEPS = np.finfo(np.float64).eps
# Keep a step's population (and its energies) only up to this many numbers. Stored as binary
# deltas it costs little, but the newest step of each socket message (a live watcher gets ~20 a
# second) carries it as JSON, about 20 characters a number: 16,000 keeps that near 300 KB, well
# under daphne's 1 MiB per message, and covers 30-D with scipy's default popsize 15.
POPULATION_LIMIT = 16_000
MSG_STOP = "callback function requested stop early"  # scipy's words for a callback stop


class DEStepper(Stepper):
    method = "de"

    def __init__(self, spec, **kw):
        super().__init__(spec, **kw)
        o = spec.options
        mutation = tuple(o["mutation"]) if isinstance(o["mutation"], list) else o["mutation"]
        constraints = [c.scipy_nonlinear()
                       for c in problem_of(spec).constraints(spec.params, spec.dim)]
        self._solver = DifferentialEvolutionSolver(
            self._fun, [tuple(b) for b in spec.bounds], strategy=o["strategy"],
            maxiter=o["maxiter"], popsize=o["popsize"], tol=o["tol"], mutation=mutation,
            recombination=o["recombination"], rng=make_rng(o["seed"], o["rng"]),
            polish=o["polish"], init=o["init"], atol=o["atol"], updating=o["updating"],
            x0=None if spec.x0 is None else np.array(spec.x0, dtype=float),
            constraints=constraints)
        self._nit = 0
        self._phase = "start"  # start -> iterate -> (polished) -> end
        self._converged = False
        s = self._solver
        self._keep_population = s.num_population_members * (s.parameter_count + 1) <= POPULATION_LIMIT

    # -- stepping -------------------------------------------------------------------------
    def _advance(self):
        s = self._solver
        if self._phase == "iterate":
            # scipy's order after a generation: callback (our stop request), converged(), maxiter
            if self._stop:
                return self._finish(MSG_STOP, warning=True, stopped=True)
            if self._nit >= 1 and self._converged:
                return self._finish(_status_message["success"], warning=False)
            if self._nit >= s.maxiter:
                return self._finish(_status_message["maxiter"], warning=True)
            try:
                next(s)
            except StopIteration:  # only maxfun stops __next__; differential_evolution has none
                return self._finish(_status_message["maxfev"] if s._nfev > s.maxfun else
                                    "Maximum number of function evaluations has been reached.",
                                    warning=True)
            self._nit += 1
            return self._generation_step("iterate")
        if self._phase == "start":
            # as solve(): the freshly initialised population has all-inf energies
            if np.all(np.isinf(s.population_energies)):
                s.feasible, s.constraint_violation = (
                    s._calculate_population_feasibilities(s.population))
                s.population_energies[s.feasible] = (
                    s._calculate_population_energies(s.population[s.feasible]))
                s._promote_lowest_energy()
            self._phase = "iterate"
            return self._generation_step("init")
        return None  # "polished": the polish step was the last one

    def _generation_step(self, phase):
        s = self._solver
        e = s.population_energies  # live buffer: read numbers out, keep no reference
        if np.any(np.isinf(e)):
            conv, self._converged = math.inf, False
        else:
            # one std/mean serves both scipy's converged() test and its `convergence` figure
            std, mean = np.std(e), np.mean(e)
            conv = float(std / (np.abs(mean) + _MACHEPS))
            self._converged = bool(std <= s.atol + s.tol * np.abs(mean))
        k = e.size // 2
        part = np.partition(e, (k - 1, k)) if e.size % 2 == 0 else np.partition(e, k)
        median = float(part[k]) if e.size % 2 else float((part[k - 1] + part[k]) / 2)
        extra = {
            "convergence": conv,
            "tol_ratio": float(s.tol / (conv + _MACHEPS)),  # what scipy's callback receives
            "converged": self._converged,
            "best": float(e[0]),
            "median": median,
            "worst": float(np.max(e)),
        }
        if s._wrapped_constraints:
            # the best member's violations as scipy stored them: nothing is evaluated
            extra["violation"] = float(np.max(s.constraint_violation[0]))
            extra["feasible"] = bool(s.feasible[0])
        return Step(self._seq, self._nit, s.x, float(e[0]), s._nfev, 0, None, phase, extra,
                    bulky=self._population())

    def _population(self) -> dict:
        """The bulky part of a DE step: every member in problem coordinates and its energy."""
        if not self._keep_population:
            return {}
        s = self._solver
        return {"population": s._scale_parameters(s.population),  # a fresh array
                "population_energies": s.population_energies.copy()}  # a live buffer: copied

    def _finish(self, message, *, warning, stopped=False):
        s = self._solver
        x, fun = s.x, s.population_energies[0]
        status = 0 if not warning else (2 if stopped else 1)
        jac, njev, step = None, 0, None
        polish_note = ""
        # solve() judges feasibility before the polish (its _result) and again after it
        feasible_before = not s._wrapped_constraints or _maxcv(s, x) <= 0
        if s.polish:
            # exactly solve()'s polish: L-BFGS-B (trust-constr under constraints) within the DE
            # bounds, nfev always counted, accepted only if lower, successful and inside the bounds
            method = "L-BFGS-B"
            if s._wrapped_constraints:
                method = "trust-constr"
                if not feasible_before:
                    warnings.warn("differential evolution didn't find a solution satisfying the "
                                  "constraints, attempting to polish from the least infeasible "
                                  "solution", UserWarning, stacklevel=2)

            def _f(xx):
                return list(s._mapwrapper(s.func, np.atleast_2d(xx)))[0]
            res = minimize(_f, np.copy(x), method=method,
                           bounds=Bounds(lb=s.limits[0], ub=s.limits[1]),
                           constraints=s.constraints)
            s._nfev += res.get("nfev", 0)
            njev = int(res.get("njev", 0))
            accepted = bool(res.fun < fun and res.success and np.all(res.x <= s.limits[1])
                            and np.all(s.limits[0] <= res.x))
            if accepted:
                polish_note = (f" Polishing with {method} improved f from {_g(fun)}"
                               f" to {_g(res.fun)}.")
                # trust-constr's `jac` is the constraints' Jacobians (scipy's DE result keeps
                # that); the objective's gradient, a step's jac, is its `grad`
                fun, x = res.fun, res.x
                jac = res.get("grad") if method == "trust-constr" else res.get("jac", None)
                s.population_energies[0] = res.fun
                s.population[0] = s._unscale_parameters(res.x)
            else:
                polish_note = (f" Polishing with {method} did not improve the result"
                               f" ({res.message}).")
            extra = {"accepted": accepted, "nfev": int(res.nfev), "njev": njev,
                     "nit": int(res.get("nit", 0)), "success": bool(res.success),
                     "message": str(res.message), "fun": float(res.fun),
                     "x": np.array(res.x, dtype=float)}
            if s._wrapped_constraints:
                v = _maxcv(s, x)
                extra.update(violation=v, feasible=v <= 0)
            step = Step(self._seq, self._nit, np.array(x, dtype=float), float(fun), s._nfev,
                        njev, None if jac is None else np.array(jac, dtype=float), "polish", extra,
                        # the population as the polish leaves it (member 0 replaced if accepted)
                        bulky=self._population())
        success = not warning and feasible_before
        reason = self._reason(message, stopped) + polish_note + _nonfinite_note(fun, s)
        if s._wrapped_constraints:
            maxcv = _maxcv(s, x)
            if maxcv > 0:  # scipy's words and verdict for an infeasible answer
                success = False
                message = f"The solution does not satisfy the constraints, MAXCV = {maxcv}"
                reason += (f" The answer violates the constraints (largest violation"
                           f" {_g(maxcv)}): no feasible point was found.")
        self.result = Result(x=np.array(x, dtype=float), fun=fun, nit=self._nit, nfev=s._nfev,
                             njev=njev, success=success, status=status, message=message,
                             jac=jac, reason=reason, stopped=stopped)
        self._phase = "polished"
        return step

    def _reason(self, message, stopped):
        n = self._nit
        gens = f"{n} generation{'s' if n != 1 else ''}"
        if stopped:
            return f"Stopped on request after {gens}."
        if message == _status_message["success"]:
            return (f"Converged after {gens}: the spread of the population's objective values "
                    "fell within tol and atol.")
        if message == _status_message["maxiter"]:
            return (f"Reached maxiter ({self._solver.maxiter} generations) before the population "
                    "converged.")
        return message

    # -- checkpoint -------------------------------------------------------------------------
    def _save(self, arrays, state):
        s = self._solver
        arrays.update(
            population=s.population.copy(),
            population_energies=s.population_energies.copy(),
            feasible=s.feasible.copy(),
            constraint_violation=s.constraint_violation.copy(),
            # shuffled in place by every _select_samples: part of the random state
            random_population_index=s._random_population_index.copy(),
        )
        state["de"] = {"nit": self._nit, "phase": self._phase, "converged": self._converged,
                       "nfev": int(s._nfev), "rng": rng_state(s.random_number_generator)}

    def _load(self, arrays, state):
        s, st = self._solver, state["de"]
        s.population = np.array(arrays["population"], dtype=float)
        s.population_energies = np.array(arrays["population_energies"], dtype=float)
        s.feasible = np.array(arrays["feasible"], dtype=bool)
        s.constraint_violation = np.array(arrays["constraint_violation"], dtype=float)
        s._random_population_index = np.array(arrays["random_population_index"])
        s._nfev = int(st["nfev"])
        set_rng_state(s.random_number_generator, st["rng"])
        self._nit = int(st["nit"])
        self._phase = st["phase"]
        self._converged = bool(st["converged"])


def _maxcv(s, x) -> float:
    """scipy's `maxcv` of x: the largest violation over every constraint component."""
    return float(np.max(np.concatenate([c.violation(x) for c in s._wrapped_constraints])))


def _g(v) -> str:
    return f"{float(v):.6g}"


def _nonfinite_note(fun, s) -> str:
    if not math.isfinite(float(fun)):
        return (f" The best objective value is {float(fun)}: the objective returned non-finite"
                " values (nan/inf), which differential evolution cannot rank; treat the"
                " result as unreliable.")
    e = s.population_energies
    if not np.isfinite(e).all():
        k = int(np.count_nonzero(~np.isfinite(e)))
        return (f" {k} population member{'s' if k > 1 else ''} ended with a non-finite"
                " objective value (nan/inf); such trials are never accepted.")
    return ""
