"""Pages: the new-run form (/runs/new/) and one run, live or replayed (/runs/<id>/).

Thin views: fetch with ownership (someone else's run is a 404), hand the page what its JavaScript
needs as json_script blocks (catalogues, the run, f*), and let runs/static/runs/*.js do the rest.
"""

from __future__ import annotations

from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from runs import forms, query
from runs.exports import owned_run
from runs.models import Run
from runs.optim import get_problem
from runs.optim.echo import shown
from runs.optim.jsoninput import InputError, loads
from runs.templatetags.history_tags import num, status_note
from runs.user_problems import known_minimum_of_spec, problem_of_spec

# Step-table rows the page draws while a run is live (a fixed number: the table's cost does not
# grow with the run); an ended run's table scrolls over every step.
TABLE_ROWS = 50
# Candidates looked at by existing_run: a user's runs of one problem under one method.
EXISTING_SCAN = 500


def _run_dict(run: Run) -> dict:
    from runs.services import run_to_dict

    return run_to_dict(run)


def _known_minimum(problem: str, params: dict | None, dim: int | None, owner=None) -> dict | None:
    try:
        return forms.problem_object(problem, owner).known_minimum(params or {}, dim)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


def minimum_text(known: dict | None) -> str:
    """'f* = 0 at (1, 1)' as the form shows it (new.js writes the same when inputs change)."""
    if not known:
        return "unknown for these coefficients"
    text = f"f* = {num(known['f'])}"
    if len(known["x"]) <= 4:
        text += " at (" + ", ".join(num(v) for v in known["x"]) + ")"
    return text


def _fill_context(state: dict, errors: dict | None = None, owner=None) -> dict:
    problems, methods = forms.catalogues(owner)
    fields = forms.form_fields(state, errors, owner)
    current = next(p for p in problems if p["name"] == state["problem"])
    return {
        "nav": "new",
        "state": state,
        "fields": fields,
        "problems": problems,
        "methods": methods,
        "method_groups": forms.method_groups(methods),
        "problem": current,
        "minimum_text": minimum_text(_known_minimum(state["problem"], state["params"], state["dim"], owner)),
        "general_errors": forms.general_errors(errors or {}),
        "form_error": bool(errors),
        "page_config": {"table_rows": TABLE_ROWS, "primary_options": forms.PRIMARY_OPTIONS,
                        "default_seed": forms.DEFAULT_SEED},
    }


@require_http_methods(["GET", "POST"])
def new_run(request):
    """GET: the form, prefilled from ?spec=<JSON> (and ?problem=, ?method=, ?dim=, ?label=, ?from=).
    POST (without JavaScript): validate, create and start the run, go to its page."""
    if request.method == "POST":
        spec, label = forms.spec_from_post(request.POST)
        from runs import services

        try:
            run = services.launch(owner=request.user, data=spec, label=label)
        except services.ServiceError as e:
            state = forms.initial_state({**spec, "label": label}, request.user)
            state["bounds_same"] = bool(request.POST.get("bounds_same"))
            errors = e.errors or {"spec": [e.message]}
            return render(request, "runs/new.html", _fill_context(state, errors, request.user), status=400)
        return redirect(run["url"])

    prefill, warning = forms.parse_prefill(request.GET.get("spec"))
    for key in ("problem", "method", "label", "from"):
        if request.GET.get(key):
            prefill[key] = request.GET[key]
    dim = request.GET.get("dim", "")
    if dim.isascii() and dim.isdigit() and len(dim) <= 6:  # else the problem's default (a link must open)
        prefill["dim"] = int(dim)
    state, unused = forms.prefilled_state(prefill, request.user)
    context = _fill_context(state, owner=request.user)
    context["prefill_warning"] = " ".join(w for w in (warning, unused) if w) or None
    return render(request, "runs/new.html", context)


@query.json_get
def known_minimum(request):
    """{"known_minimum": {"x", "f"} | null} for ?problem=&dim=&params=<JSON>: the form shows it and
    the live view plots f − f* with it (it depends on the coefficients and the dimension)."""
    from runs.optim.spec import SpecError, validate_params

    name = request.GET.get("problem", "")
    raw = query.json_value(request, "params", dict, {})
    dim = query.integer(request, "dim", None, lo=1, hi=10_000)
    from runs import user_problems

    own = None
    try:
        problem = get_problem(name)
    except KeyError:
        problem, own = user_problems.expression_problem_for(request.user, name)
        if problem is None:
            return query.json_response({"error": f"There is no problem {shown(name)}; see /api/problems/."}, 404)
    try:
        params = validate_params(name, raw, own)
    except SpecError as exc:
        raise query.BadQuery(exc.errors) from None
    try:
        return query.json_response({"known_minimum": problem.known_minimum(params, dim)})
    except (TypeError, ValueError, KeyError):  # a dimension the problem does not have
        return query.json_response({"known_minimum": None})


@require_GET
def run_detail(request, run_id: int):
    """One run: live when it is active, replay when it has ended. Owner only (404 otherwise)."""
    run = owned_run(request, run_id)
    spec = run.spec or {}
    problems, methods = forms.catalogues()
    run_json = _run_dict(run)
    return render(request, "runs/run.html", {
        "nav": "run",
        "run": run,
        "run_json": run_json,
        "status_note": status_note(run_json, "page"),
        "problem_json": next((p for p in problems if p["name"] == run.problem), None) or problem_of_spec(spec),
        "methods_json": methods,
        "known_minimum": _known_minimum(run.problem, spec.get("params"), spec.get("dim")) or known_minimum_of_spec(spec),
        "page_config": {"table_rows": TABLE_ROWS},
    })


@query.json_get
def existing_run(request):
    """{"run": {"id", "url", "status", "n_steps"} | null}: the user's newest run with the same spec
    as ?spec=<JSON> that did not fail (runs are deterministic: it holds what a new one would).

    Both specs are normalised by the one validation path (services.validate) before they are
    compared, so spelling differences (defaults left out, 1 vs 1.0) do not matter. A finished
    run is preferred over one still going, and both over a stopped one.
    """
    from runs import services

    try:
        data = loads(request.GET.get("spec") or "")
    except InputError as exc:
        raise query.BadQuery({"spec": [f"Expected a run spec as JSON: {exc}."]}) from None
    try:
        wanted = services.validate(data, request.user).to_dict()
    except services.ServiceError as e:
        return query.json_response({"error": e.message, "code": e.code, "errors": e.errors or {}}, 400)
    candidates = (Run.objects.filter(owner=request.user, method=wanted["method"], problem=wanted["problem"])
                  .exclude(status=Run.Status.FAILED).order_by("-pk").only("pk", "status", "spec", "n_steps"))
    rank = {Run.Status.FINISHED: 0, Run.Status.STOPPED: 2}
    best = None
    for run in candidates[:EXISTING_SCAN]:
        try:
            same = services.validate(run.spec).to_dict() == wanted
        except services.ServiceError:  # stored under other limits or an older format
            same = False
        if same and (best is None or rank.get(run.status, 1) < rank.get(best.status, 1)):
            best = run
    if best is None:
        return query.json_response({"run": None})
    return query.json_response({"run": {"id": best.pk, "url": f"/runs/{best.pk}/", "status": best.status,
                                        "n_steps": best.n_steps}})
