"""Retention: raw mail bytes older than `retention.raw_mail_days` are purged, on both engines; the facts, the mail
rows (the provenance) and the documents stay, and a mail waiting in review keeps its bytes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from registry import record
from registry.cli import app
from registry.config import load_registry
from registry.db import open_registry
from registry.models import Document, InboundMail, Minutes
from registry.paths import config_dir
from registry.retention import (
    StoredRawMail,
    mark_purged,
    purge_note,
    purge_raw_mail,
    retention_cutoff,
    select_for_purge,
)

NOW = datetime(2027, 3, 1, 6, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=800)
RECENT = NOW - timedelta(days=100)
MARKER = "X-Only-In-The-Bytes: ursprungsmejlet-7f3a"


# -- the pure part -----------------------------------------------------------------------------------


def test_zero_days_keeps_everything_forever() -> None:
    assert retention_cutoff(NOW, 0) is None
    assert select_for_purge([StoredRawMail(1, OLD, 10, False)], None).purge == ()


def test_only_mails_older_than_the_cutoff_and_not_waiting_in_review_are_selected() -> None:
    cutoff = retention_cutoff(NOW, 730)
    assert cutoff == NOW - timedelta(days=730)
    mails = [
        StoredRawMail(1, OLD, 10, False),
        StoredRawMail(2, OLD, 20, True),  # waiting in review
        StoredRawMail(3, RECENT, 30, False),
        StoredRawMail(4, cutoff, 40, False),  # exactly at the cutoff: kept
    ]
    selection = select_for_purge(mails, cutoff)
    assert [m.id for m in selection.purge] == [1]
    assert [m.id for m in selection.kept_for_review] == [2]


def test_the_purge_note_keeps_what_was_registered() -> None:
    details = mark_purged(json.dumps({"minutes": [{"meeting_date": "2025-02-06"}]}), "retention", date(2027, 3, 1))
    assert json.loads(details)["minutes"] == [{"meeting_date": "2025-02-06"}]
    assert purge_note(details) == "purged by retention on 2027-03-01"
    assert purge_note(mark_purged("", "forget", date(2027, 1, 2))) == "purged by forget on 2027-01-02"
    assert purge_note("") is None and purge_note('{"registered": 1}') is None


# -- against a database ------------------------------------------------------------------------------


@dataclass
class Mails:
    engine: Engine
    config: Path
    url: str
    old_minutes: int  # old, registered, with minutes
    old_review: int  # old, waiting in review
    old_dismissed: int  # old, review resolved
    recent: int


def raw_mail(subject: str) -> bytes:
    return (f"From: Emma Holmberg <emma.holmberg@lidkoping.se>\r\nTo: utbildning@skaraborg.se\r\n{MARKER}\r\n"
            f"Subject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSe bifogat.\r\n").encode()  # fmt: skip


@pytest.fixture
def mails(tmp_path: Path, database_url: str) -> Iterator[Mails]:
    engine = open_registry(database_url, load_registry(config_dir()))
    with Session(engine) as session:

        def mail(subject: str, received: datetime, status: str = "registered", resolved: bool = False) -> int:
            raw = raw_mail(subject)
            row = InboundMail(sha256=record.sha256(raw), folder="INBOX", raw=raw, size=len(raw),
                              from_address="emma.holmberg@lidkoping.se", subject=subject, body_text="Se bifogat.",
                              received=received, first_seen=received, status=status, network_key="elevhalsa",
                              details=json.dumps({"minutes": [{"meeting_date": "2025-01-10"}]}) if status == "registered" else "",
                              resolved_at=received if resolved else None)  # fmt: skip
            session.add(row)
            session.flush()
            assert row.id is not None
            return row.id

        old_minutes = mail("Protokoll 10 januari", OLD)
        doc, _ = record.document(session, "Protokoll 250110.txt", "text/plain", b"Protokoll", "Protokoll", old_minutes)
        record.minutes(session, "elevhalsa", date(2025, 1, 10), doc, ["Skövde"], OLD, old_minutes)
        old_review = mail("Oklart", OLD - timedelta(days=1), status="review")
        old_dismissed = mail("Avfärdat", OLD - timedelta(days=2), status="review", resolved=True)
        recent = mail("Protokoll i höstas", RECENT)
        session.commit()
    config = tmp_path / "mailbot.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[retention]\nraw_mail_days = 730\n', encoding="utf-8")
    yield Mails(engine, config, database_url, old_minutes, old_review, old_dismissed, recent)
    engine.dispose()


def stored(engine: Engine) -> dict[int, InboundMail]:
    with Session(engine) as session:
        return {m.id: m for m in session.exec(select(InboundMail)).all() if m.id is not None}


def test_old_originals_are_purged_and_the_facts_and_provenance_stay(mails: Mails) -> None:
    size = len(raw_mail("Protokoll 10 januari")) + len(raw_mail("Avfärdat"))
    report = purge_raw_mail(mails.engine, 730, NOW)
    assert (report.purged, report.bytes_freed, report.kept_for_review) == (2, size, 1)
    rows = stored(mails.engine)
    assert len(rows) == 4  # no row deleted
    purged = rows[mails.old_minutes]
    assert purged.raw is None and purged.sha256 and purged.subject == "Protokoll 10 januari"
    assert purged.from_address == "emma.holmberg@lidkoping.se" and purged.status == "registered"
    assert json.loads(purged.details)["minutes"] == [{"meeting_date": "2025-01-10"}]
    assert purge_note(purged.details) == "purged by retention on 2027-03-01"
    assert rows[mails.old_dismissed].raw is None
    assert rows[mails.old_review].raw is not None  # a person still needs it
    assert rows[mails.recent].raw is not None
    with Session(mails.engine) as session:
        minutes = session.exec(select(Minutes)).one()
        document = session.get(Document, minutes.document_id)
        assert minutes.source_mail_id == mails.old_minutes and document is not None and document.content == b"Protokoll"


def test_the_purge_is_idempotent_and_works_in_batches(mails: Mails) -> None:
    first = purge_raw_mail(mails.engine, 730, NOW, batch_size=1)
    assert (first.purged, first.batches) == (2, 3)  # one mail per transaction; the review one is passed over
    again = purge_raw_mail(mails.engine, 730, NOW, batch_size=1)
    assert (again.purged, again.bytes_freed, again.kept_for_review) == (0, 0, 1)
    assert purge_note(stored(mails.engine)[mails.old_minutes].details) == "purged by retention on 2027-03-01"


def test_a_dry_run_changes_nothing(mails: Mails) -> None:
    report = purge_raw_mail(mails.engine, 730, NOW, dry_run=True)
    assert (report.purged, report.dry_run, report.batches) == (2, True, 0)
    assert all(m.raw is not None for m in stored(mails.engine).values())


def run(config: Path, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--config", str(config), *args], input=input)


def test_cli_asks_first_and_takes_the_default_from_the_settings(mails: Mails) -> None:
    refused = run(mails.config, "purge-raw-mail", "--as-of", "2027-03-01", input="n\n")
    assert refused.exit_code == 1 and "Nothing purged" in refused.stderr
    assert all(m.raw is not None for m in stored(mails.engine).values())
    done = run(mails.config, "purge-raw-mail", "--as-of", "2027-03-01", input="y\n")
    assert done.exit_code == 0, done.output
    assert "2 originals of mails received before 2025-03-01 purged" in done.stdout
    assert "retention: 2 raw mails older than 2025-02-28T23:00+00:00 purged" in done.stderr  # the log: counts only


def test_cli_json_dry_run_and_older_than(mails: Mails) -> None:
    result = run(mails.config, "purge-raw-mail", "--as-of", "2027-03-01", "--older-than-days", "30", "--dry-run",
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["purged"], report["kept_for_review"], report["dry_run"]) == (3, 1, True)
    assert report["cutoff"] == "2027-01-29T23:00:00+00:00"  # 30 days before midnight of 2027-03-01 in Stockholm
    off = run(mails.config, "purge-raw-mail", "--older-than-days", "0", "--yes")
    assert off.exit_code == 0 and "Retention is off" in off.stdout


def test_purged_bytes_leave_the_database(mails: Mails) -> None:
    mails.engine.dispose()
    result = run(mails.config, "purge-raw-mail", "--as-of", "2027-03-01", "--older-than-days", "1", "--yes")
    assert result.exit_code == 0, result.output
    with Session(mails.engine) as session:
        left = session.exec(select(InboundMail.id).where(InboundMail.raw != None)).all()  # noqa: E711
    assert left == [mails.old_review]  # the one waiting in review
    if mails.url.startswith("sqlite"):  # and VACUUM left no copy in a freed page of the file
        path = Path(mails.url.removeprefix("sqlite:///"))
        with sqlite3.connect(path) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert path.read_bytes().count(MARKER.encode()) == 1


def test_a_review_item_whose_original_was_purged_says_so(mails: Mails) -> None:
    with Session(mails.engine) as session:
        mail = session.get(InboundMail, mails.old_review)
        assert mail is not None
        mail.raw, mail.details = None, mark_purged(mail.details, "forget", date(2027, 2, 1))
        session.commit()
    result = run(mails.config, "review", "--resolve", str(mails.old_review), "--network", "elevhalsa", "--kind",
                 "minutes")  # fmt: skip
    assert result.exit_code == 1
    assert "its original was purged by forget on 2027-02-01; dismiss it instead" in result.stderr
