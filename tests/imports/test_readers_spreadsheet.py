"""read_spreadsheet(): cell text, row numbers, the first sheet, and the zip/XML defences."""

from __future__ import annotations

import datetime
import io
import struct
import zipfile
from pathlib import Path

import openpyxl
import pytest

from imports.readers import spreadsheet
from imports.readers.base import ReaderError
from imports.readers.delimited import MAX_COLUMNS
from imports.readers.spreadsheet import format_cell, open_spreadsheet, read_spreadsheet

from ..conftest import SHARED_DATA as DATA

needs_corpus = pytest.mark.skipif(not DATA.exists(), reason="the shared test corpus is not on this machine")


def read_rows(source, fmt="xlsx") -> list[tuple[int, list[str]]]:
    return [(row.line, row.cells) for row in read_spreadsheet(source, fmt)]


def make_workbook(path: Path, cells: dict[str, object], *, more_sheets: int = 0) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for ref, value in cells.items():
        sheet[ref] = value
    for index in range(more_sheets):
        workbook.create_sheet(f"Other {index}")["A1"] = "not the first sheet"
    workbook.save(path)
    return path


# A hand-made XLSX: openpyxl cannot write a formula's cached value, and the attacks below
# need parts openpyxl would never write.
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Contacts" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/></Relationships>'
)


def sheet_xml(rows: str, prolog: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<sheetData>{rows}</sheetData></worksheet>"
    )


def make_raw_xlsx(sheet: str | bytes, extra: dict[str, str | bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


# Cell values as text


def test_it_reads_numbers_as_the_digits_a_user_typed(tmp_path):
    path = make_workbook(
        tmp_path / "phones.xlsx",
        {
            "A1": "phone",
            "B1": "zip",
            "C1": "score",
            "D1": "zip as text",
            "A2": 19195551234,
            "B2": 2134,
            "C2": 1.5,
            "D2": "02134",
            "A3": 1.9195551234e10,
            "B3": 90210.0,
            "C3": -0.25,
            "D3": "  spaced  ",
            "A4": 8085550123.0,
            "B4": 0,
            "C4": 1e-05,
        },
    )
    assert read_rows(path) == [
        (1, ["phone", "zip", "score", "zip as text"]),
        (2, ["19195551234", "2134", "1.5", "02134"]),
        (3, ["19195551234", "90210", "-0.25", "  spaced  "]),
        (4, ["8085550123", "0", "0.00001"]),
    ]


def test_it_reads_dates_times_and_booleans_as_iso_text(tmp_path):
    path = make_workbook(
        tmp_path / "dates.xlsx",
        {
            "A1": datetime.date(2024, 3, 1),
            "B1": datetime.datetime(2024, 3, 1, 10, 0),
            "C1": datetime.time(10, 30),
            "D1": True,
            "E1": False,
        },
    )
    assert read_rows(path) == [(1, ["2024-03-01", "2024-03-01T10:00:00", "10:30:00", "TRUE", "FALSE"])]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (19195551234.0, "19195551234"),
        (1.9195551234e10, "19195551234"),
        (1.2345678901234566e25, "12345678901234566000000000"),
        (1e23, "100000000000000000000000"),  # int(1e23) would print 99999999999999991611392
        (1.5, "1.5"),
        (0.1, "0.1"),
        (-0.0, "0"),
        (42, "42"),
        (True, "TRUE"),
        (None, ""),
        ("", ""),
        (" as is ", " as is "),
        (datetime.date(1991, 1, 20), "1991-01-20"),
        (datetime.datetime(2024, 3, 1, 10, 0, 5), "2024-03-01T10:00:05"),
        (datetime.time(7, 5), "07:05:00"),
        (datetime.timedelta(hours=30, minutes=5), "30:05:00"),
        (float("nan"), ""),
    ],
)
def test_it_formats_each_kind_of_cell_value(value, text):
    assert format_cell(value) == text


def test_it_reads_a_formulas_cached_value_not_its_text(tmp_path):
    rows = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>total</t></is></c></row>'
        '<row r="2"><c r="A2"><f>ABS(-4)</f><v>4</v></c>'
        '<c r="B2" t="str"><f>"+1 "&amp;"919"</f><v>+1 919</v></c>'
        '<c r="C2" t="e"><f>NA()</f><v>#N/A</v></c>'
        '<c r="D2" t="inlineStr"><is><t>after</t></is></c></row>'
    )
    path = tmp_path / "formula.xlsx"
    path.write_bytes(make_raw_xlsx(sheet_xml(rows)))
    assert read_rows(path) == [(1, ["total"]), (2, ["4", "+1 919", "", "after"])]


# Rows and columns


def test_it_numbers_rows_as_excel_does_when_the_sheet_starts_lower(tmp_path):
    path = make_workbook(tmp_path / "offset.xlsx", {"C3": "phone", "D3": "email", "C4": 1, "D6": "b@x.io"})
    assert read_rows(path) == [
        (1, []),
        (2, []),
        (3, ["", "", "phone", "email"]),
        (4, ["", "", "1"]),
        (5, []),
        (6, ["", "", "", "b@x.io"]),
    ]


def test_it_drops_trailing_empty_cells_and_yields_blank_rows_empty(tmp_path):
    path = make_workbook(tmp_path / "ragged.xlsx", {"A1": "a", "B1": "b", "C1": "c", "A2": "x", "A4": "y", "C4": ""})
    assert read_rows(path) == [(1, ["a", "b", "c"]), (2, ["x"]), (3, []), (4, ["y"])]


def test_it_reads_only_the_first_sheet(tmp_path):
    path = make_workbook(tmp_path / "sheets.xlsx", {"A1": "email"}, more_sheets=2)
    assert read_rows(path) == [(1, ["email"])]


def test_it_reads_an_empty_sheet_as_no_rows(tmp_path):
    assert read_rows(make_workbook(tmp_path / "empty.xlsx", {})) == []


def test_it_reads_from_a_file_object(tmp_path):
    path = make_workbook(tmp_path / "obj.xlsx", {"A1": "phone", "A2": 19195551234})
    assert read_rows(io.BytesIO(path.read_bytes())) == [(1, ["phone"]), (2, ["19195551234"])]


def test_it_names_the_row_with_too_many_columns(tmp_path):
    workbook = openpyxl.Workbook()
    workbook.active.append(["h"])
    workbook.active.append(list(range(MAX_COLUMNS + 1)))
    workbook.save(tmp_path / "wide.xlsx")
    rows = read_spreadsheet(tmp_path / "wide.xlsx", "xlsx")
    assert next(rows).cells == ["h"]
    with pytest.raises(ReaderError, match=f"row 2 has {MAX_COLUMNS + 1} columns"):
        next(rows)


def test_it_reads_a_hand_written_ods(tmp_path):
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        "<office:body><office:spreadsheet>"
        '<table:table table:name="Contacts">'
        "<table:table-row>"
        '<table:table-cell office:value-type="string"><text:p>phone</text:p></table:table-cell>'
        '<table:table-cell office:value-type="string"><text:p>birthday</text:p></table:table-cell>'
        "</table:table-row>"
        '<table:table-row table:number-rows-repeated="2"><table:table-cell/></table:table-row>'
        "<table:table-row>"
        '<table:table-cell office:value-type="float" office:value="19195551234">'
        "<text:p>19195551234</text:p></table:table-cell>"
        '<table:table-cell office:value-type="date" office:date-value="1991-01-20">'
        "<text:p>20/01/1991</text:p></table:table-cell>"
        "</table:table-row>"
        "</table:table>"
        '<table:table table:name="Second"><table:table-row><table:table-cell office:value-type="string">'
        "<text:p>ignored</text:p></table:table-cell></table:table-row></table:table>"
        "</office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    path = tmp_path / "contacts.ods"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", zipfile.ZIP_STORED)
        archive.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    assert read_rows(path, "ods") == [
        (1, ["phone", "birthday"]),
        (2, []),
        (3, []),
        (4, ["19195551234", "1991-01-20"]),
    ]


# XLS: no package in our environment writes BIFF8 (xlwt is not installed and LibreOffice is
# absent), so only the refusal of a damaged file is tested here.


def test_it_refuses_a_damaged_xls():
    damaged = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600
    with pytest.raises(ReaderError, match="^the file is not a readable XLS workbook: "):
        read_spreadsheet(io.BytesIO(damaged), "xls")


# Corrupt files and attacks


def test_it_refuses_a_file_that_is_not_a_zip():
    with pytest.raises(
        ReaderError,
        match="^the file is not a readable XLSX workbook: it is not a valid ZIP archive",
    ):
        read_spreadsheet(io.BytesIO(b"Name,Phone\nAnn,1\n"), "xlsx")


def test_it_refuses_a_zip_that_is_not_a_workbook():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ReaderError, match="^the file is not a readable XLSX workbook: "):
        read_spreadsheet(io.BytesIO(buffer.getvalue()), "xlsx")


def test_it_refuses_a_truncated_workbook(tmp_path):
    data = make_workbook(tmp_path / "whole.xlsx", {"A1": "x"}).read_bytes()
    with pytest.raises(ReaderError, match="^the file is not a readable XLSX workbook"):
        read_spreadsheet(io.BytesIO(data[: len(data) // 2]), "xlsx")


def test_it_refuses_a_zip_bomb():
    bomb = make_raw_xlsx(sheet_xml(""), {"xl/media/padding.xml": b"<a>" + b" " * (20 * 1024 * 1024) + b"</a>"})
    assert len(bomb) < 200_000
    with pytest.raises(ReaderError, match="unpacks to more than 100 times its packed size"):
        read_spreadsheet(io.BytesIO(bomb), "xlsx")


def find_zip_header(data: bytes, signature: bytes, length_at: int, name_at: int, name: bytes) -> int:
    """Return the offset of the local (or central) header of the member called `name`."""
    offset = data.index(signature)
    while True:
        name_length = struct.unpack_from("<H", data, offset + length_at)[0]
        if data[offset + name_at : offset + name_at + name_length] == name:
            return offset
        offset = data.index(signature, offset + 4)


def test_it_refuses_a_member_that_inflates_past_its_declared_size():
    name = b"xl/worksheets/sheet1.xml"
    data = bytearray(make_raw_xlsx(sheet_xml('<row r="1"><c r="A1"><v>1</v></c></row>' + " " * 5000)))
    # Shrink the uncompressed size that the local header and the central directory both
    # declare, as a bomb does to slip past a size check.
    struct.pack_into("<I", data, find_zip_header(data, b"PK\x03\x04", 26, 30, name) + 22, 100)
    struct.pack_into("<I", data, find_zip_header(data, b"PK\x01\x02", 28, 46, name) + 24, 100)
    with pytest.raises(ReaderError, match="larger than its ZIP header says"):
        read_spreadsheet(io.BytesIO(bytes(data)), "xlsx")


def test_it_refuses_a_workbook_that_unpacks_past_the_limit(monkeypatch, tmp_path):
    monkeypatch.setattr(spreadsheet, "MAX_UNCOMPRESSED_BYTES", 2000)
    path = make_workbook(tmp_path / "big.xlsx", {f"A{i}": f"row {i}" for i in range(1, 200)})
    with pytest.raises(ReaderError, match="unpacks to .* MB or more; the limit is"):
        read_spreadsheet(path, "xlsx")


BILLION_LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
)


def test_it_refuses_a_billion_laughs_sheet():
    data = make_raw_xlsx(
        sheet_xml('<row r="1"><c r="A1" t="inlineStr"><is><t>&lol3;</t></is></c></row>', BILLION_LAUGHS)
    )
    with pytest.raises(ReaderError, match="'xl/worksheets/sheet1.xml' declares a DOCTYPE or ENTITY"):
        read_spreadsheet(io.BytesIO(data), "xlsx")


def test_it_refuses_an_external_entity_in_shared_strings():
    shared = (
        '<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>&xxe;</t></si></sst>'
    )
    data = make_raw_xlsx(sheet_xml('<row r="1"><c r="A1" t="s"><v>0</v></c></row>'), {"xl/sharedStrings.xml": shared})
    with pytest.raises(ReaderError, match="'xl/sharedStrings.xml' declares a DOCTYPE or ENTITY"):
        read_spreadsheet(io.BytesIO(data), "xlsx")


def test_it_scans_xml_parts_whatever_their_name():
    # Relationships can point a sheet at any name, so the content decides what is XML.
    data = make_raw_xlsx(sheet_xml(""), {"xl/worksheets/data.bin": '<?xml version="1.0"?><!DOCTYPE x []><x/>'})
    with pytest.raises(ReaderError, match="'xl/worksheets/data.bin' declares a DOCTYPE"):
        read_spreadsheet(io.BytesIO(data), "xlsx")


def test_it_does_not_scan_binary_parts_like_images():
    png = b"\x89PNG\r\n\x1a\n" + b"<!ENTITY happens to be in the pixels" + bytes(200)
    rows = '<row r="1"><c r="A1"><v>1</v></c></row>'
    assert read_rows(io.BytesIO(make_raw_xlsx(sheet_xml(rows), {"xl/media/image1.png": png}))) == [(1, ["1"])]


def test_it_refuses_an_xml_part_in_utf16():
    data = make_raw_xlsx(sheet_xml("").encode("utf-16"))
    with pytest.raises(ReaderError, match="is not UTF-8"):
        read_spreadsheet(io.BytesIO(data), "xlsx")


def test_it_accepts_the_words_doctype_and_entity_as_cell_text():
    rows = '<row r="1"><c r="A1" t="inlineStr"><is><t>&lt;!DOCTYPE is text here</t></is></c></row>'
    assert read_rows(io.BytesIO(make_raw_xlsx(sheet_xml(rows)))) == [(1, ["<!DOCTYPE is text here"])]


# The real-world corpus (../shared/data/xlsx)


@needs_corpus
def test_it_reads_the_libreoffice_corpus_workbook_with_its_formula_value():
    rows = read_rows(DATA / "xlsx" / "die_books.xlsx")
    assert rows == [
        (1, ["id", "name", "author_email", "price"]),
        (2, ["1", "Some book", "test@example.com", "4"]),
    ]
    assert rows[1][1][3] == "4"  # D2 is =ABS(-4)


@needs_corpus
def test_it_reads_the_excel_for_mac_corpus_workbook():
    # This file has no column D; its point is shared strings and a missing trailing cell.
    rows = read_rows(DATA / "xlsx" / "die_books-empty-author-email.xlsx")
    assert rows == [
        (1, ["id", "name", "author_email"]),
        (2, ["1", "Some book", "author@example.com"]),
        (3, ["2", "book2"]),
    ]


# OOXML's escapes in cell text, and what calamine (the import's reader) gives for each.
ESCAPED = {"_x0041_": "A", "a_x000D_b": "a\rb", "_x005F_x0041_": "_x0041_", "_x00e9_t_x00E9_": "été",
           "_xZZZZ_": "_xZZZZ_", "x_x0041": "x_x0041", "_x0041__x0042_": "AB", "_xD800_": "_xD800_"}


@pytest.mark.parametrize("kind", ["inline", "shared"])
def test_the_preview_reads_escaped_cell_text_as_the_import_does(kind):
    texts = ["Name", "Email", *ESCAPED]
    if kind == "inline":
        cell = lambda ref, i: f'<c r="{ref}" t="inlineStr"><is><t>{texts[i]}</t></is></c>'  # noqa: E731
        extra = {}
    else:  # a run split in two, as rich text is
        cell = lambda ref, i: f'<c r="{ref}" t="s"><v>{i}</v></c>'  # noqa: E731
        runs = "".join(f"<si><r><t>{t[:8]}</t></r><r><t>{t[8:]}</t></r></si>" if t == "_x00e9_t_x00E9_"
                       else f"<si><t>{t}</t></si>" for t in texts)
        extra = {"xl/sharedStrings.xml": '<?xml version="1.0" encoding="UTF-8"?><sst xmlns='
                                         f'"http://schemas.openxmlformats.org/spreadsheetml/2006/main">{runs}</sst>'}
    rows = [f'<row r="1">{cell("A1", 0)}{cell("B1", 1)}</row>'] + [
        f'<row r="{n}">{cell(f"A{n}", i + 2)}<c r="B{n}" t="inlineStr"><is><t>p{i}@example.com</t></is></c></row>'
        for i, n in enumerate(range(2, 2 + len(ESCAPED)))]
    data = make_raw_xlsx(sheet_xml("".join(rows)), extra)
    whole = [row.cells for row in open_spreadsheet(io.BytesIO(data), "xlsx").rows]
    head = [row.cells for row in open_spreadsheet(io.BytesIO(data), "xlsx", head_rows=20).rows]
    assert [cells[0] for cells in whole[1:]] == list(ESCAPED.values())
    assert head == whole
