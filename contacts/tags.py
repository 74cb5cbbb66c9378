"""The tags resource (issue 11, Heymarket's tags): rename and delete a tag for every contact at
once, and `{"tag_id": n}` references in contact writes.

Adding and removing a contact's tags stays in contacts.services (contact_add_tags,
contact_remove_tags, tags_ensure); this module holds the organization-wide operations.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Contact, ContactEvent, ContactTag, Tag
from .normalize import normalize_tag, tag_key
from .services import Actor, ServiceError


def tag_create(*, org, name: str) -> Tag:
    """A new tag (`name` normalized); ServiceError when the organization has it already."""
    name = normalize_tag(name)
    if Tag.objects.for_org(org).filter(key=tag_key(name)).exists():
        raise ServiceError(f"The tag '{name}' exists already.", field="name")
    try:
        with transaction.atomic():
            return Tag.objects.create(organization=org, name=name, key=tag_key(name))
    except IntegrityError:
        raise ServiceError(f"The tag '{name}' exists already.", field="name") from None


def tag_rename(*, tag: Tag, name: str) -> Tag:
    """Renames a tag; its key follows, so filters and segments use the new name at once. A
    name another tag of the organization already has (case-insensitively) is a ServiceError."""
    name = normalize_tag(name)
    key = tag_key(name)
    if Tag.objects.for_org(tag.organization_id).filter(key=key).exclude(pk=tag.pk).exists():
        raise ServiceError(f"Another tag is already called '{name}'.", field="name")
    tag.name, tag.key = name, key
    try:
        with transaction.atomic():
            tag.save(update_fields=["name", "key"])
    except IntegrityError:
        raise ServiceError(f"Another tag is already called '{name}'.", field="name") from None
    return tag


def tag_delete(*, tag: Tag, actor: Actor) -> int:
    """Deletes a tag from every contact that has it: one `tags_removed` event per contact, and
    their updated_at moves (API clients syncing by updated_after see the change). Returns the
    number of contacts. Five queries whatever the count."""
    now = timezone.now()
    with transaction.atomic():
        contact_ids = list(ContactTag.objects.filter(tag=tag).values_list("contact_id", flat=True))
        ContactEvent.objects.bulk_create(
            [ContactEvent(organization_id=tag.organization_id, contact_id=cid, kind=ContactEvent.Kind.TAGS_REMOVED,
                          data={"tags": [tag.name]}, created_at=now, **actor.event_fields())
             for cid in contact_ids], batch_size=1000)
        ContactTag.objects.filter(tag=tag).delete()
        Contact.objects.filter(pk__in=contact_ids).update(updated_at=now)
        tag.delete()
    return len(contact_ids)


def resolve_tag_refs(value, *, org, field: str = "tags"):
    """Tags as a contact write gives them: strings and `{"tag_id": n}` objects, mixed → the names
    (strings as given; ids as their tag's name), and the errors keyed "tags[i]" (an unknown id,
    or another organization's). Anything that is not a list is returned as it is, for the
    payload's own validation to refuse. One query for all the ids."""
    if not isinstance(value, list):
        return value, {}
    ids = {}
    errors: dict[str, list[str]] = {}
    for index, item in enumerate(value):
        if isinstance(item, dict):
            tag_id = item.get("tag_id")
            if set(item) != {"tag_id"} or not isinstance(tag_id, int) or isinstance(tag_id, bool):
                errors[f"{field}[{index}]"] = ['Expected a tag name or {"tag_id": <integer>}.']
            else:
                ids[index] = tag_id
    names = {t.pk: t.name for t in Tag.objects.for_org(org).filter(pk__in=set(ids.values()))} if ids else {}
    out = []
    for index, item in enumerate(value):
        if index in ids:
            if ids[index] not in names:
                errors[f"{field}[{index}]"] = [f"No tag with id {ids[index]} in your organization."]
            else:
                out.append(names[ids[index]])
        else:
            out.append(item)
    return out, errors
