"""Writing a batch of a run's steps: the one code path that stores steps and publishes them.

Two callers: the driver (runs/driver.py: a worker stepping a hosted run) and the external socket
(runs/external_runs.py: steps computed in the owner's own process and sent in). Either way a
batch is written by the run's lease holder in ONE transaction: the step rows, the run's counters
after them (n_steps, nit, nfev, elapsed, best_fun), whatever the caller adds (checkpoint, status),
the lease renewal and a study run's trace; and only after the commit is it published (persist,
then publish: anything a watcher has seen is on disk). Trying a write again after a storage fault
is the caller's business (the driver does, runs/driver.py).

A step is buffered as (Step, its light JSON text, its bulky arrays' blob or None): `encoded()`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from django.db import connection

from runs import leases
from runs.encoding import dumps
from runs.models import RunTrace, Step
from runs.optim import finite_number
from runs.publishing import step_events


@functools.cache
def _insert_steps_sql() -> str:
    # The ORM's bulk_create costs ~65 us a row in model instances and their conversion, twice a
    # cheap L-BFGS-B iteration; the rows are plain values already.
    meta, quote = Step._meta, connection.ops.quote_name
    columns = [meta.get_field(name).column for name in
               ("run", "seq", "nit", "phase", "fun", "nfev", "njev", "elapsed", "data", "bulk")]
    return (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})")


def encoded(step, bulk) -> tuple:
    """A step as a batch holds it: (Step, light JSON text, blob of its bulky arrays or None).
    `bulk` is the run's runs.optim.BulkEncoder of this writer (a fresh one per drive or socket:
    its first blob is a keyframe, referring to no step another process wrote)."""
    return step, dumps(step.to_dict()), bulk.encode(step.seq, step.bulky)


class Batch:
    """Buffered steps of one run made ready to store: their rows, and the run's counters after
    them (`fields`; empty for no steps). `best` is the run's best f before them; `trace` a study
    run's best-so-far (runs/study_trace.py), folded in here."""

    __slots__ = ("run_id", "steps", "fields", "best", "rows", "trace_text")

    def __init__(self, run_id: int, steps: list, best: float | None, trace=None):
        self.run_id, self.steps = run_id, steps
        self.fields: dict = {}
        self.rows: list = []
        self.trace_text = None
        if steps:
            for step, _, _ in steps:
                fun = step.fun
                if fun is not None and math.isfinite(fun) and (best is None or fun < best):
                    best = fun
            last = steps[-1][0]
            self.fields = dict(n_steps=last.seq + 1, nit=last.nit, nfev=last.nfev, elapsed=last.elapsed, best_fun=best)
            self.rows = [(run_id, s.seq, s.nit, s.phase, finite_number(s.fun), s.nfev, s.njev, s.elapsed, text, blob)
                         for s, text, blob in steps]
            if trace is not None:
                for step, _, _ in steps:
                    trace.fold_step(step)
                self.trace_text = trace.to_json()
        self.best = best

    def store(self, holder: str, **fields) -> None:
        """Write the batch as `holder` (inside the caller's transaction): the run's row first,
        with the counters, `fields` and the lease renewal (LeaseLost if it is not held: then
        nothing of the batch is stored), then the steps and the trace."""
        leases.write(self.run_id, holder, **{**fields, **self.fields})
        if self.rows:
            with connection.cursor() as cursor:
                cursor.executemany(_insert_steps_sql(), self.rows)
            if self.trace_text is not None:
                # one UPDATE: the row is made with the study (update_or_create would lock and read it first)
                if not RunTrace.objects.filter(run_id=self.run_id).update(data=self.trace_text):
                    RunTrace.objects.create(run_id=self.run_id, data=self.trace_text)

    def publish(self, publish: Callable[[dict], None], committed: float) -> None:
        """After the commit: the steps as "run.steps" events (one socket message each, its newest
        step with the bulky fields), `committed` the commit's Unix time."""
        steps = self.steps
        if not steps:
            return

        def full_of(i):  # the light text, with the bulky fields: only for each message's newest step
            step = steps[i][0]
            return dumps(step.to_full_dict()) if step.bulky else steps[i][1]

        texts = [text for _, text, _ in steps]
        for event in step_events(self.run_id, steps[0][0].seq, texts, committed, full_of):
            publish(event)
