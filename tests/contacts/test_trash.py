"""Delete means trash; consent survives delete, re-create, purge and erase (issue 10)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from contacts.models import ConsentRecord, Contact, ContactEvent, ContactTombstone, Suppression
from contacts.services import Actor, contact_opt_out, contact_set_preferences
from contacts.trash import contact_trash, contacts_purge

from ..factories import make_contact
from ..imports.helpers import csv_bytes, run_import_bytes

pytestmark = pytest.mark.django_db
URL = "/api/v1/contacts"
PHONE = "+19195550142"
ACTOR = Actor(label="test", source="api")


@pytest.fixture
def bob_opted_out(acme):
    contact = make_contact(acme, phone=PHONE, email="bob@example.com", first_name="Bob", tags=["vip"])
    contact_opt_out(contact=contact, actor=ACTOR)
    return contact


def trash(contact):
    contact_trash(contact=contact, actor=ACTOR)


def purge_now(org=None):
    return contacts_purge(org=org, before=timezone.now() + timedelta(seconds=1))


# --- invisible everywhere ------------------------------------------------------------------------
def test_a_trashed_contact_is_invisible_to_every_read(api, acme, bob_opted_out):
    from segments.models import ContactList, Segment
    from segments.services import list_add_members

    contact_list = ContactList.objects.create(organization=acme, name="L")
    list_add_members(contact_list=contact_list, contact_ids=[bob_opted_out.pk], actor=ACTOR)
    segment = Segment.objects.create(organization=acme, name="vips",
                                     rules={"field": "tags", "operator": "contains_any", "value": ["vip"]})
    make_contact(acme, phone="+19195550999", first_name="Other")
    assert api.delete(f"{URL}/{bob_opted_out.pk}").status_code == 204

    assert api.get(f"{URL}/{bob_opted_out.pk}").status_code == 404
    ids = {c["id"] for c in api.get(URL).json()["results"]}
    assert str(bob_opted_out.pk) not in ids and len(ids) == 1
    assert api.get(f"{URL}/count").json() == {"count": 1}
    assert api.get(f"{URL}?search=Bob").json()["results"] == []
    assert api.get(f"{URL}?tags=vip").json()["results"] == []
    assert api.get(f"{URL}/by-phone/{PHONE}").status_code == 404
    assert api.get(f"{URL}/opt-outs").json()["results"] == []
    assert api.get(f"/api/v1/lists/{contact_list.pk}/members").json()["results"] == []
    assert api.get(f"/api/v1/lists/{contact_list.pk}").json()["member_count"] == 0
    assert api.get(f"/api/v1/segments/{segment.pk}/count").json() == {"count": 0}
    export = b"".join(api.get(f"{URL}/export?format=csv").streaming_content).decode()
    assert PHONE not in export and "+19195550999" in export


def test_the_trash_lists_deleted_contacts_newest_first_with_deleted_at(api, acme):
    first, second = make_contact(acme), make_contact(acme)
    trash(first)
    trash(second)
    body = api.get(f"{URL}/trash").json()
    assert [c["id"] for c in body["results"]] == [str(second.pk), str(first.pk)]
    assert body["results"][0]["deleted_at"] and "next_cursor" in body
    page = api.get(f"{URL}/trash?limit=1").json()
    assert len(page["results"]) == 1 and page["next_cursor"]
    rest = api.get(f"{URL}/trash?limit=1&cursor={page['next_cursor']}").json()
    assert [c["id"] for c in rest["results"]] == [str(first.pk)]


def test_restore_brings_the_contact_back_intact_with_a_restored_event(api, acme, bob_opted_out):
    contact_set_preferences(contact=bob_opted_out, preferences={"email": False}, actor=ACTOR)
    trash(bob_opted_out)
    response = api.post(f"{URL}/{bob_opted_out.pk}/restore")
    assert response.status_code == 200
    body = response.json()
    assert body["tags"] == ["vip"] and body["opted_out"] is True and body["preferences"] == {"email": False}
    assert api.get(f"{URL}/{bob_opted_out.pk}").status_code == 200
    kinds = list(ContactEvent.objects.filter(contact=bob_opted_out).values_list("kind", flat=True))
    assert "restored" in kinds and "trashed" in kinds and "created" in kinds
    assert not ContactTombstone.objects.filter(contact_id=bob_opted_out.pk).exists()


# --- delete -> re-create keeps consent -----------------------------------------------------------
def test_delete_then_recreate_through_the_api_restores_and_stays_opted_out(api, acme, bob_opted_out):
    api.delete(f"{URL}/{bob_opted_out.pk}")
    response = api.post(URL, {"phone": "(919) 555-0142", "first_name": "Robert", "opted_out": False}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["_outcome"] == "restored" and body["id"] == str(bob_opted_out.pk)
    assert body["opted_out"] is True and body["first_name"] == "Robert" and body["tags"] == ["vip"]
    assert [c["id"] for c in api.get(f"{URL}/opt-outs").json()["results"]] == [str(bob_opted_out.pk)]


def test_delete_then_recreate_through_bulk_restores_and_stays_opted_out(api, acme, bob_opted_out):
    api.post(f"{URL}/bulk-delete", {"ids": [str(bob_opted_out.pk)]}, format="json")
    body = api.post(f"{URL}/bulk", {"contacts": [{"email": "BOB@example.com"}]}, format="json").json()
    assert body["results"][0]["outcome"] == "restored"
    assert Contact.objects.get(pk=bob_opted_out.pk).opted_out is True
    assert Contact.objects.get(pk=bob_opted_out.pk).deleted_at is None


def test_delete_then_reimport_counts_restored_in_total_and_stays_opted_out(acme, bob_opted_out):
    trash(bob_opted_out)
    job = run_import_bytes(acme, csv_bytes("phone,first_name\n9195550142,Rob\n9195550143,New\n"))
    assert job.status == "succeeded"
    assert (job.restored, job.created, job.total) == (1, 1, 2)
    bob = Contact.objects.get(pk=bob_opted_out.pk)
    assert bob.deleted_at is None and bob.opted_out is True and bob.first_name == "Rob"
    assert ContactEvent.objects.filter(contact=bob, kind="restored").exists()


def test_delete_then_recreate_in_the_admin_restores_and_stays_opted_out(client, alice, acme, bob_opted_out):
    from .test_admin import ADD, add_data

    trash(bob_opted_out)
    client.force_login(alice)
    response = client.post(ADD, add_data(client, phone="919-555-0142", first_name="Bobby"), follow=True)
    assert response.status_code == 200
    bob = Contact.objects.get(pk=bob_opted_out.pk)
    assert bob.deleted_at is None and bob.opted_out is True and bob.first_name == "Bobby"
    assert Contact.objects.for_org(acme, trashed=True).count() == 1


def test_opt_out_by_phone_of_a_trashed_contact_restores_it(api, acme):
    contact = make_contact(acme, phone=PHONE)
    trash(contact)
    response = api.post(f"{URL}/opt-out", {"phone": PHONE}, format="json")
    assert response.status_code == 200 and response.json()["id"] == str(contact.pk)
    contact.refresh_from_db()
    assert contact.deleted_at is None and contact.opted_out is True


def test_a_merge_never_opts_a_contact_back_in(api, acme, bob_opted_out):
    contact_set_preferences(contact=bob_opted_out, preferences={"sms": False}, actor=ACTOR)
    body = api.post(URL, {"phone": PHONE, "opted_out": False, "preferences": {"sms": True, "email": False}},
                    format="json").json()
    assert body["_outcome"] == "merged"
    assert body["opted_out"] is True and body["preferences"] == {"email": False, "sms": False}


def test_a_patch_cannot_take_the_phone_of_a_trashed_contact(api, acme):
    trashed, live = make_contact(acme, phone=PHONE), make_contact(acme, phone="+19195550150")
    trash(trashed)
    response = api.patch(f"{URL}/{live.pk}", {"phone": PHONE}, format="json")
    assert response.status_code == 409
    assert str(trashed.pk) in response.content.decode()


# --- purge -----------------------------------------------------------------------------------------
def test_purge_then_recreate_starts_opted_out_from_the_suppression_list(api, acme, bob_opted_out, settings):
    settings.TRASH_RETENTION_DAYS = 0
    api.delete(f"{URL}/{bob_opted_out.pk}")
    call_command("purge_trash")
    assert not Contact.objects.filter(pk=bob_opted_out.pk).exists()
    entries = Suppression.objects.for_org(acme)
    assert {(e.kind, e.scope, e.source) for e in entries} == {("phone", "all", "purge"), ("email", "all", "purge")}
    assert PHONE not in str(list(entries.values()))  # only hashes are kept
    # the ledger survives, detached, against the hashes
    rows = ConsentRecord.objects.filter(organization=acme, contact__isnull=True)
    assert rows.count() == 1 and set(rows[0].subject_hashes) == {e.value_hash for e in entries}

    response = api.post(URL, {"phone": "919 555 0142", "first_name": "Bob"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["opted_out"] is True and body["opt_out_source"] == "suppression"
    new = Contact.objects.get(pk=body["id"])
    assert ContactEvent.objects.filter(contact=new, kind="suppressed").exists()
    assert ConsentRecord.objects.filter(contact=new, source="suppression", opted_in=False).exists()


def test_purge_then_reimport_starts_opted_out_from_the_suppression_list(acme, bob_opted_out):
    trash(bob_opted_out)
    assert purge_now() == 1
    job = run_import_bytes(acme, csv_bytes("email,first_name\nbob@EXAMPLE.com,Bob\nann@example.com,Ann\n"))
    assert job.created == 2
    bob = Contact.objects.for_org(acme).get(email_key="bob@example.com")
    ann = Contact.objects.for_org(acme).get(email_key="ann@example.com")
    assert bob.opted_out is True and bob.opt_out_source == "suppression"
    assert ann.opted_out is False
    assert ConsentRecord.objects.filter(contact=bob, source="suppression").count() == 1
    assert ContactEvent.objects.filter(contact=bob, kind="suppressed").exists()


def test_a_channel_opt_out_is_suppressed_on_that_channel_only(api, acme):
    contact = make_contact(acme, phone=PHONE)
    contact_set_preferences(contact=contact, preferences={"sms": False}, actor=ACTOR)
    trash(contact)
    purge_now()
    assert list(Suppression.objects.for_org(acme).values_list("scope", flat=True)) == [["sms"]]
    body = api.post(URL, {"phone": PHONE}, format="json").json()
    assert body["opted_out"] is False and body["preferences"] == {"sms": False}
    job = run_import_bytes(acme, csv_bytes("phone\n9195550142\n"))
    assert job.unchanged == 1  # the same contact: matched, not created again


def test_a_purged_contact_who_never_opted_out_leaves_no_suppression(acme):
    contact = make_contact(acme, phone=PHONE)
    trash(contact)
    purge_now()
    assert not Suppression.objects.exists()
    assert ContactTombstone.objects.get(contact_id=contact.pk).purged_at is not None


def test_purge_keeps_contacts_younger_than_the_retention(acme, settings):
    settings.TRASH_RETENTION_DAYS = 30
    contact = make_contact(acme)
    trash(contact)
    assert contacts_purge() == 0
    Contact.objects.filter(pk=contact.pk).update(deleted_at=timezone.now() - timedelta(days=31))
    assert contacts_purge() == 1
    assert not Contact.objects.filter(pk=contact.pk).exists()


def test_delete_permanent_deletes_at_once_and_suppresses(api, acme, bob_opted_out):
    assert api.delete(f"{URL}/{bob_opted_out.pk}?permanent=true").status_code == 204
    assert not Contact.objects.filter(pk=bob_opted_out.pk).exists()
    assert Suppression.objects.for_org(acme).count() == 2
    assert api.post(URL, {"phone": PHONE}, format="json").json()["opted_out"] is True


def test_the_deleted_feed_lists_trashed_and_purged_ids_since_a_time(api, acme):
    old, purged, recent = make_contact(acme), make_contact(acme), make_contact(acme)
    trash(old)
    ContactTombstone.objects.filter(contact_id=old.pk).update(changed_at=timezone.now() - timedelta(days=2),
                                                              deleted_at=timezone.now() - timedelta(days=2))
    trash(purged)
    purge_now()  # purges old and purged: both tombstones are now "changed" now
    trash(recent)
    body = api.get(f"{URL}/deleted").json()
    by_id = {row["id"]: row for row in body["results"]}
    assert set(by_id) == {str(old.pk), str(purged.pk), str(recent.pk)}
    assert by_id[str(purged.pk)]["purged"] is True and by_id[str(recent.pk)]["purged"] is False
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert len(api.get(f"{URL}/deleted", {"since": since}).json()["results"]) == 3
    later = api.get(f"{URL}/deleted", {"since": (timezone.now() + timedelta(hours=1)).isoformat()}).json()
    assert later["results"] == []
    assert api.get(f"{URL}/deleted?since=yesterday").status_code == 400
    assert api.get(f"{URL}/deleted?since=2026-13-45T00:00:00Z").status_code == 400
    assert api.get(f"{URL}/deleted?since=2026-01-01T00:00:00").status_code == 400  # no time zone


# --- erase ---------------------------------------------------------------------------------------
def test_erase_removes_the_personal_data_and_recreate_starts_opted_out(api, acme):
    contact = make_contact(acme, phone=PHONE, email="eve@example.com")
    api.post("/api/v1/inbound", {"from": PHONE, "body": "STOP"}, format="json")
    assert api.post(f"{URL}/{contact.pk}/erase").status_code == 204
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert not ContactEvent.objects.filter(contact_id=contact.pk).exists()
    rows = ConsentRecord.objects.filter(organization=acme)
    assert rows.count() == 1 and rows[0].contact_id is None and "body" not in rows[0].evidence
    assert {e.source for e in Suppression.objects.for_org(acme)} == {"erase"}
    # never opted out globally: the erase still suppresses every channel
    fresh = make_contact(acme, email="eve@example.com")
    assert fresh.opted_out is False and fresh.preferences.get().channel == "sms"
    body = api.post(URL, {"phone": PHONE}, format="json").json()
    assert body["preferences"] == {"sms": False}


def test_erase_of_a_never_opted_out_contact_suppresses_everything(api, acme):
    contact = make_contact(acme, phone=PHONE)
    api.post(f"{URL}/{contact.pk}/erase")
    assert api.post(URL, {"phone": PHONE}, format="json").json()["opted_out"] is True


# --- admin ---------------------------------------------------------------------------------------
def test_the_admin_trash_restores_and_only_org_admins_purge(client, alice, bob, acme, bob_opted_out):
    changelist = reverse("admin:contacts_trashedcontact_changelist")
    trash(bob_opted_out)
    client.force_login(bob)
    page = client.get(changelist)
    assert page.status_code == 200 and bob_opted_out.pk in {c.pk for c in page.context["cl"].result_list}
    assert "purge_contacts" not in page.context["action_form"].fields["action"].choices.__repr__()
    client.post(changelist, {"action": "purge_contacts", "_selected_action": [bob_opted_out.pk], "post": "yes"})
    assert Contact.objects.filter(pk=bob_opted_out.pk).exists()

    client.force_login(alice)
    client.post(changelist, {"action": "restore_contacts", "_selected_action": [bob_opted_out.pk]})
    assert Contact.objects.get(pk=bob_opted_out.pk).deleted_at is None
    trash(bob_opted_out)
    client.post(changelist, {"action": "purge_contacts", "_selected_action": [bob_opted_out.pk], "post": "yes"})
    assert not Contact.objects.filter(pk=bob_opted_out.pk).exists()
    assert Suppression.objects.for_org(acme).count() == 2


def test_the_admin_changelist_hides_the_trash_and_erase_is_for_admins(client, alice, bob, acme):
    live, gone = make_contact(acme), make_contact(acme)
    trash(gone)
    changelist = reverse("admin:contacts_contact_changelist")
    client.force_login(bob)
    page = client.get(changelist)
    assert {c.pk for c in page.context["cl"].result_list} == {live.pk}
    client.post(changelist, {"action": "erase_contacts", "_selected_action": [live.pk], "post": "yes"})
    assert Contact.objects.filter(pk=live.pk).exists()
    client.force_login(alice)
    client.post(changelist, {"action": "erase_contacts", "_selected_action": [live.pk], "post": "yes"})
    assert not Contact.objects.filter(pk=live.pk).exists()
    assert Suppression.objects.for_org(acme).filter(source="erase").count() == 1


def test_the_contact_page_shows_the_ledger_and_the_suppression_entries(client, alice, acme, bob_opted_out):
    trash(bob_opted_out)
    purge_now()
    fresh = make_contact(acme, phone=PHONE)
    client.force_login(alice)
    page = client.get(reverse("admin:contacts_contact_change", args=[fresh.pk])).content.decode()
    assert "consent ledger" in page.lower() and "suppression list" in page.lower()
    assert "Purged from the trash" in page


def test_purge_trash_schedules_itself_through_rqs_scheduler_when_redis_is_set(settings, acme):
    """With Redis (CI's PostgreSQL + Redis pass): one scheduled job, however often it is scheduled.
    Without: --schedule refuses, pointing at cron."""
    from django.core.management.base import CommandError

    from contacts.trash import PURGE_JOB_ID, purge_trash_job

    if not settings.REDIS_URL:
        with pytest.raises(CommandError, match="cron"):
            call_command("purge_trash", "--schedule")
        assert purge_trash_job(reschedule=True) == 0  # runs; nothing to reschedule without Redis
        return
    from rq.registry import ScheduledJobRegistry

    from contacts_crm.jobs import get_queue

    queue = get_queue()
    registry = ScheduledJobRegistry(queue=queue)
    call_command("purge_trash", "--schedule")
    call_command("purge_trash", "--schedule")
    scheduled = [job_id for job_id in registry.get_job_ids() if job_id.startswith(PURGE_JOB_ID)]
    assert len(scheduled) == 1
    assert queue.fetch_job(scheduled[0]).func is purge_trash_job
    registry.remove(scheduled[0], delete_job=True)


def test_bulk_delete_trashes_in_batches_and_skips_the_trash(api, acme, monkeypatch):
    import contacts.trash

    monkeypatch.setattr(contacts.trash, "PURGE_BATCH", 2)
    contacts = [make_contact(acme) for _ in range(5)]
    trash(contacts[0])
    body = api.post(f"{URL}/bulk-delete", {"not_ids": [], "confirm": True}, format="json").json()
    assert body == {"deleted": 4}
    assert not Contact.objects.live().exists()
    assert ContactTombstone.objects.filter(organization=acme).count() == 5
    assert ContactEvent.objects.filter(kind="trashed").count() == 5


def test_delete_permanent_purges_a_contact_already_in_the_trash(api, acme, bob_opted_out):
    api.delete(f"{URL}/{bob_opted_out.pk}")
    assert api.delete(f"{URL}/{bob_opted_out.pk}?permanent=true").status_code == 204
    assert not Contact.objects.filter(pk=bob_opted_out.pk).exists()
    tombstone = ContactTombstone.objects.get(contact_id=bob_opted_out.pk)
    assert tombstone.purged_at is not None and tombstone.deleted_at <= tombstone.purged_at
    assert api.delete(f"{URL}/{bob_opted_out.pk}?permanent=true").status_code == 404


def test_a_read_key_cannot_restore_erase_or_purge(read_api, acme, bob_opted_out):
    trash(bob_opted_out)
    assert read_api.post(f"{URL}/{bob_opted_out.pk}/restore").status_code == 403
    assert read_api.post(f"{URL}/{bob_opted_out.pk}/erase").status_code == 403
    assert read_api.delete(f"{URL}/{bob_opted_out.pk}?permanent=true").status_code == 403
    assert Contact.objects.get(pk=bob_opted_out.pk).deleted_at is not None


def test_a_malformed_permanent_or_an_empty_since_is_a_400_not_a_guess(api, acme):
    """Found by schemathesis: `?permanent=null` trashed the contact, `?since=` listed everything."""
    contact = make_contact(acme, phone=PHONE)
    assert api.delete(f"{URL}/{contact.pk}?permanent=null").status_code == 400
    assert Contact.objects.for_org(acme).filter(pk=contact.pk).exists()
    assert api.get(f"{URL}/deleted?since=").status_code == 400
