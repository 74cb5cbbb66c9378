"""Under an RQ worker on PostgreSQL the file is read in a second process that feeds the
staging writes: the same rows, errors and counters as reading in the worker itself."""

from __future__ import annotations

import pytest
from django.conf import settings

from contacts.models import Contact
from imports import pipeline
from imports.models import ImportJob, ImportRowError

from ..factories import make_org
from .helpers import csv_bytes, run_import_bytes
from .test_resume import big_file, snapshot

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_URL or "postgres" not in settings.DATABASES["default"]["ENGINE"],
                       reason="the reading process runs under RQ on PostgreSQL: CI's PostgreSQL + Redis pass"),
]


@pytest.fixture
def spy(monkeypatch):
    calls = []
    real = pipeline._produced

    def produced(batches):
        calls.append(1)
        return real(batches)

    monkeypatch.setattr(pipeline, "_produced", produced)
    return calls


def errors_of(job):
    return sorted(ImportRowError.objects.filter(job=job).values_list("line", "severity", "code", "message", "cells"))


def test_reading_in_a_second_process_stages_what_reading_in_the_worker_does(acme, spy, monkeypatch):
    data = big_file(5000) + b"\n,,,,\nnot-a-phone,,x,,\nGrand Totals (4000 records)\n"
    monkeypatch.setattr(settings, "IMPORT_READ_PROCESS", False)
    reference = run_import_bytes(make_org(slug="initech"), data)
    assert spy == []
    monkeypatch.setattr(settings, "IMPORT_READ_PROCESS", True)
    job = run_import_bytes(acme, data)
    assert spy == [1]  # the rows came through the reading process
    assert job.status == reference.status == "succeeded"
    counters = ("rows_read", "bytes_read", "total", "warnings", *ImportJob.COUNTERS)
    assert [getattr(job, n) for n in counters] == [getattr(reference, n) for n in counters]
    assert job.failed > 0 and job.skipped > 0
    assert snapshot(acme) == snapshot(reference.organization)
    assert errors_of(job) == errors_of(reference)


def test_a_file_refused_while_the_second_process_reads_fails_the_job_with_the_reason(acme, spy, monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_ROWS", 30)
    rows = "\n".join(f"91955501{n:02d},Name{n}" for n in range(40))
    job = run_import_bytes(acme, csv_bytes("phone,first_name\n" + rows))
    assert spy == [1]
    assert job.status == "failed" and "more than 30 rows" in job.error
    assert not Contact.objects.for_org(acme).exists()  # a refused file writes nothing
