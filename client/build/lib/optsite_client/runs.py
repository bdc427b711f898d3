"""A live run: its steps as they come, its controls, and the reconnection that makes a dropped
socket invisible to the caller.

One handle reads one socket at a time, in the caller's thread (no background thread): steps that
arrive while a control waits for its answer are kept and yielded by `steps()` in order. The handle
counts the last seq it received; after a drop it reconnects to the watch socket with
`?after=<that seq>`, so that the server sends exactly the steps that follow it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import BadAnswer, NotFound, Timeout, Unauthorized, Unreachable, from_message
from .http import expect
from .sockets import GONE, REVOKED, Dropped, Refused, Socket

if TYPE_CHECKING:
    from .client import Client

Run = dict[str, Any]  # the server's Run object (docs/protocol.md, "Objects")
Step = dict[str, Any]

ACTIVE = frozenset({"queued", "running", "paused"})
ENDED = frozenset({"finished", "stopped", "failed", "interrupted"})


def over(run: Run) -> bool:
    """Whether the run has ended for good: an interrupted run that the server continues by itself
    (`auto_resume`) has not."""
    return run.get("status") in ENDED and not (run.get("status") == "interrupted" and run.get("auto_resume"))


def _paused(run: Run) -> bool:
    return run.get("status") == "paused" or run.get("status") in ENDED


def _resumed(run: Run) -> bool:
    return run.get("status") in ("queued", "running") or (run.get("status") in ENDED - {"interrupted"})


def _stopped(run: Run) -> bool:
    return run.get("status") in ENDED - {"interrupted"}


_DONE: dict[str, Callable[[Run], bool]] = {"pause": _paused, "resume": _resumed, "stop": _stopped}


MAX_FRUITLESS = 10  # reconnections in a row that bring nothing new before giving up


class _Gap(Exception):
    """A step arrived that does not follow the last one received (the server promises none)."""


class RunHandle:
    """One run of yours, followed live over a socket. Made by `Client.launch` or `Client.watch`.

    `run` is the latest Run the server sent (or `refresh()` read); `steps()` yields each step once,
    in seq order, until the run has ended. Not for use from several threads at once.
    """

    def __init__(self, client: Client, sock: Socket | None, run: Run, received: int = -1):
        self._client = client
        self._sock = sock
        self.run: Run = run
        self.id: int = run["id"]
        self._received = received  # the last seq received (yielded or waiting in _buffer)
        self._buffer: deque[Step] = deque()
        self._ended = False
        self._pending: str | None = None  # a control waiting for its answer
        self.reconnects = 0  # sockets opened again after a drop
        self._fruitless = 0  # reconnections since the last step or status came

    def __repr__(self) -> str:
        return f"<RunHandle run {self.id} {self.status}>"

    @property
    def status(self) -> str:
        """The latest status known: queued, running, paused, finished, stopped, failed, interrupted."""
        return str(self.run.get("status"))

    # -- reading --
    def steps(self) -> Iterator[Step]:
        """Each step once, in seq order, live, until the run has ended (then the iterator ends).

        A dropped socket (the server restarting, a network fault, a close 4429 for reading too
        slowly) is reconnected with `?after=<the last seq received>`: no step is missed or repeated.
        An interrupted run that the server continues by itself is followed on. Steps are light
        but for the newest of each socket message (docs/protocol.md, "Light and complete steps").
        """
        while True:
            while self._buffer:
                yield self._buffer.popleft()
            if self._ended:
                return
            self._next()

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run has ended; returns its final Run. Steps not read yet with `steps()`
        are dropped (they are stored: `Client.steps(id)` reads them)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ended:
            self._buffer.clear()
            if deadline is not None and time.monotonic() > deadline:
                raise Timeout(f"Run {self.id} had not ended after {timeout:g} s (it is {self.status}).")
            self._next()
        self._buffer.clear()
        return self.run

    def refresh(self) -> Run:
        """The run as the server has it now (HTTP); also kept as `run`."""
        self.run = self._client.run(self.id)
        return self.run

    # -- controls: each returns the Run once the server has answered it --
    def pause(self) -> Run:
        """Pause at the next step boundary; returns the run once it is paused (or has ended)."""
        return self._control("pause")

    def resume(self) -> Run:
        """Queue a paused (or interrupted) run again; returns the run once it is queued or running."""
        return self._control("resume")

    def stop(self) -> Run:
        """Stop (a DE run still polishes); returns the run once it has ended. `steps()` goes on to
        yield its last steps."""
        return self._control("stop")

    def close(self) -> None:
        """Close the socket (the run goes on: only `stop()` stops it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> RunHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside --
    def _control(self, action: str) -> Run:
        was_ended = self._ended
        self._pending = action
        try:
            if self._sock is None:
                self._reconnect()  # sends the pending control
            else:
                try:
                    self._sock.send({"type": action})
                except Dropped:
                    self._sock = None
                    self._reconnect()
            # The answer is a status (or the end, if it comes meanwhile); not the first message
            # of a reconnected socket, nor an ended run's "finished" said again on it.
            answers = ("status",) if was_ended else ("status", "finished")
            while True:
                message = self._next()
                if message["type"] in answers and _DONE[action](self.run):
                    return self.run
        finally:
            self._pending = None
            if self._ended:
                self.close()

    def _next(self) -> dict[str, Any]:
        """Read and take in one message, reconnecting as needed; errors raise."""
        while True:
            if self._sock is None:
                self._reconnect()
            try:
                message = self._sock.recv()
            except Dropped as dropped:
                self._sock = None
                if dropped.code == REVOKED:
                    raise Unauthorized(f"The server closed the socket of run {self.id}: its token was "
                                       "revoked.") from None
                if dropped.code == GONE:
                    raise NotFound(f"There is no run {self.id} of yours (any more).") from None
                if dropped.silent:
                    self._fruitless = 0  # a quiet run (paused, queued) on a quiet network: not a fault
                continue
            if message["type"] == "error":
                error = from_message(message)
                if error.code == "limit" and not error.errors:
                    continue  # "read faster": the close 4429 follows, then a reconnect
                if error.code == "bad_message" and self._pending is None:
                    self.close()  # "the server could not replay the run": ask again from where we are
                    continue
                if error.code in ("unauthorized", "not_found"):
                    self.close()
                raise error
            if message["type"] != "run":
                self._fruitless = 0
            try:
                self._take(message)
            except _Gap:
                self.close()  # never happens if the server keeps its word; asking again fills it
                continue
            if self._ended and self._pending is None:
                self.close()  # nothing more about this run will come
            return message

    def _take(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "steps":
            fresh = []
            received = self._received
            for step in expect(message.get("steps"), list, "steps message's steps"):
                seq = expect(step, dict, "step").get("seq")
                if not isinstance(seq, int) or isinstance(seq, bool):
                    raise BadAnswer(f"The server sent a step of run {self.id} without a seq.")
                if seq <= received:
                    continue  # already had it
                if seq != received + 1:
                    raise _Gap
                fresh.append(step)
                received = seq
            self._buffer.extend(fresh)
            self._received = received
        elif kind in ("run", "started", "status", "finished"):
            self.run = expect(message.get("run"), dict, f"{kind} message's run")
            if kind == "finished":
                self._ended = over(self.run)
            elif self.run.get("status") in ACTIVE:
                self._ended = False
        elif kind == "deleted":
            raise NotFound(str(message.get("message") or f"Run {self.id} was deleted."), "deleted")
        # other types (a later server's additions) say nothing this handle needs

    def _reconnect(self) -> None:
        """Open the watch socket from the last seq received, retrying while the server cannot be
        reached, for up to the client's `reconnect_timeout`."""
        if self._fruitless >= MAX_FRUITLESS:
            raise Unreachable(f"The socket of run {self.id} dropped {self._fruitless} times in a row before "
                              "anything new came; giving up.")
        self._fruitless += 1
        deadline = time.monotonic() + self._client.reconnect_timeout
        delay = 0.1 * self._fruitless
        while True:
            try:
                sock = self._client._open(f"/ws/runs/{self.id}/?after={self._received}")
                break
            except Refused as refused:
                status, failure = refused.status, f"the handshake was answered with HTTP {refused.status}"
            except Dropped as dropped:
                status, failure = None, dropped.why
            if status in (401, 403):
                self._client._refused(f"/ws/runs/{self.id}/", status)
            # anything else may be a proxy's answer while the server restarts: try again
            if time.monotonic() + delay > deadline:
                raise Unreachable(f"Lost the socket of run {self.id} and could not reconnect within "
                                  f"{self._client.reconnect_timeout:g} s: {failure}.")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        self._sock = sock
        self.reconnects += 1
        if self._pending is not None:  # its answer may have been lost with the old socket
            try:
                sock.send({"type": self._pending})
            except Dropped:
                self._sock = None  # the next read reconnects, and sends it again
