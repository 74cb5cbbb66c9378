"""Segments over the API: CRUD with validated rules, members, count, preview, ?segment= on /contacts."""

from __future__ import annotations

import pytest

from contacts.models import ContactEvent
from segments.models import Segment

from ..factories import make_contact

pytestmark = pytest.mark.django_db
URL = "/api/v1/segments"
CAROLINA_VIPS = {"op": "and", "rules": [{"field": "tags", "operator": "contains_any", "value": ["vip"]},
                                        {"field": "state", "operator": "in", "value": ["NC", "SC"]}]}


def error(response, status=400):
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response.json()["error"]


@pytest.fixture
def people(acme, globex):
    p = {
        "ann": make_contact(acme, state="NC", tags=["vip"]),
        "bob": make_contact(acme, state="SC", tags=["VIP", "news"]),
        "cem": make_contact(acme, state="NC"),
        "dia": make_contact(acme, state="GA", tags=["vip"]),
    }
    make_contact(globex, state="NC", tags=["vip"])  # Globex's twin: never Acme's member
    return p


@pytest.fixture
def vips(acme):
    return Segment.objects.create(organization=acme, name="Carolina VIPs", rules=CAROLINA_VIPS)


def test_it_creates_a_segment_with_valid_rules(api, acme):
    response = api.post(URL, {"name": "Carolina VIPs", "rules": CAROLINA_VIPS}, format="json")
    assert response.status_code == 201, response.content
    segment = Segment.objects.get(pk=response.json()["id"])
    assert (segment.organization, segment.rules, segment.description) == (acme, CAROLINA_VIPS, "")


def test_invalid_rules_are_a_400_pointing_at_the_bad_rule(api):
    rules = {"op": "and", "rules": [{"field": "state", "operator": "eq", "value": "NC"},
                                    {"op": "or", "rules": [{"field": "city", "operator": "frobnicate", "value": 1}]}]}
    err = error(api.post(URL, {"name": "Broken", "rules": rules}, format="json"))
    assert err["fields"]["rules"][0].startswith("rules[1].rules[0].operator: unknown operator 'frobnicate'")
    assert not Segment.objects.exists()


def test_updating_rules_validates_them_too(api, vips):
    err = error(api.patch(f"{URL}/{vips.pk}", {"rules": {"field": "tags", "operator": "eq", "value": "vip"}},
                          format="json"))
    assert err["fields"]["rules"][0].startswith("operator: 'eq' does not apply to the field 'tags'")
    vips.refresh_from_db()
    assert vips.rules == CAROLINA_VIPS
    assert api.patch(f"{URL}/{vips.pk}", {"description": "Best"}, format="json").status_code == 200
    vips.refresh_from_db()
    assert vips.description == "Best"


def test_a_rule_naming_another_organizations_list_is_refused(api, globex):
    from segments.models import ContactList

    theirs = ContactList.objects.create(organization=globex, name="theirs")
    rules = {"field": "lists", "operator": "contains_none", "value": [theirs.pk]}
    err = error(api.post(URL, {"name": "x", "rules": rules}, format="json"))
    assert err["fields"]["rules"] == [f"value[0]: lists contains_none refers to no list of yours: {theirs.pk}"]


def test_members_and_count_follow_the_rules_and_are_dynamic(api, acme, people, vips):
    page = api.get(f"{URL}/{vips.pk}/members").json()
    assert {r["id"] for r in page["results"]} == {str(people["ann"].pk), str(people["bob"].pk)}
    assert api.get(f"{URL}/{vips.pk}/count").json() == {"count": 2}
    newcomer = make_contact(acme, state="SC", tags=["vip"])
    assert api.get(f"{URL}/{vips.pk}/count").json() == {"count": 3}
    assert page["results"][0].keys() == api.get(f"/api/v1/contacts/{newcomer.pk}").json().keys()


def test_members_page_with_a_cursor(api, acme, vips):
    made = {str(make_contact(acme, state="NC", tags=["vip"]).pk) for _ in range(7)}
    seen, cursor = [], None
    while True:
        page = api.get(f"{URL}/{vips.pk}/members?limit=3" + (f"&cursor={cursor}" if cursor else "")).json()
        seen += [r["id"] for r in page["results"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == 7 and set(seen) == made


def test_segment_members_cost_a_constant_number_of_queries(api, acme, vips, django_assert_num_queries):
    for i in range(30):
        make_contact(acme, state="NC", tags=["vip", f"t{i % 3}"], preferences={"sms": False})
    api.get(URL)
    from django.db import connection

    tag_ids = 1 if connection.vendor == "postgresql" else 0  # PostgreSQL reads the tag ids once
    # segment + page + one UNION of tags, preferences and lists, whatever the page size
    with django_assert_num_queries(3 + tag_ids):
        assert len(api.get(f"{URL}/{vips.pk}/members?limit=30").json()["results"]) == 30
    with django_assert_num_queries(3 + tag_ids):
        assert len(api.get(f"{URL}/{vips.pk}/members?limit=2").json()["results"]) == 2
    with django_assert_num_queries(2 + tag_ids):  # segment + COUNT
        assert api.get(f"{URL}/{vips.pk}/count").json() == {"count": 30}


def test_preview_counts_and_samples_without_saving_anything(api, read_api, acme, people):
    for _ in range(12):
        make_contact(acme, state="NC", tags=["vip"])
    segments, events = Segment.objects.count(), ContactEvent.objects.count()
    response = read_api.post(f"{URL}/preview", {"rules": CAROLINA_VIPS}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 14
    assert len(body["sample"]) == 10 and all(item["state"] in {"NC", "SC"} for item in body["sample"])
    assert (Segment.objects.count(), ContactEvent.objects.count()) == (segments, events)


def test_preview_refuses_invalid_rules_with_the_path(api):
    err = error(api.post(f"{URL}/preview", {"rules": {"op": "and", "rules": [{"field": "nope", "operator": "eq",
                                                                               "value": 1}]}}, format="json"))
    assert err["fields"]["rules"][0].startswith("rules[0].field: unknown field 'nope'")


def test_contacts_filtered_by_segment_ignore_and_name_the_other_filters(api, people, vips):
    response = api.get(f"/api/v1/contacts?segment={vips.pk}&state=GA&tags=news")
    assert response.status_code == 200, response.content
    body = response.json()
    assert {r["id"] for r in body["results"]} == {str(people["ann"].pk), str(people["bob"].pk)}
    assert body["ignored_filters"] == ["state", "tags"]
    assert api.get(f"/api/v1/contacts/count?segment={vips.pk}").json()["count"] == 2


def test_the_segment_filter_refuses_a_non_id_with_400_and_another_orgs_segment_with_404(api, mallory_api, vips):
    assert error(api.get("/api/v1/contacts?segment=vips"))["fields"]["segment"] == [
        "'vips' is not a segment id (a whole number)."]
    assert error(mallory_api.get(f"/api/v1/contacts?segment={vips.pk}"), 404)["message"] == (
        f"No segment with the id {vips.pk}.")
    assert error(api.get(f"/api/v1/contacts?segment={vips.pk + 100}"), 404)["code"] == "not_found"


def test_mallory_cannot_see_or_count_acmes_segment(mallory_api, people, vips):
    for path in (f"{URL}/{vips.pk}", f"{URL}/{vips.pk}/members", f"{URL}/{vips.pk}/count"):
        assert error(mallory_api.get(path), 404)["code"] == "not_found"
    assert mallory_api.get(URL).json()["results"] == []


def test_a_segment_saved_with_rules_that_became_invalid_answers_400_not_500(api, acme, people):
    broken = Segment.objects.create(organization=acme, name="old", rules={"field": "gone", "operator": "eq"})
    assert "rules are invalid" in error(api.get(f"{URL}/{broken.pk}/count"))["message"]
    assert "invalid rules" in error(api.get(f"/api/v1/contacts?segment={broken.pk}"))["message"]


def test_deleting_a_segment_deletes_no_contact(api, people, vips):
    assert api.delete(f"{URL}/{vips.pk}").status_code == 204
    assert not Segment.objects.filter(pk=vips.pk).exists()
    assert people["ann"].__class__.objects.filter(pk=people["ann"].pk).exists()
