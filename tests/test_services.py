"""runs.services and its executor: persist then publish, batching, counters, checkpoints, orphans."""

import asyncio
import contextlib
import io
import json
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.utils import timezone

from runs import executor, services
from runs.models import Run, Step
from runs.optim import decode_checkpoint, restore_stepper, validate_spec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords", "executors")]

FAST = {"method": "de", "problem": "sphere", "bounds": [[-5, 5], [-5, 5]],
        "options": {"maxiter": 2000, "tol": 0, "atol": 0, "polish": False, "seed": 3}}
# Rosenbrock in 20-D with 20 members does not collapse for thousands of generations.
LONG = {"method": "de", "problem": "rosenbrock", "dim": 20, "bounds": [[-5, 5]] * 20,
        "options": {"maxiter": 20000, "tol": 0, "polish": False, "seed": 2, "popsize": 1}}
PROTOCOL_RUN_KEYS = {"id", "url", "owner", "method", "problem", "params", "dim", "bounds", "x0", "options",
                     "status", "created", "started", "finished", "n_steps", "result", "error"}


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def launch(owner, spec):
    run = services.launch(owner=owner, data=spec)
    return run["id"], executor.get(run["id"])


async def test_every_published_step_is_already_stored(alice):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    run = await database_sync_to_async(services.create_run)(owner=alice, data={**LONG, "options": {
        **LONG["options"], "maxiter": 600}})
    await layer.group_add(run.group_name, channel)
    await database_sync_to_async(services.start_run)(run_id=run.pk, loop=asyncio.get_running_loop())

    @database_sync_to_async
    def stored(first, last):
        return list(Step.objects.filter(run=run, seq__gte=first, seq__lte=last).order_by("seq")
                    .values_list("data", flat=True))

    expected, events = 0, 0
    while True:
        event = await asyncio.wait_for(layer.receive(channel), 10)
        if event["type"] == "run.finished":
            break
        assert event["type"] == "run.steps" and event["first"] == expected  # in seq order, no gap
        texts = event["steps"]
        assert await stored(expected, expected + len(texts) - 1) == texts  # on disk before we heard
        expected += len(texts)
        events += 1
    assert event["run"]["n_steps"] == expected == 601 and event["run"]["status"] == "finished"
    assert events < 100  # batched


def test_a_fast_run_batches_its_transactions_and_keeps_its_counters(alice):
    spec = {"method": "de", "problem": "rosenbrock", "dim": 3, "bounds": [[-5, 5]] * 3,
            "options": {"maxiter": 2000, "tol": 0, "polish": False, "seed": 3, "popsize": 2}}
    run_id, execution = launch(alice, spec)
    assert services.wait_for_run(run_id=run_id, timeout=60)
    run = Run.objects.get(pk=run_id)
    steps = list(Step.objects.filter(run_id=run_id).order_by("seq"))
    assert run.status == "finished" and run.n_steps == len(steps) == 2001
    assert [s.seq for s in steps] == list(range(2001))
    assert execution.flushes < run.n_steps / 10, execution.flushes
    last = json.loads(steps[-1].data)
    assert (run.nit, run.nfev, run.elapsed) == (last["nit"], last["nfev"], last["elapsed"])
    assert run.best_fun == min(s.fun for s in steps)
    assert run.result["nit"] == 2000 and run.checkpoint is None  # no checkpoint kept once ended
    for s in steps[::400]:  # scalar columns are the stored JSON's
        d = json.loads(s.data)
        assert (s.nit, s.phase, s.fun, s.nfev, s.njev, s.elapsed) == (
            d["nit"], d["phase"], d["fun"], d["nfev"], d["njev"], d["elapsed"])


def test_the_checkpoint_is_written_with_the_steps_it_follows(alice):
    run_id, execution = launch(alice, LONG)
    spec = validate_spec(LONG)
    for _ in range(3):  # while it runs, the stored checkpoint always follows the last stored step
        time.sleep(0.05)
        n_steps, blob = Run.objects.filter(pk=run_id).values_list("n_steps", "checkpoint").get()
        if blob is not None:
            assert decode_checkpoint(bytes(blob))["state"]["seq"] == n_steps
    assert services.pause_run(user=alice, run_id=run_id)[0]
    assert wait_until(lambda: Run.objects.get(pk=run_id).status == "paused")
    run = Run.objects.get(pk=run_id)
    time.sleep(0.1)
    assert Run.objects.get(pk=run_id).n_steps == run.n_steps  # paused: nothing more
    # The stored state continues exactly as the live run does.
    twin = restore_stepper(spec, bytes(run.checkpoint))
    predicted = next(twin).to_dict()
    assert services.resume_run(user=alice, run_id=run_id)[0]
    assert wait_until(lambda: Step.objects.filter(run_id=run_id, seq=run.n_steps).exists())
    actual = json.loads(Step.objects.get(run_id=run_id, seq=run.n_steps).data)
    predicted.pop("elapsed"), actual.pop("elapsed")
    assert actual == json.loads(services.dumps(predicted))
    assert services.stop_run(user=alice, run_id=run_id)[0]
    assert services.wait_for_run(run_id=run_id, timeout=30)
    assert Run.objects.get(pk=run_id).status == "stopped"


def test_heartbeats_go_on_while_paused(alice, monkeypatch):
    monkeypatch.setattr(executor, "HEARTBEAT_EVERY", 0.1)
    run_id, execution = launch(alice, LONG)
    services.pause_run(user=alice, run_id=run_id)
    assert wait_until(lambda: Run.objects.get(pk=run_id).status == "paused")
    first = Run.objects.get(pk=run_id).heartbeat
    assert wait_until(lambda: Run.objects.get(pk=run_id).heartbeat > first, timeout=3)
    services.stop_run(user=alice, run_id=run_id)


def test_the_sweep_marks_only_orphans(alice, settings):
    settings.OPTSITE_MAX_CONCURRENT_RUNS = 10
    old = timezone.now() - timezone.timedelta(seconds=60)
    make = lambda **kw: Run.objects.create(owner=alice, method="de", problem="sphere", spec=FAST, **kw)  # noqa: E731
    orphan = make(status="running", heartbeat=old)
    never_beat = make(status="queued", created=old)
    paused_orphan = make(status="paused", heartbeat=old)
    fresh = make(status="running", heartbeat=timezone.now())  # another server's live run
    done = make(status="finished", heartbeat=old)
    live_id, _ = launch(alice, LONG)
    Run.objects.filter(pk=live_id).update(heartbeat=old)  # driven here: never an orphan
    assert sorted(services.sweep_orphans()) == sorted([orphan.pk, never_beat.pk, paused_orphan.pk])
    statuses = dict(Run.objects.values_list("pk", "status"))
    assert statuses[orphan.pk] == statuses[never_beat.pk] == statuses[paused_orphan.pk] == "interrupted"
    assert (statuses[fresh.pk], statuses[done.pk], statuses[live_id]) == ("running", "finished", "running")
    out = io.StringIO()
    call_command("mark_interrupted", "--stale-after", "0", stdout=out)
    assert f"marked 1 run(s) interrupted: {fresh.pk}" in out.getvalue()
    services.stop_run_and_wait(run_id=live_id)


def test_a_failing_run_fails_in_words(alice):
    # An interrupted run whose checkpoint belongs to another spec cannot continue.
    donor_id, _ = launch(alice, LONG)
    assert wait_until(lambda: Run.objects.get(pk=donor_id).n_steps > 0)
    services.pause_run(user=alice, run_id=donor_id)
    assert wait_until(lambda: Run.objects.get(pk=donor_id).status == "paused")
    blob = Run.objects.get(pk=donor_id).checkpoint
    services.stop_run_and_wait(run_id=donor_id)
    other = {**LONG, "options": {**LONG["options"], "seed": 99}}
    run = Run.objects.create(owner=alice, method="de", problem="rosenbrock", spec=validate_spec(other).to_dict(),
                             status="interrupted", checkpoint=blob, n_steps=5)
    accepted, payload = services.resume_run(user=alice, run_id=run.pk)
    assert accepted and payload["status"] == "running"
    assert services.wait_for_run(run_id=run.pk, timeout=10)
    run.refresh_from_db()
    assert run.status == "failed" and "different spec" in run.error
    assert services.run_to_dict(run)["error"] == run.error


def test_create_run_validates_and_caps(alice, charlie, settings):
    with pytest.raises(services.ServiceError) as caught:
        services.create_run(owner=alice, data={"method": "de", "problem": "nope"})
    assert caught.value.code == "invalid_spec" and "problem" in caught.value.errors
    with pytest.raises(services.ServiceError) as caught:
        services.create_run(owner=alice, data=[1])
    assert caught.value.code == "invalid_spec"
    settings.OPTSITE_MAX_DIM = 3
    with pytest.raises(services.ServiceError) as caught:
        services.create_run(owner=alice, data={**FAST, "dim": 4, "bounds": [[-1, 1]] * 4})
    assert caught.value.code == "limit"
    settings.OPTSITE_MAX_CONCURRENT_RUNS = 2
    services.create_run(owner=alice, data=FAST)
    services.create_run(owner=alice, data=FAST)
    with pytest.raises(services.ServiceError) as caught:
        services.create_run(owner=alice, data=FAST)
    assert caught.value.code == "limit" and "limit is 2" in caught.value.message
    services.create_run(owner=charlie, data=FAST)  # per user


def test_run_to_dict_is_protocols_run(alice):
    run = services.create_run(owner=alice, data=FAST)
    d = services.run_to_dict(run)
    assert PROTOCOL_RUN_KEYS <= set(d)
    assert d["url"] == f"/runs/{run.pk}/" and d["owner"] == "alice" and d["status"] == "queued"
    assert d["bounds"] == [[-5.0, 5.0], [-5.0, 5.0]] and d["options"]["maxiter"] == 2000
    assert d["error"] is None and d["result"] is None and d["finished"] is None
    assert services.get_run_for(alice, run.pk) == run and services.get_run_for(alice, "x") is None


def test_batches_are_split_below_the_socket_limit():
    texts = ["x" * 100_000] * 25
    events = list(executor.step_events(7, 10, texts))
    assert len(events) > 1 and sum(len(e["steps"]) for e in events) == 25
    assert [e["first"] for e in events] == [10 + sum(len(e["steps"]) for e in events[:i]) for i in range(len(events))]
    assert all(sum(len(t) for t in e["steps"]) <= executor.MAX_BATCH_CHARS for e in events)


def test_json_has_no_nan():
    assert services.dumps({"a": float("nan"), "b": [1.0, float("inf")], "c": 1.5}) == '{"a":null,"b":[1.0,null],"c":1.5}'


def test_the_headless_command_runs_a_spec_through_the_services(alice, tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**FAST, "options": {**FAST["options"], "maxiter": 50}}))  # 50 < 97
    out = io.StringIO()
    call_command("run_spec", str(path), "--user", "alice", stdout=out, stderr=io.StringIO())
    run = json.loads(out.getvalue())
    assert run["status"] == "finished" and run["n_steps"] == 51
    assert Step.objects.filter(run_id=run["id"]).count() == 51


# ---- controls from another server process ---------------------------------------------------
@contextlib.contextmanager
def driven_elsewhere():
    """services sees no Execution here, as in a server process that does not drive the run."""
    original = executor.get
    executor.get = lambda run_id: None
    try:
        yield
    finally:
        executor.get = original


def control_elsewhere(user, run_id, action):
    with driven_elsewhere():
        return services.control_run(user=user, run_id=run_id, action=action)


async def next_event(layer, channel, kind, timeout=5.0):
    """Events up to and including the first of type `kind`."""
    events = []
    while True:
        events.append(await asyncio.wait_for(layer.receive(channel), timeout))
        if events[-1]["type"] == kind:
            return events


async def test_a_control_recorded_by_another_process_is_carried_out_by_the_executor(alice):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    run = await database_sync_to_async(services.create_run)(owner=alice, data=LONG)
    await layer.group_add(run.group_name, channel)
    await database_sync_to_async(services.start_run)(run_id=run.pk, loop=asyncio.get_running_loop())
    events = await next_event(layer, channel, "run.steps")
    control = database_sync_to_async(control_elsewhere)
    row = database_sync_to_async(lambda: Run.objects.get(pk=run.pk))

    t0 = time.monotonic()
    accepted, answer = await control(alice, run.pk, "pause")
    assert accepted and answer["status"] == "running"  # recorded; the executor will say "paused"
    assert (await control(alice, run.pk, "pause"))[0] is False  # one pause is enough
    events += await next_event(layer, channel, "run.status")
    assert events[-1]["run"]["status"] == "paused" and time.monotonic() - t0 < 1.0
    paused_at = (await row()).n_steps
    with pytest.raises(asyncio.TimeoutError):  # no steps while paused
        events.append(await asyncio.wait_for(layer.receive(channel), 0.5))
    assert (await row()).n_steps == paused_at and (await row()).control_requests == ""

    # A request this process's executor finds already done is answered with the status.
    await database_sync_to_async(Run.objects.filter(pk=run.pk).update)(control_requests="pause")
    events += await next_event(layer, channel, "run.status")
    assert events[-1]["run"]["status"] == "paused" and (await row()).n_steps == paused_at

    assert (await control(alice, run.pk, "resume"))[0]
    events += await next_event(layer, channel, "run.status")
    assert events[-1]["run"]["status"] == "running"
    events += await next_event(layer, channel, "run.steps")
    assert events[-1]["first"] == paused_at  # nothing lost, nothing repeated
    assert (await control(alice, run.pk, "stop"))[0]
    events += await next_event(layer, channel, "run.finished")
    assert [e["run"]["status"] for e in events if e["type"] == "run.status"][-1] == "stopped"
    assert await asyncio.to_thread(services.wait_for_run, run_id=run.pk, timeout=10)
    final = await row()
    assert final.status == "stopped" and final.control_requests == "" and final.checkpoint is None
    seqs = await database_sync_to_async(lambda: list(Step.objects.filter(run=run).values_list("seq", flat=True)))()
    assert seqs == list(range(final.n_steps))
    published = [n for e in events if e["type"] == "run.steps" for n in range(e["first"], e["first"] + len(e["steps"]))]
    assert published == seqs


def test_a_control_from_another_process_does_not_wait_for_a_flush(alice, monkeypatch):
    monkeypatch.setattr(executor, "FLUSH_INTERVAL", 30.0)  # a run that writes rarely (big checkpoints)
    monkeypatch.setattr(executor, "FLUSH_STEPS", 10**9)
    run_id, execution = launch(alice, LONG)
    assert wait_until(lambda: execution.stepper is not None and execution.stepper.done is False)
    time.sleep(0.1)
    t0 = time.monotonic()
    assert control_elsewhere(alice, run_id, "pause")[0]
    assert wait_until(lambda: Run.objects.get(pk=run_id).status == "paused", timeout=5)
    assert time.monotonic() - t0 < 1.0  # taken within CONTROL_POLL, not at a flush:
    assert wait_until(lambda: execution.flushes == 1) and Run.objects.get(pk=run_id).n_steps > 100  # the pause's
    t0 = time.monotonic()
    assert control_elsewhere(alice, run_id, "stop")[0]
    assert services.wait_for_run(run_id=run_id, timeout=5) and time.monotonic() - t0 < 1.0
    assert Run.objects.get(pk=run_id).status == "stopped"


def test_a_control_on_an_ended_run_is_a_conflict_from_any_process(alice):
    run_id, _ = launch(alice, {**FAST, "options": {**FAST["options"], "maxiter": 30}})
    assert services.wait_for_run(run_id=run_id, timeout=30)
    before = Run.objects.get(pk=run_id)
    steps = list(Step.objects.filter(run_id=run_id).values_list("seq", "data"))
    for action in ("pause", "resume", "stop"):
        for call in (services.control_run, lambda **kw: control_elsewhere(kw["user"], kw["run_id"], kw["action"])):
            with pytest.raises(services.ServiceError) as caught:
                call(user=alice, run_id=run_id, action=action)
            assert caught.value.code == "conflict" and "finished" in caught.value.message
        with pytest.raises(services.ServiceError):
            services.request_control(run_id=run_id, action=action)
    after = Run.objects.get(pk=run_id)
    assert (after.status, after.n_steps, after.result, after.control_requests) == (
        before.status, before.n_steps, before.result, "")
    assert list(Step.objects.filter(run_id=run_id).values_list("seq", "data")) == steps


def test_controls_for_a_run_whose_process_died_wait_and_die_with_it(alice, settings):
    old = timezone.now() - timezone.timedelta(seconds=60)
    spec = validate_spec({**FAST, "options": {**FAST["options"], "maxiter": 30}}).to_dict()
    run = Run.objects.create(owner=alice, method="de", problem="sphere", spec=spec, status="running",
                             started=old, heartbeat=old)
    assert services.pause_run(user=alice, run_id=run.pk) == (True, services.run_to_dict(run))
    assert services.pause_run(user=alice, run_id=run.pk)[0] is False
    assert services.resume_run(user=alice, run_id=run.pk)[0]
    assert services.stop_run(user=alice, run_id=run.pk)[0]
    assert services.stop_run(user=alice, run_id=run.pk)[0] is False  # one stop waits already
    assert services.resume_run(user=alice, run_id=run.pk)[0] is False  # stopping
    run.refresh_from_db()
    assert run.control_requests == "pause resume stop"
    Run.objects.filter(pk=run.pk).update(control_requests=" ".join(["pause", "resume"] * 4))
    with pytest.raises(services.ServiceError) as caught:
        services.pause_run(user=alice, run_id=run.pk)
    assert caught.value.code == "conflict" and "try again" in caught.value.message
    t0 = time.monotonic()
    assert services.stop_run_and_wait(run_id=run.pk, timeout=10)  # nobody drives it: no wait
    assert time.monotonic() - t0 < 1
    # The monitor marks it interrupted and drops what waited; resuming starts clean.
    assert services.sweep_orphans() == [run.pk]
    run.refresh_from_db()
    assert run.status == "interrupted" and run.control_requests == ""
    accepted, payload = services.resume_run(user=alice, run_id=run.pk)
    assert accepted and payload["status"] == "running"
    assert services.wait_for_run(run_id=run.pk, timeout=30)
    run.refresh_from_db()
    assert run.status == "finished" and run.n_steps == 31 and run.control_requests == ""
