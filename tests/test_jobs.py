"""The worker's jobs against real servers: a failing mailbox alerts the admin once and says when it
recovers; a person resolving a review item makes the mail count. Real Dovecot, real SQLite and PostgreSQL, no
mocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlmodel import Session, select

from mailbot import jobs
from mailbot.review import ReviewError, resolve_review
from mailbot.sources import SourceError
from registry.models import InboundMail, Minutes, OutboundMail
from registry.runtime import Runtime

if TYPE_CHECKING:
    from servers import DovecotServer

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
NOW = datetime(2025, 3, 20, 9, 0, tzinfo=UTC)


def runtime(tmp_path: Path, dovecot: DovecotServer, database_url: str, **extra: object) -> Runtime:
    overrides = {
        "imap": dovecot.imap_settings().model_dump(),
        "database": {"url": database_url},
        "smtp": {"directory": tmp_path / "outbox"},
        "schedule": {"failures_before_alert": 2},
        **extra,
    }
    return Runtime(config_path=None, overrides=overrides)


def alerts(rt: Runtime) -> list[OutboundMail]:
    with Session(rt.engine()) as session:
        return list(session.exec(select(OutboundMail).where(OutboundMail.kind == "alert")).all())


def test_failing_mailbox_alerts_the_admin_once_and_then_reports_recovery(
    tmp_path: Path, dovecot: DovecotServer, database_url: str
) -> None:
    rt = runtime(tmp_path, dovecot, database_url)
    jobs.poll(rt, NOW)  # a good pass first
    dovecot.stop()
    try:
        for minute in range(1, 5):
            with pytest.raises(SourceError):
                jobs.poll(rt, NOW + timedelta(minutes=minute))
    finally:
        dovecot.start()
    failing = alerts(rt)
    assert len(failing) == 1, [a.subject for a in failing]
    assert rt.settings.admin.addresses[0] in failing[0].recipients
    assert dovecot.password not in failing[0].body_text
    jobs.poll(rt, NOW + timedelta(minutes=10))
    jobs.poll(rt, NOW + timedelta(minutes=15))
    after = alerts(rt)
    assert len(after) == 2  # the failure alert and one "works again"
    assert after[1].id != failing[0].id
    assert "Misslyckade försök innan: 4" in after[1].body_text, after[1].body_text


def test_resolving_a_review_item_registers_the_minutes(
    tmp_path: Path, dovecot: DovecotServer, database_url: str
) -> None:
    rt = runtime(tmp_path, dovecot, database_url)
    # Minutes from a sender who is in no member list (the registry is empty): the product asks a person.
    raw = (CORPUS / "033_skis-minnesanteckningar-pdf.eml").read_bytes()
    dovecot.append(raw)
    jobs.poll(rt, NOW)
    with Session(rt.engine()) as session:
        mail = session.exec(select(InboundMail)).one()
        assert mail.status == "review" and "not a member" in (mail.reason or "")
        mail_id = mail.id
    result = resolve_review(rt, mail_id, network="skis", kinds=["minutes"], dismiss=False, note="känd sekreterare",
                            now=NOW)  # fmt: skip
    assert result["status"] == "registered"
    with Session(rt.engine()) as session:
        mail = session.get(InboundMail, mail_id)
        assert mail.resolved_at is not None and "skis" in (mail.resolution or "")
        minutes = session.exec(select(Minutes)).all()
        assert [m.network_key for m in minutes] == ["skis"]
    with pytest.raises(ReviewError):
        resolve_review(rt, mail_id, network=None, kinds=[], dismiss=True, note=None, now=NOW)


def test_dismissed_review_item_leaves_the_queue_but_stays_in_the_audit_trail(
    tmp_path: Path, dovecot: DovecotServer, database_url: str
) -> None:
    rt = runtime(tmp_path, dovecot, database_url)
    dovecot.append((CORPUS / "033_skis-minnesanteckningar-pdf.eml").read_bytes())
    jobs.poll(rt, NOW)
    with Session(rt.engine()) as session:
        mail_id = session.exec(select(InboundMail)).one().id
    resolve_review(rt, mail_id, network=None, kinds=[], dismiss=True, note="dubblett", now=NOW)
    with Session(rt.engine()) as session:
        from registry.queries import mails, review_items

        assert review_items(session) == []
        trail = mails(session, None)
        assert trail[0]["resolution"] == "dismissed: dubblett"
