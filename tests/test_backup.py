"""Backup and restore: a consistent copy while another connection writes, restored into a fresh database.

Each test on SQLite (the online backup API) and on PostgreSQL (pg_dump/pg_restore against the session's server).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, func, make_url
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from registry import backup as backup_ops
from registry import queries, record
from registry.cli import app
from registry.config import Registry, load_registry
from registry.db import make_engine, open_registry
from registry.domain import MailStatus, Role
from registry.models import Document, InboundMail
from registry.paths import config_dir

TZ = ZoneInfo("Europe/Stockholm")
T0 = datetime(2025, 3, 3, 7, 0, tzinfo=UTC)
NETWORK = "skis"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(config_dir())


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


@pytest.fixture
def fresh_url(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A second database of the same engine where nothing is yet: the target of a restore."""
    if is_sqlite(database_url):
        return f"sqlite:///{tmp_path / 'restored' / 'registry.sqlite3'}"
    return request.getfixturevalue("fresh_postgres_url")


def backup_name(url: str, stem: str = "registry-backup") -> str:
    return f"{stem}.sqlite3" if is_sqlite(url) else f"{stem}.dump"


def add_mail(session: Session, n: int, subject: str, raw_size: int = 200) -> InboundMail:
    raw = (f"Subject: {subject} {n}\r\n\r\n".encode() + os.urandom(raw_size // 2).hex().encode())[:raw_size]
    mail = InboundMail(
        sha256=record.sha256(raw), message_id=f"<{subject}-{n}@example.se>", folder="INBOX", uidvalidity=1, uid=n,
        raw=raw, size=len(raw), from_address="anna@skaraborg.se", subject=f"{subject} {n}", body_text="hej",
        received=T0 + timedelta(minutes=n), first_seen=T0 + timedelta(minutes=n), status=MailStatus.REGISTERED.value,
        network_key=NETWORK,
    )  # fmt: skip
    session.add(mail)
    session.flush()
    return mail


def record_facts(url: str, registry: Registry) -> None:
    """Members, meetings and mails, through the same record functions as the intake.

    SQLite gets 8 MB of bulk so that its backup takes a moment; pg_dump compresses (slowly) and copies from one
    snapshot however long it takes, so 800 kB do there.
    """
    bulk_size = 20_000 if is_sqlite(url) else 2_000
    engine = open_registry(url, registry)
    with Session(engine) as session:
        lists = add_mail(session, 1, "Medlemslista")
        record.member_list(session, NETWORK, [
            record.NewMember("Anna Berg", "anna@skara.se", "Skara", Role.CHAIR.value),
            record.NewMember("Bo Ek", "bo@falkoping.se", "Falköping", Role.MEMBER.value),
        ], [], lists.received, "members.xlsx", lists.id or 0, TZ)  # fmt: skip
        dates = add_mail(session, 2, "Mötesdatum")
        record.announced_meeting(session, NETWORK, date(2025, 4, 10), time(13, 0), time(15, 0), "Skövde", dates.id or 0)
        record.announced_meeting(session, NETWORK, date(2025, 9, 11), None, None, None, dates.id or 0)
        session.commit()
        for n in range(3, 400):  # some bulk, so that the backup takes a moment
            add_mail(session, n, "Bulk", raw_size=bulk_size)
        session.commit()
    engine.dispose()


def facts(url: str, registry: Registry) -> dict[str, object]:
    engine = open_registry(url, registry, create=False)
    try:
        with Session(engine) as session:
            return {
                "members": queries.members_in_force(session, NETWORK, date(2025, 6, 1)),
                "meetings": queries.meetings(session, NETWORK, None, date(2025, 6, 1)),
                "mails": [m for m in queries.mails(session, None) if not str(m["subject"]).startswith("Writer")],
            }
    finally:
        engine.dispose()


def test_backup_while_another_connection_writes_then_restore_into_a_fresh_database(
    tmp_path: Path, registry: Registry, database_url: str, fresh_url: str
) -> None:
    url = database_url
    record_facts(url, registry)
    before = facts(url, registry)
    assert len(before["members"]) == 2 and len(before["meetings"]) == 2 and len(before["mails"]) == 399

    # A writer on its own engine (its own connections): each transaction adds a mail and its document.
    writer_size = 5_000 if is_sqlite(url) else 500  # (pg_dump's compression of random bytes is the slow part)
    writer_engine = make_engine(url)
    stop = threading.Event()
    written: list[int] = []
    failures: list[BaseException] = []

    def write() -> None:
        n = 10_000
        try:
            while not stop.is_set():
                with Session(writer_engine) as session:
                    mail = add_mail(session, n, "Writer", raw_size=writer_size)
                    session.add(Document(sha256=mail.sha256, filename="a.txt", media_type="text/plain",
                                         content=mail.raw, text="x", source_mail_id=mail.id or 0))  # fmt: skip
                    session.commit()
                written.append(n)
                n += 1
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        while len(written) < 20:  # the writer is well under way
            assert thread.is_alive(), failures
            threading.Event().wait(0.01)
        written_before = len(written)
        engine = make_engine(url)
        out = tmp_path / "backups" / backup_name(url)
        sizes = []
        for _ in range(3):  # several backups during the writes, each replacing the last
            sizes.append(backup_ops.backup(engine, out))
        engine.dispose()
        written_during = len(written)
    finally:
        stop.set()
        thread.join(30)
        writer_engine.dispose()
    assert not failures, failures
    assert written_during > written_before  # the writer committed while the backups ran
    assert sizes[-1] == out.stat().st_size > 200_000
    assert not list(out.parent.glob(".*.partial"))
    if is_sqlite(url):
        assert not out.with_name(out.name + "-wal").exists()  # one self-contained file
        copy = sqlite3.connect(out)
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        copy.close()
    else:
        assert out.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format

    restored = backup_ops.restore(fresh_url, out)
    assert restored == (sqlite_path(fresh_url) if is_sqlite(url) else make_url(fresh_url).render_as_string())
    assert facts(fresh_url, registry) == before
    # Consistent: every writer transaction is in the copy whole (mail and document) or not at all.
    engine = make_engine(fresh_url)
    with Session(engine) as session:
        writer_mails = session.exec(
            select(func.count()).select_from(InboundMail).where(col(InboundMail.subject).like("Writer%"))
        ).one()
        writer_documents = session.exec(
            select(func.count()).select_from(Document).where(Document.filename == "a.txt")
        ).one()
        assert writer_mails == writer_documents > 0
        assert session.exec(select(func.count()).select_from(InboundMail)).one() == 399 + writer_mails
    engine.dispose()
    # The restored registry is one the product opens and writes to (PostgreSQL: sequences restored too).
    engine = open_registry(fresh_url, registry, create=False)
    with Session(engine) as session:
        assert add_mail(session, 99_999, "After restore").id
        session.commit()
    engine.dispose()


def sqlite_path(url: str) -> Path:
    return Path(make_url(url).database or "").resolve()


def test_restore_refuses_to_overwrite_without_yes_and_checks_the_file(
    tmp_path: Path, registry: Registry, database_url: str, fresh_url: str
) -> None:
    url = database_url
    record_facts(url, registry)
    out = tmp_path / backup_name(url, "backup")
    backup_ops.backup(make_engine(url), out)

    other = fresh_url
    open_registry(other, registry).dispose()  # an existing (empty) registry
    with pytest.raises(backup_ops.BackupError, match="add --yes"):
        backup_ops.restore(other, out)
    backup_ops.restore(other, out, yes=True)
    assert facts(other, registry) == facts(url, registry)

    if is_sqlite(url):
        target = f"sqlite:///{tmp_path / 'x.sqlite3'}"
        wrong_kind, expected = tmp_path / "dump.sql", "not a SQLite database"
        wrong_kind.write_text("-- PostgreSQL database dump\n")
    else:
        target = other
        wrong_kind, expected = tmp_path / "other.sqlite3", "not a pg_dump archive"
        sqlite3.connect(wrong_kind).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(backup_ops.BackupError, match=expected):
        backup_ops.restore(target, wrong_kind, yes=True)
    with pytest.raises(backup_ops.BackupError, match="no such backup file"):
        backup_ops.restore(target, tmp_path / "missing.dump", yes=True)
    assert facts(other, registry) == facts(url, registry)  # nothing was touched
    if is_sqlite(url):
        plain = tmp_path / "plain.sqlite3"
        sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.commit()
        with pytest.raises(backup_ops.BackupError, match="no alembic_version"):
            backup_ops.restore(target, plain)
        assert not (tmp_path / "x.sqlite3").exists()
        # SQLite only: the registry is a file the backup could overwrite; pg_dump writes outside the database.
        with pytest.raises(backup_ops.BackupError, match="overwrite the registry itself"):
            backup_ops.backup(make_engine(url), tmp_path / "registry.sqlite3")


def test_a_restore_that_fails_on_postgresql_changes_nothing(
    tmp_path: Path, registry: Registry, postgres_registry_url: str, fresh_postgres_url: str
) -> None:
    """pg_restore runs in one transaction: a damaged archive leaves the target as it was."""
    record_facts(fresh_postgres_url, registry)
    before = facts(fresh_postgres_url, registry)
    out = tmp_path / "registry.dump"
    backup_ops.backup(make_engine(postgres_registry_url), out)
    damaged = tmp_path / "damaged.dump"
    damaged.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    with pytest.raises(backup_ops.BackupError, match="restore into .* failed: pg_restore: error"):
        backup_ops.restore(fresh_postgres_url, damaged, yes=True)
    assert facts(fresh_postgres_url, registry) == before


def test_the_postgresql_password_goes_in_the_environment_never_on_the_command_line() -> None:
    url = make_url("postgresql+psycopg://mailbot:s3cret%2Fx@db.example:5432/mailbot?sslmode=require")
    argv, env = backup_ops.pg_tool_invocation("pg_dump", url, ["--format=custom", "--file", "/tmp/x.dump"])
    assert env["PGPASSWORD"] == "s3cret/x"
    assert not any("s3cret" in arg for arg in argv)
    assert Path(argv[0]).name == "pg_dump" and argv[-2:] == [
        "--dbname", "postgresql://mailbot@db.example:5432/mailbot?sslmode=require",
    ]  # fmt: skip


def test_without_the_postgresql_tools_the_error_names_the_package_and_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump, no pg_config
    monkeypatch.setattr(backup_ops, "PG_BIN_GLOBS", (str(tmp_path / "pgsql-*" / "bin"),))
    engine = create_engine("postgresql+psycopg://mailbot:s3cret@db.example:5432/mailbot")  # never connects
    dump = tmp_path / "registry.dump"
    with pytest.raises(backup_ops.BackupError) as caught:
        backup_ops.backup(engine, dump)
    message = str(caught.value)
    assert "pg_dump not found on PATH" in message and "postgresql-client" in message
    assert f"pg_dump --format=custom --no-owner --file {dump} postgresql://mailbot@db.example:5432/mailbot" in message
    assert "s3cret" not in message and "psycopg" not in message
    assert not dump.exists() and not list(tmp_path.glob(".*.partial"))


def test_cli_backup_and_restore(
    tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch, database_url: str, fresh_url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    live = database_url
    record_facts(live, registry)
    runner = CliRunner()
    copy = backup_name(live, "copy")

    monkeypatch.setenv("MAILBOT_DATABASE__URL", live)
    result = runner.invoke(app, ["backup", "--out", copy])
    assert result.exit_code == 0, result.output
    assert f"{copy} (" in result.output

    result = runner.invoke(app, ["restore", copy])
    assert result.exit_code == 1
    assert "add --yes" in result.output

    monkeypatch.setenv("MAILBOT_DATABASE__URL", fresh_url)
    result = runner.invoke(app, ["restore", copy])
    assert result.exit_code == 0, result.output
    assert facts(fresh_url, registry) == facts(live, registry)

    result = runner.invoke(app, ["restore", "--yes", "missing.sqlite3"])
    assert result.exit_code == 1 and "no such backup file" in result.output
