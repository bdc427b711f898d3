"""Live path vs bare scipy: a DE run launched over the WebSocket of a real daphne server.

    .venv/bin/python bench/bench_live.py [--maxiter 2000] [--dim 10] [--popsize 15] [--repeat 3]

Starts daphne on a free loopback port against a throwaway SQLite database (migrated first), logs
a user in over HTTP, launches the spec on /ws/runs/, waits for "finished", checks every step was
received once and stored, and times the same spec with scipy's differential_evolution alone
(best of --repeat, interleaved). Prints both times and their ratio (the goal: <= 1.10).

The WebSocket client is websocket-client (installed with selenium, already in requirements.txt).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from servers import free_port, wait_for_port  # noqa: E402  (tests/servers.py)

USER, PASSWORD = "bench", "bench-password-123"


def spec_for(args) -> dict:
    return {"method": "de", "problem": "rastrigin", "dim": args.dim, "bounds": [[-5.12, 5.12]] * args.dim,
            "options": {"maxiter": args.maxiter, "tol": 0, "polish": False, "seed": 1, "popsize": args.popsize,
                        "strategy": args.strategy}}


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_scipy(spec: dict) -> tuple[float, int]:
    import numpy as np
    from scipy.optimize import differential_evolution

    from runs.optim import get_problem

    f = get_problem(spec["problem"]).objective({})
    o = spec["options"]
    c0, t0 = time.process_time(), time.perf_counter()
    res = differential_evolution(f, [tuple(b) for b in spec["bounds"]], maxiter=o["maxiter"], tol=o["tol"],
                                 polish=o["polish"], seed=o["seed"], popsize=o["popsize"],
                                 strategy=o["strategy"])
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert np.isfinite(res.fun)
    return took, cpu, res.nit


def login(base: str) -> str:
    """A real session cookie, the way a browser gets one."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(f"{base}/accounts/login/", data=data, headers={"Referer": f"{base}/accounts/login/"})
    opener.open(request).read()
    cookies = {c.name: c.value for c in jar}
    assert "sessionid" in cookies, "login failed"
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def live_run(base: str, port: int, cookie: str, spec: dict, db: Path, server_pid: int):
    import websocket

    try:  # the client shares this 2-core machine with the server: keep its parsing cheap
        from orjson import loads
    except ImportError:
        loads = json.loads

    # websocket-client checks UTF-8 in pure Python unless told not to: on this 2-core machine that
    # client would take the CPU the server's solver thread needs (a browser does it in C++).
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws/runs/", cookie=cookie,
                                     origin=f"http://127.0.0.1:{port}", timeout=600, skip_utf8_validation=True)
    c0, t0 = cpu_seconds(server_pid), time.perf_counter()
    ws.send(json.dumps({"type": "start", "spec": spec}))
    expected, run_id, finished = 0, None, None
    while finished is None:
        message = loads(ws.recv())
        kind = message["type"]
        if kind == "started":
            run_id = message["run"]["id"]
        elif kind == "steps":
            for step in message["steps"]:
                assert step["seq"] == expected, f"step {step['seq']} where {expected} was due"
                expected += 1
        elif kind == "finished":
            finished = message["run"]
        else:
            raise AssertionError(message)
    took, cpu = time.perf_counter() - t0, cpu_seconds(server_pid) - c0
    ws.close()
    assert finished["status"] == "finished" and finished["n_steps"] == expected, finished
    with sqlite3.connect(db) as con:
        stored, top = con.execute("SELECT COUNT(*), MAX(seq) FROM runs_step WHERE run_id = ?", (run_id,)).fetchone()
    assert stored == expected == top + 1, (stored, expected, top)
    return took, cpu, expected, finished["result"]["nit"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maxiter", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=10)
    # rand1bin keeps Rastrigin's population spread for all 2000 generations (best1bin collapses at 650)
    parser.add_argument("--strategy", default="rand1bin")
    parser.add_argument("--popsize", type=int, default=15,
                        help="scipy's popsize; above 4000/dim^2 (e.g. 41 at dim 10) DE steps leave out the population")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spec = spec_for(args)

    tmp = Path(tempfile.mkdtemp(prefix="optsite-bench-"))
    db = tmp / "db.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "DJANGO_SETTINGS_MODULE": "optsite.settings",
           "DJANGO_SUPERUSER_PASSWORD": PASSWORD, "OPTSITE_LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([python, "manage.py", "createsuperuser", "--noinput", "--username", USER,
                    "--email", "bench@example.org"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    daphne = shutil.which("daphne", path=str(Path(python).parent)) or "daphne"
    server = subprocess.Popen([daphne, "-b", "127.0.0.1", "-p", str(port), "optsite.asgi:application"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")})
    try:
        wait_for_port(port, process=server)
        base = f"http://127.0.0.1:{port}"
        cookie = login(base)
        print(f"spec: {json.dumps(spec)}")
        bare, live, bare_cpu, live_cpu = [], [], [], []
        for i in range(args.repeat):  # interleaved: drift in machine load hits both alike
            took, cpu, nit = bare_scipy(spec)
            bare.append(took)
            bare_cpu.append(cpu)
            took_live, cpu_live, n_steps, live_nit = live_run(base, port, cookie, spec, db, server.pid)
            live.append(took_live)
            live_cpu.append(cpu_live)
            assert live_nit == nit, (live_nit, nit)
            print(f"  round {i + 1}: scipy {took:.3f} s (cpu {cpu:.3f}), live {took_live:.3f} s "
                  f"(server cpu {cpu_live:.3f}; {n_steps} steps received once each and stored, nit {nit})")
        load = os.getloadavg()[0]
        print(f"scipy alone (best of {args.repeat}): {min(bare):.3f} s wall, {min(bare_cpu):.3f} s cpu")
        print(f"live over WebSocket (best of {args.repeat}): {min(live):.3f} s wall, "
              f"{min(live_cpu):.3f} s server cpu (all threads)")
        print(f"ratio live/scipy: {min(live) / min(bare):.3f} wall, {min(live_cpu) / min(bare_cpu):.3f} cpu"
              f"   (1-min load average {load:.1f} on {os.cpu_count()} cpus: wall figures need a quiet machine)")
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
