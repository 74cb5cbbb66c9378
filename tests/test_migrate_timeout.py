"""A migration never dies of a statement timeout (issue 13 item 14): not of the API's, not of
JOB_STATEMENT_TIMEOUT's that every command connection carries, not of one set on the database."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models.signals import pre_migrate

pytestmark = [pytest.mark.postgres, pytest.mark.django_db,
              pytest.mark.skipif(connection.vendor != "postgresql", reason="statement_timeout: PostgreSQL")]


def test_migrate_runs_a_statement_longer_than_the_connections_statement_timeout():
    def slow_migration(**kwargs):
        # Stands for a migration statement that runs long (an index built on a big table): it
        # runs on migrate's connection, after migrate has set it up, as every operation does.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.5)")
            slept.append(True)

    slept = []
    with connection.cursor() as cursor:  # as JOB_STATEMENT_TIMEOUT or ALTER DATABASE would set it
        cursor.execute("SET statement_timeout = '100ms'")
    pre_migrate.connect(slow_migration, weak=False, dispatch_uid="slow-migration")
    try:
        call_command("migrate", verbosity=0, interactive=False)
    finally:
        pre_migrate.disconnect(dispatch_uid="slow-migration")
    assert slept  # pre_migrate runs once per app: the sleep ran, and was not cancelled
