from __future__ import annotations

import io

from django.core.files.uploadedfile import SimpleUploadedFile

from imports.pipeline import start_import


def csv_bytes(text: str, encoding="utf-8") -> bytes:
    return text.replace("\n", "\r\n").encode(encoding)


def run_import_bytes(org, data: bytes, name="contacts.csv", **options):
    """Runs an import synchronously (tests run jobs inline) and returns the finished job."""
    from django.test import TestCase

    # The job is enqueued on commit; the test's transaction never commits, so run the callbacks.
    with TestCase.captureOnCommitCallbacks(execute=True):
        job = start_import(org=org, uploaded=SimpleUploadedFile(name, data), file_name=name, **options)
    drain_queue()
    job.refresh_from_db()
    return job


def counters(job) -> dict:
    return {name: getattr(job, name) for name in ("total", "created", "updated", "unchanged", "merged", "skipped",
                                                   "failed")}


def xlsx_bytes(rows) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def drain_queue():
    """With Redis, run the queued jobs with a real RQ worker (burst mode, in this process so it
    shares the test's transaction). Without Redis the job already ran in-process."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return
    from rq import SimpleWorker

    from contacts_crm.jobs import get_queue

    queue = get_queue()
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def kill_process_tree(process) -> None:
    """SIGKILLs a process and all its descendants, as when a machine dies. By pid: RQ 3's work
    horse leaves the worker's process group, so a killpg would miss it."""
    import os
    import signal

    import psutil

    try:
        tree = [process.pid, *(c.pid for c in psutil.Process(process.pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        tree = [process.pid]
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def wait_until_unlocked(job, seconds: float = 30) -> None:
    """Waits until the database has noticed a killed worker and released its lock on the job's
    row (a locked job is a live one: requeue_stale_imports skips it)."""
    import time

    from django.db import DatabaseError, transaction

    from imports.models import ImportJob

    deadline = time.monotonic() + seconds
    while True:
        try:
            with transaction.atomic():
                ImportJob.objects.select_for_update(nowait=True).get(pk=job.pk)
            return
        except DatabaseError:
            assert time.monotonic() < deadline, "the killed worker's lock was never released"
            time.sleep(0.1)
