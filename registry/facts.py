"""What the obligation rules read and return: plain frozen values, no database rows.

The edge (registry/queries.py) turns tables into these; the rules never see a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from registry.domain import MeetingStatus, ObligationKind, PublicationDecision, Role, State


@dataclass(frozen=True)
class MemberFact:
    name: str
    email: str
    municipality: str | None
    role: Role


@dataclass(frozen=True)
class MemberListFact:
    received_on: date  # local date the list arrived
    effective_from: date
    members: tuple[MemberFact, ...]
    period_start: date | None = None  # the period the list says it is for ("HT 2025": 1 July-31 December 2025)
    period_end: date | None = None

    def counts_for(self, year: int, window_start: date) -> bool:
        """Whether this is a list for `year` (the caller checks that it has arrived): the period it names covers
        that year; a list naming none counts from `window_start` (1 November of the year before) on."""
        if self.period_start is not None and self.period_end is not None:
            return self.period_start.year <= year <= self.period_end.year
        return self.received_on >= window_start

    def follows(self, year: int) -> bool:
        """Whether the list shows the registry followed the network in `year`: a list for 2026 sent in November
        2025 does not make 2025 a followed year."""
        if self.period_start is not None and self.period_end is not None:
            return self.period_start.year <= year <= self.period_end.year
        return self.received_on.year == year


@dataclass(frozen=True)
class MeetingFact:
    date: date
    status: MeetingStatus  # as stored: planned or cancelled ("held" is derived by meeting_status)
    announced: bool = True  # False when the meeting is known only from its minutes
    start: time | None = None
    place: str | None = None


@dataclass(frozen=True)
class MinutesFact:
    meeting_date: date
    received_on: date


@dataclass(frozen=True)
class DeliverableFact:
    key: str  # a configured deliverable key, or "commission_revision"
    received_on: date


@dataclass(frozen=True)
class PublicationFact:
    """One set of minutes of a network that publishes them, and how far it got to the public site."""

    minutes_id: int
    meeting_date: date
    received_on: date
    decision: PublicationDecision
    published_on: date | None = None  # local date of the first build that put it on the site
    note: str = ""  # why it was withheld


@dataclass(frozen=True)
class NetworkFacts:
    member_lists: tuple[MemberListFact, ...] = ()
    meetings: tuple[MeetingFact, ...] = ()
    minutes: tuple[MinutesFact, ...] = ()
    deliverables: tuple[DeliverableFact, ...] = ()
    publications: tuple[PublicationFact, ...] = ()


@dataclass(frozen=True)
class Finding:
    """The state of one obligation of one network on one day."""

    network: str
    obligation: ObligationKind
    state: State
    due: date | None
    detail: str  # Swedish, something a secretary can act on
    id: str  # stable across runs: the reminder ledger's key
    meeting_date: date | None = None
    quote: str = ""  # the sentence of the commission it comes from

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "network": self.network,
            "obligation": self.obligation.value,
            "state": self.state.value,
            "due": self.due.isoformat() if self.due else None,
            "detail": self.detail,
            "id": self.id,
        }
        if self.obligation in (ObligationKind.MINUTES, ObligationKind.PUBLICATION):
            data["meeting_date"] = self.meeting_date.isoformat() if self.meeting_date else None
        return data


def meeting_status(meeting: MeetingFact, today: date) -> MeetingStatus:
    """A planned meeting whose date has passed counts as held unless cancelled."""
    if meeting.status is MeetingStatus.CANCELLED:
        return MeetingStatus.CANCELLED
    if meeting.status is MeetingStatus.HELD or meeting.date < today:
        return MeetingStatus.HELD
    return MeetingStatus.PLANNED


def list_in_force(lists: tuple[MemberListFact, ...], on: date) -> MemberListFact | None:
    """The newest list that took effect on or before `on` (older lists stay in history)."""
    candidates = [item for item in lists if item.effective_from <= on]
    return max(candidates, key=lambda item: (item.effective_from, item.received_on), default=None)
