"""Getting a run's events to the sockets: the channel layer, from any thread of any process.

Events of the group "run-<id>" (relayed to sockets by runs/consumers.py):
  run.steps    {"run_id", "first": seq of steps[0], "steps": [step JSON text, ...], "committed"}
               light step texts as stored, but the last (newest) one, which has its bulky
               fields; each event is one socket message (cut by plan_messages)
  run.status   {"run_id", "run": Run}   after the run's status changed
  run.finished {"run_id", "run": Run}   after the final commit (any final status)
  run.deleted  {"run_id"}               after the commit that deleted the run
Only ever published after the commit that stored what they carry.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from concurrent.futures import TimeoutError as FutureTimeout

log = logging.getLogger("runs.publishing")

# Daphne closes a socket on a message over 1 MiB: the light steps of one message stay under
# MAX_BATCH_CHARS, and the whole message, with the bulky fields of its newest step, under
# MAX_MESSAGE_CHARS (runs.optim.de.POPULATION_LIMIT keeps one step's population near 300 KB).
MAX_BATCH_CHARS = 512 * 1024
MAX_MESSAGE_CHARS = 900 * 1024
# How long a publishing thread waits for the event loop when it must (too many messages in
# flight, end of run) before giving up on one (clients fill gaps from the database).
PUBLISH_TIMEOUT = 10.0


def group_of(run_id: int) -> str:
    return f"run-{run_id}"


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


def close_thread_loop():
    loop = _thread_loops.__dict__.pop("loop", None)
    if loop is not None:
        loop.close()


def plan_messages(texts: list[str], full_of) -> list[tuple[int, int, str]]:
    """Cut consecutive light step texts into socket messages: [(start, end, full text of the
    step end - 1)], where `full_of(i)` gives step i's text with its bulky fields (called for the
    last step of each message, and rarely once more when that one is too big to fit)."""
    out, i, n = [], 0, len(texts)
    while i < n:
        j, size = i, 0
        while j < n and (j == i or size + len(texts[j]) + 1 <= MAX_BATCH_CHARS):
            size += len(texts[j]) + 1
            j += 1
        full = full_of(j - 1)
        while j - 1 > i and size + len(full) - len(texts[j - 1]) > MAX_MESSAGE_CHARS:
            # the newest step's bulky fields do not fit beside the others: end the message
            # earlier, by about their size (a run's bulky fields keep their size from step to step)
            extra = len(full) - len(texts[j - 1])
            while j - 1 > i and size + extra > MAX_MESSAGE_CHARS:
                j -= 1
                size -= len(texts[j]) + 1
            full = full_of(j - 1)
        out.append((i, j, full))
        i = j
    return out


def step_events(run_id: int, first: int, texts: list[str], committed: float | None = None, full_of=None):
    """Cut a batch of stored (light) step texts into "run.steps" events, one socket message
    each, the newest step of each with its bulky fields (`full_of(i)`; None: the texts are
    complete already).

    `committed` (Unix time of the commit that stored them) lets a watcher measure how long the
    steps took from the disk to its socket.
    """
    for start, end, full in plan_messages(texts, full_of or texts.__getitem__):
        yield {"type": "run.steps", "run_id": run_id, "first": first + start,
               "steps": [*texts[start:end - 1], full], "committed": committed}
