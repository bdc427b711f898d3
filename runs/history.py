"""History (/runs/), compare (/runs/compare/) and the per-run actions relabel, delete and clone.

Thin views: fetch with ownership (someone else's run is a 404), validate, act, redirect. Filters,
sort and pagination are plain GET parameters so the page works without JavaScript; history.js
and compare.js enhance it (live rows, inline relabel, confirm dialogs, plots).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Case, F, IntegerField, Value, When
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from runs import comparison, exports, outcomes, query, services
from runs.models import Run, Step, Study
from runs.optim.echo import shown
from runs.run_objects import queue_position, resumes_by_itself
from runs.templatetags.history_tags import method_title, problem_label

PER_PAGE_CHOICES = (10, 25, 50, 100)
ROWS_MAX = 200  # rows one /runs/rows/ request may ask for (a page shows at most 100)
DEFAULT_PER_PAGE = 25
MAX_LABEL = Run._meta.get_field("label").max_length
COMPARE_MIN, COMPARE_MAX = 2, 4
# Colours of compared runs: readable on white (convergence plot) and on the dark and bright ends of
# the viridis contour alike.
RUN_COLORS = ("#e8384f", "#ff8c1a", "#d35fd8", "#12b5cb")

# sort key -> (heading, ORM ordering or None for computed columns)
SORTS = {
    "id": "pk",
    "label": "label",
    "created": "created",
    "method": "method",
    "problem": "problem",
    "status": "status",
    "outcome": "outcome_rank",  # annotated: the outcomes in their table order
    "fun": "best_fun",
    "gap": None,  # f - f* depends on the problem's known minimum: sorted in Python
    "nit": "nit",
    "nfev": "nfev",
    "elapsed": "elapsed",
}
DEFAULT_SORT = "-created"
# key, heading, numeric (right-aligned)
COLUMNS = (
    ("id", "#", True), ("label", "Label", False), ("created", "Created", False),
    ("method", "Method", False), ("problem", "Problem", False), ("status", "Status", False),
    ("outcome", "Outcome", False), ("fun", "Final f", True), ("gap", "f − f*", True),
    ("nit", "Iterations", True), ("nfev", "Evaluations", True), ("elapsed", "Duration", True),
)
# the narrow screens' sort menu: words for ascending and descending where "A to Z" would mislead
SORT_WORDS = {"created": ("oldest first", "newest first"), "id": ("oldest first", "newest first"),
              "outcome": ("converged first", "interrupted first")}


# -- history ------------------------------------------------------------------------------------
@dataclass
class Row:
    run: Run
    problem_text: str
    gap: float | None
    f_star: float | None
    outcome: str | None = None

    @property
    def coefficients(self) -> str:
        """'a=1, b=100': the problem's coefficients, shown under its name."""
        params = (self.run.spec or {}).get("params") or {}
        return ", ".join(f"{k}={exports._short(v)}" for k, v in params.items())

    @property
    def dim(self):
        return (self.run.spec or {}).get("dim")

    @property
    def outcome_note(self) -> str:
        """The run's own words for how it ended (the outcome cell's tooltip)."""
        run = self.run
        if self.outcome is None:
            return ""
        if run.status == Run.Status.FAILED:
            return run.error or "failed"
        return exports.termination_reason(run)

    @property
    def state(self) -> dict:
        """Where the run is (the Run object's fields that the status badge's note needs)."""
        run = self.run
        return {"status": run.status, "queue_position": queue_position(run), "worker": run.worker,
                "stopping": "stop" in run.control_requests, "problem": run.problem}

    @property
    def reached(self) -> bool:
        """Close enough to the known minimum to mark the cell green."""
        return self.gap is not None and self.gap < 1e-6


def make_row(run: Run) -> Row:
    known = exports.known_minimum(run)
    gap = None
    if known is not None and run.best_fun is not None and math.isfinite(run.best_fun):
        gap = run.best_fun - known["f"]
    return Row(run=run, problem_text=exports.problem_text(run), gap=gap,
               f_star=None if known is None else known["f"], outcome=outcomes.run_outcome(run))


def _filters(request):
    g = request.GET
    return {
        "method": g.get("method", "").strip(),
        "problem": g.get("problem", "").strip(),
        "status": g.get("status", "").strip(),
        "outcome": g.get("outcome", "").strip(),
        "q": g.get("q", "").strip(),
        "study": g.get("study", "").strip(),  # "" any run, "none" not in a study, or a study's id
    }


def _per_page(request) -> int:
    try:
        per = int(request.GET.get("per", DEFAULT_PER_PAGE))
    except ValueError:
        return DEFAULT_PER_PAGE
    return per if per in PER_PAGE_CHOICES else DEFAULT_PER_PAGE


def _sort(request) -> str:
    sort = request.GET.get("sort", DEFAULT_SORT)
    return sort if sort.lstrip("-") in SORTS else DEFAULT_SORT


def _order(qs, sort: str):
    key = SORTS[sort.lstrip("-")]
    desc = sort.startswith("-")
    expr = F(key).desc(nulls_last=True) if desc else F(key).asc(nulls_last=True)
    return qs.order_by(expr, "-pk" if desc else "pk")


def _with_outcome(qs):
    rank = Case(*[When(outcome=k, then=Value(i)) for i, k in enumerate(outcomes.OUTCOMES)],
                default=Value(None), output_field=IntegerField())
    return qs.annotate(outcome=outcomes.outcome_expression()).annotate(outcome_rank=rank)


def filtered_runs(request):
    f = _filters(request)
    qs = _with_outcome(Run.objects.filter(owner=request.user).defer("checkpoint"))
    if f["method"]:
        qs = qs.filter(method=f["method"])
    if f["problem"]:
        qs = qs.filter(problem=f["problem"])
    if f["status"] == "active":
        qs = qs.filter(status__in=Run.ACTIVE)
    elif f["status"]:
        qs = qs.filter(status=f["status"])
    if f["outcome"]:
        # an unknown word matches nothing, like an unknown status (the empty state names it)
        qs = qs.filter(outcome=f["outcome"])
    if f["q"]:
        qs = qs.filter(label__icontains=f["q"])
    if f["study"] == "none":
        qs = qs.filter(study__isnull=True)
    elif f["study"]:
        # not a study id: matches nothing, like an unknown status (the empty state names it)
        qs = qs.filter(study_id=int(f["study"])) if f["study"].isascii() and f["study"].isdigit() \
            and len(f["study"]) < 19 else qs.none()
    return qs, f


def _query(base: dict, **changes) -> str:
    params = {**base, **changes}
    return "?" + urlencode({k: v for k, v in params.items() if v not in ("", None)})


@require_GET
def history(request):
    qs, f = filtered_runs(request)
    sort = _sort(request)
    per = _per_page(request)
    if SORTS[sort.lstrip("-")] is None:
        # f - f*: rank the (lightweight) filtered rows in Python, then fetch only the page.
        light = list(qs.only("pk", "problem", "spec", "best_fun"))
        desc = sort.startswith("-")
        gaps = [(make_row(r).gap, r.pk) for r in light]
        known = sorted((g for g in gaps if g[0] is not None), reverse=desc)
        ordered_ids = [pk for _, pk in known] + [pk for g, pk in gaps if g is None]  # unknown last
        page = Paginator(ordered_ids, per).get_page(request.GET.get("page"))
        by_id = Run.objects.defer("checkpoint").in_bulk(list(page.object_list))
        runs = [by_id[pk] for pk in page.object_list if pk in by_id]
    else:
        page = Paginator(_order(qs, sort), per).get_page(request.GET.get("page"))
        runs = list(page.object_list)
    rows = [make_row(r) for r in runs]

    mine = Run.objects.filter(owner=request.user)
    total = mine.count()
    state = {**f, "sort": sort if sort != DEFAULT_SORT else "", "per": per if per != DEFAULT_PER_PAGE else ""}
    columns = []
    sort_choices = []
    for key, heading, numeric in COLUMNS:
        current = sort.lstrip("-") == key
        desc = sort.startswith("-")
        # First click sorts numbers and dates from the top down, words A-Z.
        first = "-" + key if key in ("created", "id") else key
        nxt = ("" if desc else "-") + key if current else first
        columns.append({
            "key": key, "heading": heading, "numeric": numeric, "current": current,
            "aria": ("descending" if desc else "ascending") if current else None,
            "url": _query(state, sort=nxt if nxt != DEFAULT_SORT else "", page=""),
        })
        up, down = SORT_WORDS.get(key, ("low to high", "high to low") if numeric else ("A to Z", "Z to A"))
        sort_choices += [(key, f"{heading}, {up}"), ("-" + key, f"{heading}, {down}")]
    context = {
        "nav": "history",
        "page": page,
        "rows": rows,
        "columns": columns,
        "filters": f,
        "filtering": any(f.values()),
        "total": total,
        "matching": page.paginator.count,
        "sort_choices": sort_choices,
        "outcomes": [(o.key, o.label, o.help) for o in outcomes.OUTCOMES.values()],
        "sort": sort,
        "per": per,
        "per_choices": PER_PAGE_CHOICES,
        "methods": _choices(mine, "method", _catalogue_methods()),
        "problems": _choices(mine, "problem", _catalogue_problems()),
        "statuses": [(s.value, s.label) for s in Run.Status],
        "study_choices": Study.objects.filter(owner=request.user).only("pk", "label").order_by("-pk")[:50],
        "page_query": _query(state, page=""),  # the query of this listing without page
        "state_query": _query(state, page=page.number if page.number > 1 else ""),
        "compare_max": COMPARE_MAX,
    }
    return render(request, "runs/history.html", context)


def _choices(mine, field: str, catalogue: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen = dict(catalogue)
    for name in mine.order_by().values_list(field, flat=True).distinct():
        seen.setdefault(name, name)
    return sorted(seen.items(), key=lambda kv: kv[1].lower())


def _catalogue_methods():
    try:
        from runs.optim import method_catalogue

        return [(m["name"], m.get("title") or m["name"]) for m in method_catalogue()]
    except Exception:
        return [("de", "Differential evolution"), ("lbfgsb", "L-BFGS-B")]


def _catalogue_problems():
    try:
        from runs.optim import problem_catalogue

        return [(p["name"], p.get("title") or p["name"]) for p in problem_catalogue()]
    except Exception:
        return []


@query.json_get
def history_rows(request):
    """Fresh HTML rows for ?ids=1,2 (the user's only): history.js polls this for active runs."""
    ids = query.run_ids("ids", request.GET.get("ids", ""), most=ROWS_MAX)
    runs = Run.objects.filter(owner=request.user, pk__in=ids).defer("checkpoint")
    back = request.GET.get("next", "/runs/")
    out = {}
    for run in runs:
        out[str(run.pk)] = {
            "html": render_to_string("runs/_history_row.html", {"row": make_row(run), "next": back}, request=request),
            "active": run.is_active,
            "status": run.status,
            # Interrupted, but queued again by the server in a moment: worth watching a little longer.
            "resuming": resumes_by_itself(run),
        }
    return JsonResponse({"rows": out})


# -- actions ------------------------------------------------------------------------------------
def _owned(request, run_id) -> Run:
    return exports.owned_run(request, run_id)


def _next(request, default="/runs/") -> str:
    nxt = request.POST.get("next") or request.GET.get("next") or default
    # a path of this site only: redirect() reads anything else ("abc", "7") as a view's name
    if nxt.startswith("/") and url_has_allowed_host_and_scheme(
            nxt, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return nxt
    return default


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@require_POST
def relabel(request, run_id: int):
    run = _owned(request, run_id)
    label = " ".join(request.POST.get("label", "").split())  # one line, no stray spaces
    if len(label) > MAX_LABEL:
        msg = f"A label can be at most {MAX_LABEL} characters (this one has {len(label)})."
        if _wants_json(request):
            return JsonResponse({"error": msg, "errors": {"label": [msg]}}, status=400)
        messages.error(request, msg)
        return redirect(_next(request))
    services.relabel_run(run=run, label=label)
    if _wants_json(request):
        return JsonResponse({"id": run.pk, "label": run.label})
    messages.success(request, f"Run {run.pk} relabelled “{label}”." if label else f"Run {run.pk}'s label removed.")
    return redirect(_next(request))


@require_http_methods(["GET", "POST"])
def delete(request, run_id: int):
    run = _owned(request, run_id)
    if request.method == "GET":
        # The no-JavaScript confirmation (history.js asks in a dialog and posts directly).
        return render(request, "runs/_history_delete.html", {
            "nav": "history", "row": make_row(run), "next": _next(request),
            "n_steps": Step.objects.filter(run=run).count(),
        })
    pk, was_active = run.pk, run.is_active
    n = services.delete_run(run=run)
    text = f"Run {pk} deleted with its {n} step{'' if n == 1 else 's'}."
    if was_active:
        text = f"Run {pk} was stopped and deleted with its {n} step{'' if n == 1 else 's'}."
    if _wants_json(request):
        return JsonResponse({"deleted": pk, "steps": n, "message": text})
    messages.success(request, text)
    nxt = _next(request)
    return redirect("/runs/" if nxt.startswith(f"/runs/{pk}/") else nxt)


@require_GET
def clone(request, run_id: int):
    """Open the new-run form prefilled with this run's spec and label (editable before launching),
    noting which run it was cloned from."""
    run = _owned(request, run_id)
    query = {"spec": json.dumps(run.spec, separators=(",", ":"))}
    if run.label:
        query["label"] = run.label
    query["from"] = run.pk
    return redirect("/runs/new/?" + urlencode(query))


# -- compare ------------------------------------------------------------------------------------
class CompareIdsError(ValueError):
    pass


def parse_compare_ids(request) -> list[int]:
    """Run ids from ?ids=3,4 (or ?ids=3&ids=4 as a plain form sends them); CompareIdsError says why not."""
    raw = ",".join(request.GET.getlist("ids"))
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    ids = []
    if len(parts) > COMPARE_MAX:
        raise CompareIdsError(f"You picked {len(parts):,} runs; compare at most {COMPARE_MAX} at a time.")
    for p in parts:
        if not (p.isascii() and p.isdigit()) or len(p) > 18:
            raise CompareIdsError(f"{shown(p)} is not a run number: use ?ids=3,4 with the numbers of your runs.")
        ids.append(int(p))
    seen = set()
    for i in ids:
        if i in seen:
            raise CompareIdsError(f"Run {i} is listed twice: pick each run once.")
        seen.add(i)
    if len(ids) < COMPARE_MIN:
        raise CompareIdsError(
            "Pick at least two runs to compare." if ids else "No runs were given: pick two to four runs in your history."
        )
    if len(ids) > COMPARE_MAX:
        raise CompareIdsError(f"You picked {len(ids)} runs; compare at most {COMPARE_MAX} at a time.")
    return ids


def same_landscape(runs: list[Run]) -> bool:
    """Paths share one contour only when problem, coefficients and dimension all agree."""
    return len({comparison.landscape(r) for r in runs}) == 1


@require_GET
def compare(request):
    try:
        ids = parse_compare_ids(request)
    except CompareIdsError as exc:
        return render(request, "runs/compare.html", {"nav": "history", "error": str(exc)}, status=400)
    if len(request.GET.getlist("ids")) > 1:
        # A plain form submits ids=3&ids=4: send the browser to the canonical ?ids=3,4.
        return redirect("/runs/compare/?" + urlencode({"ids": ",".join(map(str, ids))}, safe=","))
    found = {r.pk: r for r in Run.objects.filter(owner=request.user, pk__in=ids)}
    if len(found) != len(ids):
        raise Http404("No such run")
    runs = [found[i] for i in ids]
    summaries = [exports.run_summary(r) for r in runs]
    ranking = comparison.rank(runs, summaries)
    overlay = same_landscape(runs)
    client = []
    for color, run, s in zip(RUN_COLORS, runs, summaries):
        spec = run.spec or {}
        client.append({
            "id": run.pk, "label": run.label, "method": run.method, "method_title": method_title(run.method),
            "problem": run.problem, "problem_text": problem_label(run), "params": spec.get("params") or {},
            "dim": spec.get("dim"), "bounds": spec.get("bounds"), "status": run.status,
            "outcome": outcomes.run_outcome(run), "active": run.is_active,
            "url": run.get_absolute_url(), "color": color, "f_star": s["f_star"], "x_star": s["x_star"],
            "n_steps": run.n_steps, "summary": {k: v for k, v in s.items() if k not in ("x_star",)},
        })
    # On the page times are formatted with units and the minus is typographic; the CSV keeps seconds.
    page_heads = {"gap": "f − f*", "elapsed": "wall time", "njev": "gradient evals"}
    columns = [(k, page_heads.get(k, h), lower) for k, h, lower in exports.SUMMARY_COLUMNS
               if k not in ("id", "label", "method", "problem")]
    table = []
    for color, run, s in zip(RUN_COLORS, runs, summaries):
        table.append({
            "run": run, "color": color, "s": s, "outcome": outcomes.run_outcome(run),
            "cells": [{"key": k, "value": s[k], "best": run.pk in ranking.best.get(k, ()),
                       "note": (ranking.cell_notes.get((k, run.pk)) or ranking.column_notes.get(k, "")) if lower else ""}
                      for k, _, lower in columns],
        })
    heads = dict((k, h) for k, h, _ in columns)
    # one line per reason, naming the columns it holds for (compare.js groups them the same way)
    grouped: dict[str, list[str]] = {}
    for k in comparison.RANKED:
        if k in ranking.column_notes and k in heads:
            grouped.setdefault(ranking.column_notes[k], []).append(heads[k])
    rank_notes = [{"headings": ", ".join(hs), "note": note} for note, hs in grouped.items()]
    # compare.js re-ranks as live runs end, by the same rules (runs/comparison.py)
    ranking_rules = {"static": comparison.static_notes(runs), "cost": list(comparison.COST_COLUMNS),
                     "ranked": list(comparison.RANKED),
                     "outcomes": {o.key: o.label for o in outcomes.OUTCOMES.values()}}
    ids_csv = ",".join(map(str, ids))
    return render(request, "runs/compare.html", {
        "nav": "history",
        "runs": runs,
        "table": table,
        "columns": columns,
        "overlay": overlay,
        "any_active": any(r.is_active for r in runs),
        "client": client,
        "ranking_rules": ranking_rules,
        "rank_notes": rank_notes,
        "ids_csv": ids_csv,
        "csv_url": "/runs/compare/summary.csv?" + urlencode({"ids": ids_csv}, safe=","),
    })
