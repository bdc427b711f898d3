"""The scale-out mode's worker side: a run is one Celery task, driven by runs/worker.py.

The task is only a wake-up call: it claims the run's lease (runs/leases.py) or, if the run is
not to be had (a duplicate or late delivery, a run stopped or deleted while queued), does
nothing. Events go out through the Redis channel layer after each commit. Controls are recorded
in the database; the web process nudges the holder over Redis pub/sub (CONTROL_CHANNEL),
which one listener thread per worker process hears.

A worker process drives one run at a time: the prefork pool (Celery's default) or solo. When its
`celery worker` is shut down (warm shutdown), it lets its run go as interrupted and the run is
queued again for another worker at once. One killed outright (or whose `celery worker` was: the
kernel then kills the pool processes too) leaves its lease to expire, and the servers' monitor
(runs/recovery.py) takes it from there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time

from celery import signals

from optsite.celery import app

log = logging.getLogger("runs.tasks")

# Redis pub/sub: the id of a run whose controls were just recorded (runs.dispatch.nudge).
CONTROL_CHANNEL = "optsite:controls"

# The `celery worker` main process tells its pool processes that a warm shutdown has begun.
# Not SIGUSR1: billiard raises SoftTimeLimitExceeded with that one inside the running task.
LEAVE_SIGNAL = signal.SIGUSR2
# How long a wake-up waits before going back to the queue when the database cannot be reached.
DATABASE_RETRY = 1.0

_worker = None
_lock = threading.Lock()
# Set by the signal handler, which must take no lock the interrupted thread may hold: the
# watcher thread does the rest.
_leaving = threading.Event()
_pool_parent: int | None = None  # the main process, in a prefork pool process


def this_worker():
    """This worker process's Worker, with its control listener (made on its first run)."""
    global _worker
    with _lock:
        if _worker is None:
            from runs.worker import Worker

            _worker = Worker("celery")
            _hear_leave_signal()  # again: billiard may have reset signals after the process started
            threading.Thread(target=_listen, args=(_worker,), name="optsite-controls", daemon=True).start()
            threading.Thread(target=_watch, args=(_worker, _pool_parent), name="optsite-leave",
                             daemon=True).start()
        return _worker


def _on_leave(*_) -> None:
    _leaving.set()


def _hear_leave_signal() -> None:
    try:
        signal.signal(LEAVE_SIGNAL, _on_leave)
    except ValueError:  # not the main thread: the shutdown reaches _interrupt_runs in this process
        pass


def _listen(worker) -> None:
    import redis
    from django.conf import settings

    while True:
        pubsub = None
        try:
            # A bounded wait with health checks: a connection that died silently is noticed.
            client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=30, socket_keepalive=True,
                                          health_check_interval=10)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(CONTROL_CHANNEL)
            while True:
                message = pubsub.get_message(timeout=5.0)
                if message is not None:
                    try:
                        worker.nudge(int(message["data"]))
                    except (TypeError, ValueError):
                        pass
        except Exception:  # Redis away for a moment: the worker's poll still takes controls
            log.warning("control listener: Redis connection lost; reconnecting", exc_info=True)
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    pubsub.close()
            time.sleep(1.0)


def _watch(worker, parent: int | None) -> None:
    # Linux kills a pool process with its parent (Celery sets PDEATHSIG); elsewhere a process
    # whose `celery worker` is gone would drive on alone.
    while not _leaving.wait(0.5):
        if parent is not None and os.getppid() != parent:
            log.warning("worker %s: its celery worker is gone; letting its run go", worker.holder)
            break
    worker.interrupt()


def queue_run(run_id: int) -> None:
    """The run's wake-up call, on the queue "runs" (runs.dispatch.enqueue in the scale-out mode);
    the worker that takes it drives the fairest queued run (runs/worker.py drive_fairest)."""
    drive_run.apply_async((run_id,), queue="runs")


@app.task(name="runs.drive_run", acks_late=True, ignore_result=True)
def drive_run(run_id: int) -> str | None:
    from django.conf import settings
    from django.db import DatabaseError, connection

    from runs import recovery
    from runs.driver import INTERRUPTED, RETRY
    from runs.publishing import Publisher, close_thread_loop, group_of

    worker = this_worker()
    publisher = Publisher()  # no event loop in this process: it publishes on a private one
    try:
        try:
            outcome, driven = worker.drive_fairest(run_id, lambda event: publisher.send(group_of(event["run_id"]), event))
        except DatabaseError:
            # Only the claim lets a database error out (the driver records its own failures).
            # This task is the run's only wake-up: it goes back to the queue instead of being lost.
            log.warning("run %s: database unreachable; queued again", run_id, exc_info=True)
            with contextlib.suppress(DatabaseError):
                connection.close()
            time.sleep(DATABASE_RETRY)
            queue_run(run_id)
            return None
        if outcome == RETRY:  # the storage refused the claim: this wake-up goes back to the queue
            time.sleep(DATABASE_RETRY)
            queue_run(run_id)
            return None
        publisher.drain()
        if outcome == INTERRUPTED and settings.OPTSITE_AUTO_RESUME:
            try:
                recovery.requeue([driven], enqueue=queue_run)  # another worker continues it at once
            except DatabaseError:  # the storage failed the run: the servers' monitor queues it later
                log.warning("run %s: interrupted; could not queue it again yet", driven)
    finally:
        close_thread_loop()
    return outcome


@signals.worker_process_init.connect
def _pool_process_init(**_):
    global _pool_parent
    _pool_parent = os.getppid()
    # From the start: the signal must not end an idle process, and one that is just taking its
    # first run when the shutdown begins lets that run go at once.
    _hear_leave_signal()


@signals.worker_shutting_down.connect
def _interrupt_runs(**_):
    # Warm shutdown waits for running tasks, and a run can last for hours: ask each pool process
    # to let its run go (written, interrupted, queued again) so that the shutdown takes a moment.
    if _worker is not None:  # a solo pool drives runs in this process
        _leaving.set()
    try:
        from billiard.process import active_children
    except ImportError:  # pragma: no cover - billiard comes with celery
        return
    for child in active_children():
        try:
            os.kill(child.pid, LEAVE_SIGNAL)
        except OSError:
            pass
