"""Pages of a user's own problems: the list (/problems/), the definition form (/problems/new/,
with a live check through /api/problems/_check/ in runs/static/runs/problems.js) and delete.
Without JavaScript the form posts here and errors come back at their fields."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from runs import user_problems
from runs.optim.echo import shown
from runs.services import ServiceError


def _number(text: str):
    """A form's number: '' -> None; a number -> float; anything else stays text for the check to
    name it."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def definition_from_post(post) -> dict:
    """The JSON definition the form stands for (problems.js builds the same one)."""
    data = {"title": post.get("title", "").strip(), "expression": post.get("expression", "")}
    if post.get("name", "").strip():
        data["name"] = post["name"].strip()
    params = []
    for name, default, lo, hi in zip(post.getlist("param_name"), post.getlist("param_default"),
                                     post.getlist("param_min"), post.getlist("param_max")):
        if not name.strip() and not default.strip():
            continue  # an empty row
        p = {"name": name.strip(), "default": _number(default)}
        if _number(lo) is not None:
            p["min"] = _number(lo)
        if _number(hi) is not None:
            p["max"] = _number(hi)
        params.append(p)
    data["params"] = params
    if post.get("dim_kind") == "any":
        rule = {"min": _number(post.get("dim_min")) or 1}
        for key in ("max", "default"):
            if _number(post.get(f"dim_{key}")) is not None:
                rule[key] = _number(post.get(f"dim_{key}"))
        data["dim"] = rule
    elif _number(post.get("dim")) is not None:
        data["dim"] = _number(post.get("dim"))
    lo, hi = _number(post.get("bounds_lo")), _number(post.get("bounds_hi"))
    if lo is not None or hi is not None:
        data["bounds"] = [lo, hi]
    f = _number(post.get("minimum_f"))
    if f is not None:
        data["minimum"] = {"f": f, "x": _number(post.get("minimum_x"))}
    return data


SECTIONS = ("name", "title", "expression", "params", "dim", "bounds", "minimum")


def sections(errors: dict) -> dict:
    """The check's errors by form section ("params[1].default" goes under params, with its key)."""
    out: dict[str, list[str]] = {}
    for key, words in errors.items():
        head = next((s for s in SECTIONS if key == s or key.startswith((s + ".", s + "["))), "other")
        for w in words:
            out.setdefault(head, []).append(w if key == head else f"{key}: {w}")
    return out


EMPTY = {"title": "", "expression": "", "params": [], "dim_kind": "fixed", "dim": "2", "dim_min": "1",
         "dim_max": "", "dim_default": "2", "bounds_lo": "-5", "bounds_hi": "5", "minimum_f": "", "minimum_x": "",
         "name": ""}


@require_http_methods(["GET"])
def problem_list(request):
    own = [user_problems.problem_dict(d, request.user.get_username())
           for d in user_problems.definitions_for(request.user).values()]
    return render(request, "runs/problems.html", {"nav": "problems", "problems": own})


@require_http_methods(["GET", "POST"])
def new_problem(request):
    if request.method == "POST":
        try:
            user_problems.create_problem(owner=request.user, data=definition_from_post(request.POST))
        except ServiceError as exc:
            form = {**EMPTY, **{k: request.POST.get(k, "") for k in EMPTY}}
            rows = list(zip(request.POST.getlist("param_name"), request.POST.getlist("param_default"),
                            request.POST.getlist("param_min"), request.POST.getlist("param_max")))
            return render(request, "runs/problem_new.html", {
                "nav": "problems", "form": form, "rows": rows or [("", "", "", "")], "errors": sections(exc.errors),
                "message": exc.message}, status=400)
        return redirect("/problems/")
    return render(request, "runs/problem_new.html", {"nav": "problems", "form": EMPTY, "rows": [("", "", "", "")],
                                                     "errors": {}})


@require_POST
def delete_problem(request, name: str):
    if not user_problems.delete_problem(owner=request.user, name=name):
        raise Http404(f"There is no problem {shown(name)} of yours.")
    return redirect("/problems/")
