"""The Celery application of the scale-out mode: `celery -A optsite worker -Q runs`.

Configured from Django's settings (the CELERY_* names in optsite/settings.py); its one task is
runs.tasks.drive_run. Celery's Django fixup sets Django up in the worker and gives each pool
process database connections of its own.
"""

import logging
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "optsite.settings")

app = Celery("optsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["runs"])


@signals.after_setup_logger.connect
def _one_line_per_record(**_):
    # Django's LOGGING gives the project's logger a console handler; in a worker, Celery's handler
    # on the root logger (which names the pool process) prints the same records already.
    logging.getLogger("runs").handlers.clear()
