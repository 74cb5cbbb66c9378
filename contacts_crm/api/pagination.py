"""Keyset (cursor) paging shared by every list endpoint: `limit`, `cursor`, `offset`, `sort`,
`include_total`; answers `{"results": [...], "next_cursor": "...", "total": n}`.

A cursor is opaque (base64 of the sort, the last row's sort value and its id). Paging by
`(value, id)` never repeats or skips a row under concurrent inserts, and costs the same on page
1 and page 10,000 (an index range scan), unlike OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass

from django.db.models import DateTimeField, Q
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000  # Qlara pages up to 1000 (issue 11)
MAX_OFFSET = 10_000_000  # far past any real page, well inside a bigint (a larger OFFSET is a 500); deeper: cursor


@dataclass
class Page:
    items: list
    next_cursor: str | None
    total: int | None

    def body(self, results: list) -> dict:
        body = {"results": results, "next_cursor": self.next_cursor}
        if self.total is not None:
            body["total"] = self.total
        return body


def _value(item, name: str):
    """A page item's value: an attribute of a model instance, a key of a values() row."""
    return item[name] if isinstance(item, dict) else getattr(item, name)


def _bad(field: str, message: str):
    raise ValidationError({field: [message]})


def _whole_number(name: str, raw: str, low: int, high: int) -> int:
    """`raw` as an int in [low, high]: ASCII digits only ("²" and "٣" pass isdigit()), and the
    length bounded before int() so a 5,000-digit value is refused without converting it."""
    text = raw.strip()
    if not (text.isascii() and text.isdecimal()) or len(text) > 18:
        if text.isascii() and text.isdecimal():
            _bad(name, f"{name} must be between {low} and {high}.")
        _bad(name, f"'{raw}' is not a whole number.")
    value = int(text)
    if not low <= value <= high:
        _bad(name, f"{name} must be between {low} and {high} (got {value}).")
    return value


def parse_limit(params) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    return _whole_number("limit", raw, 1, MAX_LIMIT)


def parse_bool_param(params, name: str) -> bool:
    raw = params.get(name)
    if raw is None:
        return False
    if raw.lower() in {"true", "1"}:
        return True
    if raw.lower() in {"false", "0"}:
        return False
    _bad(name, f"'{raw}' is not true or false.")


def encode_cursor(sort: str, value, pk) -> str:
    raw = json.dumps({"s": sort, "v": value.isoformat() if hasattr(value, "isoformat") else value, "id": str(pk)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not isinstance(data, dict) or not {"s", "v", "id"} <= set(data):
            raise ValueError
        return data
    except (ValueError, binascii.Error, UnicodeDecodeError):
        _bad("cursor", "Malformed cursor: pass back the next_cursor of a previous page unchanged.")


def paginate(request, queryset, *, sorts=("id",), default_sort: str | None = None, id_field="id") -> Page:
    """One page of `queryset` (model instances, or values() rows that hold the sort's field and
    the id). Extra queries: one, plus a COUNT with include_total=true."""
    params = request.query_params
    limit = parse_limit(params)
    default_sort = default_sort or sorts[0]
    sort = params.get("sort", default_sort)
    if sort not in sorts:
        _bad("sort", f"'{sort}' is not a sort; use one of: {', '.join(sorts)}.")
    cursor, offset = params.get("cursor"), params.get("offset")
    if cursor == "":
        _bad("cursor", "An empty cursor: leave the parameter out for the first page.")
    if offset == "":
        _bad("offset", "An empty offset: give a whole number ≥ 0 or leave the parameter out.")
    if cursor and offset:
        _bad("offset", "Use either cursor or offset, not both.")
    include_total = parse_bool_param(params, "include_total")
    total = queryset.count() if include_total else None

    field = sort.lstrip("-")
    desc = sort.startswith("-")
    model_field = queryset.model._meta.get_field(field)
    order = [f"-{field}", f"-{id_field}"] if desc else [field, id_field]
    if field == id_field:
        order = order[:1]
    qs = queryset.order_by(*order)

    if cursor:
        data = decode_cursor(cursor)
        if data["s"] != sort:
            _bad("cursor", f"This cursor was made for sort={data['s']}; keep the same sort while paging.")
        value = data["v"]
        pk = data["id"]
        try:
            if isinstance(model_field, DateTimeField):
                value = parse_datetime(value)
                if value is None:
                    raise ValueError
            pk_field = queryset.model._meta.get_field(id_field)
            pk = pk_field.to_python(pk)
            if isinstance(pk, uuid.UUID) is False and pk_field.get_internal_type() == "UUIDField":
                raise ValueError
        except (ValueError, TypeError, Exception):
            _bad("cursor", "Malformed cursor: pass back the next_cursor of a previous page unchanged.")
        if field == id_field:
            qs = qs.filter(**{f"{id_field}__{'lt' if desc else 'gt'}": pk})
        elif desc:
            # The first conjunct gives the planner an index range; the OR settles ties by id.
            qs = qs.filter(Q(**{f"{field}__lte": value}) & (Q(**{f"{field}__lt": value}) | Q(**{f"{id_field}__lt": pk})))
        else:
            qs = qs.filter(Q(**{f"{field}__gte": value}) & (Q(**{f"{field}__gt": value}) | Q(**{f"{id_field}__gt": pk})))
        items = list(qs[: limit + 1])
    elif offset:
        start = _whole_number("offset", offset, 0, MAX_OFFSET)
        items = list(qs[start : start + limit + 1])
    else:
        items = list(qs[: limit + 1])

    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        last = items[-1]
        next_cursor = encode_cursor(sort, _value(last, field), _value(last, id_field))
    return Page(items=items, next_cursor=next_cursor, total=total)


def paging_parameters(sorts=("id",)) -> list[OpenApiParameter]:
    return [
        OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                         description=f"Page size, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT}). Empty is a 400."),
        OpenApiParameter("cursor", OpenApiTypes.STR, description="The next_cursor of the previous page."),
        OpenApiParameter("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                         description=f"Row offset, 0–{MAX_OFFSET:,} (slow on deep pages; prefer cursor)."),
        OpenApiParameter("sort", OpenApiTypes.STR, enum=list(sorts), description=f"Default {sorts[0]}. Empty is a 400."),
        OpenApiParameter("include_total", {"type": "string", "enum": ["true", "false", "1", "0"]},
                         description="true: add the total count (one COUNT query). Empty is a 400."),
    ]


# --- many-key sorts (issue 11: sort=name, priority_list) --------------------------------------
@dataclass(frozen=True)
class SortKey:
    """One key of a sort: an annotation `alias` computed by `expression` (or a model field when
    `expression` is None); `kind` says how its cursor value reads back (text | datetime | bool)."""

    alias: str
    expression: object = None
    kind: str = "text"


def _read_value(key: SortKey, raw):
    if key.kind == "datetime":
        value = parse_datetime(raw) if isinstance(raw, str) else None
        if value is None:
            raise ValueError
        return value
    if key.kind == "bool":
        if not isinstance(raw, bool):
            raise ValueError
        return raw
    if not isinstance(raw, str):
        raise ValueError
    return raw


def _after(keys, values, desc_flags, pk, id_field) -> Q:
    """Rows after (values…, pk) in the lexicographic order of the keys, then id."""
    q = Q(**{f"{id_field}__{'lt' if desc_flags[-1] else 'gt'}": pk})
    # Keys are never NULL (the databases disagree on where NULL sorts): text keys are "" when empty.
    for key, value, desc in reversed(list(zip(keys, values, desc_flags[:-1], strict=True))):
        q = Q(**{f"{key.alias}__{'lt' if desc else 'gt'}": value}) | (Q(**{key.alias: value}) & q)
    return q


def paginate_keys(request, queryset, *, sorts: dict, default_sort: str, leading: tuple = (), id_field="id",
                  cursor_scope: str = "") -> Page:
    """One page of `queryset` in a sort of several keys: `sorts` maps a sort name ("name",
    "-updated_at") to its SortKeys, all ascending or all descending with the name's sign; `leading`
    keys (descending: True first — a priority list's members) come before them. The cursor holds
    every key's value and the id, so a walk never repeats or skips a row, whatever the sort; it is
    bound to the sort and to `cursor_scope` (the priority list). Queries: one, plus a COUNT with
    include_total=true."""
    params = request.query_params
    limit = parse_limit(params)
    sort = params.get("sort", default_sort)
    if sort not in sorts:
        _bad("sort", f"'{sort}' is not a sort; use one of: {', '.join(sorts)}.")
    cursor, offset = params.get("cursor"), params.get("offset")
    if cursor == "":
        _bad("cursor", "An empty cursor: leave the parameter out for the first page.")
    if cursor and offset:
        _bad("offset", "Use either cursor or offset, not both.")
    total = queryset.count() if parse_bool_param(params, "include_total") else None

    desc = sort.startswith("-")
    keys = [*leading, *sorts[sort]]
    desc_flags = [True] * len(leading) + [desc] * len(sorts[sort]) + [desc]
    annotations = {k.alias: k.expression for k in keys if k.expression is not None}
    qs = queryset.annotate(**annotations) if annotations else queryset
    order = [f"-{k.alias}" if d else k.alias for k, d in zip(keys, desc_flags, strict=False)]
    qs = qs.order_by(*order, f"-{id_field}" if desc else id_field)

    if cursor:
        data = decode_cursor(cursor)
        if data["s"] != sort or data.get("p", "") != cursor_scope:
            _bad("cursor", f"This cursor was made for sort={data['s']}; keep the same sort (and priority_list) "
                 "while paging.")
        try:
            raw = data["v"]
            if not isinstance(raw, list) or len(raw) != len(keys):
                raise ValueError
            values = [_read_value(k, v) for k, v in zip(keys, raw, strict=True)]
            pk = queryset.model._meta.get_field(id_field).to_python(data["id"])
        except (ValueError, TypeError, Exception):
            _bad("cursor", "Malformed cursor: pass back the next_cursor of a previous page unchanged.")
        qs = qs.filter(_after(keys, values, desc_flags, pk, id_field))
        items = list(qs[: limit + 1])
    elif offset is not None:
        try:
            start = int(offset)
            if start < 0:
                raise ValueError
        except ValueError:
            _bad("offset", f"'{offset}' is not a whole number ≥ 0.")
        if start > MAX_OFFSET:
            _bad("offset", f"offset is at most {MAX_OFFSET}; page deeper with cursor.")
        items = list(qs[start : start + limit + 1])
    else:
        items = list(qs[: limit + 1])

    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        last = items[-1]
        values = [_value(last, k.alias) for k in keys]
        values = [v.isoformat() if hasattr(v, "isoformat") else (bool(v) if k.kind == "bool" else v)
                  for k, v in zip(keys, values, strict=True)]
        raw = json.dumps({"s": sort, "v": values, "id": str(_value(last, id_field)), "p": cursor_scope})
        next_cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    return Page(items=items, next_cursor=next_cursor, total=total)
