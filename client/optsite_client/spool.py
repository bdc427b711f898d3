"""The steps of an external run that the server has not acknowledged yet: in memory up to a bound,
then on disk in an append-only spool, always handed out in seq order.

A spool is one directory per run under a directory the client owns (`default_spool_dir()`):
`run.json` (the server's address, the spec, the label, the run's id once the server gave one,
the "end" message once the optimization is over) and numbered segment files of lines
`<seq>\\t<wire step as JSON>\\n`, written only at their end and deleted once every step in them
was acknowledged. A process that could not deliver its run leaves the directory behind for
`Client.deliver_pending()`; while a process works on a spool it holds `lock` (flock), so that two
never send the same run.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections import deque
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not on Windows: there a spool is not locked
    fcntl = None

MEMORY_LIMIT = 8 * 2 ** 20  # encoded steps held in memory before they spill to disk
SPOOL_LIMIT = 1024 * 2 ** 20  # encoded steps on disk per run before the optimization must wait
SEGMENT_BYTES = 4 * 2 ** 20  # a segment file is deleted as a whole once all of it was acked
META = "run.json"


def default_spool_dir() -> Path:
    """Where spools go unless the Client is told otherwise: the user's cache directory."""
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "optsite" / "spool"


class SpoolError(OSError):
    """The spool directory cannot be used (not writable, full disk); the message says which."""


class Spool:
    """One run's directory: its metadata and its segments. Made lazily: nothing touches the disk
    until `append` or `write_meta` is first called."""

    def __init__(self, root: Path, name: str | None = None, segment_bytes: int = SEGMENT_BYTES):
        self.root = Path(root)
        self.dir = self.root / (name or uuid.uuid4().hex)
        self.segment_bytes = segment_bytes
        self._lock_fd: int | None = None
        self._segments: deque[int] = deque()  # segment numbers, oldest first
        self._sizes: dict[int, int] = {}
        self._read_at = 0  # byte offset of the next line to read in the oldest segment
        if self.dir.exists():
            for p in self.dir.iterdir():
                if p.suffix == ".seg" and p.stem.lstrip("-").isdigit():
                    self._sizes[int(p.stem)] = p.stat().st_size
            self._segments.extend(sorted(self._sizes))

    # -- the directory --
    def _ensure(self) -> None:
        if self._lock_fd is not None:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.dir.mkdir(exist_ok=True, mode=0o700)
        except OSError as failed:
            raise SpoolError(f"Could not make the spool directory {self.dir}: {failed.strerror or failed}.") from None
        if not self.lock():
            raise SpoolError(f"The spool {self.dir} is in use by another process.")

    def lock(self) -> bool:
        """Hold the spool's lock (False: another process holds it)."""
        if self._lock_fd is not None:
            return True
        try:
            fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as failed:
            raise SpoolError(f"Could not open the lock of the spool {self.dir}: {failed.strerror or failed}.") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        self._lock_fd = fd
        return True

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def exists(self) -> bool:
        return self.dir.exists()

    def remove(self) -> None:
        """Delete the spool (everything in it was delivered, or can never be)."""
        if not self.dir.exists():
            return
        for p in self.dir.iterdir():
            try:
                p.unlink()
            except OSError:
                pass
        try:
            self.dir.rmdir()
        except OSError:
            pass
        self.release()
        self._segments.clear()
        self._sizes.clear()
        self._read_at = 0

    # -- metadata --
    def write_meta(self, meta: dict[str, Any]) -> None:
        """Replace run.json at once (a reader sees the old or the new one, never half of one)."""
        self._ensure()
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".meta-")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(meta, out, allow_nan=False)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.dir / META)
        except OSError as failed:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise SpoolError(f"Could not write {self.dir / META}: {failed.strerror or failed}.") from None

    def read_meta(self) -> dict[str, Any] | None:
        try:
            with open(self.dir / META) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None

    # -- steps --
    @property
    def bytes(self) -> int:
        """What the segments weigh on disk (read lines included until their segment goes)."""
        return sum(self._sizes.values())

    @property
    def empty(self) -> bool:
        return not self._segments or (len(self._segments) == 1 and self._read_at >= self._sizes[self._segments[0]])

    def _path(self, n: int) -> Path:
        return self.dir / f"{n:012d}.seg" if n >= 0 else self.dir / f"-{-n:011d}.seg"

    def append(self, lines: list[tuple[int, str]], *, first: bool = False) -> None:
        """Add steps after those on disk (`first`: before them, in a segment of their own; how the
        steps held in memory go to disk when the process gives up)."""
        if not lines:
            return
        self._ensure()
        data = "".join(f"{seq}\t{text}\n" for seq, text in lines).encode()
        if first:
            n = (self._segments[0] - 1) if self._segments else 0
            if self._segments and self._read_at:  # the oldest one was partly read: keep its rest only
                self._rewrite_oldest()
                n = self._segments[0] - 1
        elif self._segments and self._sizes[self._segments[-1]] < self.segment_bytes:
            n = self._segments[-1]
        else:
            n = self._segments[-1] + 1 if self._segments else 0
        try:
            with open(self._path(n), "ab") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except OSError as failed:
            raise SpoolError(f"Could not write to the spool {self.dir}: {failed.strerror or failed}.") from None
        if n not in self._sizes:
            self._sizes[n] = 0
            if first:
                self._segments.appendleft(n)
            else:
                self._segments.append(n)
        self._sizes[n] += len(data)

    def _rewrite_oldest(self) -> None:
        n = self._segments[0]
        path = self._path(n)
        with open(path, "rb") as f:
            f.seek(self._read_at)
            rest = f.read()
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            out.write(rest)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        self._sizes[n] = len(rest)
        self._read_at = 0

    def read(self, max_bytes: int) -> list[tuple[int, str]]:
        """The next steps on disk, in order, about `max_bytes` of them (at least one if any);
        they are gone from the spool once read (a fully read segment is deleted)."""
        out: list[tuple[int, str]] = []
        size = 0
        while self._segments and (size < max_bytes or not out):
            n = self._segments[0]
            with open(self._path(n), "rb") as f:
                f.seek(self._read_at)
                while size < max_bytes or not out:
                    line = f.readline()
                    if not line.endswith(b"\n"):  # the end (or a line cut short by a crash)
                        break
                    self._read_at += len(line)
                    seq, _, text = line.decode().rstrip("\n").partition("\t")
                    out.append((int(seq), text))
                    size += len(text)
            if self._read_at >= self._sizes[n] or size < max_bytes:
                # this segment is done with; a cut line at its end is dropped with it
                self._path(n).unlink(missing_ok=True)
                self._segments.popleft()
                del self._sizes[n]
                self._read_at = 0
        return out


class Backlog:
    """The unacknowledged steps of one run, oldest first: the first ones in memory (`memory_limit`
    bytes of encoded text, at least one step), the rest in `spool`. Steps are sent from memory
    only; an ack frees room, which the next steps on disk fill. `full` says that the disk part
    has reached `spool_limit` (the producer should wait)."""

    def __init__(self, spool: Spool, memory_limit: int = MEMORY_LIMIT, spool_limit: int = SPOOL_LIMIT):
        self.spool = spool
        self.memory_limit = memory_limit
        self.spool_limit = spool_limit
        self.mem: deque[tuple[int, str]] = deque()
        self.mem_bytes = 0
        self.sent = 0  # how many of mem's steps were sent on the current connection
        self.last_seq = -1  # the newest step added
        self.acked = 0  # next_seq of the newest ack

    @property
    def empty(self) -> bool:
        return not self.mem and self.spool.empty

    @property
    def full(self) -> bool:
        return self.spool.bytes >= self.spool_limit

    def add(self, seq: int, text: str) -> None:
        self.last_seq = seq
        if self.spool.empty and (not self.mem or self.mem_bytes + len(text) <= self.memory_limit):
            self.mem.append((seq, text))
            self.mem_bytes += len(text)
        else:  # past the bound, or behind steps already on disk: on disk, to keep the order
            self.spool.append([(seq, text)])

    def ack(self, next_seq: int) -> None:
        """Drop every step with seq < next_seq, then refill memory from disk."""
        self.acked = max(self.acked, next_seq)
        while self.mem and self.mem[0][0] < next_seq:
            _, text = self.mem.popleft()
            self.mem_bytes -= len(text)
            self.sent = max(0, self.sent - 1)
        self._refill(next_seq)

    def _refill(self, next_seq: int) -> None:
        while not self.spool.empty and self.mem_bytes < self.memory_limit:
            for seq, text in self.spool.read(self.memory_limit - self.mem_bytes):
                if seq < next_seq:
                    continue  # delivered before (a spool read again after a restart)
                self.mem.append((seq, text))
                self.mem_bytes += len(text)

    def unsent(self, max_bytes: int) -> list[tuple[int, str]]:
        """The next steps to send on this connection, up to `max_bytes` (at least one if any),
        counted as sent."""
        out, size = [], 0
        while self.sent < len(self.mem):
            seq, text = self.mem[self.sent]
            if out and size + len(text) + 1 > max_bytes:
                break
            out.append((seq, text))
            size += len(text) + 1
            self.sent += 1
        return out

    def rewind(self) -> None:
        """A new connection: everything unacked is to be sent again."""
        self.sent = 0

    def persist(self) -> None:
        """Put the steps held in memory on disk, ahead of those there (the process gives up)."""
        self.spool.append(list(self.mem), first=True)
        self.mem.clear()
        self.mem_bytes = 0
        self.sent = 0
