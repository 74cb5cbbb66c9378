"""Turns what a person or an integration typed into normalized contact data.

Used by the API serializers and the admin forms, so that both accept and refuse the same
values with the same messages. Every function raises NormalizationError with a message that
quotes the bad value.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from decimal import Decimal

from .models import Channel, CustomField
from .normalize import (
    NormalizationError,
    normalize_country,
    normalize_custom_key,
    normalize_date,
    normalize_email,
    normalize_phone,
    normalize_state,
    normalize_tag,
    normalize_zip,
    parse_bool,
    validate_timezone,
)

TEXT_LIMITS = {
    "first_name": 100, "last_name": 100, "display_name": 200, "company": 200, "address": 300, "city": 100,
    "lifecycle_stage": 32, "gender": 32, "language": 16, "external_id": 255, "notes": 10_000,
}
LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
from .upsert import MAX_SECONDARY  # noqa: E402  (the engine names the limit)


def clean_phone(value, region: str) -> tuple[str, str | None]:
    """(E.164, warning or None)."""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise NormalizationError(f"'{value}' is not a phone number: send it as a string.")
    result = normalize_phone(str(value), region)
    return result.e164, result.warning


def clean_text(name: str, value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise NormalizationError(f"Expected text, got {type(value).__name__} {value!r}.")
    value = value.strip()
    limit = TEXT_LIMITS.get(name)
    if limit and len(value) > limit:
        raise NormalizationError(f"At most {limit} characters (got {len(value)}).")
    if name == "language" and value and not LANGUAGE_RE.match(value):
        raise NormalizationError(f"'{value}' is not a language tag such as en or es-MX.")
    return value


def clean_tags(value) -> list[str]:
    if isinstance(value, str):
        raise NormalizationError("Send tags as a list of strings, e.g. [\"vip\", \"newsletter\"].")
    if not isinstance(value, list):
        raise NormalizationError(f"Expected a list of strings, got {type(value).__name__}.")
    tags = []
    for item in value:
        if not isinstance(item, str):
            raise NormalizationError(f"Tag {item!r} is not a string.")
        tags.append(normalize_tag(item))
    return tags


def clean_preferences(value) -> dict[str, bool]:
    if not isinstance(value, dict):
        raise NormalizationError('Expected an object such as {"sms": false, "email": true}.')
    channels = set(Channel.values)
    out = {}
    for channel, opted_in in value.items():
        if channel not in channels:
            raise NormalizationError(f"Unknown channel '{channel}'; channels: {', '.join(Channel.values)}.")
        if not isinstance(opted_in, bool):
            raise NormalizationError(f"{channel}: expected true or false, got {opted_in!r}.")
        out[channel] = opted_in
    return out


def clean_secondary(name: str, value, region: str) -> list[str]:
    if not isinstance(value, list):
        raise NormalizationError("Expected a list.")
    if len(value) > MAX_SECONDARY:
        raise NormalizationError(f"At most {MAX_SECONDARY} entries.")
    out = []
    for item in value:
        clean = clean_phone(item, region)[0] if name == "secondary_phones" else normalize_email(str(item))
        if clean not in out:
            out.append(clean)
    return out


def custom_value(definition: CustomField | None, key: str, value, *, dayfirst: bool = False):
    """One custom field's value checked against its definition (None: undefined key), for the
    API's JSON values and the importer's cell text alike: "1,234.5" is a number, "Gold" the
    choice "gold", a date follows `dayfirst` when ambiguous. Raises NormalizationError."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) > 1000:
        raise NormalizationError(f"custom field '{key}': at most 1000 characters.")
    if definition is None:
        if isinstance(value, (dict, list)):
            raise NormalizationError(f"custom field '{key}': nested objects and lists are not allowed.")
        return value  # undefined keys keep their JSON type: a number stays a number, a cell text
    kind = definition.type
    if kind == CustomField.Type.NUMBER:
        if isinstance(value, bool):
            raise NormalizationError(f"custom field '{key}' is a number, got {value!r}.")
        try:
            return parse_number(value)
        except NormalizationError as exc:
            raise NormalizationError(f"custom field '{key}' is a number: {exc}") from None
    if kind == CustomField.Type.DATE:
        if isinstance(value, dt.date):
            return check_date_range(value, value).isoformat()
        if len(str(value)) > 64:
            raise NormalizationError(f"custom field '{key}' is a date, got {_shown_value(str(value))}.")
        return check_date_range(normalize_date(str(value), dayfirst=dayfirst), value).isoformat()
    if kind == CustomField.Type.BOOLEAN:
        return value if isinstance(value, bool) else parse_bool(str(value))
    if kind == CustomField.Type.CHOICE:
        for choice in definition.choices or []:
            if choice == value or (isinstance(value, str) and str(choice).casefold() == value.strip().casefold()):
                return choice
        raise NormalizationError(
            f"custom field '{key}': '{value}' is not one of {', '.join(map(str, definition.choices or []))}."
        )
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise NormalizationError(f"custom field '{key}' is text, got {value!r}.")
    return str(value)


def clean_custom_fields(value, org, definitions: dict | None = None) -> dict:
    """Keys by name or by a definition's integer id; values checked against their definition."""
    if not isinstance(value, dict):
        raise NormalizationError('Expected an object such as {"plan": "gold"}.')
    if definitions is None:
        definitions = custom_field_definitions(org)
    by_id = {str(d.pk): d for d in definitions.values()}
    out = {}
    for raw_key, raw_value in value.items():
        key = str(raw_key)
        definition = by_id.get(key) if key.isdigit() else definitions.get(key)
        if key.isdigit() and definition is None:
            raise NormalizationError(f"No custom field has the id {key}.")
        key = definition.key if definition else normalize_custom_key(key)
        out[key] = custom_value(definition, key, raw_value)
    return out


def custom_field_definitions(org) -> dict[str, CustomField]:
    return {d.key: d for d in CustomField.objects.for_org(org)}


def clean_country(value) -> str:
    return normalize_country(str(value)) if value not in (None, "") else ""


def clean_state(value, country: str, region: str) -> str:
    return normalize_state(str(value), country, region=region) if value not in (None, "") else ""


def clean_zip(value, country: str, region: str) -> str:
    return normalize_zip(str(value), country, region=region) if value not in (None, "") else ""


def clean_timezone(value) -> str:
    return validate_timezone(str(value)) if value not in (None, "") else ""


def clean_birthday(value):
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return check_date_range(value, value)
    if not isinstance(value, str) or len(value) > 64:
        raise NormalizationError(f"{_shown_value(value)} is not a date (send it as text, e.g. 1990-03-04).")
    return check_date_range(normalize_date(value), value)


def clean_email(value):
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise NormalizationError(f"'{value}' is not an email address.")
    return normalize_email(value)


READ_ONLY_FIELDS = {
    "id", "created_at", "updated_at", "is_textable", "textable_checked_at", "opted_out_at", "opt_out_source",
    "_outcome", "_warnings",
}
TEXT_FIELDS = list(TEXT_LIMITS)


class PayloadError(Exception):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


def clean_contact_payload(data, *, org, contact=None, full: bool = False, definitions=None,
                          region: str | None = None) -> tuple[dict, list[str]]:
    """Validates and normalizes an API/admin payload.

    Returns (clean data holding only the fields given, warnings). `full` (PUT): omitted plain
    fields are cleared, tags and custom fields replaced; consent fields stay as they are unless
    given. Raises PayloadError({field: [message]}) listing every bad field at once.
    """
    from django.contrib.auth import get_user_model

    from .services import SIMPLE_FIELDS

    if not isinstance(data, dict):
        raise PayloadError({"non_field_errors": ["Expected a JSON object."]})
    allowed = set(SIMPLE_FIELDS) | {"tags", "custom_fields", "preferences", "opted_out"}
    errors: dict[str, list[str]] = {}
    warnings: list[str] = []
    clean: dict = {}
    region = region or org.default_region  # a request's own region (issue 11) reads national numbers
    unknown = [k for k in data if k not in allowed and k not in READ_ONLY_FIELDS]
    for key in unknown:
        errors[key] = [f"Unknown field '{key}'."]

    def run(name, func, *args):
        try:
            clean[name] = func(*args)
        except NormalizationError as exc:
            errors.setdefault(name, []).append(str(exc))

    given = {k: v for k, v in data.items() if k in allowed}
    if full:
        for name in SIMPLE_FIELDS:
            given.setdefault(name, None)
        given.setdefault("tags", [])
        given.setdefault("custom_fields", {})
    if "country" in given:
        run("country", clean_country, given["country"])
    country = clean.get("country", contact.country if contact else "")
    for name, value in given.items():
        if name == "phone":
            if value in (None, ""):
                clean["phone"] = None
            else:
                try:
                    clean["phone"], warning = clean_phone(value, region)
                    if warning:
                        warnings.append(f"phone: {warning}")
                except NormalizationError as exc:
                    errors.setdefault("phone", []).append(str(exc))
        elif name == "email":
            run("email", clean_email, value)
        elif name in TEXT_LIMITS:
            run(name, clean_text, name, value)
        elif name == "state":
            run("state", clean_state, value, country, region)
        elif name == "zip":
            run("zip", clean_zip, value, country, region)
        elif name == "timezone":
            run("timezone", clean_timezone, value)
        elif name == "birthday":
            run("birthday", clean_birthday, value)
        elif name == "avatar_url":
            if value and not (isinstance(value, str) and re.match(r"^https?://\S+$", value) and len(value) <= 500):
                errors["avatar_url"] = [f"'{value}' is not an http(s) URL."]
            else:
                clean["avatar_url"] = value or ""
        elif name in {"is_test", "opted_out"}:
            if value is None and name == "is_test":
                clean[name] = False
            elif not isinstance(value, bool):
                errors[name] = [f"Expected true or false, got {value!r}."]
            else:
                clean[name] = value
        elif name in {"secondary_phones", "secondary_emails"}:
            run(name, clean_secondary, name, value if value is not None else [], region)
        elif name == "tags":
            run("tags", clean_tags, value if value is not None else [])
        elif name == "preferences":
            run("preferences", clean_preferences, value)
        elif name == "custom_fields":
            run("custom_fields", clean_custom_fields, value if value is not None else {}, org, definitions)
        elif name == "assignee":
            if value in (None, ""):
                clean["assignee"] = None
            else:
                user = get_user_model().objects.filter(pk=value, crm_membership__organization=org).first() if (
                    isinstance(value, int) and not isinstance(value, bool)) else None
                if user is None:
                    errors["assignee"] = [f"No staff user with id {value!r} in this organization."]
                else:
                    clean["assignee"] = user
    if "custom_fields" in clean and len([v for v in clean["custom_fields"].values() if v is not None]) > 20:
        errors.setdefault("custom_fields", []).append("A contact holds at most 20 custom fields.")
    if not errors:
        phone = clean["phone"] if "phone" in clean else (contact.phone if contact else None)
        email = clean["email"] if "email" in clean else (contact.email if contact else None)
        if not phone and not email:
            errors["phone"] = ["A contact needs a phone or an email."]
    if errors:
        raise PayloadError(errors)
    return clean, warnings


# --- bounded numbers, dates and JSON (issue 13: no input reaches a 500) ------------------------
# Limits named once; the API parser, the admin forms, the importer's custom-field coercion, the
# contacts filters and the segment rules all call the functions below.
MAX_NUMBER = 10**15  # custom numbers and rule values: exact in a float64, which segments compare in
MAX_NUMBER_CHARS = 40  # a number's text (digits, sign, point, exponent); checked before converting
MAX_JSON_DEPTH = 32  # nesting of any JSON input (rules nest 5 groups deep: ~13 JSON levels)
MAX_JSON_NUMBER_CHARS = 100  # one number literal in a JSON document
JSON_INT_RANGE = 2**63  # a JSON integer fits a bigint (PostgreSQL, SQLite)
MIN_YEAR, MAX_YEAR = 1000, 9000  # dates and date-times; margins for a day's or a century's shift
_NUMBER_TEXT_RE = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d{1,4})?")


def parse_number(value):
    """`value` (a JSON number or a text like "1,234.5" / "2e3") as an int (when whole) or a float,
    within ±MAX_NUMBER. Raises NormalizationError quoting the value for NaN, infinities, other
    text and anything bigger; the text is bounded before any conversion, so "1e999999" costs
    microseconds (int(Decimal("1e999999")) holds a worker for half a minute)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise NormalizationError(f"{_shown_value(value)} is not a number.")
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise NormalizationError(_number_range_message(value))
        return int(value) if value.is_integer() else value
    if isinstance(value, int):
        if abs(value) > MAX_NUMBER:
            raise NormalizationError(_number_range_message(value))
        return value
    text = str(value).strip()
    if len(text) > MAX_NUMBER_CHARS:
        raise NormalizationError(f"{_shown_value(text)} is not a number of at most {MAX_NUMBER_CHARS} characters.")
    if "," in text and "." in text:
        text = text.replace(",", "")
    if not _NUMBER_TEXT_RE.fullmatch(text):
        raise NormalizationError(f"{_shown_value(value)} is not a number.")
    number = Decimal(text)
    if abs(number) > MAX_NUMBER:
        raise NormalizationError(_number_range_message(value))
    return int(number) if number == number.to_integral_value() else float(number)


def _number_range_message(value) -> str:
    return f"{_shown_value(value)} is not a finite number between -{MAX_NUMBER:.0e} and {MAX_NUMBER:.0e}."


def _shown_value(value) -> str:
    text = value if isinstance(value, str) else repr(value)
    return f"'{text[:37]}...'" if len(text) > 40 else f"'{text}'"


def parse_moment(text) -> dt.date | dt.datetime:
    """An ISO date ("2024-03-01") or date-time ("2024-03-01T09:30:00Z"; naive = UTC), years
    MIN_YEAR..MAX_YEAR. Raises NormalizationError for impossible ones (2024-02-30, T25:00)."""
    from django.utils.dateparse import parse_date, parse_datetime

    if not isinstance(text, str) or len(text) > 64:
        raise NormalizationError(f"{_shown_value(text)} is not an ISO date or date-time.")
    text = text.strip()
    try:
        moment = parse_date(text) or parse_datetime(text)
        if isinstance(moment, dt.datetime) and moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        if moment is not None and isinstance(moment, dt.datetime):
            moment.astimezone(dt.UTC)  # an offset may push 9999-12-31T23:59 past the last year
    except (ValueError, OverflowError):
        raise NormalizationError(f"{_shown_value(text)} is not a real date or time.") from None
    if moment is None:
        raise NormalizationError(
            f"{_shown_value(text)} is not an ISO date or date-time (e.g. 2024-03-01 or 2024-03-01T09:30:00Z).")
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise NormalizationError(f"{_shown_value(text)}: the year must be between {MIN_YEAR} and {MAX_YEAR}.")
    return moment


def check_date_range(day: dt.date, shown) -> dt.date:
    """`day` when its year is within MIN_YEAR..MAX_YEAR, else NormalizationError."""
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise NormalizationError(f"{_shown_value(shown)}: the year must be between {MIN_YEAR} and {MAX_YEAR}.")
    return day


def parse_ascii_id(text) -> int | None:
    """A positive whole-number id in ASCII digits ("12"), else None: "²" and "١٢" pass isdigit()
    but int() refuses the first, and the second is nobody's id."""
    text = str(text).strip()
    if not text or len(text) > 18 or not (text.isascii() and text.isdecimal()):
        return None
    return int(text)


class JSONInputError(NormalizationError, json.JSONDecodeError):
    """A JSON document refused: `errors` is {path: [message]}. Also a JSONDecodeError, so code that
    catches bad JSON (Django's forms.JSONField) catches this too."""

    def __init__(self, errors: dict[str, list[str]]):
        message = "; ".join(f"{path}: {msgs[0]}" for path, msgs in errors.items())
        ValueError.__init__(self, message)
        self.msg, self.doc, self.pos, self.lineno, self.colno = message, "", 0, 1, 1
        self.errors = errors

    def __str__(self):
        return self.msg


_JSON_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_JSON_BRACKET_RE = re.compile(r"[\[\]{}]")


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests arrays/objects deeper than `limit`: a scan without recursion,
    strings skipped, so json.loads never recurses a thousand levels (RecursionError)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _JSON_BRACKET_RE.finditer(_JSON_STRING_RE.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class _BadNumber:
    """What the decoder leaves where a number is out of range; reported with its path."""

    def __init__(self, text: str):
        self.text = text


def _json_float(text: str):
    if len(text) > MAX_JSON_NUMBER_CHARS:
        return _BadNumber(text)
    value = float(text)
    return value if math.isfinite(value) else _BadNumber(text)


def _json_int(text: str):
    if len(text) > 20 or abs(value := int(text)) >= JSON_INT_RANGE:
        return _BadNumber(text)
    return value


class BoundedJSONDecoder(json.JSONDecoder):
    """json.loads that refuses, with the path of each bad value: nesting deeper than
    MAX_JSON_DEPTH (before parsing), NaN/Infinity, numbers that overflow a float or a bigint, and
    strings holding a lone surrogate ("\\ud800": no database can store it). Raises
    JSONInputError; a syntax error stays a json.JSONDecodeError."""

    def __init__(self, *args, **kwargs):
        kwargs.update(parse_float=_json_float, parse_int=_json_int, parse_constant=_BadNumber)
        super().__init__(*args, **kwargs)

    def decode(self, s, *args, **kwargs):
        if json_too_deep(s):
            raise JSONInputError({"non_field_errors": [f"JSON nested deeper than {MAX_JSON_DEPTH} levels."]})
        value = super().decode(s, *args, **kwargs)
        errors: dict[str, list[str]] = {}
        for path, message in _json_problems(value, ""):
            errors.setdefault(path or "non_field_errors", []).append(message)
        if errors:
            raise JSONInputError(errors)
        return value


def _unstorable(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _json_problems(value, path):
    if isinstance(value, str):
        if _unstorable(value):
            yield path, "holds a lone surrogate (an invalid \\ud800-\\udfff escape)."
    elif isinstance(value, _BadNumber):
        yield path, f"{_shown_value(value.text)} is not a finite number in range."
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _unstorable(key):
                yield where.encode("utf-8", "backslashreplace").decode(), "a key holds a lone surrogate."
            else:
                yield from _json_problems(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_problems(item, f"{path}[{index}]")


def loads_json(text: str):
    """json.loads through BoundedJSONDecoder (the import's `mapping` field, the admin)."""
    return json.loads(text, cls=BoundedJSONDecoder)
