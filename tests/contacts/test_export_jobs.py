"""Big exports as background jobs (issue 14): over EXPORT_STREAM_MAX_ROWS the export endpoint
answers 202 with a job; the job's file is the streamed export's bytes; the link expires."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from contacts.export_jobs import purge_expired_exports, run_export
from contacts.models import Contact, ExportJob
from contacts_crm.jobs import periodic_checks
from segments.models import Segment

from ..factories import make_contact
from ..imports.helpers import drain_queue

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_threshold(settings, tmp_path):
    settings.EXPORT_STREAM_MAX_ROWS = 3
    settings.MEDIA_ROOT = tmp_path


def make_book(org, count=5, **fields):
    return [make_contact(org, phone=f"+1919555{1000 + i}", first_name=f"=Name {i}", state="NC", tags=["vip"],
                         **fields) for i in range(count)]


def streamed(api, fmt="csv", **filters) -> bytes:
    response = api.get("/api/v1/contacts/export", {"format": fmt, **filters})
    assert response.status_code == 200, response.content[:300]
    return response.getvalue() if fmt == "xlsx" else b"".join(response.streaming_content)


def started(api, capture, fmt="csv", **filters) -> dict:
    """GET /contacts/export over the threshold: the 202 body, after the job ran."""
    with capture(execute=True):
        response = api.get("/api/v1/contacts/export", {"format": fmt, **filters})
    assert response.status_code == 202, response.content[:300]
    assert response["Location"] == f"/api/v1/exports/{response.json()['id']}"
    drain_queue()
    return response.json()


def downloaded(api, job_id) -> bytes:
    response = api.get(f"/api/v1/exports/{job_id}/download")
    assert response.status_code == 200, response.content[:300]
    return b"".join(response.streaming_content)


def test_a_small_export_still_streams(acme, api):
    make_book(acme, count=3)
    assert streamed(api).count(b"\r\n") == 4  # the header and three contacts
    assert not ExportJob.objects.exists()


@pytest.mark.parametrize("fmt", ["csv", "vcf"])
def test_a_big_export_is_a_job_whose_file_is_the_streamed_bytes(acme, api, settings,
                                                                 django_capture_on_commit_callbacks, fmt):
    make_book(acme, count=5)
    make_contact(acme, phone="+19195559999", state="SC", tags=["vip"])
    body = started(api, django_capture_on_commit_callbacks, fmt, state="NC")
    assert body["status"] == "queued" and body["url"] == f"/api/v1/exports/{body['id']}"
    job = api.get(body["url"]).json()
    assert job["status"] == "succeeded", job
    assert (job["rows_done"], job["rows_total"], job["progress"]) == (5, 5, 100)
    assert job["filters"] == {"state": "NC"}
    assert job["download_url"] == f"/api/v1/exports/{body['id']}/download"
    expires = dt.datetime.fromisoformat(job["expires_at"]) - dt.datetime.fromisoformat(job["finished_at"])
    assert expires == dt.timedelta(hours=settings.EXPORT_LINK_HOURS)
    settings.EXPORT_STREAM_MAX_ROWS = 50_000
    assert downloaded(api, body["id"]) == streamed(api, fmt, state="NC")


def test_a_big_xlsx_export_holds_the_streamed_workbooks_cells(acme, api, settings, django_capture_on_commit_callbacks):
    make_book(acme, count=4)
    body = started(api, django_capture_on_commit_callbacks, "xlsx")
    data = downloaded(api, body["id"])
    settings.EXPORT_STREAM_MAX_ROWS = 50_000

    def cells(content):
        return [list(row) for row in load_workbook(io.BytesIO(content), read_only=True).active.values]

    assert len(cells(data)) == 5
    assert cells(data) == cells(streamed(api, "xlsx"))


def test_post_exports_starts_a_job_of_any_size_and_lists_it(acme, api, django_capture_on_commit_callbacks):
    make_book(acme, count=2)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/exports", {"format": "vcf", "filters": {"tags": "vip"}}, format="json")
    assert response.status_code == 202, response.content
    drain_queue()
    job = ExportJob.objects.get(pk=response.json()["id"])
    assert (job.status, job.rows_done, job.format, job.params) == ("succeeded", 2, "vcf", {"tags": "vip"})
    assert Path(job.file.path).read_bytes().count(b"BEGIN:VCARD") == 2
    assert job.file.name.startswith(f"exports/{acme.pk}/")
    assert job.created_by_key is not None
    page = api.get("/api/v1/exports").json()
    assert [item["id"] for item in page["results"]] == [job.pk]


def test_a_bad_filter_or_format_is_a_400_and_starts_nothing(acme, api):
    response = api.post("/api/v1/exports", {"format": "pdf"}, format="json")
    assert response.status_code == 400 and "format" in response.json()["error"]["fields"]
    response = api.post("/api/v1/exports", {"filters": {"tag": "vip"}}, format="json")
    assert response.status_code == 400 and "tag" in response.json()["error"]["fields"]
    assert not ExportJob.objects.exists()


def test_the_download_answers_409_until_the_job_has_succeeded(acme, api):
    response = api.post("/api/v1/exports", {"format": "csv"}, format="json")  # never committed: stays queued
    assert response.status_code == 202
    download = api.get(f"/api/v1/exports/{response.json()['id']}/download")
    assert download.status_code == 409 and download.json()["error"]["code"] == "conflict"
    assert api.get(response.json()["url"]).json()["download_url"] is None


def test_an_expired_link_is_410_and_the_purge_deletes_the_file(acme, api, django_capture_on_commit_callbacks):
    make_book(acme, count=4)
    body = started(api, django_capture_on_commit_callbacks)
    job = ExportJob.objects.get(pk=body["id"])
    path = Path(job.file.path)
    assert path.exists()
    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = api.get(f"/api/v1/exports/{job.pk}/download")
    assert response.status_code == 410 and response.json()["error"]["code"] == "gone"
    assert api.get(body["url"]).json()["download_url"] is None
    assert purge_expired_exports() == [job.pk]
    job.refresh_from_db()
    assert not path.exists()
    assert (job.status, job.file.name) == ("expired", "")
    assert api.get(f"/api/v1/exports/{job.pk}/download").status_code == 410
    assert purge_expired_exports() == []


def test_the_purge_fails_an_export_whose_worker_died(acme, settings):
    job = ExportJob.objects.create(organization=acme, status=ExportJob.Status.RUNNING,
                                   started_at=timezone.now() - dt.timedelta(seconds=settings.JOB_TIMEOUT + 1))
    alive = ExportJob.objects.create(organization=acme, status=ExportJob.Status.RUNNING, started_at=timezone.now())
    purge_expired_exports()
    job.refresh_from_db()
    alive.refresh_from_db()
    assert (job.status, alive.status) == ("failed", "running")
    assert "stopped before it finished" in job.error


def test_the_purge_is_a_periodic_check():
    assert "contacts.export_jobs.purge_expired_exports" in dict(periodic_checks())


def test_mallory_gets_404_for_acmes_export(acme, api, mallory_api, django_capture_on_commit_callbacks):
    make_book(acme, count=4)
    body = started(api, django_capture_on_commit_callbacks)
    for path in (body["url"], f"{body['url']}/download"):
        assert mallory_api.get(path).status_code == 404
    assert mallory_api.get("/api/v1/exports").json()["results"] == []
    assert api.get("/api/v1/exports/999999999/download").status_code == 404


def test_a_job_whose_segment_was_deleted_records_why_it_failed(acme, api, django_capture_on_commit_callbacks):
    make_book(acme, count=4)
    segment = Segment.objects.create(organization=acme, name="NC",
                                     rules={"op": "and", "rules": [{"field": "state", "operator": "eq", "value": "NC"}]})
    response = api.get("/api/v1/contacts/export", {"segment": segment.pk})  # on_commit not run: still queued
    assert response.status_code == 202
    segment_id = segment.pk
    segment.delete()
    run_export(response.json()["id"])
    job = api.get(response.json()["url"]).json()
    assert job["status"] == "failed"
    assert job["error"] == f"No segment with the id {segment_id}."
    download = api.get(f"{job['url']}/download")
    assert download.status_code == 409 and "No segment" in download.json()["error"]["message"]


def test_a_job_runs_once(acme, api, django_capture_on_commit_callbacks):
    make_book(acme, count=4)
    body = started(api, django_capture_on_commit_callbacks)
    job = ExportJob.objects.get(pk=body["id"])
    run_export(job.pk)  # a second delivery of the same job leaves the first run's file alone
    assert ExportJob.objects.get(pk=job.pk).file.name == job.file.name


def test_progress_is_reported_every_batch(acme, monkeypatch):
    from contacts import export_sql
    from contacts.exports import csv_chunks, export_rows

    make_book(acme, count=5)
    monkeypatch.setattr(export_sql, "COPY_SLICE", 2)  # PostgreSQL: one COPY per 2 contacts
    table = export_rows(Contact.objects.for_org(acme), org=acme, batch_size=2)  # elsewhere: keyset batches of 2
    reports = []
    table.progress = reports.append
    b"".join(csv_chunks(table))
    assert reports == [2, 2, 1]


# --- the admin ----------------------------------------------------------------------------------
def test_the_admins_export_of_a_big_selection_starts_a_job_and_links_to_it(
        acme, globex, alice, client, django_capture_on_commit_callbacks):
    make_book(acme, count=4)
    make_contact(acme, phone="+19195559999", state="SC")
    make_book(globex, count=4)
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get("/admin/contacts/contact/export/?state=NC&_export_format=vcf", follow=True)
    drain_queue()
    job = ExportJob.objects.get()
    assert (job.organization, job.format, job.created_by, job.status, job.rows_done) == (
        acme, "vcf", alice, "succeeded", 4)
    assert f"/admin/contacts/exportjob/{job.pk}/change/" in response.content.decode()
    assert Path(job.file.path).read_bytes().count(b"BEGIN:VCARD") == 4
    changelist = client.get("/admin/contacts/exportjob/").content.decode()
    assert "100%" in changelist and f"/admin/contacts/exportjob/{job.pk}/download/" in changelist
    download = client.get(f"/admin/contacts/exportjob/{job.pk}/download/")
    assert b"".join(download.streaming_content) == Path(job.file.path).read_bytes()


def test_the_admins_export_of_selected_contacts_exports_just_those(acme, alice, client,
                                                                    django_capture_on_commit_callbacks):
    people = make_book(acme, count=6)
    client.force_login(alice)
    chosen = [str(c.pk) for c in people[:4]]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/contacts/contact/", {"action": "export_selected", "_selected_action": chosen})
    assert response.status_code == 302
    drain_queue()
    job = ExportJob.objects.get()
    assert (job.status, job.rows_done) == ("succeeded", 4)
    exported = Path(job.file.path).read_text(encoding="utf-8-sig")
    assert all(c in exported for c in chosen) and str(people[5].pk) not in exported


def test_the_admin_download_of_an_expired_export_says_so(acme, alice, client, django_capture_on_commit_callbacks):
    make_book(acme, count=4)
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.get("/admin/contacts/contact/export/?_export_format=csv")
    drain_queue()
    job = ExportJob.objects.get()
    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now())
    response = client.get(f"/admin/contacts/exportjob/{job.pk}/download/", follow=True)
    assert "expired" in response.content.decode()
