"""What resuming a MinimizeStepper costs: the re-run that fast-forwards to the checkpoint.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_resume_minimize.py [--dim N] [--repeats R]

For each method, on rosenbrock (dim 5 by default, analytic gradient/Hessian where the method
takes them): `scipy` is a plain minimize() call without callback; `run` is the stepper driven to
the end (every step taken); `resume` is a stepper restored from the checkpoint taken after the
last step, driven to its result: a fast-forward through every callback but the last, i.e. the
worst case. Figures are the best of R samples (wall clock: scipy runs in the stepper's thread).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
import warnings

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from runs.optim import decode_checkpoint, encode_checkpoint, get_problem  # noqa: E402
from runs.optim.hessians import hessian  # noqa: E402
from runs.optim.minimize import (METHOD_NAMES, USES_HESS, USES_JAC, MinimizeStepper,  # noqa: E402
                                 scipy_arguments)
from runs.optim.spec import Spec  # noqa: E402

BUDGET = {"tnc": {"maxfun": 2000}, "cobyla": {"maxiter": 2000}, "cobyqa": {"maxfev": 2000}}


def spec_for(m, dim):
    o = dict(BUDGET.get(m, {"maxiter": 2000}))
    if m in USES_JAC:
        o["jac"] = "analytic"
    if m in USES_HESS:
        o["hess"] = "analytic"
    p = get_problem("rosenbrock")
    return Spec(method=m, problem="rosenbrock", params=p.defaults(), dim=dim, bounds=None,
                x0=tuple(-1.2 if i % 2 == 0 else 1.0 for i in range(dim)), options=o)


def best(fn, repeats):
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.thread_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.thread_time() - c0)
    return min(walls), min(cpus), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    print(f"rosenbrock dim {a.dim}; best of {a.repeats}; wall-clock ms")
    print(f"{'method':14s} {'steps':>6s} {'scipy':>9s} {'run':>9s} {'resume':>9s} "
          f"{'resume/run':>10s} {'resume/scipy':>12s}")
    for m in METHOD_NAMES:
        spec = spec_for(m, a.dim)
        p = get_problem("rosenbrock")

        def plain():
            f, x0, kw = scipy_arguments(spec, p.objective(spec.params), p.gradient(spec.params))
            return minimize(f, x0, **kw)

        def whole():
            s = MinimizeStepper(spec)
            n = sum(1 for _ in s)
            return n, s

        t_sc, _, _ = best(plain, a.repeats)
        t_run, _, (n, _) = best(whole, a.repeats)
        # the checkpoint after the last step handed out
        s = MinimizeStepper(spec)
        steps = list(_steps_until(s, n - 1))
        cp = encode_checkpoint(s.checkpoint())
        s.close()

        def resume():
            r = MinimizeStepper(spec)
            r._restore(decode_checkpoint(cp))
            rest = list(r)
            assert rest == [] and r.result is not None
            return r

        t_res, _, _ = best(resume, a.repeats)
        print(f"{m:14s} {n:6d} {t_sc * 1e3:9.1f} {t_run * 1e3:9.1f} {t_res * 1e3:9.1f} "
              f"{t_res / t_run:10.2f} {t_res / t_sc:12.2f}")
        del steps


def _steps_until(s, last_seq):
    for step in s:
        yield step
        if step.seq == last_seq:
            return


if __name__ == "__main__":
    main()
