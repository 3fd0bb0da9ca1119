"""Read receipts (RFC 8098 disposition notifications, Outlook's "Läst:") are ignored like automatic replies."""

from __future__ import annotations

from mailbot.understand.classify import is_auto_reply, is_disposition_notification
from mailbot.understand.decode import parse_mail

MDN = (
    "From: Karin Olsson <karin.olsson@hjo.se>\r\n"
    "To: utbildning@skaraborg.se\r\n"
    "Subject: =?utf-8?q?L=C3=A4st=3A_P=C3=A5minnelse=3A_Protokoll_SKIS?=\r\n"
    "Date: Mon, 13 Oct 2025 09:00:00 +0200\r\n"
    "Message-ID: <mdn1@hjo.se>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type="disposition-notification"; boundary="b"\r\n'
    "\r\n"
    "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDitt meddelande lästes måndag 13 oktober 2025.\r\n"
    "--b\r\nContent-Type: message/disposition-notification\r\n\r\n"
    "Final-Recipient: rfc822;karin.olsson@hjo.se\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n"
    "--b--\r\n"
)


def test_rfc_8098_report_is_a_read_receipt():
    mail = parse_mail(MDN.encode())
    assert is_disposition_notification(mail) == "read receipt (RFC 8098 disposition notification)"
    assert is_auto_reply(mail, weak=False) is not None


def test_outlook_read_subject_without_a_report_part():
    raw = MDN.replace('multipart/report; report-type="disposition-notification"; boundary="b"', "text/plain")
    raw = raw.split("\r\n\r\n", 1)[0] + "\r\n\r\nDitt meddelande har lästs.\r\n"
    raw = raw.replace("=?utf-8?q?L=C3=A4st=3A_P=C3=A5minnelse=3A_Protokoll_SKIS?=", "Read: Protokoll SKIS")
    assert is_disposition_notification(parse_mail(raw.encode())) is not None


def test_a_subject_that_only_starts_with_the_word_is_not_a_receipt():
    raw = MDN.replace("=?utf-8?q?L=C3=A4st=3A_P=C3=A5minnelse=3A_Protokoll_SKIS?=", "Lästips till nätverket")
    raw = raw.replace('multipart/report; report-type="disposition-notification"; boundary="b"', "text/plain")
    assert is_disposition_notification(parse_mail(raw.encode())) is None
