"""Every API page shape's query count, pinned (issue 14): the key comes from the "api" cache, the
throttle's state lives outside the database, and the tags, preferences and lists of a page are
one UNION whatever its size. A page that gains a query fails here and prints every query."""

from __future__ import annotations

import pytest
from django.db import connection

from contacts.services import Actor
from contacts.trash import contact_trash
from segments.models import ContactList, Segment

from .factories import make_contact

pytestmark = pytest.mark.django_db

# PostgreSQL resolves a tags filter's names to ids first (one query); SQLite joins them in.
TAG_IDS = 1 if connection.vendor == "postgresql" else 0

# shape: (url, queries); {list} and {segment} are filled in, {cursor} is the first page's next_cursor.
PAGES = {
    "organization": ("/api/v1/organization", 0),
    "first page": ("/api/v1/contacts?limit=5", 2),
    "cursor page": ("/api/v1/contacts?limit=5&cursor={cursor}", 2),
    "filtered": ("/api/v1/contacts?limit=5&state=NC", 2),
    "tags AND": ("/api/v1/contacts?limit=5&tags=vip,news&tags_logic=and", 2 + TAG_IDS),
    "tags OR": ("/api/v1/contacts?limit=5&tags=vip,news", 2 + TAG_IDS),
    "search": ("/api/v1/contacts?limit=5&search=person", 2),
    "opt-outs": ("/api/v1/contacts/opt-outs?limit=5", 2),
    "trash": ("/api/v1/contacts/trash?limit=5", 2),
    "list members": ("/api/v1/lists/{list}/members?limit=5", 3),  # the list, its page, the UNION
    "segment members": ("/api/v1/segments/{segment}/members?limit=5", 3 + TAG_IDS),
    "suppressions": ("/api/v1/suppressions?limit=5", 1),
    "tags": ("/api/v1/tags?limit=5", 2),  # the page, then every count in one statement
}


@pytest.fixture
def book(acme):
    march = ContactList.objects.create(organization=acme, name="March")
    for i in range(12):
        contact = make_contact(acme, state="NC", tags=["vip", "news"][: 1 + i % 2], preferences={"sms": i % 3 == 0},
                               opted_out=i % 4 == 0)
        march.memberships.create(contact=contact)
    for _ in range(3):
        contact_trash(contact=make_contact(acme, tags=["vip"]), actor=Actor(label="test", source="admin"))
    segment = Segment.objects.create(organization=acme, name="VIPs", rules={
        "field": "tags", "operator": "contains_any", "value": ["vip"]})
    return {"list": march.pk, "segment": segment.pk}


@pytest.mark.parametrize("shape", PAGES)
def test_each_page_shape_costs_a_fixed_number_of_queries(api, book, shape, django_assert_num_queries):
    url, queries = PAGES[shape]
    cursor = api.get("/api/v1/contacts?limit=5").json()["next_cursor"]  # also caches the key, touches it
    url = url.format(cursor=cursor, **book)
    with django_assert_num_queries(queries):
        response = api.get(url)
    assert response.status_code == 200, response.content
    body = response.json()
    if shape not in ("organization", "suppressions"):
        assert len(body["results"]) >= 1


def _detail(api, contact_id):
    response = api.get(f"/api/v1/contacts/{contact_id}")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("shape", [s for s in PAGES if s not in ("organization", "suppressions", "trash", "tags")])
def test_every_page_renders_each_contact_exactly_as_its_detail_endpoint(api, acme, alice, book, shape):
    """Pages are built from plain rows (Contact.objects.api_rows()), the detail endpoint from a
    model instance: one renderer (contacts.serializers.contact_json), the same JSON."""
    rich = make_contact(acme, state="NC", tags=["vip", "Zeta", "news"], preferences={"sms": False, "email": True},
                        opted_out=True, email="Zoë@Example.com", company="Acme", birthday="1990-02-03",
                        custom_fields={"tier": "gold", "points": 12}, secondary_phones=["+19195550199"],
                        first_name="Person", last_name="Rich")
    rich.assignee = alice
    rich.save()
    ContactList.objects.get(pk=book["list"]).memberships.create(contact=rich)
    cursor = api.get("/api/v1/contacts?limit=5").json()["next_cursor"]
    url = PAGES[shape][0].format(cursor=cursor, **book).replace("limit=5", "limit=100")
    results = api.get(url).json()["results"]
    assert results
    for item in results:
        detail = _detail(api, item["id"])
        if shape == "list members":
            assert item.pop("added_at").endswith("Z")
        assert item == detail
    if shape != "cursor page":  # the rich contact is the most recently updated: on the first page
        assert str(rich.pk) in {item["id"] for item in results}


def test_the_trash_page_renders_the_representation_and_deleted_at(api, acme, book):
    trashed = make_contact(acme, tags=["vip"], preferences={"sms": False}, custom_fields={"a": 1})
    ContactList.objects.get(pk=book["list"]).memberships.create(contact=trashed)
    expected = _detail(api, trashed.pk)
    contact_trash(contact=trashed, actor=Actor(label="test", source="admin"))
    item = next(i for i in api.get("/api/v1/contacts/trash?limit=100").json()["results"] if i["id"] == str(trashed.pk))
    deleted_at = item.pop("deleted_at")
    trashed.refresh_from_db()
    assert deleted_at.startswith(trashed.deleted_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert item == {**expected, "updated_at": item["updated_at"]}  # trashing touches updated_at
