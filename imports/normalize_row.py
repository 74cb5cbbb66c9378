"""One source record (RawRecord) → normalized contact data, warnings and errors.

Design §6: a row fails only when it cannot become a contact (no valid phone and no valid
email); any other bad cell is dropped and reported as a warning. Empty cells are simply absent,
so an import never clears a field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contacts.models import CustomField
from contacts.normalize import (
    NormalizationError,
    email_key,
    normalize_country,
    normalize_custom_key,
    normalize_date,
    normalize_email,
    normalize_phone,
    normalize_state,
    normalize_tag,
    normalize_zip,
    parse_bool,
    strip_formula_escape,
    validate_timezone,
)
from contacts.upsert import MAX_CUSTOM_FIELDS, MAX_SECONDARY
from contacts.validation import LANGUAGE_RE, TEXT_LIMITS, custom_value
from imports.mapping import CONSENT_TARGET

TEXT_FIELDS = ["first_name", "last_name", "display_name", "company", "address", "city", "lifecycle_stage",
               "gender", "notes", "language", "external_id"]


# Statuses the consent columns of common exports hold (Klaviyo, Brevo, ActiveCampaign, Constant
# Contact, Mailchimp), compared with letters and digits only, lowercase. parse_bool's words
# (yes/no, true/false, 1/0, y/n, x) come first.
OPTED_OUT_WORDS = frozenset({"unsubscribed", "unsubscribe", "optedout", "optout", "blacklisted", "blocklisted",
                             "cleaned", "suppressed", "donotcontact"})
NOT_OPTED_OUT_WORDS = frozenset({"subscribed", "neversubscribed", "notsubscribed", "nonsubscribed", "optedin",
                                 "optin", "active", "pending", "unconfirmed", "confirmed", "transactional"})


def parse_opt_out(text: str, *, status_only: bool = False) -> bool | None:
    """Return True when a consent cell says opted out, False when it says not, None otherwise.

    `status_only`: a status or consent column, where "yes" means the person consented: yes
    and no are both False there, and only an opted-out status is True."""
    try:
        value = parse_bool(text)
    except NormalizationError:
        pass
    else:
        return False if status_only else value
    word = "".join(c for c in text.casefold() if c.isalnum())
    if word in OPTED_OUT_WORDS:
        return True
    if word in NOT_OPTED_OUT_WORDS:
        return False
    return None


@dataclass
class Issue:
    column: str
    value: str
    message: str
    severity: str = "warning"
    code: str = ""


@dataclass
class RowResult:
    line: int
    data: dict = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    failed: bool = False
    blank: bool = False


def _first(values, name):
    found = values.get(name)
    return found[0] if found else None


def normalize_record(record, *, region: str, definitions: dict[str, CustomField], dayfirst: bool = False) -> RowResult:
    """Normalizes one record; costs a few µs per cell (phones use the NANP fast path)."""
    result = RowResult(line=record.line)
    values = {name: [(col, strip_formula_escape(text)) for col, text in cands]
              for name, cands in record.values.items()}
    if not values:
        result.blank = True
        return result
    data, issues = result.data, result.issues

    def warn(column, value, message, code="invalid"):
        issues.append(Issue(column, value, message, "warning", code))

    # Phones and emails: the first valid candidate is the contact's, the rest are kept aside.
    phones, phone_issues = [], []
    for column, text in values.get("phone", []):
        try:
            res = normalize_phone(text, region)
        except NormalizationError as exc:
            phone_issues.append(Issue(column, text, str(exc), "warning", "invalid_phone"))
            continue
        if res.warning:
            warn(column, text, res.warning, "phone_extension")
        if res.e164 not in phones:
            phones.append(res.e164)
    emails, email_issues = [], []
    for column, text in values.get("email", []):
        try:
            email = normalize_email(text)
        except NormalizationError as exc:
            email_issues.append(Issue(column, text, str(exc), "warning", "invalid_email"))
            continue
        if email_key(email) not in {email_key(e) for e in emails}:
            emails.append(email)
    if not phones and not emails:
        result.failed = True
        for issue in phone_issues + email_issues:
            issue.severity = "error"
        issues.extend(phone_issues + email_issues)
        if not phone_issues and not email_issues:
            issues.append(Issue("", "", "The row has no phone number and no email address.", "error", "no_contact"))
        return result
    issues.extend(phone_issues + email_issues)
    if phones:
        data["phone"] = phones[0]
        if phones[1:]:
            data["secondary_phones"] = phones[1 : 1 + MAX_SECONDARY]
    if emails:
        data["email"] = emails[0]
        data["email_key"] = email_key(emails[0])
        if emails[1:]:
            data["secondary_emails"] = emails[1 : 1 + MAX_SECONDARY]

    for name in TEXT_FIELDS:
        found = _first(values, name)
        if not found:
            continue
        column, text = found
        limit = TEXT_LIMITS.get(name)
        if limit and len(text) > limit:
            warn(column, text[:200], f"longer than {limit} characters ({len(text)}): left out")
        elif name == "language" and not LANGUAGE_RE.match(text):
            warn(column, text, f"'{text}' is not a language tag such as en or es-MX: left out")
        else:
            data[name] = text

    country = None
    if found := _first(values, "country"):
        try:
            country = data["country"] = normalize_country(found[1])
        except NormalizationError as exc:
            warn(found[0], found[1], str(exc))
    for name, func in (("state", normalize_state), ("zip", normalize_zip)):
        if found := _first(values, name):
            try:
                data[name] = func(found[1], country or "", region=region)
            except NormalizationError as exc:
                warn(found[0], found[1], str(exc))
    if found := _first(values, "timezone"):
        try:
            data["timezone"] = validate_timezone(found[1])
        except NormalizationError as exc:
            warn(found[0], found[1], str(exc))
    if found := _first(values, "birthday"):
        try:
            data["birthday"] = normalize_date(found[1], dayfirst=dayfirst).isoformat()
        except NormalizationError as exc:
            warn(found[0], found[1], str(exc))
    if found := _first(values, "avatar_url"):
        if found[1].startswith(("http://", "https://")) and len(found[1]) <= 500:
            data["avatar_url"] = found[1]
        else:
            warn(found[0], found[1][:200], "not an http(s) URL: left out")
    # Consent: an import may opt a contact out, globally or per channel; it never opts one back
    # in (a "no" changes nothing). Every consent column counts, not only the first.
    channels = set()
    for name, candidates in values.items():
        match = CONSENT_TARGET.fullmatch(name)
        if not match:
            continue
        for column, text in candidates:
            if match[1] == "opted_out_if_set":
                out = True
            else:
                out = parse_opt_out(text, status_only=match[1] == "subscription_status")
                if out is None:
                    what = f"an opt-out from {match[2]}" if match[2] else "a global opt-out"
                    warn(column, text[:200], f"{text[:100]!r} is neither yes nor no ({column} is read as {what}): "
                         "the cell is ignored", "consent")
                    continue
            if out and match[2]:
                channels.add(match[2])
            elif out:
                data["opted_out"] = True
    if channels:
        data["opt_out_channels"] = sorted(channels)

    tags = []
    for column, text in values.get("tags", []):
        try:
            tag = normalize_tag(text)
        except NormalizationError as exc:
            warn(column, text[:200], str(exc))
            continue
        if tag.casefold() not in {t.casefold() for t in tags}:
            tags.append(tag)
    if tags:
        data["tags"] = tags

    custom = {}
    for name, candidates in values.items():
        if not name.startswith("custom."):
            continue
        column, text = candidates[0]
        try:
            key = normalize_custom_key(name[len("custom.") :])
            custom[key] = custom_value(definitions.get(key), key, text, dayfirst=dayfirst)
        except NormalizationError as exc:
            warn(column, text[:200], str(exc))
    if len(custom) > MAX_CUSTOM_FIELDS:
        dropped = sorted(custom)[MAX_CUSTOM_FIELDS:]
        warn("", "", f"a contact holds at most {MAX_CUSTOM_FIELDS} custom fields: left out {', '.join(dropped)}",
             "too_many_custom_fields")
        custom = {k: custom[k] for k in sorted(custom)[:MAX_CUSTOM_FIELDS]}
    if custom:
        data["custom_fields"] = custom
    return result
