"""read_delimited(): encodings, delimiters, line numbers, limits, and the real-world corpus."""

from __future__ import annotations

import codecs
import io

import pytest

from imports.readers import delimited
from imports.readers.base import ReaderError
from imports.readers.delimited import (
    HEAD_BYTES,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    detect_delimiter,
    detect_encoding,
    read_delimited,
)

from ..conftest import SHARED_DATA as DATA

needs_corpus = pytest.mark.skipif(not DATA.exists(), reason="the shared test corpus is not on this machine")


def read_rows(data: bytes, **kwargs) -> list[tuple[int, list[str]]]:
    return [(row.line, row.cells) for row in read_delimited(io.BytesIO(data), **kwargs)]


class OnlySmallReads(io.RawIOBase):
    """A file that fails the test if anyone asks it for everything at once."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert size is not None and size >= 0, "the reader asked for the whole file"
        self.largest_read = max(self.largest_read, size)
        return self._data.read(size)


# Encodings


def test_it_reads_plain_utf8_with_line_numbers():
    rows = read_rows("Name,Phone\nZoë,+1 919 555 0100\nJosé,919-555-0101\n".encode())
    assert rows == [
        (1, ["Name", "Phone"]),
        (2, ["Zoë", "+1 919 555 0100"]),
        (3, ["José", "919-555-0101"]),
    ]


def test_it_strips_a_utf8_bom_from_the_first_header():
    rows = read_rows(codecs.BOM_UTF8 + b"Email,Phone\r\na@example.com,1\r\n")
    assert rows[0] == (1, ["Email", "Phone"])


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_it_reads_a_utf16_file_with_bom(codec):
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    data = bom + "Name,Email\r\nŁukasz,l@example.com\r\n".encode(codec)
    assert detect_encoding(data) == "utf-16"
    assert read_rows(data) == [(1, ["Name", "Email"]), (2, ["Łukasz", "l@example.com"])]


def test_it_falls_back_to_cp1252_for_a_latin1_file():
    data = b"id,name\n1,Merci \xe0 toi \x80 \x93quoted\x94\n"
    assert detect_encoding(data) == "cp1252"
    assert read_rows(data)[1] == (2, ["1", "Merci à toi € “quoted”"])


def test_it_keeps_bytes_cp1252_leaves_undefined_as_latin1():
    # Detection would read these two bytes as Cyrillic (cp1251 defines them); name cp1252.
    assert read_rows(b"a\n\x81\x8d\n", encoding="cp1252")[1] == (2, ["\x81\x8d"])


def test_it_never_guesses_utf16_without_a_bom():
    # These bytes decode "fine" as UTF-16 (into CJK garbage); they are latin-1.
    assert detect_encoding(b"id,name\n1,Merci \xe0 toi\n") == "cp1252"


def test_it_decodes_a_non_utf8_byte_after_the_head_as_cp1252():
    ascii_rows = b"".join(b"%d,someone%d@example.com\n" % (i, i) for i in range(5000))
    assert len(ascii_rows) > HEAD_BYTES
    data = b"id,email\n" + ascii_rows + b"5000,Andr\xe9@example.com\n"
    assert detect_encoding(data[:HEAD_BYTES]) == "utf-8"
    rows = read_rows(data)
    assert rows[-1] == (5002, ["5000", "André@example.com"])


def test_it_decodes_utf8_split_across_chunk_boundaries():
    # A 2-byte character straddling the 64 KB head boundary must survive intact.
    filler = b"x" * (HEAD_BYTES - len(b"name\n") - 1)
    data = b"name\n" + filler + "é\n".encode()
    assert read_rows(data)[1] == (2, [filler.decode() + "é"])


def test_it_recognises_shift_jis():
    data = "名前,メール\n名無しの権兵衛,gonbe@example.jp\n山田太郎,taro@example.jp\n".encode("cp932")
    assert detect_encoding(data) == "cp932"
    assert read_rows(data)[1] == (2, ["名無しの権兵衛", "gonbe@example.jp"])


@pytest.mark.parametrize(
    "text",
    ["Name\nHélène Renée\nMarièle\n", "Name\nO’Brien\nD’Arcy\n", "Name\nMüller\nGroße\n"],
)
def test_it_does_not_mistake_western_cp1252_for_shift_jis(text):
    data = text.encode("cp1252")
    assert detect_encoding(data) == "cp1252"
    assert [cells for _, cells in read_rows(data)] == [[line] for line in text.splitlines()]


# Line ends, quotes, blank lines


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_it_reads_every_kind_of_line_end(end):
    data = end.join(["a,b", "1,2", "3,4"]).encode() + end.encode()
    assert read_rows(data) == [(1, ["a", "b"]), (2, ["1", "2"]), (3, ["3", "4"])]


def test_it_counts_the_physical_lines_of_a_quoted_multiline_field():
    data = b'name,address,phone\r\nAnn,"1 Main St\r\nApt 2\r\nSpringfield",555\r\nBob,"x",556\r\n'
    assert read_rows(data) == [
        (1, ["name", "address", "phone"]),
        (2, ["Ann", "1 Main St\r\nApt 2\r\nSpringfield", "555"]),
        (5, ["Bob", "x", "556"]),
    ]


def test_it_unescapes_doubled_quotes():
    assert read_rows(b'note,x\n"say ""hi"", ok",1\n')[1] == (2, ['say "hi", ok', "1"])


def test_it_yields_blank_lines_and_empty_records_as_empty_rows():
    data = b"a,b\n\n1,2\n,\n\r\n3,4\n"
    assert read_rows(data) == [
        (1, ["a", "b"]),
        (2, []),
        (3, ["1", "2"]),
        (4, []),
        (5, []),
        (6, ["3", "4"]),
    ]


def test_it_keeps_trailing_empty_cells_as_parsed():
    assert read_rows(b"a,b,\n1,,\n") == [(1, ["a", "b", ""]), (2, ["1", "", ""])]


def test_it_keeps_spaces_inside_cells():
    assert read_rows(b"a,b\n  x , y\n")[1] == (2, ["  x ", " y"])


def test_it_reads_a_single_column_file():
    data = b"phone\n+19195550100\n(919) 555-0101\n"
    assert detect_delimiter(data.decode()) == ","
    assert read_rows(data) == [(1, ["phone"]), (2, ["+19195550100"]), (3, ["(919) 555-0101"])]


def test_it_reads_a_header_only_file():
    assert read_rows(b"email;phone") == [(1, ["email", "phone"])]


def test_it_reads_an_empty_file_as_no_rows():
    assert read_rows(b"") == []


# Delimiters


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_it_detects_each_supported_delimiter(delimiter):
    text = delimiter.join(["Name", "Email", "Phone"]) + "\n" + delimiter.join(["Ann, Jr", "a@x.io", "1"]) + "\n"
    if delimiter == ",":
        text = text.replace("Ann, Jr", '"Ann, Jr"')
    assert detect_delimiter(text) == delimiter
    assert read_rows(text.encode())[1][1] == ["Ann, Jr", "a@x.io", "1"]


def test_it_ignores_letters_that_csv_sniffer_would_pick():
    text = "first,fifth,fee\nfoo,far,fig\nfun,fox,fry\n"
    assert detect_delimiter(text) == ","


def test_it_prefers_the_delimiter_the_header_agrees_with_over_decimal_commas():
    text = "Name;Amount\nBob;1,5\nAl;2,25\n"
    assert detect_delimiter(text) == ";"


def test_it_respects_quotes_when_counting_fields():
    text = 'a;b\n"x;y";z\n"1;2";3\n'
    assert read_rows(text.encode())[1][1] == ["x;y", "z"]


def test_it_refuses_rows_that_disagree_on_the_delimiter():
    data = b"1,1,1,1,1@host.invalid,,\n" + b"".join(
        b"%d\t%d\t%d\t%d\t%d@host.invalid\n" % ((i,) * 5) for i in (2, 3, 4)
    )
    with pytest.raises(ReaderError) as caught:
        read_delimited(io.BytesIO(data))
    assert str(caught.value).startswith("rows disagree on the delimiter: line 1 uses ',' but lines 2-4 use tab")


def test_it_uses_the_delimiter_it_is_given():
    assert read_rows(b"a;b,c\n1;2,3\n", delimiter=",") == [(1, ["a;b", "c"]), (2, ["1;2", "3"])]


def test_it_rejects_a_delimiter_that_is_not_one_character():
    with pytest.raises(ValueError):
        read_delimited(io.BytesIO(b"a,b\n"), delimiter=",,")


# Bad input and limits


def test_it_refuses_nul_bytes_in_the_head():
    with pytest.raises(ReaderError, match="NUL bytes: it is not a text file"):
        read_delimited(io.BytesIO(b"a,b\n\x00\x01\x02binary"))


def test_it_explains_utf16_without_a_bom():
    data = "Name,Email\r\nAnn,a@example.com\r\n".encode("utf-16-le")
    with pytest.raises(ReaderError, match="UTF-16 text without a byte-order mark"):
        read_delimited(io.BytesIO(data))


def test_it_drops_a_nul_that_appears_after_the_head():
    body = b"".join(b"%d,x\n" % i for i in range(20000))
    data = b"id,v\n" + body + b"last,pad\x00ded\n"
    assert len(data) > HEAD_BYTES
    assert read_rows(data)[-1] == (20002, ["last", "padded"])


def test_it_names_the_line_with_too_many_columns():
    data = b"a,b\n1,2\n" + b",".join([b"x"] * (MAX_COLUMNS + 1)) + b"\n"
    rows = read_delimited(io.BytesIO(data))
    assert next(rows).line == 1
    assert next(rows).line == 2
    with pytest.raises(ReaderError, match=rf"line 3 has {MAX_COLUMNS + 1} columns"):
        next(rows)


def test_it_trims_trailing_empty_columns_beyond_the_limit():
    data = b"a,b" + b"," * (MAX_COLUMNS + 50) + b"\n1,2\n"
    assert read_rows(data) == [(1, ["a", "b"]), (2, ["1", "2"])]


def test_it_names_the_line_and_column_of_an_oversized_cell():
    data = b"a,b\n1," + b"x" * (MAX_CELL_CHARS + 1) + b"\n"
    with pytest.raises(ReaderError, match="line 2, column 2: a cell is longer than 65,536"):
        read_rows(data)


def test_it_names_the_line_where_an_unclosed_quote_starts():
    data = b'a,b\n1,2\n3,"never closed\n' + b"more text here\n" * 20000
    with pytest.raises(ReaderError, match="line 3: a cell is longer than .* quote left open"):
        read_rows(data)


def test_it_refuses_a_line_with_no_end(monkeypatch):
    monkeypatch.setattr(delimited, "MAX_LINE_CHARS", 100_000)
    data = b"a,b\n" + b"x" * 150_000
    with pytest.raises(ReaderError, match="line 2 is longer than 100,000 characters"):
        read_rows(data)


def test_it_streams_without_reading_the_whole_file():
    data = b"id,email\n" + b"".join(b"%d,p%d@example.com\n" % (i, i) for i in range(100_000))
    source = OnlySmallReads(data)
    count = sum(1 for _ in read_delimited(source))
    assert count == 100_001
    assert source.largest_read <= HEAD_BYTES


# The real-world corpus (../shared/data/csv)

CORPUS = {
    # file: (encoding, first header cells, header width, number of rows incl. header, a data row check)
    "roundcube_gmail_legacy.csv": ("utf-8", ["Name", "Given Name", "Additional Name"], 81, 2),
    "roundcube_all_bom.csv": ("utf-8-sig", ["Display Name", "Title", "First Name"], 61, 2),
    "tb_utf16_addressbook.csv": ("utf-16", ["First Name", "Last Name", "Display Name"], 38, 2),
    "tb_shiftjis_addressbook.csv": ("cp932", ["First Name", "Last Name", "Display Name"], 38, 2),
    "tb_quote.csv": ("utf-8", ["First Name", "Last Name", "Display Name"], 37, 2),
    "tb_csv_semicolon.csv": ("utf-8", ["Display Name", "First Name", "Last Name"], 4, 3),
    "die_books-ISO-8859-1.csv": ("cp1252", ["id", "name", "author_email"], 3, 2),
    "die_books-mac-cr.csv": ("utf-8", ["id", "name", "author_email"], 3, 2),
}


@needs_corpus
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_it_reads_every_corpus_csv(name):
    encoding, header_start, width, count = CORPUS[name]
    path = DATA / "csv" / name
    assert detect_encoding(path.read_bytes()[:HEAD_BYTES]) == encoding
    with path.open("rb") as fileobj:
        rows = list(read_delimited(fileobj))
    assert len(rows) == count
    assert rows[0].line == 1
    assert rows[0].cells[:3] == header_start
    assert len(rows[0].cells) == width
    assert all(len(row.cells) == width for row in rows)


@needs_corpus
def test_it_reads_the_corpus_data_cells_exactly():
    def second_row(name):
        with (DATA / "csv" / name).open("rb") as fileobj:
            return list(read_delimited(fileobj))[1]

    gmail = second_row("roundcube_gmail_legacy.csv")
    assert gmail.line == 2
    assert gmail.cells[25:29] == ['note"note', "* My Contacts ::: Test", "* Home", "home@aaa.pl"]
    assert gmail.cells[50] == "home_street\nhome_pobox\nhome_city, home_state home_zip\nhome_country"
    assert second_row("roundcube_all_bom.csv").cells[42] == "20/01/1991"
    assert second_row("tb_utf16_addressbook.csv").cells[:5] == [
        "John",
        "Doe",
        "John Doe",
        "",
        "johndoe@host.invalid",
    ]
    assert second_row("tb_shiftjis_addressbook.csv").cells[:3] == [
        "権兵衛",
        "名無し",
        "名無しの権兵衛",
    ]
    assert second_row("tb_quote.csv").cells[:8] == [
        "",
        "",
        "Acer America",
        "",
        "",
        "",
        "",
        "(800) 000-0000",
    ]
    assert second_row("die_books-ISO-8859-1.csv").cells == ["1", "Merci à toi", "test@example.com"]
    assert second_row("die_books-mac-cr.csv").cells == ["1", "Some book", "test@example.com"]


@needs_corpus
def test_it_refuses_the_corpus_file_that_mixes_tabs_and_commas():
    with (
        (DATA / "csv" / "tb_tab_comma_mixed.csv").open("rb") as fileobj,
        pytest.raises(ReaderError) as caught,
    ):
        read_delimited(fileobj)
    assert str(caught.value) == (
        "rows disagree on the delimiter: line 1 uses ',' but lines 2-4 use tab; "
        "save the file again with a single delimiter"
    )
