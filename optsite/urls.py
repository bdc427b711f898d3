from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from optsite import views

urlpatterns = [
    path("", RedirectView.as_view(url="/runs/", permanent=False)),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/password_reset/", views.password_reset, name="password_reset"),
    path("accounts/password_reset/done/", views.password_reset_done, name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", views.password_reset_confirm, name="password_reset_confirm"),
    path("accounts/reset/done/", views.password_reset_complete, name="password_reset_complete"),
    path("accounts/tokens/", views.tokens_page, name="tokens"),
    path("accounts/tokens/<int:token_id>/revoke/", views.revoke_token, name="token-revoke"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("runs.urls")),
]

# The site's own error pages; JSON for the JSON API (optsite/errors.py).
handler400 = "optsite.errors.bad_request"
handler403 = "optsite.errors.permission_denied"
handler404 = "optsite.errors.page_not_found"
handler500 = "optsite.errors.server_error"
