"""The one contacts exporter (issue 6): CSV, XLSX and vCard 3.0, for the API, the admin and
`manage.py export_contacts`.

    export_rows(queryset, org=org)  →  header, then one list of strings per contact
    csv_chunks(...) / write_xlsx(...) / vcard_chunks(...)  →  the file, in constant memory

Decisions (docs/exports.md has the user's version):

- Contacts are read in primary-key keyset batches of EXPORT_BATCH (UUIDv7 keys: creation
  order), never with OFFSET and never the whole queryset at once; each batch costs four
  queries (contacts, tags, list names, channel preferences), plus one for assignees when any.
- Headers are the names our importer maps back (`detect_mapping` on our header gives every
  field its own target); columns the importer has no target for (`id`, `lists`,
  `channel.sms`, `is_textable`, `created_at`...) are ones it ignores by design.
- Formula injection (OWASP): a CSV/XLSX cell starting with = + - @ TAB CR or NUL gets a
  leading `'`; our importer removes exactly that quote again. E.164 phones start with `+`:
  in CSV they are escaped too (`'+19195551234`), because Excel opening a CSV turns
  `+19195551234` into the number 19195551234 and saves it back as `1.92E+10`, digits lost;
  in XLSX a phone cell holding only `+` and digits is written as a text cell without the quote
  (Excel never evaluates a text cell, and `+` then digits cannot call anything).
- vCard: 3.0, UTF-8, CRLF, lines folded at 75 octets (never inside a UTF-8 sequence),
  text escaped per RFC 2426 (backslash, comma, semicolon, newline).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import connection
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from .geodata import COUNTRIES
from .models import Channel, ChannelPreference, Contact, ContactTag, CustomField

EXPORT_BATCH = 2000
FORMATS = ("csv", "xlsx", "vcf")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "vcf": "text/vcard; charset=utf-8",
}
LIST_SEPARATOR = ", "  # the importer splits tags (and other phones/emails) on , ; | and " ::: "

# Contact fields, in file order: (header, attribute). Every header maps back to its own field.
FIELD_COLUMNS = [
    ("phone", "phone"), ("email", "email"), ("first_name", "first_name"), ("last_name", "last_name"),
    ("display_name", "display_name"), ("company", "company"), ("address", "address"), ("city", "city"),
    ("state", "state"), ("zip", "zip"), ("country", "country"), ("timezone", "timezone"),
    ("lifecycle_stage", "lifecycle_stage"), ("gender", "gender"), ("birthday", "birthday"),
    ("language", "language"), ("notes", "notes"), ("avatar_url", "avatar_url"), ("external_id", "external_id"),
    ("other_phones", "secondary_phones"), ("other_emails", "secondary_emails"), ("tags", None),
    ("opted_out", "opted_out"),
]
# Columns the importer ignores on purpose: ours to set (ids, timestamps, textability) or not
# importable yet (lists, channel preferences: see docs/exports.md).
INFO_COLUMNS = ["lists", *[f"channel.{c}" for c in Channel.values], "opted_out_at", "opt_out_source",
                "is_textable", "textable_checked_at", "is_test", "assignee", "id", "created_at", "updated_at"]
PHONE_HEADERS = frozenset({"phone", "other_phones"})
FORMULA_STARTS = frozenset("=+-@\t\r\0")
_E164_CELL = re.compile(r"\+[0-9]{6,15}(?:, \+[0-9]{6,15})*")
_COUNTRY_NAMES = {alpha2: name for alpha2, _, name in COUNTRIES}


# --- values -----------------------------------------------------------------------------------
def cell_text(value) -> str:
    """A value as the text of a cell: '' for None, true/false, ISO dates and UTC datetimes
    (seconds), JSON for lists and objects in custom fields."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def neutralize(text: str) -> str:
    """`text` with a leading `'` when a spreadsheet would run it as a formula (OWASP), or when
    quotes the user typed precede a formula character: the importer's strip_formula_escape
    removes one quote there, so a typed `'=1+1` leaves as `''=1+1` and comes back as typed."""
    rest = text.lstrip("'")
    return "'" + text if rest and rest[0] in FORMULA_STARTS else text


# --- reading contacts -------------------------------------------------------------------------
def iter_batches(queryset, batch_size: int = EXPORT_BATCH) -> Iterator[list[Contact]]:
    """The contacts of `queryset` in primary-key order, `batch_size` at a time: one indexed
    keyset query per batch (`id > last ORDER BY id LIMIT n`), so memory holds one batch and
    the millionth row costs what the first did."""
    for batch, _ in iter_keyset_slices(queryset, batch_size):
        yield batch


def iter_keyset_slices(queryset, batch_size: int = EXPORT_BATCH):
    """(batch, the batch's query) pairs: the query lets related rows be read with
    `contact_id IN (<that query>)`, which the database answers from the same index, instead of
    binding 2,000 UUID parameters per query."""
    qs = queryset.prefetch_related(None).order_by("pk")
    last = None
    while True:
        page = (qs if last is None else qs.filter(pk__gt=last))[:batch_size]
        batch = list(page)
        if not batch:
            return
        yield batch, page
        if len(batch) < batch_size:
            return
        last = batch[-1].pk


def custom_field_keys(org) -> list[str]:
    """The organization's custom field keys: definitions first, then keys contacts hold
    without one, each sorted. Two queries; the second reads only the JSON keys of the
    organization's contacts (jsonb_object_keys / json_each), not whole rows."""
    defined = list(CustomField.objects.for_org(org).order_by("key").values_list("key", flat=True))
    if connection.vendor == "postgresql":
        sql = ("SELECT DISTINCT jsonb_object_keys(custom_fields) FROM contacts_contact "
               "WHERE organization_id = %s AND custom_fields <> '{}'::jsonb")
    else:
        sql = ("SELECT DISTINCT j.key FROM contacts_contact c, json_each(c.custom_fields) j "
               "WHERE c.organization_id = %s AND c.custom_fields <> '{}'")
    with connection.cursor() as cursor:
        cursor.execute(sql, [org.pk])
        present = {row[0] for row in cursor.fetchall()}
    return defined + sorted(present - set(defined))


@dataclass
class BatchExtras:
    """What one batch of contacts needs beyond its rows, read with one query each."""

    tags: dict
    lists: dict
    preferences: dict
    assignees: dict

    @classmethod
    def load(cls, batch: list[Contact], query=None) -> BatchExtras:
        """`query`: the batch's own query (cheaper than its ids as parameters), else the ids."""
        from segments.models import ListMembership

        ids = query.values("pk") if query is not None else [c.pk for c in batch]
        tags, lists, prefs, assignees = {}, {}, {}, {}
        for contact_id, name in ContactTag.objects.filter(contact_id__in=ids).values_list("contact_id", "tag__name"):
            tags.setdefault(contact_id, []).append(name)
        for contact_id, name in ListMembership.objects.filter(contact_id__in=ids).values_list(
                "contact_id", "list__name"):
            lists.setdefault(contact_id, []).append(name)
        for contact_id, channel, opted_in in ChannelPreference.objects.filter(contact_id__in=ids).values_list(
                "contact_id", "channel", "opted_in"):
            prefs.setdefault(contact_id, {})[channel] = opted_in
        user_ids = {c.assignee_id for c in batch if c.assignee_id}
        if user_ids:
            from django.contrib.auth import get_user_model

            User = get_user_model()
            assignees = {u.pk: u.get_username() for u in User.objects.filter(pk__in=user_ids)}
        for names in (*tags.values(), *lists.values()):
            names.sort(key=str.casefold)
        return cls(tags, lists, prefs, assignees)


@dataclass
class ExportTable:
    """The export of one organization's contacts as a table: `header`, then `rows()`."""

    header: list[str]
    custom_keys: list[str]
    queryset: object
    org: object = None
    batch_size: int = EXPORT_BATCH
    # PostgreSQL: the rows come from COPY (contacts.export_sql), not from model instances.
    fast: bool = False
    # Called with the number of contacts of each batch once the writer has taken it (each COPY
    # slice of 50,000 on the fast path): a background export's progress (contacts.export_jobs).
    progress: Callable[[int], None] | None = None

    def batches(self) -> Iterator[tuple[list[Contact], BatchExtras]]:
        for batch, query in iter_keyset_slices(self.queryset, self.batch_size):
            yield batch, BatchExtras.load(batch, query)
            if self.progress is not None:
                self.progress(len(batch))

    def row(self, contact: Contact, extras: BatchExtras) -> list[str]:
        """One contact's cells (plain text, not yet neutralized), in header order."""
        cells = []
        for header, attr in FIELD_COLUMNS:
            if header == "tags":
                cells.append(LIST_SEPARATOR.join(extras.tags.get(contact.pk, ())))
            elif attr in ("secondary_phones", "secondary_emails"):
                cells.append(LIST_SEPARATOR.join(getattr(contact, attr) or ()))
            else:
                cells.append(cell_text(getattr(contact, attr)))
        prefs = extras.preferences.get(contact.pk, {})
        cells.append(LIST_SEPARATOR.join(extras.lists.get(contact.pk, ())))
        cells.extend(cell_text(prefs.get(channel, True)) for channel in Channel.values)  # no row = opted in
        cells += [
            cell_text(contact.opted_out_at), contact.opt_out_source, cell_text(contact.is_textable),
            cell_text(contact.textable_checked_at), cell_text(contact.is_test),
            extras.assignees.get(contact.assignee_id, ""), str(contact.pk), cell_text(contact.created_at),
            cell_text(contact.updated_at),
        ]
        custom = contact.custom_fields or {}
        cells.extend(cell_text(custom.get(key)) for key in self.custom_keys)
        return cells

    def rows(self) -> Iterator[list[str]]:
        for batch, extras in self.batches():
            for contact in batch:
                yield self.row(contact, extras)


def export_rows(queryset, *, org, batch_size: int = EXPORT_BATCH, fast: bool | None = None) -> ExportTable:
    """The table of `queryset`'s contacts. The queryset is narrowed to `org` whatever it was
    built from, so an export never holds another organization's rows. Costs the custom-key
    queries now, then on PostgreSQL one COPY per 50,000 (`fast`, the default there), elsewhere four queries
    per `batch_size` contacts, as the rows are iterated."""
    from . import export_sql

    keys = custom_field_keys(org)
    header = [h for h, _ in FIELD_COLUMNS] + INFO_COLUMNS + [f"custom.{key}" for key in keys]
    return ExportTable(header=header, custom_keys=keys, queryset=queryset.filter(organization=org), org=org,
                       batch_size=batch_size, fast=export_sql.supported() if fast is None else fast)


# --- CSV --------------------------------------------------------------------------------------
def csv_chunks(table: ExportTable, *, bom: bool = True) -> Iterator[bytes]:
    """The CSV file (UTF-8, with a BOM unless told otherwise, CRLF, every cell neutralized) in
    chunks of one batch of contacts each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table.header)
    yield (("\ufeff" if bom else "") + buffer.getvalue()).encode("utf-8")
    if table.fast:
        from . import export_sql

        for lines in export_sql.csv_lines(table):
            yield lines.encode("utf-8")
        return
    for batch, extras in table.batches():
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([neutralize(cell) for cell in table.row(contact, extras)] for contact in batch)
        yield buffer.getvalue().encode("utf-8")


# --- XLSX -------------------------------------------------------------------------------------
VCARD_PRODID = "-//contacts_crm//export//EN"
XLSX_MAX_CELL = 32_767  # Excel's limit on the characters of one cell


def xlsx_cell(header: str, text: str) -> str | None:
    """A cell for the XLSX sheet: None when empty (the writer then writes no cell); neutralized,
    except a phone cell of E.164 numbers only (a text cell Excel shows as typed and never
    evaluates); without the control characters XML cannot hold; at most 32,767 characters."""
    if not text:
        return None
    # XML turns a CR into a LF when the workbook is read (XML 1.0 end-of-line handling): do it
    # before neutralizing, or a leading CR would get a quote the importer no longer recognizes.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not (header in PHONE_HEADERS and _E164_CELL.fullmatch(text)):
        text = neutralize(text)
    if ILLEGAL_CHARACTERS_RE.search(text):
        text = ILLEGAL_CHARACTERS_RE.sub("", text)
    return text[:XLSX_MAX_CELL]


# What xlsx_cell changes besides the formula quote: a CR and the control characters XML cannot hold.
_XLSX_CHANGED = re.compile(r"[\x00-\x08\x0b-\x1f]")
_XLSX_QUOTED_STARTS = FORMULA_STARTS | {"'"}


def xlsx_row(header: list[str], cells: list[str]) -> list[str | None]:
    """`[xlsx_cell(h, cell) for h, cell in zip(header, cells)]`, ~20% cheaper: one scan of
    the row's text finds the rare rows where some cell needs more than the formula check (a CR,
    a control character, or a row long enough to hold a cell past the limit); in the others a
    cell is None, itself, or whatever xlsx_cell makes of it when it starts like a formula."""
    joined = "".join(cells)
    if len(joined) > XLSX_MAX_CELL or _XLSX_CHANGED.search(joined):
        return [xlsx_cell(h, cell) for h, cell in zip(header, cells, strict=True)]
    starts = _XLSX_QUOTED_STARTS
    return [(xlsx_cell(h, cell) if cell[0] in starts else cell) if cell else None
            for h, cell in zip(header, cells, strict=True)]


def xlsx_rows(table: ExportTable) -> Iterator[list[str | None]]:
    """The sheet's rows after the header, cells made by xlsx_cell (None for an empty cell)."""
    header = table.header
    if table.fast:
        from . import export_sql

        for rows in export_sql.text_rows(table):
            for cells in rows:
                yield xlsx_row(header, cells)
        return
    for batch, extras in table.batches():
        for contact in batch:
            yield xlsx_row(header, table.row(contact, extras))


def write_xlsx(table: ExportTable, fileobj) -> None:
    """Writes the workbook into `fileobj` (a seekable temporary file) with contacts.xlsx: the
    sheet streams into the zip, one chunk of rows in memory; every cell is a string, so phones
    and ZIP codes never become numbers. A sheet past 2 GiB of XML is written again with ZIP64
    (the rows are read twice then: rare, and Excel dislikes ZIP64 records it does not need)."""
    from . import xlsx

    # The header is ours but for custom field keys: strip what XML cannot hold there too.
    header = [ILLEGAL_CHARACTERS_RE.sub("", name) for name in table.header]
    start = fileobj.tell()
    try:
        xlsx.write_workbook(fileobj, sheet_name="Contacts", header=header, rows=xlsx_rows(table))
    except xlsx.NeedsZip64:
        fileobj.seek(start)
        fileobj.truncate()
        xlsx.write_workbook(fileobj, sheet_name="Contacts", header=header, rows=xlsx_rows(table), zip64=True)


def xlsx_tempfile(table: ExportTable):
    """The workbook in an anonymous temporary file, rewound (deleted when closed)."""
    import tempfile

    handle = tempfile.TemporaryFile(suffix=".xlsx")
    try:
        write_xlsx(table, handle)
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    return handle


# --- vCard 3.0 --------------------------------------------------------------------------------
def vcard_escape(text: str) -> str:
    """RFC 2426 TEXT escaping: backslash, comma, semicolon and line breaks."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    return (text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n"))


def fold_line(line: str) -> bytes:
    """One content line as UTF-8 with CRLF, folded so that no physical line exceeds 75 octets
    (continuations start with a space, which counts), never splitting a UTF-8 sequence."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return data + b"\r\n"
    out, start, limit = [], 0, 75
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a continuation byte: back off
            end -= 1
        out.append((b" " if start else b"") + data[start:end])
        start, limit = end, 74
    return b"\r\n".join(out) + b"\r\n"


def vcard_lines(contact, tags: list[str] | None) -> list[str]:
    """The content lines of one contact's card (unfolded): `contact` is a Contact or an
    export_sql.CardRow (the same attributes, as cell texts), `tags` its sorted tag names."""
    esc = vcard_escape
    name = contact.display_name or contact.full_name or contact.email or contact.phone or ""
    # PRODID marks the card as ours: the importer then reads external_id from X-CRM-EXTERNAL-ID and
    # never from UID, which holds our contact id (a card from elsewhere keeps UID -> external_id).
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"PRODID:{VCARD_PRODID}", f"UID:{contact.pk}", f"FN:{esc(name)}",
             f"N:{esc(contact.last_name)};{esc(contact.first_name)};;;"]
    if contact.external_id:
        lines.append(f"X-CRM-EXTERNAL-ID:{esc(contact.external_id)}")
    if contact.company:
        lines.append(f"ORG:{esc(contact.company)}")
    if contact.phone:
        # The contact's phone comes first for every reader: PREF, and CELL unless we know it cannot text.
        kind = "VOICE" if contact.is_textable is False else "CELL"
        lines.append(f"TEL;TYPE={kind},PREF:{contact.phone}")
    lines += [f"TEL;TYPE=VOICE:{phone}" for phone in contact.secondary_phones or () if phone != contact.phone]
    if contact.email:
        lines.append(f"EMAIL;TYPE=INTERNET,PREF:{esc(contact.email)}")
    lines += [f"EMAIL;TYPE=INTERNET:{esc(email)}" for email in contact.secondary_emails or ()]
    if any((contact.address, contact.city, contact.state, contact.zip, contact.country)):
        country = _COUNTRY_NAMES.get(contact.country, contact.country)
        parts = ["", "", contact.address, contact.city, contact.state, contact.zip, country]
        lines.append("ADR;TYPE=HOME:" + ";".join(esc(p) for p in parts))
    if contact.birthday:
        lines.append(f"BDAY:{cell_text(contact.birthday)}")
    if contact.timezone:
        lines.append(f"TZ;VALUE=text:{esc(contact.timezone)}")
    if contact.gender:
        lines.append(f"X-GENDER:{esc(contact.gender)}")
    if contact.avatar_url:
        lines.append(f"PHOTO;VALUE=uri:{contact.avatar_url}")
    if tags:
        lines.append("CATEGORIES:" + ",".join(esc(t) for t in tags))
    if contact.notes:
        lines.append(f"NOTE:{esc(contact.notes)}")
    lines += [f"REV:{cell_text(contact.updated_at)}", "END:VCARD"]
    return lines


def card_bytes(lines: list[str]) -> bytes:
    """One card's lines as fold_line writes them; a card of short ASCII lines (most) is encoded
    in one call instead of one per line."""
    text = "\r\n".join(lines) + "\r\n"
    if text.isascii() and all(len(line) <= 75 for line in lines):
        return text.encode("ascii")
    return b"".join(fold_line(line) for line in lines)


def vcard_chunks(table: ExportTable) -> Iterator[bytes]:
    """The .vcf file, one chunk per batch of contacts."""
    if table.fast:
        from . import export_sql

        for cards in export_sql.card_rows(table):
            yield b"".join(card_bytes(vcard_lines(card, tags)) for card, tags in cards)
        return
    for batch, extras in table.batches():
        yield b"".join(card_bytes(vcard_lines(contact, extras.tags.get(contact.pk))) for contact in batch)


# --- one entry point per format ---------------------------------------------------------------
def export_filename(org, fmt: str, *, now: datetime | None = None) -> str:
    from django.utils import timezone

    moment = (now or timezone.now()).astimezone(UTC)
    return f"contacts-{org.slug}-{moment:%Y%m%d-%H%M%S}.{fmt}"


def export_stream(queryset, *, org, fmt: str, bom: bool = True):
    """(content, content type): bytes chunks for csv/vcf, a rewound temporary file for xlsx."""
    if fmt not in FORMATS:
        raise ValueError(f"'{fmt}' is not an export format; use one of {', '.join(FORMATS)}.")
    table = export_rows(queryset, org=org)
    if fmt == "csv":
        return csv_chunks(table, bom=bom), CONTENT_TYPES[fmt]
    if fmt == "vcf":
        return vcard_chunks(table), CONTENT_TYPES[fmt]
    return xlsx_tempfile(table), CONTENT_TYPES[fmt]


def export_response(queryset, *, org, fmt: str):
    """The HTTP answer for an export: streamed (StreamingHttpResponse for csv/vcf, FileResponse
    of the temporary workbook for xlsx), with the file name in Content-Disposition."""
    from django.http import FileResponse, StreamingHttpResponse

    content, content_type = export_stream(queryset, org=org, fmt=fmt)
    filename = export_filename(org, fmt)
    if fmt == "xlsx":
        response = FileResponse(content, content_type=content_type, as_attachment=True, filename=filename)
    else:
        response = StreamingHttpResponse(content, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"  # personal data: no proxy or browser cache keeps a copy
    return response
