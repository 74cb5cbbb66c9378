#!/usr/bin/env python
"""The contacts index diet (issue 9 §6): what each index of contacts_contact buys a query and
what it costs a COPY. Runs on the bench database that `bench/contacts_bench.py --fill` made.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench
    .venv/bin/python bench/index_diet.py --search             # search terms: HTTP + SQL medians, plans
    .venv/bin/python bench/index_diet.py --queries            # each query with / without each index
    .venv/bin/python bench/index_diet.py --copy 100000        # COPY cost of each index (scratch table)

`--queries` times each case's main query with every index, then inside a transaction that
drops one candidate index (rolled back: nothing changes), so "without" is what the planner does
once the index is gone. `--copy` COPYs the same N contacts (taken from the bench organization)
into a scratch copy of contacts_contact carrying the primary key and the two unique
constraints, then that plus one index at a time, then the old and the new full index sets;
each set `--repeats` times, keeping the fastest run (the others measure the machine's load).
Results go to bench/out/diet-*.json and are printed as Markdown tables.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contacts_bench as cb  # noqa: E402

SEARCH_TERMS = [
    ("search_typo", "Robinsen", "fuzzy: typo of Robinson (8 letters)"),
    ("search_typo5", "Smiht", "fuzzy: typo of Smith (5 letters)"),
    ("search_two_words", "Stephnie Ortiz", "two words, one typo"),
    ("search_common", "Smith", "exact, common"),
    ("search_substring", "obins", "substring inside a word"),
    ("search_nothing", "Zzyzx", "no match"),
    ("search_phone7", "{last7}", "7 phone digits"),
    ("search_phone_spaced", "{spaced}", "whole phone typed with spaces"),
    ("search_phone_national", "{national}", "national number with spaces"),
]


def _phone_terms(org):
    from contacts.models import Contact

    phone = Contact.objects.for_org(org).filter(phone__startswith="+1").order_by("-updated_at")[1000].phone
    digits = phone[1:]
    return {
        "last7": digits[-7:],
        "spaced": f"+{digits[0]} {digits[1:4]} {digits[4:7]} {digits[7:]}",
        "national": f"{digits[1:4]} {digits[4:7]} {digits[7:]}",
    }


def _client(org):
    from django.test import Client

    from contacts_crm.models import ApiKey

    ApiKey.objects.for_org(org).filter(name="bench-diet").delete()
    _, raw_key = ApiKey.generate(organization=org, name="bench-diet", scope=ApiKey.Scope.READ)
    return Client(headers={"Authorization": f"Bearer {raw_key}"})


def _main_sql(client, url, *, count):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = cb._get_ok(client, url)
    body = response.json()
    found = body["count"] if count else len(body["results"])
    return cb._main_query(captured.captured_queries, count=count), found


def search(*, runs: int, warmup: int) -> list[dict]:
    from urllib.parse import quote

    org = cb._bench_org(create=False)
    client = _client(org)
    terms = _phone_terms(org)
    results = []
    for key, term, label in SEARCH_TERMS:
        term = term.format(**terms)
        url = f"/api/v1/contacts?search={quote(term)}"
        times = cb._time_get(client, url, runs=runs, warmup=warmup)
        sql, found = _main_sql(client, url, count=False)
        total = cb._get_ok(client, f"/api/v1/contacts/count?search={quote(term)}").json()["count"]
        results.append({"case": key, "term": term, "label": label, "result": found, "matches": total,
                        "median_ms": statistics.median(times), **cb.explain(sql, f"diet-{key}", runs=runs)})
    return results


# (case, url, is_count, candidate indexes): the API's filters, one per btree that might serve them.
QUERY_CASES = [
    ("first page", "/api/v1/contacts?limit=50", False, ["contact_org_updated"]),
    ("first page, created_at", "/api/v1/contacts?limit=50&sort=created_at", False, ["contact_org_created"]),
    ("count, whole organization", "/api/v1/contacts/count", True, ["contacts_contact_organization_id_1f9763f9"]),
    ("state=NC page", "/api/v1/contacts?state=NC", False, ["contact_org_state"]),
    ("count?state=NC", "/api/v1/contacts/count?state=NC", True, ["contact_org_state"]),
    ("count?state=NC&tags=vip", "/api/v1/contacts/count?state=NC&tags=vip", True, ["contact_org_state"]),
    ("zip page", "/api/v1/contacts?zip={zip}", False, ["contact_org_zip"]),
    ("count?zip", "/api/v1/contacts/count?zip={zip}", True, ["contact_org_zip"]),
    ("country=US page", "/api/v1/contacts?country=US", False, ["contact_org_country"]),
    ("count?country=US", "/api/v1/contacts/count?country=US", True, ["contact_org_country"]),
    ("lifecycle_stage=churned page", "/api/v1/contacts?lifecycle_stage=churned", False, ["contact_org_stage"]),
    ("count?lifecycle_stage=churned", "/api/v1/contacts/count?lifecycle_stage=churned", True, ["contact_org_stage"]),
    ("opted_out=true page", "/api/v1/contacts?opted_out=true", False, ["contact_org_opted_out"]),
    ("count?opted_out=true", "/api/v1/contacts/count?opted_out=true", True, ["contact_org_opted_out"]),
    ("opt-outs list", "/api/v1/contacts/opt-outs", False, ["contact_org_opted_out"]),
    ("is_textable=unknown page", "/api/v1/contacts?is_textable=unknown", False, ["contact_org_textable"]),
    ("count?is_textable=unknown", "/api/v1/contacts/count?is_textable=unknown", True, ["contact_org_textable"]),
    ("count?is_textable=false", "/api/v1/contacts/count?is_textable=false", True, ["contact_org_textable"]),
]


def _explain_without(sql, name, index, *, runs):
    from django.db import connection, transaction

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f'DROP INDEX "{index}"')
        result = cb.explain(sql, name, runs=runs)
        transaction.set_rollback(True)
    return result


def queries(*, runs: int, warmup: int) -> list[dict]:
    from django.db import connection

    from contacts.models import Contact

    org = cb._bench_org(create=False)
    client = _client(org)
    zip_code = Contact.objects.for_org(org).order_by("-updated_at").values_list("zip", flat=True)[500]
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexrelname FROM pg_stat_user_indexes WHERE relname = 'contacts_contact'")
        present = {row[0] for row in cursor.fetchall()}
    results = []
    for label, url, is_count, indexes in QUERY_CASES:
        url = url.format(zip=zip_code)
        cb._time_get(client, url, runs=1, warmup=warmup)
        sql, found = _main_sql(client, url, count=is_count)
        slug = "diet-q-" + "".join(c if c.isalnum() else "_" for c in label)
        with_all = cb.explain(sql, slug, runs=runs)
        row = {"case": label, "url": url, "result": found, "with_ms": with_all["sql_median_ms"],
               "plan": with_all["plan"], "without": {}}
        for index in indexes:
            if index in present:
                without = _explain_without(sql, f"{slug}-without", index, runs=runs)
                row["without"][index] = {"ms": without["sql_median_ms"], "plan": without["plan"]}
        results.append(row)
    return results


def _index_definitions():
    """(name, definition) of every index on contacts_contact, constraint-backed ones flagged."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid), EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid) "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = 'contacts_contact'::regclass "
            "ORDER BY 1"
        )
        return cursor.fetchall()


def copy_cost(rows: int, *, repeats: int) -> list[dict]:
    """Seconds to COPY `rows` contacts into a scratch table per index set (median of `repeats`)."""
    import importlib

    from django.db import connection

    migration = importlib.import_module("contacts.migrations.0005_search_document")
    old_trigram, dropped_btrees = migration.OLD_TRIGRAM_INDEXES, migration.DROPPED_BTREES
    definitions = _index_definitions()
    raw = connection.connection
    with raw.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS diet_copy")
        cursor.execute("CREATE TABLE diet_copy (LIKE contacts_contact INCLUDING DEFAULTS)")
        buffer = io.BytesIO()
        with cursor.copy(f"COPY (SELECT * FROM contacts_contact ORDER BY id LIMIT {int(rows)}) TO STDOUT") as out:
            for block in out:
                buffer.write(block)
        data = buffer.getvalue()
    raw.commit()

    def scratch(definition: str, name: str) -> str:
        return (definition.replace("ON public.contacts_contact ", "ON diet_copy ")
                .replace(f"INDEX {name} ", f"INDEX diet_{name} "))

    base = [(n, d) for n, d, constraint in definitions if constraint]
    secondary = [(n, d) for n, d, constraint in definitions if not constraint]
    current = {n for n, _ in secondary}
    extra = [(n, f"CREATE INDEX {n} ON public.contacts_contact USING gin ({expr} gin_trgm_ops)")
             for n, expr in old_trigram.items() if n not in current]
    extra += [(i.name, None) for i in dropped_btrees if i.name not in current]

    def run(label, chosen):
        times = []
        for _ in range(repeats):
            with raw.cursor() as cursor:
                cursor.execute("DROP TABLE IF EXISTS diet_copy")
                cursor.execute("CREATE TABLE diet_copy (LIKE contacts_contact INCLUDING DEFAULTS)")
                for name, definition in chosen:
                    cursor.execute(scratch(definition, name))
                raw.commit()
                t0 = time.perf_counter()
                with cursor.copy("COPY diet_copy FROM STDIN") as copy:
                    copy.write(data)
                raw.commit()
                times.append(time.perf_counter() - t0)
        # The fastest run: on a shared machine the others measure the neighbours' load.
        seconds = min(times)
        print(f"{label}: {seconds:.2f} s ({rows / seconds:,.0f} rows/s), runs {times}", file=sys.stderr)
        return {"set": label, "indexes": [n for n, _ in chosen], "seconds": seconds, "rows_per_s": rows / seconds,
                "runs": times}

    btree_defs = _dropped_btree_definitions(dropped_btrees)
    extra = [(n, d if d is not None else btree_defs[n]) for n, d in extra]
    results = [run("none (heap only)", []), run("pk + 2 unique (base)", base)]
    for name, definition in secondary + extra:
        results.append(run(f"base + {name}", [*base, (name, definition)]))
    results.append(run("pk + 2 unique (base, again)", base))
    results.append(run("after the diet (base + every index on the table now)", [*base, *secondary]))
    results.append(run("before the diet (base + today's + dropped ones)", [*base, *secondary, *extra]))
    with raw.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS diet_copy")
    raw.commit()
    return results


def _dropped_btree_definitions(indexes) -> dict[str, str]:
    from django.db import connection

    from contacts.models import Contact

    with connection.schema_editor(collect_sql=True) as editor:
        sql = {index.name: str(index.create_sql(Contact, editor)) for index in indexes}
    return {name: statement.replace('"contacts_contact"', "public.contacts_contact ").replace(f'"{name}"', name)
            .replace("public.contacts_contact  (", "public.contacts_contact (") for name, statement in sql.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--search", action="store_true")
    parser.add_argument("--queries", action="store_true")
    parser.add_argument("--copy", type=int, metavar="N")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tag", default="", help="suffix of the output files (e.g. before/after)")
    args = parser.parse_args(argv)
    cb.configure_django()
    cb.OUT.mkdir(parents=True, exist_ok=True)
    suffix = f"-{args.tag}" if args.tag else ""
    if args.search:
        results = search(runs=args.runs, warmup=args.warmup)
        (cb.OUT / f"diet-search{suffix}.json").write_text(json.dumps(results, indent=2))
        print("| term | what | page rows / matches | HTTP median ms | SQL median ms | plan |\n|---|---|---|---|---|---|")
        for r in results:
            print(f"| `{r['term']}` | {r['label']} | {r['result']} / {r['matches']} | {r['median_ms']:.1f} "
                  f"| {r['sql_median_ms']:.1f} | {r['plan']} |")
    if args.queries:
        results = queries(runs=args.runs, warmup=args.warmup)
        (cb.OUT / f"diet-queries{suffix}.json").write_text(json.dumps(results, indent=2))
        print("| query | rows | SQL ms with | plan | without: index → ms, plan |\n|---|---|---|---|---|")
        for r in results:
            without = "; ".join(f"{i} → {w['ms']:.1f} ms, {w['plan']}" for i, w in r["without"].items())
            print(f"| {r['case']} | {r['result']} | {r['with_ms']:.1f} | {r['plan']} | {without} |")
    if args.copy:
        results = copy_cost(args.copy, repeats=args.repeats)
        (cb.OUT / f"diet-copy{suffix}.json").write_text(json.dumps(results, indent=2))
        base = results[1]["seconds"]
        print("| index set | seconds | rows/s | over the base |\n|---|---|---|---|")
        for r in results:
            print(f"| {r['set']} | {r['seconds']:.2f} | {r['rows_per_s']:,.0f} | {r['seconds'] - base:+.2f} s |")


if __name__ == "__main__":
    main()
