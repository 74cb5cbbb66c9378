"""The contacts admin: filters, search, actions, add/change through the services, tags, custom fields."""

from __future__ import annotations

import pytest
from django import forms
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contacts import services
from contacts.admin import EstimatedCountPaginator, distinct_values
from contacts.models import ChannelPreference, Contact, ContactEvent, ContactTag, CustomField, Tag
from contacts.normalize import NormalizationError
from contacts.validation import clean_phone

from ..factories import make_contact

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:contacts_contact_changelist")
ADD = reverse("admin:contacts_contact_add")


def change_url(contact):
    return reverse("admin:contacts_contact_change", args=[contact.pk])


def listed(client, query: str = "") -> set:
    response = client.get(CHANGELIST + query)
    assert response.status_code == 200, response.content[:500]
    return {c.pk for c in response.context["cl"].result_list}


def form_data(response) -> dict:
    """The POST a browser would send for the page as rendered: every field with its value."""
    data = {}

    def put(form, prefix=""):
        for name, field in form.fields.items():
            value = form[name].value()
            key = f"{prefix}{name}" if not prefix else form.add_prefix(name)
            if isinstance(field, forms.BooleanField):
                if value:
                    data[key] = "on"
            elif value is not None:
                data[key] = value.pk if hasattr(value, "pk") else value

    put(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name in formset.management_form.fields:
            data[f"{formset.prefix}-{name}"] = formset.management_form[name].value()
        for form in formset.forms:
            put(form, prefix=formset.prefix)
    return data


@pytest.fixture
def cast(acme, globex):
    """Acme's contacts, each with one distinguishing trait, and one Globex contact."""
    c = {
        "ann": make_contact(acme, phone="+19195550101", email="ann@example.com", first_name="Ann", last_name="Smith",
                            state="NC", lifecycle_stage="lead", tags=["VIP"]),
        "bo": make_contact(acme, phone="+19195550102", first_name="Bo", last_name="Jones", state="SC",
                           lifecycle_stage="customer", tags=["news"]),
        "cy": make_contact(acme, email="cy@example.com", phone=None, first_name="Cy", last_name="Smithers",
                           opted_out=True),
        "theirs": make_contact(globex, phone="+442079460958", first_name="Gil", last_name="Smith", state="Kent",
                               lifecycle_stage="partner", tags=["globex-only"]),
    }
    Contact.objects.filter(pk=c["ann"].pk).update(is_textable=True)
    Contact.objects.filter(pk=c["bo"].pk).update(is_textable=False)
    Contact.objects.filter(pk=c["cy"].pk).update(is_textable=None)
    return c


# --- changelist --------------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "expected"), [
    ("", {"ann", "bo", "cy"}),
    ("?tag=vip", {"ann"}),
    ("?opted_out__exact=1", {"cy"}),
    ("?opted_out__exact=0", {"ann", "bo"}),
    ("?textable=true", {"ann"}),
    ("?textable=false", {"bo"}),
    ("?textable=unknown", {"cy"}),
    ("?state=NC", {"ann"}),
    ("?lifecycle_stage=customer", {"bo"}),
    ("?has_email=yes", {"ann", "cy"}),
    ("?has_email=no", {"bo"}),
    ("?has_phone=no", {"cy"}),
    ("?q=smith", {"ann", "cy"}),
    ("?q=5550102", {"bo"}),
    ("?q=ann%40example", {"ann"}),
    ("?q=smith&state=NC", {"ann"}),
])
def test_the_changelist_shows_the_right_rows_for_each_filter_and_the_search(client, alice, cast, query, expected):
    client.force_login(alice)
    assert listed(client, query) == {cast[name].pk for name in expected}


def test_the_filters_offer_only_the_users_organizations_tags_states_and_stages(client, alice, cast):
    client.force_login(alice)
    response = client.get(CHANGELIST)
    choices = {spec.parameter_name: [label for _, label in spec.lookup_choices]
               for spec in response.context["cl"].filter_specs if hasattr(spec, "parameter_name")}
    assert choices["tag"] == ["news", "VIP"]
    assert choices["state"] == ["NC", "SC"]
    assert choices["lifecycle_stage"] == ["customer", "lead"]
    page = response.content.decode()
    assert "globex-only" not in page and "Kent" not in page and "partner" not in page


def test_the_changelist_shows_the_columns(client, alice, cast):
    client.force_login(alice)
    page = client.get(CHANGELIST).content.decode()
    for text in ("Ann Smith", "(919) 555-0101", "ann@example.com", "VIP", "textable", "opted out", "updated"):
        assert text.lower() in page.lower()


def test_the_changelist_query_count_does_not_grow_with_rows(client, alice, acme, django_assert_max_num_queries):
    for n in range(3):
        make_contact(acme, phone=f"+1919555{n:04d}", tags=["a", "b"], state="NC")
    client.force_login(alice)
    client.get(CHANGELIST)  # warm the session and content types
    with CaptureQueriesContext(connection) as few:
        client.get(CHANGELIST)
    for n in range(3, 40):
        make_contact(acme, phone=f"+1919555{n:04d}", tags=["a", f"t{n % 5}"], state=["NC", "SC", "VA"][n % 3])
    with CaptureQueriesContext(connection) as many:
        client.get(CHANGELIST)
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    with django_assert_max_num_queries(16):  # incl. the list and segment filters' choices, the date range
        response = client.get(CHANGELIST)
    assert len(response.context["cl"].result_list) == 40


def test_the_paginator_counts_small_results_exactly(acme):
    for n in range(5):
        make_contact(acme, phone=f"+1919555{n:04d}")

    class Small(EstimatedCountPaginator):
        exact_limit = 10

    paginator = Small(Contact.objects.for_org(acme).order_by("-updated_at", "-pk"), 2)
    assert paginator.count == 5 and paginator.estimated is False
    assert paginator.num_pages == 3


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the planner estimate is PostgreSQL's")
def test_past_its_limit_the_paginator_uses_the_planner_estimate_and_never_refuses_a_page(acme):
    for n in range(8):
        make_contact(acme, phone=f"+1919555{n:04d}")

    class Small(EstimatedCountPaginator):
        exact_limit, sanity_limit = 3, 2

    paginator = Small(Contact.objects.for_org(acme).order_by("-updated_at", "-pk"), 5)
    assert paginator.count >= 4 and paginator.estimated is True
    assert len(paginator.page(2).object_list) == 3
    assert list(paginator.page(50).object_list) == []


def test_distinct_values_lists_each_state_once(acme, globex):
    for n, state in enumerate(["NC", "SC", "NC", "", "VA"]):
        make_contact(acme, phone=f"+1919555{n:04d}", state=state)
    make_contact(globex, phone="+442079460958", state="Kent")
    assert distinct_values(Contact.objects.for_org(acme), "state", acme) == ["NC", "SC", "VA"]


# --- actions -----------------------------------------------------------------------------------
def post_action(client, action, contacts, **extra):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [str(c.pk) for c in contacts], **extra})


def test_add_tag_asks_for_the_tag_then_tags_only_the_selected_contacts_with_events(client, alice, cast):
    client.force_login(alice)
    selected = [cast["ann"], cast["bo"], cast["theirs"]]
    page = post_action(client, "add_tag", selected)
    assert page.status_code == 200
    assert b'name="tag"' in page.content and page.context["count"] == 2  # Globex's row is not in the queryset
    response = post_action(client, "add_tag", selected, apply="1", tag=" Gold ")
    assert response.status_code == 302
    gold = Tag.objects.get(organization=cast["ann"].organization, key="gold")
    assert gold.name == "Gold"
    assert set(ContactTag.objects.filter(tag=gold).values_list("contact", flat=True)) == {cast["ann"].pk, cast["bo"].pk}
    events = ContactEvent.objects.filter(kind="tags_added", data__tags=["Gold"])
    assert {e.contact_id for e in events} == {cast["ann"].pk, cast["bo"].pk}
    assert {e.actor_user for e in events} == {alice}
    assert not cast["theirs"].tags.filter(key="gold").exists()
    assert not Tag.objects.filter(organization=cast["theirs"].organization, key="gold").exists()


def test_add_tag_refuses_an_empty_tag_and_asks_again(client, alice, cast):
    client.force_login(alice)
    page = post_action(client, "add_tag", [cast["ann"]], apply="1", tag="   ")
    assert page.status_code == 200 and page.context["form"].errors["tag"]
    assert not ContactEvent.objects.filter(kind="tags_added", contact=cast["ann"]).exclude(data__tags=["VIP"]).exists()


def test_remove_tag_removes_it_from_the_selected_contacts_only(client, alice, acme, cast):
    other = make_contact(acme, phone="+19195550199", tags=["vip"])
    client.force_login(alice)
    post_action(client, "remove_tag", [cast["ann"]], apply="1", tag="vip")
    assert not cast["ann"].tags.exists()
    assert list(other.tags.values_list("name", flat=True)) == ["VIP"]
    event = ContactEvent.objects.get(contact=cast["ann"], kind="tags_removed")
    assert event.data == {"tags": ["VIP"]} and event.actor_user == alice


def test_the_opt_out_action_opts_out_globally_with_source_admin(client, alice, cast):
    client.force_login(alice)
    response = post_action(client, "opt_out", [cast["ann"], cast["cy"]])
    assert response.status_code == 302
    ann = Contact.objects.get(pk=cast["ann"].pk)
    assert ann.opted_out and ann.opted_out_at and ann.opt_out_source == "admin"
    event = ContactEvent.objects.get(contact=ann, kind="opted_out")
    assert event.actor_user == alice and event.data == {"channel": None, "source": "admin"}
    # cy was opted out already: no second event; bo was not selected.
    assert ContactEvent.objects.filter(contact=cast["cy"], kind="opted_out").count() == 1
    assert not Contact.objects.get(pk=cast["bo"].pk).opted_out


def test_delete_asks_for_confirmation_then_deletes_only_the_selected_contacts(client, alice, cast):
    client.force_login(alice)
    page = post_action(client, "delete_contacts", [cast["ann"], cast["theirs"]])
    assert page.status_code == 200 and page.context["count"] == 1
    assert Contact.objects.filter(pk=cast["ann"].pk).exists()
    post_action(client, "delete_contacts", [cast["ann"], cast["theirs"]], post="yes")
    assert not Contact.objects.live().filter(pk=cast["ann"].pk).exists()
    assert Contact.objects.get(pk=cast["ann"].pk).deleted_at is not None  # the trash keeps the timeline
    assert ContactEvent.objects.filter(contact_id=cast["ann"].pk, kind="trashed").exists()
    assert Contact.objects.filter(pk__in=[cast["bo"].pk, cast["theirs"].pk]).count() == 2


def test_select_across_acts_on_every_contact_matching_the_filters(client, alice, cast):
    client.force_login(alice)
    # As the browser sends it: the rows of the page ticked, plus select_across.
    client.post(CHANGELIST + "?q=smith", {"action": "opt_out", "index": "0", "select_across": "1",
                                          "_selected_action": [str(cast["ann"].pk)]})
    assert set(Contact.objects.filter(opted_out=True).values_list("pk", flat=True)) == {cast["ann"].pk, cast["cy"].pk}


def test_a_member_cannot_delete_contacts(client, bob, cast):
    client.force_login(bob)
    response = client.get(CHANGELIST)
    assert "delete_contacts" not in dict(response.context["cl"].model_admin.get_action_choices(response.wsgi_request))
    post_action(client, "delete_contacts", [cast["ann"]], post="yes")
    assert Contact.objects.filter(pk=cast["ann"].pk).exists()
    response = client.post(reverse("admin:contacts_contact_delete", args=[cast["ann"].pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Contact.objects.filter(pk=cast["ann"].pk).exists()
    # ...but a member may tag and opt out.
    post_action(client, "opt_out", [cast["ann"]])
    assert Contact.objects.get(pk=cast["ann"].pk).opted_out


def test_an_admin_deletes_one_contact_from_its_page(client, alice, cast):
    client.force_login(alice)
    page = client.get(reverse("admin:contacts_contact_delete", args=[cast["ann"].pk]))
    assert page.status_code == 200 and b"Activity events: 1" in page.content  # one created event, tags included
    client.post(reverse("admin:contacts_contact_delete", args=[cast["ann"].pk]), {"post": "yes"})
    assert not Contact.objects.live().filter(pk=cast["ann"].pk).exists()
    assert Contact.objects.get(pk=cast["ann"].pk).deleted_at is not None


# --- add and change ----------------------------------------------------------------------------
def add_data(client, **values) -> dict:
    data = form_data(client.get(ADD))
    data.update(values)
    return data


def test_adding_a_contact_normalizes_the_phone_and_records_the_admin_as_actor(client, alice, acme):
    CustomField.objects.create(organization=acme, key="score", type="number")
    client.force_login(alice)
    response = client.post(ADD, add_data(client, phone="(919) 555-0142", email="Dee@Example.COM", first_name="Dee",
                                         new_tags="vip, News", cf_score="42", custom_fields="plan = gold",
                                         state="north carolina", birthday="03/14/1990", _continue="1"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    contact = Contact.objects.get(organization=acme, phone="+19195550142")
    assert response["Location"] == change_url(contact)
    assert contact.email == "Dee@example.com" and contact.state == "NC"
    assert contact.birthday.isoformat() == "1990-03-14"
    assert contact.custom_fields == {"score": 42, "plan": "gold"}
    assert sorted(contact.tags.values_list("name", flat=True)) == ["News", "vip"]
    created = ContactEvent.objects.get(contact=contact, kind="created")
    assert created.actor_user == alice and created.organization == acme


def test_adding_a_known_phone_is_refused_with_a_link_and_merges_only_when_asked(client, alice, acme):
    existing = make_contact(acme, phone="+19195550142", first_name="Bob", last_name="Jones")
    client.force_login(alice)
    data = add_data(client, phone="919.555.0142", first_name="Robert", last_name="New")
    response = client.post(ADD, data)
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors["phone"])
    assert "Bob Jones" in errors and change_url(existing) in errors and f'value="{existing.pk}"' in errors
    existing.refresh_from_db()
    assert (existing.first_name, existing.last_name) == ("Bob", "Jones")
    assert not ContactEvent.objects.filter(contact=existing, kind="merged").exists()
    # A stale or forged merge target is not a yes: the form asks again.
    response = client.post(ADD, {**data, "_merge_into": "123"})
    assert response.status_code == 200 and "phone" in response.context["adminform"].form.errors

    response = client.post(ADD, {**data, "_merge_into": str(existing.pk)}, follow=True)
    assert Contact.objects.for_org(acme).count() == 1
    existing.refresh_from_db()
    assert (existing.first_name, existing.last_name) == ("Robert", "New")
    assert ContactEvent.objects.get(contact=existing, kind="merged").actor_user == alice
    texts = [str(m) for m in response.context["messages"]]
    assert any("merged into" in t for t in texts) and not any("added successfully" in t for t in texts)
    assert response.redirect_chain[-1][0] == change_url(existing)


def test_adding_a_known_email_is_refused_too(client, alice, acme):
    existing = make_contact(acme, email="ann@example.com", first_name="Ann")
    client.force_login(alice)
    response = client.post(ADD, add_data(client, email="ANN@example.com", first_name="Other"))
    assert "Ann" in " ".join(response.context["adminform"].form.errors["email"])
    assert Contact.objects.get(pk=existing.pk).first_name == "Ann"


def test_the_admin_refuses_a_bad_phone_with_the_apis_message(client, alice, acme):
    client.force_login(alice)
    response = client.post(ADD, add_data(client, phone="555-01", first_name="X"))
    assert response.status_code == 200
    with pytest.raises(NormalizationError) as api_error:
        clean_phone("555-01", "US")
    assert response.context["adminform"].form.errors["phone"] == [str(api_error.value)]
    assert not Contact.objects.exists()


def test_a_contact_needs_a_phone_or_an_email(client, alice):
    client.force_login(alice)
    response = client.post(ADD, add_data(client, first_name="Nobody"))
    assert response.context["adminform"].form.errors["phone"] == ["A contact needs a phone or an email."]


def test_changing_a_contact_goes_through_the_service_with_the_admin_as_actor(client, alice, acme):
    contact = make_contact(acme, phone="+19195550101", first_name="Ann", tags=["old"], custom_fields={"n": 1, "x": "y"})
    client.force_login(alice)
    data = form_data(client.get(change_url(contact)))
    old_tag = Tag.objects.get(organization=acme, key="old")
    assert data["custom_fields"] == "n = 1\nx = y" and data["tags"] == [old_tag.pk]
    data.update(phone="+1 (919) 555-0177", first_name="Anna", tags=[], new_tags="new", custom_fields="n = 1\nz = 2",
                opted_out="on")
    response = client.post(change_url(contact), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    contact.refresh_from_db()
    assert contact.phone == "+19195550177" and contact.first_name == "Anna"
    assert contact.custom_fields == {"n": 1, "z": 2}
    assert list(contact.tags.values_list("name", flat=True)) == ["new"]
    assert contact.opted_out and contact.opt_out_source == "admin"
    updated = ContactEvent.objects.get(contact=contact, kind="updated")
    assert updated.actor_user == alice
    assert updated.data["changes"]["phone"] == ["+19195550101", "+19195550177"]
    assert {"phone", "first_name", "custom_fields"} <= set(updated.data["changes"])
    assert ContactEvent.objects.get(contact=contact, kind="opted_out").data["source"] == "admin"
    assert ContactEvent.objects.filter(contact=contact, kind="tags_removed", actor_user=alice).exists()


def test_saving_an_unchanged_contact_writes_no_event(client, alice, acme):
    contact = make_contact(acme, phone="+19195550101", first_name="Ann", birthday="1990-03-14", state="NC",
                           custom_fields={"n": 1, "flag": True, "code": "007"}, tags=["a"])
    before = ContactEvent.objects.filter(contact=contact).count()
    client.force_login(alice)
    response = client.post(change_url(contact), form_data(client.get(change_url(contact))))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert ContactEvent.objects.filter(contact=contact).count() == before
    contact.refresh_from_db()
    assert contact.custom_fields == {"n": 1, "flag": True, "code": "007"}


def test_a_duplicate_phone_is_a_form_error_linking_the_other_contact(client, alice, acme):
    other = make_contact(acme, phone="+19195550101", first_name="Other")
    contact = make_contact(acme, phone="+19195550102", first_name="Me")
    client.force_login(alice)
    data = form_data(client.get(change_url(contact)))
    data["phone"] = "919-555-0101"
    response = client.post(change_url(contact), data)
    assert response.status_code == 200
    error = response.context["adminform"].form.errors["phone"][0]
    assert "Another contact" in error and change_url(other) in error and "Other Test" in error
    assert f'href="{change_url(other)}"' in response.content.decode()
    contact.refresh_from_db()
    assert contact.phone == "+19195550102"
    assert not ContactEvent.objects.filter(contact=contact, kind="updated").exists()


def test_custom_fields_are_validated_against_their_definitions(client, alice, acme):
    CustomField.objects.create(organization=acme, key="score", type="number")
    contact = make_contact(acme, phone="+19195550101")
    client.force_login(alice)
    for text, message in [("score = lots", "is a number"), ("Bad Key! = 1", "Line 1"), ("no equals sign", "no '='"),
                          ("\n".join(f"k{n} = {n}" for n in range(21)), "at most 20")]:
        data = form_data(client.get(change_url(contact)))
        data["custom_fields"] = text
        response = client.post(change_url(contact), data)
        assert response.status_code == 200
        assert message in " ".join(response.context["adminform"].form.errors["custom_fields"])
    contact.refresh_from_db()
    assert contact.custom_fields == {}


def test_each_channel_is_one_subscribed_control_saved_through_the_service(client, alice, acme):
    contact = make_contact(acme, phone="+19195550101")
    client.force_login(alice)
    data = form_data(client.get(change_url(contact)))
    assert data["pref_sms"] == "subscribed" and data["pref_email"] == "subscribed"
    data["pref_sms"] = "unsubscribed"
    client.post(change_url(contact), data)
    pref = ChannelPreference.objects.get(contact=contact)
    assert (pref.channel, pref.opted_in, pref.source) == ("sms", False, "admin")
    assert ContactEvent.objects.get(contact=contact, kind="opted_out").data == {"channel": "sms", "source": "admin"}
    page = client.get(change_url(contact))
    form = page.context["adminform"].form
    assert form["pref_sms"].value() == "unsubscribed"
    assert "Unsubscribed" in form.fields["pref_sms"].help_text and "alice" in form.fields["pref_sms"].help_text
    # Saving the page again with nothing touched opts nobody back in.
    client.post(change_url(contact), form_data(page))
    assert ChannelPreference.objects.get(contact=contact).opted_in is False
    assert not ContactEvent.objects.filter(contact=contact, kind="opted_in").exists()
    # Only the explicit control does.
    data = form_data(client.get(change_url(contact)))
    data["pref_sms"] = "subscribed"
    client.post(change_url(contact), data)
    assert ChannelPreference.objects.get(contact=contact).opted_in is True
    assert ContactEvent.objects.get(contact=contact, kind="opted_in").actor_user == alice


def test_adding_a_contact_with_an_unsubscribed_channel(client, alice, acme):
    client.force_login(alice)
    client.post(ADD, add_data(client, phone="(919) 555-0143", pref_whatsapp="unsubscribed"))
    contact = Contact.objects.get(phone="+19195550143")
    assert list(contact.preferences.values_list("channel", "opted_in")) == [("whatsapp", False)]


def test_typed_custom_fields_show_every_bad_value_at_once_and_save_typed_values(client, alice, acme):
    CustomField.objects.create(organization=acme, key="seats", label="Seats", type="number")
    CustomField.objects.create(organization=acme, key="renews", label="Renews on", type="date")
    CustomField.objects.create(organization=acme, key="plan", label="Plan", type="choice", choices=["gold", "silver"])
    CustomField.objects.create(organization=acme, key="vip", label="VIP", type="boolean")
    contact = make_contact(acme, phone="+19195550101", custom_fields={"legacy": "x"})
    client.force_login(alice)
    page = client.get(change_url(contact))
    html = page.content.decode()
    assert 'type="number"' in html and 'type="date"' in html and 'name="cf_vip"' in html
    assert '<option value="gold">' in html
    data = form_data(page)
    data.update(cf_seats="a dozen", cf_renews="31/31/2020", cf_plan="platinum", phone="555-01")
    response = client.post(change_url(contact), data)
    errors = response.context["adminform"].form.errors
    assert {"cf_seats", "cf_renews", "cf_plan", "phone"} <= set(errors)
    assert "seats" in errors["cf_seats"][0] and "platinum" in errors["cf_plan"][0]
    assert Contact.objects.get(pk=contact.pk).custom_fields == {"legacy": "x"}
    data.update(cf_seats="12", cf_renews="2027-01-31", cf_plan="gold", cf_vip="on", phone="+19195550101")
    response = client.post(change_url(contact), data)
    assert response.status_code == 302
    assert Contact.objects.get(pk=contact.pk).custom_fields == {
        "legacy": "x", "seats": 12, "renews": "2027-01-31", "plan": "gold", "vip": True}


def test_a_phone_that_only_changed_format_is_not_in_the_history(client, alice, acme):
    from django.contrib.admin.models import LogEntry

    contact = make_contact(acme, phone="+19195550101", first_name="Ann")
    client.force_login(alice)
    data = form_data(client.get(change_url(contact)))
    data.update(phone="919-555-0101", first_name="Anna")
    client.post(change_url(contact), data)
    entry = LogEntry.objects.get(object_id=str(contact.pk))
    assert "First name" in entry.get_change_message() and "Phone" not in entry.get_change_message()


def test_a_tag_pick_that_is_not_an_id_is_a_form_error_not_a_500(client, alice, acme):
    contact = make_contact(acme, phone="+19195550101")
    client.force_login(alice)
    data = form_data(client.get(change_url(contact)))
    data["tags"] = ["vip, news"]
    response = client.post(change_url(contact), data)
    assert response.status_code == 200 and "tags" in response.context["adminform"].form.errors


def test_a_nameless_contact_reads_no_name_not_a_dash(client, alice, acme):
    make_contact(acme, phone="+19195550101", first_name="", last_name="")
    client.force_login(alice)
    page = client.get(CHANGELIST).content.decode()
    assert "(no name)" in page


def test_the_change_page_shows_the_timeline_and_read_only_consent_fields(client, alice, acme):
    contact = make_contact(acme, phone="+19195550101")
    services.contact_add_tags(contact=contact, names=["vip"], actor=services.Actor(label="test"))
    client.force_login(alice)
    response = client.get(change_url(contact))
    page = response.content.decode()
    assert "contact-timeline" in page and "Tags Added" in page and "Created" in page
    form = response.context["adminform"].form
    for read_only in ("is_textable", "textable_checked_at", "opted_out_at", "opt_out_source", "created_at",
                      "updated_at"):
        assert read_only not in form.fields
    assert "opted_out" in form.fields


def test_the_assignee_choices_are_the_organizations_staff(client, alice, bob, mallory):
    client.force_login(alice)
    form = client.get(ADD).context["adminform"].form
    assert set(form.fields["assignee"].queryset) == {alice, bob}


# --- tags and custom fields --------------------------------------------------------------------
def test_the_tag_list_shows_contact_counts_of_the_users_organization(client, alice, acme, globex):
    make_contact(acme, phone="+19195550101", tags=["vip"])
    make_contact(acme, phone="+19195550102", tags=["VIP", "news"])
    make_contact(globex, phone="+442079460958", tags=["vip"])
    client.force_login(alice)
    response = client.get(reverse("admin:contacts_tag_changelist"))
    counts = {t.name: t.contact_count for t in response.context["cl"].result_list}
    assert counts == {"vip": 2, "news": 1}


def test_a_tag_is_unique_case_insensitively_and_gets_its_key(client, alice, acme):
    Tag.objects.create(organization=acme, name="VIP", key="vip")
    client.force_login(alice)
    url = reverse("admin:contacts_tag_add")
    response = client.post(url, {"name": "vip"})
    assert "already exists" in response.context["adminform"].form.errors["name"][0]
    assert client.post(url, {"name": "  Gold  "}).status_code == 302
    tag = Tag.objects.get(organization=acme, name="Gold")
    assert tag.key == "gold"


def test_a_custom_field_key_is_validated_and_choices_are_one_per_line(client, alice, acme):
    client.force_login(alice)
    url = reverse("admin:contacts_customfield_add")
    response = client.post(url, {"key": "9 lives", "type": "text", "choices": ""})
    assert response.context["adminform"].form.errors["key"]
    response = client.post(url, {"key": "tier", "type": "choice", "choices": ""})
    assert response.context["adminform"].form.errors["choices"] == ["A choice field needs at least one choice."]
    assert client.post(url, {"key": "tier", "label": "Tier", "type": "choice", "choices": "gold\nsilver\n"}).status_code == 302
    field = CustomField.objects.get(organization=acme, key="tier")
    assert field.choices == ["gold", "silver"]
    response = client.post(url, {"key": "tier", "type": "text", "choices": ""})
    assert "already exists" in response.context["adminform"].form.errors["key"][0]


def test_a_superuser_adds_a_contact_to_the_organization_they_pick(client, globex, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(root)
    response = client.post(ADD, add_data(client, organization=globex.pk, phone="020 7946 0958"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    # Globex's default region is GB: the national number is read as a UK one.
    assert Contact.objects.get(organization=globex).phone == "+442079460958"


def test_staff_see_no_organization_field(client, alice):
    client.force_login(alice)
    assert "organization" not in client.get(ADD).context["adminform"].form.fields


# --- the admin index ---------------------------------------------------------------------------
def test_the_index_shows_the_organizations_figures_imports_and_an_opt_out_chart(client, alice, acme, globex):
    from django.utils import timezone

    from contacts.services import Actor, contact_opt_out
    from contacts_crm.admin import opt_outs_per_week

    people = [make_contact(acme, phone=f"+191955501{n:02d}") for n in range(4)]
    Contact.objects.filter(pk=people[0].pk).update(is_textable=True)
    contact_opt_out(contact=people[1], actor=Actor(label="test", source="api"))
    make_contact(globex, phone="+442079460958")
    weeks = opt_outs_per_week(acme, now=timezone.now())
    assert len(weeks) == 12 and weeks[-1][1] == 1 and sum(n for _, n in weeks) == 1
    client.force_login(alice)
    response = client.get(reverse("admin:index"))
    html = response.content.decode()
    assert response.context["crm_contacts"] == 4
    assert response.context["crm_opted_out_share"] == 0.25 and response.context["crm_textable_share"] == 0.25
    assert '<svg id="opt-out-chart"' in html and "1 opt-out</title>" in html
    assert "25.0%" in html and "View site" not in html


def test_the_index_of_a_user_without_an_organization_is_djangos(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(root)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200 and "crm_contacts" not in response.context


def test_the_date_hierarchy_drills_down_without_scanning_the_contacts(client, alice, acme):
    from datetime import datetime

    from django.utils import timezone

    old = make_contact(acme, phone="+19195550101")
    new = make_contact(acme, phone="+19195550102")
    Contact.objects.filter(pk=old.pk).update(created_at=timezone.make_aware(datetime(2024, 3, 5, 12)))
    Contact.objects.filter(pk=new.pk).update(created_at=timezone.make_aware(datetime(2025, 7, 9, 12)))
    client.force_login(alice)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(CHANGELIST).content.decode()
    assert not [q for q in queries.captured_queries if "datetime_trunc" in q["sql"].lower()
                or "date_trunc" in q["sql"].lower()]
    assert "created_at__year=2024" in page and "created_at__year=2025" in page
    response = client.get(CHANGELIST + "?created_at__year=2025")
    html = response.content.decode()
    assert "created_at__month=7" in html and "created_at__month=8" not in html  # up to the last contact
    assert [c.pk for c in response.context["cl"].result_list] == [new.pk]
    response = client.get(CHANGELIST + "?created_at__year=2024&created_at__month=3&created_at__day=5")
    assert [c.pk for c in response.context["cl"].result_list] == [old.pk]


def test_the_tag_autocomplete_offers_only_the_users_organizations_tags(client, alice, acme, globex):
    make_contact(acme, phone="+19195550101", tags=["vip-acme"])
    make_contact(globex, phone="+442079460958", tags=["vip-globex"])
    client.force_login(alice)
    response = client.get(reverse("admin:autocomplete"), {
        "app_label": "contacts", "model_name": "contact", "field_name": "tags", "term": "vip"})
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["vip-acme"]


def test_a_forged_tag_of_another_organization_is_refused(client, alice, acme, globex):
    contact = make_contact(acme, phone="+19195550101")
    make_contact(globex, phone="+442079460958", tags=["secret"])
    theirs = Tag.objects.get(organization=globex)
    client.force_login(alice)
    data = form_data(client.get(change_url(contact)))
    data["tags"] = [theirs.pk]
    response = client.post(change_url(contact), data)
    assert response.status_code == 200 and "tags" in response.context["adminform"].form.errors
    assert not contact.tags.exists() and not Tag.objects.filter(organization=acme, key="secret").exists()


def test_a_superuser_adds_a_contact_in_the_organization_they_pick(client, acme, globex, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(root)
    assert client.get(ADD).status_code == 200
    response = client.post(ADD, add_data(client, organization=str(globex.pk), phone="020 7946 0958",
                                         first_name="Gil"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Contact.objects.get(organization=globex).phone == "+442079460958"
    contact = Contact.objects.get(organization=globex)
    assert client.get(change_url(contact)).status_code == 200
