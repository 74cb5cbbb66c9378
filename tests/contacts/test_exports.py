"""Exports (issue 6): CSV, XLSX and vCard through one exporter, round-tripped through our importer."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from contacts.export_views import export_matching_view, export_selected, export_selected_vcf
from contacts.exports import (
    EXPORT_BATCH,
    INFO_COLUMNS,
    csv_chunks,
    export_rows,
    fold_line,
    neutralize,
    vcard_chunks,
)
from contacts.models import Contact, CustomField
from contacts.services import Actor, contact_set_preferences
from imports.mapping import detect_mapping
from imports.readers.vcard import read_vcards
from segments.models import ContactList, Segment
from segments.services import list_add_members

from ..factories import make_contact, make_org
from ..imports.helpers import counters, run_import_bytes

pytestmark = pytest.mark.django_db

ACTOR = Actor(label="test", source="admin")
FORMULA_NAME = "=cmd|' /C calc'!A0"
# Fields an import can carry (compared after a round trip) and those vCard carries.
IMPORTABLE = ["phone", "email", "first_name", "last_name", "display_name", "company", "address", "city", "state",
              "zip", "country", "timezone", "lifecycle_stage", "gender", "avatar_url", "notes", "birthday",
              "language", "external_id", "secondary_phones", "secondary_emails", "opted_out", "custom_fields"]
VCARD_FIELDS = ["phone", "email", "first_name", "last_name", "display_name", "company", "address", "city", "state",
                "zip", "country", "timezone", "gender", "avatar_url", "notes", "birthday", "secondary_phones",
                "secondary_emails"]


def make_cast(org):
    """Contacts with everything that breaks naive exports."""
    CustomField.objects.create(organization=org, key="score", type="number")
    CustomField.objects.create(organization=org, key="renewal", type="date")
    CustomField.objects.create(organization=org, key="vip", type="boolean")
    people = [
        make_contact(org, phone="+19195551234", email="zoe@example.com", first_name="Zoë", last_name="Ångström",
                     display_name='Zoë "Z" Ångström, PhD', company="Müller; Söhne, GmbH",
                     address="12 Rue de l'Église\nBâtiment B", city="Chapel Hill", state="NC", zip="02134",
                     country="US", timezone="America/New_York", lifecycle_stage="customer", gender="female",
                     avatar_url="https://example.com/zoe.png", notes="Line one\nLine two, with; punctuation\\",
                     birthday=dt.date(1990, 5, 1), language="fr", external_id="crm-001",
                     secondary_phones=["+14155550123", "+442079460958"], secondary_emails=["zoe@work.example"],
                     tags=["vip", "Customer", "early adopter"],
                     custom_fields={"score": 42, "renewal": "2025-01-31", "vip": True, "note": "-5 apples"}),
        make_contact(org, phone="+12125550188", first_name=FORMULA_NAME, last_name="@SUM(A1:A9)",
                     company="+1 (555) Corp", notes="\tleading tab", tags=["=HYPERLINK(\"x\")"],
                     custom_fields={"note": "=1+1"}),
        make_contact(org, email="only.email@example.com", first_name="José", last_name="Nuñez",
                     zip="00501", country="US", state="NY", opted_out=True, birthday=dt.date(2001, 12, 31)),
        make_contact(org, phone="+447911123456", first_name="Siân", last_name="O'Brien", country="GB",
                     zip="SW1A 1AA", tags=["uk"]),
    ]
    contact_set_preferences(contact=people[0], preferences={"sms": False, "whatsapp": True}, actor=ACTOR)
    contact_list = ContactList.objects.create(organization=org, name="Newsletter, weekly")
    list_add_members(contact_list=contact_list, contact_ids=[people[0].pk, people[1].pk], actor=ACTOR)
    return people


def snapshot(org, fields=IMPORTABLE, *, tags=True):
    """{phone or email: {field: value}} of the organization's contacts."""
    out = {}
    for contact in Contact.objects.for_org(org).prefetch_related("tags"):
        row = {name: getattr(contact, name) for name in fields}
        if tags:
            row["tags"] = sorted(t.name.casefold() for t in contact.tags.all())
        out[contact.phone or contact.email] = row
    return out


def exported(client, fmt="csv", **params) -> bytes:
    response = client.get("/api/v1/contacts/export", {"format": fmt, **params})
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content) if response.streaming else response.content


def csv_table(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def xlsx_rows(data: bytes) -> list[tuple]:
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(data)).active
    return [tuple(c for c in row) for row in sheet.iter_rows()]


# --- headers ------------------------------------------------------------------------------------
def test_every_exported_header_maps_back_to_its_own_field_in_the_importer(acme):
    make_cast(acme)
    header = export_rows(Contact.objects.for_org(acme), org=acme).header
    mapping = {header[i]: target for i, target in detect_mapping(header).items()}
    assert mapping == {
        "phone": "phone", "email": "email", "first_name": "first_name", "last_name": "last_name",
        "display_name": "display_name", "company": "company", "address": "address", "city": "city",
        "state": "state", "zip": "zip", "country": "country", "timezone": "timezone",
        "lifecycle_stage": "lifecycle_stage", "gender": "gender", "birthday": "birthday", "language": "language",
        "notes": "notes", "avatar_url": "avatar_url", "external_id": "external_id", "other_phones": "phone",
        "other_emails": "email", "tags": "tags", "opted_out": "opted_out", "custom.note": "custom.note",
        "custom.renewal": "custom.renewal", "custom.score": "custom.score", "custom.vip": "custom.vip",
    }
    assert not set(INFO_COLUMNS) & set(mapping)  # ids, timestamps, lists, preferences: ignored on import


def test_custom_columns_list_definitions_first_then_keys_contacts_hold(acme):
    CustomField.objects.create(organization=acme, key="zeta", type="text")
    make_contact(acme, custom_fields={"alpha": "x", "zeta": "y"})
    make_contact(make_org(slug="other"), custom_fields={"secret_key": "z"})
    header = export_rows(Contact.objects.for_org(acme), org=acme).header
    assert [h for h in header if h.startswith("custom.")] == ["custom.zeta", "custom.alpha"]


# --- round trips --------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_imported_into_the_same_organization_changes_nothing(fmt, acme, api):
    people = make_cast(acme)
    before = snapshot(acme)
    job = run_import_bytes(acme, exported(api, fmt), name=f"export.{fmt}")
    assert job.status == "succeeded", job.error if hasattr(job, "error") else job.status
    assert counters(job) == {"total": len(people), "created": 0, "updated": 0, "unchanged": len(people),
                             "merged": 0, "skipped": 0, "failed": 0}
    assert not job.row_errors.exists(), list(job.row_errors.values("column", "value", "message"))
    assert snapshot(acme) == before


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_imported_into_an_empty_organization_recreates_the_contacts(fmt, acme, api):
    people = make_cast(acme)
    empty = make_org(slug="empty")
    for definition in CustomField.objects.for_org(acme):  # typed custom fields keep their type
        CustomField.objects.create(organization=empty, key=definition.key, type=definition.type)
    job = run_import_bytes(empty, exported(api, fmt), name=f"export.{fmt}")
    assert counters(job)["created"] == len(people)
    assert not job.row_errors.exists(), list(job.row_errors.values("column", "value", "message"))
    assert snapshot(empty) == snapshot(acme)
    assert Contact.objects.for_org(empty).get(phone="+12125550188").first_name == FORMULA_NAME


def test_a_vcard_export_imported_into_an_empty_organization_recreates_the_contacts(acme, api):
    people = make_cast(acme)
    empty = make_org(slug="empty")
    job = run_import_bytes(empty, exported(api, "vcf"), name="export.vcf")
    assert counters(job)["created"] == len(people)
    assert not job.row_errors.filter(severity="error").exists()
    expected = snapshot(acme, VCARD_FIELDS)
    for row in expected.values():
        if not row["display_name"]:  # a card always has a formatted name (FN): the importer keeps it
            row["display_name"] = " ".join(p for p in (row["first_name"], row["last_name"]) if p)
        row["notes"] = row["notes"].strip()  # the vCard reader trims notes
    got = snapshot(empty, VCARD_FIELDS)
    for key in expected:
        assert got[key] == expected[key], key

    # UID is the contact's id; on our own cards (PRODID) the reader takes external_id from
    # X-CRM-EXTERNAL-ID and never from UID (issue 13 item 12).
    assert set(Contact.objects.for_org(empty).values_list("external_id", flat=True)) == {p.external_id for p in people}


# --- formula injection, encodings, cell types ---------------------------------------------------
def test_csv_cells_that_a_spreadsheet_would_run_start_with_a_quote(acme, api):
    make_cast(acme)
    data = exported(api, "csv")
    assert data.startswith(b"\xef\xbb\xbfphone,email,")  # UTF-8 BOM: Excel shows accents right
    assert b"\r\n" in data
    rows = {r["last_name"]: r for r in csv_table(data)}
    row = rows["'@SUM(A1:A9)"]
    assert row["first_name"] == "'" + FORMULA_NAME
    assert row["last_name"] == "'@SUM(A1:A9)"
    assert row["phone"] == "'+12125550188"  # Excel would turn +1212… into a number and lose digits
    assert row["company"] == "'+1 (555) Corp"
    assert row["notes"] == "'\tleading tab"
    assert row["tags"] == "'=HYPERLINK(\"x\")"
    assert row["custom.note"] == "'=1+1"
    assert rows["Ångström"]["custom.note"] == "'-5 apples"
    for cells in csv_table(data):
        for value in cells.values():
            assert not value or value[0] not in "=+-@\t\r\0", value


def test_xlsx_cells_are_text_with_formulas_neutralized_and_phones_as_plain_text(acme, api):
    make_cast(acme)
    rows = xlsx_rows(exported(api, "xlsx"))
    header = [c.value for c in rows[0]]
    by_name = {row[header.index("last_name")].value: row for row in rows[1:]}
    zoe, formula = by_name["Ångström"], by_name["'@SUM(A1:A9)"]
    assert all(c.data_type == "s" for row in rows for c in row if c.value is not None)  # no formula, no number
    assert zoe[header.index("phone")].value == "+19195551234"  # a text cell: shown as typed, never evaluated
    assert zoe[header.index("other_phones")].value == "+14155550123, +442079460958"
    assert zoe[header.index("zip")].value == "02134"
    assert zoe[header.index("custom.score")].value == "42"
    assert formula[header.index("first_name")].value == "'" + FORMULA_NAME
    assert formula[header.index("company")].value == "'+1 (555) Corp"


def test_neutralize_quotes_exactly_the_owasp_characters():
    assert [neutralize(v) for v in ["=1", "+1", "-1", "@x", "\tx", "\rx", "\0x", "a=1", "", "'x"]] == [
        "'=1", "'+1", "'-1", "'@x", "'\tx", "'\rx", "'\0x", "a=1", "", "'x"]


def test_the_csv_export_can_leave_out_the_bom(acme):
    make_contact(acme, phone="+19195550100")
    data = b"".join(csv_chunks(export_rows(Contact.objects.for_org(acme), org=acme), bom=False))
    assert data.startswith(b"phone,email,")


# --- vCard --------------------------------------------------------------------------------------
def test_vcard_lines_are_folded_at_75_octets_without_splitting_a_character():
    line = "NOTE:" + "é" * 100 + "x" * 30
    folded = fold_line(line)
    physical = folded.split(b"\r\n")[:-1]
    assert all(len(p) <= 75 for p in physical)
    assert all(p.startswith(b" ") for p in physical[1:])
    for p in physical:
        p.decode("utf-8")  # every physical line is valid UTF-8 on its own
    assert b"".join(p[1:] if i else p for i, p in enumerate(physical)).decode() == line


def test_a_vcard_card_carries_the_contact_with_escaped_text(acme):
    people = make_cast(acme)
    data = b"".join(vcard_chunks(export_rows(Contact.objects.for_org(acme).filter(pk=people[0].pk), org=acme)))
    unfolded = data.replace(b"\r\n ", b"").decode("utf-8")
    lines = unfolded.split("\r\n")
    assert lines[:4] == ["BEGIN:VCARD", "VERSION:3.0", "PRODID:-//contacts_crm//export//EN", f"UID:{people[0].pk}"]
    assert 'FN:Zoë "Z" Ångström\\, PhD' in lines
    assert "N:Ångström;Zoë;;;" in lines
    assert "ORG:Müller\\; Söhne\\, GmbH" in lines
    assert "TEL;TYPE=CELL,PREF:+19195551234" in lines
    assert "TEL;TYPE=VOICE:+14155550123" in lines
    assert "EMAIL;TYPE=INTERNET,PREF:zoe@example.com" in lines
    assert "ADR;TYPE=HOME:;;12 Rue de l'Église\\nBâtiment B;Chapel Hill;NC;02134;United States" in lines
    assert "BDAY:1990-05-01" in lines
    assert "CATEGORIES:Customer,early adopter,vip" in lines
    assert "NOTE:Line one\\nLine two\\, with\\; punctuation\\\\" in lines
    assert lines[-2:] == ["END:VCARD", ""]
    record = next(read_vcards(io.BytesIO(data)))
    assert record.values["notes"][0][1] == "Line one\nLine two, with; punctuation\\"


def test_a_tag_with_a_comma_survives_a_vcard_round_trip(acme, api):
    make_contact(acme, phone="+19195550100", tags=["Smith, Jones & co"])
    empty = make_org(slug="empty")
    run_import_bytes(empty, exported(api, "vcf"), name="export.vcf")
    assert list(Contact.objects.for_org(empty).get().tags.values_list("name", flat=True)) == ["Smith, Jones & co"]


# --- the exporter's reading -----------------------------------------------------------------------
def test_rows_come_in_keyset_batches_with_four_queries_each(acme, django_assert_num_queries):
    people = [make_contact(acme, tags=["t"]) for _ in range(7)]
    table = export_rows(Contact.objects.for_org(acme), org=acme, batch_size=3)
    with django_assert_num_queries(3 * 4):  # batches of 3, 3, 1: contacts, tags, lists, preferences
        rows = list(table.rows())
    ids = [row[table.header.index("id")] for row in rows]
    assert ids == sorted(str(p.pk) for p in people)  # uuid7: creation order, each contact once
    assert EXPORT_BATCH == 2000


def test_the_exporter_never_reads_another_organizations_contacts(acme, globex):
    make_contact(acme, phone="+19195550100")
    make_contact(globex, phone="+19195550101")
    table = export_rows(Contact.objects.all(), org=acme)  # even handed every organization's contacts
    assert [row[0] for row in table.rows()] == ["+19195550100"]


# --- API ------------------------------------------------------------------------------------------
def test_the_export_applies_the_contacts_filters(acme, api):
    make_contact(acme, phone="+19195550100", tags=["vip"])
    make_contact(acme, phone="+19195550101", tags=["other"])
    rows = csv_table(exported(api, "csv", tags="vip"))
    assert [r["phone"] for r in rows] == ["'+19195550100"]


def test_the_export_of_a_segment_names_the_ignored_filters(acme, api):
    make_contact(acme, phone="+19195550100", state="NC")
    make_contact(acme, phone="+19195550101", state="SC")
    segment = Segment.objects.create(organization=acme, name="NC",
                                     rules={"op": "and", "rules": [{"field": "state", "operator": "eq", "value": "NC"}]})
    response = api.get("/api/v1/contacts/export", {"format": "vcf", "segment": segment.pk, "state": "SC"})
    assert response.status_code == 200
    assert response["X-Ignored-Filters"] == "state"
    assert b"".join(response.streaming_content).count(b"BEGIN:VCARD") == 1


def test_a_bad_filter_is_a_400_in_the_json_envelope_whatever_the_format(acme, api):
    response = api.get("/api/v1/contacts/export", {"format": "xlsx", "is_textable": "maybe", "tag": "x"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    fields = response.json()["error"]["fields"]
    assert "'maybe' is not one of true, false, unknown." in fields["is_textable"]
    assert "Unknown parameter 'tag'" in fields["tag"][0]


def test_an_unknown_format_is_a_400_naming_the_formats(acme, api):
    response = api.get("/api/v1/contacts/export", {"format": "pdf"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["format"] == ["'pdf' is not an export format; use one of csv, xlsx, vcf."]


@pytest.mark.parametrize("fmt,content_type,streaming", [
    ("csv", "text/csv; charset=utf-8", True),
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", True),
    ("vcf", "text/vcard; charset=utf-8", True),
])
def test_a_read_key_gets_the_file_streamed_with_its_name(fmt, content_type, streaming, acme, read_api):
    make_contact(acme, phone="+19195550100")
    response = read_api.get("/api/v1/contacts/export", {"format": fmt})
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response.streaming is streaming
    assert response["Content-Disposition"].startswith('attachment; filename="contacts-acme-')
    assert response["Content-Disposition"].endswith(f'.{fmt}"')
    assert b"".join(response.streaming_content)


def test_the_export_defaults_to_csv_and_follows_the_accept_header(acme, api):
    make_contact(acme, phone="+19195550100")
    assert api.get("/api/v1/contacts/export")["Content-Type"] == "text/csv; charset=utf-8"
    assert api.get("/api/v1/contacts/export", HTTP_ACCEPT="text/vcard")["Content-Type"].startswith("text/vcard")


def test_mallory_exports_only_globex_contacts(acme, globex, mallory_api):
    make_contact(acme, phone="+19195550100", first_name="AcmeSecret")
    make_contact(globex, phone="+447911123456", first_name="Globex")
    for fmt in ("csv", "vcf"):
        data = exported(mallory_api, fmt)
        assert b"AcmeSecret" not in data and b"Globex" in data
    assert "AcmeSecret" not in str(xlsx_rows(exported(mallory_api, "xlsx")))


def test_the_schema_documents_the_export(api):
    response = api.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    operation = response.json()["paths"]["/api/v1/contacts/export"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"format", "tags", "segment"}


# --- command ----------------------------------------------------------------------------------------
def test_the_command_writes_a_file_of_the_organizations_contacts(acme, globex, tmp_path):
    make_contact(acme, phone="+19195550100")
    make_contact(globex, phone="+447911123456")
    target = tmp_path / "out.csv"
    call_command("export_contacts", "--org", "acme", "--format", "csv", "-o", str(target), stderr=io.StringIO())
    rows = csv_table(target.read_bytes())
    assert [r["phone"] for r in rows] == ["'+19195550100"]


def test_the_command_exports_a_segment_as_xlsx(acme, tmp_path):
    make_contact(acme, phone="+19195550100", state="NC")
    make_contact(acme, phone="+19195550101", state="SC")
    segment = Segment.objects.create(organization=acme, name="SC",
                                     rules={"op": "and", "rules": [{"field": "state", "operator": "eq", "value": "SC"}]})
    target = tmp_path / "sc.xlsx"
    call_command("export_contacts", "--org", "acme", "--format", "xlsx", "--segment", str(segment.pk),
                 "-o", str(target), stderr=io.StringIO())
    rows = xlsx_rows(target.read_bytes())
    assert [row[0].value for row in rows[1:]] == ["+19195550101"]


def test_the_command_prints_csv_and_vcards_on_stdout(acme, capfdbinary):
    make_contact(acme, phone="+19195550100", first_name="Zoë")
    out = io.StringIO()
    call_command("export_contacts", "--org", "acme", "--format", "vcf", stdout=out, stderr=io.StringIO())
    assert "FN:Zoë Test" in out.getvalue()


def test_the_command_refuses_what_it_cannot_do(acme):
    with pytest.raises(CommandError, match="xlsx is a binary file: give -o FILE"):
        call_command("export_contacts", "--org", "acme", "--format", "xlsx", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No organization with the slug 'nope'"):
        call_command("export_contacts", "--org", "nope", "--format", "csv", stdout=io.StringIO())
    with pytest.raises(CommandError, match="segment: 'x' is not a segment id"):
        call_command("export_contacts", "--org", "acme", "--format", "csv", "--segment", "x", stdout=io.StringIO())


# --- admin --------------------------------------------------------------------------------------------
def _admin_request(user, params=None):
    from django.contrib.messages.storage.fallback import FallbackStorage

    request = RequestFactory().get("/admin/contacts/contact/export/", params or {})
    request.user = user
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def test_the_admin_action_exports_the_selected_contacts_of_the_users_organization(acme, alice, globex):
    mine = make_contact(acme, phone="+19195550100")
    make_contact(acme, phone="+19195550101")
    theirs = make_contact(globex, phone="+447911123456")
    model_admin = admin.site._registry[Contact]
    request = _admin_request(alice)
    selected = model_admin.get_queryset(request).filter(pk__in=[mine.pk, theirs.pk])
    response = export_selected(model_admin, request, selected)
    assert [r["phone"] for r in csv_table(b"".join(response.streaming_content))] == ["'+19195550100"]
    vcards = b"".join(export_selected_vcf(model_admin, request, selected).streaming_content)
    assert vcards.count(b"BEGIN:VCARD") == 1


def test_the_admin_export_of_all_matching_uses_the_changelist_filters(acme, alice, globex):
    make_contact(acme, phone="+19195550100", opted_out=True)
    make_contact(acme, phone="+19195550101")
    make_contact(globex, phone="+447911123456", opted_out=True)
    request = _admin_request(alice, {"opted_out__exact": "1", "_export_format": "csv"})
    response = export_matching_view(admin.site._registry[Contact], request)
    assert response.status_code == 200
    assert [r["phone"] for r in csv_table(b"".join(response.streaming_content))] == ["'+19195550100"]


def test_a_superuser_exports_one_organization_at_a_time(acme, globex):
    from ..factories import make_staff

    root = make_staff("root", None, is_superuser=True)
    make_contact(acme, phone="+19195550100")
    make_contact(globex, phone="+447911123456")
    model_admin = admin.site._registry[Contact]
    request = _admin_request(root)
    assert export_selected(model_admin, request, Contact.objects.all()) is None
    assert "one organization at a time" in str(list(request._messages)[0])
    response = export_selected(model_admin, request, Contact.objects.filter(organization=globex))
    assert [r["phone"] for r in csv_table(b"".join(response.streaming_content))] == ["'+447911123456"]


def test_the_docs_describe_the_export_columns():
    text = (Path(__file__).resolve().parents[2] / "docs" / "exports.md").read_text()
    for column in ("other_phones", "channel.sms", "custom.<key>"):
        assert column in text


def test_the_changelist_links_export_everything_matching_through_the_admin_url(client, acme, alice, globex):
    make_contact(acme, phone="+19195550100", state="NC")
    make_contact(acme, phone="+19195550101", state="SC")
    make_contact(globex, phone="+447911123456")
    client.force_login(alice)
    page = client.get("/admin/contacts/contact/?state=NC").content.decode()
    assert "/admin/contacts/contact/export/?state=NC&amp;_export_format=csv" in page
    response = client.get("/admin/contacts/contact/export/?state=NC&_export_format=csv")
    assert response.status_code == 200
    assert [r["phone"] for r in csv_table(b"".join(response.streaming_content))] == ["'+19195550100"]
