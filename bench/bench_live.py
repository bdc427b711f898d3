"""Live path vs bare scipy: one run launched over the WebSocket of a real daphne, until "finished".

    .venv/bin/python bench/bench_live.py [--cases de,lbfgsb,lbfgsb-fd] [--repeat 3]
        [--maxiter 2000] [--dim 10] [--popsize 15] [--strategy rand1bin] [--workers N]

Starts daphne (and so its pool of worker processes) on a free loopback port against a throwaway
SQLite database, logs a user in over HTTP, warms every pool process up with each case, then per
round times scipy's own call and the same spec launched on /ws/runs/ (from "start" sent to
"finished" received), interleaved so drift in machine load hits both alike. Each live run must
deliver every step once, in order, have every step stored, and end with scipy's result bit for bit.
Prints best-of and median ratios live/scipy, wall and CPU (the CPU of the worker processes;
the web process's own CPU is shown beside it), what the live path adds per step, and the fixed
cost of a run (start -> finished of a 2-step run). Goal: <= 1.05.

Cases:
  de         DE 10-D Rastrigin, rand1bin, tol 0, no polish: exactly --maxiter generations
             (best1bin collapses the population after ~650 and "converges")
  lbfgsb     L-BFGS-B 50-D Rosenbrock with b = 1e6, analytic gradient, x0 = (-1.2, 1, ...):
             ~3,960 iterations of ~35 us (with b = 100 it converges in 270 iterations, ~10 ms:
             too short to time against a socket round trip)
  lbfgsb-fd  the same with jac null (scipy's default: forward differences, step eps): the same ~3,970 iterations, each ~1 ms (51 evaluations)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from livesite import (Site, bare_scipy, cpu_seconds, finished, load_note, machine_line, pick_cases,  # noqa: E402
                      same_result, start_run, warm_up)

ROSENBROCK_X0 = [-1.2, 1.0] * 25


def case_specs(args) -> dict[str, dict]:
    de = {"method": "de", "problem": "rastrigin", "dim": args.dim, "bounds": [[-5.12, 5.12]] * args.dim,
          "options": {"maxiter": args.maxiter, "tol": 0, "polish": False, "seed": 1, "popsize": args.popsize,
                      "strategy": args.strategy}}
    lbfgsb = {"method": "lbfgsb", "problem": "rosenbrock", "dim": 50, "x0": ROSENBROCK_X0,
              "params": {"a": 1.0, "b": 1e6}, "options": {"maxiter": 20000, "maxfun": 100000}}
    fd = {**lbfgsb, "options": {**lbfgsb["options"], "jac": None, "maxfun": 1_000_000}}
    return {"de": de, "lbfgsb": lbfgsb, "lbfgsb-fd": fd}


def short(spec: dict) -> dict:
    """A cheap version of a spec for warming up."""
    return {**spec, "options": {**spec["options"], "maxiter": 30}}


def live_run(site: Site, spec: dict, timeout: float):
    workers0, server0 = site.workers_cpu(), cpu_seconds(site.pid)
    stream = site.stream(parse=True)
    try:
        t0, run = start_run(stream, spec)
        t1, final = finished(stream, timeout)
    finally:
        stream.close()
    workers_cpu, server_cpu = site.workers_cpu() - workers0, cpu_seconds(site.pid) - server0
    assert final["status"] == "finished", final
    assert final["n_steps"] == stream.steps, (final["n_steps"], stream.steps)
    stored, top = site.stored(run["id"])
    assert stored == stream.steps == top + 1, (stored, stream.steps, top)
    return t1 - t0, workers_cpu, server_cpu, stream.steps, final["result"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="de,lbfgsb,lbfgsb-fd", help="comma-separated: de, lbfgsb, lbfgsb-fd")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per case (scipy and live interleaved)")
    parser.add_argument("--maxiter", type=int, default=2000, help="DE generations")
    parser.add_argument("--dim", type=int, default=10, help="DE dimension")
    parser.add_argument("--strategy", default="rand1bin")
    parser.add_argument("--popsize", type=int, default=15,
                        help="scipy's popsize (steps keep the population while members x (dim + 1) <= 16,000)")
    parser.add_argument("--workers", type=int, default=None, help="OPTSITE_WORKERS (default: the app's, one per CPU)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per live run, seconds")
    args = parser.parse_args()
    specs = case_specs(args)
    cases = pick_cases(parser, args.cases, specs)

    print(machine_line())
    summary = []
    with Site(workers=args.workers) as site:
        print(f"daphne pid {site.pid}, pool processes {site.worker_pids()}")
        warm_up(site, [short(specs[c]) for c in cases])
        tiny = {**specs["de"], "dim": 2, "bounds": [[-5.12, 5.12]] * 2,
                "options": {**specs["de"]["options"], "maxiter": 1}}
        fixed = [live_run(site, tiny, args.timeout)[0] for _ in range(5)]
        for case in cases:
            spec = specs[case]
            print(f"\n{case}: {json.dumps(spec)}")
            bare, bare_cpu, live, live_cpu, web_cpu = [], [], [], [], []
            for i in range(args.repeat):
                took, cpu, res = bare_scipy(spec)
                took_live, cpu_live, cpu_web, n_steps, result = live_run(site, spec, args.timeout)
                assert same_result(result, res), f"the live run's result differs from scipy's: {result}"
                bare.append(took)
                bare_cpu.append(cpu)
                live.append(took_live)
                live_cpu.append(cpu_live)
                web_cpu.append(cpu_web)
                print(f"  round {i + 1}: scipy {took:.3f} s (cpu {cpu:.3f}); live {took_live:.3f} s "
                      f"(workers cpu {cpu_live:.3f}, web process cpu {cpu_web:.3f}); {n_steps} steps received "
                      f"once each and stored, result = scipy's (nit {res.nit})", flush=True)
            summary.append((case, n_steps, bare, bare_cpu, live, live_cpu, web_cpu))

    print(f"\n{'case':10s} {'steps':>6s} {'scipy s':>8s} {'live s':>8s} {'wall':>6s} {'median':>7s} "
          f"{'us/step':>8s}   {'scipy cpu':>9s} {'workers cpu':>11s} {'cpu':>6s} {'us/step':>8s}   {'web cpu':>7s}")
    for case, steps, bare, bare_cpu, live, live_cpu, web_cpu in summary:
        ratios = [a / b for a, b in zip(live, bare)]
        extra_wall = (min(live) - min(bare)) / steps * 1e6
        extra_cpu = (min(live_cpu) - min(bare_cpu)) / steps * 1e6
        print(f"{case:10s} {steps:6d} {min(bare):8.3f} {min(live):8.3f} {min(live) / min(bare):6.3f} "
              f"{statistics.median(ratios):7.3f} {extra_wall:8.0f}   {min(bare_cpu):9.3f} {min(live_cpu):11.3f} "
              f"{min(live_cpu) / min(bare_cpu):6.3f} {extra_cpu:8.0f}   {min(web_cpu):7.3f}")
    print(f"(best of {args.repeat} per side; 'median': of the per-round ratios; 'us/step': what the live path "
          f"adds per step; goal <= 1.05)")
    print(f"fixed cost of a run, start -> finished of a 2-step run: median {statistics.median(fixed) * 1000:.1f} ms "
          f"(min {min(fixed) * 1000:.1f}, of {len(fixed)})")
    print(f"({load_note()})")


if __name__ == "__main__":
    main()
