"""Merging existing contacts into one (issue 11: POST /contacts/{id}/merge, the admin's "Merge
selected contacts").

The rule, once:
- fields: the survivor's non-empty values win, the others fill its empty ones (primary phone and
  email included); the others' remaining phones and emails become the survivor's secondaries;
- tags, list memberships, channel preferences and timeline events move to the survivor;
- consent: the most restrictive wins — an opt-out anywhere (global or per channel) stays one, and
  nothing is ever opted back in;
- custom fields merge (the survivor's keys win), within MAX_CUSTOM_FIELDS;
- the others are deleted; the survivor's `merged` event keeps a full snapshot of each.

The writes go through contacts.services (contact_update: fields, custom fields, consent, tags,
preferences and their events), so merging adds no second copy of those rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from .models import ChannelPreference, ConsentRecord, Contact, ContactEvent
from .services import SIMPLE_FIELDS, Actor, ServiceError, _jsonable, contact_update, record_event
from .upsert import MAX_SECONDARY, merge_custom_fields

MERGE_MAX = 20  # contacts folded into one per call
# Fields a merge fills from the others; the addresses get their own rule (secondaries).
FILL_FIELDS = [name for name in SIMPLE_FIELDS if name not in {"secondary_phones", "secondary_emails", "is_test"}]


@dataclass
class MergeResult:
    survivor: Contact  # with its tags, preferences and list memberships loaded
    merged_ids: list[str]
    changes: dict = field(default_factory=dict)


class _DryRun(Exception):
    pass


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def contact_snapshot(contact: Contact) -> dict:
    """Everything a deleted contact held, as JSON: its fields, tags, preferences and lists."""
    data = {f.name: _jsonable(getattr(contact, f.attname)) for f in contact._meta.concrete_fields
            if f.name not in {"organization", "email_key", "tag_ids"}}
    data["id"] = str(contact.pk)
    data["tags"] = sorted(t.name for t in contact.tags.all())
    data["preferences"] = {p.channel: p.opted_in for p in contact.preferences.all()}
    data["lists"] = sorted(m.list_id for m in contact.list_memberships.all())
    return data


def _merge_addresses(primary, secondaries: list, candidates: list) -> list:
    out = [a for a in secondaries if a != primary]
    for address in candidates:
        if address and address != primary and address not in out:
            out.append(address)
    return out


def contacts_merge(*, survivor: Contact, others: list[Contact], actor: Actor, dry_run: bool = False) -> MergeResult:
    """Folds `others` into `survivor` (all of one organization) by the rule above.

    Returns the survivor as it now is (with `dry_run`: as it would be — everything is done in a
    transaction that is then rolled back, so the answer is exactly what a real merge writes).
    Raises ServiceError when the merge would break a limit (secondaries, custom fields). Queries:
    about a dozen plus a few per other contact.
    """
    others = [o for o in others if o.pk != survivor.pk]
    if not others:
        raise ServiceError("Give at least one other contact to merge.", field="contact_ids")
    if len(others) > MERGE_MAX:
        raise ServiceError(f"At most {MERGE_MAX} contacts per merge (got {len(others)}).", field="contact_ids")
    if any(o.organization_id != survivor.organization_id for o in others):
        raise ServiceError("Contacts of another organization cannot be merged.", field="contact_ids")
    result = None
    try:
        with transaction.atomic():
            result = _merge(survivor, others, actor)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return result


def _merge(survivor: Contact, others: list[Contact], actor: Actor) -> MergeResult:
    ids = [survivor.pk, *[o.pk for o in others]]
    locked = {c.pk: c for c in Contact.objects.select_for_update().filter(pk__in=ids)
              .prefetch_related("tags", "preferences", "list_memberships")}
    survivor = locked[survivor.pk]
    # Oldest first: when two others could fill a field, the older one's value wins.
    others = sorted((locked[o.pk] for o in others if o.pk in locked), key=lambda c: (c.created_at, str(c.pk)))
    snapshots = [contact_snapshot(o) for o in others]

    data: dict = {}
    for name in FILL_FIELDS:
        if _empty(getattr(survivor, name)):
            value = next((getattr(o, name) for o in others if not _empty(getattr(o, name))), None)
            if value is not None:
                data[name] = value
    phone, email = data.get("phone", survivor.phone), data.get("email", survivor.email)
    phones = [p for o in others for p in [o.phone, *o.secondary_phones]]
    emails = [e for o in others for e in [o.email, *o.secondary_emails]]
    secondary_phones = _merge_addresses(phone, list(survivor.secondary_phones), phones)
    secondary_emails = _merge_addresses(email, list(survivor.secondary_emails), emails)
    for name, value in (("secondary_phones", secondary_phones), ("secondary_emails", secondary_emails)):
        if len(value) > MAX_SECONDARY:
            raise ServiceError(f"The merged contact would hold {len(value)} {name.replace('_', ' ')}; "
                               f"at most {MAX_SECONDARY}.", field="contact_ids")
        if value != list(getattr(survivor, name)):
            data[name] = value

    custom: dict = {}
    for other in reversed(others):  # the older ones last, so they win among the others
        custom.update(other.custom_fields or {})
    merged_custom = merge_custom_fields(custom, survivor.custom_fields or {})
    if merged_custom != (survivor.custom_fields or {}):
        data["custom_fields"] = merged_custom

    # Consent: the most restrictive wins; only opt-outs are carried over, never an opt-in.
    if any(o.opted_out for o in others) and not survivor.opted_out:
        data["opted_out"] = True
    have_out = {p.channel for p in survivor.preferences.all() if not p.opted_in}
    opt_outs = {p.channel: False for o in others for p in o.preferences.all() if not p.opted_in}
    opt_outs = {ch: v for ch, v in opt_outs.items() if ch not in have_out}
    if opt_outs:
        data["preferences"] = opt_outs
    tags = [t.name for o in others for t in o.tags.all()]
    if tags:
        data["tags"] = tags
    survivor_opted_out_at = survivor.opted_out_at
    earliest_out = min((o.opted_out_at for o in others if o.opted_out and o.opted_out_at), default=None)

    # Move what hangs off the others before deleting them (their phone and email must be free
    # before the survivor takes them).
    from segments.models import ListMembership

    in_lists = {m.list_id for m in survivor.list_memberships.all()}
    moved_lists = []
    for other in others:
        for membership in other.list_memberships.all():
            if membership.list_id not in in_lists:
                in_lists.add(membership.list_id)
                moved_lists.append(membership.pk)
    ListMembership.objects.filter(pk__in=moved_lists).update(contact=survivor)
    ContactEvent.objects.filter(contact_id__in=[o.pk for o in others]).update(contact=survivor)
    # The consent ledger is the person's: it follows them to the survivor (otherwise the delete
    # below would leave it detached, without even a suppression hash to find it by).
    ConsentRecord.objects.filter(contact_id__in=[o.pk for o in others]).update(contact=survivor)
    ChannelPreference.objects.filter(contact_id__in=[o.pk for o in others]).delete()
    Contact.objects.filter(pk__in=[o.pk for o in others]).delete()

    changes = contact_update(contact=survivor, data=data, actor=actor, tags_mode="add")
    if data.get("opted_out") and earliest_out and survivor_opted_out_at is None:
        # The person opted out when the other record did: keep that moment, not the merge's.
        Contact.objects.filter(pk=survivor.pk).update(opted_out_at=earliest_out)
    merged_ids = [str(o.pk) for o in others]
    record_event(survivor, ContactEvent.Kind.MERGED, actor,
                 {"merged_ids": merged_ids, "snapshots": snapshots, "changes": _jsonable_changes(changes)})
    # Load the related rows now, for the API (with_related) and the admin's page (the prefetch):
    # a dry run's rollback must not take them away from the answer.
    survivor = (Contact.objects.with_related().prefetch_related("tags", "preferences", "list_memberships")
                .get(pk=survivor.pk))
    return MergeResult(survivor=survivor, merged_ids=merged_ids, changes=changes)


def _jsonable_changes(changes: dict) -> dict:
    out = {}
    for key, value in changes.items():
        if isinstance(value, list):
            out[key] = [_jsonable(v) for v in value]
        else:
            out[key] = value
    return out
