"""Lists and segments in the admin, and the contacts changelist's segment/list filters and action."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from contacts.models import ContactEvent
from segments.models import ContactList, ListMembership, Segment

from ..factories import make_contact

pytestmark = pytest.mark.django_db
NC = {"field": "state", "operator": "eq", "value": "NC"}


@pytest.fixture
def admin_site():
    """The real admin: contacts/admin.py wires the segment and list filters and the action."""


@pytest.fixture
def people(acme, globex):
    return {"ann": make_contact(acme, state="NC"), "bob": make_contact(acme, state="SC"),
            "cem": make_contact(acme, state="NC"), "zed": make_contact(globex, state="NC")}


def changelist_pks(response):
    assert response.status_code == 200, response.status_code
    return {c.pk for c in response.context["cl"].result_list}


def test_the_list_changelist_shows_member_counts(client, alice, acme, people):
    march = ContactList.objects.create(organization=acme, name="March")
    march.memberships.create(contact=people["ann"])
    march.memberships.create(contact=people["bob"])
    client.force_login(alice)
    response = client.get(reverse("admin:segments_contactlist_changelist"))
    [row] = response.context["cl"].result_list
    assert row._member_count == 2
    assert "<td class=\"field-member_count\">2</td>" in response.content.decode()


def test_a_staff_user_creates_a_list_in_their_organization_and_a_duplicate_name_is_an_error(client, bob, acme):
    client.force_login(bob)
    url = reverse("admin:segments_contactlist_add")
    assert client.post(url, {"name": "March", "description": ""}).status_code == 302
    assert ContactList.objects.get(name="March").organization == acme
    response = client.post(url, {"name": "March", "description": ""})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == ["A list named 'March' already exists."]


def test_the_segment_editor_refuses_invalid_rules_with_the_path(client, alice):
    client.force_login(alice)
    rules = {"op": "and", "rules": [NC, {"field": "state", "operator": "frobnicate", "value": "x"}]}
    response = client.post(reverse("admin:segments_segment_add"), {"name": "x", "rules": json.dumps(rules)})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["rules"] == [
        "rules[1].operator: unknown operator 'frobnicate' (operators: eq, neq, in, not_in, contains, starts_with, "
        "is_set, is_not_set, gt, gte, lt, lte, before, after, within_last_days, contains_any, contains_all, "
        "contains_none)"]
    assert not Segment.objects.exists()


def test_the_segment_editor_saves_valid_rules_in_the_users_organization(client, alice, acme):
    client.force_login(alice)
    response = client.post(reverse("admin:segments_segment_add"), {"name": "NC", "rules": json.dumps(NC)})
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert (segment.organization, segment.rules) == (acme, NC)


def test_a_json_syntax_error_names_its_line_and_column(client, alice):
    client.force_login(alice)
    text = '{\n  "op": "and",\n  "rules": [\n    {"field": "state" "operator": "eq"}\n  ]\n}'
    response = client.post(reverse("admin:segments_segment_add"), {"name": "broken", "rules": text})
    assert response.status_code == 200
    message = " ".join(response.context["adminform"].form.errors["rules"])
    assert "line 4, column 23" in message
    assert not Segment.objects.exists()


def test_the_segment_list_shows_each_segments_member_count_counted_in_one_query(client, alice, acme, people):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    nc = Segment.objects.create(organization=acme, name="NC", rules=NC)
    sc = Segment.objects.create(organization=acme, name="SC", rules={"field": "state", "operator": "eq", "value": "SC"})
    client.force_login(alice)
    url = reverse("admin:segments_segment_changelist")
    client.get(url)
    from django.core.cache import cache

    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    counts = {s.pk: s._member_count for s in response.context["cl"].result_list}
    assert counts == {nc.pk: 2, sc.pk: 1}  # globex's NC contact is not counted
    assert len([q for q in queries.captured_queries if '"contacts_contact"' in q["sql"]]) == 1
    with CaptureQueriesContext(connection) as queries:
        client.get(url)  # cached
    assert not [q for q in queries.captured_queries if '"contacts_contact"' in q["sql"]]


def test_the_rule_builder_gets_the_rule_vocabulary_and_the_custom_fields(client, alice, acme):
    from contacts.models import CustomField

    CustomField.objects.create(organization=acme, key="plan", type="choice", choices=["gold", "silver"])
    client.force_login(alice)
    page = client.get(reverse("admin:segments_segment_add")).content.decode()
    assert "segments/rule_builder.js" in page and 'class="rule-builder"' in page
    vocabulary = json.loads(page.split('id="id_rules-vocabulary" type="application/json">')[1].split("</script>")[0])
    by_name = {f["name"]: f for f in vocabulary["fields"]}
    assert "contains_any" in by_name["tags"]["ops"] and by_name["custom.plan"]["choices"] == ["gold", "silver"]
    assert "channel.sms" in by_name


def test_the_segment_page_shows_the_live_count_and_links_to_its_contacts(admin_site, client, alice, acme, people):
    segment = Segment.objects.create(organization=acme, name="NC", rules=NC)
    client.force_login(alice)
    page = client.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()
    assert '<div class="readonly">2</div>' in page
    link = reverse("admin:contacts_contact_changelist") + f"?segment={segment.pk}"
    assert f'href="{link}"' in page
    assert changelist_pks(client.get(link)) == {people["ann"].pk, people["cem"].pk}


def test_the_contacts_changelist_filters_by_list(admin_site, client, alice, acme, people):
    march = ContactList.objects.create(organization=acme, name="March")
    march.memberships.create(contact=people["bob"])
    client.force_login(alice)
    url = reverse("admin:contacts_contact_changelist")
    assert changelist_pks(client.get(f"{url}?list={march.pk}")) == {people["bob"].pk}


def test_the_filters_offer_and_accept_only_the_users_organization(admin_site, client, alice, mallory, acme, globex,
                                                                 people):
    theirs = Segment.objects.create(organization=globex, name="Globex NC", rules=NC)
    Segment.objects.create(organization=acme, name="Acme NC", rules=NC)
    their_list = ContactList.objects.create(organization=globex, name="Globex list")
    client.force_login(alice)
    url = reverse("admin:contacts_contact_changelist")
    page = client.get(url).content.decode()
    assert "Acme NC" in page and "Globex NC" not in page and "Globex list" not in page
    for query in (f"segment={theirs.pk}", f"list={their_list.pk}", "segment=abc"):
        response = client.get(f"{url}?{query}")
        assert response.status_code == 302 and response["Location"].endswith("?e=1"), query


def test_add_to_list_asks_for_the_list_then_adds_the_selection(admin_site, client, alice, acme, globex, people):
    march = ContactList.objects.create(organization=acme, name="March")
    ContactList.objects.create(organization=globex, name="Globex list")
    client.force_login(alice)
    url = reverse("admin:contacts_contact_changelist")
    selected = [str(people["ann"].pk), str(people["bob"].pk)]
    page = client.post(url, {"action": "add_to_list", "_selected_action": selected})
    assert page.status_code == 200
    html = page.content.decode()
    assert "March" in html and "Globex list" not in html and "2</strong> selected contacts" in html
    response = client.post(url, {"action": "add_to_list", "_selected_action": selected, "apply": "1",
                                 "contact_list": march.pk})
    assert response.status_code == 302
    assert set(ListMembership.objects.filter(list=march).values_list("contact_id", flat=True)) == {
        people["ann"].pk, people["bob"].pk}
    assert ContactEvent.objects.filter(kind="list_added", actor_user=alice).count() == 2


def test_add_to_list_can_create_the_list_and_never_adds_another_organizations_contacts(admin_site, client, alice,
                                                                                        acme, people):
    client.force_login(alice)
    url = reverse("admin:contacts_contact_changelist")
    selected = [str(people["ann"].pk), str(people["zed"].pk)]
    client.post(url, {"action": "add_to_list", "_selected_action": selected, "apply": "1", "new_list": "April"})
    april = ContactList.objects.get(name="April")
    assert april.organization == acme
    assert list(april.memberships.values_list("contact_id", flat=True)) == [people["ann"].pk]
