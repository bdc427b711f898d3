"""Exports and large-run data: the full JSON export of a run, the comparison summary (and its CSV),
and the server-side downsampled series that plots of large runs draw.

Endpoints (all owner-only; someone else's run answers 404):
- GET /runs/<id>/export.json               the Run, its result and every stored step, complete
                                           (bulky fields included), streamed
- GET /runs/compare/summary.csv?ids=3,4    one row per compared run (see SUMMARY_COLUMNS)
- GET /api/runs/<id>/series/?points=N[&from=SEQ][&to=SEQ][&x=all|none|0,1]
      columns seq/nit/nfev/njev/elapsed/fun/phase (+ x) of at most N steps, keeping every bucket's
      first/last/min/max fun (runs/downsample.py); from/to narrow to a seq window (zooming).
"""

from __future__ import annotations

import csv
import io
import json
import math
from functools import lru_cache

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from django.http import Http404, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from runs import downsample, query
from runs.models import Run, Step
from runs.optim import finite_number
from runs.optim.echo import shown

EXPORT_CHUNK = 2000  # steps per database round trip and per streamed piece
DEFAULT_POINTS = 1000
MAX_X_DIMS = 10_000  # components one series may name (?x=0,1,...)
SERIES_CACHE_SECONDS = 600


# -- shared helpers -----------------------------------------------------------------------------
def owned_run(request, run_id) -> Run:
    """The user's run `run_id`, or 404 (never reveal that someone else's run exists)."""
    from runs.services import get_run_for

    run = get_run_for(request.user, run_id)
    if run is None:
        raise Http404(f"There is no run {shown(run_id)} of yours.")
    return run


@lru_cache(maxsize=512)
def _known_minimum(problem: str, params_json: str, dim: int | None):
    try:
        from runs.optim import get_problem

        return get_problem(problem).known_minimum(json.loads(params_json), dim)
    except Exception:  # unknown problem (renamed/removed) or bad stored params: f* is unknown
        return None


def known_minimum(run: Run) -> dict | None:
    """{"x": x*, "f": f*} for the run's problem, coefficients and dimension, or None."""
    spec = run.spec or {}
    if spec.get("definition"):  # a user's own problem: as the run ran it
        from runs.user_problems import known_minimum_of_spec

        return known_minimum_of_spec(spec)
    params = json.dumps(spec.get("params") or {}, sort_keys=True)
    return _known_minimum(run.problem, params, spec.get("dim"))


def problem_text(run: Run) -> str:
    """'rosenbrock(a=1, b=100), 2-D' — the problem with its coefficients and dimension."""
    spec = run.spec or {}
    params = spec.get("params") or {}
    coeffs = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
    dim = spec.get("dim")
    text = f"{run.problem}({coeffs})" if coeffs else run.problem
    return f"{text}, {dim}-D" if dim else text


def _short(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def run_dict(run: Run) -> dict:
    """The PROTOCOL Run object, as B's services serialise it everywhere else."""
    from runs.services import run_to_dict

    return run_to_dict(run)


# -- summary (compare page and its CSV) ---------------------------------------------------------
SUMMARY_COLUMNS = [
    # key, heading, lower-is-better (None: not ranked)
    ("id", "run", None),
    ("label", "label", None),
    ("method", "method", None),
    ("problem", "problem", None),
    ("fun", "final f", True),
    ("gap", "f - f*", True),
    ("dist", "distance to x*", True),
    ("nit", "iterations", True),
    ("nfev", "evaluations", True),
    ("njev", "gradient evaluations", True),
    ("elapsed", "wall time (s)", True),
    ("status", "status", None),
    ("reason", "termination reason", None),
]
RANKED = [k for k, _, lower in SUMMARY_COLUMNS if lower]


def last_step(run: Run) -> dict | None:
    data = Step.objects.filter(run=run).order_by("-seq").values_list("data", flat=True).first()
    return json.loads(data) if data else None


def termination_reason(run: Run) -> str:
    result = run.result or {}
    if run.status == Run.Status.FAILED:
        return run.error or "failed"
    if run.status == Run.Status.STOPPED:
        return result.get("reason") or result.get("message") or "stopped by the user"
    if run.status == Run.Status.INTERRUPTED:
        return "interrupted (the server went away); it can be resumed"
    if run.is_active:
        return f"still {run.status}"
    return result.get("reason") or result.get("message") or ""


def run_summary(run: Run) -> dict:
    """Final figures of a run (the result when there is one, else its latest stored step)."""
    result = run.result or {}
    step = None if result.get("x") is not None else last_step(run)
    x = result.get("x") if result.get("x") is not None else (step or {}).get("x")
    fun = finite_number(result.get("fun")) if "fun" in result else finite_number(run.best_fun)
    if fun is None and step:
        fun = finite_number(step.get("fun"))
    known = known_minimum(run)
    gap = dist = None
    if known is not None:
        if fun is not None:
            gap = fun - known["f"]
        if x is not None and len(x) == len(known["x"]) and all(v is not None for v in x):
            dist = math.sqrt(sum((a - b) ** 2 for a, b in zip(x, known["x"])))
    njev = result.get("njev")
    if njev is None:
        step = step or last_step(run)
        njev = (step or {}).get("njev", 0)
    return {
        "id": run.pk, "label": run.label, "method": run.method, "problem": problem_text(run),
        "fun": fun, "gap": gap, "dist": dist,
        "nit": result.get("nit", run.nit), "nfev": result.get("nfev", run.nfev), "njev": njev,
        "elapsed": run.elapsed, "status": run.status, "reason": termination_reason(run),
        "f_star": None if known is None else known["f"],
        "x_star": None if known is None else known["x"], "x": x,
    }


# -- views --------------------------------------------------------------------------------------
def _step_chunks(run_id: int):
    """Yield lists of complete step texts (the bulky fields decoded into `extra`) in seq order,
    EXPORT_CHUNK at a time."""
    from runs.stored_steps import step_texts

    chunk = []
    for _, text in step_texts(run_id=run_id, chunk=EXPORT_CHUNK, bulky=True):
        chunk.append(text)
        if len(chunk) >= EXPORT_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _export_head(run: Run) -> bytes:
    head = {
        "format": "optsite-run-export",
        "version": 1,
        "exported": timezone.now().isoformat(),
        "run": run_dict(run),
        "result": run.result,
        "summary": {k: v for k, v in run_summary(run).items() if k not in ("x",)},
    }
    # Steps go last: light texts as stored, those with bulky fields re-encoded with them.
    return json.dumps(_clean(head), allow_nan=False)[:-1].encode() + b', "steps": ['


def _clean(v):
    """Non-finite floats anywhere in stored JSON fields become None (valid JSON, PROTOCOL rule)."""
    if isinstance(v, float):
        return finite_number(v)
    if isinstance(v, dict):
        return {k: _clean(i) for k, i in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(i) for i in v]
    return v


def _pieces(first: bool, datas: list[str]) -> bytes:
    body = ",\n".join(datas)
    return (("\n" if first else ",\n") + body).encode()


@require_GET
def export_json(request, run_id: int):
    """Every stored step of the run plus the run and its result, streamed in chunks."""
    run = owned_run(request, run_id)
    filename = f"optsite-run-{run.pk}.json"
    head = _export_head(run)

    if isinstance(request, ASGIRequest):
        # Under daphne an async iterator streams for real (a sync one would be buffered whole).
        async def body():
            yield head
            first = True
            chunks = _step_chunks(run.pk)
            while True:
                datas = await sync_to_async(next, thread_sensitive=True)(chunks, None)
                if datas is None:
                    break
                yield _pieces(first, datas)
                first = False
            yield b"\n]}\n"

        content = body()
    else:
        def body_sync():
            yield head
            for i, datas in enumerate(_step_chunks(run.pk)):
                yield _pieces(i == 0, datas)
            yield b"\n]}\n"

        content = body_sync()
    response = StreamingHttpResponse(content, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Steps"] = str(run.n_steps)
    return response


@query.json_get
def series(request, run_id: int):
    """Columns of at most `points` steps, min/max-preserving, for the plots of (large) runs."""
    run = owned_run(request, run_id)
    # a points value out of range is clamped (however long); from/to are seq numbers
    points = downsample.clamp_points(query.integer(request, "points", DEFAULT_POINTS, cap=True))
    lo = query.integer(request, "from")
    hi = query.integer(request, "to")
    x_param = request.GET.get("x", "all").strip().lower()
    if x_param in ("all", "none"):
        x_dims = x_param
    else:
        parts = [i for i in x_param.split(",") if i.strip() != ""]
        if len(parts) > MAX_X_DIMS:
            raise query.BadQuery({"x": [f"At most {MAX_X_DIMS:,} components (got {len(parts):,})."]})
        try:
            x_dims = sorted({query.whole("x", i, lo=0, hi=MAX_X_DIMS) for i in parts})
        except query.BadQuery:
            raise query.BadQuery({"x": ["Must be all, none or a list of component numbers like 0,1 "
                                        f"(each from 0 to {MAX_X_DIMS:,})."]}) from None

    # An ended run never changes: its answers are cached (the replay page asks again on every
    # axis change). The key holds everything the answer depends on.
    key = None
    if not run.is_active:
        xs = x_dims if isinstance(x_dims, str) else "-".join(map(str, x_dims))
        key = f"optsite:series:{run.pk}:{run.created.timestamp()}:{run.n_steps}:{run.status}:{points}:{lo}:{hi}:{xs}"
        cached = cache.get(key)
        if cached is not None:
            return HttpResponse(cached, content_type="application/json")
    # Pass 1: only seq and fun of the window, with a plain cursor (half the ORM's cost at 100k rows).
    sql = f"SELECT seq, fun FROM {Step._meta.db_table} WHERE run_id = %s"
    args = [run.pk]
    if lo is not None:
        sql += " AND seq >= %s"
        args.append(lo)
    if hi is not None:
        sql += " AND seq <= %s"
        args.append(hi)
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY seq", args)
        scan = cursor.fetchall()
    keep = downsample.keep_indices([f for _, f in scan], points) if scan else []
    seqs = [scan[i][0] for i in keep]
    # Pass 2: the kept rows' scalar columns, and x parsed from the stored JSON only for them.
    fields = ["seq", "nit", "nfev", "njev", "elapsed", "fun", "phase"]
    if x_dims != "none":
        fields.append("data")
    rows = {}
    for start in range(0, len(seqs), 5000):  # stay under SQLite's bound-parameter limit
        for row in Step.objects.filter(run=run, seq__in=seqs[start:start + 5000]).values_list(*fields):
            rows[row[0]] = row
    ordered = [rows[s] for s in seqs if s in rows]
    out = {
        "run_id": run.pk,
        "status": run.status,
        "n_steps": len(scan) if lo is None and hi is None else run.n_steps,
        "window": {"from": scan[0][0] if scan else lo, "to": scan[-1][0] if scan else hi, "count": len(scan)},
        "points": points,
        "downsampled": len(ordered) < len(scan),
        "count": len(ordered),
    }
    for i, name in enumerate(fields[:7]):
        col = [r[i] for r in ordered]
        out[name] = [finite_number(v) for v in col] if name in ("fun", "elapsed") else col
    if x_dims != "none":
        xs = []
        for r in ordered:
            x = json.loads(r[7]).get("x") or []
            xs.append(x if x_dims == "all" else [x[i] if i < len(x) else None for i in x_dims])
        out["x"] = xs
        out["x_dims"] = x_dims
    finite_scan = [(f, s) for s, f in scan if f is not None and math.isfinite(f)]
    out["best"] = None if not finite_scan else dict(zip(("fun", "seq"), min(finite_scan)))
    payload = json.dumps(out, separators=(",", ":"), allow_nan=False)
    if key is not None:
        cache.set(key, payload, SERIES_CACHE_SECONDS)
    return HttpResponse(payload, content_type="application/json")


def summary_csv_response(runs: list[Run]) -> HttpResponse:
    """One row per run; "best in" names the columns it is best in among the runs each column can
    compare, "not ranked" says for the others why not (runs/comparison.py)."""
    from runs.comparison import rank

    buf = io.StringIO()
    writer = csv.writer(buf)
    keys = [k for k, _, _ in SUMMARY_COLUMNS]
    writer.writerow([h for _, h, _ in SUMMARY_COLUMNS] + ["f*", "best in", "not ranked"])
    summaries = [run_summary(r) for r in runs]
    ranking = rank(runs, summaries)
    for s in summaries:
        marks = [k for k in RANKED if s["id"] in ranking.best.get(k, ())]
        why = [f"{k}: {note}" for k in RANKED
               if (note := ranking.cell_notes.get((k, s["id"])) or ranking.column_notes.get(k))]
        writer.writerow(
            [csv_value(s[k]) for k in keys] + [csv_value(s["f_star"]), " ".join(marks), "; ".join(why)]
        )
    response = HttpResponse(buf.getvalue(), content_type="text/csv; charset=utf-8")
    name = "-".join(str(r.pk) for r in runs)
    response["Content-Disposition"] = f'attachment; filename="optsite-compare-{name}.csv"'
    return response


def csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)  # full precision, round-trips
    return v


@require_GET
def summary_csv(request):
    from runs.history import parse_compare_ids, CompareIdsError

    try:
        ids = parse_compare_ids(request)
    except CompareIdsError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    runs = {r.pk: r for r in Run.objects.filter(owner=request.user, pk__in=ids)}
    if len(runs) != len(ids):
        raise Http404("No such run")
    return summary_csv_response([runs[i] for i in ids])
