"""Issue 11: the schema tells the truth, errors are JSON everywhere under /api/v1/, and the
README's commands work as written."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.test import override_settings

from segments.models import ContactList

from .factories import make_contact

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def schema(client):
    return yaml.safe_load(client.get("/api/v1/schema/").content)


def _resolve(schema, ref):
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


@pytest.mark.parametrize("path", ["/api/v1/contacts", "/api/v1/custom-fields", "/api/v1/imports", "/api/v1/lists",
                                  "/api/v1/segments", "/api/v1/contacts/opt-outs", "/api/v1/lists/{id}/members"])
def test_a_paged_list_is_described_as_one_page_object(schema, path):
    body = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "$ref" in body, body  # not {"type": "array", "items": page}
    page = _resolve(schema, body["$ref"])
    assert page["type"] == "object"
    assert {"results", "next_cursor"} <= set(page["properties"])
    assert page["properties"]["results"]["type"] == "array"


def test_every_operation_documents_the_error_envelope_of_its_statuses(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for code in ("400", "401", "404", "429"):
                ref = responses[code]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/Error"), (method, path, code)
            if method != "get":
                assert "403" in responses, (method, path)
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["$ref"].endswith("/ErrorDetail")


def test_list_views_keep_list_operation_ids(schema):
    assert schema["paths"]["/api/v1/contacts"]["get"]["operationId"] == "contacts_list"
    assert schema["paths"]["/api/v1/contacts/{id}"]["get"]["operationId"] == "contacts_retrieve"


def test_a_create_links_to_the_operations_on_what_it_made(schema):
    links = schema["paths"]["/api/v1/lists"]["post"]["responses"]["201"]["links"]
    assert links["lists_retrieve"]["parameters"] == {"path.id": "$response.body#/id"}
    assert {"lists_partial_update", "lists_destroy", "lists_members_create"} <= set(links)
    contact_links = schema["paths"]["/api/v1/contacts"]["post"]["responses"]["201"]["links"]
    assert {"contacts_retrieve", "contacts_update", "contacts_destroy"} <= set(contact_links)


def test_the_schema_with_links_is_still_valid(schema):
    from openapi_spec_validator import validate

    validate(schema)


def test_contact_writes_are_documented_as_json_only(schema):
    body = schema["paths"]["/api/v1/contacts"]["post"]["requestBody"]["content"]
    assert list(body) == ["application/json"]


def test_list_members_take_a_multipart_body_with_repeated_contact_ids(api, acme):
    contact_list = ContactList.objects.create(organization=acme, name="L")
    a, b = make_contact(acme), make_contact(acme)
    url = f"/api/v1/lists/{contact_list.pk}/members"
    response = api.post(url, {"contact_ids": [str(a.pk), str(b.pk)]}, format="multipart")
    assert response.status_code == 200, response.content
    assert response.json() == {"added": 2, "already_members": 0}
    assert set(contact_list.memberships.values_list("contact_id", flat=True)) == {a.pk, b.pk}
    response = api.post(f"{url}/remove", {"contact_ids": [str(a.pk)]}, format="multipart")
    assert response.json() == {"removed": 1, "not_members": 0}
    response = api.post(url, {"contact_ids": ["nope", "x"]}, format="multipart")
    assert response.status_code == 400
    assert "nope" in response.json()["error"]["fields"]["contact_ids"][0]


def test_a_json_body_posted_as_a_form_to_a_contact_write_is_a_415(api):
    response = api.post("/api/v1/contacts", {"phone": "+19195550100"}, format="multipart")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


@override_settings(DEBUG=True)
@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/contacts/", "/api/v1/contacts/x/y/z", "/api/v1/"])
def test_an_unknown_api_path_is_a_json_404_even_in_debug(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


@override_settings(DEBUG=True)
def test_a_trailing_slash_gets_a_hint(api):
    message = api.get("/api/v1/contacts/").json()["error"]["message"]
    assert "no trailing slash" in message and "/api/v1/contacts" in message


@override_settings(DEBUG=True)
def test_schema_and_docs_are_still_served_in_debug(client):
    assert client.get("/api/v1/schema/").status_code == 200
    assert client.get("/api/v1/docs/").status_code == 200


def test_the_second_seed_demo_says_how_to_get_an_api_key():
    call_command("seed_demo", "--first-run", stdout=io.StringIO())
    out = io.StringIO()
    call_command("seed_demo", "--first-run", stdout=out)
    assert "create_api_key --org demo --scope write" in out.getvalue()


def test_manage_py_reads_the_env_file_make_writes(tmp_path):
    # Run manage.py as the README does, from a copy of the checkout's manage.py beside a .env: no
    # SECRET_KEY, no DEBUG in the environment.
    (tmp_path / ".env").write_text("# written by make\nDEBUG=1\n")
    (tmp_path / "manage.py").write_text((ROOT / "manage.py").read_text())
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}}
    env["PYTHONPATH"] = str(ROOT)
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, str(tmp_path / "manage.py"), "check"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    (tmp_path / ".env").write_text("DEBUG=0\n")
    done = subprocess.run([sys.executable, str(tmp_path / "manage.py"), "check"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "SECRET_KEY must be set" in done.stderr


def test_a_json_value_of_the_wrong_type_or_an_unknown_key_is_a_400(api, acme):
    from contacts.models import Tag

    tag = Tag.objects.create(organization=acme, name="vip", key="vip")
    err = api.patch(f"/api/v1/tags/{tag.pk}", {"name": "gold", "nmae": "x"}, format="json").json()["error"]
    assert err["fields"] == {"nmae": ["Unknown field 'nmae'."]}
    err = api.post("/api/v1/lists", {"name": 12}, format="json").json()["error"]
    assert err["fields"]["name"] == ["Expected a string."]
    tag.refresh_from_db()
    assert tag.name == "vip"


def test_a_form_body_with_too_many_fields_is_a_400_not_a_500(api, acme, settings):
    contact_list = ContactList.objects.create(organization=acme, name="L")
    ids = ["e3e70682-c209-1cac-a29f-6fbed82c07cd"] * (settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)
    response = api.post(f"/api/v1/lists/{contact_list.pk}/members/remove", {"contact_ids": ids}, format="multipart")
    assert response.status_code == 400
    assert "Too many form fields" in response.json()["error"]["message"]


def test_a_bulk_item_that_is_not_an_object_is_a_400_for_the_call(api):
    response = api.post("/api/v1/contacts/bulk", {"contacts": [{"phone": "+19195550900"}, [None]]}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["contacts[1]"]
    from contacts.models import Contact

    assert not Contact.objects.filter(phone="+19195550900").exists()


@pytest.mark.parametrize("url", ["/api/v1/contacts?limit=", "/api/v1/contacts?sort=", "/api/v1/contacts?offset=",
                                 "/api/v1/contacts?include_total=", "/api/v1/contacts/opt-outs?channel=",
                                 "/api/v1/contacts?priority_list=", "/api/v1/custom-fields?sort=",
                                 "/api/v1/contacts/export?format="])
def test_a_typed_parameter_given_empty_is_a_400(api, url):
    response = api.get(url)
    assert response.status_code == 400, (url, response.status_code)
    assert response.json()["error"]["fields"]


def test_an_offset_beyond_its_bound_is_a_400_not_a_500(api):
    from contacts_crm.api.pagination import MAX_OFFSET

    for url in ("/api/v1/contacts", "/api/v1/custom-fields", "/api/v1/imports"):
        response = api.get(url, {"offset": str(10**30)})
        assert response.status_code == 400, url
        assert str(MAX_OFFSET) in response.json()["error"]["fields"]["offset"][0]


def test_a_string_longer_than_its_limit_is_refused_as_sent(api):
    response = api.post("/api/v1/lists", {"name": "    " + "*" * 200}, format="json")
    assert response.status_code == 400 and "At most 200" in response.json()["error"]["fields"]["name"][0]
    assert api.post("/api/v1/lists", {"name": "x"}, format="multipart").status_code == 415
