"""Rastrigin written as an expression vs the catalogue's hand-written Rastrigin (goal: ratio <= 1.3).

Run: .venv/bin/python bench/bench_expressions.py [--repeats N] [--quick]

The expression is `A*n + sum(x[i]**2 - A*cos(2*pi*x[i]) for i in range(n))`, compiled by
runs/optim/expressions.py (sympy -> numpy, expanded for the run's dimension). Each case times, for
both problems, the stepper as the app drives it (every step turned into its PROTOCOL dict) and
bare scipy on the same functions, and prints expression / catalogue. DE runs a fixed number of
generations (tol 0, no polish) so both sides make the same evaluations; L-BFGS-B's iterates differ
in the last bits between the two functions, so its ratio is per function evaluation. The compile
itself (once per definition and dimension, cached) is timed apart. Best of N samples per side,
interleaved; CPU time of this thread (steadier than wall time on a shared machine), seconds
per run (DE) or microseconds per function evaluation (L-BFGS-B).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the app's processes run

import numpy as np  # noqa: E402
from scipy.optimize import differential_evolution, minimize  # noqa: E402

from runs.optim import validate_spec  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_core import stepper  # noqa: E402  (the stepper timed the same way as bench_core's)
from runs.optim.expressions import _compile, definition_of, problem_of  # noqa: E402

RASTRIGIN = {"name": "rastrigin_expr", "title": "Rastrigin (expression)",
             "expression": "A*n + sum(x[i]**2 - A*cos(2*pi*x[i]) for i in range(n))",
             "params": [{"name": "A", "default": 10}], "dim": {"min": 1, "default": 2}, "bounds": [-5.12, 5.12]}


def cases(quick: bool):
    gens = 100 if quick else 500
    out = []
    for dim in (2, 10, 30):
        out.append((f"DE {dim}-D, rand1bin, {gens} generations", {
            "method": "de", "dim": dim, "bounds": [[-5.12, 5.12]] * dim,
            "options": {"seed": 1, "maxiter": gens, "tol": 0, "strategy": "rand1bin", "polish": False}}))
    for dim in (2, 10, 30):
        x0 = [0.37 + 0.11 * k for k in range(dim)]
        out.append((f"L-BFGS-B {dim}-D, analytic gradient", {"method": "lbfgsb", "dim": dim, "x0": x0}))
    return out


def bare_scipy(spec):
    p = problem_of(spec)
    f, g, o = p.objective(spec.params), p.gradient(spec.params), spec.options
    if spec.method == "de":
        mut = tuple(o["mutation"])
        return lambda: differential_evolution(
            f, [tuple(b) for b in spec.bounds], strategy=o["strategy"], maxiter=o["maxiter"],
            popsize=o["popsize"], tol=o["tol"], atol=o["atol"], mutation=mut,
            recombination=o["recombination"], seed=o["seed"], polish=o["polish"], init=o["init"],
            updating=o["updating"])
    opts = {k: o[k] for k in ("maxcor", "ftol", "gtol", "eps", "maxfun", "maxiter", "maxls")}
    return lambda: minimize(f, np.array(spec.x0), jac=g, method="L-BFGS-B", options=opts)


def cpu(fn, loops):
    c0 = time.thread_time()
    for _ in range(loops):
        r = fn()
    return (time.thread_time() - c0) / loops, r


def best_of(fns, repeats, loops):
    best = [float("inf")] * len(fns)
    results = [None] * len(fns)
    for i in range(repeats):
        order = list(range(len(fns)))
        if i % 2:
            order.reverse()
        for k in order:
            t, results[k] = cpu(fns[k], loops)
            best[k] = min(best[k], t)
    return best, results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="100 instead of 500 DE generations")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, scipy {__import__('scipy').__version__}, "
          f"sympy {__import__('sympy').__version__}, {os.cpu_count()} cpus\n")
    t0 = time.perf_counter()
    d = definition_of(RASTRIGIN)  # the first one in a process imports sympy
    print(f"parse and check (importing sympy): {time.perf_counter() - t0:6.3f} s")
    for dim in (2, 10, 30, 200):
        t0 = time.perf_counter()
        _compile.__wrapped__(d, dim)
        print(f"compile at dim {dim:3d}: {time.perf_counter() - t0:6.3f} s (once per definition and dimension)")
    print(f"\n{'case':40s} {'stepper':>8s} {'stepper':>8s} {'ratio':>6s}   {'scipy':>8s} {'scipy':>8s} {'ratio':>6s}")
    print(f"{'':40s} {'catalog':>8s} {'expr':>8s} {'':>6s}   {'catalog':>8s} {'expr':>8s}")
    worst = 0.0
    for title, data in cases(args.quick):
        cat = validate_spec({**data, "problem": "rastrigin"})
        exp = validate_spec({**data, "problem": d.name}, problems={d.name: RASTRIGIN})
        fns = [stepper(cat), stepper(exp), bare_scipy(cat), bare_scipy(exp)]
        t0 = time.perf_counter()
        fns[0]()
        loops = max(1, int(0.05 / max(time.perf_counter() - t0, 1e-6)))
        times, results = best_of(fns, args.repeats, loops)
        if data["method"] == "lbfgsb":  # microseconds per function evaluation
            shown = [t / r.nfev * 1e6 for t, r in zip(times, results)]
            note = "  (µs per evaluation)"
        else:
            shown, note = times, ""
        rs, rb = shown[1] / shown[0], shown[3] / shown[2]
        worst = max(worst, rs)
        print(f"{title:40s} {shown[0]:8.4g} {shown[1]:8.4g} {rs:6.3f}   {shown[2]:8.4g} {shown[3]:8.4g} {rb:6.3f}{note}",
              flush=True)
    print(f"\nworst stepper ratio {worst:.3f} (goal <= 1.3)")


if __name__ == "__main__":
    main()
