from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase

from contacts.models import Contact

from .helpers import drain_queue

pytestmark = pytest.mark.django_db


def upload(api, data: bytes, name="contacts.csv", **fields):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api.post("/api/v1/imports", {"file": SimpleUploadedFile(name, data), **fields}, format="multipart")
    drain_queue()
    return response


def test_post_answers_202_with_the_mapping_and_a_preview_then_the_job_runs(api, acme):
    data = b"Mobile Phone,E-mail Address,First Name\r\n919-555-0101,ann@example.com,Ann\r\nbad,,Bob\r\n"
    response = upload(api, data)
    assert response.status_code == 202, response.content
    body = response.json()
    assert {"index": 0, "header": "Mobile Phone", "target": "phone"} in body["preview"]["mapping"]
    assert body["preview"]["rows"][0]["contact"]["phone"] == "+19195550101"
    assert body["preview"]["rows"][1]["status"] == "error"
    job = api.get(f"/api/v1/imports/{body['id']}").json()
    assert job["status"] == "succeeded"
    assert job["counters"] == {"total": 2, "created": 1, "updated": 0, "unchanged": 0, "restored": 0, "merged": 0,
                               "skipped": 0, "failed": 1, "warnings": 0}
    assert job["progress"]["percent"] == 100
    assert Contact.objects.for_org(acme).get().first_name == "Ann"


def test_errors_are_listed_and_downloadable_as_the_original_rows_plus_errors(api, acme):
    data = "phone,name,email\r\n9195550101,Ann,nope\r\nbad,Bób,\r\n".encode()
    job_id = upload(api, data).json()["id"]
    errors = api.get(f"/api/v1/imports/{job_id}/errors").json()["results"]
    assert [(e["line"], e["column"], e["severity"]) for e in errors] == [(2, "email", "warning"), (3, "phone", "error")]
    only = api.get(f"/api/v1/imports/{job_id}/errors?severity=error").json()["results"]
    assert [e["line"] for e in only] == [3]
    response = api.get(f"/api/v1/imports/{job_id}/errors.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["phone", "name", "email", "import_line", "import_errors"]
    assert rows[1][:4] == ["9195550101", "Ann", "nope", "2"] and "email" in rows[1][4]
    assert rows[2][:4] == ["bad", "Bób", "", "3"] and "error: phone" in rows[2][4]


def test_a_refused_file_is_a_400_naming_the_problem_and_no_job(api, acme):
    response = upload(api, b"name,city\r\nAnn,Durham\r\n")
    assert response.status_code == 400
    assert "phone or email" in response.json()["error"]["fields"]["file"][0]
    assert api.get("/api/v1/imports").json()["results"] == []


def test_a_mapping_override_and_a_bad_mapping(api, acme):
    data = b"Col A,Col B\r\n9195550101,Ann\r\n"
    body = upload(api, data, mapping=json.dumps({"Col A": "phone", "Col B": "first_name"})).json()
    assert body["status"] in ("queued", "running", "succeeded")
    assert Contact.objects.get(phone="+19195550101").first_name == "Ann"
    response = upload(api, data, mapping=json.dumps({"Col A": "telephone"}))
    assert response.status_code == 400 and "telephone" in json.dumps(response.json())
    response = upload(api, data, mapping="{not json")
    assert response.status_code == 400 and "mapping" in response.json()["error"]["fields"]


def test_has_header_false_maps_by_position(api, acme):
    upload(api, b"9195550101,ann@example.com\r\n9195550102,bob@example.com\r\n", has_header="false")
    assert set(Contact.objects.values_list("email", flat=True)) == {"ann@example.com", "bob@example.com"}


def test_mallory_cannot_see_acmes_import(api, mallory_api, acme):
    job_id = upload(api, b"phone\r\n9195550101\r\n").json()["id"]
    assert mallory_api.get(f"/api/v1/imports/{job_id}").status_code == 404
    assert mallory_api.get("/api/v1/imports").json()["results"] == []
