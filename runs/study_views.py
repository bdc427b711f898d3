"""Pages of studies: the list (/studies/), the new-study form (/studies/new/), one study (/studies/<id>/).

Thin views: fetch with ownership (someone else's study is a 404) and hand the page what its
JavaScript needs as json_script blocks; runs/static/runs/study*.js draw from the JSON API
(runs/study_api.py).
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from runs import forms, services, studies
from runs.outcomes import OUTCOMES
from runs.optim.echo import shown
from runs.encoding import dumps
from runs.templatetags.history_tags import method_title, num

# What a new study starts from: the classic contrast of a global and a local method on a multimodal
# function, from random starts, enough repeats for quartiles to mean something.
DEFAULT_PREFILL = {
    "problem": "rastrigin", "params": {}, "dim": 2, "bounds": None, "x0": "random", "x0_seed": 1, "repeats": 20,
    "seeds": None, "label": "", "configs": [{"method": "de", "options": {}, "label": ""},
                                           {"method": "lbfgsb", "options": {}, "label": ""}],
}
# Seeds are the study's (one per repeat): a run's own seed is not carried into a configuration.
SEED_OPTIONS = ("seed", "rng")


def _owned(request, study_id):
    study = studies.get_study_for(request.user, study_id)
    if study is None:
        raise Http404(f"There is no study {shown(study_id)} of yours.")
    return study


ENDED = ("finished", "stopped", "failed", "interrupted")


def progress(study: dict) -> dict:
    """Ended / total runs of a Study object, and the percentages its progress bar shows (ended,
    running, paused; the rest queued)."""
    counts, total = study["counts"], len(study["runs"]) or 1
    ended = sum(counts[s] for s in ENDED)
    return {"ended": ended, "total": len(study["runs"]), "pct_ended": round(100 * ended / total, 1),
            "pct_running": round(100 * counts["running"] / total, 1),
            "pct_paused": round(100 * counts["paused"] / total, 1)}


@require_GET
def study_list(request):
    listed = []
    for s in studies.studies_for(request.user):
        d = studies.study_to_dict(s)
        listed.append({**d, "progress": progress(d), "created_at": s.created})
    return render(request, "runs/studies.html", {"nav": "studies", "studies": listed})


def _closed_bounds(bounds, dim: int) -> list | None:
    """The run's bounds when every side is a number (a study draws its starts inside them), else None
    (the problem's own)."""
    if not isinstance(bounds, list) or len(bounds) != dim:
        return None
    if all(isinstance(b, list) and len(b) == 2 and all(isinstance(v, (int, float)) for v in b) for b in bounds):
        return [list(b) for b in bounds]
    return None


def _config_from_run(run, methods: dict) -> dict:
    """The run's method with the options it set apart from the catalogue's defaults, minus its seed."""
    m = methods[run.method]
    defaults = {o["name"]: o["default"] for o in m["options"]}
    options = {k: v for k, v in ((run.spec or {}).get("options") or {}).items()
               if k not in SEED_OPTIONS and k in defaults and v != defaults[k]}
    config = {"method": run.method, "options": options, "label": ""}
    if (run.spec or {}).get("stop"):
        config["stop"] = run.spec["stop"]
    return config


def prefill_from(request) -> tuple[dict, str | None]:
    """The form's starting values: the defaults, or ?study=<id> (that study's spec, to change and
    run again), or ?from=<run id> (its problem, coefficients, dimension, bounds and method), plus
    ?against=<method> as a second configuration. A study or run that is not the user's, or a method
    that does not exist, is passed over with a note, never an error."""
    _, methods = forms.catalogues(request.user)
    by_name = {m["name"]: m for m in methods}
    prefill = {**DEFAULT_PREFILL, "configs": [dict(c) for c in DEFAULT_PREFILL["configs"]]}
    notes = []
    raw_study = request.GET.get("study")
    if raw_study:  # "edit and run again": the study's own spec
        study = studies.get_study_for(request.user, raw_study)
        if study is not None:
            spec = study.spec
            out = {**prefill, **{k: spec[k] for k in prefill if k in spec}, "from_study": study.pk}
            if spec.get("seeds") == list(range(1, spec["repeats"] + 1)):
                out["seeds"] = None  # the default: it follows the repeats as they are changed
            return out, None
        named = raw_study if raw_study.isascii() and raw_study.isdigit() and len(raw_study) <= 19 else shown(raw_study)
        notes.append(f"There is no study {named} of yours to start from; the form shows the defaults.")
    raw_from, against = request.GET.get("from"), request.GET.get("against")
    run = services.get_run_for(request.user, raw_from) if raw_from else None
    if raw_from and run is None:
        named = raw_from if raw_from.isascii() and raw_from.isdigit() and len(raw_from) <= 19 else shown(raw_from)
        notes.append(f"There is no run {named} of yours to start from; the form shows the defaults.")
    if run is not None and run.method in by_name:
        spec = run.spec or {}
        dim = spec.get("dim") or forms.problem_object(run.problem, request.user).default_dim
        prefill.update(problem=run.problem, params=spec.get("params") or {}, dim=dim,
                       bounds=_closed_bounds(spec.get("bounds"), dim),
                       configs=[_config_from_run(run, by_name)], label=f"From run {run.pk}", from_run=run.pk)
    if against:
        if against in by_name:
            if run is None:
                prefill["configs"] = prefill["configs"][:1]
            prefill["configs"].append({"method": against, "options": {}, "label": ""})
        else:
            notes.append(f"There is no method {shown(against)}; choose the second configuration below.")
    return prefill, " ".join(notes) or None


@require_GET
def new_study(request):
    problems, methods = forms.catalogues(request.user)
    prefill, note = prefill_from(request)
    limits = studies.study_limits()
    return render(request, "runs/study_new.html", {
        "nav": "studies", "problems": problems, "methods": methods, "method_groups": [{"title": g["title"], "methods": [m["name"] for m in g["methods"]]}
                          for g in forms.method_groups(methods)],
        "prefill": prefill, "prefill_note": note,
        "page_config": {"max_runs": limits.max_runs, "max_configs": limits.max_configs,
                        "max_dim": limits.run.max_dim, "primary_options": forms.PRIMARY_OPTIONS,
                        "max_active_studies": settings.OPTSITE_MAX_ACTIVE_STUDIES},
    })


def point_text(x, shown_max: int = 3) -> str:
    """A start as the runs table shows it (format.js fmtVec(x, 3) writes the same)."""
    if not x:
        return "—"
    head = ", ".join(num(v) for v in x[:shown_max])
    return f"[{head}{f', … ({len(x):,})' if len(x) > shown_max else ''}]"


@require_GET
def study_detail(request, study_id: int):
    study = _owned(request, study_id)
    data = studies.study_to_dict(study)
    run_list = studies.study_runs(study)
    summary = studies.study_summary(study)
    labels = [c["label"] for c in data["configs"]]
    rows = [{**r, "label": labels[r["config"]], "x0_text": point_text(r["x0"])} for r in run_list]
    configs = [{**c, "title": method_title(c["method"]),
                "options_text": ", ".join(f"{k}={dumps(v)}" for k, v in c["options"].items())} for c in data["configs"]]
    return render(request, "runs/study.html", {
        "nav": "studies", "study": data, "configs": configs, "rows": rows, "summary": summary, "progress": progress(data),
        "outcome_labels": {k: o.label for k, o in OUTCOMES.items()},
        "client": {"study": {**data, "run_list": run_list}, "summary": summary},
    })


@require_POST
def delete_study(request, study_id: int):
    studies.delete_study(study=_owned(request, study_id))
    return redirect("/studies/")
