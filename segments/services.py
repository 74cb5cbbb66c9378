"""Every write to list membership goes through these functions (API, admin action, imports).

Set-based: a call costs a constant number of queries whatever the number of contacts (one bulk
insert of memberships, one of timeline events). Adding or removing list members does not change
a contact's `updated_at`: the contact's representation does not show its lists.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from contacts.models import Contact, ContactEvent
from contacts.services import Actor, ServiceError

from .models import ContactList, ListMembership

MAX_IDS_PER_CALL = 1000


def _event(contact_list: ContactList, contact_id, kind: str, actor: Actor, at, **data) -> ContactEvent:
    return ContactEvent(
        organization_id=contact_list.organization_id, contact_id=contact_id, kind=kind,
        data={"list_id": contact_list.pk, "list": contact_list.name, **data}, created_at=at, **actor.event_fields(),
    )


def _clean_ids(contact_list: ContactList, contact_ids) -> list[uuid.UUID]:
    """The ids as UUIDs, deduplicated, all of them contacts of the list's organization.

    Raises ServiceError(field="contact_ids") naming the malformed, unknown or foreign ids (another
    organization's contact gets the same answer as a nonexistent one). One query.
    """
    if not isinstance(contact_ids, (list, tuple)):
        raise ServiceError('Expected a list of contact ids: {"contact_ids": ["..."]}.', field="contact_ids")
    if len(contact_ids) > MAX_IDS_PER_CALL:
        raise ServiceError(f"At most {MAX_IDS_PER_CALL} contact_ids per call (got {len(contact_ids)}).",
                           field="contact_ids")
    ids, malformed = [], []
    for raw in contact_ids:
        try:
            ids.append(raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw)))
        except ValueError:
            malformed.append(str(raw))
    if malformed:
        raise ServiceError(f"Not contact ids: {_listing(malformed)}.", field="contact_ids")
    ids = list(dict.fromkeys(ids))
    found = set(Contact.objects.for_org(contact_list.organization_id).filter(pk__in=ids).values_list("pk", flat=True))
    unknown = [str(i) for i in ids if i not in found]
    if unknown:
        raise ServiceError(f"No contact with the id{'s' if len(unknown) > 1 else ''} {_listing(unknown)}.",
                           field="contact_ids", unknown_ids=unknown)
    return ids


def _listing(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _lock(contact_list: ContactList) -> None:
    # Serializes adds/removes on one list, so "who was not yet a member" stays true until our insert
    # and each contact gets exactly one list_added event even when two requests add it at once.
    ContactList.objects.select_for_update().filter(pk=contact_list.pk).values_list("pk", flat=True).first()


def list_add_members(*, contact_list: ContactList, contact_ids, actor: Actor) -> tuple[int, int]:
    """Adds contacts (≤1000 ids of the list's organization) to the list.

    Returns (added, already_members). Raises ServiceError naming bad ids; nothing is added then.
    Writes one `list_added` event per contact actually added. Five queries whatever the count.
    """
    ids = _clean_ids(contact_list, contact_ids)
    now = timezone.now()
    with transaction.atomic():
        _lock(contact_list)
        present = set(ListMembership.objects.filter(list=contact_list, contact_id__in=ids)
                      .values_list("contact_id", flat=True))
        new = [i for i in ids if i not in present]
        ListMembership.objects.bulk_create(
            [ListMembership(list=contact_list, contact_id=i, added_at=now) for i in new], ignore_conflicts=True
        )
        ContactEvent.objects.bulk_create([_event(contact_list, i, ContactEvent.Kind.LIST_ADDED, actor, now)
                                          for i in new])
    return len(new), len(ids) - len(new)


def list_remove_members(*, contact_list: ContactList, contact_ids, actor: Actor) -> tuple[int, int]:
    """Removes contacts (≤1000 ids of the list's organization) from the list; the contacts stay.

    Returns (removed, not_members). Raises ServiceError naming bad ids. Writes one `list_removed`
    event per contact actually removed. Five queries whatever the count.
    """
    ids = _clean_ids(contact_list, contact_ids)
    now = timezone.now()
    with transaction.atomic():
        _lock(contact_list)
        members = ListMembership.objects.filter(list=contact_list, contact_id__in=ids)
        removed = list(members.values_list("contact_id", flat=True))
        if removed:
            ListMembership.objects.filter(list=contact_list, contact_id__in=removed).delete()
            ContactEvent.objects.bulk_create([_event(contact_list, i, ContactEvent.Kind.LIST_REMOVED, actor, now)
                                              for i in removed])
    return len(removed), len(ids) - len(removed)


def list_add_queryset(*, contact_list: ContactList, queryset, actor: Actor) -> tuple[int, int]:
    """Adds every contact of `queryset` (the list's organization only) in calls of 1000 ids.

    Returns (added, already_members). Used by the admin action, whose selection may span pages.
    Five queries per 1000 contacts, plus one to read the ids.
    """
    ids = list(queryset.filter(organization_id=contact_list.organization_id).values_list("pk", flat=True))
    added = already = 0
    for start in range(0, len(ids), MAX_IDS_PER_CALL):
        a, b = list_add_members(contact_list=contact_list, contact_ids=ids[start:start + MAX_IDS_PER_CALL],
                                actor=actor)
        added, already = added + a, already + b
    return added, already


def list_add_members_bulk(*, list_id: int, contact_ids, job=None, at=None) -> int:
    """The importer's entry point: adds `contact_ids` (contacts of the list's organization,
    written by the import itself) to the list `list_id`, in chunks of 1000.

    Returns the number added. Writes `list_added` events (with the import id) for those only. A
    list deleted since the import started is skipped. Four queries per 1000 contacts.
    """
    contact_list = ContactList.objects.filter(pk=list_id).first()
    if contact_list is None:
        return 0
    actor = Actor(label=f"import {job.pk}" if job is not None else "import", source="import")
    at = at or timezone.now()
    extra = {"import_id": job.pk} if job is not None else {}
    wanted = list(dict.fromkeys(contact_ids))
    added = 0
    for start in range(0, len(wanted), MAX_IDS_PER_CALL):
        chunk = wanted[start:start + MAX_IDS_PER_CALL]
        with transaction.atomic():
            _lock(contact_list)
            present = set(ListMembership.objects.filter(list=contact_list, contact_id__in=chunk)
                          .values_list("contact_id", flat=True))
            new = [i for i in chunk if i not in present]
            ListMembership.objects.bulk_create(
                [ListMembership(list=contact_list, contact_id=i, added_at=at) for i in new], ignore_conflicts=True
            )
            ContactEvent.objects.bulk_create(
                [_event(contact_list, i, ContactEvent.Kind.LIST_ADDED, actor, at, **extra) for i in new]
            )
        added += len(new)
    return added


def list_delete(*, contact_list: ContactList) -> None:
    """Deletes the list and its memberships (one DELETE each); never a contact, and no
    per-contact events (the list they would name is gone)."""
    with transaction.atomic():
        ListMembership.objects.filter(list=contact_list).delete()
        contact_list.delete()
