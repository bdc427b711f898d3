"""The lease: what makes "a run is driven by one worker at a time" true under every failure.

A worker process may write a run only while it holds the run's lease: `lease_holder` is its
name and `lease_expires` lies ahead. The lease is taken by one conditional UPDATE (only a queued
run whose lease is free or expired), renewed by every commit of the holder and every RENEW_EVERY
seconds between, and released with the write that lets the run go (pause, end). Every write of
the holder goes through `write()`, which updates the row only WHERE the holder still holds it and
otherwise rolls the whole transaction back: a worker that was frozen, cut off or given up on
finds out at its next write, having written nothing.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from runs.models import Run
from runs.optim.external import EXTERNAL

# A lease not renewed for this long is given up on: its run becomes `interrupted`.
LEASE_SECONDS = 6.0
RENEW_EVERY = 2.0

RELEASED = {"lease_holder": "", "lease_expires": None}


class LeaseLost(Exception):
    """This worker no longer holds the run's lease: it must stop driving it, writing nothing."""


def holder_name(kind: str) -> str:
    """A name for this worker process, unique among live processes: kind@host:pid."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


def _expiry(now):
    return now + timedelta(seconds=LEASE_SECONDS)


def claim(run_id: int, holder: str) -> bool:
    """Take a queued run for `holder` (status becomes running); False if it is not to be had."""
    now = timezone.now()
    free = Q(lease_holder="") | Q(lease_expires__lt=now)
    return bool(Run.objects.filter(Q(pk=run_id, status=Run.Status.QUEUED) & free).update(
        status=Run.Status.RUNNING, lease_holder=holder, lease_expires=_expiry(now), heartbeat=now,
        started=Coalesce(F("started"), Value(now)), queued_at=None))


def write(run_id: int, holder: str, **fields) -> None:
    """Update the run as its lease holder (renewing the lease); LeaseLost if it is not held.

    Call it first inside the transaction that writes the holder's steps: when it raises, the
    transaction rolls back and nothing of the batch is stored.
    """
    now = timezone.now()
    fields.setdefault("lease_expires", _expiry(now))
    if fields["lease_expires"] is None:
        fields["lease_holder"] = ""
    if not Run.objects.filter(pk=run_id, lease_holder=holder).update(heartbeat=now, **fields):
        raise LeaseLost(f"run {run_id} is not held by {holder}")


def renew(run_id: int, holder: str) -> bool:
    """Renew the holder's lease of a run it drives; False if it no longer holds it."""
    now = timezone.now()
    return bool(Run.objects.filter(pk=run_id, lease_holder=holder, status=Run.Status.RUNNING).update(
        heartbeat=now, lease_expires=_expiry(now)))


def _interrupted() -> dict:
    """The fields of a run that lost its worker: interrupted, its lease free, counted.

    A stop that waited for the lost worker stays asked for (the resumed run stops at once); a
    waiting pause does not (whoever resumes it wants it to go on). Steps, counters and the
    checkpoint stay as last committed: they match, so the run resumes exactly.
    """
    kept = Case(When(control_requests__contains="stop", then=Value("stop")), default=Value(""))
    return dict(status=Run.Status.INTERRUPTED, interruptions=F("interruptions") + 1, control_requests=kept, **RELEASED)


def _interrupt(runs) -> list[int]:
    """Mark these running runs interrupted and free their leases; returns their ids."""
    # Row by row, each UPDATE re-checking the condition: a run renewed meanwhile is left alone,
    # and the ids returned are exactly those interrupted here.
    return [run_id for run_id in runs.values_list("pk", flat=True) if runs.filter(pk=run_id).update(**_interrupted())]


def let_go_interrupted(run_id: int, holder: str) -> None:
    """The holder gives its run up as interrupted (the storage failed it); LeaseLost if not held."""
    write(run_id, holder, **_interrupted())


def interrupt_expired(*, silent_for: float | None = None) -> list[int]:
    """Runs whose holder has not renewed its lease in time (or that run with none) -> interrupted.

    `silent_for`: instead, those whose holder has not been heard of for that many seconds.
    """
    now = timezone.now()
    if silent_for is None:
        lapsed = Q(lease_expires__lt=now) | Q(lease_expires__isnull=True)
    else:
        lapsed = Q(heartbeat__lt=now - timedelta(seconds=silent_for)) | Q(heartbeat__isnull=True)
    # A paused external run keeps its lease: the socket that holds it renews it (runs/external_runs.py).
    held = Q(status=Run.Status.RUNNING) | Q(status=Run.Status.PAUSED, problem=EXTERNAL, lease_expires__isnull=False)
    return _interrupt(Run.objects.filter(held & lapsed))


def interrupt_held_by(holder: str) -> list[int]:
    """The runs of a worker known to be dead (its pool saw it exit) -> interrupted, at once."""
    return _interrupt(Run.objects.filter(status=Run.Status.RUNNING, lease_holder=holder))
