"""Segments on the 1,000,000-contact benchmark database (issue 4, "Speed").

Needs the database filled by bench/contacts_bench.py --fill. Creates (once) a 100,000-member list
and three segments, then times over the test client, median and p95 of --runs requests after
--warmup: GET /segments/{id}/count and GET /segments/{id}/members?limit=50, and the main SQL
query alone with its EXPLAIN ANALYZE in bench/out/segment-<case>.plan.txt.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/segments_bench.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contacts_bench as cb  # noqa: E402

LIST_NAME = "bench: 100k members"
CASES = {
    "a_and_state_tags_optout": {"op": "and", "rules": [
        {"field": "state", "operator": "in", "value": ["NC", "SC"]},
        {"field": "tags", "operator": "contains_any", "value": ["vip"]},
        {"field": "channel.sms", "operator": "eq", "value": True},
    ]},
    "b_nested_or_custom": {"op": "or", "rules": [
        {"field": "custom.loyalty_points", "operator": "gt", "value": 4900},
        {"op": "and", "rules": [
            {"field": "state", "operator": "eq", "value": "VT"},
            {"field": "lifecycle_stage", "operator": "eq", "value": "customer"},
        ]},
    ]},
    "c_not_in_100k_list": None,  # filled with the list id
}


def bench_list(org):
    """The 100,000-member list (created once, members picked at random)."""
    from django.db import connection

    from segments.models import ContactList

    contact_list, created = ContactList.objects.get_or_create(organization=org, name=LIST_NAME)
    if created or not contact_list.memberships.exists():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO segments_listmembership (list_id, contact_id, added_at) "
                "SELECT %s, id, now() FROM contacts_contact WHERE organization_id = %s ORDER BY md5(id::text) "
                "LIMIT 100000", [contact_list.pk, org.pk])
            cursor.execute("ANALYZE segments_listmembership")
    return contact_list


def ensure_objects(org):
    from segments.models import Segment

    contact_list = bench_list(org)
    CASES["c_not_in_100k_list"] = {"field": "lists", "operator": "contains_none", "value": [contact_list.pk]}
    segments = {}
    for name, rules in CASES.items():
        segment, _ = Segment.objects.update_or_create(organization=org, name=f"bench: {name}",
                                                      defaults={"rules": rules})
        segments[name] = segment
    return segments


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    cb.configure_django()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from contacts_crm.models import ApiKey

    org = cb._bench_org(create=False)
    if org is None:
        sys.exit("Fill the database first: bench/contacts_bench.py --fill")
    segments = ensure_objects(org)
    _, raw = ApiKey.generate(organization=org, name="segments bench", scope="read")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    rows = []
    shapes = [(name, kind, url) for name, segment in segments.items()
              for kind, url in (("count", f"/api/v1/segments/{segment.pk}/count"),
                                ("first page", f"/api/v1/segments/{segment.pk}/members?limit=50"))]
    # The list's own members page (issue 14), beside the segment that excludes the list.
    shapes.append(("list_100k_members", "first page", f"/api/v1/lists/{bench_list(org).pk}/members?limit=50"))
    for name, kind, url in shapes:
        times = cb._time_get(client, url, runs=args.runs, warmup=args.warmup)
        with CaptureQueriesContext(connection) as queries:
            body = client.get(url).json()
        selects = [q["sql"] for q in queries.captured_queries
                   if q["sql"].startswith("SELECT") and "contacts_contact" in q["sql"] and "UNION" not in q["sql"]]
        main_sql = max(selects, key=len)
        plan = cb.explain(main_sql, f"segment-{name}-{kind.replace(' ', '_')}", runs=5)
        rows.append((name, kind, statistics.median(times), cb._percentile(times, 0.95), plan["sql_median_ms"],
                     body.get("count", len(body.get("results", [])))))
    print(f"{'case':28} {'what':10} {'median ms':>10} {'p95 ms':>8} {'SQL ms':>8} {'result':>8}")
    for name, kind, median, p95, sql, result in rows:
        print(f"{name:28} {kind:10} {median:10.1f} {p95:8.1f} {sql:8.1f} {result:>8}")


if __name__ == "__main__":
    main()
