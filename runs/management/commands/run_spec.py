"""Run a spec headless through the same services as the sockets (stored, and published to the layer)."""

import json
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from runs import services
from runs.optim.jsoninput import InputError, loads


class Command(BaseCommand):
    help = "Launch a run from a spec JSON file (or - for stdin) for a user, wait for it, print the Run."

    def add_arguments(self, parser):
        parser.add_argument("spec", nargs="?", help="path to a run spec JSON file, or - for stdin")
        parser.add_argument("--user", required=True, help="username of the run's owner")
        parser.add_argument("--label", default="")
        parser.add_argument("--resume", type=int, metavar="RUN_ID",
                            help="instead of launching, continue this interrupted run of the user")

    def handle(self, *args, spec, user, label, resume, **options):
        try:
            owner = get_user_model().objects.get(username=user)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {user!r}") from None
        try:
            if resume is not None:
                accepted, run = services.resume_run(user=owner, run_id=resume)
            elif spec is None:
                raise CommandError("give a spec file (or - for stdin), or --resume RUN_ID")
            else:
                text = sys.stdin.read() if spec == "-" else open(spec).read()
                try:
                    data = loads(text)  # the strict reader every way in shares (no NaN, no deep nesting)
                except InputError as exc:
                    raise CommandError(f"the spec is not valid JSON: {exc}") from None
                run = services.launch(owner=owner, data=data, label=label)
        except services.ServiceError as exc:
            raise CommandError(f"{exc.code}: {exc.message} {json.dumps(exc.errors)}") from None
        self.stderr.write(f"run {run['id']} started; waiting for it (Ctrl-C stops it)")
        try:
            while not services.wait_for_run(run_id=run["id"], timeout=1.0, until=services.ENDED):
                pass
        except KeyboardInterrupt:
            services.stop_run_and_wait(run_id=run["id"])
        final = services.run_to_dict(services.get_run_for(owner, run["id"]))
        self.stdout.write(services.dumps(final))
