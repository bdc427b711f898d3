"""Throttling of failed logins (django-axes) and of sign-ups (django-ratelimit; refused API tokens
in runs/tokens.py likewise), by the client's address as the site can trust it, with a page that
says when to try again."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render
from django.utils import timezone
from django_ratelimit.core import get_usage


def client_address(request) -> str:
    """The connection's address; behind OPTSITE_PROXIES proxies, the address the outermost one
    saw (X-Forwarded-For counted from the right: each proxy appends the address it saw, so what
    lies further left is the client's to invent)."""
    address = request.META.get("REMOTE_ADDR", "")
    proxies = settings.OPTSITE_PROXIES
    if proxies:
        seen = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(seen) >= proxies:
            address = seen[-proxies]
    return address


def until(seconds: float) -> str:
    at = timezone.localtime() + timedelta(seconds=seconds)
    minutes = max(1, round(seconds / 60))
    return f"after {at:%H:%M} {at.tzname()} (in {minutes} minute{'s' if minutes != 1 else ''})"


def login_locked_out(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the login page again, saying why and until when (each attempt
    while locked out starts the cool-off anew, so it is counted from now)."""
    cool_off = settings.AXES_COOLOFF_TIME.total_seconds()
    message = ("Too many failed logins from your address or for this account. "
               f"Try again {until(cool_off)}.")
    form = AuthenticationForm(request, initial={"username": request.POST.get("username", "")[:150]})
    return render(request, "registration/login.html", {"form": form, "throttled": message}, status=429)


def _signups(request, increment: bool) -> dict:
    rate = f"{settings.OPTSITE_SIGNUPS_PER_ADDRESS}/{settings.OPTSITE_SIGNUP_WINDOW}s"
    return get_usage(request, group="signup", key=lambda _group, req: client_address(req), rate=rate,
                     method="POST", increment=increment)


def signup_refusal(request) -> str | None:
    """Words for a sign-up from an address that has made its accounts for now, else None."""
    usage = _signups(request, increment=False)
    if usage is None or usage["count"] < usage["limit"]:
        return None
    return (f"{usage['limit']} accounts were made from your address in a short time. "
            f"Try again {until(usage['time_left'])}.")


def count_signup(request) -> None:
    _signups(request, increment=True)
