"""Plain make_* helpers (no factory framework): defaults via kwargs.setdefault."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from contacts_crm.models import Membership, Organization


def make_org(**kwargs) -> Organization:
    kwargs.setdefault("slug", "org")
    kwargs.setdefault("name", kwargs["slug"].title())
    return Organization.objects.create(**kwargs)


def make_staff(username: str, org: Organization | None, *, role=Membership.Role.MEMBER, **kwargs):
    kwargs.setdefault("is_staff", True)
    kwargs.setdefault("email", f"{username}@example.com")
    user = get_user_model().objects.create_user(username=username, password="pw-" + username, **kwargs)
    if org is not None:
        Membership.objects.create(user=user, organization=org, role=role)
    return user


_counter = {"n": 0}


def make_contact(org, **overrides):
    """A contact made through the service layer (so events and tags are real)."""
    from contacts.services import Actor, contact_create

    _counter["n"] += 1
    n = _counter["n"]
    data = {"first_name": f"Person{n}", "last_name": "Test"}
    if "phone" not in overrides and "email" not in overrides:
        data["phone"] = f"+1919555{n % 10000:04d}"
    data.update(overrides)
    return contact_create(org=org, data=data, actor=Actor(label="test", source="admin"))
