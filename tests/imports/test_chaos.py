"""Chaos (issue 13, "done when"): the worker is SIGKILLed while the import reads and stages the
file, while it folds, and at random points while it writes (several seeds, and several kills in
one run). Nobody requeues it by hand: a new worker (make worker's CrmWorker, which requeues
imports with no heartbeat for IMPORT_STALE_SECONDS) picks it up, and the import ends in exactly
the state of an uninterrupted import of the same file into another organization: contacts,
tags, list members, preferences, consent records, events, counters, error rows and ImportChange
rows.

With Redis (CI's PostgreSQL pass) the worker is a real RQ worker, whose work horse is killed with
it; without Redis (SQLite) the job runs in a `manage.py` process that is killed the same way.
The moment of each kill is chosen from the job's phase and counters, so what is asserted does
not depend on the machine's speed.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts.models import ChannelPreference, ConsentRecord, Contact, ContactEvent
from contacts_crm.jobs import enqueue
from imports.models import ImportChange, ImportJob, ImportRowError
from imports.pipeline import STAGE_BATCH, run_import, start_import
from segments.models import ContactList, ListMembership

from ..factories import make_contact, make_org
from ..test_jobs import ROOT, worker_env
from .helpers import csv_bytes, kill_process_tree, run_import_bytes, wait_until_unlocked

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 3 * STAGE_BATCH  # three staged batches: a kill after the first lands mid-read
CHUNK_GROUPS = 25  # ~200 write transactions: room for kills at random points between and inside


def chaos_file(rows: int = ROWS) -> bytes:
    """Every kind of row an import meets: new and known phones (several formats), rows folding
    into an earlier one, rows that fail, bad optional cells (warnings), tags, opt-outs."""
    rng = random.Random(13)
    lines = ["phone,email,first_name,tags,city,opted_out,sms opt out,birthday"]
    for i in range(rows):
        n = rng.randrange(rows * 9 // 10)  # ~10% of rows repeat an earlier phone: merged
        formats = (f"919555{n:04d}", f"(919) 555-{n:04d}", f"+1 919 555 {n:04d}")
        phone = formats[i % 3] if n % 50 else "not-a-phone"  # with no email: a failed row
        email = "bad@@example" if i % 97 == 0 else f"p{n}@example.com" if n % 3 else ""
        birthday = "1990-02-30" if i % 113 == 0 else f"1980-01-{n % 28 + 1:02d}"
        opted_out = "yes" if n % 41 == 0 else ""
        sms = "1" if n % 37 == 0 else ""
        lines.append(f"{phone},{email},Name{i},t{n % 5};x{i % 3},City{i % 7},{opted_out},{sms},{birthday}")
    return csv_bytes("\n".join(lines))


def known_contacts(org) -> ContactList:
    """The contacts both organizations have before the import (updated or left unchanged by it,
    one opted out that no import may opt back in), and the list the import adds to."""
    for n in range(0, 600, 7):
        make_contact(org, phone=f"+1919555{n:04d}", first_name=f"Old{n}", tags=["old"], opted_out=n % 14 == 0)
    return ContactList.objects.create(organization=org, name="Imported")


def final_state(org, job) -> dict:
    """Everything the import wrote, keyed by phone/email instead of ids, import ids scrubbed."""
    contacts = Contact.objects.for_org(org, trashed=True).prefetch_related("tags")
    key = {c.pk: (c.phone or "", c.email or "") for c in contacts}

    def scrub(value):
        if isinstance(value, dict):
            return {k: f"<{k}>" if k in ("import_id", "list_id") else scrub(v) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value.replace(f"import {job.pk}", "import <job>") if isinstance(value, str) else value

    def row(contact):
        values = {f.attname: getattr(contact, f.attname) for f in Contact._meta.concrete_fields
                  if f.attname not in ("id", "organization_id", "tag_ids")}  # tags: by name below
        # Timestamps differ between two runs; whether each is set does not.
        values = {k: (v is not None) if k.endswith("_at") else v for k, v in values.items()}
        return key[contact.pk], sorted(values.items()), sorted(t.name for t in contact.tags.all())

    return {
        "contacts": sorted(row(c) for c in contacts),
        "list": sorted(key[m] for m in ListMembership.objects.filter(list__organization=org)
                       .values_list("contact_id", flat=True)),
        "preferences": sorted((key[p.contact_id], p.channel, p.opted_in, p.source)
                              for p in ChannelPreference.objects.filter(contact__organization=org)),
        "consent": sorted((key.get(r.contact_id), r.channel or "", r.opted_in, r.source, scrub(r.actor_label),
                           repr(scrub(r.evidence))) for r in ConsentRecord.objects.filter(organization=org)),
        "events": sorted((key[e.contact_id], e.kind, repr(scrub(e.data)), scrub(e.actor_label))
                         for e in ContactEvent.objects.filter(organization=org)),
        "errors": sorted((e.line, e.column, e.value, e.message, e.severity, e.code, repr(e.cells))
                         for e in ImportRowError.objects.filter(job=job)),
        "changes": sorted((key[c.contact_id], c.outcome, repr(scrub(c.before)), repr(scrub(c.after)),
                           repr(c.tags_added)) for c in ImportChange.objects.filter(job=job)),
        "counters": {name: getattr(job, name) for name in
                     ("total", *ImportJob.COUNTERS, "warnings", "processed", "rows_read", "groups_total",
                      "groups_done")},
    }


def start_worker(env: dict, job: ImportJob, first: bool) -> subprocess.Popen:
    """The first worker takes the enqueued job; a later one is a worker starting after a crash,
    which finds the import stale and requeues it."""
    if settings.REDIS_URL:
        if first:
            enqueue(run_import, job.pk)
        command = [sys.executable, "manage.py", "rqworker", "--burst", "default",
                   "--worker-class", "contacts_crm.jobs.CrmWorker"]
    elif first:
        command = [sys.executable, "manage.py", "shell", "-c",
                   f"from imports.pipeline import run_import; run_import({job.pk})"]
    else:  # without Redis the requeued job runs inside this command (JOBS_SYNC)
        command = [sys.executable, "manage.py", "requeue_stale_imports"]
    # Its own session, so that the kill takes the worker and the work horse it forks, as when a
    # machine dies.
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def reached(job: ImportJob, phase: str, point: int) -> bool:
    """Whether the job got to the kill point: in reading, `point` staged batches committed; in
    writing, `point` groups written."""
    if phase == "reading":
        return job.phase == "reading" and job.rows_read >= min(point * STAGE_BATCH, ROWS)
    return job.phase == "writing" and job.groups_done >= point


def kill_at(env, job, phase: str, point: int, pause: float, first: bool) -> None:
    """Runs a worker until the job reaches (phase, point), then `pause` seconds more, then
    SIGKILLs it. The worker runs in slices of SLICE seconds between SIGSTOPs, so a fast phase
    cannot slip past the check on a busy machine; a kill lands on a stopped or a running worker,
    at a random point either way."""
    process = start_worker(env, job, first)
    deadline = time.monotonic() + 300
    try:
        while True:
            signal_tree(process, signal.SIGCONT)
            time.sleep(SLICE)
            signal_tree(process, signal.SIGSTOP)
            job.refresh_from_db()
            if reached(job, phase, point):
                break
            assert process.poll() is None, (job.phase, job.rows_read, job.groups_done,
                                            process.stderr.read().decode()[-2000:])
            assert time.monotonic() < deadline, f"the import never reached {phase} {point}"
        if pause:
            signal_tree(process, signal.SIGCONT)
            time.sleep(pause)
    finally:
        kill_process_tree(process)
    job.refresh_from_db()
    assert job.status == "running" and job.phase == phase, f"killed too late: {job.phase}"
    if phase == "writing":
        assert 0 < job.groups_done < job.groups_total, "killed too late to test a resume"
    wait_until_unlocked(job)
    time.sleep(1.2)  # older than IMPORT_STALE_SECONDS (1 s in these workers)


SLICE = 0.02


def signal_tree(process, signum) -> None:
    import psutil

    try:
        for member in [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]:
            member.send_signal(signum)
    except psutil.NoSuchProcess:  # it ended: the caller's poll() says how
        pass


# (name, seed, kills): each kill is (phase, point); a "writing" point is drawn from the seed.
KILLS = [
    ("mid-read", 0, [("reading", 1)]),
    ("while-folding", 0, [("reading", 3)]),  # every row staged: the fold runs
    ("mid-write-seed-1", 1, [("writing", None)]),
    ("mid-write-seed-2", 2, [("writing", None)]),
    ("read-then-write-twice-seed-3", 3, [("reading", 2), ("writing", None), ("writing", None)]),
]


@pytest.mark.parametrize(("seed", "kills"), [pytest.param(seed, kills, id=name) for name, seed, kills in KILLS])
def test_a_worker_killed_anywhere_leaves_an_import_that_ends_as_if_nothing_happened(seed, kills, monkeypatch):
    from imports import pipeline

    monkeypatch.setattr(pipeline, "CHUNK_GROUPS", CHUNK_GROUPS)
    reference_org, org = make_org(slug="initech"), make_org(slug="acme")  # same region: same contacts
    data = chaos_file()
    reference = run_import_bytes(reference_org, data, contact_list=known_contacts(reference_org))
    assert reference.status == "succeeded", reference.error
    expected = final_state(reference_org, reference)
    counters = expected["counters"]
    assert counters["failed"] and counters["merged"] and counters["updated"] and counters["warnings"]
    assert expected["preferences"] and expected["list"] and expected["consent"]

    job = start_import(org=org, uploaded=SimpleUploadedFile("big.csv", data), file_name="big.csv", launch=False,
                       contact_list=known_contacts(org))
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.QUEUED)
    env = {**worker_env(), "IMPORT_CHUNK_GROUPS": str(CHUNK_GROUPS), "IMPORT_STALE_SECONDS": "1"}
    rng = random.Random(seed)
    for number, (phase, point) in enumerate(kills):
        pause = 0.0
        if phase == "writing":
            job.refresh_from_db()
            done = max(job.groups_done, 0)
            point = done + rng.randrange(1, (counters["groups_total"] - done) // 3)
            pause = rng.uniform(0, 0.05)  # somewhere inside the next chunk's transaction
        kill_at(env, job, phase, point, pause=pause, first=number == 0)

    finisher = start_worker(env, job, first=False)
    _, stderr = finisher.communicate(timeout=300)
    assert finisher.returncode == 0, stderr.decode()[-2000:]
    job.refresh_from_db()
    assert job.status == "succeeded", (job.error, job.phase, job.attempts, job.groups_done)
    assert job.attempts == len(kills) + 1
    actual = final_state(org, job)
    for part in expected:
        assert actual[part] == expected[part], (part, differences(actual[part], expected[part]))


def differences(actual, expected) -> str:
    """The first few items only one side has: a readable failure on a 6,000-row state."""
    if isinstance(actual, dict):
        return str({k: (actual.get(k), expected.get(k)) for k in actual.keys() | expected.keys()
                    if actual.get(k) != expected.get(k)})
    extra = list((Counter(map(repr, actual)) - Counter(map(repr, expected))).elements())[:3]
    missing = list((Counter(map(repr, expected)) - Counter(map(repr, actual))).elements())[:3]
    return f"only after the kill: {extra}; only in the uninterrupted run: {missing}"
