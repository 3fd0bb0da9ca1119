"""Writing facts into the registry, each pointing at the mail it came from.

Called inside the caller's transaction; never commits, never reads the clock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from registry.domain import MeetingStatus
from registry.models import (
    BouncingAddress,
    DeliverableReceipt,
    Document,
    Meeting,
    MemberList,
    Membership,
    Minutes,
    Person,
)


@dataclass(frozen=True)
class NewMember:
    name: str
    email: str
    municipality: str | None
    role: str


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def person(session: Session, email: str, name: str) -> Person:
    found = session.exec(select(Person).where(Person.email == email)).first()
    if found is None:
        found = Person(email=email, name=name)
        session.add(found)
        session.flush()
    elif name and found.name != name:
        found.name = name
    return found


def member_list(
    session: Session,
    network_key: str,
    members: Sequence[NewMember],
    rejected: Sequence[dict[str, object]],
    received: datetime,
    source: str,
    mail_id: int,
    tz: ZoneInfo,
    period: tuple[str, date, date] | None = None,
) -> MemberList:
    """A new list replaces the one in force from the day it arrived, or from the start of the period it is for
    (`period`: label, first and last day; a list for 2026 sent in November takes over on 1 January); the old one
    stays in history."""
    effective = received.astimezone(tz).date()
    if period is not None:
        effective = max(effective, period[1])
    new = MemberList(
        network_key=network_key,
        effective_from=effective,
        period_label=period[0] if period else None,
        period_start=period[1] if period else None,
        period_end=period[2] if period else None,
        received=received,
        source=source,
        rejected_rows=json.dumps(list(rejected), ensure_ascii=False),
        source_mail_id=mail_id,
    )
    session.add(new)
    session.flush()
    open_memberships = session.exec(
        select(Membership).where(
            Membership.network_key == network_key,
            col(Membership.valid_to).is_(None),
            Membership.valid_from <= effective,
        )
    ).all()
    for old in open_memberships:
        old.valid_to = effective
    for member in members:
        who = person(session, member.email, member.name)
        session.add(
            Membership(
                member_list_id=new.id or 0,
                network_key=network_key,
                person_id=who.id,
                role=member.role,
                municipality=member.municipality,
                valid_from=effective,
                source_mail_id=mail_id,
            )
        )
    return new


def announced_meeting(
    session: Session,
    network_key: str,
    day: date,
    start: object,
    end: object,
    place: str | None,
    mail_id: int,
    replace: bool = False,
) -> tuple[Meeting, bool]:
    """A meeting announced in a list of dates; an existing meeting that day is updated, not duplicated: what it
    lacked is filled in, or with `replace` (the mail changes its time or place) what the mail states replaces it."""
    existing = session.exec(
        select(Meeting).where(
            Meeting.network_key == network_key, Meeting.date == day, Meeting.status != MeetingStatus.CANCELLED.value
        )
    ).first()
    if existing is not None and replace:
        existing.start = start or existing.start  # type: ignore[assignment]
        existing.end = (end if start else None) or existing.end  # type: ignore[assignment]
        existing.place = place or existing.place
    if existing is not None:
        existing.start = existing.start or start  # type: ignore[assignment]
        existing.end = existing.end or end  # type: ignore[assignment]
        existing.place = existing.place or place
        existing.announced = True
        existing.updated_by_mail_id = mail_id
        return existing, False
    meeting = Meeting(
        network_key=network_key, date=day, start=start, end=end, place=place,  # type: ignore[arg-type]
        status=MeetingStatus.PLANNED.value, announced=True, source_mail_id=mail_id,
    )  # fmt: skip
    session.add(meeting)
    session.flush()
    return meeting, True


def cancel_meeting(session: Session, network_key: str, day: date, mail_id: int) -> Meeting:
    """The network's meeting that day cancelled (a cancellation or a move written as text); a meeting the registry
    never heard of is recorded as cancelled, so that the cancellation is on file."""
    existing = session.exec(
        select(Meeting).where(
            Meeting.network_key == network_key, Meeting.date == day, Meeting.status != MeetingStatus.CANCELLED.value
        )
    ).first()
    if existing is not None:
        existing.status = MeetingStatus.CANCELLED.value
        existing.updated_by_mail_id = mail_id
        return existing
    already = session.exec(select(Meeting).where(Meeting.network_key == network_key, Meeting.date == day)).first()
    if already is not None:
        return already
    meeting = Meeting(network_key=network_key, date=day, status=MeetingStatus.CANCELLED.value, announced=True,
                      source_mail_id=mail_id)  # fmt: skip
    session.add(meeting)
    session.flush()
    return meeting


def calendar_meeting(
    session: Session,
    network_key: str,
    uid: str,
    recurrence: str,
    sequence: int,
    day: date,
    start: object,
    end: object,
    place: str | None,
    cancelled: bool,
    mail_id: int,
) -> tuple[Meeting, str]:
    """An invitation (RFC 5546): the same UID replaces the meeting (moved), CANCEL marks it cancelled,
    an older SEQUENCE than the one on file changes nothing. Returns the meeting and what happened."""
    existing = session.exec(
        select(Meeting).where(
            Meeting.network_key == network_key, Meeting.calendar_uid == uid, Meeting.recurrence == recurrence
        )
    ).first()
    status = MeetingStatus.CANCELLED.value if cancelled else MeetingStatus.PLANNED.value
    if existing is None:
        # The same meeting may already be on file from a list of dates (or an invitation the registry never saw):
        # an invitation or a CANCEL applies to the network's one announced meeting that day, if exactly one exists.
        same_day = session.exec(
            select(Meeting).where(
                Meeting.network_key == network_key,
                Meeting.date == day,
                Meeting.status != MeetingStatus.CANCELLED.value,
                col(Meeting.calendar_uid).is_(None) if not cancelled else col(Meeting.id).is_not(None),
            )
        ).all()
        if len(same_day) == 1:
            existing = same_day[0]
            existing.calendar_uid, existing.recurrence, existing.calendar_sequence = uid, recurrence, sequence
    if existing is None:
        meeting = Meeting(
            network_key=network_key, date=day, start=start, end=end, place=place, status=status,  # type: ignore[arg-type]
            announced=True, calendar_uid=uid, recurrence=recurrence, calendar_sequence=sequence, source_mail_id=mail_id,
        )  # fmt: skip
        session.add(meeting)
        session.flush()
        return meeting, "cancelled" if cancelled else "created"
    if existing.calendar_sequence is not None and sequence < existing.calendar_sequence:
        return existing, "stale"
    moved = existing.date != day
    if cancelled and not moved:
        # A cancellation says the meeting is off, not where or when it was: the time and place on file stay as the
        # invitation or the dates mail announced them ("Skövde (Kulturhuset)" is not rewritten as the calendar's
        # "Skövde, Kulturhuset"); the CANCEL's own only fill in what the registry did not know.
        existing.start, existing.end = existing.start or start, existing.end or end  # type: ignore[assignment]
        existing.place = existing.place or place
    else:
        existing.date, existing.start, existing.end = day, start, end  # type: ignore[assignment]
        existing.place = place or existing.place
    existing.status = status
    existing.calendar_sequence = sequence
    existing.updated_by_mail_id = mail_id
    return existing, "cancelled" if cancelled else ("moved" if moved else "updated")


def document(
    session: Session, filename: str, media_type: str, payload: bytes, text: str, mail_id: int
) -> tuple[Document, bool]:
    """The document with these bytes, stored once; (document, newly stored)."""
    digest = sha256(payload)
    found = session.exec(select(Document).where(Document.sha256 == digest)).first()
    if found is not None:
        return found, False
    doc = Document(
        sha256=digest, filename=filename, media_type=media_type, content=payload, text=text, source_mail_id=mail_id
    )
    session.add(doc)
    session.flush()
    return doc, True


def minutes(
    session: Session,
    network_key: str,
    meeting_date: date,
    doc: Document,
    municipalities_present: Sequence[str],
    received: datetime,
    mail_id: int,
) -> tuple[Minutes, bool, bool]:
    """Minutes linked to the network's meeting that day; a meeting not announced is recorded as held and
    flagged (announced=False). Returns (minutes, newly recorded, meeting was announced)."""
    existing = session.exec(
        select(Minutes).where(Minutes.network_key == network_key, Minutes.document_id == doc.id)
    ).first()
    meeting = session.exec(
        select(Meeting).where(
            Meeting.network_key == network_key,
            Meeting.date == meeting_date,
            Meeting.status != MeetingStatus.CANCELLED.value,
        )
    ).first()
    if existing is not None:
        return existing, False, bool(meeting and meeting.announced)
    announced = meeting is not None and meeting.announced
    if meeting is None:
        meeting = Meeting(
            network_key=network_key, date=meeting_date, status=MeetingStatus.PLANNED.value, announced=False,
            source_mail_id=mail_id,
        )  # fmt: skip
        session.add(meeting)
        session.flush()
    item = Minutes(
        network_key=network_key,
        meeting_id=meeting.id or 0,
        meeting_date=meeting_date,
        document_id=doc.id or 0,
        received=received,
        municipalities_present=",".join(municipalities_present),
        source_mail_id=mail_id,
    )
    session.add(item)
    session.flush()
    return item, True, announced


def deliverable(
    session: Session, network_key: str, key: str, doc: Document | None, received: datetime, mail_id: int
) -> None:
    session.add(
        DeliverableReceipt(
            network_key=network_key,
            deliverable_key=key,
            received=received,
            document_id=doc.id if doc else None,
            source_mail_id=mail_id,
        )  # fmt: skip
    )


def bounce(session: Session, email: str, when: datetime, mail_id: int) -> None:
    found = session.get(BouncingAddress, email)
    if found is None:
        session.add(BouncingAddress(email=email, first_bounce=when, last_bounce=when, source_mail_id=mail_id))
    else:
        found.last_bounce = max(found.last_bounce, when)
