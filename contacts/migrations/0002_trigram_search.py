"""pg_trgm and its GIN indexes for fuzzy search (PostgreSQL only; SQLite searches without them).

One index per searched column, so that `col % term OR col ILIKE '%term%'` on each column is a
BitmapOr of index scans. CREATE EXTENSION needs a role allowed to create it (the database owner
on PostgreSQL 13+ for trusted extensions such as pg_trgm).
"""

from django.db import migrations

COLUMNS = ["first_name", "last_name", "display_name", "email", "phone"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS contact_trgm_{column} ON contacts_contact USING gin ("{column}" gin_trgm_ops)'
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS contact_trgm_{column}")


class Migration(migrations.Migration):
    dependencies = [("contacts", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
