"""Stepper vs bare scipy: the solver core's overhead (target: ratio <= 1.05).

Run: .venv/bin/python bench/bench_core.py [--repeats N] [--quick]

Each case times scipy's own call and the stepper driven as the app drives it (every step
taken and turned into its PROTOCOL dict with to_dict()). Timings are the best of N samples,
scipy and stepper interleaved; short runs are looped inside each sample so a sample lasts
at least ~0.05 s. Both wall-clock and this thread's CPU time are shown: on a shared machine the CPU
ratio is the steadier figure (other processes steal wall time, not CPU time).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
# As the app's processes run (optsite/__init__.py): on a busy machine OpenBLAS's own threads make
# both sides several times slower and the figures meaningless.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy.optimize import differential_evolution, minimize  # noqa: E402

from runs.optim import get_problem, make_stepper, validate_spec  # noqa: E402


def case_specs(quick: bool):
    x50 = [-1.2, 1.0] * 25
    return [
        ("DE 2-D Rosenbrock (seed 1, scipy defaults)",
         {"method": "de", "problem": "rosenbrock", "bounds": [[-5, 10]] * 2,
          "options": {"seed": 1}}),
        # rand1bin with tol = atol = 0 keeps the population spread on Rastrigin for all 2000
        # generations (best1bin collapses it to equal energies, "converged", after ~650)
        ("DE 10-D Rastrigin, rand1bin, %d generations, tol 0" % (200 if quick else 2000),
         {"method": "de", "problem": "rastrigin", "dim": 10, "bounds": [[-5.12, 5.12]] * 10,
          "options": {"seed": 1, "maxiter": 200 if quick else 2000, "tol": 0,
                      "strategy": "rand1bin", "polish": False}}),
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
    """(wall seconds, CPU seconds) per call."""
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - t0) / loops, (time.thread_time() - c0) / loops


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=None,
                    help="samples per side (default: 25 for short cases, 5 for long ones)")
    ap.add_argument("--quick", action="store_true", help="200 instead of 2000 DE generations")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"scipy {__import__('scipy').__version__}, {os.cpu_count()} cpus, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print("best of N samples per side, scipy and stepper interleaved\n")
    print(f"{'case':52s} {'scipy':>9s} {'stepper':>9s} {'ratio':>6s}   {'scipy':>9s} "
          f"{'stepper':>9s} {'ratio':>6s}  steps")
    print(f"{'':52s} {'CPU s':>9s} {'CPU s':>9s} {'':>6s}   {'wall s':>9s} {'wall s':>9s}")
    for title, data in case_specs(args.quick):
        spec = validate_spec(data)
        a, b = bare_scipy(spec), stepper(spec)
        t0 = time.perf_counter()
        ra = a()
        t1 = time.perf_counter() - t0
        # short samples, many of them: on a shared machine the minimum is the clean figure
        loops = max(1, int(0.05 / max(t1, 1e-6)))
        repeats = args.repeats or (25 if t1 < 0.5 else 5)
        st = make_stepper(spec)
        steps = sum(1 for _ in st)
        rb = st.result
        assert np.array_equal(ra.x, rb.x) and ra.nfev == rb.nfev, "stepper and scipy differ"
        best = {"a": [float("inf")] * 2, "b": [float("inf")] * 2}
        for i in range(repeats):
            order = [(a, "a"), (b, "b")] if i % 2 == 0 else [(b, "b"), (a, "a")]
            for fn, which in order:
                wall, cpu = timed(fn, loops)
                best[which] = [min(best[which][0], wall), min(best[which][1], cpu)]
        (wa, ca), (wb, cb) = best["a"], best["b"]
        print(f"{title:52s} {ca:9.5f} {cb:9.5f} {cb / ca:6.3f}   {wa:9.5f} {wb:9.5f} "
              f"{wb / wa:6.3f}  {steps}", flush=True)

if __name__ == "__main__":
    main()
