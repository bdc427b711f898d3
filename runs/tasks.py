"""The scale-out mode's worker side: a run is one Celery task, driven by runs/worker.py.

The task is only a wake-up call: it claims the run's lease (runs/leases.py) or, if the run is
not to be had (a duplicate or late delivery, a run stopped or deleted while queued), does
nothing. Events go out through the Redis channel layer after each commit. Controls are recorded
in the database; the web process nudges the holder over Redis pub/sub (dispatch.CONTROL_CHANNEL),
which one listener thread per worker process hears.

A worker process that is shut down (warm shutdown of its `celery worker`) or whose parent
died lets its run go as interrupted, and the run is queued again for another worker.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from celery import signals

from optsite.celery import app

log = logging.getLogger("runs.tasks")

_worker = None
_lock = threading.Lock()


def this_worker():
    """This worker process's Worker, with its control listener (made on first use)."""
    global _worker
    with _lock:
        if _worker is None:
            from runs.worker import Worker

            _worker = Worker("celery")
            threading.Thread(target=_listen, args=(_worker,), name="optsite-controls", daemon=True).start()
            threading.Thread(target=_watch_parent, args=(_worker, os.getppid()), name="optsite-parent",
                             daemon=True).start()
        return _worker


def _listen(worker) -> None:
    import redis
    from django.conf import settings

    from runs.dispatch import CONTROL_CHANNEL

    while True:
        try:
            client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=None)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(CONTROL_CHANNEL)
            for message in pubsub.listen():
                try:
                    worker.nudge(int(message["data"]))
                except (TypeError, ValueError):
                    pass
        except Exception:  # Redis away for a moment: the worker's poll still takes controls
            log.warning("control listener: Redis connection lost; reconnecting", exc_info=True)
            time.sleep(1.0)


def _watch_parent(worker, parent: int) -> None:
    # A prefork child whose `celery worker` was killed would drive on alone: let the run go.
    while os.getppid() == parent:
        time.sleep(0.5)
    log.warning("worker %s: its celery worker is gone; letting its run go", worker.holder)
    worker.interrupt()


@app.task(name="runs.drive_run", acks_late=True, ignore_result=True)
def drive_run(run_id: int) -> str | None:
    from django.conf import settings

    from runs import recovery
    from runs.driver import INTERRUPTED
    from runs.publishing import Publisher, close_thread_loop, group_of

    worker = this_worker()
    publisher = Publisher()
    try:
        outcome = worker.drive(run_id, lambda event: publisher.send(group_of(event["run_id"]), event))
        publisher.drain()
        if outcome == INTERRUPTED and settings.OPTSITE_AUTO_RESUME:
            recovery.requeue([run_id])  # another worker continues it at once
    finally:
        close_thread_loop()
    return outcome


@signals.worker_process_init.connect
def _install_shutdown_signal(**_):
    # The main process tells its children with SIGUSR1 that a warm shutdown has begun (below).
    signal.signal(signal.SIGUSR1, lambda *_: _worker is not None and _worker.interrupt())


@signals.worker_shutting_down.connect
def _interrupt_children(**_):
    # Warm shutdown waits for running tasks, and a run can last for hours: ask each child to let
    # its run go (written, interrupted, queued again) so that the shutdown takes a moment.
    try:
        from billiard.process import active_children
    except ImportError:  # pragma: no cover - billiard comes with celery
        return
    for child in active_children():
        try:
            os.kill(child.pid, signal.SIGUSR1)
        except OSError:
            pass
