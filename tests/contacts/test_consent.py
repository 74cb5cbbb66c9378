"""The consent ledger, the suppression list API and admin, inbound keywords, GDPR export (issue 10)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from contacts.consent import keyword_normalize, value_hash
from contacts.models import ConsentRecord, Contact, ContactEvent, KeywordSettings, Suppression
from contacts.services import Actor, contact_opt_out
from contacts.trash import contact_trash, contacts_purge

from ..factories import make_contact
from ..imports.helpers import csv_bytes, run_import_bytes

pytestmark = pytest.mark.django_db
URL = "/api/v1/contacts"
PHONE = "+19195550142"
ACTOR = Actor(label="test", source="api")


def inbound(api, body, phone=PHONE, **extra):
    response = api.post("/api/v1/inbound", {"from": phone, "body": body, **extra}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def purge(contact):
    contact_trash(contact=contact, actor=ACTOR)
    contacts_purge(before=timezone.now() + timedelta(seconds=1))


# --- ledger --------------------------------------------------------------------------------------
def test_every_consent_change_appends_a_ledger_row_newest_first(api, acme):
    contact = api.post(URL, {"phone": PHONE, "opted_out": True}, format="json").json()
    api.put(f"{URL}/{contact['id']}/preferences", {"email": False}, format="json")
    api.patch(f"{URL}/{contact['id']}", {"opted_out": False}, format="json")
    api.put(f"{URL}/{contact['id']}/preferences", {"email": True}, format="json")
    api.put(f"{URL}/{contact['id']}/preferences", {"email": True}, format="json")  # no change: no row
    rows = api.get(f"{URL}/{contact['id']}/consent").json()
    assert [(r["channel"], r["opted_in"], r["source"]) for r in rows["results"]] == [
        ("email", True, "api"), (None, True, "api"), ("email", False, "api"), (None, False, "api")]
    assert rows["results"][0]["evidence"] == {"api_key": "acme write"}
    assert rows["results"][0]["actor"] == "API key acme write"
    assert "next_cursor" in rows


def test_ledger_rows_are_append_only(acme):
    contact = make_contact(acme)
    contact_opt_out(contact=contact, actor=ACTOR)
    row = ConsentRecord.objects.get(contact=contact)
    row.opted_in = True
    with pytest.raises(ValueError):
        row.save()


def test_an_import_writes_ledger_rows_with_the_import_id(acme):
    job = run_import_bytes(acme, csv_bytes("phone,opted_out\n9195550142,yes\n9195550143,no\n"))
    contact = Contact.objects.for_org(acme).get(phone=PHONE)
    assert contact.opted_out
    row = ConsentRecord.objects.get(organization=acme)
    assert (row.contact_id, row.channel, row.opted_in, row.source) == (contact.pk, None, False, "import")
    assert row.evidence == {"import_id": job.pk}


def test_the_ledger_survives_the_trash(api, acme):
    contact = make_contact(acme, phone=PHONE)
    contact_opt_out(contact=contact, actor=ACTOR)
    api.delete(f"{URL}/{contact.pk}")
    assert len(api.get(f"{URL}/{contact.pk}/consent").json()["results"]) == 1


# --- suppression list ----------------------------------------------------------------------------
def test_suppressions_list_entries_without_the_hash(api, acme):
    contact = make_contact(acme, phone=PHONE, email="bob@example.com")
    contact_opt_out(contact=contact, actor=ACTOR)
    purge(contact)
    body = api.get("/api/v1/suppressions").json()
    assert {r["kind"] for r in body["results"]} == {"phone", "email"}
    assert all(set(r) == {"id", "kind", "scope", "since", "source", "active", "lifted_at", "lift_reason"}
               for r in body["results"])
    assert value_hash("phone", PHONE) not in str(body)
    assert api.get("/api/v1/suppressions?active=false").json()["results"] == []


def test_check_answers_for_live_trashed_and_suppressed_values(read_api, acme):
    live = make_contact(acme, phone="+19195550101")
    contact_opt_out(contact=live, actor=ACTOR, channel="whatsapp")
    trashed = make_contact(acme, phone="+19195550102")
    contact_opt_out(contact=trashed, actor=ACTOR)
    contact_trash(contact=trashed, actor=ACTOR)
    gone = make_contact(acme, email="Gone@Example.com")
    contact_opt_out(contact=gone, actor=ACTOR)
    purge(gone)
    make_contact(acme, phone="+19195550104")

    def check(**body):
        response = read_api.post("/api/v1/suppressions/check", body, format="json")
        assert response.status_code == 200, response.content
        return response.json()

    assert check(phone="(919) 555-0101") == {"suppressed": True, "scope": ["whatsapp"]}
    assert check(phone="919.555.0102") == {"suppressed": True, "scope": "all"}
    assert check(email="GONE@example.COM") == {"suppressed": True, "scope": "all"}
    assert check(phone="+1 919 555 0104") == {"suppressed": False, "scope": None}
    assert check(phone="+1 919 555 0199") == {"suppressed": False, "scope": None}
    assert read_api.post("/api/v1/suppressions/check", {"phone": "12"}, format="json").status_code == 400
    assert read_api.post("/api/v1/suppressions/check", {}, format="json").status_code == 400
    assert read_api.post("/api/v1/suppressions/check", {"email": "nope"}, format="json").status_code == 400


def test_staff_lift_an_entry_with_a_kept_reason(client, alice, acme, api):
    contact = make_contact(acme, phone=PHONE)
    contact_opt_out(contact=contact, actor=ACTOR)
    purge(contact)
    entry = Suppression.objects.for_org(acme).get()
    url = reverse("admin:contacts_suppression_change", args=[entry.pk])
    client.force_login(alice)
    page = client.post(url, {"lift_reason": "  "})
    assert page.status_code == 200 and page.context["adminform"].form.errors
    assert Suppression.objects.get(pk=entry.pk).lifted_at is None
    client.post(url, {"lift_reason": "Signed consent form, ticket 42"})
    entry.refresh_from_db()
    assert entry.lifted_at is not None and entry.lifted_by == alice and "ticket 42" in entry.lift_reason
    assert api.post(URL, {"phone": PHONE}, format="json").json()["opted_out"] is False
    assert Suppression.objects.filter(pk=entry.pk).exists()  # lifted, never deleted


# --- inbound keywords ----------------------------------------------------------------------------
@pytest.mark.parametrize("body", ["STOP", "stop", "  Stop!! ", "unsubscribe.", "Stop all", "QUIT", "optout"])
def test_opt_out_keywords_opt_out_of_the_channel(api, acme, body):
    contact = make_contact(acme, phone=PHONE)
    result = inbound(api, body, phone="(919) 555-0142", message_id="m1")
    assert result == {"contact_id": str(contact.pk), "action": "opted_out", "channel": "sms",
                      "reply": result["reply"]}
    assert "unsubscribed" in result["reply"]
    contact.refresh_from_db()
    assert contact.opted_out is False and contact.preferences.get(channel="sms").opted_in is False
    row = ConsentRecord.objects.get(contact=contact)
    assert row.source == "keyword" and row.evidence["message_id"] == "m1" and row.evidence["body"] == body
    event = ContactEvent.objects.get(contact=contact, kind="message_received")
    assert event.data["body"] == body


def test_an_unknown_sender_saying_stop_becomes_an_opted_out_contact(api, acme):
    result = inbound(api, "STOP", channel="whatsapp")
    contact = Contact.objects.for_org(acme).get(phone=PHONE)
    assert result["contact_id"] == str(contact.pk) and result["channel"] == "whatsapp"
    assert contact.preferences.get(channel="whatsapp").opted_in is False
    assert ContactEvent.objects.filter(contact=contact, kind="message_received").count() == 1


def test_an_unknown_sender_saying_anything_else_creates_nobody(api, acme):
    assert inbound(api, "hello there")["action"] == "none"
    assert inbound(api, "HELP") == {"contact_id": None, "action": "help", "channel": "sms",
                                    "reply": "Reply STOP to unsubscribe, START to resubscribe."}
    assert not Contact.objects.exists()


def test_stop_then_start_opts_back_in(api, acme):
    contact = make_contact(acme, phone=PHONE)
    inbound(api, "STOP")
    assert inbound(api, "start")["action"] == "opted_in"
    contact.refresh_from_db()
    assert contact.preferences.get(channel="sms").opted_in is True
    assert [r.opted_in for r in ConsentRecord.objects.filter(contact=contact)] == [True, False]


def test_stopall_then_start_lifts_the_keyword_global_opt_out(api, acme):
    contact = make_contact(acme, phone=PHONE)
    assert inbound(api, "STOPALL") ["channel"] is None
    contact.refresh_from_db()
    assert contact.opted_out is True and contact.opt_out_source == "keyword"
    inbound(api, "UNSTOP")
    contact.refresh_from_db()
    assert contact.opted_out is False


def test_start_never_lifts_a_global_opt_out_that_the_api_set(api, acme):
    contact = make_contact(acme, phone=PHONE)
    api.post(f"{URL}/opt-out", {"phone": PHONE}, format="json")
    inbound(api, "START")
    contact.refresh_from_db()
    assert contact.opted_out is True and contact.opt_out_source == "api"


def test_start_never_lifts_a_global_opt_out_that_an_import_set(api, acme):
    run_import_bytes(acme, csv_bytes("phone,opted_out\n9195550142,true\n"))
    inbound(api, "START")
    assert Contact.objects.for_org(acme).get(phone=PHONE).opted_out is True


def test_start_lifts_an_opt_out_from_the_suppression_list_and_its_entry(api, acme):
    contact = make_contact(acme, phone=PHONE)
    contact_opt_out(contact=contact, actor=ACTOR)
    purge(contact)
    fresh = api.post(URL, {"phone": PHONE}, format="json").json()
    assert fresh["opt_out_source"] == "suppression"
    inbound(api, "START")
    assert Contact.objects.get(pk=fresh["id"]).opted_out is False
    entry = Suppression.objects.for_org(acme).get(kind="phone")
    assert entry.lifted_at is not None and "START" in entry.lift_reason


def test_organizations_add_words_and_replies(api, acme, globex_write_key):
    from ..conftest import client_with_key

    KeywordSettings.objects.create(organization=acme, opt_out_words="arret, baja", reply_opted_out="Adios.")
    contact = make_contact(acme, phone=PHONE)
    result = inbound(api, "Baja")
    assert result["action"] == "opted_out" and result["reply"] == "Adios."
    assert contact.preferences.get(channel="sms").opted_in is False
    # another organization keeps the defaults
    assert inbound(client_with_key(globex_write_key), "baja", phone="+447911123456")["action"] == "none"


def test_a_message_received_activity_goes_through_the_keywords(api, acme):
    contact = make_contact(acme, phone=PHONE)
    response = api.post(f"{URL}/{contact.pk}/activity",
                        {"kind": "message_received", "data": {"body": "STOP", "provider": "x"}}, format="json")
    assert response.status_code == 201
    assert response.json()["data"]["provider"] == "x"
    assert contact.preferences.get(channel="sms").opted_in is False
    assert ConsentRecord.objects.get(contact=contact).source == "keyword"


def test_inbound_rejects_bad_input_with_a_400(api, acme):
    assert api.post("/api/v1/inbound", {"from": "nope", "body": "STOP"}, format="json").status_code == 400
    assert api.post("/api/v1/inbound", {"body": "STOP"}, format="json").status_code == 400
    assert api.post("/api/v1/inbound", {"from": PHONE}, format="json").status_code == 400
    assert api.post("/api/v1/inbound", {"from": PHONE, "body": "x", "channel": "fax"},
                    format="json").status_code == 400
    assert not Contact.objects.exists()


def test_keyword_normalization():
    assert keyword_normalize("  Stop   all!!! ") == "stop all"
    assert keyword_normalize("STOP.") == "stop"


# --- GDPR ----------------------------------------------------------------------------------------
def test_the_gdpr_export_holds_everything_about_the_contact(api, acme):
    from segments.models import ContactList
    from segments.services import list_add_members

    contact = make_contact(acme, phone=PHONE, tags=["vip"])
    contact_list = ContactList.objects.create(organization=acme, name="Newsletter")
    list_add_members(contact_list=contact_list, contact_ids=[contact.pk], actor=ACTOR)
    inbound(api, "STOP")
    body = api.get(f"{URL}/{contact.pk}/gdpr-export").json()
    assert body["contact"]["phone"] == PHONE and body["tags"] == ["vip"]
    assert [entry["name"] for entry in body["lists"]] == ["Newsletter"]
    assert body["preferences"][0]["channel"] == "sms" and body["preferences"][0]["opted_in"] is False
    assert body["consent"][0]["source"] == "keyword"
    assert {"created", "message_received", "opted_out"} <= {e["kind"] for e in body["timeline"]}


def test_keyword_settings_are_edited_in_the_admin_one_row_per_organization(client, alice, acme, api):
    client.force_login(alice)
    add = reverse("admin:contacts_keywordsettings_add")
    response = client.post(add, {"opt_in_words": "volver", "reply_opted_in": "Bienvenido."})
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    settings_row = KeywordSettings.objects.get(organization=acme)
    assert client.get(add)["Location"] == reverse("admin:contacts_keywordsettings_change", args=[settings_row.pk])
    make_contact(acme, phone=PHONE)
    inbound(api, "STOP")
    assert inbound(api, "Volver!") == {"contact_id": inbound(api, "hi")["contact_id"], "action": "opted_in",
                                       "channel": "sms", "reply": "Bienvenido."}
