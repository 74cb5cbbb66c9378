#!/usr/bin/env python
"""The import preview of a big workbook, and encoding detection on a big CSV (issue 13 item 13,
issue 15): what the web worker pays before an import is even queued.

    .venv/bin/python bench/import_preview_bench.py                 # 1,390,000-row XLSX, 1M-row CSV
    .venv/bin/python bench/import_preview_bench.py --rows 200000   # smaller files

The files are generated into bench/out/ (gitignored; openpyxl write_only for the workbook, two
columns so that it stays under the 200 MB unpacked limit). Each measurement runs in a fresh
Python process (Django set up, nothing else imported yet) so that its peak RSS (ru_maxrss) is
its own: `preview` builds the 10-row preview exactly as `start_import` does; `csv_read` streams
every row of a cp1252 CSV through read_delimited (best of 3), and `detect` times the encoding
detection alone on the file's 64 KB head (the only part it reads).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"

CHILD = r"""
import io, json, os, resource, sys, time
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contacts_crm.settings")
os.environ.setdefault("DEBUG", "1")
import django
django.setup()
case, path = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = {"case": case, "rss_before_mb": round(base / 1024)}
if case == "preview":
    from imports.pipeline import build_preview
    start = time.perf_counter()
    with open(path, "rb") as f:
        preview = build_preview(f, fmt="xlsx", has_header=True, overrides=None, custom_unmapped=False,
                                region="US", definitions={}, limit=10)
    result.update(seconds=round(time.perf_counter() - start, 2), rows=len(preview["rows"]),
                  sheets=preview.get("sheets"))
else:
    from imports.readers import delimited
    data = open(path, "rb").read()
    best = None
    for _ in range(3):
        start = time.perf_counter()
        rows = sum(1 for _ in delimited.read_delimited(io.BytesIO(data)))
        best = min(best or 1e9, time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(20):
        encoding = delimited.detect_encoding(data[: delimited.HEAD_BYTES])
    result.update(seconds=round(best, 2), rows=rows, encoding=encoding,
                  detect_ms=round((time.perf_counter() - start) / 20 * 1000, 1))
result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(result))
"""


def make_workbook(path: Path, rows: int) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Contacts")
    sheet.append(["Email", "Phone"])
    for i in range(rows):
        sheet.append([f"ann{i}@example.com", 19195550000 + i])
    book.save(path)


def make_csv(path: Path, rows: int) -> None:
    names = ["José", "Hélène", "Müller", "Zoë", "François", "Ann", "Bob", "O’Brien"]
    with path.open("wb") as f:
        f.write(b"First Name,Last Name,Email,Phone,City\r\n")
        for i in range(rows):
            f.write(f"{names[i % 8]},Lee{i},a{i}@example.com,(919) 555-{i % 10000:04d},Durham\r\n".encode("cp1252"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_390_000)
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    book = OUT / f"preview-{args.rows}.xlsx"
    text = OUT / f"cp1252-{args.csv_rows}.csv"
    if not book.exists():
        make_workbook(book, args.rows)
    if not text.exists():
        make_csv(text, args.csv_rows)
    for case, path in (("preview", book), ("csv_read", text)):
        out = subprocess.run([sys.executable, "-c", CHILD, case, str(path)], cwd=ROOT, capture_output=True,
                             text=True, check=True, env={**os.environ, "DEBUG": "1"})
        result = json.loads(out.stdout)
        result["file_mb"] = round(path.stat().st_size / 2**20, 1)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
