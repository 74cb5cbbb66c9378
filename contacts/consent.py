"""Consent that outlives the contact: the suppression list, the consent ledger, inbound keywords.

- The **ledger** (`ConsentRecord`) gets one row per change of the global opt-out or a channel
  preference. contacts.services writes it from its consent functions (`consent_record`), the
  importer set-based (`consent_record_bulk`).
- The **suppression list** (`Suppression`) holds keyed hashes of the phones and emails of purged or
  erased contacts who had opted out; a contact created later with one of them starts opted out
  (the write engine looks them up per batch, `suppressions_apply_bulk` writes what follows).
- **Keywords** (`inbound_message`): STOP/START/HELP… from an inbound message, for POST /inbound and
  for POST /contacts/{id}/activity with kind message_received.

The rule "no path opts a contact back in without the person's own word" lives in
`inbound_message`: START lifts a global opt-out only when its source was a keyword or the
suppression list, never one that staff, an import or an API caller set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import (
    Channel,
    ChannelPreference,
    ConsentRecord,
    ConsentSource,
    Contact,
    ContactEvent,
    KeywordSettings,
    Suppression,
)
from .normalize import email_key


# --- hashing -----------------------------------------------------------------------------------
def value_hash(kind: str, value: str) -> str:
    """HMAC-SHA256 (key: SECRET_KEY) of an E.164 phone or an email, hex. Emails are casefolded.

    Keyed, so that the list cannot be reversed by hashing every phone number of a country. Changing
    SECRET_KEY makes every existing entry unmatchable (docs/consent.md says so).
    """
    normalized = email_key(value) if kind == Suppression.Kind.EMAIL else value
    message = f"{kind}:{normalized}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def contact_value_hashes(contact: Contact) -> list[tuple[str, str]]:
    """[(kind, hash)] of the contact's primary phone and email."""
    out = []
    if contact.phone:
        out.append((Suppression.Kind.PHONE, value_hash(Suppression.Kind.PHONE, contact.phone)))
    if contact.email:
        out.append((Suppression.Kind.EMAIL, value_hash(Suppression.Kind.EMAIL, contact.email)))
    return out


def _merge_scopes(scopes) -> str | list[str] | None:
    """"all" when any scope is "all", else the union of channels; None when there is none."""
    channels: set[str] = set()
    found = False
    for scope in scopes:
        found = True
        if scope == "all":
            return "all"
        channels.update(scope or [])
    if not found:
        return None
    return sorted(channels) if channels else "all"


# --- ledger ------------------------------------------------------------------------------------
def _actor_evidence(actor) -> dict:
    evidence = dict(getattr(actor, "evidence", None) or {})
    if getattr(actor, "api_key", None) is not None:
        evidence.setdefault("api_key", actor.api_key.name)
    return evidence


def consent_record(*, contact: Contact, channel: str | None, opted_in: bool, actor, at=None,
                   evidence: dict | None = None) -> ConsentRecord:
    """Appends one ledger row (one INSERT). Called by contacts.services' consent functions only."""
    return ConsentRecord.objects.create(
        organization_id=contact.organization_id, contact=contact, channel=channel, opted_in=opted_in,
        source=actor.source, evidence={**_actor_evidence(actor), **(evidence or {})},
        created_at=at or timezone.now(), **actor.event_fields(),
    )


def consent_record_bulk(*, org_id, rows, at, actor_user_id=None, actor_api_key_id=None, actor_label="") -> int:
    """Appends ledger rows given as plain tuples `(contact_id, channel, opted_in, source, evidence)`.

    For the importer's write engine: one bulk INSERT per call, whatever the count.
    """
    records = [
        ConsentRecord(organization_id=org_id, contact_id=contact_id, channel=channel, opted_in=opted_in,
                      source=source, evidence=evidence or {}, created_at=at, actor_user_id=actor_user_id,
                      actor_api_key_id=actor_api_key_id, actor_label=actor_label[:100])
        for contact_id, channel, opted_in, source, evidence in rows
    ]
    ConsentRecord.objects.bulk_create(records, batch_size=1000)
    return len(records)


def consent_records_detach(*, contact_ids, hashes_by_contact: dict) -> int:
    """On purge/erase: the contact's ledger rows lose the link to it and any message text, and keep
    the suppression hashes of its phone/email. The only change a ledger row ever gets."""
    records = list(ConsentRecord.objects.filter(contact_id__in=contact_ids))
    for record in records:
        record.subject_hashes = [h for _, h in hashes_by_contact.get(record.contact_id, [])]
        record.evidence = {k: v for k, v in (record.evidence or {}).items() if k != "body"}
        record.contact_id = None
    ConsentRecord.objects.bulk_update(records, ["contact", "subject_hashes", "evidence"], batch_size=1000)
    return len(records)


def contact_opt_out_scope(contact: Contact) -> str | list[str] | None:
    """What the contact is opted out of now: "all", [channels] or None. One query."""
    if contact.opted_out:
        return "all"
    channels = sorted(ChannelPreference.objects.filter(contact=contact, opted_in=False)
                      .values_list("channel", flat=True))
    return channels or None


def suppressions_write(*, contacts, source: str, always: bool = False, at=None) -> dict:
    """Writes the suppression entries of contacts about to be purged or erased.

    Only for contacts opted out globally or on some channel, unless `always` (erase: scope "all" when
    the contact had not opted out). Returns {contact_id: [(kind, hash)]} for the ledger. Two
    queries plus one INSERT whatever the count.
    """
    now = at or timezone.now()
    contacts = list(contacts)
    prefs: dict = {}
    opted_out_since: dict = {}
    for contact_id, channel, changed_at in ChannelPreference.objects.filter(
            contact__in=[c.pk for c in contacts], opted_in=False).values_list("contact_id", "channel", "changed_at"):
        prefs.setdefault(contact_id, []).append(channel)
        opted_out_since[contact_id] = min(changed_at, opted_out_since.get(contact_id, changed_at))
    entries, hashes = [], {}
    for contact in contacts:
        hashes[contact.pk] = contact_value_hashes(contact)
        if contact.opted_out:
            scope = "all"
        elif prefs.get(contact.pk):
            scope = sorted(prefs[contact.pk])
        elif always:
            scope = "all"
        else:
            continue
        if contact.opted_out and contact.opted_out_at:
            since = contact.opted_out_at
        else:
            since = opted_out_since.get(contact.pk, now)
        for kind, digest in hashes[contact.pk]:
            entries.append(Suppression(organization_id=contact.organization_id, kind=kind, value_hash=digest,
                                       scope=scope, since=since, source=source))
    Suppression.objects.bulk_create(entries, batch_size=1000)
    return hashes


def suppression_scope(*, org, phone: str | None = None, email: str | None = None) -> str | list[str] | None:
    """The merged scope of the active entries for this phone (E.164) or email. One query."""
    wanted = []
    if phone:
        wanted.append((Suppression.Kind.PHONE, value_hash(Suppression.Kind.PHONE, phone)))
    if email:
        wanted.append((Suppression.Kind.EMAIL, value_hash(Suppression.Kind.EMAIL, email)))
    if not wanted:
        return None
    qs = Suppression.objects.for_org(org).filter(lifted_at__isnull=True, value_hash__in=[h for _, h in wanted])
    return _merge_scopes(scope for kind, digest, scope in qs.values_list("kind", "value_hash", "scope")
                         if (kind, digest) in wanted)


def suppressions_lookup_bulk(*, org, phones, emails) -> dict:
    """{("phone", e164) | ("email", email_key): scope} for the active entries among these values.

    For the importer: one query per chunk (hashing costs ~1 µs a value), and only a cheap
    EXISTS when the organization suppresses nothing (most do not: no hashing then).
    """
    if not (phones or emails) or not Suppression.objects.for_org(org).filter(lifted_at__isnull=True).exists():
        return {}
    by_hash = {}
    for phone in phones:
        by_hash[value_hash(Suppression.Kind.PHONE, phone)] = (Suppression.Kind.PHONE.value, phone)
    for key in emails:
        by_hash[value_hash(Suppression.Kind.EMAIL, key)] = (Suppression.Kind.EMAIL.value, key)
    if not by_hash:
        return {}
    found: dict = {}
    for digest, scope in Suppression.objects.for_org(org).filter(
            lifted_at__isnull=True, value_hash__in=list(by_hash)).values_list("value_hash", "scope"):
        key = by_hash[digest]
        found[key] = _merge_scopes([found[key], scope]) if key in found else scope
    return found


def suppression_scope_of(found: dict, phone: str | None, key: str | None):
    """The scope suppressions_lookup_bulk found for this phone or email key, or None."""
    scopes = [found[k] for k in (("phone", phone), ("email", key)) if k[1] and k in found]
    return _merge_scopes(scopes)


def suppression_actor(actor):
    """The same actor, acting for the suppression list (opt_out_source "suppression")."""
    return dataclasses.replace(actor, source=ConsentSource.SUPPRESSION)


def suppressions_apply_bulk(*, org_id, items, at, actor_user_id=None, actor_api_key_id=None,
                            actor_label="") -> None:
    """Suppression on create, for contacts the write engine (contacts.upsert) just inserted.

    `items`: [(contact_id, scope)]. A scope "all" must already be on the rows (opted_out with
    source "suppression", set before the INSERT); channel scopes become preference rows here. Writes
    the preferences, the ledger rows and the `suppressed` events in three bulk INSERTs.
    """
    if not items:
        return
    prefs, ledger, events = [], [], []
    common = {"organization_id": org_id, "created_at": at, "actor_user_id": actor_user_id,
              "actor_api_key_id": actor_api_key_id, "actor_label": actor_label[:100]}
    for contact_id, scope in items:
        events.append(ContactEvent(contact_id=contact_id, kind=ContactEvent.Kind.SUPPRESSED, data={"scope": scope},
                                   **common))
        for channel in ([None] if scope == "all" else scope):
            if channel is not None:
                prefs.append(ChannelPreference(contact_id=contact_id, channel=channel, opted_in=False, changed_at=at,
                                               source=ConsentSource.SUPPRESSION))
            events.append(ContactEvent(contact_id=contact_id, kind=ContactEvent.Kind.OPTED_OUT,
                                       data={"channel": channel, "source": ConsentSource.SUPPRESSION.value}, **common))
            ledger.append((contact_id, channel, False, ConsentSource.SUPPRESSION.value, {}))
    ChannelPreference.objects.bulk_create(prefs, batch_size=1000)
    ContactEvent.objects.bulk_create(events, batch_size=1000)
    consent_record_bulk(org_id=org_id, rows=ledger, at=at, actor_user_id=actor_user_id,
                        actor_api_key_id=actor_api_key_id, actor_label=actor_label)


def suppression_lift(*, suppression: Suppression, user=None, reason: str, label: str = "") -> Suppression:
    """Lifts an entry; the reason is kept on the entry (it is never deleted)."""
    from .services import ServiceError

    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Give the reason for lifting this suppression (it is kept).", field="lift_reason")
    if suppression.lifted_at is not None:
        raise ServiceError("This suppression was already lifted.", field="lift_reason")
    suppression.lifted_at = timezone.now()
    suppression.lifted_by = user if getattr(user, "pk", None) else None
    suppression.lift_reason = f"{label}: {reason}" if label else reason
    suppression.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
    return suppression


def suppression_check(*, org, phone: str | None = None, email: str | None = None) -> dict:
    """The sender's one question: may I message this phone (E.164) or email?

    True for a contact (live or in the trash) opted out globally or on a channel, and for any active
    suppression entry. Answers {"suppressed": bool, "scope": "all" | [channels] | None}. Three
    queries at most.
    """
    scopes = []
    found = suppression_scope(org=org, phone=phone, email=email)
    if found is not None:
        scopes.append(found)
    q = Contact.objects.for_org(org, trashed=True)
    contact = (q.filter(phone=phone).first() if phone else q.filter(email_key=email_key(email)).first())
    if contact is not None:
        own = contact_opt_out_scope(contact)
        if own is not None:
            scopes.append(own)
    scope = _merge_scopes(scopes)
    return {"suppressed": scope is not None, "scope": scope}


# --- inbound keywords --------------------------------------------------------------------------
class KeywordAction:
    OPT_OUT = "opted_out"
    OPT_OUT_ALL = "opted_out_all"
    OPT_IN = "opted_in"
    HELP = "help"
    NONE = "none"


DEFAULT_KEYWORDS = {
    KeywordAction.OPT_OUT: ("STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "STOP ALL"),
    KeywordAction.OPT_OUT_ALL: ("STOPALL",),
    KeywordAction.OPT_IN: ("START", "UNSTOP", "SUBSCRIBE"),
    KeywordAction.HELP: ("HELP", "INFO"),
}
DEFAULT_REPLIES = {
    KeywordAction.OPT_OUT: "You are unsubscribed and will get no more messages. Reply START to resubscribe.",
    KeywordAction.OPT_IN: "You are subscribed again. Reply STOP to unsubscribe, HELP for help.",
    KeywordAction.HELP: "Reply STOP to unsubscribe, START to resubscribe.",
}
# Global opt-outs that START may lift: the ones the person's own keyword or the suppression list
# set. Never one set by staff, an import or an API caller (design §0).
START_LIFTS_SOURCES = (ConsentSource.KEYWORD, ConsentSource.SUPPRESSION)
MAX_INBOUND_BODY = 2000

_TRAILING = re.compile(r"[\s.!?,;:…'\"]+$")


def keyword_normalize(text: str) -> str:
    """The whole message, trimmed, spaces collapsed, trailing punctuation dropped, casefolded."""
    text = " ".join((text or "").split())
    return _TRAILING.sub("", text).casefold()


def _words(text: str) -> list[str]:
    return [keyword_normalize(w) for w in re.split(r"[,\n]", text or "") if keyword_normalize(w)]


def keyword_table(org) -> dict[str, str]:
    """{normalized word: action} for the organization: the defaults plus its own words."""
    table = {}
    settings_row = KeywordSettings.objects.filter(organization=org).first()
    extra = {}
    if settings_row is not None:
        extra = {
            KeywordAction.OPT_OUT: _words(settings_row.opt_out_words),
            KeywordAction.OPT_OUT_ALL: _words(settings_row.opt_out_all_words),
            KeywordAction.OPT_IN: _words(settings_row.opt_in_words),
            KeywordAction.HELP: _words(settings_row.help_words),
        }
    # Later entries win: help < opt-in < opt-out < opt-out-all, so a word an organization lists
    # twice errs on the side of stopping.
    for action in (KeywordAction.HELP, KeywordAction.OPT_IN, KeywordAction.OPT_OUT, KeywordAction.OPT_OUT_ALL):
        for word in (*DEFAULT_KEYWORDS[action], *extra.get(action, [])):
            table[keyword_normalize(word)] = action
    table["_settings"] = settings_row  # type: ignore[assignment]
    return table


def keyword_reply(settings_row, action: str) -> str | None:
    key = KeywordAction.OPT_OUT if action == KeywordAction.OPT_OUT_ALL else action
    if key == KeywordAction.NONE:
        return None
    custom = {KeywordAction.OPT_OUT: "reply_opted_out", KeywordAction.OPT_IN: "reply_opted_in",
              KeywordAction.HELP: "reply_help"}[key]
    return (getattr(settings_row, custom, "") if settings_row else "") or DEFAULT_REPLIES[key]


def keyword_action(*, org, body: str) -> tuple[str, Any]:
    """(action, the organization's KeywordSettings or None) for a message body. One query."""
    table = keyword_table(org)
    return table.get(keyword_normalize(body), KeywordAction.NONE), table["_settings"]


def inbound_message(*, org, phone: str, body: str, actor, channel: str = Channel.SMS, message_id: str = "",
                    received_at=None, contact: Contact | None = None, record: bool = True,
                    data: dict | None = None) -> dict:
    """Handles one inbound message: records a `message_received` event and applies its keyword.

    `phone` is E.164. `contact` given (POST /contacts/{id}/activity): that contact; else the one with
    the phone, live or trashed; an unknown sender (or a trashed one) saying an opt-out keyword
    becomes (again) an opted-out contact, one saying anything else is only answered. START opts in
    on the channel and lifts a global opt-out only when a keyword or the suppression list set it.
    Returns {"contact_id", "action", "channel", "reply", "event"}.
    """
    from . import services

    at = received_at or timezone.now()
    action, settings_row = keyword_action(org=org, body=body)
    keyword_actor = dataclasses.replace(
        actor, source=ConsentSource.KEYWORD,
        evidence={"message_id": message_id or None, "body": body[:MAX_INBOUND_BODY], "channel": channel},
    )
    event = None
    with transaction.atomic():
        if contact is None:
            contact = services.contact_find_match(org=org, phone=phone, email=None, lock=True)
            if contact is not None and contact.deleted_at is not None:
                if action in (KeywordAction.OPT_OUT, KeywordAction.OPT_OUT_ALL, KeywordAction.OPT_IN):
                    from .trash import contact_restore

                    contact_restore(contact=contact, actor=actor)
                else:
                    contact = None
            if contact is None and action in (KeywordAction.OPT_OUT, KeywordAction.OPT_OUT_ALL):
                contact, _ = services.opt_out_phone(
                    org=org, phone=phone, actor=keyword_actor,
                    channel=None if action == KeywordAction.OPT_OUT_ALL else channel,
                )
        if contact is not None and record:
            event = services.record_event(
                contact, ContactEvent.Kind.MESSAGE_RECEIVED, actor,
                {**(data or {}), "body": body[:MAX_INBOUND_BODY], "channel": channel,
                 "message_id": message_id or None, "keyword_action": action}, at=at,
            )
        if contact is not None:
            if action == KeywordAction.OPT_OUT:
                services.contact_opt_out(contact=contact, actor=keyword_actor, channel=channel)
            elif action == KeywordAction.OPT_OUT_ALL:
                services.contact_opt_out(contact=contact, actor=keyword_actor, channel=None)
            elif action == KeywordAction.OPT_IN:
                services.contact_opt_in(contact=contact, actor=keyword_actor, channel=channel)
                if contact.opted_out and contact.opt_out_source in START_LIFTS_SOURCES:
                    services.contact_opt_in(contact=contact, actor=keyword_actor, channel=None)
                _lift_own_suppressions(contact=contact, phone=phone, message_id=message_id)
    return {"contact_id": str(contact.pk) if contact else None,
            "action": KeywordAction.OPT_OUT if action == KeywordAction.OPT_OUT_ALL else action,
            "channel": None if action == KeywordAction.OPT_OUT_ALL else channel,
            "reply": keyword_reply(settings_row, action), "event": event}


def _lift_own_suppressions(*, contact: Contact, phone: str | None, message_id: str) -> None:
    """START from a suppressed phone: the person's own word lifts the phone's entries."""
    phone = phone or contact.phone
    if not phone:
        return
    digest = value_hash(Suppression.Kind.PHONE, phone)
    for entry in Suppression.objects.for_org(contact.organization_id).filter(
            kind=Suppression.Kind.PHONE, value_hash=digest, lifted_at__isnull=True):
        suppression_lift(suppression=entry, reason=f"START keyword from the number (message {message_id or '-'})",
                         label="keyword")
