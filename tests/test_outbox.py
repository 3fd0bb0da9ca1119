"""The outbox against a real database and a real SMTP server: queued once, sent once, retried, given up, crashed.

Every test on a SQLite file and on PostgreSQL (conftest's database_url, opened by registry.db.open_registry);
aiosmtpd from conftest.
"""

from __future__ import annotations

import asyncio
import email
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email import policy
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

import mailbot.outbox as outbox_module
from mailbot.outbox import (
    CRASH_AFTER_SEND_ENV,
    SENDING_LEASE,
    drain,
    drain_outbox,
    ledger,
    queue,
    recent_receipt_count,
)
from mailbot.remind import (
    LedgerEntry,
    PlannedReminder,
    ReceiptRequest,
    mailbox_failing_alert,
    plan_receipt,
    plan_reminders,
)
from mailbot.settings import AdminSettings, ReceiptSettings, ReminderSettings, Settings, SmtpSettings
from registry.config import Deadlines, Registry, load_registry
from registry.db import open_registry
from registry.domain import Role
from registry.facts import MemberFact, MemberListFact, NetworkFacts
from registry.models import InboundMail, OutboundMail, ReminderItem
from registry.paths import config_dir
from registry.rules import evaluate

if TYPE_CHECKING:
    from conftest import SmtpServerFactory
    from servers import SmtpServer

    from mailbot.worker import Worker

REPO = Path(__file__).resolve().parent.parent
ADMIN = ["utbildning@skaraborg.se"]
PRESIDIUM = {"grundskola": ["ordforande@skovde.se", "sekreterare@lidkoping.se"]}
T0 = datetime(2025, 2, 3, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(config_dir())


@pytest.fixture
def engine(database_url: str, registry: Registry) -> Iterator[Engine]:
    engine = open_registry(database_url, registry)
    yield engine
    engine.dispose()


def settings_for(smtp: SmtpSettings | None = None, **changes: object) -> Settings:
    return Settings(smtp=smtp or SmtpSettings(), admin=AdminSettings(addresses=ADMIN), **changes)


def reminders(registry: Registry, today: date = date(2025, 2, 3), networks: tuple[str, ...] = ("grundskola",),
              ledger_entries: list[LedgerEntry] | None = None) -> list[PlannedReminder]:  # fmt: skip
    findings = []
    for key in networks:
        findings.extend(evaluate(registry.network(key), NetworkFacts(), today, registry.municipality_index().names))
    presidium = {key: [f"sekreterare.{key}@skovde.se"] for key in networks}
    return plan_reminders(
        registry.networks, findings, presidium, {}, ledger_entries or [], today, ReminderSettings(), ADMIN, set()
    )


def queued(engine: Engine, registry: Registry, planned: list, now: datetime = T0,
           settings: Settings | None = None) -> list[OutboundMail]:  # fmt: skip
    with Session(engine, expire_on_commit=False) as session:
        rows = queue(session, planned, now, settings or settings_for(), registry)
        session.commit()
    return rows


def outbox(engine: Engine) -> list[OutboundMail]:
    with Session(engine) as session:
        return list(session.exec(select(OutboundMail).order_by(col(OutboundMail.id))).all())


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def inbound_mail(engine: Engine, received: datetime = T0) -> int:
    with Session(engine) as session:
        mail = InboundMail(
            sha256=os.urandom(32).hex(), message_id="AM0PR01MB1234@eurprd01.prod.outlook.com", folder="INBOX",
            from_address="anna.svensson@skovde.se", subject="Protokoll 14/3", received=received, first_seen=received,
            status="registered", kinds="minutes", network_key="grundskola",
        )  # fmt: skip
        session.add(mail)
        session.commit()
        assert mail.id is not None
        return mail.id


# --- queueing -------------------------------------------------------------------------------------


def test_queue_writes_the_mail_and_its_ledger_in_the_callers_transaction(engine: Engine, registry: Registry) -> None:
    planned = reminders(registry)

    with Session(engine) as session:
        queue(session, planned, T0, settings_for(), registry)
        session.rollback()
    assert outbox(engine) == []

    (row,) = queued(engine, registry, planned)
    with Session(engine) as session:
        items = session.exec(select(ReminderItem)).all()
    assert row.state == "pending" and row.attempts == 0 and row.kind == "reminder"
    assert row.recipients == "sekreterare.grundskola@skovde.se"
    assert row.message_id.startswith("reminder-") and row.message_id.endswith("@mailbot.skaraborg.se")
    assert "Påminnelse" in row.subject and "Skulle ha skickats in senast 31 januari 2025." in row.body_text
    assert sorted(item.obligation_id for item in items) == [
        "grundskola:meeting_count:2025",
        "grundskola:meeting_dates:2025",
        "grundskola:member_list:2025",
    ]
    assert {(item.outbound_id, item.sent_on) for item in items} == {(row.id, date(2025, 2, 3))}


def test_running_the_same_day_twice_queues_nothing_the_second_time(engine: Engine, registry: Registry) -> None:
    first = queued(engine, registry, reminders(registry))
    with Session(engine) as session:
        so_far = ledger(session)
    replanned = reminders(registry, ledger_entries=so_far)
    same_plan_again = queued(engine, registry, reminders(registry))  # a restart that lost its ledger read

    assert len(first) == 1
    assert replanned == []
    assert same_plan_again == []
    assert len(outbox(engine)) == 1


def test_two_workers_queueing_at_once_write_one_row(engine: Engine, registry: Registry) -> None:
    planned = reminders(registry)
    second: list[int] = []

    def second_worker() -> None:
        with Session(engine) as session:
            second.append(len(queue(session, planned, T0, settings_for(), registry)))
            session.commit()

    with Session(engine) as first:
        assert len(queue(first, planned, T0, settings_for(), registry)) == 1
        worker = threading.Thread(target=second_worker)
        worker.start()
        time.sleep(0.5)  # the second worker now waits for the first one's uncommitted row
        first.commit()
        worker.join(20)

    assert second == [0]
    assert len(outbox(engine)) == 1


def test_ledger_leaves_out_failed_mails(engine: Engine, registry: Registry) -> None:
    (row,) = queued(engine, registry, reminders(registry))
    with Session(engine) as session:
        assert len(ledger(session)) == 3
        stored = session.get(OutboundMail, row.id)
        assert stored is not None
        stored.state = "failed"
        session.commit()
        assert ledger(session) == []


def test_a_receipt_row_answers_its_mail_and_counts_for_the_hourly_limit(engine: Engine, registry: Registry) -> None:
    mail_id = inbound_mail(engine)
    request = ReceiptRequest(
        mail_id=mail_id, message_id="<AM0PR01MB1234@eurprd01.prod.outlook.com>", sender_email="Anna.Svensson@skovde.se",
        sender_name="Anna Svensson", subject="Protokoll 14/3", received=T0, network_key="grundskola",
        network_name="Rektorer i grundskolan", kinds=("minutes",), minutes_meeting_date=date(2025, 1, 31),
    )  # fmt: skip
    planned = plan_receipt(request, T0, ReceiptSettings(), 0, ["utbildning@skaraborg.se"], set())
    assert planned is not None

    (row,) = queued(engine, registry, [planned])
    again = queued(engine, registry, [planned])

    assert again == []
    assert (row.kind, row.related_mail_id, row.in_reply_to) == (
        "receipt", mail_id, "AM0PR01MB1234@eurprd01.prod.outlook.com"
    )  # fmt: skip
    assert row.dedup_key == f"receipt:{mail_id}"
    with Session(engine) as session:
        assert recent_receipt_count(session, "anna.svensson@skovde.se", T0 + timedelta(minutes=30)) == 1
        assert recent_receipt_count(session, "anna.svensson@skovde.se", T0 + timedelta(minutes=61)) == 0
        assert session.exec(select(ReminderItem)).all() == []


def test_a_mailbox_alert_is_queued_once_per_failure_streak(engine: Engine, registry: Registry) -> None:
    alert = mailbox_failing_alert("INBOX", "LOGIN failed", 3, T0 - timedelta(hours=1), ADMIN)

    (row,) = queued(engine, registry, [alert])
    assert queued(engine, registry, [alert]) == []
    assert row.kind == "alert" and row.recipients == "utbildning@skaraborg.se"
    assert "Registreringstjänsten kan inte läsa brevlådan." in row.body_text
    assert "Senaste fel: LOGIN failed" in row.body_text


# --- three weeks of daily runs --------------------------------------------------------------------


def test_three_weeks_of_daily_runs_send_repeats_and_escalation_on_the_right_working_days(
    engine: Engine, registry: Registry
) -> None:
    """Member list due Thursday 5 June 2025, meeting dates due Thursday 12 June; the list arrives 25 June.

    6 June is National Day, 20 June midsommarafton: no mail those days nor at weekends. Each day runs
    twice (a restart): the second run never adds a row.
    """
    network = registry.network("grundskola").model_copy(
        update={"deadlines": Deadlines(member_list="06-05", meeting_dates="06-12"), "school_chief": "chef@vara.se"}
    )
    local = registry.model_copy(update={"networks": (network,)})
    member = MemberFact("Eva Ek", "sekreterare@lidkoping.se", "Lidköping", Role.SECRETARY)
    arrived = MemberListFact(received_on=date(2025, 6, 25), effective_from=date(2025, 6, 25), members=(member,))
    names = registry.municipality_index().names

    day = date(2025, 6, 2)
    while day <= date(2025, 6, 30):
        facts = NetworkFacts(member_lists=(arrived,) if day >= arrived.received_on else ())
        for _run in range(2):
            with Session(engine) as session:
                planned = plan_reminders(
                    [network], evaluate(network, facts, day, names), PRESIDIUM, {}, ledger(session), day,
                    ReminderSettings(), ADMIN, set(),
                )  # fmt: skip
                queue(session, planned, datetime.combine(day, datetime.min.time(), UTC), settings_for(), local)
                session.commit()
        day += timedelta(days=1)

    with Session(engine) as session:
        rows = session.exec(select(OutboundMail).order_by(col(OutboundMail.id))).all()
        items = session.exec(select(ReminderItem)).all()
    mails = {}
    for row in rows:
        kinds = sorted(item.obligation_id.split(":")[1] for item in items if item.outbound_id == row.id)
        (sent_on,) = {item.sent_on for item in items if item.outbound_id == row.id}
        mails[sent_on] = (kinds, row.cc)
    escalated_cc = "chef@vara.se,utbildning@skaraborg.se"
    assert mails == {
        date(2025, 6, 9): (["member_list"], ""),  # 6 June National Day, 7-8 June weekend
        date(2025, 6, 13): (["meeting_count", "meeting_dates"], ""),
        date(2025, 6, 16): (["member_list"], ""),  # a week after the first
        # 20 June is midsommarafton: the dates' repeat waits for Monday, with the member list's third
        date(2025, 6, 23): (["meeting_count", "meeting_dates", "member_list"], escalated_cc),
        # the member list arrived on 25 June: only the dates remain
        date(2025, 6, 30): (["meeting_count", "meeting_dates"], escalated_cc),
    }


# --- draining against a real SMTP server ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "starttls", "auth", "starttls_auth", "tls"])
def test_drain_sends_pending_mails_over_one_connection(
    mode: str, smtp_server: SmtpServerFactory, engine: Engine, registry: Registry
) -> None:
    server: SmtpServer = smtp_server(mode)
    rows = queued(engine, registry, reminders(registry, networks=("grundskola", "vux", "introduktion")))

    report = drain_outbox(engine, settings_for(server.smtp_settings()), lambda: T0)

    assert report.sent == [row.id for row in rows] and report.error is None
    assert len(server.messages) == 3
    first = server.messages[0]
    assert first.mail_from == "utbildning@skaraborg.se"
    assert first.rcpt_tos == ("sekreterare.grundskola@skovde.se",)
    message = parsed(first.raw)
    assert message["Message-ID"] == f"<{rows[0].message_id}>"
    assert message["Subject"] == rows[0].subject
    assert b"\r\nAuto-Submitted: auto-generated\r\n" in first.raw
    assert b"\r\nX-Auto-Response-Suppress: All\r\n" in first.raw
    assert b"\r\nReply-To: utbildning@skaraborg.se\r\n" in first.raw
    assert "Skulle ha skickats in senast 31 januari 2025." in message.get_body(("plain",)).get_content()
    assert {row.state for row in outbox(engine)} == {"sent"}
    assert drain_outbox(engine, settings_for(server.smtp_settings()), lambda: T0).sent == []


@pytest.mark.parametrize(
    "original",
    [
        "AM0PR01MB1234@eurprd01.prod.outlook.com",
        # Microsoft 365's own form, 84 characters: longer than a header line, so the standard policy would have
        # written it as an RFC 2047 encoded-word that no mail client matches to the secretary's mail.
        "GV0P278MB0453C1D2E3F4A5B6C7D8E9F0A1B2C3D4E5F6@GV0P278MB0453.CHEP278.PROD.OUTLOOK.COM",
    ],
)
def test_a_receipt_threads_with_the_mail_it_answers_whatever_the_length_of_its_message_id(
    original: str, smtp_server: SmtpServerFactory, engine: Engine, registry: Registry
) -> None:
    server: SmtpServer = smtp_server("plain")
    mail_id = inbound_mail(engine)
    request = ReceiptRequest(
        mail_id=mail_id, message_id=f"<{original}>", sender_email="anna.svensson@skovde.se",
        sender_name="Anna Svensson", subject="Protokoll 14/3", received=T0, network_key="grundskola",
        network_name="Rektorer i grundskolan", kinds=("minutes",), minutes_meeting_date=date(2025, 1, 31),
    )  # fmt: skip
    planned = plan_receipt(request, T0, ReceiptSettings(), 0, ["utbildning@skaraborg.se"], set())
    assert planned is not None
    queued(engine, registry, [planned])

    assert drain_outbox(engine, settings_for(server.smtp_settings()), lambda: T0).error is None

    (sent,) = server.messages
    head = sent.raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?" not in head.split(b"\r\nIn-Reply-To:", 1)[1].split(b"\r\nAuto-Submitted:", 1)[0]
    assert f"\r\nIn-Reply-To: <{original}>\r\n".encode() in head
    assert f"\r\nReferences: <{original}>\r\n".encode() in head
    message = parsed(sent.raw)
    assert str(message["In-Reply-To"]) == str(message["References"]) == f"<{original}>"


def test_a_cc_gets_the_mail_too(smtp_server: SmtpServerFactory, engine: Engine, registry: Registry) -> None:
    server = smtp_server("plain")
    (planned,) = reminders(registry)
    escalated = replace(planned, cc=("skolchef@mariestad.se",), escalated=True)
    queued(engine, registry, [escalated])

    drain_outbox(engine, settings_for(server.smtp_settings()), lambda: T0)

    (received,) = server.messages
    assert received.rcpt_tos == ("sekreterare.grundskola@skovde.se", "skolchef@mariestad.se")
    assert parsed(received.raw)["Cc"] == "skolchef@mariestad.se"


def test_a_4xx_is_retried_later_with_backoff(
    smtp_server: SmtpServerFactory, engine: Engine, registry: Registry
) -> None:
    server = smtp_server("plain", fail_first=1)
    (row,) = queued(engine, registry, reminders(registry))
    settings = settings_for(server.smtp_settings())

    first = drain_outbox(engine, settings, lambda: T0)
    (after_first,) = outbox(engine)
    too_soon = drain_outbox(engine, settings, lambda: T0 + timedelta(seconds=30))
    later = drain_outbox(engine, settings, lambda: T0 + timedelta(minutes=1))

    assert first.retried == [row.id] and first.sent == []
    assert (after_first.state, after_first.attempts) == ("pending", 1)
    assert after_first.next_attempt == T0 + timedelta(minutes=1)
    assert after_first.last_error is not None and "451" in after_first.last_error
    assert too_soon.sent == [] and later.sent == [row.id]
    (received,) = server.messages
    assert parsed(received.raw)["Message-ID"] == f"<{row.message_id}>"
    assert server.data_attempts == 2


def test_a_5xx_fails_the_mail_and_alerts_the_admin_once(
    smtp_server: SmtpServerFactory, engine: Engine, registry: Registry
) -> None:
    server = smtp_server("plain", always_reject=True)
    (row,) = queued(engine, registry, reminders(registry))

    report = drain_outbox(engine, settings_for(server.smtp_settings()), lambda: T0)

    reminder, alert = outbox(engine)
    assert (reminder.state, reminder.attempts) == ("failed", 1) and "550" in (reminder.last_error or "")
    assert alert.kind == "alert" and alert.dedup_key == f"alert:delivery_failed:{row.id}"
    assert alert.recipients == "utbildning@skaraborg.se"
    assert "kunde inte levereras" in alert.body_text and "550" in alert.body_text
    # The alert goes through the same refusing server and fails too, but raises no alert of its own.
    assert alert.state == "failed"
    assert report.failed == [reminder.id, alert.id] and report.alerts == [alert.id]
    assert server.messages == []
    with Session(engine) as session:
        assert ledger(session) == []  # a failed reminder was not a reminder: the next working day tries again


def test_a_connection_dropped_mid_data_is_resent_with_the_same_message_id(
    smtp_server: SmtpServerFactory, engine: Engine, registry: Registry
) -> None:
    server = smtp_server("plain", drop_in_data=True)
    (row,) = queued(engine, registry, reminders(registry))
    settings = settings_for(server.smtp_settings())

    dropped = drain_outbox(engine, settings, lambda: T0)
    (after,) = outbox(engine)
    server.handler.behaviour.drop_in_data = False  # the server is back to normal
    resent = drain_outbox(engine, settings, lambda: T0 + timedelta(minutes=2))

    assert dropped.retried == [row.id] and dropped.error is not None
    assert (after.state, after.attempts) == ("pending", 1)
    assert resent.sent == [row.id]
    (received,) = server.messages
    assert parsed(received.raw)["Message-ID"] == f"<{row.message_id}>"
    assert server.data_attempts == 2


def test_after_max_attempts_the_mail_fails_and_the_admin_hears(
    smtp_server: SmtpServerFactory, engine: Engine, registry: Registry
) -> None:
    server = smtp_server("plain", fail_first=100)
    (row,) = queued(engine, registry, reminders(registry))
    settings = settings_for(server.smtp_settings(max_attempts=2))

    drain_outbox(engine, settings, lambda: T0)
    report = drain_outbox(engine, settings, lambda: T0 + timedelta(hours=1))

    reminder, alert = outbox(engine)
    assert (reminder.state, reminder.attempts) == ("failed", 2)
    assert report.alerts == [alert.id] and alert.kind == "alert"


def test_an_unreachable_server_claims_nothing(tmp_path: Path, engine: Engine, registry: Registry) -> None:
    from servers import free_port

    (row,) = queued(engine, registry, reminders(registry))
    settings = settings_for(SmtpSettings(host="127.0.0.1", port=free_port(), starttls=False, timeout=5))

    report = drain_outbox(engine, settings, lambda: T0)

    (after,) = outbox(engine)
    assert report.error is not None and "cannot connect" in report.error
    assert (after.state, after.attempts, after.next_attempt) == ("pending", 0, None)


def test_a_wrong_smtp_password_claims_nothing_and_is_not_printed(
    smtp_server: SmtpServerFactory, engine: Engine, registry: Registry
) -> None:
    server = smtp_server("auth")
    queued(engine, registry, reminders(registry))

    report = drain_outbox(engine, settings_for(server.smtp_settings(password="fel-lösen-123")), lambda: T0)

    assert report.error is not None and "login refused" in report.error and "fel-lösen-123" not in report.error
    assert outbox(engine)[0].attempts == 0


def test_two_drains_at_once_send_each_mail_once(
    smtp_server: SmtpServerFactory, engine: Engine, registry: Registry
) -> None:
    server = smtp_server("plain")
    rows = queued(engine, registry, reminders(registry, networks=("grundskola", "vux", "introduktion", "skis")))
    settings = settings_for(server.smtp_settings())

    async def both() -> list:
        return await asyncio.gather(drain(engine, settings, lambda: T0), drain(engine, settings, lambda: T0))

    first, second = asyncio.run(both())

    assert sorted(first.sent + second.sent) == sorted(row.id for row in rows)
    ids = [parsed(m.raw)["Message-ID"] for m in server.messages]
    assert sorted(ids) == sorted(f"<{row.message_id}>" for row in rows)


def test_a_row_claimed_by_one_worker_cannot_be_claimed_by_another(engine: Engine, registry: Registry) -> None:
    (row,) = queued(engine, registry, reminders(registry))
    assert row.id is not None

    mine = outbox_module._claim(engine, row.id, T0)
    theirs = outbox_module._claim(engine, row.id, T0)

    assert mine is not None and (mine.state, mine.attempts) == ("sending", 1)
    assert mine.next_attempt == T0 + SENDING_LEASE  # the lease
    assert theirs is None


def test_the_directory_transport_writes_one_eml_per_mail(tmp_path: Path, engine: Engine, registry: Registry) -> None:
    rows = queued(engine, registry, reminders(registry, networks=("grundskola", "vux")))
    directory = tmp_path / "outbox"

    report = drain_outbox(engine, settings_for(SmtpSettings(directory=directory)), lambda: T0)

    names = sorted(path.name for path in directory.iterdir())
    assert names == sorted(f"{row.id}-reminder.eml" for row in rows)
    assert report.sent == [row.id for row in rows] and len(report.files) == 2
    message = parsed((directory / f"{rows[0].id}-reminder.eml").read_bytes())
    assert message["Message-ID"] == f"<{rows[0].message_id}>"


# --- the remaining window: a crash between the server's 250 and the commit --------------------------

CRASHING_SENDER = """
import json, os, sys
from mailbot.outbox import drain_outbox
from mailbot.settings import AdminSettings, Settings, SmtpSettings
from registry.db import make_engine

arguments = json.loads(sys.argv[1])
settings = Settings(smtp=SmtpSettings(**arguments["smtp"]), admin=AdminSettings(addresses=["utbildning@skaraborg.se"]))
print("pid", os.getpid(), flush=True)
drain_outbox(make_engine(arguments["url"]), settings)
print("not reached: the hook exits the process")
"""


def test_a_sender_killed_after_the_servers_acceptance_resends_once_at_once_with_the_same_message_id(
    smtp_server: SmtpServerFactory, engine: Engine, registry: Registry
) -> None:
    """The killed sender ran on this machine and no longer runs: the next drain sends its row again at once,
    before the claim expires, with the same Message-ID and bytes; and never a third time."""
    server = smtp_server("plain")
    (row,) = queued(engine, registry, reminders(registry))
    smtp = server.smtp_settings().model_dump(mode="json", exclude={"password"})
    environment = {**os.environ, CRASH_AFTER_SEND_ENV: "1"}

    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_SENDER, json.dumps({"url": str(engine.url), "smtp": smtp})],
        env=environment, cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert crashed.returncode == 137, crashed.stderr
    assert "not reached" not in crashed.stdout
    (after_crash,) = outbox(engine)
    assert (after_crash.state, after_crash.attempts) == ("sending", 1)  # the server has it; we do not know
    assert after_crash.claimed_by is not None and after_crash.claimed_by.split(":")[1] == str(crashed_pid(crashed))
    assert len(server.messages) == 1

    settings = settings_for(server.smtp_settings())
    now = datetime.now(UTC)
    within_claim = drain_outbox(engine, settings, lambda: now + timedelta(minutes=1))
    never_again = drain_outbox(engine, settings, lambda: now + timedelta(days=1))

    assert within_claim.reclaimed == 1 and within_claim.sent == [row.id]
    assert never_again.sent == [] and never_again.reclaimed == 0
    first, second = server.messages
    assert parsed(first.raw)["Message-ID"] == parsed(second.raw)["Message-ID"] == f"<{row.message_id}>"
    assert first.raw == second.raw  # the very same bytes, so the copy can be dropped
    (final,) = outbox(engine)
    assert (final.state, final.attempts, final.claimed_by) == ("sent", 2, None)


def crashed_pid(crashed: subprocess.CompletedProcess[str]) -> int:
    return int(crashed.stdout.split()[1])


def test_a_claim_by_a_sender_on_another_machine_waits_for_its_expiry(
    smtp_server: SmtpServerFactory, engine: Engine, registry: Registry
) -> None:
    """Whether a process on another machine still sends cannot be told from here: its claim runs out first."""
    server = smtp_server("plain")
    (row,) = queued(engine, registry, reminders(registry))
    assert row.id is not None
    now = datetime.now(UTC)
    assert outbox_module._claim(engine, row.id, now, claimer="worker2.skaraborg.se:4242:0123456789ab") is not None
    settings = settings_for(server.smtp_settings())

    during_claim = drain_outbox(engine, settings, lambda: now + timedelta(minutes=5))
    after_claim = drain_outbox(engine, settings, lambda: now + SENDING_LEASE + timedelta(minutes=1))

    assert during_claim.sent == [] and during_claim.reclaimed == 0
    assert after_claim.reclaimed == 1 and after_claim.sent == [row.id]
    assert len(server.messages) == 1


def new_worker(tmp_path: Path, database_url: str, server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Worker:
    """A `mailbot run` worker of a process that holds no lease yet (as if just started), sending to `server`."""
    from mailbot.worker import Worker
    from registry import lease
    from registry.runtime import Runtime

    for name in [n for n in os.environ if n.startswith("MAILBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lease, "_trusted_until", {})
    monkeypatch.setattr(lease, "_holding", {})
    monkeypatch.setattr(lease, "taken_over_from", {})
    smtp = server.smtp_settings().model_dump(mode="json", exclude={"password"})
    return Worker(Runtime(config_path=None, overrides={"database": {"url": database_url}, "smtp": smtp}))


def test_the_new_lease_holder_sends_the_rows_of_the_holder_it_took_over_from_at_once(
    tmp_path: Path, smtp_server: SmtpServerFactory, engine: Engine, registry: Registry, database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The active worker on another machine died mid-send: its lease ran out and its claim has 10 minutes left.
    The worker that takes the lease over sends the row at once, with the same Message-ID."""
    from mailbot.worker import LEASE
    from registry import lease

    server = smtp_server("plain")
    (row,) = queued(engine, registry, reminders(registry))
    assert row.id is not None
    now = datetime.now(UTC)
    dead = "worker1.skaraborg.se:4242:0123456789ab"
    assert lease.acquire(engine, LEASE, dead, now - timedelta(minutes=1), timedelta(seconds=12))  # expired since
    claimed = outbox_module._claim(engine, row.id, now, claimer=dead)
    assert claimed is not None and claimed.next_attempt is not None
    worker = new_worker(tmp_path, database_url, server, monkeypatch)

    assert worker._renew()  # takes the lease over, and with it the dead holder's claim
    (taken,) = outbox(engine)
    assert (taken.state, taken.claimed_by) == ("pending", None)
    report = drain_outbox(engine, worker.rt.settings, lambda: now + timedelta(seconds=1))

    assert report.sent == [row.id]
    (received,) = server.messages
    assert parsed(received.raw)["Message-ID"] == f"<{row.message_id}>"
    (final,) = outbox(engine)
    assert final.sent_at is not None and final.sent_at < claimed.next_attempt  # before the claim would expire
    worker.rt.engine().dispose()


LIVE_CLAIMER = """
import sys
from mailbot.outbox import _claim
from registry.db import make_engine
from registry.lease import HOLDER

engine = make_engine(sys.argv[1])
from datetime import UTC, datetime
assert _claim(engine, int(sys.argv[2]), datetime.now(UTC)) is not None
engine.dispose()
print(HOLDER, flush=True)
sys.stdin.read()  # 'sending' until the test closes stdin
"""


def test_the_new_lease_holder_leaves_the_claim_of_a_live_sender_alone(
    tmp_path: Path, smtp_server: SmtpServerFactory, engine: Engine, registry: Registry, database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A `mailbot poll` of this machine is still sending a row when a worker takes the lease: the row stays its
    own (no second copy while it may be in the middle of DATA). Once that process is gone, the next drain sends
    it at once."""
    server = smtp_server("plain")
    (row,) = queued(engine, registry, reminders(registry))
    claimer = subprocess.Popen([sys.executable, "-c", LIVE_CLAIMER, database_url, str(row.id)], cwd=REPO,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert claimer.stdout is not None
        holder = claimer.stdout.readline().strip()
        worker = new_worker(tmp_path, database_url, server, monkeypatch)

        assert worker._renew()
        (still,) = outbox(engine)
        assert (still.state, still.claimed_by) == ("sending", holder)
        assert drain_outbox(engine, worker.rt.settings, lambda: datetime.now(UTC)).sent == []
    finally:
        assert claimer.stdin is not None
        claimer.stdin.close()
        claimer.wait(timeout=60)

    report = drain_outbox(engine, worker.rt.settings, lambda: datetime.now(UTC))

    assert (report.reclaimed, report.sent) == (1, [row.id])
    (received,) = server.messages
    assert parsed(received.raw)["Message-ID"] == f"<{row.message_id}>"
    worker.rt.engine().dispose()
