"""The contact write engine: one set of rules for one contact and for a million.

Callers hand over a batch of *normalized* rows (contacts.validation for the API and the admin,
imports.normalize_row for files) and an Actor; `upsert_contacts` matches, plans and writes the
whole batch set-based:

- `POST /contacts` (merge on create) and the admin's add: a batch of one
  (`contacts.services.contact_create_or_merge`);
- `POST /contacts/bulk`: up to 1,000 rows in one call;
- imports: one call per chunk of folded groups (`imports.pipeline.ChunkWriter`).

The rules, written once (design §0, issue 9):
- match by phone, then email; a phone of one contact and an email of another is a conflict
  naming both ids;
- fields given win; an empty value never clears;
- matching never moves a primary phone or email: a different incoming one is kept in
  `secondary_phones` / `secondary_emails` (only an update by id sets the primary:
  `set_primary` below, called by contacts.services.contact_update);
- tags are added (case-insensitively, first spelling kept); custom fields merge;
- at most MAX_CUSTOM_FIELDS custom fields and MAX_SECONDARY secondary phones / emails: over a
  limit, a strict caller (the API) gets a ServiceError for the row and nothing of it is written;
  an import gets a `LimitIssue` (a warning naming the column) and the rest of the row lands;
- nobody is ever opted back in: `opted_out: false` and `{"sms": true}` are ignored here (only an
  explicit opt-in call by id, or a START keyword, opts in);
- textability through the configured provider: inline when it is offline, else one batch of
  queued lookups per JOB_BATCH contacts after commit;
- one `created` / `merged` (API) or `imported` (import) event per contact written, with
  `{field: [old, new]}` for the fields it changed, plus the consent events.

Costs: one match query, one tag query, one preference query, then a constant number of
statements per batch (COPY on PostgreSQL, bulk_create / bulk_update elsewhere); no query per
row. On PostgreSQL the engine writes `tag_ids` itself (the tag trigger stands aside).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import pgcopy
from .models import ChannelPreference, Contact, ContactEvent, ContactTag, uuid7
from .normalize import email_key as make_email_key
from .normalize import normalize_tag, tag_key
from .search import DOCUMENT_FIELDS, search_document

MAX_CUSTOM_FIELDS = 20
MAX_SECONDARY = 20

# The plain fields a row may carry, in the order the API documents them.
SIMPLE_FIELDS = [
    "phone", "email", "first_name", "last_name", "display_name", "company", "address", "city", "state",
    "zip", "country", "timezone", "lifecycle_stage", "gender", "avatar_url", "assignee", "is_test", "notes",
    "birthday", "language", "external_id", "secondary_phones", "secondary_emails",
]
SECONDARY_OF = {"phone": "secondary_phones", "email": "secondary_emails"}
# What the engine reads of a matched contact (attnames).
LOADED = ["id", *[("assignee_id" if f == "assignee" else f) for f in SIMPLE_FIELDS], "email_key", "custom_fields",
          "opted_out", "opted_out_at", "opt_out_source", "is_textable", "textable_checked_at", "created_at",
          "updated_at", "search_doc"]
# Derived columns: written with the row, never reported as a change.
DERIVED = ("id", "email_key", "opted_out_at", "opt_out_source", "created_at", "updated_at", "is_textable",
           "textable_checked_at", "search_doc")


UPDATABLE = [n for n in LOADED if n not in ("id", "created_at")]
# The fields a merge reports as changes, phone and email first.
COMPARED = [n for n in ("phone", "email", *[n for n in LOADED if n not in ("phone", "email")]) if n not in DERIVED]
# A new contact's values before the row's own: the model's defaults, every concrete column (a
# COPY leaves none to the database, which knows no Django default).
def _model_defaults() -> dict:
    return {f.attname: f.get_default() for f in Contact._meta.concrete_fields
            if f.attname not in ("id", "organization_id")}


class ServiceError(Exception):
    """A write the data model refuses; `field` names the culprit, `code` is the API error code."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, **extra):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra


class MatchConflict(ServiceError):
    """The phone belongs to one contact and the email to another."""

    code = "conflict"


class DuplicateConflict(MatchConflict):
    """The database refused a duplicate phone/email (a concurrent write got there first)."""


class LimitExceeded(ServiceError):
    """A write would leave a contact over one of the engine's limits."""


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a staff user, an API key or a system process (an import)."""

    user: Any = None
    api_key: Any = None
    label: str = ""
    source: str = "api"  # ConsentSource: api | admin | import | keyword | suppression
    evidence: dict | None = None  # for the consent ledger: a keyword's message, an import id

    def event_fields(self) -> dict:
        return {
            "actor_user": self.user if getattr(self.user, "pk", None) else None,
            "actor_api_key": self.api_key,
            "actor_label": self.label[:100],
        }

    def event_ids(self) -> tuple:
        """(actor_user_id, actor_api_key_id, actor_label) for set-based event rows."""
        return (getattr(self.user, "pk", None), getattr(self.api_key, "pk", None), self.label[:100])


@dataclass
class LimitIssue:
    """What a non-strict caller (an import) reports as a warning: the field and why."""

    field: str
    message: str
    value: str = ""


def jsonable(value):
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "pk"):
        return value.pk
    return str(value)


# --- the rules, on plain values ----------------------------------------------------------------
def keep_aside(values: dict, name: str, value, issues: list, *, primary=None) -> bool:
    """Adds `value` to the secondary list `name` unless it is there already or is the primary;
    over MAX_SECONDARY it is left out with a LimitIssue. Returns whether the list grew."""
    current = list(values.get(name) or [])
    same = (lambda a, b: make_email_key(a) == make_email_key(b)) if name == "secondary_emails" else (
        lambda a, b: a == b)
    if primary and same(value, primary):
        return False
    if any(same(value, v) for v in current):
        return False
    if len(current) >= MAX_SECONDARY:
        issues.append(LimitIssue(name, f"a contact keeps at most {MAX_SECONDARY} {name.replace('_', ' ')}: "
                                       f"{value} left out", str(value)))
        return False
    values[name] = current + [value]
    return True


def _keep_all_aside(values: dict, name: str, items, issues: list) -> None:
    """keep_aside for each of a row's secondary phones (or emails), next to the row's primary
    (`values` holds the row's phone and email already: SIMPLE_FIELDS lists them first)."""
    primary = values.get("phone" if name == "secondary_phones" else "email")
    for item in items:
        keep_aside(values, name, item, issues, primary=primary)


def merge_custom_fields(current: dict, given: dict, *, overwrite: bool = False) -> dict:
    """The custom fields after a write: given values win, None deletes a key (`overwrite`
    replaces them all). Raises LimitExceeded over MAX_CUSTOM_FIELDS."""
    if overwrite:
        result = {k: v for k, v in given.items() if v is not None}
    else:
        result = dict(current or {})
        for key, value in given.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = value
    if len(result) > MAX_CUSTOM_FIELDS:
        raise LimitExceeded(
            f"A contact holds at most {MAX_CUSTOM_FIELDS} custom fields; this change would leave {len(result)}.",
            field="custom_fields",
        )
    return result


def set_primary(values: dict, name: str, new) -> None:
    """An update by id sets the primary phone or email: the old one is kept as a secondary
    (the first rule's only exception), and the new one leaves the secondary list."""
    old = values.get(name)
    aside = SECONDARY_OF[name]
    same = make_email_key if name == "email" else (lambda v: v)
    rest = [v for v in (values.get(aside) or []) if not (new and same(v) == same(new))]
    if old and new and same(old) != same(new) and all(same(v) != same(old) for v in rest):
        if len(rest) >= MAX_SECONDARY:
            raise LimitExceeded(f"A contact keeps at most {MAX_SECONDARY} {aside.replace('_', ' ')}; the old "
                                f"{name} {old} has no room left: remove one first.", field=aside)
        rest.append(old)
    values[name] = new
    values[aside] = rest


def _given(value) -> bool:
    return value is not None and value != "" and value != []


def _incoming(data: dict) -> dict:
    """A row as the engine reads it: attnames, dates as dates, the email key derived, empty
    values dropped (an empty value never clears)."""
    row = {}
    for name in SIMPLE_FIELDS:
        if name not in data:
            continue
        value = data[name]
        if name == "assignee":
            if value is not None:
                row["assignee_id"] = getattr(value, "pk", value)
            continue
        if name == "birthday" and isinstance(value, str) and value:
            value = dt.date.fromisoformat(value)
        if name == "is_test":
            if value is not None:
                row[name] = bool(value)
            continue
        if _given(value):
            row[name] = value
    if row.get("email"):
        row["email_key"] = make_email_key(row["email"])
    return row


@dataclass
class Planned:
    """What the engine decided for one input row, and (after the write) the contact's id."""

    index: int
    outcome: str = "unchanged"  # created | updated | unchanged | skipped | error
    contact_id: uuid.UUID | None = None
    changes: dict = field(default_factory=dict)  # field -> [old, new] (JSON values)
    fields: list = field(default_factory=list)  # a create's fields
    tags_added: list = field(default_factory=list)
    opt_outs: list = field(default_factory=list)  # None = global, else channel names
    issues: list = field(default_factory=list)  # LimitIssue (non-strict callers)
    error: ServiceError | None = None
    values: dict | None = None  # the contact's row after the write (attnames)
    before: dict = field(default_factory=dict)  # changed fields' old values (provenance)
    reason: str = ""  # why a row was skipped
    suppressed: Any = None  # a new contact's suppression scope ("all" or channels)

    @property
    def written(self) -> bool:
        return self.outcome in ("created", "updated", "restored")


class _Batch:
    """The state of one engine call: matched rows, planned creates and updates."""

    def __init__(self, org, actor, *, mode, strict, now):
        self.org, self.actor, self.mode, self.strict, self.now = org, actor, mode, strict, now
        self.by_phone: dict[str, dict] = {}
        self.by_email: dict[str, dict] = {}
        self.tag_keys: dict = {}  # contact id -> set of tag keys it has (or will have)
        self.prefs: dict = {}  # contact id -> {channel: opted_in}, as planned
        self.stored_prefs: set = set()  # (contact id, channel) rows in the database
        self.contacts: dict = {}  # contact id -> {"values", "created", "plans"}
        self.defaults = _model_defaults()
        self.suppression: dict = {}  # (kind, value) -> scope, from contacts.consent

    def load(self, rows: list[dict], lock: bool):
        phones = {r["phone"] for r in rows if r.get("phone")}
        keys = {r["email_key"] for r in rows if r.get("email_key")}
        if not phones and not keys:
            return
        from .consent import suppressions_lookup_bulk

        # The trash is matched too: a re-create restores the contact (its consent as it was)
        # instead of colliding with the unique phone / email.
        qs = Contact.objects.for_org(self.org, trashed=True).filter(Q(phone__any=list(phones)) | Q(email_key__any=list(keys)))
        if lock and connection.features.has_select_for_update:
            qs = qs.select_for_update()
        found = list(qs.values(*LOADED, "deleted_at"))
        self.suppression = suppressions_lookup_bulk(org=self.org, phones=phones, emails=keys)
        for values in found:
            self._index(values)
        ids = [v["id"] for v in found]
        if ids:
            for contact_id, key in ContactTag.objects.filter(contact_id__any=ids).values_list("contact_id", "tag__key"):
                self.tag_keys.setdefault(contact_id, set()).add(key)
            for contact_id, channel, opted_in in ChannelPreference.objects.filter(contact_id__any=ids).values_list(
                    "contact_id", "channel", "opted_in"):
                self.prefs.setdefault(contact_id, {})[channel] = opted_in
                self.stored_prefs.add((contact_id, channel))

    def _index(self, values):
        if values.get("phone"):
            self.by_phone[values["phone"]] = values
        if values.get("email_key"):
            self.by_email[values["email_key"]] = values

    def match(self, row: dict) -> dict | None:
        by_phone = self.by_phone.get(row["phone"]) if row.get("phone") else None
        by_email = self.by_email.get(row["email_key"]) if row.get("email_key") else None
        if by_phone is not None and by_email is not None and by_phone["id"] != by_email["id"]:
            raise MatchConflict(
                f"The phone {row['phone']} belongs to contact {by_phone['id']} and the email {row['email']} "
                f"to contact {by_email['id']}.",
                field="phone", phone_contact_id=str(by_phone["id"]), email_contact_id=str(by_email["id"]),
            )
        return by_phone or by_email

    # -- planning -------------------------------------------------------------------------
    def plan(self, index: int, data: dict) -> Planned:
        plan = Planned(index=index)
        row = _incoming(data)
        if not row.get("phone") and not row.get("email"):
            plan.outcome, plan.error = "error", ServiceError("A contact needs a phone or an email.", field="phone")
            return plan
        try:
            current = self.match(row)
        except MatchConflict as exc:
            plan.outcome, plan.error = "error", exc
            return plan
        trashed = current is not None and current.get("deleted_at") is not None
        if (current is None and self.mode == "update_only") or (
                current is not None and not trashed and self.mode == "create_only"):
            plan.outcome, plan.reason = "skipped", "unknown contact" if current is None else "existing contact"
            if current is not None:
                plan.contact_id = current["id"]
            return plan
        try:
            if current is None:
                self._plan_create(plan, row, data)
            else:
                self._plan_merge(plan, current, row, data)
                if trashed:
                    plan.outcome = "restored"
                    current["deleted_at"] = None  # later rows of the batch merge into a live contact
                    self.contacts[current["id"]]["restored"] = True
                    current["updated_at"] = plan.values["updated_at"] = self.now
        except LimitExceeded as exc:
            plan.outcome, plan.error = "error", exc
        return plan

    def _limit(self, plan: Planned, exc: LimitExceeded):
        if self.strict:
            raise exc
        plan.issues.append(LimitIssue(exc.field or "", exc.message))

    def _plan_create(self, plan: Planned, row: dict, data: dict):
        values = {**self.defaults, "custom_fields": {}, "secondary_phones": [], "secondary_emails": [],
                  "tag_ids": []}
        issues: list = []
        for name, value in row.items():
            if name in SECONDARY_OF.values():
                _keep_all_aside(values, name, value, issues)
            else:
                values[name] = value
        for issue in issues:
            self._limit(plan, LimitExceeded(issue.message, field=issue.field))
        if data.get("custom_fields"):
            given_custom = {k: v for k, v in data["custom_fields"].items() if v is not None}
            try:
                values["custom_fields"] = merge_custom_fields({}, given_custom)
            except LimitExceeded as exc:
                self._limit(plan, exc)
                values["custom_fields"] = {k: given_custom[k] for k in sorted(given_custom)[:MAX_CUSTOM_FIELDS]}
        values["id"] = uuid7()
        values["created_at"] = values["updated_at"] = self.now
        values["search_doc"] = search_document(values)
        if data.get("opted_out"):
            values.update(opted_out=True, opted_out_at=self.now, opt_out_source=self.actor.source)
            plan.opt_outs.append(None)
        if "preferences" in data or "opt_out_channels" in data:
            plan.opt_outs += self._channel_opt_outs(data, {})
        if self.suppression:
            self._suppress(plan, values)
        if data.get("tags"):
            plan.tags_added = self._new_tags(values["id"], data["tags"])
        plan.outcome, plan.contact_id, plan.values = "created", values["id"], values
        plan.fields = sorted(k for k, v in data.items() if k not in ("email_key", "opt_out_channels") and _given(v)
                             and v is not False)
        self.contacts[values["id"]] = {"values": values, "created": True, "phone_set": bool(values.get("phone"))}
        self._index(values)

    def _suppress(self, plan: Planned, values: dict):
        """A new contact whose phone or email is on the suppression list starts opted out with
        the entry's scope (source "suppression"); contacts.consent writes its rows."""
        from .consent import suppression_scope_of

        scope = suppression_scope_of(self.suppression, values.get("phone"), values.get("email_key"))
        if scope is None:
            return
        if scope == "all":
            if values["opted_out"]:
                return  # the row's own opt-out already says it
            values.update(opted_out=True, opted_out_at=self.now, opt_out_source="suppression")
        else:
            plan.opt_outs = [ch for ch in plan.opt_outs if ch not in scope]  # written once, as the suppression's
        plan.suppressed = scope

    def _plan_merge(self, plan: Planned, current: dict, row: dict, data: dict):
        entry = self.contacts.setdefault(current["id"], {"values": current, "created": False, "phone_set": False,
                                                          "before": {}})
        values = dict(current)
        issues: list = []
        for name, value in row.items():
            if name == "email_key":
                continue
            if name in SECONDARY_OF:
                if not values.get(name):
                    values[name] = value
                    if name == "email":
                        values["email_key"] = row["email_key"]
                elif (make_email_key(value) if name == "email" else value) != (
                        values["email_key"] if name == "email" else values[name]):
                    # Matched by the other key while it has another one: the row's value is one more
                    # of the contact's, kept aside; replacing the primary would make two rows sharing
                    # an email flip the phone on every import of the same file.
                    keep_aside(values, SECONDARY_OF[name], value, issues, primary=values[name])
            elif name in SECONDARY_OF.values():
                _keep_all_aside(values, name, value, issues)
            else:
                values[name] = value
        for issue in issues:
            self._limit(plan, LimitExceeded(issue.message, field=issue.field))
        if data.get("custom_fields"):
            try:
                values["custom_fields"] = merge_custom_fields(current.get("custom_fields") or {},
                                                              data["custom_fields"])
            except LimitExceeded as exc:
                self._limit(plan, exc)
        if data.get("opted_out") and not values.get("opted_out"):
            values.update(opted_out=True, opted_out_at=self.now, opt_out_source=self.actor.source)
            plan.opt_outs.append(None)
        plan.opt_outs += self._channel_opt_outs(data, self.prefs.setdefault(current["id"], {}))
        plan.tags_added = self._new_tags(current["id"], data.get("tags") or [])
        changes = {}
        for name in COMPARED:
            if values.get(name) != current.get(name):
                label = "assignee" if name == "assignee_id" else name
                changes[label] = [jsonable(current.get(name)), jsonable(values.get(name))]
                entry["before"].setdefault(name, current.get(name))
        if "phone" in changes:
            entry["phone_set"] = True
        if any(name in changes for name in DOCUMENT_FIELDS):
            values["search_doc"] = search_document(values)
        plan.contact_id, plan.values, plan.changes = current["id"], values, changes
        plan.outcome = "updated" if (changes or plan.opt_outs or plan.tags_added) else "unchanged"
        if plan.outcome == "updated":
            values["updated_at"] = self.now
        entry["values"] = values
        current.clear()
        current.update(values)  # later rows of the batch see this row's result
        self._index(current)

    def _channel_opt_outs(self, data: dict, current_prefs: dict) -> list[str]:
        """Channels this row opts out of that are not opted out yet; an opt-in is never taken."""
        wanted = {ch for ch, opted_in in (data.get("preferences") or {}).items() if opted_in is False}
        wanted |= set(data.get("opt_out_channels") or [])
        out = sorted(ch for ch in wanted if current_prefs.get(ch, True))
        for ch in out:
            current_prefs[ch] = False
        return out

    def _new_tags(self, contact_id, names) -> list[str]:
        have = self.tag_keys.setdefault(contact_id, set())
        added = []
        for name in names:
            clean = normalize_tag(name)
            key = tag_key(clean)
            if key not in have:
                have.add(key)
                added.append(clean)
        return added


def upsert_contacts(*, org, rows: list[dict], actor: Actor, mode: str = "create_update", strict: bool = False,
                    dry_run: bool = False, event_kind: str | None = None, event_data: dict | None = None,
                    lock: bool = True) -> list[Planned]:
    """Creates or merges every row (see the module docstring); returns one Planned per row.

    `event_kind` None writes `created` / `merged` events (the API); "imported" writes that kind
    with `event_data` (the import id) and the outcome. `strict` turns limit issues into a row
    error (the API). `dry_run` plans and writes nothing. Raises DuplicateConflict when a
    concurrent write took a phone or email the batch meant to create: the caller re-plans.
    """
    now = timezone.now()
    batch = _Batch(org, actor, mode=mode, strict=strict, now=now)
    incoming = [_incoming(r) for r in rows]
    with transaction.atomic():
        batch.load(incoming, lock=lock and not dry_run)
        plans = []
        for index, data in enumerate(rows):
            plans.append(batch.plan(index, data))
        if not dry_run:
            _write(batch, plans, event_kind=event_kind, event_data=event_data or {})
    return plans



# --- rows that change nothing, recognized in SQL (PostgreSQL) --------------------------------------
# The row keys the comparison knows, each with its contact column. A staged row holding any
# other key (an assignee, preferences, an email whose key is compared instead, ...) is never
# recognized here and goes through the planner.
_AS_ROW = [*[n for n in SIMPLE_FIELDS if n not in ("email", "assignee")], "email_key", "opted_out"]


def unchanged_condition(row: str, contact: str) -> str:
    """SQL that is true when merging `row` (a jsonb expression of one normalized row, shaped as
    normalize_record's data) into the live contact aliased `contact` would leave it unchanged:
    the planner (`_Batch._plan_merge`) would write nothing and add no tag or opt-out.

    It restates `_plan_merge`'s outcome, not its rules, and only where the two agree by
    construction; anything it does not recognize makes it false, and the row then goes through
    the planner as before. Each given value must equal the contact's (phone, names, birthday,
    ...); the email is compared by its key (a different spelling of the same address changes
    nothing); the secondary phones and emails, tags (by their exact names) and opt-out channels
    must all be among the contact's already; an opt-out must be one the contact has; each given
    custom field must hold the same JSON value. The caller also makes sure the row matched this
    contact alone (match by phone, else by email) and that no other row of its batch touches it.
    `tests/imports/test_unchanged_sql.py` runs the engine's cases through both.
    """
    from .models import ChannelPreference, ContactTag, Tag

    fields = {f.name: f.column for f in Contact._meta.concrete_fields}
    pairs = ", ".join(f"'{name}', {contact}.{fields[name]}" for name in _AS_ROW)
    link, tag, pref = ContactTag._meta.db_table, Tag._meta.db_table, ChannelPreference._meta.db_table
    tags = (f"CASE WHEN {row} ? 'tags' THEN (SELECT coalesce(jsonb_agg(t.name), '[]'::jsonb) FROM {link} ct "
            f"JOIN {tag} t ON t.id = ct.tag_id WHERE ct.contact_id = {contact}.id) END")
    channels = (f"CASE WHEN {row} ? 'opt_out_channels' THEN (SELECT coalesce(jsonb_agg(p.channel), '[]'::jsonb) "
                f"FROM {pref} p WHERE p.contact_id = {contact}.id AND NOT p.opted_in) END")
    state = f"jsonb_build_object({pairs}, 'tags', {tags}, 'opt_out_channels', {channels})"
    custom = (f"NOT EXISTS (SELECT 1 FROM jsonb_each(coalesce({row} -> 'custom_fields', '{{}}'::jsonb)) AS e "
              f"WHERE {contact}.custom_fields -> e.key IS DISTINCT FROM e.value)")
    return f"(({row} - 'email' - 'custom_fields') <@ {state} AND {custom})"


# --- writing -------------------------------------------------------------------------------------
def _write(batch: _Batch, plans: list[Planned], *, event_kind, event_data):
    from . import textability
    from .services import tags_ensure

    org, now = batch.org, batch.now
    written = [p for p in plans if p.written]
    if not written:
        return
    creates = [e for e in batch.contacts.values() if e["created"]]
    updates = [e for e in batch.contacts.values() if not e["created"] and e["values"]["updated_at"] == now]
    provider = textability.get_provider()
    lookups = []
    for entry in creates + updates:
        values = entry["values"]
        if entry["phone_set"]:
            if provider.inline:
                values["is_textable"] = provider.lookup(values["phone"]).textable
                values["textable_checked_at"] = now
            else:
                values["is_textable"] = values["textable_checked_at"] = None
                lookups.append(values["id"])
    # tags: ensured first, so a new contact's tag ids go in with its own row
    names = {name for p in written for name in p.tags_added}
    tags = {t.key: t for t in tags_ensure(org=org, names=names)} if names else {}
    links = {}
    for p in written:
        for name in p.tags_added:
            links.setdefault(p.contact_id, []).append(tags[tag_key(name)].pk)
    pg = connection.vendor == "postgresql"
    with pgcopy.own_tag_ids():
        if creates:
            for entry in creates:
                entry["values"]["tag_ids"] = sorted(links.get(entry["values"]["id"], []))
            _insert_contacts(org, [e["values"] for e in creates], pg)
        if updates:
            _update_contacts([e["values"] for e in updates], pg)
        if links:
            _insert_rows(ContactTag, ("contact_id", "tag_id"),
                         [(cid, tid) for cid, ids in links.items() for tid in ids], pg)
            if pg:
                pgcopy.resync_tag_ids([cid for cid in links if not batch.contacts[cid]["created"]])
    _write_preferences(batch, written, pg)
    _write_events(batch, written, tags, event_kind=event_kind, event_data=event_data, pg=pg)
    _write_consent(batch, written, event_data)
    if lookups:
        ids = [str(i) for i in lookups]
        transaction.on_commit(lambda: textability.textability_schedule(ids))


def _insert_contacts(org, rows: list[dict], pg: bool):
    columns = [f.attname for f in Contact._meta.concrete_fields]
    for values in rows:
        values["organization_id"] = org.pk
    if pg:
        pgcopy.copy_rows(Contact, columns, ([v[c] for c in columns] for v in rows))
    else:
        Contact.objects.bulk_create([Contact(**{c: v[c] for c in columns}) for v in rows], batch_size=500)





def _update_contacts(rows: list[dict], pg: bool):
    if pg:
        pgcopy.update_rows(Contact, ["id", *UPDATABLE], ([r[n] for n in ["id", *UPDATABLE]] for r in rows))
    else:
        objects = [Contact(**{c: v[c] for c in LOADED}) for v in rows]
        Contact.objects.bulk_update(objects, UPDATABLE, batch_size=500)


def _insert_rows(model, columns, rows, pg: bool):
    if not rows:
        return
    if pg:
        pgcopy.copy_rows(model, columns, rows)
    else:
        model.objects.bulk_create([model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=500)


def _write_preferences(batch: _Batch, plans: list[Planned], pg: bool):
    now, source = batch.now, batch.actor.source
    new, flipped = [], []
    for p in plans:
        for channel in p.opt_outs:
            if channel is None:
                continue
            if (p.contact_id, channel) not in batch.stored_prefs:
                new.append((p.contact_id, channel, False, now, source))
            else:
                flipped.append((p.contact_id, channel))
    _insert_rows(ChannelPreference, ("contact_id", "channel", "opted_in", "changed_at", "source"), new, pg)
    if flipped:
        q = Q(pk__in=[])
        for contact_id, channel in flipped:
            q |= Q(contact_id=contact_id, channel=channel)
        ChannelPreference.objects.filter(q).update(opted_in=False, changed_at=now, source=source)


def _write_consent(batch: _Batch, plans: list[Planned], event_data: dict):
    """The trash and consent side of a write (contacts.trash, contacts.consent): restored
    contacts leave the trash, every opt-out gets its ledger row, suppressed new contacts their
    preference rows, ledger rows and events. A constant number of statements."""
    from . import consent, trash

    actor = batch.actor
    user_id, key_id, label = actor.event_ids()
    who = {"at": batch.now, "actor_user_id": user_id, "actor_api_key_id": key_id, "actor_label": label}
    restored = [p.contact_id for p in plans if p.outcome == "restored"]
    if restored:
        trash.contacts_restore_bulk(org_id=batch.org.pk, contact_ids=restored, **who)
    evidence = {**(actor.evidence or {}), **event_data}
    consent.consent_record_bulk(org_id=batch.org.pk, rows=[
        (p.contact_id, channel, False, actor.source, evidence) for p in plans for channel in p.opt_outs], **who)
    consent.suppressions_apply_bulk(org_id=batch.org.pk, items=[
        (p.contact_id, p.suppressed) for p in plans if p.suppressed is not None], **who)


def _write_events(batch: _Batch, plans: list[Planned], tags: dict, *, event_kind, event_data, pg: bool):
    org, now, actor = batch.org, batch.now, batch.actor
    user_id, key_id, label = actor.event_ids()
    tail = (org.pk, now, user_id, key_id, label)
    events = []
    for p in plans:
        if p.outcome == "created":
            kind = event_kind or ContactEvent.Kind.CREATED
            data = {"fields": p.fields, **({"tags": p.tags_added} if p.tags_added else {})}
        else:
            kind = event_kind or ContactEvent.Kind.MERGED
            data = {"changes": dict(p.changes)}
            if p.tags_added:
                data["changes"]["tags"] = {"added": p.tags_added}
        if event_kind:
            data = {**event_data, "outcome": p.outcome, **data}
            if p.outcome == "updated":
                data["fields"] = sorted([*p.changes, *(["tags"] if p.tags_added else [])])
        if p.outcome == "created" or data.get("changes") or event_kind:
            events.append((p.contact_id, kind, data, *tail))
        for channel in p.opt_outs:
            events.append((p.contact_id, ContactEvent.Kind.OPTED_OUT.value,
                           {"channel": channel, "source": actor.source, **event_data}, *tail))
    _insert_rows(ContactEvent, ("contact_id", "kind", "data", "organization_id", "created_at", "actor_user_id",
                                "actor_api_key_id", "actor_label"), events, pg)


def duplicate_error(org, phone, email) -> DuplicateConflict:
    """The error for a database refusal of a duplicate phone or email (a concurrent write)."""
    other = None
    if phone:
        other = Contact.objects.for_org(org).filter(phone=phone).only("id", "phone").first()
    which = "phone" if other else "email"
    if other is None and email:
        other = Contact.objects.for_org(org).filter(email_key=make_email_key(email)).only("id").first()
    value = phone if which == "phone" else email
    return DuplicateConflict(
        f"Another contact ({other.pk if other else 'unknown'}) already has the {which} {value}.",
        field=which, contact_id=str(other.pk) if other else None,
    )


def upsert_with_retry(**kwargs) -> list[Planned]:
    """upsert_contacts, planned again when a concurrent write created one of the batch's
    phones or emails first (the unique constraint refuses the COPY): the second plan merges
    into the contact that now exists."""
    for attempt in range(3):
        try:
            return upsert_contacts(**kwargs)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
