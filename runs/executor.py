"""The engine under runs/services.py: executor threads, the batch writer, publishing, the monitor.

One Execution = one thread driving one stepper. It buffers steps, and a flush writes the batch
of steps + the run's counters + the checkpoint + the heartbeat in ONE transaction; only after
the commit is the batch published to the group "run-<id>" (persist, then publish: anything a
client has seen is on disk). The solver never runs on the event loop.

Several server processes may share one database (and a Redis channel layer): a control for a
run that another process drives is recorded in Run.control_requests by runs/services.py, and
the driving process's control watcher (one thread per process, polling every CONTROL_POLL s
while the process drives runs) hands it to the run's Execution exactly like a local control.

Nothing outside runs/services.py should call into this module except the consumers' loop
registration (`remember_loop`) and tests (`wait`, `shutdown_all`, `Execution.abandon`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections import deque
from concurrent.futures import TimeoutError as FutureTimeout

from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from runs.models import Run, Step
from runs.optim import finite_number, jsonable

log = logging.getLogger("runs.executor")

# Flush when this long has passed since the last flush (or would have by the next step) ...
FLUSH_INTERVAL = 0.05
# ... or when this many steps wait, whichever first, and always at a status change and the end.
FLUSH_STEPS = 256
# A flush may cost at most about 1/FLUSH_BUDGET of the run (a big checkpoint flushes less often).
FLUSH_BUDGET = 20
# Daphne closes a socket on a message over 1 MiB: keep each published batch well under it.
MAX_BATCH_CHARS = 512 * 1024
# Heartbeats: written with each flush, while paused, and by the monitor for local runs.
HEARTBEAT_EVERY = 2.0
# A run whose heartbeat is older than this and that no thread here drives is an orphan.
STALE_AFTER = 6.0
MONITOR_EVERY = 1.0
# Controls asked for by another server process wait in Run.control_requests; the process that
# drives the run looks for them this often (one query for all its runs; none while it has none).
CONTROL_POLL = 0.2
# How long a publishing thread waits for the event loop when it must (too many messages in
# flight, end of run) before giving up on one (clients fill gaps from the database).
PUBLISH_TIMEOUT = 10.0

ENDED = (Run.Status.FINISHED, Run.Status.STOPPED, Run.Status.FAILED, Run.Status.INTERRUPTED)


# ---- JSON -------------------------------------------------------------------------------
_encode = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode
try:  # Encoding is the hot path (a DE step may carry its whole population): orjson is ~30x faster.
    import orjson
except ImportError:  # pragma: no cover - requirements.txt pins it; the stdlib path is the same JSON
    orjson = None


def _dumps_std(value) -> str:
    try:
        return _encode(value)
    except (ValueError, TypeError):  # rare (nan/inf, numpy): only then walk the value
        return _encode(jsonable(value))


def dumps(value) -> str:
    """Compact JSON text with nan/inf as null (orjson writes them as null by itself)."""
    if orjson is not None:
        try:
            return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        except TypeError:  # a type orjson refuses (e.g. a huge int): the stdlib handles it
            pass
    return _dumps_std(value)


def _iso(dt):
    return None if dt is None else dt.isoformat()


def run_to_dict(run: Run) -> dict:
    """The PROTOCOL Run object (plus label and the latest figures)."""
    spec = run.spec or {}
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
    }


def load_run_dict(run_id: int) -> dict:
    return run_to_dict(Run.objects.select_related("owner").defer("checkpoint").get(pk=run_id))


# ---- publishing -------------------------------------------------------------------------
_server_loop: asyncio.AbstractEventLoop | None = None


def remember_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Consumers call this: the in-memory channel layer lives on the server's event loop."""
    global _server_loop
    _server_loop = loop


def _live(loop):
    return loop is not None and loop.is_running() and not loop.is_closed()


class Publisher:
    """Publishes one thread's events in order, without making the thread wait for the event loop.

    The in-memory channel layer lives on the server's event loop, so events are handed to that
    loop (run_coroutine_threadsafe); each one waits there for the one before it, so order holds
    for any layer, while the solver thread goes on computing. A bounded number stay in flight.
    """

    MAX_IN_FLIGHT = 64

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None):
        self.loop = loop
        self._in_flight: deque = deque()

    def send(self, group: str, event: dict) -> None:
        from channels.layers import InMemoryChannelLayer, get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return
        target = self.loop if _live(self.loop) else _server_loop if _live(_server_loop) else None
        if target is not None:
            previous = self._in_flight[-1] if self._in_flight else None
            try:
                future = asyncio.run_coroutine_threadsafe(_after(previous, layer.group_send(group, event)), target)
            except RuntimeError:  # the loop closed meanwhile (shutdown, test teardown): data is on disk
                return
            self._in_flight.append(future)
            while self._in_flight and self._in_flight[0].done():
                self._in_flight.popleft()
            if len(self._in_flight) > self.MAX_IN_FLIGHT:
                _wait(self._in_flight.popleft(), group)
            return
        if isinstance(layer, InMemoryChannelLayer):
            return  # no server loop in this process: nobody can be listening
        # A cross-process layer (Redis) from a process without a server loop (management command):
        # one private loop per thread keeps the layer's connection pool alive between messages.
        local = _thread_loops.__dict__
        if "loop" not in local:
            local["loop"] = asyncio.new_event_loop()
        try:
            local["loop"].run_until_complete(layer.group_send(group, event))
        except Exception:
            log.warning("publishing to %s failed", group, exc_info=True)

    def drain(self) -> None:
        """Wait until everything sent so far has reached the channel layer."""
        if self._in_flight:
            _wait(self._in_flight[-1], "the run's group")
        self._in_flight.clear()


async def _after(previous, coroutine):
    if previous is not None:
        try:
            await asyncio.wrap_future(previous)
        except BaseException:  # noqa: BLE001 - its failure was logged; this one still goes out
            pass
    await coroutine


def _wait(future, group) -> None:
    try:
        future.result(PUBLISH_TIMEOUT)
    except FutureTimeout:
        future.cancel()
        log.warning("publishing to %s timed out; clients will read the steps from the database", group)
    except Exception:  # a closed loop (test teardown, shutdown): the data is on disk anyway
        log.debug("publishing to %s failed", group, exc_info=True)


def publish(group: str, event: dict, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Publish one event from a thread and wait until it has reached the channel layer."""
    publisher = Publisher(loop)
    publisher.send(group, event)
    publisher.drain()


_thread_loops = threading.local()


def _close_thread_loop():
    loop = _thread_loops.__dict__.pop("loop", None)
    if loop is not None:
        loop.close()


def step_events(run_id: int, first: int, texts: list[str]):
    """Split a batch of encoded steps into "run.steps" events of at most MAX_BATCH_CHARS."""
    chunk, size, start = [], 0, first
    for text in texts:
        if chunk and size + len(text) > MAX_BATCH_CHARS:
            yield {"type": "run.steps", "run_id": run_id, "first": start, "steps": chunk}
            start += len(chunk)
            chunk, size = [], 0
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        yield {"type": "run.steps", "run_id": run_id, "first": start, "steps": chunk}


# ---- the registry of executions in this process -----------------------------------------
_executions: dict[int, "Execution"] = {}
_registry_lock = threading.Lock()


def get(run_id: int) -> "Execution | None":
    with _registry_lock:
        return _executions.get(run_id)


def local_run_ids() -> list[int]:
    with _registry_lock:
        return list(_executions)


def wait(run_id: int, timeout: float | None = None) -> bool:
    """Wait for the run's thread to end; True if it has (or there was none)."""
    execution = get(run_id)
    return execution is None or execution.join(timeout)


def shutdown_all(timeout: float = 30.0) -> list[int]:
    """Stop every run of this process and wait for the threads (tests, orderly shutdown)."""
    with _registry_lock:
        executions = list(_executions.values())
    for execution in executions:
        execution.request_stop()
    deadline = time.monotonic() + timeout
    stuck = [e.run_id for e in executions if not e.join(max(0.0, deadline - time.monotonic()))]
    return stuck


# ---- one execution ----------------------------------------------------------------------
class Execution:
    """The thread that drives one run's stepper and writes its steps."""

    def __init__(self, *, run_id: int, spec, checkpoint: bytes | None, n_steps: int,
                 best_fun: float | None, loop: asyncio.AbstractEventLoop | None, announce: bool):
        self.run_id = run_id
        self.group = f"run-{run_id}"
        self.spec = spec
        self.loop = loop
        self._checkpoint = checkpoint
        self._next_seq = n_steps
        self._best = best_fun
        self._announce = announce  # publish "status running" first (a resumed interrupted run)
        self.stepper = None
        self._cond = threading.Condition()
        self._commands: list[str] = []
        self._pending = False  # read once per step without a lock: a stale False costs one step
        self._intended = "running"  # what the controls asked for, to answer them at once
        self._stop = False
        self._abandoned = False
        self.paused = False
        self._buffer: list = []  # (Step, text)
        self._last_flush = 0.0
        self._flush_cost = 0.0
        self._last_heartbeat = 0.0
        self.flushes = 0  # transactions that wrote steps (tests check that fast runs batch)
        self._done = threading.Event()
        self._publisher = Publisher(loop)
        self.thread = threading.Thread(target=self._main, name=f"optsite-run-{run_id}", daemon=True)

    # -- controls, from any thread --
    def start(self) -> None:
        with _registry_lock:
            if self.run_id in _executions:
                raise RuntimeError(f"run {self.run_id} already has an executor")
            _executions[self.run_id] = self
        self.thread.start()
        _ensure_control_watcher()

    def join(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _command(self, command: str) -> None:
        with self._cond:
            self._commands.append(command)
            self._pending = True
            self._cond.notify_all()

    def _transition(self, expected: str, intended: str, command: str) -> bool:
        with self._cond:
            if self._intended != expected:
                return False
            self._intended = intended
        self._command(command)
        return True

    def request_pause(self) -> bool:
        return self._transition("running", "paused", "pause")

    def request_resume(self) -> bool:
        return self._transition("paused", "running", "resume")

    def request_stop(self) -> bool:
        with self._cond:
            if self._intended == "stopping":
                return False
            self._intended = "stopping"
            self._stop = True
        stepper = self.stepper
        if stepper is not None:
            stepper.request_stop()  # thread-safe: ends a long step early, scipy's way
        self._command("stop")
        return True

    def apply_request(self, action: str) -> bool:
        """A control another process recorded for this run: carried out as a local one.

        If it changes nothing here (a local control got in first), the current status is
        published, in order with the steps, so the socket that asked still hears an answer.
        """
        requests = {"stop": self.request_stop, "pause": self.request_pause, "resume": self.request_resume}
        if action not in requests:
            log.warning("run %s: ignoring unknown control request %r", self.run_id, action)
            return False
        accepted = requests[action]()
        if not accepted:
            self._command("status")
        return accepted

    def abandon(self) -> None:
        """Tests: end the thread at the next step boundary writing nothing more, as a crash would."""
        self._abandoned = True
        self._command("abandon")

    @property
    def intended(self) -> str:
        return self._intended

    # -- the thread --
    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:  # the solver or the database failed: the run fails, in words
            log.exception("run %s failed", self.run_id)
            self._fail(exc)
        finally:
            self._publisher.drain()  # "finished" has gone out when the thread is over
            with _registry_lock:
                _executions.pop(self.run_id, None)
            _close_thread_loop()
            connection.close()  # SQLite: a thread that keeps its connection keeps its locks
            self._done.set()

    def _run(self) -> None:
        from runs.optim import decode_checkpoint, make_stepper, restore_stepper

        if self._checkpoint is not None:
            stepper = restore_stepper(self.spec, decode_checkpoint(self._checkpoint))
        else:
            stepper = make_stepper(self.spec)
        self._checkpoint = None
        self.stepper = stepper
        if self._stop:
            stepper.request_stop()
        if self._announce:
            self._publish({"type": "run.status", "run_id": self.run_id, "run": load_run_dict(self.run_id)})
        self._last_flush = self._last_heartbeat = time.perf_counter()
        before = self._last_flush
        buffer = self._buffer
        while True:
            if self._pending:
                self._obey()
                if self._abandoned:
                    return
            try:
                step = next(stepper)
            except StopIteration:
                break
            if step.seq != self._next_seq:
                raise RuntimeError(f"the solver handed out step {step.seq} where {self._next_seq} was due")
            self._next_seq += 1
            buffer.append((step, dumps(step.to_dict())))
            now = time.perf_counter()
            took, before = now - before, now
            # Flush if this step would otherwise wait longer than the interval for the next one:
            # slow steps go out one by one at once, fast ones in batches.
            interval = max(FLUSH_INTERVAL, FLUSH_BUDGET * self._flush_cost)
            if len(buffer) >= FLUSH_STEPS or now - self._last_flush + took >= interval:
                self._flush()
                before = time.perf_counter()
        if self._abandoned:
            return
        self._finish(stepper.result)

    def _obey(self) -> None:
        """Carry out pending controls at a step boundary; while paused, wait here."""
        while True:
            with self._cond:
                if self.paused and not self._commands and not self._stop and not self._abandoned:
                    self._cond.wait(HEARTBEAT_EVERY)
                commands, self._commands = self._commands, []
                self._pending = False
            for command in commands:
                if command == "pause" and not self.paused and not self._stop:
                    self._flush(status=Run.Status.PAUSED)
                    self.paused = True
                    self._publish_status()
                elif command == "resume" and self.paused and not self._stop:
                    self._flush(status=Run.Status.RUNNING)
                    self.paused = False
                    self._publish_status()
                elif command == "stop":
                    self.paused = False  # finish now; the final status says "stopped"
                elif command == "status" and not self._stop:
                    self._flush()  # the steps before it go out first
                    self._publish_status()
            if self._abandoned or self._stop or not self.paused:
                return
            if time.perf_counter() - self._last_heartbeat >= HEARTBEAT_EVERY:
                self._flush()  # nothing buffered while paused: a heartbeat only

    def _flush(self, **fields) -> None:
        """One transaction: buffered steps, counters, checkpoint, heartbeat (+ fields); then publish."""
        t0 = time.perf_counter()
        buffer = self._buffer[:]
        self._buffer.clear()  # in place: the stepping loop holds this list
        now = timezone.now()
        fields["heartbeat"] = now
        if buffer:
            last = buffer[-1][0]
            best = self._best
            for step, _ in buffer:
                fun = step.fun
                if fun is not None and math.isfinite(fun) and (best is None or fun < best):
                    best = fun
            self._best = best
            fields.update(n_steps=last.seq + 1, nit=last.nit, nfev=last.nfev, elapsed=last.elapsed, best_fun=best)
            if "checkpoint" not in fields:
                from runs.optim import encode_checkpoint

                fields["checkpoint"] = encode_checkpoint(self.stepper.checkpoint())
            rows = [
                Step(run_id=self.run_id, seq=s.seq, nit=s.nit, phase=s.phase, fun=finite_number(s.fun),
                     nfev=s.nfev, njev=s.njev, elapsed=s.elapsed, data=text)
                for s, text in buffer
            ]
        with transaction.atomic():
            if buffer:
                Step.objects.bulk_create(rows)
            Run.objects.filter(pk=self.run_id).update(**fields)
        self._last_heartbeat = time.perf_counter()
        if buffer:
            self.flushes += 1
            for event in step_events(self.run_id, buffer[0][0].seq, [text for _, text in buffer]):
                self._publish(event)
        end = time.perf_counter()
        self._last_flush = end
        if buffer:  # a running average: one slow disk moment does not throttle the run
            self._flush_cost = 0.8 * self._flush_cost + 0.2 * (end - t0)

    def _publish(self, event: dict) -> None:
        self._publisher.loop = self.loop  # a control from another socket may bring a newer loop
        self._publisher.send(self.group, event)

    def _publish_status(self) -> None:
        self._publish({"type": "run.status", "run_id": self.run_id, "run": load_run_dict(self.run_id)})

    def _finish(self, result) -> None:
        data = result.to_dict()  # JSON-ready: non-finite numbers are already None
        status = Run.Status.STOPPED if result.stopped else Run.Status.FINISHED
        self._flush(status=status, finished=timezone.now(), result=data, checkpoint=None, control_requests="")
        run = load_run_dict(self.run_id)
        if status == Run.Status.STOPPED:
            self._publish({"type": "run.status", "run_id": self.run_id, "run": run})
        self._publish({"type": "run.finished", "run_id": self.run_id, "run": run})

    def _fail(self, exc: Exception) -> None:
        words = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        final = dict(status=Run.Status.FAILED, finished=timezone.now(), error=words, checkpoint=None,
                     control_requests="")
        try:
            close_old_connections()
            try:
                self._flush(**final)  # the steps handed out before the failure are good ones
            except Exception:
                self._buffer.clear()
                with transaction.atomic():
                    Run.objects.filter(pk=self.run_id).update(**final, heartbeat=timezone.now())
            self._publish({"type": "run.finished", "run_id": self.run_id, "run": load_run_dict(self.run_id)})
        except Exception:
            log.exception("run %s: could not record the failure", self.run_id)


# ---- orphans and the monitor ------------------------------------------------------------
def sweep_orphans(*, stale_after: float = STALE_AFTER) -> list[int]:
    """Mark `interrupted` every active run that no thread here drives and whose heartbeat is stale."""
    from django.db.models import Q

    cutoff = timezone.now() - timezone.timedelta(seconds=stale_after)
    orphans = (
        Run.objects.filter(status__in=Run.ACTIVE)
        .exclude(pk__in=local_run_ids())
        .filter(Q(heartbeat__lt=cutoff) | Q(heartbeat__isnull=True, created__lt=cutoff))
    )
    ids = list(orphans.values_list("pk", flat=True))
    if not ids:
        return []
    with transaction.atomic():
        # Re-check inside the transaction: a run resumed meanwhile has a fresh heartbeat.
        marked = list(orphans.filter(pk__in=ids).values_list("pk", flat=True))
        # Controls asked of the dead process die with it: resuming starts from a clean slate.
        Run.objects.filter(pk__in=marked).update(status=Run.Status.INTERRUPTED, control_requests="")
    for run_id in marked:
        log.warning("run %s was left without an executor: marked interrupted", run_id)
        publish(f"run-{run_id}", {"type": "run.finished", "run_id": run_id, "run": load_run_dict(run_id)})
    return marked


def heartbeat_local() -> None:
    ids = local_run_ids()
    if ids:
        Run.objects.filter(pk__in=ids, status__in=Run.ACTIVE).update(heartbeat=timezone.now())


_monitor: threading.Thread | None = None

# ---- controls from other processes ------------------------------------------------------
_control_watcher: threading.Thread | None = None
_watcher_lock = threading.Lock()


def _ensure_control_watcher() -> None:
    """Start this process's control watcher unless it runs (Execution.start calls this)."""
    global _control_watcher
    with _watcher_lock:
        if _control_watcher is None:
            _control_watcher = threading.Thread(target=_control_loop, name="optsite-run-controls", daemon=True)
            _control_watcher.start()


def _control_loop() -> None:
    """While this process drives runs, hand them the controls other processes recorded."""
    global _control_watcher
    try:
        while True:
            time.sleep(CONTROL_POLL)
            with _watcher_lock:  # exit only with no run here: Execution.start then starts a new one
                ids = local_run_ids()
                if not ids:
                    _control_watcher = None
                    return
            try:
                take_control_requests(ids)
            except Exception:  # the database is away for a moment: the next tick tries again
                log.warning("looking for control requests failed", exc_info=True)
                connection.close()
    finally:
        connection.close()


def take_control_requests(run_ids: list[int]) -> dict[int, list[str]]:
    """Take the recorded controls of these runs (driven here) and apply them; returns what was taken.

    One cheap query when there is nothing to do; a short transaction per run that has some: the
    row is locked, read and cleared, so a request is taken once and none recorded meanwhile is lost.
    """
    waiting = list(Run.objects.filter(pk__in=run_ids).exclude(control_requests="").values_list("pk", flat=True))
    taken: dict[int, list[str]] = {}
    for run_id in waiting:
        with transaction.atomic():
            text = (Run.objects.select_for_update().filter(pk=run_id)
                    .values_list("control_requests", flat=True).first())
            if not text:
                continue
            Run.objects.filter(pk=run_id).update(control_requests="")
        taken[run_id] = actions = text.split()
        with _registry_lock:
            execution = _executions.get(run_id)
        if execution is None:  # it ended meanwhile: its final status answers the request
            continue
        for action in actions:
            execution.apply_request(action)
    return taken


def start_monitor() -> None:
    """Sweep orphans now and every second, and keep this process's runs' heartbeats fresh.

    Started by optsite/asgi.py (the server). Any error (no table yet, DB access blocked in a
    test) is logged and the next tick tries again.
    """
    global _monitor
    from django.conf import settings

    if not getattr(settings, "OPTSITE_RUN_MONITOR", True) or _monitor is not None:
        return
    _monitor = threading.Thread(target=_monitor_loop, name="optsite-run-monitor", daemon=True)
    _monitor.start()


def _monitor_loop() -> None:
    last_beat = 0.0
    while True:
        try:
            if time.monotonic() - last_beat >= HEARTBEAT_EVERY:
                heartbeat_local()
                last_beat = time.monotonic()
            sweep_orphans()
        except Exception:
            log.debug("run monitor tick failed", exc_info=True)
        finally:
            connection.close()
        time.sleep(MONITOR_EVERY)
