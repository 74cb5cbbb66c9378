"""Every write to a contact goes through these functions (API, admin, imports, commands).

Each call validates nothing: the caller hands over normalized data (contacts.validation does
that for the API and the admin; imports normalize per row). Each writes its timeline events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .models import ChannelPreference, Contact, ContactEvent, ContactTag, Tag
from .normalize import email_key, normalize_tag, tag_key

MAX_CUSTOM_FIELDS = 20

# Plain fields a caller may set; consent, tags, custom fields and preferences have their own rules.
SIMPLE_FIELDS = [
    "phone", "email", "first_name", "last_name", "display_name", "company", "address", "city", "state",
    "zip", "country", "timezone", "lifecycle_stage", "gender", "avatar_url", "assignee", "is_test", "notes",
    "birthday", "language", "external_id", "secondary_phones", "secondary_emails",
]


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


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a staff user, an API key or a system process (an import)."""

    user: Any = None
    api_key: Any = None
    label: str = ""
    source: str = "api"  # ConsentSource: api | admin | import | keyword

    def event_fields(self) -> dict:
        return {
            "actor_user": self.user if getattr(self.user, "pk", None) else None,
            "actor_api_key": self.api_key,
            "actor_label": self.label[:100],
        }


def record_event(contact: Contact, kind: str, actor: Actor, data: dict | None = None, *, at=None) -> ContactEvent:
    return ContactEvent.objects.create(
        organization_id=contact.organization_id, contact=contact, kind=kind, data=data or {},
        created_at=at or timezone.now(), **actor.event_fields(),
    )


def _jsonable(value):
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "pk"):
        return value.pk
    return str(value)


# --- matching ----------------------------------------------------------------------------------
def contact_find_match(*, org, phone: str | None, email: str | None, lock: bool = False) -> Contact | None:
    """The contact with this phone, else with this email; raises MatchConflict when they differ.

    One query (two rows at most).
    """
    q = Q()
    if phone:
        q |= Q(phone=phone)
    if email:
        q |= Q(email_key=email_key(email))
    if not q:
        return None
    qs = Contact.objects.for_org(org).filter(q)
    if lock:
        qs = qs.select_for_update()
    found = list(qs[:2])
    by_phone = next((c for c in found if phone and c.phone == phone), None)
    by_email = next((c for c in found if email and c.email_key == email_key(email)), None)
    if by_phone and by_email and by_phone.pk != by_email.pk:
        raise MatchConflict(
            f"The phone {phone} belongs to contact {by_phone.pk} and the email {email} to contact {by_email.pk}.",
            phone_contact_id=str(by_phone.pk), email_contact_id=str(by_email.pk),
        )
    return by_phone or by_email


# --- tags --------------------------------------------------------------------------------------
def tags_ensure(*, org, names) -> list[Tag]:
    """The Tag rows for `names` (created as needed, first spelling kept). Two queries at most."""
    wanted: dict[str, str] = {}
    for name in names:
        clean = normalize_tag(name)
        wanted.setdefault(tag_key(clean), clean)
    if not wanted:
        return []
    existing = {t.key: t for t in Tag.objects.for_org(org).filter(key__in=list(wanted))}
    missing = [Tag(organization=org, name=name, key=key) for key, name in wanted.items() if key not in existing]
    if missing:
        # ignore_conflicts: a concurrent request may create the same tag; we re-read below.
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {t.key: t for t in Tag.objects.for_org(org).filter(key__in=list(wanted))}
    return [existing[key] for key in wanted]


def _tag_names(contact: Contact) -> list[str]:
    return sorted((t.name for t in contact.tags.all()), key=str.casefold)


def contact_add_tags(*, contact: Contact, names, actor: Actor, touch: bool = True, event: bool = True) -> list[str]:
    """Adds tags (duplicates ignored); returns the names actually added."""
    tags = tags_ensure(org=contact.organization, names=names)
    have = set(ContactTag.objects.filter(contact=contact, tag__in=tags).values_list("tag_id", flat=True))
    new = [t for t in tags if t.pk not in have]
    if not new:
        return []
    ContactTag.objects.bulk_create([ContactTag(contact=contact, tag=t) for t in new], ignore_conflicts=True)
    added = [t.name for t in new]
    if event:
        record_event(contact, ContactEvent.Kind.TAGS_ADDED, actor, {"tags": added})
    if touch:
        _touch(contact)
    return added


def contact_remove_tags(*, contact: Contact, names, actor: Actor, touch: bool = True) -> list[str]:
    keys = {tag_key(n) for n in names if str(n).strip()}
    links = ContactTag.objects.filter(contact=contact, tag__key__in=keys).select_related("tag")
    removed = [link.tag.name for link in links]
    if not removed:
        return []
    ContactTag.objects.filter(contact=contact, tag__key__in=keys).delete()
    record_event(contact, ContactEvent.Kind.TAGS_REMOVED, actor, {"tags": removed})
    if touch:
        _touch(contact)
    return removed


def _touch(contact: Contact):
    contact.updated_at = timezone.now()
    Contact.objects.filter(pk=contact.pk).update(updated_at=contact.updated_at)


# --- consent -----------------------------------------------------------------------------------
def _set_global_opt_out(contact: Contact, opted_out: bool, actor: Actor, now) -> bool:
    if bool(contact.opted_out) == opted_out:
        return False
    contact.opted_out = opted_out
    contact.opted_out_at = now if opted_out else None
    contact.opt_out_source = actor.source if opted_out else ""
    record_event(
        contact, ContactEvent.Kind.OPTED_OUT if opted_out else ContactEvent.Kind.OPTED_IN, actor,
        {"channel": None, "source": actor.source}, at=now,
    )
    return True


def contact_set_preferences(*, contact: Contact, preferences: dict[str, bool], actor: Actor, touch=True) -> dict:
    """Sets channel preferences; returns {channel: opted_in} for those that changed."""
    now = timezone.now()
    current = {p.channel: p for p in ChannelPreference.objects.filter(contact=contact)}
    changed = {}
    for channel, opted_in in preferences.items():
        pref = current.get(channel)
        before = pref.opted_in if pref else True  # no row means opted in
        if pref is None:
            if opted_in:
                continue
            ChannelPreference.objects.create(
                contact=contact, channel=channel, opted_in=False, changed_at=now, source=actor.source
            )
        elif pref.opted_in != opted_in:
            pref.opted_in, pref.changed_at, pref.source = opted_in, now, actor.source
            pref.save(update_fields=["opted_in", "changed_at", "source"])
        if before != opted_in:
            changed[channel] = opted_in
            record_event(
                contact, ContactEvent.Kind.OPTED_IN if opted_in else ContactEvent.Kind.OPTED_OUT, actor,
                {"channel": channel, "source": actor.source}, at=now,
            )
    if changed and touch:
        _touch(contact)
    return changed


def contact_opt_out(*, contact: Contact, actor: Actor, channel: str | None = None) -> bool:
    """Global opt-out (channel None) or one channel's. Returns whether anything changed."""
    if channel:
        return bool(contact_set_preferences(contact=contact, preferences={channel: False}, actor=actor))
    now = timezone.now()
    with transaction.atomic():
        if not _set_global_opt_out(contact, True, actor, now):
            return False
        contact.updated_at = now
        contact.save(update_fields=["opted_out", "opted_out_at", "opt_out_source", "updated_at"])
    return True


def contact_opt_in(*, contact: Contact, actor: Actor, channel: str | None = None) -> bool:
    if channel:
        return bool(contact_set_preferences(contact=contact, preferences={channel: True}, actor=actor))
    now = timezone.now()
    with transaction.atomic():
        if not _set_global_opt_out(contact, False, actor, now):
            return False
        contact.updated_at = now
        contact.save(update_fields=["opted_out", "opted_out_at", "opt_out_source", "updated_at"])
    return True


def opt_out_phone(*, org, phone: str | None, actor: Actor, channel: str | None = None,
                  email: str | None = None) -> tuple[Contact, bool]:
    """Opt out the contact with this (normalized) phone, or email, creating it if nobody has it.

    Returns (contact, created). A STOP from an unknown number must still be honoured later.
    """
    # lead: `email` (issue 11: POST /contacts/opt-out {"email"}) — the same rule for an address.
    with transaction.atomic():
        contact = contact_find_match(org=org, phone=phone, email=email, lock=True)
        created = contact is None
        if created:
            data = {"phone": phone} if phone else {"email": email}
            if channel:
                data["preferences"] = {channel: False}
            else:
                data["opted_out"] = True
            contact = contact_create(org=org, data=data, actor=actor)
        else:
            contact_opt_out(contact=contact, actor=actor, channel=channel)
    return contact, created


# --- create, update, merge ---------------------------------------------------------------------
def _apply_textability(contact: Contact, now) -> None:
    # The offline provider (the default) is cheap, so it answers inline on every phone change; a
    # network provider (TEXTABILITY_PROVIDER=twilio) leaves the fields empty and enqueues a lookup
    # after commit. contacts.textability holds both.
    from .textability import textability_apply

    textability_apply(contact, now)


def _merge_custom(current: dict, given: dict, overwrite: bool) -> dict:
    if overwrite:
        result = {k: v for k, v in given.items() if v is not None}
    else:
        result = dict(current)
        for key, value in given.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = value
    if len(result) > MAX_CUSTOM_FIELDS:
        raise ServiceError(
            f"A contact holds at most {MAX_CUSTOM_FIELDS} custom fields; this change would leave {len(result)}.",
            field="custom_fields",
        )
    return result


def contact_create(*, org, data: dict, actor: Actor, event: str = ContactEvent.Kind.CREATED) -> Contact:
    """Creates a contact from normalized data (no matching: see contact_create_or_merge)."""
    now = timezone.now()
    fields = {k: data[k] for k in SIMPLE_FIELDS if k in data and data[k] is not None}
    contact = Contact(organization=org, created_at=now, updated_at=now, **fields)
    contact.email_key = email_key(contact.email) if contact.email else None
    contact.custom_fields = _merge_custom({}, data.get("custom_fields") or {}, overwrite=True)
    if not contact.phone and not contact.email:
        raise ServiceError("A contact needs a phone or an email.", field="phone")
    if data.get("opted_out"):
        contact.opted_out, contact.opted_out_at, contact.opt_out_source = True, now, actor.source
    with transaction.atomic():
        _apply_textability(contact, now)  # inside: a network lookup is enqueued on commit
        try:
            with transaction.atomic():
                contact.save(force_insert=True)
        except IntegrityError:
            raise _duplicate_error(org, contact) from None
        record_event(contact, event, actor, {"fields": sorted(fields)}, at=now)
        if contact.opted_out:
            record_event(contact, ContactEvent.Kind.OPTED_OUT, actor, {"channel": None, "source": actor.source}, at=now)
        if data.get("tags"):
            contact_add_tags(contact=contact, names=data["tags"], actor=actor, touch=False)
        if data.get("preferences"):
            contact_set_preferences(contact=contact, preferences=data["preferences"], actor=actor, touch=False)
    return contact


def _duplicate_error(org, contact: Contact) -> ServiceError:
    other = contact_find_match_safely(org, contact.phone, contact.email)
    which = "phone" if other and contact.phone and other.phone == contact.phone else "email"
    value = contact.phone if which == "phone" else contact.email
    return DuplicateConflict(
        f"Another contact ({other.pk if other else 'unknown'}) already has the {which} {value}.",
        field=which, contact_id=str(other.pk) if other else None,
    )


def contact_find_match_safely(org, phone, email):
    try:
        return contact_find_match(org=org, phone=phone, email=email)
    except MatchConflict:
        return Contact.objects.for_org(org).filter(phone=phone).first()


def contact_update(
    *, contact: Contact, data: dict, actor: Actor, overwrite_custom: bool = False, tags_mode: str = "replace",
    event: str = ContactEvent.Kind.UPDATED,
) -> dict:
    """Applies the fields present in `data`; returns {field: [old, new]} of what changed.

    Omitted fields are untouched. `tags` replace the set (tags_mode="add": added). Custom fields
    merge (None deletes a key) unless overwrite_custom. `opted_out` is applied only when present:
    an update never opts a contact back in unless it says `opted_out: false`.
    """
    now = timezone.now()
    org = contact.organization
    changes: dict[str, list] = {}
    with transaction.atomic():
        new_phone = data.get("phone", contact.phone) if "phone" in data else contact.phone
        new_email = data.get("email", contact.email) if "email" in data else contact.email
        if ("phone" in data and new_phone != contact.phone) or ("email" in data and new_email != contact.email):
            clash = Q(pk__in=[])
            if new_phone and new_phone != contact.phone:
                clash |= Q(phone=new_phone)
            if new_email and new_email != contact.email:
                clash |= Q(email_key=email_key(new_email))
            for other in Contact.objects.for_org(org).exclude(pk=contact.pk).filter(clash)[:1]:
                which = "phone" if new_phone and other.phone == new_phone else "email"
                raise MatchConflict(
                    f"Another contact ({other.pk}) already has the {which} "
                    f"{new_phone if which == 'phone' else new_email}.",
                    field=which, contact_id=str(other.pk),
                )
        if not new_phone and not new_email:
            raise ServiceError("A contact needs a phone or an email; this change would remove both.", field="phone")
        for name in SIMPLE_FIELDS:
            if name not in data:
                continue
            value = data[name]
            if value is None and name not in {"phone", "email", "birthday", "assignee"}:
                value = [] if name.startswith("secondary_") else ("" if name != "is_test" else False)
            old = getattr(contact, name)
            if old != value:
                changes[name] = [_jsonable(old), _jsonable(value)]
                setattr(contact, name, value)
        if "email" in changes:
            contact.email_key = email_key(contact.email) if contact.email else None
        if "phone" in changes:
            _apply_textability(contact, now)
        if "custom_fields" in data:
            merged = _merge_custom(contact.custom_fields or {}, data["custom_fields"] or {}, overwrite_custom)
            if merged != (contact.custom_fields or {}):
                changes["custom_fields"] = [contact.custom_fields, merged]
                contact.custom_fields = merged
        consent_changed = False
        if "opted_out" in data and data["opted_out"] is not None:
            consent_changed = _set_global_opt_out(contact, bool(data["opted_out"]), actor, now)
        if changes or consent_changed:
            contact.updated_at = now
            try:
                with transaction.atomic():
                    contact.save()
            except IntegrityError:
                raise _duplicate_error(org, contact) from None
        if changes:
            record_event(contact, event, actor, {"changes": {k: v for k, v in changes.items()}}, at=now)
        if "tags" in data and data["tags"] is not None:
            if tags_mode == "add":
                added = contact_add_tags(contact=contact, names=data["tags"], actor=actor, touch=False)
                if added:
                    changes["tags"] = {"added": added}
            else:
                wanted = {tag_key(normalize_tag(n)) for n in data["tags"]}
                current = {tag_key(n): n for n in _tag_names(contact)}
                removed = contact_remove_tags(
                    contact=contact, names=[n for k, n in current.items() if k not in wanted], actor=actor, touch=False
                )
                added = contact_add_tags(contact=contact, names=data["tags"], actor=actor, touch=False)
                if added or removed:
                    changes["tags"] = {"added": added, "removed": removed}
        if data.get("preferences"):
            prefs = contact_set_preferences(contact=contact, preferences=data["preferences"], actor=actor, touch=False)
            if prefs:
                changes["preferences"] = prefs
        if ("tags" in changes or "preferences" in changes) and contact.updated_at != now:
            _touch(contact)
    return changes


def contact_create_or_merge(*, org, data: dict, actor: Actor) -> tuple[Contact, str]:
    """Creates a contact, or merges into the one with the same phone (else email).

    Returns (contact, "created" | "merged"). Merging: fields given win, tags are added, custom
    fields merge. Raises MatchConflict when the phone and the email belong to two contacts.
    """
    for attempt in range(2):
        try:
            with transaction.atomic():
                match = contact_find_match(org=org, phone=data.get("phone"), email=data.get("email"), lock=True)
                if match is None:
                    return contact_create(org=org, data=data, actor=actor), "created"
                contact_update(contact=match, data=data, actor=actor, tags_mode="add", event=ContactEvent.Kind.MERGED)
                return match, "merged"
        except DuplicateConflict:
            # A concurrent create of the same phone/email won the race: merge into it instead.
            if attempt == 0:
                continue
            raise
    raise AssertionError("unreachable")


def contact_delete(*, contact: Contact, actor: Actor) -> None:
    contact.delete()


def contacts_delete_where(queryset) -> int:
    """Deletes the contacts of `queryset` and everything that hangs off them, set-based.

    A constant number of DELETE ... WHERE contact_id IN (subquery) statements, whatever the
    count: Django's collector would load every contact into memory first.
    """
    ids = queryset.values("pk")
    with transaction.atomic():
        for relation in Contact._meta.related_objects:
            if relation.one_to_many and relation.on_delete.__name__ == "CASCADE":
                related = relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": ids})
                related._raw_delete(related.db)
        count = queryset.count()
        queryset.model._base_manager.filter(pk__in=ids)._raw_delete(queryset.db)
    return count
