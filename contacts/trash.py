"""Delete means trash: restore, purge after TRASH_RETENTION_DAYS, the deleted feed, GDPR export/erase.

A trashed contact keeps everything (tags, lists, custom fields, preferences, timeline, ledger) and
its phone and email stay taken: `ContactQuerySet.for_org()` hides it from every read, matching
(`contact_find_match`, the importer) still sees it so that a re-create restores it. Purging and
erasing delete for good, after writing the suppression entries (contacts.consent) that make a
later re-create start opted out.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import consent
from .models import (
    ChannelPreference,
    ConsentRecord,
    Contact,
    ContactEvent,
    ContactTombstone,
    Suppression,
)
from .services import Actor, contacts_delete_where, record_event

PURGE_BATCH = 500
PURGE_JOB_ID = "contacts-purge-trash"
PURGE_EVERY = timedelta(hours=1)


def trash_retention() -> timedelta:
    return timedelta(days=settings.TRASH_RETENTION_DAYS)


def _actor_label(actor: Actor) -> str:
    if actor.api_key is not None:
        return f"API key {actor.api_key.name}"[:100]
    if getattr(actor.user, "pk", None):
        return str(actor.user)[:100]
    return actor.label[:100]


# --- trash / restore -----------------------------------------------------------------------------
def contacts_trash_where(queryset, *, actor: Actor) -> int:
    """Moves the live contacts of `queryset` to the trash; returns how many.

    Set-based per batch of ids: one SELECT, one UPDATE, one tombstone DELETE + INSERT and one event
    INSERT per PURGE_BATCH contacts.
    """
    now = timezone.now()
    live = queryset.filter(deleted_at__isnull=True).order_by("pk")
    user = actor.user if getattr(actor.user, "pk", None) else None
    label = _actor_label(actor)
    total, last = 0, None
    with transaction.atomic():
        while True:  # keyset batches: constant memory for a bulk delete of a whole organization
            batch = list((live.filter(pk__gt=last) if last else live).values_list("pk", "organization_id")[:PURGE_BATCH])
            if not batch:
                return total
            last = batch[-1][0]
            pks = [pk for pk, _ in batch]
            Contact.objects.filter(pk__in=pks).update(deleted_at=now, deleted_by=user, deleted_by_label=label)
            ContactTombstone.objects.filter(contact_id__in=pks).delete()
            ContactTombstone.objects.bulk_create([
                ContactTombstone(organization_id=org_id, contact_id=pk, deleted_at=now, changed_at=now)
                for pk, org_id in batch
            ])
            ContactEvent.objects.bulk_create([
                ContactEvent(organization_id=org_id, contact_id=pk, kind=ContactEvent.Kind.TRASHED, data={},
                             created_at=now, **actor.event_fields())
                for pk, org_id in batch
            ])
            total += len(batch)


def contact_trash(*, contact: Contact, actor: Actor) -> None:
    contacts_trash_where(Contact.objects.filter(pk=contact.pk), actor=actor)
    contact.refresh_from_db(fields=["deleted_at", "deleted_by", "deleted_by_label"])


def contact_restore(*, contact: Contact, actor: Actor) -> Contact:
    """Takes a contact out of the trash, everything intact; writes a `restored` event. A live
    contact is returned unchanged. Consent is never touched."""
    if contact.deleted_at is None:
        return contact
    now = timezone.now()
    with transaction.atomic():
        contact.deleted_at, contact.deleted_by, contact.deleted_by_label = None, None, ""
        contact.updated_at = now
        contact.save(update_fields=["deleted_at", "deleted_by", "deleted_by_label", "updated_at"])
        ContactTombstone.objects.filter(organization_id=contact.organization_id, contact_id=contact.pk).delete()
        record_event(contact, ContactEvent.Kind.RESTORED, actor, {}, at=now)
    return contact


def contacts_restore_bulk(*, org_id, contact_ids, at, actor_user_id=None, actor_api_key_id=None,
                          actor_label="") -> int:
    """The importer's restore: contacts taken out of the trash in three statements."""
    if not contact_ids:
        return 0
    Contact.objects.filter(pk__in=contact_ids).update(deleted_at=None, deleted_by=None, deleted_by_label="",
                                                      updated_at=at)
    ContactTombstone.objects.filter(organization_id=org_id, contact_id__in=contact_ids).delete()
    ContactEvent.objects.bulk_create([
        ContactEvent(organization_id=org_id, contact_id=pk, kind=ContactEvent.Kind.RESTORED, data={}, created_at=at,
                     actor_user_id=actor_user_id, actor_api_key_id=actor_api_key_id, actor_label=actor_label[:100])
        for pk in contact_ids
    ])
    return len(contact_ids)


# --- purge / erase -------------------------------------------------------------------------------
def _delete_for_good(contacts: list[Contact], *, source: str, always_suppress: bool) -> int:
    """Suppression entries, detached ledger rows, tombstones, then the rows themselves."""
    if not contacts:
        return 0
    now = timezone.now()
    hashes = consent.suppressions_write(contacts=contacts, source=source, always=always_suppress, at=now)
    pks = [c.pk for c in contacts]
    consent.consent_records_detach(contact_ids=pks, hashes_by_contact=hashes)
    existing = set(ContactTombstone.objects.filter(contact_id__in=pks).values_list("contact_id", flat=True))
    ContactTombstone.objects.filter(contact_id__in=existing).update(purged_at=now, changed_at=now)
    ContactTombstone.objects.bulk_create([
        ContactTombstone(organization_id=c.organization_id, contact_id=c.pk, deleted_at=now, purged_at=now,
                         changed_at=now)
        for c in contacts if c.pk not in existing
    ])
    return contacts_delete_where(Contact.objects.filter(pk__in=pks))


def contacts_purge(*, org=None, before=None) -> int:
    """Deletes for good the contacts in the trash since before `before` (default: now minus
    TRASH_RETENTION_DAYS), of one organization or all; returns how many. Opted-out ones leave
    suppression entries. One transaction per PURGE_BATCH contacts, so that a long purge never holds
    a big lock and a killed one resumes where it stopped."""
    cutoff = before or (timezone.now() - trash_retention())
    qs = Contact.objects.in_trash().filter(deleted_at__lt=cutoff)
    if org is not None:
        qs = qs.filter(organization=org)
    total = 0
    while True:
        with transaction.atomic():
            batch = list(qs.order_by("deleted_at", "pk").select_for_update()[:PURGE_BATCH])
            if not batch:
                return total
            total += _delete_for_good(batch, source=Suppression.Source.PURGE, always_suppress=False)


def contact_purge(*, contact: Contact, actor: Actor) -> None:
    """DELETE ?permanent=true and the admin's purge: at once, live or trashed."""
    with transaction.atomic():
        _delete_for_good([contact], source=Suppression.Source.PURGE, always_suppress=False)


def contact_erase(*, contact: Contact, actor: Actor) -> None:
    """GDPR erasure: the contact, its timeline and list links go; its ledger rows keep only the
    suppression hashes; its phone and email are always suppressed ("all" unless it had opted out
    of some channels only), so that it is never messaged again."""
    with transaction.atomic():
        _delete_for_good([contact], source=Suppression.Source.ERASE, always_suppress=True)


def purge_trash_job(*, reschedule: bool = False) -> int:
    """The RQ job: purges every organization's expired trash; with Redis, runs again in an hour."""
    count = contacts_purge()
    if reschedule:
        purge_trash_schedule()
    return count


def purge_trash_schedule(delay: timedelta = PURGE_EVERY) -> bool:
    """Schedules purge_trash_job through RQ's scheduler (`rqworker default --with-scheduler`, as
    `make worker` runs it), replacing any purge already scheduled: restarting workers never piles
    up chains. Each run has its own job id (a running job re-using its own id would have its
    successor's hash overwritten when it finishes). Returns False without Redis (then run
    `manage.py purge_trash` from cron)."""
    import time

    from rq.registry import ScheduledJobRegistry

    from contacts_crm.jobs import get_queue, queue_backend

    if queue_backend() != "redis":
        return False
    queue = get_queue()
    registry = ScheduledJobRegistry(queue=queue)
    for job_id in registry.get_job_ids():
        if job_id.startswith(PURGE_JOB_ID):
            registry.remove(job_id, delete_job=True)
    queue.enqueue_in(delay, purge_trash_job, reschedule=True, job_id=f"{PURGE_JOB_ID}-{time.time_ns()}",
                     job_timeout=settings.JOB_TIMEOUT)
    return True


# --- GDPR export ---------------------------------------------------------------------------------
def contact_gdpr_export(*, contact: Contact) -> dict:
    """Everything held about the contact except its representation (the caller adds it): tags,
    lists, preferences, consent ledger, timeline. A handful of queries."""
    from segments.models import ListMembership

    def iso(value):
        return value.isoformat() if value else None

    return {
        "exported_at": iso(timezone.now()),
        "tags": sorted((t.name for t in contact.tags.all()), key=str.casefold),
        "lists": [{"id": m.list_id, "name": m.list.name, "added_at": iso(m.added_at)}
                  for m in ListMembership.objects.filter(contact=contact).select_related("list").order_by("id")],
        "preferences": [{"channel": p.channel, "opted_in": p.opted_in, "changed_at": iso(p.changed_at),
                         "source": p.source}
                        for p in ChannelPreference.objects.filter(contact=contact).order_by("channel")],
        "consent": [consent_record_json(r) for r in ConsentRecord.objects.filter(contact=contact)
                    .select_related("actor_user", "actor_api_key")],
        "timeline": [{"id": e.id, "kind": e.kind, "data": e.data, "actor": e.actor_display,
                      "created_at": iso(e.created_at)}
                     for e in ContactEvent.objects.filter(contact=contact).select_related("actor_user",
                                                                                          "actor_api_key")],
    }


def consent_record_json(record: ConsentRecord) -> dict:
    if record.actor_api_key_id:
        actor = f"API key {record.actor_api_key.name}" if record.actor_api_key else "API key"
    elif record.actor_user_id:
        actor = str(record.actor_user)
    else:
        actor = record.actor_label or "system"
    return {"id": record.id, "channel": record.channel, "opted_in": record.opted_in, "source": record.source,
            "actor": actor, "evidence": record.evidence, "created_at": record.created_at.isoformat()}

