"""Issue 14: the hand-written XLSX writer (contacts.xlsx). Its bytes are not openpyxl's, but the
cells are: read back with openpyxl and with python-calamine (the importer's reader), a workbook
holds the CSV export's cells for the same contacts, as xlsx_cell has always made them (control
characters stripped, CR read as LF, 32,767 characters at most, E.164 phones without the quote),
and a literal `_x0041_` stays literal in both readers."""

from __future__ import annotations

import csv
import io
import shutil
import struct
import subprocess
import zipfile

import pytest
from openpyxl import Workbook, load_workbook
from python_calamine import CalamineWorkbook

from contacts import xlsx
from contacts.exports import (
    XLSX_MAX_CELL,
    csv_chunks,
    export_rows,
    neutralize,
    write_xlsx,
    xlsx_cell,
    xlsx_row,
    xlsx_rows,
)
from contacts.models import Contact
from contacts.normalize import strip_formula_escape

from ..factories import make_contact, make_org
from ..imports.helpers import run_import_bytes
from .test_exports import exported

pytestmark = pytest.mark.django_db
LITERALS = ["_x0041_", "_x005F_x0041_", "a_x000D_b", "_x0041__x0042_", "_x0041_x0042_", "__x0041_", "_X004a_",
            "_xZZZZ_", "_x41_"]
TRICKY = [
    "=1+1", "+notaphone", "-5", "@SUM(A1)", "\tTab", "\rCR", "'=quoted", "''", "'", "plain", 'say "hi", then go',
    "two\nlines", "crlf\r\nend", "a & b <c> ]]> &amp;", *LITERALS, "Straße ß", "日本語", "emoji 🎉 👩‍👩‍👧",
    "  spaced  ", " ", "\u00a0nbsp\u3000", "tab\t", "ctrl\x01\x08\x0b\x0c\x0e\x1f end", "\x7fdel \ufffd",
    "x" * XLSX_MAX_CELL, "é" * (XLSX_MAX_CELL + 1), "y" * 40_000,
]
SHORT = 100  # first_name's max_length


@pytest.fixture
def tricky_book(acme):
    for index, text in enumerate(TRICKY):
        make_contact(acme, phone=f"+1919555{3000 + index}", email=f"x{index}@example.com", first_name=text[:SHORT],
                     company=text[:SHORT], notes=text, secondary_phones=[f"+1919556{3000 + index}"],
                     custom_fields={"memo": text, "empty": "", "nothing": None, **({"odd": text} if index % 2 else {})})
    make_contact(acme, phone="+19195554000")  # every optional value missing
    make_contact(make_org(slug="other"), phone="+19195552000", first_name="=other org")  # never exported
    return acme


def xlsx_bytes(org) -> bytes:
    handle = io.BytesIO()
    write_xlsx(export_rows(Contact.objects.for_org(org), org=org), handle)
    return handle.getvalue()


def openpyxl_cells(data: bytes) -> list[list[str]]:
    rows = [list(row) for row in load_workbook(io.BytesIO(data), read_only=True).active.iter_rows(values_only=True)]
    width = max(map(len, rows))
    return [["" if cell is None else cell for cell in row] + [""] * (width - len(row)) for row in rows]


def calamine_cells(data: bytes) -> list[list[str]]:
    return CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_name("Contacts").to_python()


def expected_cells(org) -> list[list[str]]:
    """The CSV export's cells, each made into what the XLSX cell holds (the formula quote the
    CSV adds is undone, then xlsx_cell: the cell function the writer did not change)."""
    data = b"".join(csv_chunks(export_rows(Contact.objects.for_org(org), org=org)))
    header, *rows = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    return [header] + [[xlsx_cell(h, strip_formula_escape(cell)) or "" for h, cell in zip(header, row, strict=True)]
                       for row in rows]


def test_both_readers_read_the_csv_exports_cells(tricky_book):
    data = xlsx_bytes(tricky_book)
    expected = expected_cells(tricky_book)
    assert len(expected) == len(TRICKY) + 2
    assert openpyxl_cells(data) == expected
    assert calamine_cells(data) == expected


def test_tricky_values_read_back_as_xlsx_cell_made_them(tricky_book):
    data = xlsx_bytes(tricky_book)
    for cells in (openpyxl_cells(data), calamine_cells(data)):
        header = cells[0]
        memo = [row[header.index("custom.memo")] for row in cells[1:-1]]
        phones = [row[header.index("other_phones")] for row in cells[1:-1]]
        by_text = dict(zip(TRICKY, memo, strict=True))
        for literal in LITERALS:
            assert by_text[literal] == literal
        assert by_text["=1+1"] == "'=1+1" and by_text["'=quoted"] == "''=quoted"
        assert by_text["\rCR"] == "\nCR" and by_text["crlf\r\nend"] == "crlf\nend"
        assert by_text["ctrl\x01\x08\x0b\x0c\x0e\x1f end"] == "ctrl end"
        assert by_text["  spaced  "] == "  spaced  " and by_text[" "] == " " and by_text["tab\t"] == "tab\t"
        assert by_text["a & b <c> ]]> &amp;"] == "a & b <c> ]]> &amp;"
        assert by_text["emoji 🎉 👩‍👩‍👧"] == "emoji 🎉 👩‍👩‍👧"
        assert [len(by_text[t]) for t in TRICKY[-3:]] == [XLSX_MAX_CELL] * 3
        assert phones[0] == "+19195563000"  # E.164: a text cell without the quote
        assert cells[-1][header.index("custom.memo")] == cells[-1][header.index("notes")] == ""
        assert not any("=other org" in cell for row in cells for cell in row)


def test_the_cells_are_those_openpyxl_wrote_before(tricky_book):
    """The writer it replaced, on the same rows, as the oracle."""
    table = export_rows(Contact.objects.for_org(tricky_book), org=tricky_book)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Contacts")
    sheet.append(table.header)
    for row in xlsx_rows(table):
        sheet.append(row)
    handle = io.BytesIO()
    book.save(handle)
    assert openpyxl_cells(xlsx_bytes(tricky_book)) == openpyxl_cells(handle.getvalue())


def test_the_workbook_has_a_bold_frozen_header_and_streams_its_sheet(tricky_book):
    data = xlsx_bytes(tricky_book)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert archive.namelist()[-1] == xlsx.SHEET_PART  # written last, after the small parts
    assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet.title == "Contacts" and sheet.freeze_panes == "A2"
    assert sheet["A1"].font.b and not sheet["A2"].font.b
    assert _local_sizes(data, xlsx.SHEET_PART) != (0xFFFFFFFF, 0xFFFFFFFF)  # no ZIP64 record


def test_a_sheet_past_the_zip_limit_is_written_again_with_zip64(tricky_book, monkeypatch):
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 50_000)  # the sheet's XML is larger
    data = xlsx_bytes(tricky_book)
    assert _local_sizes(data, xlsx.SHEET_PART) == (0xFFFFFFFF, 0xFFFFFFFF)  # the sizes live in the ZIP64 extra
    monkeypatch.undo()
    assert calamine_cells(data) == expected_cells(tricky_book)


def test_an_export_imports_as_the_csv_export_does(tricky_book, api):
    """Both exports of the book imported into empty organizations: the same contacts, but where
    xlsx_cell changes a text (CR, control characters, the cell limit)."""
    imported = {}
    for fmt, data in (("csv", exported(api, "csv")), ("xlsx", xlsx_bytes(tricky_book))):
        org = make_org(slug=f"from-{fmt}")
        job = run_import_bytes(org, data, name=f"export.{fmt}")
        assert job.created == len(TRICKY) + 1, list(job.row_errors.values("column", "value", "message"))
        imported[fmt] = {c.phone: (c.first_name, c.company, c.notes, c.custom_fields.get("memo"),
                                   c.custom_fields.get("odd"), c.secondary_phones)
                         for c in Contact.objects.for_org(org)}
    assert imported["xlsx"].keys() == imported["csv"].keys()
    changed = {f"+1919555{3000 + i}" for i, text in enumerate(TRICKY) if xlsx_cell("memo", text) != neutralize(text)}
    assert len(changed) == 5  # the 2 with a CR, the control characters, the 2 past the limit
    same = imported["xlsx"].keys() - changed
    assert {p: imported["xlsx"][p] for p in same} == {p: imported["csv"][p] for p in same}
    memo = {text: imported["xlsx"][f"+1919555{3000 + i}"][3] for i, text in enumerate(TRICKY)}
    assert all(memo[literal] == literal for literal in LITERALS) and memo["=1+1"] == "=1+1"
    assert memo["ctrl\x01\x08\x0b\x0c\x0e\x1f end"] == "ctrl end"


def test_an_empty_book_is_a_header_row(acme):
    data = xlsx_bytes(acme)
    assert len(calamine_cells(data)) == 1 and openpyxl_cells(data)[0][0] == "phone"


@pytest.mark.skipif(not shutil.which("libreoffice"), reason="LibreOffice is not installed")
def test_libreoffice_opens_the_workbook(tricky_book, tmp_path):
    source = tmp_path / "export.xlsx"
    source.write_bytes(xlsx_bytes(tricky_book))
    subprocess.run(["libreoffice", f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless",
                    "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76", "--outdir", str(tmp_path),
                    str(source)], check=True, capture_output=True, timeout=120)
    rows = list(csv.reader(io.StringIO((tmp_path / "export.csv").read_text("utf-8"), newline="")))
    expected = expected_cells(tricky_book)
    assert rows[0] == expected[0] and len(rows) == len(expected)
    memo = expected[0].index("custom.memo")
    assert [row[memo] for row in rows] == [row[memo] for row in expected]


def _local_sizes(data: bytes, name: str) -> tuple[int, int]:
    """The compressed and uncompressed sizes in `name`'s local file header (0xFFFFFFFF: ZIP64)."""
    offset = zipfile.ZipFile(io.BytesIO(data)).getinfo(name).header_offset
    return struct.unpack("<II", data[offset + 18:offset + 26])


def test_the_row_fast_paths_make_what_the_cell_functions_make():
    """xlsx_row and row_xml skip per-cell work on plain rows: the same result as cell by cell."""
    header = ["phone", "other_phones", "notes", "custom.memo"]
    rows = [[a, b, c, d] for a, b, c, d in zip(TRICKY, TRICKY[1:] + TRICKY[:1], TRICKY[2:] + TRICKY[:2],
                                                 TRICKY[3:] + TRICKY[:3], strict=True)]
    rows += [["+19195551234", "+19195551234, +19195551235", "plain", ""], ["", "", "", ""], ["a", "b ", " c", "\u3000"]]
    letters = xlsx.column_letters(len(header))
    for row in rows:
        cells = xlsx_row(header, row)
        assert cells == [xlsx_cell(h, text) for h, text in zip(header, row, strict=True)]
        parts = [f'<c r="{letter}7" t="inlineStr"><is>{xlsx.inline_text(text)}</is></c>'
                 for letter, text in zip(letters, cells, strict=True) if text]
        assert xlsx.row_xml(7, cells, letters) == f'<row r="7">{"".join(parts)}</row>'
    assert xlsx_row(header, rows[-3]) == ["+19195551234", "+19195551234, +19195551235", "plain", None]


def test_the_white_space_set_is_str_isspace():
    assert all((chr(code) in xlsx._SPACE) == chr(code).isspace() for code in range(0x110000))
