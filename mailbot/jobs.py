"""The worker's jobs, shared by the CLI and the scheduler: an intake pass, a reminder run.

Each takes `now` (or `today`) as a parameter; only the CLI's --as-of and the scheduler's tick read the clock.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parseaddr
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from mailbot import outbox
from mailbot.compose import render
from mailbot.remind import (
    ReceiptRequest,
    mailbox_failing_alert,
    mailbox_recovered_alert,
    plan_receipt,
    plan_reminders,
    receipt_refusal,
    upload_failing_alert,
    upload_recovered_alert,
    without_answers_in_review,
)
from mailbot.understand.types import MeetingDate
from registry.db import row_of
from registry.domain import MailStatus, Role
from registry.errors import ExpectedError
from registry.models import BouncingAddress, InboundMail, MailboxState, RunLog
from registry.queries import last_runs as last_runs  # where `mailbot check` reads it without the jobs
from registry.queries import members_in_force_by_network
from registry.runtime import Runtime
from registry.status import status_findings

if TYPE_CHECKING:
    from mailbot.intake import PassReport
    from mailbot.understand.context import Understanding
    from mailbot.understand.types import ParsedMail

log = logging.getLogger("mailbot")


def own_domains(rt: Runtime) -> list[str]:
    sender = parseaddr(rt.settings.smtp.sender)[1].lower()
    return [sender, rt.settings.smtp.message_id_domain.lower()]


def bouncing_addresses(session: Session) -> set[str]:
    return {row.email for row in session.exec(select(BouncingAddress)).all()}


def receipt_hook(
    rt: Runtime, refused: Counter[str] | None = None
) -> Callable[[Session, InboundMail, ParsedMail, Understanding, datetime], None]:
    """Queue the receipt of a registered mail in the transaction that records the mail (so it is planned exactly
    once).
    `refused` counts why registered mails got none (receipt_refusal's reasons), for a pass's summary."""
    settings = rt.settings

    def queue_receipt(session: Session, mail: InboundMail, parsed: ParsedMail, understanding: Understanding,
                      now: datetime) -> None:  # fmt: skip
        if understanding.status is not MailStatus.REGISTERED:
            return
        if not settings.receipts.enabled:
            if refused is not None:
                refused["receipts are disabled"] += 1
            return
        sender = parsed.sender_email or ""
        network = rt.registry.network(understanding.network) if understanding.network else None
        minutes = understanding.minutes[0] if understanding.minutes else None
        request = ReceiptRequest(
            mail_id=mail.id or 0,
            message_id=parsed.message_id,
            sender_email=sender,
            sender_name=parsed.sender_name,
            subject=parsed.subject or "",
            received=mail.received,
            network_key=network.key if network else None,
            network_name=" och ".join(
                rt.registry.network(key).name
                for key in (understanding.network, *(section.network for section in understanding.sections))
                if key
            )
            or None,
            kinds=tuple(k.value for k in understanding.kinds),
            members_count=len(understanding.member_list.members) if understanding.member_list else None,
            rejected_rows=understanding.member_list.rejected if understanding.member_list else (),
            meetings=understanding.meeting_dates
            + tuple(item for section in understanding.sections for item in section.meeting_dates)
            + _invited(understanding, rt),
            cancelled=tuple(e.start.astimezone(rt.tz).date() for e in understanding.calendar_events if e.cancelled),
            minutes_meeting_date=minutes.meeting_date if minutes else None,
            deliverable_title=understanding.deliverable_title,
        )
        recent = outbox.recent_receipt_count(session, sender, now) if sender else 0
        bouncing = bouncing_addresses(session)
        reason = receipt_refusal(request, now, settings.receipts, recent, own_domains(rt), bouncing)
        if reason is not None:
            log.debug("no receipt for mail %s: %s", mail.id, reason)
            if refused is not None:
                refused[reason] += 1
            return
        planned = plan_receipt(request, now, settings.receipts, recent, own_domains(rt), bouncing)
        if planned is not None:
            outbox.queue(session, [planned], now, settings, rt.registry)

    return queue_receipt


def _invited(understanding: Understanding, rt: Runtime) -> tuple[MeetingDate, ...]:
    """The meetings an invitation announced, in the words a receipt uses for announced dates."""
    invited = []
    for event in understanding.calendar_events:
        if event.cancelled:
            continue
        start = event.start.astimezone(rt.tz)
        end = event.end.astimezone(rt.tz) if event.end else None
        timed = (start.hour, start.minute) != (0, 0)
        invited.append(
            MeetingDate(
                date=start.date(),
                start=start.time().replace(tzinfo=None) if timed else None,
                end=end.time().replace(tzinfo=None) if end and timed else None,
                place=event.location,
            )  # fmt: skip
        )
    return tuple(invited)


@dataclass
class PollResult:
    report: PassReport
    drained: outbox.DrainReport | None = None
    errors: list[str] = field(default_factory=list)
    published: PublishResult | None = None  # the public site after the pass (`mailbot poll`)
    receipts_refused: Counter[str] = field(default_factory=Counter)  # reason -> registered mails given no receipt


def mark_run(engine: Engine, kind: str, now: datetime, error: str | None) -> None:
    """Note a run (poll, remind) in the run log, failed when `error` is set; `mailbot check` reads it."""
    with Session(engine) as session:
        row = row_of(session, RunLog, kind=kind)
        row.last_start = now
        if error is None:
            row.last_success = now
        row.last_error = error
        session.add(row)
        session.commit()


def poll(
    rt: Runtime,
    now: datetime,
    progress: Callable[[int], None] | None = None,
    send: bool = True,
    check_lease: Callable[[], None] | None = None,
) -> PollResult:
    """One intake pass, then the receipts it queued are sent. Raises SourceError when the mailbox fails
    (after counting the failure and, after N in a row, queueing one alert to the admin).

    `check_lease` (the worker's) runs after each mail, before sending and between sends; it raises
    (lease.LeaseLost) when this process can no longer be sure it is the active worker, which stops the pass
    between two mails (the worker's heartbeat renews the lease meanwhile, from its own thread). The mails
    recorded since the last commit are rolled back and the next pass (this worker's or the standby's) reads
    them again."""
    # Here, not at the top: the intake (IMAP client, MIME and document parsers) is not needed to send reminders.
    from mailbot.intake import Intake, record_failure
    from mailbot.sources import SourceError, open_source

    engine = rt.engine(create=True)  # poll (also run, demo) is what makes a registry
    refused: Counter[str] = Counter()
    intake = Intake(engine=engine, settings=rt.settings, registry=rt.registry, tz=rt.tz,
                    on_recorded=receipt_hook(rt, refused))  # fmt: skip
    source = open_source(rt.settings)
    before = _streak(engine, source.folder)

    def step(count: int) -> None:
        if check_lease is not None:
            check_lease()
        if progress is not None:
            progress(count)

    try:
        with source:
            report = intake.run_pass(source, now, step if check_lease or progress else None)
    except SourceError as error:
        failures = record_failure(engine, source.folder, str(error), now)
        mark_run(engine, "poll", now, str(error))
        if failures == rt.settings.schedule.failures_before_alert:
            with Session(engine) as session:
                state = session.get(MailboxState, source.folder)
                alert = mailbox_failing_alert(
                    source.folder, str(error), failures, state.last_good_pass if state else None,
                    rt.settings.admin.addresses, tz=rt.tz,
                )  # fmt: skip
                outbox.queue(session, [alert], now, rt.settings, rt.registry)
                if state is not None:  # record_failure has just written it
                    state.alert_sent = True
                    session.add(state)
                session.commit()
            if send and (check_lease is None or _still_active(check_lease)):
                outbox.drain_outbox(engine, rt.settings, lambda: now)
        raise
    if before is not None:
        _recovered(rt, engine, source.folder, before, now)
    mark_run(engine, "poll", now, None)
    result = PollResult(report=report, receipts_refused=refused)
    # A worker that lost its lease leaves the receipts to the one that took over.
    if send and (check_lease is None or _still_active(check_lease)):
        result.drained = outbox.drain_outbox(engine, rt.settings, _clock(now, check_lease))
    return result


def _clock(now: datetime, check_lease: Callable[[], None] | None) -> Callable[[], datetime]:
    """The drain's clock: the pass's `now`. The drain reads it around each mail it sends, which is also when the
    worker keeps its lease, so a long drain (hundreds of receipts after an SMTP outage) renews it as it goes.

    A lost lease does not stop the drain: the clock is also read between a send and its commit, where stopping
    would leave that mail to be sent again; the outbox's atomic claims keep a standby off the same rows."""
    if check_lease is None:
        return lambda: now

    def clock() -> datetime:
        _still_active(check_lease)
        return now

    return clock


def _still_active(check_lease: Callable[[], None]) -> bool:
    try:
        check_lease()
    except ExpectedError:
        return False
    return True


def _streak(engine: Engine, folder: str) -> tuple[int, datetime | None] | None:
    """(failed passes, last good pass before them) when the admin was alerted about this folder, else None.
    Read before a pass, because a good pass resets both."""
    with Session(engine) as session:
        state = session.get(MailboxState, folder)
        if state is None or not state.alert_sent:
            return None
        return state.consecutive_failures, state.last_good_pass


def _recovered(rt: Runtime, engine: Engine, folder: str, streak: tuple[int, datetime | None], now: datetime) -> None:
    """After an alert about a failing mailbox, one mail saying it works again (keyed to the same streak)."""
    failures, last_good_pass = streak
    with Session(engine) as session:
        alert = mailbox_recovered_alert(folder, failures, last_good_pass, now, rt.settings.admin.addresses, tz=rt.tz)
        outbox.queue(session, [alert], now, rt.settings, rt.registry)
        state = session.get(MailboxState, folder)
        if state is not None:
            state.alert_sent = False
            session.add(state)
        session.commit()


def _addresses(rows: list[dict[str, object]], roles: set[Role]) -> list[str]:
    return [str(r["email"]) for r in rows if r.get("email") and Role(str(r["role"])) in roles]


def remind(
    rt: Runtime, today: date, now: datetime, dry_run: bool = False, send: bool = True
) -> list[dict[str, object]]:
    """Evaluate every obligation on `today` and queue (and send) the reminders that are due.
    With dry_run, render exactly the mails that would go and record nothing."""
    engine = rt.engine()
    findings = status_findings(rt, today)
    presidium_roles = {Role.CHAIR, Role.SECRETARY, Role.PRESIDIUM}
    with Session(engine) as session:
        presidium: dict[str, list[str]] = {}
        chiefs: dict[str, list[str]] = {}
        in_force = members_in_force_by_network(session, today)
        for network in rt.registry.networks:
            rows = in_force.get(network.key, [])
            presidium[network.key] = _addresses(rows, presidium_roles)
            chiefs[network.key] = _addresses(rows, {Role.SCHOOL_CHIEF}) + (
                [network.school_chief] if network.school_chief else []
            )
        in_review: dict[str, set[str]] = {}
        for key, kinds in session.exec(
            select(InboundMail.network_key, InboundMail.kinds).where(
                InboundMail.status == MailStatus.REVIEW.value,
                col(InboundMail.resolved_at).is_(None),
                col(InboundMail.network_key).is_not(None),
            )
        ):
            in_review.setdefault(key, set()).update(kinds.split(","))
        planned = plan_reminders(
            rt.registry.networks, without_answers_in_review(findings, in_review), presidium, chiefs, outbox.ledger(session), today, rt.settings.reminders,
            rt.settings.admin.addresses, bouncing_addresses(session),
        )  # fmt: skip
        networks = {n.key: n for n in rt.registry.networks}
        listing = []
        for item in planned:
            rendered = render(item, networks.get(item.network or ""), networks=networks, tz=rt.tz,
                              shared_mailbox=rt.settings.smtp.reply_to)  # fmt: skip
            listing.append(
                {
                    "network": item.network,
                    "kind": item.kind,
                    "to": list(item.to),
                    "cc": list(item.cc),
                    "subject": rendered.subject,
                    "obligations": [f.id for f in item.findings],
                    "escalated": item.escalated,
                    "dedup_key": item.dedup_key,
                    "text": rendered.text,
                }  # fmt: skip
            )
        if dry_run:
            return listing
        written = outbox.queue(session, planned, now, rt.settings, rt.registry)
        session.commit()
        queued_keys = {row.dedup_key for row in written}
    for entry in listing:
        entry["queued"] = entry["dedup_key"] in queued_keys
    mark_run(engine, "remind", now, None)
    # In January, last year's report to the school chiefs and the admin (once per year: dedup keys).
    from mailbot.yearly_report import queue_yearly_reports

    reports = queue_yearly_reports(rt, today, now)
    if reports:
        log.info("yearly report %d: %d mails queued", today.year - 1, len(reports))
    if send:
        outbox.drain_outbox(engine, rt.settings, lambda: now)
    return listing


@dataclass
class PublishResult:
    built: bool = False
    first_time: list[int] = field(default_factory=list)
    uploaded: bool | None = None  # None: no upload ran (none configured, or nothing to upload)
    upload_error: str | None = None


def publish_if_due(rt: Runtime, now: datetime, daily: bool = False) -> PublishResult:
    """Rebuild the public site when minutes wait to go on it for the first time (new minutes of an `auto`
    network, or minutes a person approved since the last build), and once a day (`daily`); then upload it when
    `publication.upload_command` is set. A failed upload is retried at every pass until one succeeds; after
    `failures_before_alert` failures in a row the admin gets one alert, and one mail when it works again."""
    from registry import publication

    settings = rt.settings.publication
    engine = rt.engine()
    if not any(n.minutes_published_on_web for n in rt.registry.networks):
        return PublishResult()
    with Session(engine) as session:
        due = daily or publication.has_unpublished(session, rt.registry)
        state = publication.site_state(session)
        upload_pending = bool(state and state.upload_pending)
    result = PublishResult()
    if due:
        report = publication.build(engine, rt.registry, settings, now, rt.tz)
        result.built, result.first_time = True, report.first_time
    if settings.upload_command is None or not (due or upload_pending):
        return result
    outcome = publication.upload_site(engine, settings, now)
    assert outcome is not None
    result.uploaded, result.upload_error = outcome.ok, outcome.error
    admin = rt.settings.admin.addresses
    alert = None
    if not outcome.ok and outcome.failures >= rt.settings.schedule.failures_before_alert and not outcome.alert_sent:
        alert = upload_failing_alert(outcome.error or "", outcome.failures, outcome.streak_started, admin, tz=rt.tz)
    elif outcome.ok and outcome.alert_sent:
        alert = upload_recovered_alert(outcome.failures, outcome.streak_started, now, admin, tz=rt.tz)
    if alert is not None:
        with Session(engine) as session:
            outbox.queue(session, [alert], now, rt.settings, rt.registry)
            if not outcome.ok:
                publication.mark_alert_sent(session)
            session.commit()
        outbox.drain_outbox(engine, rt.settings, lambda: now)
    return result


# Freed pages are reused by SQLite anyway; the file is rewritten (VACUUM) only when a purge freed this much.
COMPACT_AFTER_BYTES = 32 * 1024 * 1024


def purge_old_raw_mail(rt: Runtime, now: datetime) -> int:
    """The daily retention run: clear the raw bytes of mails older than retention.raw_mail_days (the facts,
    the mail rows and the documents stay). Returns how many mails were purged."""
    from registry.privacy import compact
    from registry.retention import purge_raw_mail

    days = rt.settings.retention.raw_mail_days
    if days == 0:
        return 0
    engine = rt.engine()
    report = purge_raw_mail(engine, days, now)
    if report.purged:
        log.info("retention: purged the raw bytes of %d mails received before %s (%d bytes)", report.purged,
                 report.cutoff.date() if report.cutoff else "-", report.bytes_freed)  # fmt: skip
        if engine.dialect.name != "sqlite" or report.bytes_freed >= COMPACT_AFTER_BYTES:
            compact(engine)
    return report.purged


