"""The import pipeline end to end on the database: CREATE_UPDATE rules, counters, errors."""

from __future__ import annotations

import pytest
from django.db import connection

from contacts.models import Contact, ContactEvent
from imports.models import ImportJob, ImportRowError, StagedRow
from imports.pipeline import ImportRefused

from ..factories import make_contact
from .helpers import counters, csv_bytes, run_import_bytes, xlsx_bytes

pytestmark = pytest.mark.django_db(transaction=False)

BASIC = """firstName,lastName,phoneNumber,email,tags,State,Zip
Ann,Lee,(919) 555-0101,ann@example.com,"vip, news",NC,27701
Bob,Ray,919.555.0102,,vip,sc,
,,,,,,
Cat,,+1 919 555 0103,cat@example.com,,NC,2134
"""


def test_it_creates_contacts_with_normalized_cells_and_one_event_each(acme):
    job = run_import_bytes(acme, csv_bytes(BASIC))
    assert job.status == "succeeded", job.error
    assert counters(job) == {"total": 4, "created": 3, "updated": 0, "unchanged": 0, "merged": 0, "skipped": 1,
                             "failed": 0}
    ann = Contact.objects.get(phone="+19195550101")
    assert (ann.first_name, ann.email, ann.state, ann.zip) == ("Ann", "ann@example.com", "NC", "27701")
    assert sorted(t.name for t in ann.tags.all()) == ["news", "vip"]
    assert Contact.objects.get(phone="+19195550102").state == "SC"
    assert Contact.objects.get(phone="+19195550103").zip == "02134"  # Excel ate the leading zero
    events = ContactEvent.objects.filter(kind="imported")
    assert events.count() == 3
    assert {e.data["import_id"] for e in events} == {job.pk}
    assert not StagedRow.objects.exists()


def test_the_same_file_twice_reports_nothing_created_or_updated(acme):
    run_import_bytes(acme, csv_bytes(BASIC))
    again = run_import_bytes(acme, csv_bytes(BASIC))
    assert counters(again) == {"total": 4, "created": 0, "updated": 0, "unchanged": 3, "merged": 0, "skipped": 1,
                               "failed": 0}
    assert ContactEvent.objects.filter(kind="imported").count() == 3


def test_rows_sharing_a_phone_fold_in_file_order_anywhere_in_the_file(acme, monkeypatch):
    monkeypatch.setattr("imports.pipeline.CHUNK_GROUPS", 2)  # folding must cross chunk boundaries
    text = "phone,first_name,last_name,city,tags\n" + "\n".join([
        "9195550101,Ann,,Durham,a",
        "9195550199,Zed,,,",
        "9195550198,Yan,,,",
        "919-555-0101,,Lee,,b",
        "9195550197,Xi,,,",
        "(919) 555 0101,Anne,,,a",
    ])
    job = run_import_bytes(acme, csv_bytes(text))
    assert counters(job)["created"] == 4 and counters(job)["merged"] == 2 and counters(job)["total"] == 6
    ann = Contact.objects.get(phone="+19195550101")
    assert (ann.first_name, ann.last_name, ann.city) == ("Anne", "Lee", "Durham")  # empty cells never clear
    assert sorted(t.name for t in ann.tags.all()) == ["a", "b"]


def test_an_update_never_clears_a_field_with_an_empty_cell(acme):
    contact = make_contact(acme, phone="+19195550101", first_name="Ann", city="Durham", email="ann@example.com")
    job = run_import_bytes(acme, csv_bytes("phone,first_name,city,email\n9195550101,,Raleigh,\n"))
    assert counters(job)["updated"] == 1
    contact.refresh_from_db()
    assert (contact.first_name, contact.city, contact.email) == ("Ann", "Raleigh", "ann@example.com")
    event = ContactEvent.objects.get(contact=contact, kind="imported")
    assert event.data["fields"] == ["city"] and event.actor_label == f"import {job.pk}"


def test_an_import_never_opts_a_contact_back_in_but_may_opt_one_out(acme):
    out = make_contact(acme, phone="+19195550101", opted_out=True)
    keep = make_contact(acme, phone="+19195550102")
    job = run_import_bytes(acme, csv_bytes("phone,opted_out\n9195550101,no\n9195550102,yes\n"))
    assert job.status == "succeeded"
    out.refresh_from_db()
    keep.refresh_from_db()
    assert out.opted_out is True
    assert keep.opted_out is True and keep.opt_out_source == "import"
    assert ContactEvent.objects.filter(contact=keep, kind="opted_out").exists()


def test_matching_is_by_phone_then_email(acme):
    by_email = make_contact(acme, email="cat@example.com", phone=None)
    job = run_import_bytes(acme, csv_bytes("phone,email,first_name\n9195550103,CAT@example.com,Cat\n"))
    assert counters(job)["updated"] == 1
    by_email.refresh_from_db()
    assert by_email.phone == "+19195550103" and by_email.first_name == "Cat"


def test_a_row_whose_phone_and_email_belong_to_two_contacts_fails_and_writes_nothing(acme):
    a = make_contact(acme, phone="+19195550101")
    b = make_contact(acme, email="b@example.com", phone=None)
    job = run_import_bytes(acme, csv_bytes("phone,email,city\n9195550101,b@example.com,Cary\n"))
    assert counters(job)["failed"] == 1 and counters(job)["updated"] == 0
    error = ImportRowError.objects.get(job=job)
    assert error.line == 2 and str(a.pk) in error.message and str(b.pk) in error.message
    a.refresh_from_db()
    assert a.city == ""


def test_a_bad_optional_cell_is_a_warning_and_a_row_without_phone_or_email_an_error(acme):
    text = "phone,email,country,birthday\n9195550101,not-an-email,Narnia,2023-02-30\nnope,,US,\n"
    job = run_import_bytes(acme, csv_bytes(text))
    assert counters(job) == {"total": 2, "created": 1, "updated": 0, "unchanged": 0, "merged": 0, "skipped": 0,
                             "failed": 1}
    rows = list(ImportRowError.objects.filter(job=job).values_list("line", "column", "value", "severity"))
    assert (2, "email", "not-an-email", "warning") in rows
    assert (2, "country", "Narnia", "warning") in rows
    assert (2, "birthday", "2023-02-30", "warning") in rows
    assert (3, "phone", "nope", "error") in rows
    contact = Contact.objects.get()
    assert contact.email is None and contact.country == ""
    assert job.warnings == 3


@pytest.mark.parametrize("mode, expected", [
    ("create_only", {"created": 1, "updated": 0, "skipped": 1}),
    ("update_only", {"created": 0, "updated": 1, "skipped": 1}),
])
def test_modes_skip_what_they_exclude(acme, mode, expected):
    make_contact(acme, phone="+19195550101")
    job = run_import_bytes(acme, csv_bytes("phone,city\n9195550101,Cary\n9195550102,Apex\n"), mode=mode)
    assert {k: counters(job)[k] for k in expected} == expected


def test_excel_floats_and_scientific_phones_import_from_xlsx(acme):
    data = xlsx_bytes([["Phone", "Email", "ZIP", "Birthday"], [19195550101, "a@example.com", 2134, "1990-03-04"],
                       [1.9195550102e10, "", 501, ""]])
    job = run_import_bytes(acme, data, name="contacts.xlsx")
    assert job.status == "succeeded", job.error
    assert counters(job)["created"] == 2
    assert Contact.objects.get(phone="+19195550101").zip == "02134"
    assert Contact.objects.get(phone="+19195550102").zip == "00501"


def test_a_dry_run_writes_nothing_and_says_what_would_happen(acme):
    make_contact(acme, phone="+19195550101", city="Durham")
    job = run_import_bytes(acme, csv_bytes("phone,city\n9195550101,Cary\n9195550102,Apex\n9195550101,\nbad,\n"),
                           dry_run=True)
    assert counters(job) == {"total": 4, "created": 1, "updated": 1, "unchanged": 0, "merged": 1, "skipped": 0,
                             "failed": 1}
    outcomes = {row["line"]: (row["outcome"], row.get("fields")) for row in job.result["rows"]}
    assert outcomes[2] == ("updated", ["city"]) and outcomes[3] == ("created", ["city", "phone"])
    assert Contact.objects.count() == 1 and Contact.objects.get().city == "Durham"
    assert ImportRowError.objects.filter(job=job, line=5, severity="error").exists()


@pytest.mark.parametrize("name, data, fragment", [
    ("empty.csv", b"", "empty"),
    ("x.csv", b"PK\x03\x04" + b"\x00" * 100, "ZIP"),
    ("x.pdf", b"%PDF-1.4", "pdf"),
    ("mixed.csv", b"a,b,phone\r\n1\t2\t3\r\n4\t5\t6\r\n", "delimiter"),
    ("nophone.csv", b"name,city\r\nAnn,Durham\r\n", "phone or email"),
])
def test_a_refused_file_says_why_and_writes_nothing(acme, name, data, fragment):
    with pytest.raises(ImportRefused) as refused:
        run_import_bytes(acme, data, name=name)
    assert fragment.lower() in str(refused.value).lower()
    assert not ImportJob.objects.exists() and not Contact.objects.exists()


def test_utf16_semicolon_and_bom_files_import(acme):
    text = "Name;Mobile;E-mail\nÉlodie Garçon;+33 6 12 34 56 78;elodie@example.fr\n"
    job = run_import_bytes(acme, b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"))
    assert job.status == "succeeded", job.error
    contact = Contact.objects.get()
    assert contact.display_name == "Élodie Garçon" and contact.phone == "+33612345678"


def test_formula_escapes_of_our_exporter_are_undone(acme):
    job = run_import_bytes(acme, csv_bytes("phone,first_name\n'+19195550101,'=SUM(A1)\n"))
    assert counters(job)["created"] == 1
    assert Contact.objects.get().first_name == "=SUM(A1)"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="tag_ids are kept on PostgreSQL only")
def test_on_postgres_imported_tags_land_in_tag_ids_for_new_and_existing_contacts(acme):
    from contacts.models import ContactTag
    from contacts.services import Actor, contact_add_tags

    existing = make_contact(acme, phone="+19195550102", tags=["old"])
    job = run_import_bytes(acme, csv_bytes(BASIC))
    assert job.status == "succeeded", job.error

    def links(contact):
        return sorted(ContactTag.objects.filter(contact=contact).values_list("tag_id", flat=True))

    for contact in Contact.objects.for_org(acme):
        assert sorted(contact.tag_ids) == links(contact), contact.phone
    existing.refresh_from_db()
    assert len(existing.tag_ids) == 2  # "old" and the file's tag
    # The importer's switch is transaction-local: the trigger still follows later tag writes.
    contact_add_tags(contact=existing, names=["later"], actor=Actor(label="test"))
    existing.refresh_from_db()
    assert len(existing.tag_ids) == 3 and sorted(existing.tag_ids) == links(existing)


def test_nul_characters_past_the_head_and_in_vcards_are_removed_with_a_warning(acme):
    # A NUL in the first 64 KiB of a CSV refuses it as "not a text file"; the CSV reader drops
    # one further down. In a vCard value (raw or quoted-printable =00) it is dropped with a
    # warning naming the card and property: PostgreSQL stores no NUL, and the rest is data.
    rows = b"".join(b"+1919555%04d,Name%d,x\n" % (i, i) for i in range(5000))
    job = run_import_bytes(acme, b"phone,first_name,notes\n" + rows + b"+19196660001,A\x00nn,ok\x00\n")
    assert job.status == "succeeded", job.error
    assert job.created == 5001
    ann = Contact.objects.get(phone="+19196660001")
    assert (ann.first_name, ann.notes) == ("Ann", "ok")

    vcards = (b"BEGIN:VCARD\nVERSION:3.0\nFN:Bo\x00b\nTEL:+19196660002\nCATEGORIES:v\x00ip\nEND:VCARD\n"
              b"BEGIN:VCARD\nVERSION:2.1\nN;ENCODING=QUOTED-PRINTABLE:Ca=00t;\nTEL:+19196660003\nEND:VCARD\n")
    job = run_import_bytes(acme, vcards, name="cards.vcf")
    assert job.status == "succeeded", job.error
    bob = Contact.objects.get(phone="+19196660002")
    assert bob.display_name.replace(" ", "") in ("Bob", "") and [t.name for t in bob.tags.all()] == ["vip"]
    assert Contact.objects.get(phone="+19196660003").last_name == "Cat"
    assert ImportRowError.objects.filter(job=job, severity="warning", message__contains="NUL").count() >= 2


def _analyze_calls(monkeypatch, *, chunk_groups: int) -> list:
    """Every pgcopy.analyze call's models, with the import's thresholds lowered so a small file
    takes the path of a 1M-row one."""
    from contacts import pgcopy
    from imports import pipeline

    monkeypatch.setattr(pipeline, "ANALYZE_MIN_GROUPS", 0)
    monkeypatch.setattr(pipeline, "CHUNK_GROUPS", chunk_groups)
    calls = []
    real = pgcopy.analyze
    monkeypatch.setattr(pgcopy, "analyze", lambda *models, **kw: (calls.append(models), real(*models, **kw)))
    return calls


def test_a_big_import_refreshes_planner_statistics_between_chunks_and_still_lands(acme, monkeypatch):
    # The thresholds lowered so this small file takes the path of a 1M-row one: ANALYZE before
    # every chunk (a no-op on SQLite), and the import is unchanged.
    from imports import pipeline

    monkeypatch.setattr(pipeline, "ANALYZE_EVERY_CHUNKS", 1)
    calls = _analyze_calls(monkeypatch, chunk_groups=2)
    job = run_import_bytes(acme, csv_bytes(BASIC))
    assert job.status == "succeeded", job.error
    contact_calls = [models for models in calls if Contact in models]
    assert job.created == 3 and len(contact_calls) == 2  # 3 groups in chunks of 2: before each chunk
    assert len(calls) == 3  # and the staged rows once, before the fold


def test_a_big_import_refreshes_statistics_again_after_its_first_chunk(acme, monkeypatch, settings):
    # A first import into an organization: before its first chunk the statistics hold none of
    # its contacts, so they are refreshed once more after it (when it created most of its
    # contacts), then every ANALYZE_EVERY_CHUNKS.
    settings.IMPORT_PARTITIONS = 1  # chunks are counted per partition
    calls = _analyze_calls(monkeypatch, chunk_groups=1)
    job = run_import_bytes(acme, csv_bytes(BASIC))
    assert job.status == "succeeded" and job.created == 3
    assert len([models for models in calls if Contact in models]) == 2  # chunks 0 and 1 of 0, 1, 2
    calls.clear()
    again = run_import_bytes(acme, csv_bytes(BASIC))  # its first chunk created nothing: once
    assert again.unchanged == 3 and len([models for models in calls if Contact in models]) == 1
