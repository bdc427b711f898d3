"""How a queued run reaches a worker, and how a control reaches the worker that holds it.

Two modes, one driver (runs/driver.py via runs/worker.py):
- the local pool (default): worker processes this process starts itself (runs/pool.py); a run
  is handed to a free one, a control is a message on its socket;
- Celery (REDIS_URL set): a run is a task on the queue "runs" (runs/tasks.py), taken by any
  `celery -A optsite worker -Q runs` on any machine; a control is a Redis message that the
  worker holding the run listens for.
An external run (runs/external_runs.py) has no worker: a control reaches the socket that holds it
through the channel layer. Either way the database says what is true (the run's status, its lease,
its recorded controls): what travels here only says "look now".
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

from django.conf import settings

log = logging.getLogger("runs.dispatch")

_pool = None
_pool_lock = threading.Lock()
_redis = None


def uses_celery() -> bool:
    return bool(settings.REDIS_URL)


def worker_count() -> int:
    return settings.OPTSITE_WORKERS or os.cpu_count() or 1


def local_pool():
    """This process's pool, started on first use (the server starts it at once)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            from runs.pool import LocalPool

            _pool = LocalPool(worker_count())
            _pool.start()
            atexit.register(close_pool)
        return _pool


def close_pool(timeout: float | None = None) -> None:
    """Let every run of the pool go as interrupted and end its processes (server shutdown)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close(timeout)


def start() -> None:
    """A server process starting: its workers get ready before the first run comes."""
    if not uses_celery():
        local_pool()


def enqueue(run_id: int) -> None:
    """The run was queued (call after the commit): a free worker will take it, in queue order."""
    if uses_celery():
        from runs.tasks import queue_run

        queue_run(run_id)
    else:
        local_pool().enqueue(run_id)


def external_group(run_id: int) -> str:
    """The channel-layer group of the socket that holds an external run (runs/external_socket.py)."""
    return f"external-{run_id}"


def nudge(run_id: int, *, external: bool = False) -> None:
    """Controls were recorded for the run (after the commit): its worker takes them now; for an
    external run, the socket that holds it (any server process: the channel layer) tells its client."""
    global _redis
    if external:
        from runs.publishing import publish

        try:
            publish(external_group(run_id), {"type": "external.look", "run_id": run_id})
        except Exception:  # the socket still finds the control at its next look, within RENEW_EVERY
            log.warning("could not nudge the socket of external run %s", run_id, exc_info=True)
        return
    if uses_celery():
        try:
            import redis

            from runs.tasks import CONTROL_CHANNEL

            if _redis is None:
                _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
            _redis.publish(CONTROL_CHANNEL, str(run_id))
        except Exception:  # the worker still finds the control at its next poll
            log.warning("could not nudge the worker of run %s", run_id, exc_info=True)
    elif _pool is not None:
        _pool.nudge(run_id)


def adopt_queued() -> None:
    """Local pool: runs a previous server left queued are this server's to run (in queue order)."""
    if uses_celery():
        return  # their tasks wait in the broker
    from runs.run_objects import queued_runs

    pool = local_pool()
    for run_id in queued_runs().values_list("pk", flat=True):
        pool.enqueue(run_id)
