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


class ExportNotReady(Exception):
    """The export's file is not there yet (queued, running) or never will be (failed)."""


class ExportExpired(Exception):
    """The export's download link has expired (its file is or will soon be deleted)."""


def export_file(job: ExportJob):
    """The job's file, opened for reading. Raises ExportExpired once the link has expired and
    ExportNotReady before the job has succeeded (with its error when it failed)."""
    if job.is_expired:
        raise ExportExpired("This export's download link has expired and its file is deleted; start a new export.")
    if job.status != ExportJob.Status.SUCCEEDED or not job.file:
        raise ExportNotReady(f"The export is {job.status}" + (f": {job.error}" if job.error else "; try again later."))
    return job.file.open("rb")


def export_is_big(queryset) -> bool:
    """Whether `queryset` holds more than EXPORT_STREAM_MAX_ROWS contacts: one count bounded to
    that many rows plus one (never a count of the whole book)."""
    limit = settings.EXPORT_STREAM_MAX_ROWS
    return queryset.order_by()[: limit + 1].count() > limit


def export_params(query_params) -> dict[str, str]:
    """The filters of a request's query string as an ExportJob stores them (name → last value,
    as filter_contacts reads them), without the format."""
    return {name: query_params.get(name) for name in query_params if name != "format"}


def export_queryset(job: ExportJob):
    """The contacts the job exports: its params as GET /contacts/export selects them (raises DRF's
    ValidationError / NotFound for a bad filter or an unknown segment, as filter_contacts does),
    or an admin export's changelist, read again as its user's (export_views)."""
    from .filters import filter_contacts

    if job.admin_query:
        from .export_views import admin_changelist_queryset

        if job.created_by is None:
            raise ExportRefused("The user who started this export no longer exists.")
        return admin_changelist_queryset(user=job.created_by, query=job.admin_query)
    qs, _ = filter_contacts(Contact.objects.for_org(job.organization), job.params, org=job.organization)
    return qs


def export_start(*, org, actor: dict, fmt: str, params: dict | None = None, admin_query: str = "") -> ExportJob:
    """Saves a queued export job of the contacts matching `params` and enqueues run_export after
    commit. `actor` is {'user': ...} or {'api_key': ...} (request_actor). The filters are checked
    now (a bad one raises as in export_queryset), so a job only fails on what changed since.
    `admin_query` (the admin, with a user actor) replaces `params`: the changelist's query string."""
    from contacts_crm.jobs import enqueue

    if fmt not in FORMATS:
        raise ExportRefused(f"'{fmt}' is not an export format; use one of {', '.join(FORMATS)}.")
    params = {str(name): str(value) for name, value in (params or {}).items() if name != "format"}
    user = actor.get("user")
    job = ExportJob(
        organization=org, format=fmt, params=params, admin_query=admin_query,
        created_by=user if getattr(user, "pk", None) else None, created_by_key=actor.get("api_key"),
    )
    if not admin_query:
        export_queryset(job)  # lazy: builds the query, reads no contact
    job.save()
    transaction.on_commit(lambda: enqueue(run_export, job.pk))
    return job


def _error_text(exc: Exception) -> str:
    from rest_framework.exceptions import APIException

    if isinstance(exc, APIException):  # a filter that no longer holds (a deleted segment, list)
        from contacts_crm.api.errors import _flatten

        return "; ".join(_flatten(exc.detail))
    if isinstance(exc, ExportRefused):
        return str(exc)
    return f"The export failed ({type(exc).__name__}); nothing was written. Start it again, or ask support."


def run_export(job_id: int) -> None:
    """The RQ job: writes the export into a temporary file, then into storage; rows_done moves
    every batch (one UPDATE per 2,000 contacts, per 50,000 on PostgreSQL's COPY path). Ends succeeded (with expires_at) or failed with
    the reason in `error`; a job already started or finished is left alone."""
    job = ExportJob.objects.select_related("organization", "created_by").get(pk=job_id)
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
        qs = export_queryset(job)
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
    Returns the ids purged. One query, then one storage delete and one UPDATE per export; plus
    one UPDATE failing the exports still running after JOB_TIMEOUT, whose worker RQ killed or
    lost (an export is not resumed: start it again)."""
    now = timezone.now()
    ExportJob.objects.filter(status=ExportJob.Status.RUNNING,
                             started_at__lt=now - timedelta(seconds=settings.JOB_TIMEOUT)).update(
        status=ExportJob.Status.FAILED, finished_at=now,
        error="The export's worker stopped before it finished; start the export again.")
    purged = []
    expired = ExportJob.objects.filter(status=ExportJob.Status.SUCCEEDED, expires_at__lte=now)
    for job in expired.only("pk", "file"):
        if job.file:
            job.file.delete(save=False)
        ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.EXPIRED, file="")
        purged.append(job.pk)
    return purged
