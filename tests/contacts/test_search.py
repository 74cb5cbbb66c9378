"""Search: one folded document per contact (contacts.search), kept current by every write path,
and found by the API, the admin and the segment compiler through ContactQuerySet.search."""

from __future__ import annotations

import pytest
from django.db import connection

from contacts.models import Contact
from contacts.search import fold_text, phone_digits, rebuild_search_documents, search_document
from contacts.services import Actor, contact_add_tags, contact_update

from ..factories import make_contact
from ..imports.helpers import csv_bytes, run_import_bytes

URL = "/api/v1/contacts"


def ids(response):
    assert response.status_code == 200, response.content[:500]
    return {c["id"] for c in response.json()["results"]}


# --- the document (pure functions) -------------------------------------------------------------
@pytest.mark.parametrize("text, folded", [
    ("García", "garcia"), ("Zoë", "zoe"), ("ÉLODIE", "elodie"), ("Straße", "strasse"), ("İpek", "ipek"),
    ("ANN@Example.COM", "ann@example.com"), ("Nguyễn", "nguyen"), ("Jørgensen", "jorgensen"), ("", ""),
])
def test_fold_text_casefolds_and_removes_accents(text, folded):
    assert fold_text(text) == folded


def test_phone_digits_are_the_e164_digits_and_the_national_digits():
    assert phone_digits("+19192600002") == ["19192600002", "9192600002"]
    assert phone_digits("+447911123456") == ["447911123456", "7911123456"]
    assert phone_digits("+3538612345678") == ["3538612345678", "8612345678"]  # a 3-digit country code


def test_the_document_holds_names_company_emails_and_every_phone_once():
    doc = search_document({
        "first_name": "Zoë", "last_name": "García", "display_name": "Zoë García", "company": "Acmé Ltd",
        "email": "Zoe@Example.com", "phone": "+19192600002", "secondary_phones": ["+19195557788"],
        "secondary_emails": ["zg@work.example"], "city": "Durham",
    })
    assert doc == (" zoe garcia acme ltd zoe@example.com 19192600002 9192600002 19195557788 9195557788 "
                   "zg@work.example ")


def test_the_document_of_an_empty_contact_is_empty():
    assert search_document({"phone": None, "secondary_phones": [], "first_name": ""}) == ""


# --- what the API finds ------------------------------------------------------------------------
@pytest.fixture
def people(acme):
    return {
        "zoe": make_contact(acme, first_name="Zoë", last_name="García", phone="+19192600002"),
        "joe": make_contact(acme, first_name="Joe", last_name="Garcia", email="joe@example.com"),
        "max": make_contact(acme, first_name="Max", last_name="Robinson", phone="+19192600111",
                            secondary_phones=["+19195557788"], secondary_emails=["max@work.example"]),
    }


@pytest.mark.parametrize("term, expected", [
    ("garcia", {"zoe", "joe"}),
    ("GARCÍA", {"zoe", "joe"}),
    ("zoe", {"zoe"}),
    ("Zoë", {"zoe"}),
    ("zoë garcia", {"zoe"}),
    ("+1 919 260 0002", {"zoe"}),
    ("1 919 260 0002", {"zoe"}),
    ("919 260 0002", {"zoe"}),
    ("(919) 260-0002", {"zoe"}),
    ("9192600002", {"zoe"}),
    ("+1 919 555 7788", {"max"}),
    ("max@work", {"max"}),
    ("work.example", {"max"}),
    ("obins", {"max"}),
    ("ga", {"zoe", "joe"}),  # short words match a word's start
    ("ar", set()),
])
def test_search_folds_accents_both_ways_and_finds_phones_typed_with_spaces(api, people, term, expected):
    from urllib.parse import quote

    found = ids(api.get(f"{URL}?search={quote(term)}"))
    assert found == {str(people[name].pk) for name in expected}


def test_the_admin_changelist_search_uses_the_same_document(client, alice, people):
    client.force_login(alice)
    response = client.get("/admin/contacts/contact/", {"q": "+1 919 260 0002"})
    assert response.status_code == 200
    assert [c.pk for c in response.context["cl"].result_list] == [people["zoe"].pk]


def test_the_segment_compiler_can_call_q_search_as_a_plain_q(acme, people):
    from contacts.querysets import q_search

    assert set(Contact.objects.for_org(acme).filter(q_search("garcía") & ~q_search("zoe"))) == {people["joe"]}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_trgm word similarity (CI's PostgreSQL pass)")
@pytest.mark.postgres
@pytest.mark.parametrize("typo, name", [("Robinsen", "max"), ("Robinsn", "max"), ("Robinsoon", "max"), ("Garcai", "joe"), ("Grcia", "joe"), ("Rbinson", "max")])
def test_on_postgres_a_one_letter_slip_still_finds_the_contact(api, people, typo, name):
    assert str(people[name].pk) in ids(api.get(f"{URL}?search={typo}"))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_trgm word similarity (CI's PostgreSQL pass)")
@pytest.mark.postgres
def test_on_postgres_a_fuzzy_word_does_not_match_everything(api, people):
    assert ids(api.get(f"{URL}?search=Robinsen")) == {str(people["max"].pk)}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plan is PostgreSQL's")
@pytest.mark.postgres
def test_on_postgres_every_search_branch_is_served_by_the_one_trigram_index(acme, people):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a 3-row table: make the planner show its options
    for term in ("robinsen", "+1 919 260 0002", "ga", "zoe garcia"):
        plan = Contact.objects.search(term).explain()
        assert "contact_search_doc_trgm" in plan, (term, plan)


# --- every write path keeps the document -------------------------------------------------------
def test_the_document_follows_an_update_through_the_service(api, acme):
    contact = make_contact(acme, first_name="Ann", phone="+19195550001")
    contact_update(contact=contact, data={"last_name": "Müller", "secondary_emails": ["ann@old.example"]},
                   actor=Actor(label="test"))
    contact.refresh_from_db()
    assert contact.search_doc == search_document(vars(contact))
    assert "muller" in contact.search_doc and "ann@old.example" in contact.search_doc
    assert ids(api.get(f"{URL}?search=muller")) == {str(contact.pk)}


def test_the_document_follows_an_api_patch(api, acme):
    contact = make_contact(acme, first_name="Ann", phone="+19195550001")
    response = api.patch(f"{URL}/{contact.pk}", {"company": "Zürich Re"}, format="json")
    assert response.status_code == 200, response.content[:300]
    assert ids(api.get(f"{URL}?search=zurich")) == {str(contact.pk)}


def test_a_partial_save_of_a_document_field_writes_the_document(acme):
    contact = make_contact(acme, first_name="Ann", phone="+19195550001")
    contact.first_name = "Zoë"
    contact.save(update_fields=["first_name"])
    assert Contact.objects.get(pk=contact.pk).search_doc.startswith(" zoe ")
    assert Contact.objects.get(pk=contact.pk).search_doc.endswith(" 9195550001 ")


def test_a_tag_change_does_not_touch_the_document(acme):
    contact = make_contact(acme, first_name="Ann", phone="+19195550001")
    before = Contact.objects.get(pk=contact.pk).search_doc
    contact_add_tags(contact=contact, names=["vip"], actor=Actor(label="test"))
    assert Contact.objects.get(pk=contact.pk).search_doc == before


def test_an_import_writes_the_document_of_created_and_updated_contacts(api, acme):
    existing = make_contact(acme, first_name="Ann", phone="+19195550001", email="ann@example.com")
    job = run_import_bytes(acme, csv_bytes(
        "first_name,last_name,phone,email\n"
        "Zoë,García,(919) 260-0002,zoe@example.com\n"
        "Ann,Jørgensen,,ann@example.com\n"
    ))
    assert (job.created, job.updated) == (1, 1), job.status
    for contact in Contact.objects.for_org(acme):
        assert contact.search_doc == search_document(vars(contact)), contact
    zoe = Contact.objects.get(organization=acme, phone="+19192600002")
    assert ids(api.get(f"{URL}?search=zoe garcia")) == {str(zoe.pk)}
    assert ids(api.get(f"{URL}?search=jorgensen")) == {str(existing.pk)}
    assert ids(api.get(f"{URL}?search=1 919 260 0002")) == {str(zoe.pk)}


def test_an_import_that_only_keeps_a_second_phone_aside_makes_it_searchable(api, acme):
    existing = make_contact(acme, first_name="Ann", phone="+19195550001", email="ann@example.com")
    run_import_bytes(acme, csv_bytes("phone,email\n919-555-7788,ann@example.com\n"))
    existing.refresh_from_db()
    assert existing.secondary_phones == ["+19195557788"]
    assert ids(api.get(f"{URL}?search=919 555 7788")) == {str(existing.pk)}


def test_rebuild_rewrites_only_stale_documents(acme):
    fresh = make_contact(acme, first_name="Ann", phone="+19195550001")
    stale = make_contact(acme, first_name="Bob", phone="+19195550002")
    Contact.objects.filter(pk=stale.pk).update(search_doc="")  # written by code that did not keep it
    assert rebuild_search_documents(batch=1) == 1
    assert Contact.objects.get(pk=stale.pk).search_doc == search_document(vars(stale))
    assert Contact.objects.get(pk=fresh.pk).search_doc == search_document(vars(fresh))
