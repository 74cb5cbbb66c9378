"""Issue 13 item 12: export → re-import is lossless, for the three cases that were not: a value
that starts with an apostrophe before a formula character, a leading CR in XLSX, and a vCard
round trip that overwrote external_id with the card's UID."""

from __future__ import annotations

import pytest

from contacts.exports import neutralize
from contacts.models import Contact
from contacts.normalize import strip_formula_escape

from ..factories import make_contact, make_org
from ..imports.helpers import run_import_bytes
from .test_exports import exported

pytestmark = pytest.mark.django_db
TYPED = ["'=1+1", "'+1", "''=x", "'-", "=1+1", "'plain", "''", "'", "@me"]


@pytest.mark.parametrize("text", TYPED)
def test_neutralize_and_strip_are_inverse_for_what_a_user_types(text):
    assert strip_formula_escape(neutralize(text)) == text


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_apostrophe_before_a_formula_character_survives_a_round_trip(fmt, acme, api):
    for index, text in enumerate(TYPED):
        make_contact(acme, phone=f"+1919555{1000 + index}", first_name=text, custom_fields={"memo": text})
    empty = make_org(slug="empty")
    job = run_import_bytes(empty, exported(api, fmt), name=f"export.{fmt}")
    assert job.created == len(TYPED), list(job.row_errors.values("column", "value", "message"))
    for index, text in enumerate(TYPED):
        contact = Contact.objects.for_org(empty).get(phone=f"+1919555{1000 + index}")
        assert (contact.first_name, contact.custom_fields.get("memo")) == (text, text)


def test_a_leading_cr_in_xlsx_does_not_become_a_stray_quote(acme, api):
    make_contact(acme, phone="+19195551000", custom_fields={"memo": "\r=SUM(A1)", "memo2": "\rline"})
    empty = make_org(slug="empty")
    run_import_bytes(empty, exported(api, "xlsx"), name="export.xlsx")
    memo = Contact.objects.for_org(empty).get().custom_fields
    assert not memo["memo"].startswith("'") and memo["memo"].endswith("=SUM(A1)")
    assert not memo["memo2"].startswith("'") and memo["memo2"].endswith("line")


def test_a_vcard_round_trip_keeps_external_id_and_never_stores_the_uid(acme, api):
    with_id = make_contact(acme, phone="+19195551000", external_id="crm-42")
    without = make_contact(acme, phone="+19195551001")
    data = exported(api, "vcf")
    assert f"UID:{with_id.pk}".encode() in data
    run_import_bytes(acme, data, name="export.vcf")  # into the same organization
    with_id.refresh_from_db()
    without.refresh_from_db()
    assert (with_id.external_id, without.external_id) == ("crm-42", "")
    empty = make_org(slug="empty")
    run_import_bytes(empty, data, name="export.vcf")
    got = dict(Contact.objects.for_org(empty).values_list("phone", "external_id"))
    assert got == {"+19195551000": "crm-42", "+19195551001": ""}


def test_a_card_from_elsewhere_still_gives_its_uid_as_external_id(acme):
    card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:google-123\r\nFN:Ann\r\nTEL:+19195551002\r\nEND:VCARD\r\n"
    run_import_bytes(acme, card, name="c.vcf")
    assert Contact.objects.for_org(acme).get().external_id == "google-123"
