#!/usr/bin/env python
"""The admin's pages on the 1M-contact bench organization (issue 12, "Admin pages stay fast").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/contacts_bench.py --fill
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/admin_bench.py [--runs 10]

Times each page over Django's test client (session, admin, filters, templates: everything but
the socket), counts its queries and names the slowest, and writes bench/out/admin.md. The
changelist cases are the first page, filtered pages, searches, the sorts, "Show counts" (facets)
and the date hierarchy; then a contact's page, the index and the segment list. Uses
contacts_bench's organization and settings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contacts_bench import OUT, _bench_org, _get_ok, _percentile, configure_django, machine  # noqa: E402

CASES = [
    ("changelist, first page", "/admin/contacts/contact/"),
    ("filtered: state NC", "/admin/contacts/contact/?state=NC"),
    ("filtered: opted out", "/admin/contacts/contact/?opted_out__exact=1"),
    ("filtered: tag vip", "/admin/contacts/contact/?tag=vip"),
    ("filtered: created in the last 7 days", "/admin/contacts/contact/?created_at__gte={week_ago}"),
    ("search: a last name (garcia)", "/admin/contacts/contact/?q=garcia"),
    ("search: phone digits", "/admin/contacts/contact/?q=9195550"),
    ("sorted by name", "/admin/contacts/contact/?o=1"),
    ("sorted by email", "/admin/contacts/contact/?o=3"),
    ("date hierarchy: a year", "/admin/contacts/contact/?created_at__year={year}"),
    ("show counts (facets), whole book", "/admin/contacts/contact/?_facets=True"),
    ("show counts (facets), after a search", "/admin/contacts/contact/?q=garcia&_facets=True"),
    ("contact page", "/admin/contacts/contact/{contact}/change/"),
    ("admin index", "/admin/"),
    ("segment list (4 segments, counts cached)", "/admin/segments/segment/"),
]


def _staff(org):
    from django.contrib.auth import get_user_model

    from contacts_crm.models import Membership

    user, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    Membership.objects.get_or_create(user=user, organization=org, defaults={"role": Membership.Role.ADMIN})
    return user


def _segments(org):
    from segments.models import Segment

    rules = [
        ("NC", {"field": "state", "operator": "eq", "value": "NC"}),
        ("VIPs", {"field": "tags", "operator": "contains_any", "value": ["vip"]}),
        ("Textable leads", {"op": "and", "rules": [{"field": "is_textable", "operator": "eq", "value": True},
                                                   {"field": "lifecycle_stage", "operator": "eq", "value": "lead"}]}),
        ("Opted out", {"field": "opted_out", "operator": "eq", "value": True}),
    ]
    for name, rule in rules:
        Segment.objects.get_or_create(organization=org, name=name, defaults={"rules": rule})


def measure(runs: int) -> list[dict]:
    from datetime import timedelta

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from contacts.models import Contact

    org = _bench_org(create=False)
    if org is None:
        sys.exit("No bench organization: run bench/contacts_bench.py --fill first.")
    _segments(org)
    client = Client()
    client.force_login(_staff(org))
    contact = Contact.objects.for_org(org).order_by("-updated_at").first()
    values = {"week_ago": (timezone.now() - timedelta(days=7)).date().isoformat(), "year": timezone.now().year,
              "contact": contact.pk}
    results = []
    for label, template in CASES:
        url = template.format(**values)
        cold_t0 = time.perf_counter()
        _get_ok(client, url)
        cold = (time.perf_counter() - cold_t0) * 1000
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            _get_ok(client, url)
            times.append((time.perf_counter() - t0) * 1000)
        with CaptureQueriesContext(connection) as captured:
            _get_ok(client, url)
        queries = captured.captured_queries
        slowest = max(queries, key=lambda q: float(q["time"]))
        results.append({
            "label": label, "url": url, "first_ms": cold, "median_ms": statistics.median(times),
            "p95_ms": _percentile(times, 0.95), "queries": len(queries),
            "sql_ms": sum(float(q["time"]) for q in queries) * 1000,
            "slowest_ms": float(slowest["time"]) * 1000, "slowest": " ".join(slowest["sql"].split())[:90],
        })
        print(f"{label}: median {results[-1]['median_ms']:.0f} ms", file=sys.stderr)
    return results


def table(results: list[dict]) -> str:
    lines = ["| page | first load ms | median / p95 ms | queries | SQL ms (sum) | slowest query |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['label']} | {r['first_ms']:.0f} | {r['median_ms']:.0f} / {r['p95_ms']:.0f} | "
                     f"{r['queries']} | {r['sql_ms']:.1f} | {r['slowest_ms']:.1f} ms: `{r['slowest']}…` |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per page after one untimed (default 10)")
    args = parser.parse_args(argv)
    configure_django()
    # The query log needs DEBUG's cursor wrapper only inside CaptureQueriesContext; timings run without it.
    results = measure(args.runs)
    text = table(results)
    print(machine())
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "admin.md").write_text(f"{machine()}\n\n{text}\n")


if __name__ == "__main__":
    main()
