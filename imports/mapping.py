"""Column mapping for tabular imports: which column feeds which contact field.

`detect_mapping(header)` guesses a target for each column from its name; `build_plan(...)`
adds the caller's overrides and returns a `MappingPlan`, whose `apply(row)` turns one
`SourceRow` into a `RawRecord` (candidates per field, in priority order). Nothing here
normalizes or validates a value: that is the pipeline's job.

Decisions (what a user sees):

- Header names match whatever their case, spacing and punctuation: `E-mail Address`,
  `e_mail`, `FIRST_NAME`, `firstName`, `Phone #` and `Zip/Postal code` are all recognized.
  Qualifiers (`Home`, `Work`, `Business`, `Mobile`, `Primary`, `Other`...) are understood on
  phone, email and address columns only, so `Additional Name` never becomes a name.
- Every phone column is a `phone` candidate, ordered mobile first (`Mobile Phone`, `Cell`,
  `Mobile Number`, `iPhone`), then generic/primary (`Phone`, `Primary Phone`), business
  (`Business Phone`, `Work Phone`), home, other; ties keep the file's column order. Fax, pager,
  telex and TTY columns are not phones, and neither are `Assistant's Phone` and `Company Main
  Phone`: they belong to someone else or to a whole company, and would fold unrelated
  contacts into one when the import matches by phone.
- Emails: Google's primary (`* `) first, then generic/primary columns, then home, work and
  mobile ones in column order, then `Other`/`Secondary` ones.
- Google's `Phone N - Type`/`Label` (and `E-mail N - ...`) give the type of `Phone N - Value`
  row by row: a `Mobile` value moves first, a `Fax`/`Pager` value is dropped, a `* ` marks
  Google's primary (first within its rank). A value cell may hold several values joined by
  ` ::: ` (phones also split on `;` and `|`, emails also on `,`).
- One address per contact, never mixed from two: address columns form groups (generic,
  `Home`, `Business`/`Work`/`Office`, `Other`, `Billing`, `Shipping`, Google's `Address N`),
  tried in that order (Google's in its own numbering; home before business because where a
  person lives is what state, ZIP and time-zone segments mean); the first *complete* group (a street
  and a city or ZIP) wins, else the group with the most filled parts. Generic columns
  (`Country` beside `Home Street`) fill the parts the chosen group lacks. Street lines
  (`Home Street 2`, `Address Line 2`, PO Box) are joined with ", "; Google's `Formatted`
  address is used only when the group has no street.
- Thunderbird's `Birth Year`, `Birth Month`, `Birth Day` become one ISO `birthday` when all
  three are filled.
- Tags split on `,` `;` `|` and ` ::: `; Google system groups (`* myContacts`, `* starred`) are
  dropped; Mailchimp's quoted tags (`"VIP","Customer"`) lose their quotes; a tag repeated in
  one row (whatever its case) counts once.
- Without a header (`has_header=False`) columns are mapped by what their values look like:
  email-looking columns → `email`, phone-looking ones → `phone`; of the remaining columns
  holding letters, the first two become `first_name` and `last_name`, or a single one
  becomes `display_name` when its values have spaces (`Ann Smith`), else `first_name`.
  Everything else is ignored. Column labels are `column 1`, `column 2`... (1-based, as a
  user counts), while override keys are 0-based indexes as the API documents.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from imports.readers.base import RawRecord, SourceRow

__all__ = [
    "CANONICAL_FIELDS",
    "MappingError",
    "MappingPlan",
    "build_plan",
    "detect_mapping",
]

CANONICAL_FIELDS = (
    "phone",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "company",
    "address",
    "city",
    "state",
    "zip",
    "country",
    "timezone",
    "lifecycle_stage",
    "gender",
    "avatar_url",
    "notes",
    "birthday",
    "language",
    "external_id",
    "opted_out",
)
_TARGETS = frozenset(CANONICAL_FIELDS) | {"tags"}
# Consent targets (the values are read by imports.normalize_row.parse_opt_out):
#   opted_out / opted_out.<channel>: the cell says yes/no (1/0, true/false) or a status
#     (`UNSUBSCRIBED`, `opted out`); yes means opted out globally / of that channel;
#   opted_out_if_set / opted_out_if_set.<channel>: any non-empty cell means opted out
#     (Mailchimp's UNSUB_TIME, UNSUB_REASON, CLEAN_TIME);
#   subscription_status / subscription_status.<channel>: a status or consent column (Klaviyo's
#     `Email Marketing Consent`): only an opted-out status (`UNSUBSCRIBED`) opts out; there a
#     "yes" means the person consented, so yes/no change nothing.
# An import only ever opts out: a "no" leaves the contact as it is.
CHANNELS = ("sms", "whatsapp", "email", "rcs", "viber", "voice")  # contacts.models.Channel
CONSENT_KINDS = ("opted_out", "opted_out_if_set", "subscription_status")
CONSENT_TARGET = re.compile(r"(" + "|".join(CONSENT_KINDS) + r")(?:\.(" + "|".join(CHANNELS) + r"))?")
_ADDRESS_PARTS = ("address", "city", "state", "zip", "country")
_CUSTOM_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,49}")
_SLUG_MAX = 50


class MappingError(ValueError):
    """The mapping cannot be used as asked; the message is shown to the user as it is."""


# --- header analysis ---------------------------------------------------------------------

# kind -> rank; kinds order phones (mobile first) and address groups (generic first).
_PHONE_RANK = {"mobile": 0, "primary": 1, "business": 2, "home": 3, "other": 4}
_EMAIL_RANK = {"primary": 1, "mobile": 2, "business": 2, "home": 2, "other": 4}
_GROUP_RANK = {"primary": 0, "home": 1, "business": 2, "other": 3}

# qualifier word -> (kind, address group). Synonyms share a group: Roundcube's own export
# mixes `Business Street` with `Work City`.
_QUALIFIERS = {
    "mobile": ("mobile", None),
    "cell": ("mobile", None),
    "cellular": ("mobile", None),
    "iphone": ("mobile", None),
    "wireless": ("mobile", None),
    "primary": ("primary", "primary"),
    "main": ("primary", "primary"),
    "default": ("primary", "primary"),
    "preferred": ("primary", "primary"),
    "pref": ("primary", "primary"),
    "mailing": ("primary", "primary"),
    "work": ("business", "business"),
    "business": ("business", "business"),
    "office": ("business", "business"),
    "home": ("home", "home"),
    "personal": ("home", "home"),
    "private": ("home", "home"),
    "other": ("other", "other"),
    "secondary": ("other", "other"),
    "alternate": ("other", "other"),
    "alternative": ("other", "other"),
    "alt": ("other", "other"),
    "additional": ("other", "other"),
    "car": ("other", "other"),
    "billing": ("other", "billing"),
    "shipping": ("other", "shipping"),
    # The row's own person: `Customer Email`, `Contact Phone`. Deliberately not `owner`,
    # `manager` or `assistant`, whose numbers would fold many contacts into one.
    **dict.fromkeys(
        ["contact", "customer", "client", "member", "subscriber", "lead", "person", "patient", "guest", "buyer"],
        ("primary", "primary"),
    ),
}
_NOT_A_PHONE = frozenset({"fax", "facsimile", "pager", "beeper", "telex", "tty", "tdd", "assistant"})

# Whole header names (tokens joined) that map without qualifiers. Names here are exact on
# purpose: `Given Name Yomi`, `Assistant's Name` or `Phone Video` must not match anything.
_EXACT = {
    **dict.fromkeys(["firstname", "givenname", "first", "fname", "forename", "given"], "first_name"),
    **dict.fromkeys(["lastname", "familyname", "surname", "last", "lname"], "last_name"),
    **dict.fromkeys(
        ["name", "fullname", "displayname", "contactname", "customername", "contactfullname"],
        "display_name",
    ),
    **dict.fromkeys(
        [
            "company",
            "companyname",
            "organization",
            "organisation",
            "organizationname",
            "organisationname",
            "org",
            "employer",
            "accountname",
            "business",
        ],
        "company",
    ),
    **dict.fromkeys(["timezone", "tz", "ianatimezone", "timezonename", "olsontimezone"], "timezone"),
    **dict.fromkeys(["lifecyclestage", "lifecycle"], "lifecycle_stage"),
    **dict.fromkeys(["gender", "sex"], "gender"),
    **dict.fromkeys(
        [
            "avatarurl",
            "avatar",
            "photo",
            "photourl",
            "picture",
            "pictureurl",
            "image",
            "imageurl",
            "profilephoto",
            "profilepicture",
            "profileimage",
        ],
        "avatar_url",
    ),
    **dict.fromkeys(["notes", "note", "comments", "comment", "remarks", "memo", "description"], "notes"),
    **dict.fromkeys(["birthday", "birthdate", "dateofbirth", "dob", "bday", "birthdaydate"], "birthday"),
    **dict.fromkeys(["language", "lang", "locale", "preferredlanguage", "primarylanguage"], "language"),
    **dict.fromkeys(
        ["externalid", "extid", "externalreference", "recordid", "contactid", "customerid", "crmid"],
        "external_id",
    ),
    **dict.fromkeys(["optedout", "optout", "unsubscribed", "donotcontact", "isoptedout"], "opted_out"),
    **dict.fromkeys(
        ["tags", "tag", "labels", "label", "groups", "group", "groupmembership", "categories", "category", "taglist"],
        "tags",
    ),
}

# Names that may carry qualifiers (`Home Phone 2`, `Email Work`, `Business Postal Code`):
# core -> (target, part, implied kind, multi-valued).
_QUALIFIED = {
    **dict.fromkeys(
        [
            "phone",
            "phonenumber",
            "phoneno",
            "phonenum",
            "telephone",
            "telephonenumber",
            "tel",
            "telno",
            "telnumber",
            "contactnumber",
            "contactphone",
            "msisdn",
            "companyphone",
        ],
        ("phone", "", "", False),
    ),
    **dict.fromkeys(
        ["mobile", "cell", "cellular", "iphone", "cellphone", "mobilephone", "handy"],
        ("phone", "", "mobile", False),
    ),
    **dict.fromkeys(["phones", "phonenumbers"], ("phone", "", "", True)),
    **dict.fromkeys(
        ["email", "emailaddress", "mail", "emailaddr", "emailid", "mailaddress"],
        ("email", "", "", False),
    ),
    **dict.fromkeys(["emails", "emailaddresses"], ("email", "", "", True)),
    **dict.fromkeys(
        ["address", "street", "streetaddress", "addressline", "addr", "streetline", "addressstreet"],
        ("address", "street", "", False),
    ),
    **dict.fromkeys(["pobox", "addresspobox", "postofficebox"], ("address", "pobox", "", False)),
    **dict.fromkeys(
        ["city", "town", "locality", "citytown", "municipality", "suburb"],
        ("city", "city", "", False),
    ),
    **dict.fromkeys(
        [
            "state",
            "province",
            "stateprovince",
            "provincestate",
            "stateregion",
            "statecode",
            "provincecode",
            "stateorprovince",
            "prefecture",
        ],
        ("state", "state", "", False),
    ),
    **dict.fromkeys(
        [
            "zip",
            "zipcode",
            "postalcode",
            "postcode",
            "postal",
            "zippostalcode",
            "postalzipcode",
            "zippostal",
            "postcodezip",
        ],
        ("zip", "zip", "", False),
    ),
    **dict.fromkeys(
        ["country", "countryregion", "countrycode", "countryname", "nation"],
        ("country", "country", "", False),
    ),
}

# Google Contacts numbers its repeated fields: `Phone 3 - Value`, `Address 1 - Postal Code`.
_GOOGLE = re.compile(
    r"(?P<family>email|mail|phone|address|organi[sz]ation)(?P<n>\d+)"
    r"(?P<attr>type|label|value|formatted|street|city|pobox|region|postalcode|country"
    r"|extendedaddress|name)"
)
_GOOGLE_ADDRESS = {
    "street": ("address", "street", 1),
    "extendedaddress": ("address", "street", 2),
    "pobox": ("address", "street", 3),
    "formatted": ("address", "formatted", 0),
    "city": ("city", "city", 0),
    "region": ("state", "state", 0),
    "postalcode": ("zip", "zip", 0),
    "country": ("country", "country", 0),
}
_BIRTH_PARTS = {"birthyear": "year", "birthmonth": "month", "birthday": "day"}


@dataclass(slots=True)
class _Guess:
    """What a header name says about its column (before overrides)."""

    target: str | None = None
    kind: str = "primary"  # phone/email rank and address group kind
    group: str = "primary"  # address group key
    part: str = ""  # address part, birth part, or "type" for Google's type columns
    line: int = 0  # street line order inside an address group
    multi: bool = False  # the cell holds a list (secondary_phones)
    google: tuple[str, int] | None = None  # (family, N) of a Google numbered column


def _tokenize(text: str) -> list[str]:
    """Return the lowercase words of a header: `firstName` and `FIRST_NAME` both give
    ['first', 'name'], `Phone1` gives ['phone', '1']. Costs a few regex passes."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("'", "").replace("\u2019", "")
    text = re.sub(r"(?i)\biphone\b", "iphone", text)  # Apple's label, not `i` + `Phone`
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    text = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", " ", text)
    text = re.sub(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])", " ", text)
    return re.findall(r"[^\W_]+", text.casefold())


def _classify_header(header: str) -> _Guess:
    """Return what one header name maps to; a `_Guess` with no target when nothing fits."""
    text = (header or "").strip().lstrip("\ufeff").strip()
    if not text:
        return _Guess()
    if text[:7].casefold() == "custom.":
        key = text[7:].strip()
        if not _CUSTOM_KEY.fullmatch(key):
            key = _slugify(key)
        return _Guess(target=f"custom.{key}") if key else _Guess()
    tokens = _tokenize(text)
    compact = "".join(tokens)
    google = _GOOGLE.fullmatch(compact)
    if google:
        return _classify_google(google["family"], int(google["n"]), google["attr"])
    consent = _classify_consent(compact)
    if consent:
        return _Guess(target=consent)
    if compact in _EXACT:
        return _Guess(target=_EXACT[compact])
    return _classify_qualified(tokens)


# What the consent columns of common exports are called (compact: words joined, lowercase).
# Salesforce `Email Opt Out`/`HasOptedOutOfEmail`, `Do Not Call`, `SMS Opt Out`; HubSpot
# `Unsubscribed from all email`, `Opted out of email: <subscription>`; Klaviyo `Email Marketing
# Consent`; ActiveCampaign/Constant Contact `Email Status`, `Subscription Status`; Brevo
# `email_blacklisted`, `sms_blacklisted`; Mailchimp `UNSUB_TIME`, `UNSUB_REASON`, `CLEAN_TIME`.
# HubSpot's `Marketing contact status` is billing, not consent: it matches nothing here.
_CONSENT_CHANNEL_WORDS = {
    "email": "email", "mail": "email", "emails": "email",
    "sms": "sms", "text": "sms", "texts": "sms", "textmessage": "sms", "textmessages": "sms",
    "call": "voice", "calls": "voice", "phone": "voice", "voice": "voice", "phonecall": "voice",
    "phonecalls": "voice", "whatsapp": "whatsapp", "viber": "viber", "rcs": "rcs",
}
_CH = "(?P<ch>" + "|".join(sorted(_CONSENT_CHANNEL_WORDS, key=len, reverse=True)) + ")"
_OUT_WORDS = "(?:optout|optedout|unsubscribed|unsubscribe|blacklisted|blocklisted)"
_CONSENT_PATTERNS = (
    (re.compile(r"(?:has|is)?(?:optedout|optout|donotcontact|unsubscribed|globaloptout|globalunsubscribe"
                r"|unsubscribedfromall)"), "opted_out"),
    (re.compile(rf"(?:has|is)?{_CH}{_OUT_WORDS}"), "opted_out"),
    (re.compile(rf"(?:has|is)?{_OUT_WORDS}(?:of|from)?(?:all)?{_CH}.*"), "opted_out"),
    (re.compile(rf"donot{_CH}"), "opted_out"),
    (re.compile(r"(?P<ch>email|sms)(?:marketing)?(?:consent|status|subscriptionstatus|consentstatus)"),
     "subscription_status"),
    (re.compile(r"subscriptionstatus"), "subscription_status.email"),
    (re.compile(r"unsubtime|unsubreason|cleantime"), "opted_out_if_set.email"),
)


def _classify_consent(compact: str) -> str | None:
    """Return the consent target of a header (`opted_out.email`...), None when it is not one."""
    for pattern, target in _CONSENT_PATTERNS:
        match = pattern.fullmatch(compact)
        if match:
            channel = match.groupdict().get("ch")
            return f"{target}.{_CONSENT_CHANNEL_WORDS[channel]}" if channel else target
    return None


def describe_consent(target: str) -> str | None:
    """Return what a consent column means ("opted out of email when yes..."), None for others."""
    match = CONSENT_TARGET.fullmatch(target or "")
    if not match:
        return None
    what = f"opted out of {match[2]}" if match[2] else "opted out of everything (global opt-out)"
    if match[1] == "opted_out_if_set":
        return f"{what} when the cell is not empty"
    if match[1] == "subscription_status":
        return f"{what} when the status is unsubscribed (or opted out, blacklisted, cleaned, suppressed)"
    return f"{what} when yes (1, true, yes, unsubscribed, opted out); no or empty changes nothing"


def _classify_google(family: str, n: int, attr: str) -> _Guess:
    """Return the guess for one of Google's numbered columns (`Phone 2 - Value`)."""
    family = {"mail": "email", "organisation": "organization"}.get(family, family)
    if family in ("email", "phone"):
        if attr == "value":
            return _Guess(target=family, google=(family, n), line=n)
        if attr in ("type", "label"):
            return _Guess(part="type", google=(family, n))
        return _Guess()
    if family == "address":
        if attr not in _GOOGLE_ADDRESS:
            return _Guess()
        target, part, line = _GOOGLE_ADDRESS[attr]
        return _Guess(target=target, part=part, line=line, group=f"google{n}", google=(family, n))
    if attr == "name":  # Organization N - Name
        return _Guess(target="company")
    return _Guess()


def _classify_qualified(tokens: list[str]) -> _Guess:
    """Return the guess for a phone/email/address header with qualifiers and numbers
    (`Home Phone 2`, `E-mail 2 Address`, `Business Country/Region`), else an empty guess."""
    if not tokens or _NOT_A_PHONE.intersection(tokens):
        return _Guess()
    numbers = [int(t) for t in tokens if t.isdigit()]
    words = [t for t in tokens if not t.isdigit()]
    qualifiers: list[str] = []
    # Leading `address` is noise in `Address: Home - Street` and Shopify's `Default Address City`.
    while len(words) > 1:
        if words[0] in _QUALIFIERS:
            qualifiers.append(words.pop(0))
        elif words[-1] in _QUALIFIERS:
            qualifiers.append(words.pop())
        elif words[0] in ("address", "addr") and "".join(words[1:]) in _QUALIFIED:
            words.pop(0)
        elif words[0] in ("address", "addr") and words[1] in _QUALIFIERS:
            words.pop(0)
        else:
            break
    core = "".join(words)
    if core in _QUALIFIED:
        target, part, kind, multi = _QUALIFIED[core]
    elif core in ("number", "no", "num") and qualifiers:  # `Mobile Number`, `Work No.`
        target, part, kind, multi = "phone", "", "", False
    else:
        return _Guess()
    kinds = [_QUALIFIERS[q][0] for q in qualifiers]
    groups = [_QUALIFIERS[q][1] for q in qualifiers if _QUALIFIERS[q][1]]
    if target == "phone" and (kind == "mobile" or "mobile" in kinds):
        kind = "mobile"  # `Home Mobile`, `Work Cell`: still a mobile
    elif not kind:
        kind = kinds[0] if kinds else "primary"
    group = groups[0] if groups else "primary"
    line = numbers[0] if numbers else 1
    if part == "pobox":
        part, line = "street", 9  # a PO box comes after the street lines
    return _Guess(target=target, kind=kind, group=group, part=part, line=line, multi=multi)


def _classify_all(header: Sequence[str]) -> list[_Guess]:
    """Return one guess per column, resolving what needs the whole header (birth parts)."""
    guesses = [_classify_header(h) for h in header]
    words = [_tokenize(h or "") for h in header]
    # `Birth Day` alone means the birthday; beside `Birth Year` and `Birth Month` (Thunderbird)
    # it is a part, and `Birthday` (one word) never is.
    parts = {}
    for index, tokens in enumerate(words):
        if len(tokens) == 2 and tokens[0] == "birth" and "".join(tokens) in _BIRTH_PARTS:
            parts.setdefault(_BIRTH_PARTS["".join(tokens)], index)
    if len(parts) == 3:
        for part, index in parts.items():
            guesses[index] = _Guess(target="birthday", part=part)
    return guesses


def detect_mapping(header: list[str]) -> dict[int, str]:
    """Return column index -> target for the columns whose name we recognize.

    Targets are canonical fields, `tags` or `custom.<key>`; unknown, empty and helper
    columns (Google's `Phone N - Type`) are absent. Costs a few regex passes per column.
    """
    return {i: g.target for i, g in enumerate(_classify_all(header)) if g.target}


# --- values ------------------------------------------------------------------------------

_PHONE_SPLIT = re.compile(r"\s*:::\s*|[;|]")
_LIST_SPLIT = re.compile(r"\s*:::\s*|[;|,]")
_PHONE_CHARS = re.compile(r"[+\d\s().\-/]+")
_PHONE_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension|#)\s*\d{1,6}$", re.IGNORECASE)
_EXCEL_NUMBER = re.compile(r"\d{7,17}\.0+|\d(?:\.\d+)?[eE]\+?\d{1,2}")
_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _looks_like_phone(text: str) -> bool:
    """Return True when text could be a phone number (7 to 17 digits, phone punctuation,
    an Excel float such as `19195551234.0` or `1.9195551234E+10`)."""
    text = text.strip()
    if _EXCEL_NUMBER.fullmatch(text):
        return True
    text = _PHONE_EXTENSION.sub("", text)
    if not _PHONE_CHARS.fullmatch(text):
        return False
    return 7 <= sum(c.isdigit() for c in text) <= 17


def _looks_like_email(text: str) -> bool:
    """Return True when text has the shape local@domain.tld."""
    return bool(_EMAIL_LIKE.fullmatch(text.strip()))


def _split_values(text: str, splitter: re.Pattern[str]) -> list[str]:
    """Return the non-blank values of a multi-valued cell; cheap when there is one value."""
    if ":" not in text and ";" not in text and "|" not in text and "," not in text:
        return [text]
    return [part.strip() for part in splitter.split(text) if part.strip()]


@lru_cache(maxsize=512)  # a file uses a handful of labels, read on every row
def _phone_kind_of_label(label: str) -> str | None:
    """Return the kind of a Google phone type (`Mobile`, `* Work`, `Home Fax`), or None when
    the number is not a phone we can call or text (fax, pager, assistant, company main)."""
    tokens = _tokenize(label)
    if _NOT_A_PHONE.intersection(tokens) or "".join(tokens) == "companymain":
        return None
    kinds = [_QUALIFIERS[t][0] for t in tokens if t in _QUALIFIERS]
    if "mobile" in kinds:
        return "mobile"
    if kinds:
        return kinds[0]
    return "primary" if not tokens or "".join(tokens) in ("googlevoice", "grandcentral") else "other"


@lru_cache(maxsize=512)
def _email_kind_of_label(label: str) -> str:
    """Return the kind of a Google email type (`* Home`, `Work`, `Other`, a custom label)."""
    kinds = [_QUALIFIERS[t][0] for t in _tokenize(label) if t in _QUALIFIERS]
    return kinds[0] if kinds else "primary"


def _split_tags(text: str) -> list[str]:
    """Return the tags of one cell, without Google's system groups (`* myContacts`)."""
    tags = []
    for part in _LIST_SPLIT.split(text):
        # Mailchimp exports its TAGS column as `"VIP","Customer"`.
        tag = part.strip().strip('"').strip()
        if tag and not tag.startswith("* "):
            tags.append(tag)
    return tags


def _slugify(text: str) -> str:
    """Return a custom-field key for a header: lowercase [a-z0-9_], starting with a letter,
    at most 50 characters; '' when the header has no usable character."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("'", "").replace("\u2019", "")
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    slug = re.sub(r"[^a-z0-9]+", "_", text.casefold()).strip("_")
    if slug and not slug[0].isalpha():
        slug = f"field_{slug}"
    return slug[:_SLUG_MAX].rstrip("_")


# --- the plan ------------------------------------------------------------------------------


_QUALIFIER_KIND = {group: kind for kind, group in _QUALIFIERS.values() if group}


@dataclass(slots=True)
class _Column:
    index: int
    name: str  # the header text, '' without a header
    label: str  # what errors and previews call the column: the name, else `column N`
    target: str | None
    guess: _Guess


class MappingPlan:
    """The final mapping of a file's columns, ready to turn rows into `RawRecord`s.

    Build it with `build_plan`; it holds no file data, so one plan serves every chunk.
    """

    def __init__(self, columns: list[_Column], *, has_header: bool, first_row: Sequence[str]):
        self.columns = columns
        self.has_header = has_header
        self._first_row = list(first_row)
        self._compile()

    @property
    def mapping(self) -> dict[int, str]:
        """Column index -> target of every mapped column (what `describe` shows)."""
        return {c.index: c.target for c in self.columns if c.target}

    def describe(self) -> list[dict]:
        """Return one {"index", "header", "target"} per column, for previews; target is None
        for an ignored column."""
        out = []
        for c in self.columns:
            entry = {"index": c.index, "header": c.label, "target": c.target}
            meaning = describe_consent(c.target)
            if meaning:
                entry["consent"] = meaning
            out.append(entry)
        return out

    def require_contact_column(self) -> None:
        """Raise MappingError unless some column is mapped to `phone` or `email`."""
        targets = {c.target for c in self.columns}
        if "phone" in targets or "email" in targets:
            return
        if self.has_header:
            names = ", ".join(repr(c.label) for c in self.columns) or "(none)"
            message = f"no column looks like a phone or email: the columns are {names}."
            data = [v for v in self._first_row if _looks_like_phone(v) or _looks_like_email(v)]
            if data:
                message += (
                    f" The first row holds {data[0]!r}, which is a value, not a column name:"
                    " if the file has no header row, import it with has_header=false."
                )
        else:
            cells = ", ".join(f"{c.label} ({v!r})" for c, v in zip(self.columns, self._first_row, strict=False))
            message = f"no column looks like a phone or email: the first row holds {cells or '(nothing)'}."
        raise MappingError(message + ' Map a column yourself, for example {"' + self._example_key() + '": "phone"}.')

    def _example_key(self) -> str:
        names = [c.name for c in self.columns if c.name] if self.has_header else []
        return names[0] if names else "0"

    def _compile(self) -> None:
        """Precompute per-target column lists so that `apply` does no analysis per row."""
        self._phones: list[tuple[int, str, str, bool, int | None, int]] = []
        self._emails: list[tuple[int, str, str, bool, int | None, int]] = []
        self._tags: list[tuple[int, str]] = []
        self._plain: list[tuple[int, str, str]] = []
        self._birth: dict[str, tuple[int, str]] = {}
        self._groups: dict[str, list[tuple[str, int, int, str]]] = {}
        group_order: dict[str, tuple[int, int]] = {}
        type_columns = {c.guess.google: c.index for c in self.columns if c.guess.part == "type"}
        for order, c in enumerate(self.columns):
            g, target = c.guess, c.target
            if target is None:
                continue
            if target in ("phone", "email"):
                natural = g.target == target
                type_index = type_columns.get(g.google) if natural and g.google else None
                kind = g.kind if natural else "primary"
                entry = (c.index, c.label, kind, g.multi and natural, type_index, order)
                (self._phones if target == "phone" else self._emails).append(entry)
            elif target == "tags":
                self._tags.append((c.index, c.label))
            elif target == "birthday" and g.part in ("year", "month", "day"):
                self._birth[g.part] = (c.index, c.label)
            elif target in _ADDRESS_PARTS:
                natural = g.target in _ADDRESS_PARTS
                group = g.group if natural else "primary"
                part = g.part if natural and g.target == target else target
                if part == "address":
                    part = "street"
                line = g.line if natural else 1
                self._groups.setdefault(group, []).append((part, line, c.index, c.label))
                kind = "primary" if group.startswith("google") else _QUALIFIER_KIND[group]
                group_order.setdefault(group, (_GROUP_RANK[kind], order))
            else:
                self._plain.append((c.index, target, c.label))
        if len(self._birth) < 3:
            self._birth = {}  # a part whose siblings were unmapped is not a date on its own
        self._group_order = sorted(group_order, key=group_order.__getitem__)
        self._width = len(self.columns)

    def apply(self, row: SourceRow) -> RawRecord:
        """Return the row's candidates per field, in priority order. Pure Python, a few
        microseconds per mapped cell; short rows are fine and extra cells are ignored."""
        cells = row.cells
        if len(cells) < self._width:
            cells = cells + [""] * (self._width - len(cells))
        record = RawRecord(line=row.line)
        values = record.values
        if self._phones:
            self._add_ranked(values, cells, self._phones, "phone")
        if self._emails:
            self._add_ranked(values, cells, self._emails, "email")
        for index, target, label in self._plain:
            text = cells[index]
            if text and (text := text.strip()):
                values.setdefault(target, []).append((label, text))
        if self._groups:
            self._add_address(record, cells)
        if self._birth:
            parts = {name: (cells[index] or "").strip() for name, (index, _) in self._birth.items()}
            if all(p.isdigit() for p in parts.values()):
                label = "/".join(label for _, label in self._birth.values())
                text = f"{int(parts['year']):04d}-{int(parts['month']):02d}-{int(parts['day']):02d}"
                record.add("birthday", label, text)
        if self._tags:
            seen: set[str] = set()
            for index, label in self._tags:
                text = cells[index]
                for tag in _split_tags(text) if text else ():
                    if tag.casefold() not in seen:
                        seen.add(tag.casefold())
                        values.setdefault("tags", []).append((label, tag))
        return record

    @staticmethod
    def _add_ranked(values: dict, cells: list[str], columns, name: str) -> None:
        """Add phone or email candidates, best first (see the module docstring)."""
        if len(columns) == 1 and columns[0][4] is None:  # one plain column: nothing to rank
            index, label, _, multi, _, _ = columns[0]
            text = cells[index]
            if text and (text := text.strip()):
                splitter = _LIST_SPLIT if multi or name == "email" else _PHONE_SPLIT
                values[name] = [(label, value) for value in _split_values(text, splitter)]
            return
        phone = name == "phone"
        ranked = []
        for index, label, kind, multi, type_index, order in columns:
            text = cells[index]
            if not text or not (text := text.strip()):
                continue
            primary = False
            if type_index is not None:
                type_text = (cells[type_index] or "").strip()
                primary = type_text.startswith("*")
                type_text = type_text.lstrip("* ")
                if phone:
                    kind = _phone_kind_of_label(type_text)
                    if kind is None:
                        continue
                else:
                    kind = _email_kind_of_label(type_text)
            splitter = _LIST_SPLIT if multi or not phone else _PHONE_SPLIT
            for position, value in enumerate(_split_values(text, splitter)):
                if phone:
                    key = (_PHONE_RANK[kind], not primary, order, position)
                else:
                    key = (0 if primary else _EMAIL_RANK[kind], order, position)
                ranked.append((key, label, value))
        if len(ranked) > 1:
            ranked.sort(key=lambda item: item[0])
        if ranked:
            values[name] = [(label, value) for _, label, value in ranked]

    def _add_address(self, record: RawRecord, cells: list[str]) -> None:
        """Add one address: the first complete group, else the fullest (module docstring)."""
        filled: dict[str, dict[str, list[tuple[int, str, str]]]] = {}
        for group in self._group_order:
            parts: dict[str, list[tuple[int, str, str]]] = {}
            for part, line, index, label in self._groups[group]:
                text = (cells[index] or "").strip()
                if text:
                    parts.setdefault(part, []).append((line, label, text))
            if parts:
                filled[group] = parts
        if not filled:
            return

        def has_street(parts: dict) -> bool:
            return "street" in parts or "formatted" in parts

        complete = [g for g, p in filled.items() if has_street(p) and ("city" in p or "zip" in p)]
        if complete:
            chosen = complete[0]
        else:
            chosen = max(filled, key=lambda g: (len(filled[g]), -self._group_order.index(g)))
        parts = dict(filled[chosen])
        if chosen != "primary" and "primary" in filled:
            for part, found in filled["primary"].items():
                if part not in parts and not (part == "formatted" and "street" in parts):
                    parts[part] = found
        lines = sorted(parts.get("street", []), key=lambda item: item[0])
        if lines:
            label = " + ".join(label for _, label, _ in lines)
            record.add("address", label, ", ".join(text for _, _, text in lines))
        elif "formatted" in parts:
            _, label, text = parts["formatted"][0]
            record.add("address", label, ", ".join(s.strip() for s in text.splitlines() if s.strip()))
        for part in ("city", "state", "zip", "country"):
            for _, label, text in parts.get(part, []):
                record.add(part, label, text)


# --- building a plan -------------------------------------------------------------------------


def _check_target(value: object, column: str) -> str | None:
    """Return the target an override names (None to ignore the column), or raise
    MappingError listing the valid targets."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.casefold() in _TARGETS or CONSENT_TARGET.fullmatch(text.casefold()):
            return text.casefold()
        if text[:7].casefold() == "custom.":
            key = text[7:].strip()
            if _CUSTOM_KEY.fullmatch(key):
                return f"custom.{key}"
            raise MappingError(
                f"the mapping of column {column!r} names the custom field {key!r}: a custom "
                "field key is 1 to 50 letters, digits, '_' or '-' (for example custom.shoe_size)."
            )
    valid = ", ".join([*CANONICAL_FIELDS, "tags"])
    channels = "|".join(CHANNELS)
    raise MappingError(
        f"the mapping of column {column!r} names {value!r}, which is not a field we can import "
        f"into. Use one of: {valid}, opted_out.<{channels}>, opted_out_if_set[.<channel>] or "
        "subscription_status[.<channel>] for an opt-out column, custom.<key> for a custom field, or null to ignore the column."
    )


def _resolve_overrides(
    overrides: dict[str, str | None], labels: list[str], texts: list[str], has_header: bool
) -> dict[int, str | None]:
    """Return column index -> target for the overrides; name keys first apply to every
    column of that name, then index keys (which win). Raises MappingError on unknown keys."""
    by_name: dict[int, str | None] = {}
    by_index: dict[int, str | None] = {}
    for key, value in overrides.items():
        key_text = str(key).strip()
        indexes: list[int] = []
        if has_header:
            indexes = [i for i, t in enumerate(texts) if t == key_text and t]
            if not indexes:
                indexes = [i for i, t in enumerate(texts) if t and t.casefold() == key_text.casefold()]
        if indexes:
            for i in indexes:
                by_name[i] = _check_target(value, labels[i])
            continue
        if key_text.isascii() and key_text.isdigit():
            index = int(key_text)
            if index < len(labels):
                by_index[index] = _check_target(value, labels[index])
                continue
            raise MappingError(
                f"the mapping names column {key_text}, but the file has {len(labels)} "
                f"column(s), numbered 0 to {len(labels) - 1}."
            )
        if has_header:
            names = ", ".join(repr(t) for t in texts if t) or "(none)"
            raise MappingError(
                f"the mapping names a column {key_text!r} that the file does not have. "
                f"Its columns are: {names}; a column may also be named by its position "
                "('0' for the first)."
            )
        raise MappingError(
            f"the mapping names a column {key_text!r}, but the file has no header row: name "
            f"columns by position, '0' to '{max(len(labels) - 1, 0)}'."
        )
    return {**by_name, **by_index}


def _sniff_headerless(columns: list[list[str]]) -> list[str | None]:
    """Return a target per column of a headerless file from its sample values."""
    targets: list[str | None] = []
    names: list[tuple[int, bool]] = []
    for index, values in enumerate(columns):
        values = [v.strip() for v in values if v and v.strip()]
        target = None
        if values:
            half = len(values) / 2
            if sum(_looks_like_email(v) for v in values) > half:
                target = "email"
            elif sum(_looks_like_phone(v) for v in values) > half:
                target = "phone"
            elif sum(any(c.isalpha() for c in v) for v in values) > half:
                names.append((index, sum(" " in v for v in values) > half))
        targets.append(target)
    if len(names) == 1:
        index, spaced = names[0]
        targets[index] = "display_name" if spaced else "first_name"
    elif len(names) >= 2:
        targets[names[0][0]] = "first_name"
        targets[names[1][0]] = "last_name"
    return targets


def build_plan(
    header: list[str],
    *,
    has_header: bool = True,
    overrides: dict[str, str | None] | None = None,
    custom_unmapped: bool = False,
    sample: Iterable[Sequence[str] | SourceRow] = (),
) -> MappingPlan:
    """Return the MappingPlan for a file whose first row is `header`.

    With `has_header=False`, `header` is the first data row: columns are mapped from what
    the values of that row and of `sample` (further rows, optional, 20 are plenty) look
    like. `overrides` key a column by header name (every column of that name) or by 0-based
    index as a string ("0"), and give a target, or None/"" to ignore the column; they win
    over detection and over `custom_unmapped`, which maps every other unmapped named column
    to `custom.<slug>`. Raises MappingError for an unknown column or target. Costs
    O(columns x sample rows).
    """
    texts = [(h or "").strip().lstrip("\ufeff").strip() for h in header]
    width = len(texts)
    if has_header:
        labels = [t or f"column {i + 1}" for i, t in enumerate(texts)]
        guesses = _classify_all(texts)
    else:
        labels = [f"column {i + 1}" for i in range(width)]
        rows = [list(header)]
        for row in sample:
            cells = row.cells if isinstance(row, SourceRow) else row
            rows.append(list(cells))
        by_column = [[r[i] if i < len(r) else "" for r in rows] for i in range(width)]
        guesses = [_Guess(target=t) for t in _sniff_headerless(by_column)]
    chosen = {i: g.target for i, g in enumerate(guesses)}
    if has_header and not {"phone", "email"} & set(chosen.values()):
        # Last resort before refusing the file: a column whose name merely contains "email" or
        # "phone" (`author_email`, `Contact Phone No.`) is the contact's email/phone.
        for i, text in enumerate(texts):
            tokens = set(_tokenize(text))
            if chosen[i] is None and tokens & {"email", "mail", "emailaddress"}:
                chosen[i] = "email"
            elif chosen[i] is None and tokens & {"phone", "mobile", "cell", "cellphone", "tel", "telephone", "msisdn"}:
                chosen[i] = "phone"
    forced = _resolve_overrides(overrides or {}, labels, texts, has_header) if overrides else {}
    chosen.update(forced)
    if custom_unmapped and has_header:
        taken = {t for t in chosen.values() if t and t.startswith("custom.")}
        for i, text in enumerate(texts):
            if chosen[i] or i in forced or not text or guesses[i].part == "type":
                continue
            slug = _slugify(text) or f"column_{i + 1}"
            key, n = slug, 2
            while f"custom.{key}" in taken:
                suffix = f"_{n}"
                key = slug[: _SLUG_MAX - len(suffix)].rstrip("_") + suffix
                n += 1
            taken.add(f"custom.{key}")
            chosen[i] = f"custom.{key}"
    names = texts if has_header else [""] * width
    columns = [_Column(i, names[i], labels[i], chosen[i], guesses[i]) for i in range(width)]
    return MappingPlan(columns, has_header=has_header, first_row=header)
