"""`manage.py migrate` without a statement timeout.

Every other connection of a command carries JOB_STATEMENT_TIMEOUT (settings.py), and a database
or role may carry one of its own (`ALTER DATABASE … SET statement_timeout`). A migration must not
die of it halfway through an upgrade: building an index on a large table can run longer than any
request or job should (docs/deploy.md lists those that do). What keeps a migration online is
that it takes no long lock (tests/test_migrations_online_safe.py), not a timer.
"""

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        connection = connections[options["database"]]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = 0")
        return super().handle(*args, **options)
