"""The web side's writes of runs: create, queue, control, relabel, delete. Views, consumers,
commands call here; steps are written only by runs/step_writer.py (for a worker's driver,
runs/driver.py, and for the external socket, runs/external_runs.py).

Every function takes keyword-only arguments and is synchronous (consumers wrap them in
database_sync_to_async). A status change made here is published here, after its commit; one a
worker makes (running, paused, the end) the worker publishes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from runs import dispatch, recovery, stored_steps
from runs.encoding import dumps
from runs.models import Run, Step
from runs.optim.echo import shown
from runs.optim.external import is_external
from runs.publishing import group_of, publish
from runs.run_objects import load_run_dict, run_to_dict

ENDED = Run.ENDED

__all__ = [
    "ServiceError", "limits", "validate", "row_id", "check_label", "create_run", "start_run", "launch", "control_run", "stop_run",
    "pause_run", "resume_run", "stop_run_and_wait", "get_run_for", "runs_for", "run_to_dict", "step_texts",
    "step_text", "steps_json", "wait_for_run", "sweep_orphans", "relabel_run", "stop_for_delete", "delete_run", "dumps", "ENDED",
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
        max_maxcor=settings.OPTSITE_MAX_MAXCOR,
        max_checkpoint_bytes=settings.OPTSITE_MAX_CHECKPOINT_BYTES,
    )


def validate(data, owner=None, *, external: bool = False) -> "object":
    """runs.optim.validate_spec with this site's limits, and the owner's own problems among the
    names a spec may use (the Spec then carries the definition); raises ServiceError.

    The one path every launch takes: a spec of problem "external" is refused here unless
    `external` (only the external socket, runs/external_runs.py, takes those, and only those)."""
    from runs.optim import SpecError, validate_spec
    from runs.optim.external import EXTERNAL

    if not isinstance(data, dict):
        raise ServiceError("invalid_spec", "The run spec must be a JSON object.", {"spec": ["Expected an object."]})
    if is_external(data) and not external:
        raise ServiceError(
            "invalid_spec", f'An external run is made by the Python client (Client.minimize or '
            f'Client.differential_evolution), which computes your own function in your process and streams '
            f'its steps here; the server cannot run the problem "{EXTERNAL}". Pick a problem of the catalogue '
            f'or one of your own to run it here.',
            {"problem": [f'"{EXTERNAL}" is for runs of the Python client, not launched here.']})
    if external and not is_external(data):
        raise ServiceError(
            "invalid_spec", f'This socket takes external runs only: a spec with "problem": "{EXTERNAL}" and '
            'an "external" object. Launch other runs on /ws/runs/ or the new-run page.',
            {"problem": [f'Must be "{EXTERNAL}" here.']})
    problems = None
    if owner is not None and "definition" not in data:
        from runs.user_problems import definitions_for

        problems = definitions_for(owner)
    try:
        return validate_spec(data, limits(), problems)
    except SpecError as exc:
        raise ServiceError(exc.code, exc.message, exc.errors) from None


def _check_capacity(owner) -> None:
    """The per-user and the site-wide caps on active runs (call inside lock_owner's transaction).
    A study's runs have caps of their own (runs/studies.py)."""
    cap = settings.OPTSITE_MAX_CONCURRENT_RUNS
    single = Run.objects.filter(status__in=Run.ACTIVE, study__isnull=True)
    active = single.filter(owner=owner).count()
    if active >= cap:
        runs = f"{active:,} active run{'s' if active != 1 else ''}"
        most = "the most" if active == cap else "more than"
        raise ServiceError(
            "limit",
            f"You already have {runs}, {most} this server allows at once (the limit is {cap:,}). "
            "Stop one, or wait for one to end, then launch again.",
            {"runs": [f"You already have {runs}; this server runs at most {cap:,} at once for each user."]},
        )
    site_cap = settings.OPTSITE_MAX_ACTIVE_RUNS
    everyone = single.count()
    if everyone >= site_cap:
        raise ServiceError(
            "limit",
            f"This server already has {everyone:,} active runs of all its users, as many as it takes at "
            f"once (the limit is {site_cap:,}). Try again when some have ended.",
            {"runs": [f"The server is full: at most {site_cap:,} runs may be active at once, of all users."]},
        )


# Any constant: the key of the PostgreSQL advisory lock that orders the site-wide count.
_SITE_LOCK = 0x6F707473


def lock_owner(owner) -> None:
    # Serialise capacity checks per user and for the site (PostgreSQL; SQLite's IMMEDIATE
    # transactions already do).
    get_user_model().objects.select_for_update().filter(pk=owner.pk).exists()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SITE_LOCK])


def _announce(run_id: int, *kinds: str) -> None:
    """After the commit: tell the run's watchers how this transaction leaves it ("status",
    "finished"). Call it before _queue: the watchers hear "queued" before a worker's "running"."""
    run = load_run_dict(run_id)

    def send():
        for kind in kinds:
            publish(group_of(run_id), {"type": f"run.{kind}", "run_id": run_id, "run": run})
    transaction.on_commit(send)


def _queue(run_id: int) -> None:
    """After the commit: a worker takes the run in queue order."""
    transaction.on_commit(lambda: dispatch.enqueue(run_id))


def check_label(label) -> str:
    """A run's label as a socket client gave it (stripped); ServiceError unless it is text of at
    most 200 characters."""
    if not isinstance(label, str) or len(label) > 200 or "\x00" in label:
        raise ServiceError("invalid_spec", "The label must be text of at most 200 characters.",
                           {"label": ["Text of at most 200 characters."]})
    return label.strip()


def create_run(*, owner, data, label: str = "", external: bool = False, **fields) -> Run:
    """Validate `data` (a run spec) and store a run, queued unless `fields` say otherwise (an
    external run is running from the start); ServiceError if invalid or over a limit."""
    normal = validate(data, owner, external=external).to_dict()
    with transaction.atomic():
        lock_owner(owner)
        _check_capacity(owner)
        return Run.objects.create(
            owner=owner, label=label[:200], method=normal["method"], problem=normal["problem"], spec=normal,
            **{"queued_at": timezone.now(), **fields},
        )


def start_run(*, run_id: int) -> dict:
    """Hand a queued run to the workers; returns its Run object (queued, with its position)."""
    run = Run.objects.filter(pk=run_id).only("status").first()
    if run is None or run.status != Run.Status.QUEUED:
        raise ServiceError("conflict", f"Run {run_id} is {getattr(run, 'status', 'gone')}, not queued.")
    payload = load_run_dict(run_id)  # before a worker can change it: the first answer says "queued"
    dispatch.enqueue(run_id)
    return payload


def launch(*, owner, data, label: str = "") -> dict:
    """create_run + start_run (callers that do not need to subscribe in between)."""
    run = create_run(owner=owner, data=data, label=label)
    return start_run(run_id=run.pk)


def row_id(user, raw) -> int | None:
    """`raw` as an id a logged-in user's row can have, or None (a 400-digit id would overflow
    the database driver; an anonymous user owns nothing)."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    if not 0 < value < 2 ** 63 or not getattr(user, "is_authenticated", False):
        return None
    return value


def get_run_for(user, run_id) -> Run | None:
    """The user's run with this id, or None (someone else's run is as absent as a missing one)."""
    run_id = row_id(user, run_id)
    if run_id is None:
        return None
    return Run.objects.select_related("owner").defer("checkpoint").filter(pk=run_id, owner=user).first()


def runs_for(user):
    """The user's runs, newest first (a queryset: slice or filter it further)."""
    return Run.objects.select_related("owner").defer("checkpoint").filter(owner=user).order_by("-created", "-id")


def _owned(user, run_id) -> Run:
    run = get_run_for(user, run_id)
    if run is None:
        raise ServiceError("not_found", f"There is no run {shown(run_id)} of yours.")
    return run


def control_run(*, user, run_id: int, action: str) -> tuple[bool, dict]:
    """stop / pause / resume a run of `user`.

    Returns (accepted, run), `run` as it stands after the call. When accepted, the status change
    is published to the run's group (by this call after its commit, or by the worker in order
    with the steps), so callers must not answer with `run`; otherwise nothing changed.
    """
    if action not in ("stop", "pause", "resume"):
        raise ServiceError("bad_message", f"Unknown control {shown(action)}.")
    run = _owned(user, run_id)
    with transaction.atomic():
        if action == "resume":
            lock_owner(run.owner)  # resuming an interrupted run counts against the cap again
        # The row lock (SQLite: the IMMEDIATE transaction) orders controls with the worker's writes.
        row = Run.objects.select_for_update().filter(pk=run.pk).first()
        if row is None:
            raise ServiceError("not_found", f"There is no run {shown(run_id)} of yours.")
        accepted = _CONTROLS[action](row)
        # As this call leaves it (a worker may take a queued run the moment this commits).
        payload = run_to_dict(Run.objects.select_related("owner").defer("checkpoint").get(pk=run.pk))
    return accepted, payload


def _conflict(run: Run, action: str):
    return ServiceError("conflict", f"Run {run.pk} is already {run.status}; it cannot {action}.")


def _record(run: Run, action: str) -> bool:
    """Record a control for the worker that holds the run, and nudge it after the commit.

    The record is a set of words ("pause", "stop"): each stays until the worker's write that
    carries it out, so asking twice is answered "already asked".
    """
    pending = run.control_requests.split()
    Run.objects.filter(pk=run.pk).update(control_requests=" ".join([*pending, action]))
    external = is_external(run)
    transaction.on_commit(lambda: dispatch.nudge(run.pk, external=external))
    return True


def _external_stop(run: Run) -> bool:
    """An external run is stopped by its client (scipy's stopped result is computed there): the
    stop is recorded for the socket that holds the run, or, interrupted, told at its attach."""
    _record(run, "stop")
    if run.status == Run.Status.INTERRUPTED:  # nobody holds it: its watchers see it is to stop
        _announce(run.pk, "status")
    return True


def _stop(run: Run) -> bool:
    S = Run.Status
    if run.status in (S.FINISHED, S.STOPPED, S.FAILED):
        raise _conflict(run, "stop")
    if "stop" in run.control_requests:
        return False  # asked already
    if is_external(run):
        return _external_stop(run)
    if run.status == S.RUNNING:
        return _record(run, "stop")
    if run.checkpoint is None:
        # Never started (or nothing to continue from): it ends here, with no result.
        Run.objects.filter(pk=run.pk).update(status=S.STOPPED, finished=timezone.now(), queued_at=None,
                                             control_requests="", checkpoint=None)
        _announce(run.pk, "status", "finished")
        return True
    # Queued, paused or interrupted with a checkpoint: a worker writes the stopped result (scipy's,
    # polish included) from it, ahead of every run that waits to go on.
    fields = {"control_requests": "stop"}
    if run.status != S.QUEUED:
        fields.update(status=S.QUEUED, queued_at=timezone.now())
    Run.objects.filter(pk=run.pk).update(**fields)
    _announce(run.pk, "status")
    if run.status != S.QUEUED:
        _queue(run.pk)
    return True


def _pause(run: Run) -> bool:
    S = Run.Status
    if run.status in Run.ENDED:
        raise _conflict(run, "pause")
    pending = run.control_requests.split()
    if run.status == S.PAUSED or "stop" in pending or "pause" in pending:
        return False
    if run.status == S.RUNNING:
        return _record(run, "pause")
    # Queued: it waits paused instead, holding its place in nothing.
    Run.objects.filter(pk=run.pk).update(status=S.PAUSED, queued_at=None)
    _announce(run.pk, "status")
    return True


def _resume(run: Run) -> bool:
    S = Run.Status
    if run.status in (S.FINISHED, S.STOPPED, S.FAILED):
        raise _conflict(run, "resume")
    if is_external(run):
        return _external_resume(run)
    if run.status in (S.QUEUED, S.RUNNING):
        if "pause" in run.control_requests.split():  # not taken yet: it simply goes on
            Run.objects.filter(pk=run.pk).update(
                control_requests=" ".join(a for a in run.control_requests.split() if a != "pause"))
        return False
    if "stop" in run.control_requests:
        return False
    if run.status == S.INTERRUPTED:
        _check_capacity(run.owner)
        if run.checkpoint is None and run.n_steps:
            Run.objects.filter(pk=run.pk).update(status=S.FAILED, error="No checkpoint to resume from.")
            raise ServiceError("conflict", f"Run {run.pk} has no checkpoint to resume from.")
    Run.objects.filter(pk=run.pk).update(status=S.QUEUED, queued_at=timezone.now(), control_requests="")
    _announce(run.pk, "status")
    _queue(run.pk)
    return True


def _external_resume(run: Run) -> bool:
    """Only its client can go on with an external run: a paused one is told to (the client's
    "resumed" makes it running); a pause not yet obeyed is withdrawn (its socket tells the client
    to go on if it had passed the pause on); an interrupted one waits for its process."""
    S = Run.Status
    pending = run.control_requests.split()
    if run.status == S.INTERRUPTED:
        raise ServiceError("conflict", f"Run {run.pk} is computed in its owner's Python process; it goes on "
                                       "when that process reconnects.")
    if "stop" in pending or "resume" in pending:
        return False
    if run.status == S.RUNNING:
        if "pause" in pending:
            Run.objects.filter(pk=run.pk).update(control_requests=" ".join(a for a in pending if a != "pause"))
            transaction.on_commit(lambda: dispatch.nudge(run.pk, external=True))
        return False
    return _record(run, "resume")  # paused


_CONTROLS = {"stop": _stop, "pause": _pause, "resume": _resume}


def stop_run(*, user, run_id: int) -> tuple[bool, dict]:
    return control_run(user=user, run_id=run_id, action="stop")


def pause_run(*, user, run_id: int) -> tuple[bool, dict]:
    return control_run(user=user, run_id=run_id, action="pause")


def resume_run(*, user, run_id: int) -> tuple[bool, dict]:
    """Resume a paused run, or continue an interrupted one from its checkpoint."""
    return control_run(user=user, run_id=run_id, action="resume")


def stop_run_and_wait(*, run_id: int, timeout: float = 30.0) -> bool:
    """Stop a run (callers have checked ownership) and wait until it has ended; True if it has."""
    run = Run.objects.select_related("owner").filter(pk=run_id).first()
    if run is None:
        return True
    try:
        control_run(user=run.owner, run_id=run_id, action="stop")
    except ServiceError:
        return True  # already ended, or gone
    return wait_for_run(run_id=run_id, timeout=timeout, until=Run.ENDED)


def wait_for_run(*, run_id: int, timeout: float | None = None, until=(Run.Status.PAUSED, *Run.ENDED)) -> bool:
    """Wait until the run is in one of the `until` states (by default: no worker holds it and
    none will until it is resumed); True if it is (or is gone)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
        if status is None or status in until:
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def sweep_orphans(*, stale_after: float | None = None) -> list[int]:
    """Interrupt (and by default resume) runs whose worker's lease expired; returns their ids.

    `stale_after`: instead, every running run whose worker has not been heard of for that long
    (0: every running run, for a server that is known to be down)."""
    return recovery.sweep(enqueue=dispatch.enqueue, stale_after=stale_after)


def relabel_run(*, run: Run, label: str) -> Run:
    """Set a run's label (only the label column is written: a worker's writes are untouched)."""
    run.label = label
    Run.objects.filter(pk=run.pk).update(label=label)
    return run


# How long a delete waits for an active run to stop (its worker may be waiting out a storage
# fault); then it deletes anyway, and the worker, finding its lease gone, writes nothing more.
DELETE_STOP_WAIT = 30.0


def stop_for_delete(run: Run, timeout: float = DELETE_STOP_WAIT) -> None:
    """Stop a run about to be deleted, if it is active, and wait until it has ended, so that its
    launch socket hears "finished" before its watchers hear "deleted". Never inside a transaction:
    on SQLite that holds the write lock, and the worker could not write the stop it waits for."""
    if not Run.objects.filter(pk=run.pk, status__in=Run.ACTIVE).exists():
        return
    if is_external(run):
        return  # its client stops it, if it ever answers: its socket is told of the delete at once
    if not stop_run_and_wait(run_id=run.pk, timeout=timeout):
        return
    # The worker's "finished" comes by its own way (the pool's socket, Redis) and the delete's
    # "deleted" could overtake it: say it from here too, first. A socket says "finished" once.
    ended = Run.objects.select_related("owner").defer("checkpoint").filter(pk=run.pk).first()
    if ended is not None:
        publish(group_of(run.pk), {"type": "run.finished", "run_id": run.pk, "run": run_to_dict(ended)})


def delete_run(*, run: Run) -> int:
    """Stop a run if it is active (stop_for_delete), then delete it and all its steps; returns the
    step count. Call it outside a transaction (the admin stops the run before its own).

    A worker that still drives it finds its lease gone at its next write and lets it go, writing
    nothing (runs/leases.py): no step can land after the delete. After the commit, the run's
    watchers are told ("run.deleted": a watch socket says "deleted" and closes).
    """
    if not transaction.get_connection().in_atomic_block:
        stop_for_delete(run)
    run_id = run.pk
    with transaction.atomic():
        n = Step.objects.filter(run_id=run_id).count()
        Run.objects.filter(pk=run_id).delete()  # steps go with it (on_delete=CASCADE)
        transaction.on_commit(lambda: publish(group_of(run_id), {"type": "run.deleted", "run_id": run_id}))
    if run.status == Run.Status.RUNNING or is_external(run):
        dispatch.nudge(run.pk, external=is_external(run))  # it notices at once instead of at its next write
    return n


def step_texts(*, run_id: int, after: int = -1, upto: int | None = None, limit: int | None = None,
               chunk: int = 2000, bulky: bool = False) -> Iterator[tuple[int, str]]:
    """(seq, JSON text) of the run's steps with after < seq <= upto, in order, read in chunks:
    light as stored, or complete with `bulky` (runs/stored_steps.py)."""
    return stored_steps.step_texts(run_id=run_id, after=after, upto=upto, limit=limit, chunk=chunk, bulky=bulky)


def step_text(*, run_id: int, seq: int | None = None) -> tuple[int, str] | None:
    """(seq, complete text) of one step (None: the newest), or None when there is no such step."""
    return stored_steps.step_text(run_id=run_id, seq=seq)


def steps_json(texts: list[str]) -> str:
    """A JSON array from stored step texts, without decoding them."""
    return "[" + ",".join(texts) + "]"
