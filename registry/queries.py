"""Reading the registry: tables in, plain facts and JSON-ready rows out.

Read-only; local dates are computed in the configured time zone passed in by the caller.
"""

from __future__ import annotations

import gc
import json
from collections import defaultdict
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from registry.domain import MeetingStatus, PublicationDecision, Role
from registry.errors import ExpectedError
from registry.facts import (
    DeliverableFact,
    MeetingFact,
    MemberFact,
    MemberListFact,
    MinutesFact,
    NetworkFacts,
    PublicationFact,
    list_in_force,
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
    MinutesPublication,
    Person,
    RunLog,
)


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


_MEETING_STATUS = {status.value: status for status in MeetingStatus}
_ROLE = {role.value: role for role in Role}
_CHUNK = 500  # ids per IN (...): well under SQLite's limit on bound parameters


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[start : start + _CHUNK] for start in range(0, len(ids), _CHUNK)]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Building tens of thousands of small frozen facts (no reference cycles among them) sets off the cyclic garbage
    collector again and again, each time walking every object of the process: a third of the time at 1,000
    networks. Paused while they are built; whatever garbage there is waits for the next collection."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def all_network_facts(
    session: Session,
    tz: ZoneInfo,
    keys: Collection[str] | None = None,
    members_on: date | None = None,
    meetings_since: date | None = None,
) -> dict[str, NetworkFacts]:
    """The facts of the networks `keys` (None: every network), in a handful of queries whatever their number.

    A network without any row is absent from the result when `keys` is None (its facts are `NetworkFacts()`).
    With `members_on`, only the list in force on that day (`list_in_force`) carries its members, the others
    none: enough for the rules on that day, which read members only through `list_in_force`, and years of
    lists hold far more memberships than the lists in force. With `meetings_since`, meetings before that day
    and their minutes are left out (see `rules.history_start`).
    """
    with _collector_paused():
        return _gather_facts(session, tz, keys, members_on, meetings_since)


def _gather_facts(
    session: Session,
    tz: ZoneInfo,
    keys: Collection[str] | None,
    members_on: date | None,
    meetings_since: date | None,
) -> dict[str, NetworkFacts]:
    wanted = None if keys is None else list(keys)

    def of_networks(query, model):  # type: ignore[no-untyped-def]
        return query if wanted is None else query.where(col(model.network_key).in_(wanted))

    lists: dict[str, list[tuple[int, MemberListFact]]] = defaultdict(list)
    for list_id, key, effective_from, received, period_start, period_end in session.exec(
        of_networks(
            select(
                MemberList.id, MemberList.network_key, MemberList.effective_from, MemberList.received,
                MemberList.period_start, MemberList.period_end,
            ),
            MemberList,
        ).order_by(col(MemberList.id))
    ):  # fmt: skip
        fact = MemberListFact(
            received_on=local_date(received, tz), effective_from=effective_from, members=(),
            period_start=period_start, period_end=period_end,
        )  # fmt: skip
        lists[key].append((list_id, fact))

    members_query = select(
        Membership.member_list_id, Membership.municipality, Membership.role, Person.name, Person.email
    ).join(Person, col(Membership.person_id) == col(Person.id), isouter=True)
    if members_on is None:
        member_queries = [of_networks(members_query, Membership)]
    else:
        in_force = []
        for items in lists.values():
            chosen = list_in_force(tuple(fact for _, fact in items), members_on)
            in_force.extend(list_id for list_id, fact in items if fact is chosen)
        member_queries = [members_query.where(col(Membership.member_list_id).in_(ids)) for ids in _chunks(in_force)]
    by_list: dict[int, list[MemberFact]] = defaultdict(list)
    for query in member_queries:
        # By list, then id: the order within a list is the same, and SQLite can read the list id's index in order
        # (ordered by id alone, it scans every membership of every year instead).
        ordered = query.order_by(col(Membership.member_list_id), col(Membership.id))
        for list_id, municipality, role, name, email in session.exec(ordered):
            by_list[list_id].append(
                MemberFact(
                    name=name if name is not None else "(borttagen)",
                    email=email if email is not None else "",
                    municipality=municipality,
                    role=_ROLE[role],
                )
            )

    meeting_query = of_networks(
        select(Meeting.network_key, Meeting.date, Meeting.status, Meeting.announced, Meeting.start, Meeting.place),
        Meeting,
    )
    minutes_query = of_networks(
        select(Minutes.network_key, Minutes.meeting_date, Minutes.received, Minutes.id, MinutesPublication.decision,
               MinutesPublication.published_at, MinutesPublication.note)
        .join(MinutesPublication, col(MinutesPublication.minutes_id) == col(Minutes.id), isouter=True),
        Minutes,
    )  # fmt: skip
    if meetings_since is not None:
        meeting_query = meeting_query.where(col(Meeting.date) >= meetings_since)
        minutes_query = minutes_query.where(col(Minutes.meeting_date) >= meetings_since)
    meetings: dict[str, list[MeetingFact]] = defaultdict(list)
    for key, day, status, announced, start, place in session.exec(meeting_query.order_by(col(Meeting.id))):
        meetings[key].append(
            MeetingFact(date=day, status=_MEETING_STATUS[status], announced=announced, start=start, place=place)
        )
    minutes: dict[str, list[MinutesFact]] = defaultdict(list)
    publications: dict[str, list[PublicationFact]] = defaultdict(list)
    for key, meeting_date, received, minutes_id, decision, published_at, note in session.exec(
        minutes_query.order_by(col(Minutes.id))
    ):
        received_on = local_date(received, tz)
        minutes[key].append(MinutesFact(meeting_date=meeting_date, received_on=received_on))
        publications[key].append(
            PublicationFact(
                minutes_id=minutes_id,
                meeting_date=meeting_date,
                received_on=received_on,
                decision=PublicationDecision(decision or "pending"),
                published_on=local_date(published_at, tz) if published_at else None,
                note=note or "",
            )
        )
    deliverables: dict[str, list[DeliverableFact]] = defaultdict(list)
    for key, deliverable_key, received in session.exec(
        of_networks(
            select(DeliverableReceipt.network_key, DeliverableReceipt.deliverable_key, DeliverableReceipt.received),
            DeliverableReceipt,
        ).order_by(col(DeliverableReceipt.id))
    ):
        deliverables[key].append(DeliverableFact(key=deliverable_key, received_on=local_date(received, tz)))

    found = set(lists) | set(meetings) | set(minutes) | set(deliverables)
    return {
        key: NetworkFacts(
            member_lists=tuple(
                replace(fact, members=tuple(by_list[list_id])) if list_id in by_list else fact
                for list_id, fact in lists.get(key, ())
            ),
            meetings=tuple(meetings.get(key, ())),
            minutes=tuple(minutes.get(key, ())),
            deliverables=tuple(deliverables.get(key, ())),
            publications=tuple(publications.get(key, ())),
        )
        for key in (wanted if wanted is not None else found)
    }


def network_facts(session: Session, network_key: str, tz: ZoneInfo) -> NetworkFacts:
    """Everything the rules read about one network, every member list with its members."""
    return all_network_facts(session, tz, [network_key])[network_key]


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


def members_in_force_by_network(session: Session, on: date) -> dict[str, list[dict[str, object]]]:
    """`members_in_force` of every network at once (two queries); a network without a list in force is absent."""
    current: dict[str, tuple[date, datetime, int]] = {}
    for list_id, key, effective_from, received in session.exec(
        select(MemberList.id, MemberList.network_key, MemberList.effective_from, MemberList.received).where(
            MemberList.effective_from <= on
        )
    ):
        rank = (effective_from, received, list_id)  # the order members_in_force picks the newest by
        if key not in current or rank > current[key]:
            current[key] = rank
    network_of = {rank[2]: key for key, rank in current.items()}
    result: dict[str, list[dict[str, object]]] = {key: [] for key in current}
    for ids in _chunks(sorted(network_of)):
        for list_id, name, email, municipality, role, valid_from, mail_id in session.exec(
            select(
                Membership.member_list_id,
                Person.name,
                Person.email,
                Membership.municipality,
                Membership.role,
                Membership.valid_from,
                Membership.source_mail_id,
            )
            .join(Person, col(Membership.person_id) == col(Person.id), isouter=True)
            .where(col(Membership.member_list_id).in_(ids))
            .order_by(col(Membership.member_list_id), col(Membership.id))  # one list per network: its order
        ):
            result[network_of[list_id]].append(
                {
                    "name": name if name is not None else "(borttagen)",
                    "email": email,
                    "municipality": municipality,
                    "role": role,
                    "valid_from": valid_from.isoformat(),
                    "source_mail_id": mail_id,
                }
            )
    return result


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
        raise DocumentNotFound(
            f"the document of minutes {minutes_id} was erased (registry forget); only its redacted text is kept"
        )
    out.write_bytes(document.content)
    return document.filename, len(document.content)


def last_runs(engine: Engine) -> dict[str, dict[str, object]]:
    """When each kind of run (poll, remind) last started and succeeded, and its last error."""
    with Session(engine) as session:
        return {
            row.kind: {"last_success": row.last_success, "last_start": row.last_start, "last_error": row.last_error}
            for row in session.exec(select(RunLog).order_by(col(RunLog.kind))).all()
        }


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
