"""What storage faults do to running runs on a real daphne (DEBUG=0) with the default settings.

    .venv/bin/python bench/bench_storage_faults.py [--cases lock,lock-beyond,full,full-beyond,readonly,admin]

Each case starts daphne with three pool processes on a throwaway SQLite database (bench/livesite.py),
launches three runs on /ws/runs/, lets them run, then does one fault to the database file for a
while and undoes it:
- lock:         a second sqlite3 connection holds BEGIN IMMEDIATE for 25 s (SQLite's busy timeout
                is 20 s, the retries last 120 s);
- lock-beyond:  the same lock for 50 s with the retries cut to 10 s (OPTSITE_STORAGE_RETRY_SECONDS):
                every worker gives up;
- full:         the database on a 64 MiB tmpfs, filled to the last byte for 30 s (needs root);
- full-beyond:  the same for 50 s with the retries cut to 10 s;
- readonly:     the file and its WAL immutable (chattr +i, needs root) for 30 s;
- admin:        a staff user deletes a running run on its admin page (and two with "delete
                selected"); what the launching sockets hear.
The server's own monitor is on (the default): nothing here marks or queues a run. Per run it reports
the statuses the database went through (sampled every 0.1 s), the end, whether the result is
bitwise scipy's own (differential_evolution on the same spec) with every step stored once, and how
long after the fault ended its steps went on; per case, the tracebacks in the server's log.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from livesite import HOST, Site, bare_scipy, finished, load_note, machine_line, pick_cases, same_result, start_run  # noqa: E402
from servers import sqlite_write_lock  # noqa: E402  (tests/servers.py: livesite puts tests/ on the path)

# 10-D Rosenbrock, 50 members, 3,000 generations: about 10 s of one core, long enough to outlast
# the start of a fault.
SPEC = {"method": "de", "problem": "rosenbrock", "dim": 10, "bounds": [[-5, 5]] * 10,
        "options": {"maxiter": 3000, "tol": 0, "seed": 7, "popsize": 5, "strategy": "rand1bin"}}
LONG = {"method": "de", "problem": "rosenbrock", "dim": 20, "bounds": [[-5, 5]] * 20,
        "options": {"maxiter": 20000, "tol": 0, "polish": False, "seed": 2, "popsize": 1}}
CASES = {
    "lock": {"fault": "lock", "hold": 25.0, "env": {}},
    "lock-beyond": {"fault": "lock", "hold": 50.0, "env": {"OPTSITE_STORAGE_RETRY_SECONDS": "10"}},
    "full": {"fault": "full", "hold": 30.0, "env": {}},
    "full-beyond": {"fault": "full", "hold": 50.0, "env": {"OPTSITE_STORAGE_RETRY_SECONDS": "10"}},
    "readonly": {"fault": "readonly", "hold": 30.0, "env": {}},
    "admin": {"fault": "admin"},
}


def rows(db: Path, ids: list[int]) -> dict[int, tuple]:
    """(status, n_steps, interruptions, error, stored steps, highest seq) of each run, read-only."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=20)
    try:
        out = {}
        for run_id in ids:
            row = con.execute("SELECT status, n_steps, interruptions, error FROM runs_run WHERE id = ?",
                              (run_id,)).fetchone()
            stored = con.execute("SELECT COUNT(*), MAX(seq) FROM runs_step WHERE run_id = ?", (run_id,)).fetchone()
            out[run_id] = (*row, *stored) if row else None
        return out
    finally:
        con.close()


@contextlib.contextmanager
def fault(kind: str, db: Path, mount: str | None):
    if kind == "lock":
        with sqlite_write_lock(db, timeout=60):
            yield
    elif kind == "full":
        with sqlite3.connect(db, timeout=60) as con:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = os.path.join(mount, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (1 << 20, 4096, 1):
                with contextlib.suppress(OSError):
                    while os.write(fd, b"\0" * size):
                        pass
        finally:
            os.close(fd)
        try:
            yield
        finally:
            os.remove(filler)
    elif kind == "readonly":
        files = [str(db), f"{db}-wal"]
        subprocess.run(["chattr", "+i", *files], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", *files], check=True)


def tracebacks(site: Site) -> int:
    return (site.tmp / "daphne.log").read_text(errors="replace").count("Traceback")


def fault_case(name: str, case: dict, reference) -> None:
    mount = None
    env = dict(case["env"])
    if case["fault"] == "full":
        mount = tempfile.mkdtemp(prefix="optsite-bench-tmpfs-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mount], check=True)
        env["DATABASE_URL"] = f"sqlite:///{mount}/db.sqlite3"
    try:
        with Site(workers=3, env=env) as site:
            if mount:
                site.db = Path(mount) / "db.sqlite3"
            streams = [site.stream() for _ in range(3)]
            ids = [start_run(s, SPEC)[1]["id"] for s in streams]
            for s in streams:
                s.wait(lambda st: st.steps >= 200, 60, "200 steps")
            seen = {i: [] for i in ids}

            def sample():
                now = rows(site.db, ids)
                for run_id, row in now.items():
                    if not seen[run_id] or seen[run_id][-1] != row[0]:
                        seen[run_id].append(row[0])
                return now

            began = time.monotonic()
            with fault(case["fault"], site.db, mount):
                at_fault = {i: r[1] for i, r in sample().items()}
                while time.monotonic() - began < case["hold"]:
                    sample()
                    time.sleep(0.1)
            ended = time.monotonic()
            went_on: dict[int, float | None] = dict.fromkeys(ids)
            deadline = ended + 400
            while time.monotonic() < deadline:
                now = sample()
                for run_id, row in now.items():
                    if went_on[run_id] is None and row[1] > at_fault[run_id]:
                        went_on[run_id] = time.monotonic() - ended
                if all(r[0] in ("finished", "stopped", "failed") for r in now.values()):
                    break
                time.sleep(0.1)
            final = rows(site.db, ids)
            results = {}
            for run_id in ids:
                results[run_id] = _api_run(site, run_id)["result"]
            for s in streams:
                s.close()
            print(f"\n## {name}: {case['fault']} for {case['hold']:.0f} s, settings {case['env'] or 'default'}")
            print(f"(the fault ended {ended - began:.1f} s after it began; tracebacks in the server's log: "
                  f"{tracebacks(site)})")
            print("| run | statuses seen | end | interruptions | steps stored (seq 0..n-1, once each) | "
                  "result = scipy's | steps again after the fault | error |")
            print("| --- | --- | --- | ---: | --- | --- | ---: | --- |")
            for run_id in ids:
                status, n, interruptions, error, count, top = final[run_id]
                intact = count == n and top == n - 1
                exact = results[run_id] is not None and same_result(results[run_id], reference)
                after = "never" if went_on[run_id] is None else f"{went_on[run_id]:.1f} s"
                print(f"| {run_id} | {' → '.join(seen[run_id])} | {status} | {interruptions} | "
                      f"{count} {'yes' if intact else 'NO'} | {'yes' if exact else 'NO'} | {after} | {error or '-'} |")
    finally:
        if mount:
            subprocess.run(["umount", "-l", mount], check=False)
            os.rmdir(mount)


def _api_run(site: Site, run_id: int) -> dict:
    import json

    request = urllib.request.Request(f"{site.base}/api/runs/{run_id}/", headers={"Cookie": site.cookie})
    return json.loads(urllib.request.urlopen(request, timeout=30).read())


def _admin_post(site: Site, page: str, data: list[tuple[str, str]]) -> int:
    """GET an admin page for its CSRF token, then POST the form as a browser would; the status."""
    request = urllib.request.Request(f"{site.base}{page}", headers={"Cookie": site.cookie})
    html = urllib.request.urlopen(request, timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    body = urllib.parse.urlencode([*data, ("csrfmiddlewaretoken", token)]).encode()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    post = urllib.request.Request(f"{site.base}{page}", data=body, headers={
        "Cookie": site.cookie, "Referer": f"{site.base}{page}", "Origin": f"http://{HOST}:{site.port}"})
    try:
        return opener.open(post, timeout=120).status
    except urllib.error.HTTPError as exc:
        return exc.code


def admin_case() -> None:
    with Site(workers=3) as site:
        print("\n## admin: a staff user deletes running runs")
        print("| how | runs | POST answered | launch sockets heard | time from POST to `finished` | "
              "left in the database | tracebacks |")
        print("| --- | ---: | --- | --- | ---: | --- | ---: |")
        for how, n in (("delete page", 1), ("delete selected", 2)):
            streams = [site.stream() for _ in range(n)]
            ids = [start_run(s, LONG)[1]["id"] for s in streams]
            for s in streams:
                s.wait(lambda st: st.steps >= 50, 60, "50 steps")
            t0 = time.perf_counter()
            if n == 1:
                status = _admin_post(site, f"/admin/runs/run/{ids[0]}/delete/", [("post", "yes")])
            else:
                status = _admin_post(site, "/admin/runs/run/", [("action", "delete_selected"), ("post", "yes"),
                                                                  *[("_selected_action", str(i)) for i in ids]])
            heard, took = [], []
            for s in streams:
                t, run = finished(s, 60)
                heard.append(run["status"])
                took.append(t - t0)
                s.close()
            left = sum(1 for r in rows(site.db, ids).values() if r is not None)
            print(f"| {how} | {n} | {status} | finished ({', '.join(heard)}) | "
                  f"{max(took) * 1000:.0f} ms | {left} runs | {tracebacks(site)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    cases = pick_cases(parser, args.cases, CASES)
    print(f"# Storage faults: {machine_line()}\n{load_note()}")
    reference = bare_scipy(SPEC)[2]
    for name in cases:
        case = CASES[name]
        if case["fault"] == "admin":
            admin_case()
        elif case["fault"] in ("full", "readonly") and os.geteuid() != 0:
            print(f"\n## {name}: skipped (mounting a tmpfs and chattr need root)")
        else:
            fault_case(name, case, reference)


if __name__ == "__main__":
    main()
