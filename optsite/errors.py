"""The site's own error pages (templates/400.html, 403.html, 404.html, 500.html) for people, and
JSON errors ({"error": words}) for the JSON endpoints, whatever raised them.

Django uses these handlers when DEBUG is off; with DEBUG on it shows its technical pages instead.
"""

from __future__ import annotations

import re

from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token

WORDS = {
    400: "The server could not read that request.",
    403: "You are not allowed to do that.",
    404: "There is nothing here.",
    500: "Something went wrong on the server.",
}


def wants_json(request) -> bool:
    """The JSON API (/api/…), and any client that asks for JSON rather than a page."""
    if request.path.startswith("/api/"):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def _message(exception, status: int) -> str:
    # Http404("There is no run 7 of yours.") says it in words; a resolver's 404 carries a dict.
    args = getattr(exception, "args", ())
    if args and isinstance(args[0], str) and args[0]:
        return args[0]
    return WORDS[status]


def _answer(request, status: int, exception=None) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"error": _message(exception, status)}, status=status)
    run = re.match(r"/runs/(\d{1,18})/", request.path)  # a run's page or export: name the run
    context = {"request_path": request.path, "run_id": int(run.group(1)) if run else None}
    html = loader.render_to_string(f"{status}.html", context, request)
    return HttpResponse(html, status=status)


@requires_csrf_token
def bad_request(request, exception):
    return _answer(request, 400, exception)


@requires_csrf_token
def permission_denied(request, exception):
    return _answer(request, 403, exception)


@requires_csrf_token
def page_not_found(request, exception):
    return _answer(request, 404, exception)


@requires_csrf_token
def server_error(request):
    """No request context here: whatever failed (the database, a context processor) may fail again."""
    if wants_json(request):
        return JsonResponse({"error": WORDS[500]}, status=500)
    return HttpResponse(loader.get_template("500.html").render({}), status=500)
