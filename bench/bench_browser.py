"""The live run page in a real Chromium while runs stream: does it keep up?

    .venv/bin/python bench/bench_browser.py [--cases de2,de10,de30,lbfgsb200] [--seconds 10]
        [--controls 6] [--reload-steps 100000] [--workers N]

Starts daphne with its worker pool (bench/livesite.py) on a throwaway SQLite database and
Debian's Chromium (selenium, headless, as tests/browser.py), logged in as the bench user. Per case
it launches the run over /ws/runs/, opens its page /runs/<id>/ in two browser windows and prints:

  busy      the share of wall time the page's main thread spent in long tasks (> 50 ms, from the
            Long Tasks API: PerformanceObserver 'longtask'), over --seconds of streaming, in the
            first window and in the second; goal <= 20 %
  longest   the longest task in that time; goal <= 100 ms
  cpu       the CPU time of the windows' renderer processes per second of wall time (both
            windows together), and per 1,000 steps received: what the page costs, which a loaded
            machine does not inflate the way it inflates wall-clock task lengths
  steps/s   steps the page received per second, beside the steps the solver stored per second
            (read from the database): the page keeps up when the two agree
  controls  --controls pause/resume pairs clicked in the two windows in turn: click -> the run's
            status changed in the database, and click -> the new status shown in both windows
            (a MutationObserver on the status badge), p50 / p99; goals 100 ms and 250 ms. The click
            is the event's own time stamp (WebDriver's delivery of a scripted click, printed
            beside, is not part of the page)
  reload    window 1 reloaded while the run streams: navigation start -> the newest step drawn,
            and -> the downsampled series drawn

and, once, the reload of an active (paused) run of --reload-steps stored steps (written straight
into the database: no solver setting here streams 100,000 steps in a benchmark's time); goal <= 1 s.

Cases (each streams as fast as its solver goes, and is stopped after the measurements):
  de2        DE 2-D Rosenbrock, rand1bin, tol 0, mutation (0.01, 0.05): never converges
             (with scipy's default mutation every 2-D DE run converges within ~300 generations)
  de10       DE 10-D Rastrigin, rand1bin, tol 0, popsize 15 (150 members)
  de30       DE 30-D Rastrigin, rand1bin, tol 0, popsize 15 (450 members)
  lbfgsb200  L-BFGS-B 200-D Rosenbrock b = 1e6, gtol 0, ftol 0, maxcor 3: 100,000 iterations of ~0.7 ms at most
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from livesite import ROOT, Site, cpu_seconds, load_note, machine_line, percentile, pick_cases, start_run  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

# Before any page script: collect long tasks and every change of the status badge (epoch ms).
OBSERVE = """
window.__longtasks = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longtasks.push([e.startTime, e.duration]);
  }).observe({ type: "longtask", buffered: true });
} catch (e) { window.__longtasks = null; }
window.__status = [];
// When each click happened, by the event's own clock (epoch ms): what the user did, without the
// WebDriver round trip that delivers a scripted click.
window.__clicks = [];
document.addEventListener("click", (e) => window.__clicks.push([performance.timeOrigin + e.timeStamp, e.target.id || ""]), true);
document.addEventListener("DOMContentLoaded", () => {
  const badge = document.getElementById("run-status");
  if (!badge) return;
  new MutationObserver(() => window.__status.push([performance.timeOrigin + performance.now(), badge.textContent]))
    .observe(badge, { childList: true, characterData: true, subtree: true });
});
"""

LONGTASKS = """
const [t0, t1] = arguments;
const lt = window.__longtasks || [];
let busy = 0, longest = 0;
for (const [start, d] of lt) {
  const a = Math.max(start, t0), b = Math.min(start + d, t1);
  if (b > a) { busy += b - a; longest = Math.max(longest, d); }
}
return [busy, longest, lt.length];
"""


# Every case outlasts its measurements; L-BFGS-B's fast iterations need more than the site's default cap.
DE_MAXITER, LBFGSB_MAXITER = 20_000, 100_000


def case_specs() -> dict[str, dict]:
    def de(dim, problem, bounds, **options):
        return {"method": "de", "problem": problem, "dim": dim, "bounds": [bounds] * dim,
                "options": {"maxiter": DE_MAXITER, "tol": 0, "polish": False, "seed": 1, "popsize": 15,
                            "strategy": "rand1bin", **options}}

    return {
        "de2": de(2, "rosenbrock", [-5, 10], mutation=[0.01, 0.05]),
        "de10": de(10, "rastrigin", [-5.12, 5.12]),
        "de30": de(30, "rastrigin", [-5.12, 5.12]),
        "lbfgsb200": {"method": "lbfgsb", "problem": "rosenbrock", "dim": 200, "params": {"a": 1.0, "b": 1e6},
                      "x0": [-1.2, 1.0] * 100,
                      "options": {"maxiter": LBFGSB_MAXITER, "maxfun": 10_000_000, "gtol": 0, "ftol": 0, "maxcor": 3}},
    }


def browser(profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1440,1000",
                 # both windows count as visible: a hidden one would not draw at all
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVE})
    return driver


class Bench:
    def __init__(self, site: Site, args):
        self.site, self.args = site, args
        self.profile = tempfile.mkdtemp(prefix="optsite-bench-chromium-")
        self.driver = browser(self.profile)
        d = self.driver
        d.get(site.base + "/accounts/login/")
        for part in site.cookie.split("; "):
            name, value = part.split("=", 1)
            d.add_cookie({"name": name, "value": value, "path": "/"})
        self.windows = [d.current_window_handle]
        d.switch_to.new_window("window")
        d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVE})  # per window
        self.windows.append(d.current_window_handle)

    def close(self):
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- the database, read-only --
    def db(self):
        return sqlite3.connect(f"file:{self.site.db}?mode=ro", uri=True, timeout=20)

    def status(self, run_id: int) -> str:
        with self.db() as con:
            return con.execute("SELECT status FROM runs_run WHERE id = ?", (run_id,)).fetchone()[0]

    def stored(self, run_id: int) -> int:
        with self.db() as con:
            return con.execute("SELECT n_steps FROM runs_run WHERE id = ?", (run_id,)).fetchone()[0]

    # -- the page --
    def js(self, window: int, script: str, *args):
        self.driver.switch_to.window(self.windows[window])
        return self.driver.execute_script(script, *args)

    def renderers(self) -> list[int]:
        """Chromium's renderer processes (the pages' main threads live there)."""
        root = self.driver.service.process.pid
        children: dict[int, list[int]] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                children.setdefault(ppid, []).append(int(name))
        out, todo = [], [root]
        while todo:
            pid = todo.pop()
            for child in children.get(pid, []):
                todo.append(child)
                try:
                    if b"--type=renderer" in Path(f"/proc/{child}/cmdline").read_bytes():
                        out.append(child)
                except OSError:
                    pass
        return out

    def renderer_cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.renderers())

    def dataset(self, window: int, key: str):
        return self.js(window, f"const v = document.getElementById('run-view'); return v ? v.dataset.{key} ?? null : null")

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise TimeoutError(f"no {what} within {timeout} s")

    def open(self, window: int, run_id: int):
        self.driver.switch_to.window(self.windows[window])
        self.driver.get(f"{self.site.base}/runs/{run_id}/")

    # -- one case --
    def case(self, name: str, spec: dict) -> dict:
        stream = self.site.stream()
        try:
            _, run = start_run(stream, spec)
        finally:
            stream.close()
        run_id = run["id"]
        for w in (0, 1):
            self.open(w, run_id)
        for w in (0, 1):
            self.wait(lambda: int(self.dataset(w, "received") or 0) > 0 and self.dataset(w, "series") == "drawn",
                      60, f"steps and the series in window {w + 1}")
        time.sleep(1.0)  # past the first draws: the page's load is measured by reload()
        out = {"case": name, "run": run_id}
        out.update(self.streaming(run_id))
        out.update(self.controls(run_id))
        out.update(self.reload(run_id))
        if self.status(run_id) in ("running", "queued", "paused"):
            self.js(0, "document.getElementById('btn-stop').click()")
        self.wait(lambda: self.status(run_id) in ("stopped", "finished"), 120, "the run to stop")
        return out

    def streaming(self, run_id: int) -> dict:
        seconds = self.args.seconds
        t0 = [self.js(w, "return performance.now()") for w in (0, 1)]
        r0 = [int(self.dataset(w, "received") or 0) for w in (0, 1)]
        s0, c0, cpu0 = self.stored(run_id), time.perf_counter(), self.renderer_cpu()
        time.sleep(seconds)
        cpu1 = self.renderer_cpu()
        t1 = [self.js(w, "return performance.now()") for w in (0, 1)]
        r1 = [int(self.dataset(w, "received") or 0) for w in (0, 1)]
        s1, c1 = self.stored(run_id), time.perf_counter()
        busy, longest = [], []
        for w in (0, 1):
            b, m, _ = self.js(w, LONGTASKS, t0[w], t1[w])
            busy.append(b / (t1[w] - t0[w]))
            longest.append(m)
        if self.status(run_id) != "running":
            print(f"  (run {run_id} was {self.status(run_id)} before the end of the window)")
        received = (r1[0] - r0[0]) + (r1[1] - r0[1])
        return {"busy": busy, "longest": longest, "cpu": (cpu1 - cpu0) / (c1 - c0),
                "cpu_per_1000": (cpu1 - cpu0) / max(1, received) * 1000,
                "received": [(r1[w] - r0[w]) / ((t1[w] - t0[w]) / 1000) for w in (0, 1)],
                "stored": (s1 - s0) / (c1 - c0)}

    def controls(self, run_id: int) -> dict:
        server, shown, driver_lag = [], [], []
        for i in range(self.args.controls):
            if self.status(run_id) != "running":
                print(f"  (run {run_id} is {self.status(run_id)}: {i} of {self.args.controls} control pairs done)")
                break
            for action, want in (("pause", "paused"), ("resume", None)):
                w = i % 2
                before = self.status(run_id)
                n = [self.js(k, "return window.__status.length") for k in (0, 1)]
                self.driver.switch_to.window(self.windows[w])  # the clicking window (js() switches)
                button = self.driver.find_element("css selector", f"#btn-{action}")
                self.wait(lambda: button.is_enabled(), 30, f"{action} enabled")
                k0 = self.js(w, "return window.__clicks.length")
                called = time.time()
                button.click()
                changed = self.wait_db(run_id, lambda s: s == want if want else s != before, 30)
                clicks = self.js(w, "return window.__clicks.slice(arguments[0])", k0)
                hit = [t for t, target in clicks if target == f"btn-{action}"]
                clicked = hit[0] / 1000 if hit else called
                driver_lag.append(clicked - called)
                server.append(changed - clicked)

                def seen(k):
                    marks = self.js(k, "return window.__status.slice(arguments[0])", n[k])
                    hit = [t for t, text in marks if (text == want if want else text in ("queued", "running"))]
                    return hit[0] / 1000 if hit else None
                times = [self.wait(lambda k=k: seen(k), 30, f"{action} shown in window {k + 1}") for k in (0, 1)]
                shown.append(max(times) - clicked)
                if action == "resume":
                    self.wait(lambda: self.status(run_id) == "running", 30, "running again")
                    time.sleep(0.7)  # steps flow again before the next pause
                else:
                    time.sleep(0.3)
        return {"server": server or [math.nan], "shown": shown or [math.nan], "driver": driver_lag or [math.nan]}

    def wait_db(self, run_id: int, ok, timeout: float) -> float:
        """time.time() when the run's status first satisfied ok(status), polled every 2 ms."""
        deadline = time.monotonic() + timeout
        with self.db() as con:
            while time.monotonic() < deadline:
                status = con.execute("SELECT status FROM runs_run WHERE id = ?", (run_id,)).fetchone()[0]
                if ok(status):
                    return time.time()
                time.sleep(0.002)
        raise TimeoutError("the run's status did not change")

    def reload(self, run_id: int) -> dict:
        latest, series = self.load_times(run_id)
        return {"reload_latest": latest, "reload_series": series, "reload_steps": self.stored(run_id)}

    def load_times(self, run_id: int) -> tuple[float, float]:
        """(s to the newest step drawn, s to the series drawn) after navigating window 1 to the run."""
        self.open(0, run_id)  # driver.get returns after the load event
        self.wait(lambda: self.dataset(0, "series") == "drawn"
                  and (self.dataset(0, "latestSeq") is not None or self.dataset(0, "cursor") is not None),
                  60, "the reloaded page's state")
        marks = self.js(0, """
            const nav = performance.getEntriesByType('navigation')[0];
            const drawn = (performance.getEntriesByName('optsite:latest')[0] || {}).startTime;
            const series = (performance.getEntriesByName('optsite:series')[0] || {}).startTime;
            return [drawn, series];""")
        return marks[0] / 1000, marks[1] / 1000

    def big_run(self, n: int) -> dict:
        """An active (paused) run of n stored steps, written with the ORM in a child process."""
        code = BIG_RUN.replace("__N__", str(n))
        out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=self.site.env,
                             capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"could not write the {n}-step run: {out.stderr[-2000:]}")
        run_id = int(out.stdout.strip().splitlines()[-1])
        times = [self.load_times(run_id) for _ in range(3)]
        return {"run": run_id, "steps": n, "latest": [t[0] for t in times], "series": [t[1] for t in times]}


BIG_RUN = """
import json, math
from django.contrib.auth import get_user_model
from runs.models import Run, Step
from runs.optim import validate_spec
n = __N__
spec = validate_spec({"method": "lbfgsb", "problem": "rosenbrock", "dim": 2, "x0": [-1.2, 1.0],
                      "options": {"maxiter": 20000}}).to_dict()  # within the default limits; n is the stored count
run = Run.objects.create(owner=get_user_model().objects.get(username="bench"), method="lbfgsb",
                         problem="rosenbrock", spec=spec, status="paused", n_steps=n)
rows = []
for seq in range(n):
    t = seq / n
    x = [-1.2 + 2.2 * t, 1.0 + 0.3 * math.sin(40 * t)]
    fun = 24.2 * (1 - t) ** 3 + 1e-12
    data = {"seq": seq, "nit": seq, "x": x, "fun": fun, "nfev": seq + 1, "njev": seq + 1, "jac": [0.1, -0.1],
            "elapsed": seq * 1e-4, "phase": "init" if seq == 0 else "iterate",
            "extra": {"pg_norm": 0.1, "step_length": 1.0, "line_search": {"x": [[x[0] + 0.05, x[1]]], "f": [fun]}}}
    rows.append(Step(run=run, seq=seq, nit=seq, phase=data["phase"], fun=fun, nfev=seq + 1, njev=seq + 1,
                     elapsed=data["elapsed"], data=json.dumps(data)))
Step.objects.bulk_create(rows, batch_size=5000)
print(run.pk)
"""


def ms(v: float) -> str:
    return f"{v * 1000:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="de2,de10,de30,lbfgsb200")
    parser.add_argument("--seconds", type=float, default=10.0, help="streaming window per case")
    parser.add_argument("--controls", type=int, default=6, help="pause/resume pairs per case")
    parser.add_argument("--reload-steps", type=int, default=100_000, help="0: skip the big reload")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    specs = case_specs()
    cases = pick_cases(parser, args.cases, specs)
    print(machine_line())
    results, big = [], None
    with Site(workers=args.workers, env={"OPTSITE_MAX_MAXITER": str(LBFGSB_MAXITER)}) as site:
        bench = Bench(site, args)
        try:
            for name in cases:
                print(f"\n{name}: {json.dumps(specs[name])}", flush=True)
                r = bench.case(name, specs[name])
                results.append(r)
                print(f"  busy {r['busy'][0]:.1%} / {r['busy'][1]:.1%} (windows 1 / 2), longest task "
                      f"{r['longest'][0]:.0f} / {r['longest'][1]:.0f} ms; steps/s received "
                      f"{r['received'][0]:.0f} / {r['received'][1]:.0f}, stored {r['stored']:.0f}; renderer cpu "
                      f"{r['cpu']:.0%} of a core for both windows, {r['cpu_per_1000'] * 1000:.0f} ms per 1,000 steps "
                      f"received", flush=True)
                print(f"  controls: click -> server p50 {ms(statistics.median(r['server']))} p99 "
                      f"{ms(percentile(r['server'], 99))} ms; click -> shown in both windows p50 "
                      f"{ms(statistics.median(r['shown']))} p99 {ms(percentile(r['shown'], 99))} ms "
                      f"({len(r['server'])} clicks; WebDriver took p50 {ms(statistics.median(r['driver']))} ms "
                      f"from its call to the click event)", flush=True)
                print(f"  reload at {r['reload_steps']:,} steps: newest step drawn {ms(r['reload_latest'])} ms, "
                      f"series {ms(r['reload_series'])} ms after navigation start", flush=True)
            if args.reload_steps:
                big = bench.big_run(args.reload_steps)
                print(f"\nreload of an active run of {big['steps']:,} stored steps (3 loads): newest step drawn "
                      f"{', '.join(ms(t) for t in big['latest'])} ms; series drawn "
                      f"{', '.join(ms(t) for t in big['series'])} ms after navigation start", flush=True)
        finally:
            bench.close()

    print(f"\n{'case':10s} {'busy 1':>7s} {'busy 2':>7s} {'longest':>8s} {'recv/s':>7s} {'stored/s':>8s} "
          f"{'cpu':>5s} {'ctl srv p50/p99':>16s} {'ctl shown p50/p99':>18s} {'reload':>7s}")
    for r in results:
        print(f"{r['case']:10s} {r['busy'][0]:7.1%} {r['busy'][1]:7.1%} {max(r['longest']):6.0f}ms "
              f"{r['received'][0]:7.0f} {r['stored']:8.0f} {r['cpu']:5.0%} "
              f"{ms(statistics.median(r['server'])):>7s}/{ms(percentile(r['server'], 99)):>4s} ms "
              f"{ms(statistics.median(r['shown'])):>8s}/{ms(percentile(r['shown'], 99)):>4s} ms "
              f"{ms(r['reload_latest']):>5s}ms")
    if big:
        print(f"reload, {big['steps']:,}-step active run: newest step {ms(min(big['latest']))}–{ms(max(big['latest']))} ms, "
              f"series {ms(min(big['series']))}–{ms(max(big['series']))} ms")
    print("(goals: busy <= 20 %, longest <= 100 ms, received/s = stored/s, control -> server <= 100 ms and "
          "-> every window <= 250 ms p99, reload <= 1 s)")
    print(f"({load_note()}; the browser, daphne and the workers share these cores)")


if __name__ == "__main__":
    main()
