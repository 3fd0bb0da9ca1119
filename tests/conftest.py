"""Fixtures that start real servers on loopback for the integration tests (see tests/servers.py).

A server that cannot start fails the test with the reason (a missing binary is a CI bug, not a skip).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# tests/ is not a package (pytest puts tests/ itself on sys.path); accept either layout so adding
# a tests/__init__.py or `pythonpath = ["."]` later does not break the suite.
try:
    from servers import (
        DovecotServer,
        PostgresServer,
        ServerUnavailable,
        SmtpBehaviour,
        SmtpMode,
        SmtpServer,
        TlsCertificate,
        make_temp_root,
        make_tls_certificate,
    )
except ImportError:  # pragma: no cover - depends on how pytest was configured
    from tests.servers import (  # type: ignore[no-redef]
        DovecotServer,
        PostgresServer,
        ServerUnavailable,
        SmtpBehaviour,
        SmtpMode,
        SmtpServer,
        TlsCertificate,
        make_temp_root,
        make_tls_certificate,
    )

SmtpServerFactory = Callable[..., SmtpServer]


@pytest.fixture(scope="session")
def tls_certificate() -> Iterator[TlsCertificate]:
    """A self-signed certificate for 127.0.0.1/localhost; trust it with its cert_file (= ca_file)."""
    import shutil

    root = make_temp_root("mailbot-tls-")
    try:
        yield make_tls_certificate(root)
    except ServerUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """One Dovecot for the whole session; tests use `dovecot`, which also empties INBOX."""
    try:
        server = DovecotServer()
        server.start()
    except ServerUnavailable as error:
        pytest.fail(f"cannot start Dovecot: {error}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def dovecot(dovecot_server: DovecotServer) -> Iterator[DovecotServer]:
    """The session's Dovecot, running, with an empty INBOX under a new UIDVALIDITY.

    API: host, port, tls_port, user, password, maildir, ca_file; append(raw, flags=(), folder=),
    flags_of_all(folder=), status(folder=), uidvalidity(folder=), reset_mailbox(folder=),
    create_folder(), folders(), client(), imap_settings(**overrides), stop(), start().
    """
    dovecot_server.start()
    dovecot_server.reset_mailbox("INBOX")
    yield dovecot_server
    dovecot_server.start()  # a test that stopped it must not take it down for the next one


@pytest.fixture
def smtp_server(tls_certificate: TlsCertificate) -> Iterator[SmtpServerFactory]:
    """Factory: smtp_server(mode="plain"|"starttls"|"auth"|"starttls_auth"|"tls", fail_first=0,
    always_reject=False, drop_in_data=False) -> a started SmtpServer (host, port, messages,
    data_attempts, user, password, cert_file, ca_file, smtp_settings(**overrides)).
    """
    started: list[SmtpServer] = []

    def start(
        mode: SmtpMode = "plain",
        *,
        fail_first: int = 0,
        always_reject: bool = False,
        drop_in_data: bool = False,
    ) -> SmtpServer:
        behaviour = SmtpBehaviour(fail_first=fail_first, always_reject=always_reject, drop_in_data=drop_in_data)
        server = SmtpServer(mode, tls_certificate, behaviour)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
        server.init()
        server.start()
    except ServerUnavailable as error:
        pytest.fail(f"cannot start PostgreSQL: {error}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of a database shared by the session: postgresql+psycopg://postgres@127.0.0.1:PORT/mailbot."""
    return postgres_server.url(postgres_server.create_database("mailbot"))


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a new empty database, dropped after the test."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture
def tls_ca_file(tls_certificate: TlsCertificate) -> Path:
    return tls_certificate.ca_file


@pytest.fixture(scope="session")
def postgres_registry_template(postgres_server: PostgresServer) -> str:
    """Name of a database migrated once per session (Alembic to head, the bundled config mirrored): the
    template `database_url` copies, since CREATE DATABASE … TEMPLATE is faster than migrating each time (and
    PostgresServer.copy_of makes the copies ahead, in the background)."""
    from registry.config import load_registry
    from registry.db import open_registry
    from registry.paths import config_dir

    name = postgres_server.create_database("registry_template")
    open_registry(postgres_server.url(name), load_registry(config_dir())).dispose()  # no connection left open
    return name


@pytest.fixture
def postgres_registry_url(postgres_server: PostgresServer, postgres_registry_template: str) -> Iterator[str]:
    """SQLAlchemy URL of a new PostgreSQL registry database of its own (a copy of the migrated template),
    dropped after the test."""
    name = postgres_server.copy_of(postgres_registry_template)
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLAlchemy URL of a new registry database of the test's own; every test that touches the database takes
    this fixture (or one built on it), so the suite runs each such test on both engines:

    - sqlite: a file in tmp_path that does not exist yet (the product creates and migrates it on first open);
    - postgres: a new database on the session's server, a copy of a template migrated once per session, so
      opening it only checks the revision and mirrors the configuration; dropped after the test. (Tests of
      the migrations themselves use `fresh_postgres_url`, an empty database.)
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    return request.getfixturevalue("postgres_registry_url")
