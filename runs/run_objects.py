"""The PROTOCOL Run object, and where a queued run stands in the queue."""

from __future__ import annotations

import heapq
from collections import Counter, deque

from django.conf import settings
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.db.models.functions import Coalesce

from runs.models import Run
from runs.optim import finite_number
from runs.optim.external import EXTERNAL
from runs.outcomes import run_outcome


def _iso(dt):
    return None if dt is None else dt.isoformat()


# Within one owner, workers take queued runs in this order: a paused run that was asked to stop
# first (it only needs a moment to write its result), then the oldest in the queue.
QUEUE_ORDER = (
    Case(When(control_requests__contains="stop", then=Value(0)), default=Value(1), output_field=IntegerField()),
    "since", "id",
)


def _queued():
    # A run stored as queued by other means than the services (an import, a fixture) has no
    # queued_at: its creation time stands in.
    return Run.objects.filter(status=Run.Status.QUEUED).annotate(since=Coalesce(F("queued_at"), F("created")))


def queued_runs():
    return _queued().order_by(*QUEUE_ORDER)


def fair_queue(among=None, *, also_running=()) -> list[int]:
    """The queued runs (of `among`, ids, if given) in the order free workers take them.

    Fair across users: runs waiting only to write their stop go first; then the next run is the
    oldest of the owner with the fewest runs running, counting those this order hands out
    before it (round-robin, so a 200-run study does not starve another user's single run).
    `also_running`: runs handed to a worker that has not claimed them yet.
    """
    queued = queued_runs()
    if among is not None:
        queued = queued.filter(pk__in=list(among))
    rows = list(queued.values_list("pk", "owner_id", "control_requests"))
    if not rows:
        return []
    # an external run holds no worker: it does not make its owner's queued runs wait
    running = Counter(Run.objects.filter(Q(status=Run.Status.RUNNING) | Q(pk__in=list(also_running)))
                      .exclude(problem=EXTERNAL).values_list("owner_id", flat=True))
    first = [pk for pk, _, requests in rows if "stop" in requests]
    by_owner: dict[int, deque] = {}
    for position, (pk, owner, requests) in enumerate(rows):
        if "stop" not in requests:
            by_owner.setdefault(owner, deque()).append((position, pk))
    heap = [(running[owner], runs[0][0], owner) for owner, runs in by_owner.items()]
    heapq.heapify(heap)
    order = first
    while heap:
        load, _, owner = heapq.heappop(heap)
        runs = by_owner[owner]
        order.append(runs.popleft()[1])
        if runs:
            heapq.heappush(heap, (load + 1, runs[0][0], owner))
    return order


def queue_position(run: Run) -> int | None:
    """1 for the next run a free worker takes, 2 for the one after, ...; None unless queued."""
    if run.status != Run.Status.QUEUED:
        return None
    order = fair_queue()
    try:
        return order.index(run.pk) + 1
    except ValueError:  # taken meanwhile
        return None


def resumable():
    """Interrupted runs that may continue by themselves (a checkpoint, or nothing done yet, and
    not interrupted too often: a run that keeps killing its worker waits for its owner). Never an
    external run: only its owner's process can go on with it (runs/external_runs.py)."""
    return Run.objects.filter(
        Q(status=Run.Status.INTERRUPTED) & (Q(checkpoint__isnull=False) | Q(n_steps=0))
        & Q(interruptions__lte=settings.OPTSITE_MAX_AUTO_RESUMES)).exclude(problem=EXTERNAL)


def resumes_by_itself(run: Run) -> bool:
    """An interrupted run the server queues again unasked (OPTSITE_AUTO_RESUME, under the cap)."""
    if run.status != Run.Status.INTERRUPTED or not settings.OPTSITE_AUTO_RESUME:
        return False
    return resumable().filter(pk=run.pk).exists()


def run_to_dict(run: Run) -> dict:
    """The PROTOCOL Run object (plus label, the latest figures and where the run is)."""
    spec = run.spec or {}
    external = run.problem == EXTERNAL
    return {
        "id": run.pk,
        "url": run.get_absolute_url(),
        "owner": run.owner.username,
        "method": run.method,
        "problem": run.problem,
        "params": spec.get("params", {}),
        "dim": spec.get("dim"),
        "bounds": spec.get("bounds"),
        "x0": spec.get("x0"),
        "options": spec.get("options", {}),
        "status": run.status,
        "created": _iso(run.created),
        "started": _iso(run.started),
        "finished": _iso(run.finished),
        "n_steps": run.n_steps,
        "result": run.result,
        "error": run.error or None,
        "label": run.label,
        "best_fun": finite_number(run.best_fun),
        "nit": run.nit,
        "nfev": run.nfev,
        "elapsed": run.elapsed,
        "queue_position": queue_position(run),
        # "external": computed in its owner's Python process and streamed here (runs/external_runs.py)
        "kind": "external" if external else "server",
        "worker": None if external else run.worker,  # an external run's socket is no worker
        "stopping": "stop" in run.control_requests,
        "auto_resume": resumes_by_itself(run),
        "outcome": run_outcome(run),  # how it ended (runs/outcomes.py); null while active
        # a user's own problem: the definition the run ran (runs/optim/expressions.py)
        **({"definition": spec["definition"]} if spec.get("definition") else {}),
        # an external run's function as its owner described it: {"title", "gradient", "hessian"}
        **({"external": spec["external"]} if external and spec.get("external") else {}),
    }


def load_run_dict(run_id: int) -> dict:
    return run_to_dict(Run.objects.select_related("owner").defer("checkpoint").get(pk=run_id))
