"""contacts.normalize: every accepted and refused form, with the exact output or message.

Pure tests (no database, no Django). They also run without Django installed:
`.venv/bin/python -m pytest -p no:django -p no:cacheprovider --noconftest tests/contacts/test_normalize.py -q`
(--noconftest because tests/conftest.py imports Django for the other tests).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import re

import phonenumbers
import pytest

import contacts.normalize as normalize_module
from contacts.geodata import CA_PROVINCE_ALIASES, CA_PROVINCES, COUNTRIES, COUNTRY_ALIASES, US_STATE_ALIASES, US_STATES
from contacts.normalize import (
    NormalizationError,
    PhoneResult,
    _nanp_fast_regions,
    _nanp_region_and_type,
    _normalize_phone_slow,
    date_from_excel_serial,
    email_key,
    normalize_country,
    normalize_custom_key,
    normalize_date,
    normalize_email,
    normalize_phone,
    normalize_state,
    normalize_tag,
    normalize_zip,
    offline_textability,
    parse_bool,
    phone_region_of,
    slugify_custom_key,
    strip_formula_escape,
    tag_key,
    validate_timezone,
)

from ..conftest import SHARED_DATA as DATA


def _error_of(func, *args, **kwargs) -> str:
    with pytest.raises(NormalizationError) as info:
        func(*args, **kwargs)
    return str(info.value)


# --------------------------------------------------------------------------------------
# Phones: accepted forms
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("(919) 555-1234", "+19195551234"),
        ("919.555.1234", "+19195551234"),
        ("919-555-1234", "+19195551234"),
        ("919/555-1234", "+19195551234"),
        ("9195551234", "+19195551234"),
        ("+1 919 555 1234", "+19195551234"),
        ("+19195551234", "+19195551234"),
        ("1-919-555-1234", "+19195551234"),
        ("1 (919) 555-1234", "+19195551234"),
        ("15105553344", "+15105553344"),
        ("  919 555 1234  ", "+19195551234"),
        ("0044 20 7946 0958", "+442079460958"),
        ("00 44 20 7946 0958", "+442079460958"),
        ("011 44 20 7946 0958", "+442079460958"),
        ("+44 20 7946 0958", "+442079460958"),
        ("00-1-212-555-7777", "+12125557777"),
        ("1-800-FLOWERS", "+18003569377"),
        ("tel:+1-418-262-6501", "+14182626501"),
        ("TEL:+1-418-262-6501", "+14182626501"),
    ],
)
def test_it_normalizes_the_common_ways_of_writing_a_phone(text, e164):
    assert normalize_phone(text) == PhoneResult(e164, None)


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("19195551234.0", "+19195551234"),
        ("9195551234.0", "+19195551234"),
        ("19195551234.00", "+19195551234"),
        ("1.9195551234E+10", "+19195551234"),
        ("1.9195551234e10", "+19195551234"),
        ("1.9195551234E10", "+19195551234"),
        ("9.195551234E+09", "+19195551234"),
    ],
)
def test_it_turns_a_phone_excel_made_a_number_back_into_digits(text, e164):
    assert normalize_phone(text).e164 == e164


def test_it_reads_an_international_number_excel_stripped_of_its_plus_in_a_matching_region():
    assert normalize_phone("4.42079460958E+11", "GB").e164 == "+442079460958"
    assert normalize_phone("442079460958.0", "GB").e164 == "+442079460958"


@pytest.mark.parametrize(
    "text",
    ["919\u00a0555\u00a01234", "919\u2009555\u20091234", "919\u202f555\u202f1234", "\u3000919 555 1234\u3000"],
)
def test_it_reads_phones_written_with_unicode_spaces(text):
    assert normalize_phone(text) == PhoneResult("+19195551234", None)


@pytest.mark.parametrize("text", ["\ufeff919-555-1234", "\u200e919-555-1234\u200f", "919\u200b555\u200b1234"])
def test_it_ignores_invisible_characters_pasted_with_a_phone(text):
    assert normalize_phone(text).e164 == "+19195551234"


@pytest.mark.parametrize(
    ("text", "region", "e164"),
    [
        ("020 7946 0958", "GB", "+442079460958"),
        ("0044 20 7946 0958", "GB", "+442079460958"),
        ("00 1 919 555 1234", "GB", "+19195551234"),
        ("030 123456", "DE", "+4930123456"),
        ("(416) 555-0123", "CA", "+14165550123"),
        ("(919) 555-1234", "CA", "+19195551234"),
        ("0044 20 7946 0958", "CA", "+442079460958"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("0044 20 7946 0958", None, "+442079460958"),
        ("919-555-1234", "us", "+19195551234"),
    ],
)
def test_it_reads_national_numbers_in_the_given_region(text, region, e164):
    assert normalize_phone(text, region) == PhoneResult(e164, None)


@pytest.mark.parametrize(
    "text", ["919-555-1234 (cell)", "919-555-1234 (Work Fax)", "+1 919 555 1234 ext", "Mobile: 919-555-1234"]
)
def test_it_ignores_a_label_around_the_number_instead_of_reading_it_as_digits(text):
    assert normalize_phone(text) == PhoneResult("+19195551234", None)


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        ("919-555-1234 x123", "extension 'x123' dropped"),
        ("919-555-1234x123", "extension 'x123' dropped"),
        ("919-555-1234 X 123", "extension 'X 123' dropped"),
        ("919-555-1234 ext. 123", "extension 'ext. 123' dropped"),
        ("919-555-1234 ext 123", "extension 'ext 123' dropped"),
        ("919-555-1234 extension 123", "extension 'extension 123' dropped"),
        ("919-555-1234 #123", "extension '#123' dropped"),
        ("919-555-1234;ext=102", "extension ';ext=102' dropped"),
        ("tel:+1-418-656-9254;ext=102", "extension ';ext=102' dropped"),
        ("919-555-1234,,55", "extension '55' dropped"),
    ],
)
def test_it_drops_an_extension_with_a_warning_and_never_glues_it_on(text, warning):
    result = normalize_phone(text)
    assert result.warning == warning
    assert result.e164 in ("+19195551234", "+14186569254")


# --------------------------------------------------------------------------------------
# Phones: refused forms
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("+1 (212) 204-34456", "'+1 (212) 204-34456' is not a valid phone number: too many digits for +1"),
        ("mobile", "'mobile' is not a phone number"),
        ("BusinessPhone", "'BusinessPhone' is not a phone number"),
        ("n/a", "'n/a' is not a phone number"),
        ("12", "'12' is not a valid phone number: too few digits for +1"),
        ("100", "'100' is not a valid phone number: too few digits for +1"),
        ("555-1234", "'555-1234' is not a valid phone number: the area code is missing"),
        ("(800) 000-0000", "'(800) 000-0000' is not a valid phone number: no +1 numbers start like this"),
        ("(111) 555-1111", "'(111) 555-1111' is not a valid phone number: no +1 numbers start like this"),
        ("+999 1234567", "'+999 1234567' is not a valid phone number: its country code does not exist"),
        ("442079460958", "'442079460958' is not a valid phone number: too many digits for +1"),
        ("9195551234.5", "'9195551234.5' is not a valid phone number: too many digits for +1"),
        ("x123", "'x123' is not a valid phone number: too few digits for +1"),
    ],
)
def test_it_refuses_a_value_that_is_not_a_valid_phone_naming_it(text, message):
    assert _error_of(normalize_phone, text) == message


@pytest.mark.parametrize(
    ("text", "left", "total"),
    [("1.91955E+10", 6, 11), ("1.9195551E+10", 8, 11), ("4.42079E+11", 6, 12)],
)
def test_it_refuses_a_phone_a_spreadsheet_truncated_instead_of_padding_it_with_zeros(text, left, total):
    message = _error_of(normalize_phone, text)
    assert message == (
        f"'{text}' is a phone number truncated by a spreadsheet: only {left} of its {total} digits are left. "
        "Format the column as text and export the file again"
    )


def test_it_refuses_a_scientific_value_that_is_not_a_whole_number():
    assert _error_of(normalize_phone, "1.91955512345E+10") == (
        "'1.91955512345E+10' is not a valid phone number: it is not a whole number"
    )


@pytest.mark.parametrize("text", ["", "   ", "\u00a0", None])
def test_it_refuses_a_blank_phone(text):
    assert _error_of(normalize_phone, text) == "a phone number cannot be blank"


def test_it_needs_a_country_code_when_there_is_no_default_region():
    assert _error_of(normalize_phone, "919-555-1234", None) == (
        "'919-555-1234' is not a valid phone number: it has no country code (write it with + and the country code)"
    )


def test_it_refuses_an_unknown_default_region():
    assert _error_of(normalize_phone, "919-555-1234", "XX") == "'XX' is not a known region code for phone numbers"


def test_it_reads_a_phone_given_as_a_number_rather_than_text():
    assert normalize_phone(9195551234).e164 == "+19195551234"
    assert normalize_phone(19195551234.0).e164 == "+19195551234"


def test_it_does_not_read_arabic_indic_digits_as_a_fast_path_number():
    # \d would match them; the fast path must not build "+1" followed by non-ASCII digits.
    result = normalize_phone("٩١٩٥٥٥١٢٣٤")
    assert result.e164 == "+19195551234"


# --------------------------------------------------------------------------------------
# Phones: the fast path gives the slow path's answer, always
# --------------------------------------------------------------------------------------


def _outcome(func, text, region):
    try:
        return ("ok", *func(text, region))
    except NormalizationError as exc:
        return ("error", str(exc))


def _nanp_inputs(rng: random.Random) -> list[str]:
    """Random North American numbers (valid, invalid, toll-free, Caribbean...) in the shapes
    the fast path takes and some it must hand over."""
    special_npas = [
        268,
        264,
        684,
        246,
        441,
        242,
        767,
        809,
        829,
        849,
        473,
        671,
        876,
        658,
        869,
        345,
        758,
        670,
        664,
        787,
        939,
        721,
        649,
        868,
        784,
        284,
        340,
        800,
        833,
        844,
        855,
        866,
        877,
        888,
        900,
        500,
        521,
        522,
        533,
        544,
        555,
        566,
        577,
        588,
        416,
        604,
        905,
        212,
        919,
        911,
        411,
        555,
        999,
        100,
    ]
    formats = [
        lambda n: n,
        lambda n: "1" + n,
        lambda n: "+1" + n,
        lambda n: f"({n[:3]}) {n[3:6]}-{n[6:]}",
        lambda n: f"({n[:3]}){n[3:6]}-{n[6:]}",
        lambda n: f"{n[:3]}.{n[3:6]}.{n[6:]}",
        lambda n: f"{n[:3]}-{n[3:6]}-{n[6:]}",
        lambda n: f"{n[:3]}/{n[3:6]}-{n[6:]}",
        lambda n: f"+1 {n[:3]} {n[3:6]} {n[6:]}",
        lambda n: f"+1 ({n[:3]}) {n[3:6]}-{n[6:]}",
        lambda n: f"1-{n[:3]}-{n[3:6]}-{n[6:]}",
        lambda n: f"1 ({n[:3]}) {n[3:6]}-{n[6:]}",
        lambda n: f"1.{n[:3]}.{n[3:6]}.{n[6:]}",
        lambda n: f"{n[:3]}\u00a0{n[3:6]}\u00a0{n[6:]}",
        lambda n: f"  {n[:3]} {n[3:6]} {n[6:]}\t",
        lambda n: f"{n}.0",
        lambda n: f"1{n}.0",
        lambda n: f"{n[0]}.{n[1:]}E+09",
        lambda n: f"1.{n}E+10",
        lambda n: f"{n[:3]}-{n[3:6]}-{n[6:]} x{n[7:]}",
        lambda n: f"{n[:3]}-{n[3:6]}-{n[6:]} ext. 12",
        lambda n: f"+1-{n[:3]}-{n[3:6]}-{n[6:]};ext=9",
        lambda n: f"tel:+1-{n[:3]}-{n[3:6]}-{n[6:]}",
        lambda n: f"001 {n}",
        lambda n: f"011 1 {n}",
        lambda n: f"({n[:3]} {n[3:6]}-{n[6:]}",
        lambda n: f"{n[:3]}) {n[3:6]}-{n[6:]}",
        lambda n: f"+ 1 {n}",
        lambda n: f"+{n}",
        lambda n: f"11{n}",
        lambda n: n[:9],
        lambda n: n + "5",
        lambda n: f"{n[:3]} - {n[3:6]} - {n[6:]}",
        lambda n: f"{n[:3]}..{n[3:6]}--{n[6:]}",
    ]
    inputs = []
    for i in range(16_000):
        if i % 4 == 0:
            npa = rng.choice(special_npas)
        else:
            npa = rng.randint(100, 999)
        nxx = rng.choice([rng.randint(0, 999), rng.randint(200, 999), 555, 100, 911, 958, 959, 976])
        number = f"{npa:03d}{nxx:03d}{rng.randint(0, 9999):04d}"
        # Half the time one of the first 17 shapes, the ones the fast path takes.
        inputs.append(rng.choice(formats[:17] if i % 2 else formats)(number))
    return inputs


def _international_inputs(rng: random.Random) -> list[str]:
    """Example numbers of every region, reformatted and with digits changed."""
    inputs = []
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    for _ in range(4_000):
        region = rng.choice(regions)
        example = phonenumbers.example_number_for_type(
            region, rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
        ) or phonenumbers.example_number(region)
        if example is None:
            continue
        digits = list(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)[1:])
        for _ in range(rng.randint(0, 2)):
            digits[rng.randrange(len(digits))] = str(rng.randint(0, 9))
        number = "".join(digits)
        inputs.append(rng.choice([f"+{number}", f"00{number}", f"011 {number}", f"+{number[:2]} {number[2:]}", number]))
    return inputs


def test_the_fast_path_gives_exactly_the_slow_paths_answer_on_20000_numbers(monkeypatch):
    rng = random.Random(20240607)
    inputs = _nanp_inputs(rng) + _international_inputs(rng)
    assert len(inputs) >= 20_000
    regions = ["US", "CA", "PR", "JM", "DO", "BS", "GB", "DE", None]
    cases = [(text, "US" if i % 3 else regions[i % len(regions)]) for i, text in enumerate(inputs)]
    slow = {case: _outcome(_normalize_phone_slow, *case) for case in cases}

    # normalize_phone hands what the fast path does not answer to the slow path: replay the
    # slow answer already computed (twice as quick) and count the hand-overs.
    handed_over = []

    def replay_slow(text, region="US"):
        handed_over.append((text, region))
        outcome = slow[(text, region)]
        if outcome[0] == "error":
            raise NormalizationError(outcome[1])
        return PhoneResult(*outcome[1:])

    monkeypatch.setattr(normalize_module, "_normalize_phone_slow", replay_slow)
    mismatches = [
        (case, fast, slow[case]) for case in cases if (fast := _outcome(normalize_phone, *case)) != slow[case]
    ]
    assert mismatches == []
    # Both paths must be well exercised, or the comparison proves little.
    fast_answers = len(cases) - len(handed_over)
    assert 5_000 < fast_answers < len(cases) - 5_000, fast_answers


def test_the_nanp_tables_give_phonenumbers_region_and_type_for_every_area_code():
    rng = random.Random(7)
    fails = []
    for npa in range(200, 1000):
        for _ in range(12):
            nsn = f"{npa}{rng.randint(0, 999):03d}{rng.randint(0, 9999):04d}"
            parsed = phonenumbers.parse("+1" + nsn)
            expected = (phonenumbers.region_code_for_number(parsed), phonenumbers.number_type(parsed))
            if _nanp_region_and_type(nsn) != expected:
                fails.append((nsn, _nanp_region_and_type(nsn), expected))
    assert fails == []


def test_every_north_american_region_takes_the_fast_path():
    assert _nanp_fast_regions() == frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])


# --------------------------------------------------------------------------------------
# Phones: region and textability
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("e164", "region"),
    [
        ("+19195551234", "US"),
        ("+14165550123", "CA"),
        ("+18765551234", "JM"),
        ("+17875551234", "PR"),
        ("+18095551234", "DO"),
        ("+18005551234", "US"),
        ("+442079460958", "GB"),
        ("+4930123456", "DE"),
        ("+80012345678", None),
        ("+1234", None),
    ],
)
def test_it_tells_the_region_of_a_number(e164, region):
    assert phone_region_of(e164) == region


@pytest.mark.parametrize(
    ("e164", "textable"),
    [
        ("+19195551234", None),  # FIXED_LINE_OR_MOBILE: North America cannot tell
        ("+14165550123", None),
        ("+18005551234", False),  # toll free
        ("+19005551234", False),  # premium rate
        ("+18765551234", True),  # Jamaican mobile
        ("+18769251234", False),  # Jamaican fixed line
        ("+447911123456", True),
        ("+442079460958", False),
        ("+4915123456789", True),
        ("+4930123456", False),
        ("+1234", None),
    ],
)
def test_it_tells_offline_whether_a_number_can_receive_texts(e164, textable):
    assert offline_textability(e164) is textable


@pytest.mark.parametrize("func", [offline_textability, phone_region_of])
@pytest.mark.parametrize("value", ["919-555-1234", "19195551234", "+0123", "", None])
def test_region_and_textability_refuse_what_is_not_e164(func, value):
    assert "is not a phone number in E.164 form (like +19195551234)" in _error_of(func, value)


# --------------------------------------------------------------------------------------
# Emails
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "email"),
    [
        ("john@example.com", "john@example.com"),
        ("  John.Doe@Example.COM \t", "John.Doe@example.com"),
        ("ann+crm@mail.example.co.uk", "ann+crm@mail.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("mailto:Ann@X.org", "Ann@x.org"),
        ("josé@example.com", "josé@example.com"),
        ("用户@例子.广告", "用户@例子.广告"),
        ("info@BÜCHER.de", "info@bücher.de"),
        ("me@xn--bcher-kva.de", "me@xn--bcher-kva.de"),
        ("a\u200b@example.com", "a@example.com"),
    ],
)
def test_it_trims_an_email_and_lowercases_only_its_domain(text, email):
    assert normalize_email(text) == email


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not an email", "it has no @"),
        ("john.example.com", "it has no @"),
        ("a@b@example.com", "it has more than one @"),
        ("john doe@example.com", "it contains a space"),
        ("john@exa mple.com", "it contains a space"),
        ("john@localhost", "the domain 'localhost' has no dot (like example.com)"),
        (".john@example.com", "the part before the @ starts or ends with a dot"),
        ("john.@example.com", "the part before the @ starts or ends with a dot"),
        ("jo..hn@example.com", "two dots in a row"),
        ("john@example..com", "two dots in a row"),
        ("john@.example.com", "the domain starts or ends with a dot"),
        ("john@example.com.", "the domain starts or ends with a dot"),
        ("@example.com", "nothing before the @"),
        ("john@", "nothing after the @"),
        ("john@example.123", "'123' is not a top-level domain"),
        ("john@example.c", "'c' is not a top-level domain"),
        ("john@-example.com", "'-example' is not a valid domain name part"),
        ("john@exa_mple.com", "'exa_mple' is not a valid domain name part"),
        ("jo(hn)@example.com", "'(' is not allowed before the @"),
        ('"john doe"@example.com', "quoted names before the @ are not supported"),
        ("john@[192.0.2.1]", "IP addresses are not accepted as the domain"),
        ("j\u0007ohn@example.com", "'\\x07' is not allowed before the @"),
    ],
)
def test_it_refuses_junk_emails_saying_why(text, why):
    assert _error_of(normalize_email, text) == f"'{text}' is not a valid email address: {why}"


def test_it_refuses_a_blank_email():
    assert _error_of(normalize_email, "  ") == "an email address cannot be blank"


def test_it_refuses_a_local_part_over_64_bytes():
    text = "a" * 65 + "@example.com"
    assert _error_of(normalize_email, text).endswith("the part before the @ is longer than 64 bytes")


def test_the_email_key_is_the_casefolded_address():
    assert email_key("John.Doe@Example.com") == "john.doe@example.com"
    assert email_key("STRASSE@example.de") == email_key("strasse@example.de")
    assert email_key("Straße@example.de") == "strasse@example.de"


# --------------------------------------------------------------------------------------
# Countries, states, ZIP codes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("US", "US"),
        ("us", "US"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("U.S.", "US"),
        ("United States", "US"),
        ("United States of America", "US"),
        ("  united   states ", "US"),
        ("UK", "GB"),
        ("U.K.", "GB"),
        ("United Kingdom", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("GBR", "GB"),
        ("Deutschland", "DE"),
        ("DEU", "DE"),
        ("South Korea", "KR"),
        ("Korea, Republic of", "KR"),
        ("North Korea", "KP"),
        ("Côte d'Ivoire", "CI"),
        ("Cote d’Ivoire", "CI"),
        ("Ivory Coast", "CI"),
        ("The Netherlands", "NL"),
        ("Holland", "NL"),
        ("St. Lucia", "LC"),
        ("Saint Kitts & Nevis", "KN"),
        ("Bosnia-Herzegovina", "BA"),
        ("Russia", "RU"),
        ("Türkiye", "TR"),
        ("Turkey", "TR"),
        ("Czech Republic", "CZ"),
        ("DR Congo", "CD"),
        ("Congo", "CG"),
        ("México", "MX"),
        ("Mexico", "MX"),
    ],
)
def test_it_turns_a_country_into_its_alpha2_code(text, code):
    assert normalize_country(text) == code


def test_every_country_of_the_iso_table_is_found_by_code_alpha3_and_name():
    assert len(COUNTRIES) == 249
    for alpha2, alpha3, name in COUNTRIES:
        assert (normalize_country(alpha2), normalize_country(alpha3), normalize_country(name)) == (alpha2,) * 3


def test_every_country_alias_leads_to_its_own_country():
    wrong = {alias: code for alias, code in COUNTRY_ALIASES.items() if normalize_country(alias) != code}
    assert wrong == {}


def test_it_refuses_an_unknown_country():
    assert _error_of(normalize_country, "Narnia") == "unknown country 'Narnia'"
    assert _error_of(normalize_country, "XX") == "unknown country 'XX'"
    assert _error_of(normalize_country, "") == "a country cannot be blank"


@pytest.mark.parametrize(
    ("text", "country", "code"),
    [
        ("NC", "US", "NC"),
        ("nc", "US", "NC"),
        ("north carolina", "US", "NC"),
        ("North  Carolina", "USA", "NC"),
        ("N.C.", "United States", "NC"),
        ("DC", "US", "DC"),
        ("Washington, D.C.", "US", "DC"),
        ("District of Columbia", "US", "DC"),
        ("PR", "US", "PR"),
        ("Puerto Rico", "US", "PR"),
        ("Guam", "US", "GU"),
        ("Virgin Islands", "US", "VI"),
        ("AE", "US", "AE"),
        ("Calif.", "US", "CA"),
        ("ca", "US", "CA"),
        ("ON", "CA", "ON"),
        ("ontario", "CA", "ON"),
        ("Québec", "CA", "QC"),
        ("Quebec", "Canada", "QC"),
        ("PQ", "CA", "QC"),
        ("Colombie-Britannique", "CA", "BC"),
        ("Bayern", "DE", "Bayern"),
        ("  Île-de-France ", "FR", "Île-de-France"),
        ("Some Place", "Narnia", "Some Place"),
    ],
)
def test_it_normalizes_a_state_by_the_rules_of_its_country(text, country, code):
    assert normalize_state(text, country) == code


def test_it_uses_the_region_for_a_state_without_a_country():
    assert normalize_state("texas", "") == "TX"
    assert normalize_state("texas", None, region="US") == "TX"
    assert normalize_state("alberta", "", region="CA") == "AB"
    assert normalize_state("Bavaria", "", region="DE") == "Bavaria"
    assert normalize_state("Bavaria", "", region=None) == "Bavaria"


def test_every_us_state_and_canadian_province_is_found_by_code_and_name():
    for table, country in ((US_STATES, "US"), (CA_PROVINCES, "CA")):
        for code, name in table.items():
            assert (normalize_state(code, country), normalize_state(name, country)) == (code, code)
    for aliases, country in ((US_STATE_ALIASES, "US"), (CA_PROVINCE_ALIASES, "CA")):
        assert {a: c for a, c in aliases.items() if normalize_state(a, country) != c} == {}


def test_it_refuses_an_unknown_state_or_province():
    assert _error_of(normalize_state, "XX", "US") == "unknown US state 'XX'"
    assert _error_of(normalize_state, "Bayern", "") == "unknown US state 'Bayern'"
    assert _error_of(normalize_state, "ZZ", "CA") == "unknown Canadian province 'ZZ'"
    assert _error_of(normalize_state, " ", "US") == "a state cannot be blank"


def test_it_refuses_a_state_over_64_characters_elsewhere():
    text = "x" * 65
    assert _error_of(normalize_state, text, "DE") == f"the state '{text}' is longer than 64 characters"
    assert normalize_state("x" * 64, "DE") == "x" * 64


@pytest.mark.parametrize(
    ("text", "zip_code"),
    [
        ("27601", "27601"),
        ("02134", "02134"),
        ("27601-1234", "27601-1234"),
        ("27601 1234", "27601-1234"),
        ("276011234", "27601-1234"),
        ("2134", "02134"),
        ("501", "00501"),
        ("2134.0", "02134"),
        ("27601.0", "27601"),
        ("21341234", "02134-1234"),
        ("5011234", "00501-1234"),
        (" 27601 ", "27601"),
    ],
)
def test_it_normalizes_a_us_zip_and_restores_the_zeros_excel_ate(text, zip_code):
    assert normalize_zip(text, "US") == zip_code


@pytest.mark.parametrize("text", ["ABC12", "123456", "12", "1234567890", "2134.5", "27601-12", "SW1A 1AA"])
def test_it_refuses_what_is_not_a_us_zip(text):
    assert _error_of(normalize_zip, text, "US") == (
        f"'{text}' is not a US ZIP code: expected 5 digits or ZIP+4 like 12345-6789"
    )


def test_it_keeps_a_foreign_postal_code_as_written_up_to_16_characters():
    assert normalize_zip(" SW1A 1AA ", "GB") == "SW1A 1AA"
    assert normalize_zip("H2X 1Y4", "CA") == "H2X 1Y4"
    assert normalize_zip("2134", "AU") == "2134"
    assert normalize_zip("2134", "", region="AU") == "2134"
    assert normalize_zip("2134", "") == "02134"
    assert _error_of(normalize_zip, "x" * 17, "GB") == f"the postal code '{'x' * 17}' is longer than 16 characters"


# --------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("1990-03-04", dt.date(1990, 3, 4)),
        ("1990-3-4", dt.date(1990, 3, 4)),
        ("1990/03/04", dt.date(1990, 3, 4)),
        ("19900304", dt.date(1990, 3, 4)),
        ("03/04/1990", dt.date(1990, 3, 4)),
        ("3/4/1990", dt.date(1990, 3, 4)),
        ("03-04-1990", dt.date(1990, 3, 4)),
        ("3/4/90", dt.date(1990, 3, 4)),
        ("20/01/1991", dt.date(1991, 1, 20)),
        ("01/20/1991", dt.date(1991, 1, 20)),
        ("04.03.1990", dt.date(1990, 3, 4)),
        ("4.3.1990", dt.date(1990, 3, 4)),
        ("March 4, 1990", dt.date(1990, 3, 4)),
        ("Mar 4 1990", dt.date(1990, 3, 4)),
        ("Sept. 4, 1990", dt.date(1990, 9, 4)),
        ("4 March 1990", dt.date(1990, 3, 4)),
        ("4th March 1990", dt.date(1990, 3, 4)),
        ("4-Mar-90", dt.date(1990, 3, 4)),
        ("33000", dt.date(1990, 5, 7)),
        ("33000.0", dt.date(1990, 5, 7)),
        ("33000.75", dt.date(1990, 5, 7)),
        ("1990-03-04 10:30:00", dt.date(1990, 3, 4)),
        ("1990-03-04 00:00", dt.date(1990, 3, 4)),
        ("1990-03-04T10:30:00Z", dt.date(1990, 3, 4)),
        ("1990-03-04T10:30:00.123+02:00", dt.date(1990, 3, 4)),
        ("19900304T103000Z", dt.date(1990, 3, 4)),
        ("3/4/1990 12:00 AM", dt.date(1990, 3, 4)),
        (" 1990-03-04 ", dt.date(1990, 3, 4)),
    ],
)
def test_it_reads_the_common_ways_of_writing_a_date(text, date):
    assert normalize_date(text) == date


def test_an_ambiguous_date_follows_dayfirst():
    assert normalize_date("03/04/1990") == dt.date(1990, 3, 4)
    assert normalize_date("03/04/1990", dayfirst=True) == dt.date(1990, 4, 3)
    # Unambiguous dates ignore it.
    assert normalize_date("20/01/1991", dayfirst=False) == dt.date(1991, 1, 20)
    assert normalize_date("01/20/1991", dayfirst=True) == dt.date(1991, 1, 20)
    # Dots are European whatever dayfirst says.
    assert normalize_date("04.03.1990", dayfirst=False) == dt.date(1990, 3, 4)


def test_it_takes_date_objects_as_they_are():
    assert normalize_date(dt.date(1990, 3, 4)) == dt.date(1990, 3, 4)
    assert normalize_date(dt.datetime(1990, 3, 4, 23, 59)) == dt.date(1990, 3, 4)


def test_a_two_digit_year_is_taken_in_the_last_hundred_years():
    assert normalize_date("3/4/05") == dt.date(2005, 3, 4)
    this_year = dt.date.today().year
    next_yy = f"{(this_year + 1) % 100:02d}"
    assert normalize_date(f"1/1/{next_yy}").year == this_year + 1 - 100


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2023-02-30", "'2023-02-30' is not a valid date: February 2023 has 28 days"),
        ("2024-02-30", "'2024-02-30' is not a valid date: February 2024 has 29 days"),
        ("2023-13-01", "'2023-13-01' is not a valid date: there is no month 13"),
        ("0000-01-01", "'0000-01-01' is not a valid date: there is no year 0"),
        ("13/13/1990", "'13/13/1990' is not a valid date: neither 13 nor 13 is a month"),
        ("31/04/1990", "'31/04/1990' is not a valid date: April 1990 has 30 days"),
        ("--03-04", "'--03-04' has no year; a date needs one (YYYY-MM-DD)"),
        ("--0304", "'--0304' has no year; a date needs one (YYYY-MM-DD)"),
        ("1990", "'1990' is a year alone; a date needs a month and a day"),
        ("60", "'60' is not a date (write it as YYYY-MM-DD)"),
        ("9999999", "'9999999' is not a date (write it as YYYY-MM-DD)"),
        ("next tuesday", "'next tuesday' is not a date (write it as YYYY-MM-DD)"),
        ("Smarch 4, 1990", "'Smarch 4, 1990' is not a date (write it as YYYY-MM-DD)"),
        ("", "a date cannot be blank"),
    ],
)
def test_it_refuses_an_invalid_date_naming_it(text, message):
    assert _error_of(normalize_date, text) == message


@pytest.mark.parametrize(
    ("serial", "date"),
    [
        (1, dt.date(1900, 1, 1)),
        (59, dt.date(1900, 2, 28)),
        (61, dt.date(1900, 3, 1)),
        (33000, dt.date(1990, 5, 7)),
        (45000.5, dt.date(2023, 3, 15)),
        (2958465, dt.date(9999, 12, 31)),
    ],
)
def test_it_converts_excel_serials_with_the_1900_leap_year_bug(serial, date):
    assert date_from_excel_serial(serial) == date


def test_it_refuses_excels_february_29_1900_and_out_of_range_serials():
    assert _error_of(date_from_excel_serial, 60) == "'60' is Excel's 1900-02-29, a day that does not exist"
    assert "is not an Excel date serial number" in _error_of(date_from_excel_serial, 0)
    assert "is not an Excel date serial number" in _error_of(date_from_excel_serial, 2958466)


# --------------------------------------------------------------------------------------
# Time zones, tags, custom keys, booleans, formula escapes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("America/New_York", "America/New_York"),
        ("america/new_york", "America/New_York"),
        ("America/New York", "America/New_York"),
        ("EUROPE/LONDON", "Europe/London"),
        (" UTC ", "UTC"),
        ("utc", "UTC"),
    ],
)
def test_it_returns_the_canonical_spelling_of_a_time_zone(text, name):
    assert validate_timezone(text) == name


@pytest.mark.parametrize("text", ["Mars/Olympus", "EST5", "New York"])
def test_it_refuses_an_unknown_time_zone(text):
    assert _error_of(validate_timezone, text) == (
        f"unknown time zone '{text}' (use an IANA name such as America/New_York)"
    )


def test_it_trims_a_tag_and_collapses_its_inner_whitespace():
    assert normalize_tag("  VIP \t  customer\u00a0 ") == "VIP customer"
    assert normalize_tag("x" * 64) == "x" * 64


def test_it_refuses_an_empty_or_too_long_tag():
    assert _error_of(normalize_tag, "   ") == "a tag cannot be empty"
    assert _error_of(normalize_tag, "x" * 65) == f"the tag '{'x' * 65}' is longer than 64 characters"


def test_the_tag_key_ignores_case_and_spacing():
    assert tag_key(" VIP  Customer ") == tag_key("vip customer") == "vip customer"
    assert tag_key("STRASSE") == tag_key("Straße")


@pytest.mark.parametrize("key", ["a", "favourite_colour", "field_2", "a" * 50, " spaced "])
def test_it_accepts_a_valid_custom_field_key(key):
    assert normalize_custom_key(key) == key.strip()


@pytest.mark.parametrize("key", ["", "Favourite", "1abc", "_x", "a-b", "a b", "a" * 51, "é", None])
def test_it_refuses_an_invalid_custom_field_key(key):
    assert _error_of(normalize_custom_key, key).endswith(
        "is not a valid custom field key: use 1 to 50 lowercase letters, digits and underscores, "
        "starting with a letter (like favourite_colour)"
    )


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Favourite Colour!", "favourite_colour"),
        ("E-mail Address 2", "e_mail_address_2"),
        ("  __Customer ID__ ", "customer_id"),
        ("2nd Phone", "field_2nd_phone"),
        ("Straße Nr.", "strasse_nr"),
        ("Ünïcödé Fïeld", "unicode_field"),
        ("a" * 70, "a" * 50),
        ("x" * 49 + " y", "x" * 49),
    ],
)
def test_it_slugifies_a_header_into_a_valid_custom_key(header, key):
    assert slugify_custom_key(header) == key
    assert normalize_custom_key(key) == key


def test_it_cannot_slugify_a_header_with_no_latin_letters():
    assert _error_of(slugify_custom_key, "電話") == "cannot make a custom field key from the column '電話'"
    assert _error_of(slugify_custom_key, "!!!") == "cannot make a custom field key from the column '!!!'"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("t", True),
        ("yes", True),
        ("Y", True),
        ("1", True),
        ("x", True),
        ("X", True),
        ("on", True),
        (" yes ", True),
        (True, True),
        ("false", False),
        ("FALSE", False),
        ("f", False),
        ("no", False),
        ("N", False),
        ("0", False),
        ("off", False),
        (False, False),
    ],
)
def test_it_parses_a_boolean_cell(text, value):
    assert parse_bool(text) is value


@pytest.mark.parametrize("text", ["maybe", "2", "", "yes please"])
def test_it_refuses_what_is_not_yes_or_no(text):
    assert _error_of(parse_bool, text) == f"'{text}' is not yes or no (use true/false, yes/no or 1/0)"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("'=SUM(A1:A2)", "=SUM(A1:A2)"),
        ("'+1 919 555 1234", "+1 919 555 1234"),
        ("'-5", "-5"),
        ("'@handle", "@handle"),
        ("'\tx", "\tx"),
        ("'\rx", "\rx"),
        ("'\0x", "\0x"),
        ("'hello", "'hello"),
        ("''=x", "'=x"),  # a typed '=x, exported as ''=x (issue 13 item 12)
        ("'''=x", "''=x"),
        ("=x", "=x"),
        ("'", "'"),
        ("", ""),
    ],
)
def test_it_undoes_exactly_our_exporters_formula_escape(text, value):
    assert strip_formula_escape(text) == value


# --------------------------------------------------------------------------------------
# Real-world files (../shared/data from the project root, never copied into the repo)
# --------------------------------------------------------------------------------------

_TEL_LINE = re.compile(r"^(?:item\d+\.)?(?:X-MS-)?TEL[;:](?:[^:\"]|\"[^\"]*\")*:(?P<value>.*)$", re.IGNORECASE)


def _vcard_tels() -> dict[str, list[str]]:
    tels = {}
    for path in sorted((DATA / "vcard").glob("*.vcf")):
        text = path.read_bytes().decode("utf-8", errors="replace")
        values = [m.group("value").strip() for line in text.splitlines() if (m := _TEL_LINE.match(line))]
        if values:
            tels[path.name] = values
    return tels


@pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not here")
def test_every_tel_of_the_real_vcards_normalizes_or_is_refused_cleanly():
    tels = _vcard_tels()
    assert len(tels) >= 10
    outcomes = {}
    for values in tels.values():
        for value in values:
            try:
                outcomes[value] = normalize_phone(value, "US")
            except NormalizationError as exc:
                outcomes[value] = str(exc)
    assert outcomes["+1 (212) 204-34456"] == (
        "'+1 (212) 204-34456' is not a valid phone number: too many digits for +1"
    )
    assert outcomes["00-1-212-555-7777"] == PhoneResult("+12125557777", None)
    assert outcomes["tel:+1-418-656-9254;ext=102"] == PhoneResult("+14186569254", "extension ';ext=102' dropped")
    assert outcomes["tel:+1-418-262-6501"] == PhoneResult("+14182626501", None)
    assert outcomes["(905) 555-1234"] == PhoneResult("+19055551234", None)
    assert outcomes["905-555-1234"] == PhoneResult("+19055551234", None)
    assert outcomes["BusinessPhone"] == "'BusinessPhone' is not a phone number"
    assert outcomes["(111) 555-1111"] == "'(111) 555-1111' is not a valid phone number: no +1 numbers start like this"


@pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not here")
def test_the_legacy_gmail_csv_gives_word_phones_valid_emails_and_an_iso_birthday():
    with open(DATA / "csv" / "roundcube_gmail_legacy.csv", encoding="utf-8", newline="") as f:
        row = next(csv.DictReader(f))
    assert _error_of(normalize_phone, row["Phone 5 - Value"]) == "'mobile' is not a phone number"
    assert normalize_email(row["E-mail 1 - Value"]) == "home@aaa.pl"
    assert normalize_date(row["Birthday"]) == dt.date(1975, 12, 12)
    assert _error_of(normalize_country, row["Address 1 - Country"]) == "unknown country 'home_country'"


@pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not here")
def test_the_outlook_csv_birthday_is_day_first_and_its_phones_are_too_short():
    with open(DATA / "csv" / "roundcube_all_bom.csv", encoding="utf-8-sig", newline="") as f:
        row = next(csv.DictReader(f))
    assert normalize_date(row["Birthday"]) == dt.date(1991, 1, 20)
    assert _error_of(normalize_phone, row["Home Phone"]) == "'100' is not a valid phone number: too few digits for +1"
