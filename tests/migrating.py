"""Moving the test database to a migration and back, for the tests of data migrations."""

import contextlib

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(target):
    """Migrate to `target` ((app, name)); the historical apps at that state."""
    MigrationExecutor(connection).migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


@contextlib.contextmanager
def at_migration(target):
    """The database at `target` for the block, then at the newest migration again."""
    try:
        yield migrate(target)
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes("runs")[0])
