"""What "state in NC, SC" or "tagged vip" means, once.

Each filter is a `q_*` function returning a `Q` (so the segment compiler can AND/OR/NOT them)
and a `ContactQuerySet` method that applies it (so views, the admin and commands read as
English). Nothing here evaluates a query.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.db import connection
from django.db.models import Exists, F, Func, Lookup, OuterRef, Q, TextField, Value
from django.db.models.query import ModelIterable, ValuesIterable

from contacts_crm.tenancy import OrgQuerySet

from .search import fold_text

PHONE_TERM_RE = re.compile(r"^[+()\d\s.\-]+$")
MAX_SEARCH_WORDS = 6
MIN_PHONE_DIGITS = 3


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
    `UPPER(column::text) LIKE UPPER(…)`, which no index on the column can serve; (I)LIKE on the
    bare column is what a pg_trgm GIN index answers (search_doc's, migration 0005). Used as an
    expression (`Q(Like(F("search_doc"), "%ann%"))`), not registered as a lookup."""

    lookup_name = "pg_ilike"
    operator = "ILIKE"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} {self.operator} {rhs}", [*lhs_params, *rhs_params]


class Like(ILike):
    """`expression LIKE pattern`: for text already folded (search_doc), where case does not matter."""

    lookup_name = "pg_like"
    operator = "LIKE"


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
    """Every word of `term` must be found in the contact's search document (contacts.search:
    names, company, emails, phone digits, folded: `garcia` finds García).

    - A term that looks like a phone (digits and `+ ( ) - .` spaces) searches its digits as one
      substring: `+1 919 260 0002`, `1 919 260 0002` and `(919) 260-0002` find +19192600002.
    - Words of 3+ characters match as substrings; on PostgreSQL, words of 3+ letters also match
      by pg_trgm word similarity (`word <% search_doc`, threshold FUZZY_WORD_THRESHOLD), which
      forgives a one-letter slip in a longer word (`Smiht` → Smith, `Robinsen` → Robinson).
    - Shorter words match the start of a word (`jo` finds Jones, not Major).

    Every branch is answered by the one trigram GIN index on search_doc (migration 0005).
    No alias, no join: usable as a plain Q by the API, the admin and the segment compiler.
    """
    term = (term or "").strip()
    if not term:
        return Q()
    digits = re.sub(r"\D", "", term)
    if PHONE_TERM_RE.match(term) and len(digits) >= MIN_PHONE_DIGITS:
        return _doc_contains(digits)
    q = Q()
    for word in fold_text(term).split()[:MAX_SEARCH_WORDS]:
        word_digits = re.sub(r"\D", "", word)
        if PHONE_TERM_RE.match(word) and len(word_digits) >= MIN_PHONE_DIGITS:
            q &= _doc_contains(word_digits)  # "555-7788": the digits, as the document holds them
        elif len(word) >= 3:
            word_q = _doc_contains(word)
            # Fuzzy for name-like words only: `example.org` or `ann@x` would be similar to every
            # address of the same domain.
            if connection.vendor == "postgresql" and word.replace("-", "").replace("'", "").isalpha():
                word_q |= Q(WordSimilar(Value(word, output_field=TextField()), F("search_doc")))
                if len(word) == 4:
                    # A letter left out of a 5-letter name (`Smth`): word similarity scores it
                    # 0.4, and a threshold that low makes every short word slow. The three
                    # whole-word patterns with the missing letter as `_` are exact and cheap.
                    for i in range(1, len(word)):
                        word_q |= _doc_like(f" {_escape(word[:i])}_{_escape(word[i:])} ")
            q &= word_q
        else:
            q &= _doc_contains(" " + word)  # the document's tokens each follow a space
    return q


class WordSimilar(Lookup):
    """`word <% search_doc` (pg_trgm): some extent of the document is at least
    pg_trgm.word_similarity_threshold similar to `word`. The trigram GIN index serves it.
    The threshold is set on each new connection (contacts.apps) to FUZZY_WORD_THRESHOLD."""

    lookup_name = "pg_word_similar"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} <%% {rhs}", [*lhs_params, *rhs_params]


def _doc_contains(text: str) -> Q:
    """`search_doc LIKE '%text%'`. The document and the text are already folded, so LIKE, not
    ILIKE; on PostgreSQL the bare column (no `::text`, no UPPER) that the trigram index answers."""
    if connection.vendor == "postgresql":
        return _doc_like(_escape(text))
    return Q(search_doc__contains=text)


def _escape(text: str) -> str:
    return connection.ops.prep_for_like_query(text)


def _doc_like(pattern: str) -> Q:
    """PostgreSQL: `search_doc LIKE '%pattern%'`, the pattern already escaped (it may hold `_`)."""
    return Q(Like(F("search_doc"), f"%{pattern}%"))


class ContactQuerySet(OrgQuerySet):
    def for_org(self, org, *, trashed: bool = False):
        """The organization's live contacts; `trashed=True` includes the trash (matching on phone
        and email must see it, so that a re-create restores instead of colliding)."""
        qs = super().for_org(org)
        return qs if trashed else qs.filter(deleted_at__isnull=True)

    def live(self):
        return self.filter(deleted_at__isnull=True)

    def in_trash(self):
        return self.filter(deleted_at__isnull=False)

    def search(self, term: str):
        term = (term or "").strip()
        if not term:
            return self
        return self.filter(q_search(term))

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
        """Everything the API representation shows: 2 queries per page whatever its size (the
        contacts, then one UNION of their tag names, preferences and list ids: load_related)."""
        clone = self._chain()
        clone._load_related = True
        return clone

    def api_rows(self, *extra):
        """The contacts as plain rows: dicts of the columns their API representation reads
        (contacts.serializers.CONTACT_COLUMNS, then `extra`), each with its `tags`, `preferences`
        and `lists` once fetched (load_related). What a page renders: no model instance per row,
        none of the columns a page does not show (tag_ids, search_doc). 2 queries per page."""
        from .serializers import CONTACT_COLUMNS

        clone = self.with_related().values(*CONTACT_COLUMNS, *extra)
        clone._api_rows = True
        return clone

    # with_related() and api_rows() are flags carried by every clone (filter, slice, order_by
    # after them), acted on when the rows are fetched. Not prefetch_related: its three
    # model-instance prefetches cost ~7 ms a page of 50, the one values UNION ~1 ms
    # (bench/README.md, issue 14).
    _load_related = False
    _api_rows = False

    def _clone(self):
        clone = super()._clone()
        clone._load_related, clone._api_rows = self._load_related, self._api_rows
        return clone

    def _fetch_all(self):
        fresh = self._result_cache is None
        super()._fetch_all()
        if fresh and self._load_related and (self._iterable_class is ModelIterable
                                             or self._api_rows and self._iterable_class is ValuesIterable):
            load_related(self._result_cache)


def load_related(contacts) -> None:
    """Sets each contact's tag names (sorted case-insensitively), preferences ({channel:
    opted_in}, by channel) and list ids (sorted): what the API representation shows beside the
    contact's own columns. On a Contact as `related_tags`, `related_preferences`,
    `related_lists`; on a row of api_rows() (a dict) as `tags`, `preferences`, `lists`. One
    query (a UNION ALL), none when `contacts` is empty."""
    from .models import Contact

    contacts = list(contacts)
    # Keyed by the id as the database driver gives it back (a UUID on PostgreSQL, hex on SQLite).
    prep = Contact._meta.pk.get_db_prep_value
    keys = [prep(contact["id"] if isinstance(contact, dict) else contact.pk, connection) for contact in contacts]
    by_id = {key: ([], {}, []) for key in keys}
    if by_id:
        ids = list(by_id)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # One array parameter: psycopg quotes and splits 150 separate ones slower than PostgreSQL runs the query.
                cursor.execute(_related_sql("= ANY(%s)"), [ids] * 3)
            else:
                cursor.execute(_related_sql(f"IN ({', '.join(['%s'] * len(ids))})"), ids * 3)
            rows = cursor.fetchall()
        for contact_id, kind, text, number in rows:
            tags, preferences, lists = by_id[contact_id]
            if kind == "t":
                tags.append(text)
            elif kind == "p":
                preferences[text] = bool(number)
            else:
                lists.append(number)
    for contact, key in zip(contacts, keys, strict=True):
        tags, preferences, lists = by_id[key]
        tags.sort(key=str.casefold)
        lists.sort()
        related = (tags, dict(sorted(preferences.items())), lists)
        if isinstance(contact, dict):
            contact["tags"], contact["preferences"], contact["lists"] = related
        else:
            contact.related_tags, contact.related_preferences, contact.related_lists = related


def _related_sql(ids: str) -> str:
    """load_related's statement, `ids` the condition on each branch's contact id (its parameters
    passed three times). Plain SQL, not three ORM querysets in a union: building those cost more
    than running them (~0.7 of ~1.2 ms)."""
    from segments.models import ListMembership

    from .models import ChannelPreference, ContactTag, Tag

    link, tag = ContactTag._meta.db_table, Tag._meta.db_table
    preference, membership = ChannelPreference._meta.db_table, ListMembership._meta.db_table
    # Every branch has the same columns: (contact id, kind, text, number).
    return (
        f"SELECT l.contact_id, 't', t.name, 0 FROM {link} l JOIN {tag} t ON t.id = l.tag_id "
        f"WHERE l.contact_id {ids} "
        f"UNION ALL SELECT p.contact_id, 'p', p.channel, CASE WHEN p.opted_in THEN 1 ELSE 0 END "
        f"FROM {preference} p WHERE p.contact_id {ids} "
        f"UNION ALL SELECT m.contact_id, 'l', '', m.list_id FROM {membership} m WHERE m.contact_id {ids}"
    )
