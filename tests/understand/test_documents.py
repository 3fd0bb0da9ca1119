"""Text and tables out of real PDF, Word, Excel and CSV files built here with the libraries that read them.

No fixtures on disk: each test makes the file it needs, so a reader sees exactly what is inside.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from docx import Document
from fpdf import FPDF
from openpyxl import Workbook

from mailbot.understand.documents import NO_PDF_TEXT, extract_text, read_table_rows
from mailbot.understand.types import Attachment

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

MINUTES_LINES = [
    "Minnesanteckningar SKIS 2025-03-14",
    "Närvarande:",
    "Anna Svensson, Skövde",
    "Åsa Öberg, Götene",
    "§ 1 Mötets öppnande",
]


def pdf_bytes(lines: list[str], owner_password: str | None = None, user_password: str = "") -> bytes:
    pdf = FPDF()
    if owner_password:
        pdf.set_encryption(owner_password=owner_password, user_password=user_password)
    pdf.add_page()
    if FONT.exists():
        pdf.add_font("DejaVu", fname=str(FONT))
        pdf.set_font("DejaVu", size=11)
    else:
        # Helvetica's latin-1 encoding still has å/ä/ö.
        pdf.set_font("Helvetica", size=11)
    for line in lines:
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def image_only_pdf_bytes() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    # A scanned page: graphics and no text layer.
    pdf.rect(20, 20, 120, 80, style="F")
    return bytes(pdf.output())


def docx_bytes(paragraphs: list[str], table: list[list[str]] | None = None, after: list[str] = ()) -> bytes:
    document = Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        word_table = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                word_table.cell(r, c).text = value
    for text in after:
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def xlsx_bytes(sheets: dict[str, list[list[object]]]) -> bytes:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    sheet.cell(r, c, value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def attachment(filename: str | None, payload: bytes, content_type: str = "application/octet-stream") -> Attachment:
    return Attachment(filename=filename, content_type=content_type, payload=payload)


# --- PDF ---------------------------------------------------------------------------------------


def test_pdf_minutes_text_keeps_swedish_letters():
    text, problem = extract_text(attachment("Protokoll SKIS.pdf", pdf_bytes(MINUTES_LINES), "application/pdf"))

    assert problem is None
    assert "Minnesanteckningar SKIS 2025-03-14" in text
    assert "Åsa Öberg, Götene" in text
    assert "Anna Svensson, Skövde" in text


def test_pdf_is_recognised_by_its_first_bytes_whatever_its_name():
    text, problem = extract_text(attachment("protokoll_140325", pdf_bytes(MINUTES_LINES)))

    assert problem is None
    assert "Närvarande:" in text


def test_image_only_pdf_has_no_readable_text():
    assert extract_text(attachment("skannat.pdf", image_only_pdf_bytes())) == (None, NO_PDF_TEXT)


def test_pdf_locked_with_a_password_has_no_readable_text():
    payload = pdf_bytes(MINUTES_LINES, owner_password="ägare", user_password="hemligt")

    assert extract_text(attachment("protokoll.pdf", payload)) == (None, NO_PDF_TEXT)


def test_pdf_encrypted_only_against_printing_is_still_read():
    payload = pdf_bytes(MINUTES_LINES, owner_password="ägare")

    text, problem = extract_text(attachment("protokoll.pdf", payload))

    assert problem is None
    assert "Närvarande:" in text


@pytest.mark.parametrize(
    "payload",
    [
        b"%PDF-1.7\n" + bytes(range(256)) * 8,
        pdf_bytes(MINUTES_LINES)[:400],  # cut off in transit
    ],
    ids=["garbage-after-header", "truncated"],
)
def test_corrupted_pdf_gives_a_problem_instead_of_raising(payload):
    text, problem = extract_text(attachment("protokoll.pdf", payload))

    assert text is None
    assert problem.startswith("PDF-filen")


def test_file_named_pdf_without_pdf_content_is_reported_damaged():
    text, problem = extract_text(attachment("protokoll.pdf", b"<html>Sidan kunde inte hittas</html>"))

    assert text is None
    assert "skadad" in problem


# --- unreadable formats ------------------------------------------------------------------------


def test_old_word_doc_is_reported_as_unreadable_format():
    payload = b"\x13\x37garbage \xff\xfe bytes of an old Word file" * 20

    assert extract_text(attachment("Protokoll 14 mars.doc", payload)) == (None, "filformatet .doc kan inte läsas")


def test_ole2_file_without_a_name_is_reported_as_doc():
    payload = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600

    assert extract_text(attachment(None, payload)) == (None, "filformatet .doc kan inte läsas")


def test_rtf_is_reported_as_unreadable_format():
    payload = rb"{\rtf1\ansi N\'e4rvarande: Anna Svensson}"

    assert extract_text(attachment("protokoll.rtf", payload)) == (None, "filformatet .rtf kan inte läsas")


def test_unknown_binary_without_name_is_unreadable():
    assert extract_text(attachment(None, b"\x00\x01\x02\x03" * 10)) == (None, "filformatet kan inte läsas")


# --- Word --------------------------------------------------------------------------------------


def test_docx_text_holds_paragraphs_and_table_rows_in_document_order():
    payload = docx_bytes(
        ["Protokoll Vux-nätverket 2025-03-14", "Närvarande"],
        [["Namn", "Kommun"], ["Anna Svensson", "Skövde"], ["Åsa Öberg", "Götene"]],
        after=["§ 1 Mötets öppnande"],
    )

    text, problem = extract_text(attachment("protokoll.docx", payload))

    assert problem is None
    assert text.splitlines() == [
        "Protokoll Vux-nätverket 2025-03-14",
        "Närvarande",
        "Namn | Kommun",
        "Anna Svensson | Skövde",
        "Åsa Öberg | Götene",
        "§ 1 Mötets öppnande",
    ]


def test_docx_is_recognised_by_its_zip_content_without_a_name():
    payload = docx_bytes(["Minnesanteckningar elevhälsa"])

    assert extract_text(attachment(None, payload)) == ("Minnesanteckningar elevhälsa", None)


def test_damaged_docx_gives_a_problem():
    payload = docx_bytes(["Protokoll"])[:300]

    text, problem = extract_text(attachment("protokoll.docx", payload))

    assert text is None
    assert problem.startswith("Word-filen")


def test_empty_docx_says_there_is_no_text():
    assert extract_text(attachment("tomt.docx", docx_bytes([]))) == (None, "dokumentet innehåller ingen text")


# --- plain text and Excel ----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_text_file_is_decoded_in_utf8_or_windows_1252(encoding):
    payload = "Närvarande: Åsa Öberg, Götene\r\nFrånvarande: Per Ek, Hjo\r\n".encode(encoding)

    text, problem = extract_text(attachment("anteckningar.txt", payload, "text/plain"))

    assert problem is None
    assert text == "Närvarande: Åsa Öberg, Götene\nFrånvarande: Per Ek, Hjo"


def test_xlsx_text_joins_cells_with_bars():
    payload = xlsx_bytes({"Blad1": [["Namn", "E-post"], ["Åsa Öberg", "asa.oberg@gotene.se"]]})

    text, problem = extract_text(attachment("medlemmar.xlsx", payload))

    assert problem is None
    assert text == "Namn | E-post\nÅsa Öberg | asa.oberg@gotene.se"


# --- tables ------------------------------------------------------------------------------------


def test_xlsx_tables_keep_blank_rows_so_row_numbers_match_the_sheet():
    payload = xlsx_bytes(
        {
            "Medlemmar": [["Medlemmar SKIS 2025"], [], ["Namn", "Telefon"], ["Åsa Öberg", 501123456]],
            "Tomt": [],
        }
    )

    tables = read_table_rows(attachment("medlemmar.xlsx", payload))

    assert tables == [[["Medlemmar SKIS 2025"], [], ["Namn", "Telefon"], ["Åsa Öberg", "501123456"]]]


def test_csv_in_windows_1252_with_semicolons_is_split_into_cells():
    payload = "Namn;E-post;Kommun\r\nÅsa Öberg;asa.oberg@gotene.se;Götene\r\n".encode("cp1252")

    tables = read_table_rows(attachment("medlemmar.csv", payload, "text/csv"))

    assert tables == [[["Namn", "E-post", "Kommun"], ["Åsa Öberg", "asa.oberg@gotene.se", "Götene"]]]


def test_csv_in_utf8_with_bom_and_commas_is_split_into_cells():
    payload = 'Namn,E-post,Roll\n"Öberg, Åsa",asa.oberg@gotene.se,"Rektor, ordförande"\n'.encode("utf-8-sig")

    tables = read_table_rows(attachment("medlemmar.csv", payload))

    assert tables == [[["Namn", "E-post", "Roll"], ["Öberg, Åsa", "asa.oberg@gotene.se", "Rektor, ordförande"]]]


@pytest.mark.parametrize("delimiter", ["\t", "|"])
def test_csv_delimiter_is_sniffed(delimiter):
    payload = delimiter.join(["Namn", "E-post"]).encode() + b"\n" + delimiter.join(["Per Ek", "per.ek@hjo.se"]).encode()

    assert read_table_rows(attachment("lista.csv", payload)) == [[["Namn", "E-post"], ["Per Ek", "per.ek@hjo.se"]]]


def test_docx_tables_are_read_as_rows_of_cells():
    payload = docx_bytes(["Förteckning"], [["Namn", "E-post"], ["Per Ek", "per.ek@hjo.se"]])

    assert read_table_rows(attachment("lista.docx", payload)) == [[["Namn", "E-post"], ["Per Ek", "per.ek@hjo.se"]]]


@pytest.mark.parametrize(
    "filename, payload",
    [
        ("protokoll.pdf", pdf_bytes(MINUTES_LINES)),
        ("lista.txt", b"Per Ek, per.ek@hjo.se"),
        ("brev.docx", docx_bytes(["Bara text, ingen tabell"])),
        ("lista.doc", b"garbage"),
        ("lista.xlsx", b"PK\x03\x04 not really a zip"),
    ],
)
def test_files_without_tables_have_no_table_rows(filename, payload):
    assert read_table_rows(attachment(filename, payload)) is None


# --- PDFium first, pypdf behind it (issue 14) ----------------------------------------------------

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "corpus"


def test_pdfium_and_pypdf_read_the_same_minutes_text():
    from mailbot.understand.documents import _pdfium_text, _pypdf_text

    payload = pdf_bytes(MINUTES_LINES)
    assert _pdfium_text(payload) == _pypdf_text(payload) == ("\n".join(MINUTES_LINES), None)


def test_a_hyphen_ending_a_line_is_kept_with_its_line_break():
    """PDFium marks it U+FFFE and drops the break; the text must read as pypdf reads it ("vård-" / "och omsorg")."""
    from mailbot.understand.decode import parse_mail

    mail = parse_mail((CORPUS / "blind" / "b2" / "b2_019_delrapport-vux.eml").read_bytes())
    (pdf,) = [a for a in mail.attachments if a.filename.endswith(".pdf")]
    text, problem = extract_text(pdf)

    assert problem is None
    assert "kursplanering för vård-\noch omsorg" in text
    assert "\ufffe" not in text


def test_pdf_text_without_pypdfium2_installed_is_read_by_pypdf(monkeypatch):
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # import pypdfium2 raises ImportError

    text, problem = extract_text(attachment("protokoll.pdf", pdf_bytes(MINUTES_LINES)))

    assert problem is None
    assert text == "\n".join(MINUTES_LINES)


def test_a_pdf_pdfium_cannot_open_is_read_by_pypdf(monkeypatch):
    import pypdfium2

    def refuse(*args, **kwargs):
        raise pypdfium2.PdfiumError("Failed to load document (PDFium: Data format error).", err_code=3)

    monkeypatch.setattr(pypdfium2, "PdfDocument", refuse)
    text, problem = extract_text(attachment("protokoll.pdf", pdf_bytes(MINUTES_LINES)))

    assert problem is None
    assert "Närvarande:" in text


def test_pdf_pages_past_the_cap_are_not_read(monkeypatch):
    import mailbot.understand.documents as documents

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for number in range(1, 6):
        pdf.add_page()
        pdf.cell(0, 8, f"Sida {number}")
    monkeypatch.setattr(documents, "MAX_PDF_PAGES", 3)

    text, problem = extract_text(attachment("protokoll.pdf", bytes(pdf.output())))

    assert problem is None
    assert text.split() == ["Sida", "1", "Sida", "2", "Sida", "3"]


# --- Word files read straight from their XML, as python-docx reads them (issue 14: cheaper per mail) ----------


def _tricky_docx() -> bytes:
    """What the direct reading must get exactly as python-docx does: merged cells both ways, a hyperlink, tabs,
    line and page breaks, a non-breaking hyphen, a nested table, a row starting after the first grid column."""
    from docx.enum.text import WD_BREAK
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document = Document()
    paragraph = document.add_paragraph("Närvarande:")
    run = paragraph.add_run(" Skövde")
    run.add_tab()
    run.add_text("Hjo")
    run.add_break()
    run.add_text("Tibro")
    run.add_break(WD_BREAK.PAGE)
    run._r.append(OxmlElement("w:noBreakHyphen"))
    run.add_text("slut")
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), "rId99")
    inner = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "utbildningskaraborg.se"
    inner.append(text)
    link.append(inner)
    paragraph._p.append(link)
    table = document.add_table(rows=4, cols=3)
    for row, values in enumerate([("Namn", "Roll", "Kommun"), ("Anna Berg", "Ordförande", "Skövde"),
                                  ("Bo Ek", "Ledamot", "Hjo"), ("Cia Lund", "Ledamot", "Tibro")]):  # fmt: skip
        for column, value in enumerate(values):
            table.cell(row, column).text = value
    table.cell(0, 1).merge(table.cell(0, 2))  # horizontal: gridSpan
    table.cell(2, 2).merge(table.cell(3, 2))  # vertical: vMerge
    table.cell(1, 0).add_paragraph("andra stycket")
    table.cell(1, 1).add_table(rows=1, cols=1).cell(0, 0).text = "inne i cellen"
    late = table.add_row()._tr
    properties = OxmlElement("w:trPr")
    before = OxmlElement("w:gridBefore")
    before.set(qn("w:val"), "1")
    properties.append(before)
    late.insert(0, properties)
    late.remove(late.findall(qn("w:tc"))[0])
    document.add_paragraph("Efter tabellen")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _word_files_of_the_tests() -> list[tuple[str, bytes]]:
    from mailbot.understand.decode import parse_mail

    found = [("tricky", _tricky_docx())]
    tests = Path(__file__).resolve().parent.parent
    for path in sorted(tests.rglob("*.eml")):
        for attachment in parse_mail(path.read_bytes()).attachments:
            if attachment.payload[:2] == b"PK" and (attachment.filename or "").lower().endswith(".docx"):
                found.append((f"{path.relative_to(tests)} {attachment.filename}", attachment.payload))
    return found


def test_word_files_are_read_directly_exactly_as_python_docx_reads_them():
    from mailbot.understand import documents

    files = _word_files_of_the_tests()
    assert len(files) >= 5, [name for name, _ in files]
    for name, payload in files:
        documents.forget_opened_documents()
        text, tables = documents._docx_text(payload), documents._docx_tables(payload)
        expected_tables = [documents._table_rows(t) for t in documents._docx_document(payload).tables]
        assert text == documents._docx_text_by_python_docx(payload), name
        assert tables == expected_tables, name
    documents.forget_opened_documents()
    tricky = documents._docx_text(files[0][1])
    assert "Skövde\tHjo\nTibro-slututbildningskaraborg.se" in tricky
    assert documents._docx_tables(files[0][1])[0][:3] == [
        ["Namn", "Roll Kommun", "Roll Kommun"], ["Anna Berg andra stycket", "Ordförande", "Skövde"], ["Bo Ek", "Ledamot", "Hjo Tibro"]
    ]
    assert documents._docx_tables(files[0][1])[0][3][2] == "Hjo Tibro"  # continues the vertical merge
    assert documents._docx_tables(files[0][1])[0][4] == ["", ""]  # the row that starts in the second column


def test_a_word_table_read_in_one_xpath_pass_is_read_as_by_walking_it():
    """documents._tbl_rows takes every element it needs in one XPath (in document order) instead of walking the
    table: the same rows for every table of every Word file of the tests, and the walk for a table whose row
    properties come after its cells (not Word's order, so not the one-pass reading's)."""
    from lxml import etree

    from mailbot.understand import documents

    tables = 0
    for name, payload in _word_files_of_the_tests():
        documents.forget_opened_documents()
        for table in documents._docx_body(payload).iter(f"{documents._W}tbl"):  # nested tables too
            assert documents._tbl_rows_listed(table) == documents._tbl_rows_walked(table), name
            tables += 1
    assert tables >= 6
    w = documents._W[1:-1]
    table = etree.fromstring(
        f'<w:tbl xmlns:w="{w}"><w:tr><w:tc><w:p><w:r><w:t>Anna</w:t></w:r></w:p></w:tc>'
        '<w:trPr><w:gridBefore w:val="1"/></w:trPr></w:tr>'
        '<w:tr><w:tc><w:p><w:r><w:t>Bo</w:t></w:r></w:p></w:tc><w:tc><w:tcPr><w:vMerge/></w:tcPr><w:p/></w:tc></w:tr>'
        "</w:tbl>"
    )
    with pytest.raises(documents._OutOfOrder):
        documents._tbl_rows_listed(table)
    assert documents._tbl_rows(table) == documents._tbl_rows_walked(table) == [["Anna"], ["Bo", "Anna"]]


def test_a_word_file_the_direct_reading_cannot_open_is_left_to_python_docx(monkeypatch):
    from mailbot.understand import documents

    payload = _tricky_docx()
    documents.forget_opened_documents()
    monkeypatch.setattr(documents, "_OFFICE_DOCUMENT", "no such relationship")
    assert "Efter tabellen" in documents._docx_text(payload)
    assert documents._docx_tables(payload)[0][0] == ["Namn", "Roll Kommun", "Roll Kommun"]
    documents.forget_opened_documents()
