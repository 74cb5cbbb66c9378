"""The contact search document: one normalized string per contact, the only thing search reads.

`search_document(values)` is the one function that builds it; every write path calls it
(`Contact.save()`, the importer's planner, the bench fill, the backfill migration), so what
search finds cannot depend on how a contact was written. `fold_text` is the one folding,
applied to the document and to the search term alike (contacts.querysets.q_search).

The document is space-separated, deduplicated tokens with a space before and after each, so
that a word prefix is `LIKE '% jo%'` and a whole word `LIKE '% smith %'` (pg_trgm pads a word
next to a space: the trigram index serves both):

    " ann garcia acme ann@example.org 19195550102 9195550102 "

Phones appear as their E.164 digits and as their national digits (without the country code),
so `+1 919 555 0102`, `1 919 555 0102` and `919 555 0102` all find it. PostgreSQL indexes the
document with one pg_trgm GIN index (contacts migration 0005); SQLite matches substrings.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from .normalize import _TRANSLITERATE  # the letters NFKD leaves whole (ø, æ, ł, ...): one table

# The fields whose text goes into the document, in order. A write that changes one of these
# must rewrite search_doc (Contact.save() does it; see DOCUMENT_FIELDS' other users).
# pg_trgm word similarity a search word needs to match fuzzily (`word <% search_doc`): 0.5
# lets a transposition in a 5-letter word through (smiht/smith 0.50) and a substitution in
# an 8-letter one (robinsen/robinson 0.67); pg_trgm's default 0.6 misses the first. Lower
# costs speed (more candidates to recheck) and precision (bench/README.md, "Index diet").
FUZZY_WORD_THRESHOLD = 0.5

TEXT_FIELDS = ("first_name", "last_name", "display_name", "company", "email")
DOCUMENT_FIELDS = (*TEXT_FIELDS, "phone", "secondary_phones", "secondary_emails")


def fold_text(text: str) -> str:
    """Casefolded, accents removed (NFKD without combining marks): García → garcia, Zoë → zoe,
    ÉLODIE → elodie, Straße → strasse, Jørgensen → jorgensen (contacts.normalize's table of
    letters NFKD does not take apart). ASCII takes a fast path (most names and every email)."""
    if not text:
        return ""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_TRANSLITERATE))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # NFKD can produce capitals from compatibility forms (ℌ → H): fold once more.
    return unicodedata.normalize("NFC", stripped.casefold())


def phone_digits(e164: str) -> list[str]:
    """[E.164 digits, national digits]: "+19195550102" → ["19195550102", "9195550102"].

    Country codes are prefix-free (ITU E.164), so the first 1-3 digits that name one are it:
    no phonenumbers parse (24 µs each) on the import's hot path."""
    digits = "".join(ch for ch in str(e164) if ch.isdigit())
    if not digits:
        return []
    for length in (1, 2, 3):
        if int(digits[:length]) in COUNTRY_CODE_TO_REGION_CODE and len(digits) > length:
            return [digits, digits[length:]]
    return [digits]


def search_document(values) -> str:
    """The document for one contact. `values`: a mapping of field name → value (a Contact's
    `__dict__`, an import row's normalized data), missing fields counting as empty. Pure
    Python, ~2-4 µs for a typical contact."""
    if not isinstance(values, Mapping):
        values = vars(values)
    tokens: list[str] = []
    for name in TEXT_FIELDS:
        value = values.get(name)
        if value:
            tokens.extend(fold_text(str(value)).split())
    phone = values.get("phone")
    if phone:
        tokens.extend(phone_digits(phone))
    for number in values.get("secondary_phones") or ():
        tokens.extend(phone_digits(number))
    for address in values.get("secondary_emails") or ():
        tokens.extend(fold_text(str(address)).split())
    if not tokens:
        return ""
    return f" {' '.join(dict.fromkeys(tokens))} "  # dedupe, keep order: display_name repeats names


def rebuild_search_documents(model=None, *, batch: int = 5000, using: str = "default", queryset=None) -> int:
    """Rewrites search_doc where it differs from search_document(), walking the primary key in
    batches of `batch` rows, each its own short transaction (safe on a live table: no long
    lock, no table rewrite). `model` may be a migration's historical Contact; `queryset`
    narrows the walk (e.g. one organization). Returns the number of rows rewritten. Costs one
    read and at most one UPDATE per batch (~30k rows/s on PostgreSQL here)."""
    from django.db import connections, transaction

    if model is None:
        from contacts.models import Contact as model
    base = (queryset if queryset is not None else model._base_manager.using(using)).order_by("pk")
    connection = connections[using]
    table = connection.ops.quote_name(model._meta.db_table)
    last, rewritten = None, 0
    while True:
        page = base.filter(pk__gt=last) if last is not None else base
        rows = list(page.values_list("pk", "search_doc", *DOCUMENT_FIELDS)[:batch])
        if not rows:
            return rewritten
        last = rows[-1][0]
        changed = []
        for pk, current, *values in rows:
            doc = search_document(dict(zip(DOCUMENT_FIELDS, values, strict=True)))
            if doc != current:
                changed.append((pk, doc))
        if not changed:
            continue
        with transaction.atomic(using=using):
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    values_sql = ", ".join(["(%s::uuid, %s)"] * len(changed))
                    cursor.execute(
                        f"UPDATE {table} AS c SET search_doc = v.doc FROM (VALUES {values_sql}) AS v(id, doc) "
                        "WHERE c.id = v.id",
                        [item for pair in changed for item in pair],
                    )
            else:
                objects = [model(pk=pk, search_doc=doc) for pk, doc in changed]
                model._base_manager.using(using).bulk_update(objects, ["search_doc"], batch_size=500)
        rewritten += len(changed)
