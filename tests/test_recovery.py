"""Workers that die, freeze or are given up on: the local pool's real processes, killed for real.

scipy (through the pure stepper, checked against scipy in tests/test_optim_*.py) is the oracle:
whatever happens to its workers, a run's stored steps and result are the uninterrupted run's.
"""

import asyncio
import io
import json
import os
import signal
import sqlite3
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from runs import dispatch, leases, publishing, services
from runs.models import Run, Step
from runs.optim import make_stepper, validate_spec
from runs.optim.bulk import is_keyframe
from tests.polling import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords", "workers")]

# rand1bin on 10-D Rosenbrock with 50 members, 1,500 generations and the polish: a few seconds.
KILL_SPEC = {"method": "de", "problem": "rosenbrock", "dim": 10, "bounds": [[-5, 5]] * 10,
             "options": {"maxiter": 1500, "tol": 0, "seed": 7, "popsize": 5, "strategy": "rand1bin"}}
# Long enough to stay running while a test looks at the queue.
LONG = {"method": "de", "problem": "rosenbrock", "dim": 20, "bounds": [[-5, 5]] * 20,
        "options": {"maxiter": 20000, "tol": 0, "polish": False, "seed": 2, "popsize": 1}}




def no_elapsed(step: dict) -> dict:
    return {k: v for k, v in step.items() if k != "elapsed"}


def uninterrupted(spec):
    """Every step with every field (DE's populations too), and the result, of an uninterrupted run."""
    stepper = make_stepper(validate_spec(spec))
    steps = [no_elapsed(json.loads(services.dumps(s.to_full_dict()))) for s in stepper]
    return steps, json.loads(services.dumps(stepper.result.to_dict()))


def stored(run_id):
    """The stored steps, complete: light rows with their populations decoded from the blobs (a
    resumed run's first step after the resume starts a new keyframe)."""
    return [no_elapsed(json.loads(text)) for _, text in services.step_texts(run_id=run_id, bulky=True)]


def worker_pid(run_id) -> int:
    holder = Run.objects.get(pk=run_id).lease_holder
    assert holder.startswith("pool@"), holder
    return int(holder.rsplit(":", 1)[1])


def running_with_steps(run_id, n=100):
    row = Run.objects.filter(pk=run_id).values_list("status", "n_steps").first()
    return row is not None and row[0] == "running" and row[1] > n


async def listen(run_id):
    publishing.remember_loop(asyncio.get_running_loop())
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(publishing.group_of(run_id), channel)
    return layer, channel


async def events_until(layer, channel, kind, status, timeout=30.0):
    events = []
    while True:
        events.append(await asyncio.wait_for(layer.receive(channel), timeout))
        if events[-1]["type"] == kind and events[-1]["run"]["status"] == status:
            return events


async def test_a_killed_workers_run_is_interrupted_at_once_and_continues_exactly(alice):
    run = await database_sync_to_async(services.create_run)(owner=alice, data=KILL_SPEC)
    layer, channel = await listen(run.pk)
    reference = asyncio.create_task(asyncio.to_thread(uninterrupted, KILL_SPEC))
    await database_sync_to_async(services.start_run)(run_id=run.pk)
    assert await asyncio.to_thread(wait_until, lambda: running_with_steps(run.pk))
    pid = await database_sync_to_async(worker_pid)(run.pk)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    before = await events_until(layer, channel, "run.finished", "interrupted")
    noticed = time.monotonic() - killed
    gone = before[-1]["run"]
    assert noticed < 2.0, noticed  # the pool sees its process die: no lease has to run out
    after = await events_until(layer, channel, "run.finished", "finished", timeout=60)
    statuses = [e["run"]["status"] for e in after if e["type"] == "run.status"]
    assert statuses[:2] == ["queued", "running"]
    resumed_on = next(e["run"]["worker"] for e in after if e["type"] == "run.status" and e["run"]["worker"])
    assert resumed_on != f"pool@{os.uname().nodename}:{pid}"
    first_after = next(e["first"] for e in after if e["type"] == "run.steps")
    assert first_after == gone["n_steps"]  # seq goes on where the stored steps end

    steps, result = await reference
    final = after[-1]["run"]
    assert final["result"] == result
    assert await database_sync_to_async(stored)(run.pk) == steps  # no gap, no repeat, scipy's numbers
    # the resumed worker's first step starts its own keyframe: nothing refers to the dead one's blobs
    first_blob = await database_sync_to_async(lambda: bytes(Step.objects.get(run=run, seq=first_after).bulk))()
    assert is_keyframe(first_blob)
    row = await database_sync_to_async(Run.objects.get)(pk=run.pk)
    assert row.interruptions == 1 and row.lease_holder == ""
    assert pid not in dispatch.local_pool().worker_pids().values()  # replaced by a new process


def test_without_auto_resume_a_killed_workers_run_waits_to_be_resumed(alice, settings):
    settings.OPTSITE_AUTO_RESUME = False
    run_id = services.launch(owner=alice, data=KILL_SPEC)["id"]
    assert wait_until(lambda: running_with_steps(run_id))
    os.kill(worker_pid(run_id), signal.SIGKILL)
    assert wait_until(lambda: Run.objects.get(pk=run_id).status == "interrupted", timeout=5)
    time.sleep(0.5)
    run = Run.objects.get(pk=run_id)
    assert run.status == "interrupted" and run.lease_holder == "" and run.checkpoint is not None
    accepted, payload = services.resume_run(user=alice, run_id=run_id)
    assert accepted and payload["status"] == "queued"
    assert services.wait_for_run(run_id=run_id, timeout=60)
    steps, result = uninterrupted(KILL_SPEC)
    assert Run.objects.get(pk=run_id).result == result and stored(run_id) == steps


def _freeze_outside_a_transaction(pid: int) -> None:
    """SIGSTOP the worker at a moment it holds no write lock on the SQLite file (else every
    other writer would wait for it)."""
    path = connection.settings_dict["NAME"]
    for _ in range(200):
        os.kill(pid, signal.SIGSTOP)
        probe = sqlite3.connect(path, timeout=0.2)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return
        except sqlite3.OperationalError:
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.003)
        finally:
            probe.close()
    raise AssertionError("the worker was always inside a transaction")


def test_a_frozen_worker_given_up_on_never_writes_again(alice):
    """Two workers never drive one run: the frozen one's lease is taken over, and once it thaws
    its next write finds the lease gone and stores nothing."""
    if connection.vendor != "sqlite":
        pytest.skip("freezing safely is arranged for SQLite")
    run_id = services.launch(owner=alice, data=KILL_SPEC)["id"]
    assert wait_until(lambda: running_with_steps(run_id))
    frozen = worker_pid(run_id)
    _freeze_outside_a_transaction(frozen)
    try:
        at_freeze = Run.objects.get(pk=run_id).n_steps
        # Its lease would run out in leases.LEASE_SECONDS; let that moment be now.
        Run.objects.filter(pk=run_id).update(lease_expires=timezone.now() - timezone.timedelta(seconds=1))
        assert services.sweep_orphans() == [run_id]
        assert wait_until(lambda: running_with_steps(run_id, at_freeze + 50))
        assert worker_pid(run_id) != frozen
    finally:
        os.kill(frozen, signal.SIGCONT)
    assert services.wait_for_run(run_id=run_id, timeout=60)
    run = Run.objects.get(pk=run_id)
    assert run.status == "finished" and run.interruptions == 1
    steps, result = uninterrupted(KILL_SPEC)
    assert run.result == result and stored(run_id) == steps
    assert frozen in dispatch.local_pool().worker_pids().values()  # it lived on, and let go


def test_a_lease_is_taken_once_and_only_its_holder_writes(alice):
    spec = validate_spec(KILL_SPEC).to_dict()
    run = Run.objects.create(owner=alice, method="de", problem="rosenbrock", spec=spec, queued_at=timezone.now())
    assert leases.claim(run.pk, "one@here:1") is True
    assert leases.claim(run.pk, "two@here:2") is False  # running: not to be had, expired or not
    with pytest.raises(leases.LeaseLost):
        leases.write(run.pk, "two@here:2", n_steps=99)
    leases.write(run.pk, "one@here:1", n_steps=1)
    run.refresh_from_db()
    assert (run.n_steps, run.lease_holder, run.status) == (1, "one@here:1", "running")
    assert run.lease_expires > timezone.now()
    Run.objects.filter(pk=run.pk).update(status="finished", **leases.RELEASED)


def test_runs_beyond_the_free_workers_wait_and_go_in_queue_order(alice, settings):
    settings.OPTSITE_MAX_CONCURRENT_RUNS = 10
    size = dispatch.local_pool().size
    ids = [services.launch(owner=alice, data=LONG)["id"] for _ in range(size + 2)]
    assert wait_until(lambda: Run.objects.filter(pk__in=ids, status="running").count() == size)
    first, *_, second_last, last = ids
    runs = {r.pk: r for r in Run.objects.select_related("owner").filter(pk__in=ids)}
    assert [runs[i].status for i in ids] == ["running"] * size + ["queued", "queued"]
    payloads = [services.run_to_dict(runs[i]) for i in (second_last, last)]
    assert [p["queue_position"] for p in payloads] == [1, 2] and payloads[0]["worker"] is None
    assert len({runs[i].lease_holder for i in ids[:size]}) == size  # one run per worker process

    services.pause_run(user=alice, run_id=first)  # a paused run holds no worker: the queue moves
    assert wait_until(lambda: Run.objects.get(pk=second_last).status == "running")
    assert Run.objects.get(pk=first).status == "paused"
    assert services.run_to_dict(Run.objects.get(pk=last))["queue_position"] == 1
    services.resume_run(user=alice, run_id=first)  # back in the queue, behind the one that waits
    assert services.run_to_dict(Run.objects.get(pk=first))["queue_position"] == 2
    services.stop_run(user=alice, run_id=ids[1])
    assert wait_until(lambda: Run.objects.get(pk=last).status == "running")
    assert Run.objects.get(pk=first).status == "queued"


def test_deleting_a_running_run_frees_its_worker_and_stores_nothing_more(alice):
    run_id = services.launch(owner=alice, data=LONG)["id"]
    assert wait_until(lambda: running_with_steps(run_id, 10))
    run = Run.objects.get(pk=run_id)
    services.delete_run(run=run)
    assert wait_until(dispatch.local_pool().idle, timeout=5)
    assert not Run.objects.filter(pk=run_id).exists() and not Step.objects.filter(run_id=run_id).exists()


async def test_a_run_deleted_while_it_runs_is_stopped_first_its_sockets_hear_finished_then_deleted(alice):
    # As from the history page or the API (the admin does the same): services.delete_run.
    run = await database_sync_to_async(services.create_run)(owner=alice, data=LONG)
    layer, channel = await listen(run.pk)
    await database_sync_to_async(services.start_run)(run_id=run.pk)
    assert await asyncio.to_thread(wait_until, lambda: running_with_steps(run.pk, 10))
    row = await database_sync_to_async(Run.objects.get)(pk=run.pk)
    await database_sync_to_async(services.delete_run)(run=row)
    events = []
    while not events or events[-1]["type"] != "run.deleted":
        events.append(await asyncio.wait_for(layer.receive(channel), 30))
    finished = [e for e in events if e["type"] == "run.finished"]
    assert finished and finished[0]["run"]["status"] == "stopped" and finished[0]["run"]["result"] is not None
    assert not await database_sync_to_async(Run.objects.filter(pk=run.pk).exists)()


def test_the_sweep_interrupts_only_runs_whose_lease_ran_out(alice, settings):
    settings.OPTSITE_AUTO_RESUME = False  # look at the sweep alone
    spec = validate_spec(KILL_SPEC).to_dict()
    now, old = timezone.now(), timezone.now() - timezone.timedelta(seconds=60)
    make = lambda **kw: Run.objects.create(owner=alice, method="de", problem="rosenbrock", spec=spec, **kw)  # noqa: E731
    lapsed = make(status="running", lease_holder="pool@gone:1", lease_expires=old, heartbeat=old)
    unleased = make(status="running", heartbeat=old)  # as a run of an older version would be
    held = make(status="running", lease_holder="celery@far:2", lease_expires=now + timezone.timedelta(seconds=5),
                heartbeat=old)
    queued = make(status="queued", created=old)  # waiting for a worker is not being left behind
    paused = make(status="paused", heartbeat=old)
    done = make(status="finished", heartbeat=old)
    assert sorted(services.sweep_orphans()) == sorted([lapsed.pk, unleased.pk])
    statuses = dict(Run.objects.values_list("pk", "status"))
    assert statuses[lapsed.pk] == statuses[unleased.pk] == "interrupted"
    assert [statuses[r.pk] for r in (held, queued, paused, done)] == ["running", "queued", "paused", "finished"]
    assert Run.objects.get(pk=lapsed.pk).lease_holder == ""
    out = io.StringIO()
    call_command("mark_interrupted", "--stale-after", "30", stdout=out)  # "heard of" 60 s ago
    assert f"marked 1 run(s) interrupted: {held.pk}" in out.getvalue()
    Run.objects.filter(pk=queued.pk).update(status="stopped")


def test_pool_processes_run_niced_so_the_web_process_keeps_the_cpu(workers):
    """A solver that keeps every core busy must leave the web process (sockets, controls) its share."""
    from django.conf import settings

    pool = workers.local_pool()
    deadline = time.monotonic() + 30
    while len(pool.worker_pids()) < settings.OPTSITE_WORKERS:  # each says "ready" once it started
        assert time.monotonic() < deadline, "the pool's processes did not start"
        time.sleep(0.05)
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    for pid in pool.worker_pids().values():
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, mine + settings.OPTSITE_WORKER_NICE)


def test_a_worker_runs_what_the_web_process_accepted_under_its_own_caps(alice, settings):
    # The pool's processes keep the default maxiter cap (20,000); this site raised it. The stored
    # spec was accepted at launch, so the worker runs it rather than judge it again by its own caps.
    settings.OPTSITE_MAX_MAXITER = 25_000
    spec = {**LONG, "options": {**LONG["options"], "maxiter": 25_000}}
    run_id = services.launch(owner=alice, data=spec)["id"]
    assert wait_until(lambda: running_with_steps(run_id, 10))
    services.stop_run(user=alice, run_id=run_id)
    assert wait_until(lambda: Run.objects.get(pk=run_id).status == "stopped")
    assert Run.objects.get(pk=run_id).error in ("", None)
