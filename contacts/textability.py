"""Can this phone receive text messages? Providers, chosen by settings.TEXTABILITY_PROVIDER.

- `offline` (default): phonenumbers' numbering-plan type (contacts.normalize.offline_textability).
  No network, ~1 µs a number: it runs inline whenever a phone is set (and set-based in imports).
- `twilio`: Twilio Lookup v2 line type intelligence, one HTTPS GET per number
  (`/v2/PhoneNumbers/{E164}?Fields=line_type_intelligence`, basic auth with TWILIO_ACCOUNT_SID /
  TWILIO_AUTH_TOKEN from the environment). A network call never runs inside a request: a phone
  change leaves `is_textable` and `textable_checked_at` empty and enqueues a job, after commit,
  that looks the number up and records the answer with a `textability_checked` event.

Results: True (mobile), False (landline, VoIP, toll free... cannot take a text), None (the
provider could not tell: unknown line type, or an error after the retries); `textable_checked_at`
is set in all three cases, so "never checked" (empty) and "could not tell" (set, with None) differ.

Settings (all optional): TWILIO_LOOKUP_BASE_URL (default https://lookups.twilio.com; tests point
it at a local stub), TEXTABILITY_RATE_PER_SECOND (10: lookups per second across every process,
counted in the shared cache), TEXTABILITY_RETRIES (3), TEXTABILITY_RETRY_BACKOFF (1.0 s, doubled
per retry; a 429's Retry-After wins), TEXTABILITY_TIMEOUT (10 s).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .models import Contact, ContactEvent
from .normalize import offline_textability

logger = logging.getLogger(__name__)

JOB_BATCH = 100  # contacts per job transaction for a network provider


@dataclass(frozen=True)
class LookupResult:
    textable: bool | None
    line_type: str = ""
    error: str = ""
    carrier: str = ""


class TextabilityConfigError(Exception):
    """The provider cannot work at all (unknown provider, missing or refused credentials)."""


# --- providers ----------------------------------------------------------------------------------
class OfflineProvider:
    name = "offline"
    inline = True  # cheap enough to run inside a request
    paid = False

    def lookup(self, e164: str) -> LookupResult:
        return LookupResult(offline_textability(e164), line_type="numbering plan")


# Twilio's documented line_type_intelligence.type values. Only a mobile line takes texts for
# sure; personal numbers forward anywhere and unknown is unknown: those stay None.
TWILIO_UNKNOWN_TYPES = frozenset({"unknown", "personal"})


def twilio_result(body: dict) -> LookupResult:
    """The result of a Lookup v2 answer (200). Pure: tested with the documented JSON."""
    if body.get("valid") is False:
        return LookupResult(False, line_type="invalid", error=", ".join(body.get("validation_errors") or []))
    info = body.get("line_type_intelligence") or {}
    if info.get("error_code"):
        return LookupResult(None, error=f"line type intelligence error {info['error_code']}")
    kind = info.get("type") or ""
    carrier = info.get("carrier_name") or ""
    if kind == "mobile":
        return LookupResult(True, line_type=kind, carrier=carrier)
    if not kind or kind in TWILIO_UNKNOWN_TYPES:
        return LookupResult(None, line_type=kind, carrier=carrier)
    return LookupResult(False, line_type=kind, carrier=carrier)  # landline, fixedVoip, nonFixedVoip, tollFree, premium, ...


class TwilioProvider:
    name = "twilio"
    inline = False  # a network round trip per number: never inside a request
    paid = True

    def __init__(self, *, base_url=None, account_sid=None, auth_token=None, rate=None, retries=None, backoff=None,
                 timeout=None):
        self.base_url = (base_url or getattr(settings, "TWILIO_LOOKUP_BASE_URL", "")
                         or "https://lookups.twilio.com").rstrip("/")
        self.account_sid = account_sid or os.environ.get("TWILIO_ACCOUNT_SID", "")
        self.auth_token = auth_token or os.environ.get("TWILIO_AUTH_TOKEN", "")
        self.rate = rate or getattr(settings, "TEXTABILITY_RATE_PER_SECOND", 10)
        self.retries = retries if retries is not None else getattr(settings, "TEXTABILITY_RETRIES", 3)
        self.backoff = backoff if backoff is not None else getattr(settings, "TEXTABILITY_RETRY_BACKOFF", 1.0)
        self.timeout = timeout or getattr(settings, "TEXTABILITY_TIMEOUT", 10)

    def _request(self, e164: str):
        if not (self.account_sid and self.auth_token):
            raise TextabilityConfigError("The twilio textability provider needs TWILIO_ACCOUNT_SID and "
                                         "TWILIO_AUTH_TOKEN in the environment.")
        url = f"{self.base_url}/v2/PhoneNumbers/{urllib.parse.quote(e164)}?Fields=line_type_intelligence"
        token = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode("ascii")
        request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}", "Accept": "application/json"})
        return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 (https, or the tests' stub)

    def _wait_for_slot(self):
        """At most `rate` lookups per second over all workers: a counter per second in the shared
        cache (Redis in production), so two workers do not each spend the whole rate."""
        from django.core.cache import cache

        while True:
            second = int(time.time())
            key = f"textability:{self.name}:{second}"
            cache.add(key, 0, timeout=5)
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                continue
            if count <= self.rate:
                return
            time.sleep(max(0.0, second + 1 - time.time()))

    def lookup(self, e164: str) -> LookupResult:
        """One number, retried on 429, 5xx and network errors with exponential backoff; None
        with the error once the retries are spent. Raises TextabilityConfigError on 401/403."""
        error, pause = "", 0.0
        for attempt in range(self.retries + 1):
            time.sleep(pause)
            self._wait_for_slot()
            pause = self.backoff * (2 ** attempt)  # before the next attempt, if any
            try:
                with self._request(e164) as response:
                    return twilio_result(json.loads(response.read().decode("utf-8")))
            except urllib.error.HTTPError as exc:
                detail = _twilio_message(exc)
                if exc.code in (401, 403):
                    raise TextabilityConfigError(f"Twilio refused the credentials (HTTP {exc.code}: {detail}).") from None
                error = f"HTTP {exc.code}: {detail}"
                if exc.code == 429:
                    retry_after = exc.headers.get("Retry-After", "")
                    if retry_after.isdigit():
                        pause = min(float(retry_after), 60.0)
                elif exc.code < 500:
                    return LookupResult(None, error=error)  # a 400/404 says the same on a retry
            except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
                error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        return LookupResult(None, error=f"gave up after {self.retries + 1} attempts: {error}")


def _twilio_message(exc: urllib.error.HTTPError) -> str:
    try:
        return json.loads(exc.read().decode("utf-8")).get("message") or exc.reason
    except (ValueError, OSError, AttributeError):
        return str(exc.reason)


PROVIDERS = {"offline": OfflineProvider, "twilio": TwilioProvider}


def get_provider(name: str | None = None):
    """The provider named by `name`, else settings.TEXTABILITY_PROVIDER (read on every call)."""
    name = (name or getattr(settings, "TEXTABILITY_PROVIDER", "") or "offline").strip().lower()
    if name not in PROVIDERS:
        raise TextabilityConfigError(f"Unknown TEXTABILITY_PROVIDER '{name}'; use one of {', '.join(PROVIDERS)}.")
    return PROVIDERS[name]()


# --- on a phone change ------------------------------------------------------------------------------
def textability_apply(contact: Contact, now) -> None:
    """Decides textability for a contact whose phone was just set (before it is saved).

    An inline provider answers at once. A network provider leaves both fields empty (never
    checked) and enqueues a lookup once the transaction commits; outside a transaction there
    is nothing to wait for yet, so the contact stays unchecked for `check_textability
    --only-unknown` (every service write runs in one: the API, the admin, imports).
    """
    if not contact.phone:
        contact.is_textable, contact.textable_checked_at = None, None
        return
    provider = get_provider()
    if provider.inline:
        contact.is_textable = provider.lookup(contact.phone).textable
        contact.textable_checked_at = now
        return
    contact.is_textable, contact.textable_checked_at = None, None
    if connection.in_atomic_block:
        contact_id = str(contact.pk)
        transaction.on_commit(lambda: textability_schedule([contact_id]))


def textability_schedule(contact_ids) -> None:
    """Enqueues lookups for these contacts, JOB_BATCH per job."""
    from contacts_crm.jobs import enqueue

    ids = [str(i) for i in contact_ids]
    for start in range(0, len(ids), JOB_BATCH):
        enqueue(textability_check_job, ids[start:start + JOB_BATCH])


def textability_check_job(contact_ids: list[str]) -> dict:
    """The RQ job: looks the contacts up with the configured provider and records the results."""
    contacts = list(Contact.objects.filter(pk__in=contact_ids, phone__isnull=False))
    try:
        return contacts_check_textability(contacts=contacts, provider=get_provider())
    except TextabilityConfigError:
        logger.exception("Textability lookups are misconfigured; %d contacts stay unchecked", len(contacts))
        return {"checked": 0}


# --- looking up and recording -----------------------------------------------------------------------
def contacts_check_textability(*, contacts: list[Contact], provider) -> dict:
    """Looks every contact's phone up, then records the results in one transaction: a contact
    whose phone changed meanwhile is left to the lookup its change enqueued. Returns counters
    {checked, textable, not_textable, unknown, errors, skipped}. Queries: two per call, plus
    the provider's lookups (network for twilio)."""
    results = {c.pk: (c.phone, provider.lookup(c.phone)) for c in contacts if c.phone}
    return contact_record_textability(results=results, provider_name=provider.name)


def contact_record_textability(*, results: dict, provider_name: str) -> dict:
    """Saves {contact id: (phone looked up, LookupResult)}: `is_textable`, `textable_checked_at`
    (and `updated_at` when the answer changed, so API clients syncing by updated_after see it),
    plus one `textability_checked` event per contact. Three queries whatever the count."""
    now = timezone.now()
    counters = dict.fromkeys(["checked", "textable", "not_textable", "unknown", "errors", "skipped"], 0)
    if not results:
        return counters
    with transaction.atomic():
        current = Contact.objects.select_for_update().filter(pk__in=list(results)).only(
            "id", "organization_id", "phone", "is_textable", "textable_checked_at", "updated_at")
        changed, events = [], []
        for contact in current:
            phone, result = results[contact.pk]
            if contact.phone != phone:
                counters["skipped"] += 1
                continue
            if contact.is_textable != result.textable:
                contact.updated_at = now
            contact.is_textable, contact.textable_checked_at = result.textable, now
            changed.append(contact)
            counters["checked"] += 1
            counters[{True: "textable", False: "not_textable", None: "unknown"}[result.textable]] += 1
            counters["errors"] += bool(result.error)
            data = {"phone": phone, "is_textable": result.textable, "provider": provider_name,
                    "line_type": result.line_type}
            if result.error:
                data["error"] = result.error[:500]
            events.append(ContactEvent(organization_id=contact.organization_id, contact_id=contact.pk,
                                       kind=ContactEvent.Kind.TEXTABILITY_CHECKED, data=data, created_at=now,
                                       actor_label=f"textability ({provider_name})"))
        Contact.objects.bulk_update(changed, ["is_textable", "textable_checked_at", "updated_at"], batch_size=500)
        ContactEvent.objects.bulk_create(events, batch_size=1000)
    return counters


# --- on demand (POST /contacts/verify) -------------------------------------------------------------
VERIFY_TIMEOUT = 5  # seconds POST /contacts/verify waits for a network provider (no retries)


def textability_verify(*, org, phone: str, provider=None, timeout: float = VERIFY_TIMEOUT) -> dict:
    """Looks `phone` (E.164) up now with the configured provider, within `timeout` seconds, and
    records the answer on the organization's contact with that phone, if any. Returns
    {phone, is_textable, line_type, carrier, checked_at, contact_id}. Raises
    TextabilityConfigError when the provider cannot work at all. Queries: one, plus three when a
    contact has the phone."""
    provider = provider or get_provider()
    if isinstance(provider, TwilioProvider):
        provider.timeout, provider.retries = timeout, 0  # the caller is waiting: one attempt
    result = provider.lookup(phone)
    contact = Contact.objects.for_org(org).filter(phone=phone).only("id").first()
    if contact is not None:
        contact_record_textability(results={contact.pk: (phone, result)}, provider_name=provider.name)
    return {"phone": phone, "is_textable": result.textable, "line_type": result.line_type,
            "carrier": result.carrier, "checked_at": timezone.now(),
            "contact_id": str(contact.pk) if contact else None}
