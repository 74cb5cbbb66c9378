"""One sheet of an XLSX, XLS or ODS workbook as SourceRows, read with python-calamine.

Which sheet (`open_spreadsheet`): the one the caller names (`sheet=`: its name, or its
1-based position), else the first whose first non-empty row passes the caller's
`choose(cells)` test (the pipeline asks "does this header name a phone or email column?"),
else the first sheet that holds anything. A workbook whose first sheet is empty, a title
page or notes thus imports from the sheet that has the contacts.

The preview (`head_rows=N`) of an XLSX never loads a whole sheet: `_XlsxHead` streams the
sheet's XML and stops after N rows, resolving only the shared strings those rows use, so a
1.4M-row workbook previews in constant memory. Row counts then come from each sheet's
`<dimension>`. python-calamine (0.9) has no lazy reader: its `iter_rows()` walks a sheet it
has already loaded whole, so it serves the import job, which reads every row anyway.

Before calamine sees a byte, a zip-based workbook (xlsx, ods) is inflated once member by
member with zlib, counting the bytes that really come out rather than trusting the sizes
the zip declares: the file is refused when it would inflate past MAX_UNCOMPRESSED_BYTES,
when a member larger than RATIO_FLOOR_BYTES inflates more than MAX_COMPRESSION_RATIO
times (a zip bomb), when a member inflates past its declared size, or when an XML part
declares a DOCTYPE or ENTITY (billion laughs, XXE) or is not UTF-8. An xls (OLE2) file is
not compressed; it is only held to MAX_UNCOMPRESSED_BYTES.

Memory: calamine loads the whole first sheet into its own (Rust) memory, then rows are
converted to text one at a time. The zip checks bound that load: the sheet's XML is at
most MAX_UNCOMPRESSED_BYTES. The rows themselves are streamed to the caller.

Cells as text (`format_cell`): numbers lose the float noise calamine adds
(`19195551234.0` -> `19195551234`, `1.5` -> `1.5`), dates and times become ISO 8601,
booleans `TRUE`/`FALSE`, formula cells their cached value, error cells (`#N/A`) and
empty cells ''. Text cells are kept exactly. Each row is cut after its last non-empty
cell (calamine pads every row to the sheet's width, so trailing '' carry nothing); a row
with no text at all is yielded as cells == [] (the caller counts it as skipped). Cells
keep their column position: a sheet whose data starts in column C yields ['', '', ...].
"""

from __future__ import annotations

import datetime
import math
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO

import python_calamine

from imports.readers.base import ReaderError, SourceRow
from imports.readers.delimited import MAX_CELL_CHARS, MAX_COLUMNS

MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100
# Small parts (styles, a sheet of blank formatted cells) can compress very well and are
# harmless; the ratio only matters once a member is big enough to hurt.
RATIO_FLOOR_BYTES = 1024 * 1024
# A workbook has a few dozen parts; a zip listing millions costs memory before any check.
MAX_ZIP_MEMBERS = 10_000

FORMATS = ("xlsx", "xls", "ods")
_FORMAT_NAMES = {"xlsx": "XLSX workbook", "xls": "XLS workbook", "ods": "ODS spreadsheet"}
_CHUNK = 64 * 1024
_FORBIDDEN_XML = (b"<!DOCTYPE", b"<!ENTITY")
_OVERLAP = max(len(marker) for marker in _FORBIDDEN_XML) - 1


@dataclass(slots=True)
class OpenedWorkbook:
    """The rows of the chosen sheet, its name, and every sheet as {"index" (1-based), "name",
    "rows"} ("rows": the last used row number, 0 for an empty sheet)."""

    rows: Iterator[SourceRow]
    sheet: str = ""
    sheets: list[dict] = field(default_factory=list)


def open_spreadsheet(fileobj: BinaryIO, fmt: str, *, sheet: str | int | None = None,
                     choose: Callable[[list[str]], bool] | None = None, head_rows: int | None = None
                     ) -> OpenedWorkbook:
    """Open one sheet (module docstring) of a binary, seekable workbook file.

    `head_rows` bounds the read to the first rows (the preview): for an XLSX, memory and time
    no longer grow with the sheet. Raises ReaderError for a refused or unreadable file and
    for a `sheet` the workbook does not have (naming the sheets it has). Costs: the zip
    checks (one zlib pass), then calamine's load of each sheet tried, or for an XLSX head
    a streamed parse of the first rows.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, not {fmt!r}")
    what = _FORMAT_NAMES[fmt]
    fileobj.seek(0)
    if fmt == "xls":
        _check_file_size(fileobj)
    else:
        _check_zip(fileobj, what)
    if head_rows is not None and fmt == "xlsx":
        fileobj.seek(0)
        try:
            opened = _XlsxHead(fileobj).open(sheet=sheet, choose=choose, head_rows=head_rows)
        except _NotBounded:
            opened = None
        if opened is not None:
            return opened
    fileobj.seek(0)
    return _guard(what, lambda: _open_with_calamine(fileobj, sheet, choose, head_rows))


def _guard(what: str, load):
    try:
        return load()
    except ReaderError:
        raise
    except python_calamine.PasswordError as error:
        raise ReaderError(f"the {what} is password-protected: remove the password and upload it again") from error
    except Exception as error:
        raise ReaderError(f"the file is not a readable {what}: {_describe_error(error)}") from error
    except BaseException as error:
        # pyo3 turns a Rust panic on a malformed file into PanicException, a BaseException.
        if type(error).__name__ != "PanicException":
            raise
        raise ReaderError(f"the file is not a readable {what}: {_describe_error(error)}") from error


def resolve_sheet(names: list[str], sheet: str | int) -> int:
    """Return the 0-based index of `sheet` (a name, any case, or a 1-based position) in
    `names`; raise ReaderError naming the sheets otherwise."""
    text = str(sheet).strip()
    if text in names:
        return names.index(text)
    folded = [n.casefold() for n in names]
    if text.casefold() in folded:
        return folded.index(text.casefold())
    if text.isascii() and text.isdigit() and 1 <= int(text) <= len(names):
        return int(text) - 1
    listed = ", ".join(f"{i + 1}: {n!r}" for i, n in enumerate(names)) or "none"
    raise ReaderError(f"the workbook has no sheet {text!r}; its sheets are {listed} (name one, or give its number)")


def _first_cells(rows: Iterator[SourceRow], limit: int = 50) -> list[str] | None:
    for index, row in enumerate(rows):
        if row.cells:
            return row.cells
        if index >= limit:
            break
    return None


def _pick(count: int, sheet, names, first_cells_of: Callable[[int], list[str] | None], choose) -> int | None:
    """Return the index of the sheet to read (module docstring), None for an empty workbook."""
    if not count:
        return None
    if sheet is not None and str(sheet).strip():
        return resolve_sheet(names, sheet)
    fallback = None
    for index in range(count):
        cells = first_cells_of(index)
        if cells is None:
            continue
        if choose is None or choose(cells):
            return index
        if fallback is None:
            fallback = index
    return 0 if fallback is None else fallback


def _open_with_calamine(fileobj: BinaryIO, sheet, choose, head_rows) -> OpenedWorkbook:
    with python_calamine.CalamineWorkbook.from_filelike(fileobj) as workbook:
        names = list(workbook.sheet_names)
        loaded: dict[int, python_calamine.CalamineSheet] = {}

        def load(index):
            if index not in loaded:
                loaded.clear()  # one sheet in memory at a time
                loaded[index] = workbook.get_sheet_by_index(index)
            return loaded[index]

        chosen = _pick(len(names), sheet, names, lambda i: _first_cells(_yield_rows(load(i))), choose)
        sheets = []
        if head_rows is not None:  # the preview lists every sheet with its size
            for index, name in enumerate(names):
                end = load(index).end if index != chosen else None
                sheets.append({"index": index + 1, "name": name, "rows": (end[0] + 1) if end else 0})
        if chosen is None:
            return OpenedWorkbook(rows=iter(()), sheets=sheets)
        data = load(chosen)
        if sheets:
            sheets[chosen]["rows"] = (data.end[0] + 1) if data.end else 0
        return OpenedWorkbook(rows=_yield_rows(data), sheet=names[chosen], sheets=sheets)


def read_spreadsheet(path_or_fileobj: str | os.PathLike | BinaryIO, fmt: str, *, sheet: str | int | None = None,
                     choose: Callable[[list[str]], bool] | None = None) -> Iterator[SourceRow]:
    """Return an iterator over the rows of one sheet (`open_spreadsheet` picks it; the first
    by default), as text, the header included.

    `fmt` is 'xlsx', 'xls' or 'ods' (what `detect_format` returned). A file object must
    be binary and seekable; it is rewound but not closed. Each SourceRow's `line` is the
    sheet row number as Excel shows it (1-based), blank rows included as cells == [].

    The security checks and calamine's load of the sheet run now, so a refused or corrupt
    file raises ReaderError from this call. Costs: one zlib pass over the whole file,
    then calamine's load of the first sheet (about ten times faster than openpyxl's
    read-only mode), then one str conversion per non-text cell while iterating.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        with open(path_or_fileobj, "rb") as fileobj:
            return open_spreadsheet(fileobj, fmt, sheet=sheet, choose=choose).rows
    return open_spreadsheet(path_or_fileobj, fmt, sheet=sheet, choose=choose).rows


def _describe_error(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _check_file_size(fileobj: BinaryIO) -> None:
    size = fileobj.seek(0, os.SEEK_END)
    if size > MAX_UNCOMPRESSED_BYTES:
        raise ReaderError(
            f"the workbook is {size / 2**20:.0f} MB; the limit is "
            f"{MAX_UNCOMPRESSED_BYTES // 2**20} MB: split it into smaller files"
        )


def _check_zip(fileobj: BinaryIO, what: str) -> None:
    """Refuse a zip bomb or an XML part with a DTD; see the module docstring.

    Costs one inflate pass over every member, in chunks of 64 KB.
    """
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
        raise ReaderError(f"the file is not a readable {what}: it is not a valid ZIP archive") from error
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise ReaderError(
                f"the file is refused: it holds {len(members):,} parts where a workbook "
                f"has a few dozen (at most {MAX_ZIP_MEMBERS:,} are accepted)"
            )
        declared = sum(member.file_size for member in members)
        if declared > MAX_UNCOMPRESSED_BYTES:
            raise ReaderError(_describe_too_big(declared))
        inflated_total = 0
        for member in members:
            if member.is_dir():
                continue
            if member.flag_bits & 0x1:
                raise ReaderError(f"the {what} is password-protected: remove the password and upload it again")
            ratio_checked = member.file_size > RATIO_FLOOR_BYTES
            if ratio_checked and member.file_size > MAX_COMPRESSION_RATIO * max(member.compress_size, 1):
                raise ReaderError(_describe_bomb(member.filename))
            scanner = _XmlScanner(member.filename)
            inflated = 0
            for chunk in _inflate_member(fileobj, member, what):
                inflated += len(chunk)
                inflated_total += len(chunk)
                if inflated > member.file_size:
                    raise ReaderError(
                        f"the file is not a readable {what}: the part {member.filename!r} "
                        "is larger than its ZIP header says (a zip bomb?)"
                    )
                if inflated_total > MAX_UNCOMPRESSED_BYTES:
                    raise ReaderError(_describe_too_big(inflated_total))
                scanner.feed(chunk)
            scanner.feed(b"", final=True)


class _XmlScanner:
    """Refuses a zip member that is XML with a DTD, or XML that is not UTF-8.

    Parts are judged by their content, not their name: a workbook's relationships can
    point a sheet at any file name. A member whose first bytes are not '<' (an image, a
    VBA project) is not XML and is not scanned; an SVG logo with a DOCTYPE is refused.
    """

    __slots__ = ("_name", "_start", "_is_xml", "_tail")

    def __init__(self, name: str) -> None:
        self._name = name
        self._start = b""
        self._is_xml: bool | None = None
        self._tail = b""

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if self._is_xml is None:
            self._start += chunk
            if len(self._start) < 64 and not final:
                return
            chunk, self._start = self._start, b""
            self._is_xml = self._judge(chunk)
        if not self._is_xml:
            return
        window = self._tail + chunk
        if any(marker in window for marker in _FORBIDDEN_XML):
            raise ReaderError(
                f"the file is refused: its part {self._name!r} declares a DOCTYPE or "
                "ENTITY, which spreadsheets never need and XML attacks use"
            )
        self._tail = window[-_OVERLAP:]

    def _judge(self, start: bytes) -> bool:
        # Our scan reads bytes as UTF-8; a UTF-16 or UTF-32 part would hide `<!DOCTYPE`.
        if start.startswith((b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<", b"\x00\x00")):
            raise ReaderError(f"the file is refused: its XML part {self._name!r} is not UTF-8")
        return start.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _describe_too_big(size: int) -> str:
    return (
        f"the workbook unpacks to {size / 2**20:.0f} MB or more; the limit is "
        f"{MAX_UNCOMPRESSED_BYTES // 2**20} MB: split it into smaller files"
    )


def _describe_bomb(name: str) -> str:
    return (
        f"the file is refused: its part {name!r} unpacks to more than "
        f"{MAX_COMPRESSION_RATIO} times its packed size (a zip bomb?)"
    )


def _inflate_member(fileobj: BinaryIO, member: zipfile.ZipInfo, what: str) -> Iterator[bytes]:
    """Yield a member's bytes as they inflate, from the raw data after its local header.

    zipfile's own reader stops at the declared size, which is exactly what a lying bomb
    relies on: calamine's zip reader inflates the whole stream. So we inflate it all.
    """
    corrupt = ReaderError(f"the file is not a readable {what}: the part {member.filename!r} is damaged")
    fileobj.seek(member.header_offset)
    header = fileobj.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise corrupt
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    fileobj.seek(member.header_offset + 30 + name_length + extra_length)
    remaining = member.compress_size
    if member.compress_type == zipfile.ZIP_STORED:
        while remaining:
            chunk = fileobj.read(min(_CHUNK, remaining))
            if not chunk:
                raise corrupt
            remaining -= len(chunk)
            yield chunk
        return
    if member.compress_type != zipfile.ZIP_DEFLATED:
        raise ReaderError(
            f"the file is not a readable {what}: the part {member.filename!r} uses an unsupported compression method"
        )
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        while remaining and not inflater.eof:
            data = fileobj.read(min(_CHUNK, remaining))
            if not data:
                raise corrupt
            remaining -= len(data)
            while data:
                chunk = inflater.decompress(data, _CHUNK)
                data = inflater.unconsumed_tail
                if chunk:
                    yield chunk
                if inflater.eof:
                    break
        chunk = inflater.flush()
    except zlib.error as error:
        raise corrupt from error
    if chunk:
        yield chunk


def _yield_rows(sheet: python_calamine.CalamineSheet | None) -> Iterator[SourceRow]:
    if sheet is None or sheet.start is None:
        return
    first_column = sheet.start[1]
    # python-calamine 0.9 pads iter_rows() with empty rows down to its range's start row
    # but starts every row at the range's start column; a test pins this.
    for index, row in enumerate(sheet.iter_rows()):
        line = index + 1
        cells = [value if type(value) is str else format_cell(value) for value in row]
        end = len(cells)
        while end and not cells[end - 1]:
            end -= 1
        if not end:
            yield SourceRow(line, [])
            continue
        if end < len(cells):
            del cells[end:]
        if first_column:
            cells[:0] = [""] * first_column
        if len(cells) > MAX_COLUMNS:
            raise ReaderError(f"row {line} has {len(cells)} columns; at most {MAX_COLUMNS} are supported")
        if max(map(len, cells)) > MAX_CELL_CHARS:
            raise ReaderError(f"row {line}: a cell is longer than {MAX_CELL_CHARS:,} characters")
        yield SourceRow(line, cells)


def format_cell(value: object) -> str:
    """Return a cell value from calamine (or openpyxl) as the text a user expects to see.

    Cheap: no I/O, one Decimal for a float.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return _format_duration(value)
    return str(value)


def _format_float(value: float) -> str:
    """Return the shortest decimal that round-trips, without exponent or a trailing '.0'.

    repr() gives the shortest round-tripping digits ('1.9195551234e+10'), so Decimal
    neither loses nor invents digits, where int(value) would print a huge float's binary
    noise and '%f' would round.
    """
    if not math.isfinite(value):
        return ""
    number = Decimal(repr(value))
    if number == number.to_integral_value():
        number = number.to_integral_value()
        if number.is_zero():
            return "0"
    return format(number, "f")


def _format_duration(value: datetime.timedelta) -> str:
    # A duration cell ([h]:mm:ss) can pass 24 hours; show it the way Excel does.
    seconds = value.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    whole = int(seconds)
    fraction = f"{seconds - whole:.3f}"[1:] if seconds != whole else ""
    return f"{sign}{int(hours)}:{int(minutes):02d}:{whole:02d}{fraction}"


# --- the bounded XLSX head (the preview) -------------------------------------------------------

_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
# A preview whose rows point past this many shared strings is read by calamine instead.
MAX_HEAD_SHARED_STRINGS = 100_000
# Excel's built-in date and time number formats (ECMA-376 18.8.30).
_BUILTIN_DATE_FORMATS = frozenset({14, 15, 16, 17, 18, 19, 20, 21, 22, 45, 46, 47})
_BUILTIN_DURATION_FORMATS = frozenset({46})
_QUOTED = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.')


class _NotBounded(Exception):
    """The head cannot be read in bounded memory (or the workbook is unusual): use calamine."""


def _column_index(ref: str) -> int:
    index = 0
    for char in ref:
        if "A" <= char <= "Z":
            index = index * 26 + ord(char) - 64
        else:
            break
    return index - 1


_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _unescape_ooxml(text: str | None) -> str:
    """One `<t>` run's text as calamine (the import's reader) gives it: OOXML's `_xHHHH_` is the
    character U+HHHH (Excel writes a carriage return in a cell as `_x000D_`), `_x005F_` an
    underscore, left to right and not again over what was decoded; a surrogate stays as typed."""
    if not text or "_x" not in text:
        return text or ""
    return _OOXML_ESCAPE.sub(lambda m: m[0] if 0xD800 <= int(m[1], 16) <= 0xDFFF else chr(int(m[1], 16)), text)


class _XlsxHead:
    """Reads the first rows of one XLSX sheet by streaming its XML (module docstring)."""

    def __init__(self, fileobj: BinaryIO):
        self.archive = zipfile.ZipFile(fileobj)
        self.names = set(self.archive.namelist())
        self._strings: list[str] = []
        self._string_iter = None

    def _xml(self, name: str):
        from defusedxml.ElementTree import fromstring

        return fromstring(self.archive.read(name))

    def _member(self, target: str, base: str = "xl/") -> str:
        path = target.lstrip("/") if target.startswith("/") else base + target
        parts = []
        for part in path.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part and part != ".":
                parts.append(part)
        return "/".join(parts)

    def open(self, *, sheet, choose, head_rows: int) -> OpenedWorkbook:
        try:
            book = self._xml("xl/workbook.xml")
            rels = self._xml("xl/_rels/workbook.xml.rels")
        except KeyError as error:
            raise _NotBounded from error
        targets = {r.get("Id"): r.get("Target") for r in rels.iter(f"{_PKG_REL_NS}Relationship")}
        entries = []
        for element in book.iter(f"{_MAIN_NS}sheet"):
            target = targets.get(element.get(f"{_REL_NS}id"))
            if not target:
                raise _NotBounded
            member = self._member(target)
            if member not in self.names:
                raise _NotBounded
            entries.append((element.get("name") or "", member))
        pr = book.find(f"{_MAIN_NS}workbookPr")
        self.date1904 = pr is not None and pr.get("date1904") in ("1", "true")
        self._load_styles()
        names = [name for name, _ in entries]
        heads: dict[int, tuple[list[SourceRow], int | None]] = {}

        def head(index):
            if index not in heads:
                heads[index] = self._read_rows(entries[index][1], head_rows)
            return heads[index]

        chosen = _pick(len(entries), sheet, names, lambda i: _first_cells(iter(head(i)[0])), choose)
        sheets = []
        for index, name in enumerate(names):
            rows, dimension = head(index) if index == chosen else self._dimension(entries[index][1])
            if dimension is None and index == chosen and len(rows) < head_rows:
                dimension = rows[-1].line if rows else 0  # read to its end
            sheets.append({"index": index + 1, "name": name, "rows": dimension})
        if chosen is None:
            return OpenedWorkbook(rows=iter(()), sheets=sheets)
        return OpenedWorkbook(rows=iter(head(chosen)[0]), sheet=names[chosen], sheets=sheets)

    def _load_styles(self):
        self.date_styles: dict[int, str] = {}
        if "xl/styles.xml" not in self.names:
            return
        styles = self._xml("xl/styles.xml")
        custom = {}
        formats = styles.find(f"{_MAIN_NS}numFmts")
        for element in formats if formats is not None else ():
            code = _QUOTED.sub("", element.get("formatCode") or "").casefold()
            if "[h]" in (element.get("formatCode") or "").casefold():
                custom[int(element.get("numFmtId"))] = "duration"
            elif any(c in code for c in "dmyhs") and "general" not in code:
                custom[int(element.get("numFmtId"))] = "datetime"
        xfs = styles.find(f"{_MAIN_NS}cellXfs")
        for index, xf in enumerate(xfs if xfs is not None else ()):
            number_format = int(xf.get("numFmtId") or 0)
            if number_format in custom:
                self.date_styles[index] = custom[number_format]
            elif number_format in _BUILTIN_DURATION_FORMATS:
                self.date_styles[index] = "duration"
            elif number_format in _BUILTIN_DATE_FORMATS:
                self.date_styles[index] = "datetime"

    def _shared_string(self, index: int) -> str:
        if index >= MAX_HEAD_SHARED_STRINGS:
            raise _NotBounded
        if self._string_iter is None:
            self._string_iter = self._iter_shared_strings()
        while len(self._strings) <= index:
            text = next(self._string_iter, None)
            if text is None:
                return ""
            self._strings.append(text)
        return self._strings[index]

    def _iter_shared_strings(self):
        from defusedxml.ElementTree import iterparse

        name = "xl/sharedStrings.xml"
        if name not in self.names:
            return
        with self.archive.open(name) as stream:
            for _, element in iterparse(stream, events=("end",)):
                if element.tag == f"{_MAIN_NS}si":
                    # Phonetic runs (<rPh>) are not the cell's text.
                    yield "".join(_unescape_ooxml(t.text) for t in element.iter(f"{_MAIN_NS}t")
                                  if t not in _phonetic_texts(element))
                    element.clear()

    def _dimension(self, member: str) -> tuple[list[SourceRow], int | None]:
        from defusedxml.ElementTree import iterparse

        with self.archive.open(member) as stream:
            for _, element in iterparse(stream, events=("start",)):
                if element.tag == f"{_MAIN_NS}dimension":
                    ref = element.get("ref") or ""
                    break
                if element.tag == f"{_MAIN_NS}sheetData":
                    return [], None  # no <dimension>: the size is unknown without reading the whole sheet
            else:
                return [], None
        corners = ref.split(":")
        if len(set(corners)) == 1:  # `A1` or `A1:A1`: one cell or none (an empty sheet says so too)
            rows, _ = self._read_rows(member, 1)
            return [], (rows[0].line if rows and rows[0].cells else 0)
        return [], _dimension_rows(ref)

    def _read_rows(self, member: str, limit: int) -> tuple[list[SourceRow], int | None]:
        from defusedxml.ElementTree import iterparse

        rows: list[SourceRow] = []
        dimension = None
        next_line = 1
        with self.archive.open(member) as stream:
            parser = iterparse(stream, events=("start", "end"))
            for event, element in parser:
                tag = element.tag
                if event == "start":
                    if tag == f"{_MAIN_NS}dimension":
                        dimension = _dimension_rows(element.get("ref") or "")
                    continue
                if tag != f"{_MAIN_NS}row":
                    continue
                line = int(element.get("r") or next_line)
                while next_line < line and len(rows) < limit:
                    rows.append(SourceRow(next_line, []))
                    next_line += 1
                if len(rows) >= limit:
                    break
                rows.append(self._row(line, element))
                next_line = line + 1
                element.clear()
                if len(rows) >= limit:
                    break
        return rows, dimension

    def _row(self, line: int, element) -> SourceRow:
        cells: list[str] = []
        position = 0
        for cell in element.iter(f"{_MAIN_NS}c"):
            ref = cell.get("r")
            column = _column_index(ref) if ref else position
            position = column + 1
            text = self._cell_text(cell)
            if not text:
                continue
            if len(cells) < column:
                cells.extend([""] * (column - len(cells)))
            cells.append(text)
        if len(cells) > MAX_COLUMNS:
            raise ReaderError(f"row {line} has {len(cells)} columns; at most {MAX_COLUMNS} are supported")
        if cells and max(map(len, cells)) > MAX_CELL_CHARS:
            raise ReaderError(f"row {line}: a cell is longer than {MAX_CELL_CHARS:,} characters")
        return SourceRow(line, cells)

    def _cell_text(self, cell) -> str:
        kind = cell.get("t") or "n"
        value = cell.find(f"{_MAIN_NS}v")
        raw = value.text if value is not None else None
        if kind == "inlineStr":
            inline = cell.find(f"{_MAIN_NS}is")
            return "".join(_unescape_ooxml(t.text) for t in inline.iter(f"{_MAIN_NS}t")) if inline is not None else ""
        if raw is None:
            return ""
        if kind == "s":
            return self._shared_string(int(raw))
        if kind == "str":
            return raw
        if kind == "b":
            return "TRUE" if raw.strip() in ("1", "true") else "FALSE"
        if kind == "e":
            return ""
        if kind == "d":
            raise _NotBounded  # ISO dates in cells: rare; let calamine decide their text
        try:
            number = float(raw)
        except ValueError:
            return raw
        style = self.date_styles.get(int(cell.get("s") or 0))
        if style:
            return format_cell(_excel_datetime(number, self.date1904, style))
        return format_cell(number)


def _phonetic_texts(si) -> set:
    return {t for run in si.iter(f"{_MAIN_NS}rPh") for t in run.iter(f"{_MAIN_NS}t")}


def _dimension_rows(ref: str) -> int | None:
    last = ref.split(":")[-1]
    digits = "".join(c for c in last if c.isdigit())
    return int(digits) if digits else None


def _excel_datetime(value: float, date1904: bool, style: str):
    """Return a number styled as a date or duration as calamine does: a date for a whole
    day, a time below one day, a datetime otherwise; a timedelta for [h]:mm durations."""
    if style == "duration":
        return datetime.timedelta(days=value)
    if 0 <= value < 1 and not date1904:
        seconds = round(value * 86400, 3)
        whole = int(seconds)
        return datetime.time(whole // 3600, whole % 3600 // 60, whole % 60, int(round((seconds - whole) * 1e6)))
    base = datetime.datetime(1904, 1, 1) if date1904 else datetime.datetime(1899, 12, 30)
    moment = base + datetime.timedelta(days=value)
    moment = moment.replace(microsecond=round(moment.microsecond / 1000) * 1000 % 1_000_000)
    if moment.time() == datetime.time(0):
        return moment.date()
    return moment
