"""What resuming a global stepper costs: the re-run that fast-forwards to the checkpoint.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_resume_global.py [--dim N] [--repeats R]

For each method, on rastrigin (dim 3 by default): `scipy` is scipy's own call without callback;
`run` is the stepper driven to the end (every step taken); `resume` is a stepper restored from
the checkpoint taken after the middle step and after the last one, driven to its result (the
last: a fast-forward through every step, the worst case). Best of R samples, wall-clock ms
(scipy runs in the stepper's thread).
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

from runs.optim import decode_checkpoint, encode_checkpoint, get_problem  # noqa: E402
from runs.optim.global_methods import GLOBAL_STEPPERS, scipy_call  # noqa: E402
from runs.optim.spec import Spec  # noqa: E402

OPTIONS = {"dual_annealing": {"maxiter": 200, "seed": 1}, "shgo": {"n": 64, "iters": 3},
           "direct": {"maxiter": 200, "maxfun": 20000}, "basinhopping": {"niter": 60, "seed": 1}}


def spec_for(m, dim):
    # the box is off-centre: DIRECT samples the centre first, rastrigin's minimum
    p = get_problem("rastrigin")
    glob = m != "basinhopping"
    return Spec(method=m, problem="rastrigin", params=p.defaults(), dim=dim,
                bounds=tuple((-4.0, 5.12) for _ in range(dim)) if glob else None,
                x0=None if glob else tuple(2.5 + 0.1 * i for i in range(dim)),
                options=OPTIONS[m])


def best(fn, repeats):
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    return min(walls) * 1e3, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    print(f"rastrigin dim {a.dim}; best of {a.repeats}; wall-clock ms")
    print(f"{'method':15s} {'steps':>6s} {'nfev':>6s} {'scipy':>9s} {'run':>9s} {'resume½':>9s} "
          f"{'resume':>9s} {'resume/run':>10s} {'resume/scipy':>12s}")
    for m, cls in GLOBAL_STEPPERS.items():
        spec = spec_for(m, a.dim)
        p = get_problem("rastrigin")

        def plain():
            fn, args, kw = scipy_call(spec, p.objective(spec.params), p.gradient(spec.params))
            return fn(*args, **kw)

        def whole():
            s = cls(spec)
            cps = [encode_checkpoint(s.checkpoint()) for _ in s]
            return cps, s

        t_sc, _ = best(plain, a.repeats)
        t_run, (cps, s) = best(whole, a.repeats)

        def resume(cp):
            def go():
                r = cls(spec)
                r._restore(decode_checkpoint(cp))
                for _ in r:
                    pass
                assert r.result.to_dict() == s.result.to_dict()
            return go
        t_mid, _ = best(resume(cps[len(cps) // 2]), a.repeats)
        t_res, _ = best(resume(cps[-1]), a.repeats)
        print(f"{m:15s} {len(cps):6d} {s.result.nfev:6d} {t_sc:9.1f} {t_run:9.1f} {t_mid:9.1f} "
              f"{t_res:9.1f} {t_res / t_run:10.2f} {t_res / t_sc:12.2f}")


if __name__ == "__main__":
    main()
