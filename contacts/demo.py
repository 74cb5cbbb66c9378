"""A few believable contacts for `manage.py seed_demo` (through the service layer, so the
timeline, tags and consent look as they will in real use)."""

from __future__ import annotations

from .services import Actor, contact_create_or_merge

PEOPLE = [
    {"first_name": "Ann", "last_name": "Smith", "phone": "+19195550101", "email": "ann.smith@example.com",
     "city": "Durham", "state": "NC", "zip": "27701", "country": "US", "tags": ["vip", "newsletter"],
     "lifecycle_stage": "customer"},
    {"first_name": "Bob", "last_name": "Jones", "phone": "+19195550102", "city": "Raleigh", "state": "NC",
     "country": "US", "tags": ["lead"], "lifecycle_stage": "lead"},
    {"first_name": "Carmen", "last_name": "García", "phone": "+18035550103", "email": "carmen@example.com",
     "city": "Columbia", "state": "SC", "country": "US", "tags": ["vip"], "custom_fields": {"plan": "gold"}},
    {"first_name": "Deniz", "last_name": "Yılmaz", "email": "deniz@example.org", "country": "TR",
     "tags": ["newsletter"], "language": "tr"},
    {"first_name": "Emma", "last_name": "Brown", "phone": "+447911123456", "country": "GB",
     "timezone": "Europe/London", "opted_out": True},
    {"first_name": "Farid", "last_name": "Haddad", "phone": "+19195550106", "state": "NC", "country": "US",
     "preferences": {"sms": False}, "tags": ["customer"]},
]


def seed_demo_contacts(*, org, user) -> int:
    actor = Actor(user=user, source="admin")
    for person in PEOPLE:
        contact_create_or_merge(org=org, data=dict(person), actor=actor)
    try:
        from segments.models import ContactList, Segment

        ContactList.objects.get_or_create(organization=org, name="March campaign")
        Segment.objects.get_or_create(organization=org, name="VIPs in the Carolinas", defaults={"rules": {
            "op": "and", "rules": [
                {"field": "tags", "operator": "contains_any", "value": ["vip"]},
                {"field": "state", "operator": "in", "value": ["NC", "SC"]},
                {"field": "channel.sms", "operator": "eq", "value": True},
            ]}})
    except ImportError:
        pass
    return len(PEOPLE)
