"""What a request's query string may hold, read strictly: whole numbers within a range, flags,
JSON (through runs.optim.jsoninput), lists of run ids; and how a JSON endpoint answers when one
does not fit.

A value that does not fit raises BadQuery, whose words name the parameter and quote the value
clipped (runs.optim.echo); nothing reaches the database that it cannot hold (a 400-digit `?from=`
made SQLite raise OverflowError).
"""

from __future__ import annotations

__all__ = ["BadQuery", "MAX_INT", "json_get", "json_response", "refusal", "whole", "integer", "json_value",
           "run_ids"]

import re
from functools import wraps

from django.http import HttpResponse

from runs.encoding import dumps
from runs.optim.echo import bounded_errors, shown
from runs.optim.jsoninput import InputError, loads

# The range of a database integer (BigAutoField ids, seq): beyond it nothing can match.
MAX_INT = 2 ** 63 - 1
MIN_INT = -MAX_INT
_WHOLE = re.compile(r"[+-]?[0-9]{1,30}")  # ASCII digits only: int() also reads "٣" and "1_000"


class BadQuery(Exception):
    """A query parameter (or body field) that does not fit; `errors` is {name: [words]}."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = bounded_errors(errors)
        field, words = next(iter(self.errors.items()))
        super().__init__(f"{field}: {words[0]}")


def json_response(data, status: int = 200) -> HttpResponse:
    return HttpResponse(dumps(data), status=status, content_type="application/json")


def refusal(exc: BadQuery, status: int = 400) -> HttpResponse:
    return json_response({"error": str(exc), "errors": exc.errors}, status)


def json_get(view):
    """A JSON endpoint read with GET: other methods answer 405 in JSON, a BadQuery 400 in JSON."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            response = json_response({"error": f"{shown(request.method)} is not allowed here; use GET."}, 405)
            response["Allow"] = "GET, HEAD"
            return response
        try:
            return view(request, *args, **kwargs)
        except BadQuery as exc:
            return refusal(exc)

    return wrapper


def whole(name: str, raw: str, *, lo: int = MIN_INT, hi: int = MAX_INT) -> int:
    """`raw` as an integer in [lo, hi], or BadQuery in words."""
    text = raw.strip()
    if not _WHOLE.fullmatch(text):
        if re.fullmatch(r"[+-]?[0-9]+", text):  # digits, but more than any id or count has
            raise BadQuery({name: [f"Must be between {lo:,} and {hi:,}; got a number of {len(text):,} digits."]})
        raise BadQuery({name: [f"Expected a whole number, got {shown(raw)}."]})
    value = int(text)
    if not lo <= value <= hi:
        span = f"at least {lo:,}" if hi == MAX_INT else f"between {lo:,} and {hi:,}"
        raise BadQuery({name: [f"Must be {span} (got {value:,})."]})
    return value


def integer(request, name: str, default=None, *, lo: int = MIN_INT, hi: int = MAX_INT, cap: bool = False):
    """?name= as an integer in [lo, hi]; absent or empty: `default`. With `cap`, a larger value
    (however long) counts as `hi` (a page size asked too large is the largest page)."""
    raw = request.GET.get(name)
    if raw is None or raw.strip() == "":
        return default
    if cap and re.fullmatch(r"\+?[0-9]+", raw.strip()) and (len(raw.strip()) > 30 or int(raw) > hi):
        return hi
    return whole(name, raw, lo=lo, hi=hi)


def json_value(request, name: str, kind: type, default):
    """?name= as JSON of type `kind` (dict or list), strictly parsed; absent or empty: `default`."""
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = loads(raw)
    except InputError as exc:
        raise BadQuery({name: [f"Not valid JSON: {exc}."]}) from None
    if not isinstance(value, kind):
        raise BadQuery({name: [f"Expected a JSON {'object' if kind is dict else 'list'}, got {shown(value)}."]})
    return value


def run_ids(name: str, raw: str, *, most: int) -> list[int]:
    """Comma-separated run ids (at most `most` of them), each a positive database id."""
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if len(parts) > most:
        raise BadQuery({name: [f"At most {most:,} run numbers at a time (got {len(parts):,})."]})
    ids = []
    for p in parts:
        if not (p.isascii() and p.isdigit() and len(p) <= 19 and 0 < int(p) <= MAX_INT):
            raise BadQuery({name: [f"{shown(p)} is not a run number; use {name}=3,4."]})
        ids.append(int(p))
    return ids
