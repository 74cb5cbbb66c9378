"""Issue 13 items 5, 6 and 14: segment rules that would 500 are refused on save, a segment saved
with such rules earlier answers 400 (never 500) on every read, and one rule set holds at most
MAX_TOTAL_VALUES values."""

from __future__ import annotations

import pytest
from django.urls import reverse

from segments.models import Segment
from segments.rules import MAX_TOTAL_VALUES, RuleError, validate_rules

from ..factories import make_contact

pytestmark = pytest.mark.django_db

OUT_OF_RANGE = [
    {"field": "created_at", "operator": "lte", "value": "9999-12-31"},
    {"field": "created_at", "operator": "gt", "value": "9999-12-31T23:59:59-23:59"},
    {"field": "created_at", "operator": "after", "value": "0001-01-01"},
    {"field": "birthday", "operator": "gte", "value": "9999-12-31"},
    {"field": "custom.score", "operator": "gt", "value": int("9" * 400)},
    {"field": "custom.score", "operator": "eq", "value": int("9" * 400)},
    {"field": "custom.score", "operator": "in", "value": [1, -int("9" * 30)]},
    {"field": "lists", "operator": "contains_any", "value": [2**64]},
    {"field": "assignee", "operator": "eq", "value": 2**64},
    {"field": "created_at", "operator": "within_last_days", "value": 1e300},
]


@pytest.mark.parametrize("rules", OUT_OF_RANGE)
def test_rules_out_of_range_are_refused_on_save_with_the_path(api, acme, rules):
    response = api.post("/api/v1/segments", {"name": "bad", "rules": rules}, format="json")
    assert response.status_code == 400, response.content[:300]
    fields = response.json()["error"]["fields"]  # {"rules": ["value: ..."]}, or the parser's "rules.value"
    assert "value" in fields.get("rules", [""])[0] or any(path.startswith("rules.value") for path in fields)
    assert not Segment.objects.exists()


@pytest.mark.parametrize("rules", OUT_OF_RANGE)
def test_a_segment_saved_with_such_rules_earlier_never_500s(api, client, alice, acme, rules):
    make_contact(acme)
    segment = Segment.objects.create(organization=acme, name="old", rules=rules)  # saved before the checks
    for url in (f"/api/v1/segments/{segment.pk}/count", f"/api/v1/segments/{segment.pk}/members",
                f"/api/v1/contacts?segment={segment.pk}", f"/api/v1/contacts/count?segment={segment.pk}"):
        assert api.get(url).status_code == 400, url
    assert api.get(f"/api/v1/segments/{segment.pk}").status_code == 200
    client.force_login(alice)
    page = client.get(reverse("admin:segments_segment_change", args=[segment.pk]))
    assert page.status_code == 200
    assert b"invalid rules" in page.content


def test_rules_at_the_edge_of_the_range_still_work(api, acme):
    make_contact(acme, custom_fields={"score": 5})
    for rules in ({"field": "created_at", "operator": "lte", "value": "9000-12-31"},
                  {"field": "custom.score", "operator": "lt", "value": 10**15}):
        response = api.post("/api/v1/segments/preview", {"rules": rules}, format="json")
        assert response.json()["count"] == 1, response.content[:300]


def test_one_rule_set_holds_at_most_a_thousand_values(api, acme):
    conditions = [{"field": "city", "operator": "in", "value": [f"c{i}-{j}" for j in range(500)]} for i in range(50)]
    response = api.post("/api/v1/segments/preview", {"rules": {"op": "or", "rules": conditions}}, format="json")
    assert response.status_code == 400
    assert str(MAX_TOTAL_VALUES) in response.json()["error"]["message"]
    validate_rules({"op": "or", "rules": conditions[:2]})  # exactly 1,000 is fine
    with pytest.raises(RuleError, match="more than 1000 values"):
        validate_rules({"op": "or", "rules": [*conditions[:2], {"field": "city", "operator": "in", "value": ["x"]}]})


# --- item 5: deep JSON in the admin segment form and the import mapping ---------------------------
def test_the_admin_segment_form_refuses_deep_json_with_a_message(client, alice, acme):
    client.force_login(alice)
    deep = "[" * 1000 + "]" * 1000
    response = client.post(reverse("admin:segments_segment_add"), {"name": "deep", "description": "", "rules": deep})
    assert response.status_code == 200
    assert "deeper than" in str(response.context["adminform"].form.errors["rules"])
    assert not Segment.objects.exists()


def test_the_admin_segment_form_refuses_480_deep_rules(client, alice, acme):
    rules = '{"field": "first_name", "operator": "eq", "value": "a"}'
    for _ in range(480):
        rules = '{"not": ' + rules + "}"
    client.force_login(alice)
    response = client.post(reverse("admin:segments_segment_add"), {"name": "deep", "description": "", "rules": rules})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["rules"]
    assert not Segment.objects.exists()


def test_an_import_mapping_nested_a_thousand_deep_is_a_400(api, acme):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = api.post("/api/v1/imports", {"file": SimpleUploadedFile("c.csv", b"phone\r\n9195550100\r\n"),
                                            "mapping": '{"a": ' + "[" * 1000 + "]" * 1000 + "}"}, format="multipart")
    assert response.status_code == 400, response.content[:300]
    assert "deeper than" in response.json()["error"]["fields"]["mapping"][0]
