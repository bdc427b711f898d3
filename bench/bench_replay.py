"""How fast does a 100,000-step run replay? A real daphne, a real headless Chromium.

    .venv/bin/python bench/bench_replay.py [--steps 100000] [--repeat 3] [--keep]

1. Builds a throw-away SQLite database (in a temp dir) with one user and one finished run of
   N steps (a synthetic L-BFGS-B-like series written with bulk_create in batches).
2. Starts `daphne optsite.asgi:application` on a free port against that database.
3. Times the data endpoints the replay page uses (server-side downsampled series, a window of
   full steps for the table) and the complete exports, over HTTP with the user's session.
4. Opens /runs/<id>/ in headless Chromium and measures, from navigation start, how long until the
   page is usable: `#run-view[data-ready="1"]` when the page sets it; otherwise (fallback) the
   convergence plot has data, the contour has its grid, the step table has rows and the replay
   status is no longer "loading".
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

READY_JS = r"""
(() => {
  const done = () => {
    const root = document.getElementById('run-view');
    if (!root) return false;
    if (root.dataset.ready === '1') return 'data-ready';
    const conv = document.getElementById('plot-convergence');
    const cont = document.getElementById('plot-contour-map');  // the contour is drawn under the overlay
    const rows = document.querySelectorAll('#steps-body tr').length;
    const status = (document.getElementById('replay-status') || {}).textContent || '';
    const convOk = conv && conv.data && conv.data.some(t => t.x && t.x.length > 1);
    const contOk = cont && cont.data && cont.data.some(t => t.type === 'contour');
    if (convOk && contOk && rows > 0 && !/loading/i.test(status)) return 'composite';
    return false;
  };
  const tick = () => {
    const how = done();
    if (how) { window.__readyAt = performance.now(); window.__readyHow = how; return; }
    requestAnimationFrame(tick);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', tick); else tick();
})();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_database(db_path: Path, n_steps: int):
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "optsite.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from tests.runs_factory import synthetic_run

    call_command("migrate", verbosity=0, interactive=False)
    user = get_user_model().objects.create_user("bench", "bench@example.org", "bench-password-123")
    t = time.perf_counter()
    run = synthetic_run(user, n_steps, label=f"{n_steps:,}-step replay benchmark")
    print(f"fixture: run {run.pk} with {run.n_steps:,} steps written in {time.perf_counter() - t:.1f} s")
    return run.pk


def start_server(port: int, env: dict) -> subprocess.Popen:
    daphne = ROOT / ".venv" / "bin" / "daphne"
    proc = subprocess.Popen(
        [str(daphne), "-b", "127.0.0.1", "-p", str(port), "optsite.asgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("daphne did not start: " + proc.stderr.read().decode()[-2000:])


def http_session(base: str):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/accounts/login/").read().decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    data = urllib.parse.urlencode({"username": "bench", "password": "bench-password-123",
                                   "csrfmiddlewaretoken": token}).encode()
    req = urllib.request.Request(base + "/accounts/login/", data=data, headers={"Referer": base + "/accounts/login/"})
    opener.open(req).read()
    return opener, jar


def timed_get(opener, url: str, repeat: int) -> tuple[list[float], int, bytes]:
    times, size, body = [], 0, b""
    for _ in range(repeat):
        t = time.perf_counter()
        with opener.open(url) as resp:
            body = resp.read()
        times.append(time.perf_counter() - t)
        size = len(body)
    return times, size, body


def fmt_times(ts: list[float]) -> str:
    return f"median {statistics.median(ts) * 1000:.0f} ms (min {min(ts) * 1000:.0f}, max {max(ts) * 1000:.0f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temp database")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="optsite-bench-"))
    db = tmp / "bench.sqlite3"
    run_id = setup_database(db, args.steps)
    from django.db import connections

    connections.close_all()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost"}
    server = start_server(port, env)
    try:
        opener, jar = http_session(base)
        print(f"\nHTTP against daphne ({args.repeat} requests each, warm after the first):")
        for name, path in [
            ("series (points=2000, x=0,1)", f"/api/runs/{run_id}/series/?points=2000&x=0,1"),
            ("series zoom window (10k steps)", f"/api/runs/{run_id}/series/?points=2000&from=40000&to=49999&x=0,1"),
            ("steps window (50 rows)", f"/api/runs/{run_id}/steps/?after=49999&limit=50"),
            ("export.json (complete)", f"/runs/{run_id}/export.json"),
            ("steps.csv (complete)", f"/runs/{run_id}/steps.csv"),
        ]:
            repeat = 1 if "complete" in name else args.repeat
            ts, size, body = timed_get(opener, base + path, repeat)
            extra = ""
            if path.endswith("export.json"):
                extra = f", {len(json.loads(body)['steps']):,} steps"
            elif "series" in path:
                d = json.loads(body)
                extra = f", {d['count']:,} of {d['window']['count']:,} steps"
            print(f"  {name:34s} {fmt_times(ts)}, {size / 1024:,.0f} KiB{extra}")

        from tests.browser import make_browser

        profile = tempfile.mkdtemp(prefix="optsite-bench-chromium-")
        browser = make_browser(profile)
        try:
            browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": READY_JS})
            browser.get(base + "/accounts/login/")
            for c in jar:
                browser.add_cookie({"name": c.name, "value": c.value, "path": "/"})
            print(f"\nReplay page /runs/{run_id}/ in headless Chromium (time from navigation start until usable):")
            figures = []
            for i in range(args.repeat):
                browser.get(base + f"/runs/{run_id}/")
                t0 = time.time()
                while time.time() - t0 < 60:
                    got = browser.execute_script("return [window.__readyAt || null, window.__readyHow || null]")
                    if got[0] is not None:
                        break
                    time.sleep(0.02)
                else:
                    raise SystemExit("the replay page did not become usable within 60 s")
                nav = browser.execute_script(
                    "const n = performance.getEntriesByType('navigation')[0];"
                    "return [n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd]")
                figures.append(got[0])
                print(f"  load {i + 1}: usable at {got[0]:.0f} ms (signal: {got[1]}); HTML received {nav[0]:.0f} ms, "
                      f"DOMContentLoaded {nav[1]:.0f} ms, load {nav[2]:.0f} ms")
            print(f"  => median {statistics.median(figures):.0f} ms to a usable replay of {args.steps:,} steps")
            shot = tmp / "replay.png"
            browser.save_screenshot(str(shot))
            print(f"  screenshot: {shot}")
            errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
            if errors:
                print("  console errors:", *errors, sep="\n    ")
        finally:
            browser.quit()
            shutil.rmtree(profile, ignore_errors=True)
    finally:
        server.terminate()
        server.wait(10)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
