"""One exception hierarchy for everything the server refuses, in the server's own words.

Every error has `.code` (the server's code: "invalid_spec", "not_found", ... or the client's own
for a failure the server did not name), `.message` (words) and `.errors` (field -> [words], `{}`
when nothing is per field).
"""

from __future__ import annotations

from typing import Any


class OptsiteError(Exception):
    """The server refused something, or could not be understood or reached."""

    default_code = "error"

    def __init__(self, message: str, code: str | None = None, errors: dict[str, list[str]] | None = None,
                 status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.errors: dict[str, list[str]] = errors or {}
        self.status = status  # the HTTP status, for an HTTP answer

    def __str__(self) -> str:
        if not self.errors:
            return self.message
        fields = "; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items())
        return f"{self.message} ({fields})"


class Unauthorized(OptsiteError):
    """The token is malformed, unknown or revoked (HTTP 401, socket close 4401)."""

    default_code = "unauthorized"


class NotFound(OptsiteError):
    """No such run or study of yours (someone else's looks the same), or it was deleted."""

    default_code = "not_found"


class Invalid(OptsiteError):
    """A spec, a message or a parameter the server refused; `.errors` says where."""

    default_code = "invalid_spec"


class Conflict(OptsiteError):
    """A control that cannot apply now (e.g. on an ended run) (HTTP 409)."""

    default_code = "conflict"


class Limit(OptsiteError):
    """Over one of the server's caps, or throttled (HTTP 429)."""

    default_code = "limit"


class BadAnswer(OptsiteError):
    """The server answered something this client cannot read (not JSON, not the expected shape)."""

    default_code = "bad_answer"


class Unreachable(OptsiteError):
    """The server could not be reached (or reached again) in time."""

    default_code = "unreachable"


class Timeout(OptsiteError, TimeoutError):
    """What was waited for did not come in time."""

    default_code = "timeout"


class DeliveryWarning(UserWarning):
    """An external run's steps could not be sent to the server (yet): the optimization goes on, and
    the words say where the steps are kept."""


_BY_CODE: dict[str, type[OptsiteError]] = {
    "unauthorized": Unauthorized, "not_found": NotFound, "deleted": NotFound, "invalid_spec": Invalid,
    "bad_message": Invalid, "conflict": Conflict, "limit": Limit,
}
_BY_STATUS: dict[int, type[OptsiteError]] = {401: Unauthorized, 403: Unauthorized, 404: NotFound, 400: Invalid,
                                             409: Conflict, 429: Limit}


def _field_errors(value: Any) -> dict[str, list[str]]:
    """The server's `errors`, as field -> [text]; anything else it might send is kept as text."""
    if not isinstance(value, dict):
        return {}
    return {str(k): [str(m) for m in v] if isinstance(v, list) else [str(v)] for k, v in value.items()}


def from_message(message: dict[str, Any]) -> OptsiteError:
    """The exception for a socket's {"type": "error", "code", "message", "errors"}."""
    code = str(message.get("code") or "error")
    cls = _BY_CODE.get(code, OptsiteError)
    return cls(str(message.get("message") or f"The server refused that ({code})."), code,
               _field_errors(message.get("errors")))


def from_http(status: int, body: Any, what: str) -> OptsiteError:
    """The exception for an HTTP error answer: `body` is its JSON (or None), `what` the request."""
    words = body.get("error") if isinstance(body, dict) else None
    code = body.get("code") if isinstance(body, dict) and isinstance(body.get("code"), str) else None
    errors = _field_errors(body.get("errors")) if isinstance(body, dict) else {}
    if code in _BY_CODE:
        cls = _BY_CODE[code]
    elif status >= 500:
        cls = OptsiteError
        code = "server_error"
    else:
        cls = _BY_STATUS.get(status, OptsiteError)
        code = {429: "throttled", 400: "bad_request", 403: "forbidden", 405: "method_not_allowed"}.get(status)
    if not isinstance(words, str) or not words:
        words = f"The server answered {what} with HTTP {status}."
    return cls(words, code, errors, status)
