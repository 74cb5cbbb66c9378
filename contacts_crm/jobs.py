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
from rq import Worker

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


# --- the worker --------------------------------------------------------------------------------
# `make worker` runs `manage.py rqworker default --with-scheduler --worker-class
# contacts_crm.jobs.CrmWorker`: a plain RQ worker that, when it starts, runs the periodic checks
# once and schedules them (RQ's scheduler, which --with-scheduler runs in the worker, moves them
# to the queue when due; each check schedules its next run). A fixed job id per check keeps
# several workers from stacking copies of it.
def stale_check_seconds() -> int:
    """Seconds between two stale-import checks: half IMPORT_STALE_SECONDS, at least 10."""
    return max(10, settings.IMPORT_STALE_SECONDS // 2)


def periodic_checks() -> list[tuple[str, int]]:
    """(dotted path of a function taking no arguments, seconds between runs)."""
    return [("imports.pipeline.requeue_stale_imports", stale_check_seconds()),
            # Expired export links: their files deleted within the hour (docs/exports.md).
            ("contacts.export_jobs.purge_expired_exports", 3600)]


def run_periodic(path: str, every: int) -> None:
    """The scheduled job: runs the check, then schedules its next run."""
    from django.utils.module_loading import import_string

    try:
        import_string(path)()
    finally:
        schedule_periodic(path, every)


def schedule_periodic(path: str, every: int) -> None:
    """Schedules the next run of a periodic check, replacing any already scheduled: restarting
    workers never piles up chains. Each run has its own job id (a running job re-using its id
    would overwrite its successor's hash when it finishes)."""
    import time
    from datetime import timedelta

    from rq.registry import ScheduledJobRegistry

    queue = get_queue()
    prefix = f"periodic-{path.replace('.', '_')}"
    registry = ScheduledJobRegistry(queue=queue)
    for job_id in registry.get_job_ids():
        if job_id.startswith(prefix):
            registry.remove(job_id, delete_job=True)
    queue.enqueue_in(timedelta(seconds=every), run_periodic, path, every, job_id=f"{prefix}-{time.time_ns()}",
                     job_timeout=600)


class CrmWorker(Worker):
    """A worker started after a crash finds the dead worker's scheduler lock still held (RQ keeps
    it 61 s) and runs no scheduler; RQ tries the lock again only at its maintenance, every 10
    minutes and only between two dequeues that block 405 s each. Until then the stale-import
    check never comes round and the dead worker's import waits (the load test measured 13.5
    minutes from the kill to the requeue). This worker tries again every stale_check_seconds():
    63 s in the same test, with IMPORT_STALE_SECONDS=30 (bench/README.md, "Load test")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.maintenance_interval = min(self.maintenance_interval, stale_check_seconds())

    @property
    def dequeue_timeout(self) -> int:
        # An idle worker wakes this often for its maintenance (and heartbeats more often).
        return min(super().dequeue_timeout, stale_check_seconds())

    def work(self, *args, **kwargs):
        from django.utils.module_loading import import_string

        from contacts.trash import purge_trash_schedule

        for path, every in periodic_checks():
            try:
                import_string(path)()
                schedule_periodic(path, every)
            except Exception:  # a failed check must not keep the worker from serving jobs
                logger.exception("Periodic check %s failed at worker start", path)
        try:
            purge_trash_schedule()  # the trash purge, hourly (contacts.trash)
        except Exception:
            logger.exception("Scheduling the trash purge failed at worker start")
        return super().work(*args, **kwargs)
