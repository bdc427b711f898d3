"""External runs from the Python client (Client.minimize / differential_evolution): a user's own
function computed in this process by optsite's steppers, equal to scipy's own run of it, streamed
to a real daphne and stored as any run; Stop and Pause sent from a watch socket (as the run page
sends them) reach the optimization; a restart of the server loses nothing; a server that is away
from the start gets the run later from the spool. The spool itself is tested with real files."""

import json
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import differential_evolution, minimize, rosen, rosen_der

from tests import servers
from tests.test_client import DAPHNE, PASSWORD, make_token, restart, revoke_token

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "client"))
from optsite_client import Client, DeliveryWarning, Invalid, Limit, Unauthorized  # noqa: E402
from optsite_client.spool import Backlog, Spool  # noqa: E402

needs_daphne = pytest.mark.skipif(not DAPHNE.exists(), reason=f"no daphne next to {sys.executable}")


def f(x):
    return (x[0] - 1) ** 2 + 10 * (x[1] + 0.5) ** 2 + np.sin(3 * x[0]) * x[1] ** 2


def g(x):
    return np.array([2 * (x[0] - 1) + 3 * np.cos(3 * x[0]) * x[1] ** 2,
                     20 * (x[1] + 0.5) + 2 * np.sin(3 * x[0]) * x[1]])


def fg(x):
    return f(x), g(x)


def slow(fun, seconds):
    def slowed(x):
        time.sleep(seconds)
        return fun(x)
    return slowed


# -- the spool, with real files ------------------------------------------------------------------
def lines(n, start=0, size=100):
    return [(seq, f'{{"seq":{seq},"pad":"{"p" * size}"}}') for seq in range(start, start + n)]


def drain(backlog):
    """Send and ack everything, one batch at a time; the steps in the order they were sent."""
    out = []
    while not backlog.empty:
        batch = backlog.unsent(1000)
        assert batch, "steps on disk but none in memory to send"
        out.extend(batch)
        backlog.ack(batch[-1][0] + 1)
    return out


def test_the_backlog_holds_steps_in_memory_then_on_disk_and_hands_them_out_in_order_once(tmp_path):
    spool = Spool(tmp_path, "run", segment_bytes=2000)
    backlog = Backlog(spool, memory_limit=1000, spool_limit=10_000)
    steps = lines(60)
    for seq, text in steps[:8]:
        backlog.add(seq, text)
    assert not spool.exists()  # within the memory bound nothing touches the disk
    for seq, text in steps[8:]:
        backlog.add(seq, text)
    segments = sorted(p.name for p in spool.dir.glob("*.seg"))
    assert len(segments) > 1 and spool.bytes <= 10_000 + 2000
    # steps on disk are sent only once in memory: the first batch is the memory's
    first = backlog.unsent(10 ** 6)
    assert [s for s, _ in first] == list(range(len(first))) and sum(len(t) for _, t in first) <= 1000
    backlog.rewind()  # a reconnect: everything unacked again
    assert drain(backlog) == steps
    assert spool.bytes == 0 and not list(spool.dir.glob("*.seg"))  # read segments are deleted


def test_the_disk_bound_is_reported_full_and_room_comes_back_with_acks(tmp_path):
    backlog = Backlog(Spool(tmp_path, "run", segment_bytes=500), memory_limit=300, spool_limit=1500)
    for seq, text in lines(30):
        backlog.add(seq, text)
        if backlog.full:
            break
    assert backlog.full and seq < 29 and backlog.spool.bytes < 1500 + 500
    sent = backlog.unsent(10 ** 6)
    backlog.ack(sent[-1][0] + 1)
    while backlog.full:
        sent = backlog.unsent(10 ** 6)
        backlog.ack(sent[-1][0] + 1)
    assert not backlog.full


def test_a_spool_left_behind_is_read_again_by_another_process_in_order_skipping_what_was_acked(tmp_path):
    spool = Spool(tmp_path, "run", segment_bytes=700)
    backlog = Backlog(spool, memory_limit=500)
    steps = lines(40)
    for seq, text in steps:
        backlog.add(seq, text)
    backlog.ack(3)  # the server had 0..2
    backlog.persist()  # the process gives up: memory ahead of the disk
    spool.write_meta({"run_id": 7})
    spool.release()
    with open(sorted(spool.dir.glob("*.seg"))[-1], "ab") as out:
        out.write(b'40\t{"seq":40,"cut sh')  # a crash in the middle of a line
    again = Spool(tmp_path, "run")
    assert again.lock() and again.read_meta() == {"run_id": 7}
    other = Spool(tmp_path, "run")
    assert not other.lock()  # held by `again`
    later = Backlog(again, memory_limit=500)
    later.ack(10)  # the server says it has 0..9 (an ack came that the first process never saw)
    assert drain(later) == steps[10:]  # and the cut line is not a step
    again.remove()
    assert not (tmp_path / "run").exists()


# -- arguments, checked here as the server checks them ---------------------------------------------
@pytest.mark.parametrize("call,kind,words", [
    (lambda c, f: c.minimize(f, [0, 0], method="simplex"), Invalid, "unknown method 'simplex'"),
    (lambda c, f: c.minimize(f, [[0, 0]], method="BFGS"), Invalid, "x0: must be one-dimensional"),
    (lambda c, f: c.minimize(f, [0, 0], options={"maxiter": -1}), Invalid, "options.maxiter"),
    (lambda c, f: c.minimize(f, [0, 0], options={"jac": "2-point"}), Invalid, "pass jac= to minimize itself"),
    (lambda c, f: c.minimize(f, [0, 0], method="BFGS", jac=3), Invalid, "jac: must be a function"),
    (lambda c, f: c.minimize(f, [0, 0], bounds=[(1, 0), (0, 1)]), Invalid, "bounds[0]"),
    (lambda c, f: c.minimize(f, [0, 0], options={"maxiter": 10 ** 9}), Limit, "more than the limit"),
    (lambda c, f: c.differential_evolution(f, [(-1, 1)] * 2, workers=4), Invalid, "workers"),
    (lambda c, f: c.differential_evolution(f, [(-1, 1)] * 2, popsize=0), Invalid, "options.popsize"),
])
def test_arguments_scipy_would_refuse_are_refused_in_words_before_anything_is_computed(tmp_path, call, kind, words):
    calls = []
    client = Client("http://127.0.0.1:9", "opt_" + "x" * 43, spool_dir=tmp_path)
    with pytest.raises(kind) as failed:
        call(client, lambda x: calls.append(1) or f(x))
    assert words in str(failed.value) and not calls and not list(tmp_path.iterdir())


# -- against a real daphne ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    with servers.Daphne({"alice": PASSWORD, "bob": PASSWORD}) as site:
        yield site


@pytest.fixture(scope="module")
def token(server):
    return make_token(server, "alice", "alice's model")


@pytest.fixture
def alice(server, token, tmp_path):
    return Client(server.http, token, spool_dir=tmp_path / "spool", timeout=10)


def iterates(fun, x0, **keywords):
    """scipy's own run: its callback's iterates and its result."""
    seen = []
    ref = minimize(fun, np.array(x0, dtype=float), callback=lambda intermediate_result: seen.append(
        np.copy(intermediate_result.x)), **keywords)
    return seen, ref


def same_as_scipy(result, ref):
    assert np.array_equal(result.x, ref.x) and result.fun == ref.fun
    assert (result.nit, result.nfev, result.success, result.message) == (ref.nit, ref.nfev, ref.success, ref.message)
    for name in ("status", "njev", "jac"):
        if name in ref:
            assert np.array_equal(result[name], ref[name]), name


def stored_as_returned(client, result, status="finished", delivered=True):
    run = client.run(result.run_id)
    assert run["status"] == status and run["kind"] == "external" and result.delivered == delivered
    assert result.run_url == f"{client.url}/runs/{result.run_id}/"
    assert run["result"]["x"] == result.x.tolist() and run["result"]["fun"] == result.fun
    steps = list(client.steps(result.run_id))
    assert [s["seq"] for s in steps] == list(range(run["n_steps"]))
    return run, steps


MINIMIZE_CASES = [
    ("L-BFGS-B", dict(jac=g), dict(method="L-BFGS-B", jac=g)),
    ("L-BFGS-B", dict(bounds=[(-1, 0.8), (-0.4, 1)]), dict(method="L-BFGS-B", bounds=[(-1, 0.8), (-0.4, 1)])),
    ("BFGS", dict(jac=True), dict(method="BFGS", jac=True)),
    ("Nelder-Mead", dict(), dict(method="Nelder-Mead")),
]


@needs_daphne
@pytest.mark.parametrize("method,mine,theirs", MINIMIZE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(MINIMIZE_CASES)])
def test_an_external_minimize_is_scipys_run_and_is_stored_step_by_step(alice, method, mine, theirs):
    fun = fg if mine.get("jac") is True else f
    result = alice.minimize(fun, [0.3, 0.2], method=method, label=f"mine, {method}", **mine)
    seen, ref = iterates(fun, [0.3, 0.2], **theirs)
    same_as_scipy(result, ref)
    run, steps = stored_as_returned(alice, result)
    assert run["label"] == f"mine, {method}" and run["problem"] == "external"
    assert run["external"] == {"title": fun.__qualname__, "gradient": "jac" in mine, "hessian": False}
    assert [s["x"] for s in steps if s["phase"] == "iterate"] == [list(x) for x in seen]
    assert run["result"]["nfev"] == ref.nfev


@needs_daphne
def test_an_external_differential_evolution_is_scipys_with_its_population_stored(alice):
    seen = []
    result = alice.differential_evolution(f, [(-2, 2), (-2, 2)], seed=4, maxiter=25,
                                          callback=lambda intermediate_result: seen.append(intermediate_result.x))
    ref = differential_evolution(f, [(-2, 2), (-2, 2)], seed=4, maxiter=25)
    same_as_scipy(result, ref)
    run, steps = stored_as_returned(alice, result)
    generations = [s for s in steps if s["phase"] == "iterate"]
    assert [s["x"] for s in generations] == [list(x) for x in seen] and steps[-1]["phase"] == "polish"
    assert "population" in alice.step(result.run_id, 3)["extra"]


@needs_daphne
def test_the_users_function_failing_ends_the_run_failed_in_words_and_raises_as_scipy_would(alice):
    def breaks(x):
        if x[0] > 0.5:
            raise ZeroDivisionError("my model has no value there")
        return f(x)
    with pytest.raises(ZeroDivisionError, match="no value there"):
        alice.minimize(breaks, [0.3, 0.2], method="Nelder-Mead", label="breaks")
    run = alice.runs(limit=1)[0]
    assert run["label"] == "breaks" and run["status"] == "failed"
    assert "ZeroDivisionError: my model has no value there" in run["error"]


def newest_running(client, label, box, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "error" in box:
            raise box["error"]
        for run in client.runs(limit=5):
            if run["label"] == label and run["status"] == "running" and run["n_steps"] > 3:
                return run
        time.sleep(0.1)
    raise AssertionError(f"no running run labelled {label!r}")


def in_thread(call):
    box = {}

    def target():
        try:
            box["result"] = call()
        except BaseException as failed:  # noqa: BLE001 - the test reads it
            box["error"] = failed
    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


@needs_daphne
def test_stop_sent_from_a_watch_socket_stops_the_optimization_between_steps(alice):
    thread, box = in_thread(lambda: alice.minimize(slow(f, 0.01), [0.3, 0.2], method="Nelder-Mead", label="to stop",
                                                   options={"maxiter": 20_000, "xatol": 0, "fatol": 0}))
    run = newest_running(alice, "to stop", box)
    with alice.watch(run["id"]) as watched:
        final = watched.stop()
    thread.join(60)
    result = box["result"]
    assert final["status"] == "stopped" and result.run_id == run["id"]
    assert result.message == "`callback` raised `StopIteration`." and not result.success
    stored, steps = stored_as_returned(alice, result, status="stopped")
    assert stored["result"]["stopped"] and result.nit < 20_000
    # scipy's own run, its callback stopping it where the stop took effect: at the callback of the
    # last iterate handed out (the stop came while the step was out), or at the next one (it came
    # while scipy computed: that callback stops scipy before its iterate becomes a step)
    mine = [s["x"] for s in steps if s["phase"] == "iterate"]
    refs = []
    for stop_at in (len(mine), len(mine) + 1):
        seen = []

        def stop_there(intermediate_result):
            seen.append(np.copy(intermediate_result.x))
            if len(seen) == stop_at:
                raise StopIteration
        refs.append((minimize(f, [0.3, 0.2], method="Nelder-Mead", callback=stop_there,
                              options={"maxiter": 20_000, "xatol": 0, "fatol": 0}), seen))
    (ref, seen), = [(r, s) for r, s in refs if np.array_equal(r.x, result.x) and r.nit == result.nit]
    same_as_scipy(result, ref)
    assert mine == [list(x) for x in seen[:len(mine)]]


@needs_daphne
def test_pause_holds_the_optimization_until_resume(alice):
    thread, box = in_thread(lambda: alice.differential_evolution(slow(f, 0.0005), [(-2, 2)] * 2, seed=1, maxiter=300,
                                                                 tol=0, label="to pause"))
    run = newest_running(alice, "to pause", box)
    with alice.watch(run["id"]) as watched:
        paused = watched.pause()
        assert paused["status"] == "paused"
        held = alice.run(run["id"])["n_steps"]
        time.sleep(1.5)
        assert alice.run(run["id"])["n_steps"] == held and thread.is_alive()  # it waits in the user's process
        assert watched.resume()["status"] == "running"
    thread.join(120)
    result = box["result"]
    ref = differential_evolution(f, [(-2, 2)] * 2, seed=1, maxiter=300, tol=0)
    same_as_scipy(result, ref)
    stored_as_returned(alice, result)


@needs_daphne
def test_a_server_restart_mid_run_loses_nothing_and_the_steps_arrive_in_order(server, token, tmp_path):
    # a small memory bound: the steps made while the server is away go to the spool on disk
    client = Client(server.http, token, spool_dir=tmp_path / "spool", memory_limit=20_000, timeout=10)
    spec = dict(seed=11, maxiter=400, tol=0, popsize=5)
    thread, box = in_thread(lambda: client.differential_evolution(slow(rosen, 0.0002), [(-5, 5)] * 4, label="restarted",
                                                                  **spec))
    run = newest_running(client, "restarted", box)
    while_down = []
    restart(server, 2.0, run["id"], while_down)
    thread.join(180)
    result = box["result"]
    (status, cut_at), = while_down
    # a daphne stopped with SIGTERM may leave it running (its lease runs out later): either way
    # the server had only part of it
    assert status in ("running", "interrupted") and cut_at < result.nit
    ref = differential_evolution(rosen, [(-5, 5)] * 4, **spec)
    same_as_scipy(result, ref)
    stored, steps = stored_as_returned(client, result)
    assert stored["n_steps"] == result.nit + 2  # the start, every generation, the polish
    assert not list((tmp_path / "spool").glob("*/*.seg"))


def stop_server(server):
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(30)
    server._log.close()


def start_server(server):
    """Daphne again on the same port and database (as tests.test_client.restart starts it)."""
    server._log = open(server.log_path, "ab")
    server.process = subprocess.Popen([str(DAPHNE), "-b", "127.0.0.1", "-p", str(server.port),
                                       "optsite.asgi:application"], cwd=server.ROOT, env=server.env,
                                      stdout=server._log, stderr=subprocess.STDOUT)
    servers.wait_for_port(server.port, timeout=60, process=server.process)


@needs_daphne
def test_a_server_away_from_the_start_gets_the_run_later_from_the_spool(server, token, tmp_path):
    client = Client(server.http, token, spool_dir=tmp_path / "spool", timeout=3)
    stop_server(server)
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            result = client.minimize(rosen, [1.3, 0.7, 0.8, 1.9], jac=rosen_der, label="offline", deliver_timeout=1)
    finally:
        start_server(server)
    seen, ref = iterates(rosen, [1.3, 0.7, 0.8, 1.9], method="L-BFGS-B", jac=rosen_der)
    same_as_scipy(result, ref)  # the optimization did not wait for the server
    assert result.run_id is None and not result.delivered
    words = [str(w.message) for w in said if w.category is DeliveryWarning]
    assert any("could not be reached" in w for w in words) and any("deliver_pending" in w for w in words)
    # a spool is for the server it was made for: another address does not take it
    elsewhere = Client(f"http://127.0.0.1:{servers.free_port()}", token, spool_dir=tmp_path / "spool")
    assert elsewhere.deliver_pending() == []
    delivered = client.deliver_pending()
    assert [r["label"] for r in delivered] == ["offline"] and delivered[0]["status"] == "finished"
    steps = list(client.steps(delivered[0]["id"]))
    assert [s["x"] for s in steps if s["phase"] == "iterate"] == [list(x) for x in seen]
    assert client.run(delivered[0]["id"])["result"]["x"] == result.x.tolist()
    assert client.deliver_pending() == [] and not list((tmp_path / "spool").iterdir())


@needs_daphne
def test_a_token_refused_at_the_start_raises_before_anything_is_computed(server, tmp_path):
    calls = []
    client = Client(server.http, "opt_" + "x" * 43, spool_dir=tmp_path)
    with pytest.raises(Unauthorized):
        client.minimize(lambda x: calls.append(1) or f(x), [0.3, 0.2])
    assert not calls and not list(tmp_path.iterdir())


@needs_daphne
def test_a_token_revoked_mid_run_stops_the_streaming_not_the_optimization_and_the_spool_delivers_later(
        server, tmp_path):
    client = Client(server.http, make_token(server, "bob", "bob's short-lived token"), spool_dir=tmp_path / "spool")
    spec = dict(seed=2, maxiter=300, tol=0, popsize=5)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        thread, box = in_thread(lambda: client.differential_evolution(slow(rosen, 0.0005), [(-5, 5)] * 3,
                                                                      label="revoked", **spec))
        run = newest_running(client, "revoked", box)
        revoke_token(server, "bob", "bob's short-lived token")
        thread.join(120)
    result = box["result"]
    same_as_scipy(result, differential_evolution(rosen, [(-5, 5)] * 3, **spec))  # it went on
    assert result.run_id == run["id"] and not result.delivered
    words = [str(w.message) for w in said if w.category is DeliveryWarning]
    assert len(words) == 1 and "is no longer streamed" in words[0] and "revoked" in words[0], words
    # with a valid token the spool completes the run: every step, in order, and the end
    again = Client(server.http, make_token(server, "bob", "bob's next token"), spool_dir=tmp_path / "spool")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        delivered = again.deliver_pending()
    assert not said, [str(w.message) for w in said]
    assert [r["id"] for r in delivered] == [run["id"]] and delivered[0]["status"] == "finished"
    stored, steps = stored_as_returned(again, result, delivered=False)
    assert stored["n_steps"] == result.nit + 2


def test_a_step_too_big_for_one_message_is_sent_without_its_bulky_part():
    from optsite_client.stream import MAX_MESSAGE, encode_step
    from optsite_solver import Step
    small = Step(0, 0, np.zeros(2), 1.0, 1, 0, None, "init", {}, bulky={"population": np.ones((5, 2))})
    big = Step(1, 1, np.zeros(2), 1.0, 2, 0, None, "iterate", {},
               bulky={"population": np.full((100_000, 2), 0.123456789)})
    from optsite_solver.external import step_from_wire
    from optsite_solver.spec import validate_spec
    spec = validate_spec({"method": "de", "problem": "external", "dim": 2, "bounds": [[-1, 1]] * 2,
                          "external": {"title": "t"}})
    again = step_from_wire(json.loads(encode_step(small)), spec, 0)  # packed, and exactly so
    assert np.array_equal(again.bulky["population"], np.ones((5, 2)))
    text = encode_step(big)
    assert len(text) < MAX_MESSAGE and json.loads(text) == big.to_dict()


@needs_daphne
def test_a_callback_returning_true_stops_the_run_as_it_stops_scipy(alice):
    mine, theirs = [], []

    def stop_at_five(intermediate_result):
        mine.append(np.copy(intermediate_result.x))
        return len(mine) == 5

    def scipy_stop_at_five(intermediate_result):
        theirs.append(np.copy(intermediate_result.x))
        if len(theirs) == 5:
            raise StopIteration
    result = alice.minimize(f, [0.3, 0.2], method="BFGS", jac=g, bounds=None, callback=stop_at_five)
    ref = minimize(f, [0.3, 0.2], method="BFGS", jac=g, callback=scipy_stop_at_five)
    same_as_scipy(result, ref)
    assert all(np.array_equal(a, b) for a, b in zip(mine, theirs)) and len(mine) == 5
    stored, steps = stored_as_returned(alice, result, status="stopped")
    assert [s["x"] for s in steps if s["phase"] == "iterate"] == [list(x) for x in theirs]


@needs_daphne
def test_stop_while_paused_releases_the_optimization_and_de_still_polishes(alice):
    thread, box = in_thread(lambda: alice.differential_evolution(slow(f, 0.0005), [(-2, 2)] * 2, seed=5, maxiter=1000,
                                                                 tol=0, label="paused, then stopped"))
    run = newest_running(alice, "paused, then stopped", box)
    with alice.watch(run["id"]) as watched:
        assert watched.pause()["status"] == "paused"
        final = watched.stop()
    thread.join(60)
    result = box["result"]
    assert final["status"] == "stopped" and result.message == "callback function requested stop early"
    stored, steps = stored_as_returned(alice, result, status="stopped")
    assert steps[-1]["phase"] == "polish" and result.nit < 1000
