"""The Python client (client/optsite_client) against a real daphne with its worker pool: catalogues,
a DE run launched and read live (equal to the stored steps and to scipy's own run), controls,
paging, exports, studies, refusals in the server's words, and a live iterator that outlives a
restart of the server without missing or repeating a step."""

import csv
import io
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runs.optim import validate_spec
from runs.optim.oracle import scipy_reference
from tests import servers
from tests.live_client import BULKY
from tests.live_client import Client as Browser

# The package is used from its folder, as `pip install ./client` would make it importable: the
# test installs nothing.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "client"))
from optsite_client import (BadAnswer, Client, Conflict, Invalid, NotFound, OptsiteError,  # noqa: E402
                            Unauthorized, Unreachable)

DAPHNE = Path(sys.executable).with_name("daphne")
PASSWORD = "a client of its own"
NEW_TOKEN = re.compile(r'id="new-token" type="text" value="([^"]+)"')

pytestmark = pytest.mark.skipif(not DAPHNE.exists(), reason=f"no daphne next to {sys.executable}")

SHORT = {"method": "de", "problem": "rosenbrock", "bounds": [[-2, 2], [-2, 2]], "options": {"maxiter": 40, "seed": 1}}
# 10-D Rosenbrock, 50 members, no convergence test: 2,000 generations, a few seconds of computing.
LONG = {"method": "de", "problem": "rosenbrock", "dim": 10, "bounds": [[-5, 5]] * 10,
        "options": {"maxiter": 2000, "tol": 0, "seed": 11, "popsize": 5, "strategy": "rand1bin"}}
STUDY = {"problem": "sphere", "dim": 2, "x0": [1.5, -0.5], "repeats": 2, "configs": [{"method": "lbfgsb"}]}


@pytest.fixture(scope="module")
def server():
    # The monitor resumes the runs a stopped server left interrupted, as in production.
    with servers.Daphne({"alice": PASSWORD, "bob": PASSWORD}, env={"OPTSITE_RUN_MONITOR": "1"}) as site:
        yield site


def make_token(server, user: str, name: str) -> str:
    """A token made as its owner makes one: logged in, on the account page."""
    browser = Browser(server, user, PASSWORD)
    form = urllib.parse.urlencode({"name": name, "csrfmiddlewaretoken": browser.cookie("csrftoken")})
    with browser.opener.open(server.http + "/accounts/tokens/", data=form.encode(), timeout=10) as reply:
        return NEW_TOKEN.search(reply.read().decode()).group(1)


def revoke_token(server, user: str, name: str) -> None:
    (token_id,), = server.query("SELECT id FROM runs_apitoken WHERE name = ?", name)
    browser = Browser(server, user, PASSWORD)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": browser.cookie("csrftoken")})
    browser.opener.open(f"{server.http}/accounts/tokens/{token_id}/revoke/", data=form.encode(), timeout=10).read()


@pytest.fixture(scope="module")
def alice(server):
    return Client(server.http, make_token(server, "alice", "alice's notebook"))


@pytest.fixture(scope="module")
def bob(server):
    return Client(server.http, make_token(server, "bob", "bob's notebook"))


@pytest.fixture(scope="module")
def short_run(alice):
    """SHORT launched and read live to its end: (its live steps, its final Run)."""
    run = alice.launch(SHORT, label="from the client")
    assert run.status == "queued" and run.id > 0
    live = list(run.steps())
    return live, run.run


def light(steps):
    return [{**s, "extra": {k: v for k, v in s["extra"].items() if k not in BULKY}} for s in steps]


def matches_scipy(spec, steps, result, stop_at=None):
    iterates, ref = scipy_reference(validate_spec(spec), stop_at=stop_at)
    mine = [s for s in steps if s["phase"] == "iterate"]
    assert [(s["x"], s["fun"]) for s in mine] == [(list(x), float(f)) for x, f in iterates]
    assert (result["x"], result["fun"]) == (list(ref.x), float(ref.fun))
    assert (result["nfev"], result["nit"]) == (ref.nfev, ref.nit)
    assert (result["message"], result["success"]) == (ref.message, bool(ref.success))


def test_problems_and_methods_are_the_catalogues_a_session_reads(server, alice):
    browser = Browser(server, "alice", PASSWORD)
    problems, methods = alice.problems(), alice.methods()
    assert problems == browser.get(server, "/api/problems/") and methods == browser.get(server, "/api/methods/")
    assert {"rosenbrock", "sphere"} <= {p["name"] for p in problems}
    assert {"de", "lbfgsb"} <= {m["name"] for m in methods}


def test_a_launched_run_is_read_live_once_each_step_equal_to_the_stored_steps_and_to_scipy(alice, short_run):
    live, final = short_run
    assert final["status"] == "finished" and final["label"] == "from the client"
    assert [s["seq"] for s in live] == list(range(final["n_steps"]))
    stored = list(alice.steps(final["id"]))
    assert light(live) == stored
    matches_scipy(SHORT, stored, final["result"])
    assert alice.run(final["id"])["result"] == final["result"]
    assert [r["id"] for r in alice.runs(limit=50)].count(final["id"]) == 1
    assert len(alice.runs(limit=1)) == 1
    # an ended run watched: every stored step, then the end
    watched = alice.watch(final["id"])
    assert light(watched.steps()) == stored and watched.status == "finished"
    assert watched.wait()["result"] == final["result"]
    again = alice.watch(final["id"], after=30)
    assert [s["seq"] for s in again.steps()] == list(range(31, final["n_steps"]))


def test_steps_are_paged_through_in_order_and_complete_steps_on_request(alice, short_run):
    live, final = short_run
    run_id, n = final["id"], final["n_steps"]
    assert n > 40
    stored = list(alice.steps(run_id))
    assert list(alice.steps(run_id, page_size=7)) == stored  # seven pages
    assert list(alice.steps(run_id, after=19, page_size=10)) == stored[20:]
    assert list(alice.steps(run_id, after=n - 1)) == []
    complete = list(alice.steps(run_id, bulky=True, page_size=16))
    assert [alice.step(run_id, s["seq"]) for s in stored[:3]] == complete[:3]
    assert alice.step(run_id) == complete[-1] and "population" in complete[-1]["extra"]
    assert light(complete) == stored


def test_export_json_and_steps_csv_hold_every_stored_step(alice, short_run):
    _, final = short_run
    run_id = final["id"]
    export = alice.export_json(run_id)
    assert export["run"]["id"] == run_id and export["result"] == final["result"]
    assert export["steps"] == list(alice.steps(run_id, bulky=True))
    rows = list(csv.DictReader(io.StringIO(alice.steps_csv(run_id))))
    stored = list(alice.steps(run_id))
    assert [int(r["seq"]) for r in rows] == [s["seq"] for s in stored]
    assert [float(r["fun"]) for r in rows] == [s["fun"] for s in stored]  # repr: every digit
    assert [[float(r[f"x_{i}"]) for i in range(2)] for r in rows] == [s["x"] for s in stored]


def test_pause_resume_and_stop_take_effect_and_the_steps_go_on_without_a_gap(alice):
    run = alice.launch(LONG)
    seen, paused, resumed, stopped = [], None, None, None
    for step in run.steps():
        seen.append(step)
        if paused is None and step["seq"] >= 20:
            paused = run.pause()
            assert paused["status"] == "paused" and run.status == "paused"
            at_pause = paused["n_steps"]
            assert alice.run(run.id)["n_steps"] == at_pause  # a paused run computes nothing
            resumed = run.resume()
            assert resumed["status"] in ("queued", "running")
        elif resumed is not None and stopped is None and step["seq"] >= at_pause + 40:
            stopped = run.stop()
            assert stopped["status"] == "stopped"
    final = run.run
    assert final["status"] == "stopped" and final["result"]["stopped"] is True
    assert final["n_steps"] < 2000  # it did not run to its end
    assert [s["seq"] for s in seen] == list(range(final["n_steps"]))
    stored = list(alice.steps(run.id))
    assert light(seen) == stored
    # stopped where scipy's own callback asked it to stop: same iterates, same result, polish included
    matches_scipy(LONG, stored, final["result"], stop_at=final["result"]["nit"])
    with pytest.raises(Conflict) as ended:
        run.pause()
    assert ended.value.code == "conflict" and ended.value.message, ended.value


def test_a_watcher_whose_socket_goes_quiet_reconnects_and_misses_nothing(server, alice):
    run = alice.launch(LONG)
    next(run.steps())
    at_pause = run.pause()["n_steps"]
    # Nothing comes from a paused run: with a timeout under the server's 20 s pings, the watcher
    # takes the silence for a dead connection and reconnects from where it is, again and again.
    quiet = Client(server.http, alice.token, timeout=0.4).watch(run.id)
    resumer = threading.Timer(2.0, lambda: alice.watch(run.id).resume())
    resumer.start()
    seen = []
    for step in quiet.steps():
        seen.append(step["seq"])
        if step["seq"] == at_pause + 50:
            assert quiet.stop()["status"] == "stopped"  # a control on the watch socket
    resumer.join()
    assert quiet.reconnects >= 3 and quiet.status == "stopped"
    assert seen == list(range(quiet.run["n_steps"]))
    run.close()


def test_an_invalid_spec_is_refused_with_the_servers_words_at_each_field(alice):
    with pytest.raises(Invalid) as refused:
        alice.launch({"method": "de", "problem": "rosenbrock", "bounds": [[3, 1], [-2, 2]],
                      "options": {"maxiter": -4}})
    error = refused.value
    assert error.code == "invalid_spec" and error.message.startswith("The run spec is invalid")
    assert {"bounds[0]", "options.maxiter"} <= set(error.errors) and all(error.errors.values())
    with pytest.raises(Invalid) as refused:
        alice.launch({"method": "no such method", "problem": "rosenbrock"})
    assert "method" in refused.value.errors
    with pytest.raises(Invalid) as refused:
        alice.launch({**SHORT, "x0": [float("nan"), 0.0]})  # never leaves this machine
    assert "spec" in refused.value.errors
    with pytest.raises(Invalid) as refused:
        alice.create_study({**STUDY, "repeats": 0})
    assert refused.value.code == "invalid_spec" and "repeats" in refused.value.errors
    with pytest.raises(Invalid) as refused:
        alice.steps(1, after=-2)
    assert "after" in refused.value.errors


def test_another_users_run_and_study_are_not_found_as_missing_ones_are(alice, bob, short_run):
    _, final = short_run
    run_id = final["id"]
    for call in (lambda: bob.run(run_id), lambda: bob.steps(run_id), lambda: bob.export_json(run_id),
                 lambda: bob.steps_csv(run_id), lambda: bob.step(run_id), lambda: bob.watch(run_id)):
        with pytest.raises(NotFound) as missing:
            call()
        assert f"run {run_id}" in missing.value.message, missing.value.message
    with pytest.raises(NotFound) as missing:
        bob.run(10**9)
    assert missing.value.message == f"There is no run {10**9} of yours."
    assert bob.runs() == []


def test_a_revoked_token_is_unauthorized_in_words_over_http_and_on_a_live_socket(server, alice):
    text = make_token(server, "alice", "soon revoked")
    script = Client(server.http, text)
    run = script.launch(LONG)
    steps = run.steps()
    for step in steps:
        if step["seq"] >= 10:
            break
    revoke_token(server, "alice", "soon revoked")
    with pytest.raises(Unauthorized) as refused:
        for step in steps:
            pass
    assert "revoked" in refused.value.message and text not in str(refused.value)
    with pytest.raises(Unauthorized) as refused:
        script.runs()
    assert refused.value.status == 401 and "revoked" in refused.value.message and text not in str(refused.value)
    with pytest.raises(Unauthorized) as refused:
        script.watch(run.id)  # the handshake is refused; the JSON API says why
    assert "revoked" in refused.value.message
    assert alice.watch(run.id).stop()["status"] == "stopped"  # another token of the owner's still works


def test_a_study_is_created_followed_summarized_and_refused_a_control_once_ended(alice, bob):
    study = alice.create_study(STUDY)
    assert study["problem"] == "sphere" and len(study["runs"]) == 2
    deadline = time.monotonic() + 60
    while (detail := alice.study(study["id"]))["status"] != "ended":
        assert time.monotonic() < deadline, detail["counts"]
        time.sleep(0.2)
    assert [r["status"] for r in detail["run_list"]] == ["finished", "finished"]
    summary = alice.study_summary(study["id"])
    assert summary["study"] == study["id"] and summary["configs"][0]["runs"] == 2
    assert summary["configs"][0]["finished"] == 2
    assert alice.study_summary(study["id"], since=summary["version"])["unchanged"] is True
    for run_id in study["runs"]:
        run = alice.run(run_id)
        assert run["result"]["x"] == alice.watch(run_id).wait()["result"]["x"]
    with pytest.raises(Conflict) as refused:
        alice.control_study(study["id"], "stop")
    assert refused.value.status == 409 and refused.value.message
    with pytest.raises(Invalid) as refused:
        alice.control_study(study["id"], "restart")
    assert "action" in refused.value.errors
    with pytest.raises(NotFound):
        bob.study(study["id"])
    assert study["id"] in [s["id"] for s in alice.studies()]


def restart(server, down_for: float, run_id: int, seen: list) -> None:
    """Stop the daphne process (its workers let their runs go, interrupted), leave nothing
    listening for `down_for` seconds, then start another on the same port and database.
    `seen` gets run `run_id`'s stored (status, n_steps) while no server runs."""
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(30)
    server._log.close()
    seen.extend(server.query("SELECT status, n_steps FROM runs_run WHERE id = ?", run_id))
    time.sleep(down_for)
    server._log = open(server.log_path, "ab")
    server.process = subprocess.Popen([str(DAPHNE), "-b", "127.0.0.1", "-p", str(server.port),
                                       "optsite.asgi:application"], cwd=server.ROOT, env=server.env,
                                      stdout=server._log, stderr=subprocess.STDOUT)
    servers.wait_for_port(server.port, timeout=60, process=server.process)


def test_the_live_iterator_outlives_a_server_restart_without_a_missed_or_repeated_step(server, alice):
    run = alice.launch(LONG)
    seen, restarting, while_down = [], None, []
    for step in run.steps():
        seen.append(step)
        if restarting is None and step["seq"] >= 300:
            restarting = threading.Thread(target=restart, args=(server, 1.0, run.id, while_down))
            restarting.start()
    restarting.join()
    final = run.run
    (status, cut_at), = while_down
    assert status == "interrupted" and cut_at < final["n_steps"]  # cut short by the restart
    assert run.reconnects >= 1 and final["status"] == "finished"
    assert [s["seq"] for s in seen] == list(range(final["n_steps"]))  # no gap, no repeat
    assert final["n_steps"] > 1000
    stored = list(alice.steps(run.id, page_size=1000))  # three pages
    assert light(seen) == stored
    matches_scipy(LONG, stored, final["result"])  # and exactly the uninterrupted run


class NotOptsite(BaseHTTPRequestHandler):
    """A web server that is not optsite (a proxy's error page, a half-written answer)."""

    ANSWERS = {"/api/problems/": (200, "text/html", "<html><body>a welcome page</body></html>"),
               "/api/methods/": (200, "application/json", '{"not": "a list"}'),
               "/api/runs/": (200, "application/json", '[{"id": 1, "status": '),
               "/ws/runs/": (200, "text/html", "<html>no sockets here</html>")}

    def do_GET(self):
        status, kind, body = self.ANSWERS.get(self.path.split("?")[0], (
            502, "text/html", "<html><h1>Bad gateway</h1><p>The upstream server went away.</p></html>"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_an_answer_that_is_not_optsites_is_an_error_in_words_never_a_parse_traceback():
    other = ThreadingHTTPServer(("127.0.0.1", 0), NotOptsite)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        client = Client(f"http://127.0.0.1:{other.server_port}", "opt_" + "x" * 43, timeout=5)
        for call, kind, words in [
                (client.problems, BadAnswer, "is not JSON (HTTP 200, text/html): 'a welcome page'"),
                (client.methods, BadAnswer, "is not a JSON array"),
                (client.runs, BadAnswer, "is not JSON"),
                (lambda: client.launch(SHORT), BadAnswer, "with HTTP 200, not a socket"),
                (lambda: client.run(3), OptsiteError, "Bad gateway: The upstream server went away.")]:
            with pytest.raises(kind) as failed:
                call()
            assert words in str(failed.value).replace("<html><body>", "").replace("</body></html>", "")
            # no parse error chained on for the traceback to show
            assert failed.value.__cause__ is None
            assert failed.value.__context__ is None or failed.value.__suppress_context__
            assert "x" * 43 not in str(failed.value)
        assert failed.value.code == "server_error" and failed.value.status == 502
    finally:
        other.shutdown()
        other.server_close()
    nobody = Client(f"http://127.0.0.1:{servers.free_port()}", "opt_" + "x" * 43, timeout=5)
    for call in (nobody.problems, lambda: nobody.watch(1)):
        with pytest.raises(Unreachable) as failed:
            call()
        assert "Could not" in failed.value.message and "127.0.0.1" in failed.value.message
