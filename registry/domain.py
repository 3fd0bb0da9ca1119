"""Closed sets of the domain (roles, states, kinds) shared by the registry and the worker.

Pure values only: no I/O, no clock.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CHAIR = "chair"
    SECRETARY = "secretary"
    PRESIDIUM = "presidium"
    MEMBER = "member"
    SCHOOL_CHIEF = "school_chief"

    @property
    def is_presidium(self) -> bool:
        return self in (Role.CHAIR, Role.SECRETARY, Role.PRESIDIUM)


class MeetingStatus(StrEnum):
    PLANNED = "planned"
    HELD = "held"
    CANCELLED = "cancelled"


class ObligationKind(StrEnum):
    MEMBER_LIST = "member_list"
    MEETING_DATES = "meeting_dates"
    MEETING_COUNT = "meeting_count"
    MEETING_WEEKDAY = "meeting_weekday"
    MINUTES = "minutes"
    REPRESENTATION = "representation"
    COMMISSION_REVISION = "commission_revision"
    DELIVERABLE = "deliverable"
    PUBLICATION = "publication"


class PublicationDecision(StrEnum):
    """Where a set of minutes of a publishing network stands on its way to the public site."""

    PENDING = "pending"  # waits for a person's approval
    APPROVED = "approved"  # a person approved it: published with the next build
    WITHHELD = "withheld"  # a person decided it is not to be published (with a note)
    AUTO = "auto"  # the network publishes without approval


class State(StrEnum):
    OK = "ok"
    OPEN = "open"  # not yet due
    OVERDUE = "overdue"
    AT_RISK = "at_risk"
    BREACH = "breach"


class MailStatus(StrEnum):
    REGISTERED = "registered"
    REVIEW = "review"
    IGNORED = "ignored"


class MailKind(StrEnum):
    MEMBER_LIST = "member_list"
    MEETING_DATES = "meeting_dates"
    MEETING_INVITE = "meeting_invite"
    MEETING_CANCEL = "meeting_cancel"
    MINUTES = "minutes"
    DELIVERABLE = "deliverable"
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BULK = "bulk"
    OTHER = "other"


class Sender(StrEnum):
    """Who a commission makes responsible for sending the member list and the dates."""

    PRESIDIUM = "presidium"
    SECRETARY = "secretary"
