"""Reading mail from a real Dovecot over IMAP and from a Maildir on disk (mailbot.sources).

Each test checks one promise: new mail in UID order, nothing \\Seen, only our keywords, clear errors.
"""

from __future__ import annotations

import mailbox
import os
import socket
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from mailbot.imap_auth import OAuthTokenProvider
from mailbot.settings import ImapSettings, Settings
from mailbot.sources import ImapSource, MaildirSource, RawMail, SourceError, is_loopback, open_source

if TYPE_CHECKING:
    from servers import DovecotServer

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def outlook_mail(number: int, *, subject: str = "Protokoll från nätverksmöte i Skövde", padding: int = 0) -> bytes:
    """A mail shaped like one from Outlook on Windows: Swedish, multipart/alternative, Exchange headers."""
    message = EmailMessage(policy=SMTP)
    message["From"] = "Åsa Öberg <asa.oberg@falkoping.se>"
    message["To"] = "Utbildning Skaraborg <utbildning@skaraborg.se>"
    message["Subject"] = f"{subject} ({number})"
    message["Date"] = "Tue, 03 Sep 2024 10:15:00 +0200"
    message["Message-ID"] = f"<DB9PR0{number}MB1234.eurprd03.prod.outlook.com>"
    message["Thread-Topic"] = subject
    message["Thread-Index"] = "AdrD4x0Q3h8hVtJ+Q0+3x1bnP2oZ8g=="
    message["Accept-Language"] = "sv-SE, en-US"
    message["Content-Language"] = "sv-SE"
    message["X-MS-Has-Attach"] = "yes" if padding else "no"
    message.set_content("Hej!\n\nHär kommer protokollet från mötet i fredags. Hälsningar, Åsa\n" + "å" * padding)
    message.add_alternative("<html><body><p>Hej!</p><p>Här kommer protokollet.</p></body></html>", subtype="html")
    message.set_boundary(f"_000_DB9PR0{number}MB1234eurprd03prod_")  # fixed, so the bytes are comparable
    return message.as_bytes()


def append_mails(dovecot: DovecotServer, count: int, folder: str = "INBOX") -> list[int]:
    return [dovecot.append(outlook_mail(number), folder=folder) for number in range(1, count + 1)]


def fetch_all(source: ImapSource | MaildirSource, last_uid: int = 0) -> list[RawMail]:
    return [mail for batch in source.fetch_after(last_uid) for mail in batch]


# --- IMAP: reading ------------------------------------------------------------------------------


def test_status_gives_uidvalidity_and_next_uid(dovecot: DovecotServer) -> None:
    append_mails(dovecot, 3)

    with ImapSource(dovecot.imap_settings()) as source:
        assert source.status() == (dovecot.uidvalidity(), 4)


def test_fetch_after_yields_new_mail_in_uid_order_in_batches(dovecot: DovecotServer) -> None:
    uids = append_mails(dovecot, 5)

    with ImapSource(dovecot.imap_settings(batch_size=2)) as source:
        batches = list(source.fetch_after(0))

    assert [[mail.uid for mail in batch] for batch in batches] == [uids[0:2], uids[2:4], uids[4:5]]
    first = batches[0][0]
    assert first.raw == outlook_mail(1)
    assert first.size == len(outlook_mail(1))
    assert (first.folder, first.uidvalidity) == ("INBOX", dovecot.uidvalidity())


def test_fetch_after_returns_only_mail_after_the_last_uid(dovecot: DovecotServer) -> None:
    uids = append_mails(dovecot, 4)

    with ImapSource(dovecot.imap_settings()) as source:
        assert [mail.uid for mail in fetch_all(source, last_uid=uids[1])] == uids[2:]


def test_fetch_after_the_highest_uid_returns_nothing(dovecot: DovecotServer) -> None:
    # "UID n:*" matches the highest UID even when it is below n; the source must filter it out.
    uids = append_mails(dovecot, 2)

    with ImapSource(dovecot.imap_settings()) as source:
        assert fetch_all(source, last_uid=uids[-1]) == []
        assert fetch_all(source, last_uid=uids[-1] + 10) == []


def test_fetch_keeps_the_internal_date_as_an_aware_utc_time(dovecot: DovecotServer) -> None:
    received = datetime(2024, 9, 3, 10, 15, 30, tzinfo=STOCKHOLM)
    dovecot.append(outlook_mail(1), internal_date=received)

    with ImapSource(dovecot.imap_settings()) as source:
        [mail] = fetch_all(source)

    assert mail.internal_date == received
    assert mail.internal_date is not None and mail.internal_date.utcoffset() is not None


def test_fetch_reports_existing_flags_and_sets_none(dovecot: DovecotServer) -> None:
    unread = dovecot.append(outlook_mail(1))
    answered = dovecot.append(outlook_mail(2), flags=["\\Seen", "\\Answered"])
    before = dovecot.flags_of_all()

    with ImapSource(dovecot.imap_settings()) as source:
        mails = {mail.uid: mail for mail in fetch_all(source)}

    assert dovecot.flags_of_all() == before
    assert "\\Seen" not in dovecot.flags_of_all()[unread]
    assert set(mails[answered].flags) == {"\\Seen", "\\Answered"}
    assert mails[unread].flags == ()


def test_oversize_mail_comes_without_bytes_but_with_its_size(dovecot: DovecotServer) -> None:
    small = dovecot.append(outlook_mail(1))
    large_bytes = outlook_mail(2, padding=20_000)
    large = dovecot.append(large_bytes)

    with ImapSource(dovecot.imap_settings(max_message_bytes=10_000)) as source:
        mails = {mail.uid: mail for mail in fetch_all(source)}

    assert mails[small].raw == outlook_mail(1)
    assert mails[large].raw is None
    assert mails[large].size == len(large_bytes)
    assert "\\Seen" not in dovecot.flags_of_all()[large]


def test_status_after_fetch_sees_mail_that_arrived_meanwhile(dovecot: DovecotServer) -> None:
    append_mails(dovecot, 1)

    with ImapSource(dovecot.imap_settings()) as source:
        fetch_all(source)
        dovecot.append(outlook_mail(2))
        uidvalidity, uidnext = source.status()
        assert [mail.uid for mail in fetch_all(source, last_uid=1)] == [2]

    assert (uidvalidity, uidnext) == (dovecot.uidvalidity(), 3)


def test_status_shows_a_new_uidvalidity_when_the_folder_was_recreated(dovecot: DovecotServer) -> None:
    append_mails(dovecot, 2)
    with ImapSource(dovecot.imap_settings()) as source:
        before = source.status()

    dovecot.reset_mailbox()
    dovecot.append(outlook_mail(3))

    with ImapSource(dovecot.imap_settings()) as source:
        after = source.status()
        [mail] = fetch_all(source)
    assert after[0] != before[0]
    assert after == (mail.uidvalidity, 2)


def test_a_folder_other_than_inbox_is_read(dovecot: DovecotServer) -> None:
    dovecot.reset_mailbox("Nätverk/Inkommande")
    [uid] = append_mails(dovecot, 1, folder="Nätverk/Inkommande")

    with ImapSource(dovecot.imap_settings(folder="Nätverk/Inkommande")) as source:
        [mail] = fetch_all(source)

    assert (mail.uid, mail.folder) == (uid, "Nätverk/Inkommande")


# --- IMAP: changing only what we ask ------------------------------------------------------------


def test_mark_adds_the_keyword_and_nothing_else(dovecot: DovecotServer) -> None:
    first, second, third = append_mails(dovecot, 3)

    with ImapSource(dovecot.imap_settings()) as source:
        fetch_all(source)
        source.mark([first, third], "Registrerad")
        source.mark([second], "Granskas")

    assert dovecot.flags_of_all() == {first: {"Registrerad"}, second: {"Granskas"}, third: {"Registrerad"}}


@pytest.mark.parametrize("keyword", ["\\Seen", "\\Deleted", "Registrerad Granskas", "Åtgärdad", ""])
def test_mark_refuses_what_is_not_a_keyword(dovecot: DovecotServer, keyword: str) -> None:
    [uid] = append_mails(dovecot, 1)

    with ImapSource(dovecot.imap_settings()) as source, pytest.raises(ValueError):
        source.mark([uid], keyword)

    assert dovecot.flags_of_all() == {uid: set()}


def test_move_puts_mail_in_the_configured_folder(dovecot: DovecotServer) -> None:
    dovecot.reset_mailbox("Registrerat")
    first, second = append_mails(dovecot, 2)

    with ImapSource(dovecot.imap_settings()) as source:
        source.move([first], "Registrerat")

    assert list(dovecot.flags_of_all()) == [second]
    assert dovecot.status("Registrerat")["MESSAGES"] == 1


def test_move_to_a_missing_folder_is_a_clear_error(dovecot: DovecotServer) -> None:
    [uid] = append_mails(dovecot, 1)

    with ImapSource(dovecot.imap_settings()) as source, pytest.raises(SourceError, match="'Finns inte' does not"):
        source.move([uid], "Finns inte")

    assert list(dovecot.flags_of_all()) == [uid]


# --- IMAP: connecting and failing clearly -------------------------------------------------------


def test_implicit_tls_with_the_private_ca(dovecot: DovecotServer) -> None:
    append_mails(dovecot, 1)

    settings = dovecot.imap_settings(port=dovecot.tls_port, ssl=True)
    with ImapSource(settings) as source:
        assert len(fetch_all(source)) == 1


def test_starttls_with_the_private_ca(dovecot: DovecotServer) -> None:
    with ImapSource(dovecot.imap_settings(starttls=True)) as source:
        assert source.status()[1] == 1


def test_tls_to_an_untrusted_certificate_is_refused(dovecot: DovecotServer) -> None:
    settings = dovecot.imap_settings(port=dovecot.tls_port, ssl=True, ca_file=None)

    with pytest.raises(
        SourceError, match=r"cannot connect to IMAP server 127\.0\.0\.1:\d+: TLS certificate not trusted"
    ):
        ImapSource(settings).connect()


def test_plaintext_is_refused_for_a_remote_server() -> None:
    settings = ImapSettings(host="imap.skaraborg.se", port=143, ssl=False, starttls=False, user="u", password="p")

    with pytest.raises(SourceError, match="refusing plaintext IMAP to imap.skaraborg.se:143"):
        ImapSource(settings)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True), ("10.0.0.1", False),
     ("imap.skaraborg.se", False), ("localhost.skaraborg.se", False)],
)  # fmt: skip
def test_only_loopback_hosts_count_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_wrong_password_is_a_source_error_that_does_not_show_the_password(dovecot: DovecotServer) -> None:
    wrong = "fel-lösenord-4711"

    with pytest.raises(SourceError) as failed:
        ImapSource(dovecot.imap_settings(password=wrong)).connect()

    message = str(failed.value)
    assert message.startswith(f"IMAP login failed for user '{dovecot.user}' on 127.0.0.1:{dovecot.port}: ")
    assert "AUTHENTICATIONFAILED" in message
    assert wrong not in message and "4711" not in message
    assert wrong not in repr(failed.value.__cause__)


def test_a_password_that_is_not_ascii_logs_in(dovecot: DovecotServer) -> None:
    settings = dovecot.imap_settings(user=dovecot.unicode_user, password=dovecot.unicode_password)

    with ImapSource(settings) as source:
        assert source.status()[1] == 1


def test_password_file_is_read(dovecot: DovecotServer, tmp_path: Path) -> None:
    password_file = tmp_path / "imap-password"
    password_file.write_text(dovecot.password + "\n", encoding="utf-8")

    with ImapSource(dovecot.imap_settings(password=None, password_file=password_file)) as source:
        assert source.status()[1] == 1


class FixedToken:
    """Stands in for OAuthTokenProvider (which asks Microsoft Entra ID) with a token we chose."""

    def __init__(self, token: str) -> None:
        self.value = token

    def token(self) -> str:
        return self.value


def test_xoauth2_logs_in_with_the_bearer_token(dovecot: DovecotServer) -> None:
    settings = dovecot.imap_settings(auth="xoauth2", password=None)

    with ImapSource(settings, token_provider=FixedToken(dovecot.oauth_token)) as source:
        assert source.status()[1] == 1

    assert dovecot.oauth_tokens_seen[-1] == dovecot.oauth_token


def test_rejected_token_is_a_source_error_that_does_not_show_the_token(dovecot: DovecotServer) -> None:
    expired = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.utgangen-token"
    settings = dovecot.imap_settings(auth="xoauth2", password=None)

    with pytest.raises(SourceError, match="IMAP login failed for user 'mailbot'") as failed:
        ImapSource(settings, token_provider=FixedToken(expired)).connect()

    assert expired not in str(failed.value)


def test_xoauth2_without_tenant_and_client_says_what_to_set(dovecot: DovecotServer) -> None:
    settings = dovecot.imap_settings(auth="xoauth2", password=None, oauth_client_id="app-id")

    with pytest.raises(SourceError, match="imap.oauth_tenant, imap.oauth_client_secret are not set"):
        ImapSource(settings).connect()


def test_token_provider_never_shows_its_secret() -> None:
    provider = OAuthTokenProvider("skaraborg.onmicrosoft.com", "app-id", "hemlig-klienthemlighet")

    assert "hemlig" not in repr(provider)


def test_server_that_is_down_is_a_source_error(dovecot: DovecotServer) -> None:
    dovecot.stop()

    with pytest.raises(
        SourceError, match=rf"^cannot connect to IMAP server 127\.0\.0\.1:{dovecot.port}: connection refused$"
    ):
        ImapSource(dovecot.imap_settings()).connect()


def test_server_going_down_during_a_pass_is_a_source_error(dovecot: DovecotServer) -> None:
    append_mails(dovecot, 3)

    with ImapSource(dovecot.imap_settings(batch_size=1)) as source:
        batches = source.fetch_after(0)
        next(batches)
        dovecot.stop()
        with pytest.raises(SourceError, match=rf"lost the connection to IMAP server 127\.0\.0\.1:{dovecot.port}"):
            next(batches)


def test_missing_folder_is_a_source_error(dovecot: DovecotServer) -> None:
    with ImapSource(dovecot.imap_settings(folder="Finns inte")) as source:
        with pytest.raises(SourceError, match="refused STATUS of folder 'Finns inte'"):
            source.status()
        with pytest.raises(SourceError, match="refused SELECT of folder 'Finns inte'"):
            fetch_all(source)


def test_server_that_never_greets_times_out_as_a_source_error() -> None:
    # A TCP listener that accepts (kernel backlog) and then says nothing: a hung server.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        settings = ImapSettings(
            host="127.0.0.1", port=port, ssl=False, starttls=False, user="u", password="p",
            connect_timeout=0.3, read_timeout=0.3,
        )  # fmt: skip

        with pytest.raises(SourceError, match=rf"cannot connect to IMAP server 127\.0\.0\.1:{port}: timed out"):
            ImapSource(settings).connect()


def test_connection_cut_between_passes_is_reported_on_the_next_command(dovecot: DovecotServer) -> None:
    # Like Exchange ending an idle session: the server restarts while the worker holds a connection.
    with ImapSource(dovecot.imap_settings()) as source:
        source.status()
        dovecot.stop()
        dovecot.start()
        with pytest.raises(SourceError, match=rf"lost the connection to IMAP server 127\.0\.0\.1:{dovecot.port}"):
            source.status()


# --- open_source --------------------------------------------------------------------------------


def test_open_source_reads_the_maildir_when_one_is_set(tmp_path: Path) -> None:
    mailbox.Maildir(tmp_path / "sample", create=True)

    assert isinstance(open_source(Settings(maildir=tmp_path / "sample")), MaildirSource)


def test_open_source_reads_imap_when_a_host_is_set(dovecot: DovecotServer) -> None:
    assert isinstance(open_source(Settings(imap=dovecot.imap_settings())), ImapSource)


def test_open_source_without_a_mailbox_says_what_to_set() -> None:
    with pytest.raises(SourceError, match="no mailbox configured: set imap.host or maildir"):
        open_source(Settings(imap=ImapSettings(host=None)))


# --- Maildir ------------------------------------------------------------------------------------


def build_maildir(root: Path, count: int) -> Path:
    path = root / "Maildir"
    box = mailbox.Maildir(path, create=True)
    for number in range(1, count + 1):
        message = mailbox.MaildirMessage(outlook_mail(number))
        if number == 2:
            message.set_subdir("cur")
            message.set_flags("RS")  # read and answered in a mail client
        box.add(message)
    return path


def as_stored(raw: bytes) -> bytes:
    """The bytes stdlib mailbox writes: Maildir files hold LF line ends; the source returns them as they are."""
    return raw.replace(b"\r\n", b"\n")


def disk_state(path: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under path with its size and mtime in nanoseconds."""
    state = {}
    for directory, subdirs, files in os.walk(path):
        for name in [*subdirs, *files, "."]:
            full = Path(directory, name)
            stat = full.stat()
            state[str(full.relative_to(path))] = (stat.st_size, stat.st_mtime_ns)
    return state


def test_maildir_uids_follow_delivery_order_and_are_stable(tmp_path: Path) -> None:
    path = build_maildir(tmp_path, 4)

    with MaildirSource(path) as source:
        first = [(mail.uid, mail.raw) for mail in fetch_all(source)]
    with MaildirSource(path) as source:
        second = [(mail.uid, mail.raw) for mail in fetch_all(source)]

    assert first == second
    assert first == [(number, as_stored(outlook_mail(number))) for number in range(1, 5)]


def test_maildir_is_never_changed_by_reading_marking_or_moving(tmp_path: Path) -> None:
    path = build_maildir(tmp_path, 3)
    before = disk_state(path)

    with MaildirSource(path) as source:
        source.status()
        uids = [mail.uid for mail in fetch_all(source)]
        source.mark(uids, "Registrerad")
        source.move(uids, "Registrerat")

    assert disk_state(path) == before


def test_maildir_status_and_fetch_after_work_like_imap(tmp_path: Path) -> None:
    path = build_maildir(tmp_path, 5)

    with MaildirSource(path, batch_size=2) as source:
        assert source.status() == (1, 6)
        assert [[mail.uid for mail in batch] for batch in source.fetch_after(2)] == [[3, 4], [5]]
        assert fetch_all(source, last_uid=5) == []


def test_maildir_mail_carries_flags_date_and_size(tmp_path: Path) -> None:
    path = build_maildir(tmp_path, 2)

    with MaildirSource(path, max_message_bytes=100) as source:
        first, answered = fetch_all(source)

    assert set(answered.flags) == {"\\Seen", "\\Answered"}
    assert first.flags == ()
    assert first.raw is None and first.size == len(as_stored(outlook_mail(1)))
    assert first.internal_date is not None and first.internal_date.tzinfo is UTC
    assert first.folder == str(path) and first.uidvalidity == 1


def test_missing_maildir_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"), MaildirSource(tmp_path / "saknas"):
        pass


def test_a_directory_that_is_not_a_maildir_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is not a Maildir"), MaildirSource(tmp_path):
        pass
