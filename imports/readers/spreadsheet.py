"""The first sheet of an XLSX, XLS or ODS workbook as SourceRows, read with python-calamine.

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
import struct
import zipfile
import zlib
from collections.abc import Iterator
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


def read_spreadsheet(path_or_fileobj: str | os.PathLike | BinaryIO, fmt: str) -> Iterator[SourceRow]:
    """Return an iterator over the rows of the first sheet, as text, the header included.

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
            sheet = _load_first_sheet(fileobj, fmt)
    else:
        sheet = _load_first_sheet(path_or_fileobj, fmt)
    return _yield_rows(sheet)


def _load_first_sheet(fileobj: BinaryIO, fmt: str) -> python_calamine.CalamineSheet | None:
    what = _FORMAT_NAMES[fmt]
    fileobj.seek(0)
    if fmt == "xls":
        _check_file_size(fileobj)
    else:
        _check_zip(fileobj, what)
    fileobj.seek(0)
    try:
        with python_calamine.CalamineWorkbook.from_filelike(fileobj) as workbook:
            if not workbook.sheet_names:
                return None
            return workbook.get_sheet_by_index(0)
    except python_calamine.PasswordError as error:
        raise ReaderError(f"the {what} is password-protected: remove the password and upload it again") from error
    except Exception as error:
        raise ReaderError(f"the file is not a readable {what}: {_describe_error(error)}") from error
    except BaseException as error:
        # pyo3 turns a Rust panic on a malformed file into PanicException, a BaseException.
        if type(error).__name__ != "PanicException":
            raise
        raise ReaderError(f"the file is not a readable {what}: {_describe_error(error)}") from error


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
