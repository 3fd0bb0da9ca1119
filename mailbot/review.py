"""Resolving a review item: a person assigns a mail to a network and kinds (it is then processed
as if understood) or dismisses it. Every resolution stays in the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from mailbot.intake import Intake
from mailbot.reader import ReadJob
from mailbot.understand.identity import read_identity
from registry.domain import MailKind, MailStatus
from registry.errors import ExpectedError
from registry.models import InboundMail
from registry.retention import purge_note
from registry.runtime import Runtime


class ReviewError(ExpectedError):
    pass


def resolve_review(
    rt: Runtime, mail_id: int, network: str | None, kinds: list[str], dismiss: bool, note: str | None,
    now: datetime | None = None,
) -> dict[str, object]:  # fmt: skip
    now = now or datetime.now(UTC)
    engine = rt.engine(create=False)
    try:
        assigned_kinds = frozenset(MailKind(kind) for kind in kinds)
    except ValueError:
        known = ", ".join(k.value for k in MailKind)
        raise ReviewError(f"unknown kind in {kinds!r} (known: {known})") from None
    with Session(engine) as session:
        mail = session.get(InboundMail, mail_id)
        if mail is None or mail.status != MailStatus.REVIEW.value:
            raise ReviewError(f"no mail {mail_id} waiting in review (see `registry review`)")
        if mail.resolved_at is not None:
            raise ReviewError(f"mail {mail_id} was already resolved: {mail.resolution}")
        if dismiss:
            mail.resolved_at = now
            mail.resolution = f"dismissed{': ' + note if note else ''}"
            mail.status = MailStatus.IGNORED.value  # the audit trail shows a person's decision
            session.add(mail)
            session.commit()
            return {"id": mail_id, "status": "dismissed", "summary": f"mail {mail_id} dismissed"}
        if mail.raw is None:
            why = purge_note(mail.details) or "not stored (over the size limit)"
            raise ReviewError(f"mail {mail_id} cannot be processed: its original was {why}; dismiss it instead")
        intake = Intake(engine=engine, settings=rt.settings, registry=rt.registry, tz=rt.tz)
        context = intake.context(
            session, read_identity(mail.raw), mail.received, assigned_network=network, assigned_kinds=assigned_kinds
        )
        # The same budgeted reader as the intake: a poison mail cannot hang the admin's command either.
        ((_, outcome),) = intake.reader().read_many([(mail_id, ReadJob(mail.raw, context, mail.received))])
        if outcome is None or outcome.parsed is None or outcome.understanding is None:
            why = outcome.failure if outcome is not None else "the reader returned nothing"
            raise ReviewError(f"mail {mail_id} cannot be read: {why}; dismiss it instead")
        understanding = outcome.understanding
        with session.begin_nested():
            intake._record_understanding(session, mail, outcome.parsed, understanding, mail.received, now)
        if understanding.status is not MailStatus.REGISTERED:
            session.rollback()
            raise ReviewError(
                f"mail {mail_id} still cannot be registered as {network}/{','.join(kinds)}: {understanding.review_reason}"
            )
        mail.resolved_at = now
        mail.resolution = f"assigned to {network} as {','.join(sorted(kinds))}{': ' + note if note else ''}"
        session.add(mail)
        session.commit()
        return {
            "id": mail_id,
            "status": mail.status,
            "network": network,
            "kinds": mail.kinds.split(","),
            "summary": f"mail {mail_id} registered for {network} as {mail.kinds}",
        }
