"""Counts at database speed (issue 14): the plan each count shape needs, and an estimate only
when the caller asks for one (`?exact=false`).

`GET /contacts/count` and `GET /segments/{id}/count` call `count_answer`; the shapes whose generic
plan is slow on a large book get a query of their own here (and in segments.rules.count_matching):

- one tag, or any of several: counted from the tag links (an index-only scan of
  `contact_tag_by_tag`) minus the links of contacts in the trash (a hashed subplan over the small
  partial index `contact_org_trashed`), instead of visiting every tagged contact's heap row to
  check `deleted_at` — bench/README.md, "Reads at database speed: counts and segments";
- everyone but a set (not in a list, not tagged): the organization's live contacts, an
  index-only scan of `contact_org_live`, minus the set's count.

Every such count stays exact. An estimate is answered only for `?exact=false`, and only when the
planner expects at least ESTIMATE_MIN_ROWS rows (below that a count is cheap and an estimate's
relative error is large); the answer then says `"exact": false`.
"""

from __future__ import annotations

import json

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from contacts_crm.api.pagination import parse_bool_param

from .querysets import _tag_ids_by_key, tag_keys

ESTIMATE_MIN_ROWS = 10_000

EXACT_PARAMETER = OpenApiParameter(
    "exact", OpenApiTypes.BOOL,
    description="false: answer the database planner's estimate, marked `\"exact\": false`, when it expects at "
    f"least {ESTIMATE_MIN_ROWS:,} contacts (counting those exactly may take a second on a large book); "
    "smaller counts stay exact. Without it the count is always exact. When given, the answer carries `exact`.",
)


class CountAnswerSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    exact = serializers.BooleanField(
        required=False,
        help_text="Present when the call passed `exact`: false when `count` is the planner's estimate.")


def parse_exact(params) -> bool | None:
    """The `exact` query parameter: True, False, or None when absent; anything but true/false
    (or 1/0, as every boolean parameter of the API) is a 400 naming the value."""
    if params.get("exact") is None:
        return None
    return parse_bool_param(params, "exact")


def estimate_rows(queryset) -> int | None:
    """The planner's estimate of the rows `queryset` returns (PostgreSQL: one EXPLAIN, no
    execution); None on other databases."""
    if connection.vendor != "postgresql":
        return None
    try:
        sql, params = queryset.values("pk").query.sql_with_params()
    except EmptyResultSet:  # e.g. a tag nobody has: `pk IN ()`
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def count_answer(queryset, *, exact: bool | None, count=None) -> dict:
    """The body of a count endpoint: `{"count": n}`, plus `"exact"` when the caller passed it.
    `count` is the shape's own exact count (a callable), else `queryset.count()`."""
    if exact is False:
        rows = estimate_rows(queryset)
        if rows is not None and rows >= ESTIMATE_MIN_ROWS:
            return {"count": rows, "exact": False}
    body = {"count": count() if count is not None else queryset.count()}
    if exact is not None:
        body["exact"] = True
    return body


def _trashed_ids(org):
    from .models import Contact

    return Contact.objects.for_org(org, trashed=True).in_trash().values("pk")


def live_links_count(link_model, owner: str):
    """An annotation of a Tag (`live_links_count(ContactTag, "tag")`) or a ContactList
    (`live_links_count(ListMembership, "list")`): how many live contacts it holds — the trash
    left out, as every contacts count leaves it out. A correlated subquery per tag or list of the
    page (PostgreSQL evaluates it after the sort and limit): an index-only scan of its links, the
    trashed contacts' left out by a hashed subplan over the partial index contact_org_trashed —
    not a join of every link of the organization with its contact's row (GET /lists took 1.8 s
    with one 100k list)."""
    from django.db.models import F, Func, IntegerField, OuterRef, Subquery

    from .models import Contact

    trashed = Contact.objects.in_trash().values("pk")
    links = (link_model.objects.filter(**{owner: OuterRef("pk")}).exclude(contact_id__in=trashed).order_by()
             .annotate(n=Func(F("contact_id"), function="COUNT", output_field=IntegerField())).values("n"))
    return Subquery(links)


def tagged_any_rows(*, org, names):
    """The organization's live contacts with any of the tags `names`, as one row per contact
    from the tag links (a queryset of contact ids): an index-only scan of the links of those
    tags (the tags are the organization's own, so are the contacts they link), the trashed
    contacts' links left out by a hashed subplan over contact_org_trashed."""
    from .models import ContactTag

    tag_ids = [pk for ids in _tag_ids_by_key(tag_keys(names), org).values() for pk in ids]
    links = ContactTag.objects.filter(tag_id__in=tag_ids).exclude(contact_id__in=_trashed_ids(org))
    links = links.values("contact_id")
    return links if len(tag_ids) <= 1 else links.distinct()  # one link per contact and tag otherwise


def members_rows(*, org, list_ids):
    """The organization's live contacts in any of the lists `list_ids` (another organization's
    ids hold nobody), one row per contact, from the memberships: an index-only scan of
    list_membership_unique, the trashed contacts left out by a hashed subplan."""
    from segments.models import ContactList, ListMembership

    lists = ContactList.objects.for_org(org).filter(pk__in=list(list_ids)).values("pk")
    members = ListMembership.objects.filter(list__in=lists).exclude(contact_id__in=_trashed_ids(org))
    members = members.values("contact_id")
    return members if len(set(list_ids)) <= 1 else members.distinct()


def count_rows(rows, *, complement_of=None) -> int:
    """COUNT(*) of `rows` (a queryset), or with `complement_of` (an organization) the
    organization's live contacts minus them — one statement, so one snapshot: the live count is
    an index-only scan of contact_org_live."""
    from .models import Contact

    try:
        part, part_params = rows.order_by().query.sql_with_params()
    except EmptyResultSet:  # no such tag or list: `IN ()`
        part, part_params = "SELECT 1 WHERE false", []
    sql, params = f"SELECT COUNT(*) FROM ({part}) AS part", list(part_params)
    if complement_of is not None:
        live, live_params = Contact.objects.for_org(complement_of).order_by().values("pk").query.sql_with_params()
        sql, params = f"SELECT (SELECT COUNT(*) FROM ({live}) AS live) - ({sql})", [*live_params, *params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def contacts_count_plan(params, *, org):
    """GET /contacts/count: the shape's own count (a callable) when the filters are only `tags`
    with OR logic, or `segment` with a segment that has one (segments.rules.count_plan); else
    None (the generic COUNT is fast for the other shapes: bench/README.md)."""
    given = {name for name, value in params.items() if value not in (None, "") and name != "exact"}
    if "segment" in given:  # the other filters are ignored; filter_contacts has checked the id
        from segments.models import Segment
        from segments.rules import count_plan

        from .validation import parse_ascii_id

        segment = Segment.objects.for_org(org).filter(pk=parse_ascii_id(params["segment"].strip())).first()
        return count_plan(segment.rules, org=org) if segment is not None else None
    logic = (params.get("tags_logic") or "or").strip().lower()
    if given - {"tags", "tags_logic"} or "tags" not in given or logic != "or":
        return None
    from .filters import _csv
    from .normalize import NormalizationError, normalize_tag

    try:
        names = [normalize_tag(part) for part in _csv(params["tags"])]
    except NormalizationError:
        return None  # filter_contacts has answered the 400 already
    return lambda: count_rows(tagged_any_rows(org=org, names=names))


# A tag's TagLinkCount rows are folded into one past this many (one per link-writing statement;
# a read of a few dozen rows costs nothing, thousands would).
FOLD_TAG_COUNTS_AT = 64


def tag_contact_counts(tag_ids, *, org) -> dict[int, int]:
    """{tag id: how many live contacts have it} for `tag_ids` (the organization's tags): each
    tag's link count, the sum of its TagLinkCount rows (kept by triggers on the links), minus its
    links to contacts in the trash, counted from the trash's side (the partial index
    contact_org_trashed, then contact_tag_unique per trashed contact) — never a scan of a tag's
    links, so a tag on 200k contacts costs what a tag on 2 does. Exact: one statement, one
    snapshot. Folds the rows of a tag that has more than FOLD_TAG_COUNTS_AT of them into one (a
    second statement, then), which keeps the sums small."""
    from .models import Contact, ContactTag, TagLinkCount

    tag_ids = list(tag_ids)
    if not tag_ids:
        return {}
    counts, link, contact = TagLinkCount._meta.db_table, ContactTag._meta.db_table, Contact._meta.db_table
    if connection.vendor == "postgresql":
        ids, params = "= ANY(%s)", [tag_ids, org.pk, tag_ids]
    else:
        ids, params = f"IN ({', '.join(['%s'] * len(tag_ids))})", [*tag_ids, org.pk, *tag_ids]
    sql = (f"SELECT 'l', tag_id, SUM(delta), COUNT(*) FROM {counts} WHERE tag_id {ids} GROUP BY tag_id "
           f"UNION ALL SELECT 't', l.tag_id, COUNT(*), 0 FROM {contact} c JOIN {link} l ON l.contact_id = c.id "
           f"WHERE c.organization_id = %s AND c.deleted_at IS NOT NULL AND l.tag_id {ids} GROUP BY l.tag_id")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    found = dict.fromkeys(tag_ids, 0)
    to_fold = []
    for kind, tag_id, number, pieces in rows:
        found[tag_id] += int(number) if kind == "l" else -int(number)  # SUM(bigint) is numeric
        if pieces > FOLD_TAG_COUNTS_AT:
            to_fold.append(tag_id)
    if to_fold:
        tag_counts_fold(to_fold)
    return found


def tag_counts_fold(tag_ids) -> None:
    """Replaces the TagLinkCount rows of each of `tag_ids` by one row of their sum. Exact under
    concurrent writers and folders: the rows summed are exactly the rows this statement deleted
    (DELETE … RETURNING), and the sum is written in the same transaction; rows appended meanwhile
    are left for the next fold."""
    from .models import TagLinkCount

    table = TagLinkCount._meta.db_table
    tag_ids = list(tag_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DELETE FROM {table} WHERE tag_id = ANY(%s) RETURNING tag_id, delta", [tag_ids])
        else:
            cursor.execute(f"DELETE FROM {table} WHERE tag_id IN ({', '.join(['%s'] * len(tag_ids))}) "
                           "RETURNING tag_id, delta", tag_ids)
        sums: dict[int, int] = {}
        for tag_id, delta in cursor.fetchall():
            sums[tag_id] = sums.get(tag_id, 0) + delta
        TagLinkCount.objects.bulk_create([TagLinkCount(tag_id=tag_id, delta=n) for tag_id, n in sums.items()])
