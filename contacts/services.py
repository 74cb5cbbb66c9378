"""Every write to a contact goes through these functions (API, admin, imports, commands).

Each call validates nothing: the caller hands over normalized data (contacts.validation does
that for the API and the admin; imports normalize per row). Each writes its timeline events.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .consent import consent_record
from .models import ChannelPreference, Contact, ContactEvent, ContactTag, Tag
from .normalize import email_key, normalize_tag, tag_key

# The write engine owns the rules and the limits; they are re-exported for the callers of the
# single-contact services.
from .upsert import (  # noqa: F401
    MAX_CUSTOM_FIELDS,
    MAX_SECONDARY,
    SECONDARY_OF,
    SIMPLE_FIELDS,
    Actor,
    DuplicateConflict,
    LimitExceeded,
    MatchConflict,
    ServiceError,
    duplicate_error,
    merge_custom_fields,
    set_primary,
    upsert_contacts,
    upsert_with_retry,
)
from .upsert import jsonable as _jsonable


def _trash():
    # contacts.trash builds on this module; imported when first needed.
    from . import trash

    return trash


def record_event(contact: Contact, kind: str, actor: Actor, data: dict | None = None, *, at=None) -> ContactEvent:
    return ContactEvent.objects.create(
        organization_id=contact.organization_id, contact=contact, kind=kind, data=data or {},
        created_at=at or timezone.now(), **actor.event_fields(),
    )




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
    qs = Contact.objects.for_org(org, trashed=True).filter(q)  # lead: consent hook: matching sees the trash
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
    consent_record(contact=contact, channel=None, opted_in=not opted_out, actor=actor, at=now)
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
            consent_record(contact=contact, channel=channel, opted_in=opted_in, actor=actor, at=now)
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
    for attempt in range(2):  # lead: opt-out race (the same retry as contact_create_or_merge)
        try:
            with transaction.atomic():
                contact = contact_find_match(org=org, phone=phone, email=email, lock=True)
                if contact is not None and contact.deleted_at is not None:  # a trashed match comes back
                    _trash().contact_restore(contact=contact, actor=actor)
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
        except DuplicateConflict:
            # A concurrent opt-out (or create) of this phone won the race: opt that contact out.
            if attempt == 0:
                continue
            raise
    raise AssertionError("unreachable")


# --- create, update, merge ---------------------------------------------------------------------
def _apply_textability(contact: Contact, now) -> None:
    # The offline provider (the default) is cheap, so it answers inline on every phone change; a
    # network provider (TEXTABILITY_PROVIDER=twilio) leaves the fields empty and enqueues a lookup
    # after commit. contacts.textability holds both.
    from .textability import textability_apply

    textability_apply(contact, now)


def contact_create_or_restore(*, org, data: dict, actor: Actor) -> tuple[Contact, str]:
    """Creates a contact from normalized data through the write engine. A phone or email of a
    trashed contact restores that contact ("restored", its consent exactly as it was, the
    given fields merged in); one of a live contact is a DuplicateConflict (no merging: see
    contact_create_or_merge). Returns (contact, "created" | "restored")."""
    try:
        plan = upsert_contacts(org=org, rows=[data], actor=actor, mode="create_only", strict=True)[0]
    except IntegrityError:
        raise duplicate_error(org, data.get("phone"), data.get("email")) from None
    if plan.error:
        raise plan.error
    if plan.outcome == "skipped":
        raise duplicate_error(org, data.get("phone"), data.get("email"))
    return Contact.objects.get(pk=plan.contact_id), plan.outcome


def contact_create(*, org, data: dict, actor: Actor) -> Contact:
    return contact_create_or_restore(org=org, data=data, actor=actor)[0]


def contact_update(
    *, contact: Contact, data: dict, actor: Actor, overwrite_custom: bool = False, tags_mode: str = "replace",
    event: str = ContactEvent.Kind.UPDATED,
) -> dict:
    """An explicit update of one contact by id; returns {field: [old, new]} of what changed.

    Omitted fields are untouched. A new phone or email becomes the primary and the old one is
    kept as a secondary (upsert.set_primary: only an update by id moves a primary). `tags`
    replace the set (tags_mode="add": added). Custom fields merge (None deletes a key) unless
    overwrite_custom. `opted_out` is applied only when present: an update never opts a contact
    back in unless it says `opted_out: false`.
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
            # lead: consent hook: a trashed contact's phone/email is still taken
            for other in Contact.objects.for_org(org, trashed=True).exclude(pk=contact.pk).filter(clash)[:1]:
                which = "phone" if new_phone and other.phone == new_phone else "email"
                raise MatchConflict(
                    f"Another contact ({other.pk}) already has the {which} "
                    f"{new_phone if which == 'phone' else new_email}.",
                    field=which, contact_id=str(other.pk),
                )
        if not new_phone and not new_email:
            raise ServiceError("A contact needs a phone or an email; this change would remove both.", field="phone")
        values = {name: getattr(contact, name) for name in SIMPLE_FIELDS}
        for name in SIMPLE_FIELDS:
            if name not in data or name in SECONDARY_OF:
                continue
            value = data[name]
            if value is None and name not in {"birthday", "assignee"}:
                value = [] if name.startswith("secondary_") else ("" if name != "is_test" else False)
            values[name] = value
        for name in SECONDARY_OF:
            if name in data and data[name] != getattr(contact, name):
                set_primary(values, name, data[name])
        for name, value in values.items():
            old = getattr(contact, name)
            if old != value:
                changes[name] = [_jsonable(old), _jsonable(value)]
                setattr(contact, name, value)
        if "email" in changes:
            contact.email_key = email_key(contact.email) if contact.email else None
        if "phone" in changes:
            _apply_textability(contact, now)
        if "custom_fields" in data:
            merged = merge_custom_fields(contact.custom_fields or {}, data["custom_fields"] or {},
                                         overwrite=overwrite_custom)
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
                raise duplicate_error(org, contact.phone, contact.email) from None
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
    """Creates a contact, or merges into the one with the same phone (else email): the write
    engine with a batch of one (contacts.upsert holds the rules).

    Returns (contact, "created" | "merged" | "restored": a match in the trash comes back with its
    consent exactly as it was). Raises MatchConflict when the phone and the email belong to two
    contacts, LimitExceeded over a limit.
    """
    try:
        plan = upsert_with_retry(org=org, rows=[data], actor=actor, strict=True)[0]
    except IntegrityError:
        raise duplicate_error(org, data.get("phone"), data.get("email")) from None
    if plan.error:
        raise plan.error
    outcome = plan.outcome if plan.outcome in ("created", "restored") else "merged"
    return Contact.objects.get(pk=plan.contact_id), outcome


def contact_delete(*, contact: Contact, actor: Actor) -> None:
    """Deleting means the trash (contacts.trash): restorable until purged."""
    _trash().contact_trash(contact=contact, actor=actor)  # lead: consent hook: delete means trash


def contacts_delete_where(queryset) -> int:
    """Deletes for good (the purge: contacts.trash calls it after writing suppressions) the contacts of `queryset` and everything that hangs off them, set-based.

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
