#!/usr/bin/env python
"""The exports benchmark (issue 6): seconds and peak memory to export the benchmark
organization's contacts (bench/contacts_bench.py --fill makes 1,000,000 of them) per format.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/export_bench.py
    ... --limit 100000            # the first N contacts only
    ... --formats csv vcf         # some formats

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_one(fmt: str, limit: int | None) -> dict:
    from bench.contacts_bench import BENCH_SLUG, configure_django

    configure_django()
    from contacts.exports import export_stream
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
        content, _ = export_stream(qs, org=org, fmt=fmt)
        if fmt == "xlsx":
            with content:
                shutil.copyfileobj(content, target, 1024 * 1024)
        else:
            for chunk in content:
                target.write(chunk)
        target.flush()
        size = os.path.getsize(target.name)
    seconds = time.perf_counter() - started
    return {"format": fmt, "contacts": limit or qs.count(), "seconds": round(seconds, 1),
            "bytes": size, "rss_before_mib": round(rss_before, 1), "peak_rss_mib": round(peak_rss_mib(), 1)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="export the first N contacts only")
    parser.add_argument("--formats", nargs="+", default=["csv", "xlsx", "vcf"], choices=["csv", "xlsx", "vcf"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.limit)))
        return
    results = []
    for fmt in args.formats:
        command = [sys.executable, __file__, "--one", fmt] + (["--limit", str(args.limit)] if args.limit else [])
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        results.append(result)
        print(f"{fmt:5} {result['contacts']:>9,} contacts  {result['seconds']:>7.1f} s  "
              f"{result['bytes'] / 2**20:>8.1f} MiB file  peak RSS {result['peak_rss_mib']:.0f} MiB "
              f"(after setup {result['rss_before_mib']:.0f} MiB)", flush=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "export_results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
