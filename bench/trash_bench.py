#!/usr/bin/env python
"""What the trash costs the hot read paths (issue 10): the same queries with and without the
`deleted_at IS NULL` predicate that `ContactQuerySet.for_org()` adds, alternated run by run in one
process (the machine is shared and noisy: an A/B in the same seconds is the only fair figure).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/contacts_bench.py --fill
    DATABASE_URL=... .venv/bin/python bench/trash_bench.py [--runs 40] [--trash-share 0.01]

It measures twice: with an empty trash, then with `--trash-share` of the contacts moved to the
trash (an UPDATE of deleted_at, undone at the end), since the predicate only filters once rows
are trashed. Prints a Markdown table; bench/README.md keeps the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREDICATE = ' AND "contacts_contact"."deleted_at" IS NULL'


def cases(org):
    from contacts.models import Contact

    live = Contact.objects.for_org(org)
    order = ("-updated_at", "-id")
    return [
        ("first page of 50", live.order_by(*order).values("pk")[:51], False),
        ("search=Robinsen (typo), page", live.search("Robinsen").order_by(*order).values("pk")[:51], False),
        ("search=Smith, page", live.search("Smith").order_by(*order).values("pk")[:51], False),
        ("tags=vip,newsletter (and), page", live.tagged_all(["vip", "newsletter"], org=org).order_by(*order)
         .values("pk")[:51], False),
        ("count of the organization", live.values("pk"), True),
        ("count state=NC&tags=vip", live.in_state(["NC"]).tagged_any(["vip"], org=org).values("pk"), True),
        ("count opted_out=true", live.filter(opted_out=True).values("pk"), True),
    ]


def _sql(qs, count: bool):
    sql, params = qs.query.sql_with_params()
    if count:
        sql = f"SELECT COUNT(*) FROM ({sql}) AS s"
    if PREDICATE not in sql:
        sys.exit(f"The trash predicate is not in the query; the benchmark is out of date:\n{sql}")
    return sql, params, sql.replace(PREDICATE, "")


def _time(cursor, sql, params) -> float:
    t0 = time.perf_counter()
    cursor.execute(sql, params)
    cursor.fetchall()
    return (time.perf_counter() - t0) * 1000


def measure(org, runs: int) -> list[dict]:
    from django.db import connection

    rows = []
    with connection.cursor() as cursor:
        for label, qs, count in cases(org):
            with_sql, params, without_sql = _sql(qs, count)
            for _ in range(3):  # warm the cache for both
                _time(cursor, with_sql, params)
                _time(cursor, without_sql, params)
            a, b = [], []
            for run in range(runs):  # alternate which goes first
                if run % 2:
                    a.append(_time(cursor, with_sql, params))
                    b.append(_time(cursor, without_sql, params))
                else:
                    b.append(_time(cursor, without_sql, params))
                    a.append(_time(cursor, with_sql, params))
            cursor.execute(f"EXPLAIN {with_sql}", params)
            text = " ".join(line[0] for line in cursor.fetchall())
            plan = ", ".join(dict.fromkeys(f"{kind} {name}" for kind, name in re.findall(
                r"(Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)(?: Backward)? (?:using|on) (\w+)", text)))
            rows.append({"case": label, "without": statistics.median(b), "with": statistics.median(a),
                         "plan": plan})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--trash-share", type=float, default=0.01)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contacts_crm.settings")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
    import django

    django.setup()
    from django.db import connection

    from contacts_crm.models import Organization

    if connection.vendor != "postgresql":
        sys.exit("trash_bench needs PostgreSQL (DATABASE_URL).")
    org = Organization.objects.filter(slug="bench").first()
    if org is None:
        sys.exit("No bench data: run bench/contacts_bench.py --fill first.")
    # The "without" queries stand for the code before issue 10, which had these four indexes
    # without the partial predicate: build them for the run (the "with" queries still get the
    # partial ones, smaller), drop them after.
    baseline = [
        ("bench_base_org", "(organization_id)"),
        ("bench_base_org_updated", "(organization_id, updated_at, id)"),
        ("bench_base_org_created", "(organization_id, created_at, id)"),
        ("bench_base_org_opted_out", "(organization_id, opted_out, updated_at, id)"),
    ]
    with connection.cursor() as cursor:
        for name, columns in baseline:
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON contacts_contact {columns}")
        cursor.execute("VACUUM ANALYZE contacts_contact")
    try:
        results = _run(org, args, connection)
    finally:
        with connection.cursor() as cursor:
            for name, _ in baseline:
                cursor.execute(f"DROP INDEX IF EXISTS {name}")
    _print(results, args.runs)


def _run(org, args, connection) -> dict:
    results = {"empty trash": measure(org, args.runs)}
    with connection.cursor() as cursor:
        cursor.execute("UPDATE contacts_contact SET deleted_at = now() WHERE organization_id = %s AND "
                       "random() < %s", [org.pk, args.trash_share])
        trashed = cursor.rowcount
        cursor.execute("VACUUM ANALYZE contacts_contact")  # what autovacuum does soon after
    try:
        results[f"{trashed:,} contacts in the trash"] = measure(org, args.runs)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE contacts_contact SET deleted_at = NULL WHERE deleted_at IS NOT NULL")
            cursor.execute("VACUUM ANALYZE contacts_contact")
    return results


def _print(results: dict, runs: int) -> None:
    print(f"{runs} alternated runs per case, SQL only (psycopg round trip included), medians in ms\n")
    print("| trash | case | without the trash filter | with it | ratio | plan (with) |")
    print("|---|---|---|---|---|---|")
    for state, rows in results.items():
        for r in rows:
            print(f"| {state} | {r['case']} | {r['without']:.1f} | {r['with']:.1f} | "
                  f"{r['with'] / r['without']:.2f} | {r['plan']} |")


if __name__ == "__main__":
    main()
