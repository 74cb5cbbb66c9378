"""A worker killed in the middle of an import: the retry resumes and ends in exactly the state
of an uninterrupted import (no duplicate contacts, events or error lines)."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from contextlib import nullcontext

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from contacts.models import Contact, ContactEvent
from contacts_crm.jobs import enqueue
from imports.models import ImportJob, ImportRowError
from imports.pipeline import run_import, start_import

from ..factories import make_org
from ..test_jobs import ROOT, worker_env
from .helpers import csv_bytes, kill_process_tree, run_import_bytes, wait_until_unlocked

pytestmark = pytest.mark.django_db(transaction=True)


def big_file(rows=6000) -> bytes:
    rng = random.Random(7)
    lines = ["phone,email,first_name,tags,city"]
    for i in range(rows):
        n = rng.randrange(rows * 9 // 10)  # ~10% of rows repeat an earlier phone
        email = f"p{n}@example.com" if n % 3 else ""
        phone = f"919555{n:04d}" if n % 50 else "not-a-phone"
        lines.append(f"{phone},{email},Name{i},t{n % 5},City{i % 7}")
    return csv_bytes("\n".join(lines))


def snapshot(org):
    contacts = sorted(
        (c.phone or "", c.email or "", c.first_name, c.city, tuple(sorted(t.name for t in c.tags.all())))
        for c in Contact.objects.for_org(org).prefetch_related("tags")
    )
    events = ContactEvent.objects.filter(organization=org, kind="imported").count()
    return contacts, events


def test_a_killed_import_resumes_to_the_uninterrupted_result(acme):
    other = make_org(slug="initech")  # same region as Acme: the same file gives the same contacts
    data = big_file()
    reference = run_import_bytes(other, data)
    assert reference.status == "succeeded"

    job = start_import(org=acme, uploaded=SimpleUploadedFile("big.csv", data), file_name="big.csv", launch=False)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.QUEUED)
    env = {**worker_env(), "IMPORT_CHUNK_GROUPS": "25"}
    if settings.REDIS_URL:
        enqueue(run_import, job.pk)
        command = [sys.executable, "manage.py", "rqworker", "--burst", "default"]
    else:
        command = [sys.executable, "manage.py", "shell", "-c",
                   f"from imports.pipeline import run_import; run_import({job.pk})"]
    # Its own session, so that the kill takes the worker and the work horse it forks, as when a
    # machine dies.
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        job.refresh_from_db()
        if job.groups_done >= 2:
            break
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the import never started writing"
        time.sleep(0.005)
    kill_process_tree(process)
    job.refresh_from_db()
    assert job.status == "running" and 0 < job.groups_done < job.groups_total, "killed too late to test a resume"

    # Nobody requeues it by hand: a worker starting (make worker's CrmWorker) finds the import
    # without a heartbeat and requeues it, and it resumes by itself. (First wait until PostgreSQL
    # has noticed the dead worker and released its row lock: a locked job is a live one.)
    wait_until_unlocked(job)
    time.sleep(1.2)
    if settings.REDIS_URL:
        command = [sys.executable, "manage.py", "rqworker", "--burst", "default",
                   "--worker-class", "contacts_crm.jobs.CrmWorker"]
        restarted = subprocess.run(command, cwd=ROOT, env={**env, "IMPORT_STALE_SECONDS": "1"}, capture_output=True,
                                   timeout=300)
        assert restarted.returncode == 0, restarted.stderr.decode()[-2000:]
    else:
        from imports.pipeline import requeue_stale_imports

        assert requeue_stale_imports(stale_seconds=1) == [job.pk]  # runs it in-process (JOBS_SYNC)
    job.refresh_from_db()
    assert job.status == "succeeded", (job.error, job.runner, job.heartbeat_at, job.attempts, job.groups_done)
    assert job.attempts == 2
    for name in ("total", *ImportJob.COUNTERS, "warnings"):
        assert getattr(job, name) == getattr(reference, name), name
    assert snapshot(acme) == snapshot(other)
    assert ImportRowError.objects.filter(job=job).count() == ImportRowError.objects.filter(job=reference).count()


def _crash_on_chunk(monkeypatch, number, exc):
    """Makes the `number`-th chunk write raise `exc` (once): a failure from inside the chunk's
    transaction, as a lost connection or a crash would be."""
    from imports import pipeline

    real_run = pipeline.ChunkWriter.run
    calls = {"n": 0}

    def run(self):
        calls["n"] += 1
        if calls["n"] == number:
            raise exc
        return real_run(self)

    monkeypatch.setattr(pipeline.ChunkWriter, "run", run)
    return calls


def _failed_import(org, monkeypatch, settings, *, rows: int, crash_on_chunk: int):
    """(an uninterrupted import of big_file(rows) into another organization, the same import
    into `org` failed on its `crash_on_chunk`-th chunk of 50 groups)."""
    from imports import pipeline

    data = big_file(rows)
    monkeypatch.setattr(pipeline, "CHUNK_GROUPS", 50)
    reference = run_import_bytes(make_org(slug="initech"), data)
    _crash_on_chunk(monkeypatch, crash_on_chunk, RuntimeError("worker lost"))
    # In-process the crash reaches the caller; an RQ worker catches it and fails the RQ job.
    with pytest.raises(RuntimeError) if not settings.REDIS_URL else nullcontext():
        run_import_bytes(org, data)
    return reference, ImportJob.objects.get(organization=org)


def test_a_failed_import_resumes_from_its_last_committed_chunk_to_the_uninterrupted_result(
        acme, monkeypatch, settings, api):
    reference, job = _failed_import(acme, monkeypatch, settings, rows=600, crash_on_chunk=4)
    assert job.status == "failed" and job.phase == "writing"
    # Three chunks were committed (the partitions' chunks add up to the job's progress).
    assert sum(p.chunks for p in job.partitions.all()) == 3
    assert job.groups_done == sum(p.groups_done for p in job.partitions.all()) > 0
    response = api.post(f"/api/v1/imports/{job.pk}/resume")
    assert response.status_code == 202, response.content
    job.refresh_from_db()
    if job.status != "succeeded":  # with Redis the job waits in the queue
        from .helpers import drain_queue

        drain_queue()
        job.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 2
    assert snapshot(acme) == snapshot(reference.organization)
    assert [getattr(job, n) for n in ImportJob.COUNTERS] == [getattr(reference, n) for n in ImportJob.COUNTERS]
    assert api.post(f"/api/v1/imports/{job.pk}/resume").status_code == 409  # finished: nothing to resume


def test_a_transient_database_error_is_retried_and_the_import_ends_as_if_nothing_happened(acme, monkeypatch):
    from django.db import OperationalError

    from imports import pipeline

    other = make_org(slug="initech")
    data = big_file(300)
    monkeypatch.setattr(pipeline, "CHUNK_GROUPS", 50)
    monkeypatch.setattr(pipeline, "RETRY_BACKOFF", 0.01)
    reference = run_import_bytes(other, data)
    calls = _crash_on_chunk(monkeypatch, 2, OperationalError("deadlock detected"))
    job = run_import_bytes(acme, data)
    assert job.status == "succeeded" and calls["n"] > 2
    assert snapshot(acme) == snapshot(other)
    assert [getattr(job, n) for n in ImportJob.COUNTERS] == [getattr(reference, n) for n in ImportJob.COUNTERS]


def test_a_refused_file_cannot_be_resumed(acme, api):
    job = ImportJob.objects.create(organization=acme, file_name="x.csv", format="csv", status="failed",
                                   phase="done", error="The file has no rows.")
    response = api.post(f"/api/v1/imports/{job.pk}/resume")
    assert response.status_code == 409 and "refused" in response.json()["error"]["message"]


def test_a_stalled_import_shows_as_stalled_and_a_live_one_is_left_alone(acme, api, settings):
    from datetime import timedelta

    from django.utils import timezone

    from imports.pipeline import requeue_stale_imports

    old = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS + 5)
    stalled = ImportJob.objects.create(organization=acme, file_name="a.csv", format="csv", status="running",
                                       phase="writing", started_at=old, heartbeat_at=old)
    live = ImportJob.objects.create(organization=acme, file_name="b.csv", format="csv", status="running",
                                    phase="writing", started_at=old, heartbeat_at=timezone.now())
    assert api.get(f"/api/v1/imports/{stalled.pk}").json()["stalled"] is True
    assert api.get(f"/api/v1/imports/{live.pk}").json()["stalled"] is False
    assert requeue_stale_imports() == [stalled.pk]
    if settings.REDIS_URL:
        from .helpers import drain_queue

        drain_queue()
    stalled.refresh_from_db()
    live.refresh_from_db()
    # The requeued job ran again (it had nothing left to write) under a new runner token.
    assert (stalled.status, stalled.attempts, live.status) == ("succeeded", 1, "running")
    assert stalled.runner not in ("", live.runner)


def test_a_runner_whose_job_was_requeued_stops_at_its_next_heartbeat(acme):
    from imports.pipeline import RunnerReplaced, heartbeat

    job = ImportJob.objects.create(organization=acme, file_name="a.csv", format="csv", status="running",
                                   runner="first")
    ImportJob.objects.filter(pk=job.pk).update(runner="second")  # requeued and picked up again
    with pytest.raises(RunnerReplaced):
        heartbeat(job)


def test_staff_resume_a_failed_import_from_the_admin_to_the_uninterrupted_result(acme, alice, client, monkeypatch,
                                                                                   settings):
    from django.test import TestCase
    from django.urls import reverse

    from .helpers import drain_queue

    reference, job = _failed_import(acme, monkeypatch, settings, rows=300, crash_on_chunk=2)
    assert job.status == "failed" and sum(p.chunks for p in job.partitions.all()) == 1 and job.groups_done > 0
    client.force_login(alice)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(reverse("admin:imports_importjob_changelist"),
                               {"action": "resume_imports", "_selected_action": [job.pk]}, follow=True)
    assert "queued to resume" in response.content.decode()
    drain_queue()
    job.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 2
    assert snapshot(acme) == snapshot(reference.organization)
    assert [getattr(job, n) for n in ImportJob.COUNTERS] == [getattr(reference, n) for n in ImportJob.COUNTERS]


def test_the_admin_shows_a_stalled_import_as_stalled_resuming(acme, alice, client, settings):
    from datetime import timedelta

    from django.urls import reverse
    from django.utils import timezone

    old = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS + 5)
    stalled = ImportJob.objects.create(organization=acme, file_name="a.csv", format="csv", status="running",
                                       phase="writing", started_at=old, heartbeat_at=old)
    live = ImportJob.objects.create(organization=acme, file_name="b.csv", format="csv", status="running",
                                    phase="writing", started_at=old, heartbeat_at=timezone.now())
    client.force_login(alice)
    listing = client.get(reverse("admin:imports_importjob_changelist")).content.decode()
    assert listing.count("Stalled, resuming") == 1 and "status-running" in listing
    status = client.get(reverse("admin:imports_importjob_status", args=[stalled.pk])).json()
    assert (status["status_key"], status["status_label"]) == ("stalled", "Stalled, resuming")
    assert client.get(reverse("admin:imports_importjob_status", args=[live.pk])).json()["status_key"] == "running"


@pytest.mark.redis
@pytest.mark.skipif(not settings.REDIS_URL, reason="RQ's scheduler lock: CI's PostgreSQL + Redis pass")
def test_a_worker_started_while_the_dead_workers_scheduler_lock_is_held_still_resumes_the_import(acme):
    """A worker restarted right after a crash: the dead worker's scheduler lock is still held
    (RQ keeps it 61 s, shortened here) and the import still had a fresh heartbeat when the new
    worker started. The new worker must take the scheduler over once the lock expires and let
    the periodic check requeue the import; under RQ's defaults it would wait 10 minutes."""
    from django.utils import timezone
    from rq import Worker
    from rq.scheduler import SCHEDULER_LOCKING_KEY_TEMPLATE

    from contacts_crm.jobs import redis_connection

    job = start_import(org=acme, uploaded=SimpleUploadedFile("a.csv", big_file(200)), file_name="a.csv",
                       launch=False)
    ImportJob.objects.filter(pk=job.pk).update(status="running", runner="dead", started_at=timezone.now(),
                                               heartbeat_at=timezone.now(), attempts=1)
    redis = redis_connection()
    redis.set(SCHEDULER_LOCKING_KEY_TEMPLATE % "default", "a-dead-worker", ex=3)
    command = [sys.executable, "manage.py", "rqworker", "default", "--with-scheduler",
               "--worker-class", "contacts_crm.jobs.CrmWorker"]
    process = subprocess.Popen(command, cwd=ROOT, env={**worker_env(), "IMPORT_STALE_SECONDS": "4"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        # The dead worker's last heartbeat is fresh until the new worker is up (its start check
        # has then run and found nothing stale); from then on it ages.
        deadline = time.monotonic() + 60
        while not Worker.all(connection=redis):
            ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.2)
        job.refresh_from_db()
        assert job.status == "running" and job.attempts == 1  # not requeued at the worker's start
        deadline = time.monotonic() + 120
        while job.status != "succeeded":
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the import was never requeued"
            time.sleep(0.5)
            job.refresh_from_db()
    finally:
        kill_process_tree(process)
    assert job.attempts == 2 and job.created > 0


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a lock another session holds: PostgreSQL")
def test_on_postgres_a_real_statement_timeout_behind_a_lock_is_retried_and_the_import_ends_as_if_nothing_happened(
        acme, monkeypatch, caplog):
    """Not a simulated error: another session holds a row lock on a contact the import updates,
    the import's statement times out behind it (QueryCanceled, 57014), the chunk is retried after
    a pause and, once the lock is gone, the import ends like an uninterrupted one."""
    import threading

    import psycopg

    from imports import pipeline

    from ..factories import make_contact

    other = make_org(slug="initech")
    data = big_file(300)
    phone = "+1" + next(line.split(",")[0] for line in data.decode().splitlines()[1:] if line[:3] == "919")
    for org in (other, acme):
        make_contact(org, phone=phone, first_name="Locked")
    monkeypatch.setattr(pipeline, "CHUNK_GROUPS", 50)
    monkeypatch.setattr(pipeline, "RETRY_BACKOFF", 0.3)
    reference = run_import_bytes(other, data)
    params = connection.settings_dict
    holder = psycopg.connect(dbname=params["NAME"], user=params["USER"], password=params["PASSWORD"] or None,
                             host=params["HOST"] or None, port=params["PORT"] or None)
    holder.execute("SELECT id FROM contacts_contact WHERE organization_id = %s AND phone = %s FOR UPDATE",
                   [acme.pk, phone])
    release = threading.Timer(1.5, holder.rollback)
    with connection.cursor() as cursor:  # the import's JOB_STATEMENT_TIMEOUT, made short
        cursor.execute("SET statement_timeout = '300ms'")
    release.start()
    try:
        job = run_import_bytes(acme, data)
    finally:
        release.join()
        holder.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
    assert job.status == "succeeded", job.error
    assert any("retried" in r.getMessage() and "statement timeout" in r.getMessage() for r in caplog.records)
    assert snapshot(acme) == snapshot(other)
    assert [getattr(job, n) for n in ImportJob.COUNTERS] == [getattr(reference, n) for n in ImportJob.COUNTERS]
