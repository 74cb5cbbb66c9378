"""Big exports as background jobs (issue 14): the same files as contacts.exports, written by a job
into Django's storage (MEDIA_ROOT/exports/<organization id>/) and downloaded through a link valid
for EXPORT_LINK_HOURS.

    export_start(org=..., actor=..., fmt=..., params=...)  →  ExportJob, enqueued on commit
    run_export(job_id)                                      →  the RQ job: writes the file
    purge_expired_exports()                                 →  periodic: deletes expired files

The API's `GET /contacts/export` streams an export of at most EXPORT_STREAM_MAX_ROWS contacts
in the request and starts a job for a bigger one (export_is_big); `POST /exports` and the admin
start one explicitly.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from .exports import FORMATS, csv_chunks, export_filename, export_rows, vcard_chunks, write_xlsx
from .models import Contact, ExportJob

logger = logging.getLogger(__name__)


class ExportRefused(Exception):
    """An export that cannot be started (a bad format); the message says why."""


def export_is_big(queryset) -> bool:
    """Whether `queryset` holds more than EXPORT_STREAM_MAX_ROWS contacts: one count bounded to
    that many rows plus one (never a count of the whole book)."""
    limit = settings.EXPORT_STREAM_MAX_ROWS
    return queryset.order_by()[: limit + 1].count() > limit


def export_params(query_params) -> dict[str, str]:
    """The filters of a request's query string as an ExportJob stores them (name → last value,
    as filter_contacts reads them), without the format."""
    return {name: query_params.get(name) for name in query_params if name != "format"}


def export_queryset(*, org, params: dict):
    """The contacts an export of `params` covers, as GET /contacts/export selects them. Raises
    DRF's ValidationError / NotFound for a bad filter or an unknown segment (filter_contacts)."""
    from .filters import filter_contacts

    qs, _ = filter_contacts(Contact.objects.for_org(org), params, org=org)
    return qs


def export_start(*, org, actor: dict, fmt: str, params: dict) -> ExportJob:
    """Saves a queued export job of the contacts matching `params` and enqueues run_export after
    commit. `actor` is {'user': ...} or {'api_key': ...} (request_actor). The filters are checked
    now (a bad one raises as in export_queryset), so a job only fails on what changed since."""
    from contacts_crm.jobs import enqueue

    if fmt not in FORMATS:
        raise ExportRefused(f"'{fmt}' is not an export format; use one of {', '.join(FORMATS)}.")
    params = {str(name): str(value) for name, value in (params or {}).items() if name != "format"}
    export_queryset(org=org, params=params)  # lazy: builds the query, reads no contact
    user = actor.get("user")
    job = ExportJob.objects.create(
        organization=org, format=fmt, params=params, created_by=user if getattr(user, "pk", None) else None,
        created_by_key=actor.get("api_key"),
    )
    transaction.on_commit(lambda: enqueue(run_export, job.pk))
    return job


def _error_text(exc: Exception) -> str:
    from rest_framework.exceptions import APIException

    if isinstance(exc, APIException):  # a filter that no longer holds (a deleted segment, list)
        from contacts_crm.api.errors import _flatten

        return "; ".join(_flatten(exc.detail))
    return f"The export failed ({type(exc).__name__}); nothing was written. Start it again, or ask support."


def run_export(job_id: int) -> None:
    """The RQ job: writes the export into a temporary file, then into storage; rows_done moves
    every batch (one UPDATE per 2,000 contacts). Ends succeeded (with expires_at) or failed with
    the reason in `error`; a job already started or finished is left alone."""
    job = ExportJob.objects.select_related("organization").get(pk=job_id)
    now = timezone.now()
    if not ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.QUEUED).update(
            status=ExportJob.Status.RUNNING, started_at=now):
        return  # run twice (a requeue): the first run owns it
    org = job.organization
    done = 0

    def progress(rows: int) -> None:
        nonlocal done
        done += rows
        ExportJob.objects.filter(pk=job.pk).update(rows_done=done)

    try:
        qs = export_queryset(org=org, params=job.params)
        total = qs.count()
        ExportJob.objects.filter(pk=job.pk).update(rows_total=total)
        table = export_rows(qs, org=org)
        table.progress = progress
        with tempfile.TemporaryFile(suffix=f".{job.format}") as handle:
            if job.format == ExportJob.Format.XLSX:
                write_xlsx(table, handle)
            else:
                for chunk in csv_chunks(table) if job.format == ExportJob.Format.CSV else vcard_chunks(table):
                    handle.write(chunk)
            handle.seek(0)
            job.refresh_from_db()
            job.file.save(export_filename(org, job.format), File(handle), save=False)
    except Exception as exc:
        logger.warning("Export %s failed", job.pk, exc_info=True)
        ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.FAILED, error=_error_text(exc),
                                                   finished_at=timezone.now())
        return
    finished = timezone.now()
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.SUCCEEDED, file=job.file.name, rows_done=done, finished_at=finished,
        expires_at=finished + timedelta(hours=settings.EXPORT_LINK_HOURS))


def purge_expired_exports() -> list[int]:
    """The periodic check (contacts_crm.jobs.periodic_checks): deletes the file of every export
    whose link has expired and marks the row expired (kept: the history of who exported what).
    Returns the ids purged. One query, then one storage delete and one UPDATE per export."""
    purged = []
    expired = ExportJob.objects.filter(status=ExportJob.Status.SUCCEEDED, expires_at__lte=timezone.now())
    for job in expired.only("pk", "file"):
        if job.file:
            job.file.delete(save=False)
        ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.EXPIRED, file="")
        purged.append(job.pk)
    return purged
