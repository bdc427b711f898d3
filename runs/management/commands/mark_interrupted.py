"""Mark runs left behind by a dead server `interrupted` (the server's monitor does this by itself)."""

from django.core.management.base import BaseCommand

from runs import services


class Command(BaseCommand):
    help = "Mark active runs that no server drives `interrupted`, so their owners can resume them."

    def add_arguments(self, parser):
        parser.add_argument(
            "--stale-after", type=float, default=None,
            help="seconds without a heartbeat before a run counts as orphaned "
                 "(default: the monitor's; 0 = every active run, for a single server that is down)")

    def handle(self, *args, stale_after=None, **options):
        kwargs = {} if stale_after is None else {"stale_after": stale_after}
        marked = services.sweep_orphans(**kwargs)
        self.stdout.write(f"marked {len(marked)} run(s) interrupted" + (f": {', '.join(map(str, marked))}" if marked else ""))
