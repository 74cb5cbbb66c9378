#!/usr/bin/env python
"""A digest of what one import wrote, comparable across databases and runs (the load test's
"the import still ends in the same state as a quiet run", issue 13).

    DATABASE_URL=postgres://…/crm_x .venv/bin/python bench/import_digest.py --job 12 [--out d.json]

Prints JSON: the job's status and counters, and SHA-256 digests, keyed by phone/email (never by
id, so that two databases compare), of its ImportChange rows with each contact's current
fields and tags, its events (kind and data, the import id scrubbed), its row errors and the list
members it added. Two runs of the same file on the same book give equal digests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def digest(rows) -> dict:
    rows = sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)
    return {"rows": len(rows), "sha256": hashlib.sha256("\n".join(rows).encode()).hexdigest()}


def import_digest(job_id: int) -> dict:
    """Reads values only, no model instances (~600 MB and ~30 s for a 100,000-row import)."""
    from collections import defaultdict

    from contacts.models import Contact, ContactEvent, ContactTag
    from imports.models import ImportChange, ImportJob, ImportRowError
    from segments.models import ListMembership

    job = ImportJob.objects.get(pk=job_id)
    changes = list(ImportChange.objects.filter(job=job).values_list("contact_id", "outcome", "before", "after",
                                                                     "tags_added").iterator(chunk_size=5000))
    events = list(ContactEvent.objects.filter(organization=job.organization, data__import_id=job.pk)
                  .values_list("contact_id", "kind", "data").iterator(chunk_size=5000))
    members = list(ListMembership.objects.filter(list_id=job.contact_list_id).values_list("contact_id", flat=True)
                   ) if job.contact_list_id else []
    ids = {c[0] for c in changes} | {e[0] for e in events} | set(members)
    fields, tags = {}, defaultdict(list)
    id_list = list(ids)
    for start in range(0, len(id_list), 5000):
        batch = id_list[start:start + 5000]
        for pk, *values in Contact.objects.filter(pk__in=batch).values_list("id", "phone", "email", "first_name",
                                                                              "company"):
            fields[pk] = values
        for pk, name in ContactTag.objects.filter(contact_id__in=batch).values_list("contact_id", "tag__name"):
            tags[pk].append(name)

    def key(pk):
        return fields[pk][:2] if pk in fields else ["purged", str(pk)]

    def scrub(value):
        if isinstance(value, dict):
            return {k: "<import>" if k == "import_id" else scrub(v) for k, v in value.items()}
        return value

    written = [{"key": key(pk), "outcome": outcome, "before": before, "after": after, "tags_added": added,
                "now": [*fields[pk][2:], sorted(tags[pk])] if pk in fields else None}
               for pk, outcome, before, after, added in changes]
    return {
        "job": job.pk,
        "status": job.status,
        "attempts": job.attempts,
        "counters": {name: getattr(job, name) for name in ("total", *ImportJob.COUNTERS, "warnings")},
        "changes": digest(written),
        "events": digest([key(pk), kind, scrub(data)] for pk, kind, data in events),
        "errors": digest([e.line, e.column, e.value, e.message, e.severity]
                         for e in ImportRowError.objects.filter(job=job)),
        "list_members": digest(key(pk) for pk in members),
    }


def same_result(a: dict, b: dict) -> bool:
    """Whether two digests describe the same final state (job ids and attempts aside)."""
    parts = ("status", "counters", "changes", "events", "errors", "list_members")
    return all(a[p] == b[p] for p in parts)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", type=int, required=True)
    parser.add_argument("--out")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contacts_crm.settings")
    import django

    django.setup()
    result = import_digest(args.job)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
