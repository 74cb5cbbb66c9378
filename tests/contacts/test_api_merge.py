"""Issue 11: POST /contacts/{id}/merge and contacts.merging.contacts_merge."""

from __future__ import annotations

import pytest

from contacts.merging import contacts_merge
from contacts.models import ChannelPreference, Contact, ContactEvent
from contacts.services import Actor, ServiceError, contact_set_preferences

from ..factories import make_contact

pytestmark = pytest.mark.django_db
URL = "/api/v1/contacts"
ACTOR = Actor(label="test", source="admin")


def error(response, status):
    assert response.status_code == status, (response.status_code, response.content[:800])
    return response.json()["error"]


@pytest.fixture
def pair(acme):
    from segments.models import ContactList, ListMembership

    survivor = make_contact(acme, phone="+19195550401", first_name="Ann", last_name="", tags=["vip"],
                            custom_fields={"plan": "gold"}, secondary_emails=["old@example.com"])
    other = make_contact(acme, phone="+19195550402", email="ann@example.com", first_name="Annie", last_name="Lee",
                         company="Acme", tags=["news", "VIP"], custom_fields={"plan": "free", "seats": 3},
                         secondary_phones=["+19195550403"])
    newsletter = ContactList.objects.create(organization=acme, name="Newsletter")
    ListMembership.objects.create(list=newsletter, contact=other)
    return survivor, other, newsletter


def test_a_merge_folds_fields_tags_lists_custom_fields_and_removes_the_other(api, acme, pair):
    survivor, other, newsletter = pair
    response = api.post(f"{URL}/{survivor.pk}/merge", {"contact_ids": [str(other.pk)]}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["merged_ids"] == [str(other.pk)] and body["dry_run"] is False
    assert body["first_name"] == "Ann"  # the survivor's non-empty value wins
    assert (body["last_name"], body["company"], body["email"]) == ("Lee", "Acme", "ann@example.com")  # filled
    assert body["phone"] == "+19195550401"
    assert body["secondary_phones"] == ["+19195550402", "+19195550403"]
    assert body["secondary_emails"] == ["old@example.com"]
    assert body["tags"] == ["news", "vip"]
    assert body["custom_fields"] == {"plan": "gold", "seats": 3}
    assert body["lists"] == [newsletter.pk]
    assert not Contact.objects.filter(pk=other.pk).exists()
    merged = ContactEvent.objects.get(contact=survivor, kind="merged", data__has_key="snapshots")
    snapshot = merged.data["snapshots"][0]
    assert snapshot["id"] == str(other.pk) and snapshot["last_name"] == "Lee" and snapshot["tags"] == ["news", "vip"]
    assert ContactEvent.objects.filter(contact=survivor, kind="created").count() == 2  # the other's events moved


def test_consent_the_most_restrictive_wins_and_nothing_opts_in(acme):
    survivor = make_contact(acme, phone="+19195550411")
    contact_set_preferences(contact=survivor, preferences={"email": False, "sms": True}, actor=ACTOR)
    out = make_contact(acme, phone="+19195550412", opted_out=True)
    contact_set_preferences(contact=out, preferences={"sms": False, "email": True}, actor=ACTOR)
    result = contacts_merge(survivor=survivor, others=[out], actor=ACTOR)
    contact = Contact.objects.get(pk=result.survivor.pk)
    assert contact.opted_out is True and contact.opted_out_at is not None
    prefs = dict(ChannelPreference.objects.filter(contact=contact).values_list("channel", "opted_in"))
    assert prefs == {"email": False, "sms": False}


def test_an_opted_out_survivor_stays_opted_out(acme):
    survivor = make_contact(acme, phone="+19195550413", opted_out=True)
    other = make_contact(acme, phone="+19195550414")
    contacts_merge(survivor=survivor, others=[other], actor=ACTOR)
    assert Contact.objects.get(pk=survivor.pk).opted_out is True


def test_a_dry_run_answers_the_result_and_writes_nothing(api, acme, pair):
    survivor, other, _ = pair
    events = ContactEvent.objects.count()
    body = api.post(f"{URL}/{survivor.pk}/merge", {"contact_ids": [str(other.pk)], "dry_run": True},
                    format="json").json()
    assert body["dry_run"] is True and body["last_name"] == "Lee" and body["tags"] == ["news", "vip"]
    assert Contact.objects.filter(pk=other.pk).exists()
    survivor.refresh_from_db()
    assert survivor.last_name == "" and survivor.email is None
    assert ContactEvent.objects.count() == events
    assert sorted(t.name for t in survivor.tags.all()) == ["vip"]


def test_merging_refuses_itself_unknown_and_foreign_ids(api, acme, globex, pair):
    survivor, other, _ = pair
    theirs = make_contact(globex, phone="+19195550415")
    assert "itself" in error(api.post(f"{URL}/{survivor.pk}/merge", {"contact_ids": [str(survivor.pk)]},
                                      format="json"), 400)["message"]
    err = error(api.post(f"{URL}/{survivor.pk}/merge", {"contact_ids": [str(other.pk), str(theirs.pk)]},
                         format="json"), 400)
    assert str(theirs.pk) in err["message"]
    assert Contact.objects.filter(pk=other.pk).exists() and Contact.objects.filter(pk=theirs.pk).exists()
    error(api.post(f"{URL}/{survivor.pk}/merge", {"contact_ids": []}, format="json"), 400)
    error(api.post(f"{URL}/{theirs.pk}/merge", {"contact_ids": [str(other.pk)]}, format="json"), 404)


def test_a_merge_beyond_the_custom_field_limit_is_refused_whole(acme):
    from contacts.services import MAX_CUSTOM_FIELDS

    survivor = make_contact(acme, phone="+19195550416", custom_fields={f"a{i}": i for i in range(MAX_CUSTOM_FIELDS)})
    other = make_contact(acme, phone="+19195550417", custom_fields={"extra": 1})
    with pytest.raises(ServiceError, match=str(MAX_CUSTOM_FIELDS)):
        contacts_merge(survivor=survivor, others=[other], actor=ACTOR)
    assert Contact.objects.filter(pk=other.pk).exists()
    assert Contact.objects.get(pk=survivor.pk).custom_fields == survivor.custom_fields


def test_a_read_key_may_not_merge(read_api, pair):
    survivor, other, _ = pair
    error(read_api.post(f"{URL}/{survivor.pk}/merge", {"contact_ids": [str(other.pk)]}, format="json"), 403)
