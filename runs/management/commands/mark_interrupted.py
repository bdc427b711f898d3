"""Interrupt runs whose worker is gone (every server process's monitor does this by itself)."""

from django.core.management.base import BaseCommand

from runs import services


class Command(BaseCommand):
    help = ("Mark running runs whose worker's lease has expired `interrupted` (and queue them again "
            "unless OPTSITE_AUTO_RESUME=0).")

    def add_arguments(self, parser):
        parser.add_argument(
            "--stale-after", type=float, default=None,
            help="instead, every running run whose worker has not been heard of for this many seconds "
                 "(0 = every running run, for workers that are known to be down)")

    def handle(self, *args, stale_after=None, **options):
        marked = services.sweep_orphans(stale_after=stale_after)
        self.stdout.write(f"marked {len(marked)} run(s) interrupted" + (f": {', '.join(map(str, marked))}" if marked else ""))
