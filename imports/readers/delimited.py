"""Delimited text (CSV, TSV, semicolon, pipe) as SourceRows, streamed in constant memory.

`read_delimited()` reads the first HEAD_BYTES of the file to pick an encoding and a
delimiter, then streams the whole file (head included) through an incremental decoder and
`csv.reader`. Nothing ever holds more than one physical line (at most MAX_LINE_CHARS) and
one record (at most MAX_COLUMNS cells of at most MAX_CELL_CHARS each) in memory.

Encoding, in this order (`detect_encoding()`):
  1. a byte-order mark: UTF-8, UTF-16 LE/BE or UTF-32 LE/BE; the BOM is stripped;
  2. strict UTF-8 over the head;
  3. Shift-JIS (Microsoft's cp932, what Japanese Excel writes) when the head decodes as
     Shift-JIS strictly AND at least a quarter of its double-byte characters (and at least
     two) are kana or kanji whose both bytes are >= 0x80 (see `_looks_like_shift_jis`);
  4. a single-byte code page (`_detect_single_byte`): charset-normalizer, restricted to the
     PLAUSIBLE_SINGLE_BYTE code pages, proposes the candidates that decode the head without
     mess; of those, the one whose text has the fewest "odd" characters wins (a symbol inside
     a word as in `£ukasz`, an upper-case accented letter after a lower-case one as in
     `JosŽ`, a control character), ties going to cp1252, except that a file whose lines end
     in a bare CR (Excel for Mac's "CSV (Macintosh)") prefers mac_roman. When the text looks
     odd in every candidate, or two candidates that decode differently look equally right
     for text mostly outside ASCII, the guess is `doubtful` and the preview says so.
     cp1252 decodes with latin-1 for the five bytes it leaves undefined, so it never fails.
UTF-16 is never tried without a BOM: latin-1 and Shift-JIS bytes decode "successfully"
as UTF-16 into CJK garbage. A head containing NUL bytes is refused instead. The caller may
name the encoding (`encoding=`, one of ENCODINGS), which skips detection.

The head decides. A byte that is invalid in the chosen encoding further down the file
(a cp1252 row appended to a UTF-8 file after the first 64 KB, say) is decoded on its own
as cp1252 rather than refusing the file half-way through an import: each invalid byte
becomes one character, so no text is lost and line numbers stay right.

Blank lines are yielded as SourceRow(line, []) so the caller can count them as skipped;
a record whose cells are all empty (`,,,` as Excel writes an empty row) is yielded the
same way. Otherwise cells are exactly what csv.reader parsed, trailing empty cells
included (a header's trailing comma gives a last column named '').
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from imports.readers.base import ReaderError, SourceRow

HEAD_BYTES = 64 * 1024
MAX_COLUMNS = 500
MAX_CELL_CHARS = 64 * 1024
# A physical line may hold MAX_COLUMNS cells, but a real contact row is a few KB; 4M
# characters bounds the memory a file with no line breaks at all can take.
MAX_LINE_CHARS = 4 * 1024 * 1024
DELIMITERS = (",", ";", "\t", "|")

_DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
# The codec error handler (registered below) that decodes an invalid byte as cp1252.
FALLBACK_ERRORS = "contacts-crm-cp1252-byte"
_STREAM_CHUNK = 64 * 1024


def _build_cp1252_table() -> tuple[str, ...]:
    chars = []
    for value in range(256):
        try:
            chars.append(bytes([value]).decode("cp1252"))
        except UnicodeDecodeError:
            # 0x81, 0x8D, 0x8F, 0x90, 0x9D: undefined in cp1252, defined in latin-1.
            chars.append(chr(value))
    return tuple(chars)


_CP1252_OR_LATIN1 = _build_cp1252_table()


def _decode_bytes_as_cp1252(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: each undecodable byte becomes its cp1252 (else latin-1) char."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(_CP1252_OR_LATIN1[byte] for byte in bad), error.end


codecs.register_error(FALLBACK_ERRORS, _decode_bytes_as_cp1252)


# The single-byte code pages detection chooses from (Python codec names), in the order that
# breaks ties: Western first (most legacy exports are Excel's cp1252), then Mac, then the
# other Windows code pages. latin-1 is cp1252's subset for text and never wins a tie.
PLAUSIBLE_SINGLE_BYTE = ("cp1252", "mac_roman", "cp1250", "cp1251", "cp1257", "cp1254", "cp1253", "cp1255",
                         "cp1256", "cp1258", "cp874")
# What a caller may name with `encoding=` (the admin's select, the API, --encoding).
ENCODINGS = ("utf-8", "utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1", "mac_roman", "cp1250", "cp1251",
             "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "cp874", "cp932", "gbk", "big5")
# charset-normalizer reads a bounded sample of the head, never the whole file.
DETECT_SAMPLE_BYTES = 32 * 1024


@dataclass(frozen=True, slots=True)
class EncodingGuess:
    """The codec chosen for a file, how (`bom`, `utf-8`, `detected`, `given`), and why it is
    doubtful (a message for the preview) or '' when it is not."""

    encoding: str
    how: str
    doubtful: str = ""


def check_encoding(name: str) -> str:
    """Return the codec for an encoding the caller named (one of ENCODINGS, any spelling
    Python knows: `macintosh`, `windows-1252`, `UTF8`); raise ReaderError otherwise."""
    try:
        codec = codecs.lookup(name.strip()).name
    except (LookupError, AttributeError):
        codec = None
    allowed = {codecs.lookup(known).name: known for known in ENCODINGS}
    if codec not in allowed:
        raise ReaderError(f"{name!r} is not an encoding we read; use one of {', '.join(ENCODINGS)}")
    return allowed[codec]


def detect_encoding(head: bytes) -> str:
    """Return the Python codec name to decode a file whose first bytes are `head`.

    One of 'utf-8-sig', 'utf-16', 'utf-32' (these three consume their BOM), 'utf-8',
    'cp932' or one of PLAUSIBLE_SINGLE_BYTE. See `guess_encoding`.
    """
    return guess_encoding(head).encoding


def guess_encoding(head: bytes) -> EncodingGuess:
    """Return the EncodingGuess for a file whose first bytes are `head`.

    Read the module docstring for the order and its reasons; decode with
    errors=FALLBACK_ERRORS (as `read_delimited` does) so that a single-byte code page never
    fails. Costs one or two decoding passes over `head`; a file that is not UTF-8 also costs
    one charset-normalizer pass over at most DETECT_SAMPLE_BYTES (about 1-15 ms).
    """
    if head.startswith(codecs.BOM_UTF8):
        return EncodingGuess("utf-8-sig", "bom")
    # UTF-32 LE's BOM starts with UTF-16 LE's, so test it first.
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return EncodingGuess("utf-32", "bom")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return EncodingGuess("utf-16", "bom")
    try:
        # final=False: the head may end in the middle of a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        pass
    else:
        return EncodingGuess("utf-8", "utf-8")
    if _looks_like_shift_jis(head):
        return EncodingGuess("cp932", "detected")
    return _detect_single_byte(head)


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


# Punctuation that sits next to letters in real text (`O’Brien`, `«Ana»`, `Jean–Luc`).
_WORD_PUNCTUATION = frozenset("\u2018\u2019\u201a\u201c\u201d\u201e\u00ab\u00bb\u2013\u2014\u2026\u00b7\u00a0")
_WORD = re.compile(r"[^\W\d_]{4,}")


def _oddities(text: str) -> int:
    """Count what a wrong code page typically produces (module docstring): a control
    character, a symbol touching a letter (`£ukasz`), an upper-case letter after a
    lower-case one (`JosŽ`), a word of mostly accented Latin letters (Greek read as
    cp1250: `Ăéţńăďň`). Costs one pass over the non-ASCII characters."""
    odd = 0
    end = len(text)
    for match in _NON_ASCII.finditer(text):
        i = match.start()
        char = text[i]
        before = text[i - 1] if i else " "
        after = text[i + 1] if i + 1 < end else " "
        if unicodedata.category(char)[0] == "C":
            odd += 1
        elif not char.isalpha():
            odd += char not in _WORD_PUNCTUATION and (before.isalpha() or after.isalpha())
        elif char.isupper() and before.isalpha() and before.islower():
            odd += 1
    for word in _WORD.findall(text):
        if not word.isascii():
            accented = sum(1 for c in word if c > "\x7f" and _is_latin(c))
            odd += accented * 3 > len(word) * 2
    return odd


def _is_latin(char: str) -> bool:
    return unicodedata.name(char, "").startswith("LATIN")


def _detect_single_byte(head: bytes) -> EncodingGuess:
    from charset_normalizer import from_bytes

    sample = head[:DETECT_SAMPLE_BYTES]
    results = from_bytes(sample, cp_isolation=list(PLAUSIBLE_SINGLE_BYTE), preemptive_behaviour=False)
    proposed = {}
    for match in results:
        for name in (match.encoding, *match.could_be_from_charset):
            codec = codecs.lookup(name).name
            for known in PLAUSIBLE_SINGLE_BYTE:
                if codecs.lookup(known).name == codec:
                    proposed.setdefault(known, match.coherence)
    if not proposed:
        return EncodingGuess("cp1252", "detected", "the file's encoding could not be recognised: it was read as "
                             "cp1252 (Windows Western); if accented letters look wrong, choose its encoding")
    mac_line_ends = b"\r" in sample and b"\n" not in sample
    order = {name: rank for rank, name in enumerate(PLAUSIBLE_SINGLE_BYTE)}
    if mac_line_ends:
        order["mac_roman"] = -1
    scored = []
    for name in proposed:
        text = sample.decode(name, errors=FALLBACK_ERRORS)
        scored.append((_oddities(text), order[name], name, text))
    scored.sort()
    odd, _, chosen, text = scored[0]
    guess = EncodingGuess(chosen, "detected")
    label = f"{chosen} ({ENCODING_NAMES.get(chosen, chosen)})"
    if odd:
        return EncodingGuess(chosen, "detected", f"the file's encoding is uncertain: it was read as {label}, but "
                             f"{odd} character(s) still look wrong; if names look garbled, choose its encoding")
    rivals = [other for o, _, other, other_text in scored[1:] if o == 0 and other_text != text]
    letters = [c for c in text if c.isalpha()]
    mostly_non_ascii = letters and sum(c > "\x7f" for c in letters) * 5 > len(letters)
    if rivals and mostly_non_ascii and proposed.get(rivals[0], 0) >= proposed.get(chosen, 0):
        return EncodingGuess(chosen, "detected", f"the file's encoding is uncertain: it was read as {label}, but "
                             f"{rivals[0]} reads it differently; if names look garbled, choose its encoding")
    return guess


ENCODING_NAMES = {
    "utf-8": "Unicode", "utf-8-sig": "Unicode", "utf-16": "Unicode", "utf-32": "Unicode",
    "utf-16-le": "Unicode", "utf-16-be": "Unicode",
    "cp1252": "Windows Western", "latin-1": "ISO Western", "mac_roman": "Mac Roman", "cp1250": "Windows Central European",
    "cp1251": "Windows Cyrillic", "cp1253": "Windows Greek", "cp1254": "Windows Turkish", "cp1255": "Windows Hebrew",
    "cp1256": "Windows Arabic", "cp1257": "Windows Baltic", "cp1258": "Windows Vietnamese", "cp874": "Windows Thai",
    "cp932": "Japanese Shift-JIS", "gbk": "Chinese GBK", "big5": "Chinese Big5",
}


def _looks_like_shift_jis(head: bytes) -> bool:
    """Return True when `head` is strict Shift-JIS that reads as Japanese, not as cp1252.

    Western cp1252 text also decodes as Shift-JIS surprisingly often ("Hélène": é+l and
    è+n are valid double-byte pairs), but there the second byte is an ASCII letter.
    Japanese text has both bytes >= 0x80 in about two pairs out of three, while cp1252
    text almost never puts two non-ASCII characters side by side. Costs one decoding
    pass and one encode per non-ASCII character of the head.
    """
    try:
        text = codecs.getincrementaldecoder("cp932")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    double_byte = high_pairs = 0
    for char in text:
        if char < "\x80":
            continue
        encoded = char.encode("cp932")
        if len(encoded) != 2:
            continue
        double_byte += 1
        if encoded[1] >= 0x80 and _is_kana_or_kanji(char):
            high_pairs += 1
    return high_pairs >= 2 and high_pairs * 4 >= double_byte


def _is_kana_or_kanji(char: str) -> bool:
    return "\u3040" <= char <= "\u30ff" or "\u4e00" <= char <= "\u9fff"


def detect_delimiter(sample_text: str) -> str:
    """Return the delimiter (one of DELIMITERS) of delimited text starting with `sample_text`.

    `sample_text` is the decoded beginning of the file (line 1 first). The winner is the
    candidate that gives the same field count (more than one) on the most records,
    quotes respected; ties go to the candidate the first record (the header) agrees with,
    then to the order of DELIMITERS. A file no candidate splits is a single-column file:
    ',' is returned (it splits nothing there).

    Raises ReaderError when some records split only under another candidate (a
    comma-separated first row above tab-separated rows): such a file cannot be read
    without mis-splitting some rows. Costs one csv parse of the sample per candidate.
    """
    counts_by_delimiter = {delimiter: _count_fields(sample_text, delimiter) for delimiter in DELIMITERS}
    best = None
    best_score = None
    for delimiter in DELIMITERS:
        field_counts = counts_by_delimiter[delimiter]
        frequencies = Counter(count for count in field_counts.values() if count > 1)
        if not frequencies:
            continue
        modal_count, hits = frequencies.most_common(1)[0]
        first_record_agrees = next(iter(field_counts.values())) == modal_count
        score = (hits, first_record_agrees)
        if best_score is None or score > best_score:
            best, best_score = delimiter, score
    if best is None:
        return ","
    _check_rows_agree(best, counts_by_delimiter)
    return best


def _count_fields(sample_text: str, delimiter: str) -> dict[int, int]:
    """Return {start line: field count} for the non-blank records of the sample."""
    counts = {}
    try:
        for line, cells in _parse_records(io.StringIO(sample_text, newline=""), delimiter):
            if any(cells):
                counts[line] = len(cells)
    except ReaderError:
        # An over-long cell in the sample: judge on the records before it; the reader
        # reports it with its line when it gets there.
        pass
    return counts


def _check_rows_agree(chosen: str, counts_by_delimiter: dict[str, dict[int, int]]) -> None:
    chosen_counts = counts_by_delimiter[chosen]
    odd_lines: dict[str, list[int]] = {}
    for line, count in chosen_counts.items():
        if count != 1:
            continue
        for other in DELIMITERS:
            if other != chosen and counts_by_delimiter[other].get(line, 0) > 1:
                odd_lines.setdefault(other, []).append(line)
                break
    if not odd_lines:
        return
    agreeing = [line for line, count in chosen_counts.items() if count > 1]
    odd = " and ".join(
        f"{_describe_lines(lines)} {_verb(lines)} {_DELIMITER_NAMES[other]}" for other, lines in odd_lines.items()
    )
    raise ReaderError(
        f"rows disagree on the delimiter: {odd} but {_describe_lines(agreeing)} "
        f"{_verb(agreeing)} {_DELIMITER_NAMES[chosen]}; save the file again with a "
        "single delimiter"
    )


def _verb(lines: list[int]) -> str:
    return "uses" if len(lines) == 1 else "use"


def _describe_lines(lines: list[int], most: int = 4) -> str:
    """Return 'line 7' or 'lines 2-4, 9, 12-30' (at most `most` ranges, then 'and more')."""
    ranges: list[list[int]] = []
    for line in sorted(lines):
        if ranges and line == ranges[-1][1] + 1:
            ranges[-1][1] = line
        else:
            ranges.append([line, line])
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in ranges[:most]]
    text = ", ".join(parts) + (" and more" if len(ranges) > most else "")
    return f"line {text}" if len(lines) == 1 else f"lines {text}"


@dataclass(slots=True)
class DelimitedFile:
    """An opened delimited file: its rows (an iterator), the encoding and the delimiter."""

    rows: Iterator[SourceRow]
    encoding: EncodingGuess
    delimiter: str


def read_delimited(fileobj: BinaryIO, *, delimiter: str | None = None, encoding: str | None = None
                   ) -> Iterator[SourceRow]:
    """Return an iterator over every record of a delimited text file; see `open_delimited`."""
    return open_delimited(fileobj, delimiter=delimiter, encoding=encoding).rows


def open_delimited(fileobj: BinaryIO, *, delimiter: str | None = None, encoding: str | None = None
                   ) -> DelimitedFile:
    """Return an iterator over every record of a delimited text file, header included.

    `fileobj` is a binary file object read from its current position; it is not closed.
    Each SourceRow carries the 1-based physical line where its record starts (a quoted
    field spanning lines pushes later records down) and its cells as str; blank lines and
    all-empty records come as cells == []. Pass `delimiter` to skip its detection, and
    `encoding` (one of ENCODINGS) to skip the encoding's.

    Detection runs now, so a refused file (NUL bytes, rows disagreeing on the delimiter)
    raises ReaderError from this call; limits broken further down (over MAX_COLUMNS
    cells, a cell over MAX_CELL_CHARS, a line over MAX_LINE_CHARS) raise ReaderError
    naming the line while iterating. Costs: reads HEAD_BYTES ahead, then constant memory;
    a few hundred thousand rows per second.
    """
    head = _read_head(fileobj)
    if encoding:
        given = check_encoding(encoding)
        # A BOM is never text: utf-8-sig and utf-16 drop it (utf-16 without one reads little-endian).
        guess = EncodingGuess("utf-8-sig" if given == "utf-8" else given, "given")
    else:
        guess = guess_encoding(head)
    encoding = guess.encoding
    if not encoding.startswith(("utf-16", "utf-32")) and b"\x00" in head:
        raise ReaderError(_describe_nul_bytes(head))
    if delimiter is None:
        delimiter = detect_delimiter(_decode_sample(head, encoding))
    elif len(delimiter) != 1 or delimiter in '"\r\n':
        raise ValueError(f"a delimiter is one character other than a quote or newline: {delimiter!r}")
    stream = io.TextIOWrapper(
        io.BufferedReader(_HeadThenRest(head, fileobj), buffer_size=_STREAM_CHUNK),
        encoding=encoding,
        errors=FALLBACK_ERRORS,
        newline="",
    )
    return DelimitedFile(_yield_rows(stream, delimiter), guess, delimiter)


def _read_head(fileobj: BinaryIO) -> bytes:
    parts = []
    size = 0
    while size < HEAD_BYTES:
        data = fileobj.read(HEAD_BYTES - size)
        if not data:
            break
        parts.append(data)
        size += len(data)
    return b"".join(parts)


def _describe_nul_bytes(head: bytes) -> str:
    half = max(len(head) // 2, 1)
    even_nuls, odd_nuls = head[0::2].count(0), head[1::2].count(0)
    # ASCII text in UTF-16 has a NUL in every other byte, and only there.
    if max(even_nuls, odd_nuls) >= 0.3 * half and min(even_nuls, odd_nuls) <= 0.05 * half:
        return (
            "the file looks like UTF-16 text without a byte-order mark, which cannot be "
            "read reliably: save it again as 'CSV UTF-8'"
        )
    return "the file contains NUL bytes: it is not a text file (save it as CSV and try again)"


def _decode_sample(head: bytes, encoding: str) -> str:
    """Return the head decoded, without its last line when the head stops mid-file."""
    text = head.decode(encoding, errors=FALLBACK_ERRORS)
    if len(head) < HEAD_BYTES:
        return text
    cut = max(text.rfind("\n"), text.rfind("\r"))
    return text[: cut + 1] if cut > 0 else text


class _HeadThenRest(io.RawIOBase):
    """A raw stream giving the bytes already read for detection, then the rest of the file."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        self._position = 0
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._position < len(self._head):
            size = min(len(buffer), len(self._head) - self._position)
            buffer[:size] = self._head[self._position : self._position + size]
            self._position += size
            return size
        data = self._rest.read(len(buffer))
        if not data:
            return 0
        buffer[: len(data)] = data
        return len(data)


def _yield_rows(stream: io.TextIOWrapper, delimiter: str) -> Iterator[SourceRow]:
    # One loop, no nested generator: this runs once per record of a million-row file.
    with stream:
        lines = _PhysicalLines(stream)
        reader = _make_reader(lines, delimiter)
        while True:
            line = lines.count + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                # With strict=False the only error left is csv's own field size limit
                # (131,072 characters: above MAX_CELL_CHARS, so that global stays alone).
                raise ReaderError(_describe_long_cell(line, None)) from error
            if not any(cells):
                yield SourceRow(line, [])
                continue
            if len(cells) > MAX_COLUMNS:
                cells = _drop_trailing_empty_cells(cells)
                if len(cells) > MAX_COLUMNS:
                    raise ReaderError(
                        f"line {line} has {len(cells)} columns; at most {MAX_COLUMNS} are supported "
                        "(is the delimiter right?)"
                    )
            if max(map(len, cells)) > MAX_CELL_CHARS:
                column = next(i for i, cell in enumerate(cells) if len(cell) > MAX_CELL_CHARS)
                raise ReaderError(_describe_long_cell(line, column + 1))
            yield SourceRow(line, cells)


def _drop_trailing_empty_cells(cells: list[str]) -> list[str]:
    end = len(cells)
    while end and not cells[end - 1]:
        end -= 1
    return cells[:end]


def _describe_long_cell(line: int, column: int | None) -> str:
    where = f"line {line}, column {column}" if column else f"line {line}"
    return f"{where}: a cell is longer than {MAX_CELL_CHARS:,} characters (is a quote left open?)"


class _PhysicalLines:
    """The physical lines of a newline='' text stream, ends kept, NULs removed, counted.

    `count` is how many lines have been handed out, so a csv.reader fed from this knows
    where each record starts. A NUL after the head carries no text (a file padded with
    NULs by a crashed copy, a stray byte): it is dropped rather than refusing the file
    half-way through an import.
    """

    __slots__ = ("count", "_readline")

    def __init__(self, stream: io.TextIOBase) -> None:
        self.count = 0
        self._readline = stream.readline

    def __iter__(self) -> _PhysicalLines:
        return self

    def __next__(self) -> str:
        line = self._readline(MAX_LINE_CHARS + 1)
        if not line:
            raise StopIteration
        self.count += 1
        if len(line) > MAX_LINE_CHARS:
            raise ReaderError(
                f"line {self.count} is longer than {MAX_LINE_CHARS:,} characters: this is "
                "not a CSV file, or its line breaks were lost"
            )
        if "\x00" in line:
            line = line.replace("\x00", "")
        return line


def _make_reader(lines: _PhysicalLines, delimiter: str):
    # strict=False: a stray quote inside an unquoted field is kept as text, as Excel does.
    return csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, strict=False)


def _parse_records(stream: io.TextIOBase, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (start line, cells) for each csv record of `stream`."""
    lines = _PhysicalLines(stream)
    reader = _make_reader(lines, delimiter)
    while True:
        start = lines.count + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise ReaderError(_describe_long_cell(start, None)) from error
        yield start, cells
