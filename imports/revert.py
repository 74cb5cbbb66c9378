"""Undo of an import (issue 10, item 6), from the provenance the write engine stored per contact
(ImportChange): `import_revert_start` checks and queues, `run_import_revert` is the RQ job.

What the undo does, contact by contact, through the contact services (events and all):
- a contact the import created (or restored from the trash) goes to the trash, unless it changed
  after the import: then it is kept;
- a field the import updated goes back to its value from before, unless that field changed after
  the import (its value is no longer the import's): then it is kept;
- the tags the import added are removed, and so are the list memberships it added;
- an opt-out is never reverted: consent fields are left as they are.
Counters: `reverted` (contacts put back), `kept` (changed since, left alone), `skipped` (gone
since: purged or erased).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from contacts.models import Contact, ContactEvent
from contacts.services import Actor, contact_remove_tags, contact_update
from contacts.upsert import LOADED

from .models import ImportChange, ImportJob
from .pipeline import ImportRefused

logger = logging.getLogger(__name__)

# Consent is the person's word, whoever wrote it: an undo never opts anyone back in.
NEVER_REVERTED = {"opted_out", "opted_out_at", "opt_out_source"}
BATCH = 500


def import_revert_start(job: ImportJob) -> ImportJob:
    """Queues the undo. Raises ImportRefused for an import that is not finished, was a dry run,
    or is already reverted (or being reverted)."""
    from contacts_crm.jobs import enqueue

    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != ImportJob.Status.SUCCEEDED:
            raise ImportRefused("Only a finished import can be reverted; this one is "
                                f"{locked.get_status_display().lower()}.")
        if locked.dry_run:
            raise ImportRefused("A dry run wrote nothing: there is nothing to revert.")
        if locked.revert_status:
            raise ImportRefused("This import is already reverted." if locked.reverted_at else
                                "This import is being reverted.")
        locked.revert_status = "queued"
        locked.save(update_fields=["revert_status"])
        transaction.on_commit(lambda: enqueue(run_import_revert, locked.pk))
    return locked


def run_import_revert(job_id: int) -> dict:
    """The RQ job. Each batch of contacts is one transaction; safe to run again (what is already
    back reads as changed-since or gone and is left alone)."""
    job = ImportJob.objects.select_related("organization").get(pk=job_id)
    if job.reverted_at:
        return job.revert_counters
    ImportJob.objects.filter(pk=job.pk).update(revert_status="running")
    actor = Actor(user=job.created_by, api_key=job.created_by_key, label=f"undo of import {job.pk}",
                  source="import")
    counters = {"reverted": 0, "kept": 0, "skipped": 0}
    finished = job.finished_at or timezone.now()
    _remove_list_memberships(job, actor)  # first: the list calls refuse contacts already trashed
    last = 0
    while True:
        changes = list(ImportChange.objects.filter(job=job, id__gt=last).order_by("id")[:BATCH])
        if not changes:
            break
        last = changes[-1].id
        with transaction.atomic():
            for change in changes:
                counters[_revert_one(job, change, actor, finished)] += 1
    ImportJob.objects.filter(pk=job.pk).update(revert_status="done", reverted_at=timezone.now(),
                                               revert_counters=counters)
    return counters


def _revert_one(job: ImportJob, change: ImportChange, actor: Actor, finished) -> str:
    from contacts.trash import contact_trash

    contact = (Contact.objects.for_org(job.organization, trashed=True).select_for_update()
               .filter(pk=change.contact_id).first())
    if contact is None:
        return "skipped"
    if change.outcome in (ImportChange.Outcome.CREATED, ImportChange.Outcome.RESTORED):
        if contact.deleted_at is not None:
            return "skipped"
        if _changed_since(contact, finished):
            return "kept"
        if change.tags_added:
            contact_remove_tags(contact=contact, names=change.tags_added, actor=actor)
        contact_trash(contact=contact, actor=actor)
        return "reverted"
    if change.tags_added:
        contact_remove_tags(contact=contact, names=change.tags_added, actor=actor)
    data, kept = {}, False
    for name, before in change.before.items():
        if name in NEVER_REVERTED:
            continue
        attname = "assignee_id" if name == "assignee" else name
        if attname not in LOADED:
            continue
        current = getattr(contact, attname)
        if _json(current) != change.after.get(name):
            kept = True  # the field changed after the import: the newer value stays
            continue
        data[name] = before
    if data.get("assignee") is not None:
        from django.contrib.auth import get_user_model

        data["assignee"] = get_user_model().objects.filter(pk=data["assignee"]).first()
    if data:
        if "birthday" in data and data["birthday"]:
            import datetime as dt

            data["birthday"] = dt.date.fromisoformat(data["birthday"])
        contact_update(contact=contact, data=data, actor=actor, overwrite_custom=True)
        return "reverted"
    return "kept" if kept else "reverted"


def _changed_since(contact: Contact, finished) -> bool:
    """Whether anyone but the import wrote to this contact after it (an event by someone else)."""
    return ContactEvent.objects.filter(contact=contact, created_at__gt=finished).exclude(
        kind__in=[ContactEvent.Kind.TEXTABILITY_CHECKED, ContactEvent.Kind.LIST_ADDED]).exists()


def _json(value):
    from contacts.upsert import jsonable

    return jsonable(value)


def _remove_list_memberships(job: ImportJob, actor: Actor) -> None:
    if not job.contact_list_id:
        return
    from segments.models import ContactList
    from segments.services import list_remove_members

    contact_list = ContactList.objects.filter(pk=job.contact_list_id, organization=job.organization).first()
    if contact_list is None:
        return
    added = list(Contact.objects.for_org(job.organization).filter(
        events__kind=ContactEvent.Kind.LIST_ADDED, events__data__import_id=job.pk).values_list("pk", flat=True))
    for start in range(0, len(added), BATCH):
        list_remove_members(contact_list=contact_list, contact_ids=added[start:start + BATCH], actor=actor)
