"""An import's writing phase is split into partitions that several workers write at once: the
file ends in exactly the state one worker gives, also when a worker dies mid-way."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts.models import ContactEvent
from contacts_crm.jobs import enqueue
from imports.models import ImportChange, ImportJob, ImportPartition, ImportRowError
from imports.pipeline import run_import, start_import

from ..factories import make_org
from ..test_jobs import ROOT, worker_env
from .helpers import kill_process_tree, run_import_bytes
from .test_resume import big_file, snapshot

pytestmark = pytest.mark.django_db(transaction=True)

needs_workers = pytest.mark.skipif(not settings.REDIS_URL, reason="real RQ workers: CI's PostgreSQL + Redis pass")


def outcome(job: ImportJob) -> tuple:
    """Everything an import leaves behind that does not depend on timing or ids."""
    org = job.organization
    errors = sorted(ImportRowError.objects.filter(job=job).values_list("line", "severity", "code", "message"))
    changes = sorted(ImportChange.objects.filter(job=job).values_list("outcome", flat=True))
    events = sorted(ContactEvent.objects.filter(organization=org).values_list("kind", flat=True))
    counters = [getattr(job, name) for name in ("total", "processed", "groups_done", "groups_total", "warnings",
                                                *ImportJob.COUNTERS)]
    return snapshot(org), errors, changes, events, counters


def test_one_runner_writes_every_partition_to_the_one_partition_result(acme, monkeypatch, api):
    monkeypatch.setattr("imports.pipeline.CHUNK_GROUPS", 25)
    data = big_file(1500)
    monkeypatch.setattr(settings, "IMPORT_PARTITIONS", 1)
    reference = run_import_bytes(make_org(slug="initech"), data)
    monkeypatch.setattr(settings, "IMPORT_PARTITIONS", 4)
    job = run_import_bytes(acme, data)
    assert job.status == reference.status == "succeeded"
    parts = list(ImportPartition.objects.filter(job=job))
    assert [p.number for p in parts] == [0, 1, 2, 3] and all(p.done for p in parts)
    assert sum(p.groups_total for p in parts) == sum(p.groups_done for p in parts) == job.groups_total > 800
    # The ranges tile the groups: each starts after the previous one ends.
    assert all(a.last_seq < b.first_seq for a, b in zip(parts, parts[1:], strict=False))
    assert ImportPartition.objects.filter(job=reference).count() == 1
    assert outcome(job) == outcome(reference)
    progress = api.get(f"/api/v1/imports/{job.pk}").json()["progress"]
    assert [(p["number"], p["done"], p["workers"]) for p in progress["partitions"]] == [(n, True, 1) for n in range(4)]
    assert sum(p["groups_done"] for p in progress["partitions"]) == progress["groups_done"] == job.groups_total


def test_a_dry_run_keeps_one_partition_so_that_its_report_is_in_file_order(acme, monkeypatch):
    monkeypatch.setattr("imports.pipeline.CHUNK_GROUPS", 25)
    job = run_import_bytes(acme, big_file(300), dry_run=True)
    assert job.status == "succeeded" and ImportPartition.objects.filter(job=job).count() == 1
    lines = [row["line"] for row in job.result["rows"]]
    assert lines == sorted(lines) and len(lines) > 100


def test_a_small_file_is_one_partition(acme):
    job = run_import_bytes(acme, big_file(50))
    assert ImportPartition.objects.filter(job=job).count() == 1


def _start_workers(count: int, env: dict) -> list[subprocess.Popen]:
    command = [sys.executable, "manage.py", "rqworker", "default", "--with-scheduler",
               "--worker-class", "contacts_crm.jobs.CrmWorker"]
    # Each in its own session, so that a kill takes the worker and the work horse it forks.
    return [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True) for _ in range(count)]


def _queued_import(org, data: bytes) -> ImportJob:
    job = start_import(org=org, uploaded=SimpleUploadedFile("big.csv", data), file_name="big.csv", launch=False)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.QUEUED)
    return job


def _wait(job: ImportJob, until, workers, message: str, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while True:
        job.refresh_from_db()
        if until(job):
            return
        for process in workers:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, message
        time.sleep(0.01)


@needs_workers
def test_two_workers_share_an_import_and_end_in_the_one_worker_state(acme):
    data = big_file(6000)
    reference = run_import_bytes(make_org(slug="initech"), data)
    job = _queued_import(acme, data)
    env = {**worker_env(), "IMPORT_CHUNK_GROUPS": "25"}
    workers = _start_workers(2, env)
    try:
        time.sleep(0.5)
        enqueue(run_import, job.pk)
        _wait(job, lambda j: j.status == "succeeded", workers, "the import did not finish")
    finally:
        for process in workers:
            kill_process_tree(process)
    names = {name for p in ImportPartition.objects.filter(job=job) for name in p.runners}
    assert len(names) == 2, names  # both workers wrote partitions
    assert outcome(job) == outcome(reference)


@needs_workers
def test_a_worker_killed_while_sharing_an_import_leaves_the_rest_to_the_other(acme):
    data = big_file(6000)
    reference = run_import_bytes(make_org(slug="initech"), data)
    job = _queued_import(acme, data)
    # Two seconds without a heartbeat make a partition a dead worker's, free to take over.
    env = {**worker_env(), "IMPORT_CHUNK_GROUPS": "25", "IMPORT_STALE_SECONDS": "2"}
    workers = _start_workers(2, env)
    try:
        time.sleep(0.5)
        enqueue(run_import, job.pk)

        def both_writing(j):
            parts = ImportPartition.objects.filter(job=j, done=False).exclude(runner="").exclude(chunks=0)
            return parts.count() >= 2

        _wait(job, both_writing, workers, "the two workers never wrote at the same time")
        victim, survivor = workers
        kill_process_tree(victim)
        assert ImportJob.objects.get(pk=job.pk).status == "running"
        _wait(job, lambda j: j.status == "succeeded", [survivor], "the survivor did not finish the import")
    finally:
        for process in workers:
            kill_process_tree(process)
    assert outcome(job) == outcome(reference)
