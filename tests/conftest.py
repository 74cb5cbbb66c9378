"""The cast (style.md): alice administers Acme and has a write key, bob is an Acme member with a
read-only key, mallory is in Globex and must never see Acme's data."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache, caches
from rest_framework.test import APIClient

from contacts_crm.models import ApiKey, Membership

from .browser import page  # noqa: F401  (the browser tests' fixture)
from .factories import make_org, make_staff

# The real-world files to import (../shared/data from the project root, never copied into the
# repo). Where they are missing, the tests that read them skip; CI has them.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _clear_cache(settings):
    # The database cache is rolled back with each test's transaction; Redis and the process-memory
    # "api" cache (cached keys, the throttle) are not, so empty them (CI gives the tests their own
    # Redis database).
    if settings.REDIS_URL:
        cache.clear()
    caches["api"].clear()
    yield


@pytest.fixture
def acme(db):
    return make_org(slug="acme", name="Acme")


@pytest.fixture
def globex(db):
    return make_org(slug="globex", name="Globex", default_region="GB")


@pytest.fixture
def alice(acme):
    return make_staff("alice", acme, role=Membership.Role.ADMIN)


@pytest.fixture
def bob(acme):
    return make_staff("bob", acme, role=Membership.Role.MEMBER)


@pytest.fixture
def mallory(globex):
    return make_staff("mallory", globex, role=Membership.Role.ADMIN)


@pytest.fixture
def acme_write_key(acme):
    return ApiKey.generate(organization=acme, name="acme write", scope="write")[1]


@pytest.fixture
def acme_read_key(acme):
    return ApiKey.generate(organization=acme, name="acme read", scope="read")[1]


@pytest.fixture
def globex_write_key(globex):
    return ApiKey.generate(organization=globex, name="globex write", scope="write")[1]


def client_with_key(raw_key: str | None) -> APIClient:
    client = APIClient()
    if raw_key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def api(acme_write_key):
    """Alice's integration: an API client with Acme's write key."""
    return client_with_key(acme_write_key)


@pytest.fixture
def read_api(acme_read_key):
    return client_with_key(acme_read_key)


@pytest.fixture
def mallory_api(globex_write_key):
    return client_with_key(globex_write_key)
