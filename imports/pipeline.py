"""The one import pipeline (design §6), used by the RQ job, the API, the admin and
`manage.py import_contacts`:

    reader → rows → column mapping → normalize + validate → stage → fold → chunked upsert
           → counters, events, list membership, errors

Two passes, both in constant memory:
1. *Reading* streams the file, normalizes each record and stages it (StagedRow) with its fold key
   (the phone, else the email). Rows that cannot become a contact are reported here.
2. *Writing* walks the staged rows group by group (all rows sharing a fold key, in file order:
   each non-empty cell overwrites the earlier one, tags accumulate), in chunks of CHUNK_GROUPS
   groups. Each chunk is one transaction that writes contacts, tags, events, list links, errors
   and the job's counters and resume point together, so a killed worker's retry resumes after
   the last committed chunk and reaches the same final state.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

from django.core.files.base import File
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from contacts.models import Contact, ContactEvent, ContactTag
from contacts.normalize import offline_textability
from contacts.search import DOCUMENT_FIELDS, search_document  # lead: search_doc
from contacts.services import tags_ensure
from contacts.validation import custom_field_definitions

from . import pgcopy
from .mapping import MappingError, build_plan
from .models import ImportJob, ImportRowError, StagedRow
from .normalize_row import RowResult, normalize_record
from .readers.base import RawRecord, ReaderError, SourceRow
from .readers.detect import HEAD_BYTES_NEEDED, detect_format
from .readers.vcard import ReaderWarning

logger = logging.getLogger(__name__)

CHUNK_GROUPS = None  # settings.IMPORT_CHUNK_GROUPS unless set (tests)
STAGE_BATCH = 2000
PREVIEW_LIMIT = 10
MAX_ROWS = 2_000_000
DRY_RUN_DETAIL_LIMIT = 1000
SAMPLE_ROWS = 20


class ImportRefused(Exception):
    """The whole file is refused; nothing was written. The message is for the user."""


# --- opening and reading -----------------------------------------------------------------------
class CountingReader(io.RawIOBase):
    """Wraps a binary file and counts the bytes read (the reading phase's progress)."""

    def __init__(self, raw):
        self.raw = raw
        self.count = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n

    def read(self, size=-1):
        data = self.raw.read(size)
        self.count += len(data)
        return data

    def seekable(self):
        return self.raw.seekable()

    def seek(self, offset, whence=0):
        pos = self.raw.seek(offset, whence)
        self.count = pos
        return pos

    def tell(self):
        return self.raw.tell()


def sniff_format(file_name: str, fileobj) -> str:
    head = fileobj.read(HEAD_BYTES_NEEDED)
    fileobj.seek(0)
    return detect_format(file_name, head)


@dataclass
class Source:
    """An opened file: its records (RawRecord), the header and the mapping description."""

    records: Iterator
    header: list[str] = field(default_factory=list)
    mapping: list[dict] = field(default_factory=list)
    reader_warnings: list = field(default_factory=list)
    cells_by_line: dict = field(default_factory=dict)


def open_source(fileobj, *, fmt: str, has_header: bool, overrides: dict | None, custom_unmapped: bool,
                region: str) -> Source:
    """Opens a file for reading records. Raises ImportRefused for a file it cannot read."""
    try:
        if fmt == "vcf":
            from .readers.vcard import legacy_charset_for_region, read_vcards

            source = Source(records=iter(()), mapping=[{"index": None, "header": "vCard", "target": "(by property)"}])
            warnings = source.reader_warnings
            records = read_vcards(fileobj, fallback_charset=legacy_charset_for_region(region),
                                  on_warning=warnings.append)
            source.records = (_without_nul(r, [], warnings) for r in records)
            return source
        if fmt in ("csv", "tsv"):
            from .readers.delimited import read_delimited

            rows = read_delimited(fileobj)
        else:
            from .readers.spreadsheet import read_spreadsheet

            rows = read_spreadsheet(fileobj, fmt)
        rows = iter(rows)
        first = next((r for r in rows if r.cells), None)
        if first is None:
            raise ImportRefused("The file has no rows.")
        if any("\x00" in cell for cell in first.cells):  # the header is stored in the preview
            first = SourceRow(first.line, [cell.replace("\x00", "") for cell in first.cells])
        sample = list(islice(rows, SAMPLE_ROWS))
        header_row = first if has_header else first
        plan = build_plan(header_row.cells, has_header=has_header, overrides=overrides or None,
                          custom_unmapped=custom_unmapped, sample=[r for r in sample if r.cells])
        plan.require_contact_column()
        data_rows = ([] if has_header else [first]) + sample
        warnings = []

        def records():
            for row in _chain(data_rows, rows):
                if not row.cells or not any(c.strip() for c in row.cells):
                    yield RawRecord(line=row.line), row.cells
                else:
                    yield _without_nul(plan.apply(row), row.cells, warnings)

        header = first.cells if has_header else [f"column {i + 1}" for i in range(len(first.cells))]
        return Source(records=records(), header=list(header), mapping=plan.describe(), reader_warnings=warnings)
    except (ReaderError, MappingError) as exc:
        raise ImportRefused(str(exc)) from None


def _without_nul(record: RawRecord, cells: list, warnings: list) -> tuple[RawRecord, list]:
    """A NUL character (U+0000) is no text (PostgreSQL stores none): a value holding one keeps
    the rest of its text, and the row gets a warning naming the column."""
    for name, candidates in record.values.items():
        if any("\x00" in text for _, text in candidates):
            for column, text in candidates:
                if "\x00" in text:
                    warnings.append(ReaderWarning(record.line, column, text.replace("\x00", "\\x00")[:100],
                                                  "NUL characters (\\x00) removed: they are not text"))
            record.values[name] = [(column, text.replace("\x00", "")) for column, text in candidates]
    if any("\x00" in cell for cell in cells):
        cells = [cell.replace("\x00", "") for cell in cells]
    return record, cells


def _chain(first: list[SourceRow], rest) -> Iterator[SourceRow]:
    yield from first
    yield from rest


# --- starting a job -------------------------------------------------------------------------------
def build_preview(fileobj, *, fmt, has_header, overrides, custom_unmapped, region, definitions, limit) -> dict:
    """The detected mapping and the first `limit` records, raw and normalized."""
    source = open_source(fileobj, fmt=fmt, has_header=has_header, overrides=overrides,
                         custom_unmapped=custom_unmapped, region=region)
    rows = []
    for record, cells in islice(source.records, limit):
        result = normalize_record(record, region=region, definitions=definitions)
        rows.append({
            "line": record.line,
            "cells": cells,
            "values": {name: [text for _, text in cands] for name, cands in record.values.items()},
            "contact": result.data,
            "status": "blank" if result.blank else "error" if result.failed else "ok",
            "issues": [vars(i) for i in result.issues],
        })
    return {"format": fmt, "header": source.header, "mapping": source.mapping, "rows": rows}


def start_import(*, org, uploaded, file_name: str, mode=ImportJob.Mode.CREATE_UPDATE, has_header=True,
                 mapping=None, custom_unmapped=False, default_region="", contact_list=None, dry_run=False,
                 preview_limit=PREVIEW_LIMIT, user=None, api_key=None, run_now=False, launch=True) -> ImportJob:
    """Checks the file, builds the preview, saves the job and enqueues it after commit.

    Raises ImportRefused (nothing saved) for a file that cannot be imported at all. `run_now`
    runs the job synchronously (the management command); `launch=False` saves a draft that
    `launch_import` starts later (the admin's preview step).
    """
    from django.conf import settings

    from contacts_crm.jobs import enqueue

    size = getattr(uploaded, "size", None)
    if size is None:
        uploaded.seek(0, os.SEEK_END)
        size = uploaded.tell()
    uploaded.seek(0)
    if size == 0:
        raise ImportRefused("The file is empty.")
    if size > settings.IMPORT_MAX_BYTES:
        raise ImportRefused(f"The file is {size / 1e6:.0f} MB; the largest import is "
                            f"{settings.IMPORT_MAX_BYTES / 1e6:.0f} MB. Split it into smaller files.")
    try:
        fmt = sniff_format(file_name, uploaded)
    except ReaderError as exc:
        raise ImportRefused(str(exc)) from None
    region = (default_region or org.default_region).upper()
    preview = build_preview(uploaded, fmt=fmt, has_header=has_header, overrides=mapping,
                            custom_unmapped=custom_unmapped, region=region,
                            definitions=custom_field_definitions(org), limit=preview_limit)
    uploaded.seek(0)
    job = ImportJob(
        organization=org, file_name=os.path.basename(file_name)[:255], file_size=size, format=fmt, mode=mode,
        has_header=has_header, mapping=mapping or {}, custom_unmapped=custom_unmapped,
        default_region=region, contact_list_id=getattr(contact_list, "pk", contact_list), dry_run=dry_run,
        preview=preview, created_by=user if getattr(user, "pk", None) else None, created_by_key=api_key,
    )
    if not launch:
        job.status = ImportJob.Status.DRAFT
    job.file.save(os.path.basename(file_name) or "upload", File(uploaded), save=False)
    job.save()
    if run_now:
        run_import(job.pk)
        job.refresh_from_db()
    elif launch:
        transaction.on_commit(lambda: enqueue(run_import, job.pk))
    return job


def launch_import(job: ImportJob, **changes) -> ImportJob:
    """Starts a draft job (after the admin's preview), with the options the user changed."""
    from contacts_crm.jobs import enqueue

    if job.status != ImportJob.Status.DRAFT:
        raise ImportRefused("This import has already been started.")
    for name, value in changes.items():
        setattr(job, name, value)
    job.status = ImportJob.Status.QUEUED
    job.save()
    transaction.on_commit(lambda: enqueue(run_import, job.pk))
    return job


# --- the job ------------------------------------------------------------------------------------
def run_import(job_id: int) -> None:
    """The RQ job: runs (or resumes) an import to its end. Safe to run again after a crash."""
    job = ImportJob.objects.select_related("organization").get(pk=job_id)
    if job.is_finished:
        return
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.RUNNING, attempts=F("attempts") + 1, started_at=job.started_at or timezone.now()
    )
    job.refresh_from_db()
    try:
        if job.phase in (ImportJob.Phase.QUEUED, ImportJob.Phase.READING):
            stage_rows(job)
        write_groups(job)
    except ImportRefused as exc:
        _finish(job, ImportJob.Status.FAILED, error=str(exc))
        return
    except Exception as exc:
        logger.exception("Import %s crashed", job.pk)
        _finish(job, ImportJob.Status.FAILED, error=f"The import stopped on an internal error ({type(exc).__name__}). "
                "The rows written so far are kept; support has the details.")
        raise
    _finish(job, ImportJob.Status.SUCCEEDED)


def _finish(job: ImportJob, status, error: str = ""):
    StagedRow.objects.filter(job=job).delete()
    job.refresh_from_db()
    job.status = status
    job.phase = ImportJob.Phase.DONE
    job.error = error
    job.finished_at = timezone.now()
    job.total = sum(getattr(job, name) for name in ImportJob.COUNTERS)
    job.warnings = job.row_errors.filter(severity="warning").count()
    job.save()


def _error_rows(job, result: RowResult, cells) -> list[ImportRowError]:
    out = []
    for index, issue in enumerate(result.issues):
        out.append(ImportRowError(
            job=job, line=result.line, column=issue.column[:255], value=issue.value[:2000], message=issue.message,
            severity=issue.severity, code=issue.code, cells=cells if index == 0 else None,
        ))
    return out


def stage_rows(job: ImportJob) -> None:
    """Pass 1: read, normalize and stage every record. Restarts from the top when resumed."""
    with transaction.atomic():
        StagedRow.objects.filter(job=job).delete()
        job.row_errors.all().delete()
        job.phase = ImportJob.Phase.READING
        job.rows_read = job.bytes_read = 0
        for name in ImportJob.COUNTERS:
            setattr(job, name, 0)
        job.save()
    region = job.default_region or job.organization.default_region
    definitions = custom_field_definitions(job.organization)
    with job.file.open("rb") as raw:
        counting = CountingReader(raw)
        stream = io.BufferedReader(counting, buffer_size=64 * 1024)
        source = open_source(stream, fmt=job.format, has_header=job.has_header, overrides=job.mapping,
                             custom_unmapped=job.custom_unmapped, region=region)
        staged, errors, seq, skipped, failed = [], [], 0, 0, 0

        def flush():
            nonlocal staged, errors, skipped, failed
            with transaction.atomic():
                _insert(StagedRow, staged)
                _insert(ImportRowError, errors)
                for warning in source.reader_warnings:
                    ImportRowError.objects.create(job=job, line=warning.line,
                                                  column=warning.column[:255].replace("\x00", ""),
                                                  value=warning.value[:2000].replace("\x00", "\\x00"),
                                                  message=warning.message.replace("\x00", "\\x00"),
                                                  severity="warning", code="reader")
                source.reader_warnings.clear()
                ImportJob.objects.filter(pk=job.pk).update(
                    rows_read=seq, bytes_read=counting.count, skipped=F("skipped") + skipped,
                    failed=F("failed") + failed,
                )
            staged, errors, skipped, failed = [], [], 0, 0

        for record, cells in source.records:
            seq += 1
            if seq > MAX_ROWS:
                raise ImportRefused(f"The file has more than {MAX_ROWS:,} rows; split it into smaller files.")
            result = normalize_record(record, region=region, definitions=definitions)
            if result.blank:
                skipped += 1
                continue
            errors.extend(_error_rows(job, result, cells))
            if result.failed:
                failed += 1
            else:
                staged.append(StagedRow(job=job, seq=seq, line=record.line, phone=result.data.get("phone"),
                                        email_key=result.data.get("email_key"), group_seq=seq,
                                        data=result.data, cells=cells))
            if len(staged) + len(errors) >= STAGE_BATCH:
                flush()
        flush()
    with transaction.atomic():
        fold_groups(job)
        groups = StagedRow.objects.filter(job=job).values("group_seq").distinct().count()
        ImportJob.objects.filter(pk=job.pk).update(phase=ImportJob.Phase.WRITING, groups_total=groups,
                                                   bytes_read=job.file_size)
    job.refresh_from_db()


FOLD_ROUNDS = 20


def fold_groups(job: ImportJob) -> None:
    """Gives every staged row the seq of the first row it folds with: rows sharing a phone or an
    email, directly or through other rows (connected components, by label propagation in SQL:
    each round takes the smallest label over each phone, then over each email, until nothing
    changes; real files settle in two or three rounds). Memory: none in Python.
    """
    from django.db import connection

    table = StagedRow._meta.db_table
    for _ in range(FOLD_ROUNDS):
        changed = 0
        for column in ("phone", "email_key"):
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET group_seq = t.g FROM ("
                    f"  SELECT id, MIN(group_seq) OVER (PARTITION BY {column}) AS g FROM {table}"
                    f"  WHERE job_id = %s AND {column} IS NOT NULL"
                    f") AS t WHERE {table}.id = t.id AND {table}.group_seq > t.g",
                    [job.pk],
                )
                changed += cursor.rowcount
        if not changed:
            return
    logger.warning("Import %s: fold groups still merging after %s rounds", job.pk, FOLD_ROUNDS)


@dataclass
class Group:
    first_seq: int
    lines: list[int]
    data: dict

    @classmethod
    def fold(cls, rows: list[tuple]) -> Group:
        """Rows (group_seq, line, data) in file order: each non-empty value overwrites the earlier
        one, lists accumulate. A phone or email replaced by a later row's is kept as a secondary
        one (nothing is lost)."""
        data: dict = {}
        for _, _, row_data in rows:
            for name, value in row_data.items():
                if name in ("phone", "email") and data.get(name) and data[name] != value:
                    aside = "secondary_phones" if name == "phone" else "secondary_emails"
                    if data[name] not in data.get(aside, []):
                        data[aside] = data.get(aside, []) + [data[name]]
                if name == "tags":
                    known = {t.casefold() for t in data.get("tags", [])}
                    data["tags"] = data.get("tags", []) + [t for t in value if t.casefold() not in known]
                elif name in ("secondary_phones", "secondary_emails"):
                    data[name] = data.get(name, []) + [v for v in value if v not in data.get(name, [])]
                elif name == "custom_fields":
                    data["custom_fields"] = {**data.get("custom_fields", {}), **value}
                else:
                    data[name] = value
        return cls(first_seq=rows[0][0], lines=[line for _, line, _ in rows], data=data)


def next_chunk(job: ImportJob, after: int) -> list[Group]:
    """The next CHUNK_GROUPS groups after `after`, folded; two indexed queries. The original
    cells stay in the table: only a failed group's are read (`ChunkWriter.fail`)."""
    from django.conf import settings

    size = CHUNK_GROUPS or settings.IMPORT_CHUNK_GROUPS
    seqs = list(StagedRow.objects.filter(job=job, group_seq__gt=after).order_by("group_seq")
                .values_list("group_seq", flat=True).distinct()[:size])
    if not seqs:
        return []
    rows = StagedRow.objects.filter(job=job, group_seq__gte=seqs[0], group_seq__lte=seqs[-1]).order_by(
        "group_seq", "seq").values_list("group_seq", "line", "data")
    groups, current = [], []
    for row in rows:
        if current and row[0] != current[0][0]:
            groups.append(Group.fold(current))
            current = []
        current.append(row)
    if current:
        groups.append(Group.fold(current))
    return groups


# PostgreSQL plans the chunk's match query from table statistics: a big first import into an
# organization that had few contacts leaves them stale, and the planner then scans the whole
# organization per chunk (measured on 1M rows: 0.6 s per 2,000-row chunk, 50 ms for the tag
# lookup after ANALYZE instead of 250 ms). ANALYZE samples the table in ~0.5 s.
ANALYZE_EVERY_CHUNKS = 50
ANALYZE_MIN_GROUPS = 20_000


def write_groups(job: ImportJob) -> None:
    """Pass 2: write each chunk of groups in one transaction with the job's counters.

    The resume point is read again under a row lock in every chunk's transaction: a chunk that
    another runner of the same job (a worker thought dead, still running) has committed is
    never written twice.
    """
    after = job.resume_seq
    chunks = 0
    while groups := next_chunk(job, after):
        if chunks % ANALYZE_EVERY_CHUNKS == 0 and job.groups_total >= ANALYZE_MIN_GROUPS:
            pgcopy.analyze(Contact, ContactTag)
        chunks += 1
        for attempt in range(3):
            try:
                with transaction.atomic():
                    locked = ImportJob.objects.select_for_update().get(pk=job.pk)
                    if locked.resume_seq != after:
                        break  # someone else wrote this chunk: go on from where they are
                    outcome = ChunkWriter(locked, groups).run()
                    ImportJob.objects.filter(pk=job.pk).update(
                        resume_seq=groups[-1].first_seq, groups_done=F("groups_done") + len(groups),
                        processed=F("processed") + sum(len(g.lines) for g in groups),
                        **{name: F(name) + value for name, value in outcome.counters.items()},
                    )
                    if job.dry_run and outcome.details:
                        room = DRY_RUN_DETAIL_LIMIT - len(locked.result.get("rows", []))
                        if room > 0:
                            ImportJob.objects.filter(pk=job.pk).update(
                                result={"rows": locked.result.get("rows", []) + outcome.details[:room]})
                break
            except IntegrityError:
                # A concurrent write (the API) took a phone or email this chunk meant to create:
                # read the chunk's matches again and redo it.
                if attempt == 2:
                    raise
        job.refresh_from_db()
        after = job.resume_seq


@dataclass
class ChunkOutcome:
    counters: dict
    details: list


class ChunkWriter:
    """Matches, compares and writes one chunk of groups. Queries: a constant number per chunk."""

    def __init__(self, job: ImportJob, groups: list[Group]):
        self.job = job
        self.org = job.organization
        self.groups = groups
        self.now = timezone.now()
        self.counters = dict.fromkeys(ImportJob.COUNTERS, 0)
        self.details = []
        self.errors: list[ImportRowError] = []
        self.creates: dict[int, Contact] = {}  # id(contact) -> contact
        self.updates: dict = {}  # contact pk -> (contact, set of fields)
        self.new_tags: dict = {}  # contact -> set of tag names
        self.touched: dict = {}  # contact -> {"outcome", "fields"}
        self.opted_out: list[Contact] = []

    def run(self) -> ChunkOutcome:
        phones = {g.data["phone"] for g in self.groups if g.data.get("phone")}
        keys = {g.data["email_key"] for g in self.groups if g.data.get("email_key")}
        existing = list(Contact.objects.for_org(self.org).filter(Q(phone__in=phones) | Q(email_key__in=keys)))
        self.by_phone = {c.phone: c for c in existing if c.phone}
        self.by_email = {c.email_key: c for c in existing if c.email_key}
        self.tag_keys = {}
        for contact_id, key in ContactTag.objects.filter(contact__in=existing).values_list("contact_id", "tag__key"):
            self.tag_keys.setdefault(contact_id, set()).add(key)
        for group in self.groups:
            self.apply(group)
        if self.job.dry_run:
            ImportRowError.objects.bulk_create(self.errors, batch_size=1000)  # the report, even in a dry run
        else:
            self.write()
        return ChunkOutcome(self.counters, self.details)

    # -- planning ---------------------------------------------------------------------------
    def fail(self, group: Group, message: str, code: str):
        self.counters["failed"] += len(group.lines)
        cells = StagedRow.objects.filter(job=self.job, seq=group.first_seq).values_list("cells", flat=True).first()
        for index, line in enumerate(group.lines):
            self.errors.append(ImportRowError(job=self.job, line=line, message=message, severity="error", code=code,
                                              column="", value="", cells=cells if index == 0 else None))
        self.detail(group, "error", message=message)

    def detail(self, group, outcome, **extra):
        if self.job.dry_run and len(self.details) < DRY_RUN_DETAIL_LIMIT:
            self.details.append({"line": group.lines[0], "lines": group.lines[:20], "outcome": outcome, **extra})

    def apply(self, group: Group):
        data = group.data
        by_phone = self.by_phone.get(data.get("phone")) if data.get("phone") else None
        by_email = self.by_email.get(data.get("email_key")) if data.get("email_key") else None
        if by_phone is not None and by_email is not None and by_phone is not by_email:
            self.fail(group, f"The phone {data['phone']} belongs to contact {by_phone.pk} and the email "
                      f"{data['email']} to contact {by_email.pk}: fix one of them.", "conflict")
            return
        contact = by_phone or by_email
        mode = self.job.mode
        if (contact is None and mode == ImportJob.Mode.UPDATE_ONLY) or (
                contact is not None and mode == ImportJob.Mode.CREATE_ONLY):
            self.counters["skipped"] += len(group.lines)
            self.detail(group, "skipped", reason="unknown contact" if contact is None else "existing contact")
            return
        self.counters["merged"] += len(group.lines) - 1
        if contact is None:
            contact = self.plan_create(data)
            outcome, fields = "created", sorted(k for k in data if k != "email_key")
        else:
            fields = self.plan_update(contact, data)
            outcome = "updated" if fields else "unchanged"
        self.counters[outcome] += 1
        self.detail(group, outcome, **({"fields": fields} if outcome != "unchanged" else {}),
                    **({"contact_id": str(contact.pk)} if outcome != "created" else {}))
        if outcome != "unchanged":
            entry = self.touched.setdefault(id(contact), {"contact": contact, "outcome": outcome, "fields": set()})
            entry["fields"].update(fields)

    def plan_create(self, data: dict) -> Contact:
        contact = Contact(organization=self.org, created_at=self.now, updated_at=self.now,
                          **{k: v for k, v in data.items() if k not in ("tags", "opted_out", "birthday")})
        if data.get("birthday"):
            contact.birthday = data["birthday"]
        if contact.phone:
            contact.is_textable = offline_textability(contact.phone)
            contact.textable_checked_at = self.now
        if data.get("opted_out"):
            contact.opted_out, contact.opted_out_at, contact.opt_out_source = True, self.now, "import"
            self.opted_out.append(contact)
        self.creates[id(contact)] = contact
        if contact.phone:
            self.by_phone[contact.phone] = contact
        if contact.email_key:
            self.by_email[contact.email_key] = contact
        if data.get("tags"):
            self.new_tags.setdefault(id(contact), (contact, set()))[1].update(data["tags"])
        return contact

    def plan_update(self, contact: Contact, data: dict) -> list[str]:
        changed = set()

        def set_field(name, value):
            if getattr(contact, name) != value:
                setattr(contact, name, value)
                changed.add(name)

        for name, value in data.items():
            if name in ("tags", "opted_out", "email_key", "secondary_phones", "secondary_emails", "custom_fields"):
                continue
            if name == "phone" and contact.phone and contact.phone != value:
                # Matched by email while it has another number: the row's number is one more of
                # the contact's, kept aside. Replacing the primary would make two rows sharing an
                # email flip it on every import of the same file.
                self._keep_aside(contact, "secondary_phones", value, changed)
                continue
            if name == "email" and contact.email and contact.email_key != data["email_key"]:
                self._keep_aside(contact, "secondary_emails", contact.email, changed)
            if name == "birthday":
                value = _as_date(value)
            set_field(name, value)
        if "phone" in changed:
            self.by_phone[contact.phone] = contact
            contact.is_textable = offline_textability(contact.phone)
            contact.textable_checked_at = self.now
            changed.update({"is_textable", "textable_checked_at"})
        if "email" in changed:
            contact.email_key = data["email_key"]
            self.by_email[contact.email_key] = contact
            changed.add("email_key")
        for name in ("secondary_phones", "secondary_emails"):
            primary = contact.phone if name == "secondary_phones" else contact.email
            for value in data.get(name, []):
                if value != primary:
                    self._keep_aside(contact, name, value, changed)
        if data.get("custom_fields"):
            merged = {**(contact.custom_fields or {}), **data["custom_fields"]}
            if len(merged) > 20:
                merged = contact.custom_fields  # the limit holds: keep what the contact has
            set_field("custom_fields", merged)
        if data.get("opted_out") and not contact.opted_out:
            contact.opted_out, contact.opted_out_at, contact.opt_out_source = True, self.now, "import"
            changed.update({"opted_out", "opted_out_at", "opt_out_source"})
            self.opted_out.append(contact)
        if data.get("tags"):
            have = self.tag_keys.get(contact.pk, set())
            new = {t for t in data["tags"] if t.casefold() not in have}
            if new:
                self.new_tags.setdefault(id(contact), (contact, set()))[1].update(new)
                self.tag_keys.setdefault(contact.pk, set()).update(t.casefold() for t in new)
                changed.add("tags")
        if changed - {"tags"} and id(contact) not in self.creates:
            entry = self.updates.setdefault(contact.pk, (contact, set()))
            entry[1].update(changed - {"tags"})
        return sorted(changed - {"email_key", "is_textable", "textable_checked_at", "opted_out_at", "opt_out_source"})

    @staticmethod
    def _keep_aside(contact, name, value, changed):
        current = list(getattr(contact, name) or [])
        if value not in current and len(current) < 20:
            setattr(contact, name, current + [value])
            changed.add(name)

    # -- writing ----------------------------------------------------------------------------
    def write(self):
        with pgcopy.own_tag_ids():
            self._write_contacts()
        self._write_events()

    def _write_contacts(self):
        pg = pgcopy.supported()
        tags = {}
        if self.new_tags:
            all_names = {name for _, names in self.new_tags.values() for name in names}
            tags = {t.key: t for t in tags_ensure(org=self.org, names=all_names)}
            if pg:  # a new contact's tag ids go in with its own row (the trigger is off)
                for contact, names in self.new_tags.values():
                    if id(contact) in self.creates:
                        contact.tag_ids = sorted({tags[n.casefold()].pk for n in names if n.casefold() in tags})
        if self.creates:
            for contact in self.creates.values():  # lead: search_doc (planned contacts are final here)
                contact.search_doc = search_document(contact.__dict__)
            _insert(Contact, list(self.creates.values()))
        if self.updates:
            fields = set().union(*(f for _, f in self.updates.values())) | {"updated_at"}
            if fields & set(DOCUMENT_FIELDS):  # lead: search_doc, written with the fields it is built from
                fields.add("search_doc")
            contacts = []
            for contact, _ in self.updates.values():
                contact.updated_at = self.now
                if "search_doc" in fields:  # lead: search_doc
                    contact.search_doc = search_document(contact.__dict__)
                contacts.append(contact)
            if pg:
                pgcopy.update_objects(Contact, contacts, sorted(fields))
            else:
                Contact.objects.bulk_update(contacts, sorted(fields), batch_size=500)
        if self.new_tags:
            links = [(contact.pk, tags[name.casefold()].pk)
                     for contact, names in self.new_tags.values() for name in names if name.casefold() in tags]
            # Only links the chunk found missing: a concurrent identical link fails the chunk,
            # which is then redone from a fresh read.
            _insert_rows(ContactTag, ("contact_id", "tag_id"), links)
            if pg:  # existing contacts that gained links: tag_ids from the links, in one UPDATE
                pgcopy.resync_tag_ids([c.pk for c, _ in self.new_tags.values() if id(c) not in self.creates],
                                      self.now)
            else:
                tagged_only = [c.pk for c, _ in self.new_tags.values()
                               if id(c) not in self.creates and c.pk not in self.updates]
                if tagged_only:
                    Contact.objects.filter(pk__in=tagged_only).update(updated_at=self.now)

    def _write_events(self):
        job = self.job
        common = (self.org.pk, self.now, job.created_by_id, job.created_by_key_id, f"import {job.pk}")
        events = [
            (entry["contact"].pk, ContactEvent.Kind.IMPORTED.value,
             {"import_id": job.pk, "outcome": entry["outcome"], "fields": sorted(entry["fields"])}, *common)
            for entry in self.touched.values()
        ]
        events += [(c.pk, ContactEvent.Kind.OPTED_OUT.value, {"channel": None, "source": "import", "import_id": job.pk},
                    *common) for c in self.opted_out]
        _insert_rows(ContactEvent, ("contact_id", "kind", "data", "organization_id", "created_at", "actor_user_id",
                                    "actor_api_key_id", "actor_label"), events)
        if job.contact_list_id:
            self.add_to_list([entry["contact"] for entry in self.touched.values()]
                             + [c for c in self._unchanged_contacts()])
        _insert(ImportRowError, self.errors)

    def _unchanged_contacts(self):
        touched = {id(e["contact"]) for e in self.touched.values()}
        seen = set()
        for group in self.groups:
            contact = self.by_phone.get(group.data.get("phone")) or self.by_email.get(group.data.get("email_key"))
            if contact is not None and id(contact) not in touched and id(contact) not in seen and contact.pk:
                seen.add(id(contact))
                yield contact

    def add_to_list(self, contacts):
        from segments.services import list_add_members_bulk

        list_add_members_bulk(list_id=self.job.contact_list_id, contacts=contacts, job=self.job, at=self.now)


def _insert(model, objects):
    """Inserts new rows: COPY on PostgreSQL, bulk_create elsewhere."""
    if not objects:
        return
    if pgcopy.supported():
        pgcopy.copy_objects(model, objects)
    else:
        model.objects.bulk_create(objects, batch_size=500)


def _insert_rows(model, columns, rows):
    """Inserts new rows given as tuples of `columns` (attnames): COPY on PostgreSQL."""
    if not rows:
        return
    if pgcopy.supported():
        pgcopy.copy_rows(model, columns, rows)
    else:
        model.objects.bulk_create([model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=500)


def _as_date(value):
    import datetime as dt

    return dt.date.fromisoformat(value) if isinstance(value, str) else value
