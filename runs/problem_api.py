"""A user's own problems over HTTP: /api/problems/ (GET the catalogue and theirs, POST a new
one), /api/problems/_check/ (the definition form's live check) and /api/problems/<name>/ (GET,
DELETE). Session-authenticated; the POSTs take Django's CSRF header. Someone else's problem
answers 404, as a missing one does."""

from __future__ import annotations

from django.http import Http404

from runs import user_problems
from runs.endpoints import json_body, json_endpoint
from runs.optim.echo import shown
from runs.query import json_response
from runs.services import ServiceError


@json_endpoint(("GET", "HEAD", "POST"))
def problem_list(request):
    if request.method == "POST":
        return json_response(user_problems.create_problem(owner=request.user, data=json_body(request, "problem")), 201)
    return json_response(user_problems.catalogue_for(request.user))


@json_endpoint(("POST",))
def problem_check(request):
    """{"valid": true, "problem": the problem object the definition would give (formula and
    gradient in LaTeX and text)} or {"valid": false, "error", "errors": {field: [words]}}: a
    check that finds errors has succeeded (200); nothing is stored."""
    data = json_body(request, "problem")
    try:
        return json_response({"valid": True, "problem": user_problems.check(request.user, data)})
    except ServiceError as exc:
        if exc.code != "invalid_spec":
            raise
        return json_response({"valid": False, "error": exc.message, "errors": exc.errors})


@json_endpoint(("GET", "HEAD", "DELETE"))
def problem_detail(request, name: str):
    from runs.optim.problems import ALL_PROBLEMS

    if request.method == "GET" or request.method == "HEAD":
        if name in ALL_PROBLEMS:
            return json_response(ALL_PROBLEMS[name].to_dict())
        p = user_problems.get_problem_for(request.user, name)
        if p is None:
            raise Http404(f"There is no problem {shown(name)} of yours; see /api/problems/.")
        return json_response(user_problems.problem_dict(p.definition, request.user.get_username()))
    if not user_problems.delete_problem(owner=request.user, name=name):
        raise Http404(f"There is no problem {shown(name)} of yours.")
    return json_response({"deleted": name})
