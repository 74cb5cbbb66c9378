"""One write engine (issue 9): the same cases through POST /contacts, POST /contacts/bulk and an
import end in the same contacts and the same events. Then what only the engine knows to do:
textability in batches, provenance, a race with a concurrent write."""

from __future__ import annotations

import csv
import io
from contextlib import nullcontext

import pytest

from contacts import upsert
from contacts.models import ChannelPreference, Contact, ContactEvent
from contacts.services import Actor
from imports.models import ImportChange, ImportRowError

from ..factories import make_contact
from ..imports.helpers import drain_queue, run_import_bytes

P1, P2, P3 = "+19195550101", "+19195550102", "+19195550103"
TWENTY = {f"k{i:02d}": "x" for i in range(20)}

# (name, existing contacts, incoming row, expected outcome: created | merged | unchanged | error)
CASES = [
    ("new by phone", [], {"phone": P1, "first_name": "Ann"}, "created"),
    ("new with everything", [], {"phone": P1, "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee",
                                 "city": "Durham", "company": "Acme", "tags": ["vip", "news"],
                                 "custom": {"source": "web"}}, "created"),
    ("new by email only", [], {"email": "bo@example.com", "first_name": "Bo"}, "created"),
    ("match by phone, new name", [{"phone": P1, "first_name": "Ann"}], {"phone": P1, "first_name": "Anne"},
     "merged"),
    ("match by national phone", [{"phone": P1, "first_name": "Ann"}], {"phone": "(919) 555-0101", "city": "Cary"},
     "merged"),
    ("empty never clears", [{"phone": P1, "first_name": "Ann", "city": "Durham"}],
     {"phone": P1, "first_name": "", "city": "Raleigh"}, "merged"),
    ("match by email with a different phone", [{"phone": P1, "email": "ann@example.com"}],
     {"phone": P2, "email": "ann@example.com"}, "merged"),
    ("match by phone with a different email", [{"phone": P1, "email": "ann@example.com"}],
     {"phone": P1, "email": "ann.lee@example.com"}, "merged"),
    ("match by email fills a missing phone", [{"email": "ann@example.com"}],
     {"phone": P2, "email": "ANN@example.com"}, "merged"),
    ("email matches case-insensitively", [{"email": "Ann@Example.com", "first_name": "Ann"}],
     {"email": "ann@example.com", "first_name": "Ann"}, "unchanged"),
    ("identical row", [{"phone": P1, "first_name": "Ann", "tags": ["vip"]}],
     {"phone": P1, "first_name": "Ann", "tags": ["vip"]}, "unchanged"),
    ("phone of one, email of another", [{"phone": P1}, {"phone": P2, "email": "bo@example.com"}],
     {"phone": P1, "email": "bo@example.com", "first_name": "X"}, "error"),
    ("an opted-out contact stays opted out", [{"phone": P1, "opted_out": True}],
     {"phone": P1, "first_name": "Ann", "opted_out": False}, "merged"),
    ("an opt-out in the row", [{"phone": P1}], {"phone": P1, "opted_out": True}, "merged"),
    ("a new opted-out contact", [], {"phone": P1, "opted_out": True}, "created"),
    ("tags of different case", [{"phone": P1, "tags": ["VIP"]}], {"phone": P1, "tags": ["vip"]}, "unchanged"),
    ("tags are added", [{"phone": P1, "tags": ["a"]}], {"phone": P1, "tags": ["b", "A"]}, "merged"),
    ("custom fields merge", [{"phone": P1, "custom_fields": {"plan": "gold"}}],
     {"phone": P1, "custom": {"source": "web"}}, "merged"),
    ("over the custom-field limit", [{"phone": P1, "custom_fields": TWENTY}],
     {"phone": P1, "custom": {"extra": "y"}}, "error"),
    ("over the secondary-phone limit",
     [{"email": "ann@example.com", "phone": P1, "secondary_phones": [f"+1919555{i:04d}" for i in range(200, 220)]}],
     {"email": "ann@example.com", "phone": P3}, "error"),
    ("a secondary phone is not matched on", [{"phone": P1, "secondary_phones": [P2]}],
     {"phone": P2, "first_name": "Cy"}, "created"),
]


def api_body(row: dict) -> dict:
    body = {k: v for k, v in row.items() if k != "custom"}
    if "custom" in row:
        body["custom_fields"] = row["custom"]
    return body


def csv_file(row: dict) -> bytes:
    header = [k for k in row if k not in ("custom", "tags", "opted_out")]
    values = [row[k] for k in header]
    if "tags" in row:
        header.append("tags")
        values.append(";".join(row["tags"]))
    for key, value in row.get("custom", {}).items():
        header.append(f"custom.{key}")
        values.append(value)
    if "opted_out" in row:
        header.append("opted_out")
        values.append("yes" if row["opted_out"] else "no")
    out = io.StringIO()
    csv.writer(out).writerows([header, values])
    return out.getvalue().encode()


def through_api(api, org, row):
    response = api.post("/api/v1/contacts", api_body(row), format="json")
    assert response.status_code in (200, 201, 400, 409), response.content
    if response.status_code >= 400:
        return "error"
    return response.json()["_outcome"]


def through_bulk(api, org, row):
    response = api.post("/api/v1/contacts/bulk", {"contacts": [api_body(row)]}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"][0]["outcome"]


def through_import(api, org, row):
    job = run_import_bytes(org, csv_file(row))
    assert job.status == "succeeded", job.error
    if job.failed:
        return "error"
    if job.created:
        return "created"
    limit_warnings = ImportRowError.objects.filter(job=job, code="limit").count()
    if job.updated:
        return "merged"
    return "error" if limit_warnings else "unchanged"


PATHS = {"api": through_api, "bulk": through_bulk, "import": through_import}
SETUP_ACTOR = Actor(label="setup", source="admin")


def snapshot(org) -> dict:
    """The organization's contacts and their events, in a form that does not depend on the path
    (ids, times, actors and the import's own bookkeeping left out)."""
    contacts = []
    for c in Contact.objects.for_org(org).order_by("phone", "email_key"):
        events = []
        for e in ContactEvent.objects.filter(contact=c).exclude(actor_label="setup").order_by("id"):
            kind, data = e.kind, dict(e.data)
            if kind == "imported":
                kind = {"created": "created", "updated": "merged", "restored": "restored"}[data.pop("outcome")]
                data.pop("import_id")
                if kind in ("merged", "restored"):
                    data.pop("fields", None)
            data.pop("import_id", None)
            data.pop("source", None)
            events.append((kind, data))
        contacts.append({
            "phone": c.phone, "email": c.email, "first_name": c.first_name, "last_name": c.last_name,
            "city": c.city, "company": c.company, "secondary_phones": c.secondary_phones,
            "secondary_emails": c.secondary_emails, "custom_fields": c.custom_fields, "opted_out": c.opted_out,
            "is_textable": c.is_textable, "checked": c.textable_checked_at is not None,
            "tags": sorted(t.name for t in c.tags.all()),
            "preferences": sorted(ChannelPreference.objects.filter(contact=c).values_list("channel", "opted_in")),
            "events": events,
        })
    return contacts


@pytest.mark.parametrize("name, existing, row, expected", CASES, ids=[c[0] for c in CASES])
def test_the_same_row_ends_the_same_through_the_api_bulk_and_an_import(name, existing, row, expected, acme, api):
    results = {}
    for path, send in PATHS.items():
        Contact.objects.for_org(acme).delete()
        for values in existing:
            make_contact(acme, **{"first_name": "Pat", **values})
        ContactEvent.objects.filter(organization=acme).update(actor_label="setup")
        outcome = send(api, acme, row)
        results[path] = (outcome, snapshot(acme))
    # The API says "merged" for a match whether or not anything changed; an import counts it unchanged.
    api_expected = "merged" if expected == "unchanged" else expected
    assert {path: r[0] for path, r in results.items()} == {"api": api_expected, "bulk": api_expected,
                                                           "import": expected}
    assert results["api"][1] == results["bulk"][1] == results["import"][1]


def test_matching_keeps_a_different_phone_aside_and_never_moves_the_primary(acme, api):
    contact = make_contact(acme, phone=P1, email="ann@example.com")
    api.post("/api/v1/contacts", {"phone": P2, "email": "ann@example.com"}, format="json")
    contact.refresh_from_db()
    assert (contact.phone, contact.secondary_phones) == (P1, [P2])
    event = ContactEvent.objects.get(contact=contact, kind="merged")
    assert event.data == {"changes": {"secondary_phones": [[], [P2]]}}


def test_an_update_by_id_moves_the_primary_and_keeps_the_old_one_aside(acme, api):
    contact = make_contact(acme, phone=P1, secondary_phones=[P2])
    response = api.patch(f"/api/v1/contacts/{contact.pk}", {"phone": P2}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["phone"], response.json()["secondary_phones"]) == (P2, [P1])


def test_an_import_over_the_custom_field_limit_warns_naming_the_field_and_keeps_the_rest(acme):
    contact = make_contact(acme, phone=P1, custom_fields=TWENTY)
    job = run_import_bytes(acme, b"phone,city,custom.extra\n9195550101,Cary,y\n")
    assert (job.status, job.updated, job.failed) == ("succeeded", 1, 0)
    warning = ImportRowError.objects.get(job=job, code="limit")
    assert (warning.line, warning.column, warning.severity) == (2, "custom_fields", "warning")
    assert "at most 20 custom fields" in warning.message
    contact.refresh_from_db()
    assert contact.city == "Cary" and contact.custom_fields == TWENTY


def test_a_network_provider_gets_one_queued_batch_per_write_not_a_job_per_contact(
        acme, settings, monkeypatch, django_capture_on_commit_callbacks):
    from .test_textability import MOBILE, StubTwilio

    stub = StubTwilio()
    settings.TEXTABILITY_PROVIDER = "twilio"
    settings.TWILIO_LOOKUP_BASE_URL = stub.url
    settings.TEXTABILITY_RATE_PER_SECOND = 1000
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "ACtest")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret")
    try:
        rows = [{"phone": MOBILE}, {"phone": P2}, {"phone": P3}]
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            plans = upsert.upsert_contacts(org=acme, rows=rows, actor=Actor(label="t"))
        assert [p.outcome for p in plans] == ["created"] * 3
        assert Contact.objects.filter(textable_checked_at__isnull=True).count() == 3  # nothing looked up yet
        assert stub.requests == [] and len(callbacks) == 1
        callbacks[0]()
        drain_queue()
        assert sorted(r["number"] for r in stub.requests) == sorted([MOBILE, P2, P3])
        assert Contact.objects.filter(textable_checked_at__isnull=False).count() == 3
        assert ContactEvent.objects.filter(kind="textability_checked").count() == 3
    finally:
        stub.close()


def test_an_import_with_a_network_provider_queues_the_lookups_and_never_marks_them_checked_itself(
        acme, settings, monkeypatch, django_capture_on_commit_callbacks):
    from .test_textability import MOBILE, StubTwilio

    stub = StubTwilio()
    settings.TEXTABILITY_PROVIDER = "twilio"
    settings.TWILIO_LOOKUP_BASE_URL = stub.url
    settings.TEXTABILITY_RATE_PER_SECOND = 1000
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "ACtest")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret")
    try:
        # With Redis the import runs in drain_queue, after run_import_bytes' own capture of the
        # commit callbacks: catch the lookup it queues on commit (without Redis it already ran).
        with django_capture_on_commit_callbacks(execute=True) if settings.REDIS_URL else nullcontext():
            job = run_import_bytes(acme, f"phone\n{MOBILE}\n".encode())
        drain_queue()  # the lookup job the import queued (Redis); in-process it already ran
        assert job.created == 1 and [r["number"] for r in stub.requests] == [MOBILE]
        contact = Contact.objects.get(phone=MOBILE)
        assert contact.is_textable is True  # the stub's answer, not the offline guess
        assert ContactEvent.objects.get(contact=contact, kind="textability_checked").data["provider"] == "twilio"
    finally:
        stub.close()


def test_an_import_keeps_the_values_it_replaced_for_undo(acme):
    contact = make_contact(acme, phone=P1, first_name="Ann", city="Durham")
    job = run_import_bytes(acme, b"phone,first_name,city,tags\n9195550101,Anne,Durham,vip\n9195550102,Bo,,\n")
    changes = {c.outcome: c for c in ImportChange.objects.filter(job=job)}
    assert set(changes) == {"created", "updated"}
    updated = changes["updated"]
    assert updated.contact_id == contact.pk
    assert (updated.before, updated.after, updated.tags_added) == ({"first_name": "Ann"}, {"first_name": "Anne"},
                                                                   ["vip"])
    assert changes["created"].contact_id == Contact.objects.get(phone=P2).pk
    again = run_import_bytes(acme, b"phone,first_name,city,tags\n9195550101,Anne,Durham,vip\n9195550102,Bo,,\n")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert not ImportChange.objects.filter(job=again).exists()


def test_a_dry_run_reports_old_and_new_values_and_writes_nothing(acme):
    contact = make_contact(acme, phone=P1, first_name="Ann")
    events = ContactEvent.objects.count()
    job = run_import_bytes(acme, b"phone,first_name\n9195550101,Anne\n", dry_run=True)
    row = job.result["rows"][0]
    assert row["outcome"] == "updated" and row["changes"] == {"first_name": ["Ann", "Anne"]}
    contact.refresh_from_db()
    assert contact.first_name == "Ann" and ContactEvent.objects.count() == events
    assert not ImportChange.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_import_racing_a_concurrent_create_merges_into_the_contact_that_now_exists(monkeypatch):
    """Another connection (the API) commits the phone between the chunk's match query and its
    write: the database refuses the duplicate, the chunk is planned again and merges into the
    contact that now exists instead of failing the import (issue 13, item 2)."""
    import threading

    from django.db import connection

    from ..factories import make_org

    if connection.vendor != "postgresql":
        pytest.skip("a second connection committing mid-transaction needs PostgreSQL")
    org = make_org(slug="race")
    real_load = upsert._Batch.load
    raced = []

    def load_then_race(self, rows, lock):
        real_load(self, rows, lock)
        if not raced and self.org.pk == org.pk and any(r.get("phone") == P1 for r in rows):
            raced.append(True)
            api_write = threading.Thread(target=lambda: make_contact(org, phone=P1, first_name="Api"))
            api_write.start()
            api_write.join()

    monkeypatch.setattr(upsert._Batch, "load", load_then_race)
    job = run_import_bytes(org, b"phone,city\n9195550101,Cary\n9195550102,Apex\n")
    assert raced and job.status == "succeeded" and (job.created, job.updated, job.failed) == (1, 1, 0)
    contact = Contact.objects.get(organization=org, phone=P1)
    assert (contact.first_name, contact.city) == ("Api", "Cary")
    assert Contact.objects.filter(organization=org).count() == 2


def test_a_new_contact_gets_the_models_own_defaults_for_every_field_it_was_not_given(acme):
    plan = upsert.upsert_contacts(org=acme, rows=[{"phone": P1}], actor=Actor(label="t"))[0]
    written = Contact.objects.get(pk=plan.contact_id)
    blank = Contact()
    for name in upsert.LOADED:
        if name in ("id", "phone", "created_at", "updated_at", "is_textable", "textable_checked_at", "search_doc"):
            continue
        assert getattr(written, name) == getattr(blank, name), name
