"""The monitor thread of every server process: nothing is left behind by a worker that went away.

At start it takes over what the last server left (queued runs for the local pool, interrupted
runs); then every second it sweeps runs whose worker's lease expired and queues again any
interrupted run that should be going on. Off with OPTSITE_RUN_MONITOR=0 (the tests drive it).
"""

from __future__ import annotations

import atexit
import logging
import threading

from django.conf import settings
from django.db import connection

from runs import dispatch, recovery, storage_faults

log = logging.getLogger("runs.monitor")

EVERY = 1.0

_thread: threading.Thread | None = None
_stopping = threading.Event()


def start() -> None:
    global _thread
    if not settings.OPTSITE_RUN_MONITOR or _thread is not None:
        return
    _thread = threading.Thread(target=_loop, name="optsite-run-monitor", daemon=True)
    _thread.start()
    # Registered after the pool's: at exit it stops first, so the runs the pool's workers let go
    # as the server stops stay interrupted until the next start instead of being queued again.
    atexit.register(stop)


def stop() -> None:
    _stopping.set()
    if _thread is not None:
        _thread.join(5)


def tick() -> None:
    recovery.sweep(enqueue=dispatch.enqueue)
    recovery.resume_left_behind(enqueue=dispatch.enqueue)


def _loop() -> None:
    started = False
    failing = None
    while not _stopping.is_set():
        try:
            if not started:
                dispatch.adopt_queued()
                started = True
            tick()
            failing = None
        except Exception as exc:  # the database away, no tables yet: the next tick tries again
            if type(exc) is not failing:  # once per kind of trouble, not every second
                if storage_faults.is_storage_fault(exc):  # the storage's: said in words, no traceback
                    log.warning("run monitor: %s; trying again every %s s", storage_faults.describe(exc), EVERY)
                else:
                    log.warning("run monitor: %s", exc, exc_info=True)
                failing = type(exc)
        finally:
            connection.close()
        _stopping.wait(EVERY)
