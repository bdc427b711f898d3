"""Accounts: sign-up, login, password reset (offered only when the site can send mail), and the
personal API tokens (runs/tokens.py)."""

from functools import wraps

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from optsite import throttle
from optsite.accounts import SignupForm, TokenForm
from runs.query import MAX_INT


@login_not_required
@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("/runs/")
    refusal = throttle.signup_refusal(request) if request.method == "POST" else None
    if refusal:
        form = SignupForm(initial={"username": request.POST.get("username", "")[:150]})
        return render(request, "registration/signup.html", {"form": form, "throttled": refusal}, status=429)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        throttle.count_signup(request)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("/runs/new/")
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


class LoginView(auth_views.LoginView):
    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "password_reset": settings.OPTSITE_PASSWORD_RESET}


def _needs_mail(view):
    """Without mail a reset link reaches nobody: say so instead of pretending to send one."""

    @login_not_required
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not settings.OPTSITE_PASSWORD_RESET:
            return render(request, "registration/password_reset_unavailable.html", status=404)
        return view(request, *args, **kwargs)

    return guarded


password_reset = _needs_mail(auth_views.PasswordResetView.as_view(
    email_template_name="registration/password_reset_email.txt",
    subject_template_name="registration/password_reset_subject.txt",
))
password_reset_done = _needs_mail(auth_views.PasswordResetDoneView.as_view())
password_reset_confirm = _needs_mail(auth_views.PasswordResetConfirmView.as_view())
password_reset_complete = _needs_mail(auth_views.PasswordResetCompleteView.as_view())


# ---- API tokens -----------------------------------------------------------------------------------
@never_cache  # a new token's text is in the page: no cache may keep it
@require_http_methods(["GET", "POST"])
def tokens_page(request):
    """The account's tokens; POST names a new one, whose text this answer shows, and no other."""
    from runs import tokens

    form = TokenForm(request.POST or None, owner=request.user)
    made = None
    if request.method == "POST" and form.is_valid():
        token, text = tokens.issue(request.user, form.cleaned_data["name"])
        made = {"token": token, "text": text}
        form = TokenForm(owner=request.user)
    context = {"nav": "tokens", "form": form, "made": made, "tokens": tokens.active_for(request.user),
               "max_tokens": tokens.MAX_TOKENS}
    return render(request, "registration/tokens.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def revoke_token(request, token_id: int):
    """GET asks to confirm; POST revokes: the token's requests are refused from now on, its open
    sockets at their next message."""
    from runs import tokens

    token = tokens.active_for(request.user).filter(pk=token_id).first() if token_id <= MAX_INT else None
    if token is None:
        raise Http404("You have no such token (it may be revoked already).")
    if request.method == "GET":
        return render(request, "registration/token_revoke.html", {"nav": "tokens", "token": token})
    tokens.revoke(token)
    messages.success(request, f"Token “{token.name}” ({token.prefix}…) is revoked: it works nowhere any more.")
    return redirect("tokens")
