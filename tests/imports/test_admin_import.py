"""The admin's import flow, with Django's test client (the browser test drives the same pages)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.urls import reverse

from contacts.models import Contact
from imports.models import ImportJob

from .helpers import drain_queue

pytestmark = pytest.mark.django_db

DATA = b"Cell,Mail,Given\r\n919-555-0101,ann@example.com,Ann\r\n919-555-0102,,Bob\r\nnope,,Cy\r\n"


def upload(client, data=DATA, name="people.csv"):
    return client.post(reverse("admin:imports_importjob_upload"),
                       {"file": SimpleUploadedFile(name, data), "has_header": "on"})


def test_upload_shows_the_mapping_and_rows_then_start_runs_the_import(client, alice, acme):
    client.force_login(alice)
    response = upload(client)
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert job.status == "draft" and job.organization == acme and not Contact.objects.exists()
    page = client.get(response["Location"])
    html = page.content.decode()
    assert "919-555-0101" in html and 'name="col_0"' in html
    assert page.context["form"]["col_0"].initial == "phone"
    assert page.context["form"]["col_2"].initial == "first_name"
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(response["Location"], {"mode": "create_update", "col_0": "phone", "col_1": "email",
                                                       "col_2": "last_name", "_start": "Start import"})
    drain_queue()
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "succeeded" and job.created == 2 and job.failed == 1
    assert Contact.objects.get(phone="+19195550101").last_name == "Ann"  # the edited mapping was used
    progress = client.get(response["Location"])
    assert "Download the error report" in progress.content.decode()
    status = client.get(reverse("admin:imports_importjob_status", args=[job.pk])).json()
    assert status["finished"] and status["counters"]["created"] == 2
    report = client.get(reverse("admin:imports_importjob_errors", args=[job.pk]))
    assert "nope" in b"".join(report.streaming_content).decode()


def test_a_dry_run_from_the_admin_writes_nothing(client, alice, acme):
    client.force_login(alice)
    confirm = upload(client)["Location"]
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(confirm, {"mode": "create_update", "col_0": "phone", "col_1": "email", "col_2": "first_name",
                              "_dry_run": "Dry run"})
    drain_queue()
    job = ImportJob.objects.get()
    assert job.dry_run and job.status == "succeeded" and job.created == 2
    assert not Contact.objects.exists()


def test_a_refused_file_is_a_form_error(client, alice):
    client.force_login(alice)
    response = upload(client, b"name,city\r\nAnn,Durham\r\n")
    assert response.status_code == 200
    assert "phone or email" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_mallory_cannot_open_acmes_import_pages(client, alice, mallory, acme):
    client.force_login(alice)
    upload(client)
    job = ImportJob.objects.get()
    client.force_login(mallory)
    for name in ("imports_importjob_confirm", "imports_importjob_status", "imports_importjob_errors"):
        assert client.get(reverse(f"admin:{name}", args=[job.pk])).status_code == 404
