"""Which compared runs a summary column may rank ("★ best"), and the words for why not.

A best value means something only between runs that measure the same thing:
- final f, f − f*, distance to x*: the same landscape (problem, coefficients, dimension);
- iterations: also the same method (a DE generation is not an L-BFGS-B iteration);
- evaluations: also the same use of gradients (an analytic gradient is not counted in nfev);
- gradient evaluations: runs that use gradients in the same way (DE only in its final polish,
  by finite differences; L-BFGS-B at every iteration, analytic or by differences);
- the costs (iterations, evaluations, gradient evaluations, wall time) only of runs that
  converged: a run stopped early or cut by a limit is not cheaper, it is unfinished.

`static_notes` holds what cannot change while the page is open (the specs); compare.js applies
the same rules as live runs end (`COST_COLUMNS`, outcomes), so the stars move with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from runs.models import Run
from runs.outcomes import run_outcome

VALUE_COLUMNS = ("fun", "gap", "dist")
COST_COLUMNS = ("nit", "nfev", "njev", "elapsed")
RANKED = VALUE_COLUMNS + COST_COLUMNS


def _method_title(name: str) -> str:
    from runs.templatetags.history_tags import method_title

    return method_title(name)


def landscape(run: Run) -> tuple:
    """(problem, coefficients with their defaults, dimension, a user problem's expression): what a
    value of f depends on."""
    spec = run.spec or {}
    params = dict(spec.get("params") or {})
    dim = spec.get("dim")
    try:
        from runs.optim import get_problem

        problem = get_problem(run.problem)
        params = problem.defaults() | params
        dim = dim or problem.default_dim
    except Exception:  # a problem no longer in the catalogue: compare its spec as stored
        pass
    # 1 and 1.0 are one coefficient
    params = {k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for k, v in params.items()}
    # a user's own problem is the function its run's definition says (the name may be reused)
    definition = spec.get("definition")
    expression = definition.get("expression") if isinstance(definition, dict) else None
    if run.problem == "external":  # the server has no f: one title, one function, as its owner named it
        external = spec.get("external")
        expression = "external: " + str(external.get("title") if isinstance(external, dict) else None)
    return run.problem, json.dumps(params, sort_keys=True), dim, expression


def gradient_use(run: Run) -> str:
    """How the run uses gradients, in words ("none" when it uses none)."""
    options = (run.spec or {}).get("options") or {}
    if run.method == "de":
        return "finite differences in the final polish only" if options.get("polish", True) else "none"
    if run.method == "lbfgsb":
        jac = options.get("jac", "analytic")
        if jac == "analytic":
            return "analytic"
        return "forward differences, absolute step eps" if jac is None else f"{jac} finite differences"
    if "jac" not in options:
        return "none"  # Nelder–Mead, Powell, COBYLA, COBYQA
    jac = options["jac"]
    if jac == "analytic":
        return "analytic"
    return "forward differences, absolute step eps" if jac is None else f"{jac} finite differences"


def _counts_gradients_in_nfev(use: str) -> bool:
    # Finite-difference gradients cost function evaluations (counted in nfev); analytic ones do not.
    return use != "analytic"


def _ids(runs) -> str:
    return ", ".join(f"#{r.pk}" for r in runs)


def static_notes(runs: list[Run]) -> dict[str, str]:
    """{column: why it is not ranked} for what the specs alone decide."""
    notes: dict[str, str] = {}
    if len({landscape(r) for r in runs}) > 1:
        why = "not ranked: the runs do not share one problem, coefficients and dimension"
        return {k: why for k in RANKED}
    methods = {r.method for r in runs}
    if len(methods) > 1:
        titles = " and ".join(sorted(_method_title(m) for m in methods))
        notes["nit"] = f"not ranked: iterations of {titles} are different units"
    uses = {r.pk: gradient_use(r) for r in runs}
    if len({_counts_gradients_in_nfev(u) for u in uses.values()}) > 1:
        analytic = [r for r in runs if not _counts_gradients_in_nfev(uses[r.pk])]
        notes["nfev"] = (f"not ranked: {_ids(analytic)} also evaluated analytic gradients, which "
                         "evaluations do not count")
    if len(set(uses.values())) > 1:
        notes["njev"] = "not ranked: the runs use gradients differently (" + "; ".join(
            f"#{r.pk}: {uses[r.pk]}" for r in runs) + ")"
    elif set(uses.values()) == {"none"}:
        notes["njev"] = "not ranked: no run evaluates gradients"
    return notes


@dataclass
class Ranking:
    best: dict[str, set[int]] = field(default_factory=dict)  # column -> run ids with its best value
    column_notes: dict[str, str] = field(default_factory=dict)  # column -> why nothing is starred
    cell_notes: dict[tuple[str, int], str] = field(default_factory=dict)  # why a run was left out


def rank(runs: list[Run], summaries: list[dict]) -> Ranking:
    """Best values per column among the runs that the column can compare (ties all count)."""
    out = Ranking(column_notes=static_notes(runs))
    outcome = {r.pk: run_outcome(r) for r in runs}
    for key in RANKED:
        if key in out.column_notes:
            continue
        values = []
        for s in summaries:
            if s[key] is None:
                continue
            if key in COST_COLUMNS and outcome[s["id"]] != "converged":
                out.cell_notes[(key, s["id"])] = (
                    "left out: this run did not converge, so its cost is not comparable"
                    if outcome[s["id"]] is not None else "left out: this run has not ended")
                continue
            values.append((s[key], s["id"]))
        if len(values) < 2:
            out.column_notes[key] = ("not ranked: fewer than two of these runs converged" if key in COST_COLUMNS
                                     else "not ranked: fewer than two runs have a value")
            continue
        low = min(v for v, _ in values)
        out.best[key] = {i for v, i in values if v == low}
    return out
