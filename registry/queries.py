"""Reading the registry: tables in, plain facts and JSON-ready rows out.

Read-only; local dates are computed in the configured time zone passed in by the caller.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from registry.domain import MeetingStatus, Role
from registry.errors import ExpectedError
from registry.facts import (
    DeliverableFact,
    MeetingFact,
    MemberFact,
    MemberListFact,
    MinutesFact,
    NetworkFacts,
    meeting_status,
)
from registry.models import (
    DeliverableReceipt,
    Document,
    InboundMail,
    MailboxState,
    Meeting,
    MemberList,
    Membership,
    Minutes,
    Person,
)


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def member_lists(session: Session, network_key: str, tz: ZoneInfo) -> tuple[MemberListFact, ...]:
    lists = session.exec(select(MemberList).where(MemberList.network_key == network_key)).all()
    rows = session.exec(
        select(Membership, Person)
        .join(Person, col(Membership.person_id) == col(Person.id), isouter=True)
        .where(Membership.network_key == network_key)
    ).all()
    by_list: dict[int, list[MemberFact]] = defaultdict(list)
    for membership, person in rows:
        by_list[membership.member_list_id].append(
            MemberFact(
                name=person.name if person else "(borttagen)",
                email=person.email if person else "",
                municipality=membership.municipality,
                role=Role(membership.role),
            )
        )
    return tuple(
        MemberListFact(
            received_on=local_date(item.received, tz),
            effective_from=item.effective_from,
            members=tuple(by_list.get(item.id or 0, ())),
        )
        for item in lists
    )


def network_facts(session: Session, network_key: str, tz: ZoneInfo) -> NetworkFacts:
    meetings = session.exec(select(Meeting).where(Meeting.network_key == network_key)).all()
    minutes = session.exec(select(Minutes).where(Minutes.network_key == network_key)).all()
    deliverables = session.exec(select(DeliverableReceipt).where(DeliverableReceipt.network_key == network_key)).all()
    return NetworkFacts(
        member_lists=member_lists(session, network_key, tz),
        meetings=tuple(
            MeetingFact(
                date=m.date, status=MeetingStatus(m.status), announced=m.announced, start=m.start, place=m.place
            )
            for m in meetings
        ),
        minutes=tuple(
            MinutesFact(meeting_date=m.meeting_date, received_on=local_date(m.received, tz)) for m in minutes
        ),
        deliverables=tuple(
            DeliverableFact(key=d.deliverable_key, received_on=local_date(d.received, tz)) for d in deliverables
        ),
    )


def members_in_force(session: Session, network_key: str, on: date) -> list[dict[str, object]]:
    """The member list in force on `on`: the newest list that took effect on or before it."""
    current = session.exec(
        select(MemberList)
        .where(MemberList.network_key == network_key, MemberList.effective_from <= on)
        .order_by(col(MemberList.effective_from).desc(), col(MemberList.received).desc(), col(MemberList.id).desc())
    ).first()
    if current is None:
        return []
    rows = session.exec(
        select(Membership, Person)
        .join(Person, col(Membership.person_id) == col(Person.id), isouter=True)
        .where(Membership.member_list_id == current.id)
        .order_by(col(Membership.id))
    ).all()
    return [
        {
            "name": person.name if person else "(borttagen)",
            "email": person.email if person else None,
            "municipality": membership.municipality,
            "role": membership.role,
            "valid_from": membership.valid_from.isoformat(),
            "source_mail_id": membership.source_mail_id,
        }
        for membership, person in rows
    ]


def meetings(session: Session, network_key: str, year: int | None, today: date) -> list[dict[str, object]]:
    query = select(Meeting).where(Meeting.network_key == network_key).order_by(col(Meeting.date), col(Meeting.id))
    with_minutes = {m.meeting_id for m in session.exec(select(Minutes).where(Minutes.network_key == network_key)).all()}
    result = []
    for meeting in session.exec(query).all():
        if year is not None and meeting.date.year != year:
            continue
        fact = MeetingFact(date=meeting.date, status=MeetingStatus(meeting.status))
        result.append(
            {
                "id": meeting.id,
                "date": meeting.date.isoformat(),
                "start": meeting.start.strftime("%H:%M") if meeting.start else None,
                "end": meeting.end.strftime("%H:%M") if meeting.end else None,
                "place": meeting.place,
                "status": meeting_status(fact, today).value,
                "announced": meeting.announced,
                "has_minutes": meeting.id in with_minutes,
                "calendar_uid": meeting.calendar_uid,
                "source_mail_id": meeting.source_mail_id,
            }
        )
    return result


def minutes(session: Session, network_key: str, year: int | None) -> list[dict[str, object]]:
    rows = session.exec(
        select(Minutes, Document)
        .join(Document, col(Minutes.document_id) == col(Document.id))
        .where(Minutes.network_key == network_key)
        .order_by(col(Minutes.meeting_date), col(Minutes.id))
    ).all()
    return [
        {
            "id": item.id,
            "meeting_date": item.meeting_date.isoformat(),
            "filename": document.filename,
            "received": item.received.isoformat(),
            "municipalities_present": [m for m in item.municipalities_present.split(",") if m],
            "source_mail_id": item.source_mail_id,
        }
        for item, document in rows
        if year is None or item.meeting_date.year == year
    ]


def mail_row(mail: InboundMail) -> dict[str, object]:
    return {
        "id": mail.id,
        "message_id": mail.message_id,
        "from": mail.from_address,
        "subject": mail.subject,
        "received": mail.received.isoformat(),
        "first_seen": mail.first_seen.isoformat(),
        "status": mail.status,
        "network": mail.network_key,
        "kinds": [k for k in mail.kinds.split(",") if k],
        "reason": mail.reason,
        "folder": mail.folder,
        "uid": mail.uid,
        "resolution": mail.resolution,
        "details": json.loads(mail.details) if mail.details else {},
    }


def mails(session: Session, since: datetime | None) -> list[dict[str, object]]:
    query = select(InboundMail).order_by(col(InboundMail.received), col(InboundMail.id))
    if since is not None:
        query = query.where(InboundMail.received >= since)
    return [mail_row(mail) for mail in session.exec(query).all()]


def review_items(session: Session, include_resolved: bool = False) -> list[dict[str, object]]:
    query = select(InboundMail).where(InboundMail.status == "review").order_by(col(InboundMail.id))
    if not include_resolved:
        query = query.where(col(InboundMail.resolved_at).is_(None))
    return [
        {
            "id": mail.id,
            "message_id": mail.message_id,
            "from": mail.from_address,
            "subject": mail.subject,
            "reason": mail.reason,
            "received": mail.received.isoformat(),
            "network": mail.network_key,
            "kinds": [k for k in mail.kinds.split(",") if k],
        }
        for mail in session.exec(query).all()
    ]


class DocumentNotFound(ExpectedError):
    pass


def save_minutes_document(session: Session, minutes_id: int, out: Path) -> tuple[str, int]:
    """Write the original document of minutes `minutes_id` to `out`; (file name, size)."""
    item = session.get(Minutes, minutes_id)
    document = session.get(Document, item.document_id) if item else None
    if item is None or document is None:
        raise DocumentNotFound(f"no minutes with id {minutes_id} (see `registry minutes NETWORK`)")
    if document.content is None:
        raise DocumentNotFound(f"the document of minutes {minutes_id} was purged (retention); only its text is kept")
    out.write_bytes(document.content)
    return document.filename, len(document.content)


def mailbox_health(session: Session) -> list[str]:
    """One line per folder: when the last good pass was, and the last error if the latest passes failed."""
    lines = []
    for state in session.exec(select(MailboxState)).all():
        good = state.last_good_pass.isoformat(timespec="minutes") if state.last_good_pass else "never"
        line = f"folder {state.folder}: last good pass {good}"
        if state.consecutive_failures:
            line += f"; {state.consecutive_failures} failed passes since, last error: {state.last_error}"
        lines.append(line)
    return lines
