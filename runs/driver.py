"""Driving one run: the only code on the server that steps a solver.

A worker process (a process of the local pool or a Celery worker, runs/worker.py) claims a run's
lease and calls `RunDriver.drive()` in one thread. The driver restores the stepper from the
run's checkpoint (or makes a fresh one), steps it and buffers the steps (each as its light JSON
text and its bulky arrays' blob); a flush writes the batch (runs/step_writer.py, which also
writes the steps of external runs) of steps + the run's counters + the checkpoint + the lease
renewal in ONE transaction, and only after the commit is the batch published (persist, then
publish: anything a client has seen is on disk). Controls reach it from other threads through
`request()`; it obeys them between steps.

`drive()` returns when the run has ended (finished, stopped, failed), paused (a paused run holds
no worker: its checkpoint is stored and resume queues it again), been interrupted (the worker is
shutting down, or the storage would not take its writes) or lost its lease (another worker may
drive it now: this one writes nothing more).

Storage faults (runs/storage_faults.py: the database locked past its busy timeout, a full disk, a
read-only or failing file) are not the run's: the batch is written again, the same transaction,
until it goes through or OPTSITE_STORAGE_RETRY_SECONDS have passed. Then the run is let go as
`interrupted`, with what was committed (its steps and the checkpoint that matches them), and
resumes from there exactly. If even that cannot be written, the run is left `running` under a lease
nobody renews: a server's monitor marks it interrupted once the database takes writes again
(runs/recovery.py). Only faults that are not the storage's make a run `failed`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from runs import leases, storage_faults
from runs.models import Run, RunTrace
from runs.optim import BulkEncoder
from runs.run_objects import load_run_dict
from runs.step_writer import Batch, encoded

log = logging.getLogger("runs.driver")

# Flush when this long has passed since the last flush (or would have by the next step) ...
FLUSH_INTERVAL = 0.05
# ... or when this many steps wait, whichever first, and always at a status change and the end.
FLUSH_STEPS = 256
# A flush may cost at most about 1/FLUSH_BUDGET of the run (a big checkpoint flushes less often).
FLUSH_BUDGET = 20

# What drive() returns; runs/worker.py adds RETRY: the storage would not let it take the run, which
# stays queued and is to be handed out again a moment later.
ENDED, PAUSED, INTERRUPTED, LOST, RETRY = "ended", "paused", "interrupted", "lost", "retry"


class _StopWaits(Exception):
    """A stop was recorded while this driver was about to pause: it stops instead."""


class StorageGaveUp(Exception):
    """A write kept failing for the storage's sake until its time was up (or the worker left)."""


def _load_trace(run: Run, spec):
    """The study run's trace as its last commit left it (it matches the checkpoint), or a new one."""
    from runs.optim.expressions import problem_of
    from runs.study_trace import Trace

    stored = RunTrace.objects.filter(run_id=run.pk).values_list("data", flat=True).first()
    if stored is not None and run.n_steps:
        return Trace.from_json(stored)
    known = problem_of(spec).known_minimum(spec.params, spec.dim)
    return Trace(None if known is None else known["f"])


class RunDriver:
    """Steps one claimed run and writes its steps; `publish(event)` sends an event after a commit."""

    def __init__(self, *, run_id: int, holder: str, publish: Callable[[dict], None]):
        self.run_id = run_id
        self.holder = holder
        self._publish = publish
        self.stepper = None
        self._lock = threading.Lock()
        self._woken = threading.Event()  # set by every control: a write waiting to be tried again looks at it
        self._commands: list[str] = []
        self._pending = False  # read once per step without a lock: a stale False costs one step
        self._stopping = False
        self._taken: set[str] = set()  # recorded controls already obeyed
        self._buffer: list = []  # (Step, light JSON text, bulk blob or None)
        # The run's bulky arrays as blobs (runs.optim.bulk): a fresh encoder per drive, so the
        # first step after a resume is a keyframe and never refers to steps of another process.
        self._bulk = None
        self._next_seq = 0
        self._best = None
        self._trace = None  # a study run's best-so-far (runs/study_trace.py), stored with each batch
        self._last_flush = 0.0
        self._flush_cost = 0.0

    # -- from any thread --
    def request(self, action: str) -> None:
        """"stop" | "pause" | "interrupt" (the worker goes away) | "lost" (the lease is gone)."""
        with self._lock:
            self._commands.append(action)
            self._pending = True
            if action == "stop":
                self._stopping = True
        self._woken.set()
        stepper = self.stepper
        if action == "stop" and stepper is not None:
            stepper.request_stop()  # thread-safe: ends a long step early, scipy's way

    def take_requests(self) -> list[str]:
        """Obey the controls recorded for this run that it has not obeyed yet; returns those.

        Any thread; runs/worker.py calls it when nudged and every CONTROL_POLL seconds. A control
        stays on record until the write that carries it out ("pause" until the paused run is
        written, "stop" until the end), so the run shows what it is about to do and a second
        ask is answered "already asked" (runs/services.py).
        """
        text = (Run.objects.filter(pk=self.run_id, lease_holder=self.holder)
                .values_list("control_requests", flat=True).first())
        if text is None:  # deleted, or its lease is someone else's now
            self.request("lost")
            return []
        taken = [a for a in ("stop", "pause") if a in text.split() and a not in self._taken]
        for action in taken:
            self._taken.add(action)
            self.request(action)
        return taken

    # -- the driving thread --
    def drive(self) -> str:
        try:
            return self._drive()
        except leases.LeaseLost:
            log.warning("run %s: lease lost; %s lets it go without writing", self.run_id, self.holder)
            return LOST
        except Run.DoesNotExist:  # deleted between its claim and its first read
            return LOST
        except StorageGaveUp as exc:
            return self._let_go(exc)
        except Exception as exc:
            if storage_faults.is_storage_fault(exc):  # a read, which is not tried again
                return self._let_go(exc)
            log.exception("run %s failed", self.run_id)  # the solver or a bug: the run fails, in words
            return self._fail(exc)

    def _drive(self) -> str:
        from runs.optim import UNLIMITED, decode_checkpoint, make_stepper, restore_stepper, validate_spec

        run = Run.objects.get(pk=self.run_id)
        # The stored spec is the normalised one, accepted under the limits of the web process that
        # launched it: validating it again gives the same Spec, whatever this process's limits are
        # (a site's raised caps, or caps lowered since).
        spec = validate_spec(run.spec, UNLIMITED)
        if run.checkpoint is not None:
            stepper = restore_stepper(spec, decode_checkpoint(bytes(run.checkpoint)))
        elif run.n_steps:
            raise RuntimeError("no checkpoint to resume from")
        else:
            stepper = make_stepper(spec)
        self._next_seq, self._best = run.n_steps, run.best_fun
        if run.study_id is not None:
            self._trace = _load_trace(run, spec)
        self.stepper = stepper
        self._bulk = BulkEncoder()
        if self._stopping:
            stepper.request_stop()
        self.take_requests()  # e.g. the stop that queued a paused run again
        self._publish_status()  # claimed: "running", on this worker
        self._last_flush = before = time.perf_counter()
        buffer = self._buffer
        while True:
            if self._pending:
                outcome = self._obey()
                if outcome is not None:
                    return outcome
            try:
                step = next(stepper)
            except StopIteration:
                break
            if step.seq != self._next_seq:
                raise RuntimeError(f"the solver handed out step {step.seq} where {self._next_seq} was due")
            self._next_seq += 1
            buffer.append(encoded(step, self._bulk))
            now = time.perf_counter()
            took, before = now - before, now
            # Flush if this step would otherwise wait longer than the interval for the next one:
            # slow steps go out one by one at once, fast ones in batches.
            interval = max(FLUSH_INTERVAL, FLUSH_BUDGET * self._flush_cost)
            if len(buffer) >= FLUSH_STEPS or now - self._last_flush + took >= interval:
                self._flush()
                before = time.perf_counter()
        return self._finish(stepper.result)

    def _obey(self) -> str | None:
        """Carry out pending controls at a step boundary; an outcome if the drive must end now."""
        with self._lock:
            commands, self._commands = self._commands, []
            self._pending = False
        for command in commands:
            if command == "lost":
                raise leases.LeaseLost(f"run {self.run_id}")
            if command == "interrupt":
                # The worker is going away: keep what was computed; the run resumes elsewhere.
                self._flush(status=Run.Status.INTERRUPTED, **leases.RELEASED)
                self._publish_run("finished")
                return INTERRUPTED
        if self._stopping:
            return None  # stop wins over pause: the stepper ends at the next step
        if "pause" in commands:
            try:
                self._flush(pausing=True, status=Run.Status.PAUSED, control_requests="", **leases.RELEASED)
            except _StopWaits:
                self.take_requests()
                return None
            self._publish_status()
            return PAUSED
        return None

    def _flush(self, *, pausing: bool = False, **fields) -> None:
        """One transaction: buffered steps, counters, checkpoint, lease (+ fields); then publish."""
        t0 = time.perf_counter()
        buffer = self._buffer[:]
        batch = Batch(self.run_id, buffer, self._best, self._trace)
        self._best = batch.best
        if buffer and "checkpoint" not in fields:
            from runs.optim import encode_checkpoint

            fields["checkpoint"] = encode_checkpoint(self.stepper.checkpoint())

        def write():
            with transaction.atomic():
                if pausing and "stop" in (Run.objects.select_for_update().filter(pk=self.run_id)
                                          .values_list("control_requests", flat=True).first() or ""):
                    raise _StopWaits  # recorded before this pause could commit: stop, do not pause
                batch.store(self.holder, **fields)
        retried = self._write(write)
        committed = time.time()
        del self._buffer[:len(buffer)]  # in place: the stepping loop holds this list
        batch.publish(self._publish, committed)
        end = time.perf_counter()
        self._last_flush = end
        if buffer and not retried:  # a running average: one slow disk moment does not throttle the run
            self._flush_cost = 0.8 * self._flush_cost + 0.2 * (end - t0)

    def _write(self, write: Callable[[], None]) -> bool:
        """Run `write` (one transaction), again while it fails for the storage's sake and the time
        allows; True if it had to be tried again. StorageGaveUp when the time is up or the worker
        is leaving; LeaseLost when the run was deleted or taken over meanwhile."""
        backoff = None
        while True:
            try:
                write()
            except Exception as exc:
                if not storage_faults.is_storage_fault(exc):
                    raise
                now = time.monotonic()
                if backoff is None:
                    backoff = storage_faults.Backoff(now)
                    log.warning("run %s: could not write: %s; trying again for up to %s s", self.run_id,
                                storage_faults.describe(exc), settings.OPTSITE_STORAGE_RETRY_SECONDS)
                wait = backoff.next_wait(now)
                with self._lock:
                    commands = set(self._commands)
                if "lost" in commands:
                    raise leases.LeaseLost(f"run {self.run_id}") from exc
                if wait is None or "interrupt" in commands:
                    raise StorageGaveUp(storage_faults.storage_reason(exc)) from exc
                # A fresh connection for the next try: the old one may be the broken part (a
                # dropped PostgreSQL connection, a file reopened read-only).
                connection.close()
                self._woken.wait(wait)
                self._woken.clear()
                continue
            if backoff is not None:
                log.warning("run %s: written after all; it goes on", self.run_id)
            return backoff is not None

    def _let_go(self, exc: Exception) -> str:
        """The storage will not take this run's writes: it is interrupted with what was committed
        (steps, counters and the checkpoint that matches them), to resume from there exactly."""
        reason = exc.args[0] if isinstance(exc, StorageGaveUp) else storage_faults.storage_reason(exc)
        log.warning("run %s: %s; let go as interrupted, to resume from its last stored checkpoint",
                    self.run_id, reason)
        self._buffer.clear()  # not stored: computed again from the checkpoint when it resumes
        try:
            connection.close()
            with transaction.atomic():
                leases.let_go_interrupted(self.run_id, self.holder)
            self._publish_run("finished")
        except leases.LeaseLost:
            return LOST
        except Exception as again:
            if not storage_faults.is_storage_fault(again):
                log.exception("run %s: could not record the interruption", self.run_id)
            else:
                log.warning("run %s: could not record the interruption either: %s; its lease runs out "
                            "and a server's monitor marks it interrupted once the database takes writes",
                            self.run_id, storage_faults.describe(again))
        return INTERRUPTED

    def _publish_status(self) -> None:
        self._publish_run("status")

    def _publish_run(self, *kinds: str) -> None:
        """Publish the run as just committed, as these events; nothing if it was deleted since
        (the delete told its watchers)."""
        try:
            run = load_run_dict(self.run_id)
        except Run.DoesNotExist:
            return
        for kind in kinds:
            self._publish({"type": f"run.{kind}", "run_id": self.run_id, "run": run})

    def _finish(self, result) -> str:
        data = result.to_dict()  # JSON-ready: non-finite numbers are already None
        # a stopping rule of the spec ends the run as the solver's own limits would: finished
        status = Run.Status.STOPPED if result.stopped and not result.rule else Run.Status.FINISHED
        self._flush(status=status, finished=timezone.now(), result=data, checkpoint=None, control_requests="",
                    **leases.RELEASED)
        self._publish_run(*(["status"] if status == Run.Status.STOPPED else []), "finished")
        return ENDED

    def _fail(self, exc: Exception) -> str:
        words = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        final = dict(status=Run.Status.FAILED, finished=timezone.now(), error=words, checkpoint=None,
                     control_requests="", **leases.RELEASED)
        try:
            close_old_connections()
            try:
                self._flush(**final)  # the steps handed out before the failure are good ones
            except leases.LeaseLost:
                return LOST
            except Exception:
                self._buffer.clear()  # the failure may be in the steps themselves
                with transaction.atomic():
                    leases.write(self.run_id, self.holder, **final)
            self._publish_run("finished")
        except leases.LeaseLost:
            return LOST
        except Exception:
            log.exception("run %s: could not record the failure", self.run_id)
        return ENDED
