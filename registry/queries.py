"""Reading the registry: tables in, plain facts and JSON-ready rows out.

Read-only; local dates are computed in the configured time zone passed in by the caller. The queries are SQLAlchemy
Core statements on registry/tables.py, not the ORM: a command that only reads imports neither SQLModel nor the
models (benchmarks/startup.py). Each takes a Connection, or an ORM Session of a caller that also writes.
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
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Select, select

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
from registry.tables import (
    deliverable_receipt,
    document,
    inbound_mail,
    mailbox_state,
    meeting,
    member_list,
    membership,
    minutes_publication,
    person,
    run_log,
)
from registry.tables import minutes as minutes_table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    Database = Connection | Session


def _connection(db: Database) -> Connection:
    """Where a Core statement runs: `db` itself, or an ORM session's connection, flushed first as the session does
    before its own queries (so a caller's pending rows are seen, as they were when these queries used the ORM)."""
    if isinstance(db, Connection):
        return db
    if db.autoflush:
        db.flush()
    return db.connection()


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
    db: Database,
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
        return _gather_facts(_connection(db), tz, keys, members_on, meetings_since)


def _gather_facts(
    connection: Connection,
    tz: ZoneInfo,
    keys: Collection[str] | None,
    members_on: date | None,
    meetings_since: date | None,
) -> dict[str, NetworkFacts]:
    wanted = None if keys is None else list(keys)

    def of_networks(query: Select[Any], table: Any) -> Select[Any]:
        return query if wanted is None else query.where(table.c.network_key.in_(wanted))

    ml, ms = member_list.c, membership.c
    lists: dict[str, list[tuple[int, MemberListFact]]] = defaultdict(list)
    for list_id, key, effective_from, received, period_start, period_end in connection.execute(
        of_networks(
            select(ml.id, ml.network_key, ml.effective_from, ml.received, ml.period_start, ml.period_end), member_list
        ).order_by(ml.id)
    ):
        fact = MemberListFact(
            received_on=local_date(received, tz), effective_from=effective_from, members=(),
            period_start=period_start, period_end=period_end,
        )  # fmt: skip
        lists[key].append((list_id, fact))

    members_query = select(ms.member_list_id, ms.municipality, ms.role, person.c.name, person.c.email).join(
        person, ms.person_id == person.c.id, isouter=True
    )
    if members_on is None:
        member_queries = [of_networks(members_query, membership)]
    else:
        in_force = []
        for items in lists.values():
            chosen = list_in_force(tuple(fact for _, fact in items), members_on)
            in_force.extend(list_id for list_id, fact in items if fact is chosen)
        member_queries = [members_query.where(ms.member_list_id.in_(ids)) for ids in _chunks(in_force)]
    by_list: dict[int, list[MemberFact]] = defaultdict(list)
    for query in member_queries:
        # By list, then id: the order within a list is the same, and SQLite can read the list id's index in order
        # (ordered by id alone, it scans every membership of every year instead).
        ordered = query.order_by(ms.member_list_id, ms.id)
        for list_id, municipality, role, name, email in connection.execute(ordered):
            by_list[list_id].append(
                MemberFact(
                    name=name if name is not None else "(borttagen)",
                    email=email if email is not None else "",
                    municipality=municipality,
                    role=_ROLE[role],
                )
            )

    mt, mi, pub = meeting.c, minutes_table.c, minutes_publication.c
    meeting_query = of_networks(select(mt.network_key, mt.date, mt.status, mt.announced, mt.start, mt.place), meeting)
    minutes_query = of_networks(
        select(mi.network_key, mi.meeting_date, mi.received, mi.id, pub.decision, pub.published_at, pub.note)
        .join(minutes_publication, pub.minutes_id == mi.id, isouter=True),
        minutes_table,
    )  # fmt: skip
    if meetings_since is not None:
        meeting_query = meeting_query.where(mt.date >= meetings_since)
        minutes_query = minutes_query.where(mi.meeting_date >= meetings_since)
    meetings: dict[str, list[MeetingFact]] = defaultdict(list)
    for key, day, status, announced, start, place in connection.execute(meeting_query.order_by(mt.id)):
        meetings[key].append(
            MeetingFact(date=day, status=_MEETING_STATUS[status], announced=announced, start=start, place=place)
        )
    minutes: dict[str, list[MinutesFact]] = defaultdict(list)
    publications: dict[str, list[PublicationFact]] = defaultdict(list)
    for key, meeting_date, received, minutes_id, decision, published_at, note in connection.execute(
        minutes_query.order_by(mi.id)
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
    dr = deliverable_receipt.c
    deliverables: dict[str, list[DeliverableFact]] = defaultdict(list)
    for key, deliverable_key, received in connection.execute(
        of_networks(select(dr.network_key, dr.deliverable_key, dr.received), deliverable_receipt).order_by(dr.id)
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


def network_facts(db: Database, network_key: str, tz: ZoneInfo) -> NetworkFacts:
    """Everything the rules read about one network, every member list with its members."""
    return all_network_facts(db, tz, [network_key])[network_key]


def members_in_force(db: Database, network_key: str, on: date) -> list[dict[str, object]]:
    """The member list in force on `on`: the newest list that took effect on or before it."""
    connection = _connection(db)
    ml, ms = member_list.c, membership.c
    current = connection.execute(
        select(ml.id)
        .where(ml.network_key == network_key, ml.effective_from <= on)
        .order_by(ml.effective_from.desc(), ml.received.desc(), ml.id.desc())
    ).first()
    if current is None:
        return []
    rows = connection.execute(
        select(person.c.id, person.c.name, person.c.email, ms.municipality, ms.role, ms.valid_from, ms.source_mail_id)
        .join(person, ms.person_id == person.c.id, isouter=True)
        .where(ms.member_list_id == current.id)
        .order_by(ms.id)
    )
    return [
        {
            "name": name if person_id is not None else "(borttagen)",
            "email": email,  # None when the person was erased (no person row joined)
            "municipality": municipality,
            "role": role,
            "valid_from": valid_from.isoformat(),
            "source_mail_id": mail_id,
        }
        for person_id, name, email, municipality, role, valid_from, mail_id in rows
    ]


def members_in_force_by_network(db: Database, on: date) -> dict[str, list[dict[str, object]]]:
    """`members_in_force` of every network at once (two queries); a network without a list in force is absent."""
    connection = _connection(db)
    ml, ms = member_list.c, membership.c
    current: dict[str, tuple[date, datetime, int]] = {}
    for list_id, key, effective_from, received in connection.execute(
        select(ml.id, ml.network_key, ml.effective_from, ml.received).where(ml.effective_from <= on)
    ):
        rank = (effective_from, received, list_id)  # the order members_in_force picks the newest by
        if key not in current or rank > current[key]:
            current[key] = rank
    network_of = {rank[2]: key for key, rank in current.items()}
    result: dict[str, list[dict[str, object]]] = {key: [] for key in current}
    for ids in _chunks(sorted(network_of)):
        for list_id, name, email, municipality, role, valid_from, mail_id in connection.execute(
            select(
                ms.member_list_id, person.c.name, person.c.email, ms.municipality, ms.role, ms.valid_from,
                ms.source_mail_id,
            )
            .join(person, ms.person_id == person.c.id, isouter=True)
            .where(ms.member_list_id.in_(ids))
            .order_by(ms.member_list_id, ms.id)  # one list per network: its order
        ):  # fmt: skip
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


def meetings(db: Database, network_key: str, year: int | None, today: date) -> list[dict[str, object]]:
    connection = _connection(db)
    mt = meeting.c
    with_minutes = set(
        connection.execute(
            select(minutes_table.c.meeting_id).where(minutes_table.c.network_key == network_key)
        ).scalars()
    )
    query = (
        select(mt.id, mt.date, mt.start, mt.end, mt.place, mt.status, mt.announced, mt.calendar_uid, mt.source_mail_id)
        .where(mt.network_key == network_key)
        .order_by(mt.date, mt.id)
    )
    result = []
    for row in connection.execute(query):
        if year is not None and row.date.year != year:
            continue
        fact = MeetingFact(date=row.date, status=MeetingStatus(row.status))
        result.append(
            {
                "id": row.id,
                "date": row.date.isoformat(),
                "start": row.start.strftime("%H:%M") if row.start else None,
                "end": row.end.strftime("%H:%M") if row.end else None,
                "place": row.place,
                "status": meeting_status(fact, today).value,
                "announced": row.announced,
                "has_minutes": row.id in with_minutes,
                "calendar_uid": row.calendar_uid,
                "source_mail_id": row.source_mail_id,
            }
        )
    return result


def minutes(db: Database, network_key: str, year: int | None) -> list[dict[str, object]]:
    mi = minutes_table.c
    rows = _connection(db).execute(
        select(mi.id, mi.meeting_date, document.c.filename, mi.received, mi.municipalities_present, mi.source_mail_id)
        .join(document, mi.document_id == document.c.id)
        .where(mi.network_key == network_key)
        .order_by(mi.meeting_date, mi.id)
    )
    return [
        {
            "id": item.id,
            "meeting_date": item.meeting_date.isoformat(),
            "filename": item.filename,
            "received": item.received.isoformat(),
            "municipalities_present": [m for m in item.municipalities_present.split(",") if m],
            "source_mail_id": item.source_mail_id,
        }
        for item in rows
        if year is None or item.meeting_date.year == year
    ]


# What mail_row reads of a mail (not its raw bytes nor its text).
_MAIL_COLUMNS = [
    inbound_mail.c[name]
    for name in ("id", "message_id", "from_address", "subject", "received", "first_seen", "status", "network_key",
                 "kinds", "reason", "folder", "uid", "resolution", "details")
]  # fmt: skip


def mail_row(mail: Any) -> dict[str, object]:
    """A mail as the audit trail shows it; `mail` is a row of `_MAIL_COLUMNS` (or an InboundMail)."""
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


def mails(db: Database, since: datetime | None) -> list[dict[str, object]]:
    query = select(*_MAIL_COLUMNS).order_by(inbound_mail.c.received, inbound_mail.c.id)
    if since is not None:
        query = query.where(inbound_mail.c.received >= since)
    return [mail_row(mail) for mail in _connection(db).execute(query)]


def review_items(db: Database, include_resolved: bool = False) -> list[dict[str, object]]:
    im = inbound_mail.c
    query = (
        select(im.id, im.message_id, im.from_address, im.subject, im.reason, im.received, im.network_key, im.kinds)
        .where(im.status == "review")
        .order_by(im.id)
    )
    if not include_resolved:
        query = query.where(im.resolved_at.is_(None))
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
        for mail in _connection(db).execute(query)
    ]


class DocumentNotFound(ExpectedError):
    pass


def save_minutes_document(db: Database, minutes_id: int, out: Path) -> tuple[str, int]:
    """Write the original document of minutes `minutes_id` to `out`; (file name, size)."""
    connection = _connection(db)
    document_id = connection.execute(
        select(minutes_table.c.document_id).where(minutes_table.c.id == minutes_id)
    ).scalar_one_or_none()
    found = None
    if document_id is not None:
        found = connection.execute(
            select(document.c.filename, document.c.content).where(document.c.id == document_id)
        ).one_or_none()
    if found is None:
        raise DocumentNotFound(f"no minutes with id {minutes_id} (see `registry minutes NETWORK`)")
    if found.content is None:
        raise DocumentNotFound(
            f"the document of minutes {minutes_id} was erased (registry forget); only its redacted text is kept"
        )
    out.write_bytes(found.content)
    return found.filename, len(found.content)


def last_runs(engine: Engine) -> dict[str, dict[str, object]]:
    """When each kind of run (poll, remind) last started and succeeded, and its last error."""
    rl = run_log.c
    with engine.connect() as connection:
        return {
            kind: {"last_success": last_success, "last_start": last_start, "last_error": last_error}
            for kind, last_success, last_start, last_error in connection.execute(
                select(rl.kind, rl.last_success, rl.last_start, rl.last_error).order_by(rl.kind)
            )
        }


def mailbox_health(db: Database) -> list[str]:
    """One line per folder: when the last good pass was, and the last error if the latest passes failed."""
    lines = []
    # Every column, as the ORM's query had: the same statement, so the same (unordered) order of the folders.
    for state in _connection(db).execute(select(mailbox_state)):
        good = state.last_good_pass.isoformat(timespec="minutes") if state.last_good_pass else "never"
        line = f"folder {state.folder}: last good pass {good}"
        if state.consecutive_failures:
            line += f"; {state.consecutive_failures} failed passes since, last error: {state.last_error}"
        lines.append(line)
    return lines
