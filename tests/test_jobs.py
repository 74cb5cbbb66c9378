"""The enqueue wrapper: in-process without Redis, a real RQ worker with it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from contacts_crm.jobs import enqueue, get_queue, queue_backend
from contacts_crm.models import Organization

from .jobs_for_tests import create_org_job

ROOT = Path(__file__).resolve().parents[1]
needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="runs in CI's PostgreSQL + Redis pass")
needs_no_redis = pytest.mark.skipif(bool(settings.REDIS_URL), reason="runs in CI's SQLite pass (no Redis)")


@needs_no_redis
@pytest.mark.django_db
def test_without_redis_a_job_runs_in_process_synchronously_in_tests():
    assert queue_backend() == "inline"
    assert enqueue(create_org_job, "inline-job") is None
    assert Organization.objects.filter(slug="inline-job").exists()


@needs_no_redis
@pytest.mark.django_db(transaction=True)
def test_without_redis_under_make_run_a_job_runs_in_a_background_thread(settings):
    settings.JOBS_SYNC = False
    enqueue(create_org_job, "thread-job")
    deadline = time.monotonic() + 20
    while not Organization.objects.filter(slug="thread-job").exists():
        assert time.monotonic() < deadline, "the background job never ran"
        time.sleep(0.05)


def worker_env() -> dict:
    """The environment of a worker process that uses this test's database."""
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items()}
    env["DJANGO_SETTINGS_MODULE"] = "contacts_crm.test_settings"
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
            f"{db['NAME']}"
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    return env


def run_burst_worker(timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "rqworker", "--burst", "default"],
        cwd=ROOT, env=worker_env(), capture_output=True, text=True, timeout=timeout,
    )


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_with_redis_a_real_rq_worker_runs_the_job():
    get_queue().empty()
    job = enqueue(create_org_job, "worker-job")
    assert job is not None
    assert job.timeout == settings.JOB_TIMEOUT  # not RQ's 180 s default, which kills big imports
    assert not Organization.objects.filter(slug="worker-job").exists()  # nothing ran yet
    result = run_burst_worker()
    assert result.returncode == 0, result.stdout + result.stderr
    assert Organization.objects.filter(slug="worker-job").exists()
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value() == "worker-job"
