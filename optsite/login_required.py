"""Every page for signed-in users only: Django's LoginRequiredMiddleware, with a `next` that fits.

A visitor without a session is sent to the login page with the address to come back to. Django
refuses to redirect to a URL over 16,384 characters (DisallowedRedirect: a 400 logged with its
traceback), so a hostile query string made every such visit a logged error. Past MAX_NEXT the
login comes back to the page's path alone, and past that to the site's default.
"""

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import resolve_url

MAX_NEXT = 2048  # what Django's own URL helpers take as a URL's length (django.utils.http.MAX_URL_LENGTH)


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    def handle_no_permission(self, request, view_func):
        nxt = request.get_full_path()
        if len(nxt) > MAX_NEXT:
            nxt = request.path if len(request.path) <= MAX_NEXT else resolve_url(settings.LOGIN_REDIRECT_URL)
        return redirect_to_login(nxt, resolve_url(self.get_login_url(view_func)), self.get_redirect_field_name(view_func))
