"""What a client that does not read costs the server: peak daphne RSS while it asks for a big
replay again and again, and what is still held after it has gone.

    .venv/bin/python bench/bench_slow_client.py [--steps 12000] [--subscribes 8] [--flood 200] [--tree PATH]

1. Starts daphne (bench/livesite.py's Site: its own pool, a throwaway SQLite file, DEBUG=0) and
   runs one DE run of --steps generations in 100-D (light steps ~2 KB: about 26 MB to replay).
2. Opens /ws/runs/<id>/ with a 16 KiB receive buffer, reads nothing, and sends
   {"type": "subscribe", "after": -1} --subscribes times.
3. Samples the daphne process's RSS every 20 ms for --hold seconds, closes the socket, and samples
   for --after seconds more. Prints the baseline, the peak and the RSS after the close (MiB), and
   what the client would have received had it read (the replay's size).
4. Then a second client sends --flood frames of 0.5 MB (an invalid spec: 60,000 bad bounds, each
   costing the server a validation) as fast as it can for --hold seconds, reading nothing: the
   same figures.

--tree runs the same attack against another checkout (e.g. one without the bound) for comparison.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import livesite  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sample(pid: int, seconds: float) -> list[float]:
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        out.append(rss_mib(pid))
        time.sleep(0.02)
    return out


def flood(site, args) -> None:
    import websocket

    frame = json.dumps({"type": "start", "spec": {"method": "de", "problem": "rosenbrock",
                                                  "bounds": [[1, 0]] * 60_000}})
    base = min(sample(site.pid, 1.0))
    ws = websocket.create_connection(f"ws://{livesite.HOST}:{site.port}/ws/runs/", cookie=site.cookie,
                                     origin=site.base, timeout=args.hold,
                                     sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 16384),))
    peak, sent, t0 = base, 0, time.monotonic()
    try:
        for _ in range(args.flood):
            ws.send(frame)
            sent += 1
            peak = max(peak, rss_mib(site.pid))
            if time.monotonic() - t0 > args.hold:
                break
    except (websocket.WebSocketException, OSError):
        pass  # the server stopped reading it (or dropped it)
    held = sample(site.pid, 2.0)
    ws.shutdown()
    after = sample(site.pid, args.after)
    print(f"flood: {sent} frames of {len(frame) / 1e6:.1f} MB sent in {time.monotonic() - t0:.1f} s, none of "
          f"the answers read; daphne RSS: baseline {base:.1f} MiB, peak {max(peak, *held):.1f} MiB "
          f"(+{max(peak, *held) - base:.1f}); {after[-1]:.1f} MiB {args.after:g} s after it went "
          f"(+{after[-1] - base:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--subscribes", type=int, default=8)
    parser.add_argument("--hold", type=float, default=20.0, help="seconds the client stays without reading")
    parser.add_argument("--after", type=float, default=5.0, help="seconds sampled after it has closed")
    parser.add_argument("--flood", type=int, default=200, help="0.5 MB frames the second client sends")
    parser.add_argument("--only", choices=["reader", "flood"], help="one attack alone, on a fresh server")
    parser.add_argument("--tree", help="the checkout whose server to run (default: this one)")
    args = parser.parse_args()
    if args.tree:
        livesite.ROOT = Path(args.tree).resolve()
    import websocket

    # Rosenbrock's population does not collapse for thousands of generations: every one is a step
    spec = {"method": "de", "problem": "rosenbrock", "dim": args.dim, "bounds": [[-5, 5]] * args.dim,
            "options": {"maxiter": args.steps, "tol": 0, "popsize": 1, "polish": False, "seed": 3}}
    print(livesite.machine_line())
    with livesite.Site(workers=1) as site:
        if args.only == "flood":
            flood(site, args)
            return
        stream = site.stream()
        livesite.start_run(stream, spec)
        _, run = livesite.finished(stream, timeout=1800)
        stream.close()
        replay_bytes = site.get(f"/api/runs/{run['id']}/steps/?limit=10000")[1] * run["n_steps"] / min(
            run["n_steps"], 10000)
        print(f"tree {livesite.ROOT}: run {run['id']}, {run['n_steps']} steps, light replay ~{replay_bytes / 2**20:.1f} MiB")
        time.sleep(1)
        base = min(sample(site.pid, 1.0))
        ws = websocket.create_connection(f"ws://{livesite.HOST}:{site.port}/ws/runs/{run['id']}/",
                                         cookie=site.cookie, origin=site.base, timeout=30,
                                         sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 16384),))
        for _ in range(args.subscribes):
            ws.send(json.dumps({"type": "subscribe", "after": -1}))
        held = sample(site.pid, args.hold)
        ws.close(timeout=1)
        ws.shutdown()
        after = sample(site.pid, args.after)
        print(f"daphne RSS: baseline {base:.1f} MiB; peak while the client did not read {max(held):.1f} MiB "
              f"(+{max(held) - base:.1f}); {after[-1]:.1f} MiB {args.after:g} s after it closed "
              f"(+{after[-1] - base:.1f}); {args.subscribes} subscribes after -1, {args.hold:g} s unread")
        if args.only is None:
            flood(site, args)
        log = (site.tmp / "daphne.log").read_text(errors="replace")
        print(f"tracebacks in the server's log: {log.count('Traceback')}")
        for block in log.split("Traceback")[1:]:
            print("  ...", block.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
