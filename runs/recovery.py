"""What happens to runs whose worker went away: marked interrupted, then (by default) queued again.

A worker that dies leaves its run `running` under a lease nobody renews. The local pool sees a
dead process at once (runs/pool.py); everywhere else the monitor of every server process
(runs/monitor.py) sweeps expired leases every second. Either way the run becomes `interrupted`
(watchers get "finished") and, unless OPTSITE_AUTO_RESUME=0, is queued again at once: a worker
continues it from its last checkpoint, exactly as if nothing had happened.

Queuing again is a database write here; `enqueue` (the caller's: its pool, or
runs.dispatch.enqueue) then hands each run to a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from runs import leases
from runs.models import Run
from runs.publishing import group_of, publish
from runs.run_objects import load_run_dict, resumable

log = logging.getLogger("runs.recovery")

Enqueue = Callable[[int], None]


def requeue(run_ids, *, enqueue: Enqueue) -> list[int]:
    """Queue these interrupted runs again (each by one process only); returns those it queued."""
    queued = []
    for run_id in run_ids:
        if resumable().filter(pk=run_id).update(status=Run.Status.QUEUED, queued_at=timezone.now()):
            queued.append(run_id)
            # Heard before the worker's "running": the watchers see the run queue, then go.
            publish(group_of(run_id), {"type": "run.status", "run_id": run_id, "run": load_run_dict(run_id)})
            enqueue(run_id)
    return queued


def interrupted(run_ids: list[int], *, enqueue: Enqueue) -> list[int]:
    """Tell the watchers of these just-interrupted runs, and resume them unless told not to."""
    for run_id in run_ids:
        log.warning("run %s lost its worker: marked interrupted", run_id)
        publish(group_of(run_id), {"type": "run.finished", "run_id": run_id, "run": load_run_dict(run_id)})
    if run_ids and settings.OPTSITE_AUTO_RESUME:
        return requeue(run_ids, enqueue=enqueue)
    return []


def sweep(*, enqueue: Enqueue, stale_after: float | None = None) -> list[int]:
    """Interrupt (and resume) runs whose lease has expired; returns the interrupted ids."""
    marked = leases.interrupt_expired(silent_for=stale_after)
    interrupted(marked, enqueue=enqueue)
    return marked


def resume_left_behind(*, enqueue: Enqueue) -> list[int]:
    """Interrupted runs that should be going on and are not (their server was shut down, or a
    process died between interrupting and queuing them) go on."""
    if not settings.OPTSITE_AUTO_RESUME:
        return []
    return requeue(list(resumable().order_by("id").values_list("pk", flat=True)), enqueue=enqueue)
