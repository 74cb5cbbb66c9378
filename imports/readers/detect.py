"""Which reader a file needs: its extension, checked against its first bytes.

Users rename files, and Excel "exports" come in every shape: a `.csv` that is really a
workbook is refused with a message that says what to do; an `.xls` that is really an
`.xlsx` (or an `.ods`) is read as what it is.
"""

from __future__ import annotations

import codecs
import re

from imports.readers.base import ReaderError

FORMATS = ("csv", "tsv", "xlsx", "xls", "ods", "vcf")
EXTENSIONS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".xlsx": "xlsx",
    ".xls": "xls",
    ".ods": "ods",
    ".vcf": "vcf",
    ".vcard": "vcf",
}
# Enough for every check below; pass more if you have it (read_delimited reads 64 KB).
HEAD_BYTES_NEEDED = 4096

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# An ODS file stores an uncompressed member named 'mimetype' first, so its type shows at
# a fixed place in the first bytes.
_ODS_MIMETYPE = b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet"
_BEGIN_VCARD = re.compile(r"^\s*BEGIN\s*:\s*VCARD", re.IGNORECASE | re.MULTILINE)
_TEXT_NAMES = {".csv": "a CSV file", ".txt": "a text file", ".tsv": "a TSV file"}


def detect_format(file_name: str, head: bytes) -> str:
    """Return 'csv', 'tsv', 'xlsx', 'xls', 'ods' or 'vcf' for a file and its first bytes.

    `head` is the beginning of the file (at least HEAD_BYTES_NEEDED bytes, or the whole
    file if shorter). Both 'csv' and 'tsv' go to `read_delimited`, which detects the
    delimiter either way. Raises ReaderError for an empty file, an unknown extension,
    and content that contradicts the extension. Cheap: looks at the head only.
    """
    if not head:
        raise ReaderError("the file is empty")
    base_name = re.split(r"[\\/]", file_name)[-1]
    extension = _extension(base_name)
    declared = EXTENSIONS.get(extension)
    if declared is None:
        problem = f"'{extension}' files are not supported" if extension else "it has no extension"
        raise ReaderError(
            f"'{base_name}' cannot be imported: {problem}; upload one of {', '.join(EXTENSIONS)} (in any case)"
        )
    container = _container(head)
    if declared in ("xlsx", "xls", "ods"):
        return _check_workbook(base_name, extension, container)
    if declared == "vcf":
        return _check_vcard(base_name, head, container)
    return _check_text(base_name, extension, declared, head, container)


def _extension(base_name: str) -> str:
    dot = base_name.rfind(".")
    return base_name[dot:].lower() if dot >= 0 else ""


def _container(head: bytes) -> str | None:
    if head.startswith(_ZIP_MAGIC):
        return "ods" if head[30 : 30 + len(_ODS_MIMETYPE)] == _ODS_MIMETYPE else "zip"
    if head.startswith(_OLE2_MAGIC):
        return "ole2"
    return None


def _check_workbook(base_name: str, extension: str, container: str | None) -> str:
    if container == "ods":
        return "ods"
    if container == "zip":
        # An .xls or .ods renamed from .xlsx: read what it is.
        return "xlsx"
    if container == "ole2":
        # A real .xls, or one renamed to .xlsx/.ods. (A password-protected .xlsx is also
        # an OLE2 file; the spreadsheet reader says so when it fails.)
        return "xls"
    kind = {".xlsx": "an Excel workbook", ".xls": "an Excel workbook", ".ods": "an ODS spreadsheet"}
    raise ReaderError(
        f"'{base_name}' is not {kind[extension]}: its content is neither XLSX, XLS nor ODS "
        "(a CSV or web page renamed?); open it in your spreadsheet app and save it as "
        ".xlsx or CSV"
    )


def _check_vcard(base_name: str, head: bytes, container: str | None) -> str:
    if container is not None:
        raise ReaderError(_describe_binary(base_name, container, "a vCard file", "vCard (.vcf)"))
    if not _BEGIN_VCARD.search(_decode_vcard_head(head)):
        raise ReaderError(
            f"'{base_name}' is not a vCard file: it does not contain BEGIN:VCARD; export the "
            "contacts as vCard (.vcf) again"
        )
    return "vcf"


def _decode_vcard_head(head: bytes) -> str:
    """Return the head as text: by BOM, else UTF-16 spotted by its NULs, else latin-1.

    A vCard starts with 'BEGIN' (ASCII), so UTF-16 without a BOM shows as '\\x00B'
    (big-endian) or 'B\\x00' (little-endian); latin-1 is enough to find ASCII markers.
    """
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return head.decode(encoding, errors="replace")
    if len(head) >= 2 and head[0] == 0 and head[1] != 0:
        return head.decode("utf-16-be", errors="replace")
    if len(head) >= 2 and head[0] != 0 and head[1] == 0:
        return head.decode("utf-16-le", errors="replace")
    return head.decode("latin-1")


def _check_text(base_name: str, extension: str, declared: str, head: bytes, container: str | None) -> str:
    if container is not None:
        raise ReaderError(_describe_binary(base_name, container, _TEXT_NAMES[extension], "CSV"))
    # A vCard export saved as .txt (or renamed .csv) would read as one column of junk.
    if _BEGIN_VCARD.match(_decode_vcard_head(head[:HEAD_BYTES_NEEDED])):
        return "vcf"
    return declared


def _describe_binary(base_name: str, container: str, not_what: str, save_as: str) -> str:
    what, upload_as = {
        "zip": ("a ZIP archive (an Excel workbook?)", ".xlsx"),
        "ods": ("an ODS spreadsheet", ".ods"),
        "ole2": ("an old Excel (.xls) workbook", ".xls"),
    }[container]
    return f"'{base_name}' is {what}, not {not_what}: save it as {save_as} or upload it as {upload_as}"
