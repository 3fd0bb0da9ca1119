"""The obligation rules: from a network's configuration, its registry facts and a date, the findings.

Pure: no I/O, no clock (the date is a parameter), no database. Details are Swedish.
"""

from __future__ import annotations

from datetime import date, timedelta

from registry.config import Network, month_day
from registry.domain import MeetingStatus, ObligationKind, PublicationDecision, State
from registry.facts import Finding, MeetingFact, NetworkFacts, list_in_force, meeting_status
from registry.swedish import WEEKDAY_PLURAL, day_month, join, long_date, plural

WEEKDAY_INDEX = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}
_VALUE = {kind: kind.value for kind in ObligationKind}  # an enum's .value is a slow property, read per finding


def history_start(today: date) -> date:
    """The rules read no meeting, and no minutes of a meeting, from before this day (1 January of last year):
    a caller evaluating `today` may leave older ones out of the facts. Keep it in step with the rules below."""
    return date(today.year - 1, 1, 1)


def evaluate(network: Network, facts: NetworkFacts, today: date, municipalities: tuple[str, ...]) -> list[Finding]:
    """Every obligation of `network` on `today`, in a stable order."""
    year = today.year
    findings: list[Finding] = []
    findings.append(member_list_finding(network, facts, today))
    findings.append(meeting_dates_finding(network, facts, today))
    if today <= month_day(network.deadlines.previous_year_visible_until, year) and _tracked(facts, year - 1):
        findings.append(meeting_count_finding(network, facts, today, year - 1))
    findings.append(meeting_count_finding(network, facts, today, year))
    if network.meeting_weekday:
        findings.extend(meeting_weekday_findings(network, facts, today))
    findings.extend(minutes_findings(network, facts, today))
    if network.minutes_published_on_web:
        findings.extend(publication_findings(network, facts, today))
    if network.all_municipalities_represented:
        findings.append(representation_finding(network, facts, today, municipalities))
    if network.yearly_commission_revision:
        findings.extend(commission_revision_findings(network, facts, today))
    findings.extend(deliverable_findings(network, facts, today))
    return findings


def _tracked(facts: NetworkFacts, year: int) -> bool:
    """Whether the registry followed the network in `year` (so a low count there is a fact, not a gap in data)."""
    return any(m.date.year == year for m in facts.meetings) or any(item.follows(year) for item in facts.member_lists)


def _finding(network: Network, obligation: ObligationKind, state: State, due: date | None, detail: str,
             suffix: str, meeting_date: date | None = None) -> Finding:  # fmt: skip
    return Finding(
        network=network.key,
        obligation=obligation,
        state=state,
        due=due,
        detail=detail,
        id=f"{network.key}:{_VALUE[obligation]}:{suffix}",
        meeting_date=meeting_date,
        quote=network.quote(_VALUE[obligation]),
    )


def _lateness(got: date, due: date) -> str:
    """' Den kom in 12 dagar efter fristen (31 januari 2025).' when `got` is after `due`, else ''."""
    if got <= due:
        return ""
    return f" Den kom in {plural((got - due).days, 'dag', 'dagar')} efter fristen ({long_date(due)})."


def _window_start(network: Network, year: int) -> date:
    """The first day a list or dates sent count for `year` (late in the previous year)."""
    return month_day(network.deadlines.accept_from_previous_year, year - 1)


def member_list_finding(network: Network, facts: NetworkFacts, today: date) -> Finding:
    year = today.year
    due = month_day(network.deadlines.member_list, year)
    start = _window_start(network, year)
    received = sorted(
        item.received_on for item in facts.member_lists if item.received_on <= today and item.counts_for(year, start)
    )
    if received:
        in_force = list_in_force(facts.member_lists, today)
        size = len(in_force.members) if in_force else 0
        detail = (
            f"Medlemsförteckningen för {year} kom in {long_date(received[-1])} ({plural(size, 'person', 'personer')})."
            + _lateness(received[0], due)
        )
        return _finding(network, ObligationKind.MEMBER_LIST, State.OK, due, detail, str(year))
    older = list_in_force(facts.member_lists, today)
    still = f" Listan från {long_date(older.received_on)} gäller tills vidare." if older else ""
    if today <= due:
        detail = f"Medlemsförteckningen för {year} ska skickas in senast {day_month(due)}.{still}"
        return _finding(network, ObligationKind.MEMBER_LIST, State.OPEN, due, detail, str(year))
    detail = f"Medlemsförteckningen för {year} har inte kommit in (skulle skickas senast {day_month(due)}).{still}"
    return _finding(network, ObligationKind.MEMBER_LIST, State.OVERDUE, due, detail, str(year))


def _meetings_in(facts: NetworkFacts, year: int) -> list[MeetingFact]:
    return sorted((m for m in facts.meetings if m.date.year == year), key=lambda m: m.date)


def meeting_dates_finding(network: Network, facts: NetworkFacts, today: date) -> Finding:
    year = today.year
    due = month_day(network.deadlines.meeting_dates, year)
    announced = [m for m in _meetings_in(facts, year) if m.announced and m.status is not MeetingStatus.CANCELLED]
    what = "plats och tid" if network.list_and_dates_sent_by == "secretary" else "datum"
    if announced:
        detail = f"{plural(len(announced), 'mötesdatum', 'mötesdatum')} för {year} finns registrerade."
        return _finding(network, ObligationKind.MEETING_DATES, State.OK, due, detail, str(year))
    if today <= due:
        detail = f"{what.capitalize()} för nätverksträffarna {year} ska skickas in senast {day_month(due)}."
        return _finding(network, ObligationKind.MEETING_DATES, State.OPEN, due, detail, str(year))
    detail = f"Inga mötesdatum för {year} har kommit in ({what} skulle skickas senast {day_month(due)})."
    return _finding(network, ObligationKind.MEETING_DATES, State.OVERDUE, due, detail, str(year))


def meeting_count_finding(network: Network, facts: NetworkFacts, today: date, year: int) -> Finding:
    minimum = network.min_meetings_per_year
    meetings = [m for m in _meetings_in(facts, year) if meeting_status(m, today) is not MeetingStatus.CANCELLED]
    held = sum(1 for m in meetings if meeting_status(m, today) is MeetingStatus.HELD)
    planned = len(meetings) - held
    due = date(year, 12, 31)
    counted = f"Möten {year} – hållna: {held}, planerade: {planned}, minst {minimum} krävs."
    if held >= minimum:
        state = State.OK
    elif today > due:
        state = State.BREACH
        counted = f"Bara {plural(held, 'möte', 'möten')} hölls {year}, minst {minimum} krävs."
    elif held + planned >= minimum:
        state = State.OPEN
    else:
        state = State.AT_RISK
        counted += f" Planera in {plural(minimum - held - planned, 'möte till', 'möten till')}."
    return _finding(network, ObligationKind.MEETING_COUNT, state, due, counted, str(year))


def meeting_weekday_findings(network: Network, facts: NetworkFacts, today: date) -> list[Finding]:
    assert network.meeting_weekday is not None
    required = WEEKDAY_INDEX[network.meeting_weekday]
    findings = []
    for meeting in _meetings_in(facts, today.year):
        status = meeting_status(meeting, today)
        if status is MeetingStatus.CANCELLED or meeting.date.weekday() == required:
            continue
        state = State.BREACH if status is MeetingStatus.HELD else State.AT_RISK
        verb = "hölls" if status is MeetingStatus.HELD else "är planerat"
        detail = (
            f"Mötet {long_date(meeting.date, weekday=True)} {verb} på fel veckodag; "
            f"nätverket ska mötas på {WEEKDAY_PLURAL[network.meeting_weekday]}."
        )
        findings.append(
            _finding(
                network,
                ObligationKind.MEETING_WEEKDAY,
                state,
                meeting.date,
                detail,
                meeting.date.isoformat(),
                meeting_date=meeting.date,
            )  # fmt: skip
        )
    if not findings:
        detail = f"Alla möten {today.year} ligger på {WEEKDAY_PLURAL[network.meeting_weekday]}."
        findings.append(_finding(network, ObligationKind.MEETING_WEEKDAY, State.OK, None, detail, str(today.year)))
    return findings


def minutes_findings(network: Network, facts: NetworkFacts, today: date) -> list[Finding]:
    """One finding per held meeting this year, and per held meeting of last year still without minutes."""
    received: dict[date, date] = {}
    for item in facts.minutes:
        first = received.get(item.meeting_date)
        received[item.meeting_date] = item.received_on if first is None else min(first, item.received_on)
    days = network.deadlines.minutes_days
    name = network.minutes_name
    findings = []
    recent = (m for m in facts.meetings if m.date.year >= today.year - 1)
    for meeting in sorted(recent, key=lambda m: m.date):
        if meeting_status(meeting, today) is not MeetingStatus.HELD:
            continue
        got = received.get(meeting.date)
        if meeting.date.year < today.year and got is not None:
            continue
        due = meeting.date + timedelta(days=days)
        when = long_date(meeting.date, weekday=True)
        if got is not None:
            late = (got - meeting.date).days
            detail = f"{name.capitalize()} från mötet {when} kom in {long_date(got)} ({plural(late, 'dag', 'dagar')} efter mötet)."
            if got > due:
                detail += f" De kom in {plural((got - due).days, 'dag', 'dagar')} efter fristen på {days} dagar."
            state = State.OK
        elif today <= due:
            detail = f"{name.capitalize()} från mötet {when} ska skickas in senast {long_date(due)}."
            state = State.OPEN
        else:
            detail = f"{name.capitalize()} från mötet {when} saknas (skulle skickas in senast {long_date(due)})."
            state = State.OVERDUE
        findings.append(
            _finding(
                network, ObligationKind.MINUTES, state, due, detail, meeting.date.isoformat(), meeting_date=meeting.date
            )  # fmt: skip
        )
    return findings


def representation_finding(network: Network, facts: NetworkFacts, today: date,
                           municipalities: tuple[str, ...]) -> Finding:  # fmt: skip
    year = today.year
    due = month_day(network.deadlines.member_list, year)
    in_force = list_in_force(facts.member_lists, today)
    if in_force is None:
        state = State.OPEN if today <= due else State.OVERDUE
        detail = "Ingen medlemsförteckning finns, så det går inte att se att alla kommuner är företrädda."
        return _finding(network, ObligationKind.REPRESENTATION, state, due, detail, str(year))
    present = {member.municipality for member in in_force.members if member.municipality}
    missing = [name for name in municipalities if name not in present]
    if not missing:
        detail = f"Alla {len(municipalities)} kommuner är företrädda i medlemsförteckningen."
        return _finding(network, ObligationKind.REPRESENTATION, State.OK, due, detail, str(year))
    state = State.OPEN if today <= due else State.OVERDUE
    detail = f"{plural(len(missing), 'kommun saknar', 'kommuner saknar')} representant i nätverket: {join(missing)}."
    return _finding(network, ObligationKind.REPRESENTATION, state, due, detail, str(year))


def commission_revision_findings(network: Network, facts: NetworkFacts, today: date) -> list[Finding]:
    """This year's revision; and, until `previous_year_visible_until`, last year's when it never came in
    (its deadline, 31 December, has passed by the time anyone can be reminded of it)."""
    year = today.year
    findings = []
    if today <= month_day(network.deadlines.previous_year_visible_until, year) and _tracked(facts, year - 1):
        last_year = commission_revision_finding(network, facts, today, year - 1)
        if last_year.state is not State.OK:
            findings.append(last_year)
    findings.append(commission_revision_finding(network, facts, today, year))
    return findings


def commission_revision_finding(network: Network, facts: NetworkFacts, today: date, year: int) -> Finding:
    due = month_day(network.deadlines.commission_revision, year)
    got = [d.received_on for d in facts.deliverables if d.key == "commission_revision" and d.received_on.year == year]
    if got:
        detail = f"Reviderad uppdragsbeskrivning för {year} kom in {long_date(max(got))}." + _lateness(min(got), due)
        return _finding(network, ObligationKind.COMMISSION_REVISION, State.OK, due, detail, str(year))
    state = State.OPEN if today <= due else State.OVERDUE
    detail = f"Uppdragsbeskrivningen ska revideras en gång per år; den reviderade för {year} har inte kommit in (senast {long_date(due)})."
    return _finding(network, ObligationKind.COMMISSION_REVISION, state, due, detail, str(year))


def deliverable_findings(network: Network, facts: NetworkFacts, today: date) -> list[Finding]:
    """Every dated deliverable that is due this year or later, due last year, or still missing, however old;
    one that came in before last year is history (the report shows it)."""
    findings = []
    for deliverable in network.deliverables:
        got = [d.received_on for d in facts.deliverables if d.key == deliverable.key and d.received_on <= today]
        if deliverable.due.year < today.year - 1 and got and max(got).year < today.year - 1:
            continue
        if got:
            state = State.OK
            detail = f"{deliverable.title} kom in {long_date(min(got))}." + _lateness(min(got), deliverable.due)
        elif today <= deliverable.due:
            state, detail = State.OPEN, f"{deliverable.title} ska lämnas senast {long_date(deliverable.due)}."
        else:
            state, detail = (
                State.OVERDUE,
                f"{deliverable.title} har inte kommit in (senast {long_date(deliverable.due)}).",
            )
        f = _finding(network, ObligationKind.DELIVERABLE, state, deliverable.due, detail, deliverable.key)
        findings.append(Finding(**{**f.__dict__, "quote": deliverable.quote}))
    return findings


def publication_findings(network: Network, facts: NetworkFacts, today: date) -> list[Finding]:
    """One finding per set of minutes of this year or last year (last year's only until published): on the
    public site within `deadlines.publication_days` of its arrival. A set a person withheld is settled."""
    days = network.deadlines.publication_days
    name = network.minutes_name.capitalize()
    findings = []
    for item in sorted(facts.publications, key=lambda p: (p.meeting_date, p.minutes_id)):
        if item.meeting_date.year < today.year - 1 or item.received_on > today:
            continue
        published = item.published_on is not None and item.published_on <= today
        if item.meeting_date.year < today.year and (published or item.decision is PublicationDecision.WITHHELD):
            continue
        due = item.received_on + timedelta(days=days)
        when = long_date(item.meeting_date, weekday=True)
        if published:
            assert item.published_on is not None
            state, detail = State.OK, f"{name} från mötet {when} publicerades {long_date(item.published_on)}."
        elif item.decision is PublicationDecision.WITHHELD:
            because = f": {item.note}" if item.note else ""
            state, detail = State.OK, f"{name} från mötet {when} publiceras inte (beslut vid granskning{because})."
        else:
            waiting = (
                "väntar på godkännande" if item.decision is PublicationDecision.PENDING else "väntar på publicering"
            )
            if today <= due:
                state, detail = State.OPEN, f"{name} från mötet {when} {waiting} (publiceras senast {long_date(due)})."
            else:
                state = State.OVERDUE
                detail = f"{name} från mötet {when} {waiting} sedan {long_date(item.received_on)} (skulle publiceras senast {long_date(due)})."
        finding = _finding(network, ObligationKind.PUBLICATION, state, due, detail, str(item.minutes_id),
                           meeting_date=item.meeting_date)  # fmt: skip
        if not finding.quote:
            finding = Finding(**{**finding.__dict__, "quote": network.quote("minutes")})
        findings.append(finding)
    return findings
