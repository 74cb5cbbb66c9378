"""Rows that change nothing, recognized in SQL (issue 9): on PostgreSQL an import settles the
groups that would leave their contact unchanged with two queries per chunk (imports.pipeline.
_settled: the one-row groups from the staged rows, then the folded ones; the condition is
contacts.upsert.unchanged_condition) instead of planning them in Python. Each case below is imported twice over the same existing contacts, once with that
shortcut and once without it: the contacts, events, consent, counters, warnings, provenance and
the dry run's report must be the same, and the shortcut must have settled exactly the rows the
case says it recognizes (so the fast path is really taken, and never where it would be wrong).
"""

from __future__ import annotations

import re

import pytest
from django.db import connection

from contacts.models import Contact, ContactEvent
from imports import pipeline
from imports.models import ImportChange, ImportRowError

from ..contacts.test_write_engine import snapshot
from ..factories import make_contact, make_org
from .helpers import counters, run_import_bytes

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
P1, P2, P3 = "+19195550101", "+19195550102", "+19195550103"
pytestmark = pytest.mark.django_db

ANN = {"phone": P1, "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee", "city": "Durham",
       "state": "NC", "birthday": "1990-04-01", "tags": ["vip", "news"], "custom_fields": {"plan": "gold", "n": "3"}}

# (name, existing contacts, the file, how many of its rows the SQL settles)
CASES = [
    ("the same row", [ANN], b"phone,email,first_name,last_name,city,state,birthday,tags,custom.plan,custom.n\n"
     b"9195550101,ann@example.com,Ann,Lee,Durham,NC,04/01/1990,vip;news,gold,3\n", 1),
    ("fewer columns", [ANN], b"phone,first_name\n9195550101,Ann\n", 1),
    ("matched by email only", [ANN], b"email,city\nann@example.com,Durham\n", 1),
    ("the email in another case", [ANN], b"phone,email\n9195550101,ANN@Example.com\n", 1),
    ("a subset of the tags", [ANN], b"phone,tags\n9195550101,news\n", 1),
    ("a tag in another case (the planner decides)", [ANN], b"phone,tags\n9195550101,VIP\n", 0),
    ("a new tag", [ANN], b"phone,tags\n9195550101,vip;press\n", 0),
    ("a new name", [ANN], b"phone,first_name\n9195550101,Anne\n", 0),
    ("a new custom field", [ANN], b"phone,custom.source\n9195550101,web\n", 0),
    ("a number where the file has text", [{**ANN, "custom_fields": {"n": 3}}], b"phone,custom.n\n9195550101,3\n", 0),
    ("another custom value", [ANN], b"phone,custom.plan\n9195550101,silver\n", 0),
    ("a new email on a phone match", [ANN], b"phone,email\n9195550101,lee@example.com\n", 0),
    ("a new phone on an email match", [ANN], b"phone,email\n9195550102,ann@example.com\n", 0),
    ("phone of one, email of another", [ANN, {"phone": P2, "email": "bo@example.com", "first_name": "Bo"}],
     b"phone,email\n9195550101,bo@example.com\n", 0),
    ("an opt-out it already has", [{**ANN, "opted_out": True}], b"phone,opted_out\n9195550101,yes\n", 1),
    ("a new opt-out", [ANN], b"phone,opted_out\n9195550101,yes\n", 0),
    ("a 'no' never opts in", [{**ANN, "opted_out": True}], b"phone,opted_out\n9195550101,no\n", 1),
    ("a channel opt-out it already has", [{**ANN, "preferences": {"sms": False}}],
     b"phone,opted_out.sms\n9195550101,yes\n", 1),
    ("a new channel opt-out", [ANN], b"phone,opted_out.sms\n9195550101,yes\n", 0),
    ("a secondary phone it has", [{**ANN, "secondary_phones": [P2]}], b"phone,phone 2\n9195550101,9195550102\n", 1),
    ("a new secondary phone", [ANN], b"phone,phone 2\n9195550101,9195550103\n", 0),
    ("two groups of one contact", [ANN], b"phone,email,city\n9195550101,,Durham\n,ann@example.com,Durham\n", 0),
    ("two rows of one group", [ANN], b"phone,email,city\n9195550101,ann@example.com,Durham\n9195550101,,Durham\n", 1),
    ("two rows of one group, one changes", [ANN], b"phone,city\n9195550101,Durham\n9195550101,Cary\n", 0),
    ("a group folding two phones", [ANN],
     b"phone,email\n9195550101,ann@example.com\n9195550102,ann@example.com\n", 0),
    ("a group folding tags", [ANN], b"phone,tags\n9195550101,vip\n9195550101,news\n", 1),
    ("two groups touching one contact", [ANN],
     b"phone,email,city\n9195550101,,Durham\n9195550103,ann@example.com,Raleigh\n", 0),
    ("a row for the trash restores", [{**ANN, "trashed": True}], b"phone,first_name\n9195550101,Ann\n", 0),
    ("unknown and known rows", [ANN], b"phone,first_name\n9195550101,Ann\n9195550103,Cy\n", 1),
]


def _existing(org, contacts):
    from contacts.services import Actor, contact_set_preferences
    from contacts.trash import contacts_trash_where

    for values in contacts:
        values = dict(values)
        trashed, preferences = values.pop("trashed", False), values.pop("preferences", None)
        contact = make_contact(org, **values)
        if preferences:
            contact_set_preferences(contact=contact, preferences=preferences, actor=Actor(label="setup"))
        if trashed:
            contacts_trash_where(Contact.objects.filter(pk=contact.pk), actor=Actor(label="setup"))
    ContactEvent.objects.filter(organization=org).update(actor_label="setup")


def _state(org, job) -> dict:
    report = sorted((line, column, code, UUID.sub("<id>", message)) for line, column, code, message in
                    ImportRowError.objects.filter(job=job).values_list("line", "column", "code", "message"))
    changes = sorted((str(c.outcome), sorted(c.before), sorted(c.after), c.tags_added)
                     for c in ImportChange.objects.filter(job=job))
    rows = [{k: UUID.sub("<id>", v) if isinstance(v, str) else v for k, v in row.items() if k != "contact_id"}
            for row in (job.result or {}).get("rows", [])]
    return {"contacts": snapshot(org), "counters": counters(job), "report": report, "changes": changes,
            "dry_run_rows": rows}


def _run(monkeypatch, slug, existing, data, *, settle, dry_run=False):
    org = make_org(slug=slug)
    _existing(org, existing)
    settled = []
    real = pipeline._settled

    def spy(job, first, last, folded=None):
        found = real(job, first, last, folded)
        settled.append(len(found))
        return found

    monkeypatch.setattr(pipeline, "SETTLE_IN_SQL", settle)
    monkeypatch.setattr(pipeline, "_settled", spy)
    job = run_import_bytes(org, data, dry_run=dry_run)
    assert job.status == "succeeded", job.error
    return _state(org, job), sum(settled)


@pytest.mark.parametrize("name, existing, data, settles", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dry_run", [False, True], ids=["write", "dry-run"])
def test_settling_in_sql_ends_exactly_where_planning_in_python_does(name, existing, data, settles, dry_run,
                                                                     monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the SQL shortcut is PostgreSQL's; SQLite always plans in Python (this file runs in CI's PG pass)")
    planned, none = _run(monkeypatch, "planned", existing, data, settle=False, dry_run=dry_run)
    fast, settled = _run(monkeypatch, "settled", existing, data, settle=True, dry_run=dry_run)
    assert none == 0
    assert fast == planned
    assert settled == settles


def test_a_reimport_of_an_unchanged_file_settles_every_row_in_sql(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the SQL shortcut is PostgreSQL's (this file runs in CI's PG pass)")
    org = make_org(slug="again")
    lines = [b"phone,email,first_name,tags,custom.score"] + [
        f"91955{i:05d},p{i}@example.com,P{i},t{i % 3},{i}".encode() for i in range(300)]
    data = b"\n".join(lines) + b"\n"
    first = run_import_bytes(org, data)
    assert first.created == 300
    events = ContactEvent.objects.filter(organization=org).count()
    settled = []
    real = pipeline._settled
    monkeypatch.setattr(pipeline, "_settled",
                        lambda job, a, b, folded=None: settled.append(len(found := real(job, a, b, folded))) or found)
    again = run_import_bytes(org, data)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 300)
    assert sum(settled) == 300
    assert ContactEvent.objects.filter(organization=org).count() == events
