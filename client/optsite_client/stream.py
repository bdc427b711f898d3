"""The background thread that delivers an external run to the server (docs/client.md, "Your
function, your process"): it takes the steps the optimization hands it, encodes them, keeps them
until the server acknowledges them (in memory, then on disk: spool.py), opens the run on
`/ws/runs/external/`, reconnects with `attach` after a drop, and passes Stop/Pause/Resume back.

Nothing in here runs in the optimization's thread but `put`, `finish` and the flags it reads;
no network call ever blocks the optimization: each connection has a thread that connects and
reads, and one that writes.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from .errors import OptsiteError, Unauthorized, from_message
from .sockets import REVOKED, Dropped, Refused, Socket
from .spool import Backlog, SpoolError

if TYPE_CHECKING:
    from .client import Client

PATH = "/ws/runs/external/"
MAX_MESSAGE = 512 * 1024  # the server takes 1 MiB a message: a batch stays well under half of it
MADE = 1024  # steps waiting to be encoded before the optimization waits (the encoder is behind)
# The thread takes the optimization's steps this often, not at each step: every wake of another
# thread costs the optimization the time it waits for the GIL back, which adds up on a busy machine.
TICK = 0.05
FIRST_DELAY, MAX_DELAY = 0.1, 2.0  # between reconnection attempts, doubling
ERROR_WORDS = 2000  # characters of a failed run's error kept


def encode_step(step: Any) -> str:
    """The wire step (runs.optim.external.wire_step: bulky arrays packed) as JSON; a step whose
    bulky part would take the message past MAX_MESSAGE goes without it (the light step is what the
    server stores anyway)."""
    from optsite_solver.external import pack_arrays

    light = json.dumps(step.to_dict(), allow_nan=False, separators=(",", ":"))
    if step.bulky:
        bulky = json.dumps(pack_arrays(step.bulky), separators=(",", ":"))
        if len(light) + len(bulky) + 64 < MAX_MESSAGE:
            return f'{light[:-1]},"bulky":{bulky}}}'
    return light


class _Connection:
    """One socket of the stream: a thread that connects, then reads; one that writes. Both post
    what happens to the stream's inbox, tagged with the connection's number."""

    def __init__(self, stream: Stream, number: int):
        self.stream, self.number = stream, number
        self.sock: Socket | None = None
        self.out: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, name=f"optsite-read-{number}", daemon=True).start()

    def send(self, text: str) -> None:
        self.out.put(text)

    def close(self) -> None:
        self.out.put(None)
        if self.sock is not None:
            self.sock.close()

    def _post(self, *item: Any) -> None:
        self.stream.inbox.put((item[0], self.number, *item[1:]))

    def _read(self) -> None:
        client = self.stream.client
        try:
            self.sock = Socket(client.url, PATH, client.token, client.timeout)
        except Refused as refused:
            self._post("refused", refused.status)
            return
        except Dropped as dropped:
            self._post("dropped", dropped)
            return
        threading.Thread(target=self._write, name=f"optsite-write-{self.number}", daemon=True).start()
        self._post("connected")
        while True:
            try:
                message = self.sock.recv()
            except Dropped as dropped:
                self.out.put(None)
                self._post("dropped", dropped)
                return
            except OptsiteError as bad:  # not JSON: not a server this stream can talk to
                self.sock.close()
                self.out.put(None)
                self._post("dropped", Dropped(None, bad.message))
                return
            self._post("message", message)

    def _write(self) -> None:
        while True:
            text = self.out.get()
            if text is None:
                return
            try:
                self.sock.send_text(text)
            except Dropped:
                self.sock.close()  # the reader sees it and says so
                return


class Stream(threading.Thread):
    """Delivers one external run. `put(step)` per step, `finish(...)` at the end; the flags
    `pause_requested` / `stop_requested` and the event `go` are read by the optimization.

    `spec`/`label` open a new run; `run_id` attaches to one the server has (deliver_pending);
    `end` is an end message already decided (a spool delivered later)."""

    def __init__(self, client: Client, spec: dict[str, Any], label: str, backlog: Backlog, *,
                 run_id: int | None = None, end: dict[str, Any] | None = None,
                 on_stop: Callable[[], None] | None = None, truncated: bool = False):
        super().__init__(name="optsite-stream", daemon=True)
        self.client, self.spec, self.label, self.backlog = client, spec, label, backlog
        self.run_id = run_id
        self.last_run: dict[str, Any] | None = None  # the server's latest Run
        self.on_stop = on_stop
        self.inbox: queue.Queue[tuple] = queue.Queue()  # what the connections say
        # what the optimization hands over, in order: ("step", Step), ("paused",), ("end", ...);
        # a deque's append takes no lock and wakes no one
        self._made: deque[tuple] = deque()
        self.notices: deque[str] = deque()  # words for the optimization's thread to warn with
        # outcome of the first attempt to open: None (opened), "offline", or the OptsiteError
        self.first: OptsiteError | str | None = None
        self.first_done = threading.Event()
        self.done = threading.Event()  # delivered, given up, or abandoned: nothing more to send
        self.delivered = False
        self.room = threading.Event()  # cleared while the disk bound is reached
        self.room.set()
        self.go = threading.Event()  # set while the optimization may go on (not paused)
        self.go.set()
        self.pause_requested = False
        self.stop_requested = False
        self._end_message = end  # the "end" message, once the optimization is over
        self._end_sent = False
        self._conn: _Connection | None = None
        self._number = 0
        self._connecting = False
        self._ready = False  # the run is opened/attached on the current connection
        self._retry_at = 0.0
        self._delay = FIRST_DELAY
        self._paused = False  # the optimization waits
        self._say_paused = self._say_resumed = False
        self._mode = "live"  # "live" | "detached" (no server any more: spool only) | "over"
        self._full_said = False
        self._truncated = truncated
        self._meta_written = False
        self._give_up = False

    # -- the optimization's side --
    def put(self, step: Any) -> None:
        """Hand over one step (the stepper's fresh arrays: nothing here copies them). Waits only
        while the disk bound is reached (back pressure)."""
        if self._mode == "over":
            return
        if not self.room.is_set():
            while not self.room.wait(0.5):
                if self.done.is_set():
                    return
        while len(self._made) >= MADE and not self.done.is_set():
            time.sleep(0.005)
        self._made.append(("step", step))

    def _hand(self, item: tuple) -> None:
        """Something to say at once (not at the next tick)."""
        self._made.append(item)
        self.inbox.put(("wake",))

    def paused(self) -> None:
        self._hand(("paused",))

    def resumed(self) -> None:
        self._hand(("resumed",))

    def finish(self, status: str, result: dict[str, Any] | None, error: str | None, timeout: float) -> bool:
        """End the run and wait up to `timeout` for the server to have it all; False if it does not
        (the rest then stays in the spool)."""
        end: dict[str, Any] = {"type": "end", "status": status, "result": result}
        if error is not None:
            end["error"] = error[:ERROR_WORDS]
        self._hand(("end", end))
        if not self.done.wait(timeout):
            self.inbox.put(("give up",))
            self.done.wait(30)
        return self.delivered

    # -- the thread --
    def run(self) -> None:
        try:
            self._loop()
        except SpoolError as failed:
            self._say(f"{failed} The run's remaining steps are lost.")
            self._over()
        except BaseException as failed:  # noqa: BLE001 - the optimization must not be left waiting
            self._say(f"The stream of run {self.run_id} stopped: {type(failed).__name__}: {failed}")
            self._over()

    def _loop(self) -> None:
        self._connect()
        if self.run_id is not None or self._end_message is not None:
            self.backlog.ack(self.backlog.acked)  # a spool read again: the first steps into memory
        tick = 0.0
        while not self.done.is_set():
            wait = max(0.0, tick - time.monotonic())
            if self._conn is None and not self._connecting and self._mode == "live":
                wait = max(0.0, min(wait, self._retry_at - time.monotonic()))
            try:
                item = self.inbox.get(timeout=wait)
            except queue.Empty:
                item = None
            woken = False
            while item is not None:
                if item[0] == "wake":
                    woken = True
                else:
                    self._take(item)
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    item = None
            if woken or time.monotonic() >= tick:
                made = self._made
                while made and not self.done.is_set():
                    self._take(made.popleft())
                tick = time.monotonic() + TICK
            if self.done.is_set():
                break
            if self._give_up:
                self._leave()
                break
            self._flush()
            if (self._conn is None and not self._connecting and self._mode == "live"
                    and time.monotonic() >= self._retry_at):
                self._connect()
            if self._mode == "detached" and self._end_message is not None:
                self._leave()

    def _take(self, item: tuple) -> None:
        kind = item[0]
        if kind == "step":
            self._add(item[1])
        elif kind == "paused":
            self._paused, self._say_paused = True, True
        elif kind == "resumed":
            self._paused, self._say_resumed, self._say_paused = False, True, False
        elif kind == "end":
            self._end_message = item[1]
            self._write_meta()
        elif kind == "give up":
            self._give_up = True
        elif item[1] != self._number:
            pass  # an old connection's late news: it was closed already
        elif kind == "connected":
            self._connecting = False
            self._hello()
        elif kind == "message":
            self._message(item[2])
        elif kind == "dropped":
            self._dropped(item[2])
        elif kind == "refused":
            self._connecting = False
            self._conn = None
            if item[2] in (401, 403):
                self._revoked(f"the server refused the token (HTTP {item[2]})")
            else:
                self._offline(f"the handshake was answered with HTTP {item[2]}")

    def _add(self, step: Any) -> None:
        if self._mode == "over":
            return
        text = encode_step(step)
        if self._mode == "detached" and self.backlog.full:
            if not self._truncated:
                self._truncated = True
                self._say(f"The spool of run {self.run_id} is full: steps from {step.seq} on are not kept.")
                self._write_meta()
            return
        on_disk = self.backlog.spool.exists()
        self.backlog.add(step.seq, text)
        if not on_disk and self.backlog.spool.exists():
            self._write_meta()
        if self._mode == "live" and self.backlog.full and self.room.is_set():
            self.room.clear()
            if not self._full_said:
                self._full_said = True
                self._say(f"The server has not taken run {self.run_id or '(not opened yet)'}'s steps and its "
                          f"spool reached {self.backlog.spool_limit / 2 ** 20:g} MiB: the optimization waits "
                          "for the server.")

    # -- connection --
    def _connect(self) -> None:
        self._number += 1
        self._connecting = True
        self._ready = False
        self._conn = _Connection(self, self._number)

    def _hello(self) -> None:
        if self.run_id is None:
            message = {"type": "open", "spec": self.spec}
            if self.label:
                message["label"] = self.label
        else:
            message = {"type": "attach", "run_id": self.run_id}
        self._conn.send(json.dumps(message, allow_nan=False))

    def _dropped(self, dropped: Dropped) -> None:
        self._connecting = False
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._ready = False
        if dropped.code == REVOKED:
            self._revoked("its token was revoked")
        else:
            self._offline(dropped.why)

    def _offline(self, why: str) -> None:
        if not self.first_done.is_set():
            self.first = "offline"
            self.first_done.set()
            self._say(f"{self.client.url} could not be reached ({why}): the optimization goes on, its steps "
                      "are kept and sent once the server is back.")
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, MAX_DELAY)

    def _revoked(self, why: str) -> None:
        if not self.first_done.is_set():
            self.first = Unauthorized(f"The server refused the external run socket: {why}.")
            self.first_done.set()
            self._over()
            return
        if self._mode != "live":
            return  # said already (the server's words come before its close code)
        self._mode = "detached"
        self.backlog.persist()
        self._write_meta()
        self._say(f"Run {self.run_id} is no longer streamed: {why}. Its steps are kept in {self.backlog.spool.dir}; "
                  "Client.deliver_pending() with a valid token sends them.")
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.room.set()

    def _message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in ("opened", "attached"):
            run = message.get("run")
            if not isinstance(run, dict) or not isinstance(run.get("id"), int):
                self._fatal("The server's answer to open the run holds no run.")
                return
            self.last_run, self.run_id = run, run["id"]
            self._ready, self._delay = True, FIRST_DELAY
            self.backlog.rewind()
            if kind == "attached":
                next_seq = message.get("next_seq")
                if isinstance(next_seq, int):
                    self._acked(next_seq)
                self._end_sent = False
                self._say_paused = self._paused
            self._write_meta()
            if not self.first_done.is_set():
                self.first_done.set()
        elif kind == "ack":
            next_seq = message.get("next_seq")
            if isinstance(next_seq, int):
                self._acked(next_seq)
        elif kind == "control":
            self._control(message.get("action"))
        elif kind == "ended":
            if isinstance(message.get("run"), dict):
                self.last_run = message["run"]
            self._delivered()
        elif kind == "error":
            self._error(message)
        elif kind in ("status", "run") and isinstance(message.get("run"), dict):
            self.last_run = message["run"]
        # anything else is a later server's addition

    def _acked(self, next_seq: int) -> None:
        self.backlog.ack(next_seq)
        if not self.room.is_set() and not self.backlog.full:
            self.room.set()

    def _control(self, action: Any) -> None:
        if action == "stop":
            self.stop_requested = True
            if self.on_stop is not None:
                self.on_stop()
            self.pause_requested = False
            self.go.set()
        elif action == "pause":
            if self._paused:
                self._say_paused = True  # already waiting: say so again, which clears the control
            else:
                self.pause_requested = True
                self.go.clear()
        elif action == "resume":
            self.pause_requested = False
            self.go.set()
            if not self._paused:
                self._say_resumed = True  # not waiting (or not yet): answer it all the same

    def _error(self, message: dict[str, Any]) -> None:
        error = from_message(message)
        if error.code == "unauthorized":  # the token was revoked: the close 4401 follows
            self._revoked(error.message.rstrip("."))
            return
        if not self._ready and self.run_id is None:  # the server refused to open the run
            if not self.first_done.is_set():
                self.first = error
                self.first_done.set()
            else:
                self._say(f"The server refused the run{f' {self.label!r}' if self.label else ''} when it was back: {error}. "
                          "Its steps are not kept.")
            self._fatal(None)
        elif not self._ready:  # attach refused
            run = message.get("run")
            if isinstance(run, dict) and run.get("status") in ("finished", "stopped", "failed"):
                self.last_run = run
                if self._end_sent or (self._end_message or {}).get("status") == run.get("status"):
                    self._delivered()  # our end went through before the connection dropped
                    return
                self._fatal(f"Run {self.run_id} had already ended on the server ({run.get('status')}); "
                            "the steps computed since are not sent.")
            else:
                self._fatal(f"Run {self.run_id} cannot be continued on the server: {error}")
        else:
            self._fatal(f"The server refused run {self.run_id}'s stream: {error}")

    def _fatal(self, words: str | None) -> None:
        if words:
            self._say(words)
        self.backlog.spool.remove()
        self._over()

    def _over(self) -> None:
        self._mode = "over"
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.room.set()
        self.go.set()
        self.first_done.set()
        self.done.set()

    def _delivered(self) -> None:
        self.delivered = True
        self.backlog.spool.remove()
        self._over()

    def _leave(self) -> None:
        """Give up for now: everything unacked goes to the spool, with the end."""
        self.backlog.persist()
        self._write_meta()
        if self._mode == "live":
            self._say(f"Run {self.run_id if self.run_id is not None else '(not opened yet)'} was not fully "
                      f"delivered: what is missing is kept in {self.backlog.spool.dir}; "
                      "Client.deliver_pending() sends it.")
        self.backlog.spool.release()
        self._over()

    def _write_meta(self) -> None:
        if not self.backlog.spool.exists():
            return
        self.backlog.spool.write_meta({
            "url": self.client.url, "spec": self.spec, "label": self.label, "run_id": self.run_id,
            "end": self._end_message, "last_seq": self.backlog.last_seq, "truncated": self._truncated})

    def _flush(self) -> None:
        if not self._ready or self._conn is None:
            return
        while True:
            batch = self.backlog.unsent(MAX_MESSAGE - 64)
            if not batch:
                break
            self._conn.send('{"type":"steps","steps":[' + ",".join(text for _, text in batch) + "]}")
        if self._say_paused:
            self._say_paused = False
            self._conn.send('{"type":"paused"}')
        if self._say_resumed:
            self._say_resumed = False
            self._conn.send('{"type":"resumed"}')
        if self._end_message is not None and not self._end_sent and self.backlog.empty:
            message = self._end_message
            if self._truncated and message.get("status") != "failed":
                message = {**message, "status": "failed", "result": None,
                           "error": "The client's spool was full: the run's last steps were not kept."}
            self._end_sent = True
            self._conn.send(json.dumps(message, allow_nan=False))

    def _say(self, words: str) -> None:
        self.notices.append(words)
