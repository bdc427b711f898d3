"""A large study under a real daphne: its runs on the pool against bare scipy, and its summary.

    .venv/bin/python bench/bench_study.py [--repeats 100] [--generations 2000] [--workers N]
        [--page]

One daphne with its pool (OPTSITE_WORKERS, default one process per CPU) on a throwaway SQLite
database. The study: 10-D Rosenbrock, two DE configurations (best1bin and rand1bin, popsize 1,
--generations generations, tol 0, no polish) × --repeats seeds: 200 runs × 2,000 steps by default
(none ends early), launched with POST /api/studies/.

Printed:
- the study's wall time from the POST to its last run's end, against bare scipy running the same
  200 calls one after another in this process divided by the pool's size (the ideal parallel time);
- GET /api/studies/<id>/summary/ while the runs come in and after (p50 / p99 / max, bytes), and with
  `?since=` the current version (nothing to compute);
- the same aggregates computed the way the summary does not: reading every stored step (400,000
  rows) into numpy and taking the best-so-far on the grid — what a summary would cost without the traces;
- with --page: Chromium loads /studies/<id>/ and the time from navigation until its plots are
  drawn: the last of its bands, ECDF and budgets plots to be drawn (each plot's `data-drawn-at`,
  the page's performance.now()), 3 loads. Goal: <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from livesite import Site, bare_scipy, load_note, machine_line, percentile  # noqa: E402


def study_spec(repeats: int, generations: int) -> dict:
    # 10-D Rosenbrock with 10 members: neither strategy's population collapses before the last
    # generation (on Rastrigin it does, and the runs end early), so every run has every step
    options = {"maxiter": generations, "popsize": 1, "tol": 0, "polish": False}
    return {"problem": "rosenbrock", "dim": 10, "bounds": [[-5, 5]] * 10, "repeats": repeats, "label": "bench",
            "configs": [{"method": "de", "options": {**options, "strategy": "best1bin"}},
                        {"method": "de", "options": {**options, "strategy": "rand1bin"}, "label": "DE rand1bin"}]}


def post(site: Site, path: str, body: dict) -> dict:
    token = next(part.split("=", 1)[1] for part in site.cookie.split("; ") if part.startswith("csrftoken="))
    request = urllib.request.Request(site.base + path, data=json.dumps(body).encode(), method="POST", headers={
        "Cookie": site.cookie, "X-CSRFToken": token, "Content-Type": "application/json",
        "Referer": site.base + "/studies/new/"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def get_json(site: Site, path: str) -> tuple[float, int, dict]:
    request = urllib.request.Request(site.base + path, headers={"Cookie": site.cookie})
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return time.perf_counter() - t0, len(body), json.loads(body)


def naive_aggregate(db: Path, study_id: int) -> float:
    """Best-so-far on the evaluations grid from every stored step: the cost the traces avoid."""
    import numpy as np

    from runs.study_trace import GRIDS

    t0 = time.perf_counter()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        rows = con.execute("SELECT s.run_id, s.nfev, s.fun FROM runs_step s JOIN runs_run r ON r.id = s.run_id "
                           "WHERE r.study_id = ? ORDER BY s.run_id, s.seq", (study_id,)).fetchall()
    import warnings

    data = np.array(rows, dtype=float)
    data[np.isnan(data[:, 2]), 2] = np.inf
    grid = np.array(GRIDS["nfev"], dtype=float)
    curves = []
    for run_id in np.unique(data[:, 0]):
        part = data[data[:, 0] == run_id]
        best = np.minimum.accumulate(part[:, 2])
        idx = np.searchsorted(part[:, 1], grid, side="right") - 1
        curves.append(np.where(idx >= 0, best[np.maximum(idx, 0)], np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # grid points no run has reached
        np.nanpercentile(np.array(curves), [25, 50, 75], axis=0)
    return time.perf_counter() - t0


def page_draw_times(site: Site, study_id: int, loads: int = 3) -> list[float]:
    """Load the study page `loads` times; seconds from navigation to its plots drawn."""
    import shutil
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="optsite-bench-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", f"--user-data-dir={profile}", "--window-size=1440,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    times = []
    try:
        driver.get(site.base + "/accounts/login/")
        for part in site.cookie.split("; "):
            name, value = part.split("=", 1)
            driver.add_cookie({"name": name, "value": value, "path": "/"})
        for _ in range(loads):
            driver.get(f"{site.base}/studies/{study_id}/")  # returns at the load event
            plots = ("#bands-plot", "#ecdf-plot", "#budgets-plot")
            WebDriverWait(driver, 60, poll_frequency=0.01).until(
                lambda d: all(d.find_elements(By.CSS_SELECTOR, f"{p}[data-drawn-at]") for p in plots))
            # navigation start -> the last of its plots first drawn (the page's performance.now())
            drawn = driver.execute_script(
                "return Math.max(...[...document.querySelectorAll('[data-drawn-at]')].map(e => Number(e.dataset.drawnAt)))")
            times.append(drawn / 1000)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--generations", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--page", action="store_true", help="also time the study page in Chromium")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    print(machine_line())
    spec = study_spec(args.repeats, args.generations)

    from runs.optim.study import validate_study

    runs = validate_study(spec).runs
    bare = sum(bare_scipy(r.spec)[0] for r in runs)

    env = {"OPTSITE_MAX_STUDY_RUNS": str(len(runs)), "OPTSITE_MAX_ACTIVE_STUDY_RUNS": str(len(runs))}
    with Site(workers=args.workers, env=env) as site:
        size = args.workers or os.cpu_count() or 1
        print(f"{len(runs)} runs x {args.generations} steps on {size} pool processes; {load_note()}")
        t0 = time.perf_counter()
        study = post(site, "/api/studies/", spec)["study"]
        sid = study["id"]
        live: list[tuple[float, int]] = []
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                took, size_b, _ = get_json(site, f"/api/studies/{sid}/summary/")
                live.append((took, size_b))
                stop.wait(1.0)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        while True:
            _, _, detail = get_json(site, f"/api/studies/{sid}/")
            if detail["status"] == "ended":
                break
            if time.perf_counter() - t0 > args.timeout:
                raise TimeoutError("the study did not end in time")
            time.sleep(0.5)
        wall = time.perf_counter() - t0
        stop.set()
        poller.join()
        finished = detail["counts"]["finished"]
        after = [get_json(site, f"/api/studies/{sid}/summary/") for _ in range(10)]
        version = after[-1][2]["version"]
        cached = [get_json(site, f"/api/studies/{sid}/summary/?since={version}")[0] for _ in range(10)]
        naive = min(naive_aggregate(site.db, sid) for _ in range(3))
        ideal = bare / size
        steps = sum(r["nit"] for r in detail.get("run_list", [])) if "run_list" in detail else None
        print(f"study wall {wall:.1f} s, {finished}/{len(runs)} finished{f', {steps:,} generations' if steps else ''}; bare scipy {bare:.1f} s in one process, "
              f"/{size} = {ideal:.1f} s; ratio {wall / ideal:.2f}")
        lt = [t for t, _ in live]
        print(f"summary while running: {len(lt)} polls, p50 {percentile(lt, 50) * 1000:.0f} ms, "
              f"p99 {percentile(lt, 99) * 1000:.0f} ms, max {max(lt) * 1000:.0f} ms, "
              f"{max(b for _, b in live) / 1024:.0f} KiB")
        at = [t for t, _, _ in after]
        print(f"summary after: p50 {percentile(at, 50) * 1000:.0f} ms, max {max(at) * 1000:.0f} ms, "
              f"{after[-1][1] / 1024:.0f} KiB; unchanged (?since=): p50 {percentile(cached, 50) * 1000:.1f} ms")
        print(f"the same from every stored step (no traces): {naive * 1000:.0f} ms, "
              f"{naive / percentile(at, 50):.1f} x the summary")
        if args.page:
            times = page_draw_times(site, sid)
            print(f"study page load to drawn: {', '.join(f'{t * 1000:.0f}' for t in times)} ms "
                  f"(median {sorted(times)[len(times) // 2] * 1000:.0f} ms; goal <= 1000 ms)")


if __name__ == "__main__":
    main()
