"""sort=name (issue 11): a case- and accent-insensitive collation for PostgreSQL's ORDER BY and
keyset comparisons. SQLite needs nothing (contacts.apps registers py_sortfold)."""

from django.db import migrations

CREATE = ("CREATE COLLATION IF NOT EXISTS crm_fold "
          "(provider = icu, locale = 'und-u-ks-level1', deterministic = false)")


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP COLLATION IF EXISTS crm_fold")


class Migration(migrations.Migration):
    dependencies = [("contacts", "0006_consent_trash_suppression_ledger")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
