"""One intake pass: fetch -> understand (in parallel, on the reader's worker processes) -> record -> mark.

The mails are recorded in UID order, in runs of one transaction each (`_Unit`: up to `intake.batch_mails` mails or
`intake.batch_seconds`). Never changes the mailbox except for our own IMAP keywords; never records a mail twice
(the raw bytes' sha256 is unique, and the folder position moves in the same transaction as the mails); a kill
loses at most the uncommitted run, which the next pass reads again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from mailbot.reader import Outcome, Reader, ReadJob, budgeted_reader
from mailbot.settings import IntakeSettings, Settings
from mailbot.sources import MailSource, RawMail
from mailbot.understand.authentication import AuthenticationPolicy
from mailbot.understand.changes import KnownMeeting
from mailbot.understand.context import Context, SenderRole, Understanding
from mailbot.understand.identity import Identity, Routing, read_identity, read_routing
from mailbot.understand.types import ParsedMail
from registry import record
from registry.config import MunicipalityIndex, Registry
from registry.db import insert_or_nothing, row_of, waiting_marker, writer_waiting
from registry.domain import MailKind, MailStatus, MeetingStatus, Role
from registry.models import InboundMail, MailboxState, Meeting, MemberList, Membership, OutboundMail, Person
from registry.models_ops import MailAttempt

log = logging.getLogger("mailbot.intake")


@dataclass
class PassReport:
    folder: str
    new: int = 0
    registered: int = 0
    review: int = 0
    ignored: int = 0
    already_recorded: int = 0
    idle: bool = False
    uidvalidity_changed: bool = False
    # One tuple per mail recorded (MAIL_FIELDS): a pass of 10,000 mails keeps them all until it ends, and a dict
    # per mail was three times the size.
    recorded: list[tuple[object, ...]] = field(default_factory=list)

    def count(self, status: str) -> None:
        self.new += 1
        setattr(self, status, getattr(self, status) + 1)

    @property
    def mails(self) -> list[dict[str, object]]:
        """Each mail recorded: id, message_id, from, subject, status, network, kinds (a list), reason."""
        return [
            {**dict(zip(MAIL_FIELDS, values, strict=True)), "kinds": str(values[6]).split(",")}
            for values in self.recorded
        ]


MAIL_FIELDS = ("id", "message_id", "from", "subject", "status", "network", "kinds", "reason")


@dataclass
class Intake:
    """What a pass needs besides the mailbox: the database, the configuration, and hooks for receipts."""

    engine: Engine
    settings: Settings
    registry: Registry
    tz: ZoneInfo
    # Called inside each registered mail's transaction (the outbox queues its receipt there).
    on_recorded: Callable[[Session, InboundMail, ParsedMail, Understanding, datetime], None] | None = None
    _memberships: dict[date, tuple[dict[str, tuple[SenderRole, ...]], frozenset[str]]] = field(default_factory=dict)
    # Reads each mail; default: the budgeted worker process of settings.reader (unit tests may pass InProcessReader).
    _reader: Reader | None = None
    # Counts the recorded mails that changed what a reading's Context holds (member lists, meetings): a mail read
    # in parallel with one of those, on a context made before it was recorded, is read again (record_mails).
    _generation: int = 0
    _reading: set[str] = field(default_factory=set)  # sha256 of the mails prepared for reading, not yet recorded
    # (generation, day) -> the planned meetings around that day (Context.meetings), for one record_mails call
    _meetings: dict[tuple[int, date], dict[str, tuple[KnownMeeting, ...]]] = field(default_factory=dict)
    _policy: AuthenticationPolicy | None = None
    _municipalities: MunicipalityIndex | None = None

    # -- the registry's knowledge, as plain values for the pure core ---------------------------------

    def memberships_on(self, session: Session, day: date) -> tuple[dict[str, tuple[SenderRole, ...]], frozenset[str]]:
        """Who holds which role in each network's list in force on `day`, and which networks have a list."""
        if day in self._memberships:
            return self._memberships[day]
        lists = session.exec(
            select(MemberList)
            .where(MemberList.effective_from <= day)
            .order_by(col(MemberList.effective_from), col(MemberList.id))
        ).all()
        current = {item.network_key: item.id for item in lists}  # the last one per network wins
        roles: dict[str, list[SenderRole]] = {}
        if current:
            rows = session.exec(
                select(Membership, Person)
                .join(Person, col(Membership.person_id) == col(Person.id))
                .where(col(Membership.member_list_id).in_(list(current.values())))
            ).all()
            for membership, person in rows:
                roles.setdefault(person.email, []).append(SenderRole(membership.network_key, Role(membership.role)))
        result = ({email: tuple(items) for email, items in roles.items()}, frozenset(current))
        self._memberships[day] = result
        return result

    def context(
        self, session: Session, mail: ParsedMail | Identity | Routing, arrival: datetime,
        members_on: date | None = None,
        **assigned: object,
    ) -> Context:  # fmt: skip
        memberships, with_list = self.memberships_on(session, members_on or arrival.astimezone(self.tz).date())
        referenced = [mid for mid in [mail.in_reply_to, *mail.references] if mid]
        own: dict[str, str | None] = {}
        if referenced:
            for row in session.exec(select(OutboundMail).where(col(OutboundMail.message_id).in_(referenced))).all():
                own[row.message_id] = row.network_key
        return Context(
            registry=self.registry,
            meetings=self._meetings_around(session, arrival.astimezone(self.tz).date()),
            municipalities=self._municipality_index(),
            memberships=memberships,
            networks_with_list=with_list,
            own_domain=self.settings.smtp.message_id_domain,
            own_networks=own,
            admin_addresses=tuple(a.lower() for a in self.settings.admin.addresses),
            authorised_domains=tuple(d.lower() for d in self.settings.admin.authorised_domains),
            tz=self.tz,
            authentication=self._authentication_policy(),
            **assigned,  # type: ignore[arg-type]
        )

    def _meetings_around(self, session: Session, day: date) -> dict[str, tuple[KnownMeeting, ...]]:
        """The planned meetings of each network from 120 days before `day` to 550 after; the same for every mail
        of a day until a recorded mail changes what the registry holds (`_generation`)."""
        key = (self._generation, day)
        if key not in self._meetings:
            known: dict[str, list[KnownMeeting]] = {}
            for network, when, start, place in session.exec(
                select(Meeting.network_key, Meeting.date, Meeting.start, Meeting.place).where(
                    Meeting.status != MeetingStatus.CANCELLED.value,
                    col(Meeting.date) >= day - timedelta(days=120),
                    col(Meeting.date) <= day + timedelta(days=550),
                )
            ):
                known.setdefault(network, []).append(KnownMeeting(when, start, place))
            if len(self._meetings) > 64:
                self._meetings.clear()
            self._meetings[key] = {network: tuple(items) for network, items in known.items()}
        return self._meetings[key]

    def _municipality_index(self) -> MunicipalityIndex:
        if self._municipalities is None:
            self._municipalities = self.registry.municipality_index()
        return self._municipalities

    def _authentication_policy(self) -> AuthenticationPolicy:
        if self._policy is None:
            self._policy = self._make_policy()
        return self._policy

    def _make_policy(self) -> AuthenticationPolicy:
        settings = self.settings.authentication
        known = [d for m in self.registry.municipalities for d in m.domains] + list(self.registry.federation_domains)
        return AuthenticationPolicy(
            trusted_authserv_ids=tuple(settings.trusted_authserv_ids),
            trusted_arc_forwarders=tuple(settings.trusted_arc_forwarders),
            spam_score_from=settings.spam_score_from,
            known_domains=tuple(d.lower() for d in known),
        )

    # -- one pass ------------------------------------------------------------------------------------

    def run_pass(self, source: MailSource, now: datetime, progress: Callable[[int], None] | None = None) -> PassReport:
        """Read every new mail of the source's folder once. Raises SourceError when the mailbox fails."""
        folder = source.folder
        report = PassReport(folder=folder)
        uidvalidity, uidnext = source.status()
        with Session(self.engine) as session:
            state = session.get(MailboxState, folder) or MailboxState(folder=folder)  # read only: not added
            last_uid = state.last_uid
            if state.uidvalidity and state.uidvalidity != uidvalidity:
                # RFC 3501 2.3.1.1: UIDs are meaningless across a UIDVALIDITY change; re-scan, and let the
                # sha256 of each mail recognise what is already recorded.
                log.warning(
                    "folder %s: UIDVALIDITY changed %s -> %s; re-scanning", folder, state.uidvalidity, uidvalidity
                )
                report.uidvalidity_changed = True
                last_uid = 0
            if source.incremental and not report.uidvalidity_changed and state.marked_uid < last_uid:
                self._mark_recorded(session, source, uidvalidity, state.marked_uid, last_uid)
            if source.incremental and uidnext <= last_uid + 1 and not report.uidvalidity_changed:
                report.idle = True
                self._pass_succeeded(session, folder, uidvalidity, last_uid, now)
                return report
            if not source.incremental:
                last_uid = 0
        if uidnext > last_uid + 1:  # the readers' forkserver starts while the first mails are fetched
            self.reader().start()
        marks: dict[str, list[int]] = {}

        def fetched(batch: list[RawMail], session: Session) -> None:
            """Every mail of a fetch is recorded and committed: their keywords, and how far they are set."""
            for keyword, uids in marks.items():
                source.mark(uids, keyword)
            marks.clear()
            if source.incremental:
                state = session.get(MailboxState, folder)
                if state is not None and state.uidvalidity == uidvalidity:
                    state.marked_uid = max(state.marked_uid, batch[-1].uid)
                    session.add(state)  # committed with the next mails (or at the end of the pass)

        # One stream over all the fetches: the readers go on with the next fetch's mails while the last of one are
        # read, instead of waiting for the pipeline to empty at every fetch of imap.batch_size mails.
        for raw, status in self._record_stream(source.fetch_after(last_uid), uidvalidity, now, report, fetched):
            keyword = self._keyword(status)
            if keyword and keyword not in raw.flags:
                marks.setdefault(keyword, []).append(raw.uid)
            if progress:
                progress(1)
        with Session(self.engine) as session:
            self._pass_succeeded(session, folder, uidvalidity, None, now)
        return report

    def _pass_succeeded(
        self, session: Session, folder: str, uidvalidity: int, last_uid: int | None, now: datetime
    ) -> None:
        state = row_of(session, MailboxState, folder=folder)
        state.uidvalidity = uidvalidity
        if last_uid is not None:
            state.last_uid = last_uid
        state.last_good_pass = now
        state.consecutive_failures = 0
        session.add(state)
        session.commit()

    def _keyword(self, status: str) -> str:
        imap = self.settings.imap
        return {"registered": imap.keyword_registered, "review": imap.keyword_review, "ignored": imap.keyword_ignored}[
            status
        ]

    def _mark_recorded(self, session: Session, source: MailSource, uidvalidity: int, after: int, up_to: int) -> None:
        """Keywords for mails recorded by a pass that died before it could mark them (the keyword is
        stored after the mail's commit, so a kill in between would otherwise leave them unmarked)."""
        rows = session.exec(
            select(InboundMail.uid, InboundMail.status).where(
                InboundMail.folder == source.folder,
                InboundMail.uidvalidity == uidvalidity,
                InboundMail.uid > after,
                InboundMail.uid <= up_to,
            )
        ).all()
        by_keyword: dict[str, list[int]] = {}
        for uid, status in rows:
            if keyword := self._keyword(status):
                by_keyword.setdefault(keyword, []).append(uid)
        for keyword, uids in by_keyword.items():
            source.mark(uids, keyword)
        log.info(
            "folder %s: caught up on keywords for %d mails recorded before an interruption", source.folder, len(rows)
        )
        state = session.get(MailboxState, source.folder)
        if state is not None:
            state.marked_uid = up_to
            session.add(state)
            session.commit()

    # -- the mails of a fetch, in runs of one transaction each ------------------------------------------

    def record_mail(self, raw: RawMail, uidvalidity: int, now: datetime, report: PassReport) -> str:
        """Record one mail exactly once; returns its status. A mail that breaks any step goes to review."""
        return list(self.record_mails([raw], uidvalidity, now, report))[0]

    def record_mails(
        self, raws: Iterable[RawMail], uidvalidity: int, now: datetime, report: PassReport
    ) -> Iterator[str]:
        """Record each mail exactly once, in order; yields each one's status (committed by the time the iterator
        is exhausted). See `_record_stream`."""
        for _, status in self._record_stream([list(raws)], uidvalidity, now, report):
            yield status

    def _record_stream(
        self, fetches: Iterable[list[RawMail]], uidvalidity: int, now: datetime, report: PassReport,
        fetched: Callable[[list[RawMail], Session], None] | None = None,
    ) -> Iterator[tuple[RawMail, str]]:  # fmt: skip
        """Record each mail of each fetch exactly once, in order; yields each one with its status. Each mail is read
        by the reader (on a worker process with a budget), in parallel with the next ones, across fetches; the
        mails are recorded in one transaction per run of up to `intake.batch_mails` mails or
        `intake.batch_seconds` (see `_Unit`), and a mail that changed what the next mails' contexts hold is seen
        by them (their contexts are read in the same transaction). When the last mail of a fetch is recorded, the
        transaction is committed and `fetched(fetch, session)` is called (the pass sets the mails' keywords; what
        it writes in the session is committed with the next mails). The member lists registered are followed by
        their re-examinations (`reexamine_review`) once everything is recorded."""
        self._reading.clear()
        self._meetings.clear()
        # What an earlier call read in a transaction that was rolled back (a pass stopped) is not the registry's.
        self._memberships.clear()
        lists: list[tuple[str, int]] = []  # (network, mail id) of each member list registered
        open_fetches: deque[list[RawMail]] = deque()  # fetched, not all recorded yet
        with _Unit(self.engine, self.settings.intake, self.tz) as unit:

            def prepared() -> Iterator[tuple[_Prepared, ReadJob | None]]:
                for fetch in fetches:
                    if fetch:
                        open_fetches.append(fetch)
                        for index in range(len(fetch)):
                            yield self._prepare(unit, fetch, index, uidvalidity, now)

            for item, outcome in self.reader().read_many(prepared(), settle=unit.commit):
                if outcome is not None and outcome.failure is None and item.generation != self._generation:
                    outcome = self._read_again(unit, item)
                if item.duplicate:
                    status = self._record_duplicate(unit, item, uidvalidity, report)
                    if status is None:  # the earlier one was not recorded after all: read this one now
                        outcome = self._read_again(unit, item)
                        status = self._record(unit, item, outcome, uidvalidity, now, report)
                else:
                    status = self._record(unit, item, outcome, uidvalidity, now, report)
                self._reading.discard(item.digest)
                understanding = outcome.understanding if outcome is not None else None
                if (
                    status == MailStatus.REGISTERED.value
                    and understanding
                    and understanding.member_list
                    and report.recorded
                ):
                    lists.append((str(understanding.network), int(str(report.recorded[-1][0]))))
                unit.recorded(alone=item.alone)
                yield item.raw, status
                if item.raw is open_fetches[0][-1]:
                    fetch = open_fetches.popleft()
                    if fetched is not None:
                        unit.commit()
                        fetched(fetch, unit.session)
            unit.commit()
        for network, list_mail_id in lists:
            self.reexamine_review(network, list_mail_id, now, report)

    def reexamine_review(self, network: str, list_mail_id: int, now: datetime, report: PassReport) -> int:
        """A member list just made senders members or presidium: the mails of `network` in review only because
        their sender was not are understood again (by the reader, as of their own arrival but with the lists in
        force now) and recorded with their original arrival if nothing else stops them. Each is its own
        transaction; returns how many became registered. `registry mails` shows it in their reason."""
        jobs: list[tuple[int, ReadJob | None]] = []
        with Session(self.engine) as session:
            waiting = session.exec(
                select(InboundMail).where(
                    InboundMail.status == MailStatus.REVIEW.value,
                    InboundMail.network_key == network,
                    col(InboundMail.resolved_at).is_(None),
                    col(InboundMail.raw).is_not(None),
                    col(InboundMail.id) != list_mail_id,
                )
            ).all()
            self._memberships.clear()
            for mail in waiting:
                if not _waits_for_a_member_list(mail.reason or ""):
                    continue
                arrival = mail.received if mail.received.tzinfo else mail.received.replace(tzinfo=UTC)
                identity = read_identity(mail.raw or b"")
                context = self.context(session, identity, arrival, members_on=now.astimezone(self.tz).date())
                jobs.append((mail.id or 0, ReadJob(mail.raw or b"", context, arrival)))
        registered = 0
        for mail_id, outcome in self.reader().read_many(jobs):
            understanding = outcome.understanding if outcome is not None else None
            if understanding is None or understanding.status is not MailStatus.REGISTERED:
                continue
            if understanding.network != network:
                continue
            with Session(self.engine) as session:
                mail = session.get(InboundMail, mail_id)
                if mail is None or mail.status != MailStatus.REVIEW.value:
                    continue
                arrival = mail.received if mail.received.tzinfo else mail.received.replace(tzinfo=UTC)
                mail.status = MailStatus.REGISTERED.value
                mail.kinds = ",".join(k.value for k in understanding.kinds)
                mail.reason = (
                    f"re-examined on {now.astimezone(self.tz).date().isoformat()}: the member list of mail "
                    f"{list_mail_id} made the sender a member; " + "; ".join(understanding.reasons)
                )
                details = apply_understanding(session, mail, understanding, arrival, self.tz)
                details["reexamined"] = {"after_list_mail": list_mail_id, "on": now.isoformat()}
                mail.details = json.dumps(details, ensure_ascii=False, default=str)
                session.add(mail)
                session.commit()
                registered += 1
                log.info("message-id=%s network=%s status=registered re-examined after the member list of mail %s",
                         mail.message_id, network, list_mail_id)  # fmt: skip
        return registered

    def reader(self) -> Reader:
        if self._reader is None:
            budget = self.settings.reader
            workers = budget.workers or os.cpu_count() or 1
            self._reader = budgeted_reader(budget.timeout_seconds, budget.memory_mb, workers)
        return self._reader

    def _read_again(self, unit: _Unit, item: _Prepared) -> Outcome | None:
        """Read a mail again on a context of the registry as it is now: it was read in parallel with a mail before
        it that has since changed what its context held (a member list, a meeting), as if read one by one."""
        assert item.routing is not None and item.raw.raw is not None
        context = self.context(unit.session, item.routing, item.arrival)
        job = ReadJob(item.raw.raw, context, item.arrival, alone=item.alone)
        return next(iter(self.reader().read_many([(None, job)])))[1]

    def _prepare(
        self, unit: _Unit, raws: list[RawMail], index: int, uidvalidity: int, now: datetime
    ) -> tuple[_Prepared, ReadJob | None]:
        """What the main process knows of a mail before it is read, and the job for the reader (None: not read)."""
        raw = raws[index]
        if index not in unit.ahead:
            self._look_ahead(unit, raws, index, uidvalidity, now)
        digest, existing, counted = unit.ahead.pop(index)
        session = unit.session
        if existing is None and digest in unit.done:  # the same bytes at an earlier UID of this pass
            existing = unit.done[digest]
        if existing is not None:
            unit.advance(raw.folder, uidvalidity, raw.uid)
            return _Prepared(raw, digest, None, now, existing), None
        routing = read_routing(raw.raw if raw.raw is not None else raw.header)
        arrival = _arrival(routing.date, raw, now)
        if digest in self._reading:
            # The same bytes at an earlier UID of this pass, still being read: recorded once, by that one.
            return _Prepared(raw, digest, routing, arrival, duplicate=True), None
        limit = self.settings.imap.max_message_bytes
        if raw.size > limit or raw.raw is None:
            reason = (
                f"over-size mail ({raw.size} bytes, limit {limit}, imap.max_message_bytes): recorded without "
                f"its content, attachments not read; the original is still in the mailbox, folder "
                f"{raw.folder!r}, UID {raw.uid}: open it there in a mail client"
            )
            return _Prepared(raw, digest, routing, arrival, None, reason), None
        attempts = 1 if counted is None else self._suspect(unit, digest, now)
        if attempts > self.settings.reader.max_attempts:
            reason = (
                f"quarantined: the whole service died {attempts - 1} times while this mail was being read (killed "
                "by the system, most likely out of memory, or a crash; the last time it was read with no other "
                "mail beside it); kept verbatim, not read again"
            )
            log.warning("message-id=%s: %s", routing.message_id, reason)
            return _Prepared(raw, digest, routing, arrival, None, reason), None
        context = self.context(session, routing, arrival)
        # A mail whose reading was cut short (the service died) is read with no other beside it.
        alone = attempts > 1
        self._reading.add(digest)
        return (
            _Prepared(raw, digest, routing, arrival, generation=self._generation, alone=alone),
            ReadJob(raw.raw, context, arrival, alone=alone),
        )

    def _look_ahead(self, unit: _Unit, raws: list[RawMail], index: int, uidvalidity: int, now: datetime) -> None:
        """For the next mails from `index` (up to a batch): their sha256, whether they are already recorded, and,
        for the mails never read before, their reading counted in mail_attempt and committed (with the mails
        recorded so far) before any of them is read, so that the next pass knows them if the whole service dies
        while this batch is read (on every mail of the batch that was not recorded yet, not only the one being
        read). Such a mail is then a suspect: `_suspect` counts each of its readings alone, one at a time."""
        limit = self.settings.imap.max_message_bytes
        chunk = raws[index : index + unit.batch_mails]
        digests = [
            record.sha256(raw.raw)
            if raw.raw is not None
            else record.sha256(f"oversize:{raw.folder}:{uidvalidity}:{raw.uid}:{raw.size}".encode())
            for raw in chunk
        ]
        session = unit.session
        # The look-up below runs in the unit's transaction, so it sees the mails recorded before this look-ahead
        # (committed or not): they need not be remembered beside the database (a pass of 10,000 would keep them all).
        unit.done.clear()
        wanted = set(digests)
        existing = dict(
            session.exec(
                select(InboundMail.sha256, InboundMail.status).where(col(InboundMail.sha256).in_(wanted))
            ).all()
        )
        counted = dict(
            session.exec(
                select(MailAttempt.sha256, MailAttempt.attempts).where(col(MailAttempt.sha256).in_(wanted))
            ).all()
        )
        fresh: dict[str, RawMail] = {}
        for raw, digest in zip(chunk, digests, strict=True):
            if digest not in existing and digest not in counted and raw.raw is not None and raw.size <= limit:
                fresh.setdefault(digest, raw)
        if fresh:
            session.exec(  # type: ignore[call-overload]
                insert(MailAttempt.__table__),  # type: ignore[attr-defined]
                params=[
                    {"sha256": digest, "folder": raw.folder, "uid": raw.uid, "attempts": 1, "last_attempt": now}
                    for digest, raw in fresh.items()
                ],
            )
        unit.counted.update(fresh)
        unit.commit()  # the readings counted, with the mails recorded so far, before any of these is read
        for offset, digest in enumerate(digests):
            unit.ahead[index + offset] = (digest, existing.get(digest), counted.get(digest))

    def _suspect(self, unit: _Unit, digest: str, now: datetime) -> int:
        """A mail whose reading an earlier pass started and never finished: one more reading, counted and
        committed before it starts (it will be read alone); returns the count with this one."""
        table = MailAttempt.__table__  # type: ignore[attr-defined]
        session = unit.session
        session.exec(  # type: ignore[call-overload]
            update(table).where(table.c.sha256 == digest).values(attempts=table.c.attempts + 1, last_attempt=now)
        )
        attempts = session.exec(select(MailAttempt.attempts).where(MailAttempt.sha256 == digest)).one()
        unit.commit()
        return int(attempts)

    def _record_duplicate(self, unit: _Unit, item: _Prepared, uidvalidity: int, report: PassReport) -> str | None:
        """A mail whose bytes an earlier UID of the same pass carried (read beside it): already recorded."""
        session = unit.session
        existing = session.exec(select(InboundMail.status).where(InboundMail.sha256 == item.digest)).first()
        if existing is None:
            return None
        unit.advance(item.raw.folder, uidvalidity, item.raw.uid)
        report.already_recorded += 1
        return existing

    def _record(
        self, unit: _Unit, item: _Prepared, outcome: Outcome | None, uidvalidity: int, now: datetime,
        report: PassReport,
    ) -> str:  # fmt: skip
        raw, digest = item.raw, item.digest
        if item.recorded is not None:
            report.already_recorded += 1
            return item.recorded
        assert item.routing is not None
        parsed = outcome.parsed if outcome is not None else None
        understanding = outcome.understanding if outcome is not None else None
        unread_reason = item.unread_reason or (outcome.failure if outcome is not None else None)
        if unread_reason is not None or parsed is None or understanding is None:
            parsed, understanding = _unread(item.identity), None
            unread_reason = unread_reason or "the reader returned nothing"
        arrival = item.arrival
        session = unit.session
        if unread_reason is not None or (
            understanding is not None
            and understanding.status is not MailStatus.REGISTERED
            and not understanding.bounced
        ):
            # No facts to record (review, ignored, unread): one plain INSERT, no ORM object.
            return self._record_plain(unit, item, parsed, understanding, unread_reason, uidvalidity, now, report)
        mail = InboundMail(
            sha256=digest,
            # The raw header block names the mail when the full parse could not (2,000 MIME levels deep).
            message_id=parsed.message_id or item.identity.message_id,
            folder=raw.folder,
            uidvalidity=uidvalidity,
            uid=raw.uid,
            raw=raw.raw,
            size=raw.size or len(raw.raw or b""),
            from_address=parsed.sender_email or item.identity.sender_email,
            from_name=parsed.sender_name or item.identity.sender_name,
            subject=(parsed.subject or item.identity.subject or "")[:10_000],
            body_text=parsed.body_text[:100_000],
            received=arrival,
            first_seen=now,
            status=MailStatus.REVIEW.value,
            kinds=MailKind.OTHER.value,
        )
        try:
            # A savepoint per mail: what undoes this mail (a poison mail's facts, another worker's copy of it)
            # undoes nothing else of the batch.
            try:
                with session.begin_nested():
                    if unread_reason is not None:
                        mail.reason = unread_reason[:2000]
                        mail.details = json.dumps({"reasons": [], "unread": True}, ensure_ascii=False)
                        session.add(mail)
                        log.warning("message-id=%s: not read: %s", mail.message_id, unread_reason)
                        understanding = None
                    else:
                        assert understanding is not None
                        self._record_understanding(session, mail, parsed, understanding, arrival, now)
            except DBAPIError:
                raise  # the database failed (or another worker's copy): handled below, or the pass stops
            except Exception as error:  # a poison mail: keep it verbatim, ask a person, go on with the next
                log.exception("message-id=%s: could not be processed; sent to review", mail.message_id)
                with session.begin_nested():
                    mail.id = None
                    mail.status = MailStatus.REVIEW.value
                    mail.kinds = MailKind.OTHER.value
                    mail.network_key = None
                    mail.reason = f"internal error while processing: {type(error).__name__}: {error}"[:2000]
                    mail.details = ""
                    session.add(mail)
                understanding = None
        except IntegrityError:
            # Another worker recorded the same mail between our look-up and our insert (PostgreSQL; on SQLite the
            # unit's write lock keeps others out). Any other broken constraint stops the pass (nothing is lost:
            # the next pass reads the mail again).
            winner = session.exec(select(InboundMail.status).where(InboundMail.sha256 == digest)).first()
            if winner is None:
                raise
            report.already_recorded += 1
            unit.advance(raw.folder, uidvalidity, raw.uid)
            unit.finish(digest, winner)
            return winner
        unit.advance(raw.folder, uidvalidity, raw.uid)
        unit.finish(digest, mail.status)
        self._recorded(unit, report, {**mail.model_dump(), "id": mail.id}, understanding)
        return mail.status

    def _record_plain(
        self, unit: _Unit, item: _Prepared, parsed: ParsedMail, understanding: Understanding | None,
        unread_reason: str | None, uidvalidity: int, now: datetime, report: PassReport,
    ) -> str:  # fmt: skip
        """A mail with no facts: its row by one INSERT that gives way to another worker's copy of the same mail
        (ON CONFLICT DO NOTHING on the sha256), so it needs no savepoint."""
        raw, session = item.raw, unit.session
        if understanding is not None and unread_reason is None:
            status, kinds = understanding.status.value, ",".join(k.value for k in understanding.kinds)
            reason = understanding.review_reason or ("; ".join(understanding.reasons) or None)
            details = json.dumps(
                apply_understanding(session, None, understanding, item.arrival, self.tz), ensure_ascii=False,
                default=str,
            )  # fmt: skip
            network = understanding.network
        else:
            status, kinds, network = MailStatus.REVIEW.value, MailKind.OTHER.value, None
            reason = (unread_reason or "the reader returned nothing")[:2000]
            details = json.dumps({"reasons": [], "unread": True}, ensure_ascii=False)
        row = {
            "sha256": item.digest,
            # The raw header block names the mail when the full parse could not (2,000 MIME levels deep).
            "message_id": parsed.message_id or item.identity.message_id,
            "folder": raw.folder,
            "uidvalidity": uidvalidity,
            "uid": raw.uid,
            "raw": raw.raw,
            "size": raw.size or len(raw.raw or b""),
            "from_address": parsed.sender_email or item.identity.sender_email,
            "from_name": parsed.sender_name or item.identity.sender_name,
            "subject": (parsed.subject or item.identity.subject or "")[:10_000],
            "body_text": parsed.body_text[:100_000],
            "received": item.arrival,
            "first_seen": now,
            "status": status,
            "kinds": kinds,
            "network_key": network,
            "reason": reason,
            "details": details,
        }
        if unread_reason is not None:
            log.warning("message-id=%s: not read: %s", row["message_id"], unread_reason)
        inserted = session.connection().execute(unit.insert_mail, row).scalar()
        unit.advance(raw.folder, uidvalidity, raw.uid)
        if inserted is None:  # another worker recorded the same mail after our look-up (PostgreSQL)
            winner = session.exec(select(InboundMail.status).where(InboundMail.sha256 == item.digest)).one()
            report.already_recorded += 1
            unit.finish(item.digest, winner)
            return winner
        unit.finish(item.digest, status)
        self._recorded(unit, report, {**row, "id": inserted}, understanding)
        return status

    def _recorded(
        self, unit: _Unit, report: PassReport, row: dict[str, object], understanding: Understanding | None
    ) -> None:
        """A mail's row is in the open transaction: the pass's report, and its log line once the transaction is
        committed (a line never tells of a mail that a kill or a stopped pass left unrecorded)."""
        status = str(row["status"])
        report.count(status)
        report.recorded.append(
            (row["id"], row["message_id"], row["from_address"], row["subject"], status, row["network_key"],
             row["kinds"], row["reason"])  # fmt: skip
        )
        unit.lines.append(
            (
                "message-id=%s from=%s network=%s status=%s kinds=%s%s",
                (row["message_id"], row["from_address"], row["network_key"], status, row["kinds"],
                 f" reason={row['reason']}" if row["reason"] else ""),
            )  # fmt: skip
        )
        if status == MailStatus.REGISTERED.value and understanding is not None and _changes_context(understanding):
            # Only a registered mail records facts (apply_understanding): a member list in review changes nothing.
            if understanding.member_list is not None:
                self._memberships.clear()
            self._generation += 1

    def _record_understanding(
        self, session: Session, mail: InboundMail, parsed: ParsedMail, understanding: Understanding,
        arrival: datetime, now: datetime,
    ) -> None:  # fmt: skip
        mail.status = understanding.status.value
        mail.kinds = ",".join(k.value for k in understanding.kinds)
        mail.network_key = understanding.network
        mail.reason = understanding.review_reason or ("; ".join(understanding.reasons) or None)
        session.add(mail)
        session.flush()
        details = apply_understanding(session, mail, understanding, arrival, self.tz)
        mail.details = json.dumps(details, ensure_ascii=False, default=str)
        if self.on_recorded is not None:
            self.on_recorded(session, mail, parsed, understanding, now)


YIELD_SECONDS = 0.15  # how long a commit leaves SQLite's write lock to a writer that waits for it
WAITING_SECONDS = 2.0  # a writer that began to wait this recently is still waiting (it says so only once)


class _Unit:
    """The open transaction of a run of mails: the mails recorded, the folder's position and the receipts queued
    are committed together, at the latest after `batch_mails` mails or `batch_seconds`, before a slow reading
    is waited for (the reader's settle), after a suspect, and at the end. A kill loses at most the uncommitted
    mails, which the next pass reads again; nothing is ever recorded twice (the sha256 is unique and the position
    moves in the same transaction). On SQLite the open transaction holds the write lock: the bounds keep an
    admin's command (and the lease's renewal) waiting for at most about a second."""

    def __init__(self, engine: Engine, settings: IntakeSettings, tz: ZoneInfo) -> None:
        self.engine = engine
        self.session = Session(engine, expire_on_commit=False)
        self.insert_mail = _insert_new_mail(engine)
        self._marker = waiting_marker(engine)  # SQLite: when another writer last began to wait for the lock
        self._checked = time.time()
        self.batch_mails = settings.batch_mails
        self.batch_seconds = settings.batch_seconds
        self.ahead: dict[int, tuple[str, str | None, int | None]] = {}  # index -> (sha256, status, attempts)
        self.counted: set[str] = set()  # mail_attempt rows inserted by this unit, not yet deleted
        self.done: dict[str, str] = {}  # sha256 -> status of the mails recorded since the last look-ahead
        self._finished: list[str] = []  # recorded since the last commit: their mail_attempt rows go with it
        self.lines: list[tuple[str, tuple[object, ...]]] = []  # the log lines of those mails, written once committed
        self._uncommitted = 0
        self._since: float | None = None
        self._position: tuple[str, int, int] | None = None  # (folder, uidvalidity, uid) to move to at the commit

    def advance(self, folder: str, uidvalidity: int, uid: int) -> None:
        """The folder's position moves past `uid` with the next commit."""
        if self._position is not None and self._position[:2] == (folder, uidvalidity):
            uid = max(uid, self._position[2])
        self._position = (folder, uidvalidity, uid)

    def finish(self, digest: str, status: str) -> None:
        self._finished.append(digest)
        self.done[digest] = status

    def recorded(self, alone: bool = False) -> None:
        """One more mail recorded (or passed over): commit when a bound is reached, and after a suspect."""
        self._uncommitted += 1
        if self._since is None:
            self._since = time.monotonic()
        if alone or self._uncommitted >= self.batch_mails or time.monotonic() - self._since >= self.batch_seconds:
            self.commit()

    def commit(self) -> None:
        if self._position is not None:
            folder, uidvalidity, uid = self._position
            state = row_of(self.session, MailboxState, folder=folder)
            if state.uidvalidity != uidvalidity:
                state.uidvalidity, state.last_uid, state.marked_uid = uidvalidity, 0, 0
            state.last_uid = max(state.last_uid, uid)
            self.session.add(state)
            self._position = None
        if self._finished:
            table = MailAttempt.__table__  # type: ignore[attr-defined]
            self.session.exec(delete(table).where(table.c.sha256.in_(self._finished)))  # type: ignore[call-overload]
        self.session.commit()
        for message, args in self.lines:
            log.info(message, *args)
        self.lines.clear()
        self.counted.difference_update(self._finished)
        self._finished.clear()
        self._uncommitted = 0
        self._since = None
        if writer_waiting(self._marker, min(self._checked, time.time() - WAITING_SECONDS)):
            # The next mail would take SQLite's write lock again at once: leave it to the command (or the lease's
            # renewal) that waits for it in SQLite's busy handler, which tries again every 100 ms.
            time.sleep(YIELD_SECONDS)
        self._checked = time.time()

    def __enter__(self) -> _Unit:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> None:
        try:
            if kind is not None:
                self.session.rollback()
                if self.lines:
                    log.warning("%d mails read in this pass were not recorded (it stopped before their commit): "
                                "the next pass reads them again", len(self.lines))  # fmt: skip
                self._forget_counts()
        finally:
            self.session.close()

    def _forget_counts(self) -> None:
        """The pass stopped without the service dying (an error, a lost lease): the readings this unit counted
        and did not finish were not cut short by a death, so their mails are not suspects at the next pass."""
        if not self.counted:
            return
        table = MailAttempt.__table__  # type: ignore[attr-defined]
        try:
            with Session(self.engine) as session:
                session.exec(  # type: ignore[call-overload]
                    delete(table).where(table.c.sha256.in_(list(self.counted)), table.c.attempts == 1)
                )
                session.commit()
        except SQLAlchemyError as error:  # the database is what failed: they are read alone next time, that is all
            log.warning("could not clear %d reading counts after a stopped pass: %s", len(self.counted), error)


@dataclass(frozen=True)
class _Prepared:
    raw: RawMail
    digest: str
    routing: Routing | None  # None when the mail is already recorded
    arrival: datetime
    recorded: str | None = None  # the status of the mail already recorded
    unread_reason: str | None = None  # recorded unread in review (over-size, quarantined)
    generation: int = 0  # Intake._generation when its context was made
    alone: bool = False
    duplicate: bool = False  # the same bytes as a mail before it in the pass, not yet recorded when this was fetched

    @cached_property
    def identity(self) -> Identity:
        """From, Subject and the rest read from the raw header block: only when the reader's parse lacks them."""
        return read_identity(self.raw.raw if self.raw.raw is not None else self.raw.header)


def _insert_new_mail(engine: Engine):  # type: ignore[no-untyped-def]
    """INSERT INTO inbound_mail ... ON CONFLICT (sha256) DO NOTHING RETURNING id, in the engine's dialect (made
    once per unit: SQLAlchemy then compiles it once)."""
    table = InboundMail.__table__  # type: ignore[attr-defined]
    return insert_or_nothing(engine.dialect.name, table, ["sha256"]).returning(table.c.id)


def _unread(identity: Identity) -> ParsedMail:
    return ParsedMail(
        message_id=identity.message_id,
        in_reply_to=identity.in_reply_to,
        references=identity.references,
        subject=identity.subject,
        sender_name=identity.sender_name,
        sender_email=identity.sender_email,
        to=(),
        date=identity.date,
        headers=(),
        body_text="",
    )


def _changes_context(understanding: Understanding) -> bool:
    """Whether recording it changes what Intake.context gives the next mail: the lists in force, the meetings."""
    return bool(
        understanding.member_list is not None
        or understanding.meeting_changes
        or understanding.meeting_dates
        or understanding.calendar_events
        or understanding.minutes
    )


def _waits_for_a_member_list(reason: str) -> bool:
    """Whether a review reason is only that the sender was not (yet) a member or in the presidium."""
    parts = [part.strip() for part in reason.split("; ") if part.strip()]
    return bool(parts) and all(
        re.match(r"sender \S+ is not (?:a member of|in the presidium of) ", part) for part in parts
    )


def _arrival(sent: datetime | None, raw: RawMail, now: datetime) -> datetime:
    """When the mail reached the mailbox: its Date, unless missing or absurd, then INTERNALDATE, then now."""
    candidates = [sent, raw.internal_date]
    for moment in candidates:
        if moment is not None and moment.tzinfo is not None and moment <= now + timedelta(days=1):
            return moment.astimezone(UTC)
    return now.astimezone(UTC)


def apply_understanding(
    session: Session, mail: InboundMail | None, understanding: Understanding, arrival: datetime, tz: ZoneInfo
) -> dict[str, object]:
    """Record the facts of a registered mail; returns what was recorded (for the receipt and the audit trail).
    `mail` None: a mail with no facts (not registered, no bounces), whose row is not written yet."""
    details: dict[str, object] = {"reasons": list(understanding.reasons), "sender": understanding.sender}
    if understanding.bounced:
        assert mail is not None
        for address in understanding.bounced:
            record.bounce(session, address, arrival, mail.id or 0)
        details["bounced"] = list(understanding.bounced)
    if understanding.member_list is not None:
        details["rejected_rows"] = [  # as asdict, which deep-copies each field (a 60-row list: 0.5 ms)
            {"row_number": row.row_number, "text": row.text, "reason": row.reason}
            for row in understanding.member_list.rejected
        ]
    if understanding.date_problems:
        details["date_problems"] = list(understanding.date_problems)
    if understanding.status is not MailStatus.REGISTERED or understanding.network is None:
        return details
    key = understanding.network
    assert mail is not None
    mail_id = mail.id or 0
    if understanding.member_list is not None:
        members = [
            record.NewMember(m.name, m.email, m.municipality, m.role.value) for m in understanding.member_list.members
        ]
        record.member_list(
            session, key, members, details["rejected_rows"], arrival,  # type: ignore[arg-type]
            understanding.member_list.source, mail_id, tz,
            period=(period.label, period.start, period.end) if (period := understanding.period) else None,
        )  # fmt: skip
        details["members"] = len(members)
    meetings: list[dict[str, object]] = []
    for change in understanding.meeting_changes:
        if change.old_date is not None:
            meeting = record.cancel_meeting(session, key, change.old_date, mail_id)
            meetings.append(_meeting_detail(meeting, "cancelled"))
        if change.new is not None:
            new = change.new
            meeting, _created = record.announced_meeting(session, key, new.date, new.start, new.end, new.place, mail_id)
            meetings.append(_meeting_detail(meeting, "moved"))
    for item in understanding.meeting_dates:
        meeting, created = record.announced_meeting(session, key, item.date, item.start, item.end, item.place, mail_id,
                                                    replace=item.date in understanding.replaces)  # fmt: skip
        meetings.append(_meeting_detail(meeting, "created" if created else "confirmed"))
    for event in understanding.calendar_events:
        local_start = event.start.astimezone(tz)
        local_end = event.end.astimezone(tz) if event.end else None
        meeting, change = record.calendar_meeting(
            session, key, event.uid, event.recurrence_id.isoformat() if event.recurrence_id else "", event.sequence,
            local_start.date(), local_start.time().replace(tzinfo=None) if _has_time(local_start) else None,
            local_end.time().replace(tzinfo=None) if local_end and _has_time(local_end) else None,
            event.location, event.cancelled, mail_id,
        )  # fmt: skip
        meetings.append(_meeting_detail(meeting, change))
    for section in understanding.sections:
        # A mail with one headed section per network: the other networks' dates, each for its own network.
        for item in section.meeting_dates:
            meeting, created = record.announced_meeting(
                session, str(section.network), item.date, item.start, item.end, item.place, mail_id
            )
            meetings.append(_meeting_detail(meeting, "created" if created else "confirmed"))
    if meetings:
        details["meetings"] = meetings
    if understanding.sections:
        details["networks"] = [key, *(str(section.network) for section in understanding.sections)]
    minutes_details = []
    for item in understanding.minutes:
        doc, _new_doc = record.document(session, item.filename, item.media_type, item.payload, item.text, mail_id)
        _minutes, new, announced = record.minutes(
            session, key, item.meeting_date, doc, item.result.municipalities_present, arrival, mail_id
        )
        minutes_details.append(
            {
                "meeting_date": item.meeting_date.isoformat(),
                "filename": item.filename,
                "new": new,
                "announced": announced,
                "municipalities_present": list(item.result.municipalities_present),
            }  # fmt: skip
        )
    if minutes_details:
        details["minutes"] = minutes_details
    if understanding.deliverable_key is not None:
        doc = None
        attachment = understanding.deliverable_document
        if attachment is not None:
            doc, _ = record.document(
                session, attachment.filename or "bilaga", attachment.content_type, attachment.payload, "", mail_id
            )
        record.deliverable(session, key, understanding.deliverable_key, doc, arrival, mail_id)
        details["deliverable"] = {"key": understanding.deliverable_key, "title": understanding.deliverable_title}
    return details


def _has_time(moment: datetime) -> bool:
    return (moment.hour, moment.minute) != (0, 0)


def _meeting_detail(meeting: object, change: str) -> dict[str, object]:
    return {
        "network": meeting.network_key,  # type: ignore[attr-defined]
        "date": meeting.date.isoformat(),  # type: ignore[attr-defined]
        "start": meeting.start.strftime("%H:%M") if meeting.start else None,  # type: ignore[attr-defined]
        "place": meeting.place,  # type: ignore[attr-defined]
        "status": meeting.status,  # type: ignore[attr-defined]
        "change": change,
    }


def record_failure(engine: Engine, folder: str, error: str, now: datetime) -> int:
    """Count a failed pass; returns how many passes in a row have failed."""
    with Session(engine) as session:
        state = row_of(session, MailboxState, folder=folder)
        state.consecutive_failures += 1
        state.last_failure = now
        state.last_error = error[:1000]
        session.add(state)
        session.commit()
        return state.consecutive_failures
