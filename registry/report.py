"""The yearly report for the school chiefs: per network meetings against the minimum, minutes and their delay,
members per municipality, attendance from the minutes, and whether the commission was met (and why not).

`build_report` is pure (facts and dates in, a frozen `YearReport` out); `gather_report` reads the registry and
`render_report` fills templates/report.html.j2. Never reads the clock: the day the report is made comes in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session, select

from registry.config import Network, Registry
from registry.domain import MailStatus, MeetingStatus, ObligationKind, State
from registry.errors import ExpectedError
from registry.facts import Finding, MeetingFact, NetworkFacts, list_in_force, meeting_status
from registry.models import InboundMail, Minutes
from registry.queries import local_date, network_facts
from registry.rules import evaluate
from registry.swedish import join, long_date, plural

# The heading under which members without a municipality (federation staff, experts) are counted.
OTHER_MEMBERS = "Förbundet och övriga"


class ReportYearError(ExpectedError):
    """The year cannot be reported on the given day (it has not begun)."""


def _more_planned(count: int) -> str:
    """'1 möte till är planerat', '2 möten till är planerade'."""
    return "1 möte till är planerat" if count == 1 else f"{count} möten till är planerade"


class Verdict(StrEnum):
    MET = "met"  # every obligation of the year fulfilled (or, in a running year, nothing behind)
    AT_RISK = "at_risk"  # only in a running year: nothing broken yet, but something will be unless acted on
    NOT_MET = "not_met"
    INCOMPLETE = "incomplete"  # nothing found behind, but mail that may change that still waits for a person


VERDICT_TEXT = {
    (Verdict.MET, True): "Uppdraget uppfyllt",
    (Verdict.NOT_MET, True): "Uppdraget inte uppfyllt",
    (Verdict.MET, False): "I fas",
    (Verdict.AT_RISK, False): "Risk för brist",
    (Verdict.NOT_MET, False): "Ligger efter",
    (Verdict.INCOMPLETE, True): "Underlaget ofullständigt",
    (Verdict.INCOMPLETE, False): "Underlaget ofullständigt",
}

# What a mail in review holds, as the report names it (MailKind values; minutes by the network's own word).
KIND_TEXT = {
    "member_list": "medlemsförteckning",
    "meeting_dates": "mötesdatum",
    "meeting_invite": "kallelse",
    "meeting_cancel": "inställt möte",
    "deliverable": "leverans",
    "reply": "svar på påminnelse",
    "other": "okänt innehåll",
}


def review_sentence(in_review: tuple[tuple[str, ...], ...], minutes_name: str) -> str | None:
    """'2 mejl väntar på granskning (protokoll, medlemsförteckning).', or None when none waits."""
    if not in_review:
        return None
    names = {minutes_name if kind == "minutes" else KIND_TEXT.get(kind, kind) for kinds in in_review for kind in kinds}
    what = f" ({join(sorted(names))})" if names else ""
    return f"{plural(len(in_review), 'mejl väntar', 'mejl väntar')} på granskning{what}."


@dataclass(frozen=True)
class DeliverableRow:
    """One dated deliverable of the commission, as the report shows it."""

    title: str
    due: date
    received: date | None  # the first time it came in (up to the report's date)
    as_of: date

    @property
    def days_late(self) -> int | None:
        """Days after the due date it came in, or (missing) has been due; None when on time or not yet due."""
        end = self.received or self.as_of
        return (end - self.due).days if end > self.due else None

    @property
    def missing(self) -> bool:
        return self.received is None and self.due < self.as_of

    def sentence(self) -> str:
        if self.received is not None:
            late = self.days_late
            when = f"Kom in {long_date(self.received)}"
            return when + (f", {plural(late, 'dag', 'dagar')} för sent." if late else ", i tid.")
        if self.missing:
            return f"Saknas; skulle ha lämnats för {plural(self.days_late or 0, 'dag', 'dagar')} sedan."
        return f"Ska lämnas senast {long_date(self.due)}."


@dataclass(frozen=True)
class MeetingRow:
    """One meeting of the year as the report shows it."""

    date: date
    status: MeetingStatus  # as of the report's date: held, planned or cancelled
    place: str | None
    minutes_due: date
    minutes_received: date | None  # the first minutes of this meeting that came in
    present: tuple[str, ...] | None  # municipalities present according to the minutes; None without minutes

    @property
    def days_to_minutes(self) -> int | None:
        return (self.minutes_received - self.date).days if self.minutes_received else None

    @property
    def minutes_late(self) -> bool:
        return self.minutes_received is not None and self.minutes_received > self.minutes_due


@dataclass(frozen=True)
class AttendanceRow:
    municipality: str
    present: tuple[bool, ...]  # one per meeting with minutes, in date order

    @property
    def total(self) -> int:
        return sum(self.present)


@dataclass(frozen=True)
class NetworkReport:
    key: str
    name: str
    minimum: int
    minutes_name: str  # "protokoll" or "minnesanteckningar"
    minutes_days: int  # the deadline for minutes, in days after a meeting
    meetings: tuple[MeetingRow, ...]
    member_list_received: date | None  # the list in force on the report's date
    members_by_municipality: tuple[tuple[str, int], ...]  # the 15 in configured order, then OTHER_MEMBERS
    attendance_meetings: tuple[date, ...]  # held meetings with minutes
    attendance: tuple[AttendanceRow, ...]  # one per configured municipality
    verdict: Verdict
    reasons: tuple[str, ...]  # Swedish: why the commission was not met (or is at risk)
    pending: tuple[str, ...]  # Swedish: what is not yet due on the report's date
    findings: tuple[Finding, ...] = field(default=(), repr=False)
    deliverables: tuple[DeliverableRow, ...] = ()  # every dated deliverable of the commission, by due date
    in_review: tuple[tuple[str, ...], ...] = ()  # per mail of the network still waiting for a person: its kinds

    @property
    def review_sentence(self) -> str | None:
        return review_sentence(self.in_review, self.minutes_name)

    @property
    def deliverables_received(self) -> int:
        return sum(1 for d in self.deliverables if d.received is not None)

    @property
    def deliverables_due(self) -> int:
        """Deliverables due by the report's date, or in already."""
        return sum(1 for d in self.deliverables if d.received is not None or d.due <= d.as_of)

    @property
    def held(self) -> int:
        return sum(1 for m in self.meetings if m.status is MeetingStatus.HELD)

    @property
    def planned(self) -> int:
        return sum(1 for m in self.meetings if m.status is MeetingStatus.PLANNED)

    @property
    def cancelled(self) -> int:
        return sum(1 for m in self.meetings if m.status is MeetingStatus.CANCELLED)

    @property
    def minutes_received(self) -> int:
        return sum(1 for m in self.meetings if m.status is MeetingStatus.HELD and m.minutes_received)

    @property
    def attendance_counts(self) -> tuple[int, ...]:
        """Per meeting in `attendance_meetings`: how many municipalities were present."""
        return tuple(
            sum(row.present[index] for row in self.attendance) for index in range(len(self.attendance_meetings))
        )

    @property
    def members_total(self) -> int:
        return sum(count for _, count in self.members_by_municipality)

    @property
    def municipalities_represented(self) -> int:
        return sum(1 for name, count in self.members_by_municipality if count and name != OTHER_MEMBERS)

    @property
    def average_days_to_minutes(self) -> float | None:
        days = [m.days_to_minutes for m in self.meetings if m.days_to_minutes is not None]
        return sum(days) / len(days) if days else None

    def meetings_count(self) -> str:
        """'3 av minst 4 möten' when short of the minimum, else '6 möten (minst 4 krävs)'."""
        if self.held < self.minimum:
            return f"{self.held} av minst {self.minimum} möten"
        return f"{plural(self.held, 'möte', 'möten')} (minst {self.minimum} krävs)"

    def meetings_sentence(self) -> str:
        """'Nätverket har hållit 3 av minst 4 möten.' (and what is still planned in a running year)."""
        text = f"Nätverket har hållit {self.meetings_count()}"
        if self.planned:
            text += f"; {_more_planned(self.planned)}"
        return text + "."

    def minutes_sentence(self) -> str:
        """'5 av 6 minnesanteckningar har kommit in, i genomsnitt 9 dagar efter mötet.'"""
        if not self.held:
            return f"Inga möten har hållits, så inga {self.minutes_name} har kunnat komma in."
        text = f"{self.minutes_received} av {self.held} {self.minutes_name} har kommit in"
        average = self.average_days_to_minutes
        if average is not None:
            text += f", i genomsnitt {plural(round(average), 'dag', 'dagar')} efter mötet"
        return text + "."


@dataclass(frozen=True)
class YearReport:
    year: int
    as_of: date  # the date the obligations are judged on: 31 December, or earlier in a running year
    known_on: date  # facts that came in up to this day are counted
    municipalities: tuple[str, ...]
    networks: tuple[NetworkReport, ...]

    @property
    def complete(self) -> bool:
        """Whether the year is over (the report is final rather than 'per <datum>')."""
        return self.as_of == date(self.year, 12, 31)

    def only(self, key: str) -> YearReport:
        """The same report for one network."""
        return replace(self, networks=tuple(n for n in self.networks if n.key == key))

    def as_json(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "as_of": self.as_of.isoformat(),
            "known_on": self.known_on.isoformat(),
            "complete": self.complete,
            "networks": [
                {
                    "key": n.key,
                    "name": n.name,
                    "verdict": n.verdict.value,
                    "reasons": list(n.reasons),
                    "pending": list(n.pending),
                    "meetings_held": n.held,
                    "meetings_planned": n.planned,
                    "meetings_cancelled": n.cancelled,
                    "minimum": n.minimum,
                    "minutes_received": n.minutes_received,
                    "members": n.members_total,
                    "members_by_municipality": dict(n.members_by_municipality),
                    "mails_in_review": len(n.in_review),
                    "deliverables": [
                        {
                            "title": d.title,
                            "due": d.due.isoformat(),
                            "received": d.received.isoformat() if d.received else None,
                            "days_late": d.days_late,
                            "missing": d.missing,
                        }
                        for d in n.deliverables
                    ],
                    "meetings": [
                        {
                            "date": m.date.isoformat(),
                            "status": m.status.value,
                            "minutes_received": m.minutes_received.isoformat() if m.minutes_received else None,
                            "days_to_minutes": m.days_to_minutes,
                            "present": list(m.present) if m.present is not None else None,
                        }
                        for m in n.meetings
                    ],
                }
                for n in self.networks
            ],
        }


# --- dates ------------------------------------------------------------------------------------------


def report_dates(year: int, today: date) -> tuple[date, date]:
    """(as_of, known_on) for a report on `year` made on `today`.

    A finished year is judged as of 31 December, with everything that came in until `today` (minutes of a
    December meeting often arrive in January); a running year is judged as of `today`.
    """
    if today.year < year:
        raise ReportYearError(f"the year {year} has not begun on {today.isoformat()}")
    if today.year > year:
        return date(year, 12, 31), today
    return today, today


def facts_known_on(facts: NetworkFacts, day: date) -> NetworkFacts:
    """Only what had come in by `day`: a report 'per 21 november' does not know what came later."""
    return NetworkFacts(
        member_lists=tuple(item for item in facts.member_lists if item.received_on <= day),
        meetings=facts.meetings,  # a meeting row has no date of arrival; its status is judged by date
        minutes=tuple(item for item in facts.minutes if item.received_on <= day),
        deliverables=tuple(item for item in facts.deliverables if item.received_on <= day),
        # Minutes published after `day` were not yet on the site that day.
        publications=tuple(
            item if item.published_on is None or item.published_on <= day else replace(item, published_on=None)
            for item in facts.publications
            if item.received_on <= day
        ),
    )


# --- the verdict ------------------------------------------------------------------------------------


def _concerns_year(finding: Finding, year: int, network: Network) -> bool:
    """Whether a finding (evaluated on a day of `year`) is about `year` and not about the year before."""
    if finding.meeting_date is not None:
        return finding.meeting_date.year == year
    if finding.obligation is ObligationKind.DELIVERABLE:
        key = finding.id.rsplit(":", 1)[-1]
        due_this_year = any(d.key == key and d.due.year == year for d in network.deliverables)
        return due_this_year or finding.state is State.OVERDUE  # missing since an earlier year: still missing
    return finding.id.endswith(f":{year}")


def _reason(finding: Finding, report_meetings: tuple[MeetingRow, ...], minimum: int) -> str:
    if finding.obligation is ObligationKind.MEETING_COUNT:
        held = sum(1 for m in report_meetings if m.status is MeetingStatus.HELD)
        text = f"Nätverket har hållit {held} av minst {minimum} möten"
        planned = sum(1 for m in report_meetings if m.status is MeetingStatus.PLANNED)
        if planned:
            text += f" ({_more_planned(planned)})"
        return text + "."
    return finding.detail


def judge(findings: Sequence[Finding], as_of: date, complete: bool, meetings: tuple[MeetingRow, ...],
          minimum: int, in_review: str | None = None) -> tuple[Verdict, tuple[str, ...], tuple[str, ...]]:  # fmt: skip
    """The verdict, the reasons (what is broken or at risk) and what is still pending.

    In a finished year an obligation still 'open' or 'at risk' on 31 December whose deadline was in the year
    has not been met (a meeting count short on the last day, a revision that never came); only what falls
    due after the year (minutes of a late December meeting) is pending.
    """
    broken: list[str] = []
    risks: list[str] = []
    pending: list[str] = []
    for finding in findings:
        reason = _reason(finding, meetings, minimum)
        if finding.state in (State.BREACH, State.OVERDUE):
            broken.append(reason)
        elif finding.state in (State.AT_RISK, State.OPEN):
            due_in_year = finding.due is None or finding.due <= as_of
            if complete and due_in_year:
                broken.append(reason)
            elif finding.state is State.AT_RISK:
                risks.append(reason)
            else:
                pending.append(reason)
    # Mail waiting for a person may hold what is missing (or show more is wrong): never "met" while it waits.
    waiting = [f"{in_review} Bedömningen kan ändras när de är granskade."] if in_review else []
    if broken:
        return Verdict.NOT_MET, tuple(broken + risks + waiting), tuple(pending)
    if risks:
        return Verdict.AT_RISK, tuple(risks + waiting), tuple(pending)
    if waiting:
        return Verdict.INCOMPLETE, tuple(waiting), tuple(pending)
    return Verdict.MET, (), tuple(pending)


# --- the builder ------------------------------------------------------------------------------------


def _meeting_rows(network: Network, facts: NetworkFacts, year: int, as_of: date,
                  attendance: Mapping[date, frozenset[str]]) -> tuple[MeetingRow, ...]:  # fmt: skip
    first_minutes: dict[date, date] = {}
    for item in facts.minutes:
        known = first_minutes.get(item.meeting_date)
        first_minutes[item.meeting_date] = item.received_on if known is None else min(known, item.received_on)
    by_date: dict[date, MeetingFact] = {}
    for meeting in sorted(facts.meetings, key=lambda m: (m.date, m.status is not MeetingStatus.CANCELLED)):
        if meeting.date.year == year:
            by_date[meeting.date] = meeting  # one row per date; a cancelled duplicate yields to the real one
    rows = []
    for day, meeting in sorted(by_date.items()):
        received = first_minutes.get(day)
        present = attendance.get(day)
        rows.append(
            MeetingRow(
                date=day,
                status=meeting_status(meeting, as_of),
                place=meeting.place,
                minutes_due=day + timedelta(days=network.deadlines.minutes_days),
                minutes_received=received,
                present=tuple(sorted(present)) if received is not None and present is not None else None,
            )
        )
    return tuple(rows)


def _members_by_municipality(facts: NetworkFacts, as_of: date,
                             municipalities: tuple[str, ...]) -> tuple[date | None, tuple[tuple[str, int], ...]]:  # fmt: skip
    in_force = list_in_force(facts.member_lists, as_of)
    counts: Counter[str] = Counter()
    if in_force is not None:
        for member in in_force.members:
            counts[member.municipality if member.municipality in municipalities else OTHER_MEMBERS] += 1
    rows = tuple((name, counts[name]) for name in municipalities) + ((OTHER_MEMBERS, counts[OTHER_MEMBERS]),)
    return (in_force.received_on if in_force else None), rows


def _deliverable_rows(network: Network, facts: NetworkFacts, as_of: date) -> tuple[DeliverableRow, ...]:
    rows = []
    for deliverable in sorted(network.deliverables, key=lambda d: d.due):
        got = [d.received_on for d in facts.deliverables if d.key == deliverable.key and d.received_on <= as_of]
        rows.append(DeliverableRow(deliverable.title, deliverable.due, min(got) if got else None, as_of))
    return tuple(rows)


def build_network_report(network: Network, facts: NetworkFacts, year: int, as_of: date, known_on: date,
                         municipalities: tuple[str, ...], attendance: Mapping[date, frozenset[str]],
                         in_review: tuple[tuple[str, ...], ...] = ()) -> NetworkReport:  # fmt: skip
    known = facts_known_on(facts, known_on)
    meetings = _meeting_rows(network, known, year, as_of, attendance)
    with_minutes = [m for m in meetings if m.status is MeetingStatus.HELD and m.present is not None]
    grid = tuple(
        AttendanceRow(municipality=name, present=tuple(name in (m.present or ()) for m in with_minutes))
        for name in municipalities
    )
    received_on, members = _members_by_municipality(known, as_of, municipalities)
    findings = [
        f for f in evaluate(network, known, as_of, municipalities) if _concerns_year(f, year, network)
    ]  # fmt: skip
    complete = as_of == date(year, 12, 31)
    waiting = review_sentence(in_review, network.minutes_name)
    verdict, reasons, pending = judge(findings, as_of, complete, meetings, network.min_meetings_per_year, waiting)
    return NetworkReport(
        key=network.key,
        name=network.name,
        minimum=network.min_meetings_per_year,
        minutes_name=network.minutes_name,
        minutes_days=network.deadlines.minutes_days,
        meetings=meetings,
        member_list_received=received_on,
        members_by_municipality=members,
        attendance_meetings=tuple(m.date for m in with_minutes),
        attendance=grid,
        verdict=verdict,
        reasons=reasons,
        pending=pending,
        findings=tuple(findings),
        deliverables=_deliverable_rows(network, known, as_of),
        in_review=in_review,
    )


def build_report(year: int, today: date, networks: Sequence[Network], municipalities: tuple[str, ...],
                 facts: Mapping[str, NetworkFacts], attendance: Mapping[str, Mapping[date, frozenset[str]]],
                 in_review: Mapping[str, tuple[tuple[str, ...], ...]] | None = None) -> YearReport:  # fmt: skip
    """The report on `year` as made on `today`, from each network's facts and its minutes' attendance."""
    as_of, known_on = report_dates(year, today)
    return YearReport(
        year=year,
        as_of=as_of,
        known_on=known_on,
        municipalities=municipalities,
        networks=tuple(
            build_network_report(
                network,
                facts.get(network.key, NetworkFacts()),
                year,
                as_of,
                known_on,
                municipalities,
                attendance.get(network.key, {}),
                (in_review or {}).get(network.key, ()),
            )  # fmt: skip
            for network in networks
        ),
    )


# --- the edge: reading the registry -----------------------------------------------------------------


def attendance_of(session: Session, network_key: str, year: int, known_on: date, tz: Any) -> dict[date, frozenset[str]]:
    """Per meeting date of `year`: the municipalities present according to every minutes received for it."""
    present: dict[date, set[str]] = {}
    for item in session.exec(select(Minutes).where(Minutes.network_key == network_key)).all():
        if item.meeting_date.year != year or local_date(item.received, tz) > known_on:
            continue
        names = {name for name in item.municipalities_present.split(",") if name}
        present.setdefault(item.meeting_date, set()).update(names)
    return {day: frozenset(names) for day, names in present.items()}


def gather_report(session: Session, registry: Registry, year: int, today: date, tz: Any,
                  keys: Sequence[str] | None = None) -> YearReport:  # fmt: skip
    """Read the registry and build the report on `year` as made on `today` (for `keys`, else every network)."""
    _, known_on = report_dates(year, today)
    networks = [n for n in registry.networks if keys is None or n.key in keys]
    names = registry.municipality_index().names
    facts = {n.key: network_facts(session, n.key, tz) for n in networks}
    attendance = {n.key: attendance_of(session, n.key, year, known_on, tz) for n in networks}
    return build_report(year, today, networks, names, facts, attendance, mails_in_review(session, known_on, tz))


def mails_in_review(session: Session, known_on: date, tz: Any) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Per network: the kinds of each of its mails that still wait in review, received up to `known_on`."""
    waiting: dict[str, list[tuple[str, ...]]] = {}
    rows = session.exec(select(InboundMail).where(InboundMail.status == MailStatus.REVIEW.value)).all()
    for mail in rows:
        if mail.network_key is None or local_date(mail.received, tz) > known_on:
            continue
        waiting.setdefault(mail.network_key, []).append(tuple(k for k in mail.kinds.split(",") if k))
    return {key: tuple(kinds) for key, kinds in waiting.items()}


# --- rendering --------------------------------------------------------------------------------------


# An attendance grid with more meeting columns than this does not fit the 180 mm of a portrait A4 page beside
# the municipality names (about 36 CSS px a column): it gets a landscape page of its own in print.
WIDE_GRID_MEETINGS = 14


def _chart_max(values: Sequence[int], floor: int = 1) -> int:
    """A round upper end for a chart axis: the largest value, at least `floor`, up to an even number."""
    top = max([floor, *values])
    return top + (top % 2)


def report_context(report: YearReport) -> dict[str, Any]:
    """What templates/report.html.j2 needs beyond the report itself (Swedish labels, chart scales)."""
    meeting_values = [max(n.held + n.planned, n.minimum) for n in report.networks]
    days = [m.days_to_minutes or 0 for n in report.networks for m in n.meetings] + [
        n.minutes_days for n in report.networks
    ]
    met = [n for n in report.networks if n.verdict is Verdict.MET]
    return {
        "report": report,
        "verdict_text": {v.value: VERDICT_TEXT.get((v, report.complete), "") for v in Verdict},
        "meetings_axis": _chart_max(meeting_values),
        "days_axis": _chart_max(days, floor=14),
        "met_count": len(met),
        "period": (
            f"kalenderåret {report.year}" if report.complete else f"{report.year}, per {long_date(report.as_of)}"
        ),
        "other_members": OTHER_MEMBERS,
        "held": MeetingStatus.HELD,
        "planned": MeetingStatus.PLANNED,
        "cancelled": MeetingStatus.CANCELLED,
        "join": join,
        "wide_grid": WIDE_GRID_MEETINGS,
    }


def render_report(report: YearReport) -> str:
    """The report as one self-contained HTML document (inline CSS and SVG, no scripts, no external files)."""
    from mailbot.compose import environment  # the shared Jinja2 environment with the Swedish filters

    return environment().get_template("report.html.j2").render(**report_context(report))
