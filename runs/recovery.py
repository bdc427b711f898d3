"""What happens to runs whose worker went away: marked interrupted, then (by default) queued again.

A worker that dies leaves its run `running` under a lease nobody renews. The local pool sees a
dead process at once (runs/pool.py); everywhere else the monitor here, in every server process,
sweeps expired leases every MONITOR_EVERY seconds. Either way the run becomes `interrupted`
(watchers get "finished") and, unless OPTSITE_AUTO_RESUME=0, is queued again at once: a worker
continues it from its last checkpoint, exactly as if nothing had happened.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from runs import leases
from runs.models import Run
from runs.publishing import group_of, publish
from runs.run_objects import load_run_dict

log = logging.getLogger("runs.recovery")

MONITOR_EVERY = 1.0


def resumable():
    """Interrupted runs that may continue by themselves (a checkpoint, or nothing done yet)."""
    return Run.objects.filter(
        Q(status=Run.Status.INTERRUPTED) & (Q(checkpoint__isnull=False) | Q(n_steps=0))
        & Q(interruptions__lte=settings.OPTSITE_MAX_AUTO_RESUMES))


def requeue(run_ids) -> list[int]:
    """Queue these interrupted runs again (each by one process only); returns those it queued."""
    from runs import dispatch

    queued = []
    for run_id in run_ids:
        if resumable().filter(pk=run_id).update(status=Run.Status.QUEUED, queued_at=timezone.now()):
            queued.append(run_id)
            dispatch.enqueue(run_id)
            publish(group_of(run_id), {"type": "run.status", "run_id": run_id, "run": load_run_dict(run_id)})
    return queued


def interrupted(run_ids: list[int]) -> list[int]:
    """Tell the watchers of these just-interrupted runs, and resume them unless told not to."""
    for run_id in run_ids:
        log.warning("run %s lost its worker: marked interrupted", run_id)
        publish(group_of(run_id), {"type": "run.finished", "run_id": run_id, "run": load_run_dict(run_id)})
    if run_ids and settings.OPTSITE_AUTO_RESUME:
        return requeue(run_ids)
    return []


def sweep(*, stale_after: float | None = None) -> list[int]:
    """Interrupt (and resume) runs whose lease has expired; returns the interrupted ids."""
    marked = leases.interrupt_expired(silent_for=stale_after)
    interrupted(marked)
    return marked


def resume_at_start() -> list[int]:
    """A server starting: runs its predecessor interrupted (shut down, or died) go on."""
    if not settings.OPTSITE_AUTO_RESUME:
        return []
    return requeue(list(resumable().order_by("id").values_list("pk", flat=True)))


# ---- the monitor thread of a server process ---------------------------------------------------
_monitor: threading.Thread | None = None


def start_monitor() -> None:
    """Resume what the last server left, then sweep expired leases every second (servers only).

    Any error (no table yet, the database away) is logged and the next tick tries again.
    """
    global _monitor
    if not settings.OPTSITE_RUN_MONITOR or _monitor is not None:
        return
    _monitor = threading.Thread(target=_monitor_loop, name="optsite-run-monitor", daemon=True)
    _monitor.start()


def _monitor_loop() -> None:
    started = False
    while True:
        try:
            if not started:
                from runs import dispatch

                dispatch.adopt_queued()
                resume_at_start()
                started = True
            sweep()
        except Exception:
            log.debug("run monitor tick failed", exc_info=True)
        finally:
            connection.close()
        time.sleep(MONITOR_EVERY)
