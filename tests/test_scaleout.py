"""Scale-out, for real: several daphne processes sharing one PostgreSQL and one Redis.

The tests start PostgreSQL and Redis on loopback (tests/servers.py), migrate, create alice, and
start daphne processes on free ports. They log in over HTTP (the session lives in PostgreSQL, so
it is good on every server) and talk to the servers with websocket-client, as any outside client
would: a run launched on one server is watched on another, controlled from another, and resumed
on another after the server that ran it was killed with SIGKILL.
"""

import http.cookiejar
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import websocket
from scipy.optimize import differential_evolution

from runs.optim import get_problem, make_stepper, validate_spec
from tests import servers

ROOT = Path(__file__).resolve().parent.parent
DAPHNE = Path(sys.executable).with_name("daphne")
PASSWORD = "scale out, not up"


def _missing() -> str | None:
    if servers.postgres_bindir() is None:
        return "PostgreSQL is not installed (make test installs Debian's postgresql)"
    if servers.redis_binary() is None:
        return "redis-server is not installed (make test installs Debian's redis-server)"
    if not DAPHNE.exists():
        return f"no daphne next to {sys.executable}"
    return None


pytestmark = [pytest.mark.scaleout, pytest.mark.redis,
              pytest.mark.skipif(_missing() is not None, reason=_missing() or "")]

# DE on 4-D Rosenbrock: ~420 generations and the polish, about half a second: long enough to be
# watched live from the other server.
DE_SPEC = {"method": "de", "problem": "rosenbrock", "dim": 4, "bounds": [[-3, 3]] * 4,
           "options": {"maxiter": 800, "tol": 0, "seed": 5}}
# rand1bin on 10-D Rosenbrock does not converge early: ~6 s unless stopped (10 members: small steps).
LONG_SPEC = {"method": "de", "problem": "rosenbrock", "dim": 10, "bounds": [[-5, 5]] * 10,
             "options": {"maxiter": 20000, "tol": 0, "seed": 7, "popsize": 1, "strategy": "rand1bin",
                         "polish": False}}
# With 50 members, 1,500 generations and the polish: a few seconds, killed in the middle.
KILL_SPEC = {**LONG_SPEC, "options": {**LONG_SPEC["options"], "maxiter": 1500, "popsize": 5, "polish": True}}

TIMINGS: dict[str, float] = {}


# ---- servers -------------------------------------------------------------------------------
class Server:
    def __init__(self, name: str, port: int, process: subprocess.Popen, log: Path):
        self.name, self.port, self.process, self.log = name, port, process, log
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}"

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


class Cluster:
    """Daphne processes on one database and one Redis; all stopped at teardown, whatever happens."""

    def __init__(self, env: dict, logs: Path):
        self.env, self.logs, self.servers = env, logs, []

    def start(self, *names: str) -> list[Server]:
        started = []
        for name in names:
            port = servers.free_port()
            log = self.logs / f"{name}.log"
            process = subprocess.Popen(
                [str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "optsite.asgi:application"],
                cwd=ROOT, env=self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
            server = Server(name, port, process, log)
            self.servers.append(server)
            started.append(server)
        for server in started:
            try:
                servers.wait_for_port(server.port, timeout=60, process=server.process)
            except Exception as exc:
                raise RuntimeError(f"{server.name} did not start:\n{server.tail()}") from exc
        return started

    def stop_all(self) -> None:
        for server in self.servers:
            servers._stop(server.process)


@pytest.fixture(scope="module")
def backing(tmp_path_factory):
    """PostgreSQL and Redis on loopback, migrated, with alice; yields the servers' environment."""
    with servers.postgres_server() as database_url, servers.redis_server() as redis_url:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "optsite.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECRET_KEY": "optsite-scaleout-test-key-not-secret-0123456789abcdefghijklmnop",
            "DEBUG": "0",
            "OPTSITE_RUN_MONITOR": "1",  # conftest turns it off for this process; servers need it
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "PYTHONUNBUFFERED": "1",
        }
        for command in (["migrate", "--noinput"],
                        ["createsuperuser", "--noinput", "--username", "alice", "--email", "a@example.org"]):
            done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"manage.py {command[0]} failed:\n{done.stdout}\n{done.stderr}"
        yield env


@pytest.fixture(scope="module")
def cluster(backing, tmp_path_factory):
    cluster = Cluster(backing, tmp_path_factory.mktemp("daphne-logs"))
    try:
        cluster.start("server1", "server2")
        yield cluster
    finally:
        cluster.stop_all()
        print("\nscale-out timings (s):", json.dumps({k: round(v, 3) for k, v in TIMINGS.items()}))


@pytest.fixture(scope="module")
def alice(cluster):
    return Client(cluster.servers[0])


# ---- a client: HTTP with a cookie jar, sockets read on threads ----------------------------
class Client:
    """Logged in once on one server; the session (in PostgreSQL) is good on all of them."""

    def __init__(self, server: Server, username: str = "alice", password: str = PASSWORD):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(server.http + "/accounts/login/", timeout=10).read()
        form = {"username": username, "password": password, "csrfmiddlewaretoken": self.cookie("csrftoken")}
        with self.opener.open(server.http + "/accounts/login/", data=urllib.parse.urlencode(form).encode(),
                              timeout=10) as reply:
            assert reply.url.endswith("/runs/"), f"login failed: ended at {reply.url}"
        assert self.cookie("sessionid")

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    def get(self, server: Server, path: str):
        with self.opener.open(server.http + path, timeout=10) as reply:
            return json.loads(reply.read())

    def socket(self, server: Server, path: str) -> "Socket":
        return Socket(server, path, f"sessionid={self.cookie('sessionid')}")


class Socket:
    """A websocket-client connection whose messages a thread reads into a queue (no back-pressure)."""

    def __init__(self, server: Server, path: str, cookie: str):
        self.server = server
        self.conn = websocket.create_connection(server.ws + path, origin=server.http, cookie=cookie, timeout=10)
        self.conn.settimeout(None)
        self.inbox: queue.Queue = queue.Queue()
        self.received: list[dict] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            while True:
                text = self.conn.recv()
                self.inbox.put((time.monotonic(), json.loads(text)))
        except Exception as exc:  # closed (by us, or the server died)
            self.inbox.put((time.monotonic(), {"type": "closed", "why": repr(exc)}))

    def send(self, message: dict) -> None:
        self.conn.send(json.dumps(message))

    def next(self, timeout: float = 20.0) -> tuple[float, dict]:
        try:
            at, message = self.inbox.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.server.name}: no message in {timeout} s; last: {self.received[-2:]}") from None
        self.received.append(message)
        return at, message

    def until(self, kind: str, timeout: float = 20.0, **match) -> tuple[float, list[dict]]:
        """Messages up to and including the first of type `kind` whose run has these fields."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            at, message = self.next(max(0.01, deadline - time.monotonic()))
            got.append(message)
            assert message["type"] not in ("closed", "error") or kind == message["type"], message
            if message["type"] == kind and all(message.get("run", {}).get(k) == v for k, v in match.items()):
                return at, got

    def quiet(self, seconds: float) -> list[dict]:
        """What arrives in the next `seconds` (expected: nothing)."""
        got, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.inbox.get(timeout=left)[1])
            except queue.Empty:
                break
        self.received += got
        return got

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass


def steps(messages: list[dict]) -> list[dict]:
    return [s for m in messages if m["type"] == "steps" for s in m["steps"]]


def seqs(messages: list[dict]) -> list[int]:
    return [s["seq"] for s in steps(messages)]


def no_elapsed(step: dict) -> dict:
    return {k: v for k, v in step.items() if k != "elapsed"}


def as_json(value):
    from runs.executor import dumps

    return json.loads(dumps(value))


# ---- the tests ------------------------------------------------------------------------------
def test_a_run_launched_on_one_server_streams_live_to_a_watcher_on_another(cluster, alice):
    one, two = cluster.servers[:2]
    launcher = alice.socket(one, "/ws/runs/")
    t0 = time.monotonic()
    launcher.send({"type": "start", "spec": DE_SPEC})
    _, (started,) = launcher.until("started")
    run_id = started["run"]["id"]
    watcher = alice.socket(two, f"/ws/runs/{run_id}/?after=-1")
    _, (first,) = watcher.until("run")
    t_done, launched = launcher.until("finished")
    _, watched = watcher.until("finished")
    TIMINGS["launch_to_finished"] = t_done - t0
    final = launched[-1]["run"]
    n = final["n_steps"]
    assert final["status"] == "finished" and n > 400
    assert first["run"]["n_steps"] < n  # the watcher joined while it ran: steps came live via Redis
    assert seqs(launched) == seqs(watched) == list(range(n))  # every step once, in order, on both
    assert watched[-1]["run"] == final
    stored = alice.get(two, f"/api/runs/{run_id}/steps/")
    assert stored["run_id"] == run_id and stored["steps"] == steps(launched) == steps(watched)
    assert alice.get(two, f"/api/runs/{run_id}/") == final

    # scipy's own differential_evolution on the same function gives the same result.
    spec = validate_spec(DE_SPEC)
    ref = differential_evolution(get_problem(spec.problem).objective(spec.params), [tuple(b) for b in spec.bounds],
                                 maxiter=800, tol=0, seed=5)
    result = final["result"]
    assert result["x"] == ref.x.tolist() and result["fun"] == float(ref.fun)
    assert (result["nit"], result["nfev"], result["success"]) == (ref.nit, ref.nfev, ref.success)
    launcher.close()
    watcher.close()


def test_controls_from_another_server_reach_the_run(cluster, alice):
    one, two = cluster.servers[:2]
    launcher = alice.socket(one, "/ws/runs/")
    launcher.send({"type": "start", "spec": LONG_SPEC})
    _, (started,) = launcher.until("started")
    run_id = started["run"]["id"]
    watcher = alice.socket(two, f"/ws/runs/{run_id}/?after=-1")
    watcher.until("steps")
    sockets = (launcher, watcher)

    # pause on server 2: the run (on server 1) pauses; both sockets hear it
    t0 = time.monotonic()
    watcher.send({"type": "pause"})
    paused = [s.until("status", status="paused") for s in sockets]
    TIMINGS["pause_latency"] = max(at for at, _ in paused) - t0
    # (services alone take < 1 s, tests/test_services.py; here the steps queued before the status
    # on each socket count too, on a machine shared with other tests)
    assert TIMINGS["pause_latency"] < 2.0
    paused_at = paused[0][1][-1]["run"]["n_steps"]
    assert paused[1][1][-1]["run"]["n_steps"] == paused_at
    for s in sockets:
        assert seqs(s.received) == list(range(paused_at)) and s.quiet(0.6) == []  # nothing while paused
    assert alice.get(two, f"/api/runs/{run_id}/")["n_steps"] == paused_at
    # pausing again changes nothing: the asking socket is told how things stand, nobody else
    watcher.send({"type": "pause"})
    _, (answer,) = watcher.until("status")
    assert answer["run"]["status"] == "paused" and launcher.quiet(0.3) == []

    t0 = time.monotonic()
    watcher.send({"type": "resume"})
    resumed = [s.until("status", status="running") for s in sockets]
    TIMINGS["resume_latency"] = max(at for at, _ in resumed) - t0
    for s in sockets:
        _, more = s.until("steps")
        assert seqs(more)[0] == paused_at  # nothing lost, nothing repeated

    t0 = time.monotonic()
    watcher.send({"type": "stop"})
    ends = [s.until("finished", status="stopped") for s in sockets]
    TIMINGS["stop_latency"] = max(at for at, _ in ends) - t0
    final = ends[0][1][-1]["run"]
    n = final["n_steps"]
    assert final["result"]["stopped"] is True and n < 20001
    for s in sockets:
        statuses = [m["run"]["status"] for m in s.received if m["type"] == "status"]
        assert statuses == ["paused", "running", "stopped"] or s is watcher and statuses == [
            "paused", "paused", "running", "stopped"]
        assert seqs(s.received) == list(range(n))
    assert steps(launcher.received) == alice.get(two, f"/api/runs/{run_id}/steps/")["steps"]
    # the run has ended: any control now is a conflict, on either server
    for s in sockets:
        s.send({"type": "resume"})
        _, (error,) = s.until("error")
        assert error["code"] == "conflict"
    launcher.close()
    watcher.close()


def test_a_run_whose_server_is_killed_is_marked_interrupted_and_resumed_on_another(cluster, alice):
    two = cluster.servers[1]
    (doomed,) = cluster.start("server3")
    reference: dict = {}

    def uninterrupted():
        stepper = make_stepper(validate_spec(KILL_SPEC))
        reference["steps"] = [no_elapsed(as_json(s.to_dict())) for s in stepper]
        reference["result"] = as_json(stepper.result.to_dict())

    twin = threading.Thread(target=uninterrupted)
    twin.start()  # computed while we wait for the monitor

    launcher = alice.socket(doomed, "/ws/runs/")
    launcher.send({"type": "start", "spec": KILL_SPEC})
    _, (started,) = launcher.until("started")
    run_id = started["run"]["id"]
    watcher = alice.socket(two, f"/ws/runs/{run_id}/?after=-1")
    while not seqs(watcher.received) or seqs(watcher.received)[-1] < 300:
        watcher.next()
    os.kill(doomed.process.pid, signal.SIGKILL)
    killed = time.monotonic()
    doomed.process.wait(10)

    at, messages = watcher.until("finished", timeout=20)
    TIMINGS["kill_to_interrupted"] = at - killed
    gone = messages[-1]["run"]
    assert gone["status"] == "interrupted" and TIMINGS["kill_to_interrupted"] < 10
    k = gone["n_steps"]
    assert 300 < k < 1502 and seqs(watcher.received) == list(range(k))  # what was seen was stored
    marked = f"run {run_id} was left without an executor: marked interrupted"
    assert any(marked in s.log.read_text() for s in cluster.servers[:2])  # a surviving server's monitor

    t0 = time.monotonic()
    watcher.send({"type": "resume"})
    _, (status,) = watcher.until("status")
    assert status["run"]["status"] == "running"
    at, rest = watcher.until("finished")
    TIMINGS["resume_to_finished"] = at - t0
    final = rest[-1]["run"]
    assert final["status"] == "finished" and seqs(rest) == list(range(k, final["n_steps"]))

    twin.join(60)
    stored = alice.get(two, f"/api/runs/{run_id}/steps/")["steps"]
    assert [no_elapsed(s) for s in stored] == reference["steps"]  # exactly the uninterrupted run
    assert final["result"] == reference["result"]
    assert steps(watcher.received) == stored
    launcher.close()
    watcher.close()
