"""External runs (runs/external_runs.py, /ws/runs/external/) against a real daphne: a client in this
process steps optsite's own stepper on a plain Python function and streams the steps; what is stored
is exactly what scipy computes, watchers see it live, controls reach the client, a closed socket
leaves the run interrupted and a new socket attaches to it; everything that is not right is refused
in words with nothing stored changed. The recovery paths never queue an external run."""

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from django.utils import timezone

from runs.optim import make_stepper, validate_spec
from runs.optim.external import bind, wire_step
from runs.optim.oracle import scipy_reference
from tests import servers
from tests.live_client import BULKY, Client

DAPHNE = Path(sys.executable).with_name("daphne")
PASSWORD = "steps from my own process"
INGEST = "/ws/runs/external/"
RETRY_SECONDS = 5

pytestmark = pytest.mark.skipif(not DAPHNE.exists(), reason=f"no daphne next to {sys.executable}")


def rosen(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def rosen_grad(x):
    return np.array([-2.0 * (1.0 - x[0]) - 400.0 * x[0] * (x[1] - x[0] ** 2), 200.0 * (x[1] - x[0] ** 2)])


def shifted(x):
    return float(np.sum((np.asarray(x) - np.array([0.3, -0.7, 1.1])) ** 2)) + 0.5


LBFGSB = {"method": "lbfgsb", "problem": "external", "dim": 2, "x0": [-1.2, 1.0], "options": {"jac": "analytic"},
          "external": {"title": "Rosenbrock by hand", "gradient": True, "hessian": False}}
DE = {"method": "de", "problem": "external", "dim": 3, "bounds": [[-2, 2]] * 3,
      "options": {"seed": 3, "maxiter": 30, "popsize": 6},
      "external": {"title": "a shifted quadratic", "gradient": False, "hessian": False}}


def stepper_of(data):
    spec = validate_spec(data)
    if data["method"] == "de":
        return spec, make_stepper(bind(spec, shifted))
    return spec, make_stepper(bind(spec, rosen, rosen_grad))


@pytest.fixture(scope="module")
def server():
    # A short busy timeout and time to try again: a test holds SQLite's write lock to make the
    # storage fail a moment, or for longer than a socket tries.
    env = {"OPTSITE_SQLITE_BUSY_TIMEOUT": "1", "OPTSITE_STORAGE_RETRY_SECONDS": str(RETRY_SECONDS),
           "OPTSITE_STORAGE_RETRY_WAIT_MS": "200"}
    with servers.Daphne({"alice": PASSWORD, "charlie": PASSWORD}, env=env) as site:
        yield site


@pytest.fixture(scope="module")
def alice(server):
    return Client(server, "alice", PASSWORD)


@pytest.fixture(scope="module")
def charlie(server):
    return Client(server, "charlie", PASSWORD)


class Ingest:
    """The client's half as a test drives it: a socket on /ws/runs/external/, controls kept apart."""

    def __init__(self, server, user: Client):
        self.sock = user.socket(server, INGEST)
        self.controls: list[str] = []

    def reply(self, timeout=20.0) -> dict:
        """The next message that is not a control (those are kept in `controls`)."""
        deadline = time.monotonic() + timeout
        while True:
            _, message = self.sock.next(max(0.01, deadline - time.monotonic()))
            if message["type"] == "control":
                self.controls.append(message["action"])
                continue
            return message

    def ask(self, message: dict) -> dict:
        self.sock.send(message)
        return self.reply()

    def control(self, timeout=10.0) -> str:
        deadline = time.monotonic() + timeout
        while not self.controls:
            _, message = self.sock.next(max(0.01, deadline - time.monotonic()))
            assert message["type"] == "control", message
            self.controls.append(message["action"])
        return self.controls.pop(0)

    def open(self, spec, label="") -> dict:
        answer = self.ask({"type": "open", "spec": spec, "label": label})
        assert answer["type"] == "opened", answer
        return answer["run"]

    def send_steps(self, steps) -> dict:
        return self.ask({"type": "steps", "steps": [wire_step(s) for s in steps]})

    def end(self, status, result=None, error="") -> dict:
        answer = self.ask({"type": "end", "status": status, "result": result, "error": error})
        assert answer["type"] == "ended", answer
        return answer["run"]

    def close(self):
        self.sock.close()


def stream(ingest: Ingest, stepper, batch=4, until=None) -> list:
    """Step and send in batches, each acked; stop before step `until` (kept unsent). The steps sent."""
    sent, buffer = [], []
    for step in stepper:
        buffer.append(step)
        if len(buffer) == batch:
            assert ingest.send_steps(buffer) == {"type": "ack", "run_id": ingest.run_id, "next_seq": step.seq + 1}
            sent += buffer
            buffer = []
        if until is not None and step.seq + 1 >= until:
            break
    if buffer:
        assert ingest.send_steps(buffer)["next_seq"] == buffer[-1].seq + 1
        sent += buffer
    return sent


def stored_steps(server, user, run_id, bulky=False):
    return user.get(server, f"/api/runs/{run_id}/steps/?limit=10000{'&bulky=1' if bulky else ''}")["steps"]


def row(server, run_id):
    (status, n_steps, holder, requests), = server.query(
        "SELECT status, n_steps, lease_holder, control_requests FROM runs_run WHERE id = ?", run_id)
    return {"status": status, "n_steps": n_steps, "holder": holder, "requests": requests}


def step_rows(server, run_id):
    return server.query("SELECT seq, data, bulk FROM runs_step WHERE run_id = ? ORDER BY seq", run_id)


def opened(server, user, spec=LBFGSB, label=""):
    ingest = Ingest(server, user)
    run = ingest.open(spec, label)
    ingest.run_id = run["id"]
    return ingest, run


def matches_scipy(data, steps: list[dict], result: dict, objective, gradient=None, stop_at=None):
    iterates, ref = scipy_reference(validate_spec(data), objective=objective, gradient=gradient, stop_at=stop_at)
    mine = [s for s in steps if s["phase"] == "iterate"]
    assert [(s["x"], s["fun"]) for s in mine] == [(list(x), float(f)) for x, f in iterates]
    assert (result["x"], result["fun"]) == (list(ref.x), float(ref.fun))
    assert (result["nit"], result["nfev"], result["message"], result["success"]) == (
        ref.nit, ref.nfev, ref.message, bool(ref.success))


# ---- a whole run --------------------------------------------------------------------------------
def test_streamed_steps_are_stored_as_scipy_computes_them_and_watched_live(server, alice):
    ingest, run = opened(server, alice, LBFGSB, "my fit")
    assert run["status"] == "running" and run["kind"] == "external" and run["started"] and run["n_steps"] == 0
    assert run["label"] == "my fit" and run["external"]["title"] == "Rosenbrock by hand" and run["worker"] is None
    watch = alice.socket(server, f"/ws/runs/{run['id']}/")
    assert watch.next()[1]["type"] == "run"
    spec, stepper = stepper_of(LBFGSB)
    sent = stream(ingest, stepper, batch=5)
    ended = ingest.end("finished", stepper.result.to_dict())
    assert ended["status"] == "finished" and ended["finished"] and ended["n_steps"] == len(sent)
    assert ended["result"] == stepper.result.to_dict()
    stored = stored_steps(server, alice, run["id"])
    assert stored == [s.to_dict() for s in sent]  # bit for bit what the stepper made
    matches_scipy(LBFGSB, stored, ended["result"], rosen, rosen_grad)
    _, got = watch.until("finished")
    from tests.live_client import steps as live_steps

    assert live_steps(watch.received) == [{**s, "extra": {k: v for k, v in s["extra"].items() if k not in BULKY}}
                                          for s in stored]
    final = alice.get(server, f"/api/runs/{run['id']}/")
    assert final["kind"] == "external" and final["status"] == "finished" and final["best_fun"] == min(
        s["fun"] for s in stored)
    assert row(server, run["id"])["holder"] == ""  # the lease released
    ingest.close()
    watch.close()


def test_a_de_run_keeps_its_population_exactly(server, alice):
    ingest, run = opened(server, alice, DE)
    spec, stepper = stepper_of(DE)
    sent = stream(ingest, stepper, batch=7)
    ended = ingest.end("finished", stepper.result.to_dict())
    complete = stored_steps(server, alice, run["id"], bulky=True)
    assert complete == [s.to_full_dict() for s in sent]
    matches_scipy(DE, complete, ended["result"], shifted)
    ingest.close()


# ---- controls -----------------------------------------------------------------------------------
def test_pause_resume_and_stop_from_the_watch_socket_reach_the_client(server, alice):
    ingest, run = opened(server, alice)
    watch = alice.socket(server, f"/ws/runs/{run['id']}/")
    watch.next()
    spec, stepper = stepper_of(LBFGSB)
    sent = stream(ingest, stepper, batch=3, until=6)
    watch.send({"type": "pause"})
    assert ingest.control() == "pause"
    assert row(server, run["id"])["requests"] == "pause"
    ingest.sock.send({"type": "paused"})
    watch.until("status", status="paused")
    assert row(server, run["id"])["requests"] == "" and row(server, run["id"])["status"] == "paused"
    (expires,), = server.query("SELECT lease_expires FROM runs_run WHERE id = ?", run["id"])
    time.sleep(2.5)  # paused, the socket still renews the lease
    (renewed,), = server.query("SELECT lease_expires FROM runs_run WHERE id = ?", run["id"])
    assert renewed > expires
    watch.send({"type": "resume"})
    assert ingest.control() == "resume"
    ingest.sock.send({"type": "resumed"})
    watch.until("status", status="running")
    watch.send({"type": "stop"})
    assert ingest.control() == "stop"
    stepper.request_stop()
    sent += stream(ingest, stepper, batch=3)
    ended = ingest.end("stopped", stepper.result.to_dict())
    assert ended["status"] == "stopped" and ended["result"]["stopped"] and not ended["stopping"]
    watch.until("finished", status="stopped")
    assert stored_steps(server, alice, run["id"]) == [s.to_dict() for s in sent]
    nit = max(s.nit for s in sent)
    matches_scipy(LBFGSB, stored_steps(server, alice, run["id"]), ended["result"], rosen, rosen_grad, stop_at=nit)
    ingest.close()
    watch.close()


def test_a_pause_taken_back_before_the_client_obeyed_tells_it_to_go_on(server, alice):
    ingest, run = opened(server, alice)
    watch = alice.socket(server, f"/ws/runs/{run['id']}/")
    watch.next()
    watch.send({"type": "pause"})
    assert ingest.control() == "pause"
    watch.send({"type": "resume"})
    assert ingest.control() == "resume"
    assert row(server, run["id"]) == {"status": "running", "n_steps": 0, "holder": row(server, run["id"])["holder"],
                                      "requests": ""}
    ingest.end("failed", None, "my function raised ValueError")
    ingest.close()
    watch.close()


# ---- a socket that goes away, and one that comes back -------------------------------------------
def test_a_closed_socket_leaves_the_run_interrupted_and_a_new_one_goes_on_from_next_seq(server, alice):
    ingest, run = opened(server, alice)
    watch = alice.socket(server, f"/ws/runs/{run['id']}/")
    watch.next()
    spec, stepper = stepper_of(LBFGSB)
    sent = stream(ingest, stepper, batch=4, until=8)
    ingest.close()
    _, got = watch.until("finished", status="interrupted")
    assert row(server, run["id"])["holder"] == "" and row(server, run["id"])["n_steps"] == 8
    # resume pressed on the page: refused, in words
    watch.send({"type": "resume"})
    _, error = watch.next()
    assert error["code"] == "conflict" and error["message"] == (
        f"Run {run['id']} is computed in its owner's Python process; it goes on when that process reconnects.")
    again = Ingest(server, alice)
    again.run_id = run["id"]
    attached = again.ask({"type": "attach", "run_id": run["id"]})
    assert attached["type"] == "attached" and attached["next_seq"] == 8 and attached["run"]["status"] == "running"
    watch.until("status", status="running")
    # a resend of acked steps is skipped; a gap is refused, with nothing stored
    assert again.send_steps(sent[5:]) == {"type": "ack", "run_id": run["id"], "next_seq": 8}
    rest = [next(stepper) for _ in range(3)]
    before = step_rows(server, run["id"])
    error = again.send_steps(rest[1:])
    assert error["type"] == "error" and error["code"] == "bad_message"
    assert error["message"].startswith("Step 9 was sent where 8 was due")
    assert step_rows(server, run["id"]) == before
    assert again.send_steps(sent[6:] + rest)["next_seq"] == 11
    sent += rest
    sent += stream(again, stepper, batch=10)
    ended = again.end("finished", stepper.result.to_dict())
    stored = stored_steps(server, alice, run["id"])
    assert stored == [s.to_dict() for s in sent]
    matches_scipy(LBFGSB, stored, ended["result"], rosen, rosen_grad)
    # ended: a later attach is refused with the run as stored
    late = Ingest(server, alice)
    refused = late.ask({"type": "attach", "run_id": run["id"]})
    assert refused["code"] == "conflict" and refused["run"]["status"] == "finished"
    for s in (again, late, watch):
        s.close()


def test_an_attach_takes_the_run_from_the_socket_that_held_it(server, alice):
    first, run = opened(server, alice)
    spec, stepper = stepper_of(LBFGSB)
    stream(first, stepper, batch=2, until=2)
    second = Ingest(server, alice)
    assert second.ask({"type": "attach", "run_id": run["id"]})["next_seq"] == 2
    refused = first.send_steps([next(stepper)])
    assert refused["code"] == "conflict" and "held by another connection" in refused["message"]
    assert row(server, run["id"])["n_steps"] == 2
    first.close()
    time.sleep(0.5)
    assert row(server, run["id"])["status"] == "running"  # the old socket's close interrupts nothing
    second.end("failed", None, "")
    assert alice.get(server, f"/api/runs/{run['id']}/")["error"] == "The run failed in its owner's Python process."
    second.close()


def test_stop_pressed_on_an_interrupted_run_is_told_at_attach(server, alice):
    ingest, run = opened(server, alice)
    spec, stepper = stepper_of(LBFGSB)
    sent = stream(ingest, stepper, batch=3, until=3)
    ingest.close()
    deadline = time.monotonic() + 10
    while row(server, run["id"])["status"] != "interrupted":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    watch = alice.socket(server, f"/ws/runs/{run['id']}/")
    watch.next()
    watch.send({"type": "stop"})
    _, status = watch.until("status")
    assert status[-1]["run"]["stopping"] and status[-1]["run"]["status"] == "interrupted"
    again = Ingest(server, alice)
    again.run_id = run["id"]
    assert again.ask({"type": "attach", "run_id": run["id"]})["next_seq"] == 3
    assert again.control() == "stop"
    stepper.request_stop()
    sent += stream(again, stepper)
    assert again.end("stopped", stepper.result.to_dict())["status"] == "stopped"
    again.close()
    watch.close()


# ---- refusals -----------------------------------------------------------------------------------
def test_another_users_run_is_not_found_and_a_hosted_run_is_no_external_one(server, alice, charlie):
    ingest, run = opened(server, alice)
    theirs = Ingest(server, charlie)
    refused = theirs.ask({"type": "attach", "run_id": run["id"]})
    assert refused["code"] == "not_found" and "run" not in refused and "Rosenbrock" not in json.dumps(refused)
    assert theirs.ask({"type": "attach", "run_id": 10 ** 30})["code"] == "bad_message"
    assert theirs.ask({"type": "attach", "run_id": 999999})["code"] == "not_found"
    launch = charlie.socket(server, "/ws/runs/")
    launch.send({"type": "start", "spec": {"method": "lbfgsb", "problem": "sphere", "x0": [1, 1]}})
    _, got = launch.until("finished")
    hosted = got[0]["run"]["id"]
    assert got[0]["run"]["kind"] == "server"
    refused = theirs.ask({"type": "attach", "run_id": hosted})
    assert refused["code"] == "conflict" and "not an external run" in refused["message"]
    ingest.end("failed", None, "done")
    for s in (ingest, theirs, launch):
        s.close()


def test_normal_launch_paths_refuse_an_external_spec_in_words(server, alice):
    launch = alice.socket(server, "/ws/runs/")
    launch.send({"type": "start", "spec": LBFGSB})
    _, error = launch.next()
    assert error["type"] == "error" and error["code"] == "invalid_spec"
    assert error["message"].startswith("An external run is made by the Python client (Client.minimize")
    assert not server.query("SELECT id FROM runs_run WHERE status = 'queued'")
    launch.close()
    ingest = Ingest(server, alice)
    refused = ingest.ask({"type": "open", "spec": {"method": "lbfgsb", "problem": "sphere", "x0": [1, 1]}})
    assert refused["code"] == "invalid_spec" and "external runs only" in refused["message"]
    ingest.close()


def test_a_second_open_while_a_run_is_held_is_a_conflict(server, alice):
    ingest, run = opened(server, alice)
    refused = ingest.ask({"type": "open", "spec": LBFGSB})
    assert refused["code"] == "conflict" and f"holds run {run['id']}" in refused["message"]
    refused = ingest.ask({"type": "attach", "run_id": run["id"] + 1000})
    assert refused["code"] == "conflict"
    ingest.end("failed", None, "x")
    assert ingest.open(LBFGSB)["id"] > run["id"]  # ended: the socket opens another
    ingest.close()


def _bad_inputs(step0: dict):
    """(name, frame text) a client might send; each is refused and changes nothing."""
    def steps(*items):
        return json.dumps({"type": "steps", "steps": list(items)})

    wrong_x = {**step0, "x": [0.0, 0.0, 0.0]}
    deep = "[" * 500 + "]" * 500
    return [
        ("not json", "{this is not json"),
        ("not an object", "[1, 2, 3]"),
        ("no type", json.dumps({"steps": []})),
        ("unknown type", json.dumps({"type": "launch"})),
        ("steps not a list", json.dumps({"type": "steps", "steps": {"seq": 0}})),
        ("seq missing", steps({k: v for k, v in step0.items() if k != "seq"})),
        ("seq a string", steps({**step0, "seq": "0"})),
        ("seq a bool", steps({**step0, "seq": True})),
        ("x of wrong length", steps(wrong_x)),
        ("x not numbers", steps({**step0, "x": ["a", "b"]})),
        ("fun a string", steps({**step0, "fun": "1.5"})),
        ("NaN text", '{"type": "steps", "steps": [' + json.dumps(step0).replace('"fun": ' + json.dumps(step0["fun"]),
                                                                               '"fun": NaN') + "]}"),
        ("Infinity", json.dumps({"type": "steps", "steps": [step0]}).replace(json.dumps(step0["fun"]), "Infinity", 1)),
        ("huge number", json.dumps({"type": "steps", "steps": [step0]}).replace(
            json.dumps(step0["fun"]), "1e999999", 1)),
        ("huge integer", steps({**step0, "nfev": 10 ** 40})),
        ("deep nesting", '{"type": "steps", "steps": ' + deep + "}"),
        ("deep extra", steps({**step0, "extra": {"a": {"b": {"c": {"d": {"e": 1}}}}}})),
        ("bad phase", steps({**step0, "phase": "warmup"})),
        ("bulky not arrays", steps({**step0, "bulky": {"population": "lots"}})),
        ("jac of wrong length", steps({**step0, "jac": [1.0]})),
        ("negative elapsed", steps({**step0, "elapsed": -1.0})),
        ("unknown field", steps({**step0, "secret": 1})),
        ("gap", steps({**step0, "seq": 5})),
        ("end bad status", json.dumps({"type": "end", "status": "done"})),
        ("end finished without result", json.dumps({"type": "end", "status": "finished", "result": None})),
        ("end bad result", json.dumps({"type": "end", "status": "stopped", "result": {"x": [1]}})),
        ("end error not text", json.dumps({"type": "end", "status": "failed", "error": {"a": 1}})),
        ("attach no id", json.dumps({"type": "attach"})),
        ("lone surrogate", '{"type": "open", "spec": {}, "label": "\\ud800"}'),
    ]


def test_bad_input_is_refused_in_words_and_changes_nothing_stored(server, alice):
    ingest, run = opened(server, alice)
    spec, stepper = stepper_of(LBFGSB)
    first = next(stepper)
    step0 = wire_step(first)
    before = (row(server, run["id"]), step_rows(server, run["id"]))
    for name, text in _bad_inputs(step0):
        ingest.sock.send_text(text)
        answer = ingest.reply()
        assert answer["type"] == "error", (name, answer)
        assert answer["code"] == "bad_message", (name, answer)
        assert answer["message"] and len(answer["message"]) < 2000 and "Traceback" not in answer["message"], name
        assert "could not handle" not in answer["message"], (name, answer)  # each refused for what it is
        assert (row(server, run["id"]), step_rows(server, run["id"])) == before, name
    ingest.sock.send_bytes(b"\x00\x01")
    assert ingest.reply()["code"] == "bad_message"
    # after all that, the socket is open and the run takes its first step
    assert ingest.send_steps([first])["next_seq"] == 1
    ingest.end("failed", None, "enough")
    log = server.log()
    assert "Traceback" not in log and " 500 " not in log, log[-3000:]
    ingest.close()


def test_a_message_over_the_limit_is_refused_by_the_server_and_the_run_kept(server, alice):
    ingest, run = opened(server, alice)
    spec, stepper = stepper_of(LBFGSB)
    sent = stream(ingest, stepper, batch=2, until=2)
    before = step_rows(server, run["id"])
    ingest.sock.send_text(json.dumps({"type": "steps", "steps": [], "pad": "x" * (2 * 2 ** 20)}))
    _, message = ingest.sock.next()
    # daphne takes no message over 1 MiB: it fails the connection (code 1009, "message too big", or a
    # reset while the client is still sending) before the application sees it
    assert message["type"] == "closed" and message["code"] in (1009, None), message
    deadline = time.monotonic() + 10
    while row(server, run["id"])["status"] != "interrupted":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert step_rows(server, run["id"]) == before
    again = Ingest(server, alice)
    again.run_id = run["id"]
    assert again.ask({"type": "attach", "run_id": run["id"]})["next_seq"] == len(sent)
    again.end("failed", None, "x")
    again.close()


def test_a_batch_written_while_the_storage_fails_is_stored_once_it_takes_writes_again(server, alice):
    ingest, run = opened(server, alice)
    spec, stepper = stepper_of(LBFGSB)
    batch = [next(stepper) for _ in range(3)]
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock():
        with servers.sqlite_write_lock(server.db):
            locked.set()
            release.wait(30)
    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    locked.wait(10)
    ingest.sock.send({"type": "steps", "steps": [wire_step(s) for s in batch]})
    assert ingest.sock.quiet(3.0) == []  # tried again meanwhile; no answer yet, and no error
    release.set()
    holder.join()
    assert ingest.reply() == {"type": "ack", "run_id": run["id"], "next_seq": 3}
    assert stored_steps(server, alice, run["id"]) == [s.to_dict() for s in batch]
    assert "external socket: could not write: the database" in server.log()
    ingest.end("failed", None, "x")
    ingest.close()


def test_a_socket_whose_writes_the_storage_will_not_take_closes_and_the_client_attaches_later(server, alice):
    ingest, run = opened(server, alice)
    spec, stepper = stepper_of(LBFGSB)
    sent = stream(ingest, stepper, batch=2, until=2)
    batch = [next(stepper) for _ in range(2)]
    with servers.sqlite_write_lock(server.db):
        ingest.sock.send({"type": "steps", "steps": [wire_step(s) for s in batch]})
        _, closed = ingest.sock.next(timeout=RETRY_SECONDS + 20)
        assert closed == {"type": "closed", "code": 4503, "why": "close frame"}, closed
    assert row(server, run["id"])["n_steps"] == 2
    again = Ingest(server, alice)
    again.run_id = run["id"]
    assert again.ask({"type": "attach", "run_id": run["id"]})["next_seq"] == 2
    assert again.send_steps(batch)["next_seq"] == 4
    sent += batch
    sent += stream(again, stepper, batch=8)
    ended = again.end("finished", stepper.result.to_dict())
    stored = stored_steps(server, alice, run["id"])
    assert stored == [s.to_dict() for s in sent]
    matches_scipy(LBFGSB, stored, ended["result"], rosen, rosen_grad)
    again.close()


# ---- in this process: the services, the recovery paths, the socket's own bound ------------------
def external_row(owner, **fields):
    from runs.models import Run

    spec = validate_spec(LBFGSB).to_dict()
    return Run.objects.create(owner=owner, method="lbfgsb", problem="external", spec=spec, **fields)


@pytest.fixture
def dora(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("dora", "dora@example.org", PASSWORD)


def test_the_one_launch_path_refuses_an_external_spec(dora):
    from runs import services
    from runs.models import Run

    with pytest.raises(services.ServiceError) as refused:
        services.launch(owner=dora, data=LBFGSB)
    assert refused.value.code == "invalid_spec" and "Client.minimize" in refused.value.message
    assert refused.value.errors["problem"]
    assert not Run.objects.exists()


def test_recovery_and_the_monitor_interrupt_an_external_run_and_never_queue_it(dora, settings):
    from datetime import timedelta

    from runs import recovery
    from runs.models import Run
    from runs.run_objects import load_run_dict

    settings.OPTSITE_AUTO_RESUME = True
    past = timezone.now() - timedelta(seconds=30)
    running = external_row(dora, status="running", lease_holder="socket@gone:1/a", lease_expires=past, n_steps=4)
    paused = external_row(dora, status="paused", lease_holder="socket@gone:1/b", lease_expires=past, n_steps=2,
                          control_requests="stop")
    waiting = external_row(dora, status="interrupted", n_steps=0)  # nothing done yet: a hosted one would go on
    queued = []
    assert sorted(recovery.sweep(enqueue=queued.append)) == sorted([running.pk, paused.pk])
    assert recovery.resume_left_behind(enqueue=queued.append) == [] and queued == []
    for run in (running, paused, waiting):
        run.refresh_from_db()
        assert run.status == Run.Status.INTERRUPTED and run.lease_holder == "" and run.queued_at is None
        assert load_run_dict(run.pk)["auto_resume"] is False
    assert paused.control_requests == "stop"  # a stop waits for the client's attach


def test_controls_on_an_interrupted_external_run(dora):
    from runs import services
    from runs.models import Run

    run = external_row(dora, status="interrupted", n_steps=3)
    with pytest.raises(services.ServiceError) as refused:
        services.resume_run(user=dora, run_id=run.pk)
    assert refused.value.code == "conflict" and refused.value.message == (
        f"Run {run.pk} is computed in its owner's Python process; it goes on when that process reconnects.")
    with pytest.raises(services.ServiceError):
        services.pause_run(user=dora, run_id=run.pk)
    accepted, payload = services.stop_run(user=dora, run_id=run.pk)
    assert accepted and payload["status"] == "interrupted" and payload["stopping"]
    assert services.stop_run(user=dora, run_id=run.pk)[0] is False  # asked already
    run.refresh_from_db()
    assert (run.status, run.control_requests, run.queued_at) == (Run.Status.INTERRUPTED, "stop", None)


def test_external_runs_count_against_the_cap_at_open_and_at_attach(dora, settings):
    from runs import external_runs, services

    settings.OPTSITE_MAX_CONCURRENT_RUNS = 1
    interrupted = external_row(dora, status="interrupted", n_steps=1)
    holding, run = external_runs.open_run(owner=dora, data=LBFGSB, label="", holder="socket@here:1/x")
    assert run["status"] == "running"
    with pytest.raises(services.ServiceError) as refused:
        external_runs.open_run(owner=dora, data=LBFGSB, label="", holder="socket@here:1/y")
    assert refused.value.code == "limit"
    with pytest.raises(services.ServiceError) as refused:
        external_runs.attach_run(owner=dora, run_id=interrupted.pk, holder="socket@here:1/y")
    assert refused.value.code == "limit"
    external_runs.end_run(holding, status="failed", result=None, error="")
    attached, run, controls = external_runs.attach_run(owner=dora, run_id=interrupted.pk, holder="socket@here:1/y")
    assert run["status"] == "running" and attached.next_seq == 1 and controls == []


@pytest.mark.django_db(transaction=True)
async def test_the_socket_itself_refuses_a_message_over_1_mib_and_stays_open(dora):
    from channels.db import database_sync_to_async

    from runs.models import Run
    from tests.conftest import communicator

    comm = await database_sync_to_async(communicator)(INGEST, dora)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_to(text_data=json.dumps({"type": "steps", "steps": [], "pad": "é" * (2 ** 19 + 10)}))
    error = await comm.receive_json_from(timeout=10)
    assert error["code"] == "bad_message" and "larger than 1 MiB" in error["message"]
    await comm.send_json_to({"type": "open", "spec": LBFGSB})
    opened = await comm.receive_json_from(timeout=10)
    assert opened["type"] == "opened"
    await comm.disconnect()
    status = await database_sync_to_async(lambda: Run.objects.get(pk=opened["run"]["id"]).status)()
    assert status == "interrupted"  # closed without "end"


def test_a_deleted_run_takes_no_more_steps_and_its_socket_is_told_why(dora):
    from runs import external_runs, services
    from runs.models import Run, Step

    holding, run = external_runs.open_run(owner=dora, data=LBFGSB, label="", holder="socket@here:1/z")
    spec, stepper = stepper_of(LBFGSB)
    assert external_runs.write_steps(holding, [wire_step(next(stepper)) for _ in range(2)]) == 2
    services.delete_run(run=Run.objects.get(pk=run["id"]))
    with pytest.raises(external_runs.Lost) as lost:
        external_runs.write_steps(holding, [wire_step(next(stepper))])
    assert lost.value.code == "not_found" and "was deleted" in lost.value.message
    assert not Step.objects.exists()
    with pytest.raises(external_runs.Lost):
        external_runs.look(holding)
    external_runs.interrupt_on_close(holding)  # nothing to interrupt: no error


def test_a_run_interrupted_under_a_live_socket_is_to_be_attached_again(dora):
    from datetime import timedelta

    from runs import external_runs, leases
    from runs.models import Run

    holding, run = external_runs.open_run(owner=dora, data=LBFGSB, label="", holder="socket@here:1/w")
    spec, stepper = stepper_of(LBFGSB)
    assert external_runs.write_steps(holding, [wire_step(next(stepper))]) == 1
    # the socket's renewals did not reach the database for a lease's length: the monitor gives up on it
    Run.objects.filter(pk=run["id"]).update(lease_expires=timezone.now() - timedelta(seconds=1))
    assert leases.interrupt_expired() == [run["id"]]
    with pytest.raises(external_runs.Lost) as lost:
        external_runs.write_steps(holding, [wire_step(next(stepper))])
    assert lost.value.reconnect and "Attach it again" in lost.value.message
    again, payload, _ = external_runs.attach_run(owner=dora, run_id=run["id"], holder="socket@here:1/v")
    assert payload["status"] == "running" and again.next_seq == 1


def test_external_runs_of_one_function_share_a_landscape_on_the_compare_page():
    """One title is one function (the server has no f to tell them apart): L-BFGS-B with the user's
    gradient and DE without it are drawn on one plot; another title is another function."""
    from runs import comparison
    from runs.models import Run

    def run(method, title, gradient):
        return Run(method=method, problem="external", spec={
            "method": method, "problem": "external", "params": {}, "dim": 5,
            "external": {"title": title, "gradient": gradient, "hessian": False}})
    fit = comparison.landscape(run("lbfgsb", "damped oscillation fit", True))
    assert comparison.landscape(run("de", "damped oscillation fit", False)) == fit
    assert comparison.landscape(run("de", "another model", False)) != fit
