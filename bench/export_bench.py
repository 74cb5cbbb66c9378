#!/usr/bin/env python
"""The exports benchmark (issue 6): seconds and peak memory to export the benchmark
organization's contacts (bench/contacts_bench.py --fill makes 1,000,000 of them) per format.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/export_bench.py
    ... --limit 100000            # the first N contacts only
    ... --formats csv vcf         # some formats
    ... --old                     # the model-instance path (the only one before issue 14)

Each run also times a `COPY (SELECT * FROM contacts_contact …) TO STDOUT` of the same rows in the
same process (`copy_baseline`): the database's own speed on this machine at that moment, which
the exports are measured against (issue 14: a ratio, since the shared machine is noisy).

Each format runs in a fresh process (peak RSS from resource.getrusage is per process), through
the same code as the API (contacts.exports.export_stream), writing to a temporary file. Results
go to stdout and bench/out/export_results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def copy_baseline(qs) -> float:
    """Seconds to COPY every column of `qs`'s contacts to a sink (rows parsed by nobody)."""
    from django.db import connection

    ids_sql, params = qs.order_by().values("pk").query.sql_with_params()
    sql = f"COPY (SELECT * FROM contacts_contact WHERE id IN ({ids_sql}) ORDER BY id) TO STDOUT"
    started = time.perf_counter()
    with connection.cursor() as cursor, cursor.cursor.copy(sql, params) as copy:
        for _ in copy:
            pass
    return time.perf_counter() - started


def run_one(fmt: str, limit: int | None, old: bool = False) -> dict:
    from bench.contacts_bench import BENCH_SLUG, configure_django

    configure_django()
    from contacts import exports
    from contacts.models import Contact
    from contacts_crm.models import Organization

    org = Organization.objects.get(slug=BENCH_SLUG)
    qs = Contact.objects.for_org(org)
    if limit:
        last = qs.order_by("pk").values_list("pk", flat=True)[limit - 1:limit].first()
        if last is not None:
            qs = qs.filter(pk__lte=last)
    rss_before = peak_rss_mib()
    started = time.perf_counter()
    with tempfile.NamedTemporaryFile(suffix=f".{fmt}") as target:
        if old:  # what export_stream did before issue 14
            table = exports.export_rows(qs, org=org, fast=False)
            content = (exports.xlsx_tempfile(table) if fmt == "xlsx" else
                       exports.csv_chunks(table) if fmt == "csv" else exports.vcard_chunks(table))
        else:
            content, _ = exports.export_stream(qs, org=org, fmt=fmt)
        if fmt == "xlsx":
            with content:
                shutil.copyfileobj(content, target, 1024 * 1024)
        else:
            for chunk in content:
                target.write(chunk)
        target.flush()
        size = os.path.getsize(target.name)
        # The sheet's XML must stay under zipfile's 2 GiB ZIP64 limit, or write_xlsx writes it twice.
        sheet_bytes = None
        if fmt == "xlsx":
            sheet_bytes = zipfile.ZipFile(target.name).getinfo("xl/worksheets/sheet1.xml").file_size
    seconds = time.perf_counter() - started
    count = limit or qs.count()
    baseline = copy_baseline(qs)
    return {"format": fmt, "path": "old" if old else "fast", "contacts": count, "seconds": round(seconds, 1),
            "rows_per_s": round(count / seconds), "copy_seconds": round(baseline, 2),
            "copy_rows_per_s": round(count / baseline), "x_copy": round(baseline / seconds, 3),
            "bytes": size, "sheet_xml_bytes": sheet_bytes, "rss_before_mib": round(rss_before, 1),
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "load_average": os.getloadavg()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="export the first N contacts only")
    parser.add_argument("--formats", nargs="+", default=["csv", "xlsx", "vcf"], choices=["csv", "xlsx", "vcf"])
    parser.add_argument("--old", action="store_true", help="the model-instance path (before issue 14)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.limit, args.old)))
        return
    results = []
    for fmt in args.formats:
        command = [sys.executable, __file__, "--one", fmt] + (["--limit", str(args.limit)] if args.limit else [])
        command += ["--old"] if args.old else []
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        results.append(result)
        print(f"{fmt:5} {result['path']:4} {result['contacts']:>9,} contacts  {result['seconds']:>7.1f} s  "
              f"{result['rows_per_s']:>7,} rows/s  COPY {result['copy_rows_per_s']:>8,} rows/s "
              f"(x{result['x_copy']:.3f})  {result['bytes'] / 2**20:>8.1f} MiB file  "
              + (f"({result['sheet_xml_bytes'] / 2**20:.0f} MiB of sheet XML)  " if result.get("sheet_xml_bytes") else "")
              + f"peak RSS {result['peak_rss_mib']:.0f} MiB (after setup {result['rss_before_mib']:.0f} MiB)  "
              f"load {result['load_average'][0]:.1f}", flush=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"export_results{'_old' if args.old else ''}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
