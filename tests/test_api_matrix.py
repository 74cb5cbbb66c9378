"""Auth and tenancy for every endpoint of tests/api_matrix.py."""

from __future__ import annotations

import pytest

from contacts_crm.models import ApiKey

from . import api_endpoints  # noqa: F401  (registers every app's endpoints)
from .api_matrix import ENDPOINTS
from .conftest import client_with_key

pytestmark = pytest.mark.django_db

ALL = [pytest.param(ep, id=ep.id) for ep in ENDPOINTS]
WRITES = [pytest.param(ep, id=ep.id) for ep in ENDPOINTS if ep.write]
WITH_OBJECTS = [pytest.param(ep, id=ep.id) for ep in ENDPOINTS if ep.make is not None and "{" in ep.path]


def call(client, ep, path, body):
    method = getattr(client, ep.method.lower())
    if body is None:
        return method(path)
    return method(path, body, format=ep.fmt)


def assert_error(response, status, code):
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


@pytest.mark.parametrize("ep", ALL)
def test_it_answers_401_without_a_key(ep, acme):
    path, body = ep.build(acme)
    response = call(client_with_key(None), ep, path, body)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("ep", ALL)
@pytest.mark.parametrize(
    "bad_key", ["nonsense", "ck_AAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", "ck_short.x", "two words"]
)
def test_it_answers_401_to_a_malformed_or_unknown_key(ep, bad_key, acme):
    path, body = ep.build(acme)
    response = call(client_with_key(bad_key), ep, path, body)
    assert_error(response, 401, "authentication_failed")


@pytest.mark.parametrize("ep", ALL)
def test_it_answers_401_to_a_revoked_key(ep, acme):
    key, raw = ApiKey.generate(organization=acme, name="old", scope="write")
    key.revoke()
    path, body = ep.build(acme)
    response = call(client_with_key(raw), ep, path, body)
    assert_error(response, 401, "authentication_failed")
    assert "revoked" in response.json()["error"]["message"]


@pytest.mark.parametrize("ep", WRITES)
def test_it_answers_403_to_a_read_key_on_a_write(ep, acme, acme_read_key):
    path, body = ep.build(acme)
    response = call(client_with_key(acme_read_key), ep, path, body)
    assert_error(response, 403, "permission_denied")


@pytest.mark.parametrize("ep", WITH_OBJECTS)
def test_mallory_gets_404_for_acmes_objects(ep, acme, mallory_api):
    path, body = ep.build(acme)
    response = call(mallory_api, ep, path, body)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("ep", ALL)
def test_it_works_with_the_right_key(ep, acme, acme_write_key, acme_read_key):
    path, body = ep.build(acme)
    key = acme_write_key if ep.write else acme_read_key
    response = call(client_with_key(key), ep, path, body)
    assert response.status_code in ep.ok_statuses, (response.status_code, response.content[:500])
