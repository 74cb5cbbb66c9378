"""Turns what a person or an integration typed into normalized contact data.

Used by the API serializers and the admin forms, so that both accept and refuse the same
values with the same messages. Every function raises NormalizationError with a message that
quotes the bad value.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

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
MAX_SECONDARY = 20


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
        if isinstance(value, (int, float)):
            return value
        text = str(value).strip()
        try:
            number = Decimal(text.replace(",", "") if "," in text and "." in text else text)
        except InvalidOperation:
            raise NormalizationError(f"custom field '{key}' is a number, got '{value}'.") from None
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == CustomField.Type.DATE:
        if isinstance(value, dt.date):
            return value.isoformat()
        return normalize_date(str(value), dayfirst=dayfirst).isoformat()
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
        return value
    return normalize_date(str(value))


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
