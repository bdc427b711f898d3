"""The site's own settings with one view that fails on purpose (tests/faulty_site_urls.py): a
server started with DJANGO_SETTINGS_MODULE=tests.faulty_site_settings shows what a real 500 does."""

from optsite.settings import *  # noqa: F401,F403

ROOT_URLCONF = "tests.faulty_site_urls"
