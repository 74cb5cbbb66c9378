"""List membership as Q builders on Contact, shared by the contacts filters (`list`, `not_list`),
the segment compiler (`lists` rules) and the admin's list filter.

`q_member_of*` never query: another organization's list ids are made harmless by an org-scoped
subquery, so they match nobody. `q_in_lists` / `q_not_in_lists` serve URL parameters and first
check the ids (one small query), answering 404 for an id the organization does not have, the
same answer as for a nonexistent one.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q
from rest_framework.exceptions import NotFound


def _models():
    from .models import ContactList, ListMembership

    return ContactList, ListMembership


def _org_list_ids(ids, org):
    ContactList, _ = _models()
    return ContactList.objects.for_org(org).filter(pk__in=list(ids)).values("pk")


def q_member_of(ids, *, org) -> Q:
    """In at least one of the lists `ids` (of `org`). No query; one EXISTS when evaluated."""
    _, ListMembership = _models()
    return Q(Exists(ListMembership.objects.filter(contact=OuterRef("pk"), list__in=_org_list_ids(ids, org))))


def q_member_of_all(ids, *, org) -> Q:
    """In every one of the lists `ids`: one EXISTS per list."""
    _, ListMembership = _models()
    q = Q()
    for list_id in sorted(set(ids)):
        q &= Q(Exists(ListMembership.objects.filter(contact=OuterRef("pk"), list__in=_org_list_ids([list_id], org))))
    return q


def q_in_any_list(*, org) -> Q:
    """In at least one list of the organization."""
    ContactList, ListMembership = _models()
    lists = ContactList.objects.for_org(org).values("pk")
    return Q(Exists(ListMembership.objects.filter(contact=OuterRef("pk"), list__in=lists)))


def check_list_ids(ids, *, org) -> list[int]:
    """The ids, deduplicated; raises NotFound naming those `org` has no list for. One query."""
    ContactList, _ = _models()
    wanted = sorted({int(i) for i in ids})
    found = set(ContactList.objects.for_org(org).filter(pk__in=wanted).values_list("pk", flat=True))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound(f"No list with the id{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))}.")
    return wanted


def q_in_lists(ids, *, org) -> Q:
    """The `list=` filter: in any of the lists. Raises NotFound for ids `org` has no list for."""
    return q_member_of(check_list_ids(ids, org=org), org=org)


def q_not_in_lists(ids, *, org) -> Q:
    """The `not_list=` filter: in none of the lists. Raises NotFound for ids `org` has no list for."""
    return ~q_member_of(check_list_ids(ids, org=org), org=org)
