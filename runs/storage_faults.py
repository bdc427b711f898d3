"""Storage faults: the errors that say the storage failed, not the run, and how long to wait them out.

A database that is locked past its busy timeout, a full disk, a read-only or failing file, a
connection to PostgreSQL that dropped: nothing is wrong with the run, and a write tried again a
little later may well succeed. Those are retried (runs/driver.py), and a run that must give up on
them is let go as `interrupted` with its last committed checkpoint, never `failed`. Everything else
(a bug, a solver that raised, a constraint that caught bad data) is not the storage's, and is not
retried: a run that hits one fails, in words.

The tell is the error code the database itself gives (SQLite's result code, PostgreSQL's SQLSTATE),
read from the driver's exception that Django's wraps; a message is never parsed.
"""

from __future__ import annotations

import errno

from django.conf import settings
from django.db import InterfaceError, OperationalError

# SQLite's primary result codes (the low byte of an extended code) that mean the file, not the SQL.
_SQLITE = {
    5: "the database is locked by another writer",   # SQLITE_BUSY
    6: "a table is locked",                          # SQLITE_LOCKED
    7: "the database ran out of memory",             # SQLITE_NOMEM
    8: "the database is read-only",                  # SQLITE_READONLY
    10: "the disk failed to read or write",          # SQLITE_IOERR
    11: "the database file is damaged",              # SQLITE_CORRUPT
    13: "the disk is full",                          # SQLITE_FULL
    14: "the database file cannot be opened",        # SQLITE_CANTOPEN
    15: "the database's locking failed",             # SQLITE_PROTOCOL
}
# PostgreSQL's SQLSTATE classes and codes with the same meaning.
_SQLSTATE_PREFIXES = {
    "08": "the connection to the database was lost",
    "53": "the database ran out of resources (disk, memory or connections)",
    "57P": "the database server is shutting down or starting",
    "58": "the database server's disk failed",
}
_SQLSTATE = {
    "25006": "the database is read-only",
    "40001": "the database could not serialise the write",
    "40P01": "the database broke a deadlock",
    "55P03": "a row is locked by another writer",
}
_ERRNO = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EIO: "the disk failed to read or write",
    errno.EROFS: "the file system is read-only",
}


def _reason(exc: BaseException) -> tuple[bool, str | None]:
    """(whether `exc` carries a code, what it means if a storage fault)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return True, _SQLITE.get(code & 0xFF)
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(state, str):
        if state in _SQLSTATE:
            return True, _SQLSTATE[state]
        return True, next((words for prefix, words in _SQLSTATE_PREFIXES.items() if state.startswith(prefix)), None)
    if isinstance(exc, OSError) and exc.errno is not None:
        return True, _ERRNO.get(exc.errno)
    return False, None


def storage_reason(exc: BaseException) -> str | None:
    """Words for what failed in the storage, if `exc` is a storage fault; None if it is not one."""
    top, seen = exc, set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        coded, reason = _reason(exc)
        if coded:
            return reason
        exc = exc.__cause__  # Django raises its own error from the driver's
    if isinstance(top, (OperationalError, InterfaceError)):
        # No code anywhere: PostgreSQL's "server closed the connection unexpectedly", Django's
        # "connection already closed".
        return "the connection to the database was lost"
    return None


def is_storage_fault(exc: BaseException) -> bool:
    return storage_reason(exc) is not None


def describe(exc: BaseException) -> str:
    """One line for the log: what the storage said, in its words and ours."""
    return f"{storage_reason(exc) or 'not a storage fault'} ({type(exc).__name__}: {exc})"


class Backoff:
    """The waits between tries of one write: OPTSITE_STORAGE_RETRY_WAIT_MS at first, doubling up
    to MAX_WAIT, for at most OPTSITE_STORAGE_RETRY_SECONDS after the first failure."""

    MAX_WAIT = 5.0

    def __init__(self, now: float):
        self.deadline = now + settings.OPTSITE_STORAGE_RETRY_SECONDS
        self._wait = settings.OPTSITE_STORAGE_RETRY_WAIT_MS / 1000

    def next_wait(self, now: float) -> float | None:
        """Seconds to wait before the next try, or None: the time to try is up."""
        left = self.deadline - now
        if left <= 0:
            return None
        wait, self._wait = min(self._wait, left), min(self._wait * 2, self.MAX_WAIT)
        return wait
