"""The site's URLs plus /fault/, a view whose bug raises, as any unforeseen one would."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path

from optsite.urls import handler400, handler403, handler404, handler500, urlpatterns as site  # noqa: F401

FAULT = "a fault on purpose: 1 / 0 in tests/faulty_site_urls.py"


@login_not_required
def fault(request):
    raise ZeroDivisionError(FAULT)


urlpatterns = [path("fault/", fault), *site]
