"""plots.js under load, in a real Chromium: the longest main-thread task while a long run streams.

    .venv/bin/python bench/bench_plots.py [--steps 100000] [--batch 200] [--plots-rev main]

Serves runs/static from a throwaway folder with a small page that drives ConvergencePlot and
ContourPlot as the run page does (no Django: only the plots are timed), opens it in headless
Chromium and runs three scenarios, each watched by the Long Tasks API (every task over 50 ms):

  live     --steps steps arrive --batch per animation frame; each frame the page calls
           cp.extend() with the new points and ct.setPath() with the WHOLE path so far, plus
           setMarker() and setPopulation() (150 members): the calls a live DE page makes.
  load     cp.setData() and ct.setPath() with all --steps points at once (a reloaded page).
  replay   the marker and the path's end move every frame for 300 frames (a replay playing).
  slices   30 new grids (a slice following the best point of a 10-D run), 12 frames apart, with a
           new 150-member population every frame: the map's own redraws ("map redraw").

Prints, per scenario: frames, wall time, long tasks (count, longest, their share of the wall
time), the p95 of the page's own per-frame call time, and how many points Plotly was given.
Goal: no task over 100 ms while steps stream. `--plots-rev REV` times plots.js as it is in git
revision REV instead of the working tree (the other files are the working tree's).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "runs" / "static"

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>bench plots</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/vendor/bootstrap-5.3.8.min.css">
<link rel="stylesheet" href="/static/runs/site.css">
<style>body { width: 1400px; } .plot { width: 660px; height: 340px; display: inline-block; }</style>
</head><body>
<div id="cp" class="plot"></div><div id="ct" class="plot"></div>
<script src="/static/vendor/plotly-cartesian-4.1.1.min.js"></script>
<script type="module">
import { ConvergencePlot, ContourPlot } from "/static/runs/plots.js";
const tasks = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) tasks.push([e.startTime, e.duration]); })
  .observe({ type: "longtask", buffered: true });
// Every Plotly call plots.js makes, timed (synchronous part) per plot.
const plotlyCalls = [];
for (const name of ["react", "extendTraces", "newPlot", "relayout", "restyle"]) {
  const f = Plotly[name];
  Plotly[name] = function (gd, ...rest) {
    const t = performance.now();
    const out = f.call(this, gd, ...rest);
    plotlyCalls.push([gd.id, name, performance.now() - t, t]);
    return out;
  };
}
// The map's redraws (a Plotly contour in older plots.js, a canvas raster now), timed the same way.
const mapDraws = [];
const drawMap = ContourPlot.prototype._drawMap;
ContourPlot.prototype._drawMap = function (...args) {
  const t = performance.now();
  const out = drawMap.apply(this, args);
  mapDraws.push([performance.now() - t, t]);
  return out;
};
const frame = () => new Promise((r) => requestAnimationFrame(r));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fAt = (i, n) => 24.2 * Math.exp(-12 * i / n) * (1 + 0.05 * Math.sin(i / 7)) + 1e-12;
const xAt = (i, n) => { const t = i / n; return [1 - 2.2 * Math.exp(-6 * t) * Math.cos(i / 50), 1 - 0.5 * Math.exp(-6 * t) * Math.sin(i / 50)]; };
function grid(shift = 0) {
  const n = 70, x = [], y = [], z = [];
  for (let i = 0; i < n; i++) { x.push(-2 + 4 * i / (n - 1)); y.push(-1 + 4 * i / (n - 1)); }
  for (const b of y) z.push(x.map((a) => (1 - a) ** 2 + 100 * (b - a * a + shift) ** 2 + shift));
  return { x, y, z };
}
function p95(xs) { const s = xs.slice().sort((a, b) => a - b); return s.length ? s[Math.floor(0.95 * (s.length - 1))] : 0; }
function drawn(el) { return (el.data || []).reduce((m, t) => Math.max(m, (t.x || []).length), 0); }
let plots = null;
function fresh() {
  if (plots) { plots.cp.destroy(); plots.ct.destroy(); }
  const cp = new ConvergencePlot(document.getElementById("cp"), { fstar: 0, xTitle: "iteration" });
  cp.addSeries("run", "DE run 1");
  const ct = new ContourPlot(document.getElementById("ct"));
  ct.setGrid(grid());
  plots = { cp, ct };
  return plots;
}
async function measure(name, body) {
  await sleep(600);
  const t0 = performance.now(), from = tasks.length, calls = [];
  const frames = await body(calls);
  await sleep(1200); // trailing draws
  const t1 = performance.now();
  const mine = tasks.slice(from).filter(([s]) => s >= t0);
  const pc = plotlyCalls.filter((c) => c[3] >= t0);
  const per = {};
  for (const id of ["cp", "ct"]) {
    const ms = pc.filter((c) => c[0] === id).map((c) => c[2]);
    const kinds = {};
    for (const c of pc) if (c[0] === id) kinds[c[1]] = (kinds[c[1]] || 0) + 1;
    per[id] = { calls: ms.length, kinds, p95: p95(ms), max: Math.max(0, ...ms) };
  }
  const total = mine.reduce((a, [, d]) => a + d, 0);
  const maps = mapDraws.filter(([d, t]) => t >= t0 && d > 0.5).map(([d]) => d); // 0.5: a call that found nothing to draw
  per.map = { calls: maps.length, kinds: {}, p95: p95(maps), max: Math.max(0, ...maps) };
  return { name, frames, wall_ms: t1 - t0, long_tasks: mine.length, longest_ms: Math.max(0, ...mine.map(([, d]) => d)),
    long_share: total / (t1 - t0), p95_call_ms: p95(calls), max_call_ms: Math.max(0, ...calls),
    drawn_convergence: drawn(document.getElementById("cp")), drawn_contour: drawn(document.getElementById("ct")), plotly: per };
}
window.bench = async ({ steps, batch }) => {
  const out = [];
  out.push(await measure("live", async (calls) => {
    const { cp, ct } = fresh();
    const px = [], py = [];
    let i = 0, frames = 0;
    while (i < steps) {
      await frame();
      const t = performance.now();
      const xs = [], fs = [];
      for (let k = 0; k < batch && i < steps; k++, i++) { xs.push(i); fs.push(fAt(i, steps)); const p = xAt(i, steps); px.push(p[0]); py.push(p[1]); }
      cp.extend("run", xs, fs);
      ct.setPath("run", px, py, { name: "best point", color: "#ff4d4f" });
      ct.setMarker(px[px.length - 1], py[py.length - 1]);
      ct.setPopulation(Array.from({ length: 150 }, (_, m) => [px[px.length - 1] + Math.sin(m + i) * 0.3, py[py.length - 1] + Math.cos(m * 3 + i) * 0.3]));
      calls.push(performance.now() - t);
      frames++;
    }
    return frames;
  }));
  out.push(await measure("load", async (calls) => {
    const { cp, ct } = fresh();
    await frame();
    const xs = [], fs = [], px = [], py = [];
    for (let i = 0; i < steps; i++) { xs.push(i); fs.push(fAt(i, steps)); const p = xAt(i, steps); px.push(p[0]); py.push(p[1]); }
    const t = performance.now();
    cp.setData("run", xs, fs);
    ct.setPath("run", px, py, { name: "best point" });
    calls.push(performance.now() - t);
    window._replay = { cp, ct, xs, px, py };
    return 1;
  }));
  out.push(await measure("replay", async (calls) => {
    const { cp, ct, px, py } = window._replay;
    let frames = 0;
    for (let k = 1; k <= 300; k++) {
      await frame();
      const t = performance.now();
      const end = Math.floor(steps * k / 300);
      cp.setMarker(end - 1);
      ct.setPath("run", px.slice(0, end), py.slice(0, end), { name: "best point" });
      ct.setMarker(px[end - 1], py[end - 1]);
      calls.push(performance.now() - t);
      frames++;
    }
    return frames;
  }));
  out.push(await measure("slices", async (calls) => {
    // A 10-D DE run's map: a new slice through the best point every few hundred ms, its population
    // of 150 members every frame between.
    const { ct } = fresh();
    let frames = 0;
    for (let k = 1; k <= 30; k++) {
      const t = performance.now();
      ct.setGrid(grid(0.02 * k));
      calls.push(performance.now() - t);
      for (let f = 0; f < 12; f++) {
        await frame();
        ct.setPopulation(Array.from({ length: 150 }, (_, m) => [Math.sin(m + k + f) * 1.5, 1 + Math.cos(m * 3 + f) * 1.5]));
        frames++;
      }
    }
    return frames;
  }));
  return out;
};
window.benchReady = true;
</script></body></html>
"""


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder: Path):
    handler = functools.partial(Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def site_folder(rev: str | None) -> Path:
    """A folder with /static/... (plots.js from `rev` when given) and /index.html."""
    folder = Path(tempfile.mkdtemp(prefix="bench-plots-"))
    static = folder / "static"
    static.mkdir()
    (static / "vendor").symlink_to(STATIC / "vendor")
    runs = static / "runs"
    runs.mkdir()
    for f in (STATIC / "runs").iterdir():
        (runs / f.name).symlink_to(f)
    if rev:
        (runs / "plots.js").unlink()
        code = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:runs/static/runs/plots.js"],
                              check=True, capture_output=True, text=True).stdout
        (runs / "plots.js").write_text(code)
    (folder / "index.html").write_text(PAGE)
    return folder


def browser(profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1440,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=200, help="steps arriving per animation frame in 'live'")
    parser.add_argument("--plots-rev", default=None, help="time plots.js of this git revision (e.g. main)")
    parser.add_argument("--screenshot", default=None, help="save the page as this PNG at the end")
    args = parser.parse_args()

    folder = site_folder(args.plots_rev)
    httpd = serve(folder)
    profile = tempfile.mkdtemp(prefix="bench-plots-chromium-")
    driver = browser(profile)
    try:
        driver.set_script_timeout(900)
        driver.get(f"http://127.0.0.1:{httpd.server_address[1]}/index.html")
        for _ in range(100):
            if driver.execute_script("return window.benchReady === true"):
                break
            time.sleep(0.1)
        # Started here, collected by polling: a slow plots.js can take longer than a WebDriver call may.
        driver.execute_script("window.bench(arguments[0]).then((r) => { window.benchResult = r; },"
                              " (e) => { window.benchResult = String(e); });", {"steps": args.steps, "batch": args.batch})
        results = None
        while results is None:
            time.sleep(1)
            results = driver.execute_script("return window.benchResult || null")
        if args.screenshot:
            driver.save_screenshot(args.screenshot)
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
        httpd.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
    if isinstance(results, str):
        sys.exit(f"the page failed: {results}")
    print(f"plots.js {'at ' + args.plots_rev if args.plots_rev else 'of the working tree'}; {args.steps:,} steps, "
          f"{args.batch} per frame live; 1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    print(f"{'scenario':8s} {'frames':>6s} {'wall s':>7s} {'long tasks':>10s} {'longest ms':>10s} {'share':>6s} "
          f"{'call p95 ms':>11s} {'call max ms':>11s} {'points drawn (conv, contour)':>29s}")
    for r in results:
        print(f"{r['name']:8s} {r['frames']:6d} {r['wall_ms'] / 1000:7.2f} {r['long_tasks']:10d} {r['longest_ms']:10.0f} "
              f"{r['long_share']:6.1%} {r['p95_call_ms']:11.1f} {r['max_call_ms']:11.1f} "
              f"{r['drawn_convergence']:>14,d}, {r['drawn_contour']:,d}")
    print("Plotly calls (synchronous part) per plot:")
    for r in results:
        for plot, name in (("cp", "convergence"), ("ct", "contour"), ("map", "map redraw")):
            c = r["plotly"][plot]
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(c["kinds"].items()))
            print(f"  {r['name']:8s} {name:11s} {c['calls']:5d} calls ({kinds or 'none'}), p95 {c['p95']:.0f} ms, "
                  f"max {c['max']:.0f} ms")
    if errors:
        print("console errors:", *errors, sep="\n  ")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
