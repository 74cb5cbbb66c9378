"""Lists over the API: CRUD, members in bulk, timeline events, the list/not_list filters, tenancy."""

from __future__ import annotations

import uuid

import pytest

from contacts.models import Contact, ContactEvent
from segments.models import ContactList, ListMembership

from ..factories import make_contact

pytestmark = pytest.mark.django_db
URL = "/api/v1/lists"


def error(response, status=400):
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response.json()["error"]


@pytest.fixture
def march(acme):
    return ContactList.objects.create(organization=acme, name="March")


def members(contact_list):
    return set(ListMembership.objects.filter(list=contact_list).values_list("contact_id", flat=True))


def test_it_creates_a_list_and_lists_it_with_its_member_count(api, acme):
    response = api.post(URL, {"name": " March ", "description": "Spring push"}, format="json")
    assert response.status_code == 201, response.content
    created = ContactList.objects.get(pk=response.json()["id"])
    assert (created.organization, created.name, created.description) == (acme, "March", "Spring push")
    assert response.json()["member_count"] == 0
    a, b = make_contact(acme), make_contact(acme)
    api.post(f"{URL}/{created.pk}/members", {"contact_ids": [str(a.pk), str(b.pk)]}, format="json")
    [item] = api.get(URL).json()["results"]
    assert (item["name"], item["member_count"]) == ("March", 2)
    assert api.get(f"{URL}/{created.pk}").json()["member_count"] == 2


def test_a_duplicate_list_name_is_a_400_naming_it(api, march):
    assert error(api.post(URL, {"name": "March"}, format="json"))["fields"]["name"] == [
        "A list named 'March' already exists."]


def test_adding_members_is_set_based_and_writes_one_event_per_contact_added(api, acme, march):
    contacts = [make_contact(acme) for _ in range(3)]
    march.memberships.create(contact=contacts[0])
    ids = [str(c.pk) for c in contacts] + [str(contacts[1].pk)]  # a duplicate in the call, too
    response = api.post(f"{URL}/{march.pk}/members", {"contact_ids": ids}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"added": 2, "already_members": 1}
    assert members(march) == {c.pk for c in contacts}
    events = ContactEvent.objects.filter(kind="list_added")
    assert sorted(e.contact_id for e in events) == sorted([contacts[1].pk, contacts[2].pk])
    assert all(e.data == {"list_id": march.pk, "list": "March"} and e.actor_api_key_id for e in events)


def test_adding_300_contacts_costs_the_queries_of_adding_3(api, acme, march, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.API_THROTTLE_RATE = None
    few = [str(make_contact(acme).pk) for _ in range(3)]
    many = [str(make_contact(acme).pk) for _ in range(300)]
    api.get(URL)  # the key's last_used_at write

    def queries(ids):
        with CaptureQueriesContext(connection) as captured:
            assert api.post(f"{URL}/{march.pk}/members", {"contact_ids": ids}, format="json").status_code == 200
        sqls = [q["sql"] for q in captured.captured_queries]
        return [q for q in sqls if not q.startswith("INSERT")], [q for q in sqls if q.startswith("INSERT")]

    few_other, few_inserts = queries(few)
    many_other, many_inserts = queries(many)
    assert len(many_other) == len(few_other)
    assert len(few_inserts) == 2  # memberships, events
    # One INSERT per table on PostgreSQL; SQLite splits a bulk insert at its 999-parameter limit.
    assert len(many_inserts) == (2 if connection.vendor == "postgresql" else 4)
    assert len(members(march)) == 303


def test_unknown_and_foreign_ids_are_a_400_naming_them_and_nothing_is_added(api, acme, globex, march):
    mine, theirs, nobody = make_contact(acme), make_contact(globex), uuid.uuid4()
    err = error(api.post(f"{URL}/{march.pk}/members", {"contact_ids": [str(mine.pk), str(theirs.pk), str(nobody)]},
                         format="json"))
    [message] = err["fields"]["contact_ids"]
    assert str(theirs.pk) in message and str(nobody) in message and str(mine.pk) not in message
    assert members(march) == set()
    assert not ContactEvent.objects.filter(kind="list_added").exists()


@pytest.mark.parametrize("body, message", [
    ({"contact_ids": ["not-a-uuid"]}, "Not contact ids: not-a-uuid."),
    ({"contact_ids": "abc"}, "Expected a list of contact ids"),
    ({}, "Expected {\"contact_ids\""),
    ({"contact_ids": [str(uuid.uuid4()) for _ in range(1001)]}, "At most 1000 contact_ids per call (got 1001)."),
])
def test_a_bad_body_is_a_400_saying_why(api, march, body, message):
    assert message in error(api.post(f"{URL}/{march.pk}/members", body, format="json"))["fields"]["contact_ids"][0]


def test_removing_members_keeps_the_contacts_and_writes_events(api, acme, march):
    a, b, c = make_contact(acme), make_contact(acme), make_contact(acme)
    march.memberships.create(contact=a)
    march.memberships.create(contact=b)
    response = api.post(f"{URL}/{march.pk}/members/remove", {"contact_ids": [str(a.pk), str(c.pk)]}, format="json")
    assert response.json() == {"removed": 1, "not_members": 1}
    assert members(march) == {b.pk}
    assert Contact.objects.filter(pk__in=[a.pk, c.pk]).count() == 2
    assert list(ContactEvent.objects.filter(kind="list_removed").values_list("contact_id", flat=True)) == [a.pk]


def test_members_are_paged_newest_first_with_added_at_and_the_contact_representation(api, acme, march):
    made = [make_contact(acme, tags=["vip"]) for _ in range(5)]
    for contact in made:
        api.post(f"{URL}/{march.pk}/members", {"contact_ids": [str(contact.pk)]}, format="json")
    seen, cursor = [], None
    while True:
        page = api.get(f"{URL}/{march.pk}/members?limit=2" + (f"&cursor={cursor}" if cursor else "")).json()
        seen += page["results"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [r["id"] for r in seen] == [str(c.pk) for c in reversed(made)]
    assert seen[0]["tags"] == ["vip"] and seen[0]["added_at"] and "preferences" in seen[0]


def test_listing_members_costs_a_constant_number_of_queries(api, acme, march, django_assert_num_queries):
    for i in range(30):
        march.memberships.create(contact=make_contact(acme, tags=[f"t{i % 3}"], preferences={"sms": False}))
    api.get(URL)
    # list + page (memberships joined to contacts) + one UNION of tags, preferences and lists
    with django_assert_num_queries(3):
        assert len(api.get(f"{URL}/{march.pk}/members?limit=30").json()["results"]) == 30
    with django_assert_num_queries(3):
        assert len(api.get(f"{URL}/{march.pk}/members?limit=3").json()["results"]) == 3


def test_deleting_a_list_never_deletes_its_contacts(api, acme, march):
    contact = make_contact(acme)
    march.memberships.create(contact=contact)
    assert api.delete(f"{URL}/{march.pk}").status_code == 204
    assert not ContactList.objects.filter(pk=march.pk).exists()
    assert not ListMembership.objects.exists()
    assert Contact.objects.filter(pk=contact.pk).exists()


def test_the_contacts_list_and_not_list_filters(api, acme, march):
    other = ContactList.objects.create(organization=acme, name="April")
    a, b, c = make_contact(acme), make_contact(acme), make_contact(acme)
    march.memberships.create(contact=a)
    other.memberships.create(contact=b)

    def ids(query):
        response = api.get(f"/api/v1/contacts?{query}")
        assert response.status_code == 200, response.content
        return {r["id"] for r in response.json()["results"]}

    assert ids(f"list={march.pk}") == {str(a.pk)}
    assert ids(f"list={march.pk},{other.pk}") == {str(a.pk), str(b.pk)}
    assert ids(f"not_list={march.pk}") == {str(b.pk), str(c.pk)}
    assert ids(f"list={march.pk}&not_list={other.pk}") == {str(a.pk)}
    assert api.get(f"/api/v1/contacts/count?not_list={march.pk},{other.pk}").json() == {"count": 1}


def test_a_list_filter_with_an_unknown_or_foreign_id_is_a_404_naming_it(api, mallory_api, acme, march):
    assert error(api.get(f"/api/v1/contacts?list={march.pk + 1000}"), 404)["message"] == (
        f"No list with the id {march.pk + 1000}.")
    assert error(mallory_api.get(f"/api/v1/contacts?not_list={march.pk}"), 404)["code"] == "not_found"
    assert error(api.get("/api/v1/contacts?list=abc"))["fields"]["list"] == ["'abc' is not a list id."]


def test_mallory_cannot_add_her_contacts_to_acmes_list_nor_acmes_to_hers(mallory_api, acme, globex, march):
    hers = ContactList.objects.create(organization=globex, name="Hers")
    acmes = make_contact(acme)
    assert error(mallory_api.post(f"{URL}/{march.pk}/members", {"contact_ids": [str(make_contact(globex).pk)]},
                                  format="json"), 404)
    assert str(acmes.pk) in error(mallory_api.post(f"{URL}/{hers.pk}/members", {"contact_ids": [str(acmes.pk)]},
                                                   format="json"))["message"]
    assert ListMembership.objects.count() == 0
