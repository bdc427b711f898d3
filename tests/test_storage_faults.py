"""Storage faults while runs run: the local pool's real processes on a real SQLite file, real faults.

- a write lock held past SQLite's busy timeout: a second sqlite3 connection in BEGIN IMMEDIATE;
- a full disk: the database copied to a small tmpfs (mounting one needs root), which a file then
  fills to the last byte;
- a read-only database: the file and its WAL made immutable (chattr +i, which needs root and a file
  system that has the flag; as root, chmod would not stop a write): the workers' open connections
  fail with "disk I/O error", reopened ones with "attempt to write a readonly database".
Where these are not to be had, those tests are skipped and say why; the driver's handling of a full
disk is then still shown by the tests that raise OSError(ENOSPC) at the lease write in this process
(an injected fault, not a real disk).

The pool is started again for this module with two processes and small timeouts (a busy timeout
of 1 s, retries for 10 s), passed to them through their environment; the server's monitor thread
runs as in a server. scipy (through the pure
stepper, checked against scipy in tests/test_optim_*.py) is the oracle: whatever the storage did,
a run's stored steps and result are the uninterrupted run's.
"""

import asyncio
import contextlib
import errno
import functools
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection
from django.test import Client

from runs import dispatch, leases, monitor, services, storage_faults
from runs.driver import RunDriver
from runs.models import Run, Step
from runs.optim import encode_checkpoint, make_stepper, validate_spec
from tests.conftest import communicator
from tests.polling import wait_until
from tests.servers import sqlite_write_lock

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords")]

# rand1bin on 10-D Rosenbrock with 50 members and the polish: a few seconds, with a population.
SPEC = {"method": "de", "problem": "rosenbrock", "dim": 10, "bounds": [[-5, 5]] * 10,
        "options": {"maxiter": 700, "tol": 0, "seed": 7, "popsize": 5, "strategy": "rand1bin"}}
LONG = {"method": "de", "problem": "rosenbrock", "dim": 20, "bounds": [[-5, 5]] * 20,
        "options": {"maxiter": 20000, "tol": 0, "polish": False, "seed": 2, "popsize": 1}}
# Retries outlast a lease (6 s): a lock may be held past both and still be waited out.
WORKERS, BUSY_TIMEOUT, RETRY_SECONDS = 2, 1, 10
WORKER_ENV = {"OPTSITE_SQLITE_BUSY_TIMEOUT": str(BUSY_TIMEOUT), "OPTSITE_STORAGE_RETRY_SECONDS": str(RETRY_SECONDS),
              "OPTSITE_STORAGE_RETRY_WAIT_MS": "100"}
# Long enough for every worker to give up on its run (and to find it cannot record that).
GIVING_UP = BUSY_TIMEOUT + RETRY_SECONDS + 60


def _sqlite_file(path: str) -> None:
    """Fold the WAL into the file, so that copying the file copies the database."""
    probe = sqlite3.connect(path, timeout=30)
    try:
        probe.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        probe.close()


@contextlib.contextmanager
def read_only(path: str):
    files = [path, path + "-wal"]
    if subprocess.run(["chattr", "+i", *files], capture_output=True).returncode:
        pytest.skip("making the database file immutable needs root and a file system with the flag")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *files], check=True)


def _env(values: dict) -> dict:
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return saved


@pytest.fixture(scope="module")
def pool_env():
    """This module's pool: its processes use small timeouts; afterwards the next test that needs
    workers starts a fresh pool with the usual ones."""
    dispatch.close_pool()
    saved_env, saved_workers = _env(WORKER_ENV), settings.OPTSITE_WORKERS
    settings.OPTSITE_WORKERS = WORKERS
    try:
        yield
    finally:
        dispatch.close_pool()
        _env(saved_env)
        settings.OPTSITE_WORKERS = saved_workers


@pytest.fixture
def server_monitor(settings):
    """The monitor thread every server process runs (off in the other tests), for real."""
    settings.OPTSITE_RUN_MONITOR = True
    monitor.start()
    yield
    monitor.stop()


@pytest.fixture
def workers(pool_env):
    """As the conftest's: every run a test left going is stopped after it, and the pool is idle."""
    yield dispatch
    for run_id in Run.objects.filter(status__in=Run.ACTIVE).values_list("pk", flat=True):
        assert services.stop_run_and_wait(run_id=run_id, timeout=60), f"run {run_id} did not stop"
    assert wait_until(lambda: dispatch._pool is None or dispatch._pool.idle(), timeout=60)


class SmallDisk:
    def __init__(self, mount: str, path: str):
        self.mount, self.path = mount, path
        self.filler = os.path.join(mount, "filler")

    def fill(self) -> None:
        """Take every free byte (the WAL truncated first, so that no write fits in what it has)."""
        _sqlite_file(self.path)
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (1 << 20, 4096, 1):
                with contextlib.suppress(OSError):
                    while os.write(fd, b"\0" * size):
                        pass
        finally:
            os.close(fd)
        assert shutil.disk_usage(self.mount).free == 0

    def free(self) -> None:
        os.remove(self.filler)


@pytest.fixture
def small_disk(transactional_db, pool_env):
    """The test's database copied to a 48 MiB tmpfs, the pool started again on it; request it
    before the users and `workers`, so that they are made on it and stopped before it goes."""
    mount = tempfile.mkdtemp(prefix="optsite-tmpfs-")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mount], capture_output=True).returncode:
        os.rmdir(mount)
        pytest.skip("a full disk needs a small tmpfs, and mounting one needs root")
    db = settings.DATABASES["default"]
    original, path = db["NAME"], os.path.join(mount, "db.sqlite3")
    dispatch.close_pool()
    connection.close()
    # A compact copy: the session's file keeps the pages of every test's runs before it (SQLite
    # does not shrink), which alone could fill the small disk.
    source = sqlite3.connect(original, timeout=30)
    try:
        source.execute("VACUUM INTO ?", (path,))
    finally:
        source.close()
    db["NAME"] = connection.settings_dict["NAME"] = path
    try:
        yield SmallDisk(mount, path)
    finally:
        dispatch.close_pool()
        connection.close()
        db["NAME"] = connection.settings_dict["NAME"] = original
        subprocess.run(["umount", "-l", mount], check=True)
        os.rmdir(mount)


def database_path() -> str:
    return settings.DATABASES["default"]["NAME"]


def no_elapsed(step: dict) -> dict:
    return {k: v for k, v in step.items() if k != "elapsed"}


@functools.cache
def _oracle(text: str):
    stepper = make_stepper(validate_spec(json.loads(text)))
    steps = [no_elapsed(json.loads(services.dumps(s.to_full_dict()))) for s in stepper]
    return steps, json.loads(services.dumps(stepper.result.to_dict()))


def uninterrupted(spec):
    """Every step with every field, and the result, of the run nothing happened to."""
    return _oracle(json.dumps(spec, sort_keys=True))


def stored(run_id):
    return [no_elapsed(json.loads(text)) for _, text in services.step_texts(run_id=run_id, bulky=True)]


def launch(alice, n=WORKERS) -> list[int]:
    """One run per worker, each well under way (and far from its end)."""
    ids = [services.launch(owner=alice, data=SPEC)["id"] for _ in range(n)]
    assert wait_until(lambda: Run.objects.filter(pk__in=ids, status="running", n_steps__gt=50).count() == n,
                      timeout=60)
    return ids


def counts(ids) -> dict:
    return dict(Run.objects.filter(pk__in=ids).values_list("pk", "n_steps"))


def statuses(ids) -> list[str]:
    return [Run.objects.get(pk=i).status for i in ids]


def assert_exactly_scipys(ids) -> None:
    steps, result = uninterrupted(SPEC)
    for run_id in ids:
        run = Run.objects.get(pk=run_id)
        assert (run.status, run.error) == ("finished", ""), (run.status, run.error)
        assert run.result == result and stored(run_id) == steps  # no gap, no repeat, scipy's numbers


def assert_interrupted_with_their_checkpoints(ids) -> None:
    """Interrupted, not failed; the checkpoint matches the stored steps, which are scipy's so far."""
    steps, _ = uninterrupted(SPEC)
    for run_id in ids:
        run = Run.objects.get(pk=run_id)
        assert (run.status, run.error, run.lease_holder) == ("interrupted", "", ""), (run.status, run.error)
        assert run.checkpoint is not None and 0 < run.n_steps < len(steps)
        assert stored(run_id) == steps[:run.n_steps]


def ended(ids) -> bool:
    return not Run.objects.filter(pk__in=ids, status__in=Run.ACTIVE).exists()


# ---- the tell ---------------------------------------------------------------------------------
def _sqlite_error(path: str, *statements: str, **connect) -> Exception:
    """The error Django raises for these statements on a real SQLite file (wrapped as it wraps it)."""
    from django.db.utils import DatabaseErrorWrapper

    class _Wrapped:
        Database = sqlite3

    db = sqlite3.connect(path, **connect)
    try:
        with DatabaseErrorWrapper(_Wrapped()):
            for sql in statements:
                db.execute(sql)
            db.commit()
    except Exception as exc:
        return exc
    finally:
        db.close()
    raise AssertionError(f"{sql} did not fail")


def test_the_storages_errors_are_told_from_the_runs(tmp_path):
    path = str(tmp_path / "probe.sqlite3")
    setup = sqlite3.connect(path)
    setup.executescript("PRAGMA journal_mode=WAL; CREATE TABLE t (x UNIQUE); INSERT INTO t VALUES (1);")
    setup.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    locked = _sqlite_error(path, "INSERT INTO t VALUES (2)", timeout=0.05)
    holder.rollback()
    holder.close()
    read_only = _sqlite_error(f"file:{path}?mode=ro", "INSERT INTO t VALUES (3)", uri=True)
    # SQLite's own "database or disk is full", from a file capped at the pages it has.
    pages = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]
    full = _sqlite_error(path, f"PRAGMA max_page_count={pages}", "INSERT INTO t SELECT randomblob(90000)")
    assert isinstance(locked, OperationalError) and "database is locked" in str(locked)
    assert storage_faults.storage_reason(locked) == "the database is locked by another writer"
    assert storage_faults.storage_reason(read_only) == "the database is read-only"
    assert "database or disk is full" in str(full) and storage_faults.storage_reason(full) == "the disk is full"
    assert storage_faults.is_storage_fault(OSError(errno.ENOSPC, "No space left on device"))
    # Not the storage's: a bug in SQL, bad data, a solver that raised, a socket that closed.
    assert not storage_faults.is_storage_fault(_sqlite_error(path, "SELECT * FROM nowhere"))
    assert not storage_faults.is_storage_fault(_sqlite_error(path, "INSERT INTO t VALUES (1)"))
    assert not storage_faults.is_storage_fault(FloatingPointError("overflow"))
    assert not storage_faults.is_storage_fault(OSError(errno.EPIPE, "Broken pipe"))


# ---- in this process: the driver itself -----------------------------------------------------
def _claimed_run(alice, spec=SPEC) -> Run:
    run = services.create_run(owner=alice, data=spec)
    assert leases.claim(run.pk, "test@here:1")
    return run


def test_an_injected_full_disk_is_waited_out(alice, monkeypatch, settings):
    """Injected (this runs anywhere): the first writes of the batch fail with ENOSPC, then the disk
    has room again; the run goes on, exactly."""
    settings.OPTSITE_STORAGE_RETRY_SECONDS, settings.OPTSITE_STORAGE_RETRY_WAIT_MS = 30, 1
    spec = {**SPEC, "options": {**SPEC["options"], "maxiter": 60}}
    run = _claimed_run(alice, spec)
    real_write, failures = leases.write, []

    def full_disk_now_and_then(run_id, holder, **fields):
        if fields.get("n_steps", 0) > 20 and len(failures) < 4:  # a few writes in, four times
            failures.append(fields["n_steps"])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(run_id, holder, **fields)

    monkeypatch.setattr(leases, "write", full_disk_now_and_then)
    events = []
    assert RunDriver(run_id=run.pk, holder="test@here:1", publish=events.append).drive() == "ended"
    assert len(failures) == 4 and len(set(failures)) == 1  # the same batch, four times
    steps, result = uninterrupted(spec)
    run.refresh_from_db()
    assert (run.status, run.error, run.result) == ("finished", "", result) and stored(run.pk) == steps
    published = [json.loads(s)["seq"] for e in events if e["type"] == "run.steps" for s in e["steps"]]
    assert published == list(range(len(steps)))  # each batch published once, after its commit


def test_a_run_the_storage_fails_for_good_is_interrupted_with_its_last_checkpoint(alice, monkeypatch, settings):
    """Injected: after its first batch, the disk is full for the steps (OSError ENOSPC at their
    write); the small write that lets the run go still fits. Interrupted, not failed, with the
    checkpoint of its last stored step; resumed, it ends exactly as if nothing had happened."""
    settings.OPTSITE_STORAGE_RETRY_SECONDS, settings.OPTSITE_STORAGE_RETRY_WAIT_MS = 0, 1
    spec = SPEC  # 701 steps: several batches (at most 256 steps each)
    run = _claimed_run(alice, spec)
    real_write, batches = leases.write, []

    def full_for_steps(run_id, holder, **fields):
        if "n_steps" in fields and batches:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(run_id, holder, **fields)
        if "n_steps" in fields:
            batches.append(fields["n_steps"])

    monkeypatch.setattr(leases, "write", full_for_steps)
    events = []
    assert RunDriver(run_id=run.pk, holder="test@here:1", publish=events.append).drive() == "interrupted"
    run.refresh_from_db()
    assert (run.status, run.error, run.lease_holder, run.interruptions) == ("interrupted", "", "", 1)
    steps, result = uninterrupted(spec)
    assert run.n_steps == batches[0] < len(steps) and stored(run.pk) == steps[:run.n_steps]
    assert run.checkpoint is not None
    assert events[-1]["type"] == "run.finished" and events[-1]["run"]["status"] == "interrupted"

    monkeypatch.setattr(leases, "write", real_write)  # the disk has room again
    Run.objects.filter(pk=run.pk).update(status="queued")
    assert leases.claim(run.pk, "test@here:2")
    assert RunDriver(run_id=run.pk, holder="test@here:2", publish=lambda e: None).drive() == "ended"
    run.refresh_from_db()
    assert (run.status, run.result) == ("finished", result) and stored(run.pk) == steps


def test_a_run_deleted_as_it_ends_is_let_go_quietly(alice, monkeypatch, caplog):
    """Deleted (as the admin does once it has stopped) between the worker's last commit and its
    "finished": the worker says nothing more and logs no failure. The delete is made to happen at
    that moment by doing it just before the driver reads the run back."""
    import runs.driver

    spec = {**SPEC, "options": {**SPEC["options"], "maxiter": 30}}
    run = _claimed_run(alice, spec)
    real_load = runs.driver.load_run_dict

    def deleted_first(run_id):
        ended = Run.objects.filter(pk=run_id, status="finished").first()
        if ended is not None:
            services.delete_run(run=ended)
        return real_load(run_id)

    monkeypatch.setattr(runs.driver, "load_run_dict", deleted_first)
    events = []
    assert RunDriver(run_id=run.pk, holder="test@here:1", publish=events.append).drive() == "ended"
    assert not Run.objects.filter(pk=run.pk).exists()
    assert "run.finished" not in [e["type"] for e in events]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_run_whose_checkpoint_is_broken_fails_in_words_and_is_not_retried(alice):
    """Not the storage's fault: the data is wrong. Failed at once, with a reason."""
    run = _claimed_run(alice)
    stepper = make_stepper(validate_spec(SPEC))
    next(stepper)
    good = encode_checkpoint(stepper.checkpoint())
    Run.objects.filter(pk=run.pk).update(n_steps=1, checkpoint=good[: len(good) // 2])
    assert RunDriver(run_id=run.pk, holder="test@here:1", publish=lambda e: None).drive() == "ended"
    run.refresh_from_db()
    assert run.status == "failed" and run.error and run.checkpoint is None


# ---- the pool's processes, real faults ------------------------------------------------------
@pytest.mark.usefixtures("workers", "server_monitor")
def test_a_write_lock_held_past_the_busy_timeout_and_the_lease_is_waited_out(alice):
    """Held longer than a lease too: the leases run out while nobody can renew them, and the
    monitor must not take that for dead workers once the lock goes."""
    ids = launch(alice)
    with sqlite_write_lock(database_path()):
        before = counts(ids)
        time.sleep(leases.LEASE_SECONDS + 2)  # every worker's writes time out, again and again
        assert counts(ids) == before  # nothing could be written ...
        assert statuses(ids) == ["running"] * WORKERS  # ... and nobody gave up
    assert all(services.wait_for_run(run_id=i, timeout=90) for i in ids)
    assert_exactly_scipys(ids)
    assert [Run.objects.get(pk=i).interruptions for i in ids] == [0] * WORKERS


@pytest.mark.usefixtures("workers", "server_monitor")
def test_a_write_lock_held_past_every_retry_interrupts_the_runs_which_resume_exactly(alice, settings):
    """Giving up, the workers cannot even record it (the lock is still held): the runs stay
    `running` under leases nobody renews, until the monitor's sweep finds them."""
    settings.OPTSITE_AUTO_RESUME = False  # look at the interrupted runs before resuming them
    ids = launch(alice)
    pool = dispatch.local_pool()
    with sqlite_write_lock(database_path()):
        assert wait_until(pool.idle, timeout=GIVING_UP)  # every worker gave up its run
        assert statuses(ids) == ["running"] * WORKERS
    assert wait_until(lambda: ended(ids), timeout=60, every=0.1)
    assert_interrupted_with_their_checkpoints(ids)
    for run_id in ids:
        assert services.resume_run(user=alice, run_id=run_id)[0]
    assert all(services.wait_for_run(run_id=i, timeout=90) for i in ids)
    assert_exactly_scipys(ids)


def test_a_full_disk_interrupts_the_runs_and_once_freed_they_resume_by_themselves(small_disk, alice, workers,
                                                                                    server_monitor):
    ids = launch(alice)
    pool = dispatch.local_pool()
    small_disk.fill()
    try:
        assert wait_until(pool.idle, timeout=GIVING_UP)
        assert not Run.objects.filter(pk__in=ids, status="failed").exists()
    finally:
        small_disk.free()
    # The monitor: expired leases -> interrupted, and interrupted runs queued again. Not ended():
    # between the monitor's two writes a run is "interrupted" for a moment, which is not the end.
    wait_until(lambda: Run.objects.filter(pk__in=ids, status="finished").count() == len(ids), timeout=120, every=0.1)
    assert_exactly_scipys(ids)
    assert [Run.objects.get(pk=i).interruptions for i in ids] == [1] * WORKERS


@pytest.mark.usefixtures("workers", "server_monitor")
def test_a_read_only_database_interrupts_the_runs_and_keeps_the_queue_until_it_is_writable(alice, settings):
    """Every worker gives its run up; the queued run a freed worker is handed cannot be taken (the
    claim is a write) and is handed out again and again; once the file is writable, all go on."""
    settings.OPTSITE_MAX_CONCURRENT_RUNS = WORKERS + 1
    ids = launch(alice)
    waiting = services.launch(owner=alice, data=SPEC)["id"]
    pool = dispatch.local_pool()
    with read_only(database_path()):
        before = counts(ids)
        assert wait_until(lambda: waiting in pool.retrying(), timeout=GIVING_UP)
        assert counts(ids) == before
        assert statuses([*ids, waiting]) == ["running"] * WORKERS + ["queued"]
    # The monitor: the runs given up are interrupted and queued again (a worker that had not
    # given up yet simply goes on); the waiting one is taken.
    everyone = [*ids, waiting]
    assert wait_until(lambda: ended(everyone), timeout=120, every=0.1)
    assert_exactly_scipys(everyone)
    assert sum(Run.objects.get(pk=i).interruptions for i in ids) >= 1  # a worker was freed by giving up


# ---- deleting a run in the admin ---------------------------------------------------------------
@pytest.fixture
def staff_client(db):
    staff = get_user_model().objects.create_superuser("root", "root@example.org", "unused-password")
    client = Client()
    client.force_login(staff)
    return client


def _delete_in_admin(staff_client, ids) -> None:
    if len(ids) == 1:
        response = staff_client.post(f"/admin/runs/run/{ids[0]}/delete/", {"post": "yes"})
    else:
        response = staff_client.post("/admin/runs/run/", {"action": "delete_selected", "_selected_action": ids,
                                                           "post": "yes"})
    assert response.status_code == 302, response.content[:500]


async def _socket(path, user):
    comm = await database_sync_to_async(communicator)(path, user)
    connected, _ = await comm.connect()
    assert connected
    return comm


async def _until(comm, kind, timeout=30):
    messages = []
    while not messages or messages[-1]["type"] != kind:
        messages.append(await comm.receive_json_from(timeout=timeout))
    return messages


async def _launch_on_a_socket(alice):
    comm = await _socket("/ws/runs/", alice)
    await comm.send_json_to({"type": "start", "spec": LONG})
    started = await comm.receive_json_from(timeout=10)
    assert started["type"] == "started", started
    await _until(comm, "steps")
    return comm, started["run"]["id"]


@pytest.mark.usefixtures("workers")
@pytest.mark.parametrize("how", ["delete view", "selection"])
async def test_deleting_active_runs_in_the_admin_stops_them_first(alice, staff_client, how):
    """The admin's delete of a running run (and, as a selection, of a paused one as well): each
    launch socket hears the run stop ("finished", scipy's stopped result); a watcher then hears
    it is gone; nothing of it is left and its worker is free."""
    launched = [await _launch_on_a_socket(alice)]
    if how == "selection":
        comm, paused = await _launch_on_a_socket(alice)
        await comm.send_json_to({"type": "pause"})
        assert (await _until(comm, "status"))[-1]["run"]["status"] == "paused"
        launched.append((comm, paused))
    ids = [run_id for _, run_id in launched]
    watchers = [await _socket(f"/ws/runs/{run_id}/", alice) for run_id in ids]
    for watch in watchers:
        await _until(watch, "run")
        await watch.send_json_to({"type": "subscribe", "after": -1})
        await _until(watch, "steps")  # replayed: live from here on

    await asyncio.to_thread(_delete_in_admin, staff_client, ids)
    for (comm, run_id), watch in zip(launched, watchers):
        final = (await _until(comm, "finished"))[-1]["run"]
        assert final["id"] == run_id and final["status"] == "stopped" and final["result"]["stopped"] is True
        seen = await _until(watch, "deleted")
        assert "finished" in [m["type"] for m in seen]  # the watcher, too, heard it end first
        assert (await watch.receive_output(timeout=5))["type"] == "websocket.close"
        await comm.disconnect()
    gone = await database_sync_to_async(lambda: (Run.objects.filter(pk__in=ids).exists(),
                                                 Step.objects.filter(run_id__in=ids).exists()))()
    assert gone == (False, False)
    assert await asyncio.to_thread(wait_until, dispatch.local_pool().idle, 10)
