"""HTTP to the server with the standard library: a bearer token on every request, no redirects,
and every failure turned into an OptsiteError in words."""

from __future__ import annotations

import html
import json
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .errors import BadAnswer, OptsiteError, Unreachable, from_http

USER_AGENT = "optsite-client/0.1.0"


def clip(text: str, n: int = 120) -> str:
    """Enough of a server's text to recognise it, never a page of it."""
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[:n] + "…")


def page_words(text: str) -> str | None:
    """What an HTML error page says (the site's pages: a heading, then a paragraph), as plain text."""
    heading = re.search(r"<h1[^>]*>(.*?)</h1>(.*)", text, re.S | re.I)
    if heading is None:
        return None
    first = re.search(r"<p[^>]*>(.*?)</p>", heading.group(2), re.S | re.I)
    parts = [heading.group(1)] + ([first.group(1)] if first else [])
    words = [" ".join(html.unescape(re.sub(r"<[^>]+>", "", part)).split()) for part in parts]
    return ": ".join(w for w in words if w)[:400] or None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect is the login page (a download without a valid login): an error, not a page to read.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Http:
    """GET and POST of one server, as the owner of `token`."""

    def __init__(self, base: str, token: str, timeout: float):
        self.base, self.token, self.timeout = base, token, timeout
        self.opener = urllib.request.build_opener(_NoRedirect())

    def request(self, method: str, path: str, query: dict[str, Any] | None = None,
                body: Any = None) -> tuple[int, str, bytes]:
        """(status, content type, body) of a 2xx answer; an OptsiteError for anything else."""
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        what = f"{method} {path}"
        headers = {"Authorization": f"Bearer {self.token}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=self.timeout) as answer:
                return answer.status, answer.headers.get("Content-Type", ""), answer.read()
        except urllib.error.HTTPError as refused:
            raw = refused.read()
            if 300 <= refused.code < 400:
                raise OptsiteError(f"The server answered {what} with a redirect to "
                                   f"{refused.headers.get('Location')!r} (a login page?), not an answer.",
                                   "redirect", status=refused.code) from None
            try:
                answer_body = json.loads(raw)
            except ValueError:
                answer_body = None
            error = from_http(refused.code, answer_body, what)
            if answer_body is None and raw:
                text = raw.decode("utf-8", "replace")
                words = page_words(text)
                if words:
                    error.message = words if words.endswith((".", "!", "?")) else words + "."
                else:
                    error.message = f"{error.message} It said: {clip(text)}"
                error.args = (error.message,)
            raise error from None
        except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as failed:
            reason = getattr(failed, "reason", failed)
            raise Unreachable(f"Could not reach {self.base} for {what}: {reason}.") from None

    def json(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        status, kind, raw = self.request(method, path, query, body)
        try:
            return json.loads(raw)
        except ValueError:
            raise BadAnswer(f"The server's answer to {method} {path} is not JSON (HTTP {status}, "
                            f"{kind or 'no content type'}): {clip(raw.decode('utf-8', 'replace'))}.") from None

    def get(self, path: str, **query: Any) -> Any:
        return self.json("GET", path, query)

    def post(self, path: str, body: Any = None) -> Any:
        return self.json("POST", path, None, {} if body is None else body)

    def text(self, path: str) -> str:
        _, _, raw = self.request("GET", path)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadAnswer(f"The server's answer to GET {path} is not UTF-8 text.") from None


_JSON_NAMES = {dict: "object", list: "array", str: "string", int: "whole number", float: "number"}


def expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """`value` if it has the shape the protocol promises, else BadAnswer naming what was wrong."""
    if not isinstance(value, kind):
        names = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise BadAnswer(f"The server's {what} is not a JSON {names}: {clip(json.dumps(value))}.")
    return value
