"""Workbooks with several sheets, and the bounded head read that builds an XLSX preview."""

from __future__ import annotations

import datetime
import io

import openpyxl
import pytest

from imports.readers.base import ReaderError
from imports.readers.spreadsheet import open_spreadsheet


def workbook_bytes(sheets: dict[str, list[list]], *, write_only=False) -> bytes:
    book = openpyxl.Workbook(write_only=write_only)
    if not write_only:
        book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def has_email(cells):
    return any("mail" in c.lower() for c in cells)


def rows_of(opened):
    return [(r.line, r.cells) for r in opened.rows]


NOTES = [["Exported from OldCRM on 2024-05-01"], ["Confidential"]]
CONTACTS = [["Name", "Email"], ["Ann", "ann@example.com"], ["Bob", "bob@example.com"]]


@pytest.mark.parametrize("head_rows", [None, 10])
def test_it_reads_the_first_sheet_with_a_contact_header_after_an_empty_or_notes_sheet(head_rows):
    data = workbook_bytes({"Cover": [], "Notes": NOTES, "Contacts": CONTACTS})
    opened = open_spreadsheet(io.BytesIO(data), "xlsx", choose=has_email, head_rows=head_rows)
    assert opened.sheet == "Contacts"
    assert rows_of(opened) == [(1, ["Name", "Email"]), (2, ["Ann", "ann@example.com"]), (3, ["Bob", "bob@example.com"])]


def test_the_preview_lists_every_sheet_with_its_row_count():
    data = workbook_bytes({"Cover": [], "Notes": NOTES, "Contacts": CONTACTS})
    for head_rows in (10, 2):
        opened = open_spreadsheet(io.BytesIO(data), "xlsx", choose=has_email, head_rows=head_rows)
        counts = {s["name"]: s["rows"] for s in opened.sheets}
        assert counts["Notes"] == 2 and counts["Contacts"] == 3
        assert [s["index"] for s in opened.sheets] == [1, 2, 3]


@pytest.mark.parametrize("sheet", ["Notes", "notes", "2", 2])
@pytest.mark.parametrize("head_rows", [None, 10])
def test_a_sheet_is_chosen_by_name_or_1_based_position(sheet, head_rows):
    data = workbook_bytes({"Contacts": CONTACTS, "Notes": NOTES})
    opened = open_spreadsheet(io.BytesIO(data), "xlsx", sheet=sheet, choose=has_email, head_rows=head_rows)
    assert opened.sheet == "Notes"
    assert rows_of(opened)[0] == (1, ["Exported from OldCRM on 2024-05-01"])


@pytest.mark.parametrize("head_rows", [None, 10])
def test_an_unknown_sheet_is_refused_naming_the_sheets(head_rows):
    data = workbook_bytes({"Contacts": CONTACTS, "Notes": NOTES})
    with pytest.raises(ReaderError, match=r"no sheet 'Leads'; its sheets are 1: 'Contacts', 2: 'Notes'"):
        open_spreadsheet(io.BytesIO(data), "xlsx", sheet="Leads", head_rows=head_rows)
    with pytest.raises(ReaderError, match="no sheet '3'"):
        open_spreadsheet(io.BytesIO(data), "xlsx", sheet=3, head_rows=head_rows)


def test_without_a_contact_header_anywhere_the_first_sheet_with_rows_is_read():
    data = workbook_bytes({"Empty": [], "Notes": NOTES, "More": [["x"]]})
    assert open_spreadsheet(io.BytesIO(data), "xlsx", choose=has_email).sheet == "Notes"


@pytest.mark.parametrize("write_only", [False, True])
def test_the_bounded_head_reads_every_cell_exactly_as_calamine_does(write_only):
    rows = [
        ["phone", "zip", "when", "at", "time", "flag", "ratio", "text", None, "far"],
        [19195551234, 2134, datetime.date(2024, 3, 1), datetime.datetime(2024, 3, 1, 10, 0, 5),
         datetime.time(7, 5), True, 1.5, "  spaced  ", None, "x"],
        [],
        [1.9195551234e10, 0, datetime.date(1991, 1, 20), None, None, False, -0.25, "Łukasz", None, None],
        ["=1+1", None, None, None, None, None, None, "José", None, "end"],
    ]
    data = workbook_bytes({"Contacts": rows}, write_only=write_only)
    full = rows_of(open_spreadsheet(io.BytesIO(data), "xlsx"))
    head = rows_of(open_spreadsheet(io.BytesIO(data), "xlsx", head_rows=100))
    # openpyxl writes no cached value for a formula: calamine and the head both give ''
    assert head == full
    assert head[1][1][:3] == ["19195551234", "2134", "2024-03-01"]


@pytest.mark.parametrize(("write_only", "count"), [(False, 501), (True, None)])
def test_the_bounded_head_stops_after_the_rows_asked_for(write_only, count):
    data = workbook_bytes({"Contacts": [["email"]] + [[f"a{i}@example.com"] for i in range(500)]},
                          write_only=write_only)
    opened = open_spreadsheet(io.BytesIO(data), "xlsx", head_rows=30)
    assert len(list(opened.rows)) == 30
    # The size comes from the sheet's <dimension>, which streaming writers leave out: unknown.
    assert opened.sheets == [{"index": 1, "name": "Contacts", "rows": count}]


def test_the_bounded_head_keeps_the_row_numbers_of_a_sheet_that_starts_lower():
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["C3"], sheet["D3"], sheet["C4"], sheet["D6"] = "phone", "email", 1, "b@x.io"
    out = io.BytesIO()
    book.save(out)
    full = rows_of(open_spreadsheet(io.BytesIO(out.getvalue()), "xlsx"))
    assert rows_of(open_spreadsheet(io.BytesIO(out.getvalue()), "xlsx", head_rows=50)) == full
