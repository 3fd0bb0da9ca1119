"""The meetings as an iCalendar feed (RFC 5545) that Outlook and Thunderbird can subscribe to.

Read-only; `now` (for DTSTAMP) is passed in by the caller.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from registry.config import Registry
from registry.domain import MeetingStatus
from registry.models import Meeting

if TYPE_CHECKING:
    from icalendar import Calendar, Event

UID_DOMAIN = "mailbot.skaraborg.se"
PRODID = "-//Utbildning Skaraborg//mailbot registry//SV"
TIMEZONE = "Europe/Stockholm"


def meeting_uid(meeting: Meeting) -> str:
    """The organiser's UID when the meeting came from an invitation (one event, not an occurrence), else ours."""
    if meeting.calendar_uid and not meeting.recurrence:
        return meeting.calendar_uid
    return f"meeting-{meeting.id}@{UID_DOMAIN}"


def meeting_event(meeting: Meeting, network_name: str, tz: ZoneInfo, stamp: datetime) -> Event:
    from icalendar import Event  # here: every `registry` command would pay for importing it

    event = Event()
    event.add("uid", meeting_uid(meeting))
    event.add("dtstamp", stamp)
    event.add("summary", f"{network_name} – nätverksträff")
    if meeting.start is None:
        event.add("dtstart", meeting.date)
        event.add("dtend", meeting.date + timedelta(days=1))
    else:
        start = datetime.combine(meeting.date, meeting.start, tzinfo=tz)
        event.add("dtstart", start)
        if meeting.end is not None and meeting.end > meeting.start:
            event.add("dtend", datetime.combine(meeting.date, meeting.end, tzinfo=tz))
    if meeting.place:
        event.add("location", meeting.place)
    cancelled = meeting.status == MeetingStatus.CANCELLED.value
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    if meeting.calendar_sequence is not None:
        event.add("sequence", meeting.calendar_sequence)
    event.add("categories", [meeting.network_key])
    return event


def calendar(session: Session, registry: Registry, now: datetime, network_key: str | None = None) -> Calendar:
    """Every planned, held and cancelled meeting (of one network, or all) as one VCALENDAR."""
    from icalendar import Calendar

    tz = ZoneInfo(TIMEZONE)
    names = {n.key: n.name for n in registry.networks}
    query = select(Meeting).order_by(col(Meeting.date), col(Meeting.id))
    if network_key is not None:
        query = query.where(Meeting.network_key == network_key)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    title = "Nätverksträffar" + (f" – {names.get(network_key, network_key)}" if network_key else "")
    cal.add("x-wr-calname", title)
    cal.add("x-wr-timezone", TIMEZONE)
    stamp = now.astimezone(ZoneInfo("UTC")).replace(microsecond=0)
    for meeting in session.exec(query).all():
        cal.add_component(meeting_event(meeting, names.get(meeting.network_key, meeting.network_key), tz, stamp))
    cal.add_missing_timezones()
    return cal


def calendar_bytes(session: Session, registry: Registry, now: datetime, network_key: str | None = None) -> bytes:
    return calendar(session, registry, now, network_key).to_ical()


def count_events(cal: Calendar) -> int:
    return sum(1 for component in cal.walk("VEVENT"))


__all__ = ["calendar", "calendar_bytes", "count_events", "meeting_uid"]
