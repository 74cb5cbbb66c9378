from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from contacts_crm.models import ApiKey, Organization, hash_api_key

from .conftest import client_with_key

ROOT = Path(__file__).resolve().parents[1]


# --- health and schema ------------------------------------------------------------------------
@pytest.mark.django_db
def test_healthz_reports_the_database_and_the_queue(client, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"vendor": os.environ.get("EXPECT_DB_VENDOR", body["database"]["vendor"]),
                                "status": "ok"}
    if settings.REDIS_URL:
        assert body["queue"]["backend"] == "redis"
        assert body["queue"]["status"] == "ok"
        assert isinstance(body["queue"]["workers"], int)
    else:
        assert body["queue"] == {"backend": "inline", "status": "inline"}


@pytest.mark.django_db
def test_healthz_answers_503_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["queue"]["status"] == "error"


@pytest.mark.django_db
def test_the_schema_is_a_valid_openapi_document_served_without_a_key(client):
    from openapi_spec_validator import validate

    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    validate(document)
    assert "/api/v1/organization" in document["paths"]
    assert document["components"]["securitySchemes"]["ApiKeyBearer"]["scheme"] == "bearer"


@pytest.mark.django_db
def test_the_interactive_docs_load_from_local_assets(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html and "unpkg" not in html


# --- keys -------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_key_is_stored_only_as_a_hash(acme):
    key, raw = ApiKey.generate(organization=acme, name="n", scope="read")
    assert len(raw) >= 20 and raw.startswith(key.prefix + ".")
    stored = ApiKey.objects.get(pk=key.pk)
    assert raw not in {getattr(stored, f.attname) for f in ApiKey._meta.concrete_fields}
    assert stored.hashed_secret == hash_api_key(raw)


@pytest.mark.django_db
def test_a_key_records_its_last_use_at_most_once_a_minute(acme, django_assert_num_queries):
    key, raw = ApiKey.generate(organization=acme, name="n", scope="read")
    client = client_with_key(raw)
    assert client.get("/api/v1/organization").status_code == 200
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    assert client.get("/api/v1/organization").status_code == 200
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    ApiKey.forget_cached([key.prefix])  # a raw UPDATE is seen once the cached copy expires
    assert client.get("/api/v1/organization").status_code == 200
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first - timedelta(minutes=1)


@pytest.mark.django_db
def test_a_known_key_costs_no_query_and_no_write(acme, django_assert_num_queries):
    _, raw = ApiKey.generate(organization=acme, name="n", scope="read")
    client = client_with_key(raw)
    assert client.get("/api/v1/organization").status_code == 200  # reads the key, writes last_used_at
    # the key and its organization come from the "api" cache, the throttle's state lives there too
    with django_assert_num_queries(0):
        assert client.get("/api/v1/organization").json()["slug"] == "acme"


@pytest.mark.django_db
def test_a_revoked_key_stops_working_at_once(acme):
    key, raw = ApiKey.generate(organization=acme, name="n", scope="read")
    client = client_with_key(raw)
    assert client.get("/api/v1/organization").status_code == 200
    ApiKey.objects.get(pk=key.pk).revoke()
    response = client.get("/api/v1/organization")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_a_key_revoked_in_the_admin_stops_working_at_once(acme, alice, client):
    key, raw = ApiKey.generate(organization=acme, name="n", scope="read")
    api = client_with_key(raw)
    assert api.get("/api/v1/organization").status_code == 200
    client.force_login(alice)
    response = client.post("/admin/contacts_crm/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]})
    assert response.status_code == 302
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    assert api.get("/api/v1/organization").status_code == 401


@pytest.mark.django_db
def test_a_deleted_key_stops_working_at_once(acme):
    key, raw = ApiKey.generate(organization=acme, name="n", scope="read")
    client = client_with_key(raw)
    assert client.get("/api/v1/organization").status_code == 200
    key.delete()
    assert client.get("/api/v1/organization").status_code == 401


@pytest.mark.django_db
def test_a_change_to_the_organization_reaches_its_cached_keys(acme):
    _, raw = ApiKey.generate(organization=acme, name="n", scope="read")
    client = client_with_key(raw)
    assert client.get("/api/v1/organization").json()["default_region"] == "US"
    acme.default_region = "GB"
    acme.save()
    assert client.get("/api/v1/organization").json()["default_region"] == "GB"


@pytest.mark.django_db
def test_the_organization_endpoint_names_the_callers_org_and_key(api, acme):
    body = api.get("/api/v1/organization").json()
    assert body["slug"] == "acme"
    assert body["api_key"]["scope"] == "write"


@pytest.mark.django_db
def test_a_session_user_without_an_organization_is_refused(client, django_user_model):
    user = django_user_model.objects.create_user("loner", password="pw", is_staff=True)
    client.force_login(user)
    response = client.get("/api/v1/organization")
    assert response.status_code == 403
    assert "organization" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_a_session_user_acts_for_their_organization(client, bob):
    client.force_login(bob)
    assert client.get("/api/v1/organization").json()["slug"] == "acme"


# --- error envelope ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_an_unknown_api_url_answers_a_json_404(api):
    response = api.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_a_wrong_method_answers_405_in_the_envelope(api):
    response = api.delete("/api/v1/organization")
    assert response.status_code == 405
    assert response.json()["error"] == {"code": "method_not_allowed", "message": 'Method "DELETE" not allowed.'}


@pytest.mark.django_db
def test_the_throttle_answers_429_with_retry_after(acme_read_key, settings):
    settings.API_THROTTLE_RATE = "3/min"
    client = client_with_key(acme_read_key)
    statuses = [client.get("/api/v1/organization").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get("/api/v1/organization")
    assert response.json()["error"]["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60


@pytest.mark.django_db
def test_the_throttle_counts_per_key(acme, settings):
    settings.API_THROTTLE_RATE = "2/min"
    one = client_with_key(ApiKey.generate(organization=acme, name="1", scope="read")[1])
    two = client_with_key(ApiKey.generate(organization=acme, name="2", scope="read")[1])
    assert [one.get("/api/v1/organization").status_code for _ in range(3)] == [200, 200, 429]
    assert two.get("/api/v1/organization").status_code == 200
    assert one.get("/api/v1/organization").status_code == 429  # the other key's calls did not reset it


@pytest.mark.django_db
def test_the_throttle_counts_pages_and_the_organization_call_alike(acme_read_key, settings):
    settings.API_THROTTLE_RATE = "2/min"
    client = client_with_key(acme_read_key)
    assert client.get("/api/v1/contacts").status_code == 200
    assert client.get("/api/v1/organization").status_code == 200
    assert client.get("/api/v1/contacts").status_code == 429


needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the Redis throttle: CI's PostgreSQL + Redis pass")


@pytest.mark.redis
@needs_redis
@pytest.mark.django_db
def test_with_redis_the_throttle_is_one_counter_per_window_in_redis(acme_read_key, settings):
    from django.core.cache import caches

    settings.API_THROTTLE_RATE = "5/min"
    client = client_with_key(acme_read_key)
    assert [client.get("/api/v1/organization").status_code for _ in range(3)] == [200, 200, 200]
    redis = caches["api"]._cache.get_client(write=True)
    keys = redis.keys("*throttle:api:key:*")
    assert len(keys) == 1, keys  # one counter, not DRF's list of timestamps
    assert int(redis.get(keys[0])) == 3
    assert 0 < redis.ttl(keys[0]) <= 60


@pytest.mark.redis
@needs_redis
@pytest.mark.django_db
def test_with_redis_a_new_window_lets_the_key_in_again_and_retry_after_names_its_start(
        acme_read_key, settings, monkeypatch):
    from contacts_crm.api.throttling import ApiKeyRateThrottle

    settings.API_THROTTLE_RATE = "2/min"
    client = client_with_key(acme_read_key)
    window_start = 60 * 30_000_000  # a minute's start, far from the real clock's windows
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: window_start + 57.5)
    assert [client.get("/api/v1/organization").status_code for _ in range(3)] == [200, 200, 429]
    refused = client.get("/api/v1/organization")
    assert refused.status_code == 429 and refused["Retry-After"] == "3"  # 2.5 s to the next window
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: window_start + 60)
    assert [client.get("/api/v1/organization").status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.django_db
def test_an_unhandled_error_answers_500_in_the_envelope(api, monkeypatch):
    from contacts_crm import views

    def boom(*args, **kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr(views.OrganizationSerializer, "to_representation", boom)
    api.raise_request_exception = False
    response = api.get("/api/v1/organization")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert "kaput" not in response.content.decode()


# --- commands ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_create_org_and_create_api_key_print_a_working_key():
    call_command("create_org", "initech", "--name", "Initech", "--region", "ca", stdout=io.StringIO())
    org = Organization.objects.get(slug="initech")
    assert org.default_region == "CA"
    out = io.StringIO()
    call_command("create_api_key", "--org", "initech", "--scope", "write", "--name", "ci", stdout=out,
                 stderr=io.StringIO())
    raw = out.getvalue().strip().splitlines()[-1]
    assert client_with_key(raw).get("/api/v1/organization").json()["slug"] == "initech"


@pytest.mark.django_db
def test_create_org_refuses_a_bad_region():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="region code"):
        call_command("create_org", "x", "--name", "X", "--region", "USA", stdout=io.StringIO())


def test_the_production_settings_pass_check_deploy():
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}}
    env.update(DEBUG="0", SECRET_KEY="x" * 20 + "-deploy-check-" + "y" * 30, ALLOWED_HOSTS="crm.example.com")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_settings_refuse_to_start_without_a_secret_key_when_not_debugging():
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}}
    env["DEBUG"] = "0"
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'wal.sqlite3'}")
    code = (
        "import django; django.setup(); from django.db import connection; c = connection.cursor();"
        "print(c.execute('PRAGMA journal_mode').fetchone()[0], c.execute('PRAGMA busy_timeout').fetchone()[0])"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE":
                            "contacts_crm.settings"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    mode, timeout = result.stdout.split()
    assert mode == "wal"
    assert int(timeout) >= 5000
