"""The contacts API: create/merge, update, consent, tags, bulk, activity."""

from __future__ import annotations

import pytest

from contacts.models import ChannelPreference, Contact, ContactEvent, CustomField

from ..factories import make_contact

pytestmark = pytest.mark.django_db
URL = "/api/v1/contacts"


def error(response, status):
    assert response.status_code == status, (response.status_code, response.content[:800])
    return response.json()["error"]


# --- create and merge -------------------------------------------------------------------------
def test_it_creates_a_contact_with_a_normalized_phone_and_an_event(api, acme):
    response = api.post(URL, {"phone": "(919) 555-1234", "email": "Ann@Example.COM", "first_name": " Ann ",
                              "tags": ["VIP", "vip", "news"]}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["_outcome"] == "created"
    assert body["phone"] == "+19195551234"
    assert body["email"] == "Ann@example.com"
    assert body["first_name"] == "Ann"
    assert body["tags"] == ["news", "VIP"]
    contact = Contact.objects.get(pk=body["id"])
    assert contact.organization == acme and contact.email_key == "ann@example.com"
    assert list(contact.events.values_list("kind", flat=True)) == ["created"]  # one event, tags included
    assert contact.events.get().data["tags"] == ["VIP", "news"]
    event = contact.events.get(kind="created")
    assert event.actor_api_key.name == "acme write"


def test_it_merges_a_duplicate_phone_on_create(api, acme):
    first = make_contact(acme, phone="+19195551234", first_name="Ann", tags=["old"], custom_fields={"a": 1})
    response = api.post(URL, {"phone": "919.555.1234", "last_name": "Lee", "tags": ["new"],
                              "custom_fields": {"b": 2}}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["_outcome"] == "merged" and body["id"] == str(first.pk)
    assert body["first_name"] == "Ann" and body["last_name"] == "Lee"
    assert body["tags"] == ["new", "old"]
    assert body["custom_fields"] == {"a": 1, "b": 2}
    assert Contact.objects.for_org(acme).count() == 1
    assert ContactEvent.objects.filter(contact=first, kind="merged").exists()


def test_it_merges_on_email_case_insensitively(api, acme):
    first = make_contact(acme, email="ann@example.com", phone=None)
    body = api.post(URL, {"email": "ANN@example.com", "phone": "+19195550000"}, format="json").json()
    assert body["_outcome"] == "merged" and body["id"] == str(first.pk)
    assert body["phone"] == "+19195550000"


def test_a_phone_of_one_contact_and_an_email_of_another_is_a_409_naming_both(api, acme):
    a = make_contact(acme, phone="+19195551111")
    b = make_contact(acme, email="b@example.com", phone=None)
    err = error(api.post(URL, {"phone": "+19195551111", "email": "b@example.com"}, format="json"), 409)
    assert err["code"] == "conflict"
    assert err["phone_contact_id"] == str(a.pk) and err["email_contact_id"] == str(b.pk)
    assert str(a.pk) in err["message"] and str(b.pk) in err["message"]


def test_merging_never_opts_an_opted_out_contact_back_in(api, acme):
    contact = make_contact(acme, phone="+19195551234", opted_out=True)
    body = api.post(URL, {"phone": "+19195551234", "first_name": "Z"}, format="json").json()
    assert body["opted_out"] is True
    contact.refresh_from_db()
    assert contact.opted_out is True and contact.opt_out_source == "admin"


def test_an_explicit_opted_out_false_opts_back_in_and_the_timeline_says_so(api, acme):
    contact = make_contact(acme, opted_out=True)
    body = api.patch(f"{URL}/{contact.pk}", {"opted_out": False}, format="json").json()
    assert body["opted_out"] is False and body["opted_out_at"] is None
    kinds = list(contact.events.values_list("kind", "data"))
    assert ("opted_in", {"channel": None, "source": "api"}) in kinds


@pytest.mark.parametrize(
    "payload, field, fragment",
    [
        ({"phone": "555-12"}, "phone", "555-12"),
        ({"phone": "mobile"}, "phone", "mobile"),
        ({"email": "not an email"}, "email", "not an email"),
        ({"phone": "+19195551234", "state": "XX"}, "state", "XX"),
        ({"phone": "+19195551234", "country": "Narnia"}, "country", "Narnia"),
        ({"phone": "+19195551234", "timezone": "Mars/Base"}, "timezone", "Mars/Base"),
        ({"phone": "+19195551234", "birthday": "2023-02-30"}, "birthday", "2023-02-30"),
        ({"phone": "+19195551234", "custom_fields": {f"k{i}": i for i in range(21)}}, "custom_fields", "20"),
        ({"phone": "+19195551234", "custom_fields": {"Bad Key": 1}}, "custom_fields", "Bad Key"),
        ({"phone": "+19195551234", "tags": "vip"}, "tags", "list"),
        ({"phone": "+19195551234", "tags": ["x" * 65]}, "tags", "64"),
        ({"phone": "+19195551234", "fist_name": "typo"}, "fist_name", "Unknown field"),
        ({"phone": "+19195551234", "opted_out": "yes"}, "opted_out", "true or false"),
        ({"phone": "+19195551234", "preferences": {"fax": False}}, "preferences", "fax"),
        ({"first_name": "nobody"}, "phone", "phone or an email"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_value(api, acme, payload, field, fragment):
    err = error(api.post(URL, payload, format="json"), 400)
    assert err["code"] == "validation_error"
    assert field in err["fields"], err
    assert any(fragment in message for message in err["fields"][field]), err
    assert Contact.objects.count() == 0


def test_a_malformed_json_body_is_a_400(api):
    response = api.post(URL, "{not json", content_type="application/json")
    assert error(response, 400)["code"] == "parse_error"


def test_an_extension_is_dropped_with_a_warning(api):
    body = api.post(URL, {"phone": "919-555-1234 x123"}, format="json").json()
    assert body["phone"] == "+19195551234"
    assert any("x123" in w or "123" in w for w in body["_warnings"])


# --- update -------------------------------------------------------------------------------------
def test_patch_replaces_tags_and_merges_custom_fields(api, acme):
    contact = make_contact(acme, tags=["a", "b"], custom_fields={"x": 1, "y": 2})
    body = api.patch(f"{URL}/{contact.pk}", {"tags": ["b", "c"], "custom_fields": {"y": None, "z": "3"}},
                     format="json").json()
    assert body["tags"] == ["b", "c"]
    assert body["custom_fields"] == {"x": 1, "z": "3"}
    kinds = set(contact.events.values_list("kind", flat=True))
    assert {"tags_added", "tags_removed", "updated"} <= kinds


def test_patch_with_overwrite_replaces_custom_fields(api, acme):
    contact = make_contact(acme, custom_fields={"x": 1})
    body = api.patch(f"{URL}/{contact.pk}?overwrite=true", {"custom_fields": {"z": 3}}, format="json").json()
    assert body["custom_fields"] == {"z": 3}


def test_patch_leaves_omitted_fields_alone_and_records_the_changes(api, acme):
    contact = make_contact(acme, first_name="Ann", last_name="Lee", city="Durham")
    api.patch(f"{URL}/{contact.pk}", {"city": "Raleigh"}, format="json")
    contact.refresh_from_db()
    assert (contact.first_name, contact.last_name, contact.city) == ("Ann", "Lee", "Raleigh")
    event = contact.events.get(kind="updated")
    assert event.data == {"changes": {"city": ["Durham", "Raleigh"]}}


def test_put_updates_only_the_fields_given_like_patch(api, acme):
    contact = make_contact(acme, email="a@example.com", first_name="Ann", tags=["t"], opted_out=True,
                           custom_fields={"plan": "gold", "seats": 3})
    body = api.put(f"{URL}/{contact.pk}", {"last_name": "Lee", "custom_fields": {"seats": 4}}, format="json").json()
    assert body["first_name"] == "Ann" and body["last_name"] == "Lee" and body["tags"] == ["t"]
    assert body["custom_fields"] == {"plan": "gold", "seats": 4}
    assert body["opted_out"] is True
    body = api.put(f"{URL}/{contact.pk}?overwrite=true", {"tags": ["u"], "custom_fields": {"seats": 5}},
                   format="json").json()
    assert body["tags"] == ["u"] and body["custom_fields"] == {"seats": 5} and body["first_name"] == "Ann"


def test_changing_the_phone_to_another_contacts_phone_is_a_409(api, acme):
    a = make_contact(acme, phone="+19195551111")
    b = make_contact(acme, phone="+19195552222")
    err = error(api.patch(f"{URL}/{b.pk}", {"phone": "+19195551111"}, format="json"), 409)
    assert err["contact_id"] == str(a.pk)


def test_removing_both_phone_and_email_is_refused(api, acme):
    contact = make_contact(acme, phone="+19195551111")
    err = error(api.patch(f"{URL}/{contact.pk}", {"phone": None}, format="json"), 400)
    assert "phone" in err["fields"]


def test_a_changed_phone_is_rechecked_for_textability(api, acme):
    contact = make_contact(acme, phone="+447911123456")  # a UK mobile
    assert contact.is_textable is True and contact.textable_checked_at is not None
    body = api.patch(f"{URL}/{contact.pk}", {"phone": "+442079460958"}, format="json").json()  # a London landline
    assert body["is_textable"] is False


def test_delete_moves_the_contact_to_the_trash_with_its_timeline(api, acme):
    contact = make_contact(acme, tags=["t"])
    assert api.delete(f"{URL}/{contact.pk}").status_code == 204
    assert api.get(f"{URL}/{contact.pk}").status_code == 404
    assert Contact.objects.get(pk=contact.pk).deleted_at is not None
    assert ContactEvent.objects.filter(contact_id=contact.pk, kind="created").get().data["tags"] == ["t"]  # kept


def test_an_unknown_id_is_a_404_in_the_envelope(api):
    err = error(api.get(f"{URL}/01234567-89ab-7def-8123-456789abcdef"), 404)
    assert err["code"] == "not_found"


# --- tags -------------------------------------------------------------------------------------
def test_tags_endpoints_add_ignoring_duplicates_and_remove_case_insensitively(api, acme):
    contact = make_contact(acme, tags=["VIP"])
    body = api.post(f"{URL}/{contact.pk}/tags", {"tags": ["vip", "New"]}, format="json").json()
    assert body["tags"] == ["New", "VIP"]
    body = api.delete(f"{URL}/{contact.pk}/tags/new").json()
    assert body["tags"] == ["VIP"]
    assert error(api.delete(f"{URL}/{contact.pk}/tags/absent"), 404)["code"] == "not_found"


def test_the_first_spelling_of_a_tag_is_kept(api, acme):
    make_contact(acme, tags=["Newsletter"])
    other = make_contact(acme)
    body = api.post(f"{URL}/{other.pk}/tags", {"tags": ["NEWSLETTER"]}, format="json").json()
    assert body["tags"] == ["Newsletter"]


# --- consent ------------------------------------------------------------------------------------
def test_preferences_set_channel_opt_outs_and_leave_the_global_flag(api, acme):
    contact = make_contact(acme)
    body = api.put(f"{URL}/{contact.pk}/preferences", {"sms": False, "email": True}, format="json").json()
    assert body["preferences"] == {"sms": False}
    assert body["opted_out"] is False
    pref = ChannelPreference.objects.get(contact=contact, channel="sms")
    assert pref.source == "api" and pref.changed_at is not None
    err = error(api.put(f"{URL}/{contact.pk}/preferences", {"fax": False}, format="json"), 400)
    assert "fax" in err["message"]


def test_opt_out_of_an_unknown_phone_creates_an_opted_out_contact(api, acme):
    response = api.post(f"{URL}/opt-out", {"phone": "919 555 7777"}, format="json")
    assert response.status_code == 201
    assert response.json()["opted_out"] is True and response.json()["opt_out_source"] == "api"
    again = api.post(f"{URL}/opt-out", {"phone": "+19195557777"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == response.json()["id"]


def test_opt_out_of_one_channel_records_a_preference(api, acme):
    contact = make_contact(acme, phone="+19195557777")
    body = api.post(f"{URL}/opt-out", {"phone": "+19195557777", "channel": "whatsapp"}, format="json").json()
    assert body["id"] == str(contact.pk)
    assert body["opted_out"] is False and body["preferences"] == {"whatsapp": False}


def test_opt_out_refuses_a_bad_phone_or_channel(api):
    assert "phone" in error(api.post(f"{URL}/opt-out", {"phone": "12"}, format="json"), 400)["fields"]
    assert "channel" in error(api.post(f"{URL}/opt-out", {"phone": "+19195557777", "channel": "pigeon"},
                                       format="json"), 400)["fields"]


def test_opt_outs_lists_global_and_channel_opt_outs(api, acme):
    everywhere = make_contact(acme, opted_out=True)
    sms = make_contact(acme, preferences={"sms": False})
    email = make_contact(acme, preferences={"email": False})
    make_contact(acme)
    ids = lambda r: {c["id"] for c in r.json()["results"]}  # noqa: E731
    assert ids(api.get(f"{URL}/opt-outs")) == {str(everywhere.pk), str(sms.pk), str(email.pk)}
    assert ids(api.get(f"{URL}/opt-outs?channel=sms")) == {str(everywhere.pk), str(sms.pk)}
    assert error(api.get(f"{URL}/opt-outs?channel=fax"), 400)["fields"]["channel"]


# --- lookups, count, bulk ---------------------------------------------------------------------
def test_by_phone_finds_any_format(api, acme):
    contact = make_contact(acme, phone="+19195551234")
    assert api.get(f"{URL}/by-phone/(919) 555-1234").json()["id"] == str(contact.pk)
    assert error(api.get(f"{URL}/by-phone/9195550000"), 404)["code"] == "not_found"
    assert "phone" in error(api.get(f"{URL}/by-phone/abc"), 400)["fields"]


def test_count_applies_the_filters(api, acme):
    make_contact(acme, state="NC", tags=["vip"])
    make_contact(acme, state="NC")
    make_contact(acme, state="SC", tags=["vip"])
    assert api.get(f"{URL}/count?state=NC&tags=vip").json() == {"count": 1}
    assert api.get(f"{URL}/count?state=NC,SC").json() == {"count": 3}


def test_bulk_reports_an_outcome_per_item(api, acme):
    existing = make_contact(acme, phone="+19195551234")
    items = [{"phone": "+19195551234", "first_name": "M"}, {"email": "new@example.com"}, {"phone": "bad"},
             {"email": "new@example.com", "tags": ["x"]}]
    results = api.post(f"{URL}/bulk", {"contacts": items}, format="json").json()["results"]
    assert [r["outcome"] for r in results] == ["merged", "created", "error", "merged"]
    assert results[0]["id"] == str(existing.pk)
    assert results[2]["error"]["code"] == "validation_error" and "bad" in results[2]["error"]["fields"]["phone"][0]
    assert Contact.objects.for_org(acme).count() == 2


def test_bulk_refuses_more_than_1000_items(api):
    err = error(api.post(f"{URL}/bulk", {"contacts": [{"email": f"{i}@x.io"} for i in range(1001)]},
                         format="json"), 400)
    assert "1000" in err["message"]
    assert Contact.objects.count() == 0


def test_bulk_delete_by_ids_and_by_not_ids_with_confirm(api, acme, globex):
    a, b, c = make_contact(acme), make_contact(acme), make_contact(acme)
    theirs = make_contact(globex)
    assert api.post(f"{URL}/bulk-delete", {"ids": [str(a.pk), str(theirs.pk)]}, format="json").json() == {
        "deleted": 1}
    assert Contact.objects.filter(pk=theirs.pk).exists()
    err = error(api.post(f"{URL}/bulk-delete", {"not_ids": [str(b.pk)]}, format="json"), 400)
    assert "confirm" in err["fields"]
    assert api.post(f"{URL}/bulk-delete", {"not_ids": [str(b.pk)], "confirm": True}, format="json").json() == {
        "deleted": 1}
    assert set(Contact.objects.live().values_list("pk", flat=True)) == {b.pk, theirs.pk}
    assert not Contact.objects.live().filter(pk=c.pk).exists()  # in the trash (tests/contacts/test_trash.py)


def test_a_member_cannot_bulk_delete_from_the_browsable_api(client, acme, bob):
    contact = make_contact(acme)
    client.force_login(bob)
    response = client.post(f"{URL}/bulk-delete", {"ids": [str(contact.pk)]}, content_type="application/json")
    assert error(response, 403)["code"] == "permission_denied"
    assert Contact.objects.filter(pk=contact.pk).exists()


# --- activity -----------------------------------------------------------------------------------
def test_activity_lists_the_timeline_and_accepts_message_events(api, acme):
    contact = make_contact(acme)
    response = api.post(f"{URL}/{contact.pk}/activity", {"kind": "message_delivered", "data": {"sid": "SM1"}},
                        format="json")
    assert response.status_code == 201
    assert response.json()["actor"] == {"type": "api_key", "name": "acme write"}
    kinds = [e["kind"] for e in api.get(f"{URL}/{contact.pk}/activity").json()["results"]]
    assert kinds == ["message_delivered", "created"]
    err = error(api.post(f"{URL}/{contact.pk}/activity", {"kind": "opted_in"}, format="json"), 400)
    assert "kind" in err["fields"]


# --- custom fields ------------------------------------------------------------------------------
def test_custom_field_definitions_type_check_values_and_their_id_works_as_key(api, acme):
    number = api.post("/api/v1/custom-fields", {"key": "score", "type": "number"}, format="json").json()
    api.post("/api/v1/custom-fields", {"key": "plan", "type": "choice", "choices": ["gold", "silver"]},
             format="json")
    body = api.post(URL, {"phone": "+19195550001", "custom_fields": {str(number["id"]): "42", "plan": "gold"}},
                    format="json").json()
    assert body["custom_fields"] == {"score": 42, "plan": "gold"}
    err = error(api.post(URL, {"phone": "+19195550002", "custom_fields": {"score": "lots"}}, format="json"), 400)
    assert "lots" in err["fields"]["custom_fields"][0]
    err = error(api.post(URL, {"phone": "+19195550002", "custom_fields": {"plan": "bronze"}}, format="json"), 400)
    assert "bronze" in err["fields"]["custom_fields"][0]
    # The same coercion as an imported cell's: a thousands separator, the choice in another case.
    body = api.post(URL, {"phone": "+19195550003", "custom_fields": {"score": "1,234.5", "plan": " Silver"}},
                    format="json").json()
    assert body["custom_fields"] == {"score": 1234.5, "plan": "silver"}


def test_custom_field_keys_are_validated_and_unique(api, acme):
    assert api.post("/api/v1/custom-fields", {"key": "plan"}, format="json").status_code == 201
    assert "already exists" in error(api.post("/api/v1/custom-fields", {"key": "plan"}, format="json"),
                                     400)["fields"]["key"][0]
    assert "key" in error(api.post("/api/v1/custom-fields", {"key": "9lives"}, format="json"), 400)["fields"]
    assert "choices" in error(api.post("/api/v1/custom-fields", {"key": "c", "type": "choice"}, format="json"),
                              400)["fields"]
    assert CustomField.objects.for_org(acme).count() == 1


def test_the_written_out_representation_equals_drfs_field_by_field_one(acme, alice):
    import datetime as dt

    from rest_framework import serializers

    from contacts.serializers import CONTACT_OUTPUT_FIELDS, ContactSerializer

    contact = make_contact(
        acme, phone="+19195550123", email="Zoë@Example.com", company="Acme", birthday="1990-02-03",
        custom_fields={"tier": "gold", "points": 12}, secondary_phones=["+19195550124"], tags=["b", "A"],
        preferences={"sms": False, "email": True}, opted_out=True,
    )
    contact.assignee = alice
    contact.save()
    contact = Contact.objects.with_related().get(pk=contact.pk)
    fast = ContactSerializer(contact).data
    generic = serializers.ModelSerializer.to_representation(ContactSerializer(contact), contact)
    assert list(fast) == CONTACT_OUTPUT_FIELDS
    assert fast == generic
    assert fast["tags"] == ["A", "b"] and fast["assignee"] == alice.pk and fast["birthday"] == "1990-02-03"
    assert fast["opted_out_at"].endswith("Z") and fast["preferences"] == {"sms": False}
    # A contact with the optional values unset (None dates) too.
    bare = Contact.objects.with_related().get(pk=make_contact(acme, email="x@example.com").pk)
    assert ContactSerializer(bare).data == serializers.ModelSerializer.to_representation(ContactSerializer(bare), bare)
    assert isinstance(contact.created_at, dt.datetime)
    from django.utils import timezone

    with timezone.override("America/New_York"):  # DRF renders in the current time zone; so do we
        assert ContactSerializer(contact).data == serializers.ModelSerializer.to_representation(
            ContactSerializer(contact), contact)
        assert not ContactSerializer(contact).data["created_at"].endswith("Z")


def test_bulk_items_the_write_engine_refuses_mid_batch_are_error_items_and_the_rest_lands(api, acme):
    """Issue 13 item 8: the items failed only at write time (a phone of one contact with the email
    of another; more custom fields than a contact may hold, counting those it has) used to leave
    the items before them committed and answer 500. Each gets its own outcome."""
    from contacts.upsert import MAX_CUSTOM_FIELDS

    ann = make_contact(acme, phone="+19195550001", email="ann@example.com")
    bob = make_contact(acme, phone="+19195550002", email="bob@example.com",
                       custom_fields={f"k{i}": i for i in range(MAX_CUSTOM_FIELDS)})
    items = [
        {"phone": "+19195550010", "first_name": "Before"},
        {"phone": "+19195550001", "email": "bob@example.com"},  # Ann's phone, Bob's email
        {"phone": "+19195550011", "first_name": "Between"},
        {"phone": "+19195550002", "custom_fields": {"one_too_many": 1}},
        {"phone": "+19195550012", "first_name": "After"},
    ]
    response = api.post(f"{URL}/bulk", {"contacts": items}, format="json")
    assert response.status_code == 200, response.content[:800]
    results = response.json()["results"]
    assert [(r["index"], r["outcome"]) for r in results] == [
        (0, "created"), (1, "error"), (2, "created"), (3, "error"), (4, "created")]
    assert str(ann.pk) in str(results[1]["error"]) and str(bob.pk) in str(results[1]["error"])
    assert "custom_fields" in str(results[3]["error"])
    assert set(Contact.objects.for_org(acme).values_list("first_name", flat=True)) >= {"Before", "Between", "After"}
    bob.refresh_from_db()
    assert "one_too_many" not in bob.custom_fields and Contact.objects.for_org(acme).count() == 5
