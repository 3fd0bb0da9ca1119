"""SQLModel tables of the registry, nothing else.

Portable SQL only (SQLite and PostgreSQL): no SQLite-only types or defaults.

Every command that reads the registry imports this module, so its classes are made cheaply: pydantic's validator
and serializer of a table are built when first used (`Table`; the ORM does not use them to load rows), and the
annotations are real types, not strings to evaluate (no `from __future__ import annotations` here).
"""

from datetime import date, datetime, time

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelConfig


class Table(SQLModel):
    """The base of the registry's tables: pydantic builds a table's schema at its first validation or dump, not
    when the module is imported."""

    model_config = SQLModelConfig(defer_build=True)


class NetworkRow(Table, table=True):
    """A network known to the registry; its obligations live in config/networks.toml."""

    __tablename__ = "network"
    key: str = Field(primary_key=True, max_length=64)
    name: str


class MunicipalityRow(Table, table=True):
    __tablename__ = "municipality"
    name: str = Field(primary_key=True, max_length=64)


class Person(Table, table=True):
    __tablename__ = "person"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True, max_length=320)  # lower case
    name: str


class InboundMail(Table, table=True):
    """Every mail the product has read, verbatim, and what became of it (the audit trail)."""

    __tablename__ = "inbound_mail"
    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(unique=True, max_length=64)  # of the raw bytes: the same mail is recorded once
    message_id: str | None = Field(default=None, index=True, max_length=998)
    folder: str = Field(max_length=255)
    uidvalidity: int = Field(default=0)
    uid: int = Field(default=0)
    raw: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))  # None once purged
    size: int = 0
    from_address: str | None = Field(default=None, max_length=320)
    from_name: str | None = None
    subject: str = ""
    body_text: str = ""  # what the mail itself says (quoted replies removed), for search
    received: datetime  # the mail's Date (or the server's INTERNALDATE), UTC
    first_seen: datetime  # when the product first read it, UTC
    status: str = Field(index=True, max_length=16)  # MailStatus
    kinds: str = ""  # comma-separated MailKind values
    network_key: str | None = Field(default=None, foreign_key="network.key", max_length=64)
    reason: str | None = None  # why it went to review, or what was decided (English)
    details: str = ""  # JSON: what was registered (for receipts and the audit trail)
    resolved_at: datetime | None = None
    resolution: str | None = None


class Document(Table, table=True):
    """An original document (attachment or pasted body), kept whole."""

    __tablename__ = "document"
    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(unique=True, max_length=64)
    filename: str
    media_type: str = Field(max_length=255)
    content: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    text: str = ""
    source_mail_id: int = Field(foreign_key="inbound_mail.id")


class MemberList(Table, table=True):
    """One member list as received; the newest received on or before a date is in force."""

    __tablename__ = "member_list"
    id: int | None = Field(default=None, primary_key=True)
    network_key: str = Field(foreign_key="network.key", index=True, max_length=64)
    effective_from: date
    received: datetime
    # The period the list says it is for ("HT 2025", "2026"); None when it names none (then: the year it counts for
    # by its arrival, see registry/rules.py).
    period_label: str | None = Field(default=None, max_length=64)
    period_start: date | None = None
    period_end: date | None = None
    source: str = "body"  # file name or "body"
    rejected_rows: str = ""  # JSON list of {row_number, text, reason}
    source_mail_id: int = Field(foreign_key="inbound_mail.id")


class Membership(Table, table=True):
    __tablename__ = "membership"
    id: int | None = Field(default=None, primary_key=True)
    member_list_id: int = Field(foreign_key="member_list.id", index=True)
    network_key: str = Field(foreign_key="network.key", index=True, max_length=64)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)  # None once anonymised
    role: str = Field(max_length=16)  # Role
    municipality: str | None = Field(default=None, max_length=64)
    valid_from: date
    valid_to: date | None = None  # the day the next list took over
    source_mail_id: int = Field(foreign_key="inbound_mail.id")


class Meeting(Table, table=True):
    __tablename__ = "meeting"
    __table_args__ = (UniqueConstraint("network_key", "calendar_uid", "recurrence", name="uq_meeting_calendar"),)
    id: int | None = Field(default=None, primary_key=True)
    network_key: str = Field(foreign_key="network.key", index=True, max_length=64)
    date: date
    start: time | None = None
    end: time | None = None
    place: str | None = None
    status: str = Field(max_length=16)  # planned or cancelled; "held" is derived (a planned date that has passed)
    announced: bool = True  # False when only minutes told us about it
    calendar_uid: str | None = Field(default=None, max_length=512)
    recurrence: str = ""  # RECURRENCE-ID of an occurrence, "" for a single event
    calendar_sequence: int | None = None
    source_mail_id: int = Field(foreign_key="inbound_mail.id")
    updated_by_mail_id: int | None = Field(default=None, foreign_key="inbound_mail.id")


class Minutes(Table, table=True):
    __tablename__ = "minutes"
    __table_args__ = (UniqueConstraint("network_key", "document_id", name="uq_minutes_document"),)
    id: int | None = Field(default=None, primary_key=True)
    network_key: str = Field(foreign_key="network.key", index=True, max_length=64)
    meeting_id: int = Field(foreign_key="meeting.id", index=True)
    meeting_date: date
    document_id: int = Field(foreign_key="document.id")
    received: datetime
    municipalities_present: str = ""  # comma-separated canonical names
    source_mail_id: int = Field(foreign_key="inbound_mail.id")


class DeliverableReceipt(Table, table=True):
    """A dated deliverable or a revised commission, as received."""

    __tablename__ = "deliverable_receipt"
    id: int | None = Field(default=None, primary_key=True)
    network_key: str = Field(foreign_key="network.key", index=True, max_length=64)
    deliverable_key: str = Field(max_length=128)  # a deliverable's key, or "commission_revision"
    received: datetime
    document_id: int | None = Field(default=None, foreign_key="document.id")
    source_mail_id: int = Field(foreign_key="inbound_mail.id")


class MailboxState(Table, table=True):
    """Incremental-sync position per folder, and the health of the last passes."""

    __tablename__ = "mailbox_state"
    folder: str = Field(primary_key=True, max_length=255)
    uidvalidity: int = 0
    last_uid: int = 0
    marked_uid: int = 0  # the highest UID whose keyword is stored on the server
    last_good_pass: datetime | None = None
    last_failure: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    alert_sent: bool = False


class OutboundMail(Table, table=True):
    """The outbox: every reminder, receipt and alert, written once per dedup key."""

    __tablename__ = "outbound_mail"
    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(unique=True, max_length=512)
    kind: str = Field(max_length=32)  # reminder, receipt, alert, summary, report
    network_key: str | None = Field(default=None, foreign_key="network.key", max_length=64)
    recipients: str  # comma-separated To
    cc: str = ""
    subject: str
    body_text: str
    body_html: str = ""
    message_id: str = Field(unique=True, max_length=998)  # fixed when the row is written
    in_reply_to: str | None = None
    state: str = Field(default="pending", index=True, max_length=16)  # pending, sent, failed
    attempts: int = 0
    next_attempt: datetime | None = None  # while 'sending': when the claim expires
    # While 'sending': the process that claimed the row (registry.lease.HOLDER, host:pid:uuid).
    claimed_by: str | None = Field(default=None, max_length=255)
    last_error: str | None = None
    created: datetime
    sent_at: datetime | None = None
    related_mail_id: int | None = Field(default=None, foreign_key="inbound_mail.id")
    # One attached file (the yearly report); None for every other kind of mail.
    attachment_name: str | None = Field(default=None, max_length=255)
    attachment_type: str | None = Field(default=None, max_length=255)  # e.g. "text/html"
    attachment: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class ReminderItem(Table, table=True):
    """The ledger: which obligation a reminder was about (one row per obligation per reminder)."""

    __tablename__ = "reminder_item"
    id: int | None = Field(default=None, primary_key=True)
    outbound_id: int = Field(foreign_key="outbound_mail.id", index=True)
    network_key: str = Field(foreign_key="network.key", index=True, max_length=64)
    obligation_id: str = Field(max_length=255)
    sent_on: date  # the planning date
    escalated: bool = False


class BouncingAddress(Table, table=True):
    __tablename__ = "bouncing_address"
    email: str = Field(primary_key=True, max_length=320)
    first_bounce: datetime
    last_bounce: datetime
    source_mail_id: int | None = Field(default=None, foreign_key="inbound_mail.id")


class RunLog(Table, table=True):
    """When each kind of run last succeeded (for `mailbot check` and monitoring)."""

    __tablename__ = "run_log"
    kind: str = Field(primary_key=True, max_length=32)  # poll, remind
    last_start: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None


class MinutesPublication(Table, table=True):
    """The way of one set of minutes to the public site (networks whose commission asks for it): a person's
    decision where approval is required, and when it was first published. No row: not yet decided."""

    __tablename__ = "minutes_publication"
    minutes_id: int = Field(primary_key=True, foreign_key="minutes.id")
    network_key: str = Field(foreign_key="network.key", index=True, max_length=64)
    decision: str = Field(max_length=16)  # PublicationDecision
    decided_at: datetime | None = None
    note: str | None = None  # why it was withheld (Swedish, shown to the admin only)
    published_at: datetime | None = None  # the first build that put it on the site, UTC
