"""Stepper vs bare scipy: the solver core's overhead (target: ratio <= 1.05).

Run: .venv/bin/python bench/bench_core.py [--repeats N] [--quick]

Each case times scipy's own call and the stepper driven as the app drives it (every step
taken and turned into its PROTOCOL dict with to_dict()). Timings are the best of N repeats,
scipy and stepper interleaved; short runs are looped inside each sample so a sample lasts
at least ~0.2 s.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy.optimize import differential_evolution, minimize  # noqa: E402

from runs.optim import get_problem, make_stepper, validate_spec  # noqa: E402


def case_specs(quick: bool):
    x50 = [-1.2, 1.0] * 25
    return [
        ("DE 2-D Rosenbrock (seed 1, scipy defaults)",
         {"method": "de", "problem": "rosenbrock", "bounds": [[-5, 10]] * 2,
          "options": {"seed": 1}}),
        # tol = atol = 0 never converges on Rastrigin's rough energies: all maxiter generations
        ("DE 10-D Rastrigin, maxiter %d, tol 0, polish off" % (200 if quick else 2000),
         {"method": "de", "problem": "rastrigin", "dim": 10, "bounds": [[-5.12, 5.12]] * 10,
          "options": {"seed": 1, "maxiter": 200 if quick else 2000, "tol": 0,
                      "polish": False}}),
        ("L-BFGS-B 2-D Rosenbrock, analytic gradient",
         {"method": "lbfgsb", "problem": "rosenbrock", "x0": [-1.2, 1.0]}),
        ("L-BFGS-B 50-D Rosenbrock, analytic gradient",
         {"method": "lbfgsb", "problem": "rosenbrock", "dim": 50, "x0": x50}),
    ]


def bare_scipy(spec):
    p = get_problem(spec.problem)
    f, g, o = p.objective(spec.params), p.gradient(spec.params), spec.options
    if spec.method == "de":
        mut = tuple(o["mutation"]) if isinstance(o["mutation"], list) else o["mutation"]
        bounds = [tuple(b) for b in spec.bounds]
        return lambda: differential_evolution(
            f, bounds, strategy=o["strategy"], maxiter=o["maxiter"], popsize=o["popsize"],
            tol=o["tol"], atol=o["atol"], mutation=mut, recombination=o["recombination"],
            seed=o["seed"], polish=o["polish"], init=o["init"], updating=o["updating"])
    x0 = np.array(spec.x0)
    opts = {k: o[k] for k in ("maxcor", "ftol", "gtol", "eps", "maxfun", "maxiter", "maxls")}
    return lambda: minimize(f, x0, jac=g, method="L-BFGS-B", options=opts)


def stepper(spec):
    def run():
        st = make_stepper(spec)
        for step in st:
            step.to_dict()
        return st.result
    return run


def timed(fn, loops):
    t0 = time.perf_counter()
    for _ in range(loops):
        r = fn()
    return (time.perf_counter() - t0) / loops, r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="200 instead of 2000 DE generations")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"scipy {__import__('scipy').__version__}, {os.cpu_count()} cpus, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print(f"best of {args.repeats} repeats, scipy and stepper interleaved\n")
    print(f"{'case':55s} {'scipy s':>10s} {'stepper s':>10s} {'ratio':>7s}  steps")
    for title, data in case_specs(args.quick):
        spec = validate_spec(data)
        a, b = bare_scipy(spec), stepper(spec)
        t1, ra = timed(a, 1)
        loops = max(1, int(0.2 / max(t1, 1e-6)))
        rb = b()
        assert np.array_equal(ra.x, rb.x) and ra.nfev == rb.nfev, "stepper and scipy differ"
        best_a = best_b = float("inf")
        for i in range(args.repeats):
            order = [(a, "a"), (b, "b")] if i % 2 == 0 else [(b, "b"), (a, "a")]
            for fn, which in order:
                t, _ = timed(fn, loops)
                if which == "a":
                    best_a = min(best_a, t)
                else:
                    best_b = min(best_b, t)
        print(f"{title:55s} {best_a:10.5f} {best_b:10.5f} {best_b / best_a:7.3f}  "
              f"{rb.nit + 1}", flush=True)


if __name__ == "__main__":
    main()
