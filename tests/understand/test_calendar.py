"""Calendar invitations as Outlook and other clients send them (RFC 5545 / RFC 5546)."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Event

from mailbot.understand.calendar import parse_calendar

STOCKHOLM = ZoneInfo("Europe/Stockholm")

# Outlook's own time zone block for Swedish users: no IANA name anywhere.
W_EUROPE_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
"""


def outlook_invitation(
    *,
    method: str = "REQUEST",
    uid: str = "040000008200E00074C5B7101A82E00800000000A1B2C3D4",
    start: str = "20250314T090000",
    end: str = "20250314T120000",
    sequence: int = 0,
    status: str = "CONFIRMED",
    extra: str = "",
    with_vtimezone: bool = True,
) -> bytes:
    """An invitation in the shape Exchange 2010 / Outlook sends, CRLF line ends and all."""
    text = (
        "BEGIN:VCALENDAR\n"
        f"METHOD:{method}\n"
        "PRODID:Microsoft Exchange Server 2010\n"
        "VERSION:2.0\n" + (W_EUROPE_VTIMEZONE if with_vtimezone else "") + "BEGIN:VEVENT\n"
        'ORGANIZER;CN="Anna Svensson":mailto:anna.svensson@skovde.se\n'
        'ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN="Utbildning Skaraborg":\n'
        " mailto:utbildning@skaraborg.se\n"
        "DESCRIPTION;LANGUAGE=sv-SE:Hej!\\nVälkomna till höstens första träff.\\n\n"
        f"UID:{uid}\n"
        "SUMMARY;LANGUAGE=sv-SE:SKIS nätverksträff\n"
        f"DTSTART;TZID=W. Europe Standard Time:{start}\n"
        f"DTEND;TZID=W. Europe Standard Time:{end}\n"
        "CLASS:PUBLIC\n"
        "PRIORITY:5\n"
        "DTSTAMP:20250301T101500Z\n"
        "TRANSP:OPAQUE\n"
        f"STATUS:{status}\n"
        f"SEQUENCE:{sequence}\n"
        "LOCATION;LANGUAGE=sv-SE:Stadshuset\\, Skövde\n" + extra + "X-MICROSOFT-CDO-APPT-SEQUENCE:0\n"
        "X-MICROSOFT-CDO-OWNERAPPTID:2123456789\n"
        "X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE\n"
        "X-MICROSOFT-CDO-INTENDEDSTATUS:BUSY\n"
        "X-MICROSOFT-CDO-ALLDAYEVENT:FALSE\n"
        "X-MICROSOFT-CDO-IMPORTANCE:1\n"
        "X-MICROSOFT-CDO-INSTTYPE:0\n"
        "X-MICROSOFT-DISALLOW-COUNTER:FALSE\n"
        "BEGIN:VALARM\n"
        "DESCRIPTION:REMINDER\n"
        "TRIGGER;RELATED=START:-PT15M\n"
        "ACTION:DISPLAY\n"
        "END:VALARM\n"
        "END:VEVENT\n"
        "END:VCALENDAR\n"
    )
    return text.replace("\n", "\r\n").encode("utf-8")


def minimal_calendar(*events: str, method: str | None = None) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//mailbot//SV"]
    if method:
        lines.append(f"METHOD:{method}")
    for event in events:
        lines += ["BEGIN:VEVENT", *event.strip().splitlines(), "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=STOCKHOLM)


def test_outlook_request_is_read_with_place_and_times() -> None:
    result = parse_calendar(outlook_invitation(), STOCKHOLM)

    assert result.problems == ()
    [event] = result.events
    assert event.uid == "040000008200E00074C5B7101A82E00800000000A1B2C3D4"
    assert event.sequence == 0
    assert event.method == "REQUEST"
    assert event.cancelled is False
    assert event.start == at(2025, 3, 14, 9)
    assert event.end == at(2025, 3, 14, 12)
    assert event.summary == "SKIS nätverksträff"
    assert event.location == "Stadshuset, Skövde"
    assert event.recurrence_id is None


def test_times_come_out_in_the_requested_zone() -> None:
    [event] = parse_calendar(outlook_invitation(), STOCKHOLM).events

    assert event.start.tzinfo == STOCKHOLM
    assert event.start.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize("with_vtimezone", [True, False], ids=["vtimezone", "windows-name-only"])
@pytest.mark.parametrize(
    ("day", "offset_hours"),
    [("20250328", 1), ("20250331", 2), ("20251024", 2), ("20251027", 1)],
    ids=["before-spring-dst", "after-spring-dst", "before-autumn-dst", "after-autumn-dst"],
)
def test_nine_oclock_stays_nine_oclock_across_daylight_saving(
    with_vtimezone: bool, day: str, offset_hours: int
) -> None:
    data = outlook_invitation(start=f"{day}T090000", end=f"{day}T120000", with_vtimezone=with_vtimezone)

    [event] = parse_calendar(data, STOCKHOLM).events

    assert (event.start.hour, event.start.minute) == (9, 0)
    assert event.start.utcoffset() == timedelta(hours=offset_hours)


# icalendar warns when it strips a vendor prefix from a TZID; that guess is the one we want.
@pytest.mark.filterwarnings("ignore::icalendar.GloballyUniqueTZIDGuessed")
@pytest.mark.parametrize(
    ("tzid", "stockholm_hour"),
    [
        ("W. Europe Standard Time", 9),
        ("Central Europe Standard Time", 9),
        ("Central European Standard Time", 9),
        ("Romance Standard Time", 9),
        ("GMT Standard Time", 10),
        ("FLE Standard Time", 8),
        ("Europe/Stockholm", 9),
        ("Europe/Helsinki", 8),
        ("/mozilla.org/20050126_1/Europe/Stockholm", 9),
        ('"(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"', 9),
    ],
)
def test_time_zone_names_without_a_vtimezone_block(tzid: str, stockholm_hour: int) -> None:
    data = minimal_calendar(f"UID:tz-1\nSUMMARY:Träff\nDTSTART;TZID={tzid}:20250314T090000")

    result = parse_calendar(data, STOCKHOLM)

    assert result.problems == ()
    assert result.events[0].start == at(2025, 3, 14, stockholm_hour)


def test_unknown_time_zone_is_read_as_local_time_with_a_problem() -> None:
    data = minimal_calendar("UID:tz-2\nSUMMARY:Träff\nDTSTART;TZID=Skaraborg Time:20250314T090000")

    result = parse_calendar(data, STOCKHOLM)

    assert result.events[0].start == at(2025, 3, 14, 9)
    assert result.problems == ("Okänd tidszon 'Skaraborg Time': tiden lästes som Europe/Stockholm",)


@pytest.mark.parametrize(
    ("dtstart", "expected"),
    [
        ("DTSTART:20250314T080000Z", at(2025, 3, 14, 9)),
        ("DTSTART:20250912T070000Z", at(2025, 9, 12, 9)),
        ("DTSTART:20250314T090000", at(2025, 3, 14, 9)),
        ("DTSTART;VALUE=DATE:20250314", at(2025, 3, 14, 0)),
    ],
    ids=["utc-winter", "utc-summer", "floating", "all-day"],
)
def test_utc_floating_and_all_day_starts(dtstart: str, expected: datetime) -> None:
    [event] = parse_calendar(minimal_calendar(f"UID:s-1\nSUMMARY:Träff\n{dtstart}"), STOCKHOLM).events

    assert event.start == expected
    assert event.start.tzinfo == STOCKHOLM


def test_all_day_event_ends_at_midnight_after_it() -> None:
    data = minimal_calendar("UID:d-1\nSUMMARY:Studiedag\nDTSTART;VALUE=DATE:20250314\nDTEND;VALUE=DATE:20250315")

    [event] = parse_calendar(data, STOCKHOLM).events

    assert (event.start, event.end) == (at(2025, 3, 14), at(2025, 3, 15))


def test_duration_gives_the_end() -> None:
    data = minimal_calendar("UID:d-2\nSUMMARY:Träff\nDTSTART:20250314T080000Z\nDURATION:PT3H")

    [event] = parse_calendar(data, STOCKHOLM).events

    assert event.end == at(2025, 3, 14, 12)


def test_another_requested_zone_converts_the_times() -> None:
    [event] = parse_calendar(outlook_invitation(), ZoneInfo("UTC")).events

    assert event.start == datetime(2025, 3, 14, 8, tzinfo=ZoneInfo("UTC"))


def test_calendar_without_method_is_a_publish() -> None:
    result = parse_calendar(minimal_calendar("UID:p-1\nDTSTART:20250314T080000Z"), STOCKHOLM)

    [event] = result.events
    assert (event.method, event.sequence, event.summary, event.location, event.end) == ("PUBLISH", 0, "", None, None)


def test_cancellation_of_a_meeting() -> None:
    result = parse_calendar(outlook_invitation(method="CANCEL", status="CANCELLED", sequence=2), STOCKHOLM)

    [event] = result.events
    assert (event.method, event.cancelled, event.sequence) == ("CANCEL", True, 2)


def test_cancelled_status_in_a_request_counts_as_cancelled() -> None:
    [event] = parse_calendar(outlook_invitation(status="CANCELLED"), STOCKHOLM).events

    assert (event.method, event.cancelled) == ("REQUEST", True)


def test_moved_meeting_keeps_its_uid_with_a_higher_sequence() -> None:
    first = parse_calendar(outlook_invitation(), STOCKHOLM).events[0]
    moved = parse_calendar(
        outlook_invitation(start="20250321T130000", end="20250321T160000", sequence=1), STOCKHOLM
    ).events[0]

    assert moved.uid == first.uid
    assert (first.sequence, moved.sequence) == (0, 1)
    assert (moved.start, moved.end) == (at(2025, 3, 21, 13), at(2025, 3, 21, 16))
    assert moved.cancelled is False


def test_invitation_built_with_icalendar_api() -> None:
    calendar = Calendar()
    calendar.add("prodid", "-//Skövde kommun//Outlook//SV")
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    for number, day in enumerate((date(2025, 9, 12), date(2025, 10, 10)), start=1):
        event = Event()
        event.add("uid", f"elevhalsa-{number}@skovde.se")
        event.add("summary", "Elevhälsonätverket")
        event.add("dtstart", datetime(day.year, day.month, day.day, 9, tzinfo=STOCKHOLM))
        event.add("dtend", datetime(day.year, day.month, day.day, 12, tzinfo=STOCKHOLM))
        event.add("location", "Kavelbro, Lidköping")
        event.add("sequence", 3)
        calendar.add_component(event)

    result = parse_calendar(calendar.to_ical(), STOCKHOLM)

    assert result.problems == ()
    assert [(event.uid, event.start, event.location, event.sequence) for event in result.events] == [
        ("elevhalsa-1@skovde.se", at(2025, 9, 12, 9), "Kavelbro, Lidköping", 3),
        ("elevhalsa-2@skovde.se", at(2025, 10, 10, 9), "Kavelbro, Lidköping", 3),
    ]


def test_windows_1252_invitation_keeps_swedish_letters() -> None:
    data = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:w-1\r\nSUMMARY:Träff i Skövde\r\n"
        "DTSTART:20250314T080000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode("cp1252")

    [event] = parse_calendar(data, STOCKHOLM).events

    assert event.summary == "Träff i Skövde"


def test_weekly_series_with_count_and_exdate_across_dst() -> None:
    data = outlook_invitation(
        start="20250321T090000",
        end="20250321T120000",
        extra=(
            "RRULE:FREQ=WEEKLY;COUNT=4;INTERVAL=1;BYDAY=FR;WKST=MO\n"
            "EXDATE;TZID=W. Europe Standard Time:20250328T090000\n"
        ),
    )

    result = parse_calendar(data, STOCKHOLM)

    assert result.problems == ()
    assert [event.start for event in result.events] == [at(2025, 3, 21, 9), at(2025, 4, 4, 9), at(2025, 4, 11, 9)]
    assert all(event.recurrence_id == event.start for event in result.events)
    assert all(event.end - event.start == timedelta(hours=3) for event in result.events)
    assert {event.uid for event in result.events} == {"040000008200E00074C5B7101A82E00800000000A1B2C3D4"}


def test_monthly_series_until_a_utc_time() -> None:
    data = minimal_calendar(
        "UID:m-1\nSUMMARY:Vux\nDTSTART;TZID=Europe/Stockholm:20250912T130000\n"
        "RRULE:FREQ=MONTHLY;BYDAY=2FR;UNTIL=20251212T120000Z"
    )

    result = parse_calendar(data, STOCKHOLM)

    assert [event.start for event in result.events] == [
        at(2025, 9, 12, 13),
        at(2025, 10, 10, 13),
        at(2025, 11, 14, 13),
        at(2025, 12, 12, 13),
    ]


def test_all_day_series_until_a_date() -> None:
    data = minimal_calendar(
        "UID:m-2\nSUMMARY:Studiedag\nDTSTART;VALUE=DATE:20250905\nRRULE:FREQ=WEEKLY;UNTIL=20250919\n"
        "EXDATE;VALUE=DATE:20250912"
    )

    result = parse_calendar(data, STOCKHOLM)

    assert [event.start for event in result.events] == [at(2025, 9, 5), at(2025, 9, 19)]


def test_endless_weekly_series_is_capped_at_sixty_with_a_problem() -> None:
    data = minimal_calendar("UID:c-1\nSUMMARY:Veckomöte\nDTSTART:20250905T070000Z\nRRULE:FREQ=WEEKLY")

    result = parse_calendar(data, STOCKHOLM)

    assert len(result.events) == 60
    assert result.problems == (
        "Mötet 'Veckomöte' upprepas längre än som lästes in: bara de 60 första tillfällena inom 2 år togs med",
    )


def test_endless_monthly_series_stops_two_years_after_its_start() -> None:
    data = minimal_calendar("UID:c-2\nSUMMARY:SKIS\nDTSTART:20250905T070000Z\nRRULE:FREQ=MONTHLY")

    result = parse_calendar(data, STOCKHOLM)

    assert result.events[-1].start == at(2027, 9, 5, 9)
    assert len(result.events) == 25
    assert len(result.problems) == 1


def test_moved_occurrence_replaces_its_place_in_the_series() -> None:
    data = minimal_calendar(
        "UID:o-1\nSUMMARY:SKIS\nSEQUENCE:0\nDTSTART:20250905T070000Z\nRRULE:FREQ=WEEKLY;COUNT=3",
        "UID:o-1\nSUMMARY:SKIS (flyttad)\nSEQUENCE:1\nRECURRENCE-ID:20250912T070000Z\nDTSTART:20250913T070000Z",
        method="REQUEST",
    )

    result = parse_calendar(data, STOCKHOLM)

    assert [(event.start, event.summary, event.recurrence_id) for event in result.events] == [
        (at(2025, 9, 5, 9), "SKIS", at(2025, 9, 5, 9)),
        (at(2025, 9, 13, 9), "SKIS (flyttad)", at(2025, 9, 12, 9)),
        (at(2025, 9, 19, 9), "SKIS", at(2025, 9, 19, 9)),
    ]


def test_cancelling_one_occurrence_names_it() -> None:
    data = minimal_calendar(
        "UID:o-2\nSUMMARY:SKIS\nSTATUS:CANCELLED\nSEQUENCE:2\nRECURRENCE-ID:20250912T070000Z\nDTSTART:20250912T070000Z",
        method="CANCEL",
    )

    [event] = parse_calendar(data, STOCKHOLM).events

    assert (event.cancelled, event.recurrence_id, event.start) == (True, at(2025, 9, 12, 9), at(2025, 9, 12, 9))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "Kalenderinbjudan kunde inte läsas (inte i iCalendar-format)"),
        ("Hej! Här kommer datumen.".encode(), "Kalenderinbjudan kunde inte läsas (inte i iCalendar-format)"),
        (
            b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n",
            "Kalenderinbjudan innehåller inget möte (VEVENT saknas)",
        ),
        (
            minimal_calendar("UID:b-1\nSUMMARY:SKIS"),
            "Mötet 'SKIS' saknar en läsbar starttid (DTSTART) och kunde inte läsas in",
        ),
        (
            minimal_calendar("UID:b-2\nSUMMARY:SKIS\nDTSTART:nästa fredag"),
            "Mötet 'SKIS' saknar en läsbar starttid (DTSTART) och kunde inte läsas in",
        ),
        (minimal_calendar("SUMMARY:SKIS\nDTSTART:20250314T080000Z"), "Mötet 'SKIS' saknar UID och kunde inte läsas in"),
        (minimal_calendar("DTSTART:20250314T080000Z"), "Mötet utan rubrik saknar UID och kunde inte läsas in"),
    ],
    ids=["empty", "plain-text", "no-vevent", "no-dtstart", "garbage-dtstart", "no-uid", "no-uid-no-summary"],
)
def test_broken_input_gives_a_problem_not_an_exception(data: bytes, problem: str) -> None:
    result = parse_calendar(data, STOCKHOLM)

    assert result.events == ()
    assert result.problems == (problem,)


def test_readable_events_survive_a_broken_neighbour() -> None:
    data = minimal_calendar(
        "UID:ok-1\nSUMMARY:SKIS\nDTSTART:20250314T080000Z",
        "UID:bad-1\nSUMMARY:Trasig\n",
    )

    result = parse_calendar(data, STOCKHOLM)

    assert [event.uid for event in result.events] == ["ok-1"]
    assert result.problems == ("Mötet 'Trasig' saknar en läsbar starttid (DTSTART) och kunde inte läsas in",)


def test_unreadable_recurrence_rule_keeps_the_first_meeting() -> None:
    data = minimal_calendar("UID:r-1\nSUMMARY:SKIS\nDTSTART:20250314T080000Z\nRRULE:FREQ=SOMETIMES")

    result = parse_calendar(data, STOCKHOLM)

    assert [event.start for event in result.events] == [at(2025, 3, 14, 9)]
    assert result.problems == ("Upprepningen av mötet 'SKIS' kunde inte läsas; bara första tillfället togs med",)


def test_dtstart_counts_as_first_occurrence_even_off_the_rule() -> None:
    # 14 March 2025 is a Friday; the rule says Thursdays.
    data = minimal_calendar("UID:r-2\nSUMMARY:SKIS\nDTSTART:20250314T080000Z\nRRULE:FREQ=WEEKLY;BYDAY=TH;COUNT=3")

    result = parse_calendar(data, STOCKHOLM)

    assert [event.start for event in result.events] == [at(2025, 3, 14, 9), at(2025, 3, 20, 9), at(2025, 3, 27, 9)]


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=SECONDLY",
        "FREQ=HOURLY;BYHOUR=25",
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=WEEKLY;BYDAY=FR;BYSETPOS=3",
        "FREQ=MONTHLY;BYDAY=6FR",
        "FREQ=YEARLY;BYWEEKNO=54",
        "FREQ=WEEKLY;INTERVAL=0",
    ],
)
def test_rule_that_no_meeting_series_uses_keeps_only_the_first_meeting(rule: str) -> None:
    # dateutil would search such rules up to the year 9999 before giving up.
    data = minimal_calendar(f"UID:r-3\nSUMMARY:SKIS\nDTSTART:20250314T080000Z\nRRULE:{rule}")

    result = parse_calendar(data, STOCKHOLM)

    assert [(event.start, event.recurrence_id) for event in result.events] == [(at(2025, 3, 14, 9), at(2025, 3, 14, 9))]
    assert result.problems == ("Upprepningen av mötet 'SKIS' kunde inte läsas; bara första tillfället togs med",)


def test_last_weekday_of_the_month_as_outlook_writes_it() -> None:
    data = minimal_calendar(
        "UID:r-4\nSUMMARY:Vux\nDTSTART;TZID=W. Europe Standard Time:20250331T130000\n"
        "RRULE:FREQ=MONTHLY;COUNT=3;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"
    )

    result = parse_calendar(data, STOCKHOLM)

    assert [event.start for event in result.events] == [at(2025, 3, 31, 13), at(2025, 4, 30, 13), at(2025, 5, 30, 13)]
