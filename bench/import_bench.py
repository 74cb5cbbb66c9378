#!/usr/bin/env python
"""The import benchmark (issue 5, "Speed and memory"): generated files imported into PostgreSQL
through the real job on one RQ worker, next to two baselines measured in the same run.

    createdb -h 127.0.0.1 -U postgres crm_imbench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_imbench REDIS_URL=redis://127.0.0.1:6379/11
    DEBUG=1 .venv/bin/python manage.py migrate
    .venv/bin/python bench/import_bench.py                  # 1M-row CSV, 100k XLSX, 20k vCards (long)
    .venv/bin/python bench/import_bench.py --rows 100000    # a smaller CSV
    .venv/bin/python bench/import_bench.py --rows 100000 --skip-xlsx --skip-vcf --skip-die
    .venv/bin/python bench/import_bench.py --rows 100000 --profile   # pyinstrument, in-process, no worker

Cases, in order: `copy` (the physical limit: COPY of the same contacts, already normalized, into
a reference table with a uuid primary key, a unique (organization, phone) index, an
(organization, lower(email)) index and an (organization, updated_at, id) index), `die`
(django-import-export importing the first 10,000 CSV rows with import_id_fields=("phone",) into
Contact), `csv` (fresh import), `csv_again` (the same file: every contact unchanged), `xlsx`,
`vcf`. Each import is created with start_import(launch=False), enqueued on the RQ `default`
queue and run by `manage.py rqworker --burst default` as a subprocess; its wall time, the
job's own time, the reading/writing split and the worker's peak RSS (wait4's ru_maxrss: the
largest process of the tree, the forked work horse included; psutil polling of the whole tree as
a cross-check) are recorded.

Generated files are cached in bench/out/ (gitignored) by size and seed. The run writes
bench/out/import_results.json and the table into bench/README.md (between the import-bench
markers of its "Imports" section). The database must hold nothing but this benchmark's
organizations (slugs `imbench-*`): the run TRUNCATEs the organizations table (CASCADE) first.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
README = ROOT / "bench" / "README.md"
ORG_PREFIX = "imbench-"
SEED = 20260501
BEGIN_MARK = "<!-- import-bench:begin -->"
END_MARK = "<!-- import-bench:end -->"

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contacts_bench as cb  # noqa: E402  (names, states with area codes, tags, email domains)

CSV_HEADER = ["First Name", "Last Name", "Phone", "Email", "State", "Tags", "Loyalty Tier", "Signup Source"]
TIERS = ["bronze", "silver", "gold", "platinum"]
SOURCES = ["web", "store", "event", "referral", "partner"]
DUPLICATE_SHARE = 0.10
EMAIL_SHARE = 0.70
# How US numbers are typed in real files. The last two go through phonenumbers (slow path) and
# warn: an extension, a label after the number.
PHONE_FORMATS = [
    ("({a}) {e}-{s}", 20), ("{a}-{e}-{s}", 20), ("{a}.{e}.{s}", 8), ("+1 {a} {e} {s}", 10),
    ("1-{a}-{e}-{s}", 8), ("{a}{e}{s}", 14), ("+1{a}{e}{s}", 10), ("1{a}{e}{s}", 5), ("{a} {e} {s}", 4),
    ("{a}-{e}-{s} ext. {x}", 1), ("{a}-{e}-{s} (cell)", 0.5),
]
BAD_PHONE_SHARE = 0.002  # "555-12": invalid; the row fails when it has no email either


# ---------------------------------------------------------------------------------------------
# Django
# ---------------------------------------------------------------------------------------------
def worker_env() -> dict:
    """The environment of the bench process and of the worker: production-like (DEBUG off, no
    query log growing in memory), uploads under bench/out/media."""
    env = os.environ.copy()
    env.setdefault("DJANGO_SETTINGS_MODULE", "contacts_crm.settings")
    env.setdefault("DEBUG", "0")
    env.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789abcdef")
    env.setdefault("SECURE_SSL_REDIRECT", "0")
    env.setdefault("MEDIA_ROOT", str(OUT / "media"))
    return env


def configure_django(need_redis: bool) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.update({k: v for k, v in worker_env().items() if k not in os.environ})
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("The benchmark needs PostgreSQL: set DATABASE_URL=postgres://…/crm_imbench (a database of its own).")
    if need_redis and not os.environ.get("REDIS_URL"):
        sys.exit("The imports run on an RQ worker: set REDIS_URL=redis://127.0.0.1:6379/N (a db of its own).")


def reset_database() -> None:
    """Empties every organization (and, by CASCADE, contacts, tags, events, imports, lists)."""
    from django.db import connection

    from contacts_crm.models import Organization

    foreign = Organization.objects.exclude(slug__startswith=ORG_PREFIX)
    if foreign.exists():
        sys.exit(f"This database holds organizations that are not the benchmark's ({foreign.first().slug}): "
                 "use a database of its own.")
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {connection.ops.quote_name(Organization._meta.db_table)} CASCADE")


def make_org(name: str):
    from contacts_crm.models import Organization

    return Organization.objects.create(name=f"Import bench {name}", slug=ORG_PREFIX + name, default_region="US")


# ---------------------------------------------------------------------------------------------
# Generated people and files
# ---------------------------------------------------------------------------------------------
_STATE_SLOTS = [state for state, share, _ in cb.STATES for _ in range(share)]
_AREA_CODES = {state: codes.split() for state, _, codes in cb.STATES}
_TAG_VALUES, _TAG_CUM = cb._weighted(cb.TAGS)
_DOMAINS, _DOMAIN_CUM = cb._weighted(cb.EMAIL_DOMAINS)
_FORMATS, _FORMAT_CUM = cb._weighted(PHONE_FORMATS)
# Exchanges phonenumbers accepts for every area code above (N11 codes are service numbers).
_EXCHANGES = [e for e in range(200, 1000) if e % 100 != 11]
_LOCAL_SPACE = len(_EXCHANGES) * 10_000
_MULTIPLIER = 1_000_003  # a prime: i -> i * M mod space is a bijection, so phones never collide


class Person:
    """One generated contact, a pure function of its index: the same person can be written again
    later in the file (a duplicate row) or into the COPY payload without keeping anything."""

    __slots__ = ("idx", "first", "last", "state", "area", "exchange", "subscriber", "email", "tags", "tier",
                 "source")

    def __init__(self, idx: int, salt: int = 0):
        rng = random.Random(idx * 7919 + salt)
        self.idx = idx
        self.first = rng.choice(cb.FIRST_NAMES)
        self.last = rng.choice(cb.LAST_NAMES)
        self.state = rng.choice(_STATE_SLOTS)
        self.area = rng.choice(_AREA_CODES[self.state])
        local = (idx * _MULTIPLIER + salt) % _LOCAL_SPACE
        self.exchange, self.subscriber = _EXCHANGES[local // 10_000], local % 10_000
        if rng.random() < EMAIL_SHARE:
            domain = rng.choices(_DOMAINS, cum_weights=_DOMAIN_CUM)[0]
            self.email = f"{self.first}.{self.last}{idx}@{domain}".lower()
        else:
            self.email = ""
        self.tags = sorted(set(rng.choices(_TAG_VALUES, cum_weights=_TAG_CUM, k=rng.choice((0, 1, 1, 2, 2, 3)))))
        self.tier = rng.choice(TIERS) if rng.random() < 0.8 else ""
        self.source = rng.choice(SOURCES) if rng.random() < 0.6 else ""

    @property
    def e164(self) -> str:
        return f"+1{self.area}{self.exchange}{self.subscriber:04d}"

    def phone_text(self, rng: random.Random) -> str:
        shape = rng.choices(_FORMATS, cum_weights=_FORMAT_CUM)[0]
        return shape.format(a=self.area, e=self.exchange, s=f"{self.subscriber:04d}", x=rng.randint(10, 999))


def file_rows(count: int, *, seed: int):
    """Yields (person, row_kind) for `count` file rows: ~10% repeat an earlier person (another
    phone format, perhaps no email, one more tag), 0.2% carry an invalid phone."""
    rng = random.Random(seed)
    people = 0
    for _ in range(count):
        if people and rng.random() < DUPLICATE_SHARE:
            yield Person(rng.randrange(people)), "duplicate", rng
        else:
            yield Person(people), "bad" if rng.random() < BAD_PHONE_SHARE else "new", rng
            people += 1


def _row_cells(person: Person, kind: str, rng: random.Random) -> tuple[str, str, str]:
    """(phone text, email, tags text) for one file row of `person`."""
    if kind == "bad":
        return "555-12", person.email, ", ".join(person.tags)
    if kind == "duplicate":
        email = person.email if rng.random() < 0.5 else ""
        tags = sorted(set(person.tags) | {rng.choices(_TAG_VALUES, cum_weights=_TAG_CUM)[0]})
        return person.phone_text(rng), email, ", ".join(tags)
    return person.phone_text(rng), person.email, ", ".join(person.tags)


def write_csv(path: Path, count: int, *, seed: int) -> dict:
    """The CSV and, beside it, the COPY payload (one normalized row per distinct contact)."""
    from contacts.models import uuid7

    stats = {"rows": 0, "duplicates": 0, "bad_phones": 0, "contacts": 0}
    payload = path.with_suffix(".copy.tsv")
    now = datetime.now(UTC).isoformat(sep=" ")
    with open(path, "w", newline="", encoding="utf-8") as out, open(payload, "w", encoding="utf-8") as ref:
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        for person, kind, rng in file_rows(count, seed=seed):
            phone, email, tags = _row_cells(person, kind, rng)
            writer.writerow([person.first, person.last, phone, email, person.state, tags,
                             person.tier if kind != "duplicate" else "", person.source if kind != "duplicate" else ""])
            stats["rows"] += 1
            stats["duplicates"] += kind == "duplicate"
            stats["bad_phones"] += kind == "bad"
            if kind == "new":
                custom = {k: v for k, v in (("loyalty_tier", person.tier), ("signup_source", person.source)) if v}
                ref.write("\t".join([
                    str(uuid7()), "{org}", person.e164, person.email or r"\N", person.first, person.last,
                    person.state, json.dumps(custom), now, now,
                ]) + "\n")
                stats["contacts"] += 1
    return stats


def write_xlsx(path: Path, count: int, *, seed: int) -> dict:
    """openpyxl write-only; phones are numbers, as Excel keeps a typed 9195551234."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Contacts")
    sheet.append(CSV_HEADER)
    stats = {"rows": 0, "duplicates": 0}
    for person, kind, rng in file_rows(count, seed=seed):
        digits = f"{person.area}{person.exchange}{person.subscriber:04d}"
        phone = int(("1" if rng.random() < 0.5 else "") + digits) if kind != "bad" else 55512
        email = person.email if kind != "duplicate" or rng.random() < 0.5 else ""
        sheet.append([person.first, person.last, phone, email or None, person.state, ", ".join(person.tags) or None,
                      person.tier or None, person.source or None])
        stats["rows"] += 1
        stats["duplicates"] += kind == "duplicate"
    workbook.save(path)
    return stats


def write_vcf(path: Path, count: int, *, seed: int) -> dict:
    """vCard 3.0 cards: N, FN, a CELL phone (a second HOME one on 30%), EMAIL, ADR, CATEGORIES."""
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as out:
        for idx in range(count):
            person = Person(idx)
            lines = ["BEGIN:VCARD", "VERSION:3.0", f"N:{person.last};{person.first};;;",
                     f"FN:{person.first} {person.last}", f"TEL;TYPE=CELL:{person.phone_text(rng)}"]
            if rng.random() < 0.3:
                lines.append(f"TEL;TYPE=HOME:{Person(idx, salt=4_000_001).phone_text(rng)}")
            if person.email:
                lines.append(f"EMAIL;TYPE=INTERNET:{person.email}")
            city = rng.choice(cb.CITIES.get(person.state, ["Springfield"]))
            lines.append(f"ADR;TYPE=HOME:;;{rng.randint(1, 9999)} {rng.choice(cb.STREETS)} St;{city};{person.state};"
                         f"{rng.randint(10000, 99999)};USA")
            if person.tags:
                lines.append("CATEGORIES:" + ",".join(person.tags))
            lines.append("END:VCARD")
            out.write("\r\n".join(lines) + "\r\n")
    return {"rows": count}


def ensure_file(kind: str, count: int, *, regen: bool) -> tuple[Path, dict]:
    writer, ext = {"csv": (write_csv, "csv"), "xlsx": (write_xlsx, "xlsx"), "vcf": (write_vcf, "vcf")}[kind]
    path = OUT / f"import_{kind}_{count}_{SEED}.{ext}"
    meta = path.with_suffix(".meta.json")
    if path.exists() and meta.exists() and not regen:
        return path, json.loads(meta.read_text())
    started = time.perf_counter()
    stats = writer(path, count, seed=SEED + {"csv": 0, "xlsx": 1, "vcf": 2}[kind])
    stats["generate_seconds"] = round(time.perf_counter() - started, 1)
    stats["bytes"] = path.stat().st_size
    meta.write_text(json.dumps(stats))
    print(f"  generated {path.name}: {stats}", flush=True)
    return path, stats


# ---------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------
REF_TABLE = "bench_ref_contact"


def copy_baseline(payload: Path, org) -> dict:
    """COPY the normalized contacts into a reference table with the minimum a contacts table
    needs; only the COPY itself is timed (the payload was formatted at generation time)."""
    from django.db import connection, transaction

    data = payload.read_text().replace("{org}", str(org.pk)).encode()
    rows = data.count(b"\n")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {REF_TABLE}")
        cursor.execute(f"""CREATE TABLE {REF_TABLE} (
            id uuid PRIMARY KEY, organization_id bigint NOT NULL, phone varchar(20), email varchar(254),
            first_name varchar(100) NOT NULL, last_name varchar(100) NOT NULL, state varchar(64) NOT NULL,
            custom_fields jsonb NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)""")
        cursor.execute(f"CREATE UNIQUE INDEX ON {REF_TABLE} (organization_id, phone)")
        cursor.execute(f"CREATE INDEX ON {REF_TABLE} (organization_id, lower(email))")
        cursor.execute(f"CREATE INDEX ON {REF_TABLE} (organization_id, updated_at, id)")
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {REF_TABLE} FROM STDIN") as copy:
            for start in range(0, len(data), 1 << 20):
                copy.write(data[start : start + (1 << 20)])
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {REF_TABLE}")
        landed = cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE {REF_TABLE}")
    assert landed == rows, (landed, rows)
    return {"case": "copy", "label": "COPY, normalized, into a reference table (baseline)", "rows": rows,
            "seconds": seconds, "rows_per_s": rows / seconds, "contacts": landed}


def die_baseline(csv_path: Path, count: int, org) -> dict:
    """django-import-export: the first `count` CSV rows as they are, a minimal ModelResource."""
    import tablib
    from django.utils import timezone
    from import_export import resources

    from contacts.models import Contact

    class ContactResource(resources.ModelResource):
        class Meta:
            model = Contact
            fields = ("phone", "email", "first_name", "last_name", "state")
            import_id_fields = ("phone",)

        def get_queryset(self):
            return Contact.objects.filter(organization=org)  # the (organization, phone) index serves it

        def before_save_instance(self, instance, row, **kwargs):
            now = timezone.now()
            instance.organization = org
            instance.created_at = instance.created_at or now
            instance.updated_at = now
            instance.email = instance.email or None  # '' breaks contact_email_not_blank
            instance.email_key = instance.email.casefold() if instance.email else None

    dataset = tablib.Dataset(headers=["first_name", "last_name", "phone", "email", "state"])
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row, _ in zip(reader, range(count), strict=False):
            dataset.append([row[0], row[1], row[2], row[3], row[4]])
    started = time.perf_counter()
    # Without transactions: with them, one bad row (a phone longer than the column, an email that
    # another row already created under another phone format) rolls the whole import back.
    result = ContactResource().import_data(dataset, dry_run=False, raise_errors=False, use_transactions=False)
    seconds = time.perf_counter() - started
    totals = dict(result.totals)
    return {"case": "die", "label": f"django-import-export, {len(dataset):,} raw CSV rows (baseline)",
            "rows": len(dataset), "seconds": seconds, "rows_per_s": len(dataset) / seconds,
            "counters": {k: v for k, v in totals.items() if v},
            "contacts": Contact.objects.filter(organization=org).count()}


# ---------------------------------------------------------------------------------------------
# Imports through the worker
# ---------------------------------------------------------------------------------------------
def create_job(path: Path, org):
    from imports.pipeline import start_import

    started = time.perf_counter()
    with open(path, "rb") as handle:
        job = start_import(org=org, uploaded=handle, file_name=path.name, custom_unmapped=True, launch=False)
    return job, time.perf_counter() - started


def _rss(proc) -> tuple[int, int]:
    """(largest process, sum over the tree) RSS in bytes of `proc` and its descendants. The sum
    counts pages a forked work horse still shares with its parent twice."""
    import psutil

    sizes = []
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for p in procs:
        try:
            sizes.append(p.memory_info().rss)
        except psutil.NoSuchProcess:
            pass
    return max(sizes, default=0), sum(sizes)


def run_on_worker(job, *, timeout: float, workers: int = 1) -> dict:
    """Enqueue run_import on `default`, run `workers` RQ workers, watch them. Returns timings and
    RSS. One worker runs in burst mode; with more, they serve the queue until the job ends (a
    burst worker started beside the first would find the queue empty and quit before the job
    offers its partitions)."""
    import psutil

    from contacts_crm.jobs import enqueue
    from imports.models import ImportJob
    from imports.pipeline import run_import

    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.QUEUED)
    # rq's own default job timeout is 180 s, which a 1M-row import exceeds: give it the run's limit.
    enqueue(run_import, job.pk, job_timeout=int(timeout) + 60)
    log = open(OUT / f"worker_{job.pk}.log", "w")  # noqa: SIM115  (closed below)
    # /usr/bin/time's "%M" is the largest ru_maxrss among the worker and the work horses it
    # reaped: exact, unlike polling. (Not wait4 from this process: on Linux a child's ru_maxrss
    # includes the RSS of the copy of its parent it was forked from, i.e. this benchmark's.)
    rss_files = [OUT / f"worker_{job.pk}_{n}.maxrss" for n in range(workers)]
    command = [sys.executable, "manage.py", "rqworker", *(["--burst"] if workers == 1 else []), "default"]
    started, launched = time.perf_counter(), datetime.now(UTC)
    procs = []
    for rss_file in rss_files:
        timed = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *command] if Path("/usr/bin/time").exists() \
            else command
        procs.append(subprocess.Popen(timed, cwd=ROOT, env=worker_env(), stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))
    watched = [psutil.Process(proc.pid) for proc in procs]
    process_peak = tree_peak = 0
    phase_at, last_db = {}, 0.0
    stopped = False
    finished = False
    while any(proc.poll() is None for proc in procs):
        for one in watched:
            try:
                largest, tree = _rss(one)
            except psutil.NoSuchProcess:
                continue
            process_peak, tree_peak = max(process_peak, largest), max(tree_peak, tree)
        now = time.perf_counter()
        if now - last_db > 0.5 or workers > 1:
            last_db = now
            phase, status = ImportJob.objects.filter(pk=job.pk).values_list("phase", "status").first()
            phase_at.setdefault(phase, now - started)
            if workers > 1 and status in (ImportJob.Status.SUCCEEDED, ImportJob.Status.FAILED) and not finished:
                finished = True
                for proc in procs:
                    os.killpg(proc.pid, 15)  # warm shutdown: the job is over
        if now - started > timeout and not stopped:
            print(f"  stopping the worker after {timeout:.0f} s", flush=True)
            for proc in procs:
                os.killpg(proc.pid, 15)
            stopped = True
        time.sleep(0.1 if workers == 1 else 0.05)
    wall = time.perf_counter() - started
    log.close()
    try:
        peak = max(int(rss_file.read_text().split()[-1]) * 1024 for rss_file in rss_files)
    except (OSError, ValueError, IndexError):
        peak = process_peak
    job.refresh_from_db()
    own = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
    # The phase split, from the job's own start (the worker's start-up is not reading).
    startup = (job.started_at - launched).total_seconds() if job.started_at else None
    writing_from = phase_at.get(ImportJob.Phase.WRITING)
    reading = writing_from - startup if writing_from and startup is not None else None
    if workers > 1 and job.finished_at:  # the workers' shutdown is not the import's time
        wall = (job.finished_at - launched).total_seconds()
    return {
        "workers": workers, "wall_seconds": wall, "job_seconds": own, "stopped": stopped, "startup_seconds": startup,
        "reading_seconds": reading, "writing_seconds": own - reading if reading and own else None,
        "peak_rss_mb": peak / 2**20, "polled_peak_rss_mb": process_peak / 2**20,
        "tree_peak_rss_mb": tree_peak / 2**20,
        "status": job.status, "error": job.error,
        "counters": {name: getattr(job, name) for name in ("total", *ImportJob.COUNTERS, "warnings")},
        "processed": job.processed, "rows_read": job.rows_read,
    }


def db_state(org) -> dict:
    from contacts.models import Contact, ContactEvent, ContactTag

    return {
        "contacts": Contact.objects.filter(organization=org).count(),
        "tag_links": ContactTag.objects.filter(contact__organization=org).count(),
        "events": ContactEvent.objects.filter(organization=org).count(),
    }


def import_case(case: str, label: str, path: Path, org, *, rows: int, timeout: float, workers: int = 1) -> dict:
    print(f"- {label}", flush=True)
    job, create_seconds = create_job(path, org)
    result = run_on_worker(job, timeout=timeout, workers=workers)
    seconds = result["wall_seconds"]
    out = {"case": case, "label": label, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
           "create_seconds": create_seconds, "job_id": job.pk, **result, **db_state(org)}
    print(f"  {json.dumps({k: v for k, v in out.items() if k not in ('label',)}, default=str)}", flush=True)
    return out


# ---------------------------------------------------------------------------------------------
# Profile (in-process, no worker)
# ---------------------------------------------------------------------------------------------
def profile_csv(path: Path) -> None:
    """pyinstrument over run_import for the CSV, in this process, fresh and then again (every
    contact unchanged); writes bench/out/import_profile[_again].txt / .html."""
    from pyinstrument import Profiler

    from imports.pipeline import run_import

    org = make_org("profile")
    for suffix in ("", "_again"):
        job, _ = create_job(path, org)
        profiler = Profiler(interval=0.002)
        started = time.perf_counter()
        profiler.start()
        run_import(job.pk)
        profiler.stop()
        seconds = time.perf_counter() - started
        (OUT / f"import_profile{suffix}.txt").write_text(profiler.output_text(unicode=True, show_all=False))
        (OUT / f"import_profile{suffix}.html").write_text(profiler.output_html())
        job.refresh_from_db()
        print(f"profiled run_import{suffix}: {seconds:.1f} s, status {job.status}, created {job.created}, "
              f"unchanged {job.unchanged}; see bench/out/import_profile{suffix}.txt / .html")


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
def _num(value, digits=0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def table(results: list[dict]) -> str:
    copy = next((r for r in results if r["case"] == "copy"), None)
    die = next((r for r in results if r["case"] == "die"), None)
    lines = [
        "| case | rows | seconds (job's own) | rows/s | peak RSS MB, largest process (polled tree sum) | × COPY | × django-import-export "
        "| created / updated / unchanged / merged / failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        c = r.get("counters") or {}
        counters = " / ".join(str(c.get(k, 0)) for k in ("created", "updated", "unchanged", "merged", "failed"))
        if r["case"] in ("copy", "die"):
            counters = f"{r['contacts']:,} contacts" + (f" ({r['counters']})" if r.get("counters") else "")
        own = f" ({_num(r['job_seconds'], 1)})" if r.get("job_seconds") else ""
        rss = (f"{_num(r['peak_rss_mb'])} ({_num(r['tree_peak_rss_mb'])})" if r.get("peak_rss_mb") else "–")
        lines.append(
            f"| {r['label']}{' **stopped**' if r.get('stopped') else ''} | {r['rows']:,} | {_num(r['seconds'], 1)}{own}"
            f" | {_num(r['rows_per_s'])} | {rss}"
            f" | {_num(r['rows_per_s'] / copy['rows_per_s'], 2) if copy else '–'}"
            f" | {_num(r['rows_per_s'] / die['rows_per_s'], 1) if die else '–'} | {counters} |"
        )
    split = [r for r in results if r.get("reading_seconds")]
    if split:
        lines.append("")
        lines.append("| import | start_import (upload + preview) s | worker start-up s | reading + staging + fold s "
                     "| writing s | contacts / tag links / events in the organization |")
        lines.append("|---|---|---|---|---|---|")
        for r in split:
            lines.append(f"| {r['case']} | {_num(r['create_seconds'], 1)} | {_num(r['startup_seconds'], 1)} "
                         f"| {_num(r['reading_seconds'], 1)} "
                         f"| {_num(r['writing_seconds'], 1)} | {r['contacts']:,} / {r['tag_links']:,} / "
                         f"{r['events']:,} |")
    return "\n".join(lines)


def machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL {version}, load average {load}"


def write_readme(block: str) -> None:
    """Replaces the figures between the markers of the Imports section (adds the section once)."""
    text = README.read_text()
    block = f"{BEGIN_MARK}\n{block}\n{END_MARK}"
    if BEGIN_MARK in text and END_MARK in text:
        head, rest = text.split(BEGIN_MARK, 1)
        text = head + block + rest.split(END_MARK, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n# Imports (issue 5, \"Speed and memory\")\n\n" + block + "\n"
    README.write_text(text)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV rows (default 1,000,000)")
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--vcf-cards", type=int, default=20_000)
    parser.add_argument("--die-rows", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=1200, help="stop an import after this many seconds")
    parser.add_argument("--regen", action="store_true", help="generate the files again")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--profile", action="store_true", help="only profile the CSV import in-process")
    for name in ("copy", "die", "csv", "csv-again", "xlsx", "vcf"):
        parser.add_argument(f"--skip-{name}", action="store_true")
    parser.add_argument("--no-readme", action="store_true", help="do not write bench/README.md")
    parser.add_argument("--two-workers", action="store_true",
                        help="also import the CSV fresh into another organization with two workers")
    args = parser.parse_args(argv)

    OUT.mkdir(exist_ok=True)
    configure_django(need_redis=not (args.profile or args.generate_only))
    files = {"csv": ensure_file("csv", args.rows, regen=args.regen)}
    if not args.skip_xlsx:
        files["xlsx"] = ensure_file("xlsx", args.xlsx_rows, regen=args.regen)
    if not args.skip_vcf:
        files["vcf"] = ensure_file("vcf", args.vcf_cards, regen=args.regen)
    if args.generate_only:
        return
    reset_database()
    if args.profile:
        profile_csv(files["csv"][0])
        return
    from contacts_crm.jobs import get_queue

    get_queue().empty()
    csv_path, csv_stats = files["csv"]
    results = []
    started = datetime.now(UTC)
    if not args.skip_copy:
        print("- COPY baseline", flush=True)
        results.append(copy_baseline(csv_path.with_suffix(".copy.tsv"), make_org("copy")))
        print(f"  {results[-1]}", flush=True)
    if not args.skip_die:
        print("- django-import-export baseline", flush=True)
        results.append(die_baseline(csv_path, args.die_rows, make_org("die")))
        print(f"  {results[-1]}", flush=True)
    csv_org = make_org("csv")
    if not args.skip_csv:
        results.append(import_case("csv", f"CSV, fresh ({csv_stats['duplicates']:,} duplicate rows)", csv_path,
                                   csv_org, rows=csv_stats["rows"], timeout=args.timeout))
        if not args.skip_csv_again:
            results.append(import_case("csv_again", "CSV again (all unchanged)", csv_path, csv_org,
                                       rows=csv_stats["rows"], timeout=args.timeout))
    if args.two_workers:
        results.append(import_case("csv_2w", "CSV, fresh, two workers", csv_path, make_org("csv2w"),
                                   rows=csv_stats["rows"], timeout=args.timeout, workers=2))
    if "xlsx" in files:
        path, stats = files["xlsx"]
        results.append(import_case("xlsx", "XLSX, fresh", path, make_org("xlsx"), rows=stats["rows"],
                                   timeout=args.timeout))
    if "vcf" in files:
        path, stats = files["vcf"]
        results.append(import_case("vcf", "vCard 3.0, fresh", path, make_org("vcf"), rows=stats["rows"],
                                   timeout=args.timeout))

    text = table(results)
    print()
    print(text)
    env = machine()
    (OUT / "import_results.json").write_text(json.dumps(
        {"started": started.isoformat(), "machine": env, "args": vars(args), "files": {k: v[1] for k, v in files.items()},
         "results": results}, indent=2, default=str))
    if not args.no_readme:
        command = "DATABASE_URL=… REDIS_URL=… .venv/bin/python bench/import_bench.py " + " ".join(argv or sys.argv[1:])
        write_readme(f"Run of {started:%Y-%m-%d %H:%M} UTC: `{command.strip()}` — {env}.\n\n{text}")


if __name__ == "__main__":
    main()
