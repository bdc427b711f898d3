"""The monitor thread of every server process: nothing is left behind by a worker that went away.

At start it takes over what the last server left (queued runs for the local pool, interrupted
runs); then every second it sweeps runs whose worker's lease expired and queues again any
interrupted run that should be going on. Off with OPTSITE_RUN_MONITOR=0 (the tests drive it).

A lease that ran out while the storage failed says nothing about its worker: it could not renew
it, and may be waiting to write its batch (runs/driver.py). So after a storage fault (or a sweep
that got the write lock only after a long wait: the lock was held until then), the monitor makes
a harmless write of its own every tick, and sweeps again only once such writes have gone through
for QUIET_AFTER_FAULT: a worker that is alive has renewed its lease by then, and one that is not
is found a few seconds later than usual.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time

from django.conf import settings
from django.db import connection, transaction

from runs import dispatch, leases, recovery, storage_faults

log = logging.getLogger("runs.monitor")

EVERY = 1.0
# How long after a storage fault no lease is judged (the lease's length: the holders renew sooner).
QUIET_AFTER_FAULT = leases.LEASE_SECONDS
# A sweep that waited this long for SQLite's write lock found it held: it interrupts nobody.
LOCK_WAIT = 1.0

_thread: threading.Thread | None = None
_stopping: threading.Event | None = None
_registered = False
_faulted = False  # a storage fault was seen and the database has not taken writes long enough since
_writable_since: float | None = None


class _LockWasHeld(Exception):
    """The sweep got the write lock only after a long wait: the storage was failing until now."""


def start() -> None:
    global _thread, _stopping, _registered, _faulted, _writable_since
    if not settings.OPTSITE_RUN_MONITOR or _thread is not None:
        return
    _stopping, _faulted, _writable_since = threading.Event(), False, None
    _thread = threading.Thread(target=_loop, args=(_stopping,), name="optsite-run-monitor", daemon=True)
    _thread.start()
    if not _registered:
        # Registered after the pool's: at exit it stops first, so the runs the pool's workers let
        # go as the server stops stay interrupted until the next start instead of being queued again.
        atexit.register(stop)
        _registered = True


def stop() -> None:
    global _thread
    if _thread is not None:
        _stopping.set()
        _thread.join(5)
        _thread = None


def _sweep() -> None:
    began = time.monotonic()
    with transaction.atomic():  # SQLite: BEGIN IMMEDIATE, which waits for the write lock
        if connection.vendor == "sqlite" and time.monotonic() - began > LOCK_WAIT:
            raise _LockWasHeld(f"the write lock was held for {time.monotonic() - began:.1f} s")
        marked = leases.interrupt_expired()
    recovery.interrupted(marked, enqueue=dispatch.enqueue)  # after the commit: publish, queue again


def _probe_write() -> None:
    """A write that changes nothing (SQLite: the header's user_version, set to itself); it fails
    while the storage does. Elsewhere, a query: the faults there are lost connections."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA user_version")
            cursor.execute(f"PRAGMA user_version = {int(cursor.fetchone()[0])}")
        else:
            cursor.execute("SELECT 1")


def tick() -> None:
    """One round: sweep expired leases (not while the storage is recovering from a fault), and
    queue again the interrupted runs that should go on."""
    global _faulted, _writable_since
    try:
        if _faulted:
            _probe_write()
            now = time.monotonic()
            if _writable_since is None:
                _writable_since = now
            if now - _writable_since >= QUIET_AFTER_FAULT:
                _sweep()
                _faulted, _writable_since = False, None
        else:
            _sweep()
        recovery.resume_left_behind(enqueue=dispatch.enqueue)
    except Exception as exc:
        if isinstance(exc, _LockWasHeld) or storage_faults.is_storage_fault(exc):
            _faulted, _writable_since = True, None
        raise


def _loop(stopping: threading.Event) -> None:
    started = False
    failing = None
    while not stopping.is_set():
        try:
            if not started:
                dispatch.adopt_queued()
                started = True
            tick()
            failing = None
        except _LockWasHeld as exc:
            log.warning("run monitor: %s; no lease is judged for %s s", exc, QUIET_AFTER_FAULT)
        except Exception as exc:  # the database away, no tables yet: the next tick tries again
            if type(exc) is not failing:  # once per kind of trouble, not every second
                if storage_faults.is_storage_fault(exc):  # the storage's: said in words, no traceback
                    log.warning("run monitor: %s; trying again every %s s", storage_faults.describe(exc), EVERY)
                else:
                    log.warning("run monitor: %s", exc, exc_info=True)
                failing = type(exc)
        finally:
            connection.close()
        stopping.wait(EVERY)
