"""A streaming writer of one-sheet XLSX workbooks of text cells, for the contacts export (issue 14).

Hand-written because the libraries were too slow or lossy for the export: openpyxl's write-only
writer measured ~2.1k rows/s on the bench book against the issue's 10k target (it builds an
element per cell), and XlsxWriter's constant_memory mode, 1.6–2.2× faster, writes a literal
`_x0041_` as `_x005F_x0041_`, which openpyxl does not undo (calamine, the importer's reader,
does). A sheet of inline strings needs nothing more than string formatting and zlib:
bench/README.md, "XLSX writer".

The workbook holds the minimal parts (content types, package and workbook relationships, the
workbook, a stylesheet whose second format is the bold header, one worksheet). The worksheet
streams row by row into its zip entry (`ZipFile.open(name, "w")`), so memory holds one chunk of
rows whatever the export's size. Every cell is an inline string (`t="inlineStr"`): phones and ZIP
codes stay text, and there is no shared-strings table to keep in memory.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable

# zlib level 1: on 20,000 rows of the bench book's sheet XML it compressed 2.9x faster than
# level 6 (zipfile's default) for a file 23% larger (bench/README.md, "XLSX writer").
COMPRESS_LEVEL = 1
ROWS_PER_WRITE = 500  # rows joined into one write into the zip entry: fewer calls, small buffer
SHEET_PART = "xl/worksheets/sheet1.xml"

_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CONTENT_TYPES = (
    _XML + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    f'<Override PartName="/{SHEET_PART}" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
_PACKAGE_RELS = (
    _XML + f'<Relationships xmlns="{_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_DOC_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK_RELS = (
    _XML + f'<Relationships xmlns="{_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_DOC_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_DOC_REL}/styles" Target="styles.xml"/></Relationships>'
)
# Format 0: the default; format 1: bold (the header row).
_STYLES = (
    _XML + f'<styleSheet xmlns="{_MAIN_NS}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
# The header row stays in view (frozen pane below row 1).
_SHEET_START = (
    _XML + f'<worksheet xmlns="{_MAIN_NS}"><sheetViews><sheetView workbookViewId="0">'
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
    '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews><sheetData>'
)
_SHEET_END = "</sheetData></worksheet>"

# OOXML writes a character XML cannot hold as `_xHHHH_`, and readers that follow the spec
# (python-calamine, Excel) turn any `_xHHHH_` in a cell's text back into the character: a literal
# `_x0041_` would read as "A". The spec's escape (`_x005F_` for the underscore) is not undone by
# openpyxl, which reads `_x005F_x0041_` as typed. So the text is cut into two runs right after such an
# underscore: no `<t>` then holds a whole `_xHHHH_`, and every reader joins the runs into the
# literal text (tests/contacts/test_xlsx_writer.py reads it back with both).
_OOXML_ESCAPE = re.compile(r"(?<=_)(?=x[0-9A-Fa-f]{4}_)")
_RUN_BREAK = '</t></r><r><t xml:space="preserve">'
# Every character str.isspace() is true for (the last is U+3000, the ideographic space).
_SPACE = frozenset(char for char in map(chr, range(0x3001)) if char.isspace())


class NeedsZip64(Exception):
    """The sheet outgrew the zip format's 2 GiB without ZIP64: write it again with zip64=True."""


def column_letters(count: int) -> list[str]:
    """A, B, …, Z, AA, AB, … for the first `count` columns."""
    letters = []
    for index in range(1, count + 1):
        name = ""
        while index:
            index, rest = divmod(index - 1, 26)
            name = chr(65 + rest) + name
        letters.append(name)
    return letters


def inline_text(text: str) -> str:
    """The content of a cell's `<is>` element for `text`: markup escaped (&, <, >; quotes need
    none in element text), a literal `_xHHHH_` kept literal (above), and `xml:space="preserve"`
    when the text starts or ends with white space (python-calamine trims it otherwise; only
    then, since the attribute is a quarter of a short cell's bytes)."""
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "_x" in text and _OOXML_ESCAPE.search(text):
        return f'<r><t xml:space="preserve">{_OOXML_ESCAPE.sub(_RUN_BREAK, text)}</t></r>'
    if text[:1] in _SPACE or text[-1:] in _SPACE:
        return f'<t xml:space="preserve">{text}</t>'
    return f"<t>{text}</t>"


def row_xml(number: int, cells: Iterable[str | None], letters: list[str], style: str = "") -> str:
    """One `<row>`: a cell per text, none for None or '' (an empty cell). `style`: ' s="1"' or ''.
    Most rows hold no markup character and no `_x`: one scan of the row's text tells, and their
    cells are then formatted without a call each (the cost of a sheet is this loop)."""
    present = [(letter, text) for letter, text in zip(letters, cells, strict=True) if text]
    texts = "".join([text for _, text in present])
    if "&" in texts or "<" in texts or ">" in texts or "_x" in texts:
        xml = [f'<c r="{letter}{number}"{style} t="inlineStr"><is>{inline_text(text)}</is></c>'
               for letter, text in present]
    else:
        space = _SPACE
        xml = [f'<c r="{letter}{number}"{style} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
               if text[0] in space or text[-1] in space else
               f'<c r="{letter}{number}"{style} t="inlineStr"><is><t>{text}</t></is></c>'
               for letter, text in present]
    return f'<row r="{number}">{"".join(xml)}</row>'


def write_workbook(fileobj, *, sheet_name: str, header: list[str], rows: Iterable[list[str | None]],
                   zip64: bool = False) -> None:
    """Writes the workbook into `fileobj` (seekable): `header` in bold on a frozen first row,
    then `rows`, each a list of texts in header order with None for an empty cell. The texts
    must be legal in XML 1.0 (no control characters but tab and LF, no CR): the caller decides
    what becomes of the others (contacts.exports.xlsx_cell strips them). Raises NeedsZip64 when
    the sheet's XML passes 2 GiB and `zip64` is False: ZIP64 only when needed, since Excel is
    strict about ZIP64 records in small files."""
    workbook = (
        _XML + f'<workbook xmlns="{_MAIN_NS}" xmlns:r="{_DOC_REL}"><sheets>'
        f'<sheet name="{attribute_escape(sheet_name)}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    letters = column_letters(len(header))
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as book:
        for part, text in (("[Content_Types].xml", _CONTENT_TYPES), ("_rels/.rels", _PACKAGE_RELS),
                           ("xl/workbook.xml", workbook), ("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS),
                           ("xl/styles.xml", _STYLES)):
            book.writestr(part, text)
        try:
            with book.open(SHEET_PART, "w", force_zip64=zip64) as sheet:
                sheet.write((_SHEET_START + row_xml(1, header, letters, ' s="1"')).encode("utf-8"))
                chunk = []
                for number, cells in enumerate(rows, start=2):
                    chunk.append(row_xml(number, cells, letters))
                    if len(chunk) == ROWS_PER_WRITE:
                        sheet.write("".join(chunk).encode("utf-8"))
                        chunk.clear()
                chunk.append(_SHEET_END)
                sheet.write("".join(chunk).encode("utf-8"))
        except RuntimeError as error:  # zipfile, on closing the entry: "... try using force_zip64"
            if zip64 or "force_zip64" not in str(error):
                raise
            raise NeedsZip64(str(error)) from error


def attribute_escape(text: str) -> str:
    """`text` escaped for an XML attribute value."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
