"""Throwaway real servers for the integration tests: Dovecot (IMAP), aiosmtpd (SMTP), PostgreSQL.

Each listens on a free loopback port, lives in its own temp dir and is stopped by its fixture;
nothing here is a mock, and nothing here may ever touch a real mailbox or a shared database.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from imapclient import IMAPClient

from mailbot.settings import ImapSettings, SmtpSettings

LOOPBACK = "127.0.0.1"

START_TIMEOUT = 10.0  # generous for a loaded CI machine; a normal start takes well under a second


class ServerUnavailable(RuntimeError):
    """A test server cannot be started (binary missing, bad permissions); the message says how to fix it."""


# --- shared helpers -----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on loopback right now (the kernel picks it; a tiny race remains, see retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def make_temp_root(prefix: str) -> Path:
    """A temp dir under /tmp that unprivileged service users can traverse.

    pytest's own tmp_path lives under a 0700 directory owned by root, which dovenull, mail and
    postgres cannot enter; so the servers get their own 0755 directory.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if os.path.isdir("/tmp") else None))
    root.chmod(0o755)
    return root


def find_binary(name: str, *fallback_globs: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for pattern in fallback_globs:
        # Debian puts PostgreSQL in /usr/lib/postgresql/<major>/bin; prefer the newest major.
        matches = sorted(glob.glob(pattern), key=_version_key, reverse=True)
        if matches:
            return matches[0]
    return None


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(number) for number in re.findall(r"\d+", path))


def service_account(name: str) -> pwd.struct_passwd:
    """The system account `name`, created (useradd --system) when missing and we are root."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise ServerUnavailable(f"system user {name!r} does not exist and we are not root to create it")
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(name)


def die_with_parent(argv: list[str], signame: str) -> list[str]:
    """Prefix argv so the server gets `signame` if pytest itself dies (SIGKILL, Ctrl-C twice).

    setpriv (util-linux, always on Debian) sets PR_SET_PDEATHSIG and execs, so the pid stays the
    server's own; without it the fixtures' teardown is the only cleanup.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return argv
    return [setpriv, f"--pdeathsig={signame}", "--", *argv]


def stop_process(process: subprocess.Popen[bytes] | None, first_signal: int, timeout: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(first_signal)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def wait_for_greeting(port: int, prefix: bytes, process: subprocess.Popen[bytes], log: Path) -> None:
    """Block until a server on `port` sends a greeting starting with `prefix`, or fail with its log."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerUnavailable(f"server exited with status {process.returncode}; log:\n{tail(log)}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1.0) as connection:
                if connection.recv(len(prefix)) == prefix:
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise ServerUnavailable(f"no greeting on {LOOPBACK}:{port} after {START_TIMEOUT:.0f}s; log:\n{tail(log)}")


def _accepts_connections(port: int) -> bool:
    try:
        socket.create_connection((LOOPBACK, port), timeout=1.0).close()
    except OSError:
        return False
    return True


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class TlsCertificate:
    """A self-signed certificate for 127.0.0.1 and localhost; cert_file doubles as the CA to trust."""

    cert_file: Path
    key_file: Path

    @property
    def ca_file(self) -> Path:
        return self.cert_file

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_file))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context


_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
x509_extensions = v3
prompt = no
[dn]
CN = localhost
O = mailbot tests
[v3]
# CA:TRUE with keyCertSign lets the same file be the client's trust anchor, also under
# Python 3.13's VERIFY_X509_STRICT; the SAN is what hostname checking looks at.
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


def make_tls_certificate(directory: Path) -> TlsCertificate:
    """Generate a self-signed certificate with `openssl req` (an EC key: fast to generate)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ServerUnavailable("openssl not found: install the Debian package 'openssl'")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "openssl.cnf"
    config.write_text(_OPENSSL_CONFIG, encoding="ascii")
    certificate = TlsCertificate(directory / "cert.pem", directory / "key.pem")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-config",
            str(config),
            "-keyout",
            str(certificate.key_file),
            "-out",
            str(certificate.cert_file),
        ],
        check=True,
        capture_output=True,
    )
    certificate.cert_file.chmod(0o644)
    certificate.key_file.chmod(0o644)  # throwaway key; the servers' unprivileged users must read it
    return certificate


# --- Dovecot ------------------------------------------------------------------------------------

_OAUTH2_CONFIG = """\
introspection_mode = post
introspection_url = http://127.0.0.1:{port}/introspect
username_attribute = username
active_attribute = active
active_value = true
"""


class _IntrospectionHandler(BaseHTTPRequestHandler):
    """RFC 7662 token introspection: the one token the Dovecot fixture issues is active."""

    server: _IntrospectionServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("ascii", "replace"))
        token = form.get("token", [""])[0]
        self.server.requests.append(token)
        active = token == self.server.valid_token
        body = json.dumps({"active": True, "username": self.server.username} if active else {"active": False})
        data = body.encode("ascii")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


class _IntrospectionServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, valid_token: str, username: str) -> None:
        super().__init__((LOOPBACK, 0), _IntrospectionHandler)
        self.valid_token = valid_token
        self.username = username
        self.requests: list[str] = []


_DOVECOT_CONFIG = """\
# Written by tests/servers.py for one test session; nothing is read from /etc/dovecot.
instance_name = mailbot-test-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
# Dovecot's login processes must not run as root.
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = {mail_uid}
first_valid_gid = {mail_gid}
# Plaintext LOGIN/AUTHENTICATE on loopback; 2.3 spells it disable_plaintext_auth (2.4: auth_allow_cleartext).
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
# Answer a wrong password at once, and no growing per-IP penalty (anvil-auth-penalty socket off):
# the tests log in wrongly on purpose and must not slow down the ones after them.
auth_failure_delay = 0
ssl = yes
ssl_cert = <{cert_file}
ssl_key = <{key_file}
mail_location = maildir:{maildir}
# "/" as the hierarchy separator, as Exchange and most servers show it (Maildir++ stores it as ".").
namespace inbox {{
  inbox = yes
  separator = /
}}
mail_fsync = never
# XOAUTH2 as on Microsoft 365: Dovecot asks our stand-in identity provider whether the bearer
# token is active (RFC 7662 token introspection); passwords go to the passwd-file.
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}
passdb {{
  mechanisms = plain login
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
{unprivileged_services}}}
service anvil {{
{unprivileged_services}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class DovecotServer:
    """A Dovecot IMAP server with one user and a Maildir, on loopback.

    `port` speaks plaintext IMAP with STARTTLS offered; `tls_port` speaks implicit TLS. Both use
    a self-signed certificate whose file is `ca_file`.
    """

    user = "mailbot"
    password = "hemligt-42"
    # A second account whose password is not ASCII: IMAP LOGIN cannot carry it (RFC 3501 strings
    # are 7-bit), AUTHENTICATE PLAIN can (RFC 4616 is UTF-8).
    unicode_user = "sekreterare"
    unicode_password = "lösenord-åäö"

    def __init__(self, root: Path | None = None) -> None:
        binary = find_binary("dovecot", "/usr/sbin/dovecot")
        if binary is None:
            raise ServerUnavailable("dovecot not found: install the Debian package 'dovecot-imapd'")
        self.binary = binary
        self.host = LOOPBACK
        self.root = root or make_temp_root("mailbot-dovecot-")
        self.maildir = self.root / "Maildir"
        self.log_file = self.root / "dovecot.log"
        self.port = free_port()
        self.tls_port = free_port()
        self.certificate = make_tls_certificate(self.root / "tls")
        self.oauth_token = f"test-access-token-{secrets.token_hex(8)}"
        self._introspection = _IntrospectionServer(self.oauth_token, self.user)
        threading.Thread(target=self._introspection.serve_forever, name="oauth-introspection", daemon=True).start()
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def ca_file(self) -> Path:
        return self.certificate.ca_file

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> None:
        if os.geteuid() == 0:
            mail_account = service_account("mail")
            login_user = service_account("dovenull").pw_name
            internal_user = service_account("dovecot").pw_name
            mail_uid, mail_gid = mail_account.pw_uid, mail_account.pw_gid
            unprivileged = ""
        else:
            # Rootless Dovecot: every process runs as us, and chroot needs root.
            me = pwd.getpwuid(os.geteuid())
            login_user = internal_user = me.pw_name
            mail_uid, mail_gid = me.pw_uid, me.pw_gid
            unprivileged = "  chroot =\n"
        self.maildir.mkdir(exist_ok=True)
        (self.root / "home").mkdir(exist_ok=True)
        for path in (self.maildir, self.root / "home"):
            os.chown(path, mail_uid, mail_gid)
        passwd = self.root / "passwd"
        passwd.write_text(
            "".join(
                f"{user}:{{PLAIN}}{password}:{mail_uid}:{mail_gid}::{self.root}/home::\n"
                for user, password in ((self.user, self.password), (self.unicode_user, self.unicode_password))
            ),
            encoding="utf-8",
        )
        passwd.chmod(0o644)  # read by the auth process, which runs as the internal user
        config = _DOVECOT_CONFIG.format(
            root=self.root,
            port=self.port,
            tls_port=self.tls_port,
            login_user=login_user,
            internal_user=internal_user,
            mail_uid=mail_uid,
            mail_gid=mail_gid,
            maildir=self.maildir,
            cert_file=self.certificate.cert_file,
            key_file=self.certificate.key_file,
            unprivileged_services=unprivileged,
        )
        (self.root / "oauth2.conf.ext").write_text(
            _OAUTH2_CONFIG.format(port=self._introspection.server_address[1]), encoding="ascii"
        )
        self.config_file = self.root / "dovecot.conf"
        self.config_file.write_text(config, encoding="utf-8")

    def start(self) -> None:
        """Start (or restart after stop()) on the same ports; returns once the IMAP greeting arrives."""
        if self.running:
            return
        argv = die_with_parent([self.binary, "-F", "-c", str(self.config_file)], "TERM")
        with open(self.root / "dovecot.stderr", "ab") as stderr:
            # Own process group, so stop() can take down the master and every child at once.
            self._process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, start_new_session=True
            )
        wait_for_greeting(self.port, b"* OK", self._process, self.log_file)

    def stop(self) -> None:
        """Kill the server: new connections are refused, open ones are cut (simulates an outage).

        SIGKILL to the whole process group, not SIGTERM: a clean Dovecot shutdown takes a second,
        and the imap-login children hold the listening sockets, so they must go too.
        """
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and _accepts_connections(self.port):
            time.sleep(0.01)

    def close(self) -> None:
        self.stop()
        self._introspection.shutdown()
        self._introspection.server_close()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def oauth_tokens_seen(self) -> list[str]:
        """Every bearer token Dovecot asked the stand-in identity provider about."""
        return list(self._introspection.requests)

    def imap_settings(self, **overrides: Any) -> ImapSettings:
        """Settings for mailbot to read this server over plaintext loopback (override to taste)."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "ssl": False,
            "starttls": False,
            "user": self.user,
            "password": self.password,
            "connect_timeout": 5.0,
            "read_timeout": 10.0,
            "ca_file": self.ca_file,
        }
        values.update(overrides)
        return ImapSettings(**values)

    def imap_env(self) -> dict[str, str]:
        """The same settings as MAILBOT_IMAP__* variables, for a `mailbot` subprocess."""
        return {
            "MAILBOT_IMAP__HOST": self.host,
            "MAILBOT_IMAP__PORT": str(self.port),
            "MAILBOT_IMAP__USER": self.user,
            "MAILBOT_IMAP__PASSWORD": self.password,
            "MAILBOT_IMAP__SSL": "false",
            "MAILBOT_IMAP__STARTTLS": "false",
            "MAILBOT_IMAP__CONNECT_TIMEOUT": "5",
            "MAILBOT_IMAP__READ_TIMEOUT": "10",
        }

    @contextmanager
    def client(self) -> Iterator[IMAPClient]:
        """A logged-in imapclient connection for test set-up and inspection."""
        client = IMAPClient(self.host, self.port, ssl=False, timeout=10.0)
        client.normalise_times = False
        try:
            client.login(self.user, self.password)
            yield client
        finally:
            try:
                client.logout()
            except (OSError, client.Error):
                pass

    def append(
        self,
        raw: bytes,
        flags: Sequence[str] = (),
        folder: str = "INBOX",
        internal_date: datetime | None = None,
    ) -> int:
        """Store a message as a mail client would (RFC 3501 APPEND) and return its UID."""
        with self.client() as client:
            response = client.append(folder, raw, flags=tuple(flags), msg_time=internal_date)
        match = re.search(rb"APPENDUID \d+ (\d+)", response)  # RFC 4315 UIDPLUS
        if match is None:
            raise AssertionError(f"APPEND gave no APPENDUID: {response!r}")
        return int(match.group(1))

    def flags_of_all(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """{uid: flags} of every message, read with EXAMINE so reading changes nothing.

        \\Recent is left out: it is a session flag (RFC 3501 2.3.2, dropped by RFC 9051) that the
        first session to see a message gets, so it would differ between two calls.
        """
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            response = client.fetch(uids, ["FLAGS"]) if uids else {}
        return {
            uid: {flag.decode("ascii") for flag in data[b"FLAGS"] if flag != b"\\Recent"}
            for uid, data in response.items()
        }

    def status(self, folder: str = "INBOX") -> dict[str, int]:
        with self.client() as client:
            response = client.folder_status(folder, ["MESSAGES", "UIDNEXT", "UIDVALIDITY"])
        return {key.decode("ascii"): int(value) for key, value in response.items()}

    def uidvalidity(self, folder: str = "INBOX") -> int:
        return self.status(folder)["UIDVALIDITY"]

    def create_folder(self, folder: str) -> None:
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)

    def reset_mailbox(self, folder: str = "INBOX") -> int:
        """Empty `folder` and give it a new UIDVALIDITY (as if recreated); returns the new one.

        INBOX cannot be deleted over IMAP (RFC 3501 6.3.4), so for INBOX the Maildir's messages
        and Dovecot's index and UID list are removed on disk while no session is open; Dovecot then
        rebuilds the UID list with the next UIDVALIDITY from dovecot-uidvalidity (always larger).
        """
        if folder.upper() == "INBOX":
            for name in os.listdir(self.maildir):
                path = self.maildir / name
                if name in ("cur", "new", "tmp"):
                    for message in os.listdir(path):
                        os.unlink(path / message)
                elif name.startswith("dovecot.index") or name in ("dovecot-uidlist", "dovecot-keywords"):
                    os.unlink(path)
        else:
            with self.client() as client:
                if client.folder_exists(folder):
                    client.delete_folder(folder)
                client.create_folder(folder)
        return self.uidvalidity(folder)

    def folders(self) -> list[str]:
        with self.client() as client:
            return [name for _flags, _delimiter, name in client.list_folders()]


# --- SMTP (aiosmtpd) ----------------------------------------------------------------------------

SmtpMode = Literal["plain", "starttls", "auth", "starttls_auth", "tls"]


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes


@dataclass
class SmtpBehaviour:
    fail_first: int = 0  # answer 451 to this many DATA commands, then 250
    always_reject: bool = False  # answer 550 to every DATA
    drop_in_data: bool = False  # cut the connection after the data arrives, before any answer
    require_auth: bool = False  # answer 530 to MAIL FROM before a successful AUTH


@dataclass
class _RecordingHandler:
    behaviour: SmtpBehaviour
    messages: list[ReceivedMail] = field(default_factory=list)
    data_attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        # Checked here rather than with aiosmtpd's auth_required, which warns on every connection
        # when AUTH is allowed without TLS (our loopback "auth" mode does that on purpose).
        if self.behaviour.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.data_attempts += 1
            attempt = self.data_attempts
        if self.behaviour.drop_in_data:
            # The client has sent the whole message and waits for the reply that never comes:
            # the "did the server take it or not?" window of an at-least-once sender.
            assert server.transport is not None
            server.transport.abort()
            return "421 4.3.0 connection dropped by the test server"
        if self.behaviour.always_reject:
            return "550 5.7.1 Rejected by the test server"
        if attempt <= self.behaviour.fail_first:
            return "451 4.3.0 Temporary failure, try again later"
        content = envelope.original_content or b""
        self.messages.append(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=content if isinstance(content, bytes) else content.encode("utf-8"),
            )
        )
        return "250 2.0.0 OK: queued"


class SmtpServer:
    """An aiosmtpd server on loopback that keeps every accepted message in `messages`.

    Modes: plain; starttls (required before MAIL); auth (AUTH PLAIN/LOGIN required, no TLS);
    starttls_auth (both, like Office 365 on port 587); tls (implicit TLS, like port 465).
    """

    user = "utskick@skaraborg.se"
    password = "smtp-lösen-7"

    def __init__(self, mode: SmtpMode, certificate: TlsCertificate, behaviour: SmtpBehaviour) -> None:
        self.mode = mode
        self.host = LOOPBACK
        self.certificate = certificate
        behaviour.require_auth = mode in ("auth", "starttls_auth")
        self.handler = _RecordingHandler(behaviour)
        options: dict[str, Any] = {"enable_SMTPUTF8": True, "decode_data": False}
        if mode in ("starttls", "starttls_auth"):
            options.update(tls_context=certificate.server_context(), require_starttls=True)
        if mode in ("auth", "starttls_auth"):
            options.update(authenticator=self._authenticate, auth_require_tls=mode == "starttls_auth")
        if mode == "tls":
            options.update(ssl_context=certificate.server_context())
        self._options = options
        self._controller: Controller | None = None
        self.port = 0

    @property
    def messages(self) -> list[ReceivedMail]:
        return self.handler.messages

    @property
    def data_attempts(self) -> int:
        return self.handler.data_attempts

    @property
    def cert_file(self) -> Path:
        return self.certificate.cert_file

    @property
    def ca_file(self) -> Path:
        return self.certificate.ca_file

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user.encode("utf-8")
            and auth_data.password == self.password.encode("utf-8")
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> None:
        for _attempt in range(5):  # free_port() can race with another process; pick again
            port = free_port()
            controller = Controller(self.handler, hostname=LOOPBACK, port=port, **self._options)
            try:
                controller.start()
            except OSError:
                continue
            self._controller, self.port = controller, port
            return
        raise ServerUnavailable("could not bind an SMTP test server to a free loopback port")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def smtp_settings(self, **overrides: Any) -> SmtpSettings:
        """Settings for mailbot to send through this server (override to taste)."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "ssl": self.mode == "tls",
            "starttls": self.mode in ("starttls", "starttls_auth"),
            "timeout": 10.0,
            "ca_file": self.ca_file,
        }
        if self.mode in ("auth", "starttls_auth"):
            values.update(user=self.user, password=self.password)
        values.update(overrides)
        return SmtpSettings(**values)


# --- PostgreSQL ---------------------------------------------------------------------------------

_POSTGRES_GLOBS = ("/usr/lib/postgresql/*/bin/{name}", "/usr/pgsql-*/bin/{name}", "/usr/local/pgsql/bin/{name}")


class PostgresServer:
    """A PostgreSQL cluster in a temp dir, trust auth on loopback, run by an unprivileged user."""

    superuser = "postgres"

    def __init__(self, root: Path | None = None) -> None:
        initdb = find_binary("initdb", *(pattern.format(name="initdb") for pattern in _POSTGRES_GLOBS))
        postgres = find_binary("postgres", *(pattern.format(name="postgres") for pattern in _POSTGRES_GLOBS))
        if initdb is None or postgres is None:
            raise ServerUnavailable(
                "PostgreSQL server binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin: "
                "install the Debian package 'postgresql'"
            )
        self.initdb, self.postgres = initdb, postgres
        self.host = LOOPBACK
        self.root = root or make_temp_root("mailbot-postgres-")
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log_file = self.root / "postgres.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._database_counter = itertools.count(1)
        self._pools: dict[str, DatabasePool] = {}
        # PostgreSQL refuses to run as root; as root we switch to the 'postgres' system user.
        self._account = service_account("postgres") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())

    def _run_as_owner(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        if os.geteuid() == 0:
            kwargs.update(user=self._account.pw_uid, group=self._account.pw_gid, extra_groups=[])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(self.root)}
        return subprocess.Popen(argv, cwd=self.root, env=env, stdin=subprocess.DEVNULL, **kwargs)

    def init(self) -> None:
        """Create the cluster: a copy of a cached initdb result when there is one (initdb takes ~2 s)."""
        self.socket_dir.mkdir(mode=0o700)
        os.chown(self.socket_dir, self._account.pw_uid, self._account.pw_gid)
        template = self._template_dir()
        if template.is_dir() and _copy_tree(template, self.data_dir):
            return
        self.data_dir.mkdir(mode=0o700)
        os.chown(self.data_dir, self._account.pw_uid, self._account.pw_gid)
        # C.UTF-8 (not C) so lower()/upper() know å, ä and ö; --no-sync: a throwaway cluster.
        locale = ["--locale=C.UTF-8"] if _has_c_utf8_locale() else ["--no-locale"]
        argv = [self.initdb, "-D", str(self.data_dir), "-U", self.superuser, "-A", "trust", "-E", "UTF8"]
        with open(self.root / "initdb.log", "wb") as log:
            process = self._run_as_owner([*argv, *locale, "--no-sync"], stdout=log, stderr=log)
            if process.wait(120) != 0:
                raise ServerUnavailable(f"initdb failed; log:\n{tail(self.root / 'initdb.log')}")
        self._save_template(template)

    def _template_dir(self) -> Path:
        # Keyed by the exact server version and owner, so an upgrade or another user never reuses it.
        version = subprocess.run([self.postgres, "--version"], capture_output=True, text=True, check=False).stdout
        digest = hashlib.sha256(f"{self.postgres}|{version}|{self._account.pw_uid}".encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"mailbot-postgres-template-{digest}"

    def _save_template(self, template: Path) -> None:
        """Keep a pristine copy of the fresh cluster; rename makes it appear whole or not at all."""
        staging = Path(tempfile.mkdtemp(prefix=template.name + ".", dir=template.parent)) / "data"
        try:
            if _copy_tree(self.data_dir, staging):
                os.rename(staging, template)
        except OSError:
            pass  # another session saved one first; theirs is as good as ours
        finally:
            shutil.rmtree(staging.parent, ignore_errors=True)

    def start(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        for _attempt in range(5):
            self.port = free_port()
            argv = [
                self.postgres,
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
                "-c",
                f"listen_addresses={LOOPBACK}",
                # Durability is not what these tests are about; speed is.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
            with open(self.log_file, "ab") as log:
                self._process = self._run_as_owner(die_with_parent(argv, "INT"), stdout=log, stderr=log)
            if self._wait_until_ready():
                return
            if "could not bind" not in tail(self.log_file):
                break
        raise ServerUnavailable(f"PostgreSQL did not start; log:\n{tail(self.log_file)}")

    def _wait_until_ready(self) -> bool:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT * 3
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                return False
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        stop_process(self._process, signal.SIGINT)
        return False

    def stop(self, *, immediate: bool = False) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown (does not wait for clients); SIGQUIT "immediate"
        # also skips the shutdown checkpoint, which is all we want for a cluster about to be deleted.
        stop_process(self._process, signal.SIGQUIT if immediate else signal.SIGINT)
        self._process = None

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close(drop=False)
        self.stop(immediate=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def copy_of(self, template: str) -> str:
        """A new database that is a copy of `template`, made ahead of time by a background thread (CREATE
        DATABASE takes 0.1-0.2 s of the server's time, which then overlaps with the previous test)."""
        pool = self._pools.get(template)
        if pool is None:
            pool = self._pools[template] = DatabasePool(self, template)
        return pool.take()

    def dsn(self, database: str) -> str:
        return f"host={self.host} port={self.port} user={self.superuser} dbname={database}"

    def url(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver)."""
        return f"postgresql+psycopg://{self.superuser}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """A new database (a generated name unless given): empty, or a copy of the database `template`.

        A template must have no open connection while it is copied (PostgreSQL refuses otherwise).
        """
        import psycopg
        from psycopg import sql

        if name is None:
            name = f"test_{os.getpid()}_{next(self._database_counter)}"  # (itertools.count: thread-safe)
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            connection.execute(statement)
        return name

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            # WITH (FORCE) (PostgreSQL 13+) ends sessions a test left open, e.g. an engine not disposed.
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class DatabasePool:
    """Copies of a template database, kept `ahead` in advance by a daemon thread; take() hands one out.

    The template must not be used (connected to) once the pool exists: PostgreSQL copies only an idle template.
    """

    def __init__(self, server: PostgresServer, template: str, ahead: int = 2) -> None:
        import queue

        self.server, self.template = server, template
        self._ready: queue.Queue[str] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._fill, name=f"pool-{template}", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        import queue

        try:
            while not self._stop.is_set():
                name = self.server.create_database(template=self.template)
                while True:
                    try:
                        self._ready.put(name, timeout=0.2)
                        break
                    except queue.Full:
                        if self._stop.is_set():
                            self.server.drop_database(name)
                            return
        except BaseException as error:  # handed to the next take()
            self._error = error

    def take(self, timeout: float = 60.0) -> str:
        import queue

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self._ready.get(timeout=0.1)
            except queue.Empty:
                if self._error is not None:
                    raise ServerUnavailable(f"cannot copy database {self.template}: {self._error}") from self._error
        raise ServerUnavailable(f"no copy of database {self.template} within {timeout:.0f} s")

    def close(self, drop: bool = True) -> None:
        """Stop making copies; drop the unused ones (not needed when the whole cluster goes)."""
        self._stop.set()
        self._thread.join(30)
        while drop and not self._ready.empty():
            self.server.drop_database(self._ready.get_nowait())


def _copy_tree(source: Path, target: Path) -> bool:
    """cp -a: keeps the owner (the postgres user) and the 0700 modes PostgreSQL insists on."""
    return subprocess.run(["cp", "-a", str(source), str(target)], capture_output=True, check=False).returncode == 0


def _has_c_utf8_locale() -> bool:
    try:
        listing = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return False
    return any(name.lower() in ("c.utf8", "c.utf-8") for name in listing.split())
