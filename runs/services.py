"""The only code that writes runs and steps and publishes them: views, consumers, commands call here.

Every function takes keyword-only arguments and is synchronous (consumers wrap them in
database_sync_to_async). The executor threads live in runs/executor.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from runs import executor
from runs.executor import ENDED, dumps, run_to_dict  # noqa: F401  (part of this API)
from runs.models import Run, Step

__all__ = [
    "ServiceError", "limits", "create_run", "start_run", "launch", "control_run", "request_control", "stop_run",
    "pause_run", "resume_run", "stop_run_and_wait", "get_run_for", "runs_for", "run_to_dict", "step_texts",
    "steps_json", "wait_for_run", "sweep_orphans", "dumps",
]


class ServiceError(Exception):
    """A refusal a person can act on; `code` is one of PROTOCOL's error codes."""

    def __init__(self, code: str, message: str, errors: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors or {}


def limits():
    from runs.optim import Limits

    return Limits(
        max_dim=settings.OPTSITE_MAX_DIM,
        max_maxiter=settings.OPTSITE_MAX_MAXITER,
        max_popsize=settings.OPTSITE_MAX_POPSIZE,
        max_evaluations=settings.OPTSITE_MAX_EVALUATIONS,
    )


def validate(data) -> "object":
    """runs.optim.validate_spec with this site's limits; raises ServiceError."""
    from runs.optim import SpecError, validate_spec

    if not isinstance(data, dict):
        raise ServiceError("invalid_spec", "The run spec must be a JSON object.", {"spec": ["Expected an object."]})
    try:
        return validate_spec(data, limits())
    except SpecError as exc:
        raise ServiceError(exc.code, exc.message, exc.errors) from None


def _check_capacity(owner) -> None:
    cap = getattr(settings, "OPTSITE_MAX_CONCURRENT_RUNS", 4)
    active = Run.objects.filter(owner=owner, status__in=Run.ACTIVE).count()
    if active >= cap:
        raise ServiceError(
            "limit",
            f"You already have {active} active run{'s' if active != 1 else ''}; the limit is {cap}. "
            "Stop or wait for one before starting another.",
            {"runs": [f"At most {cap} active runs per user."]},
        )


def _lock_owner(owner) -> None:
    # Serialise capacity checks per user (PostgreSQL; SQLite's IMMEDIATE transactions already do).
    get_user_model().objects.select_for_update().filter(pk=owner.pk).exists()


def create_run(*, owner, data, label: str = "") -> Run:
    """Validate `data` (a run spec) and store a queued run; ServiceError if invalid or over a limit."""
    spec = validate(data)
    normal = spec.to_dict()
    with transaction.atomic():
        _lock_owner(owner)
        _check_capacity(owner)
        return Run.objects.create(
            owner=owner, label=label[:200], method=normal["method"], problem=normal["problem"], spec=normal,
        )


def _spec_of(run: Run):
    from runs.optim import validate_spec

    # The stored spec is the normalised one: validating it again gives the same Spec, and the
    # run keeps working if the site's limits are lowered later.
    return validate_spec(run.spec)


def start_run(*, run_id: int, loop: asyncio.AbstractEventLoop | None = None) -> dict:
    """Start a queued run on an executor thread; returns its Run object (status running)."""
    run = Run.objects.get(pk=run_id)
    if run.status != Run.Status.QUEUED:
        raise ServiceError("conflict", f"Run {run_id} is {run.status}, not queued.")
    spec = _spec_of(run)
    now = timezone.now()
    Run.objects.filter(pk=run_id).update(status=Run.Status.RUNNING, started=now, heartbeat=now)
    execution = executor.Execution(run_id=run_id, spec=spec, checkpoint=None, n_steps=0, best_fun=None,
                                   loop=loop, announce=False)
    try:
        payload = executor.load_run_dict(run_id)
        execution.start()
    except Exception as exc:  # a run that cannot start must not count as active forever
        Run.objects.filter(pk=run_id).update(status=Run.Status.FAILED, finished=timezone.now(), error=str(exc))
        raise
    return payload


def launch(*, owner, data, loop: asyncio.AbstractEventLoop | None = None, label: str = "") -> dict:
    """create_run + start_run (callers that do not need to subscribe in between)."""
    run = create_run(owner=owner, data=data, label=label)
    return start_run(run_id=run.pk, loop=loop)


def get_run_for(user, run_id) -> Run | None:
    """The user's run with this id, or None (someone else's run is as absent as a missing one)."""
    try:
        run_id = int(run_id)
    except (TypeError, ValueError):
        return None
    if not getattr(user, "is_authenticated", False):
        return None
    return Run.objects.select_related("owner").defer("checkpoint").filter(pk=run_id, owner=user).first()


def runs_for(user):
    """The user's runs, newest first (a queryset: slice or filter it further)."""
    return Run.objects.select_related("owner").defer("checkpoint").filter(owner=user).order_by("-created", "-id")


def _owned(user, run_id) -> Run:
    run = get_run_for(user, run_id)
    if run is None:
        raise ServiceError("not_found", f"There is no run {run_id} of yours.")
    return run


def control_run(*, user, run_id: int, action: str, loop: asyncio.AbstractEventLoop | None = None) -> tuple[bool, dict]:
    """stop / pause / resume a run of `user`.

    Returns (accepted, run): when accepted the executor publishes the status change (and the
    steps before it) to the run's group in order, so callers must not answer with `run`;
    otherwise nothing changes and `run` is the current state to answer with.
    """
    if action not in ("stop", "pause", "resume"):
        raise ServiceError("bad_message", f"Unknown control {action!r}.")
    run = _owned(user, run_id)
    if action == "resume" and run.status == Run.Status.INTERRUPTED:
        return True, resume_interrupted(run=run, loop=loop)
    if run.status in ENDED:  # committed before "finished" is published: no race with the thread
        raise ServiceError("conflict", f"Run {run.pk} is already {run.status}; it cannot {action}.")
    execution = executor.get(run.pk)
    if execution is None:
        # Active in the database but driven by no thread here: another server process runs it
        # (or ran it and died: the monitor will mark it interrupted, which answers the request).
        accepted, status = request_control(run_id=run.pk, action=action)
        if status == Run.Status.INTERRUPTED:  # it became interrupted meanwhile: resume it here
            return True, resume_interrupted(run=run, loop=loop)
        run.status = status
        return accepted, run_to_dict(run)
    if loop is not None:
        execution.loop = loop
    accepted = {"stop": execution.request_stop, "pause": execution.request_pause,
                "resume": execution.request_resume}[action]()
    return accepted, run_to_dict(run)


# At most this many controls wait for the process that drives a run (it takes them within
# executor.CONTROL_POLL seconds, so only a process that is gone lets them pile up).
MAX_PENDING_CONTROLS = 8


def _intended(status: str, pending: list[str]) -> str:
    """What a run will be once the controls waiting for it are carried out."""
    state = "paused" if status == Run.Status.PAUSED else "running"
    for action in pending:
        if action == "stop":
            return "stopping"
        if action == "pause" and state == "running":
            state = "paused"
        elif action == "resume" and state == "paused":
            state = "running"
    return state


def request_control(*, run_id: int, action: str) -> tuple[bool, str]:
    """Record a control for a run that another server process drives; returns (accepted, status).

    Callers have checked ownership. Accepted as a local control would be: pause only if the run
    will be running once the waiting controls are carried out, resume only if it will be paused,
    stop unless one waits. The driving process's executor takes it within executor.CONTROL_POLL
    seconds and publishes the status change to every socket of every server. Status
    `interrupted` (not accepted) means the run has meanwhile been marked as left behind.
    """
    with transaction.atomic():
        # The row lock (SQLite: the IMMEDIATE transaction) orders this with the executor's writes:
        # a request is recorded only while the run is active, and taken exactly once.
        row = Run.objects.select_for_update().filter(pk=run_id).values_list("status", "control_requests").first()
        if row is None:
            raise ServiceError("not_found", f"There is no run {run_id}.")
        status, text = row
        if status == Run.Status.INTERRUPTED and action == "resume":
            return False, status
        if status in ENDED:
            raise ServiceError("conflict", f"Run {run_id} is already {status}; it cannot {action}.")
        pending = text.split()
        intended = _intended(status, pending)
        accepted = (action == "pause" and intended == "running" or action == "resume" and intended == "paused"
                    or action == "stop" and intended != "stopping")
        if accepted:
            if len(pending) >= MAX_PENDING_CONTROLS:
                raise ServiceError("conflict", f"Run {run_id}'s server has not taken the last "
                                   f"{len(pending)} controls yet; try again shortly.")
            Run.objects.filter(pk=run_id).update(control_requests=" ".join([*pending, action]))
    return accepted, status


def stop_run(*, user, run_id: int) -> tuple[bool, dict]:
    return control_run(user=user, run_id=run_id, action="stop")


def stop_run_and_wait(*, run_id: int, timeout: float = 30.0) -> bool:
    """Stop a run (callers have checked ownership) and wait until its writer is done.

    True when no thread of any process drives the run any more (e.g. before deleting it): the
    thread here has ended, or the run driven by another process has ended (or that process has
    gone: its heartbeat is stale).
    """
    execution = executor.get(run_id)
    if execution is not None:
        execution.request_stop()
        return execution.join(timeout)
    try:
        request_control(run_id=run_id, action="stop")
    except ServiceError:
        return True  # already ended, or gone
    deadline = time.monotonic() + timeout
    while True:
        row = Run.objects.filter(pk=run_id).values_list("status", "heartbeat").first()
        if row is None or row[0] not in Run.ACTIVE or executor.get(run_id) is None and _stale(row[1]):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _stale(heartbeat) -> bool:
    return heartbeat is None or (timezone.now() - heartbeat).total_seconds() > executor.STALE_AFTER


def pause_run(*, user, run_id: int) -> tuple[bool, dict]:
    return control_run(user=user, run_id=run_id, action="pause")


def resume_run(*, user, run_id: int, loop: asyncio.AbstractEventLoop | None = None) -> tuple[bool, dict]:
    """Resume a paused run, or continue an interrupted one from its checkpoint."""
    return control_run(user=user, run_id=run_id, action="resume", loop=loop)


def resume_interrupted(*, run: Run, loop: asyncio.AbstractEventLoop | None = None) -> dict:
    """Continue an interrupted run exactly where its stored steps end."""
    spec = _spec_of(run)
    with transaction.atomic():
        _lock_owner(run.owner)
        _check_capacity(run.owner)
        claimed = Run.objects.filter(pk=run.pk, status=Run.Status.INTERRUPTED).update(
            status=Run.Status.RUNNING, heartbeat=timezone.now(), control_requests="")
    if not claimed:
        raise ServiceError("conflict", f"Run {run.pk} is no longer interrupted.")
    fresh = Run.objects.get(pk=run.pk)
    if fresh.checkpoint is None and fresh.n_steps:
        Run.objects.filter(pk=run.pk).update(status=Run.Status.FAILED, error="No checkpoint to resume from.")
        raise ServiceError("conflict", f"Run {run.pk} has no checkpoint to resume from.")
    execution = executor.Execution(
        run_id=run.pk, spec=spec, checkpoint=fresh.checkpoint and bytes(fresh.checkpoint),
        n_steps=fresh.n_steps, best_fun=fresh.best_fun, loop=loop, announce=True)
    payload = executor.load_run_dict(run.pk)  # before the thread can change it
    execution.start()
    return payload


def sweep_orphans(*, stale_after: float = executor.STALE_AFTER) -> list[int]:
    """Mark runs left without an executor `interrupted`; returns their ids."""
    return executor.sweep_orphans(stale_after=stale_after)


def wait_for_run(*, run_id: int, timeout: float | None = None) -> bool:
    """Wait for the run's executor thread in this process to end (tests, commands)."""
    return executor.wait(run_id, timeout)


def step_texts(*, run_id: int, after: int = -1, upto: int | None = None, limit: int | None = None,
               chunk: int = 2000) -> Iterator[tuple[int, str]]:
    """(seq, stored JSON text) of the run's steps with after < seq <= upto, in order, read in chunks."""
    sent = 0
    while limit is None or sent < limit:
        qs = Step.objects.filter(run_id=run_id, seq__gt=after)
        if upto is not None:
            qs = qs.filter(seq__lte=upto)
        size = chunk if limit is None else min(chunk, limit - sent)
        rows = list(qs.order_by("seq").values_list("seq", "data")[:size])
        yield from rows
        sent += len(rows)
        if len(rows) < size:
            return
        after = rows[-1][0]


def steps_json(texts: list[str]) -> str:
    """A JSON array from stored step texts, without decoding them."""
    return "[" + ",".join(texts) + "]"
