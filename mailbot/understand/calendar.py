"""Calendar invitations (iCalendar RFC 5545, iTIP RFC 5546) read into CalendarEvents in one time zone.

Pure: never raises on bad input (it reports problems in Swedish instead), never reads the clock, never does I/O.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta, tzinfo
from itertools import chain
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr
from icalendar import Calendar, Component, vBroken, vRecur

from mailbot.understand.types import CalendarEvent, CalendarResult

# Outlook writes Windows zone names in TZID (CLDR windowsZones.xml, "001" territory). icalendar resolves
# these when a VTIMEZONE block is present; this table covers invitations that leave the block out.
_WINDOWS_ZONES = {
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "Romance Standard Time": "Europe/Paris",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "FLE Standard Time": "Europe/Helsinki",
    "E. Europe Standard Time": "Europe/Chisinau",
    "GTB Standard Time": "Europe/Bucharest",
    "Russian Standard Time": "Europe/Moscow",
    "Turkey Standard Time": "Europe/Istanbul",
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "Pacific Standard Time": "America/Los_Angeles",
}
# Some Outlook versions put the display name in TZID: "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna".
_DISPLAY_NAME_CITIES = {
    "Stockholm": "Europe/Stockholm",
    "Brussels": "Europe/Paris",
    "Sarajevo": "Europe/Warsaw",
    "Belgrade": "Europe/Budapest",
    "Helsinki": "Europe/Helsinki",
    "Dublin": "Europe/London",
}

_MAX_OCCURRENCES = 60
_MAX_YEARS_AHEAD = 2
# Generation runs this far past the two-year horizon, only to notice that the series goes on.
_HORIZON_OVERRUN = timedelta(days=400)

# 29 days for February: leap years have the date.
_DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}

_Moment = datetime | date  # as written: aware in its own zone (or floating in `tz`), or an all-day date


def parse_calendar(data: bytes, tz: ZoneInfo) -> CalendarResult:
    """Every VEVENT of an invitation as a CalendarEvent in `tz`, recurring meetings expanded."""
    unreadable = CalendarResult(events=(), problems=("Kalenderinbjudan kunde inte läsas (inte i iCalendar-format)",))
    try:
        calendars = Calendar.from_ical(_as_text(data), multiple=True)
    # icalendar 7 raises AttributeError, not ValueError, on a VTIMEZONE with broken nesting.
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        return unreadable
    if not calendars:
        return unreadable
    problems: list[str] = []
    components = [(_method_of(calendar), component) for calendar in calendars for component in calendar.walk("VEVENT")]
    if not components:
        problems.append("Kalenderinbjudan innehåller inget möte (VEVENT saknas)")

    # A VEVENT with RECURRENCE-ID replaces that one occurrence of its series (RFC 5545, 3.8.4.4).
    replaced: set[tuple[str, datetime]] = set()
    for _, component in components:
        recurrence_id = _moment(component.get("RECURRENCE-ID"), tz, [])
        if recurrence_id is not None:
            replaced.add((str(component.get("UID", "")).strip(), _in_zone(recurrence_id, tz)))

    events: list[CalendarEvent] = []
    for method, component in components:
        events.extend(_events_of(component, method, tz, replaced, problems))
    events.sort(key=lambda event: (event.start, event.uid))
    return CalendarResult(events=tuple(events), problems=tuple(dict.fromkeys(problems)))


def _as_text(data: bytes) -> str:
    # Older Outlook exports are Windows-1252 although RFC 5545 requires UTF-8.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _method_of(calendar: Component) -> str:
    method = str(calendar.get("METHOD", "")).strip().upper()
    return method or "PUBLISH"


def _events_of(
    component: Component, method: str, tz: ZoneInfo, replaced: set[tuple[str, datetime]], problems: list[str]
) -> list[CalendarEvent]:
    summary = str(component.get("SUMMARY", "")).strip()
    label = f"'{summary}'" if summary else "utan rubrik"
    uid = str(component.get("UID", "")).strip()
    if not uid:
        problems.append(f"Mötet {label} saknar UID och kunde inte läsas in")
        return []
    own_start = _moment(component.get("DTSTART"), tz, problems)
    if own_start is None:
        problems.append(f"Mötet {label} saknar en läsbar starttid (DTSTART) och kunde inte läsas in")
        return []

    start = _in_zone(own_start, tz)
    own_end = _moment(component.get("DTEND"), tz, problems)
    end = _in_zone(own_end, tz) if own_end is not None else None
    duration = component.get("DURATION")
    if end is None and not isinstance(duration, vBroken) and isinstance(getattr(duration, "dt", None), timedelta):
        end = start + duration.dt
    own_recurrence_id = _moment(component.get("RECURRENCE-ID"), tz, problems)
    location = str(component.get("LOCATION", "")).strip() or None
    status = str(component.get("STATUS", "")).strip().upper()
    event = CalendarEvent(
        uid=uid,
        sequence=_sequence(component.get("SEQUENCE")),
        method=method,
        cancelled=method == "CANCEL" or status == "CANCELLED",
        start=start,
        end=end,
        summary=summary,
        location=location,
        recurrence_id=_in_zone(own_recurrence_id, tz) if own_recurrence_id is not None else None,
    )
    if component.get("RRULE") is None or event.recurrence_id is not None:
        return [event]
    return _occurrences(component, event, own_start, tz, replaced, problems, label)


def _sequence(value: Any) -> int:
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _moment(prop: Any, tz: ZoneInfo, problems: list[str]) -> _Moment | None:
    """A DTSTART-like property as written: aware in its own zone, or a date for all-day events."""
    # icalendar keeps a value it could not parse as vBroken, which raises on `.dt`.
    if prop is None or isinstance(prop, vBroken):
        return None
    value = getattr(prop, "dt", None)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_zone_named(prop.params.get("TZID"), tz, problems))
        return value
    if isinstance(value, date):
        return value
    return None


def _zone_named(tzid: str | None, tz: ZoneInfo, problems: list[str]) -> tzinfo:
    """The zone for a TZID icalendar left unresolved; no TZID means floating time, read in `tz`."""
    if not tzid:
        return tz
    name = tzid.strip().strip('"')
    if name in _WINDOWS_ZONES:
        return ZoneInfo(_WINDOWS_ZONES[name])
    # "/mozilla.org/20050126_1/Europe/Stockholm" and other prefixed IANA names end in the IANA name.
    parts = name.strip("/").split("/")
    for candidate in (name, "/".join(parts[-2:])):
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    for city, zone in _DISPLAY_NAME_CITIES.items():
        if city in name:
            return ZoneInfo(zone)
    problems.append(f"Okänd tidszon '{name}': tiden lästes som {tz.key}")
    return tz


def _in_zone(moment: _Moment, tz: ZoneInfo) -> datetime:
    if isinstance(moment, datetime):
        return moment.astimezone(tz)
    return datetime.combine(moment, time(0), tzinfo=tz)


def _occurrences(
    component: Component,
    first: CalendarEvent,
    own_start: _Moment,
    tz: ZoneInfo,
    replaced: set[tuple[str, datetime]],
    problems: list[str],
    label: str,
) -> list[CalendarEvent]:
    """A recurring meeting as one event per occurrence, at most 60 and at most two years ahead."""
    first_only = [replace(first, recurrence_id=first.start)]
    unreadable = f"Upprepningen av mötet {label} kunde inte läsas; bara första tillfället togs med"
    rule = component.get("RRULE")
    if isinstance(rule, list):
        rule = rule[0]
    parts = {} if isinstance(rule, vBroken) else dict(rule)
    if not _is_meeting_rule(parts):
        problems.append(unreadable)
        return first_only
    count = parts.pop("COUNT", [None])[0]
    if count is not None:
        count = max(1, int(count))  # DTSTART is an occurrence even when COUNT says none
    until = parts.pop("UNTIL", [None])[0]
    # Expanding in the meeting's own zone keeps 09:00 at 09:00 across a DST change.
    series_start = own_start if isinstance(own_start, datetime) else datetime.combine(own_start, time(0))
    horizon = _years_after(series_start, _MAX_YEARS_AHEAD)
    excluded = _excluded(component, tz, problems)
    duration = first.end - first.start if first.end is not None else None
    events: list[CalendarEvent] = []
    capped = False
    try:
        rule_text = vRecur(parts).to_ical().decode()
        series = rrulestr(rule_text, dtstart=series_start).replace(until=horizon + _HORIZON_OVERRUN, count=None)
        # DTSTART is always the first occurrence (RFC 5545, 3.8.5.3), even where the rule would skip it.
        occurrences = chain([series_start], (occurrence for occurrence in series if occurrence != series_start))
        for index, occurrence in enumerate(occurrences):
            if (count is not None and index >= count) or _is_after(occurrence, until):
                break
            if occurrence > horizon or len(events) == _MAX_OCCURRENCES:
                capped = True
                break
            start = occurrence.astimezone(tz) if occurrence.tzinfo else datetime.combine(occurrence.date(), time(0), tz)
            if start in excluded or occurrence.date() in excluded or (first.uid, start) in replaced:
                continue
            end = start + duration if duration is not None else None
            events.append(replace(first, start=start, end=end, recurrence_id=start))
    except (ValueError, TypeError):  # dateutil finds some impossible rules only while expanding
        problems.append(unreadable)
        return first_only
    if capped:
        problems.append(
            f"Mötet {label} upprepas längre än som lästes in: bara de {len(events)} första tillfällena "
            f"inom {_MAX_YEARS_AHEAD} år togs med"
        )
    return events


def _is_meeting_rule(parts: dict[str, list[Any]]) -> bool:
    """Whether an RRULE is one a meeting series uses and that is sure to produce dates.

    dateutil only checks UNTIL on the dates it produces, so a rule that never produces one
    ("30 February") runs to year 9999; only the forms Outlook writes get through.
    """
    frequency = [str(value).upper() for value in parts.get("FREQ", [])]
    if frequency not in (["DAILY"], ["WEEKLY"], ["MONTHLY"], ["YEARLY"]):
        return False
    if parts.keys() - {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "WKST"}:
        return False
    try:
        months = [int(month) for month in parts.get("BYMONTH", range(1, 13))]
        month_days = [int(day) for day in parts.get("BYMONTHDAY", [])]
        positions = [int(position) for position in parts.get("BYSETPOS", [])]
        int(parts.get("COUNT", [0])[0])
        if int(parts.get("INTERVAL", [1])[0]) < 1:  # dateutil loops for ever on INTERVAL=0
            return False
        weekday_positions = [int(str(day)[:-2] or 0) for day in parts.get("BYDAY", [])]
    except ValueError:
        return False
    longest_month = max((_DAYS_IN_MONTH.get(month, 0) for month in months), default=0)
    if longest_month == 0 or any(not 1 <= abs(day) <= longest_month for day in month_days):
        return False
    if any(weekday_positions + positions) and (frequency[0] not in ("MONTHLY", "YEARLY") or month_days):
        return False
    if positions and (month_days or not parts.get("BYDAY") or any(not 1 <= abs(p) <= 4 for p in positions)):
        return False
    return all(abs(position) <= 5 for position in weekday_positions)


def _excluded(component: Component, tz: ZoneInfo, problems: list[str]) -> set[datetime | date]:
    """EXDATE values: instants in `tz`, or dates for all-day exclusions."""
    exdates = component.get("EXDATE")
    if exdates is None:
        return set()
    excluded: set[datetime | date] = set()
    for exdate in exdates if isinstance(exdates, list) else [exdates]:
        if isinstance(exdate, vBroken):
            problems.append("Ett undantaget datum (EXDATE) kunde inte läsas och hoppades över")
            continue
        for value in getattr(exdate, "dts", []):
            moment = _moment(value, tz, problems)
            if isinstance(moment, datetime):
                excluded.add(moment.astimezone(tz))
            elif moment is not None:
                excluded.add(moment)
    return excluded


def _is_after(occurrence: datetime, until: Any) -> bool:
    if until is None:
        return False
    if isinstance(until, datetime):
        if until.tzinfo is None or occurrence.tzinfo is None:
            return occurrence.replace(tzinfo=None) > until.replace(tzinfo=None)
        return occurrence > until
    return occurrence.date() > until


def _years_after(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)
