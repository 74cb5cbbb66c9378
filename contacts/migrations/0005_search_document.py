"""One search document per contact with one trigram index, instead of seven trigram indexes;
and the btree indexes no measured query needs dropped (bench/README.md, "Index diet").

Online-safe on a big table (non-atomic: each step takes only brief locks):

1. `ADD COLUMN search_doc text DEFAULT '' NOT NULL`: PostgreSQL 11+ stores the default in the
   catalog, no table rewrite.
2. The backfill walks the primary key in batches of BATCH rows, each batch its own short
   transaction (`UPDATE … FROM (VALUES …)` of the rows whose document differs), building each
   document with contacts.search.search_document — the one function every write path uses.
   Rows written meanwhile by the new code already carry their document; a row an old process
   writes after its batch passed is caught by running `manage.py rebuild_search_docs`
   once the deploy is done (the same batched function).
3. `CREATE INDEX CONCURRENTLY` of the one trigram GIN index (a single build, after the
   backfill: ~10× cheaper than maintaining it during it), then `DROP INDEX CONCURRENTLY` of the
   seven per-column trigram indexes of migrations 0002/0003 and of the unneeded btrees.

SQLite: the same column and backfill; no trigram index (search is a substring match there).
"""

from django.db import migrations, models
from django.db.models.functions import Upper

BATCH = 5000

TRIGRAM_INDEX = "contact_search_doc_trgm"
OLD_TRIGRAM_INDEXES = {
    "contact_trgm_first_name": '("first_name")',
    "contact_trgm_last_name": '("last_name")',
    "contact_trgm_display_name": '("display_name")',
    "contact_trgm_email": '("email")',
    "contact_trgm_phone": '("phone")',
    "contact_trgm_company": '("company")',
    "contact_trgm_secondary_phones": '(("secondary_phones")::text)',
}

# The btree indexes the diet drops: no measured query uses them, and each costs every COPY of
# contacts (bench/README.md, "Index diet", has the figures). (name, fields or expression)
DROPPED_BTREES = [
    models.Index(fields=["organization", "country", "updated_at", "id"], name="contact_org_country"),
    models.Index(fields=["organization", "is_textable", "updated_at", "id"], name="contact_org_textable"),
    models.Index(fields=["organization", "external_id"], name="contact_org_external_id"),
    models.Index(Upper("last_name"), "organization", name="contact_org_last_name"),
]


def backfill(apps, schema_editor):
    from contacts.search import rebuild_search_documents

    rebuild_search_documents(apps.get_model("contacts", "Contact"), batch=BATCH, using=schema_editor.connection.alias)


def create_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {TRIGRAM_INDEX} ON contacts_contact "
        "USING gin (search_doc gin_trgm_ops)"
    )
    for name in OLD_TRIGRAM_INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def restore_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, expression in OLD_TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON contacts_contact USING gin ({expression} gin_trgm_ops)"
        )
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {TRIGRAM_INDEX}")


def drop_btrees(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    for index in DROPPED_BTREES:
        schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {schema_editor.quote_name(index.name)}")


def restore_btrees(apps, schema_editor):
    model = apps.get_model("contacts", "Contact")
    for index in DROPPED_BTREES:
        schema_editor.add_index(model, index)


class Migration(migrations.Migration):
    atomic = False  # CREATE/DROP INDEX CONCURRENTLY, and one short transaction per backfill batch

    dependencies = [("contacts", "0004_tag_ids")]

    operations = [
        migrations.AddField(
            model_name="contact",
            name="search_doc",
            field=models.TextField(
                blank=True, db_default="", default="", editable=False,
                help_text="Names, company, emails and phone digits, folded (contacts.search): what search reads.",
            ),
        ),
        # Before the backfill: an UPDATE of every row writes a new entry into every index of
        # the table, so the fewer indexes the backfill meets, the faster it goes.
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveIndex(model_name="contact", name=i.name) for i in DROPPED_BTREES],
            database_operations=[migrations.RunPython(drop_btrees, restore_btrees)],
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(create_trigram_index, restore_trigram_indexes),
    ]
