#!/usr/bin/env python
"""The contacts benchmark (issue 3, "Speed"): one organization with a million contacts on
PostgreSQL, and the API's hot read paths timed end to end and in SQL alone.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/contacts_bench.py --fill --measure
    ... --fill 200000          # fewer contacts
    ... --measure --runs 50    # more timed runs per case
    ... --cleanup              # empty the bench database again

`--fill` migrates the database, then COPYs generated rows (names, phones, emails, states, tags,
timestamps over two years) into contacts_contact / contacts_tag / contacts_contacttag with the
secondary indexes dropped, rebuilds them and runs VACUUM ANALYZE. `--measure` times each case
over Django's test client (auth, throttle, filters, serializer: everything but the socket) and
its main query alone, and writes the EXPLAIN ANALYZE plans to bench/out/. See bench/README.md.

The bench database must hold nothing but the benchmark's organization: `--fill` and
`--cleanup` TRUNCATE the contact tables, and refuse to when another organization exists.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time
import uuid
from bisect import bisect
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
BENCH_SLUG = "bench"

# ---------------------------------------------------------------------------------------------
# Reference data: realistic US names, states (with area codes), tags and companies.
# ---------------------------------------------------------------------------------------------
FIRST_NAMES = """
James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard
Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty
Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua
Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa Timothy Deborah Ronald
Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy
Nicholas Angela Eric Shirley Jonathan Anna Stephen Brenda Larry Pamela Justin Emma Scott
Nicole Brandon Helen Benjamin Samantha Samuel Katherine Gregory Christine Alexander Debra
Frank Rachel Patrick Carolyn Raymond Janet Jack Catherine Dennis Maria Jerry Heather Tyler
Diane Aaron Ruth Jose Julie Adam Olivia Nathan Joyce Henry Virginia Douglas Victoria Zachary
Kelly Peter Lauren Kyle Christina Ethan Joan Walter Evelyn Noah Judith Jeremy Megan Christian
Andrea Keith Cheryl Roger Hannah Terry Jacqueline Gerald Martha Harold Gloria Sean Teresa
Austin Ann Carl Sara Arthur Madison Lawrence Frances Dylan Kathryn Jesse Janice Jordan Jean
Bryan Abigail Billy Alice Joe Julia Bruce Judy Gabriel Sophia Logan Grace Albert Denise Willie
Amber Alan Doris Juan Marilyn Wayne Danielle Elijah Beverly Randy Isabella Roy Theresa Vincent
Diana Ralph Natalie Eugene Brittany Russell Charlotte Bobby Marie Mason Kayla Philip Alexis
Louis Lori Carlos Luis Miguel Sofia Camila Valentina Mateo Diego Santiago Lucia Ximena
Alejandro Fernando Javier Ricardo Eduardo Rosa Carmen Guadalupe Wei Mei Hiroshi Yuki Priya
Arjun Ananya Rohan Aisha Omar Fatima Hassan Layla Mohammed Ibrahim Chloe Zoe Liam Aiden
Jayden Caleb Owen Wyatt Hunter Landon Levi Isaac Lincoln Ava Mia Harper Ella Avery Scarlett
Aria Penelope Riley Nora Lily Eleanor Hazel Violet Aurora Savannah Audrey Brooklyn Bella
Claire Skylar Lucy Paisley Everly Naomi Elena Leah Stella Maya Willow Ruby Ivy Jade Quinn
""".split()

LAST_NAMES = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips
Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers
Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson
Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo
Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell
Coleman Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson
Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera
Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez
McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns
Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt
Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer
Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant
Dunn Kelley Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley Knight
Elliott Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado
Berry Perkins Hoffman Johnston Matthews Pena Richards Contreras Willis Carpenter Lawrence
Sandoval Guerrero George Chapman Rios Estrada Ortega Watkins Greene Nunez Wheeler Valdez
Harper Burke Larson Santiago Maldonado Morrison Franklin Carlson Austin Dominguez Carr
Lawson Jacobs Obrien Lynch Singh Vega Bishop Montgomery Oliver Jensen Harvey Williamson
Gilbert Dean Sims Espinoza Howell Li Wong Reid Hanson Le McCoy Garrett Burton Fuller Wang
Weber Welch Rojas Lucas Marquez Fields Park Yang Little Banks Padilla Day Walsh Bowman
Schultz Luna Fowler Mejia Davidson Acosta Brewer May Holland Juarez Newman Pearson Curtis
Cortez Douglas Schneider Joseph Barrett Navarro Figueroa Keller Avila Wade Molina Stanley
Hopkins Campos Barnett Bates Chambers Caldwell Beck Lambert Miranda Byrd Craig Ayala Lowe
Frazier Powers Neal Leonard Gregory Carrillo Sutton Fleming Rhodes Shelton Schwartz Norris
Jennings Watts Duran Walters Cohen McDaniel Moran Parks Steele Vaughn Becker Holt Deleon
Barker Terry Hale Leon Benson Haynes Horton Miles Lyons Pham Graves Bush Thornton Wolfe
Warner Cabrera McKinney Mann Zimmerman Dawson Lara Fletcher Page McCarthy Love Robles
Cervantes Solis Erickson Reeves Chang Klein Salinas Fuentes Baldwin Daniel Simon Velasquez
Hardy Higgins Aguirre Lin Cummings Chandler Sharp Barber Bowen Ochoa Dennis Robbins Liu
Ramsey Francis Griffith Paul Blair Oconnor Cardenas Pacheco Cross Calderon Quinn Moss
Swanson Chan Rivas Khan Rodgers Serrano Fitzgerald Rosales Stevenson Christensen Manning
Gill Curry McLaughlin Harmon McGee Gross Doyle Garner Newton Burgess Reese Walton Blake
Trujillo Adkins Brady Goodman Roman Webster Goodwin Fischer Huang Potter Delacruz Montoya
Todd Wu Hines Mullins Castaneda Malone Cannon Tate Mack Sherman Hubbard Hodges Zhang Guerra
""".split()

# (state, share of contacts in ‰, area codes): roughly the US population.
STATES = [
    ("CA", 118, "213 310 415 510 619 714 818 916"), ("TX", 90, "214 281 512 713 817 915"),
    ("FL", 67, "305 407 561 727 813 904"), ("NY", 59, "212 315 516 518 716 718"),
    ("PA", 39, "215 412 570 610 717"), ("IL", 38, "217 309 312 630 773"), ("OH", 35, "216 330 513 614 937"),
    ("GA", 33, "404 478 678 706 912"), ("NC", 32, "252 336 704 828 910 919"), ("MI", 30, "248 313 517 616 734"),
    ("NJ", 28, "201 609 732 856 973"), ("VA", 26, "276 434 540 703 757 804"), ("WA", 23, "206 253 360 425 509"),
    ("AZ", 22, "480 520 602 623 928"), ("TN", 21, "423 615 731 865 901"), ("MA", 21, "413 508 617 781 978"),
    ("IN", 20, "219 260 317 574 812"), ("MO", 18, "314 417 573 636 816"), ("MD", 18, "240 301 410 443"),
    ("WI", 18, "262 414 608 715 920"), ("CO", 17, "303 719 720 970"), ("MN", 17, "218 507 612 651 763"),
    ("SC", 16, "803 843 864"), ("AL", 15, "205 251 256 334"), ("LA", 14, "225 318 337 504"),
    ("KY", 14, "270 502 606 859"), ("OR", 13, "503 541 971"), ("OK", 12, "405 580 918"), ("CT", 11, "203 860"),
    ("UT", 10, "385 435 801"), ("IA", 10, "319 515 563 712"), ("NV", 10, "702 775"), ("AR", 9, "479 501 870"),
    ("MS", 9, "228 601 662"), ("KS", 9, "316 620 785 913"), ("NM", 6, "505 575"), ("NE", 6, "308 402"),
    ("ID", 6, "208"), ("WV", 5, "304"), ("HI", 4, "808"), ("NH", 4, "603"), ("ME", 4, "207"), ("MT", 3, "406"),
    ("RI", 3, "401"), ("DE", 3, "302"), ("SD", 3, "605"), ("ND", 2, "701"), ("AK", 2, "907"), ("DC", 2, "202"),
    ("VT", 2, "802"), ("WY", 2, "307"),
]
PACIFIC, MOUNTAIN, CENTRAL = "America/Los_Angeles", "America/Denver", "America/Chicago"
STATE_TIMEZONES = {
    "CA": PACIFIC, "WA": PACIFIC, "OR": PACIFIC, "NV": PACIFIC, "AZ": "America/Phoenix", "CO": MOUNTAIN,
    "UT": MOUNTAIN, "NM": MOUNTAIN, "MT": MOUNTAIN, "WY": MOUNTAIN, "ID": "America/Boise", "TX": CENTRAL,
    "IL": CENTRAL, "MO": CENTRAL, "WI": CENTRAL, "MN": CENTRAL, "AL": CENTRAL, "LA": CENTRAL, "OK": CENTRAL,
    "IA": CENTRAL, "AR": CENTRAL, "MS": CENTRAL, "KS": CENTRAL, "NE": CENTRAL, "SD": CENTRAL, "ND": CENTRAL,
    "TN": CENTRAL, "AK": "America/Anchorage", "HI": "Pacific/Honolulu",
}
CITIES = {
    "CA": ["Los Angeles", "San Diego", "San Jose", "San Francisco", "Fresno", "Sacramento"],
    "TX": ["Houston", "San Antonio", "Dallas", "Austin", "Fort Worth", "El Paso"],
    "FL": ["Jacksonville", "Miami", "Tampa", "Orlando", "St. Petersburg"],
    "NY": ["New York", "Buffalo", "Rochester", "Yonkers", "Syracuse"],
    "NC": ["Charlotte", "Raleigh", "Greensboro", "Durham", "Winston-Salem", "Asheville"],
    "IL": ["Chicago", "Aurora", "Naperville", "Joliet", "Rockford"],
}
STREETS = "Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Sunset Church Walnut Willow Mill".split()
STREET_KINDS = ["St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct"]

# (tag, weight): Zipf-like, a few tags are everywhere and most are niche.
TAGS = [
    ("newsletter", 22), ("customer", 15), ("lead", 12), ("vip", 6), ("webinar", 6), ("trial", 5),
    ("event-2024", 5), ("event-2025", 5), ("referral", 4), ("wholesale", 4), ("retail", 4),
    ("sms-club", 4), ("black-friday", 3), ("holiday-promo", 3), ("partner", 3), ("press", 2),
    ("investor", 2), ("beta", 2), ("churn-risk", 2), ("upsell", 2), ("spanish", 2), ("west", 2),
    ("east", 2), ("midwest", 2), ("south", 2), ("student", 1), ("nonprofit", 1), ("government", 1),
    ("survey-2025", 1), ("do-not-call", 1),
]
TAGS_PER_CONTACT = [(0, 30), (1, 35), (2, 22), (3, 13)]
COMPANIES = """Acme Globex Initech Umbrella Hooli Vandelay Stark Wayne Wonka Tyrell Cyberdyne Soylent
Aperture Monarch Oceanic Prestige Sterling Virtucon Nakatomi Gekko Oscorp Rekall Weyland Yoyodyne""".split()
EMAIL_DOMAINS = [
    ("gmail.com", 40), ("yahoo.com", 14), ("outlook.com", 8), ("hotmail.com", 8), ("icloud.com", 8),
    ("aol.com", 4), ("comcast.net", 3), ("msn.com", 2), ("live.com", 2), ("protonmail.com", 1),
    ("example.com", 10),
]
LIFECYCLE = [("lead", 45), ("customer", 35), ("churned", 10), ("", 10)]
GENDERS = [("female", 40), ("male", 40), ("other", 2), ("", 18)]
LANGUAGES = [("en", 70), ("es", 10), ("", 20)]

# The measured cases. The search term is a real last name from the list with one letter
# substituted ("Robinson" → "Robinsen"): the API must still find the Robinsons.
SEARCH_TYPO = "Robinsen"
TAGS_AND = ("vip", "newsletter")
COUNT_FILTERS = "state=NC&tags=vip"
# --extra: the shapes around those cases that the plans showed to be at risk.
EXTRA_CASES = [
    ("count_one_tag", "count?tags=vip", "/count?tags=vip", True),
    ("tags_and_rare", "tags=press,government&tags_logic=and (≈150 contacts)",
     "?tags=press,government&tags_logic=and", False),
    ("search_common", "search=Smith (exact, common)", "?search=Smith", False),
    ("search_nothing", "search=Zzyzx (no match)", "?search=Zzyzx", False),
    ("search_phone", "search=<7 phone digits>", "?search={phone_digits}", False),
]

# Every column the COPY writes, in order. --fill refuses to run when the table has a NOT NULL
# column without a default that is missing here (someone added a field: add it below too).
CONTACT_COLUMNS = [
    "id", "organization_id", "phone", "email", "email_key", "first_name", "last_name", "display_name",
    "company", "address", "city", "state", "zip", "country", "timezone", "lifecycle_stage", "gender",
    "avatar_url", "assignee_id", "is_test", "is_textable", "textable_checked_at", "opted_out", "opted_out_at",
    "opt_out_source", "custom_fields", "notes", "birthday", "language", "external_id", "secondary_phones",
    "secondary_emails", "created_at", "updated_at", "deleted_by_label", "tag_ids", "search_doc",
]
NULL = r"\N"


def configure_django() -> None:
    """Production-like settings for the run: DEBUG off (no query log), no HTTPS redirect for the
    test client, a throttle the benchmark cannot trip. Explicit environment values win."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contacts_crm.settings")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789abcdef")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
    os.environ.setdefault("API_THROTTLE_RATE", "1000000/min")
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("The benchmark needs PostgreSQL: set DATABASE_URL=postgres://…/crm_bench (a database of its own).")


# ---------------------------------------------------------------------------------------------
# Fill
# ---------------------------------------------------------------------------------------------
def _weighted(pairs):
    """(values, cumulative weights) for random.choices."""
    values, weights = zip(*pairs, strict=True)
    return list(values), list(accumulate(weights))


def uuid7_at(ms: int, rng: random.Random) -> uuid.UUID:
    """contacts.models.uuid7 with the row's own timestamp, so ids are as time-ordered as
    created_at (the primary-key index stays append-only like in production)."""
    rand = rng.getrandbits(80)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def _ts(moment: datetime) -> str:
    return moment.isoformat(sep=" ")  # aware UTC: "2024-05-01 09:30:00.123456+00:00"


class RowMaker:
    """Generates contact rows (COPY text format) and their tag links, deterministically from a seed."""

    def __init__(self, *, org_id: int, tag_ids: dict[str, int], now: datetime, seed: int):
        self.rng = random.Random(seed)
        self.org_id = org_id
        self.tag_ids = tag_ids
        self.now = now
        self.phones: set[int] = set()
        self.emails: set[str] = set()
        self.states, self.state_cum = _weighted([(s, w) for s, w, _ in STATES])
        self.area_codes = {s: codes.split() for s, _, codes in STATES}
        self.tags, self.tag_cum = _weighted(TAGS)
        self.tag_counts, self.tag_count_cum = _weighted(TAGS_PER_CONTACT)
        self.domains, self.domain_cum = _weighted(EMAIL_DOMAINS)
        self.stages, self.stage_cum = _weighted(LIFECYCLE)
        self.genders, self.gender_cum = _weighted(GENDERS)
        self.languages, self.language_cum = _weighted(LANGUAGES)

    def pick(self, values, cum):
        # bisect on the cumulative weights: random.choices costs 3× more per call, and the
        # generator calls this a dozen times per row.
        return values[bisect(cum, self.rng.random() * cum[-1])]

    def phone(self, state: str) -> str:
        rng = self.rng
        while True:
            area = rng.choice(self.area_codes[state])
            exchange = rng.randint(200, 999)
            if exchange % 100 == 11 or exchange == 555:  # N11 codes and 555 are not real exchanges
                continue
            number = int(f"1{area}{exchange}{rng.randint(0, 9999):04d}")
            if number not in self.phones:
                self.phones.add(number)
                return f"+{number}"

    def email(self, first: str, last: str) -> str:
        rng = self.rng
        first, last = first.lower(), last.lower()
        domain = self.pick(self.domains, self.domain_cum)
        local = rng.choice([f"{first}.{last}", f"{first}{last}", f"{first[0]}{last}", f"{first}_{last}"])
        address = f"{local}@{domain}"
        while address in self.emails:
            address = f"{local}{rng.randint(1, 9999)}@{domain}"
        self.emails.add(address)
        return address

    def rows(self, count: int):
        """Yields (copy_line, contact_id, tag_ids) for `count` contacts in created_at order."""
        from contacts.search import search_document

        rng, now = self.rng, self.now
        span = 730 * 86400
        start = now - timedelta(seconds=span)
        offsets = sorted(rng.random() * span for _ in range(count))
        for offset in offsets:
            created = start + timedelta(seconds=offset)
            # 40% never touched since creation; the rest last updated any time since.
            age = (now - created).total_seconds()
            updated = created if rng.random() < 0.4 else created + timedelta(seconds=rng.random() * age)
            pk = uuid7_at(int(created.timestamp() * 1000), rng)
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            state = self.pick(self.states, self.state_cum)
            kind = rng.random()  # 65% phone + email, 30% phone only, 5% email only
            phone = self.phone(state) if kind < 0.95 else None
            email = self.email(first, last) if kind < 0.65 or kind >= 0.95 else None
            textable, checked = NULL, NULL
            if phone:
                r = rng.random()
                if r < 0.67:  # 55% textable, 12% not
                    textable = "t" if r < 0.55 else "f"
                    checked = _ts(created + timedelta(seconds=rng.random() * age))
                elif r < 0.70:  # checked, the provider could not tell
                    checked = _ts(created + timedelta(seconds=rng.random() * age))
            opted_out, opted_out_at, opt_out_source = "f", NULL, ""
            if rng.random() < 0.03:
                opted_out, opt_out_source = "t", rng.choice(["api", "import", "keyword", "admin"])
                opted_out_at = _ts(created + timedelta(seconds=rng.random() * age))
            address, city = "", ""
            if rng.random() < 0.6:
                address = f"{rng.randint(1, 9999)} {rng.choice(STREETS)} {rng.choice(STREET_KINDS)}"
                city = rng.choice(CITIES.get(state, [""]))
            birthday = NULL
            if rng.random() < 0.3:
                birthday = f"{rng.randint(1945, 2006)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            custom = "{}"
            if rng.random() < 0.2:
                custom = json.dumps({"loyalty_points": rng.randint(0, 5000)})
            display = f"{first} {last}" if rng.random() < 0.05 else ""
            company = rng.choice(COMPANIES) if rng.random() < 0.3 else ""
            document = search_document({"first_name": first, "last_name": last, "display_name": display,
                                        "company": company, "email": email, "phone": phone})
            line = "\t".join([
                str(pk), str(self.org_id), phone or NULL, email or NULL, email.casefold() if email else NULL,
                first, last, display, company,
                address, city, state, f"{rng.randint(501, 99950):05d}", "US" if rng.random() < 0.98 else "",
                STATE_TIMEZONES.get(state, "America/New_York"), self.pick(self.stages, self.stage_cum),
                self.pick(self.genders, self.gender_cum), "", NULL, "t" if rng.random() < 0.002 else "f",
                textable, checked, opted_out, opted_out_at, opt_out_source, custom, "", birthday,
                self.pick(self.languages, self.language_cum),
                f"CRM-{rng.randint(0, 9_999_999):07d}" if rng.random() < 0.4 else "",
                "[]", "[]", _ts(created), _ts(updated), "",
            ])
            wanted = self.pick(self.tag_counts, self.tag_count_cum)
            names: set[str] = set()
            while len(names) < wanted:
                names.add(self.pick(self.tags, self.tag_cum))
            ids = sorted(self.tag_ids[name] for name in names)
            # tag_ids as the trigger keeps it (contacts migration 0004), search_doc as contacts.search builds it.
            yield f"{line}\t{json.dumps(ids)}\t{document}", pk, ids


def _bench_org(create: bool):
    from contacts_crm.models import Organization

    if create:
        org, _ = Organization.objects.get_or_create(slug=BENCH_SLUG, defaults={"name": "Benchmark"})
        return org
    return Organization.objects.filter(slug=BENCH_SLUG).first()


def cleanup() -> None:
    """Empties the contact tables and removes the bench organization. TRUNCATE, not DELETE:
    a million-row DELETE checks every referencing table row by row. Refuses when another
    organization exists (then this is not a bench database)."""
    from django.db import connection

    from contacts_crm.models import Organization

    others = Organization.objects.exclude(slug=BENCH_SLUG)
    if others.exists():
        sys.exit(f"Refusing to clean up: this database holds other organizations ({others.count()}); "
                 "the benchmark wants a database of its own.")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # CASCADE empties every table that references an organization or a contact (contacts,
        # tags, events, API keys, lists, imports…): all of it is the bench organization's. SQL
        # rather than the ORM's cascade, which would also visit the tables of models whose
        # migrations this database has not applied.
        cursor.execute("TRUNCATE contacts_crm_organization, contacts_contact CASCADE")
    print(f"cleanup: bench data removed in {time.perf_counter() - started:.1f} s")


def _check_columns(cursor) -> None:
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'contacts_contact' "
        "AND is_nullable = 'NO' AND column_default IS NULL"
    )
    missing = sorted({row[0] for row in cursor.fetchall()} - set(CONTACT_COLUMNS))
    if missing:
        sys.exit(f"contacts_contact has NOT NULL columns the benchmark does not fill: {', '.join(missing)}. "
                 "Add them to CONTACT_COLUMNS and RowMaker.rows in bench/contacts_bench.py.")


def _secondary_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the indexes on `table` that back no constraint."""
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) "
        "ORDER BY i.relname",
        [table],
    )
    return cursor.fetchall()


def fill(count: int, *, seed: int, chunk: int = 20_000) -> dict:
    """Migrates, empties and fills the bench organization with `count` contacts. Returns the
    phase timings in seconds. Costs about a minute per million rows on 2 cores."""
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from contacts.models import Tag
    from contacts.normalize import tag_key

    timings = {}
    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
    timings["migrate"] = time.perf_counter() - started

    if _bench_org(create=False) is not None:
        cleanup()
    org = _bench_org(create=True)
    now = timezone.now().astimezone(UTC).replace(microsecond=0)
    tags = Tag.objects.bulk_create(
        [Tag(organization=org, name=name, key=tag_key(name)) for name, _ in TAGS]
    )
    maker = RowMaker(org_id=org.pk, tag_ids={t.name: t.pk for t in tags}, now=now, seed=seed)

    with transaction.atomic(), connection.cursor() as cursor:
        _check_columns(cursor)
        t0 = time.perf_counter()
        dropped = []
        for table in ("contacts_contact", "contacts_contacttag"):
            for name, definition in _secondary_indexes(cursor, table):
                cursor.execute(f'DROP INDEX "{name}"')
                dropped.append(definition)
        # tag_ids is written in the contact's own COPY, as the importer does (0004_tag_ids).
        cursor.execute("SET LOCAL contacts.tag_sync_off = 'on'")
        raw = connection.connection.cursor()
        generate = copy_contacts = copy_links = 0.0
        links = 0
        rows = maker.rows(count)
        done = 0
        while done < count:
            g0 = time.perf_counter()
            batch = [next(rows) for _ in range(min(chunk, count - done))]
            contact_data = "\n".join(line for line, _, _ in batch) + "\n"
            link_data = "".join(f"{pk}\t{tag_id}\n" for _, pk, tag_ids in batch for tag_id in tag_ids)
            g1 = time.perf_counter()
            with raw.copy(f"COPY contacts_contact ({', '.join(CONTACT_COLUMNS)}) FROM STDIN") as copy:
                copy.write(contact_data)
            g2 = time.perf_counter()
            with raw.copy("COPY contacts_contacttag (contact_id, tag_id) FROM STDIN") as copy:
                copy.write(link_data)
            g3 = time.perf_counter()
            generate, copy_contacts, copy_links = generate + g1 - g0, copy_contacts + g2 - g1, copy_links + g3 - g2
            links += link_data.count("\n")
            done += len(batch)
            print(f"\rfill: {done:,}/{count:,} contacts", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        timings.update(generate=generate, copy_contacts=copy_contacts, copy_links=copy_links)
        t1 = time.perf_counter()
        # Rebuilding an index once is far cheaper than maintaining it row by row (the trigram
        # GIN indexes most of all); more memory makes each build one sort instead of many.
        # The foreign keys are DEFERRABLE INITIALLY DEFERRED, and CREATE INDEX refuses to run
        # while their checks are pending: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for definition in dropped:
            cursor.execute(definition)
        timings["indexes"] = time.perf_counter() - t1
        timings["copy_total"] = t1 - t0
    t2 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE contacts_contact")
        cursor.execute("VACUUM ANALYZE contacts_contacttag")
        cursor.execute("VACUUM ANALYZE contacts_tag")
    timings["vacuum_analyze"] = time.perf_counter() - t2
    timings["total"] = time.perf_counter() - started
    timings["contacts"] = count
    timings["links"] = links
    return timings


# ---------------------------------------------------------------------------------------------
# Measure
# ---------------------------------------------------------------------------------------------
def _percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _main_query(queries: list[dict], *, count: bool) -> str:
    """The request's contacts query: the paged SELECT (… LIMIT) or the COUNT."""
    for query in queries:
        sql = query["sql"]
        if 'FROM "contacts_contact"' not in sql:
            continue
        if count and "COUNT(" in sql:
            return sql
        if not count and "LIMIT" in sql and "COUNT(" not in sql:
            return sql
    raise RuntimeError("No contacts query found in: " + " | ".join(q["sql"][:80] for q in queries))


def _plan_summary(node: dict) -> str:
    """A one-line reading of a JSON plan: node types with their index or relation."""
    label = node["Node Type"]
    if node.get("Scan Direction") == "Backward":
        label += " Backward"
    if node.get("Index Name"):
        label += f" ({node['Index Name']})"
    elif node.get("Relation Name"):
        label += f" ({node['Relation Name']})"
    children = [_plan_summary(child) for child in node.get("Plans", [])]
    if not children:
        return label
    inner = children[0] if len(children) == 1 else "[" + " + ".join(children) + "]"
    return f"{label} → {inner}"


def explain(sql: str, name: str, *, runs: int) -> dict:
    """Times `sql` alone (median of `runs` executions, rows fetched) and saves its EXPLAIN
    (ANALYZE, BUFFERS) to bench/out/<name>.plan.txt. Returns the figures and a plan summary."""
    from django.db import connection

    with connection.cursor() as cursor:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            cursor.execute(sql)
            cursor.fetchall()
            times.append((time.perf_counter() - t0) * 1000)
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
        plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        text = "\n".join(row[0] for row in cursor.fetchall())
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.plan.txt").write_text(f"{sql}\n\n{text}\n")
    return {
        "sql_median_ms": statistics.median(times),
        "sql_p95_ms": _percentile(times, 0.95),
        "explain_ms": plan["Execution Time"],
        "plan": _plan_summary(plan["Plan"]),
    }


def _time_get(client, url: str, *, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        _get_ok(client, url)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        _get_ok(client, url)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _get_ok(client, url: str):
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}: {response.content[:300]!r}")
    return response


def measure(*, runs: int, warmup: int, extra: bool = False) -> list[dict]:
    """Times every case over the test client and in SQL alone. Returns one dict per case."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from contacts.models import Contact
    from contacts_crm.models import ApiKey

    org = _bench_org(create=False)
    if org is None or not Contact.objects.for_org(org).exists():
        sys.exit("No bench data: run with --fill first.")
    ApiKey.objects.for_org(org).filter(name="bench").delete()
    _, raw_key = ApiKey.generate(organization=org, name="bench", scope=ApiKey.Scope.READ)
    client = Client(headers={"Authorization": f"Bearer {raw_key}"})
    base = "/api/v1/contacts"

    # The cursor case: walk 200 pages of 50 once, timing each (the walk is a case of its own).
    walk, cursor = [], None
    for _ in range(200):
        t0 = time.perf_counter()
        body = _get_ok(client, f"{base}?limit=50" + (f"&cursor={cursor}" if cursor else "")).json()
        walk.append((time.perf_counter() - t0) * 1000)
        cursor = body["next_cursor"]
    cases = [
        ("first_page", "first page of 50", f"{base}?limit=50", False),
        ("cursor_page", "page after 10,000 rows (cursor)", f"{base}?limit=50&cursor={cursor}", False),
        ("tags_and", f"tags={','.join(TAGS_AND)}&tags_logic=and", f"{base}?tags={','.join(TAGS_AND)}&tags_logic=and",
         False),
        ("search_typo", f"search={SEARCH_TYPO} (typo of Robinson)", f"{base}?search={SEARCH_TYPO}", False),
        ("count_two_filters", f"count?{COUNT_FILTERS}", f"{base}/count?{COUNT_FILTERS}", True),
    ]
    if extra:
        phone = Contact.objects.for_org(org).filter(phone__isnull=False).order_by("-updated_at")[1000].phone
        cases += [(key, label, base + path.format(phone_digits=phone[-7:]), is_count)
                  for key, label, path, is_count in EXTRA_CASES]
    results = []
    for key, label, url, is_count in cases:
        times = _time_get(client, url, runs=runs, warmup=warmup)
        with CaptureQueriesContext(connection) as captured:
            response = _get_ok(client, url)
        body = response.json()
        found = body["count"] if is_count else len(body["results"])
        sql = _main_query(captured.captured_queries, count=is_count)
        results.append({
            "case": key, "label": label, "url": url, "runs": runs, "result": found,
            "median_ms": statistics.median(times), "p95_ms": _percentile(times, 0.95),
            "queries": len(captured.captured_queries),
            **explain(sql, key, runs=runs),
        })
    results.append({
        "case": "cursor_walk", "label": "200-page cursor walk, per page", "url": f"{base}?limit=50&cursor=…",
        "runs": len(walk), "result": 50, "median_ms": statistics.median(walk), "p95_ms": _percentile(walk, 0.95),
        "queries": None, "sql_median_ms": None, "sql_p95_ms": None, "explain_ms": None, "plan": "",
    })
    results.extend(_measure_admin(org, runs=runs, warmup=warmup))
    return results


def _measure_admin(org, *, runs: int, warmup: int) -> list[dict]:
    """The admin contacts changelist's first page, when contacts has an admin."""
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from contacts.models import Contact
    from contacts_crm.models import Membership

    if not admin.site.is_registered(Contact):
        return []
    user, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    user.is_staff = True
    user.save()
    Membership.objects.get_or_create(user=user, organization=org, defaults={"role": Membership.Role.ADMIN})
    from django.contrib.auth.models import Permission

    user.user_permissions.set(Permission.objects.filter(content_type__app_label="contacts"))
    client = Client()
    client.force_login(user)
    url = "/admin/contacts/contact/"
    times = _time_get(client, url, runs=runs, warmup=warmup)
    with CaptureQueriesContext(connection) as captured:
        _get_ok(client, url)
    queries = captured.captured_queries
    slowest = max(queries, key=lambda q: float(q["time"]))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "admin_changelist.queries.txt").write_text(
        "\n\n".join(f"-- {q['time']} s\n{q['sql']}" for q in queries) + "\n"
    )
    return [{
        "case": "admin_changelist", "label": "admin changelist, first page", "url": url, "runs": runs,
        "result": None, "median_ms": statistics.median(times), "p95_ms": _percentile(times, 0.95),
        "queries": len(queries), "sql_median_ms": sum(float(q["time"]) for q in queries) * 1000,
        "sql_p95_ms": None, "explain_ms": None,
        "plan": f"{len(queries)} queries (SQL column: their sum in one request); slowest "
                f"{float(slowest['time']) * 1000:.1f} ms: {slowest['sql'][:60]}…",
    }]


# ---------------------------------------------------------------------------------------------
# Pages (issue 14): every page shape against the cheapest authenticated call, in one run
# ---------------------------------------------------------------------------------------------
PAGE_RATIO_TARGET = 2.0  # a page's HTTP median ≤ 2× GET /organization's (issue 14)
ORG_OVER_BARE_TARGET_MS = 2.0  # GET /organization ≤ 2 ms above the bare Django cycle


def bare_view(request):
    from django.http import HttpResponse

    return HttpResponse("")


def _bench_urlpatterns():
    from django.urls import include, path

    return [path("bench/bare", bare_view), path("", include("contacts_crm.urls"))]


def urlpatterns_module():
    """This module as a URLconf: the project's routes plus /bench/bare, a view that returns an
    empty response through the same middleware (the bare Django cycle the issue measures against)."""
    global urlpatterns
    urlpatterns = _bench_urlpatterns()
    return __name__


def page_cases(org) -> list[tuple[str, str]]:
    """(label, url) of every page shape issue 14 names, after the bare cycle and /organization."""
    sys.path.insert(0, str(ROOT / "bench"))
    import segments_bench

    from segments.models import ContactList

    segments = segments_bench.ensure_objects(org, define_custom=False)
    contact_list = ContactList.objects.get(organization=org, name=segments_bench.LIST_NAME)
    ensure_trash(org, contact_list)
    base = "/api/v1/contacts"
    client = _page_client(org)
    cursor = _get_ok(client, f"{base}?limit=50").json()["next_cursor"]
    return [
        ("bare Django cycle", "/bench/bare"),
        ("GET /organization", "/api/v1/organization"),
        ("first page", f"{base}?limit=50"),
        ("cursor page", f"{base}?limit=50&cursor={cursor}"),
        ("filtered (state=NC)", f"{base}?limit=50&state=NC"),
        ("tags AND (vip, newsletter)", f"{base}?limit=50&tags={','.join(TAGS_AND)}&tags_logic=and"),
        ("tags OR (vip, press)", f"{base}?limit=50&tags=vip,press"),
        (f"search {SEARCH_TYPO}", f"{base}?limit=50&search={SEARCH_TYPO}"),
        ("segment members (a)", f"/api/v1/segments/{segments['a_and_state_tags_optout'].pk}/members?limit=50"),
        ("list members (100k list)", f"/api/v1/lists/{contact_list.pk}/members?limit=50"),
        ("opt-outs", f"{base}/opt-outs?limit=50"),
        ("trash", f"{base}/trash?limit=50"),
        ("GET /tags (30, contact_count each)", "/api/v1/tags?limit=50"),
        ("suppressions", "/api/v1/suppressions?limit=50"),
    ]


TRASHED = 2_000  # as in the counts bench (bench/README.md): every count and page must leave them out


def ensure_trash(org, contact_list) -> None:
    """TRASHED of the 100k list's members in the trash (an UPDATE of deleted_at, as a trash
    leaves them), unless the organization's trash holds some already."""
    from django.db import connection

    from contacts.models import Contact

    if Contact.objects.for_org(org, trashed=True).in_trash().exists():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE contacts_contact SET deleted_at = now() WHERE id IN (SELECT contact_id FROM "
            "segments_listmembership WHERE list_id = %s ORDER BY contact_id LIMIT %s)", [contact_list.pk, TRASHED])
        # VACUUM, not only ANALYZE: the updated rows' old versions would make every index-only
        # scan of the table visit the heap (the figures of a run right after it are worse).
        cursor.execute("VACUUM ANALYZE contacts_contact")


def _page_client(org):
    from django.test import Client

    from contacts_crm.models import ApiKey

    ApiKey.objects.for_org(org).filter(name="bench pages").delete()
    _, raw_key = ApiKey.generate(organization=org, name="bench pages", scope=ApiKey.Scope.READ)
    return Client(headers={"Authorization": f"Bearer {raw_key}"})


def measure_pages(*, runs: int, warmup: int) -> list[dict]:
    """Times every page shape round-robin (one request of each case per round, `runs` rounds),
    so that a change in the machine's load moves every case alike and the ratios hold."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings

    org = _bench_org(create=False)
    if org is None:
        sys.exit("No bench data: run with --fill first.")
    with override_settings(ROOT_URLCONF=urlpatterns_module()):
        cases = page_cases(org)
        client = _page_client(org)
        times = {url: [] for _, url in cases}
        for round_ in range(warmup + runs):
            for _, url in cases:
                t0 = time.perf_counter()
                _get_ok(client, url)
                if round_ >= warmup:
                    times[url].append((time.perf_counter() - t0) * 1000)
        results = []
        for label, url in cases:
            sql_times = []

            def timed(execute, sql, params, many, context, sql_times=sql_times):
                t0 = time.perf_counter()
                try:
                    return execute(sql, params, many, context)
                finally:
                    sql_times.append(time.perf_counter() - t0)

            with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timed):
                body = _get_ok(client, url).content
            sql_ms = sum(sql_times) * 1000  # their execution and fetch, at the driver
            results.append({"label": label, "url": url, "median_ms": statistics.median(times[url]),
                            "p95_ms": _percentile(times[url], 0.95), "queries": len(captured.captured_queries),
                            "sql_ms": sql_ms,
                            "results": body.count(b'"id":') if url.startswith("/api/v1/") else None})
    bare, org_call = results[0]["median_ms"], results[1]["median_ms"]
    for r in results:
        r["ratio"] = r["median_ms"] / org_call
        r["met"] = r["ratio"] <= PAGE_RATIO_TARGET
    results[1]["met"] = org_call - bare <= ORG_OVER_BARE_TARGET_MS
    results[0]["met"] = None
    results.append({"redis": bool(settings.REDIS_URL)})
    return results


def print_pages(results: list[dict]) -> str:
    *rows, meta = results
    bare, org_call = rows[0]["median_ms"], rows[1]["median_ms"]
    lines = [
        f"REDIS_URL {'set' if meta['redis'] else 'unset'}; load average {os.getloadavg()[0]:.2f}; "
        f"/organization − bare cycle: {org_call - bare:.2f} ms (target ≤ {ORG_OVER_BARE_TARGET_MS:g} ms)",
        "",
        "| case | HTTP median ms | p95 ms | queries | their SQL ms (one request) | ratio to /organization "
        "| target ≤ 2× |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "–" if r["met"] is None else ("met" if r["met"] else "missed")
        lines.append(f"| {r['label']} | {r['median_ms']:.2f} | {r['p95_ms']:.2f} | {r['queries']} "
                     f"| {r['sql_ms']:.2f} | {r['ratio']:.2f} | {met} |")
    table = "\n".join(lines)
    print(table)
    return table


def _fmt(value, digits=1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def print_table(results: list[dict]) -> str:
    lines = [
        "| case | result | HTTP median ms | HTTP p95 ms | SQL median ms | EXPLAIN ANALYZE ms | plan |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['label']} | {r['result'] if r['result'] is not None else '–'} | {_fmt(r['median_ms'])} "
            f"| {_fmt(r['p95_ms'])} | {_fmt(r['sql_median_ms'])} | {_fmt(r['explain_ms'])} | {r['plan']} |"
        )
    table = "\n".join(lines)
    print(table)
    return table


def machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('contacts_contact'))")
        size = cursor.fetchone()[0]
    return (f"{os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL {version}, "
            f"contacts_contact with its indexes: {size}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fill", nargs="?", type=int, const=1_000_000, metavar="N",
                        help="fill the bench organization with N contacts (default 1,000,000)")
    parser.add_argument("--measure", action="store_true", help="time the API's read paths")
    parser.add_argument("--pages", action="store_true",
                        help="time every page shape against GET /organization and the bare cycle (issue 14)")
    parser.add_argument("--cleanup", action="store_true", help="empty the bench database")
    parser.add_argument("--extra", action="store_true",
                        help="with --measure: also the riskier shapes next to the issue's cases (slow)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per case (default 30, at least 20)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs per case first (default 5)")
    parser.add_argument("--seed", type=int, default=20250101, help="random seed of the generated data")
    args = parser.parse_args(argv)
    if not (args.fill or args.measure or args.pages or args.cleanup):
        parser.error("give --fill [N], --measure, --pages and/or --cleanup")
    if args.runs < 20:
        parser.error("--runs must be at least 20 for a meaningful p95")
    configure_django()

    if args.cleanup and not args.fill:
        cleanup()
    if args.fill:
        timings = fill(args.fill, seed=args.seed)
        rate = timings["contacts"] / timings["total"]
        print(
            f"fill: {timings['contacts']:,} contacts + {timings['links']:,} tag links in {timings['total']:.1f} s "
            f"({rate:,.0f} contacts/s overall): generate {timings['generate']:.1f} s, COPY contacts "
            f"{timings['copy_contacts']:.1f} s, COPY tag links {timings['copy_links']:.1f} s, rebuild indexes "
            f"{timings['indexes']:.1f} s, VACUUM ANALYZE {timings['vacuum_analyze']:.1f} s"
        )
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "fill.json").write_text(json.dumps(timings, indent=2))
    if args.measure:
        print(machine())
        results = measure(runs=args.runs, warmup=args.warmup, extra=args.extra)
        table = print_table(results)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "results.json").write_text(json.dumps(results, indent=2))
        (OUT / "results.md").write_text(f"{machine()}\n\n{table}\n")
        print(f"plans and results in {OUT.relative_to(ROOT)}/")
    if args.pages:
        table = print_pages(measure_pages(runs=args.runs, warmup=args.warmup))
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "pages.md").write_text(f"{machine()}\n\n{table}\n")
    if args.cleanup and args.fill:
        cleanup()


if __name__ == "__main__":
    main()
