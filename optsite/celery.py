"""The Celery application of the scale-out mode: `celery -A optsite worker -Q runs`.

Configured from Django's settings (the CELERY_* names in optsite/settings.py); its one task is
runs.tasks.drive_run.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "optsite.settings")

app = Celery("optsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["runs"])
