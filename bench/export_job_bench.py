#!/usr/bin/env python
"""The background export benchmark (issue 14, "big exports run as a background job"): what the
job costs over streaming the same file, and what deciding between the two costs each export.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/export_job_bench.py
    ... --runs 30          # timed runs per decision case (median)
    ... --jobs 3           # stream/job pairs of the whole-book CSV export (alternated)

1. The decision (contacts.export_jobs.export_is_big): one count capped at EXPORT_STREAM_MAX_ROWS
   plus one row, run before every `GET /contacts/export`; median milliseconds per filter,
   against the time to stream a 50,000-contact CSV export (the largest that still streams)
   measured in the same run.
2. The job (run_export: count, COPY slices, a progress UPDATE per slice, a temporary file, then
   storage) against export_stream of the same rows into a temporary file, alternated in one
   process so both see the same machine load.

Needs the benchmark organization (bench/contacts_bench.py --fill). Files go to a temporary
MEDIA_ROOT, deleted at the end; the ExportJob rows are deleted too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = [
    ("every contact", {}),
    ("tags=vip", {"tags": "vip"}),
    ("state=NC", {"state": "NC"}),
    ("tags AND (press, government), ≈150", {"tags": "press,government", "tags_logic": "and"}),
]


def stream_seconds(qs, org) -> float:
    from contacts.exports import export_stream

    started = time.perf_counter()
    with tempfile.TemporaryFile() as target:
        content, _ = export_stream(qs, org=org, fmt="csv")
        for chunk in content:
            target.write(chunk)
    return time.perf_counter() - started


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    media = tempfile.mkdtemp(prefix="export-job-bench-")
    os.environ["MEDIA_ROOT"] = media
    from bench.contacts_bench import BENCH_SLUG, configure_django

    configure_django()
    from django.conf import settings

    from contacts.export_jobs import export_is_big, export_queryset, run_export
    from contacts.models import Contact, ExportJob
    from contacts_crm.models import Organization

    org = Organization.objects.get(slug=BENCH_SLUG)
    qs = Contact.objects.for_org(org)
    total = qs.count()
    print(f"{total:,} contacts; EXPORT_STREAM_MAX_ROWS={settings.EXPORT_STREAM_MAX_ROWS:,}; "
          f"load {os.getloadavg()[0]:.1f}", flush=True)

    limit = settings.EXPORT_STREAM_MAX_ROWS
    last = qs.order_by("pk").values_list("pk", flat=True)[limit - 1:limit].first()
    small = qs.filter(pk__lte=last)
    streams = [stream_seconds(small, org) for _ in range(3)]
    stream_ms = statistics.median(streams) * 1000
    print(f"\n1. Deciding (median of {args.runs}); baseline: streaming {limit:,} contacts as CSV "
          f"{stream_ms:,.0f} ms (median of 3)")
    print("| filter | big? | decision ms | ÷ 50k stream |\n|---|---|---|---|")
    for name, params in CASES:
        job = ExportJob(organization=org, params=params)
        case_qs = export_queryset(job)
        times, big = [], None
        for _ in range(args.runs):
            started = time.perf_counter()
            big = export_is_big(case_qs)
            times.append((time.perf_counter() - started) * 1000)
        median = statistics.median(times)
        print(f"| {name} | {'yes' if big else 'no'} | {median:.1f} | {median / stream_ms:.3f} |", flush=True)

    print(f"\n2. The whole book as CSV: stream vs job, {args.jobs} alternated pairs (load "
          f"{os.getloadavg()[0]:.1f})")
    print("| run | stream s | job s | job ÷ stream | job rows/s | progress updates |\n|---|---|---|---|---|---|")
    try:
        for run in range(1, args.jobs + 1):
            stream = stream_seconds(qs, org)
            job = ExportJob.objects.create(organization=org, format="csv", params={})
            started = time.perf_counter()
            run_export(job.pk)
            seconds = time.perf_counter() - started
            job.refresh_from_db()
            assert job.status == ExportJob.Status.SUCCEEDED and job.rows_done == total, (job.status, job.error)
            slices = -(-total // 50_000)
            print(f"| {run} | {stream:.1f} | {seconds:.1f} | {seconds / stream:.3f} | {total / seconds:,.0f} | "
                  f"{slices} |", flush=True)
            job.file.delete(save=False)
            job.delete()
    finally:
        import shutil

        shutil.rmtree(media, ignore_errors=True)
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
