"""The contacts list's query parameters → a queryset, with a 400 for every bad value.

The API list, count, export and bulk endpoints and the admin's "export all matching" call
`filter_contacts`; each parameter maps onto one ContactQuerySet method or Q builder.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError

from .normalize import NormalizationError, email_key, normalize_country, normalize_phone, normalize_tag
from .validation import parse_ascii_id, parse_moment

BOOL_VALUES = {"true": True, "1": True, "false": False, "0": False}
PAGING_PARAMS = {"limit", "cursor", "offset", "sort", "include_total", "format"}
FILTER_DOCS = {
    "search": "Names, email, phone digits; fuzzy for words of 3+ letters on PostgreSQL.",
    "tags": "Comma list of tags.",
    "tags_logic": "or (default: any of the tags) | and (all of them).",
    "is_textable": "true | false | unknown.",
    "opted_out": "true | false: the global do-not-contact flag.",
    "has_email": "true | false.",
    "has_phone": "true | false.",
    "state": "Comma list of states (US/CA: 2-letter codes).",
    "zip": "Comma list of ZIP/postal codes.",
    "country": "Comma list of countries (ISO alpha-2, alpha-3 or English names).",
    "lifecycle_stage": "Comma list.",
    "gender": "Comma list.",
    "is_test": "true | false.",
    "phone": "A phone number in any format (matched as E.164).",
    "reachable_on": "Comma list of channels (sms, whatsapp, email, rcs, viber, voice): contacts that may be "
    "messaged now on any of them (the address it needs, not opted out, for sms not is_textable=false).",
    "region": "ISO alpha-2 region to read a national `phone` (default: the organization's).",
    "email": "An email address (case-insensitive).",
    "created_after": "ISO date or datetime (inclusive).",
    "created_before": "ISO date or datetime (exclusive).",
    "updated_after": "ISO date or datetime (inclusive).",
    "updated_before": "ISO date or datetime (exclusive).",
    "list": "Comma list of list ids: in any of them. An id that is not one of your lists is a 404.",
    "not_list": "Comma list of list ids: in none of them. An id that is not one of your lists is a 404.",
    "segment": "A segment id: its members. The other filters are then ignored (named in ignored_filters); "
    "paging and sort still apply. Another organization's segment is a 404.",
}
FILTER_PARAMS = set(FILTER_DOCS)


def _error(errors, name, message):
    errors.setdefault(name, []).append(message)


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _bool(errors, name, value):
    parsed = BOOL_VALUES.get(value.strip().lower())
    if parsed is None:
        _error(errors, name, f"'{value}' is not true or false.")
    return parsed


def _moment(errors, name, value):
    from datetime import UTC, datetime, time

    try:
        parsed = parse_moment(value)
    except NormalizationError as exc:
        _error(errors, name, str(exc))
        return None
    if not isinstance(parsed, datetime):
        parsed = datetime.combine(parsed, time.min, tzinfo=UTC)
    return parsed


def _ids(errors, name, value) -> list[int]:
    out = []
    for part in _csv(value):
        list_id = parse_ascii_id(part)
        if list_id is None:
            _error(errors, name, f"'{part}' is not a list id.")
        else:
            out.append(list_id)
    return out


def _tags(errors, name, value) -> list[str]:
    tags = []
    for part in _csv(value):
        try:
            tags.append(normalize_tag(part))
        except NormalizationError as exc:
            _error(errors, name, str(exc))
    return tags


def filter_contacts(queryset, params, *, org, extra_allowed=()) -> tuple:
    """Applies the contacts filters in `params` (a QueryDict/dict).

    Returns (queryset, ignored_filters). Raises ValidationError naming every bad parameter,
    including unknown ones (a typo like `tag=vip` must not silently return everyone).
    """
    errors: dict[str, list[str]] = {}
    allowed = FILTER_PARAMS | PAGING_PARAMS | set(extra_allowed)
    for name in params:
        if name not in allowed:
            _error(errors, name, f"Unknown parameter '{name}'. Filters: {', '.join(sorted(FILTER_PARAMS))}.")
    if params.get("segment") not in (None, ""):
        raw = params.get("segment")
        if errors:
            raise ValidationError(errors)
        from segments.rules import segment_queryset_for_param

        ignored = sorted(name for name in params if name in FILTER_PARAMS and name != "segment")
        return segment_queryset_for_param(queryset, raw, org=org), ignored

    qs = queryset
    get = {name: params.get(name) for name in FILTER_PARAMS if params.get(name) not in (None, "")}
    if "search" in get:
        qs = qs.search(get["search"])
    logic = get.get("tags_logic", "or").lower()
    if logic not in {"or", "and"}:
        _error(errors, "tags_logic", f"'{get['tags_logic']}' is not a tags_logic; use or | and.")
    if "tags" in get:
        tags = _tags(errors, "tags", get["tags"])
        qs = qs.tagged_all(tags, org=org) if logic == "and" else qs.tagged_any(tags, org=org)
    if "is_textable" in get:
        value = get["is_textable"].lower()
        if value not in {"true", "false", "unknown"}:
            _error(errors, "is_textable", f"'{get['is_textable']}' is not one of true, false, unknown.")
        else:
            qs = qs.textable(value)
    for name, field in [("opted_out", "opted_out"), ("is_test", "is_test")]:
        if name in get:
            value = _bool(errors, name, get[name])
            if value is not None:
                qs = qs.filter(**{field: value})
    if "has_email" in get and (value := _bool(errors, "has_email", get["has_email"])) is not None:
        qs = qs.with_email(value)
    if "has_phone" in get and (value := _bool(errors, "has_phone", get["has_phone"])) is not None:
        qs = qs.with_phone(value)
    if "state" in get:
        qs = qs.in_state(_csv(get["state"]))
    if "reachable_on" in get:
        from .models import Channel

        channels = _csv(get["reachable_on"])
        bad = [c for c in channels if c not in Channel.values]
        if bad or not channels:
            _error(errors, "reachable_on", f"Unknown channel(s) {', '.join(bad) or '(none)'}; channels: "
                   f"{', '.join(Channel.values)}.")
        else:
            qs = qs.reachable_on(channels)
    if "zip" in get:
        qs = qs.filter(zip__in=_csv(get["zip"]))
    if "country" in get:
        countries = []
        for part in _csv(get["country"]):
            try:
                countries.append(normalize_country(part))
            except NormalizationError as exc:
                _error(errors, "country", str(exc))
        qs = qs.filter(country__in=countries)
    for name in ("lifecycle_stage", "gender"):
        if name in get:
            qs = qs.filter(**{f"{name}__in": _csv(get[name])})
    if "region" in get:
        import phonenumbers

        if get["region"].upper() not in phonenumbers.SUPPORTED_REGIONS:
            _error(errors, "region", f"'{get['region']}' is not an ISO 3166-1 alpha-2 region (e.g. US, GB).")
    if "phone" in get and "region" not in errors:
        try:
            region = (get.get("region") or org.default_region).upper()
            qs = qs.filter(phone=normalize_phone(get["phone"], region).e164)
        except NormalizationError as exc:
            _error(errors, "phone", str(exc))
    if "email" in get:
        qs = qs.filter(email_key=email_key(get["email"].strip()))
    for name in ("list", "not_list"):
        if name in get:
            ids = _ids(errors, name, get[name])
            if ids and name not in errors:
                from segments.querysets import q_in_lists, q_not_in_lists

                qs = qs.filter(q_in_lists(ids, org=org) if name == "list" else q_not_in_lists(ids, org=org))
    for name, field in [("created_after", "created_at"), ("created_before", "created_at"),
                        ("updated_after", "updated_at"), ("updated_before", "updated_at")]:
        if name in get:
            moment = _moment(errors, name, get[name])
            if moment is not None:
                qs = qs.changed_between(field, **({"after": moment} if name.endswith("after") else {"before": moment}))
    if errors:
        raise ValidationError(errors)
    return qs, []


def filter_parameters() -> list[OpenApiParameter]:
    return [OpenApiParameter(name, OpenApiTypes.STR, description=doc) for name, doc in FILTER_DOCS.items()]
