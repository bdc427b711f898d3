"""JSON endpoints that take methods other than GET and bodies: one decorator and one body reader
for the studies and the problems APIs (runs/study_api.py, runs/problem_api.py)."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import Http404

from runs.optim.echo import bounded_errors, shown
from runs.optim.jsoninput import InputError, loads
from runs.query import BadQuery, json_response, refusal
from runs.services import ServiceError
from runs.tokens import NEEDS_LOGIN

STATUS_OF = {"invalid_spec": 400, "limit": 400, "bad_message": 400, "not_found": 404, "conflict": 409}


def json_endpoint(methods: tuple[str, ...]):
    """JSON in and out: 401 without a login, 405 for another method, 404 for an object not the
    user's, a ServiceError or a bad query as 4xx JSON in words."""

    def wrap(view):
        @login_not_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = json_response({"error": f"{shown(request.method)} is not allowed here; use "
                                                   f"{' or '.join(methods)}."}, 405)
                response["Allow"] = ", ".join(methods)
                return response
            if not request.user.is_authenticated:
                return json_response({"error": NEEDS_LOGIN}, 401)
            try:
                return view(request, *args, **kwargs)
            except Http404 as exc:
                return json_response({"error": str(exc) or "Not found."}, 404)
            except BadQuery as exc:
                return refusal(exc)
            except ServiceError as exc:
                return json_response({"error": exc.message, "code": exc.code, "errors": bounded_errors(exc.errors) or {}},
                                     STATUS_OF.get(exc.code, 400))

        return wrapper

    return wrap


def json_body(request, what: str):
    """The request's JSON body, or a ServiceError in words keyed by `what` ("study", "problem")."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ServiceError("limit", "The request is larger than this server takes.", {what: ["Too large."]}) from None
    try:
        return loads(raw)
    except InputError as exc:
        raise ServiceError("invalid_spec", f"The {what} is not acceptable JSON: {exc}.",
                           {what: [f"Not acceptable JSON: {exc}."]}) from None
