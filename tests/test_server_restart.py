"""The default mode for real: daphne with its own pool of worker processes, on a SQLite file.

Stopping the server interrupts its runs (its workers write what they computed and let go) and
the next start resumes them; a server killed with SIGKILL leaves workers that notice and do the
same. Either way the run ends exactly as an uninterrupted run would.
"""

import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from runs.encoding import dumps
from runs.optim import make_stepper, validate_spec
from tests import servers
from tests.live_client import Client, no_elapsed, seqs, steps
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parent.parent
DAPHNE = Path(sys.executable).with_name("daphne")
PASSWORD = "restart, resume"

pytestmark = pytest.mark.skipif(not DAPHNE.exists(), reason=f"no daphne next to {sys.executable}")

# rand1bin on 10-D Rosenbrock with 50 members, 800 generations and the polish: a second or two.
SPEC = {"method": "de", "problem": "rosenbrock", "dim": 10, "bounds": [[-5, 5]] * 10,
        "options": {"maxiter": 800, "tol": 0, "seed": 11, "popsize": 5, "strategy": "rand1bin"}}


def as_json(value):
    return json.loads(dumps(value))


@functools.cache
def uninterrupted():
    stepper = make_stepper(validate_spec(SPEC))
    return [no_elapsed(as_json(s.to_dict())) for s in stepper], as_json(stepper.result.to_dict())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"




class Site:
    """One SQLite file, and a daphne process on it at a time (started and stopped by the test)."""

    def __init__(self, root: Path):
        self.db = root / "db.sqlite3"
        self.logs = root
        self.env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        self.env.update({
            "DJANGO_SETTINGS_MODULE": "optsite.settings", "DATABASE_URL": f"sqlite:///{self.db}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost", "DEBUG": "0", "OPTSITE_WORKERS": "2",
            "SECRET_KEY": "optsite-restart-test-key-not-secret-0123456789abcdefghijklmnop",
            "OPTSITE_RUN_MONITOR": "1", "DJANGO_SUPERUSER_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1",
        })
        self.process: subprocess.Popen | None = None
        self.starts = 0
        for command in (["migrate", "--noinput"],
                        ["createsuperuser", "--noinput", "--username", "alice", "--email", "a@example.org"]):
            done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=self.env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"manage.py {command[0]} failed:\n{done.stdout}\n{done.stderr}"

    def start(self) -> str:
        self.starts += 1
        port = servers.free_port()
        self.log = self.logs / f"daphne-{self.starts}.log"
        self.process = subprocess.Popen(
            [str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "optsite.asgi:application"],
            cwd=ROOT, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        servers.wait_for_port(port, timeout=60, process=self.process)
        return f"http://127.0.0.1:{port}"

    def stop(self, sig=signal.SIGTERM) -> None:
        self.process.send_signal(sig)
        self.process.wait(30)

    def row(self, run_id: int) -> tuple:
        with sqlite3.connect(self.db, timeout=20) as db:
            return db.execute("SELECT status, n_steps, lease_holder FROM runs_run WHERE id = ?", (run_id,)).fetchone()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path)
    yield site
    if site.process is not None and site.process.poll() is None:
        site.stop()


def launch_and_cut(site: Site, sig) -> tuple[int, int]:
    """Launch SPEC, let it run a while, end the server with `sig`; returns (run id, worker pid)."""
    base = site.start()
    alice = Client(base, "alice", PASSWORD)
    launcher = alice.socket(base, "/ws/runs/")
    launcher.send({"type": "start", "spec": SPEC})
    _, got = launcher.until("status", status="running")
    run = got[-1]["run"]
    worker = int(run["worker"].rsplit(":", 1)[1])
    while not seqs(launcher.received) or seqs(launcher.received)[-1] < 300:
        launcher.next()
    site.stop(sig)
    launcher.close()
    return run["id"], worker


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["term", "int", "kill"])
def test_a_server_that_goes_away_interrupts_its_runs_and_the_next_one_resumes_them(site, sig):
    reference = uninterrupted()
    run_id, worker = launch_and_cut(site, sig)
    # Its worker wrote what it had computed, let the run go and ended with the server.
    assert wait_until(lambda: not alive(worker), timeout=15), "the worker outlived its server"
    status, cut_at, holder = site.row(run_id)
    assert (status, holder) == ("interrupted", "") and 300 <= cut_at < len(reference[0])

    base = site.start()
    alice = Client(base, "alice", PASSWORD)
    watcher = alice.socket(base, f"/ws/runs/{run_id}/?after=-1")
    _, messages = watcher.until("finished", timeout=60, status="finished")
    final = messages[-1]["run"]
    assert seqs(watcher.received) == list(range(final["n_steps"]))  # stored, then live: no gap, no repeat
    stored = alice.get(base, f"/api/runs/{run_id}/steps/?limit=100000")["steps"]
    assert [no_elapsed(s) for s in stored] == reference[0]
    assert final["result"] == reference[1]
    assert steps(watcher.received) == stored
    watcher.close()
