"""runs.services with the local pool's worker processes: persist then publish, batching, counters,
checkpoints, controls, the queue."""

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

from runs import leases, publishing, services
from runs.models import Run, Step
from runs.optim import decode_checkpoint, restore_stepper, validate_spec
from tests.polling import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords", "workers")]

FAST = {"method": "de", "problem": "sphere", "bounds": [[-5, 5], [-5, 5]],
        "options": {"maxiter": 2000, "tol": 0, "atol": 0, "polish": False, "seed": 3}}
# Rosenbrock in 20-D with 20 members does not collapse for thousands of generations.
LONG = {"method": "de", "problem": "rosenbrock", "dim": 20, "bounds": [[-5, 5]] * 20,
        "options": {"maxiter": 20000, "tol": 0, "polish": False, "seed": 2, "popsize": 1}}
PROTOCOL_RUN_KEYS = {"id", "url", "owner", "method", "problem", "params", "dim", "bounds", "x0", "options",
                     "status", "created", "started", "finished", "n_steps", "result", "error"}




def launch(owner, spec):
    return services.launch(owner=owner, data=spec)["id"]


async def listen(run):
    """A channel in the run's group; this test's loop is where the pool's events arrive."""
    publishing.remember_loop(asyncio.get_running_loop())
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(run.group_name, channel)
    return layer, channel


async def test_every_published_step_is_already_stored(alice):
    run = await database_sync_to_async(services.create_run)(owner=alice, data={**LONG, "options": {
        **LONG["options"], "maxiter": 600}})
    layer, channel = await listen(run)
    await database_sync_to_async(services.start_run)(run_id=run.pk)

    @database_sync_to_async
    def stored(first, last):
        return list(Step.objects.filter(run=run, seq__gte=first, seq__lte=last).order_by("seq")
                    .values_list("data", flat=True))

    expected, events = 0, 0
    while True:
        event = await asyncio.wait_for(layer.receive(channel), 10)
        if event["type"] == "run.finished":
            break
        if event["type"] == "run.status":
            assert event["run"]["status"] == "running" and expected == 0
            continue
        assert event["type"] == "run.steps" and event["first"] == expected  # in seq order, no gap
        texts = event["steps"]
        on_disk = await stored(expected, expected + len(texts) - 1)  # on disk before we heard
        assert on_disk[:-1] == texts[:-1]  # light steps, as stored
        # the newest is complete: the stored light step with its bulky fields, decoded from the disk
        newest = json.loads(texts[-1])
        assert {**newest, "extra": {k: v for k, v in newest["extra"].items() if not k.startswith("population")}} \
            == json.loads(on_disk[-1])
        assert len(newest["extra"]["population"]) == len(newest["extra"]["population_energies"]) == 20
        complete = await database_sync_to_async(services.step_text)(run_id=run.pk, seq=expected + len(texts) - 1)
        assert newest == json.loads(complete[1])
        expected += len(texts)
        events += 1
    assert event["run"]["n_steps"] == expected == 601 and event["run"]["status"] == "finished"
    assert events < 100  # batched


async def test_a_fast_run_batches_its_transactions_and_keeps_its_counters(alice):
    spec = {"method": "de", "problem": "rosenbrock", "dim": 3, "bounds": [[-5, 5]] * 3,
            "options": {"maxiter": 2000, "tol": 0, "polish": False, "seed": 3, "popsize": 2}}
    created = await database_sync_to_async(services.create_run)(owner=alice, data=spec)
    layer, channel = await listen(created)
    await database_sync_to_async(services.start_run)(run_id=created.pk)
    batches = 0  # one flush (one transaction) publishes one batch
    while (event := await asyncio.wait_for(layer.receive(channel), 30))["type"] != "run.finished":
        batches += event["type"] == "run.steps"
    await database_sync_to_async(check_counters)(created.pk, batches)


def check_counters(run_id, batches):
    run = Run.objects.get(pk=run_id)
    steps = list(Step.objects.filter(run_id=run_id).order_by("seq"))
    assert run.status == "finished" and run.n_steps == len(steps) == 2001
    assert [s.seq for s in steps] == list(range(2001))
    assert batches < run.n_steps / 10, batches
    last = json.loads(steps[-1].data)
    assert (run.nit, run.nfev, run.elapsed) == (last["nit"], last["nfev"], last["elapsed"])
    assert run.best_fun == min(s.fun for s in steps)
    assert run.result["nit"] == 2000 and run.checkpoint is None  # no checkpoint kept once ended
    for s in steps[::400]:  # scalar columns are the stored JSON's
        d = json.loads(s.data)
        assert (s.nit, s.phase, s.fun, s.nfev, s.njev, s.elapsed) == (
            d["nit"], d["phase"], d["fun"], d["nfev"], d["njev"], d["elapsed"])


def test_the_checkpoint_is_written_with_the_steps_it_follows(alice):
    run_id = launch(alice, LONG)
    spec = validate_spec(LONG)
    for _ in range(3):  # while it runs, the stored checkpoint always follows the last stored step
        time.sleep(0.05)
        n_steps, blob = Run.objects.filter(pk=run_id).values_list("n_steps", "checkpoint").get()
        if blob is not None:
            assert decode_checkpoint(bytes(blob))["state"]["seq"] == n_steps
    assert wait_until(lambda: Run.objects.get(pk=run_id).n_steps > 0)
    assert services.pause_run(user=alice, run_id=run_id)[0]
    assert wait_until(lambda: Run.objects.get(pk=run_id).status == "paused")
    run = Run.objects.get(pk=run_id)
    assert run.lease_holder == "" and run.worker is None  # a paused run holds no worker
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


def test_a_failing_run_fails_in_words(alice):
    # An interrupted run whose checkpoint belongs to another spec cannot continue.
    donor_id = launch(alice, LONG)
    assert wait_until(lambda: Run.objects.get(pk=donor_id).n_steps > 0)
    services.pause_run(user=alice, run_id=donor_id)
    assert wait_until(lambda: Run.objects.get(pk=donor_id).status == "paused")
    blob = Run.objects.get(pk=donor_id).checkpoint
    services.stop_run_and_wait(run_id=donor_id)
    other = {**LONG, "options": {**LONG["options"], "seed": 99}}
    run = Run.objects.create(owner=alice, method="de", problem="rosenbrock", spec=validate_spec(other).to_dict(),
                             status="interrupted", checkpoint=blob, n_steps=5)
    accepted, payload = services.resume_run(user=alice, run_id=run.pk)
    assert accepted and payload["status"] == "queued"
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


def test_the_site_caps_active_runs_of_all_users_together(alice, charlie, settings):
    settings.OPTSITE_MAX_ACTIVE_RUNS = 2
    first, second = launch(alice, LONG), launch(charlie, LONG)
    before = Run.objects.count()
    with pytest.raises(services.ServiceError) as caught:
        services.launch(owner=alice, data=LONG)
    e = caught.value
    assert e.code == "limit" and "limit is 2" in e.message and "all users" in e.errors["runs"][0]
    assert Run.objects.count() == before  # nothing stored for the refusal
    # an interrupted run counts again when it is resumed
    assert services.stop_run_and_wait(run_id=second, timeout=30)
    interrupted = Run.objects.create(owner=charlie, method="de", problem="rosenbrock", status="interrupted",
                                     spec=validate_spec(LONG).to_dict())
    third = launch(alice, LONG)
    with pytest.raises(services.ServiceError) as caught:
        services.resume_run(user=charlie, run_id=interrupted.pk)
    assert caught.value.code == "limit"
    assert Run.objects.get(pk=interrupted.pk).status == "interrupted"
    assert {first, third} <= set(Run.objects.filter(status__in=Run.ACTIVE).values_list("pk", flat=True))


def test_the_site_limits_on_maxcor_and_checkpoint_bytes_come_from_settings(alice, settings):
    lbfgsb = {"method": "lbfgsb", "problem": "rosenbrock", "x0": [0.5, 0.5]}
    settings.OPTSITE_MAX_MAXCOR = 5
    with pytest.raises(services.ServiceError) as caught:
        services.create_run(owner=alice, data={**lbfgsb, "options": {"maxcor": 6}})
    assert caught.value.code == "limit" and "limit of 5" in caught.value.errors["options.maxcor"][0]
    settings.OPTSITE_MAX_CHECKPOINT_BYTES = 2 ** 16
    with pytest.raises(services.ServiceError) as caught:
        services.create_run(owner=alice, data={"method": "de", "problem": "sphere", "dim": 20,
                                               "bounds": [[-1, 1]] * 20, "options": {"maxiter": 1}})
    assert caught.value.code == "limit" and "lower popsize or dim" in caught.value.errors["options.popsize"][0]
    assert not Run.objects.exists()


@pytest.mark.parametrize("rng", [2 ** 32, 2 ** 70])
def test_a_large_rng_seed_runs_in_a_worker_as_scipy_runs_it(alice, rng):
    from scipy.optimize import differential_evolution

    from runs.optim import get_problem

    spec = {"method": "de", "problem": "rastrigin", "bounds": [[-5, 5]] * 2, "options": {"rng": rng, "maxiter": 20}}
    run_id = launch(alice, spec)
    assert services.wait_for_run(run_id=run_id, timeout=60)
    run = Run.objects.get(pk=run_id)
    ref = differential_evolution(get_problem("rastrigin").objective(), [(-5, 5)] * 2, rng=rng, maxiter=20)
    assert run.status == "finished", run.error
    assert run.result["x"] == ref.x.tolist() and run.result["fun"] == ref.fun and run.result["nfev"] == ref.nfev
    assert services.run_to_dict(run)["options"]["rng"] == rng


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
    events = list(publishing.step_events(7, 10, texts))
    assert len(events) > 1 and sum(len(e["steps"]) for e in events) == 25
    assert [e["first"] for e in events] == [10 + sum(len(e["steps"]) for e in events[:i]) for i in range(len(events))]
    assert all(sum(len(t) for t in e["steps"]) <= publishing.MAX_BATCH_CHARS for e in events)


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


def test_the_headless_command_refuses_hostile_spec_files_in_words(alice, tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "spec.json"
    for text, words in (("[" * 2000 + "]" * 2000, "nested deeper than 32 levels"),
                        ('{"method": "de", "problem": "sphere", "bounds": [[NaN, 1]]}', "NaN is not a JSON value"),
                        ('{"method": "de", "problem": "sphere", "bounds": [[-1, 1], [-1, 1]], "options": {"seed": '
                         + "9" * 400 + "}}", "options.seed")):
        path.write_text(text)
        with pytest.raises(CommandError, match=words):
            call_command("run_spec", str(path), "--user", "alice", stdout=io.StringIO(), stderr=io.StringIO())
    assert not Run.objects.exists()


# ---- controls: recorded in the database, taken by the worker that holds the run -------------
async def next_event(layer, channel, kind, timeout=10.0):
    """Events up to and including the first of type `kind`."""
    events = []
    while True:
        events.append(await asyncio.wait_for(layer.receive(channel), timeout))
        if events[-1]["type"] == kind:
            return events


async def test_controls_reach_the_worker_and_come_back_in_order_with_the_steps(alice):
    run = await database_sync_to_async(services.create_run)(owner=alice, data=LONG)
    layer, channel = await listen(run)
    await database_sync_to_async(services.start_run)(run_id=run.pk)
    events = await next_event(layer, channel, "run.steps")
    control = database_sync_to_async(services.control_run)
    row = database_sync_to_async(lambda: Run.objects.get(pk=run.pk))

    t0 = time.monotonic()
    accepted, answer = await control(user=alice, run_id=run.pk, action="pause")
    assert accepted and answer["status"] == "running"  # recorded; the worker will say "paused"
    assert (await control(user=alice, run_id=run.pk, action="pause"))[0] is False  # one is enough
    events += await next_event(layer, channel, "run.status")
    assert events[-1]["run"]["status"] == "paused" and time.monotonic() - t0 < 1.0
    paused = await row()
    assert paused.lease_holder == "" and paused.control_requests == ""
    with pytest.raises(asyncio.TimeoutError):  # no steps while paused
        events.append(await asyncio.wait_for(layer.receive(channel), 0.5))

    assert (await control(user=alice, run_id=run.pk, action="resume"))[0]
    events += await next_event(layer, channel, "run.status")
    assert events[-1]["run"]["status"] == "queued"
    events += await next_event(layer, channel, "run.status")
    assert events[-1]["run"]["status"] == "running"
    events += await next_event(layer, channel, "run.steps")
    assert events[-1]["first"] == paused.n_steps  # nothing lost, nothing repeated
    assert (await control(user=alice, run_id=run.pk, action="stop"))[0]
    try:  # a second stop changes nothing: the run is still stopping, or (a fast worker) stopped
        assert (await control(user=alice, run_id=run.pk, action="stop"))[0] is False
    except services.ServiceError as exc:
        assert "already stopped" in str(exc)
    events += await next_event(layer, channel, "run.finished")
    assert [e["run"]["status"] for e in events if e["type"] == "run.status"] == [
        "running", "paused", "queued", "running", "stopped"]
    assert await asyncio.to_thread(services.wait_for_run, run_id=run.pk, timeout=10)
    final = await row()
    assert final.status == "stopped" and final.control_requests == "" and final.checkpoint is None
    assert final.lease_holder == "" and final.result["stopped"] is True
    seqs = await database_sync_to_async(lambda: list(Step.objects.filter(run=run).values_list("seq", flat=True)))()
    assert seqs == list(range(final.n_steps))
    published = [n for e in events if e["type"] == "run.steps" for n in range(e["first"], e["first"] + len(e["steps"]))]
    assert published == seqs


def test_a_control_on_an_ended_run_is_a_conflict_and_changes_nothing(alice):
    run_id = launch(alice, {**FAST, "options": {**FAST["options"], "maxiter": 30}})
    assert services.wait_for_run(run_id=run_id, timeout=30)
    before = Run.objects.get(pk=run_id)
    steps = list(Step.objects.filter(run_id=run_id).values_list("seq", "data"))
    for action in ("pause", "resume", "stop"):
        with pytest.raises(services.ServiceError) as caught:
            services.control_run(user=alice, run_id=run_id, action=action)
        assert caught.value.code == "conflict" and "finished" in caught.value.message
    after = Run.objects.get(pk=run_id)
    assert (after.status, after.n_steps, after.result, after.control_requests) == (
        before.status, before.n_steps, before.result, "")
    assert list(Step.objects.filter(run_id=run_id).values_list("seq", "data")) == steps


def test_a_control_asked_twice_is_answered_already_asked(alice):
    # "Held" by a worker that is gone and whose lease has not expired yet: nobody takes controls.
    old = timezone.now() - timezone.timedelta(seconds=60)
    spec = validate_spec({**FAST, "options": {**FAST["options"], "maxiter": 30}}).to_dict()
    run = Run.objects.create(owner=alice, method="de", problem="sphere", spec=spec, status="running",
                             started=old, heartbeat=old, lease_holder="pool@nowhere:1",
                             lease_expires=timezone.now() + timezone.timedelta(seconds=60))
    assert services.pause_run(user=alice, run_id=run.pk)[0]
    assert services.pause_run(user=alice, run_id=run.pk)[0] is False
    assert services.resume_run(user=alice, run_id=run.pk)[0] is False  # cancels the pause not yet taken
    assert Run.objects.get(pk=run.pk).control_requests == ""
    accepted, answer = services.stop_run(user=alice, run_id=run.pk)
    assert accepted and answer["stopping"] is True and answer["status"] == "running"
    assert services.stop_run(user=alice, run_id=run.pk)[0] is False  # one stop waits already
    assert services.pause_run(user=alice, run_id=run.pk)[0] is False  # stopping
    assert Run.objects.get(pk=run.pk).control_requests == "stop"
    # Its lease runs out: interrupted, queued again, and the stop that waited is carried out.
    Run.objects.filter(pk=run.pk).update(lease_expires=old)
    assert services.sweep_orphans() == [run.pk]
    assert services.wait_for_run(run_id=run.pk, timeout=30, until=services.ENDED)
    run.refresh_from_db()
    assert run.status == "stopped" and run.result["stopped"] is True and run.interruptions == 1


def test_a_queued_run_pauses_and_stops_without_a_worker(alice):
    spec = validate_spec(FAST).to_dict()
    run = Run.objects.create(owner=alice, method="de", problem="sphere", spec=spec, queued_at=timezone.now())
    assert services.pause_run(user=alice, run_id=run.pk)[0]
    run.refresh_from_db()
    assert run.status == "paused" and run.queued_at is None
    assert services.stop_run(user=alice, run_id=run.pk)[0]
    run.refresh_from_db()
    assert run.status == "stopped" and run.result is None and run.finished is not None
    assert Step.objects.filter(run=run).count() == 0


def test_a_paused_run_asked_to_stop_gets_scipys_stopped_result_from_a_worker(alice):
    run_id = launch(alice, LONG)
    assert wait_until(lambda: Run.objects.get(pk=run_id).n_steps > 0)
    services.pause_run(user=alice, run_id=run_id)
    assert services.wait_for_run(run_id=run_id, timeout=10)
    paused = Run.objects.get(pk=run_id)
    twin = restore_stepper(validate_spec(LONG), bytes(paused.checkpoint))
    twin.request_stop()
    expected = twin.run().to_dict()
    assert services.stop_run(user=alice, run_id=run_id)[0]
    assert services.wait_for_run(run_id=run_id, timeout=30)
    run = Run.objects.get(pk=run_id)
    assert run.status == "stopped" and run.result == json.loads(services.dumps(expected))
    assert run.n_steps == paused.n_steps + (twin._seq - decode_checkpoint(bytes(paused.checkpoint))["state"]["seq"])


async def test_deleting_a_run_tells_its_group_after_the_commit(alice):
    run = await database_sync_to_async(services.create_run)(owner=alice, data=FAST)
    layer, channel = await listen(run)
    n = await database_sync_to_async(services.delete_run)(run=run)
    events = [await asyncio.wait_for(layer.receive(channel), 5)]
    while events[-1]["type"] != "run.deleted":
        events.append(await asyncio.wait_for(layer.receive(channel), 5))
    # an active run is stopped first: its sockets hear it end, then that it is gone
    assert [e["run"]["status"] for e in events if e["type"] == "run.finished"][:1] == ["stopped"]
    assert events[-1] == {"type": "run.deleted", "run_id": run.pk} and n == 0
    assert not await database_sync_to_async(Run.objects.filter(pk=run.pk).exists)()
