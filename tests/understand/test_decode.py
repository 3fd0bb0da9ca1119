"""Tests for mailbot.understand.decode: raw mail bytes in, ParsedMail out."""

from __future__ import annotations

import base64
import email
import random
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email import encoders, policy
from email.header import Header
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.image import MIMEImage
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest

from mailbot.understand.decode import (
    decode_text,
    decompress_rtf,
    is_forward_subject,
    parse_mail,
    parse_sent_datetime,
    rtf_to_text,
)
from mailbot.understand.html_text import html_to_text
from mailbot.understand.types import ForwardedFrom, ParsedMail

FIXTURES = Path(__file__).parent.parent / "fixtures" / "decode"

OUTLOOK_HEADERS = (
    "From: =?iso-8859-1?Q?Svensson_Anna_=28Sk=F6vde=29?= <Anna.Svensson@skovde.se>\n"
    "To: Utbildning Skaraborg <utbildning@skaraborg.se>\n"
    "Date: Mon, 17 Mar 2025 08:41:10 +0000\n"
    "Message-ID: <GV3P280MB0123ABC@GV3P280MB0123.SWEP280.PROD.OUTLOOK.COM>\n"
    "Content-Language: sv-SE\n"
    "X-MS-Exchange-Organization-SCL: -1\n"
    "MIME-Version: 1.0\n"
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def raw_mail(
    body: str | bytes,
    *,
    subject: str = "Protokoll SKIS 14/3",
    content_type: str = 'text/plain; charset="utf-8"',
    encoding: str = "8bit",
) -> bytes:
    """A one-part Outlook-looking mail, written byte for byte as it would arrive."""
    subject = Header(subject, "utf-8").encode() if not subject.isascii() else subject
    head = (
        OUTLOOK_HEADERS + f"Subject: {subject}\nContent-Type: {content_type}\nContent-Transfer-Encoding: {encoding}\n\n"
    )
    return head.encode("ascii") + (body.encode("utf-8") if isinstance(body, str) else body)


def outlook_message(subject: str = "Protokoll SKIS 14/3") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Anna Svensson <anna.svensson@skovde.se>"
    message["To"] = "utbildning@skaraborg.se"
    message["Subject"] = subject
    message["Date"] = "Fri, 14 Mar 2025 15:47:00 +0100"
    message["Message-ID"] = "<AM0PR09MB1234@eurprd09.prod.outlook.com>"
    message["Thread-Topic"] = subject
    message["Content-Language"] = "sv-SE"
    message["X-MS-Exchange-Organization-AuthAs"] = "Internal"
    return message


def multipart_mail(*parts: MIMEBase, subtype: str = "mixed", subject: str = "Protokoll SKIS 14/3") -> bytes:
    container = MIMEMultipart(subtype)
    container["From"] = "Anna Svensson <anna.svensson@skovde.se>"
    container["To"] = "utbildning@skaraborg.se"
    container["Subject"] = subject
    container["Date"] = "Fri, 14 Mar 2025 15:47:00 +0100"
    container["Message-ID"] = "<multi-1@skovde.se>"
    for part in parts:
        container.attach(part)
    return container.as_bytes(policy=policy.SMTP)


def attachment_part(content_type: str, payload: bytes, filename: str | None) -> MIMEBase:
    maintype, subtype = content_type.split("/")
    part = MIMEBase(maintype, subtype)
    part.set_payload(payload)
    encoders.encode_base64(part)
    if filename is not None:
        part.add_header("Content-Disposition", "attachment", filename=filename)
    else:
        part.add_header("Content-Disposition", "attachment")
    return part


# --- fixtures: real-looking Outlook mail ------------------------------------------------------


def test_outlook_reply_splits_own_text_from_quoted_reminder() -> None:
    mail = parse_mail(fixture("outlook_reply_sv.eml"))
    assert mail.body_text == (
        "Hej!\n\nProtokollet från träffen fredag 14 mars kommer i veckan, vi väntar på justering.\n\n"
        "Med vänlig hälsning\nAnna Svensson\nRektor, Skövde kommun"
    )
    assert mail.quoted_text.startswith("________________________________\nFrån: Utbildning Skaraborg")
    assert "Vi har ännu inte fått protokollet" in mail.quoted_text
    assert mail.forwarded is None


def test_outlook_reply_headers_are_decoded_and_normalised() -> None:
    mail = parse_mail(fixture("outlook_reply_sv.eml"))
    assert mail.subject == "SV: Påminnelse protokoll SKIS 14/3"
    assert mail.sender_name == "Svensson Anna (Skövde)"
    assert mail.sender_email == "anna.svensson@skovde.se"
    assert mail.to == ("utbildning@skaraborg.se",)
    assert mail.message_id == "GV3P280MB0123C4D2E9F1A2B3C4D5E6F7A8B9CA@GV3P280MB0123.SWEP280.PROD.OUTLOOK.COM"
    assert mail.in_reply_to == "paminnelse-skis-2025-03@skaraborg.se"
    assert mail.references == ("paminnelse-skis-2025-03@skaraborg.se", "20250314091200.5f3a@skaraborg.se")
    assert mail.date == datetime(2025, 3, 17, 8, 41, 10, tzinfo=UTC)
    assert mail.defects == ()


def test_headers_keep_every_header_in_order_lower_cased_and_decoded() -> None:
    mail = parse_mail(fixture("outlook_reply_sv.eml"))
    names = [name for name, _ in mail.headers]
    assert names[:3] == ["received", "from", "to"]
    assert names.index("thread-topic") < names.index("x-ms-exchange-organization-scl") < names.index("content-type")
    assert mail.header("Thread-Topic") == "Påminnelse protokoll SKIS 14/3"
    assert mail.header("X-MS-Exchange-Organization-SCL") == "-1"
    assert mail.header("Content-Language") == "sv-SE"
    assert mail.header("X-MS-Has-Attach") == ""
    assert mail.header("received") is not None and "\n" not in mail.header("received")  # type: ignore[operator]


def test_outlook_html_only_forward_names_original_sender() -> None:
    mail = parse_mail(fixture("outlook_forward_html.eml"))
    assert mail.forwarded == ForwardedFrom(
        sender_name="Karin Ek",
        sender_email="karin.ek@lidkoping.se",
        sent=datetime(2025, 3, 14, 15, 47),
        subject="Protokoll Elevhälsa 2025-03-14",
    )
    assert mail.quoted_text == ""


def test_outlook_html_only_forward_keeps_note_and_forwarded_text_without_header_block() -> None:
    mail = parse_mail(fixture("outlook_forward_html.eml"))
    # iso-8859-1 label, windows-1252 bytes: 0x96 is an en dash, not a C1 control.
    assert mail.body_text == (
        "Hej,\n\nVidarebefordrar protokollet från Elevhälsan – se bilaga.\n\nNärvarande | Kommun\nKarin Ek | Lidköping"
    )
    assert "Skickat" not in mail.body_text


def test_outlook_forward_keeps_pdf_with_encoded_name_and_skips_signature_logo() -> None:
    mail = parse_mail(fixture("outlook_forward_html.eml"))
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("Protokoll Elevhälsa 2025-03-14.pdf", "application/pdf")
    ]
    assert mail.attachments[0].payload.startswith(b"%PDF-1.4")


def test_outlook_invitation_puts_calendar_data_only_in_calendar_parts() -> None:
    mail = parse_mail(fixture("outlook_invitation.eml"))
    assert len(mail.calendar_parts) == 2  # the text/calendar alternative and invite.ics
    assert all(part.startswith(b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST") for part in mail.calendar_parts)
    assert "LOCATION;LANGUAGE=sv-SE:Stadshuset Skövde".encode() in mail.calendar_parts[0]
    assert mail.attachments == ()
    assert mail.body_text == "Välkomna till nätverksträff fredag 11 april kl. 9-12."
    assert mail.sender_name == "Maria Östergren"
    assert mail.to == ("skis@skaraborg.se", "utbildning@skaraborg.se")


def test_gmail_flowed_reply_is_unwrapped_and_split_at_attribution_line() -> None:
    mail = parse_mail(fixture("gmail_reply_flowed.eml"))
    assert mail.body_text == (
        "Hej, här är mina synpunkter på minnesanteckningarna från träffen den 14 mars. "
        "Vi i Tibro kan vara värdkommun i maj."
    )
    assert mail.quoted_text.startswith("Den fre 14 mars 2025 kl 10:12 skrev Anna Svensson <anna.svensson@skovde.se>:")
    assert "> bifogar minnesanteckningarna." in mail.quoted_text
    assert mail.subject == "Re: Minnesanteckningar elevhälsonätverket"


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("*.eml")))
def test_fixture_reads_the_same_with_crlf_line_endings(name: str) -> None:
    lf = parse_mail(fixture(name))
    crlf = parse_mail(fixture(name).replace(b"\n", b"\r\n"))
    assert crlf.body_text == lf.body_text
    assert crlf.subject == lf.subject
    assert [a.filename for a in crlf.attachments] == [a.filename for a in lf.attachments]
    assert crlf.forwarded == lf.forwarded


# --- 1. charsets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "expected"),
    [
        ("Närvarande: Skövde, Götene".encode(), 'text/plain; charset="utf-8"', "8bit", "Närvarande: Skövde, Götene"),
        ("Närvarande: Skövde".encode("latin-1"), "text/plain; charset=iso-8859-1", "8bit", "Närvarande: Skövde"),
        (b"N=E4rvarande: Sk=F6vde", 'text/plain; charset="iso-8859-1"', "quoted-printable", "Närvarande: Skövde"),
        (b"kl. 9=9612 =80 fika", 'text/plain; charset="windows-1252"', "quoted-printable", "kl. 9–12 € fika"),
        # Mislabelled: Windows-1252 bytes under an iso-8859-1 label.
        (b"kl. 9\x9612 \x93fika\x94", "text/plain; charset=iso-8859-1", "8bit", "kl. 9–12 “fika”"),
        (base64.b64encode("Mötesdatum HT 2025".encode()), "text/plain; charset=utf-8", "base64", "Mötesdatum HT 2025"),
        # Unknown charset: UTF-8 when the bytes are UTF-8, else Windows-1252.
        ("Tidaholm träff".encode(), "text/plain; charset=x-mac-unknown", "8bit", "Tidaholm träff"),
        ("Tidaholm träff".encode("cp1252"), "text/plain; charset=x-mac-unknown", "8bit", "Tidaholm träff"),
        # No charset at all (RFC 2045 says US-ASCII) but 8-bit text anyway.
        ("Töreboda".encode(), "text/plain", "8bit", "Töreboda"),
        ("Töreboda".encode("cp1252"), "text/plain", "8bit", "Töreboda"),
        ("Grästorp".encode(), "text/plain; charset=us-ascii", "8bit", "Grästorp"),
    ],
)
def test_body_is_decoded_in_every_charset(body: bytes, content_type: str, encoding: str, expected: str) -> None:
    assert parse_mail(raw_mail(body, content_type=content_type, encoding=encoding)).body_text == expected


def test_unknown_charset_is_named_as_a_defect() -> None:
    mail = parse_mail(raw_mail(b"Tidaholm", content_type="text/plain; charset=x-mac-unknown"))
    assert any("x-mac-unknown" in defect for defect in mail.defects)


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        (b"G\xf6tene", "iso-8859-1", "Götene"),
        (b"G\xf6tene \x96 Hjo", "ISO-8859-1", "Götene – Hjo"),
        (b"G\xf6tene \x96 Hjo", "latin1", "Götene – Hjo"),
        (b"G\xf6tene", "windows-1252", "Götene"),
        ("Götene".encode(), "utf-8", "Götene"),
        ("Götene".encode(), '"UTF-8"', "Götene"),
        ("\ufeffGötene".encode(), "utf-8", "Götene"),
        ("Götene".encode(), None, "Götene"),
        (b"G\xf6tene", None, "Götene"),
        (b"G\xf6tene", "base64", "Götene"),  # a codec, but not a charset
        ("Götene".encode() + b"\xc3", "utf-8", "Götene\ufffd"),  # cut UTF-8 stays UTF-8
    ],
)
def test_decode_text_repairs_charsets_like_mail_clients(data: bytes, charset: str | None, expected: str) -> None:
    assert decode_text(data, charset) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("=?iso-8859-1?Q?Protokoll_fr=E5n_n=E4tverkstr=E4ffen?=", "Protokoll från nätverksträffen"),
        ("=?utf-8?B?TWlubmVzYW50ZWNrbmluZ2FyIGVsZXZow6Rsc2E=?=", "Minnesanteckningar elevhälsa"),
        ("=?windows-1252?Q?F=F6rteckning_=96_Vux?=", "Förteckning – Vux"),
        ("=?iso-8859-1?Q?F=F6rteckning_=96_Vux?=", "Förteckning – Vux"),
        ("Protokoll =?iso-8859-1?Q?Sk=F6vde?= 14/3", "Protokoll Skövde 14/3"),
        # Two adjacent words: the space between them is not displayed (RFC 2047 §6.2).
        ("=?utf-8?Q?M=C3=B6tes?= =?utf-8?Q?datum_HT?=", "Mötesdatum HT"),
        # Outlook splits a multi-byte character across two words.
        ("=?utf-8?B?R8M=?= =?utf-8?B?tnRlbmU=?=", "Götene"),
        ("=?x-unknown?Q?Gr=C3=A4storp?=", "Grästorp"),
        ("=?utf-8*sv?Q?Gr=C3=A4storp?=", "Grästorp"),
    ],
)
def test_rfc2047_subjects_are_decoded(subject: str, expected: str) -> None:
    assert parse_mail(raw_mail("x", subject=subject)).subject == expected


@pytest.mark.parametrize(
    ("raw_subject", "expected"),
    [
        ("Förteckning medlemmar Vux-nätverket".encode(), "Förteckning medlemmar Vux-nätverket"),
        ("Förteckning medlemmar Vux-nätverket".encode("cp1252"), "Förteckning medlemmar Vux-nätverket"),
    ],
)
def test_unencoded_8bit_subjects_are_read_as_utf8_or_windows_1252(raw_subject: bytes, expected: str) -> None:
    raw = OUTLOOK_HEADERS.encode() + b"Subject: " + raw_subject + b"\nContent-Type: text/plain\n\nx"
    assert parse_mail(raw).subject == expected


@pytest.mark.parametrize(
    ("from_header", "name", "address"),
    [
        (b"=?iso-8859-1?Q?Bj=F6rk=2C_Lena?= <Lena.Bjork@Falkoping.se>", "Björk, Lena", "lena.bjork@falkoping.se"),
        (b'"=?utf-8?Q?Lena_Bj=C3=B6rk?=" <lena.bjork@falkoping.se>', "Lena Björk", "lena.bjork@falkoping.se"),
        ("Lena Björk <lena.bjork@falkoping.se>".encode(), "Lena Björk", "lena.bjork@falkoping.se"),
        ("Lena Björk <lena.bjork@falkoping.se>".encode("latin-1"), "Lena Björk", "lena.bjork@falkoping.se"),
        (b"LENA.BJORK@FALKOPING.SE", None, "lena.bjork@falkoping.se"),
    ],
)
def test_sender_display_names_are_decoded_and_address_lower_cased(
    from_header: bytes, name: str | None, address: str
) -> None:
    raw = b"From: " + from_header + b"\nTo: utbildning@skaraborg.se\nDate: Fri, 14 Mar 2025 10:00:00 +0100\n\nx"
    mail = parse_mail(raw)
    assert (mail.sender_name, mail.sender_email) == (name, address)


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        (
            "attachment; filename*=utf-8''Minnesanteckningar%20elevh%C3%A4lsa%202025-03-14.pdf",
            "Minnesanteckningar elevhälsa 2025-03-14.pdf",
        ),
        ("attachment; filename*=iso-8859-1''N%E4rvarolista.xlsx", "Närvarolista.xlsx"),
        ("attachment; filename*0*=utf-8''F%C3%B6rteckning%20; filename*1=medlemmar.docx", "Förteckning medlemmar.docx"),
        ('attachment; filename="=?iso-8859-1?Q?Protokoll_n=E4tverk_G=F6tene.pdf?="', "Protokoll nätverk Götene.pdf"),
        ('attachment; filename="=?utf-8?B?UHJvdG9rb2xsIFNrw7Z2ZGUucGRm?="', "Protokoll Skövde.pdf"),
        ('attachment; filename="Protokoll Sk\xc3\xb6vde.pdf"', "Protokoll Skövde.pdf"),
        ('attachment; filename="/home/anna/Dokument/protokoll.pdf"', "protokoll.pdf"),
    ],
)
def test_attachment_file_names_are_decoded(disposition: str, expected: str) -> None:
    raw = (
        OUTLOOK_HEADERS
        + 'Subject: Protokoll\nContent-Type: multipart/mixed; boundary="b"\n\n--b\n'
        + "Content-Type: text/plain; charset=utf-8\n\nHej\n--b\nContent-Type: application/octet-stream\n"
        + f"Content-Disposition: {disposition}\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n--b--\n"
    ).encode("latin-1")
    mail = parse_mail(raw)
    assert [a.filename for a in mail.attachments] == [expected]
    assert mail.attachments[0].payload == b"%PDF-"


def test_outlook_encoded_name_in_content_type_only_is_used_as_file_name() -> None:
    raw = (
        OUTLOOK_HEADERS + 'Subject: x\nContent-Type: multipart/mixed; boundary="b"\n\n--b\n'
        "Content-Type: text/plain\n\nHej\n--b\n"
        'Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document;\n\tname="=?iso-8859-1?Q?F=F6rteckning.docx?="\n'
        "Content-Transfer-Encoding: base64\n\nUEsDBA==\n--b--\n"
    ).encode()
    (attachment,) = parse_mail(raw).attachments
    assert attachment.filename == "Förteckning.docx"
    assert attachment.content_type == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


# --- 2. bodies --------------------------------------------------------------------------------


def test_text_plain_is_preferred_over_html_alternative() -> None:
    message = outlook_message()
    message.set_content("Protokollet bifogas.\n")
    message.add_alternative("<html><body><p>Protokollet <b>bifogas</b> (HTML).</p></body></html>", subtype="html")
    assert parse_mail(message.as_bytes()).body_text == "Protokollet bifogas."


def test_empty_plain_alternative_falls_back_to_html() -> None:
    message = outlook_message()
    message.set_content("\n \n")
    message.add_alternative(
        "<p>Mötesdatum HT 2025:</p><ul><li>12 september</li><li>7 november</li></ul>", subtype="html"
    )
    assert parse_mail(message.as_bytes()).body_text == "Mötesdatum HT 2025:\n- 12 september\n- 7 november"


def test_html_only_body_becomes_clean_text() -> None:
    html = (
        "<html><head><title>x</title><style>p {color:red}</style><script>alert(1)</script></head>"
        "<body><div>Hej&nbsp;alla!</div><div>Datum &amp; tid:<br>fredag 14 mars kl.&nbsp;9&ndash;12</div>"
        "<p>Plats: Stadshuset, Sk&ouml;vde</p></body></html>"
    )
    mail = parse_mail(raw_mail(html, content_type="text/html; charset=utf-8"))
    assert mail.body_text == "Hej alla!\nDatum & tid:\nfredag 14 mars kl. 9–12\nPlats: Stadshuset, Skövde"


def test_html_charset_from_meta_tag_when_part_has_none() -> None:
    html = '<html><head><meta charset="windows-1252"></head><body><p>V\xe4lkomna till H\xf6jentorp</p></body></html>'
    mail = parse_mail(raw_mail(html.encode("cp1252"), content_type="text/html"))
    assert mail.body_text == "Välkomna till Höjentorp"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p class=MsoNormal>Rad ett<o:p></o:p></p><p class=MsoNormal>Rad två<o:p></o:p></p>", "Rad ett\nRad två"),
        (
            "<p class=MsoNormal>Hej<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>Mvh</p>",
            "Hej\n\nMvh",
        ),
        ("a<br>b<br/>c", "a\nb\nc"),
        ("<div>a</div><div>b</div>", "a\nb"),
        ("<ul><li>14 mars</li><li>11 april</li></ul>", "- 14 mars\n- 11 april"),
        (
            "<table><tr><th>Namn</th><th>E-post</th><th>Kommun</th></tr>"
            "<tr><td><p class=MsoNormal>Anna Svensson</p></td><td>anna.svensson@skovde.se</td><td>Skövde</td></tr></table>",
            "Namn | E-post | Kommun\nAnna Svensson | anna.svensson@skovde.se | Skövde",
        ),
        ("&lt;anna@x.se&gt; &quot;citat&quot; &#229;&#xe4;&ouml;", '<anna@x.se> "citat" åäö'),
        ("<p>Hej</p><blockquote><p>Tidigare</p><p>text</p></blockquote><p>Slut</p>", "Hej\n> Tidigare\n> text\nSlut"),
        ("<p>Mvh Anna</p><hr><p>Från: Bo</p>", "Mvh Anna\n________________________________\nFrån: Bo"),
        ("<!--[if gte mso 9]><xml><o:OfficeDocumentSettings/></xml><![endif]--><p>Text</p>", "Text"),
        ("<head><style>x{}</style><body><p>Utan stängd head</p>", "Utan stängd head"),
        ("<pre>  Namn    Kommun\n  Anna    Hjo</pre>", "Namn Kommun\nAnna Hjo"),
        ("<p>mycket      luft\n  och\nradbrytningar</p>", "mycket luft och radbrytningar"),
        ("<img src=cid:image001.png alt=image001.png><p>Text</p>", "Text"),
        (
            "<table><tr><td><table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table></td></tr></table>",
            "a | b\nc | d",
        ),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    "html", ["<div", "<![if", "<p>&#xffffffff;</p>", "<table><td><td></tr></li>", "</b></b>", "\x00<p>"]
)
def test_html_to_text_survives_broken_markup(html: str) -> None:
    assert isinstance(html_to_text(html), str)


def test_outlook_nesting_mixed_related_alternative_reads_body_and_attachment() -> None:
    alternative = MIMEMultipart("alternative")
    alternative.attach(MIMEText("Hej!\nHär är minnesanteckningarna.\n", "plain", "utf-8"))
    related = MIMEMultipart("related")
    related.attach(
        MIMEText("<p>Hej!</p><p>Här är minnesanteckningarna.</p><img src='cid:image001.png@01DB'>", "html", "utf-8")
    )
    logo = MIMEImage(b"\x89PNG\r\n\x1a\n", "png")
    logo.add_header("Content-ID", "<image001.png@01DB>")
    logo.add_header("Content-Disposition", "inline", filename="image001.png")
    related.attach(logo)
    alternative.attach(related)
    pdf = MIMEApplication(b"%PDF-1.7", "pdf")
    pdf.add_header("Content-Disposition", "attachment", filename="Minnesanteckningar SKIS 2025-03-14.pdf")
    mail = parse_mail(multipart_mail(alternative, pdf))
    assert mail.body_text == "Hej!\nHär är minnesanteckningarna."
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("Minnesanteckningar SKIS 2025-03-14.pdf", "application/pdf")
    ]


def test_attachment_inside_apple_html_alternative_is_still_found() -> None:
    alternative = MIMEMultipart("alternative")
    alternative.attach(MIMEText("Hej, se bifogad lista.\n", "plain", "utf-8"))
    rich = MIMEMultipart("mixed")
    rich.attach(MIMEText("<p>Hej, se bifogad lista.</p>", "html", "utf-8"))
    rich.attach(attachment_part("text/csv", b"Namn;E-post\nAnna;anna@hjo.se\n", "medlemmar.csv"))
    alternative.attach(rich)
    mail = parse_mail(multipart_mail(alternative))
    assert mail.body_text == "Hej, se bifogad lista."
    assert [a.filename for a in mail.attachments] == ["medlemmar.csv"]


def test_body_split_around_an_inline_attachment_keeps_both_pieces() -> None:
    photo = MIMEImage(b"\xff\xd8\xff\xe0jpeg", "jpeg")
    photo.add_header("Content-Disposition", "inline", filename="IMG_0042.jpeg")
    photo.add_header("Content-ID", "<IMG_0042@apple>")
    mail = parse_mail(
        multipart_mail(
            MIMEText("Foto av protokollet:", "plain", "utf-8"),
            photo,
            MIMEText("Skickat från min iPhone", "plain", "utf-8"),
        )
    )
    assert mail.body_text == "Foto av protokollet:\n\nSkickat från min iPhone"
    # An image with a Content-ID outside multipart/related is a real attachment (iPhone photos).
    assert [(a.filename, a.content_type) for a in mail.attachments] == [("IMG_0042.jpeg", "image/jpeg")]


def test_format_flowed_keeps_hard_line_breaks_and_signature_separator() -> None:
    body = "Mötesdatum:\n14 mars \nkl. 9-12\n11 april\n-- \nAnna\n"
    mail = parse_mail(raw_mail(body, content_type="text/plain; charset=utf-8; format=flowed"))
    assert mail.body_text == "Mötesdatum:\n14 mars kl. 9-12\n11 april\n--\nAnna"


# --- 3. calendars -------------------------------------------------------------------------------

ICS = b"BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nBEGIN:VEVENT\r\nUID:abc\r\nSUMMARY:Inst\xc3\xa4llt\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"


@pytest.mark.parametrize(
    ("content_type", "filename"),
    [
        ("text/calendar", None),
        ("application/ics", "invite.ics"),
        ("application/octet-stream", "Nätverksträff.ics"),
        ("text/calendar", "meeting.ics"),
    ],
)
def test_calendar_attachments_go_to_calendar_parts_only(content_type: str, filename: str | None) -> None:
    mail = parse_mail(
        multipart_mail(MIMEText("Mötet är inställt.", "plain", "utf-8"), attachment_part(content_type, ICS, filename))
    )
    assert mail.calendar_parts == (ICS,)
    assert mail.attachments == ()
    assert mail.body_text == "Mötet är inställt."


def test_single_part_calendar_mail_has_empty_body() -> None:
    mail = parse_mail(raw_mail(ICS, content_type='text/calendar; method=CANCEL; charset="utf-8"'))
    assert mail.calendar_parts == (ICS,)
    assert mail.body_text == ""


# --- 4. attachments -------------------------------------------------------------------------------


def test_attachment_content_type_is_lower_cased_and_payload_decoded() -> None:
    raw = (
        OUTLOOK_HEADERS
        + 'Subject: x\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nHej\n'
        '--b\nContent-Type: Application/VND.MS-EXCEL; name="Medlemmar.xls"\nContent-Disposition: attachment; filename="Medlemmar.xls"\n'
        "Content-Transfer-Encoding: base64\n\n0M8R4KGxGuE=\n--b--\n"
    ).encode()
    (attachment,) = parse_mail(raw).attachments
    assert (attachment.filename, attachment.content_type, attachment.payload) == (
        "Medlemmar.xls",
        "application/vnd.ms-excel",
        bytes.fromhex("d0cf11e0a1b11ae1"),
    )


def test_attachment_without_file_name_is_kept_with_none() -> None:
    mail = parse_mail(
        multipart_mail(MIMEText("Hej", "plain", "utf-8"), attachment_part("application/pdf", b"%PDF", None))
    )
    assert [(a.filename, a.content_type) for a in mail.attachments] == [(None, "application/pdf")]


def test_text_file_attachment_is_not_read_as_body() -> None:
    csv = MIMEText("Namn;E-post;Kommun\nAnna;anna@vara.se;Vara\n", "csv", "utf-8")
    csv.add_header("Content-Disposition", "attachment", filename="medlemmar.csv")
    plain = MIMEText("Namn\n", "plain", "utf-8")
    plain.add_header("Content-Disposition", "attachment", filename="lista.txt")
    mail = parse_mail(multipart_mail(MIMEText("Se bilagor.", "plain", "utf-8"), csv, plain))
    assert mail.body_text == "Se bilagor."
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("medlemmar.csv", "text/csv"),
        ("lista.txt", "text/plain"),
    ]


def test_smime_signature_is_neither_body_nor_attachment() -> None:
    signed = MIMEMultipart("signed", protocol="application/pkcs7-signature", micalg="sha-256")
    signed.attach(MIMEText("Protokollet bifogas.", "plain", "utf-8"))
    signed.attach(attachment_part("application/pkcs7-signature", b"0\x82", "smime.p7s"))
    mail = parse_mail(multipart_mail(signed))
    assert mail.body_text == "Protokollet bifogas."
    assert mail.attachments == ()


# --- 5. winmail.dat -------------------------------------------------------------------------------


def tnef_object(level: int, name: int, kind: int, data: bytes) -> bytes:
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)


def mapi_binary(property_id: int, data: bytes) -> bytes:
    padded = data + b"\x00" * (-len(data) % 4)
    return struct.pack("<IHHII", 1, 0x0102, property_id, 1, len(data)) + padded


def build_tnef(files: list[tuple[bytes, bytes]], *, body: bytes | None = None, mapi: bytes | None = None) -> bytes:
    """A winmail.dat as Outlook writes it (MS-OXTNEF): signature, key, attributes with checksums."""
    data = struct.pack("<IH", 0x223E9F78, 0x0001)
    data += tnef_object(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))  # attTnefVersion
    data += tnef_object(1, 0x9007, 0x0006, struct.pack("<II", 1252, 0))  # attOemCodepage
    if body is not None:
        data += tnef_object(1, 0x800C, 0x0002, body)  # attBody
    if mapi is not None:
        data += tnef_object(1, 0x9003, 0x0006, mapi)  # attMsgProps
    for name, payload in files:
        data += tnef_object(2, 0x9002, 0x0006, b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 8)  # attRenddata
        data += tnef_object(2, 0x8010, 0x0001, name + b"\x00")  # attAttachTitle
        data += tnef_object(2, 0x800F, 0x0006, payload)  # attAttachData
    return data


def winmail_mail(tnef: bytes, plain: str | None = None) -> bytes:
    parts: list[MIMEBase] = []
    if plain is not None:
        parts.append(MIMEText(plain, "plain", "iso-8859-1"))
    winmail = attachment_part("application/ms-tnef", tnef, "winmail.dat")
    parts.append(winmail)
    return multipart_mail(*parts)


def test_winmail_dat_attachments_are_extracted() -> None:
    tnef = build_tnef([("Närvarolista.xlsx".encode("cp1252"), b"PK\x03\x04xlsx"), (b"Protokoll.pdf", b"%PDF-1.5")])
    mail = parse_mail(winmail_mail(tnef, plain="Hej, protokoll och närvarolista bifogas."))
    assert [(a.filename, a.payload) for a in mail.attachments] == [
        ("Närvarolista.xlsx", b"PK\x03\x04xlsx"),
        ("Protokoll.pdf", b"%PDF-1.5"),
    ]
    assert mail.body_text == "Hej, protokoll och närvarolista bifogas."
    assert mail.defects == ()


def test_winmail_dat_body_is_used_when_mail_has_no_other_body() -> None:
    tnef = build_tnef([(b"Protokoll.pdf", b"%PDF")], body="Protokoll från Vux-nätverket.\r\n".encode("cp1252"))
    mail = parse_mail(winmail_mail(tnef))
    assert mail.body_text == "Protokoll från Vux-nätverket."


def test_winmail_dat_html_body_is_converted_to_text() -> None:
    html = "<html><body><p>Mötesdatum:</p><p>12 september</p></body></html>".encode()
    mail = parse_mail(winmail_mail(build_tnef([], mapi=mapi_binary(0x1013, html))))
    assert mail.body_text == "Mötesdatum:\n12 september"


# MS-OXRTFCP §4.1: the specification's own example of compressed RTF.
COMPRESSED_RTF = bytes.fromhex(
    "2d0000002b0000004c5a4675f1c5c7a703000a007263706731323542320af32068656c090020627705b06c647d0a800fa0"
)


def test_winmail_dat_compressed_rtf_body_is_read() -> None:
    mail = parse_mail(winmail_mail(build_tnef([], mapi=mapi_binary(0x1009, COMPRESSED_RTF))))
    assert mail.body_text == "hello world"


def test_other_body_wins_over_winmail_dat_body() -> None:
    tnef = build_tnef([], body=b"TNEF body")
    assert parse_mail(winmail_mail(tnef, plain="MIME body")).body_text == "MIME body"


@pytest.mark.parametrize("tnef", [b"", b"not a tnef file at all", build_tnef([(b"a.pdf", b"%PDF")])[:40]])
def test_unreadable_winmail_dat_is_a_defect_and_kept_as_file(tnef: bytes) -> None:
    mail = parse_mail(winmail_mail(tnef, plain="Hej"))
    assert mail.body_text == "Hej"
    assert any("winmail.dat" in defect for defect in mail.defects)
    assert [(a.filename, a.content_type, a.payload) for a in mail.attachments] == [
        ("winmail.dat", "application/ms-tnef", tnef)
    ]


def test_decompress_rtf_reads_the_specification_example() -> None:
    assert decompress_rtf(COMPRESSED_RTF) == b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"


def test_decompress_rtf_passes_stored_and_plain_rtf() -> None:
    rtf = b"{\\rtf1 hej}"
    stored = struct.pack("<II4sI", len(rtf) + 12, len(rtf), b"MELA", 0) + rtf
    assert decompress_rtf(stored) == rtf
    assert decompress_rtf(rtf) == rtf


@pytest.mark.parametrize(
    ("rtf", "expected"),
    [
        (
            rb"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Calibri;}}\pard N\'e4rvarande:\par Sk\'f6vde\tab Hjo\par}",
            "Närvarande:\nSkövde\tHjo",
        ),
        (rb"{\rtf1\uc1 G\u246?tene{\*\generator Riched20;}}", "Götene"),
        (
            rb"{\rtf1\ansi\fromhtml1{\*\htmltag19 <html>}{\*\htmltag50 <body>}\htmlrtf {\htmlrtf0 "
            rb"{\*\htmltag64 <p>}M\'f6te{\*\htmltag72 </p>}{\*\htmltag64 <p>}fredag{\*\htmltag72 </p>}\htmlrtf }\htmlrtf0 }",
            "Möte\nfredag",
        ),
    ],
)
def test_rtf_to_text(rtf: bytes, expected: str) -> None:
    assert rtf_to_text(rtf) == expected


# --- 6. attached mails ----------------------------------------------------------------------------


def inner_mail(subject: str, sender: str = "Karin Ek <karin.ek@lidkoping.se>") -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "bo.berg@lidkoping.se"
    message["Subject"] = subject
    message["Date"] = "Fri, 14 Mar 2025 15:47:00 +0100"
    message["Message-ID"] = f"<{subject.encode().hex()}@lidkoping.se>"
    message.set_content("Bifogar protokollet.")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="Protokoll Elevhälsa.pdf")
    return message


def test_attached_mail_is_parsed_recursively() -> None:
    mail = parse_mail(
        multipart_mail(MIMEText("Se bifogat mejl.", "plain", "utf-8"), MIMEMessage(inner_mail("Protokoll Elevhälsa")))
    )
    (attached,) = mail.attached_mails
    assert attached.subject == "Protokoll Elevhälsa"
    assert attached.sender_email == "karin.ek@lidkoping.se"
    assert attached.body_text == "Bifogar protokollet."
    assert [a.filename for a in attached.attachments] == ["Protokoll Elevhälsa.pdf"]
    assert mail.attachments == ()  # the PDF belongs to the attached mail


def test_forward_as_attachment_names_the_attached_mails_sender() -> None:
    mail = parse_mail(
        multipart_mail(MIMEText("", "plain", "utf-8"), MIMEMessage(inner_mail("Protokoll")), subject="VB: Protokoll")
    )
    assert mail.forwarded == ForwardedFrom(
        "Karin Ek",
        "karin.ek@lidkoping.se",
        datetime(2025, 3, 14, 15, 47, tzinfo=timezone(timedelta(hours=1))),
        "Protokoll",
    )


def test_eml_file_with_generic_content_type_is_parsed_as_attached_mail() -> None:
    eml = attachment_part(
        "application/octet-stream", inner_mail("Minnesanteckningar").as_bytes(), "Minnesanteckningar.eml"
    )
    mail = parse_mail(multipart_mail(MIMEText("Hej", "plain", "utf-8"), eml))
    assert [attached.subject for attached in mail.attached_mails] == ["Minnesanteckningar"]
    assert mail.attachments == ()


def test_attached_mails_are_parsed_three_levels_deep_then_kept_as_files() -> None:
    message: EmailMessage | MIMEMultipart = inner_mail("nivå 5")
    for level in (4, 3, 2, 1):
        outer = MIMEMultipart()
        outer["Subject"] = f"nivå {level}"
        outer.attach(MIMEText(f"text {level}", "plain", "utf-8"))
        outer.attach(MIMEMessage(message))
        message = outer
    mail = parse_mail(message.as_bytes())
    level1 = mail.attached_mails[0]
    level2 = level1.attached_mails[0]
    level3 = level2.attached_mails[0]
    assert [level1.subject, level2.subject, level3.subject] == ["nivå 2", "nivå 3", "nivå 4"]
    assert level3.attached_mails == ()
    assert [a.content_type for a in level3.attachments] == ["message/rfc822"]
    assert parse_mail(level3.attachments[0].payload).subject == "nivå 5"
    assert any("deeper than 3" in defect for defect in level3.defects)


# --- 7. forwards and replies ---------------------------------------------------------------------

OUTLOOK_FORWARD_PLAIN = """Hej,

Skickar vidare förteckningen från Götene.

/Bo

________________________________
Från: Lena Björk <lena.bjork@gotene.se>
Skickat: den 14 mars 2025 10:12
Till: Bo Berg <bo.berg@gotene.se>
Kopia: Per Lind <per.lind@gotene.se>; Eva Ek
 <eva.ek@gotene.se>
Ämne: Förteckning medlemmar Vux-nätverket

Namn, E-post, Kommun, Roll
Lena Björk, lena.bjork@gotene.se, Götene, ordförande
"""


def test_forwarded_mail_keeps_original_sender() -> None:
    mail = parse_mail(raw_mail(OUTLOOK_FORWARD_PLAIN, subject="VB: Förteckning medlemmar Vux-nätverket"))
    assert mail.forwarded == ForwardedFrom(
        sender_name="Lena Björk",
        sender_email="lena.bjork@gotene.se",
        sent=datetime(2025, 3, 14, 10, 12),
        subject="Förteckning medlemmar Vux-nätverket",
    )


def test_forwarded_mail_keeps_note_and_forwarded_text_in_body() -> None:
    mail = parse_mail(raw_mail(OUTLOOK_FORWARD_PLAIN, subject="VB: Förteckning medlemmar Vux-nätverket"))
    assert mail.body_text == (
        "Hej,\n\nSkickar vidare förteckningen från Götene.\n\n/Bo\n\n"
        "Namn, E-post, Kommun, Roll\nLena Björk, lena.bjork@gotene.se, Götene, ordförande"
    )
    assert mail.quoted_text == ""


def test_same_text_as_reply_quotes_the_earlier_mail() -> None:
    mail = parse_mail(raw_mail(OUTLOOK_FORWARD_PLAIN, subject="SV: Förteckning medlemmar Vux-nätverket"))
    assert mail.body_text == "Hej,\n\nSkickar vidare förteckningen från Götene.\n\n/Bo"
    assert mail.quoted_text.startswith("________________________________\nFrån: Lena Björk")
    assert mail.forwarded is None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("VB: Protokoll", True),
        ("Vb: Protokoll", True),
        ("FW: Protokoll", True),
        ("Fw: Protokoll", True),
        ("Fwd: Protokoll", True),
        ("VS: Protokoll", True),
        ("SV: VB: Protokoll", True),
        ("[EXTERN] VB: Protokoll", True),
        ("EXTERN: Fwd: Protokoll", True),
        ("RE: Fw[2]: Protokoll", True),
        ("SV: Påminnelse", False),
        ("Re: Protokoll", False),
        ("AW: Protokoll", False),
        ("Protokoll: VB 14/3", False),
        ("Vux-nätverket: protokoll", False),
        ("Protokoll SKIS 14/3", False),
        ("", False),
    ],
)
def test_is_forward_subject(subject: str, expected: bool) -> None:
    assert is_forward_subject(subject) is expected


@pytest.mark.parametrize(
    ("body", "sender", "sent", "subject"),
    [
        (
            "---------- Vidarebefordrat meddelande ---------\nFrån: Lena Björk <lena.bjork@gotene.se>\n"
            "Date: fre 14 mars 2025 kl 10:12\nSubject: Protokoll\nTo: <bo@gotene.se>\n\nProtokolltext",
            ("Lena Björk", "lena.bjork@gotene.se"),
            datetime(2025, 3, 14, 10, 12),
            "Protokoll",
        ),
        (
            "-----Original Message-----\nFrom: Lena Bjork [mailto:Lena.Bjork@gotene.se]\n"
            "Sent: Friday, March 14, 2025 10:12 AM\nTo: Bo Berg\nSubject: Minutes\n\nProtokolltext",
            ("Lena Bjork", "lena.bjork@gotene.se"),
            datetime(2025, 3, 14, 10, 12),
            "Minutes",
        ),
        (
            "________________________________\nFrån: Lena Björk <lena.bjork@gotene.se<mailto:lena.bjork@gotene.se>>\n"
            "Skickat: 2025-03-14 10:12\nTill: Bo\nÄmne: Protokoll\n\nProtokolltext",
            ("Lena Björk", "lena.bjork@gotene.se"),
            datetime(2025, 3, 14, 10, 12),
            "Protokoll",
        ),
        (
            "Början av vidarebefordrat meddelande:\n\nFrån: Lena Björk <lena.bjork@gotene.se>\n"
            "Ämne: Protokoll\nDatum: 14 mars 2025 10:12:33 CET\nTill: Bo <bo@gotene.se>\n\nProtokolltext",
            ("Lena Björk", "lena.bjork@gotene.se"),
            datetime(2025, 3, 14, 10, 12, 33, tzinfo=timezone(timedelta(hours=1))),
            "Protokoll",
        ),
        (
            "*Från:* Lena Björk\n*Skickat:* fredag 14 mars 2025 10:12\n*Till:* Bo Berg\n*Ämne:* Protokoll\n\nProtokolltext",
            ("Lena Björk", None),
            datetime(2025, 3, 14, 10, 12),
            "Protokoll",
        ),
    ],
)
def test_forward_markers_at_the_top_make_a_forward_without_prefix(
    body: str, sender: tuple[str | None, str | None], sent: datetime, subject: str
) -> None:
    mail = parse_mail(raw_mail(body, subject="Protokoll"))
    assert mail.forwarded == ForwardedFrom(sender[0], sender[1], sent, subject)
    assert mail.body_text == "Protokolltext"
    assert mail.quoted_text == ""


def test_forward_header_block_with_labels_on_their_own_lines() -> None:
    body = "Se nedan.\n\nFrån:\nLena Björk <lena.bjork@gotene.se>\nSkickat:\nden 14 mars 2025 10:12\nTill:\nBo\nÄmne:\nProtokoll\n\nText"
    mail = parse_mail(raw_mail(body, subject="VB: Protokoll"))
    assert mail.forwarded == ForwardedFrom(
        "Lena Björk", "lena.bjork@gotene.se", datetime(2025, 3, 14, 10, 12), "Protokoll"
    )
    assert mail.body_text == "Se nedan.\n\nText"


def test_forward_without_header_block_keeps_body_and_has_no_forwarded() -> None:
    mail = parse_mail(raw_mail("Protokoll bifogat.", subject="Fwd: Protokoll"))
    assert (mail.body_text, mail.forwarded) == ("Protokoll bifogat.", None)


def test_forward_of_apple_html_blockquote_is_unquoted_in_body() -> None:
    html = (
        "<div>Till er</div><div><br><blockquote type='cite'><div>Början av vidarebefordrat meddelande:</div><br>"
        "<div><b>Från:</b> Lena Björk &lt;lena.bjork@gotene.se&gt;<br><b>Ämne:</b> Protokoll<br>"
        "<b>Datum:</b> 14 mars 2025 10:12:33 CET<br></div><br><div>Närvarande: Götene, Hjo</div></blockquote></div>"
    )
    mail = parse_mail(raw_mail(html, subject="Fwd: Protokoll", content_type="text/html; charset=utf-8"))
    assert mail.forwarded is not None and mail.forwarded.sender_email == "lena.bjork@gotene.se"
    assert mail.body_text == "Till er\n\nNärvarande: Götene, Hjo"


@pytest.mark.parametrize(
    ("body", "own", "quoted_start"),
    [
        (
            "Tack!\n\n-----Ursprungligt meddelande-----\nFrån: Utbildning\nSkickat: den 1 mars 2025 08:00\nÄmne: Påminnelse\n\nHej",
            "Tack!",
            "-----Ursprungligt meddelande-----",
        ),
        (
            "Tack!\n\nFrån: Utbildning Skaraborg <utbildning@skaraborg.se>\nSkickat: den 1 mars 2025 08:00\nTill: Anna\nÄmne: Påminnelse\n\nHej",
            "Tack!",
            "Från: Utbildning Skaraborg",
        ),
        (
            "Tack!\n\nOn Sat, Mar 1, 2025 at 8:00 AM Utbildning <utbildning@skaraborg.se> wrote:\n> Hej\n",
            "Tack!",
            "On Sat, Mar 1, 2025",
        ),
        (
            "Tack!\nSkickat från min iPhone\n\n1 mars 2025 kl. 08:00 skrev Utbildning Skaraborg <utbildning@skaraborg.se>:\n\n> Hej",
            "Tack!\nSkickat från min iPhone",
            "1 mars 2025 kl. 08:00 skrev",
        ),
        ("Ja, vi kommer.\n> Kan ni komma?\n> /Utbildning", "Ja, vi kommer.", "> Kan ni komma?"),
        ("Vi ses!\n\nMvh\nAnna\nRektor\n", "Vi ses!\n\nMvh\nAnna\nRektor", None),
    ],
)
def test_reply_body_stops_at_first_quote_separator(body: str, own: str, quoted_start: str | None) -> None:
    mail = parse_mail(raw_mail(body, subject="SV: Påminnelse"))
    assert mail.body_text == own
    if quoted_start is None:
        assert mail.quoted_text == ""
    else:
        assert mail.quoted_text.startswith(quoted_start)
    assert mail.forwarded is None


def test_ordinary_sentence_with_skrev_is_not_a_quote_separator() -> None:
    body = "Den 14 mars skrev vi följande i protokollet:\nAlla kommuner var närvarande."
    assert parse_mail(raw_mail(body)).body_text == body


def test_outlook_web_html_reply_splits_at_horizontal_rule() -> None:
    html = (
        '<div dir="ltr">Vi kommer alla tre.</div><div id="appendonsend"></div>'
        '<hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr">'
        '<font face="Calibri, sans-serif"><b>Från:</b> Utbildning Skaraborg &lt;utbildning@skaraborg.se&gt;<br>'
        "<b>Skickat:</b> den 1 mars 2025 08:00<br><b>Ämne:</b> Anmälan</font><div>&nbsp;</div></div><div>Hej</div>"
    )
    mail = parse_mail(raw_mail(html, subject="SV: Anmälan", content_type="text/html; charset=utf-8"))
    assert mail.body_text == "Vi kommer alla tre."
    assert mail.quoted_text.startswith("________________________________\nFrån: Utbildning Skaraborg")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("den 14 mars 2025 10:12", datetime(2025, 3, 14, 10, 12)),
        ("fredag 14 mars 2025 10:12", datetime(2025, 3, 14, 10, 12)),
        ("fredag den 14 mars 2025 10:12", datetime(2025, 3, 14, 10, 12)),
        ("14 mars 2025 10:12", datetime(2025, 3, 14, 10, 12)),
        ("2025-03-14 10:12", datetime(2025, 3, 14, 10, 12)),
        ("Friday, March 14, 2025 10:12 AM", datetime(2025, 3, 14, 10, 12)),
        ("Friday, March 14, 2025 1:05 PM", datetime(2025, 3, 14, 13, 5)),
        ("Fri, Mar 14, 2025 at 12:30 AM", datetime(2025, 3, 14, 0, 30)),
        ("fre 14 mars 2025 kl 10:12", datetime(2025, 3, 14, 10, 12)),
        ("den 14:e mars 2025 kl. 10.12", datetime(2025, 3, 14, 10, 12)),
        ("14 maj 2025", datetime(2025, 5, 14)),
        ("Fri, 14 Mar 2025 10:12:00 +0100", datetime(2025, 3, 14, 10, 12, tzinfo=timezone(timedelta(hours=1)))),
        ("14 juli 2025 10:12:00 CEST", datetime(2025, 7, 14, 10, 12, tzinfo=timezone(timedelta(hours=2)))),
        ("14 mars 2025 10:12 GMT+1", datetime(2025, 3, 14, 10, 12, tzinfo=timezone(timedelta(hours=1)))),
        ("14.3.2025 10:12", datetime(2025, 3, 14, 10, 12)),
        ("31 februari 2025 10:12", None),
        ("i går", None),
        ("", None),
    ],
)
def test_parse_sent_datetime(text: str, expected: datetime | None) -> None:
    assert parse_sent_datetime(text) == expected


# --- 8. headers -------------------------------------------------------------------------------------


def test_all_to_addresses_are_lower_cased_across_headers() -> None:
    raw = (
        b'From: a@hjo.se\nTo: "Svensson, Anna" <Anna.Svensson@Skovde.se>, Bo@Hjo.se\nTo: undisclosed-recipients:;\n'
        b"To: Team <team@vara.se>\nCc: cc@vara.se\nDate: Fri, 14 Mar 2025 10:00:00 +0100\n\nx"
    )
    assert parse_mail(raw).to == ("anna.svensson@skovde.se", "bo@hjo.se", "team@vara.se")


@pytest.mark.parametrize(
    ("date_header", "expected", "defect"),
    [
        ("Fri, 14 Mar 2025 10:12:00 +0100", datetime(2025, 3, 14, 9, 12, tzinfo=UTC), None),
        ("14 Mar 2025 10:12:00 -0000", datetime(2025, 3, 14, 10, 12, tzinfo=UTC), None),
        ("Fri, 14 Mar 2025 10:12:00", datetime(2025, 3, 14, 10, 12, tzinfo=UTC), "no time zone"),
        ("fredag 14 mars", None, "could not be read"),
        (None, None, "no Date header"),
    ],
)
def test_date_is_aware_or_none_with_a_defect(
    date_header: str | None, expected: datetime | None, defect: str | None
) -> None:
    raw = b"From: a@hjo.se\nSubject: x\n" + (f"Date: {date_header}\n".encode() if date_header else b"") + b"\nx"
    mail = parse_mail(raw)
    assert mail.date == expected
    if expected is not None:
        assert mail.date is not None and mail.date.tzinfo is not None
    if defect is None:
        assert not [d for d in mail.defects if "Date" in d]
    else:
        assert any(defect in d for d in mail.defects)


def test_message_ids_lose_angle_brackets_and_folding() -> None:
    raw = (
        b"From: a@hjo.se\nDate: Fri, 14 Mar 2025 10:00:00 +0100\nMessage-ID:\n <abc.123@hjo.se>\n"
        b"In-Reply-To: <reminder-1@skaraborg.se> (Utbildning Skaraborg's message)\n"
        b"References: <r1@skaraborg.se>\n\t<r2@skaraborg.se> <r3@hjo.se>\n\nx"
    )
    mail = parse_mail(raw)
    assert (mail.message_id, mail.in_reply_to) == ("abc.123@hjo.se", "reminder-1@skaraborg.se")
    assert mail.references == ("r1@skaraborg.se", "r2@skaraborg.se", "r3@hjo.se")


def test_missing_optional_headers_are_none_or_empty() -> None:
    mail = parse_mail(b"From: a@hjo.se\nDate: Fri, 14 Mar 2025 10:00:00 +0100\n\nx")
    assert (mail.message_id, mail.in_reply_to, mail.references, mail.subject, mail.to) == (None, None, (), "", ())


# --- 9. delivery reports ------------------------------------------------------------------------


def test_delivery_report_lists_failed_recipients_only() -> None:
    mail = parse_mail(fixture("exchange_bounce.eml"))
    assert mail.is_delivery_report is True
    assert mail.bounced_recipients == ("per.old@gotene.se",)


def test_delivery_report_body_is_the_human_readable_part() -> None:
    mail = parse_mail(fixture("exchange_bounce.eml"))
    assert (
        mail.body_text
        == "Ditt meddelande till per.old@gotene.se kunde inte levereras.\nper.old hittades inte på gotene.se."
    )
    assert mail.attachments == ()


def test_delivery_report_returns_original_headers_as_attached_mail() -> None:
    (original,) = parse_mail(fixture("exchange_bounce.eml")).attached_mails
    assert original.message_id == "reminder-42@skaraborg.se"
    assert original.subject == "Påminnelse protokoll"
    assert original.to == ("per.old@gotene.se", "eva.lund@gotene.se")


def test_delivery_report_with_full_original_message() -> None:
    original = inner_mail("Påminnelse", sender="Utbildning <utbildning@skaraborg.se>").as_bytes()
    raw = (
        b"From: MAILER-DAEMON@vara.se\nTo: utbildning@skaraborg.se\nDate: Fri, 14 Mar 2025 10:00:00 +0100\n"
        b"Subject: Undelivered Mail Returned to Sender\n"
        b'Content-Type: multipart/report; report-type="delivery-status"; boundary="r"\n\n'
        b"--r\nContent-Type: text/plain; charset=us-ascii\n\nDelivery has failed to these recipients: anna@vara.se\n"
        b"--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.vara.se\n\n"
        b"Final-Recipient: RFC822; <Anna@Vara.se>\nAction: Failed\nStatus: 5.1.1\n\n"
        b"Final-Recipient: rfc822; bo@vara.se\nAction: delivered\nStatus: 2.0.0\n"
        b"--r\nContent-Type: message/rfc822\n\n" + original + b"\n--r--\n"
    )
    mail = parse_mail(raw)
    assert (mail.is_delivery_report, mail.bounced_recipients) == (True, ("anna@vara.se",))
    assert [m.subject for m in mail.attached_mails] == ["Påminnelse"]
    assert mail.body_text == "Delivery has failed to these recipients: anna@vara.se"


def test_read_receipt_is_not_a_delivery_report() -> None:
    report = MIMEMultipart("report", report_type="disposition-notification")
    report.attach(MIMEText("Läst: Påminnelse", "plain", "utf-8"))
    notification = MIMEBase("message", "disposition-notification")
    notification.set_payload(
        "Final-Recipient: rfc822; anna@vara.se\nDisposition: manual-action/MDN-sent-manually; displayed\n"
    )
    report.attach(notification)
    mail = parse_mail(report.as_bytes())
    assert (mail.is_delivery_report, mail.bounced_recipients, mail.attachments) == (False, (), ())


# --- 10. robustness ------------------------------------------------------------------------------


def test_empty_input_gives_empty_mail_with_defect() -> None:
    mail = parse_mail(b"")
    assert isinstance(mail, ParsedMail)
    assert (mail.subject, mail.body_text, mail.headers) == ("", "", ())
    assert mail.defects


def test_non_bytes_input_gives_empty_mail_with_defect() -> None:
    mail = parse_mail("From: a@hjo.se\n\nx")  # type: ignore[arg-type]
    assert mail.headers == () and mail.defects


def test_multipart_without_boundary_parameter_is_read_with_guessed_boundary() -> None:
    raw = (
        OUTLOOK_HEADERS + "Subject: Protokoll\nContent-Type: multipart/mixed\n\n"
        "--_000_abc_\nContent-Type: text/plain; charset=utf-8\n\nProtokoll bifogas.\n"
        '--_000_abc_\nContent-Type: application/pdf\nContent-Disposition: attachment; filename="p.pdf"\n'
        "Content-Transfer-Encoding: base64\n\nJVBERg==\n--_000_abc_--\n"
    ).encode()
    mail = parse_mail(raw)
    assert mail.body_text == "Protokoll bifogas."
    assert [(a.filename, a.payload) for a in mail.attachments] == [("p.pdf", b"%PDF")]
    assert any("boundary" in defect for defect in mail.defects)


def test_multipart_with_wrong_boundary_is_read_with_guessed_boundary() -> None:
    raw = (
        OUTLOOK_HEADERS + 'Subject: x\nContent-Type: multipart/mixed; boundary="declared"\n\n'
        "--actual\nContent-Type: text/plain\n\nHej\n--actual--\n"
    ).encode()
    mail = parse_mail(raw)
    assert mail.body_text == "Hej"
    assert mail.defects


def test_multipart_without_any_parts_reads_its_text_as_body() -> None:
    raw = OUTLOOK_HEADERS.encode() + b"Subject: x\nContent-Type: multipart/mixed\n\nBara text, inga delar.\n"
    mail = parse_mail(raw)
    assert mail.body_text == "Bara text, inga delar."
    assert mail.defects


def test_header_the_standard_parser_chokes_on_is_read_with_compat32() -> None:
    # CPython 3.11's policy.default raises IndexError on a parameter name with no value.
    raw = (
        OUTLOOK_HEADERS + 'Subject: Protokoll\nContent-Type: multipart/mixed; boundary="b"\n\n'
        "--b\nContent-Type: text/plain; charset=iso-8859-1\n\nN\xe4rvarande: Hjo\n"
        '--b\nContent-Type: application/pdf; name="Protokoll.pdf"\nContent-Disposition: attachment; filename*\n'
        "Content-Transfer-Encoding: base64\n\nJVBERg==\n--b--\n"
    ).encode("latin-1")
    mail = parse_mail(raw)
    assert mail.body_text == "Närvarande: Hjo"
    assert mail.sender_name == "Svensson Anna (Skövde)"
    assert [(a.filename, a.payload) for a in mail.attachments] == [("Protokoll.pdf", b"%PDF")]
    assert any("compat32" in defect for defect in mail.defects)


def test_truncated_base64_keeps_what_can_be_read() -> None:
    encoded = base64.b64encode("Protokoll från nätverksträffen fredag 14 mars".encode()).decode()
    mail = parse_mail(raw_mail(encoded[:-7].encode(), content_type="text/plain; charset=utf-8", encoding="base64"))
    assert mail.body_text.startswith("Protokoll från nätverksträffen")
    assert mail.defects


def test_mail_cut_off_in_the_middle_keeps_headers_and_start_of_body() -> None:
    raw = fixture("outlook_forward_html.eml")
    mail = parse_mail(raw[: raw.index(b"Content-Type: image/png")])
    assert mail.subject == "VB: Protokoll Elevhälsa 2025-03-14"
    assert "Vidarebefordrar protokollet" in mail.body_text
    assert mail.defects


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00" * 100,
        bytes(range(256)) * 4,
        b"\xff\xfe\x00F\x00r\x00o\x00m",
        b"From: \n\n",
        b":\n:\n\n",
        b"From: <<<>>>@@@\nTo: ,,,;;;\nDate: 99 Foo 99999 99:99\nMessage-ID: <\nReferences: >>>\n\nx",
        b"Subject: =?utf-8?B?####?= =?bogus?X?abc?= =?utf-8?Q?=ZZ?=\n\nx",
        b'Content-Type: text/plain; charset="\xff\xfe"\n\n\xff\xfe',
        b"Content-Type: multipart/mixed; boundary=\n\n--\n--\n",
        b'Content-Type: multipart/mixed; boundary="a"\n\n--a\nContent-Type: message/rfc822\n\n--a--\n',
        b"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nRnJvbTogYUBiLnNlCgpoZWo=\n",
        b"Content-Type: application/ms-tnef\nContent-Transfer-Encoding: base64\n\neJ8+Ig==\n",
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\n\n--r\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n!!!\n--r--\n',
        b"Content-Disposition: attachment; filename*=bogus'xx'%ZZ%\nContent-Type: application/pdf\n\nx",
        b"Content-Type: text/html\n\n<![if <div <table><td></tr>" + b"<b>" * 5000,
    ],
)
def test_broken_input_never_raises(raw: bytes) -> None:
    assert isinstance(parse_mail(raw), ParsedMail)


def test_deeply_nested_multiparts_do_not_exhaust_the_stack() -> None:
    depth = 300
    opening = b"".join(f'--b{i}\nContent-Type: multipart/mixed; boundary="b{i + 1}"\n\n'.encode() for i in range(depth))
    raw = (
        b'Content-Type: multipart/mixed; boundary="b0"\n\n'
        + opening
        + f"--b{depth}\nContent-Type: text/plain\n\nkärna\n".encode()
    )
    mail = parse_mail(raw)
    assert isinstance(mail, ParsedMail)


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("*.eml")))
def test_every_truncation_and_byte_flip_of_a_fixture_is_survived(name: str) -> None:
    raw = fixture(name)
    generator = random.Random(name)  # fixed seed per fixture: the same cases every run
    for cut in range(0, len(raw), max(1, len(raw) // 60)):
        assert isinstance(parse_mail(raw[:cut]), ParsedMail)
    for _ in range(60):
        damaged = bytearray(raw)
        for _ in range(8):
            damaged[generator.randrange(len(damaged))] = generator.randrange(256)
        assert isinstance(parse_mail(bytes(damaged)), ParsedMail)


# --- the quick header path equals the stdlib's header classes -----------------------------------------

_QUICK_SAMPLES = [
    ("from", "Anna Öberg <anna@x.se>"),
    ("from", "=?iso-8859-1?Q?Svensson_Anna_=28Sk=F6vde=29?= <Anna.Svensson@skovde.se>"),
    ("from", '"Andersson, Anna" <anna@x.se>'),
    ("from", '"Anna  Öberg " <anna@x.se>'),
    ("from", "=?utf-8?q?=C3=96berg=2C_Anna?= <anna@x.se>"),
    ("from", "=?utf-8?q?Anna?= =?utf-8?q?_=C3=96berg?= <anna@x.se>"),
    ("from", "Anna\tÖberg\t<anna@x.se>"),
    ("from", "anna@x.se"),
    ("from", "<anna@x.se>"),
    ("from", "Anna J. Öberg <anna@x.se>"),
    ("from", "anna@x.se (Anna Öberg)"),
    ("from", "MAILER DAEMON <>"),
    ("to", 'a@x.se, Bo <b@x.se>,"C, D" <c@x.se> , <d@x.se>'),
    ("to", "a@x.se,"),
    ("to", "undisclosed-recipients:;"),
    ("cc", "=?utf-8?q?A=22B?= <a@x.se>"),
    ("reply-to", "Anna=?utf-8?q?B?= <a@x.se>"),
    ("date", "Mon, 17 Mar 2025 08:41:10 +0000"),
    ("date", "Mon, 17 Mar 2025 08:41:10"),
    ("date", "17 Mar 2025 08:41:10 -0000"),
    ("date", "igår"),
    ("date", ""),
    ("date", " "),
    ("message-id", "<GV3P280MB0123ABC@GV3P280MB0123.SWEP280.PROD.OUTLOOK.COM>"),
    ("message-id", "<CAF=abc+1@mail.gmail.com>"),
    ("message-id", "<a@b> <c@d>"),
    ("message-id", "<a@[1.2.3.4]>"),
    ("content-type", 'text/plain; charset="utf-8"'),
    ("content-type", "multipart/mixed;\tboundary=----=_Part_1; charset=us-ascii"),
    ("content-type", 'text/plain; name=""'),
    ("content-type", "text/plain; name*=utf-8''f%C3%B6r.pdf"),
    ("content-type", "text/plain; charset=utf-8; charset=latin-1"),
    ("content-type", "text/plain;"),
    ("content-type", 'text/plain; charset="utf-8'),
    ("content-disposition", 'attachment; filename="Protokoll 2025-03-14.pdf"'),
    ("content-disposition", "inline"),
    ("content-transfer-encoding", "base64"),
    ("content-transfer-encoding", "base64 (really)"),
    ("mime-version", "1.0"),
    ("mime-version", "1.0 (Mac OS X Mail 16.0)"),
    ("subject", "=?utf-8?q?M=C3=B6te?= =?utf-8?q?_p=C3=A5_fredag?="),
    ("subject", "Möte på fredag"),
    ("subject", "abc=?utf-8?q?=C3=B6?=def"),
    ("subject", "=?utf-8?x?abc?= =?"),
    ("subject", "=?x-unknown?q?M=F6te?="),
    ("subject", "=?utf-7?q?+2D3-?="),
    ("thread-topic", "=?iso-8859-1?q?Medlemslista_SKIS_h=F6sten_2025?="),
    ("x-anything", "plain text"),
]


def _quick_and_parsed(name: str, text: str) -> tuple[object, object]:
    from mailbot.understand.decode import _parsed_header, _quick_header

    return _quick_header(name, text), _parsed_header(name, text)


@pytest.mark.parametrize(("name", "text"), _QUICK_SAMPLES)
def test_the_quick_header_path_gives_what_the_header_classes_give(name: str, text: str) -> None:
    quick, parsed = _quick_and_parsed(name, text)
    assert quick is None or quick == parsed


def test_the_quick_header_path_takes_the_common_forms() -> None:
    from mailbot.understand.decode import _quick_header

    common = [
        ("from", "Anna Öberg <anna@x.se>"),
        ("from", "=?iso-8859-1?Q?Svensson_Anna_=28Sk=F6vde=29?= <Anna.Svensson@skovde.se>"),
        ("to", 'a@x.se, Bo <b@x.se>,"C, D" <c@x.se> , <d@x.se>'),
        ("date", "Mon, 17 Mar 2025 08:41:10 +0000"),
        ("message-id", "<CAF=abc+1@mail.gmail.com>"),
        ("content-type", 'text/plain; charset="utf-8"'),
        ("content-disposition", 'attachment; filename="Protokoll 2025-03-14.pdf"'),
        ("content-transfer-encoding", "base64"),
        ("mime-version", "1.0"),
        ("subject", "=?utf-8?q?M=C3=B6te?= =?utf-8?q?_p=C3=A5_fredag?="),
        ("thread-topic", "=?iso-8859-1?q?Medlemslista_SKIS_h=F6sten_2025?="),
    ]
    for name, text in common:
        assert (name, text) in _QUICK_SAMPLES
        assert _quick_header(name, text) is not None, (name, text)


def test_the_quick_header_path_equals_the_header_classes_on_generated_values() -> None:
    """Mailboxes, parameters and encoded words mixed at random (a fixed seed): whenever the quick path answers,
    it answers what policy.default's header classes answer."""
    generator = random.Random(14)
    names = ["Anna", "Öberg", "Anna  Öberg", "Anna\tB", "A. B", "O'Brien", "Andersson, Anna", "(c)", "\xa0", "é", "",
             "=?iso-8859-1?Q?Anna_=D6berg?=", "=?utf-8?q?=C3=96berg=2C_Anna?=", "=?utf-8?q?_Anna_?=", "=?utf-8?q?A=22B?=",
             "=?utf-8?q?Anna?= =?utf-8?q?_B?=", "Anna=?utf-8?q?B?=", "=?x-unknown?q?abc?=", "=?utf-8?q??=", "=?"]  # fmt: skip
    locals_, domains = ["anna", "a.b", "a+b", "a..b", "a=b", "ä", '"a b"'], ["x.se", "X.SE", "[1.2.3.4]", "x", "ä.se"]
    pieces = [" ", "\t", ",", ";", '"', "\\", "<", ">", "@", "(c)", ":", ".", "'", "*", "%", "=", "?", "=?utf-8?q?=C3=96?=",
              "text/plain", "attachment", "charset=utf-8", 'name="a b.pdf"', "name*=utf-8''a%20b", "; format=flowed",
              "1.0", "base64", "Mon, 17 Mar 2025 08:41:10 +0000", "<a@b.c>", "a@b.c", "\x01", "Öberg"]  # fmt: skip
    answered = 0
    for _ in range(3000):

        def mailbox() -> str:
            space = generator.choice(["", " ", "  ", "\t"])
            address = f"{generator.choice(locals_)}@{generator.choice(domains)}"
            name = generator.choice(names)
            return generator.choice(
                [address, f"<{address}>", f"{name}{space}<{address}>", f'"{name}"{space}<{address}>']
            )

        name = generator.choice(["from", "to", "cc", "reply-to", "sender", "date", "message-id", "content-type",
                                 "content-disposition", "content-transfer-encoding", "mime-version", "subject"])  # fmt: skip
        if name in ("from", "to", "cc", "reply-to", "sender") and generator.random() < 0.7:
            text = generator.choice([",", ", "]).join(mailbox() for _ in range(generator.randint(1, 3)))
        else:
            text = "".join(generator.choice(pieces) for _ in range(generator.randint(1, 6)))
            if name in ("content-type", "content-disposition") and generator.random() < 0.6:
                text = generator.choice(["text/plain", "attachment"]) + "; " + text
        quick, parsed = _quick_and_parsed(name, text)
        if quick is not None:
            answered += 1
            assert quick == parsed, (name, text)
    assert answered > 500


def _fetched_both(name: str, value: str) -> tuple[object, object]:
    from mailbot.understand.decode import _fetched_text

    def outcome(read: Callable[[], object]) -> object:
        try:
            return str(read())
        except Exception as error:  # noqa: BLE001  (the same error is the same outcome)
            return type(error)

    return outcome(lambda: _fetched_text(name, value)), outcome(lambda: policy.default.header_fetch_parse(name, value))


def test_a_fetched_header_reads_as_policy_default_shows_it() -> None:
    """The parser reads mail compat32 style; what it fetches (Content-Type, Content-Disposition, Content-ID, ...)
    must be the text policy.default's header classes show, or parts, charsets and file names would change."""
    generator = random.Random(2)
    heads = ["text/plain", "attachment", "multipart/mixed", "text/html; charset=utf-8", "inline", "application/pdf"]
    pieces = [" ", "\t", "\r\n ", ";", "; ", '"', "\\", "=", "?", "'", "*", "%", "(c)", "/", "charset=utf-8",
              'charset="iso-8859-1"', 'name="a b.pdf"', "name*=utf-8''f%C3%B6r.pdf", "filename*", "boundary=----=_Part_1",
              "=?utf-8?q?=C3=B6?=", "ö", "\udcf6", "format=flowed", "<id@x.se>", 'name=""']  # fmt: skip
    samples = [(name, value) for name, value in _QUICK_SAMPLES if name.startswith("content-")]
    for _ in range(3000):
        value = generator.choice(heads) + "".join(generator.choice(pieces) for _ in range(generator.randint(0, 6)))
        samples.append((generator.choice(["Content-Type", "content-disposition", "Content-ID", "X-Other"]), value))
    for name, value in samples:
        fetched, shown = _fetched_both(name, value)
        assert fetched == shown, (name, value)


def test_parameter_lists_are_handed_out_fresh() -> None:
    """decode's messages remember each header's split parameters; a caller changing a list changes no other."""
    raw = b'Content-Type: text/plain; charset="utf-8"; format=flowed\n\nhej\n'
    from mailbot.understand.decode import _DEFAULT

    message = email.message_from_bytes(raw, policy=_DEFAULT)
    first = message.get_params(unquote=False)
    first.append(("x", "y"))
    assert message.get_params(unquote=False) == email.message_from_bytes(raw, policy=policy.default).get_params(
        unquote=False
    )
    assert ("x", "y") not in message.get_params(unquote=False)
    assert message.get_param("format") == "flowed" and message.get_content_charset() == "utf-8"
