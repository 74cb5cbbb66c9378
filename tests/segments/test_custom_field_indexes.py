"""Custom-field comparisons (issue 14): a number or date definition gets an expression index
(PostgreSQL) that the segment compiler's SQL matches; it follows the definition's key and type and
goes with it. Values that are not numbers never make a comparison fail, with or without it."""

from __future__ import annotations

import pytest
from django.db import connection

from contacts import custom_fields
from contacts.models import Contact, CustomField
from segments.rules import contacts_matching

from ..factories import make_contact

ODD_VALUES = ["n/a", "1e999999", "5\u2003", "\u0665\u0660\u0660\u0660", "", None, {"n": 5000}, [5000], True,
              "9" * 70, " 4999 ", "4950", 5000, 100, "2024-03-01"]
OVER_4900 = {" 4999 ", "4950", 5000}
RULE = {"field": "custom.loyalty_points", "operator": "gt", "value": 4900}
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="expression indexes are PostgreSQL's")


def make_odd_book(org):
    return {make_contact(org, custom_fields={"loyalty_points": value}).pk: value for value in ODD_VALUES}


def matching(org, rules=RULE):
    return {fields["loyalty_points"] for fields in contacts_matching(rules, org=org).values_list("custom_fields",
                                                                                              flat=True)}


@pytest.mark.django_db
def test_values_that_are_not_numbers_never_make_a_comparison_fail(api, acme):
    make_odd_book(acme)
    assert matching(acme) == OVER_4900
    for rules in (RULE, {"field": "custom.loyalty_points", "operator": "eq", "value": 100},
                  {"field": "custom.loyalty_points", "operator": "in", "value": [100, 5000]}):
        response = api.post("/api/v1/segments/preview", {"rules": rules}, format="json")
        assert response.status_code == 200, response.content[:300]
    assert api.post("/api/v1/segments/preview", {"rules": RULE}, format="json").json()["count"] == 3


@pytest.mark.django_db
def test_on_sqlite_the_sync_builds_nothing(acme):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite's behaviour")
    CustomField.objects.create(organization=acme, key="loyalty_points", type="number")
    assert custom_fields.custom_field_indexes_sync(acme.pk) == {"created": [], "dropped": []}


def plan_of(queryset) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a test table is tiny: make the planner show its index
        try:
            return queryset.explain()
        finally:
            cursor.execute("RESET enable_seqscan")


@postgres_only
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_number_definition_gets_the_index_its_comparisons_use_and_it_follows_the_definition(
        api, acme, globex, settings):
    settings.REDIS_URL = ""  # the index job runs in-process (synchronously in tests) after the commit
    book = make_odd_book(acme)
    make_contact(globex, custom_fields={"loyalty_points": 9999})
    response = api.post("/api/v1/custom-fields", {"key": "loyalty_points", "type": "number"}, format="json")
    assert response.status_code == 201, response.content
    field_id = response.json()["id"]
    indexes = custom_fields.existing_indexes(acme.pk)
    assert list(indexes.values()) == [True], indexes
    (name,) = indexes
    assert name in plan_of(contacts_matching(RULE, org=acme))
    assert name in plan_of(contacts_matching({"field": "custom.loyalty_points", "operator": "eq", "value": 100},
                                             org=acme))
    assert matching(acme) == OVER_4900
    assert custom_fields.existing_indexes(globex.pk) == {}

    # A value the expression cannot read as a number is not indexed; writing it still works.
    odd = next(pk for pk, value in book.items() if value == 100)
    Contact.objects.filter(pk=odd).update(custom_fields={"loyalty_points": "1e999999"})
    Contact.objects.filter(pk=odd).update(custom_fields={"loyalty_points": "7000"})
    assert matching(acme) == {*OVER_4900, "7000"}

    # A renamed key or a changed type is another index; deleting the definition drops it.
    assert api.patch(f"/api/v1/custom-fields/{field_id}", {"type": "date"}, format="json").status_code == 200
    (date_index,) = custom_fields.existing_indexes(acme.pk)
    assert date_index != name
    date_rule = {"field": "custom.loyalty_points", "operator": "after", "value": "2024-01-01"}
    assert date_index in plan_of(contacts_matching(date_rule, org=acme))
    assert matching(acme, date_rule) == {"2024-03-01"}
    assert api.patch(f"/api/v1/custom-fields/{field_id}", {"type": "text"}, format="json").status_code == 200
    assert custom_fields.existing_indexes(acme.pk) == {}
    assert api.patch(f"/api/v1/custom-fields/{field_id}", {"type": "number"}, format="json").status_code == 200
    assert list(custom_fields.existing_indexes(acme.pk)) == [name]
    assert api.delete(f"/api/v1/custom-fields/{field_id}").status_code == 204
    assert custom_fields.existing_indexes(acme.pk) == {}


@postgres_only
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_sync_replaces_a_failed_build_and_drops_indexes_without_a_definition(acme):
    field = CustomField.objects.create(organization=acme, key="visits", type="number")
    wanted = custom_fields.index_name(org_id=acme.pk, field_id=field.pk, key="visits", type="number")
    stale = custom_fields.index_name(org_id=acme.pk, field_id=field.pk + 1000, key="gone", type="date")
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE INDEX "{stale}" ON contacts_contact (id) WHERE organization_id = {acme.pk}')
        cursor.execute(f'CREATE INDEX "{wanted}" ON contacts_contact (id) WHERE organization_id = {acme.pk}')
        cursor.execute(f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '\"{wanted}\"'::regclass")
    done = custom_fields.custom_field_indexes_sync(acme.pk)
    assert done == {"created": [wanted], "dropped": sorted([stale, wanted])}
    assert custom_fields.existing_indexes(acme.pk) == {wanted: True}


@postgres_only
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_admin_builds_and_drops_the_index_as_the_api_does(client, alice, acme, settings):
    from django.urls import reverse

    settings.REDIS_URL = ""
    client.force_login(alice)
    response = client.post(reverse("admin:contacts_customfield_add"), {"key": "visits", "type": "number", "choices": ""})
    assert response.status_code == 302
    field = CustomField.objects.get(organization=acme, key="visits")
    assert list(custom_fields.existing_indexes(acme.pk)) == [
        custom_fields.index_name(org_id=acme.pk, field_id=field.pk, key="visits", type="number")]
    response = client.post(reverse("admin:contacts_customfield_delete", args=[field.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert custom_fields.existing_indexes(acme.pk) == {}


@postgres_only
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_deleted_organization_leaves_no_custom_field_index_behind(settings):
    from ..factories import make_org

    settings.REDIS_URL = ""  # the sync job runs in-process after the commit
    org, other = make_org(slug="leaving"), make_org(slug="staying")
    for each in (org, other):
        CustomField.objects.create(organization=each, key="visits", type="number")
        custom_fields.custom_field_indexes_sync(each.pk)
    assert len(custom_fields.existing_indexes(org.pk)) == 1
    org_id = org.pk
    org.delete()
    assert custom_fields.existing_indexes(org_id) == {}
    assert len(custom_fields.existing_indexes(other.pk)) == 1
