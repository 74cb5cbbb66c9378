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


def _adapt(field, value):
    # psycopg adapts str, int, bool, UUID, date and aware datetime itself; only JSON needs help.
    if value is None or not isinstance(field, JSONField):
        return value
    from psycopg.types.json import Jsonb

    return Jsonb(value)


def copy_objects(model, objects, fields=None) -> None:
    """COPY unsaved model instances (their pk already set, or an auto pk left out)."""
    if not objects:
        return
    concrete = [f for f in model._meta.concrete_fields if fields is None or f.name in fields]
    concrete = [f for f in concrete if not (f.primary_key and getattr(objects[0], f.attname) is None)]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in concrete)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor:
        with cursor.cursor.copy(sql) as copy:
            for obj in objects:
                copy.write_row([_adapt(f, getattr(obj, f.attname)) for f in concrete])


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
