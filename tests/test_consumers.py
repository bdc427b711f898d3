"""The two sockets on the real ASGI application (auth, origin check, channel layer, threads, DB).

scipy is the oracle: a run launched through the socket must end exactly where scipy's own
differential_evolution / minimize(method="L-BFGS-B") ends.
"""

import asyncio
import json

import numpy as np
import pytest
import websocket
from channels.db import database_sync_to_async
from scipy.optimize import differential_evolution, minimize

from runs import services
from runs.models import Run, Step
from runs.optim import get_problem, make_stepper, validate_spec
from tests.conftest import communicator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords", "workers")]

DE_SPEC = {"method": "de", "problem": "rosenbrock", "bounds": [[-2, 2], [-2, 2]],
           "options": {"maxiter": 40, "seed": 1}}
LBFGSB_SPEC = {"method": "lbfgsb", "problem": "rosenbrock", "x0": [-1.2, 1.0]}
# Long enough to control while it runs (tol=0: it never converges), short enough to finish.
# (Rosenbrock in 20-D with 20 members does not collapse for thousands of generations.)
LONG_SPEC = {"method": "de", "problem": "rosenbrock", "dim": 20, "bounds": [[-5, 5]] * 20,
             "options": {"maxiter": 20000, "tol": 0, "polish": False, "seed": 2, "popsize": 1}}


async def connect(path, user=None, origin="http://localhost"):
    comm = await database_sync_to_async(communicator)(path, user, origin)
    connected, _ = await comm.connect()
    assert connected
    return comm


async def collect(comm, until="finished", timeout=30):
    messages = []
    while True:
        message = await comm.receive_json_from(timeout=timeout)
        messages.append(message)
        if message["type"] == until:
            return messages


async def until_steps(comm, timeout=10):
    """Read until a "steps" message; returns the messages read."""
    return await collect(comm, until="steps", timeout=timeout)


def seqs(messages):
    return [s["seq"] for m in messages if m["type"] == "steps" for s in m["steps"]]


async def start(comm, spec):
    await comm.send_json_to({"type": "start", "spec": spec})
    reply = await comm.receive_json_from(timeout=10)
    assert reply["type"] == "started", reply
    return reply["run"]


async def wait_run(run_id, timeout=60):
    assert await asyncio.to_thread(services.wait_for_run, run_id=run_id, timeout=timeout)


@database_sync_to_async
def stored(run_id):
    """The run's light steps, as stored."""
    return [json.loads(d) for d in Step.objects.filter(run_id=run_id).order_by("seq").values_list("data", flat=True)]


BULKY = ("population", "population_energies", "line_search")


def light(step):
    return {**step, "extra": {k: v for k, v in step["extra"].items() if k not in BULKY}}


def no_elapsed(step):
    return {k: v for k, v in step.items() if k != "elapsed"}


def complete_steps(spec):
    """The spec's steps with every field, as the stepper computes them (elapsed aside)."""
    stepper = make_stepper(validate_spec(spec))
    return [no_elapsed(json.loads(services.dumps(s.to_full_dict()))) for s in stepper]


def assert_bulky_only_on_each_messages_last_step(messages, expected):
    """Every "steps" message: its last step complete (as computed), the others light."""
    n = 0
    for m in messages:
        if m["type"] != "steps":
            continue
        *rest, last = m["steps"]
        assert no_elapsed(last) == expected[last["seq"]], f"step {last['seq']} (last of its message)"
        for s in rest:
            assert not any(k in s["extra"] for k in BULKY), f"step {s['seq']} carries bulky fields"
            assert no_elapsed(s) == light(expected[s["seq"]])
        n += 1
    return n


async def closed_with(comm, code=4404, timeout=5):
    out = await comm.receive_output(timeout)
    assert out == {"type": "websocket.close", "code": code}, out


@database_sync_to_async
def run_row(run_id):
    return Run.objects.get(pk=run_id)


def scipy_iterates(spec):
    """scipy's own iterates (as its callback saw them) and result for a small spec."""
    s = validate_spec(spec)
    problem = get_problem(s.problem)
    f, g = problem.objective(s.params), problem.gradient(s.params)
    seen = []

    def callback(intermediate_result):
        seen.append(np.copy(intermediate_result.x))

    if s.method == "de":
        res = differential_evolution(f, [tuple(b) for b in s.bounds], maxiter=s.options["maxiter"],
                                     seed=s.options["seed"], callback=callback)
    else:
        res = minimize(f, np.array(s.x0), jac=g, method="L-BFGS-B", callback=callback)
    return seen, res


# ---- handshake ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/ws/runs/", "/ws/runs/1/"])
async def test_it_rejects_a_handshake_without_a_session(path):
    comm = await database_sync_to_async(communicator)(path, None)
    connected, _ = await comm.connect()
    assert not connected


@pytest.mark.parametrize("path", ["/ws/runs/", "/ws/runs/1/"])
async def test_it_rejects_a_foreign_origin(alice, path):
    comm = await database_sync_to_async(communicator)(path, alice, "http://evil.example")
    connected, _ = await comm.connect()
    assert not connected


# ---- scipy equality -----------------------------------------------------------------------
@pytest.mark.parametrize("spec", [DE_SPEC, LBFGSB_SPEC], ids=["de", "lbfgsb"])
async def test_a_launched_run_is_scipys_run(alice, spec):
    comm = await connect("/ws/runs/", alice)
    run = await start(comm, spec)
    assert run["status"] == "queued" and run["owner"] == "alice" and run["queue_position"] >= 1
    messages = await collect(comm)
    running = next(m["run"] for m in messages if m["type"] == "status")
    assert running["status"] == "running" and running["worker"].startswith("pool@")
    assert running["queue_position"] is None
    finished = messages[-1]["run"]
    assert finished["worker"] is None
    assert finished["status"] == "finished"
    steps = [s for m in messages if m["type"] == "steps" for s in m["steps"]]
    assert [s["seq"] for s in steps] == list(range(len(steps))) == list(range(finished["n_steps"]))
    assert [light(s) for s in steps] == await stored(run["id"])  # what the socket said is what is stored
    expected = await asyncio.to_thread(complete_steps, spec)
    assert assert_bulky_only_on_each_messages_last_step(messages, expected) >= 1

    iterates, ref = await asyncio.to_thread(scipy_iterates, spec)
    mine = [s for s in steps if s["phase"] == "iterate"]
    assert [s["x"] for s in mine] == [list(x) for x in iterates], (len(mine), len(iterates), len(steps), finished["n_steps"], finished["result"]["nit"], ref.nit)
    result = finished["result"]
    assert result["x"] == list(ref.x) and result["fun"] == float(ref.fun)
    assert (result["nit"], result["nfev"], result["success"]) == (ref.nit, ref.nfev, ref.success)
    if spec["method"] == "lbfgsb":
        assert result["njev"] == ref.njev
    await comm.disconnect()


# ---- controls -----------------------------------------------------------------------------
async def test_stop_ends_the_run_as_stopped(alice):
    comm = await connect("/ws/runs/", alice)
    run = await start(comm, LONG_SPEC)
    await until_steps(comm)
    await comm.send_json_to({"type": "stop"})
    messages = await collect(comm)
    types = [m["type"] for m in messages]
    assert types[-2:] == ["status", "finished"]
    final = messages[-1]["run"]
    assert final["status"] == "stopped" and final["result"]["stopped"] is True
    assert final["n_steps"] < 20001
    row = await run_row(run["id"])
    assert row.status == "stopped" and row.n_steps == final["n_steps"]
    # the socket can launch again
    again = await start(comm, DE_SPEC)
    await collect(comm)
    assert again["id"] != run["id"]
    await comm.disconnect()


async def test_pause_holds_steps_until_resume(alice):
    comm = await connect("/ws/runs/", alice)
    run = await start(comm, LONG_SPEC)
    await until_steps(comm)
    await comm.send_json_to({"type": "pause"})
    before = await collect(comm, until="status")
    assert before[-1]["run"]["status"] == "paused"
    paused_at = (await run_row(run["id"])).n_steps
    assert max(seqs(before) or [0]) <= paused_at - 1
    assert await comm.receive_nothing(timeout=0.6)  # no steps while paused
    assert (await run_row(run["id"])).n_steps == paused_at
    # pausing again changes nothing and says so
    await comm.send_json_to({"type": "pause"})
    assert (await comm.receive_json_from())["run"]["status"] == "paused"
    await comm.send_json_to({"type": "resume"})
    queued = await comm.receive_json_from(timeout=5)  # a paused run holds no worker: it queues again
    assert queued["type"] == "status" and queued["run"]["status"] == "queued"
    status = await comm.receive_json_from(timeout=5)
    assert status["type"] == "status" and status["run"]["status"] == "running"
    after = await until_steps(comm)
    assert seqs(after)[0] == paused_at  # nothing lost, nothing repeated
    await comm.send_json_to({"type": "stop"})
    await collect(comm)
    await comm.disconnect()


async def test_a_run_outlives_its_socket(alice):
    comm = await connect("/ws/runs/", alice)
    spec = {**DE_SPEC, "options": {"maxiter": 300, "tol": 0, "seed": 4}}
    run = await start(comm, spec)
    await comm.disconnect()
    await wait_run(run["id"])
    row = await run_row(run["id"])
    assert row.status == "finished" and row.nit == row.result["nit"] > 0
    assert [s["seq"] for s in await stored(run["id"])] == list(range(row.n_steps))


async def test_one_socket_launches_one_run_at_a_time(alice):
    comm = await connect("/ws/runs/", alice)
    await start(comm, LONG_SPEC)
    await comm.send_json_to({"type": "start", "spec": DE_SPEC})
    messages = await collect(comm, until="error")
    assert messages[-1]["code"] == "conflict"
    await comm.send_json_to({"type": "stop"})
    await collect(comm)
    await comm.disconnect()


async def test_the_concurrent_run_limit_answers_limit(alice, settings):
    settings.OPTSITE_MAX_CONCURRENT_RUNS = 1
    first, second = await connect("/ws/runs/", alice), await connect("/ws/runs/", alice)
    await start(first, LONG_SPEC)
    await second.send_json_to({"type": "start", "spec": DE_SPEC})
    error = await second.receive_json_from(timeout=10)
    assert error["type"] == "error" and error["code"] == "limit" and "limit is 1" in error["message"]
    await first.send_json_to({"type": "stop"})
    await collect(first)
    await start(second, DE_SPEC)  # room again
    await collect(second)
    await first.disconnect()
    await second.disconnect()


# ---- bad input ----------------------------------------------------------------------------
async def test_an_invalid_spec_gets_field_errors_and_the_socket_stays_usable(alice):
    comm = await connect("/ws/runs/", alice)
    await comm.send_json_to({"type": "start", "spec": {"method": "de", "problem": "rosenbrock",
                                                        "bounds": [[-2, 2], [3, 1]], "options": {"maxiter": -1}}})
    error = await comm.receive_json_from()
    assert error["type"] == "error" and error["code"] == "invalid_spec"
    assert "bounds[1]" in error["errors"] and "options.maxiter" in error["errors"]
    assert error["message"]
    await comm.send_json_to({"type": "start", "spec": {**DE_SPEC, "dim": 100000}})
    assert (await comm.receive_json_from())["code"] == "limit"
    await comm.send_json_to({"type": "start"})
    assert (await comm.receive_json_from())["errors"] == {"spec": ["This field is required."]}
    await start(comm, DE_SPEC)
    await collect(comm)
    await comm.disconnect()


async def test_a_start_message_may_carry_a_label(alice):
    comm = await connect("/ws/runs/", alice)
    for bad in (5, "x" * 201, ["a"]):
        await comm.send_json_to({"type": "start", "spec": DE_SPEC, "label": bad})
        error = await comm.receive_json_from()
        assert error["code"] == "invalid_spec" and "label" in error["errors"]
    assert not await database_sync_to_async(Run.objects.exists)()
    await comm.send_json_to({"type": "start", "spec": DE_SPEC, "label": "  b = 100 baseline "})
    started = await comm.receive_json_from(timeout=10)
    assert started["run"]["label"] == "b = 100 baseline"
    await collect(comm)
    await comm.disconnect()


@pytest.mark.parametrize("frame", [
    {"text_data": "{not json"}, {"text_data": "[1, 2]"}, {"text_data": "null"}, {"bytes_data": b"\x00\x01"},
    {"text_data": '{"type": "dance"}'}, {"text_data": '{"type": 5}'}, {"text_data": '{"spec": {}}'},
    {"text_data": '{"type": "subscribe", "after": 3}'},  # not on the launch socket
])
async def test_malformed_messages_get_bad_message_and_the_socket_still_works(alice, frame):
    comm = await connect("/ws/runs/", alice)
    await comm.send_to(**frame)
    error = await comm.receive_json_from()
    assert error["type"] == "error" and error["code"] == "bad_message" and error["message"]
    await start(comm, DE_SPEC)
    await collect(comm)
    await comm.disconnect()


async def test_controls_without_a_run_are_a_conflict(alice):
    comm = await connect("/ws/runs/", alice)
    for control in ("stop", "pause", "resume"):
        await comm.send_json_to({"type": control})
        error = await comm.receive_json_from()
        assert error["code"] == "conflict"
    await comm.disconnect()


# ---- watching -----------------------------------------------------------------------------
async def test_someone_elses_run_is_not_found(alice, charlie):
    comm = await connect("/ws/runs/", alice)
    run = await start(comm, DE_SPEC)
    await collect(comm)
    for run_id in (run["id"], run["id"] + 1000):
        watch = await connect(f"/ws/runs/{run_id}/", charlie)
        error = await watch.receive_json_from()
        assert error == {"type": "error", "code": "not_found", "message": error["message"], "errors": {}}
        await closed_with(watch, 4404)  # never any of its data, and no reason to reconnect
    await comm.disconnect()


async def test_watching_an_ended_run_replays_it_and_says_finished(alice):
    comm = await connect("/ws/runs/", alice)
    run = await start(comm, DE_SPEC)
    launched = await collect(comm)
    watch = await connect(f"/ws/runs/{run['id']}/", alice)
    messages = await collect(watch)
    assert messages[0]["type"] == "run" and messages[0]["run"]["status"] == "finished"
    assert seqs(messages) == seqs(launched)
    assert messages[-1]["run"] == launched[-1]["run"]
    assert await watch.receive_nothing(timeout=0.5)
    # a client that says what it has gets only the rest, at once
    watch2 = await connect(f"/ws/runs/{run['id']}/?after=29", alice)
    messages = await collect(watch2, timeout=2)
    assert seqs(messages) == list(range(30, run_n := messages[-1]["run"]["n_steps"])) and run_n > 30
    for c in (comm, watch, watch2):
        await c.disconnect()


async def test_two_watchers_see_the_same_steps(alice):
    comm = await connect("/ws/runs/", alice)
    spec = {**LONG_SPEC, "options": {**LONG_SPEC["options"], "maxiter": 300}}
    run = await start(comm, spec)
    watchers = [await connect(f"/ws/runs/{run['id']}/", alice) for _ in range(2)]
    got = [await collect(w) for w in watchers]
    launched = await collect(comm)
    n = launched[-1]["run"]["n_steps"]
    assert seqs(got[0]) == seqs(got[1]) == seqs(launched) == list(range(n))
    steps = [[s for m in g if m["type"] == "steps" for s in m["steps"]] for g in got]
    assert [light(s) for s in steps[0]] == [light(s) for s in steps[1]] == await stored(run["id"])
    for c in (comm, *watchers):
        await c.disconnect()


async def test_reconnecting_with_subscribe_after_gets_exactly_what_was_missed(alice):
    comm = await connect("/ws/runs/", alice)
    spec = {**LONG_SPEC, "options": {**LONG_SPEC["options"], "maxiter": 400}}
    run = await start(comm, spec)
    have = seqs(await until_steps(comm))
    last = have[-1]
    await comm.disconnect()  # the connection drops; the run goes on
    await asyncio.sleep(0.2)
    watch = await connect(f"/ws/runs/{run['id']}/", alice)
    assert (await watch.receive_json_from())["type"] == "run"
    await watch.send_json_to({"type": "subscribe", "after": last})
    messages = await collect(watch)
    n = messages[-1]["run"]["n_steps"]
    assert seqs(messages) == list(range(last + 1, n))  # no gap, no repeat
    # subscribing again later replays from there (and says finished again)
    await watch.send_json_to({"type": "subscribe", "after": n - 3})
    messages = await collect(watch, timeout=5)
    assert seqs(messages) == [n - 2, n - 1] and messages[-1]["type"] == "finished"
    for bad in ({"after": "7"}, {"after": -2}, {"after": True}):
        await watch.send_json_to({"type": "subscribe", **bad})
        error = await watch.receive_json_from()
        assert error["code"] == "bad_message" and "after" in error["errors"]
    await watch.disconnect()


async def test_the_owner_controls_a_run_from_the_watch_socket(alice):
    comm = await connect("/ws/runs/", alice)
    run = await start(comm, LONG_SPEC)
    await comm.disconnect()
    watch = await connect(f"/ws/runs/{run['id']}/?after=-1", alice)
    await until_steps(watch)
    await watch.send_json_to({"type": "pause"})
    assert (await collect(watch, until="status"))[-1]["run"]["status"] == "paused"
    await watch.send_json_to({"type": "stop"})
    messages = await collect(watch)
    assert messages[-1]["run"]["status"] == "stopped"
    await watch.send_json_to({"type": "resume"})
    assert (await watch.receive_json_from())["code"] == "conflict"
    await watch.disconnect()


# ---- light steps, deleted runs ------------------------------------------------------------
# 20 members in 20-D: ~600 characters a light step, so a replay of 2,500 steps takes several messages.
MANY_SPEC = {**LONG_SPEC, "options": {**LONG_SPEC["options"], "maxiter": 2500}}


async def test_only_the_newest_step_of_each_message_carries_the_bulky_fields(alice):
    expected = await asyncio.to_thread(complete_steps, MANY_SPEC)
    comm = await connect("/ws/runs/", alice)
    run = await start(comm, MANY_SPEC)
    live = await collect(comm)
    assert seqs(live) == list(range(len(expected)))
    assert assert_bulky_only_on_each_messages_last_step(live, expected) >= 1
    # the replay of the stored run: several messages, each ending with a complete step
    watch = await connect(f"/ws/runs/{run['id']}/?after=-1", alice)
    replay = await collect(watch)
    assert seqs(replay) == list(range(len(expected)))
    assert assert_bulky_only_on_each_messages_last_step(replay, expected) >= 3
    # from the middle (?after=): the same rule, decoded from a keyframe before the start
    watch2 = await connect(f"/ws/runs/{run['id']}/?after=1234", alice)
    rest = await collect(watch2)
    assert seqs(rest) == list(range(1235, len(expected)))
    assert assert_bulky_only_on_each_messages_last_step(rest, expected) >= 1
    for c in (comm, watch, watch2):
        await c.disconnect()


async def test_watchers_of_a_deleted_run_hear_deleted_and_the_watch_socket_closes_4404(alice):
    comm = await connect("/ws/runs/", alice)
    run = await start(comm, LONG_SPEC)
    watch = await connect(f"/ws/runs/{run['id']}/?after=-1", alice)
    await until_steps(watch)
    await until_steps(comm)
    row = await run_row(run["id"])
    await database_sync_to_async(services.delete_run)(run=row)
    deleted = {"type": "deleted", "run_id": run["id"], "message": f"Run {run['id']} was deleted."}
    seen = await collect(watch, until="deleted")
    assert seen[-1] == deleted
    # a running run is stopped before it goes: the watcher hears it end, then that it is gone
    assert [m["run"]["status"] for m in seen if m["type"] == "finished"] == ["stopped"]
    await closed_with(watch, 4404)
    # the launch socket's last word about its run is "finished" (PROTOCOL)
    ended = await collect(comm, until="finished")
    assert ended[-1]["run"]["status"] == "stopped"
    # the launch socket stays open: it may launch another run
    again = await start(comm, DE_SPEC)
    assert again["id"] != run["id"]
    await collect(comm)
    # and a run that is gone is not found, then closed
    gone = await connect(f"/ws/runs/{run['id']}/", alice)
    assert (await gone.receive_json_from())["code"] == "not_found"
    await closed_with(gone, 4404)
    await comm.disconnect()


# ---- order: the answer to a control that changes nothing ----------------------------------
# A status may only follow the one before it the way a run moves; steps only while it runs.
MOVES = {("running", "paused"), ("paused", "queued"), ("queued", "running"), ("running", "queued"),
         ("running", "stopped")}


def assert_in_stream_order(messages):
    """Steps once each, in seq order; statuses in an order the run can take; no steps while paused."""
    assert seqs(messages) == list(range(len(seqs(messages)))), seqs(messages)
    said = None
    for m in messages:
        if m["type"] == "status":
            status = m["run"]["status"]
            assert said is None or status == said or (said, status) in MOVES, (said, status)
            said = status
            assert m["run"]["n_steps"] - 1 <= max(seqs(messages[:messages.index(m)]) or [-1]), \
                f"status {status} at n_steps {m['run']['n_steps']} came before its steps"
        elif m["type"] == "steps":
            assert said in (None, "running"), f"steps {m['steps'][0]['seq']}.. after status {said}"


async def test_an_answer_to_a_control_that_changes_nothing_never_overtakes_the_stream(alice):
    comm = await connect("/ws/runs/", alice)
    await start(comm, LONG_SPEC)
    got = await collect(comm, until="steps")
    for _ in range(4):  # each pause, each resume, chased by controls that change nothing
        for action, settled in (("pause", "paused"), ("resume", "running")):
            await comm.send_json_to({"type": action})
            for _ in range(15):
                await comm.send_json_to({"type": action})
            answers = 0
            while True:  # the 15 answers, and the status the control led to
                got.append(message := await comm.receive_json_from(timeout=20))
                answers += message["type"] == "status"
                if answers >= 15 and message["type"] == "status" and message["run"]["status"] == settled:
                    break
    await comm.send_json_to({"type": "stop"})
    got += await collect(comm)
    assert_in_stream_order(got[:-1])
    assert got[-1]["run"]["status"] == "stopped"
    assert seqs(got) == [s["seq"] for s in await stored(got[-1]["run"]["id"])]
    await comm.disconnect()


# ---- against a real daphne: paths, hostile frames, clients that do not read -------------------
LIVE_PASSWORD = "live sockets, real daphne"
BACKLOG = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def site():
    from tests.servers import Daphne

    with Daphne({"alice": LIVE_PASSWORD}, env={"OPTSITE_SOCKET_BACKLOG": str(BACKLOG)}) as server:
        yield server


@pytest.fixture(scope="module")
def live_alice(site):
    from tests.live_client import Client

    return Client(site, "alice", LIVE_PASSWORD)  # one login (a password hash) for the module


def assert_clean_log(site):
    text = site.log()
    assert "Traceback" not in text and " 500 " not in text and "ERROR" not in text, text[-4000:]


@pytest.mark.parametrize("path", ["/ws/nope/", "/ws/runs/abc/", "/ws/runs/-1/", "/ws/runs/0/",
                                  "/ws/runs/99999999999999999999/", "/ws/runs/12/steps/", "/ws/runs", "/ws/",
                                  "/runs/", "/ws/runs/%00/"])
def test_an_unknown_socket_path_is_refused_in_words_never_a_500(site, live_alice, path):
    from tests.live_client import handshake

    assert handshake(site, path).status == 403  # without a login: nothing more is said
    answer = live_alice.handshake(site, path)
    assert answer.status == 101 and answer.close_code == 4404, answer
    [error] = answer.messages
    assert error["type"] == "error" and error["code"] == "not_found" and error["message"]
    assert_clean_log(site)


HUGE = "9" * 400
HOSTILE = [  # (frame, code, words the message has)
    ("[" * 2000 + "]" * 2000, "bad_message", "nested deeper than 32 levels"),
    ('{"type": "stop", "x": NaN}', "bad_message", "NaN is not a JSON value"),
    ('{"type": "stop", "x": -Infinity}', "bad_message", "-Infinity is not a JSON value"),
    ('{"type": "stop", "x": 1e400}', "bad_message", "too large for a float"),
    ('{"type": "stop", "x": ' + "9" * 5000 + "}", "bad_message", "more than 4,300 digits"),
    ('{"type": "\\ud800"}', "bad_message", "surrogate"),
    (json.dumps({"type": "x" * 1_000_000}), "bad_message", "Unknown message type"),
    (json.dumps({"type": "start", "spec": {"method": "m" * 600_000, "problem": "rosenbrock"}}), "invalid_spec",
     "method"),
    (json.dumps({"type": "start", "spec": {**DE_SPEC, "bounds": [[1, 0]] * 20_000}}), "invalid_spec", "bounds"),
    (json.dumps({"type": "start", "spec": DE_SPEC, "label": "é" * 300_000}, ensure_ascii=False), "invalid_spec", "label"),
    (json.dumps({"type": "start", "spec": DE_SPEC, "label": "a\x00b"}), "invalid_spec", "label"),
    ("\x00\x01 not json", "bad_message", "not valid JSON"),
]


@pytest.mark.parametrize("frame, code, words", HOSTILE, ids=[f"{i}" for i in range(len(HOSTILE))])
def test_a_hostile_frame_gets_a_bounded_error_in_words_and_the_socket_goes_on(site, live_alice, frame, code, words):
    alice = live_alice
    before = site.query("SELECT COUNT(*) FROM runs_run")
    launch = alice.socket(site, "/ws/runs/")
    launch.send_text(frame)
    _, error = launch.next()
    assert error["type"] == "error" and error["code"] == code and words in error["message"], error
    assert len(json.dumps(error)) < 4096  # never an echo of the input
    launch.send({"type": "pause"})  # still open and answering
    assert launch.next()[1]["code"] == "conflict"
    launch.close()
    assert site.query("SELECT COUNT(*) FROM runs_run") == before
    assert_clean_log(site)


def finished_run(site, client, spec) -> dict:
    launch = client.socket(site, "/ws/runs/")
    launch.send({"type": "start", "spec": spec})
    _, got = launch.until("finished", timeout=120)
    launch.close()
    return got[-1]["run"]


def test_subscribes_sent_at_once_replay_once_from_the_last_one(site, live_alice):
    """Eight "subscribe after -1" from a client that does not read: one replay, not eight."""
    run = finished_run(site, live_alice, {**LONG_SPEC, "options": {**LONG_SPEC["options"], "maxiter": 600}})
    n = run["n_steps"]
    watch = live_alice.raw(site, f"/ws/runs/{run['id']}/", rcvbuf=16384)
    for _ in range(8):
        watch.send(json.dumps({"type": "subscribe", "after": -1}))
    watch.send(json.dumps({"type": "subscribe", "after": n - 3}))  # the last word: only the last two steps
    watch.settimeout(5)
    messages = []
    try:
        while True:
            messages.append(json.loads(watch.recv()))
            if messages[-1]["type"] == "finished":
                break
    finally:
        watch.close()
    assert messages[0]["type"] == "run"
    assert [m["type"] for m in messages].count("finished") == 1
    assert seqs(messages) == [n - 2, n - 1]
    assert_clean_log(site)


def test_a_client_that_lets_too_much_wait_is_dropped_with_4429_and_can_go_on(site, live_alice):
    from tests.live_client import read_all
    from tests.polling import wait_until

    alice = live_alice
    launch = alice.raw(site, "/ws/runs/", rcvbuf=16384)
    # each frame (0.5 KB) is answered by a long error in words (20 bad bounds), which it does not read
    bad = json.dumps({"type": "start", "spec": {**DE_SPEC, "bounds": [[1, 0]] * 30}})
    launch.settimeout(2)
    for _ in range(200):
        try:
            for _ in range(100):
                launch.send(bad)
        except websocket.WebSocketTimeoutException:
            pass  # the server is busy answering (or no longer reads a socket it is closing)
        if "dropped a socket" in site.log():
            break
    assert wait_until(lambda: "dropped a socket" in site.log()), "never dropped"
    launch.settimeout(30)
    messages, code = read_all(launch)
    assert code == 4429, (code, messages[-2:])
    assert all(m["code"] == "invalid_spec" for m in messages[:-1]) and len(messages) > 1
    assert messages[-1]["code"] == "limit" and "?after=" in messages[-1]["message"]
    # the server goes on: a new socket launches a run
    again = alice.socket(site, "/ws/runs/")
    again.send({"type": "start", "spec": DE_SPEC})
    _, got = again.until("finished")
    assert got[-1]["run"]["status"] == "finished"
    again.close()
    text = site.log()
    assert "Traceback" not in text and " 500 " not in text, text[-4000:]
