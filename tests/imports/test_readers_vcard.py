"""The vCard reader: pure unit tests on inline bytes, then the real-world corpus."""

from __future__ import annotations

import base64
import codecs
import io
import tracemalloc

import pytest

from imports.readers.base import RawRecord, ReaderError
from imports.readers.vcard import (
    CHUNK_BYTES,
    MAX_PROPERTY_BYTES,
    ReaderWarning,
    legacy_charset_for_region,
    read_vcards,
)

from ..conftest import SHARED_DATA as DATA

VCARDS = DATA / "vcard"


def read(data: bytes, **kwargs) -> list[RawRecord]:
    return list(read_vcards(io.BytesIO(data), **kwargs))


def read_with_warnings(data: bytes, **kwargs) -> tuple[list[RawRecord], list[ReaderWarning]]:
    warnings: list[ReaderWarning] = []
    return read(data, on_warning=warnings.append, **kwargs), warnings


def card(*lines: bytes | str, version: str = "3.0", eol: bytes = b"\r\n") -> bytes:
    body = [line.encode() if isinstance(line, str) else line for line in lines]
    return eol.join([b"BEGIN:VCARD", b"VERSION:" + version.encode(), *body, b"END:VCARD"]) + eol


def read_one(*lines: bytes | str, version: str = "3.0", **kwargs) -> RawRecord:
    (record,) = read(card(*lines, version=version), **kwargs)
    return record


def texts(record: RawRecord, name: str) -> list[str]:
    return [text for _column, text in record.values.get(name, [])]


# --- file encodings ---------------------------------------------------------------------


def test_it_reads_a_utf8_file_with_bom():
    (record,) = read(codecs.BOM_UTF8 + card(b"N:M\xc3\xbcller;Jos\xc3\xa9"))

    assert (record.line, record.values["last_name"]) == (1, [("N", "Müller")])
    assert texts(record, "first_name") == ["José"]


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-16-le", b""),
        ("utf-16-be", b""),
    ],
)
def test_it_reads_a_utf16_file_with_or_without_bom(encoding, prefix):
    text = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:ĽdaMonté;Ǽgean\r\nTEL:905-555-1234\r\nEND:VCARD\r\n"

    (record,) = read(prefix + text.encode(encoding))

    assert texts(record, "last_name") == ["ĽdaMonté"]
    assert texts(record, "first_name") == ["Ǽgean"]
    assert texts(record, "phone") == ["905-555-1234"]


def test_it_falls_back_to_cp1252_for_bytes_that_are_not_utf8():
    record = read_one(b"N:M\xfcller;Ren\xe9e", b"NOTE:\x93quoted\x94")

    assert texts(record, "last_name") == ["Müller"]
    assert texts(record, "first_name") == ["Renée"]
    assert texts(record, "notes") == ["\u201cquoted\u201d"]


def test_it_uses_the_fallback_charset_the_caller_gives():
    record = read_one(b"N:Iksi\xf1ski;Piotr", fallback_charset="cp1250")

    assert texts(record, "last_name") == ["Iksiński"]


def test_it_decodes_8bit_values_with_their_declared_charset():
    record = read_one(b"N;CHARSET=ISO-8859-2:Iksi\xf1ski;Piotr", version="2.1")

    assert texts(record, "last_name") == ["Iksiński"]


def test_it_prefers_valid_utf8_over_a_declared_8bit_charset():
    record = read_one(b"N;CHARSET=ISO-8859-1:Jos\xc3\xa9;Ana", version="2.1")

    assert texts(record, "last_name") == ["José"]


def test_it_reads_concatenated_files_that_each_start_with_a_bom():
    data = codecs.BOM_UTF8 + card("TEL:1") + codecs.BOM_UTF8 + card("TEL:2")

    records, warnings = read_with_warnings(data)

    assert [texts(record, "phone") for record in records] == [["1"], ["2"]]
    assert warnings == []


@pytest.mark.parametrize(
    ("region", "charset"),
    [("PL", "cp1250"), ("cz", "cp1250"), ("RU", "cp1251"), ("GR", "cp1253"), ("US", "cp1252"), (None, "cp1252")],
)
def test_it_picks_the_windows_code_page_of_a_region(region, charset):
    assert legacy_charset_for_region(region) == charset


# --- lines, folding, QUOTED-PRINTABLE ---------------------------------------------------


@pytest.mark.parametrize("eol", [b"\r\n", b"\n", b"\r", b"\r\r\n"], ids=["crlf", "lf", "cr", "crcrlf"])
def test_it_numbers_cards_by_their_begin_line_whatever_the_line_endings(eol):
    data = card("TEL;TYPE=CELL:905-555-1234", eol=eol) + eol + card("EMAIL:b@example.com", eol=eol)

    first, second = read(data)

    assert (first.line, second.line) == (1, 6)
    assert texts(first, "phone") == ["905-555-1234"]
    assert texts(second, "email") == ["b@example.com"]


def test_it_unfolds_lines_by_removing_one_space_or_tab():
    record = read_one("ADR;TYPE=HOME:;;15 Crescent;Albany;NY;12345;United", "  States", "NOTE:ab", "\tcd")

    assert texts(record, "country") == ["United States"]
    assert texts(record, "notes") == ["abcd"]


def test_it_joins_quoted_printable_soft_line_breaks():
    record = read_one(
        "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=91=20=C3=91=",
        "=20=C3=91;=C3=91;;;",
        "NOTE;ENCODING=QUOTED-PRINTABLE:line one=0D=0A=",
        "line two",
        version="2.1",
    )

    assert texts(record, "last_name") == ["Ñ Ñ Ñ"]
    assert texts(record, "first_name") == ["Ñ"]
    assert texts(record, "notes") == ["line one\nline two"]


def test_it_ends_a_quoted_printable_value_at_the_empty_line_after_a_soft_break():
    # Android writes ORG=...=<CRLF><CRLF>ORG;...: the empty line closes the first value.
    record = read_one(
        "ORG;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=91=C3=91=",
        "",
        "ORG;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:Second",
        "TEL:123456",
        version="2.1",
    )

    assert texts(record, "company") == ["ÑÑ"]
    assert texts(record, "phone") == ["123456"]


def test_a_quoted_printable_soft_break_does_not_swallow_end_vcard():
    data = card("NOTE;ENCODING=QUOTED-PRINTABLE:dangling=", version="2.1") + card("TEL:123456")

    first, second = read(data)

    assert texts(first, "notes") == ["dangling"]
    assert texts(second, "phone") == ["123456"]


def test_it_reads_a_kept_line_longer_than_a_read_chunk():
    note = "x" * (CHUNK_BYTES * 2 + 17)

    record = read_one("NOTE:" + note, "TEL:123456")

    assert texts(record, "notes") == [note]
    assert texts(record, "phone") == ["123456"]


def test_it_reads_21_base64_lines_without_indentation_up_to_the_next_property():
    record = read_one("PHOTO;ENCODING=BASE64;JPEG:/9j/4AAQSkZJRg", "AAQSkZJRgABAQAAAQ==", "", "TEL:123", version="2.1")

    assert record.values == {"phone": [("TEL", "123")]}


# --- parameters -------------------------------------------------------------------------


def test_it_reads_bare_21_parameters_as_types():
    record = read_one("TEL;HOME:111", "TEL;CELL:222", "TEL;CELL;PREF:333", version="2.1")

    assert texts(record, "phone") == ["333", "222", "111"]


def test_it_splits_type_lists_quoted_or_not():
    record = read_one('TEL;TYPE="work,voice":111', "TEL;TYPE=work,cell:222", 'TEL;TYPE="home,fax":333', "TEL:444")

    assert texts(record, "phone") == ["222", "111", "444", "333"]


def test_it_ignores_colons_and_semicolons_inside_quoted_parameters():
    record = read_one('TEL;X-COUCHDB-UUID="c2fa:1c;aa";TYPE=CELL:905-666-1234')

    assert texts(record, "phone") == ["905-666-1234"]


def test_it_decodes_rfc6868_carets_in_parameters_without_breaking_the_value():
    record = read_one("EMAIL;X-LABEL=\"say ^'hi^' ^^\":a@example.com")

    assert texts(record, "email") == ["a@example.com"]


# --- value decoding ---------------------------------------------------------------------


def test_it_decodes_quoted_printable_without_charset_as_utf8_when_it_is_valid():
    record = read_one("N;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;Jan", version="2.1")

    assert texts(record, "last_name") == ["Müller"]


def test_it_decodes_quoted_printable_without_charset_with_the_fallback_charset():
    line = "N;ENCODING=QUOTED-PRINTABLE:Iksi=F1ski;Piotr"

    assert texts(read_one(line, version="2.1"), "last_name") == ["Iksiñski"]
    assert texts(read_one(line, version="2.1", fallback_charset="cp1250"), "last_name") == ["Iksiński"]


def test_it_replaces_bytes_its_declared_charset_cannot_read_and_warns():
    data = card("ORG;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=91=80", "TEL:1", version="2.1")

    (record,), warnings = read_with_warnings(data)

    assert texts(record, "company") == ["Ñ\ufffd"]
    assert [(w.line, w.column) for w in warnings] == [(1, "ORG")]
    assert "ORG on line 3 is not valid utf-8" in warnings[0].message


def test_it_decodes_a_base64_text_value():
    encoded = base64.b64encode("Zoë's note".encode()).decode()

    record = read_one(f"NOTE;ENCODING=b:{encoded}")

    assert texts(record, "notes") == ["Zoë's note"]


def test_it_warns_about_a_text_value_that_is_not_valid_base64():
    (record,), warnings = read_with_warnings(card("NOTE;ENCODING=b:not*base64", "TEL:1"))

    assert "notes" not in record.values
    assert warnings[0].column == "NOTE"
    assert "not valid base64" in warnings[0].message


def test_it_unescapes_text_values_and_keeps_unknown_backslashes():
    record = read_one(r"NOTE:a\, b\; c\nd\\e\:f\"g C:\temp")

    assert texts(record, "notes") == ['a, b; c\nd\\e:f"g C:\\temp']


# --- mapping ----------------------------------------------------------------------------


def test_it_maps_family_and_given_names_only():
    record = read_one(r"N:Doe;John;Richter\, James;Mr.;Sr.")

    assert record.values["last_name"] == [("N", "Doe")]
    assert record.values["first_name"] == [("N", "John")]


def test_it_keeps_fn_whole_even_with_an_unescaped_comma():
    record = read_one("FN:Mr. John Richter, James Doe Sr.", r"N:Doe;John;Richter\, James;Mr.;Sr.")

    assert record.values["display_name"] == [("FN", "Mr. John Richter, James Doe Sr.")]


def test_it_leaves_the_names_empty_without_n():
    record = read_one("FN:Apple Computer AG", "ORG:Apple Computer AG;")

    assert "first_name" not in record.values and "last_name" not in record.values
    assert texts(record, "company") == ["Apple Computer AG"]


def test_it_orders_phones_mobile_then_preferred_then_the_rest_then_fax_and_pager():
    record = read_one(
        "TEL;TYPE=HOME;TYPE=FAX:1",
        "TEL;TYPE=WORK:2",
        "TEL;TYPE=PAGER:3",
        "TEL;TYPE=HOME:4",
        "TEL;TYPE=CELL:5",
        "TEL;TYPE=HOME;TYPE=pref:6",
        "TEL;TYPE=CELL;PREF=1:7",
    )

    assert texts(record, "phone") == ["7", "5", "6", "2", "4", "1", "3"]
    assert {column for column, _text in record.values["phone"]} == {"TEL"}


def test_it_keeps_the_text_after_tel_colon_in_a_tel_uri():
    record = read_one("TEL;VALUE=uri;TYPE=work:tel:+1-418-656-9254;ext=102")

    assert texts(record, "phone") == ["+1-418-656-9254;ext=102"]


def test_it_keeps_a_non_numeric_phone_as_a_candidate():
    record = read_one("TEL;WORK;VOICE:BusinessPhone", version="2.1")

    assert texts(record, "phone") == ["BusinessPhone"]


def test_it_puts_preferred_emails_first():
    record = read_one(
        "EMAIL;TYPE=INTERNET:a@example.com",
        "EMAIL;PREF=2:b@example.com",
        "EMAIL;TYPE=INTERNET,pref:c@example.com",
    )

    assert texts(record, "email") == ["c@example.com", "b@example.com", "a@example.com"]


def test_it_maps_the_first_org_component_to_company():
    record = read_one(r"ORG:Company\, The;TheDepartment", "ORG:Second Org")

    assert record.values["company"] == [("ORG", "Company, The")]


def test_it_maps_the_preferred_address():
    record = read_one(
        "ADR;TYPE=WORK:;;1 Work St;Worktown;NY;10001;USA",
        r"ADR;TYPE=HOME,pref:PO Box 7;Apt 2;15 Home St\, rear;Albany;New York;12345;United States",
    )

    assert record.values["address"] == [("ADR", "PO Box 7, Apt 2, 15 Home St, rear")]
    assert texts(record, "city") == ["Albany"]
    assert texts(record, "state") == ["New York"]
    assert texts(record, "zip") == ["12345"]
    assert texts(record, "country") == ["United States"]


def test_it_maps_the_first_address_when_none_is_preferred():
    record = read_one("ADR:;Suite 4;;Quebec;QC", "ADR:;;2 Other St;Montreal;QC;H1A;Canada")

    assert texts(record, "address") == ["Suite 4"]
    assert texts(record, "city") == ["Quebec"]
    assert "zip" not in record.values and "country" not in record.values


def test_it_makes_one_tag_per_category():
    record = read_one(r"CATEGORIES:VIP,Friends\, close,", "CATEGORIES:My Contacts")

    assert record.values["tags"] == [
        ("CATEGORIES", "VIP"),
        ("CATEGORIES", "Friends, close"),
        ("CATEGORIES", "My Contacts"),
    ]


def test_it_maps_birthday_language_and_uid_raw():
    record = read_one("BDAY:--0415", "LANG;PREF=2:en", "LANG;PREF=1:fr", "UID:urn:uuid:1234")

    assert record.values["birthday"] == [("BDAY", "--0415")]
    assert texts(record, "language") == ["fr", "en"]
    assert record.values["external_id"] == [("UID", "urn:uuid:1234")]


def test_it_joins_several_notes():
    record = read_one("NOTE:first", "NOTE:second")

    assert record.values["notes"] == [("NOTE", "first\n\nsecond")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("TZ:America/New_York", ["America/New_York"]),
        ("TZ;VALUE=text:America/Argentina/Buenos_Aires", ["America/Argentina/Buenos_Aires"]),
        ("TZ:UTC", ["UTC"]),
        ("TZ:-05:00", []),
        ("TZ;VALUE=text:-05:00; EST; Raleigh/North America", []),
    ],
)
def test_it_maps_a_timezone_only_when_it_looks_like_an_iana_name(line, expected):
    assert texts(read_one(line), "timezone") == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GENDER:M", "male"),
        ("GENDER:F", "female"),
        ("GENDER:O;intersex", "other"),
        ("GENDER:N", "none"),
        ("GENDER:U", "unknown"),
        ("GENDER:;it's complicated", "it's complicated"),
        ("X-GENDER:Male", "male"),
        ("X-GENDER:Nonbinary", "Nonbinary"),
    ],
)
def test_it_maps_gender(line, expected):
    assert texts(read_one(line, version="4.0"), "gender") == [expected]


@pytest.mark.parametrize(
    "line",
    [
        "PHOTO;VALUE=uri:https://example.com/a.jpg",
        "PHOTO;VALUE=URL:https://example.com/a.jpg",
        r"PHOTO:https\://example.com/a.jpg",
    ],
)
def test_it_maps_a_photo_uri_to_avatar_url(line):
    assert read_one(line).values["avatar_url"] == [("PHOTO", "https://example.com/a.jpg")]


@pytest.mark.parametrize(
    "line",
    [
        "PHOTO;ENCODING=b;TYPE=JPEG:aHR0cHM6Ly9leGFtcGxlLmNvbS8=",
        "PHOTO:data:image/jpeg;base64,/9j/4AAQSkZJRg==",
        "PHOTO:/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQF",
    ],
)
def test_it_ignores_an_inline_photo(line):
    assert read_one(line, "TEL:1").values == {"phone": [("TEL", "1")]}


def test_it_ignores_properties_it_does_not_map():
    record = read_one(
        "TITLE:Money Counter",
        "URL:http://example.com",
        "NICKNAME:Joe",
        "X-AIM:joe@aol.com",
        "item1.X-ABLabel:_$!<HomePage>!$_",
        "X-MS-TEL;VOICE;CALLBACK:(111) 555-4444",
        "KEY;X509;ENCODING=BASE64:",
        "    MIIDITCCAoqgAwIBAgIQT52W2WawmStUwpV8tBV9TTANBgkqhkiG9w0BAQUFADBMMQsw",
        "",
        "item2.TEL:905-222-1234",
    )

    assert record.values == {"phone": [("TEL", "905-222-1234")]}


# --- broken files and cards -------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n", b"Name,Phone\r\nAnn,123\r\n", b"PK\x03\x04\x00\x00binary"])
def test_it_refuses_a_file_without_any_card(data):
    with pytest.raises(ReaderError, match="no line reads BEGIN:VCARD"):
        read(data)


def test_it_yields_a_card_cut_off_at_the_end_of_the_file_and_warns():
    data = card("TEL:1") + b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Cut Off\r\nTEL:2\r\n"

    records, warnings = read_with_warnings(data)

    assert [texts(record, "phone") for record in records] == [["1"], ["2"]]
    assert [warning.line for warning in warnings] == [5]
    assert "ends inside the card that starts on line 5" in warnings[0].message


def test_it_yields_a_card_without_end_before_the_next_begin_and_warns():
    data = b"BEGIN:VCARD\r\nTEL:1\r\n" + card("TEL:2")

    records, warnings = read_with_warnings(data)

    assert [(record.line, texts(record, "phone")) for record in records] == [(1, ["1"]), (3, ["2"])]
    assert "no END:VCARD before the next BEGIN:VCARD on line 3" in warnings[0].message


def test_it_warns_once_about_a_run_of_lines_between_cards():
    data = card("TEL:1") + b"garbage\r\nmore garbage\r\nEND:VCARD\r\n" + card("TEL:2") + b"tail\r\n"

    records, warnings = read_with_warnings(data)

    assert [texts(record, "phone") for record in records] == [["1"], ["2"]]
    assert [(w.line, w.value) for w in warnings] == [(5, "garbage"), (12, "tail")]


def test_it_warns_once_about_lines_in_a_card_that_are_not_properties():
    (record,), warnings = read_with_warnings(card("TEL:1", "just some text", "more text", "EMAIL:a@example.com"))

    assert texts(record, "email") == ["a@example.com"]
    assert [(w.line, w.value) for w in warnings] == [(1, "just some text")]
    assert "Line 4 is not a vCard property" in warnings[0].message


def test_it_skips_the_card_a_21_agent_embeds():
    record = read_one(
        "FN:Boss", "AGENT:", "BEGIN:VCARD", "FN:Assistant", "TEL:999", "END:VCARD", "TEL:1", version="2.1"
    )

    assert texts(record, "display_name") == ["Boss"]
    assert texts(record, "phone") == ["1"]


def test_it_yields_an_empty_record_for_an_empty_card():
    (record,) = read(b"BEGIN:VCARD\r\nEND:VCARD\r\n")

    assert (record.line, record.values) == (1, {})


def test_it_ignores_a_kept_property_over_the_size_cap_and_warns():
    (record,), warnings = read_with_warnings(card("NOTE:" + "n" * (MAX_PROPERTY_BYTES + 1), "TEL:1"))

    assert "notes" not in record.values
    assert texts(record, "phone") == ["1"]
    assert [(w.column, w.line) for w in warnings] == [("NOTE", 1)]


def test_it_stops_keeping_properties_once_a_card_holds_a_megabyte():
    notes = [f"NOTE:{'n' * 200_000}" for _ in range(6)]

    (record,), warnings = read_with_warnings(card("TEL:1", *notes, "EMAIL:late@example.com"))

    assert texts(record, "phone") == ["1"]
    assert "email" not in record.values
    assert len(warnings) == 1 and "more than 1 MB" in warnings[0].message


def test_it_reads_the_file_lazily_one_card_at_a_time():
    stream = io.BytesIO(card("TEL:1") + card("TEL:2") * 20_000)

    first = next(read_vcards(stream))

    assert texts(first, "phone") == ["1"]
    assert stream.tell() <= 2 * CHUNK_BYTES < len(stream.getvalue())


@pytest.mark.parametrize("folded", [True, False], ids=["folded", "one-line"])
def test_it_skips_a_5_mb_photo_with_bounded_memory(tmp_path, folded):
    blob = base64.b64encode(b"\xff\xd8" + bytes(range(256)) * 15_000)  # ~5 MB of base64
    assert len(blob) > 5_000_000
    if folded:
        blob = b"\r\n ".join(blob[i : i + 74] for i in range(0, len(blob), 74))
    path = tmp_path / "big.vcf"
    path.write_bytes(card("FN:Big", b"PHOTO;ENCODING=b;TYPE=JPEG:" + blob, "TEL:1", "NOTE:after"))
    del blob

    tracemalloc.start()
    try:
        with path.open("rb") as fileobj:
            records = list(read_vcards(fileobj))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert [texts(records[0], name) for name in ("display_name", "phone", "notes")] == [["Big"], ["1"], ["after"]]
    assert "avatar_url" not in records[0].values
    assert peak < 1_000_000, f"peak {peak} bytes for a 5 MB photo"


# --- the real-world corpus (../shared/data/vcard) ------------------------------------

corpus = pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not here")


def read_corpus(name: str, **kwargs) -> tuple[list[RawRecord], list[ReaderWarning]]:
    warnings: list[ReaderWarning] = []
    with (VCARDS / name).open("rb") as fileobj:
        return list(read_vcards(fileobj, on_warning=warnings.append, **kwargs)), warnings


@corpus
def test_every_corpus_file_imports():
    counts = {path.name: len(read_corpus(path.name)[0]) for path in sorted(VCARDS.glob("*.vcf"))}

    assert len(counts) == 15
    assert counts["ezvcard_John_Doe_ANDROID.vcf"] == 6
    assert {name for name, count in counts.items() if count != 1} == {"ezvcard_John_Doe_ANDROID.vcf"}


@corpus
def test_corpus_android_21_with_qp_soft_breaks_and_bare_params():
    records, warnings = read_corpus("ezvcard_John_Doe_ANDROID.vcf")

    assert [record.line for record in records] == [1, 6, 11, 18, 36, 71]
    assert records[0].values == {
        "email": [("EMAIL", "john.doe@company.com")],
        "tags": [("CATEGORIES", "My Contacts")],
    }
    assert texts(records[2], "last_name") == ["Ñ Ñ Ñ Ñ"]
    assert texts(records[2], "display_name") == ["Ñ Ñ Ñ Ñ Ñ"]
    assert texts(records[3], "display_name") == [" ".join(["Ñ"] * 11)]
    assert texts(records[3], "phone") == ["123456", "3456789", "234567", "45678901"]
    assert texts(records[3], "notes")[0].count("Ñ") == 2 * 21
    assert texts(records[4], "first_name") == ["Ñ Ñ Ñ"]
    assert texts(records[4], "email") == ["bob@company.com", "Ñ" * 14]
    assert texts(records[4], "company") == ["Ñ" * 12]
    assert "avatar_url" not in records[4].values
    assert texts(records[5], "phone") == ["55556666"]
    assert texts(records[5], "company") == ["Ñ" * 44]
    assert warnings == []  # the broken third ORG (=80) is never decoded: only the first ORG counts


@corpus
def test_corpus_ms_outlook_21():
    (record,), warnings = read_corpus("ezvcard_John_Doe_MS_OUTLOOK.vcf")

    assert texts(record, "phone") == ["(905) 555-1234", "(905) 666-1234"]
    assert texts(record, "email") == ["john.doe@ibm.cm"]
    assert texts(record, "display_name") == ["Mr. John Richter James Doe Sr."]
    assert texts(record, "company") == ["IBM"]
    assert [texts(record, name) for name in ("address", "city", "zip")] == [
        ["Cresent moon drive"],
        ["Albaney"],
        ["12345"],
    ]
    assert texts(record, "birthday") == ["19800322"]
    assert warnings == []


@corpus
def test_corpus_outlook_2007_qp_note_with_a_tab():
    (record,), _ = read_corpus("ezvcard_outlook-2007.vcf")

    assert texts(record, "phone") == ["(111) 555-4444", "(111) 555-1111", "(111) 555-2222", "(111) 555-3333"]
    assert texts(record, "notes")[0].startswith("This is the NOTE field\t\nI assume it encodes")
    assert texts(record, "notes")[0].endswith("It does not preserve the formatting")
    assert texts(record, "address") == ["TheOffice, 222 Broadway"]
    assert texts(record, "email") == ["mike.angstadt@gmail.com"]


@corpus
def test_corpus_outlook_2003_keeps_non_numeric_phones_and_the_comma_in_org():
    (record,), _ = read_corpus("ezvcard_outlook-2003.vcf")

    assert texts(record, "phone") == ["MobilePhone", "BusinessPhone", "HomePhone", "BusinessFaxPhone"]
    assert texts(record, "company") == ["Company, The"]
    assert texts(record, "notes") == ["This is the note field!!\nSecond line\n\nThird line is empty"]
    assert texts(record, "email") == ["jdoe@hotmail.com"]


@corpus
def test_corpus_iphone_with_double_cr_line_endings():
    (record,), _ = read_corpus("ezvcard_John_Doe_IPHONE.vcf")

    assert texts(record, "phone") == [
        "905-555-1234",  # type=CELL;type=VOICE;type=pref
        "905-666-1234",
        "905-777-1234",
        "905-222-1234",  # item2.TEL
        "905-888-1234",  # the faxes and the pager last
        "905-999-1234",
        "905-111-1234",
    ]
    assert texts(record, "email") == ["john.doe@ibm.com"]
    assert texts(record, "address") == ["Silicon Alley 5,"]
    assert "avatar_url" not in record.values


@corpus
def test_corpus_mac_address_book():
    (record,), _ = read_corpus("ezvcard_John_Doe_MAC_ADDRESS_BOOK.vcf")

    assert texts(record, "phone")[:2] == ["905-555-1234", "905-777-1234"]
    assert len(texts(record, "phone")) == 7
    assert texts(record, "display_name") == ["Mr. John Richter,James Doe Sr."]
    assert texts(record, "address") == ["Silicon Alley 5,"]  # item2.ADR is type=pref


@corpus
def test_corpus_lotus_notes_keeps_both_phones_despite_a_second_profile():
    (record,), _ = read_corpus("ezvcard_John_Doe_LOTUS_NOTES.vcf")

    assert texts(record, "phone") == ["+1 (212) 204-34456", "00-1-212-555-7777"]
    assert texts(record, "email") == ["john.doe@ibm.com", "billy_bob@gmail.com"]
    assert texts(record, "address") == ["25334\nSouth cresent drive, Building 5, 3rd floo r"]
    assert texts(record, "external_id") == ["0e7602cc-443e-4b82-b4b1-90f62f99a199"]
    assert texts(record, "timezone") == []  # TZ:1:00 is an offset, not an IANA name


@corpus
def test_corpus_evolution_with_quoted_params():
    (record,), _ = read_corpus("ezvcard_John_Doe_EVOLUTION.vcf")

    assert texts(record, "phone") == ["905-666-1234", "905-555-1234"]
    assert texts(record, "email") == ["john.doe@ibm.com"]
    assert texts(record, "tags") == ["VIP"]
    assert texts(record, "address") == ["ASB-123, 15 Crescent moon drive"]
    assert texts(record, "country") == ["United States of America"]
    assert texts(record, "notes")[0].startswith(
        'THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"'
    )


@corpus
def test_corpus_gmail_keeps_the_full_display_name():
    (record,), _ = read_corpus("ezvcard_John_Doe_GMAIL.vcf")

    assert texts(record, "display_name") == ["Mr. John Richter, James Doe Sr."]
    assert (texts(record, "last_name"), texts(record, "first_name")) == (["Doe"], ["John"])
    assert texts(record, "phone") == ["905-555-1234", "905-666-1234"]
    assert texts(record, "notes")[0].endswith("POSSIBILITY OF SUCH DAMAGE.\nFavotire Color: Blue")
    assert '"AS IS"' in texts(record, "notes")[0]


@corpus
def test_corpus_gmail_every_phone_label():
    (record,), _ = read_corpus("ezvcard_gmail-single2.vcf")

    phones = texts(record, "phone")
    assert len(phones) == 11
    assert phones[0] == "5555551115"  # TYPE=CELL
    assert phones[-3:] == ["5555551117", "5555551118", "5555551120"]  # faxes, pager
    assert len(texts(record, "email")) == 5
    assert texts(record, "address") == ["111 Main St"]


@corpus
def test_corpus_rfc6350_tel_uris_gender_and_languages():
    (record,), _ = read_corpus("ezvcard_rfc6350-example.vcf")

    assert texts(record, "phone") == ["+1-418-262-6501", "+1-418-656-9254;ext=102"]
    assert texts(record, "gender") == ["male"]
    assert texts(record, "language") == ["fr", "en"]
    assert texts(record, "birthday") == ["--0203"]
    assert texts(record, "address") == ["Suite D2-630, 2875 Laurier"]
    assert texts(record, "country") == ["Canada"]
    assert "tags" not in record.values  # the sample has no CATEGORIES


@corpus
def test_corpus_utf16_without_bom():
    (record,), _ = read_corpus("roundcube_utf-16_sample.vcf")

    assert texts(record, "last_name") == ["ĽdaMonté"]
    assert texts(record, "first_name") == ["Ǽgean"]
    assert texts(record, "country") == ["Perú"]


@corpus
def test_corpus_thebat_qp_without_charset_in_a_central_european_code_page():
    # The Bat! writes QP in the Windows code page and names no CHARSET; `=F1` is ń in cp1250.
    (record,), _ = read_corpus("roundcube_thebat.vcf", fallback_charset=legacy_charset_for_region("PL"))

    assert texts(record, "last_name") == ["Iksiński"]
    assert texts(record, "display_name") == ["Piotr Iksiński"]
    assert texts(record, "email") == ["piotr.iksinski@somedomain.com"]
    assert texts(record, "gender") == ["male"]


@corpus
def test_corpus_thebat_with_the_default_western_code_page():
    (record,), _ = read_corpus("roundcube_thebat.vcf")

    assert texts(record, "last_name") == ["Iksiñski"]


@corpus
def test_corpus_apple_organization_card_without_phone():
    (record,), _ = read_corpus("roundcube_apple.vcf")

    assert "phone" not in record.values and "last_name" not in record.values
    assert texts(record, "company") == ["Apple Computer AG"]
    assert texts(record, "city") == ["Wallisellen-Zürich"]
    assert texts(record, "country") == ["Switzerland"]


@corpus
def test_corpus_thunderbird_binary_photo_without_encoding_param():
    (record,), _ = read_corpus("tb_v3-binary-jpeg.vcf")

    assert record.values == {
        "display_name": [("FN", "Binary JPEG")],
        "notes": [("NOTE", "This v3.0 card has a JPEG photo as binary data and binary valuetype.")],
    }
