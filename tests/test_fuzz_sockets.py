"""Both sockets fuzzed against a real daphne with real workers: whatever a client sends, it gets an
error in words (or the right answer, for what is valid), its socket stays open and usable, nothing
stored changes for what was refused, and the server logs no traceback and closes nothing with 1011.

Targets: the launch socket, and watch sockets of alice's runs in every state (finished, stopped,
paused, running) and of a path naming someone else's or no run. Frames: text that is not JSON,
binary frames, arbitrary JSON values, messages of every type with fields of any JSON (huge
integers, huge strings, deep nesting, NaN and Infinity spelled out), and controls on each run.
"""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.fuzzing import fuzz_settings
from tests.live_client import Client, handshake, steps
from tests.servers import Daphne

PASSWORD = "fuzzing both sockets"
DE_SPEC = {"method": "de", "problem": "rosenbrock", "bounds": [[-2, 2], [-2, 2]], "options": {"maxiter": 30, "seed": 1}}
# Steps for as long as the module runs (tol=0: it never converges), slowly enough (1,000 members
# a generation) that a replay of it stays short.
LONG = {"method": "de", "problem": "rosenbrock", "dim": 40, "bounds": [[-5, 5]] * 40,
        "options": {"maxiter": 20000, "tol": 0, "polish": False, "seed": 2, "popsize": 25}}
CODES = {"invalid_spec", "bad_message", "not_found", "conflict", "limit"}
FOLLOW_UP = {"type": "dance"}  # a message every socket refuses the same way: the socket still answers


class Fuzzed:
    """The server, alice's runs in every state, and one open socket per target."""

    def __init__(self, site):
        self.site = site
        self.alice = Client(site, "alice", PASSWORD)
        self.charlie = Client(site, "charlie", PASSWORD)
        self.runs = {"finished": self.launch(DE_SPEC), "stopped": self.launch(LONG, then="stop"),
                     "paused": self.launch(LONG, then="pause"), "running": self.launch(LONG)}
        self.foreign = self.launch(DE_SPEC, client=self.charlie)
        self.sockets = {"launch": self.alice.socket(site, "/ws/runs/")}
        for state, run in self.runs.items():
            watch = self.alice.socket(site, f"/ws/runs/{run['id']}/?after={10**9}")
            watch.until("finished" if state in ("finished", "stopped") else "run")
            self.sockets[state] = watch

    def launch(self, spec, then=None, client=None):
        socket = (client or self.alice).socket(self.site, "/ws/runs/")
        socket.send({"type": "start", "spec": spec})
        _, got = socket.until("started", timeout=60)
        run = got[-1]["run"]
        if spec is DE_SPEC:
            _, got = socket.until("finished", timeout=60)
            run = got[-1]["run"]
        else:
            socket.until("steps", timeout=60)
            if then == "stop":
                socket.send({"type": "stop"})
                _, got = socket.until("finished", timeout=60, status="stopped")
                run = got[-1]["run"]
            elif then == "pause":
                socket.send({"type": "pause"})
                socket.until("status", timeout=60, status="paused")
        socket.close()
        return run

    def stored(self) -> list[tuple]:
        """What must not change: every run's row (but an active run's counters) and ended runs' steps."""
        rows = self.site.query(
            "SELECT id, owner_id, status, label, spec, result, error, control_requests, "
            "CASE WHEN status IN ('finished', 'stopped', 'failed') THEN n_steps END FROM runs_run ORDER BY id")
        steps = self.site.query(
            "SELECT run_id, COUNT(*), MAX(seq) FROM runs_step WHERE run_id IN "
            "(SELECT id FROM runs_run WHERE status IN ('finished', 'stopped', 'failed')) GROUP BY run_id")
        return rows + steps


@pytest.fixture(scope="module")
def fuzzed():
    with Daphne({"alice": PASSWORD, "charlie": PASSWORD}, env={"OPTSITE_MAX_EVALUATIONS": str(10**9)}) as site:
        yield Fuzzed(site)


# ---- frames ----------------------------------------------------------------------------------
# Integers past every field's range: past a C long, a double (309 digits), up to the 4,300 digits
# Python converts (more are refused by the reader itself).
HUGE_INTS = (st.sampled_from([20, 39, 309, 400, 1000, 4300]) | st.integers(20, 4300)).map(lambda n: 10**n - 1) \
    | st.integers(2**63, 2**70)
NUMBERS = st.integers() | HUGE_INTS | st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | NUMBERS | st.text(max_size=40)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                    max_leaves=20)
TYPES = st.sampled_from(["start", "stop", "pause", "resume", "subscribe"]) | st.text(max_size=20)


def message(kind, fields):
    return json.dumps({"type": kind, **fields})


def spec_variant(field, value):
    return {**DE_SPEC, field: value}


FRAMES = st.one_of(
    st.text(max_size=200).map(lambda t: ("text", t)),  # mostly not JSON
    st.binary(max_size=100).map(lambda b: ("bytes", b)),
    JSON.map(lambda v: ("text", json.dumps(v))),  # not an object, or without a type
    st.builds(message, TYPES, st.dictionaries(st.text(max_size=10), JSON, max_size=4)).map(lambda t: ("text", t)),
    JSON.map(lambda v: ("text", message("subscribe", {"after": v}))),
    st.builds(lambda field, v: message("start", {"spec": spec_variant(field, v)}),
              st.sampled_from(["method", "problem", "dim", "bounds", "x0", "params", "options"]),
              JSON).map(lambda t: ("text", t)),
    st.builds(lambda key, v: message("start", {"spec": {**DE_SPEC, "options": {key: v}}}),
              st.sampled_from(["maxiter", "popsize", "seed", "tol", "mutation", "strategy", "nope"]),
              JSON).map(lambda t: ("text", t)),
    st.builds(lambda v: message("start", {"spec": DE_SPEC, "label": v}), JSON).map(lambda t: ("text", t)),
    # huge integers where a number belongs: in the spec, its options, its bounds, and `after`
    st.builds(lambda field, v: message("start", {"spec": spec_variant(field, v)}),
              st.sampled_from(["dim", "x0", "bounds"]), HUGE_INTS.map(lambda n: n) | HUGE_INTS.map(lambda n: [[-n, n]] * 2)
              ).map(lambda t: ("text", t)),
    st.builds(lambda key, v: message("start", {"spec": {**DE_SPEC, "options": {key: v}}}),
              st.sampled_from(["maxiter", "popsize", "seed", "tol", "mutation", "recombination"]),
              HUGE_INTS | HUGE_INTS.map(lambda n: -n)).map(lambda t: ("text", t)),
    st.builds(lambda v: message("start", {"spec": {**DE_SPEC, "params": {"a": v, "b": 100}}}),
              HUGE_INTS).map(lambda t: ("text", t)),
    (HUGE_INTS | HUGE_INTS.map(lambda n: -n)).map(lambda n: ("text", message("subscribe", {"after": n}))),
    st.integers(33, 3000).map(lambda n: ("text", '{"type": "start", "spec": ' + "[" * n + "]" * n + "}")),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999"]).map(
        lambda token: ("text", '{"type": "subscribe", "after": ' + token + "}")),
    st.integers(1000, 600_000).map(lambda n: ("text", message("x" * n, {}))),
    st.integers(1000, 600_000).map(lambda n: ("text", message("start", {"spec": {**DE_SPEC, "method": "m" * n}}))),
    st.integers(100, 20_000).map(lambda n: ("text", message("start", {"spec": {**DE_SPEC, "bounds": [[1, 0]] * n}}))),
    st.sampled_from(["\\ud800", "\\udfff", "a\\udc00b"]).map(lambda s: ("text", '{"type": "' + s + '"}')),
)
TARGETS = st.sampled_from(["launch", "finished", "stopped", "paused", "running"])
# Controls that change nothing, or are refused, on a run in each state (the state changes themselves
# are tested in test_consumers.py): (target, control)
NO_OP_CONTROLS = st.sampled_from([
    ("finished", "stop"), ("finished", "pause"), ("finished", "resume"),
    ("stopped", "stop"), ("stopped", "pause"), ("stopped", "resume"),
    ("paused", "pause"), ("running", "resume"), ("launch", "stop"), ("launch", "pause"), ("launch", "resume"),
])


def replies(socket, timeout=30.0) -> list[dict]:
    """What the socket said up to the answer to FOLLOW_UP (steps of a live run aside)."""
    got = []
    while True:
        _, m = socket.next(timeout)
        if m["type"] == "steps":
            continue
        assert m["type"] != "closed", f"the socket closed: {m}; before: {got}"
        if m["type"] == "error" and m["code"] == "bad_message" and "'dance'" in m["message"]:
            return got
        got.append(m)


def assert_in_words(error):
    assert error["type"] == "error" and error["code"] in CODES, error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    assert isinstance(error["errors"], dict)
    assert len(json.dumps(error)) < 8192, f"a reply of {len(json.dumps(error))} characters"


def send_frame(socket, frame):
    kind, data = frame
    socket.send_bytes(data) if kind == "bytes" else socket.send_text(data)


def log_since(site, mark: int) -> str:
    return site.log()[mark:]


def assert_quiet(site, mark):
    text = log_since(site, mark)
    assert "Traceback" not in text and "ERROR" not in text and " 500 " not in text, text[-3000:]


CHANGES = {("running", "pause"), ("running", "stop"), ("paused", "resume"), ("paused", "stop")}


def read_as(frame) -> dict | None:
    """The message the server reads in a frame, if it reads one."""
    from runs.optim.jsoninput import InputError, loads

    kind, data = frame
    try:
        content = loads(data) if kind == "text" else None
    except InputError:
        return None
    return content if isinstance(content, dict) else None


def control_of(frame) -> str | None:
    """The control a frame asks for, if the server will read it as one."""
    content = read_as(frame) or {}
    return content.get("type") if content.get("type") in ("stop", "pause", "resume") else None


def replays(frame) -> bool:
    """A valid subscribe: its replay runs beside the answers to what follows it."""
    content = read_as(frame) or {}
    after = content.get("after")
    return content.get("type") == "subscribe" and (
        after is None or (type(after) is int and -1 <= after < 2**63))


@fuzz_settings
@given(target=TARGETS, frame=FRAMES)
def test_any_frame_on_either_socket_is_answered_in_words_and_changes_nothing(fuzzed, target, frame):
    control = control_of(frame)
    # controls that change a run are tested in test_consumers.py: here the runs keep their states
    assume((target, control) not in CHANGES)
    site, socket = fuzzed.site, fuzzed.sockets[target]
    mark, before = len(site.log()), fuzzed.stored()
    send_frame(socket, frame)
    socket.send(FOLLOW_UP)
    got = replies(socket)
    if replays(frame) and target in ("finished", "stopped") and not any(m["type"] == "finished" for m in got):
        # the replay of an ended run ends with "finished"
        got += [m for m in socket.until("finished")[1] if m["type"] != "steps"]
    if any(m["type"] == "started" for m in got):  # by chance a valid spec: its run is the answer
        socket.send({"type": "stop"})
        socket.until("finished", timeout=60)
        return
    answers = [m for m in got if m["type"] != "finished"]  # a valid subscribe replays to "finished"
    for answer in answers:
        if control is not None and target in ("paused", "running"):  # one that changes nothing
            assert answer["type"] == "status" and answer["run"]["status"] == target, answer
        else:
            assert_in_words(answer)
    assert len(answers) <= 1, got
    assert len(answers) == 1 or target != "launch", got
    assert fuzzed.stored() == before
    assert_quiet(site, mark)


@fuzz_settings
@given(control=NO_OP_CONTROLS, extra=st.dictionaries(st.sampled_from(["run_id", "after", "spec", "x"]), JSON, max_size=2))
def test_controls_in_every_state_answer_how_things_stand_or_refuse_in_words(fuzzed, control, extra):
    target, action = control
    site, socket = fuzzed.site, fuzzed.sockets[target]
    mark, before = len(site.log()), fuzzed.stored()
    socket.send({**extra, "type": action})
    socket.send(FOLLOW_UP)
    [answer] = [m for m in replies(socket)]
    if target in ("paused", "running"):  # nothing to change: how it stands
        assert answer["type"] == "status" and answer["run"]["status"] == target, answer
        assert answer["run"]["id"] == fuzzed.runs[target]["id"]
    else:
        assert_in_words(answer)
        assert answer["code"] == "conflict", answer
    assert fuzzed.stored() == before
    assert_quiet(site, mark)


@fuzz_settings
@given(after=st.integers(-1, 40) | st.just(None))
def test_a_valid_subscribe_replays_exactly_what_follows_after(fuzzed, after):
    socket = fuzzed.sockets["finished"]
    socket.send({"type": "subscribe", "after": after})
    _, got = socket.until("finished")
    n = fuzzed.runs["finished"]["n_steps"]
    assert [s["seq"] for s in steps(got)] == list(range((-1 if after is None else after) + 1, n))


@fuzz_settings
@given(segment=st.one_of(st.text(alphabet=st.characters(codec="ascii", exclude_characters="/?#"), min_size=1, max_size=30),
                         HUGE_INTS.map(str), st.integers(-10**6, 0).map(str), st.just("foreign")),
       tail=st.sampled_from(["/", "/x/", ""]))
def test_a_watch_path_that_names_no_run_of_yours_is_not_found_and_closed_4404(fuzzed, segment, tail):
    site = fuzzed.site
    if segment == "foreign":
        segment = str(fuzzed.foreign["id"])
    if segment.isdigit() and tail == "/" and 0 < int(segment) < 2**63 and \
            site.query("SELECT 1 FROM runs_run r JOIN auth_user u ON u.id = r.owner_id "
                       "WHERE r.id = ? AND u.username = 'alice'", int(segment)):
        return  # one of alice's own: a valid watch
    mark = len(site.log())
    from urllib.parse import quote

    path = f"/ws/runs/{quote(segment, safe='')}{tail}"
    answer = fuzzed.alice.handshake(site, path)
    assert answer.status == 101 and answer.close_code == 4404, (path, answer)
    [error] = answer.messages
    assert_in_words(error)
    assert error["code"] == "not_found"
    assert handshake(site, path).status == 403  # and nothing at all without a login
    assert_quiet(site, mark)


def test_the_sockets_stayed_open_throughout(fuzzed):
    """After every case above: each socket still answers, and none was closed by an error."""
    for name, socket in fuzzed.sockets.items():
        socket.send(FOLLOW_UP)
        replies(socket)
    text = fuzzed.site.log()
    assert "Traceback" not in text, text[-3000:]
    print(f"fuzz cases per property: {fuzz_settings.max_examples}", file=sys.stderr)
