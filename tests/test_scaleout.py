"""Scale-out, for real: two daphne processes and two Celery workers on one PostgreSQL and one Redis.

The tests start PostgreSQL and Redis on loopback (tests/servers.py), migrate, create alice, and
start two daphne processes and two `celery -A optsite worker -Q runs -c 1` processes (each in its
own process group, as on separate machines). They log in over HTTP (the session lives in
PostgreSQL, so it is good on every server) and talk to the servers with websocket-client, as any
outside client would: a run launched on one server runs in a Celery worker, is watched and
controlled from the other server, outlives a restart of every daphne, and continues exactly on
the other worker when its own is killed with SIGKILL or shut down.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from celery import Celery
from scipy.optimize import differential_evolution

from runs.optim import get_problem, validate_spec
from tests import servers
from tests.live_client import Client, Socket, no_elapsed, seqs, steps

ROOT = Path(__file__).resolve().parent.parent
DAPHNE = Path(sys.executable).with_name("daphne")
CELERY = Path(sys.executable).with_name("celery")
PASSWORD = "scale out, not up"


def _missing() -> str | None:
    if servers.postgres_bindir() is None:
        return "PostgreSQL is not installed (make test installs Debian's postgresql)"
    if servers.redis_binary() is None:
        return "redis-server is not installed (make test installs Debian's redis-server)"
    for tool in (DAPHNE, CELERY):
        if not tool.exists():
            return f"no {tool.name} next to {sys.executable}"
    return None


pytestmark = [pytest.mark.scaleout, pytest.mark.redis,
              pytest.mark.skipif(_missing() is not None, reason=_missing() or "")]

# DE on 4-D Rosenbrock: ~420 generations and the polish, about half a second: long enough to be
# watched live from the other server.
DE_SPEC = {"method": "de", "problem": "rosenbrock", "dim": 4, "bounds": [[-3, 3]] * 4,
           "options": {"maxiter": 800, "tol": 0, "seed": 5}}
# rand1bin on 10-D Rosenbrock does not converge early: 20,000 small steps (10 members), several
# seconds, unless stopped.
LONG_SPEC = {"method": "de", "problem": "rosenbrock", "dim": 10, "bounds": [[-5, 5]] * 10,
             "options": {"maxiter": 20000, "tol": 0, "seed": 7, "popsize": 1, "strategy": "rand1bin",
                         "polish": False}}
# With 50 members, 1,000 generations and the polish: a few seconds, cut short in the middle.
KILL_SPEC = {**LONG_SPEC, "options": {**LONG_SPEC["options"], "maxiter": 1000, "popsize": 5, "polish": True}}

TIMINGS: dict[str, float] = {}
# The status change of a control on the socket (issue: 200 ms p99); generous on a shared machine.
CONTROL_BOUND = 2.0


# ---- servers and workers ----------------------------------------------------------------------
class Server:
    def __init__(self, name: str, port: int, process: subprocess.Popen, log: Path):
        self.name, self.port, self.process, self.log = name, port, process, log
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}"

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


class Worker:
    """One `celery worker` (main process + one prefork pool process) in its own process group."""

    def __init__(self, name: str, env: dict, logs: Path):
        self.name, self.env, self.logs = name, env, logs
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log = self.logs / f"{self.name}-{self.starts}.log"
        self.process = subprocess.Popen(
            [str(CELERY), "-A", "optsite", "worker", "-Q", "runs", "-c", "1", "-n", f"{self.name}@%h",
             "--pool", "prefork", "-O", "fair", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-l", "INFO"],
            cwd=ROOT, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while f"{self.name}@" not in self.text() or " ready." not in self.text():
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{self.tail()}")
            time.sleep(0.1)

    def holds(self, holder: str) -> bool:
        """Is this lease holder ("celery@host:pid") a pool process of this worker?"""
        try:
            return self.alive() and os.getpgid(int(holder.rsplit(":", 1)[1])) == self.process.pid
        except (ValueError, ProcessLookupError):
            return False

    def kill(self) -> None:
        """SIGKILL to the whole worker (its group): nothing of it gets to write anything."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-n:])


class Cluster:
    """Daphne processes and Celery workers on one database and one Redis; all stopped at teardown."""

    def __init__(self, env: dict, logs: Path):
        self.env, self.logs = env, logs
        self.servers: list[Server] = []
        self.stopped: list[Server] = []
        self.workers = [Worker(name, env, logs) for name in ("alpha", "beta")]

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

    def stop_servers(self) -> None:
        for server in self.servers:
            servers._stop(server.process)
        self.stopped += self.servers
        self.servers = []

    def ensure_workers(self) -> None:
        """Both workers up (one that a test killed or shut down is started again)."""
        down = [w for w in self.workers if not w.alive()]
        for worker in down:
            worker.start()
        for worker in down:
            worker.wait_ready()

    def holder_of(self, holder: str) -> Worker:
        (worker,) = [w for w in self.workers if w.holds(holder)]
        return worker

    def logs_text(self) -> str:
        return "\n".join(s.log.read_text(errors="replace") for s in self.servers + self.stopped)

    def stop_all(self) -> None:
        for server in self.servers:
            server.process.terminate()  # all at once; each is waited for (and killed if need be) below
        for worker in self.workers:
            if worker.process is not None:
                worker.kill()  # nothing of theirs is needed any more: no warm shutdown to wait for
        self.stop_servers()


@pytest.fixture(scope="module")
def backing():
    """PostgreSQL and Redis on loopback; yields the environment of the servers and workers."""
    with servers.postgres_server() as database_url, servers.redis_server() as redis_url:
        yield {
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
            "OPTSITE_LOG_LEVEL": "DEBUG",  # the monitor's failed ticks: a failing test's logs say why
        }


def prepare_database(env: dict) -> None:
    """Migrate and create alice and bob (one process: Django starts once)."""
    script = ("import django; django.setup(); from django.core.management import call_command; "
              "call_command('migrate', interactive=False, verbosity=0); "
              "call_command('createsuperuser', interactive=False, username='alice', email='a@example.org'); "
              "call_command('createsuperuser', interactive=False, username='bob', email='b@example.org')")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"migrate/createsuperuser failed:\n{done.stdout}\n{done.stderr}"


# The uninterrupted run, by the same stepper the workers use (checked against scipy elsewhere).
REFERENCE_SCRIPT = """
import json, sys
from runs.encoding import dumps
from runs.optim import make_stepper, validate_spec
stepper = make_stepper(validate_spec(json.loads(sys.argv[1])))
steps = [dumps(step.to_dict()) for step in stepper]
sys.stdout.write('{"steps": [' + ','.join(steps) + '], "result": ' + dumps(stepper.result.to_dict()) + '}')
"""


@pytest.fixture(scope="module")
def reference():
    """KILL_SPEC without interruption, computed meanwhile in a process of its own (a thread here
    would hold up the socket readers): what every cut-short run must equal."""
    process = subprocess.Popen([sys.executable, "-c", REFERENCE_SCRIPT, json.dumps(KILL_SPEC)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done: dict = {}

    def get():
        if not done:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
            data = json.loads(out)
            done.update(steps=[no_elapsed(step) for step in data["steps"]], result=data["result"])
        return done

    yield get
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.fixture(scope="module")
def cluster(backing, reference, tmp_path_factory):
    cluster = Cluster(backing, tmp_path_factory.mktemp("scaleout-logs"))
    try:
        for worker in cluster.workers:
            worker.start()  # they need only Redis until a run comes: they start meanwhile
        prepare_database(backing)
        cluster.start("server1", "server2")
        cluster.ensure_workers()
        yield cluster
    finally:
        cluster.stop_all()
        print("\nscale-out timings (s):", json.dumps({k: round(v, 3) for k, v in TIMINGS.items()}),
              f"\nscale-out logs: {cluster.logs}")


@pytest.fixture(scope="module")
def alice(cluster):
    return Client(cluster.servers[0], "alice", PASSWORD)


@pytest.fixture(scope="module")
def bob(cluster):
    return Client(cluster.servers[1], "bob", PASSWORD)


@pytest.fixture(scope="module")
def database(backing):
    """The shared PostgreSQL, read directly: what is stored, whatever the servers say."""
    with psycopg.connect(backing["DATABASE_URL"], autocommit=True) as conn:
        yield conn


def stored_run(database, run_id: int) -> dict:
    fields = ("status", "n_steps", "lease_holder", "interruptions")
    row = database.execute(f"SELECT {', '.join(fields)} FROM runs_run WHERE id = %s", (run_id,)).fetchone()
    return dict(zip(fields, row))


def stored_steps(database, run_id: int) -> list[dict]:
    rows = database.execute("SELECT data FROM runs_step WHERE run_id = %s ORDER BY seq", (run_id,)).fetchall()
    return [no_elapsed(json.loads(data)) for (data,) in rows]


def statuses(messages: list[dict]) -> str:
    """The statuses announced, a repeat of the one before left out (a control's own announcement
    and the worker's may both say "running")."""
    said: list[str] = []
    for m in messages:
        if m["type"] == "status" and (not said or said[-1] != m["run"]["status"]):
            said.append(m["run"]["status"])
    return " ".join(said)


def start_run(alice, server: Server, spec: dict) -> tuple[Socket, int]:
    launcher = alice.socket(server, "/ws/runs/")
    launcher.send({"type": "start", "spec": spec})
    _, (started,) = launcher.until("started")
    return launcher, started["run"]["id"]


# ---- the tests ------------------------------------------------------------------------------
def test_a_run_launched_on_one_server_runs_in_a_worker_and_streams_live_to_another_server(cluster, alice):
    one, two = cluster.servers
    t0 = time.monotonic()
    launcher, run_id = start_run(alice, one, DE_SPEC)
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
    running = [m["run"] for m in launched if m["type"] == "status" and m["run"]["status"] == "running"]
    assert running and cluster.holder_of(running[0]["worker"])  # a Celery pool process drove it
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


def test_a_big_study_on_the_celery_workers_lets_another_users_run_through(cluster, alice, bob, database):
    """Alice's study queues a wake-up per run ahead of bob's run; the worker that frees first takes
    bob's all the same (runs/worker.py drive_fairest), and the study's runs are scipy's."""
    cluster.ensure_workers()
    one, two = cluster.servers
    launcher = alice.socket(one, "/ws/runs/")
    launcher.send({"type": "study", "spec": {"problem": "rosenbrock", "dim": 4, "bounds": [[-3, 3]] * 4,
                                             "repeats": 12, "configs": [{"method": "de", "options": DE_SPEC["options"]}]}})
    _, answers = launcher.until("study")
    study = answers[-1]["study"]
    assert len(study["runs"]) == 12
    deadline = time.monotonic() + 60
    while database.execute("SELECT count(*) FROM runs_run WHERE study_id = %s AND status = 'running'",
                           (study["id"],)).fetchone()[0] < 2:
        assert time.monotonic() < deadline, "the study's runs did not start"
        time.sleep(0.02)
    other, run_id = start_run(bob, two, DE_SPEC)
    other.until("finished", timeout=60)
    created, started = database.execute("SELECT created, started FROM runs_run WHERE id = %s", (run_id,)).fetchone()
    overtook = database.execute("SELECT count(*) FROM runs_run WHERE study_id = %s AND started > %s AND started < %s",
                                (study["id"], created, started)).fetchone()[0]
    assert overtook <= 1, f"{overtook} of alice's study runs started before bob's single run"
    launcher.send({"type": "study_control", "study": study["id"], "action": "stop"})
    launcher.until("study")
    deadline = time.monotonic() + 60
    while database.execute("SELECT count(*) FROM runs_run WHERE study_id = %s AND status IN ('queued', 'running')",
                           (study["id"],)).fetchone()[0]:
        assert time.monotonic() < deadline, "the study did not stop"
        time.sleep(0.05)
    # what ran of it ran as scipy's differential_evolution with the repeat's seed
    finished = alice.get(one, f"/api/studies/{study['id']}/")["run_list"]
    done = [r for r in finished if r["status"] == "finished"]
    assert done
    spec = validate_spec(DE_SPEC)
    for r in done[:2]:
        ref = differential_evolution(get_problem(spec.problem).objective(spec.params), [tuple(b) for b in spec.bounds],
                                     maxiter=800, tol=0, seed=r["seed"])
        assert alice.get(one, f"/api/runs/{r['id']}/")["result"]["x"] == ref.x.tolist()
    launcher.close()
    other.close()


def test_controls_from_another_server_reach_the_worker_and_a_paused_run_holds_no_worker(cluster, alice, database):
    cluster.ensure_workers()
    one, two = cluster.servers
    launcher, run_id = start_run(alice, one, LONG_SPEC)
    watcher = alice.socket(two, f"/ws/runs/{run_id}/?after=-1")
    watcher.until("steps")
    sockets = (launcher, watcher)

    def control(action: str, status: str, timing: str) -> list[tuple[float, list[dict]]]:
        t0 = time.monotonic()
        watcher.send({"type": action})
        heard = [s.until("status", status=status) for s in sockets]
        TIMINGS[timing] = max(at for at, _ in heard) - t0
        assert TIMINGS[timing] < CONTROL_BOUND, TIMINGS
        return heard

    # pause on server 2: the worker holding the run pauses it; both sockets hear it
    paused = control("pause", "paused", "pause_latency")
    paused_at = paused[0][1][-1]["run"]["n_steps"]
    assert paused[1][1][-1]["run"]["n_steps"] == paused_at
    for s in sockets:
        assert seqs(s.received) == list(range(paused_at)) and s.quiet(0.5) == []  # nothing while paused
    row = stored_run(database, run_id)
    assert row["n_steps"] == paused_at and row["lease_holder"] == ""  # it holds no worker
    # pausing again changes nothing: the asking socket is told how things stand, nobody else
    watcher.send({"type": "pause"})
    _, (answer,) = watcher.until("status")
    assert answer["run"]["status"] == "paused" and launcher.quiet(0.3) == []

    # resume with a worker free: it goes on at once, from where it was
    control("resume", "running", "resume_latency")
    for s in sockets:
        _, more = s.until("steps")
        assert seqs(more)[0] == paused_at  # nothing lost, nothing repeated
    control("pause", "paused", "pause_again_latency")

    # while it is paused, both workers take other runs ...
    others = [start_run(alice, server, LONG_SPEC) for server in (one, two)]
    holders = [s.until("status", status="running")[1][-1]["run"]["worker"] for s, _ in others]
    assert {cluster.holder_of(h).name for h in holders} == {"alpha", "beta"}
    # ... so resuming it queues it (first in line) until one of them is free
    (_, heard), _ = control("resume", "queued", "resume_to_queued_latency")
    assert heard[-1]["run"]["queue_position"] == 1
    assert watcher.quiet(0.5) == [] and stored_run(database, run_id)["status"] == "queued"
    t0 = time.monotonic()
    others[0][0].send({"type": "stop"})
    at, heard = watcher.until("status", status="running")
    TIMINGS["freed_worker_takes_queued_run"] = at - t0
    assert heard[-1]["run"]["worker"] == holders[0]  # the freed worker took it

    t0 = time.monotonic()
    watcher.send({"type": "stop"})
    ends = [s.until("finished", status="stopped") for s in sockets]
    TIMINGS["stop_latency"] = max(at for at, _ in ends) - t0
    assert TIMINGS["stop_latency"] < CONTROL_BOUND, TIMINGS
    final = ends[0][1][-1]["run"]
    n = final["n_steps"]
    assert final["result"]["stopped"] is True and n < 20001
    for s in sockets:
        said = statuses(s.received)
        # (the launcher hears the first claim too; the watcher only if it joined before it)
        assert re.fullmatch(r"(running )?paused (queued )?running paused queued running stopped", said), said
        assert seqs(s.received) == list(range(n))
    assert steps(launcher.received) == alice.get(two, f"/api/runs/{run_id}/steps/")["steps"]
    # the run has ended: any control now is a conflict, on either server
    for s in sockets:
        s.send({"type": "resume"})
        _, (error,) = s.until("error")
        assert error["code"] == "conflict"

    others[1][0].send({"type": "stop"})
    for s, _ in others:
        s.until("finished", status="stopped")
        s.close()
    launcher.close()
    watcher.close()


def test_restarting_every_daphne_leaves_a_running_run_alone_and_a_watcher_misses_nothing(
        cluster, alice, database, backing):
    cluster.ensure_workers()
    one, two = cluster.servers
    launcher, run_id = start_run(alice, one, LONG_SPEC)
    watcher = alice.socket(two, f"/ws/runs/{run_id}/?after=-1")
    watcher.until_seq(100)
    holder = stored_run(database, run_id)["lease_holder"]

    t0 = time.monotonic()
    cluster.stop_servers()  # a redeploy: every daphne goes away
    watcher.until("closed")
    launcher.close()
    last = seqs(watcher.received)[-1]
    n_down = stored_run(database, run_id)["n_steps"]
    one, two = cluster.start("server3", "server4")
    TIMINGS["daphne_restart_gap"] = time.monotonic() - t0
    row = stored_run(database, run_id)
    # the run went on meanwhile, in the same worker, never interrupted
    assert row["status"] == "running" and row["n_steps"] > n_down >= last + 1
    assert row["lease_holder"] == holder and row["interruptions"] == 0

    rewatch = alice.socket(two, f"/ws/runs/{run_id}/?after={last}")
    rewatch.until("run")
    rewatch.until("steps")

    # A second wake-up for the running run (a duplicate or late delivery) reaches the idle worker,
    # which cannot take the lease: the run stays with its worker, untouched.
    (idle,) = [w for w in cluster.workers if not w.holds(holder)]
    sender = Celery(broker=backing["REDIS_URL"])
    try:
        task_id = sender.send_task("runs.drive_run", args=(run_id,), queue="runs").id
    finally:
        sender.close()
    deadline = time.monotonic() + 20
    while f"Task runs.drive_run[{task_id}] succeeded" not in idle.text():
        assert time.monotonic() < deadline, idle.tail()
        time.sleep(0.05)
    assert re.search(rf"drive_run\[{task_id}\] succeeded in [0-9.e-]+s: None", idle.text())
    row = stored_run(database, run_id)
    assert row["status"] == "running" and row["lease_holder"] == holder

    rewatch.send({"type": "stop"})
    _, rest = rewatch.until("finished", status="stopped")
    n = rest[-1]["run"]["n_steps"]
    assert seqs(rewatch.received) == list(range(last + 1, n))  # from where it left off: no gap, no repeat
    seen = [no_elapsed(step) for step in steps(watcher.received) + steps(rewatch.received)]
    assert seen == stored_steps(database, run_id)
    assert stored_run(database, run_id)["interruptions"] == 0
    rewatch.close()


class StatusLog:
    """When a run's row changes hands (status or lease holder), read from PostgreSQL on a thread:
    what the servers and workers do, whatever the sockets' backlog."""

    def __init__(self, url: str, run_id: int):
        self.changes: list[tuple[float, str, str]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(url, run_id), daemon=True)
        self._thread.start()

    def _poll(self, url: str, run_id: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not self._done.is_set():
                row = conn.execute("SELECT status, lease_holder FROM runs_run WHERE id = %s", (run_id,)).fetchone()
                if not self.changes or self.changes[-1][1:] != row:
                    self.changes.append((time.monotonic(), *row))
                time.sleep(0.02)

    def let_go(self, holder: str, after: float) -> float:
        """When `holder` stopped driving the run (interrupted, queued again or already resumed:
        the states between may be too short to see)."""
        return next(at for at, status, held in self.changes
                    if at >= after and (status != "running" or held != holder))

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)


def _cut_short(cluster, alice, database, backing, reference, cut, timing: str, restart: bool = False):
    """Launch KILL_SPEC, `cut(worker)` the worker holding it mid-run, and check that the run is
    interrupted within 10 s and continues on the other worker by itself, exactly."""
    cluster.ensure_workers()
    one, two = cluster.servers
    launcher, run_id = start_run(alice, one, KILL_SPEC)
    history = StatusLog(backing["DATABASE_URL"], run_id)
    try:
        watcher = alice.socket(two, f"/ws/runs/{run_id}/?after=-1")
        watcher.until_seq(300)
        holder = alice.get(two, f"/api/runs/{run_id}/")["worker"]
        doomed = cluster.holder_of(holder)
        (survivor,) = [w for w in cluster.workers if w is not doomed]
        t0 = time.monotonic()
        cut(doomed)

        at, messages = watcher.until("finished", timeout=30)
        TIMINGS[f"{timing}_on_socket"] = at - t0
        gone = messages[-1]["run"]
        assert gone["status"] == "interrupted"
        k = gone["n_steps"]
        assert 300 < k < KILL_SPEC["options"]["maxiter"] + 2
        assert seqs(watcher.received) == list(range(k))  # what was seen was stored

        # by itself (OPTSITE_AUTO_RESUME), on the other worker, from its last checkpoint
        at, resumed = watcher.until("status", status="running")
        TIMINGS[f"{timing}_to_resumed_on_socket"] = at - t0
        assert survivor.holds(resumed[-1]["run"]["worker"])
        if restart:  # for the tests after this one; it boots while the run finishes
            doomed.start()
        _, rest = watcher.until("finished", timeout=60)
        final = rest[-1]["run"]
        assert final["status"] == "finished" and seqs(rest) == list(range(k, final["n_steps"]))
        TIMINGS[f"{timing}_to_interrupted"] = history.let_go(holder, t0) - t0
        assert TIMINGS[f"{timing}_to_interrupted"] < 10.0, TIMINGS
    finally:
        history.close()

    done = reference()
    assert stored_steps(database, run_id) == done["steps"]  # exactly the uninterrupted run
    assert final["result"] == done["result"]
    launcher.close()
    watcher.close()
    return run_id, doomed


def test_a_killed_worker_s_run_is_interrupted_and_continues_on_the_other_worker_exactly(
        cluster, alice, database, backing, reference):
    run_id, _ = _cut_short(cluster, alice, database, backing, reference, Worker.kill, "kill", restart=True)
    # nobody let it go: its lease ran out and a server's monitor took it back
    assert f"run {run_id} lost its worker: marked interrupted" in cluster.logs_text()
    assert stored_run(database, run_id)["interruptions"] == 1


def test_a_worker_shut_down_lets_its_run_go_itself_and_it_continues_on_the_other_worker_exactly(
        cluster, alice, database, backing, reference):
    def shut_down(worker):
        worker.process.terminate()  # warm shutdown

    run_id, doomed = _cut_short(cluster, alice, database, backing, reference, shut_down, "shutdown")
    # The worker wrote the interruption itself ("interrupted" is what its task returned): no lease
    # had to run out, and no monitor stepped in (it would have counted an interruption).
    assert doomed.process.wait(30) == 0 and "'interrupted'" in doomed.text()
    assert stored_run(database, run_id)["interruptions"] == 0
    assert f"run {run_id} lost its worker" not in cluster.logs_text()
