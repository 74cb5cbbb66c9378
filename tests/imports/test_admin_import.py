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


def test_the_mapping_page_has_one_row_per_column_with_samples_counts_and_custom_targets(client, alice, acme):
    from contacts.models import CustomField

    CustomField.objects.create(organization=acme, key="plan", label="Plan", type="choice", choices=["gold", "silver"])
    client.force_login(alice)
    data = b"Cell,Mail,Given,Tier\r\n" + b"".join(
        b"919-555-01%02d,p%d@example.com,P%d,gold\r\n" % (n, n, n) for n in range(1, 13)) + b"nope,,Cy,gold\r\n"
    page = client.get(upload(client, data)["Location"])
    assert page.context["row_count"] == 13 and not page.context["row_count_more"]
    rows = page.context["column_rows"]
    assert [r["header"] for r in rows] == ["Cell", "Mail", "Given", "Tier"]
    assert rows[0]["samples"] == ["919-555-0101", "919-555-0102", "919-555-0103"]
    choices = dict(page.context["form"].fields["col_3"].choices)
    assert dict(choices["Custom fields"]) == {"custom.plan": "Plan (custom.plan)",
                                             "custom.tier": "New custom field: custom.tier"}
    html = page.content.decode()
    assert 'id="row-count"' in html and "13 rows" in html
    assert "0 of the first 10 rows would fail" in html
    confirm = page.request["PATH_INFO"]
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(confirm, {"mode": "create_update", "col_0": "phone", "col_1": "email", "col_2": "first_name",
                              "col_3": "custom.plan", "_start": "Start import"})
    drain_queue()
    assert Contact.objects.get(phone="+19195550101").custom_fields == {"plan": "gold"}


def test_failing_preview_rows_are_counted_and_listed(client, alice):
    client.force_login(alice)
    page = client.get(upload(client)["Location"])
    assert len(page.context["failing"]) == 1
    assert "1 of the first 3 rows would fail" in page.content.decode()


def test_a_vcard_preview_shows_readable_fields(client, alice):
    client.force_login(alice)
    card = (b"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Jones;Bob;;;\r\nFN:Bob Jones\r\nTEL;TYPE=CELL:+1 919 555 0102\r\n"
            b"EMAIL:bob@example.com\r\nEND:VCARD\r\n")
    page = client.get(upload(client, card, name="bob.vcf")["Location"])
    html = page.content.decode()
    fields = dict(page.context["cards"][0]["fields"])
    assert fields["first name"] == "Bob" and fields["phone"] == "+19195550102"
    assert "<dt>email</dt><dd>bob@example.com</dd>" in html
    assert "{'" not in html and "{&#x27;" not in html


def test_a_dry_run_can_be_started_for_real_without_a_second_upload(client, alice, acme):
    client.force_login(alice)
    confirm = upload(client)["Location"]
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(confirm, {"mode": "create_update", "col_0": "phone", "col_1": "email", "col_2": "first_name",
                              "_dry_run": "Dry run"})
    drain_queue()
    dry = ImportJob.objects.get()
    page = client.get(reverse("admin:imports_importjob_change", args=[dry.pk])).content.decode()
    assert "Start this import for real" in page
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(reverse("admin:imports_importjob_run_for_real", args=[dry.pk]))
    drain_queue()
    real = ImportJob.objects.exclude(pk=dry.pk).get()
    assert response["Location"] == reverse("admin:imports_importjob_change", args=[real.pk])
    assert not real.dry_run and real.status == "succeeded" and real.created == 2 and real.created_by == alice
    assert Contact.objects.get(phone="+19195550101").first_name == "Ann"
    # Once: the dry run's page now links to the real run, and a second POST starts nothing.
    page = client.get(reverse("admin:imports_importjob_change", args=[dry.pk])).content.decode()
    assert "Start this import for real" not in page and f"import {real.pk}" in page
    client.post(reverse("admin:imports_importjob_run_for_real", args=[dry.pk]))
    assert ImportJob.objects.count() == 2


def test_a_job_with_failed_rows_is_finished_with_errors_not_succeeded(client, alice, acme):
    from imports.admin import import_status

    client.force_login(alice)
    confirm = upload(client, b"Cell\r\nnope\r\n12\r\n")["Location"]
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(confirm, {"mode": "create_update", "col_0": "phone", "_start": "Start import"})
    drain_queue()
    job = ImportJob.objects.get()
    assert job.status == "succeeded" and job.failed == 2 and job.created == 0
    assert import_status(job) == ("errors", "Finished with errors (nothing written)")
    listing = client.get(reverse("admin:imports_importjob_changelist")).content.decode()
    assert "status-errors" in listing and "status-succeeded" not in listing
    filtered = client.get(reverse("admin:imports_importjob_changelist") + "?state=errors")
    assert [j.pk for j in filtered.context["cl"].result_list] == [job.pk]
    assert not client.get(reverse("admin:imports_importjob_changelist") + "?state=succeeded").context[
        "cl"].result_list
    status = client.get(reverse("admin:imports_importjob_status", args=[job.pk])).json()
    assert status["status_label"].startswith("Finished with errors")


def test_mid_run_the_rows_counter_is_the_rows_read(client, alice, acme):
    client.force_login(alice)
    upload(client)
    job = ImportJob.objects.get()
    ImportJob.objects.filter(pk=job.pk).update(status="running", phase="writing", rows_read=3, failed=1, created=0)
    counters = client.get(reverse("admin:imports_importjob_status", args=[job.pk])).json()["counters"]
    assert counters["total"] == 3 and counters["failed"] == 1


def test_the_progress_page_says_one_partition_not_one_partitions(client, alice, acme):
    import re

    client.force_login(alice)
    confirm = upload(client)["Location"]
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(confirm, {"mode": "create_update", "_start": "Start import"})
    drain_queue()
    job = ImportJob.objects.get()
    page = client.get(reverse("admin:imports_importjob_change", args=[job.pk])).content.decode()
    words = " ".join(re.sub(r"<[^>]+>", " ", page.split('id="partitions"')[1].split("</p>")[0]).split())
    assert job.partitions.count() == 1 and "Written in 1 partition , 1 written" in words
