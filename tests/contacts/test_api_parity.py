"""Issue 11: the seed APIs' capabilities — by-phone writes, verify, opt-outs search, opt-out by
email, a per-request phone region."""

from __future__ import annotations

import pytest

from contacts.models import ChannelPreference, Contact, ContactEvent

from ..conftest import client_with_key
from ..factories import make_contact

pytestmark = pytest.mark.django_db
URL = "/api/v1/contacts"


def error(response, status):
    assert response.status_code == status, (response.status_code, response.content[:800])
    return response.json()["error"]


# --- by phone ---------------------------------------------------------------------------------
@pytest.mark.parametrize("written", ["(919) 555-0123", "+1 919 555 0123", "19195550123", "919.555.0123"])
def test_patch_by_phone_in_any_format_updates_the_fields_given(api, acme, written):
    contact = make_contact(acme, phone="+19195550123", first_name="Ann", tags=["a"])
    response = api.patch(f"{URL}/by-phone/{written}", {"last_name": "Lee", "tags": ["b"]}, format="json")
    assert response.status_code == 200, response.content
    contact.refresh_from_db()
    assert (contact.first_name, contact.last_name) == ("Ann", "Lee")
    assert [t.name for t in contact.tags.all()] == ["b"]
    assert contact.events.filter(kind="updated").exists()


def test_patch_by_phone_merges_custom_fields_unless_overwrite(api, acme):
    contact = make_contact(acme, phone="+19195550124", custom_fields={"a": 1, "b": 2})
    api.patch(f"{URL}/by-phone/+19195550124", {"custom_fields": {"b": 3}}, format="json")
    contact.refresh_from_db()
    assert contact.custom_fields == {"a": 1, "b": 3}
    api.patch(f"{URL}/by-phone/+19195550124?overwrite=true", {"custom_fields": {"c": 4}}, format="json")
    contact.refresh_from_db()
    assert contact.custom_fields == {"c": 4}


def test_delete_by_phone_removes_the_contact(api, acme):
    contact = make_contact(acme, phone="+19195550125")
    assert api.delete(f"{URL}/by-phone/(919) 555-0125").status_code == 204
    assert not Contact.objects.for_org(acme).filter(pk=contact.pk).exists()
    assert Contact.objects.get(pk=contact.pk).deleted_at is not None  # in the trash, as by id
    error(api.delete(f"{URL}/by-phone/(919) 555-0125"), 404)


def test_by_phone_writes_refuse_a_bad_phone_and_another_orgs_contact(api, acme, globex):
    error(api.patch(f"{URL}/by-phone/not-a-phone", {"first_name": "X"}, format="json"), 400)
    theirs = make_contact(globex, phone="+19195550126")
    error(api.patch(f"{URL}/by-phone/+19195550126", {"first_name": "X"}, format="json"), 404)
    error(api.delete(f"{URL}/by-phone/+19195550126"), 404)
    theirs.refresh_from_db()
    assert theirs.first_name != "X"


def test_by_phone_reads_a_national_number_with_region(api, acme):
    contact = make_contact(acme, phone="+447911123457")
    response = api.get(f"{URL}/by-phone/07911 123457?region=GB")
    assert response.status_code == 200 and response.json()["id"] == str(contact.pk)
    assert error(api.get(f"{URL}/by-phone/07911 123457?region=XX"), 400)["fields"]["region"]


def test_a_read_key_may_not_write_by_phone(read_api, acme):
    make_contact(acme, phone="+19195550127")
    error(read_api.patch(f"{URL}/by-phone/+19195550127", {"first_name": "X"}, format="json"), 403)
    error(read_api.delete(f"{URL}/by-phone/+19195550127"), 403)


# --- verify -----------------------------------------------------------------------------------
def test_verify_runs_the_provider_and_updates_the_contact_with_that_phone(read_api, acme):
    contact = make_contact(acme, phone="+19195550128")
    Contact.objects.filter(pk=contact.pk).update(is_textable=None, textable_checked_at=None)
    response = read_api.post(f"{URL}/verify", {"phone": "(919) 555-0128"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["phone"] == "+19195550128" and body["contact_id"] == str(contact.pk)
    assert set(body) == {"phone", "is_textable", "line_type", "carrier", "checked_at", "contact_id"}
    contact.refresh_from_db()
    assert contact.textable_checked_at is not None
    assert contact.events.filter(kind=ContactEvent.Kind.TEXTABILITY_CHECKED).count() == 1


def test_verify_an_unknown_phone_answers_without_a_contact(api, acme):
    body = api.post(f"{URL}/verify", {"phone": "07911 123457", "region": "GB"}, format="json").json()
    assert body["phone"] == "+447911123457" and body["contact_id"] is None
    assert not Contact.objects.filter(phone="+447911123457").exists()


def test_verify_does_not_touch_another_orgs_contact(api, globex):
    theirs = make_contact(globex, phone="+19195550129")
    Contact.objects.filter(pk=theirs.pk).update(textable_checked_at=None)
    assert api.post(f"{URL}/verify", {"phone": "+19195550129"}, format="json").json()["contact_id"] is None
    theirs.refresh_from_db()
    assert theirs.textable_checked_at is None


def test_verify_with_a_misconfigured_provider_is_a_503(api, settings):
    settings.TEXTABILITY_PROVIDER = "nope"
    assert error(api.post(f"{URL}/verify", {"phone": "+19195550130"}, format="json"), 503)["code"] == \
        "provider_unavailable"


def test_verify_with_the_network_provider_gives_up_at_its_timeout(api, acme, monkeypatch):
    # A provider that answers nothing: 127.0.0.1's discard port refuses, the lookup reports unknown.
    from contacts import textability

    provider = textability.TwilioProvider(base_url="http://127.0.0.1:9", account_sid="AC1", auth_token="t")
    result = textability.textability_verify(org=acme, phone="+19195550131", provider=provider, timeout=1)
    assert provider.timeout == 1 and provider.retries == 0
    assert result["is_textable"] is None


def test_verify_refuses_a_bad_phone(api):
    error(api.post(f"{URL}/verify", {"phone": "nope"}, format="json"), 400)
    error(api.post(f"{URL}/verify", {}, format="json"), 400)


# --- opt-outs ---------------------------------------------------------------------------------
def test_opt_outs_take_search(api, acme):
    ann = make_contact(acme, first_name="Annabel", opted_out=True)
    make_contact(acme, first_name="Zed", opted_out=True)
    make_contact(acme, first_name="Annabel")  # not opted out
    body = api.get(f"{URL}/opt-outs", {"search": "annab"}).json()
    assert [c["id"] for c in body["results"]] == [str(ann.pk)]


def test_opt_out_by_email_opts_out_the_contact_with_that_email(api, acme):
    contact = make_contact(acme, email="ann@example.com")
    response = api.post(f"{URL}/opt-out", {"email": "ANN@example.com"}, format="json")
    assert response.status_code == 200 and response.json()["id"] == str(contact.pk)
    contact.refresh_from_db()
    assert contact.opted_out is True and contact.opt_out_source == "api"


def test_opt_out_by_an_unknown_email_on_a_channel_creates_an_opted_out_contact(api, acme):
    response = api.post(f"{URL}/opt-out", {"email": "new@example.com", "channel": "email"}, format="json")
    assert response.status_code == 201
    contact = Contact.objects.get(pk=response.json()["id"])
    assert contact.email == "new@example.com" and contact.opted_out is False
    assert ChannelPreference.objects.get(contact=contact).opted_in is False


@pytest.mark.parametrize("body", [{}, {"phone": "+19195550132", "email": "a@example.com"}])
def test_opt_out_needs_exactly_one_of_phone_or_email(api, body):
    assert "exactly one" in error(api.post(f"{URL}/opt-out", body, format="json"), 400)["message"]


def test_opt_out_refuses_a_bad_email(api):
    assert error(api.post(f"{URL}/opt-out", {"email": "nope"}, format="json"), 400)["fields"]["email"]


# --- region -------------------------------------------------------------------------------------
def test_a_create_reads_a_national_number_in_the_region_given(api, acme):
    response = api.post(URL, {"phone": "07911 123457", "region": "gb"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["phone"] == "+447911123457"


def test_an_update_and_a_bulk_item_take_region(api, acme):
    contact = make_contact(acme, email="a@example.com")
    body = api.patch(f"{URL}/{contact.pk}", {"phone": "07911 123458", "region": "GB"}, format="json").json()
    assert body["phone"] == "+447911123458"
    results = api.post(f"{URL}/bulk", {"contacts": [{"phone": "07911 123459", "region": "GB"},
                                                    {"phone": "07911 123460", "region": "ZZ"}]},
                       format="json").json()["results"]
    assert results[0]["outcome"] == "created"
    assert Contact.objects.get(pk=results[0]["id"]).phone == "+447911123459"
    assert results[1]["outcome"] == "error" and "region" in results[1]["error"]["fields"]


def test_a_bad_region_is_a_400_naming_it(api):
    assert "region" in error(api.post(URL, {"phone": "07911 123457", "region": "XX"}, format="json"), 400)["fields"]


def test_the_phone_filter_takes_region(api, acme):
    contact = make_contact(acme, phone="+447911123461")
    body = api.get(URL, {"phone": "07911 123461", "region": "GB"}).json()
    assert [c["id"] for c in body["results"]] == [str(contact.pk)]
    assert "region" in error(api.get(URL, {"phone": "07911 123461", "region": "QQ"}), 400)["fields"]


def test_mallory_cannot_verify_into_acme(globex_write_key, acme):
    contact = make_contact(acme, phone="+19195550133")
    Contact.objects.filter(pk=contact.pk).update(textable_checked_at=None)
    client = client_with_key(globex_write_key)
    assert client.post(f"{URL}/verify", {"phone": "+19195550133"}, format="json").json()["contact_id"] is None
    contact.refresh_from_db()
    assert contact.textable_checked_at is None


# --- limit, reachable_on, lists ------------------------------------------------------------------
def test_limit_goes_up_to_1000_and_no_further(api, acme):
    from contacts_crm.api.pagination import MAX_LIMIT

    assert MAX_LIMIT == 1000
    for _ in range(3):
        make_contact(acme)
    assert len(api.get(URL, {"limit": 1000}).json()["results"]) == 3
    assert "1000" in error(api.get(URL, {"limit": 1001}), 400)["fields"]["limit"][0]


@pytest.fixture
def reach(acme):
    from contacts.services import Actor, contact_set_preferences

    people = {
        "sms_ok": make_contact(acme, phone="+19195550201"),
        "untextable": make_contact(acme, phone="+19195550202"),
        "unknown_textable": make_contact(acme, phone="+19195550203"),
        "sms_opted_out": make_contact(acme, phone="+19195550204"),
        "global_out": make_contact(acme, phone="+19195550205", email="out@example.com", opted_out=True),
        "email_only": make_contact(acme, email="e@example.com"),
    }
    Contact.objects.filter(pk=people["sms_ok"].pk).update(is_textable=True)
    Contact.objects.filter(pk=people["untextable"].pk).update(is_textable=False)
    Contact.objects.filter(pk=people["unknown_textable"].pk).update(is_textable=None)
    contact_set_preferences(contact=people["sms_opted_out"], preferences={"sms": False}, actor=Actor(label="t"))
    return people


def _names(reach, ids):
    by_id = {str(c.pk): name for name, c in reach.items()}
    return sorted(by_id[i] for i in ids)


def test_reachable_on_sms_needs_a_phone_consent_and_not_untextable(api, reach):
    body = api.get(URL, {"reachable_on": "sms"}).json()
    assert _names(reach, [c["id"] for c in body["results"]]) == ["sms_ok", "unknown_textable"]


def test_reachable_on_any_of_several_channels(api, reach):
    body = api.get(URL, {"reachable_on": "email,whatsapp", "limit": 100}).json()
    assert _names(reach, [c["id"] for c in body["results"]]) == [
        "email_only", "sms_ok", "sms_opted_out", "unknown_textable", "untextable"]


def test_reachable_on_an_unknown_channel_is_a_400(api, reach):
    assert "fax" in error(api.get(URL, {"reachable_on": "sms,fax"}), 400)["fields"]["reachable_on"][0]


def test_the_segment_field_reachable_on_is_the_same_rule(api, acme, reach):
    from segments.rules import compile_rules

    rules = {"field": "reachable_on", "operator": "contains_any", "value": ["sms"]}
    via_segment = set(Contact.objects.for_org(acme).filter(compile_rules(rules, org=acme)).values_list("pk", flat=True))
    via_filter = set(Contact.objects.for_org(acme).reachable_on("sms").values_list("pk", flat=True))
    assert via_segment == via_filter == {reach["sms_ok"].pk, reach["unknown_textable"].pk}
    body = api.post("/api/v1/segments/preview", {"rules": {"field": "reachable_on", "operator": "eq",
                                                           "value": "email"}}, format="json").json()
    assert body["count"] == 1
    err = error(api.post("/api/v1/segments/preview", {"rules": {"field": "reachable_on", "operator": "eq",
                                                                "value": "fax"}}, format="json"), 400)
    assert "channel" in err["message"]


def test_a_contact_shows_its_lists(api, acme):
    from segments.models import ContactList, ListMembership

    contact = make_contact(acme)
    a = ContactList.objects.create(organization=acme, name="A")
    b = ContactList.objects.create(organization=acme, name="B")
    ListMembership.objects.create(list=b, contact=contact)
    ListMembership.objects.create(list=a, contact=contact)
    assert api.get(f"{URL}/{contact.pk}").json()["lists"] == sorted([a.pk, b.pk])
    assert api.get(URL).json()["results"][0]["lists"] == sorted([a.pk, b.pk])


# --- sort=name, priority_list, cursors for every sort ---------------------------------------------
@pytest.fixture
def names(acme):
    rows = [("Émile", "Zola"), ("emma", "zola"), ("Ann", "Åberg"), ("Bob", "aberg"), ("Cy", "Brown"), ("Al", "brown")]
    return [make_contact(acme, first_name=f, last_name=last) for f, last in rows]


def _walk(api, params):
    seen, cursor = [], None
    for _ in range(20):
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = api.get(URL, query)
        assert response.status_code == 200, response.content
        body = response.json()
        seen += [(c["last_name"], c["first_name"]) for c in body["results"]]
        cursor = body["next_cursor"]
        if not cursor:
            return seen
    raise AssertionError("the walk never ended")


def test_sort_by_name_is_last_then_first_name_ignoring_case_and_accents(api, names):
    expected = [("Åberg", "Ann"), ("aberg", "Bob"), ("brown", "Al"), ("Brown", "Cy"), ("Zola", "Émile"),
                ("zola", "emma")]
    assert _walk(api, {"sort": "name", "limit": 2}) == expected
    assert _walk(api, {"sort": "-name", "limit": 4}) == expected[::-1]


@pytest.mark.parametrize("sort", ["updated_at", "-updated_at", "created_at", "-created_at", "name", "-name"])
def test_a_cursor_walk_sees_everyone_once_in_every_sort(api, names, sort):
    walked = _walk(api, {"sort": sort, "limit": 1})
    assert sorted(walked) == sorted((c.last_name, c.first_name) for c in names)
    assert walked == _walk(api, {"sort": sort, "limit": 100})


def test_priority_list_members_come_first_in_the_chosen_sort(api, acme, names):
    from segments.models import ContactList, ListMembership

    vip = ContactList.objects.create(organization=acme, name="VIP")
    for contact in (names[1], names[4]):  # emma zola, Cy Brown
        ListMembership.objects.create(list=vip, contact=contact)
    walked = _walk(api, {"sort": "name", "priority_list": vip.pk, "limit": 2})
    assert walked[:2] == [("Brown", "Cy"), ("zola", "emma")]
    assert walked[2:] == [("Åberg", "Ann"), ("aberg", "Bob"), ("brown", "Al"), ("Zola", "Émile")]
    body = api.get(URL, {"sort": "name", "priority_list": vip.pk, "offset": 1, "limit": 2}).json()
    assert [(c["last_name"], c["first_name"]) for c in body["results"]] == walked[1:3]


def test_a_cursor_is_bound_to_its_sort_and_priority_list(api, acme, names):
    from segments.models import ContactList

    vip = ContactList.objects.create(organization=acme, name="VIP")
    cursor = api.get(URL, {"sort": "name", "limit": 1}).json()["next_cursor"]
    assert error(api.get(URL, {"sort": "-name", "cursor": cursor}), 400)["fields"]["cursor"]
    assert error(api.get(URL, {"sort": "name", "cursor": cursor, "priority_list": vip.pk}), 400)["fields"]["cursor"]


def test_priority_list_of_another_org_is_a_404(api, globex):
    from segments.models import ContactList

    theirs = ContactList.objects.create(organization=globex, name="Theirs")
    error(api.get(URL, {"priority_list": theirs.pk}), 404)
    error(api.get(URL, {"priority_list": "x"}), 400)


def test_segment_members_and_opt_outs_take_sort_name(api, acme, names):
    body = api.get(f"{URL}/opt-outs", {"sort": "name"}).json()
    assert body["results"] == []
    from segments.models import Segment

    segment = Segment.objects.create(organization=acme, name="all", rules={"field": "is_test", "operator": "eq",
                                                                         "value": False})
    body = api.get(f"/api/v1/segments/{segment.pk}/members", {"sort": "name", "limit": 3}).json()
    assert [c["last_name"] for c in body["results"]] == ["Åberg", "aberg", "brown"]
