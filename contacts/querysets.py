"""What "state in NC, SC" or "tagged vip" means, once.

Each filter is a `q_*` function returning a `Q` (so the segment compiler can AND/OR/NOT them)
and a `ContactQuerySet` method that applies it (so views, the admin and commands read as
English). Nothing here evaluates a query.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.db import connection
from django.db.models import Exists, F, Func, Lookup, OuterRef, Q, TextField
from django.db.models.functions import Cast

from contacts_crm.tenancy import OrgQuerySet

PHONE_TERM_RE = re.compile(r"^[+()\d\s.\-]+$")
MAX_SEARCH_WORDS = 6


class Casefold(Func):
    """Unicode case folding: Python's str.casefold on SQLite (registered per connection in
    contacts.apps), lower() on PostgreSQL (whose lower() is Unicode-aware)."""

    function = "lower"
    output_field = TextField()

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="py_casefold", **extra)


SORT_COLLATION = "crm_fold"  # migration 0010: ICU, primary strength, nondeterministic


def sort_fold(value):
    """A name's sort key: accents stripped and case folded ("Åberg" and "aberg" tie, and the next
    key decides)."""
    if not isinstance(value, str):
        return value
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c)).casefold()


class SortFold(Func):
    """A name compared case- and accent-insensitively (sort=name): on PostgreSQL, the
    nondeterministic ICU collation of migration 0010 (`Åberg` = `aberg`, in ORDER BY and in the
    keyset's comparisons alike); on SQLite, py_sortfold (sort_fold, registered per connection in
    contacts.apps)."""

    output_field = TextField()

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template=f'(%(expressions)s COLLATE "{SORT_COLLATION}")',
                              **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="py_sortfold", **extra)


class ILike(Lookup):
    """`column ILIKE pattern` (PostgreSQL). Django's `icontains` compiles to
    `UPPER(column::text) LIKE UPPER(…)`, which no index on the column can serve; ILIKE on the
    bare column is what the pg_trgm GIN indexes of migrations 0002/0003 answer. Used as an
    expression (`Q(ILike(F("email"), "%ann%"))`), not registered as a lookup."""

    lookup_name = "pg_ilike"
    operator = "ILIKE"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} {self.operator} {rhs}", [*lhs_params, *rhs_params]


class Like(ILike):
    """`expression LIKE pattern`: for digits, where case does not matter."""

    lookup_name = "pg_like"
    operator = "LIKE"


def _pg_contains(field: str, word: str) -> Q:
    """Case-insensitive substring match of `word` in `field`, served by its trigram index."""
    return Q(ILike(F(field), f"%{connection.ops.prep_for_like_query(word)}%"))


def _pg_startswith(field: str, word: str) -> Q:
    return Q(ILike(F(field), f"{connection.ops.prep_for_like_query(word)}%"))


def _tag_link_model():
    from .models import ContactTag

    return ContactTag


def _preference_model():
    from .models import ChannelPreference

    return ChannelPreference


def tag_keys(names) -> list[str]:
    from .normalize import tag_key

    return sorted({tag_key(name) for name in names if str(name).strip()})


# --- Q builders --------------------------------------------------------------------------------
def _tag_ids_by_key(keys, org) -> dict[str, list[int]]:
    """{key: [tag ids]}: one small query. Without `org`, every organization's tags of those keys
    (harmless: a contact's tag_ids only ever hold its own organization's tags)."""
    from .models import Tag

    qs = Tag.objects.filter(key__in=keys)
    if org is not None:
        qs = qs.filter(organization=org)
    found: dict[str, list[int]] = {}
    for key, pk in qs.values_list("key", "pk"):
        found.setdefault(key, []).append(pk)
    return found


def _has_any_tag_id(ids) -> Q:
    # jsonb @> on Contact.tag_ids, served by its GIN index (PostgreSQL; kept by a trigger).
    q = Q(pk__in=[])
    for pk in ids:
        q |= Q(tag_ids__contains=[pk])
    return q


def q_tagged_any(names, *, org=None) -> Q:
    keys = tag_keys(names)
    if not keys:
        return Q()
    if connection.vendor == "postgresql":
        return _has_any_tag_id([pk for ids in _tag_ids_by_key(keys, org).values() for pk in ids])
    links = _tag_link_model().objects.filter(contact=OuterRef("pk"), tag__key__in=keys)
    return Q(Exists(links))


def q_tagged_all(names, *, org=None) -> Q:
    keys = tag_keys(names)
    q = Q()
    if connection.vendor == "postgresql" and keys:
        by_key = _tag_ids_by_key(keys, org)
        for key in keys:
            ids = by_key.get(key, [])
            q &= Q(tag_ids__contains=[ids[0]]) if len(ids) == 1 else _has_any_tag_id(ids)
        return q
    for key in keys:
        q &= Q(Exists(_tag_link_model().objects.filter(contact=OuterRef("pk"), tag__key=key)))
    return q


def q_tagged_none(names, *, org=None) -> Q:
    keys = tag_keys(names)
    if not keys:
        return Q()
    return ~q_tagged_any(keys, org=org)


def q_opted_out_of(channel: str | None) -> Q:
    """Opted out globally, or on `channel` (any channel when None)."""
    prefs = _preference_model().objects.filter(contact=OuterRef("pk"), opted_in=False)
    if channel:
        prefs = prefs.filter(channel=channel)
    return Q(opted_out=True) | Q(Exists(prefs))


def q_channel_opted_in(channel: str) -> Q:
    """May be messaged on `channel`: not opted out globally nor on that channel."""
    return ~q_opted_out_of(channel)


def q_reachable_on(channels) -> Q:
    """May be messaged now on any of `channels`: has the address the channel needs (an email for
    email, a phone for every other channel), is not opted out globally nor on that channel, and,
    for sms, is not known to be untextable (`is_textable=false`; unknown still counts)."""
    q = Q(pk__in=[])
    for channel in dict.fromkeys(channels):
        reach = Q(email__isnull=False) if channel == "email" else Q(phone__isnull=False)
        reach &= q_channel_opted_in(channel)
        if channel == "sms":
            reach &= Q(is_textable=True) | Q(is_textable__isnull=True)
        q |= reach
    return q


def q_textable(value: str) -> Q:
    """value: 'true' | 'false' | 'unknown'."""
    return {"true": Q(is_textable=True), "false": Q(is_textable=False), "unknown": Q(is_textable__isnull=True)}[value]


def q_search(term: str) -> Q:
    """Every word of `term` must match a name, the email or the phone.

    Phone-like words match phone digits as a substring. On PostgreSQL, words of 3+ characters
    also match fuzzily (pg_trgm `%`, per column so that each column's GIN index serves it:
    `Smiht` finds `Smith`); shorter words match by prefix. SQLite: case-insensitive substring.
    """
    words = term.split()[:MAX_SEARCH_WORDS]
    q = Q()
    postgres = connection.vendor == "postgresql"
    for word in words:
        digits = re.sub(r"\D", "", word)
        if PHONE_TERM_RE.match(word) and len(digits) >= 3:
            if postgres:
                # `secondary_phones::text`, exactly the expression migration 0003 indexes with
                # pg_trgm: without it this OR branch scans the organization (seconds at 1M).
                q &= Q(phone__contains=digits) | Q(Like(Cast("secondary_phones", TextField()), f"%{digits}%"))
            else:
                q &= Q(phone__contains=digits) | Q(secondary_phones__icontains=digits)
            continue
        if "@" in word:
            q &= _pg_contains("email", word) if postgres else Q(_email_cf__contains=word.casefold())
            continue
        fields = ["first_name", "last_name", "display_name", "email", "company"]
        word_q = Q()
        for name in fields:
            # Every branch of this OR must be answerable by an index on its column (ILIKE and
            # `%` by the column's trigram GIN index): one unindexable branch turns the whole
            # search into a scan of the organization's contacts.
            if postgres:
                if len(word) >= 3:
                    word_q |= _pg_contains(name, word)
                    if name not in {"company", "email"}:  # fuzzy emails match every same-domain address
                        word_q |= Q(**{f"{name}__trigram_similar": word})
                else:
                    word_q |= _pg_startswith(name, word)
            else:
                lookup = "contains" if len(word) >= 3 else "startswith"
                word_q |= Q(**{f"_{name}_cf__{lookup}": word.casefold()})
        q &= word_q
    return q


SEARCH_ALIAS_FIELDS = ["first_name", "last_name", "display_name", "email", "company"]


class ContactQuerySet(OrgQuerySet):
    def search(self, term: str):
        term = (term or "").strip()
        if not term:
            return self
        qs = self
        if connection.vendor != "postgresql":
            qs = qs.alias(**{f"_{name}_cf": Casefold(F(name)) for name in SEARCH_ALIAS_FIELDS})
        return qs.filter(q_search(term))

    def tagged_any(self, names, *, org=None):
        return self.filter(q_tagged_any(names, org=org))

    def tagged_all(self, names, *, org=None):
        return self.filter(q_tagged_all(names, org=org))

    def tagged_none(self, names, *, org=None):
        return self.filter(q_tagged_none(names, org=org))

    def in_state(self, states):
        return self.filter(state__in=[s.upper() for s in states])

    def opted_out_of(self, channel: str | None = None):
        return self.filter(q_opted_out_of(channel))

    def reachable_on(self, channels):
        """`reachable_on("sms")` or `reachable_on(["sms", "email"])` (any of them): q_reachable_on."""
        return self.filter(q_reachable_on([channels] if isinstance(channels, str) else channels))

    def textable(self, value: str):
        return self.filter(q_textable(value))

    def with_email(self, present: bool = True):
        return self.filter(email__isnull=not present)

    def with_phone(self, present: bool = True):
        return self.filter(phone__isnull=not present)

    def changed_between(self, field: str, after: datetime | None = None, before: datetime | None = None):
        qs = self
        if after is not None:
            qs = qs.filter(**{f"{field}__gte": after})
        if before is not None:
            qs = qs.filter(**{f"{field}__lt": before})
        return qs

    def with_related(self):
        """Everything the API representation shows: 4 queries per page whatever its size (the
        contacts, their tags, preferences and list memberships)."""
        return self.prefetch_related("tags", "preferences", "list_memberships")
