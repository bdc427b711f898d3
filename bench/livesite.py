"""A real optsite for the benchmarks: daphne on a free loopback port with its own worker pool, a
throwaway SQLite database (migrated), one user logged in over HTTP, socket and HTTP clients that
time what they receive, and scipy's own call for a spec.

Used by bench_live.py and bench_workers.py.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

# The app's processes run with one OpenBLAS thread (optsite/__init__.py); scipy alone must too, or
# on a busy machine OpenBLAS's idle threads make it several times slower and flatter the ratios.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from servers import free_port, wait_for_port  # noqa: E402  (tests/servers.py)

try:  # the client shares the cores with the server and its workers: keep its parsing cheap
    from orjson import loads
except ImportError:
    loads = json.loads

USER, PASSWORD = "bench", "bench-password-123"
HOST = "127.0.0.1"

# The consumer writes a live batch's head as {"type":"steps","run_id":N,"committed":T,"steps":[
_COMMITTED = re.compile(rb'"committed":([-+0-9.eE]+)')
# runs/pool.py logs "local pool: worker pool@host:pid ready"
_READY = re.compile(rb"worker \S+:(\d+) ready")
# Every step text starts with its seq (the stored PROTOCOL Step, encoded in field order).
_SEQ = re.compile(rb'\{"seq":(\d+),')


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (all its threads), from /proc; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def pick_cases(parser, raw: str, specs: dict) -> list[str]:
    """The case names of a comma-separated --cases, each one of `specs` (else the parser says so)."""
    cases = [c.strip() for c in raw.split(",") if c.strip()]
    unknown = [c for c in cases if c not in specs]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; known: {', '.join(specs)}")
    return cases


def percentile(values, q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def machine_line() -> str:
    import numpy
    import scipy

    return (f"python {sys.version.split()[0]}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
            f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}, "
            f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
            f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")


def load_note() -> str:
    return (f"1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus; "
            "wall-clock figures need a quiet machine")


# ---- scipy alone -----------------------------------------------------------------------------
def bare_scipy(data: dict):
    """scipy's own call for a run spec (normalised as the server does): (wall s, cpu s, result)."""
    import numpy as np
    from scipy.optimize import differential_evolution, minimize

    from runs.optim import get_problem, validate_spec

    spec = validate_spec(data)
    problem = get_problem(spec.problem)
    f, g, o = problem.objective(spec.params), problem.gradient(spec.params), spec.options
    if spec.method == "de":
        kw = {"seed": o["seed"]} if o["seed"] is not None else {"rng": o["rng"]}
        mutation = tuple(o["mutation"]) if isinstance(o["mutation"], list) else o["mutation"]
        bounds = [tuple(b) for b in spec.bounds]
        x0 = None if spec.x0 is None else np.array(spec.x0)

        def call():
            return differential_evolution(
                f, bounds, strategy=o["strategy"], maxiter=o["maxiter"], popsize=o["popsize"], tol=o["tol"],
                atol=o["atol"], mutation=mutation, recombination=o["recombination"], polish=o["polish"],
                init=o["init"], updating=o["updating"], x0=x0, **kw)
    elif spec.method == "lbfgsb":
        jac = g if o["jac"] == "analytic" else o["jac"]  # None and scipy's strings as they are
        bounds = None if spec.bounds is None else [tuple(b) for b in spec.bounds]
        x0 = np.array(spec.x0)
        options = {k: o[k] for k in ("maxcor", "ftol", "gtol", "eps", "maxfun", "maxiter", "maxls",
                                      "finite_diff_rel_step")}

        def call():
            return minimize(f, x0, jac=jac, method="L-BFGS-B", bounds=bounds, options=options)
    else:
        raise ValueError(f"no bare scipy call for {spec.method!r} here")
    c0, t0 = time.process_time(), time.perf_counter()
    res = call()
    return time.perf_counter() - t0, time.process_time() - c0, res


def same_result(run_result: dict, res) -> bool:
    """The run's stored result is scipy's, bit for bit (JSON floats round-trip exactly)."""
    import numpy as np

    x = np.array([np.nan if v is None else v for v in run_result["x"]], dtype=float)
    fun = np.nan if run_result["fun"] is None else run_result["fun"]
    return (np.array_equal(x, res.x, equal_nan=True) and (fun == res.fun or (fun != fun and res.fun != res.fun))
            and run_result["nit"] == res.nit and run_result["nfev"] == res.nfev)


# ---- the server ------------------------------------------------------------------------------
class Site:
    """daphne + its pool on a throwaway database; a context manager that cleans up after itself."""

    def __init__(self, *, workers: int | None = None, max_runs: int = 64, env: dict | None = None,
                 keep: bool = False):
        self.workers, self.max_runs, self.extra_env, self.keep = workers, max_runs, env or {}, keep
        self.server: subprocess.Popen | None = None

    def __enter__(self) -> "Site":
        self.tmp = Path(tempfile.mkdtemp(prefix="optsite-bench-"))
        self.db = self.tmp / "db.sqlite3"
        # Inherited OPTSITE_* settings (e.g. auto-resume off in someone's shell) would change what is measured.
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPTSITE_")}
        env.pop("REDIS_URL", None)
        env.update({"DATABASE_URL": f"sqlite:///{self.db}", "DJANGO_SETTINGS_MODULE": "optsite.settings",
                    "DJANGO_SUPERUSER_PASSWORD": PASSWORD, "DEBUG": "0",
                    # INFO: the pool logs each process that is ready (and nothing else at INFO)
                    "OPTSITE_LOG_LEVEL": "INFO",
                    "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECRET_KEY": secrets.token_urlsafe(40),
                    "OPTSITE_MAX_CONCURRENT_RUNS": str(self.max_runs)})
        if self.workers:
            env["OPTSITE_WORKERS"] = str(self.workers)
        env.update(self.extra_env)
        self.env = env
        try:
            python = sys.executable
            subprocess.run([python, "-m", "optsite.staticstorage"], cwd=ROOT, env=env, check=True)
            subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
            subprocess.run([python, "manage.py", "createsuperuser", "--noinput", "--username", USER,
                            "--email", "bench@example.org"], cwd=ROOT, env=env, check=True,
                           stdout=subprocess.DEVNULL)
            self.port = free_port()
            daphne = shutil.which("daphne", path=str(Path(python).parent)) or "daphne"
            # a file, not a pipe: a pipe nobody reads would block the server once it fills
            self.log = open(self.tmp / "daphne.log", "wb")
            self.server = subprocess.Popen([daphne, "-b", HOST, "-p", str(self.port), "optsite.asgi:application"],
                                           cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
            wait_for_port(self.port, process=self.server)
            self.base = f"http://{HOST}:{self.port}"
            self.cookie = self._login()
            self.wait_for_ready(self.workers or os.cpu_count() or 1)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)  # the pool lets its runs go and ends its processes
            try:
                self.server.wait(20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        if getattr(self, "log", None):
            self.log.close()
        if exc and exc[0] is not None and exc[0] is not KeyboardInterrupt and hasattr(self, "tmp"):
            print("--- end of the server's log:", (self.tmp / "daphne.log").read_text(errors="replace")[-3000:],
                  sep="\n", file=sys.stderr)
        if self.keep:
            print(f"kept {self.tmp}")
        elif hasattr(self, "tmp"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def pid(self) -> int:
        return self.server.pid

    def _login(self) -> str:
        """A real session cookie, the way a browser gets one."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(f"{self.base}/accounts/login/", timeout=30).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode({"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(f"{self.base}/accounts/login/", data=data,
                                         headers={"Referer": f"{self.base}/accounts/login/"})
        opener.open(request, timeout=30).read()
        cookies = {c.name: c.value for c in jar}
        assert "sessionid" in cookies, "login failed"
        return "; ".join(f"{k}={v}" for k, v in cookies.items())

    # -- its worker processes --
    def worker_pids(self) -> list[int]:
        """The pool's processes: children of this daphne running runs.pool_worker."""
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or _parent(int(name)) != self.pid:
                continue
            try:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if b"runs.pool_worker" in cmdline:
                pids.append(int(name))
        return sorted(pids)

    def wait_for_workers(self, n: int, timeout: float = 60.0) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) >= n:
                return pids
            if self.server.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.server.returncode}")
            time.sleep(0.05)
        raise TimeoutError(f"the pool has {len(self.worker_pids())} of {n} processes after {timeout} s")

    def ready_pids(self) -> list[int]:
        """The pool's processes that have told the pool they are ready (from the server's log)."""
        text = (self.tmp / "daphne.log").read_bytes()
        ready = {int(pid) for pid in _READY.findall(text)}
        return [pid for pid in self.worker_pids() if pid in ready]

    def wait_for_ready(self, n: int, timeout: float = 60.0) -> list[int]:
        self.wait_for_workers(n, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.ready_pids()
            if len(pids) >= n:
                return pids
            time.sleep(0.02)
        raise TimeoutError(f"{len(self.ready_pids())} of {n} pool processes said they were ready in {timeout} s")

    def workers_cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.worker_pids())

    # -- clients --
    def stream(self, path: str = "/ws/runs/", *, parse: bool = False) -> "Stream":
        return Stream(self, path, parse=parse)

    def get(self, path: str, timeout: float = 30.0) -> tuple[float, int]:
        """One GET on a fresh connection: (seconds to the last byte, bytes); raises unless 200."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            t0 = time.perf_counter()
            conn.request("GET", path, headers={"Cookie": self.cookie})
            response = conn.getresponse()
            body = response.read()
            took = time.perf_counter() - t0
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        return took, len(body)

    def stored(self, run_id: int) -> tuple[int, int | None]:
        """(stored steps, highest seq) of a run, read from the database file."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=20) as con:
            return con.execute("SELECT COUNT(*), MAX(seq) FROM runs_step WHERE run_id = ?", (run_id,)).fetchone()


def _sample_http(port: int, cookie: str, paths: list[str], samples: int, gap: float, seconds: float,
                 stop, out) -> None:
    """(in its own process) GET each path in turn until `samples` each, `seconds` or `stop` is set."""
    site = Site.__new__(Site)
    site.port, site.cookie = port, cookie
    times: dict[str, list[float]] = {p: [] for p in paths}
    deadline = time.monotonic() + seconds
    try:
        while not stop.is_set() and time.monotonic() < deadline and min(map(len, times.values())) < samples:
            for path in paths:
                times[path].append(site.get(path)[0])
                time.sleep(gap)
        out.put(times)
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        out.put({"error": f"{type(exc).__name__}: {exc}"})


class HttpSampler:
    """GET timings taken by a separate process, so the socket clients' threads here cannot slow them."""

    def __init__(self, site: Site, paths: list[str], *, samples: int, gap: float, seconds: float):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.stop_event, self.out = ctx.Event(), ctx.Queue()
        self.process = ctx.Process(target=_sample_http, daemon=True, args=(
            site.port, site.cookie, paths, samples, gap, seconds, self.stop_event, self.out))
        self.seconds = seconds
        self.process.start()

    def result(self, stop: bool = False) -> dict[str, list[float]]:
        if stop:
            self.stop_event.set()
        try:
            times = self.out.get(timeout=self.seconds + 60)
        finally:
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
        if "error" in times:
            raise RuntimeError(f"HTTP sampler: {times['error']}")
        return times


class Stream:
    """One socket, read by its own thread from the moment it opens: every message timestamped.

    Checks that steps arrive once each, in seq order, with no gap (from seq 0: launch sockets and
    watchers that replay from the start). `parse=True` decodes every steps message as a client
    would; otherwise only the seqs and the commit time are picked out of the text.
    """

    def __init__(self, site: Site, path: str, *, parse: bool = False):
        import websocket

        self.path, self.parse = path, parse
        # websocket-client checks UTF-8 in pure Python unless told not to: on a 2-core machine that
        # would take CPU the server needs (a browser does it in C++)
        self.ws = websocket.create_connection(f"ws://{HOST}:{site.port}{path}", cookie=site.cookie,
                                              origin=f"http://{HOST}:{site.port}", timeout=None,
                                              skip_utf8_validation=True)
        self.cond = threading.Condition()
        self.events: list[tuple[float, str, dict]] = []  # (perf_counter, type, message) but steps
        self.steps = 0  # steps received (= the next seq due)
        self.step_messages = 0
        self.bytes = 0
        self.last_step_at: float | None = None
        self.lags: list[tuple[float, int]] = []  # (commit -> receipt seconds, steps in the message)
        self.problem: str | None = None  # what went wrong, if anything (checked by callers)
        self.closed = False
        self._thread = threading.Thread(target=self._read, name=f"ws {path}", daemon=True)
        self._thread.start()

    def send(self, message: dict) -> float:
        """Send; returns the perf_counter just before the send."""
        t0 = time.perf_counter()
        self.ws.send(json.dumps(message))
        return t0

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except Exception:  # noqa: BLE001 - already gone
            pass
        self._thread.join(5)

    def _read(self) -> None:
        while True:
            try:
                opcode, data = self.ws.recv_data()
            except Exception:  # noqa: BLE001 - closed by either side
                opcode, data = 8, b""
            now, wall = time.perf_counter(), time.time()
            with self.cond:
                if opcode == 8:
                    self.closed = True
                    self.cond.notify_all()
                    return
                try:
                    self._take(data, now, wall)
                except Exception as exc:  # noqa: BLE001 - reported to the waiting caller
                    self.problem = self.problem or f"{type(exc).__name__}: {exc}"
                self.cond.notify_all()

    def _take(self, data: bytes, now: float, wall: float) -> None:
        self.bytes += len(data)
        if data.startswith(b'{"type":"steps"'):
            if self.parse:
                message = loads(data)
                seqs = [step["seq"] for step in message["steps"]]
                committed = message.get("committed")
            else:
                seqs = [int(s) for s in _SEQ.findall(data)]
                found = _COMMITTED.search(data, 0, 200)
                committed = float(found.group(1)) if found else None
            if seqs != list(range(self.steps, self.steps + len(seqs))):
                raise AssertionError(f"{self.path}: steps {seqs[:3]}... where {self.steps} was due")
            self.steps += len(seqs)
            self.step_messages += 1
            self.last_step_at = now
            if committed is not None:  # live (a replay of stored steps has no commit time)
                self.lags.append((wall - committed, len(seqs)))
            self.events.append((now, "steps", {"first": seqs[0], "n": len(seqs)}))
            return
        message = loads(data)
        kind = message.get("type")
        if kind == "error":
            self.problem = self.problem or f"{self.path}: error {message}"
        self.events.append((now, kind, message))

    def wait(self, predicate, timeout: float, what: str):
        """Block until predicate(self) is truthy (re-checked at each message); returns its value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.problem:
                    raise AssertionError(self.problem)
                value = predicate(self)
                if value:
                    return value
                if self.closed:
                    raise AssertionError(f"{self.path}: socket closed while waiting for {what}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.path}: no {what} within {timeout:.0f} s")
                self.cond.wait(min(left, 1.0))

    # -- predicates over what has arrived (call under wait) --
    def first(self, kind: str, status: str | None = None, since: int = 0):
        """The first (time, message) of this type (and run status) at event index >= since."""
        for t, k, message in self.events[since:]:
            if k == kind and (status is None or message["run"]["status"] == status):
                return t, message
        return None

    def mark(self) -> int:
        with self.cond:
            return len(self.events)

    def step_lags(self) -> list[float]:
        """One lag per live step (each step of a batch waited as long as its batch)."""
        with self.cond:
            return [lag for lag, n in self.lags for _ in range(n)]


def start_run(stream: Stream, spec: dict, timeout: float = 60.0) -> tuple[float, dict]:
    """Send "start"; returns (time sent, the Run of "started")."""
    t0 = stream.send({"type": "start", "spec": spec})
    _, message = stream.wait(lambda s: s.first("started") or s.first("error"), timeout, "started")
    if message["type"] != "started":
        raise AssertionError(f"start refused: {message}")
    return t0, message["run"]


def finished(stream: Stream, timeout: float, status: str | None = None) -> tuple[float, dict]:
    """(receipt time, Run) of the stream's "finished" message."""
    t, message = stream.wait(lambda s: s.first("finished", status), timeout, "finished")
    return t, message["run"]


def worker_pid(run: dict) -> int | None:
    """The pid in a Run's `worker` ("pool@host:pid")."""
    worker = run.get("worker") or ""
    tail = worker.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def warm_up(site: Site, specs: list[dict], timeout: float = 120.0) -> None:
    """Run each spec once on every pool process (imports, first-touch caches), untimed."""
    n = len(site.worker_pids())
    for spec in specs:
        streams = [site.stream() for _ in range(n)]
        try:
            for s in streams:
                start_run(s, spec)
            for s in streams:
                finished(s, timeout)
        finally:
            for s in streams:
                s.close()
