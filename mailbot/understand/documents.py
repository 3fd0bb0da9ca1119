"""Text and tables out of mail attachments (PDF, Word .docx, Excel .xlsx, CSV, plain text).

Pure: bytes in, text out; never raises on a damaged or unknown file but returns a Swedish problem.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import zipfile
from collections import Counter
from datetime import date, datetime
from itertools import islice
from typing import Any, Literal

from mailbot.understand.types import Attachment

log = logging.getLogger(__name__)

Kind = Literal["pdf", "docx", "xlsx", "text", "csv"]

_TEXT_EXTENSIONS = {"txt", "text"}
_CSV_EXTENSIONS = {"csv", "tsv"}
_CSV_DELIMITERS = (";", ",", "\t", "|")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .doc / .xls / .msg

NO_PDF_TEXT = "PDF-filen innehåller ingen läsbar text"

# Bounds checked before a library opens the file (issue 13): a member list or minutes is far inside them.
MAX_ZIP_ENTRIES = 2000  # files inside one .docx/.xlsx
MAX_ZIP_BYTES = 64 * 1024 * 1024  # their declared uncompressed size, together
MAX_ZIP_RATIO = 100  # uncompressed / compressed, for an entry over 1 MB
MAX_ROWS = 5000  # rows read from one sheet, Word table or CSV file
MAX_COLUMNS = 100
MAX_SHEETS = 20
MAX_PDF_PAGES = 200
MAX_CSV_CHARS = 4 * 1024 * 1024
REFUSED_ZIP = "filen avvisades: den packas upp till orimligt mycket eller har otillåtna filnamn"
_EMPTY = "dokumentet innehåller ingen text"
_DAMAGED = {
    "pdf": "PDF-filen kunde inte läsas (filen verkar skadad)",
    "docx": "Word-filen kunde inte läsas (filen verkar skadad)",
    "xlsx": "Excel-filen kunde inte läsas (filen verkar skadad)",
}
DAMAGED_PROBLEMS = frozenset({*_DAMAGED.values(), "filen kunde inte läsas"})  # the bytes are not the file they claim


def extract_text(attachment: Attachment) -> tuple[str | None, str | None]:
    """The readable text of an attachment and None, or None and a problem in Swedish."""
    kind, problem = _detect(attachment)
    if kind is None:
        return None, problem
    try:
        if kind == "pdf":
            return _pdf_text(attachment.payload)
        if kind == "docx":
            text = _docx_text(attachment.payload)
        elif kind == "xlsx":
            text = "\n".join(
                " | ".join(c for c in row if c) for sheet in _xlsx_sheets(attachment.payload) for row in sheet
            )
        else:
            text = _decode(attachment.payload)
    # python-docx, openpyxl and pypdf raise many unrelated types (KeyError, XML errors, zlib errors,
    # struct errors) on damaged files; a damaged attachment is expected input, so it becomes a problem.
    except MemoryError:
        raise  # over the reader's memory budget: mailbot.reader reports it, never a defect
    except Exception as error:  # noqa: BLE001
        log.info("attachment %r unreadable as %s: %s", attachment.filename, kind, error)
        return None, _DAMAGED.get(kind, "filen kunde inte läsas")
    text = _tidy(text)
    if not text.strip():
        return None, _EMPTY
    return text, None


def read_table_rows(attachment: Attachment) -> list[list[list[str]]] | None:
    """The tables of an attachment (Excel sheets, Word tables, a CSV file), each a list of rows of
    stripped cells; None when the attachment is not tabular or cannot be read.

    Blank rows are kept so that a row's index + 1 is its row number in the source.
    """
    kind, _ = _detect(attachment)
    if kind not in ("xlsx", "docx", "csv"):
        return None
    try:
        if kind == "xlsx":
            tables = _xlsx_sheets(attachment.payload)
        elif kind == "docx":
            tables = _docx_tables(attachment.payload)
        else:
            tables = [_csv_rows(_decode(attachment.payload))]
    except MemoryError:
        raise  # over the reader's memory budget: mailbot.reader reports it, never a defect
    except Exception as error:  # noqa: BLE001  (see extract_text: damaged files raise anything)
        log.info("attachment %r has no readable tables: %s", attachment.filename, error)
        return None
    tables = [table for table in tables if any(any(cell for cell in row) for row in table)]
    return tables or None


def _extension(attachment: Attachment) -> str:
    name = (attachment.filename or "").strip().lower()
    return name.rsplit(".", 1)[1] if "." in name else ""


def _detect(attachment: Attachment) -> tuple[Kind | None, str | None]:
    """The kind of file, by its first bytes before its name: Outlook users rename files and
    mail gateways drop or mangle names, but a PDF always starts with %PDF."""
    payload = attachment.payload
    extension = _extension(attachment)
    if b"%PDF" in payload[:1024]:
        return "pdf", None
    if payload.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                entries = archive.infolist()
        except (zipfile.BadZipFile, ValueError, OSError):
            entries = []
        if not _safe_zip(entries):
            return None, REFUSED_ZIP
        names = [entry.filename for entry in entries]
        if any(n.startswith("word/") for n in names):
            return "docx", None
        if any(n.startswith("xl/") for n in names):
            return "xlsx", None
        if extension in ("docx", "xlsx"):
            return None, _DAMAGED[extension]
        return None, _unreadable(extension)
    if payload.startswith(_OLE2_MAGIC):
        return None, _unreadable(extension or "doc")
    if payload.lstrip().startswith(b"{\\rtf"):
        return None, _unreadable("rtf")
    if extension in ("pdf", "docx", "xlsx"):
        return None, _DAMAGED[extension]
    content_type = attachment.content_type.lower()
    if b"\x00" not in payload[:4096]:
        if extension in _CSV_EXTENSIONS or (
            not extension and content_type in ("text/csv", "text/tab-separated-values")
        ):
            return "csv", None
        if extension in _TEXT_EXTENSIONS or (not extension and content_type == "text/plain"):
            return "text", None
    return None, _unreadable(extension)


def _safe_zip(entries: list[zipfile.ZipInfo]) -> bool:
    """Whether a zip container may be opened: few entries, a sane declared size and ratio, no path escapes."""
    if len(entries) > MAX_ZIP_ENTRIES or sum(entry.file_size for entry in entries) > MAX_ZIP_BYTES:
        return False
    for entry in entries:
        if entry.file_size > 1024 * 1024 and entry.file_size > MAX_ZIP_RATIO * max(entry.compress_size, 1):
            return False
        name = entry.filename.replace("\\", "/")
        if name.startswith("/") or ".." in name.split("/") or (len(name) > 1 and name[1] == ":"):
            return False
    return True


def _unreadable(extension: str) -> str:
    return f"filformatet .{extension} kan inte läsas" if extension else "filformatet kan inte läsas"


def _decode(payload: bytes) -> str:
    """Text files from Windows are often cp1252; UTF-8 is tried first because cp1252 accepts
    almost any byte and would turn UTF-8 å/ä/ö into mojibake."""
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        return payload.decode("cp1252", errors="replace")


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def _pdf_text(payload: bytes) -> tuple[str | None, str | None]:
    """PDFium (pypdfium2) first: it reads a page in C about ten times faster than pypdf, with the same text on
    every PDF of the tests (benchmarks/pdf_text.py). pypdf reads what PDFium cannot open or finds no text in, and
    everything when pypdfium2 is not installed."""
    found = _pdfium_text(payload)
    if found is not None:
        return found
    return _pypdf_text(payload)


def _pdfium_text(payload: bytes) -> tuple[str | None, str | None] | None:
    """The text of at most MAX_PDF_PAGES pages as PDFium reads it; None when pypdf should try instead."""
    try:
        import pypdfium2 as pdfium
        import pypdfium2.raw as pdfium_c
    except ImportError:
        return None
    try:
        document = pdfium.PdfDocument(payload)
    except MemoryError:
        raise  # over the reader's memory budget: mailbot.reader reports it, never a defect
    except pdfium.PdfiumError as error:
        if getattr(error, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            return None, NO_PDF_TEXT  # a user password: no reader opens it (pypdf's decrypt("") fails alike)
        return None  # damaged (pypdf may still read it, or names it damaged)
    except Exception as error:  # noqa: BLE001  (whatever the binding raises, pypdf gets its turn)
        log.info("PDFium could not open the PDF: %s", error)
        return None
    try:
        pieces = []
        for index in range(min(len(document), MAX_PDF_PAGES)):
            page = document[index]
            try:
                textpage = page.get_textpage()
                try:
                    pieces.append(textpage.get_text_range())
                finally:
                    textpage.close()
            finally:
                page.close()
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001
        log.info("PDFium could not read the PDF's text: %s", error)
        return None
    finally:
        document.close()
    # PDFium marks a hyphen that ends a line (a word or "vård- och omsorg" broken over two lines) with U+FFFE (older
    # builds: 0x02) and drops the line break; pypdf keeps both, and so do we.
    text = _tidy("\n".join(pieces).replace("\ufffe", "-\n").replace("\x02", "-\n"))
    if not text.strip():
        return None  # a scan, or a text layer PDFium does not see: pypdf decides
    return text, None


def _pypdf_text(payload: bytes) -> tuple[str | None, str | None]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(payload))
    if reader.is_encrypted:
        # Many PDFs are encrypted only to restrict printing (empty user password); those are readable.
        try:
            if not reader.decrypt(""):
                return None, NO_PDF_TEXT
        except MemoryError:
            raise  # over the reader's memory budget: mailbot.reader reports it, never a defect
        except Exception as error:  # noqa: BLE001  (pypdf raises its own and crypto errors alike)
            log.info("encrypted PDF not decryptable: %s", error)
            return None, NO_PDF_TEXT
    pages = reader.pages
    text = _tidy("\n".join(pages[i].extract_text() or "" for i in range(min(len(pages), MAX_PDF_PAGES))))
    if not text.strip():
        return None, NO_PDF_TEXT
    return text, None


# Word files are read straight from their main part's XML (lxml, as python-docx does it), with python-docx's own
# rules for text: opening the whole package with python-docx (styles, numbering, settings, theme) and asking its
# element classes cell by cell was most of what a mail with a member list cost (60 ms for a 60-row table, 7 ms
# now). python-docx itself reads a file the direct reading cannot (tests/understand/test_documents.py compares
# the two on every Word file of the tests).
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_OFFICE_DOCUMENT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
_RELATIONSHIP = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_RUN_TEXT = {f"{_W}tab": "\t", f"{_W}ptab": "\t", f"{_W}cr": "\n", f"{_W}noBreakHyphen": "-"}


_T, _BR, _TYPE, _P, _TR, _TC, _GRID_BEFORE, _GRID_SPAN, _V_MERGE, _VAL = (
    f"{_W}{name}" for name in ("t", "br", "type", "p", "tr", "tc", "gridBefore", "gridSpan", "vMerge", "val")
)
_RUN_PIECES = frozenset({_T, _BR, *_RUN_TEXT})


@functools.lru_cache(maxsize=2)
def _docx_body(payload: bytes) -> Any:
    """The w:body of the main document part, kept for the next question about the same file (the understanding
    asks one attachment for its text and its tables). Only read, never changed."""
    from lxml import etree

    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        relationships = etree.fromstring(archive.read("_rels/.rels"), parser)
        (target,) = [
            item.get("Target") for item in relationships.iter(_RELATIONSHIP) if item.get("Type") == _OFFICE_DOCUMENT
        ]
        root = etree.fromstring(archive.read(target.lstrip("/")), parser)
    body = root.find(f"{_W}body")
    if root.tag != f"{_W}document" or body is None:
        raise ValueError("the main part of the Word file is not a document")
    return body


@functools.lru_cache(maxsize=2)
def _docx_document(payload: bytes) -> Any:
    """The Word file opened by python-docx: for a file the direct reading (_docx_body) cannot read."""
    from docx import Document

    return Document(io.BytesIO(payload))


def forget_opened_documents() -> None:
    """Let go of the documents kept open for the mail being read (the understanding calls it after each mail)."""
    _docx_body.cache_clear()
    _docx_document.cache_clear()


def _docx_text(payload: bytes) -> str:
    """Paragraphs and table rows in document order, so a table under "Närvarande" stays there."""
    try:
        body = _docx_body(payload)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001  (python-docx decides: it reads it, or its error names the damage)
        return _docx_text_by_python_docx(payload)
    lines: list[str] = []
    for block in body.iterchildren(f"{_W}p", f"{_W}tbl"):
        if block.tag == f"{_W}tbl":
            lines.extend(_table_line(row) for row in _tbl_rows(block))
        else:
            lines.append(_paragraph_text(block))
    return "\n".join(lines)


def _docx_tables(payload: bytes) -> list[list[list[str]]]:
    try:
        body = _docx_body(payload)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001  (as _docx_text)
        return [_table_rows(table) for table in _docx_document(payload).tables]
    return [_tbl_rows(table) for table in body.iterchildren(f"{_W}tbl")]


def _table_line(row: list[str]) -> str:
    # Merged cells repeat (as in python-docx); drop the repeats for readable text.
    return " | ".join(c for i, c in enumerate(row) if c and (i == 0 or c != row[i - 1]))


def _run_text(run: Any) -> str:
    """python-docx's Run.text: w:t, tabs, line breaks (not page or column breaks), non-breaking hyphens."""
    pieces = []
    for element in run:
        tag = element.tag
        if tag == f"{_W}t":
            pieces.append(element.text or "")
        elif tag == f"{_W}br":
            if element.get(f"{_W}type", "textWrapping") == "textWrapping":
                pieces.append("\n")
        elif tag in _RUN_TEXT:
            pieces.append(_RUN_TEXT[tag])
    return "".join(pieces)


def _paragraph_text(paragraph: Any) -> str:
    """python-docx's Paragraph.text: its runs and the runs of its hyperlinks."""
    pieces = []
    for child in paragraph.iterchildren(f"{_W}r", f"{_W}hyperlink"):
        if child.tag == f"{_W}r":
            pieces.append(_run_text(child))
        else:
            pieces.extend(_run_text(run) for run in child.iterchildren(f"{_W}r"))
    return "".join(pieces)


def _int_value(parent: Any, path: str, default: int) -> int:
    element = parent.find(path) if parent is not None else None
    return default if element is None else int(element.get(f"{_W}val"))


_TABLE_PIECES = ("t", "br", "tab", "ptab", "cr", "noBreakHyphen")


@functools.cache
def _table_nodes() -> Any:
    """One XPath for everything _tbl_rows_walked visits in a table, in document order: its rows (the first
    MAX_ROWS), each row's gridBefore, its cells, each cell's gridSpan and vMerge, the cell's paragraphs, and the
    text pieces of their runs (direct ones and a hyperlink's). lxml finds them in C; the walk asked each element
    for its children in Python, one call at a time."""
    from lxml import etree

    row = "w:tr[position() <= $rows]"
    cell = f"{row}/w:tc"
    paragraph = f"{cell}/w:p"
    pieces = "*[" + " or ".join(f"self::w:{name}" for name in _TABLE_PIECES) + "]"
    paths = [
        row, f"{row}/w:trPr[1]/w:gridBefore[1]", cell, f"{cell}/w:tcPr[1]/w:gridSpan[1]",
        f"{cell}/w:tcPr[1]/w:vMerge[1]", paragraph, f"{paragraph}/w:r/{pieces}", f"{paragraph}/w:hyperlink/w:r/{pieces}",
    ]  # fmt: skip
    return etree.XPath(" | ".join(paths), namespaces={"w": _W[1:-1]})


class _OutOfOrder(Exception):
    """A row's gridBefore after one of its cells (not what Word writes): _tbl_rows_walked reads that table."""


def _tbl_rows(table: Any) -> list[list[str]]:
    """python-docx's rows and cells of a table, text only: a cell spanning columns repeats (columns line up
    with the header row), a cell continuing a vertical merge is the one above it at the same grid offset.
    The same rows as _tbl_rows_walked (tests/understand/test_documents.py), from one pass over _table_nodes."""
    try:
        return _tbl_rows_listed(table)
    except _OutOfOrder:
        return _tbl_rows_walked(table)


def _tbl_rows_listed(table: Any) -> list[list[str]]:
    rows: list[list[str]] = []
    above: dict[int, str] = {}  # grid offset -> text, of the row before
    here: dict[int, str] = {}
    cells: list[str] | None = None  # of the row being read
    offset = 0
    paragraphs: list[list[str]] | None = None  # of the cell being read
    span, merge = 1, None

    def end_cell() -> None:
        nonlocal paragraphs, offset
        assert cells is not None and paragraphs is not None
        if merge is not None and merge.get(_VAL, "continue") == "continue":
            text = above[offset]  # python-docx fails alike when no cell is above
        else:
            text = "\n".join(["".join(pieces) for pieces in paragraphs])
        here[offset] = text
        cells.extend([text] * span)
        offset += span
        paragraphs = None

    def end_row() -> None:
        nonlocal above, here, cells
        if paragraphs is not None:
            end_cell()
        assert cells is not None
        above, here = here, {}
        rows.append([" ".join(text.split()) for text in cells[:MAX_COLUMNS]])
        cells = None

    for node in _table_nodes()(table, rows=MAX_ROWS):
        tag = node.tag
        if tag in _RUN_PIECES:  # after its paragraph, in document order
            if not paragraphs:
                raise _OutOfOrder
            if tag == _T:
                paragraphs[-1].append(node.text or "")
            elif tag != _BR:
                paragraphs[-1].append(_RUN_TEXT[tag])
            elif node.get(_TYPE, "textWrapping") == "textWrapping":
                paragraphs[-1].append("\n")
        elif tag == _P:
            if paragraphs is None:
                raise _OutOfOrder
            paragraphs.append([])
        elif tag == _TC:
            if paragraphs is not None:
                end_cell()
            if cells is None:
                raise _OutOfOrder
            paragraphs, span, merge = [], 1, None
        elif tag == _GRID_SPAN:
            span = int(node.get(_VAL))
        elif tag == _V_MERGE:
            merge = node
        elif tag == _TR:
            if cells is not None:
                end_row()
            cells, offset = [], 0
        elif tag == _GRID_BEFORE:
            if cells is None or cells or paragraphs is not None:
                raise _OutOfOrder
            offset = int(node.get(_VAL))
    if cells is not None:
        end_row()
    return rows


def _tbl_rows_walked(table: Any) -> list[list[str]]:
    """_tbl_rows by walking the elements (for a table whose elements are not in the order Word writes them)."""
    rows: list[list[str]] = []
    above: dict[int, str] = {}  # grid offset -> text, of the row before
    for index, row in enumerate(table.iterchildren(f"{_W}tr")):
        if index >= MAX_ROWS:
            break
        offset = _int_value(row.find(f"{_W}trPr"), f"{_W}gridBefore", 0)
        cells: list[str] = []
        here: dict[int, str] = {}
        for cell in row.iterchildren(f"{_W}tc"):
            properties = cell.find(f"{_W}tcPr")
            span = _int_value(properties, f"{_W}gridSpan", 1)
            merge = properties.find(f"{_W}vMerge") if properties is not None else None
            if merge is not None and merge.get(f"{_W}val", "continue") == "continue":
                text = above[offset]  # python-docx fails alike when no cell is above
            else:
                text = "\n".join(_paragraph_text(p) for p in cell.iterchildren(f"{_W}p"))
            here[offset] = text
            cells.extend([text] * span)
            offset += span
        above = here
        rows.append([" ".join(text.split()) for text in cells[:MAX_COLUMNS]])
    return rows


def _docx_text_by_python_docx(payload: bytes) -> str:
    from docx.table import Table

    lines: list[str] = []
    for block in _docx_document(payload).iter_inner_content():
        if isinstance(block, Table):
            lines.extend(_table_line(row) for row in _table_rows(block))
        else:
            lines.append(block.text)
    return "\n".join(lines)


def _table_rows(table: object) -> list[list[str]]:
    # Repeated merged cells are kept here so that columns line up with the header row.
    rows = []
    for index, row in enumerate(table.rows):  # type: ignore[attr-defined]
        if index >= MAX_ROWS:
            break
        rows.append([" ".join(cell.text.split()) for cell in row.cells[:MAX_COLUMNS]])
    return rows


def _xlsx_sheets(payload: bytes) -> list[list[list[str]]]:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(payload), read_only=True, data_only=True)
    try:
        sheets = []
        for sheet in workbook.worksheets[:MAX_SHEETS]:
            # Whatever the sheet declares (a million rows), at most MAX_ROWS x MAX_COLUMNS cells are read.
            cells = sheet.iter_rows(min_row=1, max_row=MAX_ROWS, max_col=MAX_COLUMNS, values_only=True)
            rows = [_trim([_cell_text(value) for value in row]) for row in cells]
            while rows and not rows[-1]:
                rows.pop()
            sheets.append(rows)
        return sheets
    finally:
        workbook.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    return " ".join(str(value).split())


def _trim(row: list[str]) -> list[str]:
    while row and not row[-1]:
        row.pop()
    return row


def _csv_rows(text: str) -> list[list[str]]:
    text = text[:MAX_CSV_CHARS]
    delimiter = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)  # a field over csv.field_size_limit() raises
    return [_trim([" ".join(cell[:1000].split()) for cell in row[:MAX_COLUMNS]]) for row in islice(reader, MAX_ROWS)]


def _sniff_delimiter(text: str) -> str:
    """The delimiter that splits most lines into the same number (> 1) of fields.

    csv.Sniffer guesses wrong on short Swedish files where names contain commas, so we count.
    """
    sample = [line[:10_000] for line in islice((line for line in text.splitlines() if line.strip()), 30)]
    best, best_score = ";", (0, 0)
    for delimiter in _CSV_DELIMITERS:
        counts = [len(row) for row in csv.reader(sample, delimiter=delimiter)]
        widths = Counter(n for n in counts if n > 1)
        if not widths:
            continue
        width, lines = widths.most_common(1)[0]
        if (lines, width) > best_score:
            best, best_score = delimiter, (lines, width)
    return best
