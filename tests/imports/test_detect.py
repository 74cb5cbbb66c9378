"""detect_format(): the extension decides, the first bytes must agree."""

from __future__ import annotations

import io
import zipfile

import openpyxl
import pytest

from imports.readers.base import ReaderError
from imports.readers.detect import detect_format

from ..conftest import SHARED_DATA as DATA

needs_corpus = pytest.mark.skipif(not DATA.exists(), reason="the shared test corpus is not on this machine")

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)


@pytest.fixture(scope="module")
def xlsx_bytes() -> bytes:
    buffer = io.BytesIO()
    workbook = openpyxl.Workbook()
    workbook.active["A1"] = "phone"
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def ods_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", zipfile.ZIP_STORED)
        archive.writestr("content.xml", "<x/>", zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("contacts.csv", "csv"),
        ("CONTACTS.CSV", "csv"),
        ("export.txt", "csv"),
        ("export.tsv", "tsv"),
        ("C:\\Users\\ann\\Desktop\\list.Csv", "csv"),
    ],
)
def test_it_reads_the_format_from_a_text_files_extension(name, expected):
    assert detect_format(name, b"name,phone\r\nAnn,555\r\n") == expected


def test_it_accepts_a_real_xlsx(xlsx_bytes):
    assert detect_format("book.XLSX", xlsx_bytes[:4096]) == "xlsx"


def test_it_accepts_an_xls_that_is_really_an_xlsx(xlsx_bytes):
    assert detect_format("book.xls", xlsx_bytes) == "xlsx"


def test_it_accepts_a_real_xls():
    assert detect_format("book.xls", OLE2) == "xls"


def test_it_reads_an_xlsx_that_is_really_an_xls_as_xls():
    assert detect_format("renamed.xlsx", OLE2) == "xls"


def test_it_recognises_an_ods_by_its_mimetype(ods_bytes):
    assert detect_format("sheet.ods", ods_bytes) == "ods"
    assert detect_format("sheet.xlsx", ods_bytes) == "ods"


def test_it_refuses_a_csv_that_is_a_zip(xlsx_bytes):
    with pytest.raises(ReaderError) as caught:
        detect_format("x.csv", xlsx_bytes)
    assert str(caught.value) == (
        "'x.csv' is a ZIP archive (an Excel workbook?), not a CSV file: save it as CSV or upload it as .xlsx"
    )


def test_it_refuses_a_txt_that_is_an_old_excel_file():
    with pytest.raises(
        ReaderError,
        match=r"^'x.txt' is an old Excel \(.xls\) workbook, not a text file: .* upload it as .xls$",
    ):
        detect_format("x.txt", OLE2)


def test_it_refuses_a_vcf_that_is_a_zip(xlsx_bytes):
    with pytest.raises(
        ReaderError,
        match=r"^'cards.vcf' is a ZIP archive \(an Excel workbook\?\), not a vCard file",
    ):
        detect_format("cards.vcf", xlsx_bytes)


def test_it_refuses_an_xlsx_that_is_not_a_zip():
    with pytest.raises(ReaderError, match=r"^'book.xlsx' is not an Excel workbook: .* save it as .xlsx or CSV$"):
        detect_format("book.xlsx", b"name,phone\nAnn,555\n")


def test_it_refuses_an_xls_that_is_a_web_page():
    with pytest.raises(ReaderError, match="^'report.xls' is not an Excel workbook"):
        detect_format("report.xls", b"<html><table><tr><td>Ann</td></tr></table></html>")


@pytest.mark.parametrize(
    "head",
    [
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\nEND:VCARD\r\n",
        b"\xef\xbb\xbfBEGIN:VCARD\r\n",
        b"\r\n\r\nbegin:vcard\nVERSION:2.1\n",
        "BEGIN:VCARD\r\nFN:Zoë\r\n".encode("utf-16"),
        "BEGIN:VCARD\r\nFN:Zoë\r\n".encode("utf-16-be"),
        "BEGIN:VCARD\r\nFN:Zoë\r\n".encode("utf-16-le"),
    ],
)
def test_it_accepts_a_vcard_in_any_encoding(head):
    assert detect_format("people.vcf", head) == "vcf"
    assert detect_format("people.VCARD", head) == "vcf"


def test_it_refuses_a_vcf_without_begin_vcard():
    with pytest.raises(ReaderError) as caught:
        detect_format("people.vcf", b"name,phone\nAnn,555\n")
    assert str(caught.value) == (
        "'people.vcf' is not a vCard file: it does not contain BEGIN:VCARD; export the contacts as vCard (.vcf) again"
    )


def test_it_reads_a_vcard_saved_as_txt_as_a_vcard():
    assert detect_format("contacts.txt", b"BEGIN:VCARD\r\nVERSION:3.0\r\nEND:VCARD\r\n") == "vcf"


def test_it_refuses_an_empty_file():
    with pytest.raises(ReaderError, match="^the file is empty$"):
        detect_format("contacts.csv", b"")


@pytest.mark.parametrize("name", ["contacts.pdf", "contacts.numbers", "contacts", "contacts."])
def test_it_refuses_an_unknown_extension_and_lists_the_supported_ones(name):
    with pytest.raises(ReaderError) as caught:
        detect_format(name, b"data")
    message = str(caught.value)
    assert message.startswith(f"'{name}' cannot be imported: ")
    assert ".csv, .txt, .tsv, .xlsx, .xls, .ods, .vcf, .vcard" in message


@needs_corpus
def test_it_detects_every_corpus_file():
    expected = {"csv": "csv", "vcard": "vcf", "xlsx": "xlsx"}
    paths = [path for path in sorted(DATA.glob("*/*")) if path.suffix in (".csv", ".vcf", ".xlsx")]
    assert len(paths) == 26
    for path in paths:
        with path.open("rb") as fileobj:
            assert detect_format(path.name, fileobj.read(65536)) == expected[path.parent.name], path.name
