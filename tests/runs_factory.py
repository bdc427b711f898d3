"""Run/Step rows for the history, compare and export tests.

`real_run` drives the real solver core (runs.optim) so stored steps are exactly what a run
stores (`store` takes complete step dicts and stores them split, as the driver does); `synthetic_run` writes a cheap made-up series of any length (the 100,000-step fixture).
Both write rows directly: these tests exercise reading, not the executor.
"""

from __future__ import annotations

import json
import math

from django.utils import timezone

from runs.models import Run, Step


def spec_for(method: str = "lbfgsb", problem: str = "rosenbrock", **kw) -> dict:
    spec = {"method": method, "problem": problem, "dim": kw.pop("dim", 2)}
    if method == "de":
        spec["bounds"] = kw.pop("bounds", [[-4, 4]] * spec["dim"])
        spec["options"] = {"maxiter": 30, "seed": 1, "popsize": 8, **kw.pop("options", {})}
    else:
        spec["x0"] = kw.pop("x0", [-1.2, 1.0] + [0.5] * (spec["dim"] - 2))
        spec["options"] = {"maxiter": 200, **kw.pop("options", {})}
    spec.update(kw)
    return spec


def real_run(owner, spec: dict, *, label: str = "", status: str = "finished", keep: int | None = None) -> Run:
    """Run the real stepper on `spec` and store every step (or the first `keep`, for a run still going)."""
    from runs.optim import make_stepper, validate_spec

    s = validate_spec(spec)
    stepper = make_stepper(s)
    rows = []
    for step in stepper:
        rows.append(step.to_full_dict())
        if keep is not None and len(rows) >= keep:
            break
    result = stepper.result.to_dict() if keep is None else None
    return store(owner, s.to_dict(), rows, result=result, label=label, status=status)


def synthetic_run(owner, n: int, *, method: str = "lbfgsb", problem: str = "rosenbrock", label: str = "",
                  status: str = "finished", batch: int = 5000, spike_at: int | None = None) -> Run:
    """A long L-BFGS-B- or DE-like series (f decays towards 0 with small ripples, x walks to (1, 1))."""
    from runs.optim import Limits, validate_spec

    spec = spec_for(method, problem)
    spec["options"]["maxiter"] = n
    # Normalised like a real run's spec (the site's maxiter cap is lifted for this long fixture).
    spec = validate_spec(spec, Limits(max_maxiter=max(n, 20_000))).to_dict()
    run = Run.objects.create(owner=owner, label=label, method=method, problem=problem, spec=spec,
                             status=status, started=timezone.now())
    per_it = 16 if method == "de" else 1

    def make(i):
        t = i / max(1, n - 1)
        fun = 24.2 * math.exp(-12 * t) * (1 + 0.05 * math.sin(i / 7)) + 1e-12
        if spike_at is not None and i == spike_at:
            fun = 1e6
        x = [1 - 2.2 * math.exp(-6 * t) * math.cos(i / 50), 1 - 0.5 * math.exp(-6 * t) * math.sin(i / 50)]
        d = {"seq": i, "nit": i, "x": x, "fun": fun, "nfev": per_it * i + 1, "njev": 0 if method == "de" else i + 1,
             "jac": None if method == "de" else [2e-3 * fun, -1e-3 * fun], "elapsed": 1e-4 * i,
             "phase": "init" if i == 0 else "iterate",
             "extra": {"convergence": t} if method == "de" else {"pgnorm": fun * 0.1, "step_length": 1.0}}
        return d

    buf = []
    best = math.inf
    for i in range(n):
        d = make(i)
        best = min(best, d["fun"])
        buf.append(_step_row(run, d))
        if len(buf) >= batch:
            Step.objects.bulk_create(buf)
            buf = []
    if buf:
        Step.objects.bulk_create(buf)
    last = make(n - 1)
    result = {"x": last["x"], "fun": last["fun"], "nit": last["nit"], "nfev": last["nfev"], "njev": last["njev"],
              "success": True, "status": 0, "message": "synthetic", "jac": last["jac"],
              "reason": "converged (synthetic series)", "stopped": False}
    Run.objects.filter(pk=run.pk).update(
        n_steps=n, best_fun=best,
        nit=last["nit"], nfev=last["nfev"], elapsed=last["elapsed"],
        result=result if status == "finished" else None,
        finished=timezone.now() if status == "finished" else None,
    )
    run.refresh_from_db()
    return run


def _step_row(run, d: dict, bulk: bytes | None = None) -> Step:
    return Step(run=run, seq=d["seq"], nit=d["nit"], phase=d["phase"], fun=d["fun"], nfev=d["nfev"],
                njev=d["njev"], elapsed=d["elapsed"], data=json.dumps(d, allow_nan=False), bulk=bulk)


def store(owner, spec: dict, steps: list[dict], *, result: dict | None, label: str = "", status: str = "finished") -> Run:
    funs = [s["fun"] for s in steps if s["fun"] is not None]
    last = steps[-1] if steps else None
    run = Run.objects.create(
        owner=owner, label=label, method=spec["method"], problem=spec["problem"], spec=spec, status=status,
        started=timezone.now(), finished=timezone.now() if status not in Run.ACTIVE else None,
        n_steps=len(steps), result=result, best_fun=min(funs) if funs else None,
        nit=last["nit"] if last else 0, nfev=last["nfev"] if last else 0, elapsed=last["elapsed"] if last else 0.0,
    )
    # As the driver stores them: the light step as text, its bulky fields as blobs.
    from runs.optim import BulkEncoder
    from runs.stored_steps import split_step

    encoder, rows = BulkEncoder(), []
    for d in steps:
        light, bulky = split_step(d)
        rows.append(_step_row(run, light, encoder.encode(d["seq"], bulky)))
    Step.objects.bulk_create(rows, batch_size=2000)
    return run
