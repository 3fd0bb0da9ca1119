"""Issue 13: readers are bounded before a library opens a file or a pattern meets a line.

Outcomes only (speed is measured by benchmarks/hostile.py, never asserted here).
"""

from __future__ import annotations

import io
import zipfile

from mailbot.understand.documents import MAX_ROWS, REFUSED_ZIP, extract_text, read_table_rows
from mailbot.understand.members import _ADDRESS, parse_member_lines
from mailbot.understand.types import Attachment


def zip_payload(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_a_zip_bomb_posing_as_xlsx_is_refused_before_openpyxl_opens_it() -> None:
    bomb = zip_payload({"[Content_Types].xml": b"<Types/>", "xl/worksheets/sheet1.xml": b"\0" * (50 * 1024 * 1024)})
    assert len(bomb) < 200_000
    attachment = Attachment("medlemmar.xlsx", XLSX, bomb)
    assert extract_text(attachment) == (None, REFUSED_ZIP)
    assert read_table_rows(attachment) is None


def test_a_zip_slip_name_in_a_docx_is_refused() -> None:
    payload = zip_payload({"word/document.xml": b"<w:document/>", "../../../tmp/evil.txt": b"x"})
    assert extract_text(Attachment("lista.docx", "application/octet-stream", payload)) == (None, REFUSED_ZIP)


def test_too_many_entries_are_refused() -> None:
    payload = zip_payload({f"xl/{i}.xml": b"" for i in range(2500)}, zipfile.ZIP_STORED)
    assert extract_text(Attachment("a.xlsx", XLSX, payload)) == (None, REFUSED_ZIP)


def test_a_spreadsheet_declaring_a_million_rows_is_read_to_the_row_cap() -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    for row in range(1, MAX_ROWS + 50):
        sheet.cell(row=row, column=1, value=f"Person {row}")
    sheet.cell(row=1_000_000, column=1, value="last")  # the declared dimension says a million rows
    buffer = io.BytesIO()
    workbook.save(buffer)
    (table,) = read_table_rows(Attachment("lista.xlsx", XLSX, buffer.getvalue())) or [[]]
    assert len(table) == MAX_ROWS


def test_a_csv_with_a_huge_field_is_a_problem_not_a_crash() -> None:
    attachment = Attachment("lista.csv", "text/csv", b'Namn;E-post\n"' + b"a" * 300_000 + b'";x@hjo.se\n')
    assert read_table_rows(attachment) is None or all(
        len(c) <= 1000 for t in read_table_rows(attachment) or [] for r in t for c in r
    )


def test_the_address_pattern_finds_what_it_found_before() -> None:
    assert _ADDRESS.findall("Per Ek <per.ek@hjo.se>") == ["per.ek@hjo.se"]
    assert _ADDRESS.findall("anna@skovde.se, bo@hjo.se") == ["anna@skovde.se", "bo@hjo.se"]
    assert _ADDRESS.search("lisa.berg (at) hjo.se") is not None
    assert _ADDRESS.search("mailto:anna@skovde.se").group(0) == "mailto:anna@skovde.se"
    assert _ADDRESS.search("a" * 100_000) is None


def test_garbage_lines_give_no_member_list(municipalities) -> None:  # type: ignore[no-untyped-def]
    garbage = "\n".join(["a" * 400_000, "a" + " " * 400_000 + "!", "ab-" * 100_000, "1" * 400_000])
    assert parse_member_lines(garbage, municipalities) is None


def test_thousands_of_parts_and_huge_headers_are_cut_and_said() -> None:
    from mailbot.understand.decode import MAX_HEADER_VALUE, MAX_PARTS, parse_mail

    parts = b"".join(b"--BB\r\nContent-Type: text/plain\r\n\r\nDel %d\r\n" % i for i in range(5000))
    recipients = ", ".join(f"p{i}@skovde.se" for i in range(5000)).encode()
    raw = (
        b"From: a@hjo.se\r\nTo: " + recipients + b"\r\nSubject: " + b"x" * (1 << 20) + b"\r\nMessage-ID: <m@hjo.se>\r\n"
        b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n" + parts + b"--BB--\r\n"
    )
    mail = parse_mail(raw)
    assert mail.message_id == "m@hjo.se"
    assert len(mail.subject) <= MAX_HEADER_VALUE
    assert 0 < len(mail.to) < 5000
    assert f"more than {MAX_PARTS} MIME parts" in " ".join(mail.defects)
