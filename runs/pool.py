"""The local pool: worker processes that the web process starts itself (the default mode).

The web process stores and validates runs and relays events; the pool's processes
(runs/pool_worker.py) drive them. One supervisor thread here hands queued runs to idle
processes in the fair queue order (runs/run_objects.py fair_queue), relays every event a process
sends (after its commit) to the sockets through this process's channel layer, and notices at once when a process dies (its socket
closes): that process's run becomes interrupted, continues on another process unless
OPTSITE_AUTO_RESUME=0, and a new process takes the dead one's place.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection, wait

from django.conf import settings
from django.db import connection

from runs import leases, recovery, storage_faults
from runs.driver import RETRY
from runs.publishing import Publisher, group_of
from runs.run_objects import fair_queue

log = logging.getLogger("runs.pool")

# A process that has not said "ready" this long after its start is replaced.
START_TIMEOUT = 60.0
# A run a process could not take because the storage refused (runs/worker.py: RETRY) is handed
# out again after this long.
RETRY_AFTER = 1.0


class _Process:
    """One worker process and the web process's end of its socket."""

    def __init__(self, index: int):
        self.index = index
        mine, theirs = socket.socketpair()
        env = {**os.environ, "OPTSITE_POOL_DATABASE": str(settings.DATABASES["default"]["NAME"])}
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "runs.pool_worker", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], cwd=settings.BASE_DIR, env=env)
        theirs.close()
        self.conn = Connection(mine.detach())
        self.started = time.monotonic()
        self.holder: str | None = None  # known once it says "ready"
        self.run_id: int | None = None  # handed to it, until it says "done"
        self._send_lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def send(self, message) -> bool:
        try:
            with self._send_lock:
                self.conn.send(message)
            return True
        except OSError:  # it died: the supervisor sees the closed socket
            return False

    def close(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass


class LocalPool:
    def __init__(self, size: int, *, kill_timeout: float = 10.0):
        self.size = size
        self.kill_timeout = kill_timeout
        self.processes: list[_Process] = []
        self._waiting: set[int] = set()  # queued here, not yet handed to a process
        self._later: dict[int, float] = {}  # refused by the storage: back to _waiting at that time
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._publisher = Publisher()
        self._closed = False
        self._spawned = 0
        self._dead: list[str] = []  # holders of processes that died, their runs still to recover
        self._thread: threading.Thread | None = None

    # -- from any thread --
    def start(self) -> None:
        with self._lock:
            for _ in range(self.size):
                self._spawn()
        self._thread = threading.Thread(target=self._supervise, name="optsite-pool", daemon=True)
        self._thread.start()

    def enqueue(self, run_id: int) -> None:
        """A run was queued (committed): a free process takes it in queue order."""
        with self._lock:
            self._waiting.add(run_id)
        self._poke()

    def nudge(self, run_id: int) -> None:
        """Controls were recorded for the run: tell the process that drives it."""
        for process in list(self.processes):
            if process.run_id == run_id:
                process.send(("control", run_id))

    def idle(self) -> bool:
        """No run waits here and no process drives one."""
        with self._lock:
            return not self._waiting and not self._later and all(p.run_id is None for p in self.processes)

    def retrying(self) -> set[int]:
        """Runs a process could not take because the storage refused, waiting to be handed out again."""
        with self._lock:
            return set(self._later)

    def worker_pids(self) -> dict[str, int]:
        return {p.holder: p.pid for p in self.processes if p.holder}

    def close(self, timeout: float | None = None) -> None:
        """Ask every process to let its run go (interrupted) and end; kill those that do not."""
        self._closed = True
        self._poke()
        if self._thread is not None:
            self._thread.join(5)
        for process in self.processes:
            process.send(("exit",))
        # Keep reading until each has gone: a process blocked on a full socket could not write
        # its run as interrupted. What they still send is stored; nobody is left to tell.
        deadline = time.monotonic() + (self.kill_timeout if timeout is None else timeout)
        reading = {p.conn: p for p in self.processes}
        while reading and (left := deadline - time.monotonic()) > 0:
            for conn in wait(list(reading), timeout=left):
                try:
                    while conn.poll():
                        conn.recv()
                except (EOFError, OSError):
                    del reading[conn]
        for process in self.processes:
            try:
                process.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("local pool: worker %s did not end in time; killed", process.holder)
                process.popen.kill()
                process.popen.wait()
            process.close()

    # -- the supervisor thread --
    def _poke(self) -> None:
        try:
            self._wake_w.send(b".")
        except OSError:
            pass

    def _spawn(self) -> None:
        self._spawned += 1
        self.processes.append(_Process(self._spawned))

    def _supervise(self) -> None:
        while not self._closed:
            try:
                self._tick()
            except Exception as exc:  # the database is away for a moment: try again
                if storage_faults.is_storage_fault(exc):
                    log.warning("local pool: %s; trying again", storage_faults.describe(exc))
                else:
                    log.warning("local pool: supervisor tick failed", exc_info=True)
                connection.close()
                time.sleep(0.5)
        connection.close()

    def _tick(self) -> None:
        conns = {p.conn: p for p in self.processes}
        for ready in wait([*conns, self._wake_r], timeout=1.0):
            if ready is self._wake_r:
                try:
                    while self._wake_r.recv(4096):
                        pass
                except BlockingIOError:
                    pass
                continue
            process = conns[ready]
            try:
                while process.conn.poll():
                    self._handle(process, process.conn.recv())
            except (EOFError, OSError):
                self._lost(process)
        for process in list(self.processes):
            if process.holder is None and time.monotonic() - process.started > START_TIMEOUT:
                log.error("local pool: process %s did not start in time; replacing it", process.pid)
                process.popen.kill()
                self._lost(process)
        if not self._closed:
            self._recover()
            self._retry_due()
            self._dispatch()

    def _handle(self, process: _Process, message) -> None:
        kind = message[0]
        if kind == "event":
            event = message[1]
            self._publisher.send(group_of(event["run_id"]), event)
        elif kind == "done":
            process.run_id = None
            if message[2] == RETRY:
                with self._lock:
                    self._later[message[1]] = time.monotonic() + RETRY_AFTER
        elif kind == "ready":
            process.holder = message[1]
            log.info("local pool: worker %s ready", process.holder)

    def _lost(self, process: _Process) -> None:
        """The process is gone: its run is interrupted (and resumed), a new process replaces it."""
        if process not in self.processes:
            return
        self.processes.remove(process)
        process.close()
        try:
            process.popen.wait(5)
        except subprocess.TimeoutExpired:
            process.popen.kill()
        if self._closed:
            return
        log.warning("local pool: worker %s (pid %s) died with exit code %s", process.holder, process.pid,
                    process.popen.returncode)
        if process.run_id is not None:
            with self._lock:
                self._waiting.add(process.run_id)  # if it died before claiming, it is still queued
        with self._lock:
            self._spawn()  # first: whatever fails below, the pool keeps its size
        if process.holder:
            self._dead.append(process.holder)
        self._recover()

    def _recover(self) -> None:
        """Interrupt (and resume) the runs of dead processes; what fails (the database busy or
        away) is tried again at the next tick."""
        while self._dead:
            holder = self._dead[0]
            recovery.interrupted(leases.interrupt_held_by(holder), enqueue=self.enqueue)
            self._dead.pop(0)

    def _retry_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            for run_id in [r for r, at in self._later.items() if at <= now]:
                del self._later[run_id]
                self._waiting.add(run_id)

    def _dispatch(self) -> None:
        idle = [p for p in self.processes if p.holder and p.run_id is None]
        with self._lock:
            waiting = set(self._waiting)
        if not idle or not waiting:
            return
        handed = [p.run_id for p in self.processes if p.run_id is not None]
        queued = fair_queue(waiting, also_running=handed)
        with self._lock:
            self._waiting -= waiting - set(queued)  # stopped or deleted while queued
        for process, run_id in zip(idle, queued):
            with self._lock:
                self._waiting.discard(run_id)
            process.run_id = run_id
            if not process.send(("drive", run_id)):
                with self._lock:
                    self._waiting.add(run_id)
