"""External runs: computed in their owner's Python process, stored and published here.

The Python client (client/optsite_client: Client.minimize, Client.differential_evolution) steps
the run with optsite's own steppers and streams the steps over /ws/runs/external/
(runs/external_socket.py, a thin consumer of this module). Once stored it is a run like any other.

The socket that holds a run holds its lease (runs/leases.py), as a worker holds a hosted run's:
its every write goes through the lease, so a socket that lost the run (another socket attached it,
or it was deleted) writes nothing more. A batch of steps is written as the driver writes one
(runs/step_writer.py: steps + counters + lease in one transaction, published after the commit),
each step checked first (runs.optim.external.step_from_wire) and encoded again here: the light text
as the driver makes it, the bulky arrays with a fresh runs.optim.BulkEncoder per holding socket (its
first step is a keyframe, referring to nothing another socket wrote).

Statuses: open -> running; the client's "paused"/"resumed" -> paused/running; its "end" -> its
final status. A socket that closes without "end" leaves the run interrupted at once; one whose
server died leaves it under a lease that runs out, and the monitor interrupts it. The server never
queues or resumes an external run (runs/run_objects.resumable): it goes on when a client attaches.
Controls pressed on the page are recorded as for any run (runs/services.py) and told to the
holding socket at once (runs.dispatch.nudge: the group "external-<id>"); it also looks every
leases.RENEW_EVERY seconds, when it renews the lease.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from runs import leases, services
from runs.models import Run
from runs.optim import BulkEncoder
from runs.optim.echo import clip, shown
from runs.optim.external import WireError, is_external, result_from_wire, step_from_wire
from runs.publishing import Publisher, group_of
from runs.run_objects import load_run_dict, run_to_dict
from runs.step_writer import Batch, encoded

ServiceError = services.ServiceError

# How a client may end its run.
END_STATUSES = (Run.Status.FINISHED, Run.Status.STOPPED, Run.Status.FAILED)
# The words of a failed run's error as stored (a traceback's last lines fit).
ERROR_LENGTH = 2000
CONTROLS = ("stop", "pause", "resume")


def max_steps() -> int:
    """The most steps an external run may store: what a hosted run of the longest allowed maxiter
    makes (a step per iteration, the start, a polish), twice over for the methods that count
    iterations otherwise. The client is not trusted to stop by itself: disk stays bounded."""
    return 2 * settings.OPTSITE_MAX_MAXITER + 2


def holder_name() -> str:
    """A lease holder name for one socket, unique among all sockets of all server processes."""
    return f"socket@{socket.gethostname()[:60]}:{os.getpid()}/{uuid.uuid4().hex[:16]}"


class Lost(ServiceError):
    """The socket no longer holds its run (deleted, or attached by another socket). `reconnect`:
    nobody does (its lease ran out unrenewed, and it was marked interrupted): the client is to
    reconnect and attach it again, as after any lost connection."""

    reconnect = False


class Holding:
    """What one socket holds: one external run, its lease, and where its steps stand."""

    def __init__(self, run: Run, spec, holder: str, loop: asyncio.AbstractEventLoop | None):
        self.run_id, self.spec, self.holder = run.pk, spec, holder
        self.next_seq, self.best = run.n_steps, run.best_fun
        self.bulk = BulkEncoder()
        self.publisher = Publisher(loop)
        self.told: set[str] = set()  # recorded controls passed on to the client
        self.paused = run.status == Run.Status.PAUSED

    def publish(self, event: dict) -> None:
        self.publisher.send(group_of(self.run_id), event)

    def publish_run(self, *kinds: str) -> dict:
        run = load_run_dict(self.run_id)
        for kind in kinds:
            self.publish({"type": f"run.{kind}", "run_id": self.run_id, "run": run})
        self.publisher.drain()  # the client's answer comes after its watchers have it
        return run


def _spec_of(run: Run):
    from runs.optim import UNLIMITED, validate_spec

    # Stored normalised and accepted under the limits of its open: the same Spec again.
    return validate_spec(run.spec, UNLIMITED)


def _lease_fields(now) -> dict:
    return dict(lease_expires=now + timedelta(seconds=leases.LEASE_SECONDS), heartbeat=now)


def open_run(*, owner, data, label: str, holder: str, loop=None) -> tuple[Holding, dict]:
    """A new external run of `owner`, running and held by `holder`; ServiceError if its spec is
    not an external run's, or the owner is at the cap of active runs."""
    label = services.check_label(label)
    now = timezone.now()
    run = services.create_run(owner=owner, data=data, label=label, external=True, queued_at=None,
                              status=Run.Status.RUNNING, started=now, lease_holder=holder, **_lease_fields(now))
    return Holding(run, _spec_of(run), holder, loop), load_run_dict(run.pk)  # nobody watches it yet


def attach_run(*, owner, run_id, holder: str, loop=None) -> tuple[Holding, dict, list[str]]:
    """The owner's external run, not ended, held by `holder` from now on (a socket that held it
    before loses it); running again if it was interrupted. Returns the holding, the Run and the
    controls on record, to be told to the client."""
    run = services.get_run_for(owner, run_id)
    if run is None:
        raise ServiceError("not_found", f"There is no run {shown(run_id)} of yours.")
    if not is_external(run):
        raise ServiceError("conflict", f"Run {run.pk} is not an external run: the server computes it, and no "
                                       "client can attach to it.")
    S = Run.Status
    with transaction.atomic():
        row = Run.objects.select_for_update().filter(pk=run.pk).first()
        if row is None:
            raise ServiceError("not_found", f"There is no run {shown(run_id)} of yours.")
        if row.status in END_STATUSES:
            error = ServiceError("conflict", f"Run {row.pk} has ended ({row.status}); there is nothing more to send.")
            error.run = run_to_dict(Run.objects.select_related("owner").defer("checkpoint").get(pk=row.pk))
            raise error
        now = timezone.now()
        fields = dict(lease_holder=holder, **_lease_fields(now))
        if row.status == S.INTERRUPTED:
            services.lock_owner(row.owner)
            services._check_capacity(row.owner)  # going on again counts against the cap, as a resume does
            fields["status"] = S.RUNNING
        Run.objects.filter(pk=row.pk).update(**fields)
        row.status = fields.get("status", row.status)
    holding = Holding(row, _spec_of(row), holder, loop)
    payload = holding.publish_run("status") if "status" in fields else load_run_dict(row.pk)
    controls = [a for a in row.control_requests.split() if a in CONTROLS]
    holding.told.update(controls)
    return holding, payload, controls


def _lost(holding: Holding) -> Lost:
    row = Run.objects.filter(pk=holding.run_id).values_list("status", "lease_holder").first()
    if row is None:
        return Lost("not_found", f"Run {holding.run_id} was deleted; nothing more of it is stored.")
    if row == (Run.Status.INTERRUPTED, ""):
        lost = Lost("conflict", f"Run {holding.run_id} was marked interrupted: its lease ran out before this "
                                "connection renewed it. Attach it again to go on.")
        lost.reconnect = True
        return lost
    return Lost("conflict", f"Run {holding.run_id} is held by another connection now (it was attached there); "
                            "this one sends nothing more of it.")


def _held_write(holding: Holding, write) -> None:
    """One transaction as the run's holder; Lost (in words) if it no longer holds it."""
    try:
        with transaction.atomic():
            write()
    except leases.LeaseLost:
        raise _lost(holding) from None


def _seq_of(data, index: int) -> int:
    seq = data.get("seq") if isinstance(data, dict) else None
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2 ** 63:
        raise ServiceError("bad_message", f"Step {index} of the message needs a \"seq\", a whole number >= 0, "
                                          f"not {shown(seq)}.",
                           {f"steps[{index}].seq": ["Expected a whole number >= 0."]})
    return seq


def write_steps(holding: Holding, steps) -> int:
    """Store a batch of wire steps in seq order (those before next_seq are a resend: skipped);
    returns next_seq. Every step is checked before anything is written: a refusal stores nothing."""
    if not isinstance(steps, list):
        raise ServiceError("bad_message", f'"steps" must be a list of steps, not {shown(steps)}.',
                           {"steps": ["Expected a list."]})
    expected, new = holding.next_seq, []
    for index, data in enumerate(steps):
        seq = _seq_of(data, index)
        if seq < holding.next_seq and not new:
            continue  # sent before, and acked or stored before a reconnect
        if seq != expected:
            raise ServiceError("bad_message", f"Step {seq} was sent where {expected} was due; nothing of this "
                                              "message was stored.", {"steps": [f"Step {expected} is due next."]})
        if seq >= max_steps():
            raise ServiceError("limit", f"Run {holding.run_id} has {seq:,} steps, as many as an external run may "
                                        f"store here (the limit is {max_steps():,}); end it.",
                               {"steps": [f"At most {max_steps():,} steps."]})
        try:
            new.append(step_from_wire(data, holding.spec, seq))
        except WireError as exc:
            raise ServiceError("bad_message", f"Step {seq} is not acceptable: {exc.message} Nothing of this "
                                              "message was stored.", exc.errors) from None
        expected += 1
    if not new:
        renew(holding)  # a resend only: the lease goes on
        return holding.next_seq
    bulk = holding.bulk
    batch = Batch(holding.run_id, [encoded(step, bulk) for step in new], holding.best)
    try:
        _held_write(holding, lambda: batch.store(holding.holder))
    except BaseException:
        # The encoder's state has these steps, the database not: the next step must be a keyframe.
        holding.bulk = BulkEncoder()
        raise
    committed = time.time()
    holding.next_seq, holding.best = expected, batch.best
    batch.publish(holding.publish, committed)
    holding.publisher.drain()
    return expected


def _without(requests: str, *actions: str) -> str:
    return " ".join(a for a in requests.split() if a not in actions)


def set_paused(holding: Holding) -> dict:
    """The client obeyed a pause (it waits between steps): paused, the pause taken off the record."""
    return _set_status(holding, Run.Status.PAUSED, "pause")


def set_resumed(holding: Holding) -> dict:
    """The client goes on: running, the pause and the resume taken off the record."""
    return _set_status(holding, Run.Status.RUNNING, "pause", "resume")


def _set_status(holding: Holding, status: str, *taken: str) -> dict:
    def write():
        requests = (Run.objects.select_for_update().filter(pk=holding.run_id)
                    .values_list("control_requests", flat=True).first())
        leases.write(holding.run_id, holding.holder, status=status, control_requests=_without(requests or "", *taken))
    _held_write(holding, write)
    holding.told.difference_update(taken)
    holding.paused = status == Run.Status.PAUSED
    return holding.publish_run("status")


def end_run(holding: Holding, *, status, result, error) -> dict:
    """The client's end: final status, result (checked), error words, finished now; the lease
    released. Returns the Run."""
    if status not in END_STATUSES:
        raise ServiceError("bad_message", f'"status" must be one of {", ".join(END_STATUSES)}, not {shown(status)}.',
                           {"status": [f"One of: {', '.join(END_STATUSES)}."]})
    if result is None and status == Run.Status.FINISHED:
        raise ServiceError("bad_message", "A finished run needs its \"result\".",
                           {"result": ["This field is required."]})
    data = None
    if result is not None:
        try:
            data = result_from_wire(result, holding.spec).to_dict()
        except WireError as exc:
            raise ServiceError("bad_message", f"The result is not acceptable: {exc.message}", exc.errors) from None
    if error is None:
        error = ""
    if not isinstance(error, str):
        raise ServiceError("bad_message", f'"error" must be text, not {shown(error)}.', {"error": ["Expected text."]})
    if status == Run.Status.FAILED and not error.strip():
        error = "The run failed in its owner's Python process."
    fields = dict(status=status, finished=timezone.now(), result=data, error=clip(error, ERROR_LENGTH),
                  control_requests="", checkpoint=None, **leases.RELEASED)
    try:
        _held_write(holding, lambda: leases.write(holding.run_id, holding.holder, **fields))
    except Lost:
        # ended already (this end again, after a storage fault hid its answer): said as it stands
        if not Run.objects.filter(pk=holding.run_id, status__in=END_STATUSES, lease_holder="").exists():
            raise
        return load_run_dict(holding.run_id)
    holding.told.clear()
    return holding.publish_run(*(["status"] if status == Run.Status.STOPPED else []), "finished")


def renew(holding: Holding) -> None:
    """Renew the holder's lease (paused too); Lost if it no longer holds it."""
    _held_write(holding, lambda: leases.write(holding.run_id, holding.holder))


def controls_to_tell(holding: Holding) -> list[str]:
    """The controls on record that the client has not been told yet, as messages' actions; a
    pause withdrawn before the client obeyed it becomes "resume". Lost if the run is not held."""
    row = (Run.objects.filter(pk=holding.run_id, lease_holder=holding.holder)
           .values_list("control_requests", "status").first())
    if row is None:
        raise _lost(holding)
    words, status = row[0].split(), row[1]
    tell = [a for a in CONTROLS if a in words and a not in holding.told]
    if "pause" in holding.told and "pause" not in words and status == Run.Status.RUNNING:
        tell.append("resume")  # it was told to pause, and the pause was taken back
    holding.told = {a for a in (*holding.told, *tell) if a in words}
    return tell


def look(holding: Holding) -> list[str]:
    """The socket's regular look (every RENEW_EVERY s): the lease renewed, new controls."""
    renew(holding)
    return controls_to_tell(holding)


def interrupt_on_close(holding: Holding) -> None:
    """The socket closed without "end": the run is interrupted at once, its lease released (the
    client goes on from its next step when it attaches again). Nothing if it is not held."""
    try:
        with transaction.atomic():
            leases.let_go_interrupted(holding.run_id, holding.holder)
    except leases.LeaseLost:
        return
    holding.publish_run("finished")
