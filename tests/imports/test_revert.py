"""Import undo (issue 10, item 6): what an import did comes back out, except what changed since,
and never an opt-out."""

from __future__ import annotations

from contacts.models import Contact, ContactEvent
from contacts.services import Actor, contact_update
from segments.models import ContactList, ListMembership

from ..factories import make_contact
from .helpers import csv_bytes, drain_queue, run_import_bytes

ACTOR = Actor(label="staff", source="admin")


def revert(api, job):
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):  # the job is queued on commit
        response = api.post(f"/api/v1/imports/{job.pk}/revert")
    assert response.status_code == 202, response.content
    drain_queue()
    job.refresh_from_db()
    return job


def test_a_reverted_import_trashes_what_it_created_and_puts_back_what_it_changed(api, acme):
    ann = make_contact(acme, phone="+19195550101", first_name="Ann", city="Durham")
    job = run_import_bytes(acme, csv_bytes("phone,first_name,city,tags\n"
                                           "9195550101,Anne,Durham,vip\n9195550102,Bo,Cary,new\n"))
    assert (job.created, job.updated) == (1, 1)
    job = revert(api, job)
    assert job.revert_counters == {"reverted": 2, "kept": 0, "skipped": 0} and job.reverted_at
    ann.refresh_from_db()
    assert (ann.first_name, ann.city, [t.name for t in ann.tags.all()]) == ("Ann", "Durham", [])
    assert not Contact.objects.for_org(acme).filter(phone="+19195550102").exists()
    assert Contact.objects.for_org(acme, trashed=True).filter(phone="+19195550102").exists()  # restorable
    body = api.get(f"/api/v1/imports/{job.pk}").json()
    assert body["revert"] == {"status": "done", "reverted": 2, "kept": 0, "skipped": 0}
    assert api.post(f"/api/v1/imports/{job.pk}/revert").status_code == 409  # already reverted


def test_a_revert_keeps_what_changed_after_the_import(api, acme):
    ann = make_contact(acme, phone="+19195550101", first_name="Ann", city="Durham")
    job = run_import_bytes(acme, csv_bytes("phone,first_name,city\n9195550101,Anne,Raleigh\n9195550102,Bo,\n"))
    ann.refresh_from_db()
    contact_update(contact=ann, data={"city": "Apex"}, actor=ACTOR)  # a person edited it since
    bo = Contact.objects.get(phone="+19195550102")
    contact_update(contact=bo, data={"first_name": "Bob"}, actor=ACTOR)
    job = revert(api, job)
    ann.refresh_from_db()
    assert (ann.first_name, ann.city) == ("Ann", "Apex")  # the untouched field back, the edited one kept
    assert Contact.objects.for_org(acme).filter(pk=bo.pk).exists()  # changed since: kept
    assert job.revert_counters == {"reverted": 1, "kept": 1, "skipped": 0}


def test_a_revert_never_reverts_an_opt_out(api, acme):
    ann = make_contact(acme, phone="+19195550101", first_name="Ann")
    job = run_import_bytes(acme, csv_bytes("phone,first_name,opted_out\n9195550101,Anne,yes\n"))
    ann.refresh_from_db()
    assert ann.opted_out is True
    revert(api, job)
    ann.refresh_from_db()
    assert ann.first_name == "Ann" and ann.opted_out is True and ann.opt_out_source == "import"


def test_a_revert_removes_the_list_memberships_the_import_added(api, acme):
    old = make_contact(acme, phone="+19195550101")
    contact_list = ContactList.objects.create(organization=acme, name="April")
    ListMembership.objects.create(list=contact_list, contact=old)  # there before the import
    job = run_import_bytes(acme, csv_bytes("phone\n9195550101\n9195550103\n"), contact_list=contact_list)
    assert ListMembership.objects.filter(list=contact_list).count() == 2
    revert(api, job)
    assert list(ListMembership.objects.filter(list=contact_list).values_list("contact_id", flat=True)) == [old.pk]


def test_an_unfinished_or_dry_run_import_cannot_be_reverted(api, acme):
    dry = run_import_bytes(acme, csv_bytes("phone\n9195550101\n"), dry_run=True)
    assert api.post(f"/api/v1/imports/{dry.pk}/revert").status_code == 409
    from imports.models import ImportJob

    running = ImportJob.objects.create(organization=acme, file_name="x.csv", format="csv", status="running")
    response = api.post(f"/api/v1/imports/{running.pk}/revert")
    assert response.status_code == 409 and "finished" in response.json()["error"]["message"]
    assert not ContactEvent.objects.filter(actor_label__startswith="undo").exists()


def test_staff_revert_an_import_from_the_admin_and_mallory_cannot(client, alice, mallory, acme, globex):
    from django.test import TestCase
    from django.urls import reverse

    job = run_import_bytes(acme, csv_bytes("phone\n9195550109\n"))
    url = reverse("admin:imports_importjob_changelist")
    client.force_login(mallory)
    client.post(url, {"action": "revert_imports", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.revert_status == ""  # not hers: the action never saw it
    client.force_login(alice)
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(url, {"action": "revert_imports", "_selected_action": [job.pk]})
    drain_queue()
    job.refresh_from_db()
    assert job.revert_counters == {"reverted": 1, "kept": 0, "skipped": 0}
