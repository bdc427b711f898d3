"""Studies over HTTP: the JSON API (/api/studies/...) and the study's downloads (CSV, spec JSON).

Session-authenticated like the rest of the API; the POSTs take Django's CSRF header. Someone
else's study answers 404, as a missing one does.
"""

from __future__ import annotations

import csv
import io

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET

from runs import studies
from runs.encoding import dumps
from runs.endpoints import json_body, json_endpoint
from runs.exports import csv_value
from runs.optim.echo import shown
from runs.query import BadQuery, json_response, whole

def _owned(request, study_id):
    study = studies.get_study_for(request.user, study_id)
    if study is None:
        raise Http404(f"There is no study {shown(study_id)} of yours.")
    return study


@json_endpoint(("GET", "HEAD", "POST"))
def study_list(request):
    if request.method == "POST":
        study = studies.create_study(owner=request.user, data=json_body(request, "study spec"))
        return json_response({"study": studies.study_to_dict(study)}, 201)
    return json_response([studies.study_to_dict(s) for s in studies.studies_for(request.user)[:500]])


@json_endpoint(("GET", "HEAD"))
def study_detail(request, study_id: int):
    study = _owned(request, study_id)
    return json_response({**studies.study_to_dict(study), "run_list": studies.study_runs(study)})


def _budgets(request) -> tuple | None:
    raw = request.GET.get("budgets")
    if raw is None or not raw.strip():
        return None
    parts = raw.split(",")
    if len(parts) > 12:
        raise BadQuery({"budgets": [f"At most 12 budgets, got {len(parts):,}."]})
    from runs.study_summary import NFEV_GRID

    out = []
    for part in parts:
        b = whole("budgets", part, lo=1)
        if b not in NFEV_GRID:
            near = min(NFEV_GRID, key=lambda g: abs(g - b))
            raise BadQuery({"budgets": [f"{b:,} evaluations is not on the study's grid; the nearest is {near:,} "
                                        "(budgets are 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × a power of ten)."]})
        out.append(b)
    return tuple(sorted(set(out)))


@json_endpoint(("GET", "HEAD"))
def study_summary(request, study_id: int):
    study = _owned(request, study_id)
    since = request.GET.get("since")
    if since and since == studies.summary_version(study):
        return json_response({"study": study.pk, "version": since, "unchanged": True})
    return json_response(studies.study_summary(study, budgets=_budgets(request)))


@json_endpoint(("POST",))
def study_control(request, study_id: int, action: str):
    if action not in ("stop", "pause", "resume"):
        raise Http404(f"A study takes stop, pause or resume, not {shown(action)}.")
    return json_response({"study": studies.control_study(user=request.user, study_id=study_id, action=action)})


# ---- downloads (page-like: without a session the login redirect applies) ----------------------
def _attachment(body: str, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _cell(v):
    """A CSV cell as the compare export writes them; a point as its coordinates, space-separated."""
    if isinstance(v, (list, tuple)):
        return " ".join(str(csv_value(float(x))) for x in v)
    return csv_value(v)


@require_GET
def runs_csv(request, study_id: int):
    """One row per run: configuration, repeat, seed, start, status, outcome and final figures."""
    study = _owned(request, study_id)
    labels = [c["label"] for c in study.spec["configs"]]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["run", "config", "label", "method", "repeat", "seed", "x0", "status", "outcome", "best_f",
                     "gap", "nfev", "nit", "elapsed"])
    for r in studies.study_runs(study):
        writer.writerow([r["id"], r["config"], labels[r["config"]], study.spec["configs"][r["config"]]["method"],
                         r["repeat"], _cell(r["seed"]), _cell(r["x0"]), r["status"], _cell(r["outcome"]),
                         _cell(r["best_fun"]), _cell(r["gap"]), r["nfev"], r["nit"], _cell(r["elapsed"])])
    return _attachment(buf.getvalue(), "text/csv; charset=utf-8", f"study-{study.pk}-runs.csv")


@require_GET
def summary_csv(request, study_id: int):
    """The aggregate tables: final values, fixed targets, fixed budgets — one block each."""
    study = _owned(request, study_id)
    summary = studies.study_summary(study)
    measure = "best f - f*" if summary["measure"] == "gap" else "best f"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["table", "config", "label", "method", "runs", "ended", "target or budget", "hits", "rate",
                     "ert", "n", "median", "q1", "q3", "min", "max", "measure"])
    for c in summary["configs"]:
        head = [c["index"], c["label"], c["method"], c["runs"], c["finished"]]
        final = c["final"] or {}
        writer.writerow(["final", *head, "", "", "", "", final.get("n", 0),
                         *(_cell(final.get(k)) for k in ("median", "q1", "q3", "min", "max")), measure])
        for t in c["targets"]:
            writer.writerow(["target", *head, _cell(t["gap"]), t["hits"], _cell(t["rate"]), _cell(t["ert"]),
                             "", "", "", "", "", "", "best f - f*"])
        for b in c["budgets"]:
            writer.writerow(["budget", *head, b["budget"], "", "", "", b["n"],
                             *(_cell(b[k]) for k in ("median", "q1", "q3", "min", "max")), measure])
    return _attachment(buf.getvalue(), "text/csv; charset=utf-8", f"study-{study.pk}-summary.csv")


@require_GET
def spec_json(request, study_id: int):
    """The study spec: POST it to /api/studies/ and the same study runs again."""
    study = _owned(request, study_id)
    return _attachment(dumps(study.spec), "application/json", f"study-{study.pk}-spec.json")
