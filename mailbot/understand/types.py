"""The typed values that flow through the understanding of a mail.

Frozen dataclasses only; every module of `mailbot.understand` returns these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time

from registry.domain import Role


@dataclass(frozen=True)
class Attachment:
    """One file found in a mail (also inside winmail.dat or an attached message/rfc822)."""

    filename: str | None  # decoded (RFC 2047 / RFC 2231), None when the part has no name
    content_type: str  # lower case, e.g. "application/pdf"
    payload: bytes


@dataclass(frozen=True)
class ForwardedFrom:
    """The original sender block of a forwarded mail ("Från:/Skickat:/Till:/Ämne:")."""

    sender_name: str | None
    sender_email: str | None  # lower case
    sent: datetime | None  # aware when a zone is known, else naive local time
    subject: str | None


@dataclass(frozen=True)
class ParsedMail:
    """A decoded mail. `body_text` holds only what this mail says (quoted replies removed);
    for a forward, the forwarded text is part of `body_text` and `forwarded` names its author."""

    message_id: str | None  # without angle brackets
    in_reply_to: str | None  # without angle brackets
    references: tuple[str, ...]
    subject: str
    sender_name: str | None
    sender_email: str | None  # lower case
    to: tuple[str, ...]  # lower-case addresses
    date: datetime | None  # aware
    headers: tuple[tuple[str, str], ...]  # (lower-case name, decoded value), in order
    body_text: str
    quoted_text: str = ""
    attachments: tuple[Attachment, ...] = ()
    calendar_parts: tuple[bytes, ...] = ()  # text/calendar parts and .ics files, raw
    attached_mails: tuple[ParsedMail, ...] = ()
    forwarded: ForwardedFrom | None = None
    is_delivery_report: bool = False  # multipart/report (RFC 3464 DSN)
    bounced_recipients: tuple[str, ...] = ()  # Final-Recipient of a DSN, lower case
    defects: tuple[str, ...] = ()  # what could not be decoded, in English

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class MeetingDate:
    """One meeting date read from free text or a document."""

    date: date
    start: time | None = None
    end: time | None = None
    place: str | None = None
    source_text: str = ""  # the line it was read from


@dataclass(frozen=True)
class DateParseResult:
    dates: tuple[MeetingDate, ...]
    problems: tuple[str, ...] = ()  # in Swedish: shown in receipts and review reasons


@dataclass(frozen=True)
class CalendarEvent:
    """One VEVENT of an invitation (RFC 5545 / iTIP RFC 5546)."""

    uid: str
    sequence: int
    method: str  # REQUEST, CANCEL, PUBLISH (upper case)
    cancelled: bool  # METHOD:CANCEL or STATUS:CANCELLED
    start: datetime  # aware, converted to the requested zone
    end: datetime | None
    summary: str
    location: str | None
    recurrence_id: datetime | None = None


@dataclass(frozen=True)
class CalendarResult:
    events: tuple[CalendarEvent, ...]
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemberRow:
    name: str
    email: str  # normalised by email-validator, lower case
    municipality: str | None  # canonical name or None
    role: Role


@dataclass(frozen=True)
class RejectedRow:
    row_number: int  # 1-based, in its source (sheet row, table row, body line)
    text: str  # the row as read, cells joined with " | "
    reason: str  # Swedish, e.g. "ogiltig e-postadress 'anna.svensson@'"


@dataclass(frozen=True)
class MemberListResult:
    members: tuple[MemberRow, ...]
    rejected: tuple[RejectedRow, ...] = ()
    source: str = "body"  # file name, or "body"


@dataclass(frozen=True)
class MinutesResult:
    meeting_date: date | None  # None when no date could be read
    date_source: str | None  # "subject", "filename", "heading", "body"
    municipalities_present: tuple[str, ...] = ()  # canonical names, sorted
    people_present: tuple[str, ...] = ()
    text: str = ""
    problems: tuple[str, ...] = field(default_factory=tuple)
