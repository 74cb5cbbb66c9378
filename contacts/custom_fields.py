"""Custom field definitions and the expression index each number or date definition gets
(issue 14): `custom.loyalty_points > 4900` in a segment is then an index range scan, not a scan
of the whole organization.

One index per definition, on PostgreSQL only, named after the organization, the definition and a
hash of its key and type (so that a renamed key or a changed type is a different index):

    CREATE INDEX CONCURRENTLY contact_cf_o<org>_f<id>_<hash> ON contacts_contact ((<value>))
     WHERE organization_id = <org> AND deleted_at IS NULL AND (<value>) IS NOT NULL

`<value>` is the SQL the segment compiler emits for the field (segments.rules.CustomValue, cast
and all) — compiled by the same code, so the planner matches it; the predicate holds only the
organization's live contacts that have a value, which keeps the index small and every other
organization's writes out of it. The expression never raises: a value that is not a number (or
an ISO date) is NULL, so a contact holding "n/a" in a number field is simply not indexed (a
raising expression would make that contact's every write fail).

Definitions change through the API and the admin; both call `custom_field_indexes_schedule`,
which runs `custom_field_indexes_sync` after the commit as a job: CREATE/DROP INDEX CONCURRENTLY
cannot run in a transaction, and building an index over a large book takes seconds.
"""

from __future__ import annotations

import zlib

from django.db import connection, transaction

INDEX_PREFIX = "contact_cf_"
INDEXED_TYPES = {"number": "number", "date": "date"}  # CustomField.Type → CustomValue kind


def index_name(*, org_id: int, field_id: int, key: str, type: str) -> str:
    digest = zlib.crc32(f"{key}:{type}".encode()) & 0xFFFFFFFF
    return f"{INDEX_PREFIX}o{org_id}_f{field_id}_{digest:08x}"


def value_sql(key: str, type: str) -> str:
    """The SQL of the field's value as segment rules compare it (segments.rules.CustomValue), with
    its parameters inlined: the index expression."""
    from segments.rules import CustomValue

    from .models import Contact

    query = Contact.objects.all().query
    expression = CustomValue(key, INDEXED_TYPES[type]).resolve_expression(query)
    sql, params = expression.as_postgresql(query.get_compiler(connection=connection), connection)
    # An index expression names the table's columns unqualified.
    sql = sql.replace(f"{connection.ops.quote_name(Contact._meta.db_table)}.", "")
    return connection.ops.compose_sql(sql, params)


def index_sql(*, org_id: int, key: str, type: str, name: str) -> str:
    value = value_sql(key, type)
    return (f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {connection.ops.quote_name(name)} ON contacts_contact "
            f"(({value})) WHERE organization_id = {int(org_id)} AND deleted_at IS NULL AND ({value}) IS NOT NULL")


def wanted_indexes(definitions) -> dict[str, str]:
    """{index name: CREATE INDEX statement} for `definitions`, (org_id, id, key, type) tuples."""
    out = {}
    for org_id, field_id, key, type in definitions:
        if type in INDEXED_TYPES:
            name = index_name(org_id=org_id, field_id=field_id, key=key, type=type)
            out[name] = index_sql(org_id=org_id, key=key, type=type, name=name)
    return out


def existing_indexes(org_id: int | None = None) -> dict[str, bool]:
    """{index name: valid} of the custom-field indexes on contacts_contact (of one organization).
    A CONCURRENTLY build that failed leaves an invalid index behind."""
    pattern = f"{INDEX_PREFIX}o{org_id}\\_%" if org_id is not None else f"{INDEX_PREFIX}%"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'contacts_contact'::regclass AND c.relname LIKE %s", [pattern])
        return dict(cursor.fetchall())


def custom_field_indexes_sync(org_id: int | None = None, *, definitions=None) -> dict[str, list[str]]:
    """Makes the custom-field indexes of one organization (every organization when None) match
    its number and date definitions: drops the others (deleted definitions, changed keys or
    types, failed builds) and builds the missing ones, CONCURRENTLY, outside any transaction.
    `definitions` ((org_id, id, key, type) tuples) defaults to the CustomField rows (a migration
    passes its historical ones). Returns {"created": [...], "dropped": [...]}. PostgreSQL only;
    elsewhere nothing. One organization's runs are serialized by an advisory lock."""
    done = {"created": [], "dropped": []}
    if connection.vendor != "postgresql":
        return done
    if connection.in_atomic_block:
        raise RuntimeError("custom_field_indexes_sync runs outside a transaction (CREATE INDEX CONCURRENTLY)")
    if definitions is None:
        from .models import CustomField

        rows = CustomField.objects.all() if org_id is None else CustomField.objects.for_org(org_id)
        definitions = rows.values_list("organization_id", "pk", "key", "type")
    lock = zlib.crc32(f"custom_field_indexes:{org_id}".encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [lock])
        try:
            wanted = wanted_indexes(definitions)
            for name, valid in sorted(existing_indexes(org_id).items()):
                if name not in wanted or not valid:
                    cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {connection.ops.quote_name(name)}")
                    done["dropped"].append(name)
            present = existing_indexes(org_id)
            for name, statement in sorted(wanted.items()):
                if name not in present:
                    cursor.execute(statement)
                    done["created"].append(name)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock])
    return done


def custom_field_indexes_schedule(*, org_id: int) -> None:
    """After the current transaction commits, sync the organization's custom-field indexes in a
    job (PostgreSQL; a no-op job elsewhere)."""
    if connection.vendor != "postgresql":
        return
    from contacts_crm.jobs import enqueue

    transaction.on_commit(lambda: enqueue(custom_field_indexes_sync, org_id))
