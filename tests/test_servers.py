"""The test servers themselves: each starts, answers like the real thing and stops.

If one of these fails, every integration test built on it is suspect; never mocked.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from email.message import EmailMessage
from typing import TYPE_CHECKING

import aiosmtplib
import psycopg
import pytest
import sqlalchemy
from imapclient import IMAPClient

if TYPE_CHECKING:
    from conftest import SmtpServerFactory
    from servers import DovecotServer, PostgresServer, SmtpServer

MAIL = (
    b"From: Anna Svensson <anna.svensson@skovde.se>\r\n"
    b"To: utbildning@skaraborg.se\r\n"
    b"Subject: =?utf-8?q?Protokoll_fr=C3=A5n_n=C3=A4tverksm=C3=B6te?=\r\n"
    b"Message-ID: <servers-test@skovde.se>\r\n"
    b"Date: Tue, 3 Sep 2024 10:15:00 +0200\r\n"
    b"\r\n"
    b"Hej!\r\n"
)


# --- Dovecot ------------------------------------------------------------------------------------


def test_dovecot_accepts_login_append_and_fetch(dovecot: DovecotServer) -> None:
    uid = dovecot.append(MAIL)

    with dovecot.client() as client:
        client.select_folder("INBOX", readonly=True)
        fetched = client.fetch([uid], ["BODY.PEEK[]"])

    assert fetched[uid][b"BODY[]"] == MAIL


def test_dovecot_starts_each_test_with_an_empty_inbox(dovecot: DovecotServer) -> None:
    assert dovecot.status()["MESSAGES"] == 0
    assert dovecot.flags_of_all() == {}


def test_dovecot_rejects_a_wrong_password(dovecot: DovecotServer) -> None:
    client = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=5)
    with pytest.raises(IMAPClient.Error):
        client.login(dovecot.user, "fel-losenord")
    client.shutdown()


def test_dovecot_accepts_xoauth2_with_the_token_it_issued(dovecot: DovecotServer) -> None:
    client = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=5)
    client.oauth2_login(dovecot.user, dovecot.oauth_token)
    client.logout()

    rejected = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=5)
    with pytest.raises(IMAPClient.Error):
        rejected.oauth2_login(dovecot.user, "not-the-token")
    rejected.shutdown()


def test_dovecot_keeps_custom_keywords_and_reports_flags(dovecot: DovecotServer) -> None:
    first = dovecot.append(MAIL)
    second = dovecot.append(MAIL, flags=["\\Seen"])

    with dovecot.client() as client:
        client.select_folder("INBOX")
        client.add_flags([first], ["Registrerad"], silent=True)

    assert dovecot.flags_of_all() == {first: {"Registrerad"}, second: {"\\Seen"}}


def test_dovecot_offers_starttls_and_implicit_tls_with_the_test_ca(dovecot: DovecotServer) -> None:
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))

    implicit = IMAPClient(dovecot.host, dovecot.tls_port, ssl=True, ssl_context=context, timeout=5)
    implicit.login(dovecot.user, dovecot.password)
    implicit.logout()

    upgraded = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=5)
    upgraded.starttls(context)
    upgraded.login(dovecot.user, dovecot.password)
    upgraded.logout()


def test_dovecot_reset_mailbox_gives_a_new_uidvalidity(dovecot: DovecotServer) -> None:
    dovecot.append(MAIL)
    dovecot.create_folder("Arkiv")
    dovecot.append(MAIL, folder="Arkiv")
    before = {folder: dovecot.uidvalidity(folder) for folder in ("INBOX", "Arkiv")}

    after = {folder: dovecot.reset_mailbox(folder) for folder in ("INBOX", "Arkiv")}

    for folder in ("INBOX", "Arkiv"):
        assert after[folder] != before[folder]
        assert dovecot.status(folder)["MESSAGES"] == 0
    assert dovecot.append(MAIL) == 1  # UIDs start again under the new UIDVALIDITY


def test_dovecot_stop_refuses_connections_until_start(dovecot: DovecotServer) -> None:
    dovecot.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((dovecot.host, dovecot.port), timeout=2).close()

    dovecot.start()

    assert dovecot.status()["MESSAGES"] == 0


# --- SMTP ---------------------------------------------------------------------------------------


def outgoing_mail() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Utbildning Skaraborg <utbildning@skaraborg.se>"
    message["To"] = "anna.svensson@skovde.se"
    message["Subject"] = "Påminnelse: mötesdatum för nätverket"
    message["Message-ID"] = "<reminder-1@mailbot.skaraborg.se>"
    message.set_content("Hej! Vi saknar era mötesdatum för hösten.\n")
    return message


def send(server: SmtpServer, *, password: str | None = None) -> None:
    """Send outgoing_mail() the way mailbot's outbox would for the server's mode."""
    asyncio.run(
        aiosmtplib.send(
            outgoing_mail(),
            hostname=server.host,
            port=server.port,
            use_tls=server.mode == "tls",
            start_tls=server.mode in ("starttls", "starttls_auth"),
            username=server.user if server.mode in ("auth", "starttls_auth") else None,
            password=(password or server.password) if server.mode in ("auth", "starttls_auth") else None,
            cert_bundle=str(server.ca_file),
            timeout=10,
        )
    )


@pytest.mark.parametrize("mode", ["plain", "starttls", "auth", "starttls_auth", "tls"])
def test_smtp_server_records_what_it_accepts(smtp_server: SmtpServerFactory, mode: str) -> None:
    server = smtp_server(mode)

    send(server)

    [received] = server.messages
    assert received.mail_from == "utbildning@skaraborg.se"
    assert received.rcpt_tos == ("anna.svensson@skovde.se",)
    assert b"Message-ID: <reminder-1@mailbot.skaraborg.se>" in received.raw


def test_smtp_starttls_server_refuses_mail_before_starttls(smtp_server: SmtpServerFactory) -> None:
    server = smtp_server("starttls")

    with pytest.raises(aiosmtplib.SMTPException):
        asyncio.run(aiosmtplib.send(outgoing_mail(), hostname=server.host, port=server.port, start_tls=False))

    assert server.messages == []


def test_smtp_auth_server_rejects_a_wrong_password(smtp_server: SmtpServerFactory) -> None:
    server = smtp_server("auth")

    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        send(server, password="fel-lösenord")

    assert server.messages == []


def test_smtp_fail_first_answers_451_then_accepts(smtp_server: SmtpServerFactory) -> None:
    server = smtp_server(fail_first=2)

    for _attempt in range(2):
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            send(server)
        assert refused.value.code == 451
    send(server)

    assert server.data_attempts == 3
    assert len(server.messages) == 1


def test_smtp_always_reject_answers_550(smtp_server: SmtpServerFactory) -> None:
    server = smtp_server(always_reject=True)

    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        send(server)

    assert refused.value.code == 550
    assert server.messages == []


def test_smtp_drop_in_data_cuts_the_connection_without_an_answer(smtp_server: SmtpServerFactory) -> None:
    server = smtp_server(drop_in_data=True)

    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        send(server)

    assert server.data_attempts == 1
    assert server.messages == []


# --- PostgreSQL ---------------------------------------------------------------------------------


def test_postgres_answers_select_1_through_sqlalchemy(postgres: str) -> None:
    engine = sqlalchemy.create_engine(postgres)
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT 1")).scalar_one() == 1
        # C.UTF-8, not C: case mapping must know Swedish letters for case-insensitive matching.
        assert connection.execute(sqlalchemy.text("SELECT lower('ÅSA ÖSTLUND')")).scalar_one() == "åsa östlund"
    engine.dispose()


def test_fresh_postgres_url_is_an_empty_database_of_its_own(fresh_postgres_url: str, postgres: str) -> None:
    assert fresh_postgres_url != postgres
    engine = sqlalchemy.create_engine(fresh_postgres_url)
    with engine.connect() as connection:
        tables = connection.execute(
            sqlalchemy.text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        ).scalar_one()
    engine.dispose()
    assert tables == 0


def test_fresh_postgres_database_is_dropped_after_the_test(postgres_server: PostgresServer) -> None:
    name = postgres_server.create_database()
    with psycopg.connect(postgres_server.dsn(name)):
        pass  # a connection left open must not block the drop

    postgres_server.drop_database(name)

    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(postgres_server.dsn(name)).close()
