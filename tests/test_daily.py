"""The daily run beyond the reminders: the yearly report in January, and the retention purge of raw mail.

The registry is the bundled sample mailbox (66 Outlook-style mails) read through the real intake, on SQLite and
PostgreSQL; mail goes to a directory transport, as in the demo.
"""

from __future__ import annotations

import email
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailbot import jobs
from registry.models import InboundMail, Meeting, Minutes, OutboundMail
from registry.paths import bundled
from registry.runtime import Runtime

READ_ON = datetime(2025, 11, 21, 16, 0, tzinfo=UTC)


def sample_registry(tmp_path: Path, database_url: str, **settings: object) -> Runtime:
    rt = Runtime(
        config_path=None,
        overrides={
            "maildir": bundled("sample") / "maildir",
            "database": {"url": database_url},
            "smtp": {"directory": tmp_path / "outbox"},
            **settings,
        },  # fmt: skip
    )
    jobs.poll(rt, READ_ON)
    return rt


def reports(rt: Runtime) -> list[OutboundMail]:
    with Session(rt.engine()) as session:
        return list(session.exec(select(OutboundMail).where(OutboundMail.kind == "report")).all())


def test_the_yearly_report_goes_out_once_from_the_configured_day_in_january(tmp_path: Path, database_url: str) -> None:
    rt = sample_registry(tmp_path, database_url, report={"mail_day": 15})

    jobs.remind(rt, date(2026, 1, 14), datetime(2026, 1, 14, 7, 0, tzinfo=UTC))
    assert reports(rt) == []

    jobs.remind(rt, date(2026, 1, 15), datetime(2026, 1, 15, 7, 0, tzinfo=UTC))
    sent = reports(rt)
    keys = sorted(row.dedup_key for row in sent)
    assert "report:2025:admin" in keys
    assert all(key.startswith("report:2025:") for key in keys)
    assert {row.state for row in sent} == {"sent"}

    admin = next(row for row in sent if row.dedup_key == "report:2025:admin")
    assert admin.recipients == ",".join(rt.settings.admin.addresses)
    eml = next(path for path in (tmp_path / "outbox").glob("*.eml") if admin.message_id.strip("<>") in path.read_text(
        encoding="utf-8", errors="replace"))  # fmt: skip
    message = email.message_from_bytes(eml.read_bytes())
    attachments = [part for part in message.walk() if part.get_filename()]
    assert [part.get_filename() for part in attachments] == ["arsrapport-2025.html"]
    html = attachments[0].get_payload(decode=True).decode("utf-8")
    assert "Årsrapport 2025" in html

    # The next day, and a second run the same day, send nothing more.
    jobs.remind(rt, date(2026, 1, 15), datetime(2026, 1, 15, 9, 0, tzinfo=UTC))
    jobs.remind(rt, date(2026, 1, 16), datetime(2026, 1, 16, 7, 0, tzinfo=UTC))
    assert sorted(row.dedup_key for row in reports(rt)) == keys


def test_the_yearly_report_can_be_switched_off(tmp_path: Path, database_url: str) -> None:
    rt = sample_registry(tmp_path, database_url, report={"enabled": False})
    jobs.remind(rt, date(2026, 1, 20), datetime(2026, 1, 20, 7, 0, tzinfo=UTC))
    assert reports(rt) == []


def _counts(rt: Runtime) -> tuple[int, int, int, int]:
    with Session(rt.engine()) as session:
        with_bytes = session.exec(
            select(func.count()).select_from(InboundMail).where(col(InboundMail.raw).is_not(None))
        )
        return (
            session.exec(select(func.count()).select_from(InboundMail)).one(),
            with_bytes.one(),
            session.exec(select(func.count()).select_from(Meeting)).one(),
            session.exec(select(func.count()).select_from(Minutes)).one(),
        )


def test_the_daily_retention_purge_keeps_every_fact(tmp_path: Path, database_url: str) -> None:
    rt = sample_registry(tmp_path, database_url, retention={"raw_mail_days": 60})
    mails, with_bytes, meetings, minutes = _counts(rt)
    assert mails == with_bytes > 0

    purged = jobs.purge_old_raw_mail(rt, datetime(2026, 1, 15, 7, 0, tzinfo=UTC))

    assert purged > 0
    after = _counts(rt)
    assert after == (mails, with_bytes - purged, meetings, minutes)
    assert jobs.purge_old_raw_mail(rt, datetime(2026, 1, 15, 7, 0, tzinfo=UTC)) == 0  # idempotent


def test_retention_zero_keeps_raw_mail_forever(tmp_path: Path, database_url: str) -> None:
    rt = sample_registry(tmp_path, database_url, retention={"raw_mail_days": 0})
    before = _counts(rt)
    assert jobs.purge_old_raw_mail(rt, datetime(2040, 1, 1, tzinfo=UTC)) == 0
    assert _counts(rt) == before
