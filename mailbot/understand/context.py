"""What the understanding of one mail takes and gives: the Context (what the registry knows) and the Understanding.

Apart from mailbot.understand.pipeline so that the main process, which makes contexts and records understandings
but reads no mail itself (the reader's workers do), does not import the readers: the MIME parser, the calendar,
document and member-list readers (about 3.5 MB and 60 ms).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from registry.domain import MailKind, MailStatus, Role

from .authentication import AuthenticationPolicy

if TYPE_CHECKING:
    from registry.config import MunicipalityIndex, Registry

    from .changes import KnownMeeting, MeetingChange
    from .periods import Period
    from .types import Attachment, CalendarEvent, MeetingDate, MemberListResult, MinutesResult


@dataclass(frozen=True)
class SenderRole:
    network: str
    role: Role


@dataclass(frozen=True)
class Context:
    """What the registry knows that the understanding of one mail needs."""

    registry: Registry
    municipalities: MunicipalityIndex
    memberships: Mapping[str, tuple[SenderRole, ...]]  # e-mail -> roles in the lists in force
    networks_with_list: frozenset[str]
    own_domain: str  # the domain of our Message-IDs
    own_networks: Mapping[str, str | None] = field(default_factory=dict)  # our Message-IDs this mail refers to
    admin_addresses: tuple[str, ...] = ()
    authorised_domains: tuple[str, ...] = ("skaraborg.se",)
    tz: ZoneInfo = ZoneInfo("Europe/Stockholm")
    authentication: AuthenticationPolicy = AuthenticationPolicy()
    # The planned meetings of each network around the mail's day (for moves and cancellations written as text).
    meetings: Mapping[str, tuple[KnownMeeting, ...]] = field(default_factory=dict)
    # Set when a person resolves a review item: their word replaces the product's doubt.
    assigned_network: str | None = None
    assigned_kinds: frozenset[MailKind] | None = None
    # Set while one headed section of a mail for several networks is read: the section's network (checked as usual).
    section_network: str | None = None


@dataclass(frozen=True)
class MinutesDocument:
    filename: str
    media_type: str
    payload: bytes
    text: str
    meeting_date: date
    result: MinutesResult


@dataclass(frozen=True)
class Understanding:
    status: MailStatus
    kinds: tuple[MailKind, ...]
    network: str | None = None
    reasons: tuple[str, ...] = ()  # English: how the product decided
    review_reason: str | None = None  # English: why a person must look
    sender: str | None = None  # the effective sender (the original author of a forward)
    member_list: MemberListResult | None = None
    meeting_dates: tuple[MeetingDate, ...] = ()
    date_problems: tuple[str, ...] = ()
    calendar_events: tuple[CalendarEvent, ...] = ()
    minutes: tuple[MinutesDocument, ...] = ()
    deliverable_key: str | None = None
    deliverable_title: str | None = None
    deliverable_document: Attachment | None = None
    bounced: tuple[str, ...] = ()
    period: Period | None = None  # what the member list (or the dates) are for: "HT 2025", "2026"
    meeting_changes: tuple[MeetingChange, ...] = ()  # moves and cancellations written as text
    # The dates of the other networks of a mail with one headed section per network ("SKIS:" … "Elevhälsa:" …),
    # each registered for its own network; this Understanding holds the first section's.
    sections: tuple[Understanding, ...] = ()
    # Days of meeting_dates whose time or place the mail changes ("blir på förmiddagen i stället, 8.30–11.45").
    replaces: tuple[date, ...] = ()
