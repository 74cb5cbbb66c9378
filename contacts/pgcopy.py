"""PostgreSQL fast paths for the write engine's and the importer's bulk writes (COPY; one
UPDATE … FROM a COPYed temporary table).

The ORM's bulk_create sends multi-row INSERTs that psycopg must re-parse (~7k rows/s here) and
bulk_update builds one CASE per column per row; COPY streams rows at ~33k+/s into an indexed
table. Other databases use the ORM (`supported()` says which). A unique violation inside a COPY
comes back as Django's IntegrityError, like any ORM write's, so that callers retry a race with
a concurrent write the same way whatever wrote the row.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import JSONField


def supported() -> bool:
    return connection.vendor == "postgresql"


def copy_objects(model, objects, fields=None) -> None:
    """COPY unsaved model instances (their pk already set, or an auto pk left out)."""
    if not objects:
        return
    concrete = [f for f in model._meta.concrete_fields if fields is None or f.name in fields]
    concrete = [f for f in concrete if not (f.primary_key and getattr(objects[0], f.attname) is None)]
    attnames = [f.attname for f in concrete]
    copy_rows(model, attnames, ([obj.__dict__[name] for name in attnames] for obj in objects))


def copy_rows(model, columns, rows, *, table: str | None = None) -> None:
    """COPY plain tuples into `model`'s table (or `table`, shaped like it): `columns` are
    attnames (e.g. "contact_id"). No model instance per row."""
    fields = [model._meta.get_field(name) for name in columns]  # get_field knows attnames too
    json_at = [i for i, f in enumerate(fields) if isinstance(f, JSONField)]
    qn = connection.ops.quote_name
    names = ", ".join(qn(f.column) for f in fields)
    sql = f"COPY {qn(table or model._meta.db_table)} ({names}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.cursor.copy(sql) as copy:
            if not json_at:
                for row in rows:
                    copy.write_row(row)
                return
            from psycopg.types.json import Jsonb

            for row in rows:
                row = list(row)
                for i in json_at:  # psycopg adapts the rest itself (str, int, bool, UUID, dates)
                    if row[i] is not None:
                        row[i] = Jsonb(row[i])
                copy.write_row(row)


def update_rows(model, columns, rows) -> int:
    """Sets `columns` (attnames; the first is the primary key) from `rows`: one COPY into a
    temporary table and one `UPDATE … FROM` it, whatever the count. A row whose values are
    all equal to the stored ones is not written (`IS DISTINCT FROM`). Returns the rows written."""
    meta = model._meta
    qn = connection.ops.quote_name
    fields = [meta.get_field(name) for name in columns]
    table = f"_update_{meta.db_table}_{len(columns)}_{abs(hash(tuple(columns))) % 10**8}"
    definition = ", ".join(f"{qn(f.column)} {f.db_type(connection)}" for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} ({definition}) ON COMMIT DELETE ROWS")
    copy_rows(model, columns, rows, table=table)
    sets = ", ".join(f"{qn(f.column)} = u.{qn(f.column)}" for f in fields[1:])
    distinct = " OR ".join(f"c.{qn(f.column)} IS DISTINCT FROM u.{qn(f.column)}" for f in fields[1:])
    pk = qn(fields[0].column)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {qn(meta.db_table)} AS c SET {sets} FROM {table} AS u "
                       f"WHERE c.{pk} = u.{pk} AND ({distinct})")
        return cursor.rowcount


class own_tag_ids:
    """PostgreSQL, within the caller's transaction: the contacts' `tag_ids` trigger (contacts
    migration 0004) stands aside while the write engine writes tag links, because the engine
    writes `tag_ids` itself — in a new contact's own COPY row, and by `resync_tag_ids` for
    existing contacts."""

    def __enter__(self):
        if supported():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('contacts.tag_sync_off', 'on', true)")

    def __exit__(self, *exc):
        if exc[0] is None and supported():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('contacts.tag_sync_off', 'off', true)")
        return False


def resync_tag_ids(contact_ids) -> None:
    """What the trigger does, for the existing contacts that gained links, in one statement."""
    if not contact_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE contacts_contact AS c SET tag_ids = COALESCE((SELECT jsonb_agg("
            "ct.tag_id ORDER BY ct.tag_id) FROM contacts_contacttag ct WHERE ct.contact_id = c.id), '[]'::jsonb) "
            "WHERE c.id = ANY(%s)",
            [list(contact_ids)],
        )


def analyze(*models, fields: dict | None = None) -> None:
    """Fresh planner statistics for the tables an import is growing (PostgreSQL; else nothing).
    `fields` ({model: [field names]}) limits a table's to the columns its queries filter on:
    the row sample is the same, but the statistics of wide text and jsonb columns are not
    computed (measured on the contacts table: 360 → 110 ms)."""
    if not supported():
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in models:
            names = (fields or {}).get(model)
            columns = f" ({', '.join(quote(model._meta.get_field(n).column) for n in names)})" if names else ""
            cursor.execute(f"ANALYZE {quote(model._meta.db_table)}{columns}")
