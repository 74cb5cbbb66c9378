"""The exporter's PostgreSQL fast path (issue 14): `COPY (SELECT …) TO STDOUT` streams every
cell of the export as text, at database speed (one statement per COPY_SLICE contacts), instead
of Django model instances plus four queries per batch (3.4k rows/s).

PostgreSQL writes each plain cell as contacts.exports.cell_text would: '' for NULL, true/false,
ISO dates, UTC times to the second with a Z, and — for CSV — the formula neutralization
(`contacts.exports.neutralize`: a leading `'` when the text, past its own leading quotes, starts
with = + - @ TAB or CR; text cannot hold NUL in PostgreSQL). The cells whose text depends on a
Python rule are finished in Python, from compact values the same query sends:

- tags (from the `tag_ids` the tag-link trigger keeps, contacts migration 0004) and list names,
  sorted by `str.casefold` — PostgreSQL's lower() is not casefold for every script;
- other phones and emails (JSON lists), joined by ", ";
- custom fields (`custom_fields` when not empty), through cell_text: a JSON number's text is
  Python's (`1e-07`), not PostgreSQL's (`0.0000001`).

For CSV, PostgreSQL also quotes the plain cells as Python's csv module does (QUOTE_MINIMAL: a
field holding , " CR or LF is quoted, quotes doubled) and joins each run of them, so Python
parses 9 values a row instead of 40 (`csv_lines`); the cells Python makes go through csv_field,
the same rule. The bytes are those of the old path: `tests/contacts/test_export_fast.py` holds
the two paths to the same CSV and vCard bytes and the same XLSX cells on tricky values.
Other databases use the old path (`supported()`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from django.contrib.auth import get_user_model
from django.db import connection

from .models import ChannelPreference, Contact, Tag

# The COPY text protocol sends rows as they are made; this many rows are handed on at a time
# (the old path's batch, so a streamed response's chunks stay the same size).
COPY_CHUNK = 2000
# Contacts per COPY statement: a statement lasts as long as its reader takes to consume it (a slow
# download, a spreadsheet writer), and a web request's statements are bounded by
# EXPORT_STATEMENT_TIMEOUT; 50,000 rows is a second or two of the database's time here.
COPY_SLICE = 50_000

_UTC_SECONDS = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"


def supported() -> bool:
    return connection.vendor == "postgresql"


def _neutralized(expression: str) -> str:
    # The regex is neutralize()'s rule: past any leading quotes, a formula character.
    return f"(CASE WHEN {expression} ~ '^''*[-=+@\\t\\r]' THEN '''' || {expression} ELSE {expression} END)"


def _utc(column: str) -> str:
    return f"COALESCE(to_char({column} AT TIME ZONE 'UTC', {_UTC_SECONDS}), '')"


def _bool(column: str) -> str:
    return f"(CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' ELSE '' END)"


# Columns Python finishes (their SQL sends compact values, see the module docstring).
PY_COLUMNS = ("other_phones", "other_emails", "tags", "lists")


def _cell_sql(header: str, attr: str | None, *, neutralize: bool) -> tuple[str, bool]:
    """The SQL of one plain cell (alias `c` is the contact row), and whether its text can hold
    a character CSV must quote (dates, booleans and ids never do)."""
    qn = connection.ops.quote_name
    if header.startswith("channel."):
        # `= ANY(NULL)` is NULL, not true: a contact without preferences is opted in everywhere.
        return f"(CASE WHEN '{header.removeprefix('channel.')}' = ANY(c._out) THEN 'false' ELSE 'true' END)", False
    column = {"assignee": "_assignee", "id": "id"}.get(header, attr or header)
    field = Contact._meta.get_field(column) if column not in ("_assignee",) else None
    sql_column = "c." + (qn(field.column) if field is not None else column)
    internal = field.get_internal_type() if field is not None else "CharField"
    if internal == "DateTimeField":
        return _utc(sql_column), False
    if internal == "DateField":
        return f"COALESCE(to_char({sql_column}, 'YYYY-MM-DD'), '')", False
    if internal == "BooleanField":
        return _bool(sql_column), False
    if internal == "UUIDField":
        return f"{sql_column}::text", False
    text = f"COALESCE({sql_column}, '')"
    return (_neutralized(text) if neutralize else text), True


def _csv_quoted(column: str) -> str:
    # Python's csv.QUOTE_MINIMAL with our dialect: quote a field holding , " CR or LF, doubling ".
    return f"""(CASE WHEN {column} ~ '[",\r\n]' THEN '"' || replace({column}, '"', '""') || '"' ELSE {column} END)"""


def copy_sql(table, *, neutralize: bool, csv_runs: bool = False, after: str | None = None) -> tuple[str, list]:
    """The COPY statement of `table` (a contacts.exports.ExportTable) and its parameters.

    Row layout: the plain cells in header order (Python columns and custom fields left out), then
    tag_ids, secondary_phones, secondary_emails, list names, custom_fields (NULL when empty), id.
    One statement covers COPY_SLICE contacts with ids above `after`.
    `csv_runs`: instead of the plain cells, each run of consecutive plain cells as one CSV text
    (cells quoted and joined by commas), so that Python parses 9 values a row instead of 40."""
    from segments.models import ContactList, ListMembership

    from .exports import FIELD_COLUMNS, INFO_COLUMNS

    qn = connection.ops.quote_name
    user = get_user_model()
    username = qn(user._meta.get_field(user.USERNAME_FIELD).column)
    attrs = dict(FIELD_COLUMNS)
    cells = [_cell_sql(h, attrs.get(h), neutralize=neutralize) for h in [h for h, _ in FIELD_COLUMNS] + INFO_COLUMNS
             if h not in PY_COLUMNS]
    # The keyset goes into the filter's own query too: PostgreSQL does not carry `c.id > after`
    # into the IN subquery, which would then read every earlier contact again for each slice.
    ids = table.queryset if after is None else table.queryset.filter(pk__gt=after)
    ids_sql, params = ids.order_by().values("pk").query.sql_with_params()
    pref, members, lists = ChannelPreference._meta.db_table, ListMembership._meta.db_table, ContactList._meta.db_table
    org = table.org
    # One probe per contact for preferences and lists, skipped when the organization has none
    # (two EXISTS queries now): most books have neither, and the probes cost more than the row.
    out_channels = "NULL::text[]"
    if ChannelPreference.objects.filter(contact__organization=org, opted_in=False).exists():
        out_channels = f"ARRAY(SELECT p.channel FROM {qn(pref)} p WHERE p.contact_id = c.id AND NOT p.opted_in)"
    list_names = "NULL::text[]"
    if ListMembership.objects.filter(list__organization=org).exists():
        list_names = (f"(SELECT array_agg(l.name) FROM {qn(members)} m JOIN {qn(lists)} l ON l.id = m.list_id "
                      f"WHERE m.contact_id = c.id)")
    inner = (
        f"SELECT c.*, {out_channels} AS _out, u.{username} AS _assignee, {list_names} AS _lists "
        f"FROM {qn(Contact._meta.db_table)} c LEFT JOIN {qn(user._meta.db_table)} u ON u.id = c.assignee_id "
        f"WHERE c.id IN ({ids_sql}){' AND c.id > %s' if after else ''} ORDER BY c.id LIMIT {COPY_SLICE}"
    )
    params = [*params, after] if after else list(params)
    extras = ["NULLIF(c.tag_ids, '[]'::jsonb)", "NULLIF(c.secondary_phones, '[]'::jsonb)",
              "NULLIF(c.secondary_emails, '[]'::jsonb)", "c._lists", "NULLIF(c.custom_fields, '{}'::jsonb)", "c.id::text"]
    if not csv_runs:
        select = f"SELECT {', '.join([sql for sql, _ in cells] + extras)} FROM ({inner}) c ORDER BY c.id"
        return f"COPY ({select}) TO STDOUT", list(params)
    # Each cell is computed once in the fenced subquery (OFFSET 0 keeps PostgreSQL from pulling
    # it up and repeating the cell's expression inside the quoting CASE).
    named = ", ".join(f"{sql} AS _c{i}" for i, (sql, _) in enumerate(cells))
    runs = []
    for run in csv_runs_of(sql_plain_headers()):
        runs.append(" || ',' || ".join(_csv_quoted(f"x._c{i}") if cells[i][1] else f"x._c{i}" for i in run))
    extras_out = [f"x._e{i}" for i in range(len(extras))]
    fenced = (f"SELECT {named}, {', '.join(f'{e} AS _e{i}' for i, e in enumerate(extras))} "
              f"FROM ({inner}) c ORDER BY c.id OFFSET 0")
    select = f"SELECT {', '.join(runs + extras_out)} FROM ({fenced}) x"
    return f"COPY ({select}) TO STDOUT", list(params)


def csv_runs_of(plain_headers: list[str]) -> list[list[int]]:
    """The plain cells' indexes grouped into runs of header-consecutive cells (a Python column
    falls between two runs)."""
    from .exports import FIELD_COLUMNS, INFO_COLUMNS

    headers = [h for h, _ in FIELD_COLUMNS] + INFO_COLUMNS
    runs, previous = [], None
    for index, header in enumerate(plain_headers):
        position = headers.index(header)
        if previous is None or position != previous + 1:
            runs.append([])
        runs[-1].append(index)
        previous = position
    return runs


def copy_rows(table, *, neutralize: bool, csv_runs: bool = False) -> Iterator[list[tuple]]:
    """The raw COPY rows of `table`, COPY_CHUNK at a time (layout: copy_sql). Memory holds one
    chunk. One COPY per COPY_SLICE contacts (keyset on the id, the row's last value), plus the
    two EXISTS probes of copy_sql each."""
    plain = len(csv_runs_of(sql_plain_headers())) if csv_runs else len(sql_plain_headers())
    types = ["text"] * plain + ["jsonb", "jsonb", "jsonb", "text[]", "jsonb", "text"]
    after = None
    while True:
        sql, params = copy_sql(table, neutralize=neutralize, csv_runs=csv_runs, after=after)
        count = 0
        with connection.cursor() as cursor, connection.wrap_database_errors:
            with cursor.cursor.copy(sql, params) as copy:
                copy.set_types(types)
                chunk = []
                for row in copy.rows():
                    chunk.append(row)
                    if len(chunk) >= COPY_CHUNK:
                        count += len(chunk)
                        after = chunk[-1][-1]
                        yield chunk
                        chunk = []
                if chunk:
                    count += len(chunk)
                    after = chunk[-1][-1]
                    yield chunk
        # After the COPY, never inside it: the connection is busy until the COPY ends, and a
        # progress UPDATE on it would wait for ever (a background export's rows_done).
        if table.progress is not None:
            table.progress(count)
        if count < COPY_SLICE:
            return


def sql_plain_headers() -> list[str]:
    from .exports import FIELD_COLUMNS, INFO_COLUMNS

    return [h for h in [h for h, _ in FIELD_COLUMNS] + INFO_COLUMNS if h not in PY_COLUMNS]


def tag_names(org) -> dict[int, str]:
    """The organization's tag names by id: one query (a few hundred rows at most)."""
    return dict(Tag.objects.filter(organization=org).values_list("pk", "name"))


def text_rows(table) -> Iterator[list[list[str]]]:
    """The export's rows as lists of raw cell texts (cell_text, not neutralized) in header
    order, COPY_CHUNK at a time: what the XLSX writer's xlsx_cell starts from."""
    from .exports import FIELD_COLUMNS, INFO_COLUMNS, LIST_SEPARATOR, cell_text

    names = tag_names(table.org)
    headers = [h for h, _ in FIELD_COLUMNS] + INFO_COLUMNS
    plain = len(sql_plain_headers())
    # Where each Python-made column goes among the plain ones (their order in the header).
    slots = [headers.index(h) for h in PY_COLUMNS]
    assert slots == sorted(slots), "PY_COLUMNS must follow the header order"
    keys = table.custom_keys
    fold = str.casefold
    loads = json.loads
    for chunk in copy_rows(table, neutralize=False):
        out = []
        for row in chunk:
            tag_ids, phones, emails, lists, custom, _ = row[plain:]
            # Django's backend loads jsonb as its text (JSONField decodes it itself).
            tag_ids = loads(tag_ids) if tag_ids else None
            phones = loads(phones) if phones else None
            emails = loads(emails) if emails else None
            extra = [
                (LIST_SEPARATOR.join(phones)) if phones else "",
                (LIST_SEPARATOR.join(emails)) if emails else "",
                (LIST_SEPARATOR.join(sorted((names[i] for i in tag_ids if i in names), key=fold)))
                if tag_ids else "",
                (LIST_SEPARATOR.join(sorted(lists, key=fold))) if lists else "",
            ]
            cells = list(row[:plain])
            for slot, value in zip(slots, extra, strict=True):
                cells.insert(slot, value)
            if keys:
                if custom:
                    custom = loads(custom)
                    cells.extend(cell_text(custom.get(key)) for key in keys)
                else:
                    cells.extend([""] * len(keys))
            out.append(cells)
        yield out



class CardRow:
    """What contacts.exports.vcard_lines reads of a contact, made from one raw COPY row: the
    attributes hold cell texts ('' for none), as vcard_lines writes them."""

    __slots__ = ("pk", "display_name", "first_name", "last_name", "email", "phone", "external_id", "company",
                 "is_textable", "secondary_phones", "secondary_emails", "address", "city", "state", "zip",
                 "country", "birthday", "timezone", "gender", "avatar_url", "notes", "updated_at")

    @property
    def full_name(self) -> str:
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        return name or self.display_name


def card_rows(table) -> Iterator[list[tuple[CardRow, list[str]]]]:
    """(card row, tag names sorted as the export sorts them) per contact, COPY_CHUNK at a time."""
    from .exports import FIELD_COLUMNS

    attrs = dict(FIELD_COLUMNS) | {"id": "pk", "updated_at": "updated_at", "is_textable": "is_textable"}
    headers = sql_plain_headers()
    picks = [(attrs[h], i) for i, h in enumerate(headers) if attrs.get(h) in CardRow.__slots__]
    plain = len(headers)
    names = tag_names(table.org)
    fold = str.casefold
    loads = json.loads
    for chunk in copy_rows(table, neutralize=False):
        out = []
        for row in chunk:
            card = CardRow()
            for attr, i in picks:
                setattr(card, attr, row[i])
            card.is_textable = {"true": True, "false": False}.get(card.is_textable)
            tag_ids, phones, emails = row[plain:plain + 3]
            card.secondary_phones = loads(phones) if phones else ()
            card.secondary_emails = loads(emails) if emails else ()
            tags = sorted((names[i] for i in loads(tag_ids) if i in names), key=fold) if tag_ids else None
            out.append((card, tags))
        yield out


_NEEDS_QUOTES = re.compile(r'[",\r\n]').search


def csv_field(text: str) -> str:
    """`text` as Python's csv writer writes a field of our dialect (QUOTE_MINIMAL)."""
    return '"' + text.replace('"', '""') + '"' if _NEEDS_QUOTES(text) else text


def csv_lines(table) -> Iterator[str]:
    """The CSV file's lines after the header (neutralized, quoted, CRLF-terminated), one string
    per COPY_CHUNK contacts. The plain cells arrive quoted and joined in runs (copy_sql's
    `csv_runs`); Python quotes the cells it makes with csv_field, which is the csv module's rule."""
    from .exports import FIELD_COLUMNS, INFO_COLUMNS, LIST_SEPARATOR, cell_text, neutralize

    headers = [h for h, _ in FIELD_COLUMNS] + INFO_COLUMNS
    runs = len(csv_runs_of(sql_plain_headers()))
    # The order of the line's parts: a run of plain cells ("run") or a Python column's name.
    order, in_run = [], False
    for header in headers:
        if header in PY_COLUMNS:
            order.append(header)
            in_run = False
        elif not in_run:
            order.append("run")
            in_run = True
    assert order.count("run") == runs
    names = tag_names(table.org)
    keys = table.custom_keys
    fold = str.casefold
    loads = json.loads
    join = LIST_SEPARATOR.join
    for chunk in copy_rows(table, neutralize=True, csv_runs=True):
        lines = []
        for row in chunk:
            tag_ids, phones, emails, lists, custom, _ = row[runs:]
            made = {
                "other_phones": csv_field(neutralize(join(loads(phones)))) if phones else "",
                "other_emails": csv_field(neutralize(join(loads(emails)))) if emails else "",
                "tags": csv_field(neutralize(join(sorted((names[i] for i in loads(tag_ids) if i in names), key=fold))))
                if tag_ids else "",
                "lists": csv_field(neutralize(join(sorted(lists, key=fold)))) if lists else "",
            }
            run = iter(row[:runs])
            parts = [next(run) if part == "run" else made[part] for part in order]
            if keys:
                custom = loads(custom) if custom else {}
                parts.extend(csv_field(neutralize(cell_text(custom.get(key)))) for key in keys)
            lines.append(",".join(parts))
        yield "\r\n".join(lines) + "\r\n"
