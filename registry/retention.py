"""Retention: the raw bytes of mails older than `retention.raw_mail_days` are purged; the facts stay.

Only `inbound_mail.raw` is cleared. The mail's row (sender, subject, status, what was registered, its sha256, so a
re-read mail is still recognised) and everything pointing at it stay: that row is the facts' provenance. Documents
are kept too: the registry only stores a document as the fact itself (minutes, a deliverable), never as a copy of
a mail. A mail still waiting in review keeps its bytes (a person needs them to resolve it). Never deletes a row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from registry.domain import MailStatus
from registry.models import InboundMail

log = logging.getLogger("registry.retention")
DEFAULT_BATCH = 200
PURGED_KEY = "raw_purged"  # in inbound_mail.details: {"by": "retention"|"forget", "on": "YYYY-MM-DD"}


@dataclass(frozen=True)
class StoredRawMail:
    """What the selection needs to know about a mail whose bytes are still stored (never the bytes)."""

    id: int
    received: datetime
    size: int  # bytes stored
    waiting_in_review: bool


@dataclass(frozen=True)
class PurgeSelection:
    purge: tuple[StoredRawMail, ...]
    kept_for_review: tuple[StoredRawMail, ...]


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime | None  # None: retention is off (0 days)
    purged: int  # mails whose bytes were cleared (dry run: would be)
    bytes_freed: int
    kept_for_review: int  # old, but waiting in review
    batches: int
    dry_run: bool

    def as_json(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "purged": self.purged,
            "bytes_freed": self.bytes_freed,
            "kept_for_review": self.kept_for_review,
            "batches": self.batches,
            "dry_run": self.dry_run,
        }


def retention_cutoff(now: datetime, older_than_days: int) -> datetime | None:
    """Mails received before this instant are purged; None when retention is off (0 days)."""
    if older_than_days < 0:
        raise ValueError("older_than_days must be 0 (keep forever) or more")
    return None if older_than_days == 0 else now - timedelta(days=older_than_days)


def select_for_purge(mails: Iterable[StoredRawMail], cutoff: datetime | None) -> PurgeSelection:
    """Pure: which of these mails lose their bytes, and which old ones are kept because a person still needs them."""
    if cutoff is None:
        return PurgeSelection((), ())
    old = [m for m in mails if m.received < cutoff]
    return PurgeSelection(
        tuple(m for m in old if not m.waiting_in_review), tuple(m for m in old if m.waiting_in_review)
    )


def mark_purged(details: str, by: str, on: date) -> str:
    """The mail's `details` JSON with a note that (and when) its original was purged; what was registered stays."""
    try:
        data = json.loads(details) if details else {}
    except ValueError:
        data = {"details": details}
    if not isinstance(data, dict):
        data = {"details": data}
    data[PURGED_KEY] = {"by": by, "on": on.isoformat()}
    return json.dumps(data, ensure_ascii=False, default=str)


def purge_note(details: str) -> str | None:
    """'purged by retention on 2027-03-01' when the mail's original was purged (from its details), else None."""
    try:
        data = json.loads(details) if details else {}
    except ValueError:
        return None
    purged = data.get(PURGED_KEY) if isinstance(data, dict) else None
    if not isinstance(purged, dict):
        return None
    return f"purged by {purged.get('by', 'retention')} on {purged.get('on', '?')}"


def _stored_batch(session: Session, cutoff: datetime, after_id: int, batch_size: int) -> Sequence[StoredRawMail]:
    rows = session.exec(
        select(
            InboundMail.id,
            InboundMail.received,
            func.length(InboundMail.raw),
            InboundMail.status,
            InboundMail.resolved_at,
        )  # fmt: skip
        .where(col(InboundMail.raw).is_not(None), col(InboundMail.received) < cutoff, col(InboundMail.id) > after_id)
        .order_by(col(InboundMail.id))
        .limit(batch_size)
    ).all()
    return [
        StoredRawMail(
            id=int(mail_id),
            received=received,
            size=int(size or 0),
            waiting_in_review=status == MailStatus.REVIEW.value and resolved_at is None,
        )
        for mail_id, received, size, status, resolved_at in rows
    ]


def purge_raw_mail(
    engine: Engine, older_than_days: int, now: datetime, *, dry_run: bool = False, batch_size: int = DEFAULT_BATCH
) -> PurgeReport:
    """Clear the raw bytes of mails received more than `older_than_days` before `now`, one transaction per batch.

    Idempotent (a purged mail has no bytes, so it is never selected again) and safe beside a running worker: a
    batch only touches rows whose bytes are still there, and each row is noted in its `details`. Logs counts only.
    Run privacy.compact() afterwards on SQLite to give the freed pages back to the file system.
    """
    cutoff = retention_cutoff(now, older_than_days)
    purged = bytes_freed = kept = batches = 0
    if cutoff is not None:
        after_id = 0
        while True:
            with Session(engine) as session:
                stored = _stored_batch(session, cutoff, after_id, batch_size)
                if not stored:
                    break
                after_id = stored[-1].id
                selection = select_for_purge(stored, cutoff)
                kept += len(selection.kept_for_review)
                if dry_run:
                    purged += len(selection.purge)
                    bytes_freed += sum(m.size for m in selection.purge)
                    continue
                details = dict(
                    session.exec(
                        select(InboundMail.id, InboundMail.details).where(
                            col(InboundMail.id).in_([m.id for m in selection.purge])
                        )
                    ).all()
                )
                for mail in selection.purge:
                    # `raw IS NOT NULL` again: a forget or another purge may have got there since the select.
                    result = session.exec(  # type: ignore[call-overload]
                        update(InboundMail)
                        .where(col(InboundMail.id) == mail.id, col(InboundMail.raw).is_not(None))
                        .values(raw=None, details=mark_purged(details.get(mail.id, ""), "retention", now.date()))
                    )
                    if result.rowcount == 1:
                        purged += 1
                        bytes_freed += mail.size
                session.commit()
                batches += 1
    report = PurgeReport(cutoff, purged, bytes_freed, kept, batches, dry_run)
    log.info(
        "retention: %d raw mails older than %s %s (%d bytes), %d kept while waiting in review",
        purged,
        cutoff.isoformat(timespec="minutes") if cutoff else "never",
        "would be purged (dry run)" if dry_run else "purged",
        bytes_freed,
        kept,
    )
    return report
