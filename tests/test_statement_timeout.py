"""Issue 13 item 14: a slow query answers 503 with the envelope instead of holding a worker."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection, transaction

from contacts_crm.db import is_statement_timeout, request_statement_timeout, statement_timeout

SLOW_SQLITE = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 300000000) "
               "SELECT count(*) FROM c")


def test_api_requests_exports_and_the_admin_get_their_own_timeouts(settings):
    settings.API_STATEMENT_TIMEOUT, settings.EXPORT_STATEMENT_TIMEOUT = 10, 300
    assert request_statement_timeout("/api/v1/contacts") == 10
    assert request_statement_timeout("/api/v1/contacts/export") == 300
    assert request_statement_timeout("/admin/contacts/contact/") == 300


@pytest.mark.django_db
def test_a_statement_running_past_the_timeout_is_cancelled():
    slow = "SELECT pg_sleep(5)" if connection.vendor == "postgresql" else SLOW_SQLITE
    with pytest.raises(OperationalError) as caught, statement_timeout(0.2), transaction.atomic():
        connection.cursor().execute(slow)
    assert is_statement_timeout(caught.value)


@pytest.mark.django_db
def test_a_statement_within_the_timeout_runs():
    with statement_timeout(5), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a lock another session holds: PostgreSQL")
def test_on_postgres_an_api_request_behind_a_lock_answers_503_with_the_envelope(api, acme, settings,
                                                                                transactional_db):
    import psycopg

    settings.API_STATEMENT_TIMEOUT = 0.3
    params = connection.settings_dict
    other = psycopg.connect(dbname=params["NAME"], user=params["USER"], password=params["PASSWORD"] or None,
                            host=params["HOST"] or None, port=params["PORT"] or None)
    try:
        # Without the fix the request would wait for the lock forever: PostgreSQL ends the locking
        # session after 5 s idle, the request then answers 200 and the test fails instead of hanging.
        other.execute("SET idle_in_transaction_session_timeout = '5s'")
        other.execute("LOCK TABLE contacts_contact IN ACCESS EXCLUSIVE MODE")
        response = api.get("/api/v1/contacts")
    finally:
        if not other.closed:
            try:
                other.rollback()
            finally:
                other.close()
    assert response.status_code == 503, response.content[:300]
    assert response.json()["error"]["code"] == "statement_timeout"
    assert api.get("/api/v1/contacts").status_code == 200  # the next request runs normally
