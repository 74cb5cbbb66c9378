"""Cell and field normalization: the one place that decides what a phone, an email, a
country, a state, a ZIP, a date... looks like once stored.

Pure functions, no Django: the API serializers, the admin and the importer all call them.
Every function returns the normalized value or raises `NormalizationError`, whose message
is shown to the user as it is (it quotes the bad value and says why it is refused).
Callers check emptiness first; a blank value is an error here.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
import unicodedata
import zoneinfo
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult
from phonenumbers.phonemetadata import PhoneMetadata

from contacts.geodata import (
    CA_PROVINCE_ALIASES,
    CA_PROVINCES,
    COUNTRIES,
    COUNTRY_ALIASES,
    US_STATE_ALIASES,
    US_STATES,
)

__all__ = [
    "NormalizationError",
    "PhoneResult",
    "date_from_excel_serial",
    "email_key",
    "normalize_country",
    "normalize_custom_key",
    "normalize_date",
    "normalize_email",
    "normalize_phone",
    "normalize_state",
    "normalize_tag",
    "normalize_zip",
    "offline_textability",
    "parse_bool",
    "phone_region_of",
    "slugify_custom_key",
    "strip_formula_escape",
    "tag_key",
    "validate_timezone",
]


class NormalizationError(ValueError):
    """A value cannot be normalized; the message is for the end user and quotes the value."""


# --------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------

# Zero-width and direction marks arrive with copy-pasted values (a BOM at the start of a
# cell, an LRM around a number copied from a right-to-left page). They are invisible, so a
# user could never see why "919-555-1234" was refused.
_INVISIBLE = dict.fromkeys(
    (0x00AD, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF, *range(0x202A, 0x202F)),
    None,
)


def _clean_text(text: object) -> str:
    """Return `text` as a str without invisible characters, trimmed and with every run of
    (Unicode) whitespace made one space. O(len(text))."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    return " ".join(text.translate(_INVISIBLE).split())


def _quote(text: object) -> str:
    """Return the value as the user typed it, quoted, for an error message."""
    shown = "" if text is None else str(text).strip()
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"'{shown}'"


@functools.lru_cache(maxsize=8192)  # place names repeat: a file has a few dozen distinct states
def _fold_key(text: str) -> str:
    """Return the comparison key of a place name: casefolded, without accents, punctuation
    or a leading "the", "St." spelled "saint", so that "U.S.A.", "usa" and "the USA" meet."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ")
    text = re.sub(r"[.'\u2019()]", "", text)
    text = re.sub(r"[\s,/\-_]+", " ", text).strip()
    if text.startswith("the "):
        text = text[4:]
    return re.sub(r"\bst\b", "saint", text)


# --------------------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------------------


class PhoneResult(NamedTuple):
    """A normalized phone: `e164` ("+19195551234") and a `warning` for the user, or None
    (e.g. "extension 'x123' dropped")."""

    e164: str
    warning: str | None


# The order in which phonenumbers' _number_type_helper tries the types; fixed line and
# mobile come last and are handled apart (FIXED_LINE_OR_MOBILE).
_TYPE_ORDER = (
    (PhoneNumberType.PREMIUM_RATE, "premium_rate"),
    (PhoneNumberType.TOLL_FREE, "toll_free"),
    (PhoneNumberType.SHARED_COST, "shared_cost"),
    (PhoneNumberType.VOIP, "voip"),
    (PhoneNumberType.PERSONAL_NUMBER, "personal_number"),
    (PhoneNumberType.PAGER, "pager"),
    (PhoneNumberType.UAN, "uan"),
    (PhoneNumberType.VOICEMAIL, "voicemail"),
)


class _NanpRegion(NamedTuple):
    code: str
    leading: re.Pattern[str] | None
    general: re.Pattern[str] | None
    any_type: re.Pattern[str] | None
    types: tuple[tuple[int, re.Pattern[str]], ...]
    fixed_line: re.Pattern[str] | None
    mobile: re.Pattern[str] | None
    same_mobile_and_fixed: bool


def _desc_pattern(desc, length: int) -> re.Pattern[str] | None:
    """Return the compiled pattern of a metadata number description for numbers of
    `length` digits, or None when that description can never match such a number
    (phonenumbers' _is_number_matching_desc, with the length test done once)."""
    if desc is None or not desc.national_number_pattern:
        return None
    if desc.possible_length and length not in desc.possible_length:
        return None
    return re.compile(desc.national_number_pattern)


@functools.cache
def _nanp_regions() -> tuple[_NanpRegion, ...]:
    """Return the North American regions (+1) in phonenumbers' own order, each with its
    metadata patterns compiled for 10-digit national numbers.

    This is phonenumbers' region_code_for_number / number_type logic for +1, rebuilt from
    its metadata so that a clean NANP number can be validated in ~1 µs instead of ~40 µs.
    Built once (a few ms); tests/contacts/test_normalize.py checks it against phonenumbers
    on 20,000 numbers.
    """
    regions = []
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
        md = PhoneMetadata.metadata_for_region(code)
        types = tuple(
            (ptype, pattern)
            for ptype, attr in _TYPE_ORDER
            if (pattern := _desc_pattern(getattr(md, attr), 10)) is not None
        )
        fixed_line = _desc_pattern(md.fixed_line, 10)
        mobile = _desc_pattern(md.mobile, 10)
        # Only whether some type matches matters here, so the most common type goes first
        # and a mobile pattern that repeats the fixed-line one is not tried twice.
        alternatives = list(dict.fromkeys(p.pattern for p in (fixed_line, mobile, *(p for _, p in types)) if p))
        regions.append(
            _NanpRegion(
                code=code,
                leading=re.compile(md.leading_digits) if md.leading_digits else None,
                general=_desc_pattern(md.general_desc, 10),
                any_type=re.compile("|".join(f"(?:{a})" for a in alternatives)) if alternatives else None,
                types=types,
                fixed_line=fixed_line,
                mobile=mobile,
                same_mobile_and_fixed=bool(md.same_mobile_and_fixed_line_pattern),
            )
        )
    return tuple(regions)


@functools.cache
def _nanp_fast_regions() -> frozenset[str]:
    """Return the default regions for which a 10-digit (or 1 + 10-digit) number parses to
    exactly those 10 digits, so that the fast path may skip phonenumbers.parse.

    That holds when the region dials out with 011 (so no IDD can eat the leading digits),
    its numbers have at most 10 digits (so "1" + 10 digits is always taken as the country
    code) and its national prefix is "1" (or "1" after a 7-digit local form) - all of NANP
    today; a region whose metadata changes shape simply drops to the slow path.
    """
    fast = set()
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
        md = PhoneMetadata.metadata_for_region(code)
        prefix = md.national_prefix_for_parsing or ""
        if (
            md.international_prefix == "011"
            and md.general_desc.possible_length
            and max(md.general_desc.possible_length) == 10
            and (prefix == "1" or re.fullmatch(r"\((?:\[[0-9\-]+\]|[0-9])\\d\{6\}\)\$\|1", prefix))
        ):
            fast.add(code)
    return frozenset(fast)


def _region_type(region: _NanpRegion, nsn: str) -> int:
    """Return the PhoneNumberType of a 10-digit `nsn` under one region's metadata, as
    phonenumbers' _number_type_helper does. A few regex matches."""
    if region.general is None or not region.general.fullmatch(nsn):
        return PhoneNumberType.UNKNOWN
    for ptype, pattern in region.types:
        if pattern.fullmatch(nsn):
            return ptype
    if region.fixed_line is not None and region.fixed_line.fullmatch(nsn):
        if region.same_mobile_and_fixed or (region.mobile is not None and region.mobile.fullmatch(nsn)):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    if not region.same_mobile_and_fixed and region.mobile is not None and region.mobile.fullmatch(nsn):
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


def _nanp_region_and_type(nsn: str) -> tuple[str | None, int]:
    """Return (region, PhoneNumberType) of +1 `nsn` (10 digits), exactly as
    phonenumbers.region_code_for_number and number_type would. Microseconds."""
    for region in _nanp_regions():
        if region.leading is not None:
            # A region with leading digits claims the number even when it is invalid there.
            if region.leading.match(nsn):
                return region.code, _region_type(region, nsn)
        else:
            ptype = _region_type(region, nsn)
            if ptype != PhoneNumberType.UNKNOWN:
                return region.code, ptype
    return None, PhoneNumberType.UNKNOWN


def _nanp_is_valid(nsn: str) -> bool:
    """Return whether +1 `nsn` (10 digits) is valid for phonenumbers.is_valid_number.
    Two regex matches for a US number, a dozen for a Canadian one."""
    for region in _nanp_regions():
        if region.leading is not None and not region.leading.match(nsn):
            continue
        valid = (
            region.general is not None
            and region.any_type is not None
            and region.general.fullmatch(nsn) is not None
            and region.any_type.fullmatch(nsn) is not None
        )
        if valid or region.leading is not None:
            # A region with leading digits claims the number, valid there or not.
            return valid
    return False


# The shapes the fast path takes: (919) 555-1234, 919.555.1234, +1 919 555 1234,
# 1-919-555-1234, 9195551234, 19195551234, and Excel's 19195551234.0. Anything else
# (letters, extensions, 7-digit local numbers, other countries) goes to phonenumbers.
_NANP_SHAPE = re.compile(
    r"\s*(?:\+?1[\s.\-]*)?(?:\(([2-9][0-9]{2})\)|([2-9][0-9]{2}))[\s.\-/]*([0-9]{3})[\s.\-]*([0-9]{4})\s*"
)
_NANP_EXCEL_FLOAT = re.compile(r"\s*1?([2-9][0-9]{9})\.0+\s*")

_TEL_PREFIX = re.compile(r"(?i)tel:\s*")
# An extension written after the number: "x123", "ext. 123", "extension 123", "#123",
# ";ext=102" (RFC 3966, as vCard 4 writes it). Captured with its marker so that the
# warning shows what was dropped exactly as it was written.
_EXTENSION = re.compile(
    r"\s*(?P<ext>(?:;\s*ext\s*=|,?\s*(?:ext(?:ension|n)?\.?|x|#)\s*:?)\s*[0-9]{1,10})\s*#?\Z",
    re.IGNORECASE,
)
# A label after the number ("919-555-1234 (cell)") or an extension marker with nothing after
# it: phonenumbers would read the letters as a vanity number and add digits.
_TRAILING_LABEL = re.compile(r"\s*(?:\([A-Za-z][A-Za-z .]*\)|\b(?:ext(?:ension|n)?\.?|x))\s*\Z", re.IGNORECASE)
_EXCEL_PLAIN_FLOAT = re.compile(r"([0-9]+)\.0+")
_EXCEL_SCIENTIFIC = re.compile(r"([1-9])(?:\.([0-9]+))?[eE]\+?([0-9]{1,2})")
_LEADING_00 = re.compile(r"[\s(\-.]*0[\s\-.]*0")


def normalize_phone(text: str, region: str | None = "US") -> PhoneResult:
    """Return the E.164 form of a phone typed in any common way, or raise NormalizationError.

    `region` is the ISO code used for numbers written without a country code. Clean North
    American numbers under a +1 region take a fast path (a regex and two pattern matches,
    ~3 µs); everything else goes through phonenumbers (~40-60 µs) via _normalize_phone_slow,
    which gives the same answer for every input (tested on 20,000 of them).
    """
    if region and text.__class__ is str:
        region_code = region.upper()
        if region_code in _nanp_fast_regions():
            m = _NANP_SHAPE.fullmatch(text)
            if m is not None:
                nsn = (m.group(1) or m.group(2)) + m.group(3) + m.group(4)
            else:
                m = _NANP_EXCEL_FLOAT.fullmatch(text)
                nsn = m.group(1) if m is not None else None
            if nsn is not None and _nanp_is_valid(nsn):
                return PhoneResult("+1" + nsn, None)
    return _normalize_phone_slow(text, region)


def _normalize_phone_slow(text: str, region: str | None = "US") -> PhoneResult:
    """Return what normalize_phone returns, always through phonenumbers. ~40-60 µs."""
    region_code = (region or "").upper() or None
    if region_code is not None and region_code not in phonenumbers.SUPPORTED_REGIONS:
        raise NormalizationError(f"{_quote(region)} is not a known region code for phone numbers")
    if isinstance(text, bool):
        raise NormalizationError(f"{_quote(text)} is not a phone number")
    cleaned = _clean_text(text)
    if not cleaned:
        raise NormalizationError("a phone number cannot be blank")

    number = _TEL_PREFIX.sub("", cleaned, count=1) if cleaned[:4].lower() == "tel:" else cleaned
    warning = None
    number = _TRAILING_LABEL.sub("", number)
    ext = _EXTENSION.search(number)
    if ext is not None and ext.start() > 0:
        warning = f"extension '{ext.group('ext').strip()}' dropped"
        number = number[: ext.start()]

    number = _undo_excel_number(number, text)
    number = _leading_00_as_plus(number, region_code)

    if not any(ch.isdigit() for ch in number):
        raise NormalizationError(f"{_quote(text)} is not a phone number")
    try:
        parsed = phonenumbers.parse(number, region_code)
    except NumberParseException as exc:
        raise NormalizationError(_phone_parse_message(text, exc, region_code)) from None
    if not phonenumbers.is_valid_number(parsed):
        raise NormalizationError(_phone_invalid_message(text, parsed))
    if parsed.extension and warning is None:
        # phonenumbers knows more extension markers than we do (",,", "доб", ...).
        warning = f"extension '{parsed.extension}' dropped"
    return PhoneResult(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), warning)


def _undo_excel_number(number: str, original: object) -> str:
    """Return the digits of a phone a spreadsheet turned into a number ("19195551234.0",
    "1.9195551234E+10"), or `number` unchanged when it is not such a value.

    Excel shows (and exports to CSV) a long number in scientific notation with as many
    digits as the column is wide: "1.91955E+10" is 19195500000, the real number is gone,
    so it is refused rather than stored as somebody else's phone.
    """
    m = _EXCEL_PLAIN_FLOAT.fullmatch(number)
    if m is not None:
        return m.group(1)
    m = _EXCEL_SCIENTIFIC.fullmatch(number)
    if m is None:
        return number
    mantissa, fraction, exponent = m.group(1) + (m.group(2) or ""), m.group(2) or "", int(m.group(3))
    if len(fraction) > exponent:
        raise NormalizationError(f"{_quote(original)} is not a valid phone number: it is not a whole number")
    if len(fraction) < exponent:
        raise NormalizationError(
            f"{_quote(original)} is a phone number truncated by a spreadsheet: only {len(mantissa)} of its "
            f"{exponent + 1} digits are left. Format the column as text and export the file again"
        )
    return mantissa


def _leading_00_as_plus(number: str, region_code: str | None) -> str:
    """Return `number` with a leading "00" written as "+" when 00 is not how the region
    dials abroad. Europeans write "0044 20 7946 0958"; phonenumbers only reads 00 as an
    international prefix for regions that use it (GB, DE...), not for the US (011)."""
    if number.startswith("+"):
        return number
    m = _LEADING_00.match(number)
    if m is None:
        return number
    if region_code is not None:
        idd = PhoneMetadata.metadata_for_region(region_code).international_prefix
        if idd and re.match(idd, phonenumbers.normalize_digits_only(number)):
            return number
    return "+" + number[m.end() :]


_TOO_FEW = "too few digits"
_TOO_MANY = "too many digits"


def _phone_parse_message(text: object, exc: NumberParseException, region_code: str | None) -> str:
    """Return the user's message for a number phonenumbers could not even parse."""
    if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
        if region_code is None:
            why = "it has no country code (write it with + and the country code)"
        else:
            why = "its country code does not exist"
    elif exc.error_type in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
        why = _TOO_FEW
    elif exc.error_type == NumberParseException.TOO_LONG:
        why = _TOO_MANY
    else:
        return f"{_quote(text)} is not a phone number"
    return f"{_quote(text)} is not a valid phone number: {why}"


def _phone_invalid_message(text: object, parsed: phonenumbers.PhoneNumber) -> str:
    """Return the user's message for a parsed number that phonenumbers finds invalid."""
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    country = f"+{parsed.country_code}"
    why = {
        ValidationResult.TOO_SHORT: f"{_TOO_FEW} for {country}",
        ValidationResult.TOO_LONG: f"{_TOO_MANY} for {country}",
        ValidationResult.INVALID_LENGTH: f"wrong number of digits for {country}",
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "the area code is missing",
        ValidationResult.INVALID_COUNTRY_CODE: f"{country} is not a country code",
    }.get(reason, f"no {country} numbers start like this")
    return f"{_quote(text)} is not a valid phone number: {why}"


_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def _check_e164(e164: str) -> None:
    if not isinstance(e164, str) or not _E164.fullmatch(e164):
        raise NormalizationError(f"{_quote(e164)} is not a phone number in E.164 form (like +19195551234)")


def _is_fast_nanp_e164(e164: str) -> bool:
    return len(e164) == 12 and e164[1] == "1" and e164[2] in "23456789"


def phone_region_of(e164: str) -> str | None:
    """Return the ISO region of an E.164 number ("+14165550123" -> "CA"), or None when no
    region owns it (an invalid range, a non-geographic +800 number). ~1 µs for +1, ~30 µs
    otherwise. Raises NormalizationError when `e164` is not E.164 at all."""
    _check_e164(e164)
    if _is_fast_nanp_e164(e164):
        return _nanp_region_and_type(e164[2:])[0]
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    except NumberParseException:
        return None
    return region if region and region not in ("001", phonenumbers.UNKNOWN_REGION) else None


_TEXTABLE_BY_TYPE = {
    PhoneNumberType.MOBILE: True,
    PhoneNumberType.FIXED_LINE: False,
    PhoneNumberType.TOLL_FREE: False,
    PhoneNumberType.PREMIUM_RATE: False,
    PhoneNumberType.SHARED_COST: False,
    PhoneNumberType.VOIP: False,
    PhoneNumberType.PAGER: False,
    PhoneNumberType.UAN: False,
    PhoneNumberType.VOICEMAIL: False,
}


def offline_textability(e164: str) -> bool | None:
    """Return whether an E.164 number can receive texts as far as numbering plans tell:
    True for a mobile range, False for fixed-line, toll-free, premium, shared-cost, VoIP,
    pager, UAN and voicemail ranges, None when the plan cannot tell (all of North America
    is FIXED_LINE_OR_MOBILE; personal numbers forward anywhere; invalid ranges).

    ~1 µs for +1 numbers, ~30-60 µs (phonenumbers) otherwise. Raises NormalizationError
    when `e164` is not E.164.
    """
    _check_e164(e164)
    if _is_fast_nanp_e164(e164):
        ptype = _nanp_region_and_type(e164[2:])[1]
    else:
        try:
            ptype = phonenumbers.number_type(phonenumbers.parse(e164))
        except NumberParseException:
            return None
    return _TEXTABLE_BY_TYPE.get(ptype)


# --------------------------------------------------------------------------------------
# Emails
# --------------------------------------------------------------------------------------

# RFC 5322 atext, plus any non-ASCII character (RFC 6531 lets local parts be UTF-8).
_LOCAL_CHAR = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010FFFF]")
_ASCII_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-.]+")
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?")
_MAILTO = re.compile(r"(?i)mailto:")


def normalize_email(text: str) -> str:
    """Return the address trimmed, its domain lowercased and its local part left as typed
    (some servers do treat case there), or raise NormalizationError. Microseconds.

    Non-ASCII local parts (RFC 6531) and internationalized domains are accepted; the domain
    is kept in Unicode, checked through IDNA. Quoted local parts ("john doe"@x.com) and IP
    literals (x@[1.2.3.4]) are refused: no contact list needs them and they hide junk.
    """
    original = text
    text = _clean_text(text)
    if not text:
        raise NormalizationError("an email address cannot be blank")
    if text[:7].lower() == "mailto:":
        text = _MAILTO.sub("", text, count=1).strip()

    def refuse(why: str) -> NormalizationError:
        return NormalizationError(f"{_quote(original)} is not a valid email address: {why}")

    ats = text.count("@")
    if ats == 0:
        raise refuse("it has no @")
    if ats > 1:
        raise refuse("it has more than one @")
    if len(text) > 254:
        raise refuse("it is longer than 254 characters")
    local, domain = text.split("@")
    if not local:
        raise refuse("nothing before the @")
    if not domain:
        raise refuse("nothing after the @")
    if local.startswith('"'):
        raise refuse("quoted names before the @ are not supported")
    if " " in text:
        raise refuse("it contains a space")
    if local.startswith(".") or local.endswith("."):
        raise refuse("the part before the @ starts or ends with a dot")
    if ".." in local:
        raise refuse("two dots in a row")
    if len(local.encode()) > 64:
        raise refuse("the part before the @ is longer than 64 bytes")
    if not _ASCII_LOCAL.fullmatch(local):  # the usual address needs no check per character
        for ch in local:
            # Controls and separators are non-ASCII too, but never part of an address.
            if ch != "." and (not _LOCAL_CHAR.fullmatch(ch) or unicodedata.category(ch)[0] in "CZ"):
                raise refuse(f"{ch!r} is not allowed before the @")
    domain = domain.lower()
    _check_email_domain(domain, refuse)
    return f"{local}@{domain}"


def _check_email_domain(domain: str, refuse) -> None:
    """Raise refuse(why) unless `domain` is a dotted host name (Unicode labels allowed)."""
    why = _email_domain_problem(domain)
    if why:
        raise refuse(why)


# A file holds few distinct domains: an import checks each once (1.5 µs → a dict lookup).
@functools.lru_cache(maxsize=4096)
def _email_domain_problem(domain: str) -> str | None:
    """Why `domain` is not a dotted host name, or None."""
    if domain.startswith("["):
        return "IP addresses are not accepted as the domain"
    if domain.startswith(".") or domain.endswith("."):
        return "the domain starts or ends with a dot"
    labels = domain.split(".")
    if len(labels) < 2:
        return f"the domain '{domain}' has no dot (like example.com)"
    if "" in labels:
        return "two dots in a row"
    ascii_labels = []
    for label in labels:
        if label.isascii():
            ascii_label = label
        else:
            try:
                ascii_label = label.encode("idna").decode("ascii")
            except UnicodeError:
                return f"'{label}' is not a valid domain name part"
        if not _LDH_LABEL.fullmatch(ascii_label):
            return f"'{label}' is not a valid domain name part"
        ascii_labels.append(ascii_label)
    if ascii_labels[-1].isdigit() or len(ascii_labels[-1]) < 2:
        return f"'{labels[-1]}' is not a top-level domain"
    if len(".".join(ascii_labels)) > 253:
        return "the domain is longer than 253 characters"
    return None


def email_key(email: str) -> str:
    """Return the key that makes two addresses the same contact: the casefolded address.
    Python's casefold, so PostgreSQL and SQLite agree (their LOWER() do not)."""
    return email.casefold()


# --------------------------------------------------------------------------------------
# Countries, states, ZIP codes
# --------------------------------------------------------------------------------------


_COUNTRY_CODES = {code.casefold(): alpha2 for alpha2, alpha3, _ in COUNTRIES for code in (alpha2, alpha3)}


@functools.cache
def _country_lookup() -> dict[str, str]:
    """Return {folded name or alias: alpha-2}, built once from contacts.geodata."""
    lookup: dict[str, str] = {}
    for alpha2, _, name in COUNTRIES:
        lookup.setdefault(_fold_key(name), alpha2)
    for alias, alpha2 in COUNTRY_ALIASES.items():
        lookup.setdefault(_fold_key(alias), alpha2)
    return lookup


def normalize_country(text: str) -> str:
    """Return the ISO 3166-1 alpha-2 code of a country given as alpha-2, alpha-3 or an
    English name or common variant ("USA", "U.S.A.", "United Kingdom", "UK", "South
    Korea", "Deutschland"), or raise NormalizationError. One dict lookup."""
    cleaned = _clean_text(text)
    if not cleaned:
        raise NormalizationError("a country cannot be blank")
    # Codes first: folding spells "ST" (São Tomé) as "saint".
    code = _COUNTRY_CODES.get(cleaned.casefold()) or _country_lookup().get(_fold_key(cleaned))
    if code is None:
        raise NormalizationError(f"unknown country {_quote(text)}")
    return code


@functools.cache
def _subdivision_lookup(country: str) -> dict[str, str]:
    codes, aliases = {"US": (US_STATES, US_STATE_ALIASES), "CA": (CA_PROVINCES, CA_PROVINCE_ALIASES)}[country]
    lookup = {code.casefold(): code for code in codes}
    for code, name in codes.items():
        lookup.setdefault(_fold_key(name), code)
    for alias, code in aliases.items():
        lookup.setdefault(_fold_key(alias), code)
    return lookup


def _address_country(country: str | None, region: str | None) -> str | None:
    """Return the alpha-2 code whose rules apply to an address: the row's country if it
    names one, else the default region; None when neither is known."""
    if country and country.strip():
        try:
            return normalize_country(country)
        except NormalizationError:
            return None
    return region.upper() if region else None


_SUBDIVISION_NAMES = {"US": "US state", "CA": "Canadian province"}


def normalize_state(text: str, country: str | None = "", *, region: str | None = "US") -> str:
    """Return a state: the USPS code for the US ("north carolina" -> "NC", DC, PR and the
    territories included), the Canada Post code for Canada ("Québec" -> "QC"), the trimmed
    text (at most 64 characters) elsewhere. The rules follow `country`, or `region` when the
    country is empty. Raises NormalizationError. One dict lookup."""
    cleaned = _clean_text(text)
    if not cleaned:
        raise NormalizationError("a state cannot be blank")
    rules = _address_country(country, region)
    if rules in _SUBDIVISION_NAMES:
        code = _subdivision_lookup(rules).get(_fold_key(cleaned))
        if code is None:
            raise NormalizationError(f"unknown {_SUBDIVISION_NAMES[rules]} {_quote(text)}")
        return code
    if len(cleaned) > 64:
        raise NormalizationError(f"the state {_quote(text)} is longer than 64 characters")
    return cleaned


_US_ZIP = re.compile(r"([0-9]{5})(?:[\s\-]?([0-9]{4}))?")
_DIGITS_FLOAT = re.compile(r"([0-9]+)(?:\.0+)?")


def normalize_zip(text: str, country: str | None = "", *, region: str | None = "US") -> str:
    """Return a postal code: for the US "12345" or "12345-6789", restoring the leading
    zeros a spreadsheet ate ("2134" and "2134.0" -> "02134", "501" -> "00501", 8 digits ->
    ZIP+4); elsewhere the trimmed text, at most 16 characters. The rules follow `country`,
    or `region` when the country is empty. Raises NormalizationError. Microseconds."""
    cleaned = _clean_text(text)
    if not cleaned:
        raise NormalizationError("a ZIP code cannot be blank")
    if _address_country(country, region) != "US":
        if len(cleaned) > 16:
            raise NormalizationError(f"the postal code {_quote(text)} is longer than 16 characters")
        return cleaned
    m = _US_ZIP.fullmatch(cleaned)
    if m is not None:
        return f"{m.group(1)}-{m.group(2)}" if m.group(2) else m.group(1)
    m = _DIGITS_FLOAT.fullmatch(cleaned)
    if m is not None:
        digits = m.group(1)
        # A ZIP column Excel read as numbers loses its leading zeros: New England ZIPs
        # start with 0 (02134 Boston), and the lowest, 00501, keeps only 3 digits.
        # ZIP+4 typed without its dash loses them the same way (7 or 8 digits).
        if 3 <= len(digits) <= 5:
            return digits.zfill(5)
        if 7 <= len(digits) <= 9:
            digits = digits.zfill(9)
            return f"{digits[:5]}-{digits[5:]}"
    raise NormalizationError(f"{_quote(text)} is not a US ZIP code: expected 5 digits or ZIP+4 like 12345-6789")


# --------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number in range(1, 13)
    for name in {calendar.month_name[number].casefold(), calendar.month_abbr[number].casefold()}
}
_MONTHS["sept"] = 9

# A time after the date ("1990-03-04 10:30:00", "1990-03-04T10:30:00Z", "3/4/1990 12:00 AM",
# vCard's "19900304T103000Z"): the stored value is a date, the time goes.
_TIME_SUFFIX = re.compile(
    r"(?:[T ]\s*[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?|T[0-9]{4}(?:[0-9]{2})?)"
    r"\s*(?:[AaPp]\.?[Mm]\.?)?\s*(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?\Z"
)
_YMD = re.compile(r"([0-9]{4})([\-/.])([0-9]{1,2})\2([0-9]{1,2})")
_YMD_COMPACT = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_NUMERIC_DATE = re.compile(r"([0-9]{1,2})([/\-.])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})")
_MONTH_NAME_FIRST = re.compile(r"([A-Za-z]+)\.?[\s\-]+([0-9]{1,2})(?:st|nd|rd|th)?,?[\s\-]+([0-9]{4})", re.I)
_DAY_FIRST_NAME = re.compile(r"([0-9]{1,2})(?:st|nd|rd|th)?[\s\-/]+([A-Za-z]+)\.?,?[\s\-/]+([0-9]{4}|[0-9]{2})", re.I)
_NO_YEAR = re.compile(r"--([0-9]{2})-?([0-9]{2})")
_SERIAL = re.compile(r"([0-9]+)(?:\.[0-9]+)?")

# Excel's 1900 date system: serial 1 is 1900-01-01, and Excel (copying Lotus 1-2-3)
# believes 1900 was a leap year, so serial 60 is 1900-02-29, a day that never was, and
# every serial from 61 on is one more than the real day count.
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_EXCEL_MAX_SERIAL = 2958465  # 9999-12-31
# Serial numbers below 10000 (before 1927-05-18) are refused: a 4-digit "1990" in a
# birthday column is a year, not 1905-06-12, and smaller numbers are not dates at all.
_EXCEL_MIN_SERIAL = 10000


def date_from_excel_serial(serial: float | int) -> dt.date:
    """Return the date of an Excel serial number (1900 date system, its fictitious
    1900-02-29 included: serial 60 raises). The fraction (the time of day) is ignored."""
    days = int(serial)
    if days < 1 or days > _EXCEL_MAX_SERIAL:
        raise NormalizationError(f"{_quote(serial)} is not an Excel date serial number (1 to {_EXCEL_MAX_SERIAL})")
    if days == 60:
        raise NormalizationError(f"{_quote(serial)} is Excel's 1900-02-29, a day that does not exist")
    return _EXCEL_EPOCH + dt.timedelta(days=days if days > 60 else days + 1)


def _full_year(year: str) -> int:
    """Return a 4-digit year; a 2-digit one is taken in the last 100 years (birthdays)."""
    if len(year) == 4:
        return int(year)
    this_year = dt.date.today().year
    century = this_year - this_year % 100
    full = century + int(year)
    return full if full <= this_year else full - 100


def _make_date(original: object, year: int, month: int, day: int) -> dt.date:
    if not 1 <= month <= 12:
        raise NormalizationError(f"{_quote(original)} is not a valid date: there is no month {month}")
    if year < 1:
        raise NormalizationError(f"{_quote(original)} is not a valid date: there is no year {year}")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise NormalizationError(
            f"{_quote(original)} is not a valid date: {calendar.month_name[month]} {year} has {last} days"
        )
    return dt.date(year, month, day)


def normalize_date(text: str | dt.date, *, dayfirst: bool = False) -> dt.date:
    """Return the date written in `text`, or raise NormalizationError. Microseconds.

    Accepted: ISO "1990-03-04" (also with / or .), "19900304", "03/04/1990" and "3-4-90"
    (month first, unless the first number is over 12 or `dayfirst` is set), "04.03.1990"
    (always day first), "March 4, 1990", "4 Mar 1990", "4-Mar-90", Excel serial numbers
    ("33000", "33000.25"), and any of those followed by a time. A vCard birthday without
    a year ("--03-04") is refused: a date needs a year.
    """
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    original = text
    cleaned = _clean_text(text)
    if not cleaned:
        raise NormalizationError("a date cannot be blank")
    if len(cleaned) > 64:  # bounded before int(): 5,000 digits would raise ValueError, not this
        raise NormalizationError(f"{_quote(original[:40])}... is not a date (write it as YYYY-MM-DD)")
    cleaned = _TIME_SUFFIX.sub("", cleaned).strip() or cleaned

    if m := _YMD.fullmatch(cleaned):
        return _make_date(original, int(m.group(1)), int(m.group(3)), int(m.group(4)))
    if m := _YMD_COMPACT.fullmatch(cleaned):
        return _make_date(original, int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if m := _NUMERIC_DATE.fullmatch(cleaned):
        first, second, year = int(m.group(1)), int(m.group(3)), _full_year(m.group(4))
        if m.group(2) == "." or (first > 12 and second <= 12):
            day_first = True
        elif second > 12 and first <= 12:
            day_first = False
        elif first > 12 and second > 12:
            raise NormalizationError(f"{_quote(original)} is not a valid date: neither {first} nor {second} is a month")
        else:
            day_first = dayfirst
        month, day = (second, first) if day_first else (first, second)
        return _make_date(original, year, month, day)
    if (m := _MONTH_NAME_FIRST.fullmatch(cleaned)) and m.group(1).casefold() in _MONTHS:
        return _make_date(original, int(m.group(3)), _MONTHS[m.group(1).casefold()], int(m.group(2)))
    if (m := _DAY_FIRST_NAME.fullmatch(cleaned)) and m.group(2).casefold() in _MONTHS:
        return _make_date(original, _full_year(m.group(3)), _MONTHS[m.group(2).casefold()], int(m.group(1)))
    if _NO_YEAR.fullmatch(cleaned):
        raise NormalizationError(f"{_quote(original)} has no year; a date needs one (YYYY-MM-DD)")
    if m := _SERIAL.fullmatch(cleaned):
        days = int(m.group(1))
        if len(m.group(1)) == 4 and 1000 <= days <= 2999:
            raise NormalizationError(f"{_quote(original)} is a year alone; a date needs a month and a day")
        if _EXCEL_MIN_SERIAL <= days <= _EXCEL_MAX_SERIAL:
            return date_from_excel_serial(days)
    raise NormalizationError(f"{_quote(original)} is not a date (write it as YYYY-MM-DD)")


# --------------------------------------------------------------------------------------
# Time zones, tags, custom field keys, booleans, formula escapes
# --------------------------------------------------------------------------------------


@functools.cache
def _timezones_by_key() -> dict[str, str]:
    """Return {casefolded IANA name: canonical spelling}. Reads the tz database once (~10 ms)."""
    return {name.casefold(): name for name in zoneinfo.available_timezones()}


def validate_timezone(text: str) -> str:
    """Return the canonical spelling of an IANA time zone name, matched case-insensitively
    and with spaces for underscores ("america/new york" -> "America/New_York"), or raise
    NormalizationError. One dict lookup after the first call."""
    cleaned = _clean_text(text)
    if not cleaned:
        raise NormalizationError("a time zone cannot be blank")
    name = _timezones_by_key().get(cleaned.replace(" ", "_").casefold())
    if name is None:
        raise NormalizationError(f"unknown time zone {_quote(text)} (use an IANA name such as America/New_York)")
    return name


TAG_MAX_LENGTH = 64


def normalize_tag(text: str) -> str:
    """Return a tag trimmed, with inner whitespace collapsed to single spaces, or raise
    NormalizationError when it is empty or longer than 64 characters."""
    cleaned = _clean_text(text)
    if not cleaned:
        raise NormalizationError("a tag cannot be empty")
    if len(cleaned) > TAG_MAX_LENGTH:
        raise NormalizationError(f"the tag {_quote(text)} is longer than {TAG_MAX_LENGTH} characters")
    return cleaned


def tag_key(name: str) -> str:
    """Return the key under which two tags are the same tag ("VIP" and "vip")."""
    return normalize_tag(name).casefold()


_CUSTOM_KEY = re.compile(r"[a-z][a-z0-9_]{0,49}")


def normalize_custom_key(key: str) -> str:
    """Return a custom field key, trimmed, when it is 1-50 lowercase letters, digits and
    underscores starting with a letter; raise NormalizationError otherwise."""
    cleaned = key.strip() if isinstance(key, str) else ""
    if not _CUSTOM_KEY.fullmatch(cleaned):
        raise NormalizationError(
            f"{_quote(key)} is not a valid custom field key: use 1 to 50 lowercase letters, digits "
            "and underscores, starting with a letter (like favourite_colour)"
        )
    return cleaned


# Letters NFKD does not take apart into ASCII.
_TRANSLITERATE = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "ae",
        "ø": "o",
        "Ø": "o",
        "œ": "oe",
        "Œ": "oe",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "þ": "th",
        "Þ": "th",
        "ð": "d",
    }
)


def slugify_custom_key(header: str) -> str:
    """Return a valid custom field key made from a column header ("Favourite Colour!" ->
    "favourite_colour", "2nd Phone" -> "field_2nd_phone"), or raise NormalizationError when
    nothing usable is left (a header in a non-Latin script: let the caller name it)."""
    text = unicodedata.normalize("NFKD", _clean_text(header).translate(_TRANSLITERATE))
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    if not slug:
        raise NormalizationError(f"cannot make a custom field key from the column {_quote(header)}")
    if not slug[0].isalpha():
        slug = "field_" + slug
    return slug[:50].rstrip("_")


_BOOLEANS = {
    "true": True,
    "t": True,
    "yes": True,
    "y": True,
    "1": True,
    "x": True,
    "on": True,
    "false": False,
    "f": False,
    "no": False,
    "n": False,
    "0": False,
    "off": False,
}


def parse_bool(text: str | bool) -> bool:
    """Return the boolean of a cell: true/false, yes/no, y/n, t/f, 1/0, on/off and "x" (a
    ticked box) in any case; raise NormalizationError otherwise (blank included)."""
    if isinstance(text, bool):
        return text
    value = _BOOLEANS.get(_clean_text(text).casefold())
    if value is None:
        raise NormalizationError(f"{_quote(text)} is not yes or no (use true/false, yes/no or 1/0)")
    return value


# The characters our CSV/XLSX exporter guards with a leading quote (OWASP CSV injection):
# a spreadsheet would run a cell starting with them as a formula.
_FORMULA_STARTS = frozenset("=+-@\t\r\0")


def strip_formula_escape(text: str) -> str:
    """Return `text` without the single quote our exporter put before a leading = + - @
    TAB CR or NUL, or before quotes that precede one (a typed `'=1+1` is exported as
    `''=1+1`), so that a re-imported export gets its original value back. Any other leading
    quote is the user's and stays."""
    if len(text) >= 2 and text[0] == "'":
        rest = text.lstrip("'")
        if rest and rest[0] in _FORMULA_STARTS:
            return text[1:]
    return text
