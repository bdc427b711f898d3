"""This process as a worker: what the local pool's processes and Celery's share.

A Worker has a name (its lease holder), drives at most one run at a time with runs/driver.py,
and keeps one service thread while it does: it renews the run's lease every leases.RENEW_EVERY
seconds (a long step must not look like a dead worker) and takes the run's recorded controls
when nudged (`nudge()`, called by the mode's own channel: the pool's pipe, Redis for Celery) or
every CONTROL_POLL seconds in case a nudge went astray.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import connection

from runs import leases, storage_faults
from runs.driver import RETRY, RunDriver

log = logging.getLogger("runs.worker")

# Controls are recorded in the database and nudged; without a nudge they are still taken this often.
CONTROL_POLL = 0.5
# Celery: how many of the fairest queued runs a wake-up tries to claim before it gives up (others
# may take them first).
FAIR_CANDIDATES = 8


class Worker:
    def __init__(self, kind: str):
        self.holder = leases.holder_name(kind)
        self.driver: RunDriver | None = None
        self._wake = threading.Event()
        self._service: threading.Thread | None = None
        self._closing = False

    @property
    def run_id(self) -> int | None:
        driver = self.driver
        return None if driver is None else driver.run_id

    def drive(self, run_id: int, publish: Callable[[dict], None]) -> str | None:
        """Claim the run and drive it until it lets go; None if it was not to be had (already
        taken, stopped or deleted meanwhile: a duplicate or late delivery is harmless), RETRY if
        the storage refused the claim (the run is still queued: hand it out again later)."""
        try:
            try:
                claimed = leases.claim(run_id, self.holder)
            except Exception as exc:
                if not storage_faults.is_storage_fault(exc):
                    raise
                log.warning("worker %s: could not take run %s: %s; it stays queued", self.holder, run_id,
                            storage_faults.describe(exc))
                return RETRY
            if not claimed:
                return None
            driver = RunDriver(run_id=run_id, holder=self.holder, publish=publish)
            self.driver = driver
            self._ensure_service()
            if self._closing:
                driver.request("interrupt")
            return driver.drive()
        finally:
            self.driver = None
            connection.close()  # SQLite: a connection kept between runs keeps its locks

    def drive_fairest(self, run_id: int, publish: Callable[[dict], None]) -> tuple[str | None, int]:
        """A wake-up sent for `run_id` drives the queued run that is fairest to take now
        (runs/run_objects.py fair_queue): every queued run has a wake-up of its own waiting, so each
        is still taken once, and a big study's wake-ups ahead of another user's run do not make it wait.
        Returns what drive() did and the run it was for."""
        from runs.run_objects import fair_queue

        try:
            candidates = fair_queue()[:FAIR_CANDIDATES]
        except Exception as exc:
            if not storage_faults.is_storage_fault(exc):
                raise
            candidates = [run_id]
        for candidate in candidates or [run_id]:
            outcome = self.drive(candidate, publish)
            if outcome is not None:  # claimed (and driven), or the storage refused: as for one run
                return outcome, candidate
        return None, run_id

    def nudge(self, run_id: int | None = None) -> None:
        """Controls were recorded for `run_id` (or any run): take them now."""
        if run_id is None or run_id == self.run_id:
            self._wake.set()

    def interrupt(self) -> None:
        """The process is going away: the run it drives is written and let go as interrupted."""
        self._closing = True
        driver = self.driver
        if driver is not None:
            driver.request("interrupt")

    def _ensure_service(self) -> None:
        if self._service is None or not self._service.is_alive():
            self._service = threading.Thread(target=self._serve, name="optsite-worker-service", daemon=True)
            self._service.start()

    def _serve(self) -> None:
        renewed = time.monotonic()
        failing = None  # the storage fault being waited out, said once rather than every tick
        while True:
            self._wake.wait(CONTROL_POLL)
            self._wake.clear()
            driver = self.driver
            if driver is None:
                connection.close()
                continue
            try:
                driver.take_requests()
                if time.monotonic() - renewed >= leases.RENEW_EVERY:
                    if not leases.renew(driver.run_id, self.holder) and self.driver is driver:
                        driver.request("lost")
                    renewed = time.monotonic()
                if failing is not None:
                    log.info("worker %s: the database answers again", self.holder)
                    failing = None
            except Exception as exc:  # the database is away for a moment: the next tick tries again
                reason = storage_faults.storage_reason(exc)
                if reason is None:
                    log.warning("worker %s: service tick failed", self.holder, exc_info=True)
                elif reason != failing:
                    log.warning("worker %s: cannot renew its lease or read controls: %s", self.holder,
                                storage_faults.describe(exc))
                failing = reason
                connection.close()
