"""JSON API and the steps CSV: thin function views over runs.services, owner's runs only.

Unauthenticated requests to /api/ get 401 JSON (a script should not be redirected to an HTML
login page); /runs/<id>/steps.csv is a browser download and keeps the login redirect.
Bad query parameters answer 400 {"error": words, "errors": {param: [words]}} (runs/query.py reads
them); a method other than GET answers 405 in JSON.
"""

from __future__ import annotations

import csv
import io
import json
import math
from functools import wraps

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_not_required
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from runs import query, services
from runs.models import Step
from runs.optim.echo import shown
from runs.query import BadQuery as BadRequest
from runs.tokens import NEEDS_LOGIN

DEFAULT_STEPS_LIMIT = 1000  # one page of /api/runs/<id>/steps/ without `limit`
MAX_STEPS_LIMIT = 10_000  # the largest page; a larger `limit` is capped to it
CHUNK = 2000  # steps per database round trip and per streamed piece
GRID_DEFAULT_N, GRID_MAX_N = 80, 200
LINE_MAX_N = 2000  # points of a 1-D line: n evaluations, not n²


_json = query.json_response


def api(view):
    """GET only (405 JSON), 401 JSON without a login, 400 JSON for a BadRequest, 404 JSON for a
    missing run."""

    @login_not_required
    @query.json_get
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return _json({"error": NEEDS_LOGIN}, 401)
        try:
            return view(request, *args, **kwargs)
        except Http404 as exc:
            return _json({"error": str(exc) or "Not found."}, 404)

    return wrapper


def _owned(request, run_id):
    run = services.get_run_for(request.user, run_id)
    if run is None:
        raise Http404(f"There is no run {shown(run_id)} of yours.")
    return run


def _stream(request, chunks, content_type: str, **kwargs) -> StreamingHttpResponse:
    """Stream `chunks` (a sync generator that reads the database) without loading it whole."""
    if isinstance(request, ASGIRequest):
        # Under daphne only an async iterator streams; a sync one would be read into memory first.
        async def body():
            pull = sync_to_async(next, thread_sensitive=True)
            while (part := await pull(chunks, None)) is not None:
                yield part

        return StreamingHttpResponse(body(), content_type=content_type, **kwargs)
    return StreamingHttpResponse(chunks, content_type=content_type, **kwargs)


def _int(request, name: str, default, *, lo: int, hi: int = query.MAX_INT, cap: bool = False) -> int | None:
    return query.integer(request, name, default, lo=lo, hi=hi, cap=cap)


# ---- catalogues ---------------------------------------------------------------------------
@api
def methods(request):
    from runs.optim import method_catalogue

    return _json(method_catalogue())


# ---- runs ---------------------------------------------------------------------------------
@api
def run_list(request):
    runs = services.runs_for(request.user)
    limit = _int(request, "limit", None, lo=1, cap=True)
    if limit is not None:
        runs = runs[:limit]
    return _json([services.run_to_dict(run) for run in runs])


@api
def run_detail(request, run_id: int):
    return _json(services.run_to_dict(_owned(request, run_id)))


def _flag(request, name: str) -> bool:
    raw = request.GET.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise BadRequest({name: [f"Expected 1 or 0, got {shown(request.GET[name])}."]})


@api
def run_steps(request, run_id: int):
    """One page: {"run_id", "steps": [...], "more"} of the steps with seq > after, at most
    `limit` of them (default 1000, at most 10000); light steps, or complete with bulky=1."""
    run = _owned(request, run_id)
    after = _int(request, "after", -1, lo=-1)
    limit = _int(request, "limit", DEFAULT_STEPS_LIMIT, lo=1, hi=MAX_STEPS_LIMIT, cap=True)
    bulky = _flag(request, "bulky")

    def chunks():
        yield f'{{"run_id":{run.pk},"steps":['
        first = True
        buffer = []
        # one step beyond the page tells whether there are more
        for n, (_, text) in enumerate(services.step_texts(run_id=run.pk, after=after, limit=limit + 1,
                                                          chunk=CHUNK, bulky=bulky)):
            if n == limit:
                break
            buffer.append(text)
            if len(buffer) >= CHUNK:
                yield ("" if first else ",") + ",".join(buffer)
                first, buffer = False, []
        else:
            n = -1
        if buffer:
            yield ("" if first else ",") + ",".join(buffer)
        yield f'],"more":{"true" if n == limit else "false"}}}'

    return _stream(request, chunks(), "application/json")


def _one_step(run, seq: int | None) -> HttpResponse:
    found = None if seq is not None and seq > query.MAX_INT else services.step_text(run_id=run.pk, seq=seq)
    if found is None:
        if seq is None:
            raise Http404(f"Run {run.pk} has no steps yet.")
        raise Http404(f"Run {run.pk} has no step {shown(seq)} (yet): it has {run.n_steps} "
                      f"step{'' if run.n_steps == 1 else 's'}, seq 0 to {run.n_steps - 1}." if run.n_steps
                      else f"Run {run.pk} has no step {seq}: it has no steps yet.")
    return HttpResponse(f'{{"run_id":{run.pk},"step":{found[1]}}}', content_type="application/json")


@api
def run_step(request, run_id: int, seq: int):
    """{"run_id", "step"}: one step, complete (its bulky fields in `extra`)."""
    return _one_step(_owned(request, run_id), seq)


@api
def run_step_latest(request, run_id: int):
    """{"run_id", "step"}: the run's newest stored step, complete."""
    return _one_step(_owned(request, run_id), None)


# ---- CSV ----------------------------------------------------------------------------------
def _scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return value


def csv_extra_keys(run_id: int) -> list[str]:
    """The scalar extras of the run's steps, from the first step of each phase and the last step.

    Extras are fixed per method and phase, so this reads a handful of steps, not all of them.
    (order_by() drops Step's default ordering, which would make DISTINCT run over (phase, seq).)
    """
    seqs = set()
    for phase in Step.objects.filter(run_id=run_id).order_by().values_list("phase", flat=True).distinct():
        seqs.add(Step.objects.filter(run_id=run_id, phase=phase).order_by("seq").values_list("seq", flat=True)[0])
    last = Step.objects.filter(run_id=run_id).order_by("-seq").values_list("seq", flat=True).first()
    if last is not None:
        seqs.add(last)
    keys: list[str] = []
    for data in Step.objects.filter(run_id=run_id, seq__in=seqs).order_by("seq").values_list("data", flat=True):
        for key, value in (json.loads(data).get("extra") or {}).items():
            if _scalar(value) and key not in keys:
                keys.append(key)
    return keys


@require_GET  # a page-like download: without a session, LoginRequiredMiddleware redirects to login
def steps_csv(request, run_id: int):
    run = services.get_run_for(request.user, run_id)
    if run is None:
        raise Http404(f"There is no run {shown(run_id)} of yours.")
    dim = int(run.spec.get("dim") or 0)
    extras = csv_extra_keys(run.pk)
    header = ["seq", "nit", "phase", "fun", "nfev", "njev", "elapsed",
              *(f"x_{i}" for i in range(dim)), *(f"jac_{i}" for i in range(dim)),
              *(f"extra_{k}" for k in extras)]

    def chunks():
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        blank = [""] * dim
        rows = 0
        for _, text in services.step_texts(run_id=run.pk, chunk=CHUNK):
            s = json.loads(text)
            extra = s.get("extra") or {}
            jac = s.get("jac")
            writer.writerow([
                s["seq"], s["nit"], s["phase"], _cell(s["fun"]), s["nfev"], s["njev"], _cell(s["elapsed"]),
                *(_cell(v) for v in s["x"]), *((_cell(v) for v in jac) if jac is not None else blank),
                *(_cell(extra.get(k)) if _scalar(extra.get(k)) else "" for k in extras),
            ])
            rows += 1
            if rows % CHUNK == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    response = _stream(request, chunks(), "text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-steps.csv"'
    return response


# ---- the contour grid ---------------------------------------------------------------------
_json_param = query.json_value


def _finite_number(value) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _limits(request, name: str, default: list[float]) -> tuple[float, float]:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return float(default[0]), float(default[1])
    parts = raw.split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise BadRequest({name: ["Expected two numbers \"lo,hi\"."]}) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise BadRequest({name: ["Expected finite numbers with lo < hi."]})
    return lo, hi


@api
def problem_grid(request, name: str):
    """Objective values on an n x n grid over coordinates ix, iy (others fixed at `at`).

    {"x": [n], "y": [n], "z": [[n] * n]} with z[j][i] = f at (x[i], y[j]) (Plotly's contour
    layout); non-finite values are null. A constrained problem adds "infeasibility" (signed, <= 0
    where feasible) and, if it has equality constraints, "equalities": [[[n] * n]], h of each. For dim 1: {"problem", "dim": 1, "ix": 0, "x": [n],
    "z": [n]}, f along x[0] (no "y").
    """
    import numpy as np

    from runs.optim.problems import ALL_PROBLEMS

    from runs.optim.spec import SpecError, validate_params

    problem = ALL_PROBLEMS.get(name)
    own = None
    if problem is None:  # one of the user's: as a run of theirs ran it (?run=<id>), else as it is now
        from runs.user_problems import expression_problem_for

        problem, own = expression_problem_for(request.user, name, request.GET.get("run"))
    if problem is None:
        raise Http404(f"There is no problem {shown(name)}; see /api/problems/.")
    errors: dict[str, list[str]] = {}
    try:  # the run spec's own check of coefficients
        params = validate_params(name, _json_param(request, "params", dict, {}), own)
    except SpecError as exc:
        errors.update(exc.errors)
        params = problem.defaults()
    max_dim = min(problem.max_dim or 10**9, services.limits().max_dim)
    dim = _int(request, "dim", problem.default_dim, lo=problem.min_dim, hi=max_dim)
    if own is not None:
        problem = problem.at(dim)  # compiled for this dimension
    if dim == 1:
        return _line(request, name, problem, params, errors)
    ix = _int(request, "ix", 0, lo=0, hi=max(dim - 1, 0))
    iy = _int(request, "iy", 1 if dim > 1 else 0, lo=0, hi=max(dim - 1, 0))
    if ix == iy:
        errors["iy"] = ["ix and iy must be two different coordinates."]
    n = _int(request, "n", GRID_DEFAULT_N, lo=2, hi=GRID_MAX_N)
    if errors:
        raise BadRequest(errors)
    bounds = problem.default_bounds(dim)
    xlim = _limits(request, "xlim", bounds[ix])
    ylim = _limits(request, "ylim", bounds[iy])
    minimum = problem.known_minimum(params, dim) if dim <= 1000 else None
    centre = minimum["x"] if minimum else [(lo + hi) / 2 for lo, hi in bounds]
    at = _json_param(request, "at", list, centre)
    if len(at) != dim or not all(_finite_number(v) for v in at):
        raise BadRequest({"at": [f"Expected a list of {dim} finite numbers."]})
    f = problem.objective(params)
    xs, ys = np.linspace(*xlim, n), np.linspace(*ylim, n)
    point = np.array(at, dtype=float)
    z = np.empty((n, n))
    with np.errstate(all="ignore"):
        for j, y in enumerate(ys):
            point[iy] = y
            for i, x in enumerate(xs):
                point[ix] = x
                z[j, i] = f(point)
    out = {"problem": name, "dim": dim, "ix": ix, "iy": iy, "at": [float(v) for v in at],
           "x": xs.tolist(), "y": ys.tolist(), "z": z.tolist()}
    constraints = problem.constraints(params, dim)
    if constraints:
        # signed, so that its zero level (the region's edge) interpolates smoothly: the largest of
        # -g over the inequalities (g >= 0) and |h| over the equalities; <= 0 where feasible
        grid = np.broadcast_to(np.array(at, dtype=float)[:, None, None], (dim, n, n)).copy()
        grid[ix], grid[iy] = xs[None, :], ys[:, None]
        with np.errstate(all="ignore"):
            s = np.max(np.stack([np.broadcast_to(-c.fun(grid) if c.kind == "ineq" else np.abs(c.fun(grid)), (n, n))
                                 for c in constraints]), axis=0)
        out["infeasibility"] = np.where(np.isfinite(s), s, None).tolist()
        # an equality's feasible set is its curve h = 0, which |h| above only touches: each signed
        # h, so that the map can trace that zero level as a line
        with np.errstate(all="ignore"):
            eqs = [np.broadcast_to(c.fun(grid), (n, n)) for c in constraints if c.kind == "eq"]
        if eqs:
            out["equalities"] = [np.where(np.isfinite(h), h, None).tolist() for h in eqs]
    return _json(out)


def _line(request, name: str, problem, params: dict, errors: dict) -> HttpResponse:
    """The 1-D grid: f along x[0] over `xlim` (default: the problem's box), n points."""
    import numpy as np

    n = _int(request, "n", GRID_DEFAULT_N, lo=2, hi=LINE_MAX_N)
    if request.GET.get("ix", "") not in ("", "0"):
        errors["ix"] = ["A 1-D problem has only x[0]: ix must be 0."]
    if errors:
        raise BadRequest(errors)
    xlim = _limits(request, "xlim", problem.default_bounds(1)[0])
    f = problem.objective(params)
    xs = np.linspace(*xlim, n)
    with np.errstate(all="ignore"):
        z = [float(f(np.array([x]))) for x in xs]
    return _json({"problem": name, "dim": 1, "ix": 0, "x": xs.tolist(), "z": z})
