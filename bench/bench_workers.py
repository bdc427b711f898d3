"""The worker pool under a real daphne: scaling, latency under load, controls, a worker killed.

    .venv/bin/python bench/bench_workers.py [--sections scaling,load,control,kill] [--repeat 1]
        [--maxiter 2000] [--many 8] [--watchers 32] [--http-samples 150] [--cycles 20] [--kills 3]
        [--workers N]

One daphne (and so its pool, OPTSITE_WORKERS, default one process per CPU) on a free loopback
port against a throwaway SQLite database, one user logged in over HTTP, every pool process warmed
up first. The run is the DE case of bench_live.py (10-D Rastrigin, rand1bin, --maxiter
generations, tol 0, no polish), launched on /ws/runs/.

scaling  one run alone; K runs started together on a K-process pool (K = its size); --many runs
         started together. Time from the first "start" sent to the last "finished" received,
         divided by the one run's. Goals: K runs <= 1.15, 8 runs on 2 processes <= 4.4.
load     --many runs started together, --watchers sockets on /ws/runs/<id>/ spread over them.
         Commit -> socket lag of every live step (the "committed" time in each "steps" message
         against its arrival), p50/p99 (goal: p99 <= 50 ms); GET /runs/ and /api/runs/ p99
         while the runs go vs idle (goal: no worse than 2 x), timed by a separate process.
control  a long run (plus --background runs keeping the other processes busy): --cycles pause /
         resume cycles, from the message sent to the "status" received. Goal: p99 <= 200 ms.
kill     a run watched on /ws/runs/<id>/; --kills times kill -9 of the pool process in its
         `worker` field (checked to be a pool process of this daphne): time to "finished"
         (interrupted), to "status" running again, and until the replacement process is ready
         (awaited before the next kill). The run must then end with scipy's result.

Every wait is bounded (--timeout); figures are wall-clock and need a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from livesite import (HttpSampler, Site, bare_scipy, cpu_seconds, finished, load_note,  # noqa: E402
                      machine_line, percentile, same_result, start_run, warm_up, worker_pid)

HTTP_PATHS = ["/runs/", "/api/runs/"]
SUMMARY: list[tuple[str, str, str]] = []  # (figure, value, goal)


POPSIZE = 15  # --popsize


def de_spec(maxiter: int) -> dict:
    return {"method": "de", "problem": "rastrigin", "dim": 10, "bounds": [[-5.12, 5.12]] * 10,
            "options": {"maxiter": maxiter, "tol": 0, "polish": False, "seed": 1, "popsize": POPSIZE,
                        "strategy": "rand1bin"}}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def spread(values: list[float]) -> str:
    return (f"p50 {ms(percentile(values, 50))}, p99 {ms(percentile(values, 99))}, max {ms(max(values))} "
            f"(n = {len(values)})")


def check_ended(site: Site, stream, run: dict, status: str = "finished") -> None:
    assert run["status"] == status, run
    assert run["n_steps"] == stream.steps, (run["n_steps"], stream.steps)
    stored, top = site.stored(run["id"])
    assert stored == stream.steps == top + 1, (stored, stream.steps, top)


def together(site: Site, spec: dict, k: int, timeout: float) -> tuple[float, list[float], set[str], float]:
    """k runs started at once, each on its own socket: (first start -> last finished, per run, workers,
    CPU seconds of the pool's processes meanwhile)."""
    streams = [site.stream() for _ in range(k)]
    cpu0 = site.workers_cpu()
    try:
        sent = [s.send({"type": "start", "spec": spec}) for s in streams]
        ends, workers = [], set()
        for s in streams:
            t, run = finished(s, timeout)
            check_ended(site, s, run)
            ends.append(t)
            workers.update(m["run"]["worker"] for _, kind, m in s.events
                           if kind == "status" and m["run"]["status"] == "running")
        return max(ends) - min(sent), [e - t0 for e, t0 in zip(ends, sent)], workers, site.workers_cpu() - cpu0
    finally:
        for s in streams:
            s.close()


# ---- sections --------------------------------------------------------------------------------
def scaling(site: Site, args) -> None:
    spec = de_spec(args.maxiter)
    k = len(site.worker_pids())
    print(f"\n== scaling: DE {args.maxiter} generations; pool of {k} processes; best of {args.repeat}")
    best = {}
    for n in (1, k, args.many):
        if n in best:
            continue
        times = []
        for _ in range(args.repeat):
            total, each, workers, cpu = together(site, spec, n, args.timeout)
            times.append(total)
            # pool CPU / wall tells a busy machine (cores taken by others) from runs waiting on each other
            print(f"  {n} run(s) together: {total:.3f} s (each from its start: "
                  f"{', '.join(f'{t:.2f}' for t in each)}; on {len(workers)} process(es), which used "
                  f"{cpu:.1f} s cpu: {cpu / total:.2f} cores)", flush=True)
        best[n] = min(times)
    one = best[1]
    for n, goal in ((k, 1.15), (args.many, 4.4 if (args.many, k) == (8, 2) else None)):
        ratio = best[n] / one
        ideal = -(-n // k)  # waves of k
        print(f"  {n} runs on {k} processes / one run: {ratio:.3f}  (ideal {ideal})")
        SUMMARY.append((f"{n} runs together on {k} processes / 1 run", f"{ratio:.3f} ({best[n]:.2f} s / {one:.2f} s)",
                        f"<= {goal}" if goal else f"ideal {ideal}"))


def load(site: Site, args) -> None:
    spec = de_spec(args.maxiter)
    many, per_run = args.many, max(1, args.watchers // args.many)
    print(f"\n== load: {many} runs, {per_run * many} watch sockets, GET {' and '.join(HTTP_PATHS)}")
    # Idle figures with the same runs listed as under load come afterwards; these are before any exist.
    idle_before = HttpSampler(site, HTTP_PATHS, samples=args.http_samples, gap=args.http_gap,
                              seconds=args.timeout).result()
    launch = [site.stream() for _ in range(many)]
    watchers = []
    try:
        c0 = time.process_time()
        sent = [s.send({"type": "start", "spec": spec}) for s in launch]
        runs = [start_run_reply(s, args.timeout) for s in launch]
        for run in runs:
            for _ in range(per_run):
                w = site.stream(f"/ws/runs/{run['id']}/")
                w.send({"type": "subscribe", "after": -1})  # replay now, not after the grace period
                watchers.append(w)
        sampler = HttpSampler(site, HTTP_PATHS, samples=10**6, gap=args.http_gap, seconds=args.timeout)
        finals = [finished(s, args.timeout) for s in launch]
        busy = sampler.result(stop=True)
        client_cpu = time.process_time() - c0
        window = max(t for t, _ in finals) - min(sent)
        for s, (_, run) in zip(launch, finals):
            check_ended(site, s, run)
        by_id = {run["id"]: run for _, run in finals}
        for w in watchers:
            run_id = int(w.path.strip("/").split("/")[-1])
            t, run = w.wait(lambda s: s.first("finished"), args.timeout, "finished")
            check_ended(site, w, by_id[run_id])
        idle_after = HttpSampler(site, HTTP_PATHS, samples=args.http_samples, gap=args.http_gap,
                                 seconds=args.timeout).result()
    finally:
        for s in launch + watchers:
            s.close()
    watch_lags = [lag for w in watchers for lag in w.step_lags()]
    launch_lags = [lag for s in launch for lag in s.step_lags()]
    received = sum(s.bytes for s in launch + watchers) / 1e6
    print(f"  {many} runs done in {window:.1f} s; {received:.0f} MB relayed to {len(launch) + len(watchers)} sockets; "
          f"bench client cpu {client_cpu:.1f} s ({100 * client_cpu / window:.0f} % of one core)")
    print(f"  commit -> socket, watch sockets:  {spread(watch_lags)}")
    print(f"  commit -> socket, launch sockets: {spread(launch_lags)}")
    SUMMARY.append((f"commit -> watch socket p50 / p99 ({many} runs, {len(watchers)} watchers)",
                    f"{ms(percentile(watch_lags, 50))} / {ms(percentile(watch_lags, 99))}", "p99 <= 50 ms"))
    for path in HTTP_PATHS:
        a, b, c = idle_before[path], busy[path], idle_after[path]
        print(f"  GET {path:11s} idle before: {spread(a)}")
        print(f"  GET {path:11s} under load:  {spread(b)}")
        print(f"  GET {path:11s} idle after:  {spread(c)}")
        ratio = percentile(b, 99) / percentile(c, 99)
        print(f"  GET {path:11s} p99 under load / idle after: {ratio:.2f}")
        SUMMARY.append((f"GET {path} p99 under load / idle", f"{ratio:.2f} ({ms(percentile(b, 99))} / "
                        f"{ms(percentile(c, 99))})", "<= 2"))


def start_run_reply(stream, timeout: float) -> dict:
    _, message = stream.wait(lambda s: s.first("started") or s.first("error"), timeout, "started")
    assert message["type"] == "started", message
    return message["run"]


def control(site: Site, args) -> None:
    spec = de_spec(20000)  # longer than the cycles take; stopped at the end
    rng = random.Random(1)
    print(f"\n== control: {args.cycles} pause/resume cycles on a running run, "
          f"{args.background} other run(s) keeping the pool busy")
    background = [site.stream() for _ in range(args.background)]
    s = site.stream()
    pause, resume_first, resume_running, orders = [], [], [], []
    try:
        for b in background:
            start_run(b, spec)
        start_run(s, spec)
        s.wait(lambda st: st.first("status", "running"), args.timeout, "running")
        for cycle in range(args.cycles):
            mark = s.mark()
            s.wait(lambda st: any(k == "steps" for _, k, _ in st.events[mark:]), args.timeout, "steps")
            time.sleep(rng.uniform(0.05, 0.25))
            mark = s.mark()
            t0 = s.send({"type": "pause"})
            t, _ = s.wait(lambda st: st.first("status", "paused", since=mark), args.timeout, "paused")
            pause.append(t - t0)
            time.sleep(rng.uniform(0.05, 0.15))
            mark = s.mark()
            t0 = s.send({"type": "resume"})
            t, _ = s.wait(lambda st: st.first("status", since=mark), args.timeout, "a status")
            resume_first.append(t - t0)
            t, _ = s.wait(lambda st: st.first("status", "running", since=mark), args.timeout, "running")
            resume_running.append(t - t0)
            # the status messages must tell the story in order: the last one says "running"
            time.sleep(0.02)
            with s.cond:
                order = [m["run"]["status"] for _, k, m in s.events[mark:] if k == "status"]
            orders.append(order)
        for b in [s, *background]:
            b.send({"type": "stop"})
        for b in [s, *background]:
            _, run = finished(b, args.timeout)
            check_ended(site, b, run, "stopped")
    finally:
        for b in [s, *background]:
            b.close()
    print(f"  pause sent -> status paused:          {spread(pause)}")
    print(f"  resume sent -> first status (queued): {spread(resume_first)}")
    print(f"  resume sent -> status running:        {spread(resume_running)}")
    odd = [o for o in orders if not o or o[-1] != "running"]
    if odd:
        print(f"  !! {len(odd)} resume(s) whose status messages ended elsewhere than 'running': {odd[:5]}")
    SUMMARY.append(("pause -> status p99", ms(percentile(pause, 99)), "<= 200 ms"))
    SUMMARY.append(("resume -> status p99 (queued / running)",
                    f"{ms(percentile(resume_first, 99))} / {ms(percentile(resume_running, 99))}", "<= 200 ms"))


def kill(site: Site, args) -> None:
    spec = de_spec(args.kill_maxiter)
    n = len(site.worker_pids())
    print(f"\n== kill: DE {args.kill_maxiter} generations; kill -9 of its pool process {args.kills} times, "
          f"{args.kill_after:.1f} s after it runs")
    launch = site.stream()
    watch = None
    to_interrupted, to_running, to_steps, refill = [], [], [], []
    try:
        _, run = start_run(launch, spec)
        watch = site.stream(f"/ws/runs/{run['id']}/")
        watch.send({"type": "subscribe", "after": -1})
        t_run, message = launch.wait(lambda st: st.first("status", "running"), args.timeout, "running")
        current = message["run"]
        mark = 0
        for i in range(args.kills):
            time.sleep(args.kill_after)
            with watch.cond:
                ended = watch.first("finished", "finished", since=mark)
            if ended:
                print(f"  the run finished before kill {i + 1}; use a larger --kill-maxiter")
                break
            pid = worker_pid(current)
            if pid is None or pid not in site.worker_pids():
                raise AssertionError(f"run's worker {current.get('worker')!r} is not a pool process of this server")
            mark = watch.mark()
            steps_before = watch.steps
            before = site.worker_pids()
            os.kill(pid, signal.SIGKILL)
            t0 = time.perf_counter()
            t1, _ = watch.wait(lambda st: st.first("finished", "interrupted", since=mark), args.timeout,
                               "finished (interrupted)")
            t2, message = watch.wait(lambda st: st.first("status", "running", since=mark), args.timeout,
                                     "status running")
            t3 = watch.wait(lambda st: next((t for t, k, _ in st.events[mark:] if k == "steps" and t > t2), None),
                            args.timeout, "steps after the resume")
            current = message["run"]
            with watch.cond:
                order = [m["run"]["status"] for t, k, m in watch.events[mark:]
                         if k in ("status", "finished") and t <= t3]
            if order[-1:] != ["running"]:
                print(f"  !! after kill {i + 1} the socket's last status before new steps is not 'running': {order}")
            to_interrupted.append(t1 - t0)
            to_running.append(t2 - t0)
            to_steps.append(t3 - t0)
            # the next kill finds a ready process to resume on, as this one did
            pids = site.wait_for_ready(n, args.timeout)
            refill.append(time.perf_counter() - t0)
            where = "its replacement" if worker_pid(current) not in before else "the other process"
            print(f"  kill {i + 1}: pid {pid} at step {steps_before}: interrupted after {ms(t1 - t0)}, running "
                  f"again after {ms(t2 - t0)} on {where} ({current['worker']}), next steps after {ms(t3 - t0)}; "
                  f"{len(pids)} processes ready again after {refill[-1]:.2f} s", flush=True)
        _, final = watch.wait(lambda st: st.first("finished", "finished", since=mark), args.timeout, "finished")
        final = final["run"]
        check_ended(site, watch, final)
    finally:
        launch.close()
        if watch is not None:
            watch.close()
    _, _, res = bare_scipy(spec)
    assert same_result(final["result"], res), "the killed-and-resumed run differs from scipy's"
    print(f"  the run ended after {len(to_running)} kill(s) with every step once on the watch socket "
          f"({watch.steps}), stored, and scipy's own result")
    if to_running:
        print(f"  kill -> finished (interrupted): {spread(to_interrupted)}")
        print(f"  kill -> status running:         {spread(to_running)}")
        print(f"  kill -> first new steps:        {spread(to_steps)}")
        print(f"  kill -> pool ready again:       {spread(refill)}")
        SUMMARY.append(("kill -9 -> interrupted / running again (max)",
                        f"{ms(max(to_interrupted))} / {ms(max(to_running))}", "interrupted <= 10 s"))
        SUMMARY.append(("kill -9 -> pool ready again (max)", f"{max(refill):.2f} s", "-"))


SECTIONS = {"scaling": scaling, "load": load, "control": control, "kill": kill}


def main() -> None:
    global POPSIZE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated: {', '.join(SECTIONS)}")
    parser.add_argument("--maxiter", type=int, default=2000, help="DE generations per run (scaling, load)")
    parser.add_argument("--popsize", type=int, default=POPSIZE,
                        help="DE popsize (steps keep the population while members x (dim + 1) <= 16,000)")
    parser.add_argument("--repeat", type=int, default=1, help="scaling: best of this many")
    parser.add_argument("--many", type=int, default=8, help="runs started together (scaling, load)")
    parser.add_argument("--watchers", type=int, default=32, help="watch sockets under load, spread over the runs")
    parser.add_argument("--http-samples", type=int, default=150, help="idle GETs per path")
    parser.add_argument("--http-gap", type=float, default=0.02, help="pause between GETs, seconds")
    parser.add_argument("--cycles", type=int, default=20, help="pause/resume cycles")
    parser.add_argument("--background", type=int, default=None,
                        help="control: runs keeping the other pool processes busy (default: pool size - 1)")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--kill-after", type=float, default=1.0, help="seconds of running before each kill")
    parser.add_argument("--kill-maxiter", type=int, default=4000, help="DE generations of the killed run")
    parser.add_argument("--workers", type=int, default=None, help="OPTSITE_WORKERS (default: the app's, one per CPU)")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on every wait, seconds")
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}")
    if not 1 <= args.kills <= 50 or not 1 <= args.cycles <= 1000 or not 1 <= args.many <= 200:
        parser.error("--kills 1..50, --cycles 1..1000, --many 1..200")

    POPSIZE = args.popsize
    print(machine_line())
    # auto-resume is capped per run: leave room for every kill
    env = {"OPTSITE_MAX_AUTO_RESUMES": str(args.kills + 5)}
    with Site(workers=args.workers, max_runs=args.many + 8, env=env) as site:
        pids = site.worker_pids()
        if args.background is None:
            args.background = len(pids) - 1
        print(f"daphne pid {site.pid}, pool processes {pids}")
        warm_up(site, [de_spec(30)])
        started = time.monotonic()
        for name in sections:
            web0 = cpu_seconds(site.pid)
            SECTIONS[name](site, args)
            print(f"  (web process cpu in this section: {cpu_seconds(site.pid) - web0:.1f} s)")
        web_cpu = cpu_seconds(site.pid)
    print(f"\n== summary ({time.monotonic() - started:.0f} s; web process cpu {web_cpu:.1f} s in all)")
    for figure, value, goal in SUMMARY:
        print(f"  {figure:55s} {value:32s} goal {goal}")
    print(f"({load_note()})")


if __name__ == "__main__":
    main()
