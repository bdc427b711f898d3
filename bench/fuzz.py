"""The fuzz properties (tests/test_fuzz_*.py: HTTP, CLI, sockets) run much longer than in the suite.

Run: .venv/bin/python bench/fuzz.py [--examples 2000] [-k EXPR] [FILE ...]

Each property runs OPTSITE_FUZZ_EXAMPLES cases (the suite runs 120) under pytest with hypothesis's
statistics on; the table says per property how many cases ran and how they ended (passing,
failing, invalid: drawn data a property rejected), the test's outcome, and what a failure was:
a 5xx answer, a traceback or error logged, a socket closed by an error. A failing property stops
at its first (shrunk) counterexample, printed below the table.

Uses a database file of its own (OPTSITE_TEST_DB, default /tmp/optsite-fuzz.sqlite3).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parents[1]
STAT_HEAD = re.compile(r"^(tests/test_fuzz_\w+\.py)::(\S+):\s*$")  # test[param] for a parametrized one
STAT_COUNTS = re.compile(r"(\d+) passing examples?, (\d+) failing examples?, (\d+) invalid examples?")


def parse_statistics(text: str) -> dict[str, dict]:
    """{"file::test": {"passing", "failing", "invalid"}} from --hypothesis-show-statistics (summed
    over its phases: generate, shrink, ...)."""
    out: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        head = STAT_HEAD.match(line.strip())
        if head:
            current = f"{head.group(1)}::{head.group(2)}"
            out[current] = {"passing": 0, "failing": 0, "invalid": 0}
            continue
        counts = STAT_COUNTS.search(line)
        if counts and current:
            for key, value in zip(("passing", "failing", "invalid"), counts.groups()):
                out[current][key] += int(value)
    return out


def kind_of(failure: str) -> dict[str, int]:
    """What a failure text says went wrong."""
    return {
        "5xx": len(re.findall(r"\b5\d\d for /", failure)),
        "tracebacks": int(bool(re.search(r"Traceback|LogRecord|error logged|not \[\]", failure))),
        "closed": int(bool(re.search(r"\b1011\b|closed", failure))),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=2000, help="cases per property (default 2000)")
    p.add_argument("-k", default=None, help="pytest -k expression (a subset of the properties)")
    p.add_argument("files", nargs="*", help="fuzz test files (default: every tests/test_fuzz_*.py)")
    args = p.parse_args()
    files = args.files or sorted(str(f.relative_to(ROOT)) for f in (ROOT / "tests").glob("test_fuzz_*.py"))
    if not files:
        print("no tests/test_fuzz_*.py found")
        return 1
    env = {**os.environ, "OPTSITE_FUZZ_EXAMPLES": str(args.examples), "CI": "true",
           "OPTSITE_TEST_DB": os.environ.get("OPTSITE_TEST_DB", "/tmp/optsite-fuzz.sqlite3")}
    with tempfile.TemporaryDirectory() as tmp:
        junit = pathlib.Path(tmp) / "fuzz.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "--hypothesis-show-statistics", "-p", "no:cacheprovider",
               "--tb=short", f"--junitxml={junit}", *files] + (["-k", args.k] if args.k else [])
        print(f"OPTSITE_FUZZ_EXAMPLES={args.examples} {' '.join(cmd[2:])}", flush=True)
        t0 = time.monotonic()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - t0
        stats = parse_statistics(done.stdout)
        cases = {}
        if junit.exists():
            for case in ET.parse(junit).getroot().iter("testcase"):
                module = case.get("classname", "").replace(".", "/") + ".py"
                name = f"{module}::{case.get('name')}"
                failure = case.find("failure")
                error = case.find("error")
                skipped = case.find("skipped")
                bad = failure if failure is not None else error
                outcome = ("failed" if bad is not None else
                           "xfail" if skipped is not None and "xfail" in (skipped.get("type", "") + skipped.get("message", ""))
                           else "skipped" if skipped is not None else "passed")
                text = "" if bad is None else (bad.get("message", "") + "\n" + (bad.text or ""))
                cases[name] = {"outcome": outcome, "failure": text, "time": float(case.get("time", 0))}
    rows, totals = [], {"cases": 0, "passing": 0, "failing": 0, "invalid": 0, "5xx": 0, "tracebacks": 0, "closed": 0}
    for name in sorted(stats):
        s = stats.get(name, {"passing": 0, "failing": 0, "invalid": 0})
        c = cases.get(name, {"outcome": "?", "failure": "", "time": 0.0})
        k = kind_of(c["failure"])
        ran = s["passing"] + s["failing"]
        rows.append((name.split("::")[1], name.split("::")[0].split("/")[-1], ran, s["passing"], s["failing"],
                     s["invalid"], c["outcome"], k["5xx"], k["tracebacks"], k["closed"], c["time"]))
        for key, value in (("cases", ran), ("passing", s["passing"]), ("failing", s["failing"]),
                           ("invalid", s["invalid"]), *k.items()):
            totals[key] += value
    others = {n: c for n, c in cases.items() if n not in stats}
    head = ("property", "file", "cases", "passed", "failed", "invalid", "outcome", "5xx", "tracebacks",
            "closed", "seconds")
    width = max([len(head[0])] + [len(r[0]) for r in rows])
    fmt = f"{{:<{width}}}  {{:<20}} {{:>7}} {{:>7}} {{:>6}} {{:>7}}  {{:<8}} {{:>4}} {{:>10}} {{:>6}} {{:>8}}"
    print()
    print(fmt.format(*head))
    for r in rows:
        print(fmt.format(*r[:10], f"{r[10]:.1f}"))
    by_property: dict[str, list] = {}
    for r in rows:
        total = by_property.setdefault(r[0].split("[")[0], [0, 0, 0, 0, 0, 0, 0, 0])
        for i, v in enumerate((1, r[2], r[3], r[4], r[5], r[7], r[8], r[9])):
            total[i] += v
    if any(n > 1 for n, *_ in by_property.values()):
        print()
        for base, (n, ran, ok, bad, invalid, e5, tb, closed) in by_property.items():
            print(fmt.format(f"{base} (all {n})" if n > 1 else base, "", ran, ok, bad, invalid, "",
                             e5, tb, closed, ""))
    print(fmt.format("all properties", "", totals["cases"], totals["passing"], totals["failing"], totals["invalid"],
                     "", totals["5xx"], totals["tracebacks"], totals["closed"], f"{seconds:.1f}"))
    fixed = [(n, c["outcome"]) for n, c in others.items()]
    if fixed:
        print(f"\nother tests in these files (fixed cases): "
              + ", ".join(f"{n.split('::')[1]} {o}" for n, o in fixed))
    failed = [(n, c["failure"]) for n, c in cases.items() if c["outcome"] == "failed"]
    for name, text in failed:
        print(f"\n--- {name} ---\n{text[-3000:]}")
    if done.returncode not in (0, 1) and not rows:
        print(done.stdout[-3000:], done.stderr[-3000:])
    return 0 if not failed and done.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
