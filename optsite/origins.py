"""Which web pages may open a logged-in socket: an Origin must match the site's own origin or one
on the allow-list in scheme, host and port, the rule Django's CSRF check applies to forms.

A browser sends its session cookie with a WebSocket handshake from any page, and a socket is not
bound by the same-origin policy: without this check any other site, or any other service on the
same machine (another port of 127.0.0.1), could act as the logged-in user.
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise(text: str) -> str | None:
    """`text` as a browser writes an Origin (lower case, no default port, no path), or None when it
    is not an http(s) origin."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path.strip("/") or parts.query \
            or parts.fragment or parts.username is not None or "*" in parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else "")


def host_of(origin: str) -> str:
    """The host of an origin as ALLOWED_HOSTS spells it ("[::1]" for IPv6)."""
    host = urlsplit(origin).hostname or ""
    return f"[{host}]" if ":" in host else host


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def own_origin(scope) -> str | None:
    """The origin this handshake was addressed to (its Host header, with the scheme it came by
    or, behind a trusted proxy, the one the proxy says), if that host is an allowed one."""
    from django.conf import settings
    from django.http.request import split_domain_port, validate_host

    host = _header(scope, b"host")
    if not host:
        return None
    domain, _port = split_domain_port(host.lower())
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    secure = scope.get("scheme") in ("wss", "https")
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = _header(scope, b"x-forwarded-proto")
        if forwarded is not None:
            secure = forwarded.split(",")[0].strip().lower() == "https"
    return normalise(f"{'https' if secure else 'http'}://{host}")


def allowed(scope) -> bool:
    from django.conf import settings

    origin = _header(scope, b"origin")
    origin = normalise(origin) if origin else None
    if origin is None:
        return False
    return origin == own_origin(scope) or origin in settings.OPTSITE_ALLOWED_ORIGINS


class OriginValidator:
    """ASGI middleware: a WebSocket handshake from an origin that is not allowed is refused (403)
    before anything reads its session. One that offers an API token passes whatever its origin:
    a page cannot make a browser send a token as it sends a cookie, and the session is then not
    used (runs/tokens.py)."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        from runs.tokens import offered

        if scope["type"] == "websocket" and offered(scope) is None and not allowed(scope):
            await receive()  # websocket.connect
            await send({"type": "websocket.close"})  # before accept: the server answers 403
            return None
        return await self.application(scope, receive, send)
