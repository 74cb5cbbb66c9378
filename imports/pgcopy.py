"""PostgreSQL fast paths for the import's bulk writes (COPY; one UPDATE … FROM VALUES).

The ORM's bulk_create sends multi-row INSERTs that psycopg must re-parse (~7k rows/s here) and
bulk_update builds one CASE per column per row; COPY streams rows at ~33k+/s into an indexed
table. Other databases use the ORM (`supported()` says which).
"""

from __future__ import annotations

import json

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


def copy_rows(model, columns, rows) -> None:
    """COPY plain tuples into `model`'s table: `columns` are attnames (e.g. "contact_id").
    No model instance per row: for the import's tag links and events, whose instances cost more
    to build than the COPY costs to send."""
    fields = [model._meta.get_field(name) for name in columns]
    json_at = [i for i, f in enumerate(fields) if isinstance(f, JSONField)]
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({names}) FROM STDIN"
    with connection.cursor() as cursor:
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


def update_objects(model, objects, field_names) -> None:
    """One `UPDATE … FROM (VALUES …)` per 1000 objects, setting `field_names` from each object."""
    if not objects:
        return
    meta = model._meta
    fields = [meta.get_field(name) for name in field_names]
    pk = meta.pk
    qn = connection.ops.quote_name
    for start in range(0, len(objects), 1000):
        batch = objects[start : start + 1000]
        params, rows = [], []
        for obj in batch:
            placeholders = [f"%s::{pk.db_type(connection)}"]
            params.append(pk.get_db_prep_save(getattr(obj, pk.attname), connection))
            for f in fields:
                value = getattr(obj, f.attname)
                if isinstance(f, JSONField):
                    params.append(None if value is None else json.dumps(value))
                else:
                    params.append(f.get_db_prep_save(value, connection))
                placeholders.append(f"%s::{f.db_type(connection)}")
            rows.append("(" + ", ".join(placeholders) + ")")
        names = ", ".join(["_pk"] + [f"_{f.column}" for f in fields])
        sets = ", ".join(f"{qn(f.column)} = v._{f.column}" for f in fields)
        sql = (f"UPDATE {qn(meta.db_table)} AS t SET {sets} FROM (VALUES {', '.join(rows)}) AS v({names}) "
               f"WHERE t.{qn(pk.column)} = v._pk")
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


class own_tag_ids:
    """PostgreSQL, within the chunk's transaction: the contacts' `tag_ids` trigger (contacts migration 0004)
    stands aside while the importer writes tag links, because the importer writes `tag_ids`
    itself — in a new contact's own COPY row, and by `resync_tag_ids` for existing contacts."""

    def __enter__(self):
        if supported():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('contacts.tag_sync_off', 'on', true)")

    def __exit__(self, *exc):
        if exc[0] is None and supported():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('contacts.tag_sync_off', 'off', true)")
        return False


def resync_tag_ids(contact_ids, updated_at) -> None:
    """What the trigger does, for the existing contacts that gained links, in one statement."""
    if not contact_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE contacts_contact AS c SET updated_at = %s, tag_ids = COALESCE((SELECT jsonb_agg("
            "ct.tag_id ORDER BY ct.tag_id) FROM contacts_contacttag ct WHERE ct.contact_id = c.id), '[]'::jsonb) "
            "WHERE c.id = ANY(%s)",
            [updated_at, list(contact_ids)],
        )


def analyze(*models) -> None:
    """Fresh planner statistics for the tables an import is growing (PostgreSQL; else nothing)."""
    if not supported():
        return
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
