"""Personal API tokens: `Authorization: Bearer <token>` in place of a session, for scripts.

A token is "opt_" and 43 URL-safe characters (256 random bits). Only its SHA-256 is stored: the
text is shown once, when it is made (the account page, optsite/views.py), and a request's token is
found by the digest of what it sends, so no stored secret is ever compared character by character.

Tokens authenticate every JSON endpoint (/api/...) and the GET downloads (*.json, *.csv), and the
handshakes of both sockets (the header, or ?token= for clients that cannot set headers: a
browser's WebSocket). The user is then the token's owner, whatever session comes along. No browser
attaches a token by itself, as it does a cookie, so neither CSRF nor the sockets' Origin rule
applies to a token's request. A handshake with a refused token is refused (HTTP 403) as one
without a session is, even if a session comes along. A socket opened with a token is closed with
REFUSED when the token is revoked: told at once through the channel layer, and, should that event
be lost, at its next message (each one checks the token anew).

Failures (a malformed, unknown or revoked token) are counted per client address in the cache
"throttle" (django-ratelimit, as sign-ups are): past OPTSITE_TOKEN_FAILURES within
OPTSITE_TOKEN_WINDOW seconds, the address's token requests are answered 429 until the window ends,
even with a good token, so that answers tell a guesser nothing more.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_ratelimit.core import get_usage

from optsite.throttle import client_address, until
from runs.models import ApiToken
from runs.query import json_response

PREFIX = "opt_"
SHOWN = 12  # characters kept in view to tell tokens apart: "opt_" and 8 of the random ones
MAX_TOKENS = 20  # active tokens per account
MAX_NAME = 100
TOUCH_EVERY = timedelta(minutes=1)  # last_used is written at most this often, not with every request
# The close code of an open socket whose token is revoked: do not reconnect with that token.
REFUSED = 4401
_FORM = re.compile(r"opt_[A-Za-z0-9_-]{43}")
_LONGEST = 200  # anything longer is not worth hashing
PAGE = "/accounts/tokens/"
NEEDS_LOGIN = ("Log in first (POST /accounts/login/), or send Authorization: Bearer <token> with a token "
               f"from {PAGE}; this endpoint needs a session or a token.")


class Refused(Exception):
    """A token that does not authenticate, in words; `status` 401, or 429 while throttled."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.message = message
        self.status = status


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()  # only ever of text that has a token's form


def active_for(owner):
    return ApiToken.objects.filter(owner=owner, revoked__isnull=True)


def issue(owner, name: str) -> tuple[ApiToken, str]:
    """A new token of `owner` and its text (the only time the text exists outside the client).
    The caller has checked the name and the cap (optsite/accounts.py)."""
    text = PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(owner=owner, name=name, prefix=text[:SHOWN], digest=digest(text))
        # revoked tokens are kept a while (a socket may still hold one), the newest few only
        old = ApiToken.objects.filter(owner=owner, revoked__isnull=False).order_by("-revoked")[MAX_TOKENS:]
        ApiToken.objects.filter(pk__in=list(old.values_list("pk", flat=True))).delete()
    return token, text


def group_of(token_id: int) -> str:
    """The channel-layer group of the sockets opened with a token (runs/consumers.py)."""
    return f"token-{token_id}"


def revoke(token: ApiToken) -> None:
    """From now on the token is refused; its open sockets are told at once (and, should that
    event be lost, at their next message)."""
    from runs.publishing import publish

    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk, revoked__isnull=True).update(revoked=timezone.now())
        transaction.on_commit(lambda: publish(group_of(token.pk), {"type": "token.revoked", "token": token.pk}))


# ---- checking a token ---------------------------------------------------------------------------
def _failures(address: str, increment: bool) -> dict | None:
    rate = f"{settings.OPTSITE_TOKEN_FAILURES}/{settings.OPTSITE_TOKEN_WINDOW}s"
    return get_usage(SimpleNamespace(address=address), group="token", key=lambda _group, who: who.address,
                     rate=rate, increment=increment)


def _malformed(text: str) -> str | None:
    where = f"make one at {PAGE}"
    if not text:
        return f"The Authorization header says Bearer but holds no token; {where}."
    if len(text) > _LONGEST:
        return f"That is not an optsite token: it has {len(text):,} characters, a token has 47; {where}."
    if not text.startswith(PREFIX):
        return f"That is not an optsite token: tokens begin with {PREFIX}; {where}."
    if not _FORM.fullmatch(text):
        return f"That is not an optsite token: a token is {PREFIX} and 43 letters, digits, - or _; {where}."
    return None


def authenticate(text: str, address: str) -> ApiToken:
    """The token (with its owner) whose text this is, or Refused in words (never quoting it)."""
    usage = _failures(address, increment=False)
    if usage is not None and usage["count"] >= usage["limit"]:
        raise Refused(f"Too many refused tokens from your address. Try again {until(usage['time_left'])}.", 429)
    problem = _malformed(text)
    token = None if problem else ApiToken.objects.select_related("owner").filter(digest=digest(text)).first()
    if problem is None:
        if token is None:
            problem = f"That token is not known here; check it, or make one at {PAGE}."
        elif token.revoked is not None:
            problem = f"That token was revoked on {_when(token.revoked)}; make a new one at {PAGE}."
        elif not token.owner.is_active:
            problem = "That token's account is not active."
    if problem is not None:
        _failures(address, increment=True)
        raise Refused(problem)
    now = timezone.now()
    if token.last_used is None or now - token.last_used >= TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        token.last_used = now
    return token


def _when(moment) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}"


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None: other schemes (a proxy's
    Basic credentials) are not ours and pass untouched."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else None


def revoked_since(token_id: int) -> str | None:
    """Words for a socket whose token no longer holds (revoked, removed, its account inactive), else None."""
    token = ApiToken.objects.select_related("owner").filter(pk=token_id).first()
    if token is None or not token.owner.is_active:
        return "This socket's token no longer exists; make a new one at /accounts/tokens/."
    if token.revoked is not None:
        return f"This socket's token was revoked on {_when(token.revoked)}; the socket is closed."
    return None


# ---- HTTP -----------------------------------------------------------------------------------------
def takes_tokens(request) -> bool:
    """The JSON API, any method, and the downloads (run and study exports, CSVs), read with GET."""
    path = request.path_info
    return path.startswith("/api/") or (request.method in ("GET", "HEAD") and path.endswith((".json", ".csv")))


class BearerTokenMiddleware:
    """After AuthenticationMiddleware: a request with a Bearer token is its owner's, without CSRF;
    a refused token answers 401 (429 while throttled) in JSON, never the login page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        text = bearer(request.META.get("HTTP_AUTHORIZATION")) if takes_tokens(request) else None
        if text is not None:
            try:
                token = authenticate(text, client_address(request))
            except Refused as refused:
                response = json_response({"error": refused.message}, refused.status)
                if refused.status == 401:
                    response["WWW-Authenticate"] = 'Bearer realm="optsite", error="invalid_token"'
                return response
            user = token.owner
            request.user = user
            request.auser = sync_to_async(lambda: user)
            request.api_token = token
            request._dont_enforce_csrf_checks = True  # no browser sends it by itself
        return self.get_response(request)


# ---- sockets --------------------------------------------------------------------------------------
def offered(scope) -> str | None:
    """The token a handshake offers (Authorization: Bearer, else ?token=), or None."""
    for key, value in scope.get("headers", ()):
        if key.lower() == b"authorization":
            text = bearer(value.decode("latin-1"))
            if text is not None:
                return text
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return query["token"][-1] if "token" in query else None


def socket_address(scope) -> str:
    headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
    client = scope.get("client") or ("", 0)
    return client_address(SimpleNamespace(META={"REMOTE_ADDR": client[0] or "",
                                                "HTTP_X_FORWARDED_FOR": headers.get(b"x-forwarded-for", "")}))


class TokenSocketMiddleware:
    """Inside AuthMiddlewareStack: a handshake that offers a token is its owner's (scope["token"]
    holds the token's id for the re-checks), whatever the session; a refused one is refused."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        text = offered(scope) if scope["type"] == "websocket" else None
        if text is None:
            return await self.inner(scope, receive, send)
        try:
            token = await database_sync_to_async(authenticate)(text, socket_address(scope))
        except Refused:
            # As a handshake without a session is (PROTOCOL): refused before accept, HTTP 403.
            # The same token on any JSON endpoint says why in words.
            await receive()  # websocket.connect
            await send({"type": "websocket.close"})
            return None
        return await self.inner(dict(scope, user=token.owner, token=token.pk), receive, send)


async def socket_refusal(scope) -> str | None:
    """For a socket opened with a token, words when the token no longer holds; None otherwise."""
    token_id = scope.get("token")
    return None if token_id is None else await database_sync_to_async(revoked_since)(token_id)
