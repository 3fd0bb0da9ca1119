"""Composing reminders and receipts: the headers byte for byte, the Swedish texts, and no header injection.

The messages are parsed back with the standard library, as a receiving mail system would.
"""

from __future__ import annotations

import email
import re
from dataclasses import replace
from datetime import UTC, date, datetime, time
from email import policy
from email.message import EmailMessage

import pytest

from mailbot.compose import (
    UnsafeHeader,
    build_message,
    checked_address,
    compose,
    first_name,
    new_message_id,
    render,
)
from mailbot.remind import (
    ReceiptRequest,
    delivery_failed_alert,
    mailbox_failing_alert,
    plan_receipt,
    plan_reminders,
)
from mailbot.settings import ReceiptSettings, ReminderSettings
from mailbot.understand.types import MeetingDate, RejectedRow
from registry.config import Registry, load_registry
from registry.domain import MeetingStatus, ObligationKind, State
from registry.facts import Finding, MeetingFact, NetworkFacts
from registry.paths import config_dir
from registry.rules import evaluate

SENDER = "Utbildning Skaraborg <utbildning@skaraborg.se>"
REPLY_TO = "utbildning@skaraborg.se"
NOW = datetime(2025, 3, 3, 7, 0, tzinfo=UTC)  # 08.00 in Stockholm


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(config_dir())


def parsed(message: EmailMessage) -> EmailMessage:
    """The message as a receiving system sees it: parsed from the bytes on the wire."""
    result = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(result, EmailMessage)
    return result


def header_block(message: EmailMessage) -> bytes:
    return message.as_bytes().split(b"\r\n\r\n", 1)[0]


def elevhalsa_reminder(registry: Registry):
    network = registry.network("elevhalsa")
    facts = NetworkFacts(meetings=(MeetingFact(date(2025, 2, 7), MeetingStatus.PLANNED),))
    findings = evaluate(network, facts, date(2025, 3, 3), registry.municipality_index().names)
    (planned,) = plan_reminders(
        registry.networks, findings, {"elevhalsa": ["ordforande@hjo.se", "sekreterare@skara.se"]}, {}, [],
        date(2025, 3, 3), ReminderSettings(), ["utbildning@skaraborg.se"], set(),
    )  # fmt: skip
    return planned, network


def receipt_request(**changes) -> ReceiptRequest:
    values = dict(
        mail_id=42,
        message_id="<AM0PR01MB1234@eurprd01.prod.outlook.com>",
        sender_email="anna.svensson@skovde.se",
        sender_name="Svensson, Anna",
        subject="Medlemslista och mötesdatum elevhälsonätverket",
        received=datetime(2025, 3, 3, 9, 15, tzinfo=UTC),
        network_key="elevhalsa",
        network_name="Elevhälsa",
        kinds=("member_list", "meeting_dates", "minutes"),
        members_count=14,
        rejected_rows=(RejectedRow(5, "Per Olsson | per.olsson@ | Hjo", "ogiltig e-postadress 'per.olsson@'"),),
        meetings=(
            MeetingDate(date(2025, 3, 14), time(9), time(12), "Stadshuset, Skövde"),
            MeetingDate(date(2025, 5, 16)),
        ),
        minutes_meeting_date=date(2025, 2, 7),
        minutes_unannounced=True,
    )
    values.update(changes)
    return ReceiptRequest(**values)


def receipt_message(registry: Registry, **changes) -> EmailMessage:
    planned = plan_receipt(receipt_request(**changes), NOW, ReceiptSettings(), 0, ["utbildning@skaraborg.se"], set())
    assert planned is not None
    message_id = new_message_id("receipt", "mailbot.skaraborg.se")
    return compose(planned, registry.network("elevhalsa"), SENDER, REPLY_TO, message_id, now=NOW)


# --- headers --------------------------------------------------------------------------------------


def test_reminder_headers_on_the_wire(registry: Registry) -> None:
    planned, network = elevhalsa_reminder(registry)
    message = compose(planned, network, SENDER, REPLY_TO, "reminder-0123abcd@mailbot.skaraborg.se", now=NOW)

    headers = header_block(message)

    assert b"\r\nAuto-Submitted: auto-generated\r\n" in headers
    assert b"\r\nX-Auto-Response-Suppress: All\r\n" in headers
    assert b"\r\nMessage-ID: <reminder-0123abcd@mailbot.skaraborg.se>\r\n" in headers
    assert b"\r\nReply-To: utbildning@skaraborg.se\r\n" in headers
    assert headers.startswith(b"From: Utbildning Skaraborg <utbildning@skaraborg.se>\r\n")
    assert b"\r\nTo: ordforande@hjo.se, sekreterare@skara.se\r\n" in headers
    assert b"\r\nDate: Mon, 03 Mar 2025 08:00:00 +0100\r\n" in headers
    assert b"\r\nContent-Language: sv-SE\r\n" in headers + b"\r\n"
    assert b"Precedence" not in headers  # RFC 3834 3.1.8
    assert b"In-Reply-To" not in headers
    assert max(len(line) for line in headers.split(b"\r\n")) <= 78  # RFC 5322 2.1.1


def test_swedish_subject_is_encoded_and_decodes_back(registry: Registry) -> None:
    planned, network = elevhalsa_reminder(registry)
    message = compose(planned, network, SENDER, REPLY_TO, "reminder-1@mailbot.skaraborg.se", now=NOW)

    headers = header_block(message)
    headers.decode("ascii")  # RFC 2047: nothing but ASCII in the header block

    assert b"=?utf-8?" in headers
    assert parsed(message)["Subject"] == planned.subject
    assert (
        planned.subject == "Påminnelse: Elevhälsa – medlemsförteckning och minnesanteckningar saknas m.m."  # 78 at most
    )


def test_receipt_answers_the_original_mail(registry: Registry) -> None:
    message = parsed(receipt_message(registry))

    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["In-Reply-To"] == "<AM0PR01MB1234@eurprd01.prod.outlook.com>"
    assert message["References"] == "<AM0PR01MB1234@eurprd01.prod.outlook.com>"
    assert message["To"] == "anna.svensson@skovde.se"
    assert message["Subject"] == "Kvittens: Medlemslista och mötesdatum elevhälsonätverket"
    assert re.fullmatch(r"<receipt-[0-9a-f]{32}@mailbot\.skaraborg\.se>", message["Message-ID"])


def test_both_parts_are_utf8_quoted_printable_alternatives(registry: Registry) -> None:
    message = parsed(receipt_message(registry))

    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.iter_parts()
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    for part in (plain, html):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"


def test_the_same_row_gives_the_same_bytes() -> None:
    def build() -> bytes:
        return build_message(
            kind="reminder", sender=SENDER, to=["a@skovde.se"], subject="Påminnelse", text="Hej!\n", html="<p>Hej!</p>",
            message_id="reminder-1@mailbot.skaraborg.se", reply_to=REPLY_TO, sent=NOW,
        ).as_bytes()  # fmt: skip

    assert build() == build()


# --- header injection -----------------------------------------------------------------------------


def test_a_subject_with_a_line_break_cannot_add_a_header() -> None:
    message = build_message(
        kind="receipt", sender=SENDER, to=["anna@skovde.se"], subject="Protokoll\r\nBcc: evil@x.se",
        text="Hej!\n", message_id="receipt-1@mailbot.skaraborg.se", reply_to=REPLY_TO, sent=NOW,
    )  # fmt: skip

    raw = message.as_bytes()

    assert b"\r\nBcc:" not in raw and b"\nBcc:" not in raw
    assert parsed(message)["Bcc"] is None
    assert parsed(message)["Subject"] == "Protokoll Bcc: evil@x.se"


def test_a_receipt_to_a_mail_with_an_injected_subject_stays_one_header(registry: Registry) -> None:
    message = receipt_message(registry, subject="Protokoll\r\nBcc: evil@x.se\r\n\r\nbody")

    assert parsed(message)["Bcc"] is None
    assert b"\r\nBcc:" not in header_block(message)


@pytest.mark.parametrize(
    "address",
    [
        "anna@skovde.se\r\nBcc: evil@x.se",
        "anna@skovde.se\nBcc: evil@x.se",
        "anna@",
        "not an address",
        "anna.öberg@skovde.se",  # would need SMTPUTF8, which we do not use
    ],
)
def test_unsafe_addresses_are_refused(address: str) -> None:
    with pytest.raises(UnsafeHeader):
        checked_address(address)
    with pytest.raises(UnsafeHeader):
        build_message(kind="reminder", sender=SENDER, to=[address], subject="x", text="x",
                      message_id="reminder-1@mailbot.skaraborg.se", reply_to=REPLY_TO, sent=NOW)  # fmt: skip


def test_a_line_break_in_a_display_name_is_refused_too() -> None:
    with pytest.raises(UnsafeHeader):
        checked_address('"Anna\r\nBcc: evil@x.se" <anna@skovde.se>')
    assert checked_address("Utbildning Skaraborg <Utbildning@Skaraborg.se>").addr_spec == "Utbildning@skaraborg.se"


def test_an_odd_original_message_id_is_left_out_rather_than_injected() -> None:
    message = build_message(
        kind="receipt", sender=SENDER, to=["anna@skovde.se"], subject="x", text="x",
        message_id="receipt-1@mailbot.skaraborg.se", reply_to=REPLY_TO, sent=NOW, in_reply_to="no id here",
    )  # fmt: skip

    assert message["In-Reply-To"] is None


def test_our_message_id_must_be_a_plain_id() -> None:
    with pytest.raises(UnsafeHeader):
        new_message_id("reminder", "mailbot.skaraborg.se>\r\nBcc: x")


# --- the texts ------------------------------------------------------------------------------------


def test_reminder_text_lists_items_with_deadlines_quotes_and_how_to_answer(registry: Registry) -> None:
    planned, network = elevhalsa_reminder(registry)
    text = (
        compose(planned, network, SENDER, REPLY_TO, "reminder-1@mailbot.skaraborg.se", now=NOW)
        .get_body(("plain",))
        .get_content()
    )

    assert "presidiet i nätverket Elevhälsa" in text
    assert "1. Medlemsförteckning för 2025\n   Skulle ha skickats in senast 31 januari 2025.\n" in text
    assert (
        "Minnesanteckningar från mötet fredag 7 februari 2025\n   Skulle ha skickats in senast 21 februari 2025."
        in text
    )
    assert "Ur uppdragsbeskrivningen: ”Presidiet ansvarar även för att förteckning" in text
    assert "Skulle ha skickats in senast 31 januari 2025.\n   Svara med medlemsförteckningen som bilaga" in text
    assert "Svara med minnesanteckningarna som bilaga." in text
    assert "Så gör ni: svara på det här mejlet" in text and "ni får en kvittens" in text
    assert not re.search(r"\b[Dd]u\b", text)  # one form of address to the presidium: "ni"
    assert "utbildning@skaraborg.se" in text
    assert "Mejlet är skickat automatiskt." in text
    assert "\n\n\n" not in text and not re.search(r"[ \t]+\n", text)


def test_escalated_reminder_says_who_is_copied_and_why(registry: Registry) -> None:
    network = registry.network("elevhalsa")
    planned, _ = elevhalsa_reminder(registry)
    escalated = replace(planned, escalated=True, times_reminded=(2, 0, 0), school_chief_copied=True)

    text = (
        compose(escalated, network, SENDER, REPLY_TO, "reminder-1@mailbot.skaraborg.se", now=NOW)
        .get_body(("plain",))
        .get_content()
    )

    assert (
        "Vi har redan påmint två gånger om medlemsförteckning för 2025. Därför får nätverkets skol- och "
        "utbildningschef och Utbildning Skaraborg en kopia av det här mejlet." in text
    )


def test_receipt_says_exactly_what_was_registered(registry: Registry) -> None:
    text = receipt_message(registry).get_body(("plain",)).get_content()

    assert text.startswith("Hej Anna!\n\n")
    assert "kom in måndag 3 mars 2025 kl. 10.15. Det är registrerat för nätverket Elevhälsa." in text
    assert "Minnesanteckningar\n   Kopplade till mötet fredag 7 februari 2025.\n" in text
    assert "Det mötet fanns inte bland de mötesdatum som skickats in i förväg" in text
    assert "Medlemsförteckning\n   14 personer registrerades.\n   1 rad kunde inte läsas och är inte med:\n" in text
    assert "   – Rad 5: Per Olsson | per.olsson@ | Hjo (ogiltig e-postadress 'per.olsson@')\n" in text
    assert "Mötesdatum\n   – fredag 14 mars 2025 kl. 09.00–12.00, Stadshuset, Skövde\n   – fredag 16 maj 2025\n" in text
    assert "Svara på det här mejlet och skriv vad som ska rättas" in text
    assert "\n\n\n" not in text and not re.search(r"[ \t]+\n", text)


def test_receipt_html_escapes_what_came_from_the_mail(registry: Registry) -> None:
    rows = (RejectedRow(3, "<script>alert(1)</script>", "okänd kolumn"),)
    html = receipt_message(registry, rejected_rows=rows, subject="<b>Lista</b>").get_body(("html",)).get_content()

    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;Lista&lt;/b&gt;" in html


def test_receipt_for_a_cancellation_and_a_deliverable(registry: Registry) -> None:
    text = receipt_message(
        registry, kinds=("meeting_cancel", "deliverable"), members_count=None, rejected_rows=(), meetings=(),
        minutes_meeting_date=None, minutes_unannounced=False, cancelled=(date(2025, 4, 11),),
        deliverable_title="Delrapport: implementering av KomX",
    ).get_body(("plain",)).get_content()  # fmt: skip

    assert "Inställda möten\n   – fredag 11 april 2025\n" in text
    assert "Redovisning\n   Delrapport: implementering av KomX är registrerad som inkommen.\n" in text
    assert "Medlemsförteckning" not in text and "Minnesanteckningar" not in text


@pytest.mark.parametrize(
    ("name", "first"),
    [("Anna Svensson", "Anna"), ("Svensson, Anna", "Anna"), (None, ""), ("anna@skovde.se", ""), ("", ""),
     ("Per-Erik Åberg", "Per-Erik"), ("Rektor 2", "Rektor")],
)  # fmt: skip
def test_first_name_for_the_greeting(name: str | None, first: str) -> None:
    assert first_name(name) == first


def test_admin_summary_groups_breaches_by_network(registry: Registry) -> None:
    weekday = Finding(
        "skis", ObligationKind.MEETING_WEEKDAY, State.BREACH, date(2025, 3, 11),
        "Mötet tisdag 11 mars 2025 hölls på fel veckodag; nätverket ska mötas på fredagar.",
        "skis:meeting_weekday:2025-03-11", date(2025, 3, 11), "Minst 4 möten per år på fredagar.",
    )  # fmt: skip
    count = Finding("vux", ObligationKind.MEETING_COUNT, State.BREACH, date(2024, 12, 31),
                    "Bara 3 möten hölls 2024, minst 6 krävs.", "vux:meeting_count:2024", quote="Minst 6 möten per år.")  # fmt: skip
    (summary,) = plan_reminders(registry.networks, [weekday, count], {}, {}, [], date(2025, 3, 17),
                                ReminderSettings(), ["utbildning@skaraborg.se"], set())  # fmt: skip

    rendered = render(summary, None, networks={n.key: n for n in registry.networks})

    assert rendered.subject == "Sammanställning: 2 avvikelser i nätverkens uppdrag"
    assert rendered.html == ""
    assert (
        "Skolutveckling i Skaraborg (SKIS)\n– Mötet tisdag 11 mars 2025 hölls på fel veckodag; nätverket ska mötas på "
        "fredagar.\n  Det går inte att ta igen: mötet är redan hållet. Det noteras som en avvikelse i årsrapporten, och "
        "kommande möten ska ligga på fredagar.\n  Ur uppdragsbeskrivningen: ”Minst 4 möten per år på fredagar.”"
        "\n\nVuxenutbildning\n– Bara 3 möten"
    ) in rendered.text


def test_a_text_only_mail_is_a_single_plain_part() -> None:
    alert = delivery_failed_alert(12, "reminder", "a@skovde.se", "Påminnelse", "550 5.1.1 User unknown",
                                  ["utbildning@skaraborg.se"])  # fmt: skip
    message = compose(alert, None, SENDER, REPLY_TO, "alert-1@mailbot.skaraborg.se", now=NOW)

    assert message.get_content_type() == "text/plain"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_content()
    assert "Utskick: påminnelse nr 12\nTill: a@skovde.se\nÄmne: Påminnelse\nFel: 550 5.1.1 User unknown\n" in text


def test_mailbox_alert_times_are_local_and_swedish() -> None:
    alert = mailbox_failing_alert("INBOX", "timeout", 3, datetime(2025, 3, 17, 6, 0, tzinfo=UTC),
                                  ["utbildning@skaraborg.se"])  # fmt: skip

    assert ("Senast lyckade läsning", "måndag 17 mars 2025 kl. 07.00") in alert.details
    assert alert.dedup_key == "alert:mailbox_failing:INBOX:2025-03-17T06:00:00+00:00"
