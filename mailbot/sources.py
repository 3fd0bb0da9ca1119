"""Where raw mail comes from (an IMAP folder or a local Maildir): bytes plus a stable id, nothing else.

Never changes a mailbox on its own: no \\Seen (BODY.PEEK only), no deletes; keywords and moves only when asked.
"""

from __future__ import annotations

import imaplib
import ipaddress
import logging
import mailbox
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from mailbot.imap_auth import OAuthError, OAuthTokenProvider, TokenProvider, shared_token_provider
from mailbot.settings import ImapSettings, Settings
from registry.errors import ExpectedError

# imapclient is imported by the IMAP source when it connects: a Maildir, and `mailbot check` without a mailbox,
# start without it.
if TYPE_CHECKING:
    from imapclient import IMAPClient

log = logging.getLogger(__name__)

# Keywords are IMAP atoms (RFC 3501 / RFC 9051 section 9: flag-keyword = atom): printable ASCII
# without atom-specials. A leading backslash would make it a system flag such as \Seen.
_KEYWORD = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+")
_STORE_CHUNK = 500  # UIDs per STORE/MOVE, so a command line stays far below servers' limits (Dovecot: 64 KiB)
_BODY_FETCH_BYTES = 32 * 1024 * 1024  # at most this much message text per FETCH response


class SourceError(ExpectedError):
    """The mailbox cannot be read (connection, TLS, login, folder); the message never holds a secret."""


@dataclass(frozen=True)
class RawMail:
    """One message as the mailbox has it; (folder, uidvalidity, uid) identifies it."""

    folder: str
    uidvalidity: int
    uid: int
    raw: bytes | None  # None when the message is over max_message_bytes (size says how big)
    size: int
    internal_date: datetime | None  # aware, UTC
    flags: tuple[str, ...]
    header: bytes | None = None  # the header block alone, for an over-size message (its identity)


class MailSource(Protocol):
    """A folder to read incrementally by UID; used as a context manager (connect ... logout)."""

    folder: str
    incremental: bool  # whether "uidnext <= last_uid + 1" proves that nothing is new

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None: ...

    def status(self) -> tuple[int, int]:
        """(uidvalidity, uidnext) of the folder: nothing is new when uidnext <= last_uid + 1."""
        ...

    def fetch_after(self, last_uid: int) -> Iterator[list[RawMail]]:
        """The messages with UID > last_uid, in ascending UID order, in batches of batch_size."""
        ...

    def mark(self, uids: Sequence[int], keyword: str) -> None:
        """Add the IMAP keyword to the messages (never a system flag such as \\Seen)."""
        ...

    def move(self, uids: Sequence[int], folder: str) -> None:
        """Move the messages to another folder (only when the settings ask for it)."""
        ...


def open_source(settings: Settings, *, token_provider: TokenProvider | None = None) -> MailSource:
    """The configured mailbox: a local Maildir when settings.maildir is set, else the IMAP folder."""
    imap = settings.imap
    if settings.maildir is not None:
        return MaildirSource(settings.maildir, batch_size=imap.batch_size, max_message_bytes=imap.max_message_bytes)
    if not imap.host:
        raise SourceError("no mailbox configured: set imap.host or maildir")
    return ImapSource(imap, token_provider=token_provider)


# --- IMAP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Selected:
    uidvalidity: int
    uidnext: int
    permanent_flags: tuple[str, ...]
    read_only: bool


class ImapSource(MailSource):
    """One IMAP folder over implicit TLS, STARTTLS or (loopback only) plaintext."""

    def __init__(self, settings: ImapSettings, *, token_provider: TokenProvider | None = None) -> None:
        if not settings.host:
            raise SourceError("no IMAP server configured: set imap.host")
        if not settings.user:
            raise SourceError(f"no IMAP user configured for {settings.host}: set imap.user")
        if not settings.ssl and not settings.starttls and not is_loopback(settings.host):
            raise SourceError(
                f"refusing plaintext IMAP to {settings.host}:{settings.port}: set imap.ssl (port 993) or "
                "imap.starttls; plaintext is only for a test server on loopback"
            )
        self.settings = settings
        self.folder = settings.folder
        self.incremental = True  # UIDs only grow within a UIDVALIDITY (RFC 3501 2.3.1.1)
        self.address = f"{settings.host}:{settings.port}"
        self._token_provider = token_provider
        self._client: IMAPClient | None = None
        self._selected: _Selected | None = None
        self._secrets: list[str] = []
        self._warned_keywords: set[str] = set()

    # connection

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> None:
        if self._client is not None:
            return
        settings = self.settings
        from imapclient import IMAPClient, SocketTimeout

        context = self._tls_context() if settings.ssl or settings.starttls else None
        with self._failures("connect", connecting=True):
            client = IMAPClient(
                settings.host,
                port=settings.port,
                use_uid=True,
                ssl=settings.ssl,
                ssl_context=context,
                timeout=SocketTimeout(connect=settings.connect_timeout, read=settings.read_timeout),
            )
        # Aware datetimes for INTERNALDATE, in the server's offset; converted to UTC below.
        client.normalise_times = False
        try:
            if not settings.ssl and settings.starttls:
                self._start_tls(client, context)
            self._login(client)
        except BaseException:
            client.shutdown()
            raise
        self._client = client

    def close(self) -> None:
        client, self._client, self._selected = self._client, None, None
        if client is None:
            return
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            # LOGOUT is a courtesy; a connection that is already gone has nothing to log out of.
            client.shutdown()

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.settings.ca_file is not None:
            # In addition to the system CAs: ca_file is for a private server (the tests' Dovecot).
            try:
                context.load_verify_locations(cafile=str(self.settings.ca_file))
            except (OSError, ssl.SSLError) as error:
                raise SourceError(f"imap.ca_file: cannot load {self.settings.ca_file}: {describe(error)}") from None
        return context

    def _start_tls(self, client: IMAPClient, context: ssl.SSLContext | None) -> None:
        from imapclient.exceptions import CapabilityError

        try:
            with self._failures("STARTTLS", connecting=True):
                client.starttls(context)
        except SourceError as error:
            if isinstance(error.__cause__, CapabilityError):
                raise SourceError(
                    f"IMAP server {self.address} does not offer STARTTLS; refusing to log in without TLS "
                    "(use imap.ssl for port 993)"
                ) from None
            raise

    def _login(self, client: IMAPClient) -> None:
        settings = self.settings
        user = settings.user or ""
        if settings.auth == "xoauth2":
            provider = self._token_provider or _shared_provider(settings)
            try:
                token = provider.token()
            except OAuthError as error:
                raise SourceError(f"IMAP login for user {user!r} on {self.address}: {error}") from None
            self._secrets.append(token)
            with self._failures("login"):
                client.oauth2_login(user, token)
            return
        password = settings.resolved_password()
        if password is None:
            raise SourceError(f"no IMAP password for user {user!r}: set imap.password or imap.password_file")
        self._secrets.append(password)
        with self._failures("login"):
            if password.isascii() and user.isascii():
                client.login(user, password)
            elif client.has_capability("AUTH=PLAIN"):
                # LOGIN takes 7-bit strings only (RFC 3501 4.3); SASL PLAIN carries UTF-8 (RFC 4616).
                client.plain_login(user, password)
            else:
                raise SourceError(
                    f"IMAP login failed for user {user!r} on {self.address}: the password is not ASCII "
                    "and the server offers no AUTHENTICATE PLAIN"
                )

    @property
    def _connected(self) -> IMAPClient:
        if self._client is None:
            raise SourceError(f"not connected to IMAP server {self.address}: use the source in a with block")
        return self._client

    # reading

    def status(self) -> tuple[int, int]:
        client = self._connected
        if self._selected is not None:
            # STATUS SHOULD NOT be used on the selected mailbox (RFC 3501 6.3.10, RFC 9051 6.3.11);
            # a new SELECT answers the same two numbers (UIDVALIDITY and UIDNEXT are required there).
            self._selected = None
            selected = self._select()
            return selected.uidvalidity, selected.uidnext
        # One round trip and no SELECT: the idle pass of the intake needs nothing more.
        with self._failures(f"STATUS of folder {self.folder!r}"):
            response = client.folder_status(self.folder, [b"UIDVALIDITY", b"UIDNEXT"])
        return int(response[b"UIDVALIDITY"]), int(response[b"UIDNEXT"])

    def _select(self) -> _Selected:
        if self._selected is not None:
            return self._selected
        # Read-write because mark() needs STORE; fetches use BODY.PEEK[] so nothing becomes \Seen.
        with self._failures(f"SELECT of folder {self.folder!r}"):
            response = self._connected.select_folder(self.folder, readonly=False)
        self._selected = _Selected(
            uidvalidity=int(response[b"UIDVALIDITY"]),
            uidnext=int(response.get(b"UIDNEXT", 0)),
            permanent_flags=tuple(_text(flag) for flag in response.get(b"PERMANENTFLAGS", ())),
            read_only=bool(response.get(b"READ-ONLY")),
        )
        return self._selected

    # waiting for new mail (IMAP IDLE, RFC 2177)

    def supports_idle(self) -> bool:
        with self._failures("CAPABILITY"):
            return bool(self._connected.has_capability("IDLE"))

    def wait_for_new_mail(self, seconds: float, stop: threading.Event, step: float = 1.0) -> bool:
        """IDLE on the folder until the server announces new mail (EXISTS), `seconds` pass or `stop` is set;
        True when new mail was announced. The folder is EXAMINEd (read-only): waiting changes nothing, and
        this connection is never the one that fetches or marks."""
        client = self._connected
        self._selected = None
        with self._failures(f"EXAMINE of folder {self.folder!r}"):
            client.select_folder(self.folder, readonly=True)
        announced = False
        deadline = time.monotonic() + seconds
        with self._failures("IDLE"):
            client.idle()
            try:
                # Short checks, so that `stop` (SIGTERM) is noticed within `step` seconds.
                while not announced and not stop.is_set() and time.monotonic() < deadline:
                    responses = client.idle_check(timeout=min(step, max(0.0, deadline - time.monotonic())))
                    announced = any(b"EXISTS" in response for response in responses if isinstance(response, tuple))
            finally:
                client.idle_done()
        return announced

    def fetch_after(self, last_uid: int) -> Iterator[list[RawMail]]:
        selected = self._select()
        # Only a UID range in SEARCH: Exchange answers BADCHARSET to non-ASCII search keys.
        with self._failures("SEARCH"):
            found = self._connected.search(["UID", f"{last_uid + 1}:*"])
        # "n:*" always matches the highest UID in use even when it is below n (RFC 3501 6.4.8,
        # RFC 9051 6.4.9), so an idle folder answers with its last message: filter here.
        uids = sorted(uid for uid in found if uid > last_uid)
        batch_size = self.settings.batch_size
        for start in range(0, len(uids), batch_size):
            yield self._fetch_batch(uids[start : start + batch_size], selected.uidvalidity)

    def _fetch_batch(self, uids: list[int], uidvalidity: int) -> list[RawMail]:
        client = self._connected
        limit = self.settings.max_message_bytes
        with self._failures("FETCH"):
            meta = client.fetch(uids, [b"RFC822.SIZE", b"INTERNALDATE", b"FLAGS"])
            sizes = {uid: int(meta[uid].get(b"RFC822.SIZE", 0)) for uid in uids if uid in meta}
            wanted = [uid for uid in uids if uid in sizes and sizes[uid] <= limit]
            bodies: dict[int, bytes] = {}
            for group in _groups_by_size(wanted, sizes, _BODY_FETCH_BYTES):
                # BODY.PEEK[] never sets \Seen (RFC 3501 6.4.5); RFC822 and BODY[] would.
                for uid, data in client.fetch(group, [b"BODY.PEEK[]"]).items():
                    if b"BODY[]" in data:
                        bodies[uid] = bytes(data[b"BODY[]"])
            headers: dict[int, bytes] = {}
            if oversize := [uid for uid in uids if uid in sizes and uid not in wanted]:
                # An over-size mail is not downloaded, but its header block names it (Message-ID, From, Subject).
                for uid, data in client.fetch(oversize, [b"BODY.PEEK[HEADER]"]).items():
                    if b"BODY[HEADER]" in data:
                        headers[uid] = bytes(data[b"BODY[HEADER]"])[:262_144]
        mails: list[RawMail] = []
        for uid in uids:
            if uid not in sizes or (uid in wanted and uid not in bodies):
                continue  # expunged by someone else since the SEARCH: nothing left to read
            data = meta[uid]
            internal_date = data.get(b"INTERNALDATE")
            mails.append(
                RawMail(
                    folder=self.folder,
                    uidvalidity=uidvalidity,
                    uid=uid,
                    raw=bodies.get(uid),
                    size=sizes[uid],
                    header=headers.get(uid),
                    internal_date=internal_date.astimezone(UTC) if isinstance(internal_date, datetime) else None,
                    # \Recent is per session and gone in RFC 9051: it would make flags differ by who read first.
                    flags=tuple(_text(flag) for flag in data.get(b"FLAGS", ()) if flag != b"\\Recent"),
                )
            )
        return mails

    # changing (only what the caller asks)

    def mark(self, uids: Sequence[int], keyword: str) -> None:
        if not _KEYWORD.fullmatch(keyword):
            raise ValueError(f"not an IMAP keyword: {keyword!r} (one ASCII atom: no spaces, no leading backslash)")
        if not uids:
            return
        selected = self._select()
        if not self._can_store(selected, keyword):
            return
        client = self._connected
        with self._failures(f"STORE of keyword {keyword!r}"):
            for start in range(0, len(uids), _STORE_CHUNK):
                client.add_flags(list(uids[start : start + _STORE_CHUNK]), [keyword], silent=True)

    def _can_store(self, selected: _Selected, keyword: str) -> bool:
        # Without \* in PERMANENTFLAGS the server cannot keep a new keyword (RFC 3501 7.1,
        # RFC 9051 7.1); Exchange is such a server. The registry stays the record, so say it once.
        allowed = "\\*" in selected.permanent_flags or keyword in selected.permanent_flags
        if selected.read_only or (selected.permanent_flags and not allowed):
            if keyword not in self._warned_keywords:
                self._warned_keywords.add(keyword)
                reason = "the folder is read-only" if selected.read_only else "the server does not keep new keywords"
                log.warning(
                    "IMAP %s folder %r: not marking messages %r: %s", self.address, self.folder, keyword, reason
                )
            return False
        return True

    def move(self, uids: Sequence[int], folder: str) -> None:
        if not uids:
            return
        self._select()
        client = self._connected
        with self._failures(f"move to folder {folder!r}"):
            if not client.folder_exists(folder):
                raise SourceError(f"cannot move mail on {self.address}: folder {folder!r} does not exist")
            for start in range(0, len(uids), _STORE_CHUNK):
                chunk = list(uids[start : start + _STORE_CHUNK])
                if client.has_capability("MOVE"):
                    client.move(chunk, folder)  # RFC 6851
                elif client.has_capability("UIDPLUS"):
                    # COPY, flag and UID EXPUNGE (RFC 4315) only these: a plain EXPUNGE would also
                    # remove messages someone else flagged \Deleted.
                    client.copy(chunk, folder)
                    client.add_flags(chunk, [b"\\Deleted"], silent=True)
                    client.uid_expunge(chunk)
                else:
                    raise SourceError(f"cannot move mail on {self.address}: the server has neither MOVE nor UIDPLUS")

    # errors

    @contextmanager
    def _failures(self, action: str, *, connecting: bool = False) -> Iterator[None]:
        """Turn socket, TLS and IMAP errors into a SourceError that says where and why."""
        from imapclient.exceptions import LoginError

        try:
            yield
        except SourceError:
            raise
        except LoginError as error:
            message = f"IMAP login failed for user {self.settings.user!r} on {self.address}: {_server_text(error)}"
            raise SourceError(self._scrub(message)) from error
        except imaplib.IMAP4.abort as error:
            message = f"lost the connection to IMAP server {self.address} during {action}: {_server_text(error)}"
            raise SourceError(self._scrub(message)) from error
        except imaplib.IMAP4.error as error:
            message = f"IMAP server {self.address} refused {action}: {_server_text(error)}"
            raise SourceError(self._scrub(message)) from error
        except OSError as error:
            settings = self.settings
            if connecting and isinstance(error, TimeoutError):
                # Either the TCP connect or the wait for the greeting/TLS handshake: name both limits.
                reason = (
                    f"timed out (imap.connect_timeout {settings.connect_timeout:g} s, "
                    f"imap.read_timeout {settings.read_timeout:g} s)"
                )
            else:
                reason = describe(error, settings.read_timeout)
            if connecting:
                message = f"cannot connect to IMAP server {self.address}: {reason}"
            else:
                message = f"lost the connection to IMAP server {self.address} during {action}: {reason}"
            raise SourceError(self._scrub(message)) from error

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def _shared_provider(settings: ImapSettings) -> OAuthTokenProvider:
    try:
        return shared_token_provider(settings)
    except OAuthError as error:
        raise SourceError(str(error)) from None


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1): the only plaintext we allow."""
    if host.lower().rstrip(".") in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def describe(error: BaseException, timeout: float | None = None) -> str:
    """A short English reason for a socket or TLS error."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({error.verify_message})"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed ({error.reason or error})"
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout:g} s" if timeout else "timed out"
    if isinstance(error, socket.gaierror):
        return "host name not found"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset by the server"
    return (error.strerror or str(error)).lower() if isinstance(error, OSError) else str(error)


def _server_text(error: BaseException) -> str:
    # imapclient formats server answers as "b'[AUTHENTICATIONFAILED] ...'"; show the text only.
    text = str(error)
    match = re.fullmatch(r"""b(['"])(.*)\1""", text, flags=re.DOTALL)
    return match.group(2) if match else text


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _groups_by_size(uids: list[int], sizes: dict[int, int], limit: int) -> Iterator[list[int]]:
    """Consecutive groups of uids whose messages add up to at most `limit` bytes (at least one each)."""
    group: list[int] = []
    total = 0
    for uid in uids:
        if group and total + sizes[uid] > limit:
            yield group
            group, total = [], 0
        group.append(uid)
        total += sizes[uid]
    if group:
        yield group


# --- Maildir ------------------------------------------------------------------------------------

# Maildir info flags (cr.yp.to/proto/maildir.html) as IMAP flags; lowercase letters are Dovecot's
# per-folder keyword indexes and mean nothing without its dovecot-keywords file.
_MAILDIR_FLAGS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "P": "$Forwarded",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}


@dataclass(frozen=True)
class _MaildirEntry:
    key: str
    path: Path
    info: str


class MaildirSource(MailSource):
    """A local Maildir, read-only: the embedded default and the bundled sample mailbox.

    UIDs are 1..N in the order of the messages' unique names, which begin with the delivery time,
    so they are stable while the folder is unchanged. UIDVALIDITY is always 1; mark() and move()
    do nothing, so reading a Maildir never changes a byte of it.
    """

    def __init__(self, path: Path, *, batch_size: int = 200, max_message_bytes: int = 25 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.folder = str(self.path)
        self.incremental = False  # Maildir names are not UIDs: every pass re-reads and sha256 skips the known
        self.batch_size = batch_size
        self.max_message_bytes = max_message_bytes
        self._entries: list[_MaildirEntry] | None = None

    def __enter__(self) -> Self:
        try:
            maildir = mailbox.Maildir(self.path, factory=None, create=False)
        except mailbox.NoSuchMailboxError:
            raise SourceError(f"maildir {self.path} does not exist") from None
        if not (self.path / "cur").is_dir() or not (self.path / "new").is_dir():
            raise SourceError(f"{self.path} is not a Maildir: it needs cur/ and new/ subdirectories")
        self._entries = self._scan(maildir)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._entries = None

    def _scan(self, maildir: mailbox.Maildir) -> list[_MaildirEntry]:
        try:
            keys = set(maildir.keys())
            entries = []
            for subdir in ("new", "cur"):
                for name in os.listdir(self.path / subdir):
                    key, _, info = name.partition(maildir.colon)
                    if key in keys:
                        entries.append(_MaildirEntry(key, self.path / subdir / name, info))
        except OSError as error:
            raise SourceError(f"cannot read maildir {self.path}: {describe(error)}") from None
        return sorted(entries, key=lambda entry: _delivery_order(entry.key))

    @property
    def _listing(self) -> list[_MaildirEntry]:
        if self._entries is None:
            raise SourceError(f"maildir {self.path} is not open: use the source in a with block")
        return self._entries

    def status(self) -> tuple[int, int]:
        return 1, len(self._listing) + 1

    def fetch_after(self, last_uid: int) -> Iterator[list[RawMail]]:
        numbered = list(enumerate(self._listing, start=1))[max(last_uid, 0) :]
        for start in range(0, len(numbered), self.batch_size):
            yield [self._read(uid, entry) for uid, entry in numbered[start : start + self.batch_size]]

    def _read(self, uid: int, entry: _MaildirEntry) -> RawMail:
        try:
            stat = entry.path.stat()
            raw = entry.path.read_bytes() if stat.st_size <= self.max_message_bytes else None
            header = None
            if raw is None:
                with entry.path.open("rb") as file:
                    header = file.read(262_144)  # read_identity stops at the end of the header block
        except OSError as error:
            raise SourceError(f"cannot read {entry.path}: {describe(error)}") from None
        flags = entry.info[2:] if entry.info.startswith("2,") else ""
        return RawMail(
            folder=self.folder,
            uidvalidity=1,
            uid=uid,
            raw=raw,
            size=stat.st_size,
            # A Maildir's delivery time is the file's mtime (Dovecot uses it as INTERNALDATE too).
            internal_date=datetime.fromtimestamp(stat.st_mtime, UTC),
            flags=tuple(_MAILDIR_FLAGS[letter] for letter in sorted(flags) if letter in _MAILDIR_FLAGS),
            header=header,
        )

    def mark(self, uids: Sequence[int], keyword: str) -> None:
        """Nothing: a Maildir source is read-only."""

    def move(self, uids: Sequence[int], folder: str) -> None:
        """Nothing: a Maildir source is read-only."""


def _delivery_order(key: str) -> tuple[str | int, ...]:
    # Unique names begin with the delivery time ("1725351300.M52013P77Q2.host": seconds, then
    # microseconds, pid, counter); compare digit runs as numbers, so M99 sorts before M100.
    # re.split with a group alternates text and digits, so equal positions hold equal types.
    return tuple(int(part) if index % 2 else part for index, part in enumerate(re.split(r"(\d+)", key)))
