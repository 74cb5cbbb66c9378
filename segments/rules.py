"""The segment rule language (design §5): validation with a path to the bad rule, and a compiler to
ONE Django `Q` over Contact (no Python-side filtering, no per-contact queries).

    {"op": "and", "rules": [
        {"field": "tags", "operator": "contains_any", "value": ["vip"]},
        {"op": "or", "rules": [{"field": "state", "operator": "in", "value": ["NC", "SC"]}, ...]},
        {"not": {"field": "lists", "operator": "contains_any", "value": [12]}}]}

What each field and operator means is documented in docs/segments.md; the short version:
- free text (names, company, city, ...): eq/in/contains/starts_with compare case-insensitively;
- codes are normalized like the stored values, then compared exactly: state uppercased (as the
  contacts `state` filter does), country through normalize_country ("USA" = US), phone to E.164
  with the organization's region, email through its casefolded key, zip as given;
- tags, channels and textability reuse contacts.querysets' q_* builders, lists use
  segments.querysets, so "state in NC, SC" or "tagged vip" means one thing everywhere;
- `custom.<key>` reads the JSON value: numbers (JSON numbers or numeric strings) compare
  numerically, ISO dates (YYYY-MM-DD...) compare as dates, text case-insensitively. The SQL is
  written per database (PostgreSQL jsonb operators, SQLite json_type/json_extract).

Every condition compiles to a two-valued predicate (a missing or NULL value is FALSE, never SQL
NULL), so `neq`, `not_in`, `is_not_set` and `{"not": ...}` are exact complements: "custom.plan
neq gold" includes the contacts that have no plan.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from dataclasses import dataclass, field

from django.db.models import BooleanField, Exists, F, FloatField, Func, OuterRef, Q, TextField, Value
from django.db.models.lookups import (
    Contains,
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IsNull,
    LessThan,
    LessThanOrEqual,
    StartsWith,
)
from django.utils import timezone
from django.utils.dateparse import parse_date

from contacts.models import Channel, ContactTag
from contacts.normalize import NormalizationError, email_key, normalize_country, normalize_phone, normalize_tag
from contacts.querysets import (
    Casefold,
    q_channel_opted_in,
    q_opted_out_of,
    q_reachable_on,
    q_tagged_all,
    q_tagged_any,
    q_tagged_none,
    q_textable,
)
from contacts.validation import JSON_INT_RANGE, MAX_NUMBER, MAX_YEAR, MIN_YEAR, parse_moment, parse_number

from .querysets import q_in_any_list, q_member_of, q_member_of_all

MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_VALUES = 500
MAX_TOTAL_VALUES = 1000  # across all conditions of one rule set: 50 x 500 `in` values ran 23 s
MAX_DAYS = 36_500
# A numeric string, as custom-field rules read one (both databases agree). Bounded so that the
# PostgreSQL cast `::numeric` can never raise — an expression index (contacts.custom_fields) on
# a raising expression would make writes fail: ASCII digits and ASCII white space only (numeric_in
# refuses "5\u2003"; PostgreSQL's \s and Python's \d match more), at most 64 digits either side
# of the point and a 3-digit exponent (`1e999999` overflows numeric).
NUMBER_RE = re.compile(r"[ \t\n\r\f\v]*[-+]?([0-9]{1,64}(\.[0-9]{0,64})?|\.[0-9]{1,64})([eE][-+]?[0-9]{1,3})?[ \t\n\r\f\v]*")
PG_NUMBER_RE = f"^{NUMBER_RE.pattern}$"
PG_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
CUSTOM_KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,49}|[0-9]{1,18}")


class RuleError(ValueError):
    """Invalid rules. `path` points at the bad part (`rules[1].rules[0].operator`)."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


# --- the vocabulary ------------------------------------------------------------------------------
TEXT_OPS = ("eq", "neq", "in", "not_in", "contains", "starts_with", "is_set", "is_not_set")
CODE_OPS = ("eq", "neq", "in", "not_in", "is_set", "is_not_set")
BOOL_OPS = ("eq", "neq")
COMPARE_OPS = ("gt", "gte", "lt", "lte")
DATETIME_OPS = ("before", "after", *COMPARE_OPS, "within_last_days", "is_set", "is_not_set")
DATE_OPS = ("eq", "neq", *DATETIME_OPS)
SET_OPS = ("contains_any", "contains_all", "contains_none", "is_set", "is_not_set")
CUSTOM_OPS = (*TEXT_OPS, *COMPARE_OPS, "before", "after", "within_last_days")
OPERATORS = (
    "eq", "neq", "in", "not_in", "contains", "starts_with", "is_set", "is_not_set", "gt", "gte", "lt", "lte",
    "before", "after", "within_last_days", "contains_any", "contains_all", "contains_none",
)
NO_VALUE_OPS = ("is_set", "is_not_set")
NEGATIONS = {"neq": "eq", "not_in": "in", "is_not_set": "is_set"}


@dataclass(frozen=True)
class FieldSpec:
    kind: str  # text | code | bool | textable | datetime | date | user | tags | lists | channel | custom
    ops: tuple
    column: str = ""
    nullable: bool = False


def _text(column):
    return FieldSpec("text", TEXT_OPS, column)


FIELDS: dict[str, FieldSpec] = {
    **{name: _text(name) for name in (
        "first_name", "last_name", "display_name", "company", "address", "city", "timezone",
        "lifecycle_stage", "gender", "language", "external_id", "notes",
    )},
    "state": FieldSpec("code", CODE_OPS, "state"),
    "country": FieldSpec("code", CODE_OPS, "country"),
    "zip": FieldSpec("code", (*CODE_OPS, "starts_with"), "zip"),
    "phone": FieldSpec("code", (*CODE_OPS, "contains", "starts_with"), "phone", nullable=True),
    "email": FieldSpec("code", (*CODE_OPS, "contains", "starts_with"), "email_key", nullable=True),
    "is_test": FieldSpec("bool", BOOL_OPS, "is_test"),
    "opted_out": FieldSpec("bool", BOOL_OPS, "opted_out"),
    "is_textable": FieldSpec("textable", (*BOOL_OPS, "is_set", "is_not_set"), "is_textable", nullable=True),
    "created_at": FieldSpec("datetime", DATETIME_OPS, "created_at"),
    "updated_at": FieldSpec("datetime", DATETIME_OPS, "updated_at"),
    "opted_out_at": FieldSpec("datetime", DATETIME_OPS, "opted_out_at", nullable=True),
    "textable_checked_at": FieldSpec("datetime", DATETIME_OPS, "textable_checked_at", nullable=True),
    "birthday": FieldSpec("date", DATE_OPS, "birthday", nullable=True),
    "assignee": FieldSpec("user", CODE_OPS, "assignee_id", nullable=True),
    "tags": FieldSpec("tags", SET_OPS),
    "lists": FieldSpec("lists", SET_OPS),
    # Channels the contact may be messaged on now (contacts.querysets.q_reachable_on).
    "reachable_on": FieldSpec("reachable", ("eq", "contains_any", "contains_none")),
}
CHANNEL_SPEC = FieldSpec("channel", BOOL_OPS)
CUSTOM_SPEC = FieldSpec("custom", CUSTOM_OPS)
KIND_NAMES = {
    "text": "text", "code": "text", "bool": "true/false", "textable": "true | false | \"unknown\"",
    "datetime": "a date-time", "date": "a date", "user": "a user id", "tags": "tags", "lists": "list ids",
    "reachable": "channels",
    "channel": "true/false (opted in)", "custom": "a custom field",
}
# Operators by custom field definition type (CustomField.Type), checked when an org is known.
CUSTOM_TYPE_OPS = {
    "text": TEXT_OPS,
    "choice": TEXT_OPS,
    "number": ("eq", "neq", "in", "not_in", *COMPARE_OPS, "is_set", "is_not_set"),
    "date": ("eq", "neq", "in", "not_in", *COMPARE_OPS, "before", "after", "within_last_days", "is_set",
             "is_not_set"),
    "boolean": ("eq", "neq", "is_set", "is_not_set"),
}


def field_names() -> list[str]:
    return [*FIELDS, "channel.<sms|whatsapp|email|rcs|viber|voice>", "custom.<key>"]


# --- the parsed tree -----------------------------------------------------------------------------
@dataclass
class Group:
    op: str
    children: list


@dataclass
class Not:
    child: object


@dataclass
class Condition:
    path: str
    field: str
    spec: FieldSpec
    operator: str
    value: object = None
    key: str = ""  # channel name or custom field key
    value_kind: str = ""  # custom fields: text | number | date | bool (per value for in/not_in)
    extra: dict = field(default_factory=dict)


@dataclass
class _Budget:
    conditions: int = 0
    values: int = 0


def _join(path: str, part: str) -> str:
    if not path:
        return part
    return f"{path}{part}" if part.startswith("[") else f"{path}.{part}"


def _show(value) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 80 else text[:77] + "..."


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_iso_date(value) -> dt.date | None:
    if isinstance(value, str):
        return parse_date_safe(value.strip())
    return None


def parse_date_safe(text: str) -> dt.date | None:
    """An ISO date within the years contacts.validation allows, else None."""
    try:
        day = parse_date(text) if len(text) <= 64 else None
    except ValueError:
        return None
    return day if day is not None and MIN_YEAR <= day.year <= MAX_YEAR else None


def _as_moment(value) -> dt.date | dt.datetime | None:
    """An ISO date (a day) or an ISO datetime (naive = UTC), years MIN_YEAR..MAX_YEAR: a rule
    `created_at lte 9999-12-31` compares with the next day's start, which no datetime holds."""
    try:
        return parse_moment(value)
    except NormalizationError:
        return None


def _bounded_number(value) -> bool:
    """A JSON number within contacts.validation's bounds (|n| <= MAX_NUMBER): a 400-digit value
    would overflow the float the comparison is compiled with."""
    if not _is_number(value):
        return False
    try:
        parse_number(value)
    except NormalizationError:
        return False
    return True


def _parse(node, path: str, depth: int, budget: _Budget, region: str):
    where = path or "rules"
    if not isinstance(node, dict):
        raise RuleError(where, f"expected an object: a group {{\"op\", \"rules\"}}, a condition "
                               f"{{\"field\", \"operator\", \"value\"}} or {{\"not\": ...}}; got {_show(node)}")
    if depth > MAX_DEPTH and ("not" in node or "op" in node or "rules" in node):
        raise RuleError(where, f"groups and negations nest deeper than {MAX_DEPTH} levels")
    if "not" in node:
        extra = sorted(set(node) - {"not"})
        if extra:
            raise RuleError(where, f"a {{\"not\": ...}} node has no other keys (got {', '.join(extra)})")
        return Not(_parse(node["not"], _join(path, "not"), depth + 1, budget, region))
    if "op" in node or "rules" in node:
        extra = sorted(set(node) - {"op", "rules"})
        if extra:
            raise RuleError(_join(path, extra[0]), f"unknown key '{extra[0]}' in a group (keys: op, rules)")
        op = node.get("op", "and")
        if op not in ("and", "or"):
            raise RuleError(_join(path, "op"), f"unknown op {_show(op)}; use and | or")
        children = node.get("rules")
        if not isinstance(children, list):
            raise RuleError(_join(path, "rules"), f"expected a list of rules, got {_show(children)}")
        if not children and (path or op == "or"):
            raise RuleError(_join(path, "rules"), f"an empty '{op}' group; add a rule or remove the group")
        return Group(op, [_parse(child, _join(path, f"rules[{i}]"), depth + 1, budget, region)
                          for i, child in enumerate(children)])
    if "field" in node or "operator" in node:
        budget.conditions += 1
        if budget.conditions > MAX_CONDITIONS:
            raise RuleError(where, f"more than {MAX_CONDITIONS} conditions")
        cond = _parse_condition(node, path, region)
        if isinstance(cond.value, list):
            budget.values += len(cond.value)
            if budget.values > MAX_TOTAL_VALUES:
                raise RuleError(_join(path, "value"), f"the rules hold more than {MAX_TOTAL_VALUES} values in all "
                                                      "their conditions")
        return cond
    raise RuleError(where, f"expected a group {{\"op\", \"rules\"}}, a condition {{\"field\", \"operator\", "
                           f"\"value\"}} or {{\"not\": ...}}; got keys {', '.join(map(str, node)) or 'none'}")


def _parse_condition(node: dict, path: str, region: str) -> Condition:
    extra = sorted(set(node) - {"field", "operator", "value"})
    if extra:
        raise RuleError(_join(path, extra[0]), f"unknown key '{extra[0]}' in a condition (keys: field, operator, value)")
    name = node.get("field")
    if not isinstance(name, str) or not name:
        raise RuleError(_join(path, "field"), f"expected a field name, got {_show(name)}")
    key = ""
    if name in FIELDS:
        spec = FIELDS[name]
    elif name.startswith("channel."):
        spec, key = CHANNEL_SPEC, name.split(".", 1)[1]
        if key not in Channel.values:
            raise RuleError(_join(path, "field"), f"unknown channel '{key}' in {_show(name)}; channels: "
                                                  f"{', '.join(Channel.values)}")
    elif name.startswith("custom."):
        spec, key = CUSTOM_SPEC, name.split(".", 1)[1]
        if not CUSTOM_KEY_RE.fullmatch(key):
            raise RuleError(_join(path, "field"), f"{_show(name)}: a custom field key is lowercase letters, digits "
                                                  "and _ starting with a letter (or a custom field's id)")
    else:
        raise RuleError(_join(path, "field"), f"unknown field {_show(name)}; fields: {', '.join(field_names())}")
    operator = node.get("operator")
    if operator not in OPERATORS:
        raise RuleError(_join(path, "operator"), f"unknown operator {_show(operator)} "
                                                 f"(operators: {', '.join(OPERATORS)})")
    if operator not in spec.ops:
        raise RuleError(_join(path, "operator"), f"'{operator}' does not apply to the field '{name}' "
                                                 f"({KIND_NAMES[spec.kind]}); use {' | '.join(spec.ops)}")
    cond = Condition(path=path, field=name, spec=spec, operator=operator, key=key)
    _check_value(cond, node, region)
    return cond


def _value_error(cond: Condition, message: str, index: int | None = None):
    where = _join(cond.path, "value") if index is None else _join(_join(cond.path, "value"), f"[{index}]")
    return RuleError(where, f"{cond.field} {cond.operator} {message}")


def _check_value(cond: Condition, node: dict, region: str) -> None:
    op, kind = cond.operator, cond.spec.kind
    value = node.get("value")
    if op in NO_VALUE_OPS:
        if value is not None:
            raise _value_error(cond, f"takes no value (got {_show(value)})")
        return
    if "value" not in node:
        raise _value_error(cond, "needs a value")
    if op in ("in", "not_in", "contains_any", "contains_all", "contains_none"):
        limit = MAX_VALUES if op in ("in", "not_in") else 100
        if not isinstance(value, list) or not value:
            raise _value_error(cond, f"expects a non-empty list of values, got {_show(value)}")
        if len(value) > limit:
            raise _value_error(cond, f"takes at most {limit} values (got {len(value)})")
        items = [_scalar(cond, item, region, index=i) for i, item in enumerate(value)]
        cond.value = [item for item, _ in items]
        cond.extra["kinds"] = [item_kind for _, item_kind in items]
        return
    if op == "within_last_days":
        if not _bounded_number(value) or int(value) != value or not 1 <= value <= MAX_DAYS:
            raise _value_error(cond, f"expects a whole number of days from 1 to {MAX_DAYS}, got {_show(value)}")
        cond.value = int(value)
        return
    if op in ("before", "after", *COMPARE_OPS) and kind in ("datetime", "date"):
        moment = _as_moment(value)
        if moment is None or (kind == "date" and isinstance(moment, dt.datetime)):
            shape = "an ISO date (2024-03-01)" + (" or date-time (2024-03-01T09:30:00Z)" if kind == "datetime" else "")
            raise _value_error(cond, f"expects {shape}, got {_show(value)}")
        cond.value = moment
        return
    if kind == "custom" and op in ("before", "after"):
        day = _as_iso_date(value)
        if day is None:
            raise _value_error(cond, f"expects an ISO date (2024-03-01), got {_show(value)}")
        cond.value, cond.value_kind = day, "date"
        return
    if kind == "custom" and op in COMPARE_OPS:
        if _is_number(value):
            if not _bounded_number(value):
                raise _value_error(cond, f"compares numbers between -{MAX_NUMBER:.0e} and {MAX_NUMBER:.0e}, "
                                         f"got {_show(value)}")
            cond.value, cond.value_kind = value, "number"
            return
        day = _as_iso_date(value)
        if day is None:
            raise _value_error(cond, f"compares numbers or ISO dates (2024-03-01), got {_show(value)}")
        cond.value, cond.value_kind = day, "date"
        return
    if op in ("contains", "starts_with"):
        if not isinstance(value, str) or not value.strip():
            raise _value_error(cond, f"expects a non-empty string, got {_show(value)}")
        cond.value = _pattern(cond, value)  # not stripped: "starts_with 'Gold '" means the space
        cond.value_kind = "text"
        return
    cond.value, cond.value_kind = _scalar(cond, value, region)


def _pattern(cond: Condition, text: str) -> str:
    if cond.field == "phone":
        digits = re.sub(r"\D", "", text)
        if not digits:
            raise _value_error(cond, f"expects digits, got {_show(text)}")
        return "+" + digits if cond.operator == "starts_with" else digits
    if cond.field == "email":
        return email_key(text.strip())
    return text


def _scalar(cond: Condition, value, region: str, index: int | None = None) -> tuple[object, str]:
    """One value of eq/neq/in/not_in/contains_*: (normalized value, value kind)."""
    kind, name = cond.spec.kind, cond.field

    def bad(message):
        return _value_error(cond, message, index)

    if kind in ("text", "code"):
        if not isinstance(value, str) or not value.strip():
            raise bad(f"expects a non-empty string, got {_show(value)} (use is_set / is_not_set for emptiness)")
        text = value.strip()
        try:
            if name == "state":
                return text.upper(), "text"
            if name == "country":
                return normalize_country(text), "text"
            if name == "phone":
                return normalize_phone(text, region or "US").e164, "text"
            if name == "email":
                return email_key(text), "text"
        except NormalizationError as exc:
            raise bad(str(exc)) from None
        return text, "text"
    if kind in ("bool", "channel"):
        if not isinstance(value, bool):
            raise bad(f"expects true or false, got {_show(value)}")
        return value, "bool"
    if kind == "textable":
        if value not in (True, False, "unknown", None) or _is_number(value):
            raise bad(f"expects true, false or \"unknown\", got {_show(value)}")
        return {True: "true", False: "false"}.get(value, "unknown"), "text"
    if kind == "user":
        if not _is_number(value) or int(value) != value or not 1 <= value < JSON_INT_RANGE:
            raise bad(f"expects a user id (a positive whole number), got {_show(value)}")
        return int(value), "number"
    if kind == "date":
        day = _as_iso_date(value)
        if day is None:
            raise bad(f"expects an ISO date (2024-03-01), got {_show(value)}")
        return day, "date"
    if kind == "tags":
        if not isinstance(value, str):
            raise bad(f"expects tag names, got {_show(value)}")
        try:
            return normalize_tag(value), "text"
        except NormalizationError as exc:
            raise bad(str(exc)) from None
    if kind == "reachable":
        if value not in Channel.values:
            raise bad(f"expects a channel ({', '.join(Channel.values)}), got {_show(value)}")
        return value, "text"
    if kind == "lists":
        if not _is_number(value) or int(value) != value or not 1 <= value < JSON_INT_RANGE:
            raise bad(f"expects list ids (positive whole numbers), got {_show(value)}")
        return int(value), "number"
    # custom: the value's JSON type decides the comparison.
    if _is_number(value):
        if not _bounded_number(value):
            raise bad(f"expects a number between -{MAX_NUMBER:.0e} and {MAX_NUMBER:.0e}, got {_show(value)}")
        return value, "number"
    if isinstance(value, bool):
        return value, "bool"
    if isinstance(value, str) and value.strip():
        return value.strip(), "text"
    raise bad(f"expects text, a number or true/false, got {_show(value)}")


# --- validation ----------------------------------------------------------------------------------
def parse_rules(rules, *, region: str = "US"):
    """The rules as a tree of Group/Not/Condition; raises RuleError. No query."""
    return _parse(rules, "", 1, _Budget(), region)


def _conditions(node):
    if isinstance(node, Group):
        for child in node.children:
            yield from _conditions(child)
    elif isinstance(node, Not):
        yield from _conditions(node.child)
    else:
        yield node


def validate_rules(rules, *, org=None) -> None:
    """Raises RuleError (with the path of the bad rule) unless `rules` is a valid rule tree.

    Without `org`: structure, fields, operators and value types; no query. With `org`: also that
    every list id is one of the organization's lists and that custom field values suit the field's
    definition (type, choices) — one query each, only when rules use lists or custom fields.
    """
    tree = parse_rules(rules, region=getattr(org, "default_region", "US") or "US")
    if org is None:
        return
    conditions = list(_conditions(tree))
    list_conditions = [c for c in conditions if c.spec.kind == "lists" and c.value]
    if list_conditions:
        from .models import ContactList

        wanted = {i for c in list_conditions for i in c.value}
        found = set(ContactList.objects.for_org(org).filter(pk__in=wanted).values_list("pk", flat=True))
        for cond in list_conditions:
            for index, list_id in enumerate(cond.value):
                if list_id not in found:
                    raise _value_error(cond, f"refers to no list of yours: {list_id}", index)
    custom_conditions = [c for c in conditions if c.spec.kind == "custom"]
    if custom_conditions:
        from contacts.models import CustomField

        definitions = list(CustomField.objects.for_org(org))
        by_key = {d.key: d for d in definitions}
        by_id = {str(d.pk): d for d in definitions}
        for cond in custom_conditions:
            definition = by_id.get(cond.key) if cond.key.isdigit() else by_key.get(cond.key)
            if cond.key.isdigit() and definition is None:
                raise RuleError(_join(cond.path, "field"), f"no custom field has the id {cond.key}")
            if definition is not None:
                _check_custom_definition(cond, definition)


def _check_custom_definition(cond: Condition, definition) -> None:
    allowed = CUSTOM_TYPE_OPS.get(definition.type, TEXT_OPS)
    if cond.operator not in allowed:
        raise RuleError(_join(cond.path, "operator"), f"'{cond.operator}' does not apply to {cond.field} "
                                                      f"(a {definition.type} field); use {' | '.join(allowed)}")
    if cond.operator in NO_VALUE_OPS or cond.operator == "within_last_days":
        return
    values = cond.value if isinstance(cond.value, list) else [cond.value]
    kinds = cond.extra.get("kinds") or [cond.value_kind] * len(values)
    wanted = {"number": "number", "date": "date", "boolean": "bool"}.get(definition.type, "text")
    for index, (value, kind) in enumerate(zip(values, kinds, strict=True)):
        at = index if isinstance(cond.value, list) else None
        if wanted == "date" and kind == "text" and _as_iso_date(value) is not None:
            continue  # eq "2024-03-01" on a date field: dates are stored as ISO text
        if definition.type == "choice" and kind in ("text", "number"):
            if value not in (definition.choices or []) and str(value) not in map(str, definition.choices or []):
                raise _value_error(cond, f"{_show(value)} is not one of the choices "
                                         f"{', '.join(map(str, definition.choices or []))}", at)
            continue
        if kind != wanted:
            raise _value_error(cond, f"expects {'a ' if wanted != 'text' else ''}{wanted} value for this "
                                     f"{definition.type} field, got {_show(value)}", at)


# --- compilation ---------------------------------------------------------------------------------
class CustomValue(Func):
    """`custom_fields[key]` as SQL, typed: 'text' (a JSON string), 'number' (a JSON number or a
    numeric string), 'date' (the YYYY-MM-DD of an ISO date string), 'bool' (a JSON boolean) — NULL
    when absent or of another type — or 'present' (1 when set to a non-null, non-empty value, else 0).
    """

    output_fields = {"text": TextField, "number": FloatField, "date": TextField, "bool": BooleanField,
                     "present": FloatField}

    def __init__(self, key: str, kind: str):
        super().__init__(F("custom_fields"), output_field=self.output_fields[kind]())
        self.key, self.kind = key, kind

    def _column(self, compiler, connection):
        sql, params = compiler.compile(self.get_source_expressions()[0])
        if params:
            raise ValueError("custom_fields compiled with parameters")
        return sql

    def as_postgresql(self, compiler, connection, **extra):
        col, k = self._column(compiler, connection), self.key
        typeof = f"jsonb_typeof({col} -> %s)"
        text = f"({col} ->> %s)"
        if self.kind == "text":
            return f"(CASE WHEN {typeof} = 'string' THEN {text} END)", [k, k]
        if self.kind == "number":
            return (f"(CASE WHEN {typeof} = 'number' THEN {text}::numeric "
                    f"WHEN {typeof} = 'string' AND {text} ~ %s THEN trim({text})::numeric END)",
                    [k, k, k, k, PG_NUMBER_RE, k])
        if self.kind == "date":
            return (f"(CASE WHEN {typeof} = 'string' AND {text} ~ %s THEN left({text}, 10) END)",
                    [k, k, PG_DATE_RE, k])
        if self.kind == "bool":
            return f"(CASE WHEN {typeof} = 'boolean' THEN {text}::boolean END)", [k, k]
        return (f"(CASE WHEN {typeof} IS NULL OR {typeof} = 'null' OR {text} = '' THEN 0 ELSE 1 END)",
                [k, k, k])

    def as_sqlite(self, compiler, connection, **extra):
        col, path = self._column(compiler, connection), f'$."{self.key}"'
        typeof = f"json_type({col}, %s)"
        value = f"json_extract({col}, %s)"
        if self.kind == "text":
            return f"(CASE WHEN {typeof} = 'text' THEN {value} END)", [path, path]
        if self.kind == "number":
            # crm_number (segments.apps) reads numeric strings the way PG_NUMBER_RE does.
            return (f"(CASE WHEN {typeof} IN ('integer', 'real') THEN {value} "
                    f"WHEN {typeof} = 'text' THEN crm_number({value}) END)", [path, path, path, path])
        if self.kind == "date":
            return (f"(CASE WHEN {typeof} = 'text' AND {value} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' "
                    f"THEN substr({value}, 1, 10) END)", [path, path, path])
        if self.kind == "bool":
            return f"(CASE {typeof} WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)", [path]
        return (f"(CASE WHEN {typeof} IS NULL OR {typeof} = 'null' OR {value} = '' THEN 0 ELSE 1 END)",
                [path, path, path])

    def as_sql(self, compiler, connection, **extra):
        raise NotImplementedError(f"custom field rules support PostgreSQL and SQLite, not {connection.vendor}")


COMPARE_LOOKUPS = {"gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual,
                   "before": LessThan, "after": GreaterThan}


def _ci_equals(expression, text: str) -> Q:
    return Q(Exact(Casefold(expression), Casefold(Value(text))))


def _guarded(expression, lookup) -> Q:
    # A NULL would make NOT(...) NULL too, dropping the row from both a rule and its negation.
    return Q(IsNull(expression, False)) & Q(lookup)


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _moment_q(column: str, operator: str, value, *, is_datetime: bool) -> Q:
    """Comparison of a date/datetime column. A date against a datetime column means that whole
    UTC day: `after 2024-03-01` starts on the 2nd, `lte 2024-03-01` includes all of the 1st."""
    if is_datetime and not isinstance(value, dt.datetime):
        start, next_start = _day_start(value), _day_start(value + dt.timedelta(days=1))
        bound = {"gt": ("gte", next_start), "after": ("gte", next_start), "gte": ("gte", start),
                 "lt": ("lt", start), "before": ("lt", start), "lte": ("lt", next_start)}[operator]
        return Q(**{f"{column}__{bound[0]}": bound[1]})
    lookup = {"before": "lt", "after": "gt"}.get(operator, operator)
    return Q(**{f"{column}__{lookup}": value})


def _within_last_days(column: str, days: int, *, is_datetime: bool, now: dt.datetime) -> Q:
    if is_datetime:
        return Q(**{f"{column}__gte": now - dt.timedelta(days=days), f"{column}__lte": now})
    today = now.date()
    return Q(**{f"{column}__gte": today - dt.timedelta(days=days), f"{column}__lte": today})


def _compile_condition(cond: Condition, *, org, now: dt.datetime, custom_keys: dict) -> Q:
    op = cond.operator
    if op in NEGATIONS:
        positive = Condition(cond.path, cond.field, cond.spec, NEGATIONS[op], cond.value, cond.key,
                             cond.value_kind, cond.extra)
        return ~_compile_condition(positive, org=org, now=now, custom_keys=custom_keys)
    spec, value = cond.spec, cond.value
    kind, column = spec.kind, spec.column
    if kind == "text":
        if op == "eq":
            return _ci_equals(F(column), value)
        if op == "in":
            return _any(_ci_equals(F(column), item) for item in value)
        if op == "contains":
            return Q(Contains(Casefold(F(column)), Casefold(Value(value))))
        if op == "starts_with":
            return Q(StartsWith(Casefold(F(column)), Casefold(Value(value))))
        return ~Q(**{column: ""})  # is_set
    if kind == "code":
        guard = Q(**{f"{column}__isnull": False}) if spec.nullable else Q()
        if op == "eq":
            return guard & Q(**{column: value})
        if op == "in":
            return guard & Q(**{f"{column}__in": value})
        if op == "contains":
            return guard & Q(**{f"{column}__contains": value})
        if op == "starts_with":
            return guard & Q(**{f"{column}__startswith": value})
        return guard & ~Q(**{column: ""})  # is_set
    if kind == "bool":
        return Q(**{column: value})
    if kind == "textable":
        return q_textable(value) if op == "eq" else Q(is_textable__isnull=False)
    if kind in ("datetime", "date"):
        is_datetime = kind == "datetime"
        guard = Q(**{f"{column}__isnull": False})
        if op == "is_set":
            return guard
        if op == "within_last_days":
            return guard & _within_last_days(column, value, is_datetime=is_datetime, now=now)
        if op == "eq":
            return guard & Q(**{column: value})
        return guard & _moment_q(column, op, value, is_datetime=is_datetime)
    if kind == "user":
        guard = Q(**{f"{column}__isnull": False})
        if op == "eq":
            return guard & Q(**{column: value})
        if op == "in":
            return guard & Q(**{f"{column}__in": value})
        return guard
    if kind == "tags":
        if op == "contains_any":
            return q_tagged_any(value, org=org)
        if op == "contains_all":
            return q_tagged_all(value, org=org)
        if op == "contains_none":
            return q_tagged_none(value, org=org)
        return Q(Exists(ContactTag.objects.filter(contact=OuterRef("pk"))))
    if kind == "lists":
        if op == "contains_any":
            return q_member_of(value, org=org)
        if op == "contains_all":
            return q_member_of_all(value, org=org)
        if op == "contains_none":
            return ~q_member_of(value, org=org)
        return q_in_any_list(org=org)
    if kind == "channel":
        return q_channel_opted_in(cond.key) if value else q_opted_out_of(cond.key)
    if kind == "reachable":
        reachable = q_reachable_on([value] if op == "eq" else value)
        return ~reachable if op == "contains_none" else reachable
    return _compile_custom(cond, custom_keys.get(cond.key, cond.key), now=now)


def _any(qs) -> Q:
    return functools.reduce(operator.or_, qs)


def _custom_equals(key: str, value, value_kind: str) -> Q:
    if value_kind == "text":
        expression = CustomValue(key, "text")
        return _guarded(expression, Exact(Casefold(expression), Casefold(Value(value))))
    if value_kind == "number":
        expression = CustomValue(key, "number")
        return _guarded(expression, Exact(expression, float(value)))
    if value_kind == "date":
        expression = CustomValue(key, "date")
        return _guarded(expression, Exact(expression, value.isoformat()))
    expression = CustomValue(key, "bool")
    return _guarded(expression, Exact(expression, bool(value)))


def _compile_custom(cond: Condition, key: str, *, now: dt.datetime) -> Q:
    op, value = cond.operator, cond.value
    if op == "is_set":
        return Q(Exact(CustomValue(key, "present"), 1))
    if op == "eq":
        return _custom_equals(key, value, cond.value_kind)
    if op == "in":
        return _any(_custom_equals(key, item, kind) for item, kind in zip(value, cond.extra["kinds"], strict=True))
    if op in ("contains", "starts_with"):
        expression = CustomValue(key, "text")
        lookup = Contains if op == "contains" else StartsWith
        return _guarded(expression, lookup(Casefold(expression), Casefold(Value(value))))
    if op == "within_last_days":
        expression = CustomValue(key, "date")
        today = now.date()
        return (_guarded(expression, GreaterThanOrEqual(expression, (today - dt.timedelta(days=value)).isoformat()))
                & Q(LessThanOrEqual(expression, today.isoformat())))
    # gt/gte/lt/lte/before/after: numbers numerically, ISO dates as YYYY-MM-DD text (which sorts by date).
    if cond.value_kind == "number":
        expression = CustomValue(key, "number")
        return _guarded(expression, COMPARE_LOOKUPS[op](expression, float(value)))
    expression = CustomValue(key, "date")
    return _guarded(expression, COMPARE_LOOKUPS[op](expression, value.isoformat()))


def _compile_node(node, **context) -> Q:
    if isinstance(node, Group):
        parts = [_compile_node(child, **context) for child in node.children]
        if not parts:
            return Q()
        result = parts[0]
        for part in parts[1:]:
            result = (result & part) if node.op == "and" else (result | part)
        return result
    if isinstance(node, Not):
        return ~_compile_node(node.child, **context)
    return _compile_condition(node, **context)


def compile_rules(rules, *, org) -> Q:
    """The rules as one Q over Contact (apply it to `Contact.objects.for_org(org)`).

    Raises RuleError for invalid rules. Costs no query, except one to resolve custom fields named
    by their integer id and, on PostgreSQL, one to read the ids of the tags rules name. Lists of another organization match nobody (org-scoped subqueries).
    """
    tree = parse_rules(rules, region=org.default_region or "US")
    numeric_keys = {c.key for c in _conditions(tree) if c.spec.kind == "custom" and c.key.isdigit()}
    custom_keys = {}
    if numeric_keys:
        from contacts.models import CustomField

        custom_keys = {str(pk): key for pk, key in CustomField.objects.for_org(org)
                       .filter(pk__in=[int(k) for k in numeric_keys]).values_list("pk", "key")}
        for cond in _conditions(tree):
            if cond.spec.kind == "custom" and cond.key.isdigit() and cond.key not in custom_keys:
                raise RuleError(_join(cond.path, "field"), f"no custom field has the id {cond.key}")
    return _compile_node(tree, org=org, now=timezone.now(), custom_keys=custom_keys)


def count_plan(rules, *, org):
    """A segment's own exact count (a callable) when its rules are one tags or lists condition
    (any of, none of) or its negation — shapes whose generic COUNT visits every member's row
    (contacts.counting) — else None. Raises RuleError like compile_rules. No query."""
    from contacts.counting import count_rows, members_rows, tagged_any_rows

    node, negate = parse_rules(rules, region=org.default_region or "US"), False
    while isinstance(node, Not) or (isinstance(node, Group) and len(node.children) == 1):
        if isinstance(node, Not):
            node, negate = node.child, not negate
        else:
            node = node.children[0]
    if not isinstance(node, Condition) or node.spec.kind not in ("tags", "lists"):
        return None
    if node.operator not in ("contains_any", "contains_none"):
        return None
    negate ^= node.operator == "contains_none"  # contains_none compiles to ~contains_any
    values = node.value
    if node.spec.kind == "tags":
        return lambda: count_rows(tagged_any_rows(org=org, names=values), complement_of=org if negate else None)
    return lambda: count_rows(members_rows(org=org, list_ids=values), complement_of=org if negate else None)


def contacts_matching(rules, *, org):
    """The organization's contacts matching `rules`: a lazy queryset (one query when evaluated)."""
    from contacts.models import Contact

    return Contact.objects.for_org(org).filter(compile_rules(rules, org=org))


def segment_contacts(segment, *, org=None):
    """A segment's members now (rules are evaluated at query time: segments are dynamic)."""
    return contacts_matching(segment.rules, org=org or segment.organization)


def segment_queryset_for_param(queryset, raw_value, *, org):
    """`?segment=<id>` of the contacts list: `queryset` narrowed to the segment's members.

    A value that is not a whole number is a 400; an id the organization has no segment for
    (another organization's included) is a 404. One query for the segment.
    """
    from rest_framework.exceptions import NotFound, ValidationError

    from contacts.validation import parse_ascii_id

    from .models import Segment

    raw = str(raw_value).strip()
    segment_id = parse_ascii_id(raw)
    if segment_id is None:
        raise ValidationError({"segment": [f"'{raw}' is not a segment id (a whole number)."]})
    segment = Segment.objects.for_org(org).filter(pk=segment_id).first()
    if segment is None:
        raise NotFound(f"No segment with the id {raw}.")
    try:
        return queryset.filter(compile_rules(segment.rules, org=org))
    except RuleError as exc:
        raise ValidationError({"segment": [f"Segment {raw} has invalid rules, fix them first: {exc}"]}) from None
