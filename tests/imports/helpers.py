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


def kill_tree(process) -> None:
    """SIGKILLs a worker started with start_new_session and every process under it, as when a
    machine dies. (RQ 3's work horse leaves the worker's process group, so a killpg misses it.)"""
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
