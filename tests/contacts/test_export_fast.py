"""Issue 14: the PostgreSQL COPY path of the exporter (contacts.export_sql) writes the same bytes
as the model-instance path it replaces there, on values chosen to break one or the other."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.utils import timezone
from openpyxl import load_workbook

from contacts.exports import csv_chunks, export_rows, vcard_chunks, write_xlsx
from contacts.models import Contact, CustomField
from contacts.services import Actor, contact_set_preferences
from segments.models import ContactList
from segments.services import list_add_members

from ..factories import make_contact, make_org

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's"),
]
ACTOR = Actor(label="test", source="admin")
TRICKY = [
    "=1+1", "+notaphone", "-5", "@SUM(A1)", "\tTab", "\rCR", "'=quoted", "''", "'", "plain",
    'say "hi", then go', "two\nlines", "crlf\r\nend", "semi;colon", "back\\slash", "Straße ß", "日本語",
    "emoji 🎉", "  spaced  ", "trailing,", "\\.",
]


@pytest.fixture
def tricky_book(acme, alice):
    CustomField.objects.create(organization=acme, key="points", type="number")
    people = []
    for index, text in enumerate(TRICKY):
        people.append(make_contact(
            acme, phone=f"+1919555{2000 + index}", email=f"p{index}@example.com", first_name=text,
            last_name=text[::-1], company=text, notes=text, address=text, external_id=text, city=text,
            tags=[f"t{index}", "Éclair", "zed", "alpha", text.strip()[:60] or "blank"],
            custom_fields={"memo": text, "points": index * 1.5, "tiny": 1e-07, "big": 10**16, "flag": index % 2 == 0,
                           "items": [text, 1, None], "obj": {"k": text, "n": 0.1}, "empty": "", "nothing": None},
        ))
    people.append(make_contact(acme, phone="+19195553000"))  # every optional value missing
    people.append(make_contact(acme, email="only@example.com", secondary_emails=["b@example.com", "c@example.com"],
                               secondary_phones=["+19195553001", "+19195553002"], birthday="1990-02-03"))
    contact_set_preferences(contact=people[0], preferences={"sms": False, "email": False}, actor=ACTOR)
    contact_set_preferences(contact=people[1], preferences={"voice": True}, actor=ACTOR)
    for name in ("Zeta", "alpha list", "Émile"):
        contact_list = ContactList.objects.create(organization=acme, name=name)
        list_add_members(contact_list=contact_list, contact_ids=[people[0].pk, people[2].pk], actor=ACTOR)
    checked = timezone.make_aware(dt.datetime(2025, 5, 6, 7, 8, 9, 123456), dt.UTC)
    Contact.objects.filter(pk=people[3].pk).update(
        assignee=alice, is_textable=False, textable_checked_at=checked, opted_out=True, opted_out_at=checked,
        opt_out_source="api", is_test=True, birthday=dt.date(2001, 12, 31))
    Contact.objects.filter(pk=people[4].pk).update(is_textable=True)
    make_contact(make_org(slug="other"), phone="+19195552000", first_name="=other org")  # never exported
    return acme


def both(org, write):
    fast = write(export_rows(Contact.objects.for_org(org), org=org, fast=True))
    old = write(export_rows(Contact.objects.for_org(org), org=org, fast=False))
    return fast, old


def test_the_copy_path_is_the_default_on_postgresql(acme):
    assert export_rows(Contact.objects.for_org(acme), org=acme).fast


def test_csv_bytes_are_the_same_on_both_paths(tricky_book):
    fast, old = both(tricky_book, lambda table: b"".join(csv_chunks(table)))
    assert fast.count(b"\r\n") > len(TRICKY)  # guard: the comparison saw rows
    assert b"=other org" not in fast
    assert fast == old


def test_csv_bytes_are_the_same_without_a_bom(tricky_book):
    fast, old = both(tricky_book, lambda table: b"".join(csv_chunks(table, bom=False)))
    assert not fast.startswith(b"\xef\xbb\xbf") and fast == old


def test_vcard_bytes_are_the_same_on_both_paths(tricky_book):
    fast, old = both(tricky_book, lambda table: b"".join(vcard_chunks(table)))
    assert fast.count(b"BEGIN:VCARD") == len(TRICKY) + 2
    assert fast == old


def test_xlsx_cells_are_the_same_on_both_paths(tricky_book):
    def cells(table):
        handle = io.BytesIO()
        write_xlsx(table, handle)
        handle.seek(0)
        return [list(row) for row in load_workbook(handle, read_only=True).active.iter_rows(values_only=True)]

    fast, old = both(tricky_book, cells)
    assert len(fast) == len(TRICKY) + 3
    assert fast == old


def test_the_slices_of_a_long_export_join_up_exactly(tricky_book, monkeypatch):
    from contacts import export_sql

    monkeypatch.setattr(export_sql, "COPY_SLICE", 3)  # 23 contacts: 8 statements, the last short
    monkeypatch.setattr(export_sql, "COPY_CHUNK", 2)
    fast, old = both(tricky_book, lambda table: b"".join(csv_chunks(table)))
    assert len(list(csv.reader(io.StringIO(fast.decode("utf-8-sig"), newline="")))) == 1 + len(TRICKY) + 2
    assert fast == old
    fast, old = both(tricky_book, lambda table: b"".join(vcard_chunks(table)))
    assert fast == old


def test_an_empty_book_exports_just_the_header(acme):
    fast, old = both(acme, lambda table: b"".join(csv_chunks(table)))
    assert fast == old and fast.count(b"\r\n") == 1
