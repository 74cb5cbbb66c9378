"""Read vCard 2.1, 3.0 and 4.0 files into RawRecords, one per card.

This is a line-based parser of our own, not vobject. vobject 0.9.9 refuses 7 of the 15
real-world exports in our test corpus (QUOTED-PRINTABLE soft line breaks, `\\r\\r\\n` line
ends, a second PROFILE, QP without a CHARSET) and silently cuts `FN:Mr. John Richter, James
Doe Sr.` at the comma; it also builds the whole card, a 10 MB PHOTO included, in memory. A
tolerant pre-pass in front of it would have to do most of the work below anyway: unfold,
join QP soft breaks, drop blobs. Importing contacts needs little of vCard's grammar, so the
parser reads what we map and skips everything else without holding it.

Cost: one pass over the bytes, in 64 KB chunks. Memory is bounded whatever the file: a
physical line is handed on in pieces of at most ~64 KB, the properties we do not map (PHOTO
blobs, KEY, SOUND, LOGO, X-*) are dropped as they stream by, one property we keep is capped
at `MAX_PROPERTY_BYTES` and one card at `MAX_CARD_BYTES`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

from .base import RawRecord, ReaderError

CHUNK_BYTES = 64 * 1024
MAX_PROPERTY_BYTES = 256 * 1024
MAX_CARD_BYTES = 1024 * 1024
# A PHOTO we keep is a URL (avatar_url); anything longer is inline image data.
MAX_PHOTO_URL_BYTES = 2048

# Only the first of these counts; later ones are not even decoded.
_FIRST_ONLY = frozenset({"N", "FN", "ORG", "BDAY", "UID", "PRODID", "X-CRM-EXTERNAL-ID"})
# The properties we map; every other one is skipped without being accumulated.
_MAPPED = frozenset(
    {
        "N", "FN", "TEL", "EMAIL", "ORG", "ADR", "CATEGORIES", "BDAY", "NOTE", "LANG",
        "TZ", "UID", "GENDER", "X-GENDER", "PHOTO", "PRODID", "X-CRM-EXTERNAL-ID",
    }
)  # fmt: skip
_MOBILE_TYPES = frozenset({"cell", "mobile", "iphone", "text", "textphone"})
_NOT_TEXTABLE_TYPES = frozenset({"fax", "pager"})
_NOT_PREFERRED = 101  # RFC 6350 PREF runs from 1 (most preferred) to 100.
_BARE_ENCODINGS = frozenset({"QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT"})
_GENDERS = {"M": "male", "F": "female", "O": "other", "N": "none", "U": "unknown"}
_X_GENDERS = {"m": "male", "male": "male", "f": "female", "female": "female"}

_BEGIN_RE = re.compile(rb"\s*(?:[\w-]+\.)?BEGIN\s*:\s*VCARD\s*", re.IGNORECASE)
_END_RE = re.compile(rb"\s*(?:[\w-]+\.)?END\s*:\s*VCARD\s*", re.IGNORECASE)
_NAME_RE = re.compile(rb"\s*(?:([\w-]+)\.)?([\w-]+)")
_ENCODING_RE = re.compile(rb";\s*(?:ENCODING\s*=\s*)?(QUOTED-PRINTABLE|BASE64|B)\s*(?=;|$)", re.IGNORECASE)
_BASE64_LINE_RE = re.compile(rb"[A-Za-z0-9+/=\s]+")
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"\\": "\\", "n": "\n", "N": "\n", ",": ",", ";": ";", ":": ":", '"': '"'}
_IANA_TZ_RE = re.compile(r"(?:[A-Za-z][A-Za-z_\-]*(?:/[A-Za-z0-9_+\-]+)+|UTC|GMT)")

# The Windows "ANSI" code page of each country's usual locale: what an old Windows mail
# client (The Bat!, Outlook Express) wrote when a vCard gave no CHARSET.
_LEGACY_CHARSETS = {
    "cp1250": "AL BA CZ HR HU ME PL RO RS SI SK",
    "cp1251": "BG BY KG KZ MK MN RU TJ UA",
    "cp1253": "CY GR",
    "cp1254": "AZ TR",
    "cp1255": "IL",
    "cp1256": "AE AF BH DZ EG IQ IR JO KW LB LY MA OM PK QA SA SY TN YE",
    "cp1257": "EE LT LV",
    "cp1258": "VN",
    "cp874": "TH",
    "cp932": "JP",
    "cp936": "CN SG",
    "cp949": "KR",
    "cp950": "HK MO TW",
}
_LEGACY_CHARSET_BY_REGION = {
    region: charset for charset, regions in _LEGACY_CHARSETS.items() for region in regions.split()
}


class ReaderWarning(NamedTuple):
    """Something the reader skipped or repaired, for the import's error report (severity
    warning). `line` is the line of the card's BEGIN:VCARD (of the stray line itself when it
    is outside any card), `column` the vCard property name ('' for a whole line), `value`
    the offending text (at most 100 characters)."""

    line: int
    column: str
    value: str
    message: str


def legacy_charset_for_region(region: str | None) -> str:
    """Return the Windows code page that legacy vCards from `region` (ISO 3166-1 alpha-2)
    most likely use when they name no CHARSET: cp1250 for Poland, cp1251 for Russia...,
    cp1252 for every other region. A dict look-up."""
    return _LEGACY_CHARSET_BY_REGION.get((region or "").strip().upper(), "cp1252")


def read_vcards(
    fileobj: BinaryIO,
    *,
    fallback_charset: str = "cp1252",
    on_warning: Callable[[ReaderWarning], None] | None = None,
) -> Iterator[RawRecord]:
    """Yield one RawRecord per card of a .vcf file, `line` being its BEGIN:VCARD line.

    The file may be UTF-8 (with or without BOM), UTF-16 (with a BOM, or without one when it
    starts with `\\x00B`/`B\\x00`), or a legacy 8-bit code page. A value is decoded as UTF-8
    when it is valid UTF-8, else with its CHARSET parameter, else with `fallback_charset`
    (see `legacy_charset_for_region`). A broken card (no END:VCARD, lines that are not
    properties) still yields what could be read; what was skipped or repaired goes to
    `on_warning`. Raises ReaderError when the file holds no card at all.

    Cost: one streaming pass; memory stays bounded (see the module docstring).
    """
    codecs.lookup(fallback_charset)  # a LookupError here is a programming error
    warn = on_warning or _ignore_warning
    builder = _CardParser(fallback_charset, warn)
    for item in _iter_items(_iter_lines(_iter_utf8_chunks(fileobj))):
        if (record := builder.feed(item)) is not None:
            yield record
    if (record := builder.close()) is not None:
        yield record
    if not builder.cards_seen:
        raise ReaderError(
            "This file holds no vCard: no line reads BEGIN:VCARD. Export the contacts "
            "as a vCard (.vcf) file and upload that file."
        )


def _ignore_warning(warning: ReaderWarning) -> None:
    return None


# --- bytes to physical lines ------------------------------------------------------------


def _iter_utf8_chunks(fileobj: BinaryIO) -> Iterator[bytes]:
    """Yield the file's bytes in chunks, UTF-16 transcoded to UTF-8 and any BOM removed.

    Other files pass through as bytes: their values are decoded one by one later, because
    a 2.1 file may name a different CHARSET on each property.
    """
    head = fileobj.read(CHUNK_BYTES)
    if not head:
        return
    if isinstance(head, str):
        raise TypeError("read_vcards() needs a binary file object, not a text one")
    encoding = None
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    elif head.startswith(codecs.BOM_UTF16_LE):
        encoding, head = "utf-16-le", head[2:]
    elif head.startswith(codecs.BOM_UTF16_BE):
        encoding, head = "utf-16-be", head[2:]
    # A vCard starts with "BEGIN" (or a blank line): an ASCII character beside a zero byte
    # means UTF-16 that was written without a BOM (Roundcube's sample, some Mac exports).
    elif len(head) >= 2 and head[0] == 0 and head[1] != 0:
        encoding = "utf-16-be"
    elif len(head) >= 2 and head[1] == 0 and head[0] != 0:
        encoding = "utf-16-le"

    chunks = _iter_rest(head, fileobj)
    if encoding is None:
        yield from chunks
        return
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    for chunk in chunks:
        yield decoder.decode(chunk).encode("utf-8")
    yield decoder.decode(b"", final=True).encode("utf-8")


def _iter_rest(head: bytes, fileobj: BinaryIO) -> Iterator[bytes]:
    yield head
    while chunk := fileobj.read(CHUNK_BYTES):
        yield chunk


def _iter_lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes, bool]]:
    """Yield (line number, bytes, starts_line) for each physical line, without its ending.

    A line longer than CHUNK_BYTES (an unfolded base64 PHOTO) comes in several pieces with
    the same number; only the first has starts_line=True. Line ends are LF, CRLF, CR alone
    (classic Mac, detected when the first chunk has a CR and no LF) and CR CR LF: iOS 5
    wrote every line that way, and it counts as one line ending.
    """
    separator = None
    pending = b""
    lineno = 1
    starts_line = True
    for chunk in chunks:
        if separator is None:
            if b"\n" in chunk:
                separator = b"\n"
            elif b"\r" in chunk:
                separator = b"\r"
        buffer = pending + chunk if pending else chunk
        start = 0
        if separator is not None:
            while (end := buffer.find(separator, start)) >= 0:
                yield lineno, buffer[start:end].rstrip(b"\r"), starts_line
                lineno += 1
                starts_line = True
                start = end + 1
        pending = buffer[start:]
        if len(pending) > CHUNK_BYTES:
            # Keep trailing CRs back: they may be the start of this line's CR CR LF ending
            # (two are enough: a longer run of CRs means nothing in a vCard).
            cut = len(pending.rstrip(b"\r"))
            yield lineno, pending[:cut], starts_line
            starts_line = False
            pending = pending[cut:][-2:]
    if pending or not starts_line:
        yield lineno, pending.rstrip(b"\r"), starts_line


# --- physical lines to properties -------------------------------------------------------


@dataclass(slots=True)
class _Item:
    """A BEGIN:VCARD or END:VCARD line, a property, or a line that is none of them."""

    kind: str  # "begin" | "end" | "property" | "junk"
    line: int
    name: str = ""
    params: dict[str, list[str]] = field(default_factory=dict)
    value: bytes | None = None  # None: a property we skip, or one over its size cap
    size: int = 0  # bytes of value seen, kept or not
    text: bytes = b""  # the start of a junk line, for the warning

    @property
    def types(self) -> set[str]:
        return set(self.params.get("TYPE", ()))

    @property
    def encoding(self) -> str:
        values = self.params.get("ENCODING")
        return values[-1].upper() if values else ""

    @property
    def pref(self) -> int:
        """RFC 6350 PREF (1 is most preferred); 3.0's `TYPE=pref` and 2.1's bare PREF are 1."""
        for value in self.params.get("PREF", ()):
            if value.isdigit():
                return min(max(int(value), 1), 100)
        return 1 if "pref" in self.types else _NOT_PREFERRED


@dataclass(slots=True)
class _PendingProperty:
    item: _Item
    parts: list[bytes] | None  # None: not accumulated
    cap: int
    quoted_printable: bool
    base64: bool
    soft_break: bool = False  # the last line ended in "=": a QP soft line break

    def append(self, data: bytes) -> None:
        self.item.size += len(data)
        if self.parts is not None:
            if self.item.size > self.cap:
                self.parts = None
            else:
                self.parts.append(data)
        if self.quoted_printable:
            stripped = data.rstrip(b" \t")
            if stripped:
                self.soft_break = stripped.endswith(b"=")
            elif data:
                self.soft_break = False

    def join_soft_break(self) -> None:
        """Drop the "=" that ends the value so far, before the next line is appended."""
        self.soft_break = False
        if self.parts:
            last = self.parts[-1].rstrip(b" \t")
            self.parts[-1] = last[:-1] if last.endswith(b"=") else last

    def finish(self) -> _Item:
        if self.parts is not None:
            self.item.value = b"".join(self.parts)
        return self.item


def _iter_items(lines: Iterable[tuple[int, bytes, bool]]) -> Iterator[_Item]:
    """Turn physical lines into items: unfold, join QP soft breaks, drop what we skip."""
    pending: _PendingProperty | None = None
    for lineno, data, starts_line in lines:
        if not starts_line:
            if pending is not None:
                pending.append(data)
            continue
        if pending is not None:
            if pending.soft_break and not _is_card_boundary(data):
                # vCard 2.1 QUOTED-PRINTABLE: a line ending in "=" goes on with the next
                # line as it is, indented or not, even an empty one (Android, Outlook).
                pending.join_soft_break()
                pending.append(data)
                continue
            if data[:1] in (b" ", b"\t"):
                # Folding: a line starting with one space or tab continues the previous
                # one; that one character is the fold, the rest is content.
                pending.append(data[1:])
                continue
            if pending.base64 and b":" not in data and _BASE64_LINE_RE.fullmatch(data):
                # Some 2.1 writers put a BASE64 value on unindented lines up to a blank one.
                pending.append(data)
                continue
            yield pending.finish()
            pending = None
        if data.startswith(codecs.BOM_UTF8):
            # `cat *.vcf > all.vcf` leaves each file's BOM in front of its BEGIN:VCARD.
            data = data[len(codecs.BOM_UTF8) :]
        if not data.strip():
            continue
        if _BEGIN_RE.fullmatch(data):
            yield _Item("begin", lineno)
        elif _END_RE.fullmatch(data):
            yield _Item("end", lineno)
        else:
            pending = _start_property(lineno, data)
            if pending is None:
                yield _Item("junk", lineno, text=data[:100])
    if pending is not None:
        yield pending.finish()


def _is_card_boundary(data: bytes) -> bool:
    # A QP value whose last line wrongly ends in "=" must not swallow the END:VCARD line.
    return bool(_END_RE.fullmatch(data) or _BEGIN_RE.fullmatch(data))


def _start_property(lineno: int, data: bytes) -> _PendingProperty | None:
    """Parse `group.NAME;params:` and start a property, or return None for a junk line."""
    colon = _find_value_colon(data)
    match = _NAME_RE.match(data)
    if colon < 0 or match is None or match.end() > colon:
        return None
    head = data[match.end() : colon]
    if head.strip() and not head.lstrip().startswith(b";"):
        return None  # "NAME junk:value" is not a property line
    name = match.group(2).decode("ascii").upper()
    if name in _MAPPED:
        item = _Item("property", lineno, name=name, params=_parse_params(head))
        encoding = item.encoding
    else:
        # Most lines of a real export are properties we skip: a substring test is enough
        # to follow their QP soft breaks and unindented base64 lines.
        item = _Item("property", lineno, name=name)
        encoding = _ENCODING_RE.search(head)
        encoding = encoding.group(1).decode("ascii").upper() if encoding else ""
    is_blob = encoding in ("BASE64", "B")
    if name not in _MAPPED or (name == "PHOTO" and is_blob):
        parts, cap = None, 0
    else:
        parts, cap = [], MAX_PHOTO_URL_BYTES if name == "PHOTO" else MAX_PROPERTY_BYTES
    pending = _PendingProperty(item, parts, cap, quoted_printable=encoding == "QUOTED-PRINTABLE", base64=is_blob)
    pending.append(data[colon + 1 :])
    return pending


def _find_value_colon(data: bytes) -> int:
    """Return the index of the colon that ends `NAME;params`, skipping quoted params."""
    colon = data.find(b":")
    quote = data.find(b'"')
    if quote < 0 or colon < quote:
        return colon
    in_quotes = False
    for index, byte in enumerate(data):
        if byte == 0x22:
            in_quotes = not in_quotes
        elif byte == 0x3A and not in_quotes:
            return index
    return colon  # an unclosed quote: take the first colon after all


@functools.lru_cache(maxsize=1024)
def _parse_params(head: bytes) -> dict[str, list[str]]:
    """Return the parameters of `;A=x;B="y,z";CELL`, keys upper-cased, TYPE values lower.

    Cached, because an export repeats the same few heads on every card: treat the
    returned dict as read-only.

    2.1's bare parameters (`TEL;CELL;PREF`) are types, except the encodings
    (`;QUOTED-PRINTABLE`, `;BASE64`). TYPE values are split on commas, quoted or not:
    RFC 6350's own sample writes `TYPE="work,voice"` for two types.
    """
    params: dict[str, list[str]] = {}
    text = head.decode("utf-8", errors="replace")
    for token in _split_outside_quotes(text, ";"):
        token = token.strip()
        if not token:
            continue
        key, equals, raw = token.partition("=")
        key = key.strip().upper()
        if not equals:
            if key in _BARE_ENCODINGS:
                params.setdefault("ENCODING", []).append(key)
            else:
                params.setdefault("TYPE", []).append(key.lower())
            continue
        values = [_unquote_param(value) for value in _split_outside_quotes(raw, ",")]
        if key == "TYPE":
            values = [v.strip().lower() for value in values for v in value.split(",")]
        params.setdefault(key, []).extend(value for value in values if value)
    return params


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    if '"' not in text:
        return text.split(separator)
    parts, current, in_quotes = [], [], False
    for char in text:
        if char == '"':
            in_quotes = not in_quotes
        if char == separator and not in_quotes:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unquote_param(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if "^" in value:
        # RFC 6868 escapes in parameter values.
        value = re.sub(r"\^([n'^])", lambda m: {"n": "\n", "'": '"', "^": "^"}[m[1]], value)
    return value


# --- properties to records --------------------------------------------------------------


class _CardParser:
    """Collect the items of one card at a time and map them to a RawRecord."""

    def __init__(self, fallback_charset: str, warn: Callable[[ReaderWarning], None]):
        self.fallback_charset = fallback_charset
        self.warn = warn
        self.cards_seen = 0
        self.card: _Card | None = None
        self.agent_depth = 0  # inside a 2.1 AGENT's embedded vCard
        self.previous: _Item | None = None
        self.outside_run = False  # warned about the current run of lines outside cards

    def feed(self, item: _Item) -> RawRecord | None:
        """Take the next item; return the card it completes, if it completes one."""
        previous, self.previous = self.previous, item
        card = self.card
        if card is None:
            if item.kind == "begin":
                self._begin(item)
            elif not self.outside_run:
                self.outside_run = True
                self.warning(
                    item.line,
                    f"Line {item.line} is outside any card (not between BEGIN:VCARD "
                    "and END:VCARD): it was ignored, with any other line before the "
                    "next card.",
                    value=_preview_item(item),
                )
            return None
        if self.agent_depth:
            if item.kind == "begin":
                self.agent_depth += 1
            elif item.kind == "end":
                self.agent_depth -= 1
            return None
        if item.kind == "begin":
            if previous is not None and previous.name == "AGENT" and previous.size == 0:
                # vCard 2.1 embeds an assistant's card right after an empty AGENT value.
                self.agent_depth = 1
                return None
            self.warning(
                card.line,
                f"The card that starts on line {card.line} has no END:VCARD before "
                f"the next BEGIN:VCARD on line {item.line}; it was read up to there.",
            )
            record = self._finish()
            self._begin(item)
            return record
        if item.kind == "end":
            return self._finish()
        if item.kind == "junk":
            if not card.warned_junk:
                card.warned_junk = True
                self.warning(
                    card.line,
                    f"Line {item.line} is not a vCard property (NAME:value) and was "
                    "ignored, as were any such lines later in this card.",
                    value=_preview_item(item),
                )
        else:
            card.add(item, self)
        return None

    def close(self) -> RawRecord | None:
        """Return the card the file ended in, if it had no END:VCARD."""
        if self.card is None:
            return None
        line = self.card.line
        self.warning(
            line,
            f"The file ends inside the card that starts on line {line} (no "
            "END:VCARD); the card was read up to the end of the file.",
        )
        return self._finish()

    def warning(self, line: int, message: str, *, column: str = "", value: str = "") -> None:
        self.warn(ReaderWarning(line, column, value[:100], message))

    def _begin(self, item: _Item) -> None:
        self.cards_seen += 1
        self.outside_run = False
        self.card = _Card(item.line)

    def _finish(self) -> RawRecord:
        card, self.card = self.card, None
        self.agent_depth = 0
        return card.to_record()

    def decode(self, item: _Item, card_line: int) -> str | None:
        """Return the property's value as text (QP/base64 and charset decoded, not
        unescaped), or None when it cannot be decoded (warned)."""
        raw = item.value or b""
        encoding = item.encoding
        if encoding == "QUOTED-PRINTABLE":
            raw = binascii.a2b_qp(raw)
        elif encoding in ("BASE64", "B"):
            try:
                raw = base64.b64decode(b"".join(raw.split()), validate=True)
            except (binascii.Error, ValueError):
                self.warning(
                    card_line,
                    f"{item.name} on line {item.line} says it is base64-encoded but "
                    "is not valid base64; it was ignored.",
                    column=item.name,
                    value=_preview(raw),
                )
                return None
        if raw.isascii():
            return raw.decode("ascii")
        try:
            # Valid UTF-8 wins even over a declared 8-bit CHARSET: non-ASCII text in a
            # legacy code page is almost never valid UTF-8 by accident, while exporters
            # that label UTF-8 bytes ISO-8859-1 do exist.
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        charset = _known_charset(item.params.get("CHARSET")) or self.fallback_charset
        try:
            return raw.decode(charset)
        except UnicodeDecodeError:
            text = raw.decode(charset, errors="replace")
            self.warning(
                card_line,
                f"{item.name} on line {item.line} is not valid {charset}; the bytes "
                "that could not be read were replaced with \ufffd.",
                column=item.name,
                value=text[:100],
            )
            return text


def _known_charset(values: list[str] | None) -> str | None:
    if not values:
        return None
    try:
        return codecs.lookup(values[-1]).name
    except LookupError:
        return None


def _preview(raw: bytes) -> str:
    return raw[:100].decode("utf-8", errors="replace")


def _preview_item(item: _Item) -> str:
    if item.kind == "junk":
        return _preview(item.text)
    if item.kind == "property":
        return item.name
    return item.kind.upper() + ":VCARD"


@dataclass(slots=True)
class _Card:
    """What one card yielded so far. Values are kept decoded, within MAX_CARD_BYTES."""

    line: int
    size: int = 0
    full: bool = False
    warned_junk: bool = False
    index: int = 0
    phones: list[tuple[tuple[int, int, int], str]] = field(default_factory=list)
    emails: list[tuple[tuple[int, int], str]] = field(default_factory=list)
    addresses: list[tuple[tuple[int, int], list[str]]] = field(default_factory=list)
    languages: list[tuple[tuple[int, int], str]] = field(default_factory=list)
    singles: dict[str, tuple[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    genders: list[tuple[str, str]] = field(default_factory=list)

    def add(self, item: _Item, parser: _CardParser) -> None:
        name = item.name
        if name not in _MAPPED or (name in _FIRST_ONLY and name in self.singles):
            return
        if item.value is None:
            if name != "PHOTO":  # a long PHOTO is image data, not a URL: expected
                parser.warning(
                    self.line,
                    f"{name} on line {item.line} is longer than {MAX_PROPERTY_BYTES // 1024} KB and was ignored.",
                    column=name,
                )
            return
        if self.full:
            return
        self.size += len(item.value)
        if self.size > MAX_CARD_BYTES:
            self.full = True
            parser.warning(
                self.line,
                f"The card that starts on line {self.line} holds more than "
                f"{MAX_CARD_BYTES // (1024 * 1024)} MB of text; its properties from "
                f"line {item.line} on were ignored.",
                column=name,
            )
            return
        text = parser.decode(item, self.line)
        if text is None:
            return
        self.index += 1
        self._map(item, text)

    def _map(self, item: _Item, text: str) -> None:
        name, order = item.name, self.index
        if name == "TEL":
            types = item.types
            if types & _MOBILE_TYPES:
                rank = 0
            elif types & _NOT_TEXTABLE_TYPES:
                rank = 2  # a fax or pager number cannot take a text message: last
            else:
                rank = 1
            phone = _unescape(text).strip()
            if phone[:4].lower() == "tel:":
                phone = phone[4:]
            self.phones.append(((rank, item.pref, order), phone))
        elif name == "EMAIL":
            email = _unescape(text).strip()
            if email[:7].lower() == "mailto:":
                email = email[7:]
            self.emails.append(((item.pref, order), email))
        elif name == "ADR":
            self.addresses.append(((item.pref, order), _split_components(text, ";")))
        elif name == "LANG":
            self.languages.append(((item.pref, order), _unescape(text)))
        elif name == "CATEGORIES":
            self.tags.extend(_split_components(text, ",;"))
        elif name == "NOTE":
            self.notes.append(_unescape(text))
        elif name == "GENDER":
            sex, _, identity = text.partition(";")
            gender = _GENDERS.get(sex.strip().upper()) or _unescape(identity)
            self.genders.append(("GENDER", gender))
        elif name == "X-GENDER":
            gender = _unescape(text).strip()
            self.genders.append(("X-GENDER", _X_GENDERS.get(gender.lower(), gender)))
        elif name == "PHOTO":
            url = _unescape(text).strip()
            if url.lower().startswith(("http://", "https://")):
                self.singles.setdefault("PHOTO", (name, url))
        elif name == "TZ":
            zone = _unescape(text).strip()
            if _IANA_TZ_RE.fullmatch(zone):
                self.singles.setdefault("TZ", (name, zone))
        else:  # N, FN, ORG, BDAY, UID: the first one counts
            self.singles.setdefault(name, (name, text))

    def to_record(self) -> RawRecord:
        record = RawRecord(self.line)
        if "N" in self.singles:
            # N is family;given;additional;prefixes;suffixes. Additional names, prefixes
            # and suffixes have no field; FN carries them in display_name.
            components = _split_components(self.singles["N"][1], ";") + ["", ""]
            record.add("last_name", "N", components[0])
            record.add("first_name", "N", components[1])
        if "FN" in self.singles:
            record.add("display_name", "FN", _unescape(self.singles["FN"][1]))
        for _, phone in sorted(self.phones, key=lambda entry: entry[0]):
            record.add("phone", "TEL", phone)
        for _, email in sorted(self.emails, key=lambda entry: entry[0]):
            record.add("email", "EMAIL", email)
        if "ORG" in self.singles:
            record.add("company", "ORG", _split_components(self.singles["ORG"][1], ";")[0])
        if self.addresses:
            _, parts = min(self.addresses, key=lambda entry: entry[0])
            parts = [_one_line_ends(part) for part in parts] + [""] * 7
            street = ", ".join(part.strip() for part in parts[:3] if part.strip())
            record.add("address", "ADR", street)
            for index, field_name in enumerate(("city", "state", "zip", "country"), 3):
                record.add(field_name, "ADR", parts[index])
        for tag in self.tags:
            record.add("tags", "CATEGORIES", tag)
        if "BDAY" in self.singles:
            record.add("birthday", "BDAY", _unescape(self.singles["BDAY"][1]))
        if self.notes:
            notes = (_one_line_ends(note).strip() for note in self.notes)
            record.add("notes", "NOTE", "\n\n".join(note for note in notes if note))
        for _, language in sorted(self.languages, key=lambda entry: entry[0]):
            record.add("language", "LANG", language)
        if "TZ" in self.singles:
            record.add("timezone", *self.singles["TZ"])
        # hardening: our own export (contacts.exports.VCARD_PRODID) puts the contact id in UID and
        # the external id in X-CRM-EXTERNAL-ID; a round trip must not store the id as external_id.
        ours = _unescape(self.singles.get("PRODID", ("", ""))[1]).strip() == "-//contacts_crm//export//EN"
        if "X-CRM-EXTERNAL-ID" in self.singles:
            record.add("external_id", "X-CRM-EXTERNAL-ID", _unescape(self.singles["X-CRM-EXTERNAL-ID"][1]))
        elif "UID" in self.singles and not ours:
            record.add("external_id", "UID", _unescape(self.singles["UID"][1]))
        for column, gender in self.genders:
            record.add("gender", column, gender)
        if "PHOTO" in self.singles:
            record.add("avatar_url", *self.singles["PHOTO"])
        return record


def _unescape(text: str) -> str:
    r"""Undo vCard text escapes: \\ \n \N \, \; and, as Google and Apple write them, \: \".
    Any other backslash is kept as it is (a 2.1 note may hold C:\temp)."""
    if "\\" not in text:
        return text
    return _ESCAPE_RE.sub(lambda m: _ESCAPES.get(m[1], m[0]), text)


def _split_components(text: str, separators: str) -> list[str]:
    """Split on the separators that are not backslash-escaped, then unescape each part."""
    parts, current = [], []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char == "\\" and index + 1 < length:
            current.append(text[index : index + 2])
            index += 2
            continue
        if char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return [_unescape(part) for part in parts]


def _one_line_ends(text: str) -> str:
    # QP values carry =0D=0A line breaks: keep one kind of line end.
    return text.replace("\r\n", "\n").replace("\r", "\n")
