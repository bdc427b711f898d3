"""Bytes per stored step and socket bytes per step, before (v1: the whole step as JSON, population
inside) and now (light JSON + binary bulk), for runs on a real daphne.

    .venv/bin/python bench/bench_storage.py [--cases de10,de2,de30,lbfgsb200] [--generations N]

Starts daphne with one pool process (bench/livesite.py) on a throwaway SQLite database, then per
case launches the run on /ws/runs/ and counts what that socket receives (the launching socket
watches the run live from seq 0), then replays the finished run on /ws/runs/<id>/ and counts that
too. From the database file: the stored bytes of its rows (data + bulk) and how much the file grew
(after a WAL checkpoint). "Before" comes from the same run (the steps are a pure function of the
spec, recomputed here by the solver core): v1 stored each step as the JSON text the stepper made,
population inside (only up to 4,000 numbers; no population_energies), sent that text to every
watcher, and the file grew by what SQLite needed for those rows (measured by writing them into a
scratch database with v1's table). "Same fields as JSON" is what the complete steps of now would
take as JSON text. The stored run's complete steps are checked against the recomputed ones, and a
few HTTP reads are timed (the series of the plots, a page of steps light and with bulky=1, the
newest step).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from livesite import Site, finished, load_note, machine_line, pick_cases, start_run  # noqa: E402

V1_POPULATION_LIMIT = 4000  # v1 left the population out above this many numbers


def case_specs(generations: int | None) -> dict[str, dict]:
    def de(dim: int, gens: int) -> dict:
        # tol 0 and rand1bin: it runs every generation (best1bin collapses the population and
        # "converges" after ~650 at 10-D)
        return {"method": "de", "problem": "rastrigin", "dim": dim, "bounds": [[-5.12, 5.12]] * dim,
                "options": {"maxiter": generations or gens, "tol": 0, "polish": False, "seed": 1,
                            "popsize": 15, "strategy": "rand1bin"}}

    return {
        "de10": de(10, 3000),
        "de2": de(2, 3000),
        "de30": de(30, 1000),
        "lbfgsb200": {"method": "lbfgsb", "problem": "rosenbrock", "dim": 200, "x0": [-1.2, 1.0] * 100,
                      "options": {"maxiter": generations or 20000}},
    }


def reference(spec: dict):
    """The run's complete steps as the stepper makes them, and v1's stored text of each."""
    from runs.encoding import dumps
    from runs.optim import make_stepper, validate_spec

    s = validate_spec(spec)
    stepper = make_stepper(s)
    complete, v1 = [], []
    for step in stepper:
        full = step.to_full_dict()
        complete.append(dumps(full))
        extra = dict(full["extra"])
        extra.pop("population_energies", None)
        pop = extra.get("population")
        if pop is not None and len(pop) * len(pop[0]) > V1_POPULATION_LIMIT:
            extra.pop("population")
        v1.append(dumps({**full, "extra": extra}))
    return complete, v1


def file_bytes(db: Path) -> int:
    """The database file's size after moving the WAL into it (what the run really added)."""
    with sqlite3.connect(db, timeout=30) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, size = con.execute("PRAGMA page_count").fetchone()[0], con.execute("PRAGMA page_size").fetchone()[0]
    return pages * size


def v1_file_growth(texts: list[str]) -> int:
    """What v1's rows of this run added to a SQLite file (v1's table and index, the same values)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v1.sqlite3"
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE runs_step (id integer PRIMARY KEY AUTOINCREMENT, seq integer, nit integer, "
                    "phase varchar(10), fun real, nfev bigint, njev bigint, elapsed real, data text, run_id bigint)")
        con.execute("CREATE UNIQUE INDEX step_unique_run_seq ON runs_step (run_id, seq)")
        con.commit()
        before = path.stat().st_size
        rows = []
        for text in texts:
            d = json.loads(text)
            rows.append((d["seq"], d["nit"], d["phase"], d["fun"], d["nfev"], d["njev"], d["elapsed"], text, 1))
        con.executemany("INSERT INTO runs_step (seq, nit, phase, fun, nfev, njev, elapsed, data, run_id) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.commit()
        con.close()
        return path.stat().st_size - before


def stored_bytes(db: Path, run_id: int) -> tuple[int, int, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
        n, data, bulk = con.execute("SELECT COUNT(*), SUM(LENGTH(data)), COALESCE(SUM(LENGTH(bulk)), 0) "
                                    "FROM runs_step WHERE run_id = ?", (run_id,)).fetchone()
    return n, data, bulk


def timed_get(site: Site, path: str, repeat: int = 3) -> tuple[float, int]:
    best, size = None, 0
    for _ in range(repeat):
        took, size = site.get(path)
        best = took if best is None else min(best, took)
    return best, size


def check_complete(site: Site, run_id: int, complete: list[str]) -> None:
    """The stored run's complete steps (bulky=1 pages) are the recomputed ones, elapsed aside."""
    import http.client

    def strip(d):
        return {k: v for k, v in d.items() if k != "elapsed"}

    after, i = -1, 0
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=120)
        conn.request("GET", f"/api/runs/{run_id}/steps/?after={after}&limit=10000&bulky=1",
                     headers={"Cookie": site.cookie})
        page = json.loads(conn.getresponse().read())
        conn.close()
        for step in page["steps"]:
            assert strip(step) == strip(json.loads(complete[i])), f"step {i} differs from the recomputed one"
            i += 1
        if not page["more"]:
            break
        after = page["steps"][-1]["seq"]
    assert i == len(complete), (i, len(complete))


def kb(n: float) -> str:
    return f"{n / 1024:8.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="de10,de2,de30,lbfgsb200")
    parser.add_argument("--generations", type=int, default=None,
                        help="maxiter for every case (default: 3,000 for DE 10-D and 2-D, 1,000 for 30-D)")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    specs = case_specs(args.generations)
    cases = pick_cases(parser, args.cases, specs)

    print(machine_line())
    rows = []
    with Site(workers=1) as site:
        for case in cases:
            spec = specs[case]
            shown = {k: (v if not isinstance(v, list) or len(v) <= 4 else f"[{len(v)} entries]") for k, v in spec.items()}
            print(f"\n{case}: {json.dumps(shown)}", flush=True)
            complete, v1 = reference(spec)
            size0 = file_bytes(site.db)
            stream = site.stream()
            try:
                _, run = start_run(stream, spec)
                _, final = finished(stream, args.timeout)
            finally:
                stream.close()
            run_id, n = run["id"], final["n_steps"]
            assert n == len(complete) == stream.steps, (n, len(complete), stream.steps)
            live_bytes = stream.bytes
            growth = file_bytes(site.db) - size0
            watch = site.stream(f"/ws/runs/{run_id}/?after=-1")
            try:
                finished(watch, args.timeout)
            finally:
                watch.close()
            assert watch.steps == n
            count, data, bulk = stored_bytes(site.db, run_id)
            assert count == n
            check_complete(site, run_id, complete)
            http = {
                "series": timed_get(site, f"/api/runs/{run_id}/series/?points=1000"),
                "page": timed_get(site, f"/api/runs/{run_id}/steps/?limit=1000"),
                "page bulky": timed_get(site, f"/api/runs/{run_id}/steps/?limit=1000&bulky=1"),
                "latest": timed_get(site, f"/api/runs/{run_id}/steps/latest/"),
            }
            v1_step = sum(map(len, v1)) / n
            full_step = sum(map(len, complete)) / n
            now_step = (data + bulk) / n
            v1_growth = v1_file_growth(v1)
            print(f"  {n} steps; stored now {now_step:,.0f} B/step (JSON {data / n:,.0f} + binary {bulk / n:,.0f}), "
                  f"v1 {v1_step:,.0f} B/step ({v1_step / now_step:.1f} x), the same fields as JSON "
                  f"{full_step:,.0f} B/step ({full_step / now_step:.1f} x)")
            print(f"  socket, live watcher: {live_bytes / n:,.0f} B/step in {stream.step_messages} messages; "
                  f"replay: {watch.bytes / n:,.0f} B/step in {watch.step_messages} messages; v1 sent every step "
                  f"whole: {v1_step:,.0f} B/step")
            print(f"  SQLite file growth: now {growth / 1024:,.0f} KiB, v1 {v1_growth / 1024:,.0f} KiB "
                  f"({v1_growth / max(growth, 1):.1f} x)")
            print("  HTTP (best of 3): " + ", ".join(f"{k} {t * 1000:.0f} ms ({s / 1024:,.0f} KiB)"
                                                     for k, (t, s) in http.items()), flush=True)
            rows.append((case, n, v1_step, full_step, now_step, data / n, bulk / n, live_bytes / n,
                         watch.bytes / n, v1_growth, growth))

    print(f"\n{'case':10s} {'steps':>6s} | {'stored KiB/step: v1':>19s} {'now':>8s} {'ratio':>6s} "
          f"{'(JSON':>7s} {'+ bin)':>7s} | {'socket KiB/step: v1':>19s} {'live':>8s} {'ratio':>6s} {'replay':>8s} | "
          f"{'file MiB: v1':>12s} {'now':>7s}")
    for case, n, v1_step, full_step, now_step, js, bn, live, replay, v1_growth, growth in rows:
        print(f"{case:10s} {n:6d} | {kb(v1_step):>19s} {kb(now_step)} {v1_step / now_step:6.1f} {kb(js)[2:]:>7s} "
              f"{kb(bn)[2:]:>7s} | {kb(v1_step):>19s} {kb(live)} {v1_step / live:6.1f} {kb(replay)} | "
              f"{v1_growth / 2**20:12.2f} {growth / 2**20:7.2f}")
    print("(v1: the whole step as JSON text, population inside when dim x members <= 4,000; now: the light step as "
          "JSON + the bulky arrays as binary deltas; socket 'live': what the launching socket received per step, "
          "'replay': a watcher of the finished run)")
    print(f"({load_note()}; the byte counts do not depend on load, the live socket's batching does a little)")


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "optsite.settings")
    main()
