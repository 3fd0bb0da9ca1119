"""Backup and restore: a consistent copy while another connection writes, restored into a fresh database."""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, func
from sqlmodel import Session, select
from typer.testing import CliRunner

import registry.cli_ops  # noqa: F401  (registers backup/restore on the registry app)
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
    """Members, meetings and mails, through the same record functions as the intake."""
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
            add_mail(session, n, "Bulk", raw_size=20_000)
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
    tmp_path: Path, registry: Registry
) -> None:
    url = f"sqlite:///{tmp_path / 'live' / 'registry.sqlite3'}"
    record_facts(url, registry)
    before = facts(url, registry)
    assert len(before["members"]) == 2 and len(before["meetings"]) == 2 and len(before["mails"]) == 399

    # A writer on its own engine (its own connections): each transaction adds a mail and its document.
    writer_engine = make_engine(url)
    stop = threading.Event()
    written: list[int] = []
    failures: list[BaseException] = []

    def write() -> None:
        n = 10_000
        try:
            while not stop.is_set():
                with Session(writer_engine) as session:
                    mail = add_mail(session, n, "Writer", raw_size=5_000)
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
        out = tmp_path / "backups" / "registry-backup.sqlite3"
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
    assert sizes[-1] == out.stat().st_size > 1_000_000
    assert not out.with_name(out.name + "-wal").exists()  # one self-contained file
    assert not list(out.parent.glob(".*.partial"))

    # Consistent: every writer transaction is in the copy whole (mail and document) or not at all.
    copy = sqlite3.connect(out)
    writer_mails = copy.execute("SELECT count(*) FROM inbound_mail WHERE subject LIKE 'Writer%'").fetchone()[0]
    writer_documents = copy.execute("SELECT count(*) FROM document WHERE filename = 'a.txt'").fetchone()[0]
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    copy.close()
    assert writer_mails == writer_documents > 0

    fresh = tmp_path / "restored" / "registry.sqlite3"
    restored = backup_ops.restore(f"sqlite:///{fresh}", out)
    assert restored == fresh.resolve()
    assert facts(f"sqlite:///{fresh}", registry) == before
    engine = make_engine(f"sqlite:///{fresh}")
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(InboundMail)).one() == 399 + writer_mails
    engine.dispose()


def test_restore_refuses_to_overwrite_without_yes_and_checks_the_file(tmp_path: Path, registry: Registry) -> None:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    record_facts(url, registry)
    out = tmp_path / "backup.sqlite3"
    backup_ops.backup(make_engine(url), out)

    other = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    open_registry(other, registry).dispose()  # an existing (empty) registry
    with pytest.raises(backup_ops.BackupError, match="add --yes"):
        backup_ops.restore(other, out)
    backup_ops.restore(other, out, yes=True)
    assert facts(other, registry) == facts(url, registry)

    not_sqlite = tmp_path / "dump.sql"
    not_sqlite.write_text("-- PostgreSQL database dump\n")
    with pytest.raises(backup_ops.BackupError, match="not a SQLite database"):
        backup_ops.restore(f"sqlite:///{tmp_path / 'x.sqlite3'}", not_sqlite)
    plain = tmp_path / "plain.sqlite3"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(backup_ops.BackupError, match="no alembic_version"):
        backup_ops.restore(f"sqlite:///{tmp_path / 'x.sqlite3'}", plain)
    with pytest.raises(backup_ops.BackupError, match="no such backup file"):
        backup_ops.restore(f"sqlite:///{tmp_path / 'x.sqlite3'}", tmp_path / "missing.sqlite3")
    assert not (tmp_path / "x.sqlite3").exists()
    with pytest.raises(backup_ops.BackupError, match="overwrite the registry itself"):
        backup_ops.backup(make_engine(url), tmp_path / "registry.sqlite3")


def test_postgresql_backup_and_restore_give_the_pg_dump_commands(tmp_path: Path) -> None:
    engine = create_engine("postgresql+psycopg://mailbot:s3cret@db.example:5432/mailbot")  # never connects
    with pytest.raises(backup_ops.BackupError) as caught:
        backup_ops.backup(engine, tmp_path / "registry.dump")
    message = str(caught.value)
    dump = tmp_path / "registry.dump"
    assert f"pg_dump --format=custom --no-owner --file {dump} postgresql://mailbot@db.example:5432/mailbot" in message
    assert "pg_restore" in message and "s3cret" not in message and "psycopg" not in message
    with pytest.raises(backup_ops.BackupError, match="pg_restore --clean"):
        backup_ops.restore("postgresql+psycopg://mailbot@db.example/mailbot", tmp_path / "registry.dump")


def test_cli_backup_and_restore(tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    live = tmp_path / "live.sqlite3"
    record_facts(f"sqlite:///{live}", registry)
    runner = CliRunner()

    monkeypatch.setenv("MAILBOT_DATABASE__URL", f"sqlite:///{live}")
    result = runner.invoke(app, ["backup", "--out", "copy.sqlite3"])
    assert result.exit_code == 0, result.output
    assert "copy.sqlite3 (" in result.output

    monkeypatch.setenv("MAILBOT_DATABASE__URL", f"sqlite:///{live}")
    result = runner.invoke(app, ["restore", "copy.sqlite3"])
    assert result.exit_code == 1
    assert "add --yes" in result.output

    fresh = tmp_path / "fresh" / "registry.sqlite3"
    monkeypatch.setenv("MAILBOT_DATABASE__URL", f"sqlite:///{fresh}")
    result = runner.invoke(app, ["restore", "copy.sqlite3"])
    assert result.exit_code == 0, result.output
    assert facts(f"sqlite:///{fresh}", registry) == facts(f"sqlite:///{live}", registry)

    result = runner.invoke(app, ["restore", "--yes", "missing.sqlite3"])
    assert result.exit_code == 1 and "no such backup file" in result.output
