"""Hand every queued run to the workers again (after a broker lost its messages)."""

from django.core.management.base import BaseCommand

from runs import dispatch
from runs.run_objects import queued_runs


class Command(BaseCommand):
    help = ("Queue every run whose status is queued again, in queue order. Harmless for runs that "
            "still have their message: the first worker to claim a run takes it, the rest do nothing.")

    def handle(self, *args, **options):
        if not dispatch.uses_celery():
            self.stdout.write("the local pool takes queued runs from the database when its server starts")
            return
        ids = list(queued_runs().values_list("pk", flat=True))
        for run_id in ids:
            dispatch.enqueue(run_id)
        self.stdout.write(f"queued {len(ids)} run(s) again" + (f": {', '.join(map(str, ids))}" if ids else ""))
