"""Counts (issue 14): the shapes counted by a query of their own (one tag or any of several, not
in a list, not tagged) give the generic COUNT's answer, leave the trash out, and `?exact=` is
parsed strictly; an estimate comes only with `exact=false`, marked."""

from __future__ import annotations

import pytest
from django.db import connection

from contacts import counting
from contacts.models import Contact
from contacts.services import Actor
from contacts.trash import contact_trash
from segments.models import ContactList, ListMembership, Segment
from segments.rules import contacts_matching

from ..factories import make_contact

pytestmark = pytest.mark.django_db
ACTOR = Actor(label="test", source="admin")


@pytest.fixture
def book(acme, globex):
    people = {
        "ann": make_contact(acme, tags=["vip"]),
        "bob": make_contact(acme, tags=["VIP", "news"]),
        "cem": make_contact(acme, tags=["news"]),
        "dia": make_contact(acme),
        "eve": make_contact(acme, tags=["vip", "news"]),
    }
    make_contact(globex, tags=["vip", "news"])  # Globex's: never in Acme's counts
    contact_trash(contact=people["eve"], actor=ACTOR)  # in the trash: in no count
    listed = ContactList.objects.create(organization=acme, name="Listed")
    for name in ("ann", "cem", "eve"):
        ListMembership.objects.create(list=listed, contact=people[name])
    other = ContactList.objects.create(organization=acme, name="Other")
    for name in ("ann", "dia"):
        ListMembership.objects.create(list=other, contact=people[name])
    return people, listed, other


def count(api, query=""):
    response = api.get(f"/api/v1/contacts/count{query}")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("query, expected", [
    ("?tags=vip", 2), ("?tags=news", 2), ("?tags=vip,news", 3), ("?tags=VIP,vip", 2), ("?tags=nosuch", 0),
    ("?tags=vip,nosuch", 2), ("?tags=vip,news&tags_logic=and", 1),
])
def test_tag_counts_leave_the_trash_and_other_organizations_out(api, acme, book, query, expected):
    assert count(api, query) == {"count": expected}
    params = dict(part.split("=") for part in query[1:].split("&"))
    generic = Contact.objects.for_org(acme)
    generic = (generic.tagged_all if params.get("tags_logic") == "and" else generic.tagged_any)(
        params["tags"].split(","), org=acme)
    assert generic.count() == expected


def test_a_tag_count_follows_a_restore(api, acme, book):
    from contacts.trash import contact_restore

    contact_restore(contact=Contact.objects.get(pk=book[0]["eve"].pk), actor=ACTOR)
    assert count(api, "?tags=vip") == {"count": 3}


def rules_count(api, acme, rules):
    segment = Segment.objects.create(organization=acme, name=f"s{Segment.objects.count()}", rules=rules)
    response = api.get(f"/api/v1/segments/{segment.pk}/count")
    assert response.status_code == 200, response.content
    preview = api.post("/api/v1/segments/preview", {"rules": rules}, format="json")
    assert preview.status_code == 200, preview.content
    assert preview.json()["count"] == response.json()["count"]
    assert count(api, f"?segment={segment.pk}&state=ZZ")["count"] == response.json()["count"]
    return response.json()["count"]


def test_tag_and_list_segments_count_what_their_members_query_returns(api, acme, book):
    _, listed, other = book
    shapes = [
        {"field": "tags", "operator": "contains_any", "value": ["vip"]},
        {"field": "tags", "operator": "contains_none", "value": ["vip"]},
        {"not": {"field": "tags", "operator": "contains_any", "value": ["vip", "news"]}},
        {"field": "lists", "operator": "contains_any", "value": [listed.pk]},
        {"field": "lists", "operator": "contains_any", "value": [listed.pk, other.pk]},
        {"field": "lists", "operator": "contains_none", "value": [listed.pk]},
        {"op": "and", "rules": [{"not": {"field": "lists", "operator": "contains_none",
                                         "value": [listed.pk, other.pk]}}]},
        {"not": {"not": {"field": "lists", "operator": "contains_none", "value": [other.pk]}}},
    ]
    answers = [rules_count(api, acme, rules) for rules in shapes]
    assert answers == [contacts_matching(rules, org=acme).count() for rules in shapes]
    assert answers == [2, 2, 1, 2, 3, 2, 3, 2]


def test_a_list_of_another_organization_counts_nobody_in_a_segment(api, acme, globex, book):
    foreign = ContactList.objects.create(organization=globex, name="Globex's")
    ListMembership.objects.create(list=foreign, contact=Contact.objects.for_org(globex).get())
    segment = Segment.objects.create(organization=acme, name="foreign",
                                     rules={"field": "lists", "operator": "contains_none", "value": [foreign.pk]})
    assert api.get(f"/api/v1/segments/{segment.pk}/count").json() == {"count": 4}


def test_the_tags_list_counts_live_contacts_only(api, book):
    counts = {t["name"]: t["contact_count"] for t in api.get("/api/v1/tags").json()["results"]}
    assert counts == {"vip": 2, "news": 2}


@pytest.mark.parametrize("value", ["maybe", "", "yes", "TRUE1", "2"])
def test_a_bad_exact_is_a_400_naming_it(api, acme, book, value):
    segment = Segment.objects.create(organization=acme, name="vips",
                                     rules={"field": "tags", "operator": "contains_any", "value": ["vip"]})
    for url in ("/api/v1/contacts/count?tags=vip", f"/api/v1/segments/{segment.pk}/count"):
        response = api.get(url, {"exact": value})
        assert response.status_code == 400, (url, response.content)
        assert "exact" in response.json()["error"]["fields"]


def test_exact_true_or_a_small_count_with_exact_false_is_exact_and_says_so(api, acme, book):
    assert count(api, "?tags=vip&exact=true") == {"count": 2, "exact": True}
    assert count(api, "?tags=vip&exact=false") == {"count": 2, "exact": True}
    assert count(api, "?state=NC&exact=False") == {"count": 0, "exact": True}
    assert count(api) == {"count": 4}  # no parameter: no `exact` key, never an estimate


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the planner estimate is PostgreSQL's")
def test_exact_false_answers_the_planners_estimate_marked_when_it_is_large(api, acme, book, monkeypatch):
    from django.db import connection as conn

    with conn.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")
    monkeypatch.setattr(counting, "ESTIMATE_MIN_ROWS", 1)
    body = count(api, "?exact=false")
    assert count(api, "?tags=nosuch&exact=false") == {"count": 0, "exact": True}
    assert count(api, "?search=zzzzzz&exact=false")["count"] >= 0
    assert body["exact"] is False and isinstance(body["count"], int) and body["count"] >= 1
    segment = Segment.objects.create(organization=acme, name="all but vips",
                                     rules={"field": "tags", "operator": "contains_none", "value": ["vip"]})
    body = api.get(f"/api/v1/segments/{segment.pk}/count", {"exact": "false"}).json()
    assert body["exact"] is False and isinstance(body["count"], int)
    assert api.get(f"/api/v1/segments/{segment.pk}/count").json() == {"count": 2}


def test_list_and_tag_counts_leave_the_trash_out_in_the_api_and_the_admin(api, alice, book):
    counts = {item["name"]: item["member_count"] for item in api.get("/api/v1/lists").json()["results"]}
    assert counts == {"Listed": 2, "Other": 2}
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/segments/contactlist/")
    request.user = alice
    model_admin = admin.site._registry[ContactList]
    annotated = {item.name: item._member_count for item in model_admin.get_queryset(request)}
    assert annotated == {"Listed": 2, "Other": 2}
    from contacts.models import Tag

    tags = {tag.name: tag.contact_count for tag in admin.site._registry[Tag].get_queryset(request)}
    assert tags == {"vip": 2, "news": 2}
