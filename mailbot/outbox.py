"""The outbox: planned mails become rows (with the reminder ledger, in one transaction), and a sender drains them.

Never two rows for one reason (the dedup key is unique), never a mail lost once its row is committed.

Exactly-once, as far as SMTP allows it:

1. `queue` writes each mail's row and its ledger rows inside one SAVEPOINT of the caller's
   transaction; a second run, a restart or a second worker hits the unique dedup key, and only
   that mail's SAVEPOINT is rolled back. The Message-ID is fixed here, before anything is sent.
2. `drain` claims one row at a time with `UPDATE ... SET state='sending' WHERE id=? AND
   state='pending'` and commits the claim; if no row was updated another worker got there first
   (the healthchecks `sendalerts` pattern). The claim is a lease: `next_attempt` holds its expiry.
3. It sends the row's message and then commits `state='sent'`.

The remaining window: if the server accepted the mail (250 after DATA) and the worker died before
the commit of step 3, the row is still 'sending'. The claim names its process (`claimed_by`, the lease
holder id): the worker that takes the lease next puts the rows of the holder it took over from back to
'pending' at once (`take_over_sending`), any drain does so for a claimer on this machine that no longer
runs, and otherwise the claim expires (SENDING_LEASE). The row is then sent again, with the same
Message-ID and the same bytes, so the receiving systems can drop the copy. SMTP is at-least-once; outside that window nothing is sent
twice, and nothing committed is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import aiosmtplib
from sqlalchemy import Engine, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mailbot.compose import UnsafeHeader, build_message, checked_address, new_message_id, render, reply_to_address
from mailbot.remind import (
    LedgerEntry,
    Planned,
    PlannedAlert,
    PlannedReceipt,
    PlannedReminder,
    delivery_failed_alert,
)
from mailbot.settings import Settings
from registry import lease
from registry.config import Network, Registry, load_registry
from registry.models import OutboundMail, ReminderItem

log = logging.getLogger(__name__)

# How long a claimed row may stay 'sending' before another drain takes it back: far longer than one
# send can take (settings.smtp.timeout per command), so only a dead worker's rows are reclaimed.
SENDING_LEASE = timedelta(minutes=10)
# Minutes to wait after the n-th failed attempt (connection lost or 4xx); the last value repeats.
BACKOFF_MINUTES = (1, 5, 15, 60, 180, 360, 720)
# Test hook, only for tests/test_outbox.py: the process dies (like SIGKILL) right after the server
# accepted a mail and before the outbox row is marked sent, to show what the window above does.
CRASH_AFTER_SEND_ENV = "MAILBOT_TEST_CRASH_AFTER_SEND"


def utc_now() -> datetime:
    return datetime.now(UTC)


def _split(addresses: str) -> list[str]:
    return [address.strip() for address in addresses.split(",") if address.strip()]


def _tz(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.schedule.timezone)


# --- queueing -------------------------------------------------------------------------------------


def begin_outer_transaction(session: Session) -> None:
    """Make sure a real BEGIN precedes our SAVEPOINTs on SQLite.

    pysqlite's legacy transaction handling emits BEGIN only before INSERT/UPDATE/DELETE, so a
    SAVEPOINT issued first would itself open the transaction and its RELEASE would commit it: the
    caller could then no longer roll back. (Engines that emit BEGIN themselves make this a no-op.)
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    dbapi = connection.connection.dbapi_connection
    if dbapi is not None and not dbapi.in_transaction:
        connection.exec_driver_sql("BEGIN")


def _row_for(planned: Planned, message_id: str, subject: str, text: str, html: str, now: datetime) -> OutboundMail:
    receipt = isinstance(planned, PlannedReceipt)
    return OutboundMail(
        dedup_key=planned.dedup_key,
        kind=planned.kind,
        network_key=planned.network,
        recipients=",".join(planned.to),
        cc=",".join(planned.cc),
        subject=subject,
        body_text=text,
        body_html=html,
        message_id=message_id,
        in_reply_to=planned.in_reply_to if receipt else None,
        state="pending",
        attempts=0,
        next_attempt=None,
        created=now,
        related_mail_id=planned.request.mail_id if receipt else None,
    )


def add_once(
    session: Session, row: OutboundMail, settings: Settings, with_row: Callable[[OutboundMail], None] | None = None
) -> bool:
    """Add one outbox row (and what `with_row` adds beside it) in a SAVEPOINT, unless its dedup key is already
    there; False when skipped. A row that could never be sent (a bad address) is refused now. The caller has
    begun the outer transaction (begin_outer_transaction) and commits."""
    try:
        message_of(row, settings)
    except UnsafeHeader as error:
        log.error("not queued %s: %s", row.dedup_key, error)
        return False
    try:
        with session.begin_nested():  # SAVEPOINT: a duplicate undoes only this mail
            session.add(row)
            session.flush()
            if with_row is not None:
                with_row(row)
                session.flush()
    except IntegrityError:
        log.info("already queued: %s", row.dedup_key)
        return False
    return True


def queue(
    session: Session,
    planned_items: Sequence[Planned],
    now: datetime,
    settings: Settings,
    registry: Registry | None = None,
) -> list[OutboundMail]:
    """Write an outbox row (and, for reminders, its ledger rows) per planned mail; the caller commits.

    A mail whose dedup key is already there is skipped: that is how a second run, a restart or a
    second worker sends nothing twice. Returns the rows written (not the skipped ones).
    """
    if not planned_items:
        return []
    tz = _tz(settings)
    networks: dict[str, Network] | None = None
    if registry is not None:
        networks = {network.key: network for network in registry.networks}
    shared_mailbox = reply_to_address(settings.smtp.reply_to)
    begin_outer_transaction(session)
    written = []
    for planned in planned_items:
        if networks is None and not isinstance(planned, PlannedAlert):
            networks = {network.key: network for network in load_registry(settings.networks_dir()).networks}
        network = (networks or {}).get(planned.network or "")
        message_id = new_message_id(planned.kind, settings.smtp.message_id_domain)
        rendered = render(planned, network, networks=networks, tz=tz, shared_mailbox=shared_mailbox)
        row = _row_for(planned, message_id, rendered.subject, rendered.text, rendered.html, now)

        def ledger_rows(row: OutboundMail, planned: Planned = planned) -> None:
            if isinstance(planned, PlannedReminder):
                assert row.id is not None
                for finding in planned.findings:
                    session.add(ReminderItem(outbound_id=row.id, network_key=finding.network,
                                             obligation_id=finding.id, sent_on=planned.planned_on,
                                             escalated=planned.escalated))  # fmt: skip

        if not add_once(session, row, settings, ledger_rows):
            continue
        written.append(row)
    return written


def ledger(session: Session) -> list[LedgerEntry]:
    """Every obligation named in a reminder or summary that has not failed (pending, sending or sent)."""
    rows = session.exec(
        select(ReminderItem, OutboundMail.kind)
        .join(OutboundMail, col(ReminderItem.outbound_id) == col(OutboundMail.id))
        .where(OutboundMail.state != "failed")
        .order_by(col(ReminderItem.sent_on), col(ReminderItem.id))
    ).all()
    return [
        LedgerEntry(
            network=item.network_key,
            obligation_id=item.obligation_id,
            sent_on=item.sent_on,
            escalated=item.escalated,
            kind=kind,
        )
        for item, kind in rows
    ]


def recent_receipt_count(session: Session, address: str, now: datetime, window: timedelta = timedelta(hours=1)) -> int:
    """Receipts queued to `address` within `window` before `now` (for the per-sender limit)."""
    count = session.exec(
        select(func.count())
        .select_from(OutboundMail)
        .where(
            OutboundMail.kind == "receipt",
            func.lower(OutboundMail.recipients) == address.strip().lower(),
            OutboundMail.created >= now - window,
        )
    ).one()
    return int(count)


def message_of(row: OutboundMail, settings: Settings) -> EmailMessage:
    """The message of an outbox row, rebuilt identically at every attempt (same Message-ID, same Date)."""
    message = build_message(
        kind=row.kind,
        sender=settings.smtp.sender,
        to=_split(row.recipients),
        cc=_split(row.cc),
        subject=row.subject,
        text=row.body_text,
        html=row.body_html,
        message_id=row.message_id,
        reply_to=settings.smtp.reply_to,
        sent=row.created.astimezone(_tz(settings)),
        in_reply_to=row.in_reply_to,
    )
    if row.attachment is not None and row.attachment_name:
        _attach(message, row.attachment, row.attachment_name, row.attachment_type, row.message_id)
    return message


def _attach(message: EmailMessage, content: bytes, filename: str, media_type: str | None, message_id: str) -> None:
    """Add one file; the message becomes multipart/mixed with a boundary fixed by the Message-ID (same bytes
    at every attempt, like the alternative part's)."""
    if re.search(r"[\r\n\x00/\\]", filename):
        raise UnsafeHeader(f"not a file name for an attachment: {filename!r}")
    maintype, _, subtype = (media_type or "application/octet-stream").partition("/")
    # Text attachments are stored as UTF-8 (the report is Swedish); the charset lets a client show å, ä and ö.
    params = {"charset": "utf-8"} if maintype == "text" else None
    message.add_attachment(content, maintype=maintype, subtype=subtype or "octet-stream", filename=filename,
                           params=params)  # fmt: skip
    message.set_boundary("==mailbot-mixed-" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32])
    if "Content-Language" not in message:  # make_mixed moved it into the first part
        message["Content-Language"] = "sv-SE"


# --- draining -------------------------------------------------------------------------------------


@dataclass
class DrainReport:
    sent: list[int] = field(default_factory=list)  # outbox ids
    retried: list[int] = field(default_factory=list)  # back to pending, with a later next_attempt
    failed: list[int] = field(default_factory=list)  # given up (5xx, bad address, too many attempts)
    reclaimed: int = 0  # rows a dead worker left in 'sending'
    alerts: list[int] = field(default_factory=list)  # admin alerts queued about failed mails
    files: list[str] = field(default_factory=list)  # .eml written by the directory transport
    error: str | None = None  # why the drain stopped early (server unreachable, connection lost)

    def as_json(self) -> dict[str, object]:
        return asdict(self)


class TransientError(Exception):
    """Worth retrying later: connection lost, timeout, 4xx. `connection_lost` ends this drain."""

    def __init__(self, message: str, connection_lost: bool) -> None:
        super().__init__(message)
        self.connection_lost = connection_lost


class PermanentError(Exception):
    """5xx for the whole mail (every recipient, the sender or the data): sending again will not help."""


class _Transport:
    async def open(self) -> None: ...

    async def send(self, row: OutboundMail, data: bytes, envelope_from: str) -> dict[str, str]:
        """Deliver; returns the recipients refused (address -> reply) when others were accepted."""
        raise NotImplementedError

    async def close(self) -> None: ...


class _DirectoryTransport(_Transport):
    """The embedded default: each mail becomes <directory>/<id>-<kind>.eml; no server needed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.written: list[str] = []

    async def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    async def send(self, row: OutboundMail, data: bytes, envelope_from: str) -> dict[str, str]:
        target = self.directory / f"{row.id}-{row.kind}.eml"
        temporary = self.directory / f".{target.name}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)  # atomic: a reader never sees half a mail
        self.written.append(str(target))
        return {}


def _tls_context(settings: Settings) -> ssl.SSLContext:
    ca_file = settings.smtp.ca_file
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def _code_error(code: int, message: str) -> Exception:
    if code >= 500:
        return PermanentError(f"{code} {message}")
    # 421: the server is closing the connection (RFC 5321 4.2.3).
    return TransientError(f"{code} {message}", connection_lost=code == 421)


class _SmtpTransport(_Transport):
    """aiosmtplib over one connection for the whole drain: STARTTLS or implicit TLS, login, timeouts."""

    def __init__(self, settings: Settings) -> None:
        smtp = settings.smtp
        self.settings = smtp
        self.client = aiosmtplib.SMTP(
            hostname=smtp.host,
            port=smtp.port,
            use_tls=smtp.ssl,
            start_tls=smtp.starttls and not smtp.ssl,
            timeout=smtp.timeout,
            tls_context=_tls_context(settings) if (smtp.ssl or smtp.starttls) else None,
            local_hostname=smtp.message_id_domain,  # avoids a slow getfqdn() in containers
        )

    async def open(self) -> None:
        try:
            await self.client.connect()
            user = self.settings.user
            if user:
                await self.client.login(user, self.settings.resolved_password() or "")
        except aiosmtplib.SMTPAuthenticationError as error:
            # Never the password; the server's words say enough.
            raise TransientError(f"SMTP login refused for {user}: {error.code} {error.message}", True) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as error:
            raise TransientError(
                f"cannot connect to {self.settings.host}:{self.settings.port}: {error}", True
            ) from None

    async def send(self, row: OutboundMail, data: bytes, envelope_from: str) -> dict[str, str]:
        recipients = [*_split(row.recipients), *_split(row.cc)]
        try:
            refused, _reply = await self.client.sendmail(envelope_from, recipients, data)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [item.code for item in error.recipients]
            text = "; ".join(f"{item.recipient}: {item.code} {item.message}" for item in error.recipients)
            if all(code >= 500 for code in codes):
                raise PermanentError(f"every recipient refused: {text}") from None
            raise TransientError(f"recipients refused: {text}", connection_lost=False) from None
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as error:
            raise TransientError(f"connection lost: {error}", connection_lost=True) from None
        except aiosmtplib.SMTPResponseException as error:
            raise _code_error(error.code, error.message) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as error:
            raise TransientError(f"{type(error).__name__}: {error}", connection_lost=True) from None
        return {address: f"{reply.code} {reply.message}" for address, reply in refused.items()}

    async def close(self) -> None:
        if self.client.is_connected:
            try:
                await self.client.quit()
            except (aiosmtplib.SMTPException, OSError):
                self.client.close()


def _transport(settings: Settings) -> _Transport:
    if settings.smtp.directory is not None:
        return _DirectoryTransport(settings.smtp.directory)
    if not settings.smtp.host:
        raise TransientError("no SMTP server configured (smtp.host) and no smtp.directory", connection_lost=True)
    return _SmtpTransport(settings)


def _reclaim(engine: Engine, now: datetime) -> int:
    """Rows whose claim expired, or whose claimer was a process on this machine that no longer runs (a worker or
    `mailbot poll` killed mid-send), go back to pending."""
    expired = _release_claims(engine, now, (col(OutboundMail.next_attempt) <= now,))
    return expired + _release_claims_of(engine, now, lambda claimer: lease.holder_is_gone(claimer))


def take_over_sending(engine: Engine, now: datetime, previous_holder: str | None) -> int:
    """The worker that has just taken the lease sends at once what a dead holder left in 'sending': the rows
    claimed by the holder whose lease it took over (that one's lease ran out, so it is gone or stalled), and the
    rows of any claimer on this machine that no longer runs. A claim by a process that may still be sending
    (a `mailbot poll` running elsewhere) waits for its expiry (SENDING_LEASE). Every row taken over keeps its
    Message-ID and bytes (at-least-once)."""
    previous = previous_holder if previous_holder and previous_holder != lease.HOLDER else None
    return _release_claims_of(engine, now, lambda claimer: claimer == previous or lease.holder_is_gone(claimer))


def _release_claims_of(engine: Engine, now: datetime, is_dead: Callable[[str | None], bool]) -> int:
    with Session(engine) as session:
        claimers = set(session.exec(
            select(OutboundMail.claimed_by).where(col(OutboundMail.state) == "sending").distinct()
        ).all())  # fmt: skip
    dead = [claimer for claimer in claimers if claimer is not None and is_dead(claimer)]
    return _release_claims(engine, now, (col(OutboundMail.claimed_by).in_(dead),)) if dead else 0


def _release_claims(engine: Engine, now: datetime, conditions: tuple[object, ...]) -> int:
    with Session(engine) as session:
        result = session.exec(
            update(OutboundMail)
            .where(col(OutboundMail.state) == "sending", *conditions)  # type: ignore[arg-type]
            .values(state="pending", next_attempt=now, claimed_by=None)
        )
        session.commit()
        return int(result.rowcount or 0)


def _due_ids(engine: Engine, now: datetime, exclude: set[int]) -> list[int]:
    with Session(engine) as session:
        ids = session.exec(
            select(OutboundMail.id)
            .where(
                OutboundMail.state == "pending",
                or_(col(OutboundMail.next_attempt).is_(None), col(OutboundMail.next_attempt) <= now),
            )
            .order_by(col(OutboundMail.id))
        ).all()
    return [i for i in ids if i is not None and i not in exclude]


def _claim(engine: Engine, outbound_id: int, now: datetime, claimer: str | None = None) -> OutboundMail | None:
    """Atomically take one pending row for `claimer` (this process by default); None if another worker got there
    first."""
    with Session(engine, expire_on_commit=False) as session:
        result = session.exec(
            update(OutboundMail)
            .where(
                col(OutboundMail.id) == outbound_id,
                col(OutboundMail.state) == "pending",
                or_(col(OutboundMail.next_attempt).is_(None), col(OutboundMail.next_attempt) <= now),
            )
            .values(state="sending", attempts=col(OutboundMail.attempts) + 1, next_attempt=now + SENDING_LEASE,
                    claimed_by=claimer or lease.HOLDER)  # fmt: skip
        )
        if result.rowcount != 1:
            session.rollback()
            return None  # another worker got there first
        session.commit()
        return session.get(OutboundMail, outbound_id)


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 1, 5, 15, 60 minutes, then hours."""
    index = min(max(attempts, 1), len(BACKOFF_MINUTES)) - 1
    return timedelta(minutes=BACKOFF_MINUTES[index])


def _finish(
    engine: Engine,
    row: OutboundMail,
    now: datetime,
    settings: Settings,
    report: DrainReport,
    *,
    state: str,
    error: str | None,
    alert: bool,
) -> None:
    """Record the outcome of one attempt; a failure worth telling the admin queues the alert in the same commit."""
    values: dict[str, object] = {"state": state, "last_error": error, "claimed_by": None}
    if state == "sent":
        values.update(sent_at=now, next_attempt=None)
    elif state == "pending":
        values.update(next_attempt=now + backoff(row.attempts))
    else:
        values.update(next_attempt=None)
    with Session(engine, expire_on_commit=False) as session:
        session.exec(
            update(OutboundMail)
            .where(col(OutboundMail.id) == row.id, col(OutboundMail.state) == "sending")
            .values(**values)
        )
        # No alert about an alert: a broken admin address must not feed a loop.
        if alert and error and row.kind != "alert" and row.id is not None:
            planned = delivery_failed_alert(
                row.id, row.kind, ", ".join(_split(row.recipients) + _split(row.cc)), row.subject, error,
                settings.admin.addresses,
            )  # fmt: skip
            for written in queue(session, [planned], now, settings):
                if written.id is not None:
                    report.alerts.append(written.id)
        session.commit()


def _crash_hook() -> None:
    if os.environ.get(CRASH_AFTER_SEND_ENV) == "1":
        os._exit(137)  # like SIGKILL: no cleanup, no commit


def _envelope_from(settings: Settings) -> str:
    return str(checked_address(settings.smtp.sender).addr_spec)


async def drain(
    engine: Engine,
    settings: Settings,
    now_fn: Callable[[], datetime] = utc_now,
) -> DrainReport:
    """Send every due outbox row over one connection (or into smtp.directory); see the module docstring.

    1. Reclaim rows whose 'sending' lease expired (their worker died).
    2. If anything is due, connect (and log in) once; if that fails, nothing is claimed or counted.
    3. Per row: claim it, send it, commit the outcome: sent; pending again with a later
       next_attempt (connection lost, 4xx); failed (5xx, or max_attempts reached), with an alert
       to the admin queued in the same commit.
    4. A lost connection ends the drain; the next one carries on.
    """
    report = DrainReport(reclaimed=_reclaim(engine, now_fn()))
    attempted: set[int] = set()
    transport: _Transport | None = None
    envelope_from = _envelope_from(settings)
    try:
        while True:
            due = _due_ids(engine, now_fn(), attempted)
            if not due:
                break
            if transport is None:
                candidate = _transport(settings)
                await candidate.open()
                transport = candidate
            for outbound_id in due:
                attempted.add(outbound_id)
                now = now_fn()
                row = _claim(engine, outbound_id, now)
                if row is None:
                    continue
                try:
                    data = message_of(row, settings).as_bytes()
                except UnsafeHeader as error:
                    _finish(engine, row, now, settings, report, state="failed", error=str(error), alert=True)
                    report.failed.append(outbound_id)
                    continue
                try:
                    refused = await transport.send(row, data, envelope_from)
                except PermanentError as error:
                    log.warning("outbox %s (%s) failed for good: %s", row.id, row.dedup_key, error)
                    _finish(engine, row, now, settings, report, state="failed", error=str(error), alert=True)
                    report.failed.append(outbound_id)
                    continue
                except TransientError as error:
                    give_up = row.attempts >= settings.smtp.max_attempts
                    log.warning("outbox %s (%s) attempt %d failed: %s", row.id, row.dedup_key, row.attempts, error)
                    state = "failed" if give_up else "pending"
                    _finish(engine, row, now, settings, report, state=state, error=str(error), alert=give_up)
                    (report.failed if give_up else report.retried).append(outbound_id)
                    if error.connection_lost:
                        report.error = str(error)
                        return report
                    continue
                _crash_hook()
                partial = "; ".join(f"{address}: {reply}" for address, reply in refused.items()) or None
                if partial:
                    partial = f"refused by the server for some recipients: {partial}"
                _finish(engine, row, now_fn(), settings, report, state="sent", error=partial, alert=bool(partial))
                report.sent.append(outbound_id)
    except TransientError as error:  # could not connect or log in: nothing was claimed
        log.warning("outbox not drained: %s", error)
        report.error = str(error)
    finally:
        if transport is not None:
            if isinstance(transport, _DirectoryTransport):
                report.files.extend(transport.written)
            await transport.close()
    return report


def drain_outbox(
    engine: Engine,
    settings: Settings,
    now_fn: Callable[[], datetime] = utc_now,
) -> DrainReport:
    """`drain` for synchronous callers (the CLI, the scheduler's thread)."""
    return asyncio.run(drain(engine, settings, now_fn))
