"""The one way to run a background job.

With REDIS_URL: an RQ job on the `default` queue (run `make worker`). Without: in this process —
synchronously when JOBS_SYNC is set (tests), else in a daemon thread so that the web request
returns at once and the admin's progress bar moves (design §1). RQ's own `is_async=False` mode is
not used: it still needs a Redis connection.

Callers inside a transaction should call `enqueue` from `transaction.on_commit`, so the job never
starts before the rows it loads are visible.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


def queue_backend() -> str:
    """'redis' or 'inline'."""
    return "redis" if settings.REDIS_URL else "inline"


def redis_connection():
    from redis import Redis

    return Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=10)


def get_queue(name: str = "default"):
    """The RQ queue (only with REDIS_URL). `manage.py rqworker default` serves it."""
    from rq import Queue

    return Queue(name, connection=redis_connection())


def _run_inline(func, args, kwargs):
    try:
        func(*args, **kwargs)
    except Exception:  # the job records its own failure; the thread must not die silently
        logger.exception("Background job %s failed", getattr(func, "__name__", func))
    finally:
        connections.close_all()


def enqueue(func, *args, job_timeout: int | None = None, **kwargs):
    """Run `func(*args, **kwargs)` as a job. Returns the RQ job, or None when run in-process."""
    if queue_backend() == "redis":
        # RQ's own default is 180 s, which would kill any large import mid-way.
        return get_queue().enqueue(func, *args, job_timeout=job_timeout or settings.JOB_TIMEOUT, **kwargs)
    if settings.JOBS_SYNC:
        func(*args, **kwargs)
        return None

    def target():
        close_old_connections()
        _run_inline(func, args, kwargs)

    threading.Thread(target=target, name=f"job-{getattr(func, '__name__', 'job')}", daemon=True).start()
    return None
