"""Upgrades run migrations while the app serves (docs/deploy.md): no migration may rewrite or
lock a big table for long. Each operation on a big table is either one PostgreSQL does in
metadata only, or the migration is in REVIEWED with what it costs on a 1M-row table and how to
run it. A new migration that fails here: make it online-safe (AddIndexConcurrently in a
non-atomic migration, a nullable column, a batched backfill job), or review it and add it."""

from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations
from django.db.migrations.loader import MigrationLoader
from django.db.models import NOT_PROVIDED

# Tables that reach millions of rows in production.
BIG_TABLES = {("contacts", "contact"), ("contacts", "contacttag"), ("contacts", "contactevent"),
              ("contacts", "channelpreference"), ("segments", "listmembership"), ("imports", "importrowerror")}

# Reviewed migrations touching a big table, with their cost (docs/deploy.md repeats this).
REVIEWED = {
    ("contacts", "0001_initial"): "creates the tables: empty",
    ("segments", "0001_initial"): "creates the tables: empty",
    ("imports", "0001_initial"): "creates the tables: empty",
    ("contacts", "0002_trigram_search"): "CREATE EXTENSION pg_trgm: no table touched",
    ("contacts", "0003_search_and_count_indexes"): "NOT online-safe: plain CREATE INDEX (btree and trigram "
                                                   "GIN) blocks writes while it builds; maintenance window",
    ("contacts", "0004_tag_ids"): "NOT online-safe: adds a nullable column (metadata only), then one UPDATE of "
                                  "every tagged contact and a plain GIN index; maintenance window",
    ("imports", "0002_staging_fold_by_phone_and_email"): "importrowerror untouched; staging tables are per job",
    ("contacts_crm", "0002_cache_table"): "creates the cache table: new and empty",
    ("contacts", "0005_search_document"): "online-safe by construction (atomic=False): the column is added with a "
                                          "constant default (metadata only), the backfill runs in 5,000-row "
                                          "transactions, the trigram index is built and the old ones dropped "
                                          "CONCURRENTLY; ~8 min on 1M contacts, then VACUUM the table",
    ("imports", "0009_import_partitions"): "a new table; RunPython creates one partition per import in its writing "
                                           "phase (a handful of rows); drops importjob.resume_seq (metadata only)",
    ("contacts", "0007_sort_collation"): "CREATE COLLATION (ICU) on PostgreSQL: no table touched",
    ("contacts", "0008_custom_field_indexes"): "online-safe by construction (atomic=False): one CREATE INDEX "
                                               "CONCURRENTLY per existing number/date custom-field definition "
                                               "(partial: that organization's live contacts with a value); 0.6 s "
                                               "for a field 200k of 1M contacts hold; writes continue meanwhile",
    ("contacts", "0010_tag_link_counts"): "a new table, triggers on the tag links (CREATE TRIGGER makes link "
                                          "writes wait until the commit) and one GROUP BY of every link into it: "
                                          "~1 s on 1.18M links, tag writes wait meanwhile",
    ("contacts", "0006_consent_trash_suppression_ledger"): "NOT online-safe: plain CREATE INDEX of the live-only "
                                                           "partial indexes on the contacts table (~1-2 min on 1M, "
                                                           "writes blocked meanwhile) and foreign-key index "
                                                           "changes; maintenance window",
}
METADATA_ONLY = (migrations.CreateModel, migrations.DeleteModel, migrations.RemoveIndex, RemoveIndexConcurrently,
                 AddIndexConcurrently, migrations.AlterModelOptions, migrations.AlterModelManagers,
                 migrations.RemoveField, migrations.RenameIndex)


def _risky(app_label, operation) -> str | None:
    model = getattr(operation, "model_name", None) or getattr(operation, "name", "")
    if isinstance(operation, (migrations.RunPython, migrations.RunSQL)):
        sql = str(getattr(operation, "sql", ""))
        if isinstance(operation, migrations.RunSQL) and "CONCURRENTLY" in sql.upper():
            return None
        return f"{type(operation).__name__} may rewrite or lock any table"
    if (app_label, str(model).lower()) not in BIG_TABLES or isinstance(operation, METADATA_ONLY):
        return None
    if isinstance(operation, migrations.AddField):
        field = operation.field
        if field.null or field.db_default is not NOT_PROVIDED or not callable(field.default):
            return None  # PostgreSQL 11+: a nullable column or a constant default is metadata only
        return "a NOT NULL column with a callable default fills every row"
    return f"{type(operation).__name__} on {app_label}.{model}"


def test_every_migration_is_online_safe_or_reviewed():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    problems = []
    for (app_label, name), migration in sorted(loader.disk_migrations.items()):
        if app_label not in {"contacts", "segments", "imports", "contacts_crm"} or (app_label, name) in REVIEWED:
            continue
        for operation in migration.operations:
            reason = _risky(app_label, operation)
            if reason:
                problems.append(f"{app_label}.{name}: {reason}")
    assert not problems, "\n".join(problems)


def test_the_check_catches_what_rewrites_or_locks_a_big_table():
    from django.db import models

    assert _risky("contacts", migrations.AlterField("contact", "city", models.TextField()))
    assert _risky("contacts", migrations.AddIndex("contact", models.Index(fields=["city"], name="c_city")))
    assert _risky("contacts", migrations.RunSQL("UPDATE contacts_contact SET city = ''"))
    assert not _risky("contacts", migrations.AddField("contact", "nickname", models.TextField(null=True)))
    assert not _risky("contacts", AddIndexConcurrently("contact", models.Index(fields=["city"], name="c_city")))
    assert not _risky("contacts", migrations.RunSQL("CREATE INDEX CONCURRENTLY c_city ON contacts_contact (city)"))
