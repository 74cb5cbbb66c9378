"""A NUL character (U+0000) anywhere in API input is a 400 naming where, never a 500: PostgreSQL
stores no NUL in text or jsonb (this runs in both CI passes)."""

from __future__ import annotations

import pytest

from .factories import make_contact

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("url", "param"), [
    ("/api/v1/contacts?search=%00abc", "search"), ("/api/v1/contacts?search=ab%00", "search"),
    ("/api/v1/contacts?tags=vip,%00", "tags"), ("/api/v1/contacts?email=a%00b", "email"),
    ("/api/v1/contacts?state=N%00", "state"), ("/api/v1/contacts/count?search=%00abc", "search"),
    ("/api/v1/contacts?lifecycle_stage=%00", "lifecycle_stage"), ("/api/v1/lists?search=%00", "search"),
    ("/api/v1/contacts?a%00=1", "a\\u0000"), ("/api/v1/contacts/export?format=csv&search=%00", "search"),
])
def test_a_nul_in_a_query_parameter_is_a_400_naming_it(api, acme, url, param):
    make_contact(acme, first_name="abc")
    response = api.get(url)
    assert response.status_code == 400, response.content[:300]
    assert "NUL character" in response.json()["error"]["fields"][param][0]


@pytest.mark.parametrize(("body", "path"), [
    ({"phone": "+19195550101", "first_name": "a\x00b"}, "first_name"),
    ({"phone": "+19195550101", "tags": ["ok", "a\x00"]}, "tags[1]"),
    ({"phone": "+19195550101", "custom_fields": {"plan": "a\x00"}}, "custom_fields.plan"),
    ({"phone": "+19195550101", "custom_fields": {"pl\x00an": "a"}}, "custom_fields.pl\\u0000an"),
    ({"email": "a\x00@b.com"}, "email"),
])
def test_a_nul_in_a_body_is_a_400_naming_the_field_and_writes_nothing(api, acme, body, path):
    from contacts.models import Contact

    response = api.post("/api/v1/contacts", body, format="json")
    assert response.status_code == 400, response.content[:300]
    assert "NUL character" in response.json()["error"]["fields"][path][0]
    assert not Contact.objects.exists()


def test_a_nul_in_a_multipart_field_is_a_400(api, acme):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("c.csv", b"phone\n+19195550101\n", content_type="text/csv")
    response = api.post("/api/v1/imports", {"file": upload, "default_region": "U\x00S"}, format="multipart")
    assert response.status_code == 400
    assert "default_region" in response.json()["error"]["fields"]
