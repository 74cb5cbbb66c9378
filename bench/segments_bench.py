"""Segments and every count on the 1,000,000-contact benchmark database (issues 4 and 14).

Needs the database filled by bench/contacts_bench.py --fill. Creates (once) a 100,000-member list,
the three segments and, with --define-custom, the `loyalty_points` custom field as a number (the
definition that builds its expression index). Then times over the test client, median and p95 of
--runs requests after --warmup: every contacts count of bench/ (one popular tag, state + tag, two
rare tags ANDed, and a page of that AND), each segment's count and first page of members, and
segment (c)'s estimated count (`?exact=false`); and each case's main SQL query alone (median of
--runs executions) with its EXPLAIN ANALYZE in bench/out/segment-<case>.plan.txt.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/segments_bench.py
"""

from __future__ import annotations

import argparse
import os
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
    "b2_custom_only": {"field": "custom.loyalty_points", "operator": "gt", "value": 4900},
    "c_not_in_100k_list": None,  # filled with the list id
}
# The contacts counts (and the one page) of bench/contacts_bench.py whose plans issue 14 is about.
CONTACT_CASES = [
    ("count_one_tag", "count?tags=vip", "/api/v1/contacts/count?tags=vip", True),
    ("count_popular_tag", "count?tags=newsletter", "/api/v1/contacts/count?tags=newsletter", True),
    ("count_state_tag", "count?state=NC&tags=vip", "/api/v1/contacts/count?state=NC&tags=vip", True),
    ("count_rare_and", "count?tags=press,government&tags_logic=and",
     "/api/v1/contacts/count?tags=press,government&tags_logic=and", True),
    ("page_rare_and", "tags=press,government&tags_logic=and (page of 50)",
     "/api/v1/contacts?tags=press,government&tags_logic=and&limit=50", False),
    # The live contacts counted per tag and per list, beside each tag and list.
    ("tags_list", "GET /tags (30 tags, contact_count each)", "/api/v1/tags?limit=50", True),
    ("lists_list", "GET /lists (member_count of the 100k list)", "/api/v1/lists", True),
]


def ensure_objects(org, *, define_custom: bool):
    from django.db import connection

    from segments.models import ContactList, Segment

    contact_list, created = ContactList.objects.get_or_create(organization=org, name=LIST_NAME)
    if created or not contact_list.memberships.exists():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO segments_listmembership (list_id, contact_id, added_at) "
                "SELECT %s, id, now() FROM contacts_contact WHERE organization_id = %s ORDER BY md5(id::text) "
                "LIMIT 100000", [contact_list.pk, org.pk])
            cursor.execute("ANALYZE segments_listmembership")
    CASES["c_not_in_100k_list"] = {"field": "lists", "operator": "contains_none", "value": [contact_list.pk]}
    segments = {}
    for name, rules in CASES.items():
        segment, _ = Segment.objects.update_or_create(organization=org, name=f"bench: {name}",
                                                      defaults={"rules": rules})
        segments[name] = segment
    if define_custom:
        import time

        from contacts.custom_fields import custom_field_indexes_sync
        from contacts.models import CustomField

        CustomField.objects.get_or_create(organization=org, key="loyalty_points", defaults={"type": "number"})
        started = time.perf_counter()
        done = custom_field_indexes_sync(org.pk)  # what the definition's job runs
        print(f"custom-field indexes: {done} in {time.perf_counter() - started:.1f} s", flush=True)
    return segments


def _main_sql(queries, *, count: bool) -> str:
    """The count query (the longest COUNT), or the page's contacts query (the one with LIMIT)."""
    sqls = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and "contacts_contact" in q["sql"]]
    if count:
        return max((sql for sql in sqls if "COUNT(" in sql), key=len)
    return cb._main_query(queries, count=False)


def _time_estimate(sql: str, name: str, *, runs: int) -> dict:
    """Times the EXPLAIN an estimated count runs (median of `runs`) and saves its plan."""
    import time

    from django.db import connection

    times = []
    with connection.cursor() as cursor:
        for _ in range(runs):
            started = time.perf_counter()
            cursor.execute(sql)
            plan = cursor.fetchone()[0]
            times.append((time.perf_counter() - started) * 1000)
        cursor.execute(sql.replace("(FORMAT JSON)", "", 1))
        text = "\n".join(row[0] for row in cursor.fetchall())
    cb.OUT.mkdir(parents=True, exist_ok=True)
    (cb.OUT / f"{name}.plan.txt").write_text(f"{sql}\n\n{text}\n")
    plan = plan[0] if isinstance(plan, list) else plan
    return {"sql_median_ms": statistics.median(times),
            "plan": f"EXPLAIN only (estimate {plan['Plan']['Plan Rows']:,} rows): " + cb._plan_summary(plan["Plan"])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--define-custom", action="store_true",
                        help="define custom.loyalty_points as a number first (builds its expression index)")
    parser.add_argument("--label", default="", help="suffix of the plan files (e.g. before, after)")
    args = parser.parse_args(argv)
    cb.configure_django()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from contacts_crm.models import ApiKey

    org = cb._bench_org(create=False)
    if org is None:
        sys.exit("Fill the database first: bench/contacts_bench.py --fill")
    segments = ensure_objects(org, define_custom=args.define_custom)
    _, raw = ApiKey.generate(organization=org, name="segments bench", scope="read")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    cases = [(key, label, url, is_count) for key, label, url, is_count in CONTACT_CASES]
    for name, segment in segments.items():
        cases.append((f"{name}-count", f"segment {name}: count", f"/api/v1/segments/{segment.pk}/count", True))
        cases.append((f"{name}-first_page", f"segment {name}: first page",
                      f"/api/v1/segments/{segment.pk}/members?limit=50", False))
    from segments.models import ContactList

    # The list's own members page (issue 14, pages), beside the segment that excludes the list.
    bench_list = ContactList.objects.get(organization=org, name=LIST_NAME)
    cases.append(("list_100k_members-first_page", "the 100k list: members, first page",
                  f"/api/v1/lists/{bench_list.pk}/members?limit=50", False))
    cases.append(("c_not_in_100k_list-estimate", "segment c_not_in_100k_list: count?exact=false",
                  f"/api/v1/segments/{segments['c_not_in_100k_list'].pk}/count?exact=false", True))
    suffix = f"-{args.label}" if args.label else ""
    print(f"load average before: {os.getloadavg()}", flush=True)
    rows = []
    for key, label, url, is_count in cases:
        response = client.get(url)
        if response.status_code != 200:  # e.g. ?exact=false before the code knows it
            print(f"skip {key}: {response.status_code} {response.content[:120]!r}", flush=True)
            continue
        times = cb._time_get(client, url, runs=args.runs, warmup=args.warmup)
        with CaptureQueriesContext(connection) as queries:
            body = client.get(url).json()
        explains = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("EXPLAIN (FORMAT JSON)")]
        if explains:  # an estimate: the planner alone, nothing executed
            plan = _time_estimate(explains[0], f"segment-{key}{suffix}", runs=args.runs)
        else:
            plan = cb.explain(_main_sql(queries.captured_queries, count=is_count), f"segment-{key}{suffix}",
                              runs=args.runs)
        result = body.get("count", len(body.get("results", [])))
        if body.get("exact") is False:
            result = f"~{result}"
        rows.append((label, statistics.median(times), cb._percentile(times, 0.95), plan["sql_median_ms"],
                     result, plan["plan"]))
        print(f"{label}: {rows[-1][1]:.1f} ms HTTP, {rows[-1][3]:.1f} ms SQL", flush=True)
    print(f"load average after: {os.getloadavg()}")
    print("| case | result | HTTP median / p95 ms | SQL median ms | plan (main query) |")
    print("|---|---|---|---|---|")
    for label, median, p95, sql, result, summary in rows:
        print(f"| {label} | {result} | {median:.1f} / {p95:.1f} | {sql:.1f} | {summary} |")


if __name__ == "__main__":
    main()
