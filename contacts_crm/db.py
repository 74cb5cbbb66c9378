"""A database statement timeout per web request (issue 13 item 14).

PostgreSQL: `SET statement_timeout` at the start of each request (one round trip, ~0.1 ms), so a
slow query is cancelled by the server (QueryCanceled) and the API answers 503 with the envelope
instead of holding a gunicorn worker. API requests get API_STATEMENT_TIMEOUT (default 10 s); the
export endpoint and the admin get EXPORT_STATEMENT_TIMEOUT (default 300 s). Background jobs and
commands (imports, exports to a file) run on connections opened with JOB_STATEMENT_TIMEOUT
(default 1800 s) through the connection's startup options (settings.py); `migrate` runs with
none (contacts_crm/management/commands/migrate.py).
The bound is lifted (RESET) when the response is closed, after a streamed export's last row.

SQLite has no statement timeout: the same limit is kept with a progress handler that interrupts
a statement once the request's deadline has passed ("interrupted", also answered 503), removed
when the response is closed.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connections

logger = logging.getLogger(__name__)
SQLITE_PROGRESS_STEPS = 50_000  # VM instructions between deadline checks (~1 ms of work)


def request_statement_timeout(path: str) -> float:
    """Seconds a request's statements may run (0: no limit)."""
    if path.startswith("/api/") and not path.startswith("/api/v1/contacts/export"):
        return settings.API_STATEMENT_TIMEOUT
    return settings.EXPORT_STATEMENT_TIMEOUT


def start_statement_timeout(seconds: float, using: str = "default"):
    """Bounds the statements run from now on to `seconds` (0: no limit); returns the function that
    lifts the bound (PostgreSQL: back to the connection's default, JOB_STATEMENT_TIMEOUT)."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        # On the raw psycopg connection: a fixed cost of every request, kept out of Django's
        # query log so the query-count tests keep counting what a view does.
        connection.ensure_connection()
        raw = connection.connection
        with connection.wrap_database_errors:
            raw.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int(seconds * 1000)}ms"])

        def undo():
            if connection.connection is raw and not raw.closed:
                with connection.wrap_database_errors:
                    raw.execute("RESET statement_timeout")
        return undo
    if connection.vendor == "sqlite" and seconds:
        connection.ensure_connection()
        raw = connection.connection
        deadline = time.monotonic() + seconds
        raw.set_progress_handler(lambda: time.monotonic() > deadline, SQLITE_PROGRESS_STEPS)

        def undo():
            if connection.connection is raw:
                raw.set_progress_handler(None, SQLITE_PROGRESS_STEPS)
        return undo
    return lambda: None


@contextmanager
def statement_timeout(seconds: float, using: str = "default"):
    """Statements run inside the block are cancelled after `seconds` (0: no limit)."""
    undo = start_statement_timeout(seconds, using)
    try:
        yield
    finally:
        _quietly(undo)  # in a failed transaction the RESET fails, and the rollback reverts the SET


def is_statement_timeout(exc: BaseException) -> bool:
    """Whether `exc` is a statement cancelled by statement_timeout (PostgreSQL's QueryCanceled,
    SQLite's "interrupted")."""
    if not isinstance(exc, DatabaseError):
        return False
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == "57014":  # query_canceled
        return True
    return "interrupted" in str(exc)


class StatementTimeoutMiddleware:
    """Bounds a request's statements until its response is closed: after the last byte of a
    streamed export, not when the view returns."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        undo = start_statement_timeout(request_statement_timeout(request.path))
        try:
            response = self.get_response(request)
        except BaseException:
            _quietly(undo)
            raise
        response._resource_closers.append(lambda: _quietly(undo))
        return response


def _quietly(undo):
    try:
        undo()
    except DatabaseError:  # a broken connection: Django discards it at request_finished
        logger.warning("Could not reset the statement timeout", exc_info=True)
