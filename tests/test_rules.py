"""The obligation rules (registry/rules.py): pure, facts built by hand, networks from the shipped config."""

from __future__ import annotations

from datetime import date

import pytest

from registry.config import Deliverable, Network, Registry, load_registry
from registry.domain import MeetingStatus, ObligationKind, Role, State
from registry.facts import (
    DeliverableFact,
    Finding,
    MeetingFact,
    MemberFact,
    MemberListFact,
    MinutesFact,
    NetworkFacts,
)
from registry.paths import config_dir
from registry.rules import evaluate

PLANNED, CANCELLED = MeetingStatus.PLANNED, MeetingStatus.CANCELLED


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(config_dir())


@pytest.fixture(scope="module")
def municipalities(registry: Registry) -> tuple[str, ...]:
    return registry.municipality_index().names


def member(municipality: str | None = "Skövde", name: str = "Anna Svensson", role: Role = Role.MEMBER) -> MemberFact:
    email = f"{name.split()[0].lower()}@{(municipality or 'example').lower()}.se"
    return MemberFact(name=name, email=email, municipality=municipality, role=role)


def a_list(received: date, *members: MemberFact, effective: date | None = None) -> MemberListFact:
    return MemberListFact(
        received_on=received, effective_from=effective or received, members=members or (member(), member("Hjo", "Bo"))
    )


def meetings(*days: date, status: MeetingStatus = PLANNED, announced: bool = True) -> tuple[MeetingFact, ...]:
    return tuple(MeetingFact(date=day, status=status, announced=announced) for day in days)


def run(
    registry: Registry, key: str, facts: NetworkFacts, today: date, municipalities: tuple[str, ...] = ()
) -> list[Finding]:
    names = municipalities or registry.municipality_index().names
    return evaluate(registry.network(key), facts, today, names)


def only(findings: list[Finding], obligation: ObligationKind) -> list[Finding]:
    return [f for f in findings if f.obligation is obligation]


def one(findings: list[Finding], obligation: ObligationKind) -> Finding:
    found = only(findings, obligation)
    assert len(found) == 1, found
    return found[0]


# --- shape ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("skis", ["member_list", "meeting_dates", "meeting_count", "meeting_weekday", "representation",
                  "commission_revision"]),
        ("grundskola", ["member_list", "meeting_dates", "meeting_count"]),
        ("elevhalsa", ["member_list", "meeting_dates", "meeting_count", "meeting_weekday", "commission_revision"]),
        # A dated deliverable that never came in stays on the list, however old (2021-2023 here).
        ("introduktion", ["member_list", "meeting_dates", "meeting_count", "deliverable"]),
        ("vux", ["member_list", "meeting_dates", "meeting_count"] + ["deliverable"] * 6),
    ],
)  # fmt: skip
def test_an_empty_network_has_its_configured_obligations_in_a_stable_order(
    registry: Registry, key: str, expected: list[str]
) -> None:
    findings = run(registry, key, NetworkFacts(), date(2025, 2, 15))
    assert [f.obligation.value for f in findings] == expected
    assert all(f.network == key and f.detail and f.quote for f in findings)
    assert len({f.id for f in findings}) == len(findings)
    assert run(registry, key, NetworkFacts(), date(2025, 2, 15)) == findings  # pure: same input, same output


def test_every_detail_is_swedish_and_json_has_the_contract_fields(registry: Registry) -> None:
    facts = NetworkFacts(meetings=meetings(date(2025, 1, 10)))
    for finding in run(registry, "skis", facts, date(2025, 2, 15)):
        data = finding.as_json()
        assert {"network", "obligation", "state", "due", "detail"} <= set(data)
        assert data["state"] in {"ok", "open", "overdue", "at_risk", "breach"}
        if finding.obligation is ObligationKind.MINUTES:
            assert data["meeting_date"] == "2025-01-10"
    assert one(run(registry, "skis", facts, date(2025, 2, 15)), ObligationKind.MINUTES).as_json()["due"] == "2025-01-24"


# --- member_list ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "lists", "state", "detail"),
    [
        (date(2025, 1, 15), (), State.OPEN, "Medlemsförteckningen för 2025 ska skickas in senast 31 januari."),
        (date(2025, 1, 31), (), State.OPEN, "Medlemsförteckningen för 2025 ska skickas in senast 31 januari."),
        (date(2025, 2, 1), (), State.OVERDUE,
         "Medlemsförteckningen för 2025 har inte kommit in (skulle skickas senast 31 januari)."),
        # sent from 1 November of the previous year: counts for the coming year
        (date(2025, 1, 15), (a_list(date(2024, 11, 1)),), State.OK,
         "Medlemsförteckningen för 2025 kom in 1 november 2024 (2 personer)."),
        (date(2025, 1, 15), (a_list(date(2025, 1, 3), member()),), State.OK,
         "Medlemsförteckningen för 2025 kom in 3 januari 2025 (1 person)."),
        # a list received late is ok from the day it came
        (date(2025, 3, 1), (a_list(date(2025, 2, 20)),), State.OK,
         "Medlemsförteckningen för 2025 kom in 20 februari 2025 (2 personer). Den kom in 20 dagar efter fristen "
         "(31 januari 2025)."),
        # last year's list is still in force, but it is not this year's
        (date(2025, 2, 15), (a_list(date(2024, 2, 5)),), State.OVERDUE,
         "Medlemsförteckningen för 2025 har inte kommit in (skulle skickas senast 31 januari). "
         "Listan från 5 februari 2024 gäller tills vidare."),
        (date(2025, 1, 10), (a_list(date(2024, 10, 31)),), State.OPEN,
         "Medlemsförteckningen för 2025 ska skickas in senast 31 januari. Listan från 31 oktober 2024 gäller tills vidare."),
    ],
)  # fmt: skip
def test_member_list(registry: Registry, today: date, lists: tuple, state: State, detail: str) -> None:
    finding = one(run(registry, "grundskola", NetworkFacts(member_lists=lists), today), ObligationKind.MEMBER_LIST)
    assert (finding.state, finding.detail) == (state, detail)
    assert finding.due == date(2025, 1, 31)
    assert finding.id == "grundskola:member_list:2025"


def test_member_list_received_after_the_evaluation_day_does_not_count(registry: Registry) -> None:
    facts = NetworkFacts(member_lists=(a_list(date(2025, 2, 20)),))
    finding = one(run(registry, "grundskola", facts, date(2025, 2, 10)), ObligationKind.MEMBER_LIST)
    assert finding.state is State.OVERDUE
    assert "gäller tills vidare" not in finding.detail


def test_member_list_at_the_year_boundary(registry: Registry) -> None:
    november = NetworkFacts(member_lists=(a_list(date(2024, 11, 2)),))
    march = NetworkFacts(member_lists=(a_list(date(2024, 3, 1)),))
    # 31 December: a November list is this year's list (sent in the year)
    dec31 = one(run(registry, "grundskola", november, date(2024, 12, 31)), ObligationKind.MEMBER_LIST)
    assert (dec31.state, dec31.id) == (State.OK, "grundskola:member_list:2024")
    # 1 January: the same November list already counts for the new year
    jan1 = one(run(registry, "grundskola", november, date(2025, 1, 1)), ObligationKind.MEMBER_LIST)
    assert (jan1.state, jan1.id, jan1.due) == (State.OK, "grundskola:member_list:2025", date(2025, 1, 31))
    # a list from March of last year does not: the new year's list is open
    jan1 = one(run(registry, "grundskola", march, date(2025, 1, 1)), ObligationKind.MEMBER_LIST)
    assert jan1.state is State.OPEN
    assert jan1.detail.endswith("Listan från 1 mars 2024 gäller tills vidare.")


def period_list(received: date, start: date, end: date) -> MemberListFact:
    return MemberListFact(received_on=received, effective_from=max(received, start), members=(member(),),
                          period_start=start, period_end=end)  # fmt: skip


def test_a_list_for_ht_2025_does_not_satisfy_2026(registry: Registry) -> None:
    ht = NetworkFacts(member_lists=(period_list(date(2025, 12, 3), date(2025, 7, 1), date(2025, 12, 31)),))
    finding = one(run(registry, "grundskola", ht, date(2026, 2, 10)), ObligationKind.MEMBER_LIST)
    assert (finding.id, finding.state) == ("grundskola:member_list:2026", State.OVERDUE)
    # without its period the same list, sent from 1 November, would have counted for 2026
    plain = NetworkFacts(member_lists=(a_list(date(2025, 12, 3)),))
    assert one(run(registry, "grundskola", plain, date(2026, 2, 10)), ObligationKind.MEMBER_LIST).state is State.OK


def test_a_list_for_next_year_sent_in_november_does_not_make_this_year_followed(registry: Registry) -> None:
    next_year = NetworkFacts(member_lists=(period_list(date(2025, 11, 20), date(2026, 1, 1), date(2026, 12, 31)),))
    counts = only(run(registry, "grundskola", next_year, date(2026, 1, 10)), ObligationKind.MEETING_COUNT)
    assert [f.id for f in counts] == ["grundskola:meeting_count:2026"], "no 'Bara 0 möten hölls 2025'"
    revision = only(run(registry, "elevhalsa", next_year, date(2026, 1, 10)), ObligationKind.COMMISSION_REVISION)
    assert [f.id for f in revision] == ["elevhalsa:commission_revision:2026"]
    finding = one(run(registry, "grundskola", next_year, date(2026, 1, 10)), ObligationKind.MEMBER_LIST)
    assert (finding.id, finding.state) == ("grundskola:member_list:2026", State.OK)


def test_a_school_year_list_counts_for_both_calendar_years(registry: Registry) -> None:
    school_year = NetworkFacts(member_lists=(period_list(date(2025, 9, 1), date(2025, 7, 1), date(2026, 6, 30)),))
    for today in (date(2025, 10, 1), date(2026, 3, 1)):
        assert one(run(registry, "grundskola", school_year, today), ObligationKind.MEMBER_LIST).state is State.OK


# --- meeting_dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "today", "facts", "state", "detail"),
    [
        ("grundskola", date(2025, 1, 20), NetworkFacts(), State.OPEN,
         "Plats och tid för nätverksträffarna 2025 ska skickas in senast 31 januari."),
        ("skis", date(2025, 1, 31), NetworkFacts(), State.OPEN,
         "Datum för nätverksträffarna 2025 ska skickas in senast 31 januari."),
        ("skis", date(2025, 2, 1), NetworkFacts(), State.OVERDUE,
         "Inga mötesdatum för 2025 har kommit in (datum skulle skickas senast 31 januari)."),
        ("grundskola", date(2025, 2, 1), NetworkFacts(), State.OVERDUE,
         "Inga mötesdatum för 2025 har kommit in (plats och tid skulle skickas senast 31 januari)."),
        ("grundskola", date(2025, 2, 15), NetworkFacts(meetings=meetings(date(2025, 3, 14), date(2025, 5, 9))),
         State.OK, "2 mötesdatum för 2025 finns registrerade."),
        # dates for next year do not count for this one
        ("grundskola", date(2025, 2, 15), NetworkFacts(meetings=meetings(date(2026, 3, 13))), State.OVERDUE,
         "Inga mötesdatum för 2025 har kommit in (plats och tid skulle skickas senast 31 januari)."),
        # a meeting known only from its minutes is not an announced date, nor is a cancelled one
        ("grundskola", date(2025, 2, 15),
         NetworkFacts(meetings=meetings(date(2025, 1, 10), announced=False) + meetings(date(2025, 3, 14),
                                                                                       status=CANCELLED)),
         State.OVERDUE, "Inga mötesdatum för 2025 har kommit in (plats och tid skulle skickas senast 31 januari)."),
    ],
)  # fmt: skip
def test_meeting_dates(registry: Registry, key: str, today: date, facts: NetworkFacts, state: State,
                       detail: str) -> None:  # fmt: skip
    finding = one(run(registry, key, facts, today), ObligationKind.MEETING_DATES)
    assert (finding.state, finding.detail, finding.due) == (state, detail, date(2025, 1, 31))


def test_meeting_dates_sent_in_november_count_for_the_coming_year(registry: Registry) -> None:
    facts = NetworkFacts(meetings=meetings(date(2025, 2, 7), date(2025, 4, 4), date(2025, 9, 5), date(2025, 11, 7)))
    assert one(run(registry, "skis", facts, date(2025, 1, 1)), ObligationKind.MEETING_DATES).state is State.OK
    # on 31 December the coming year's dates say nothing about this year's
    assert one(run(registry, "skis", facts, date(2024, 12, 31)), ObligationKind.MEETING_DATES).state is State.OVERDUE


# --- meeting_count --------------------------------------------------------------------------------

MARCH, MAY, SEPT, OCT, NOV = (
    date(2025, 3, 14),
    date(2025, 5, 9),
    date(2025, 9, 12),
    date(2025, 10, 10),
    date(2025, 11, 14),
)


@pytest.mark.parametrize(
    ("facts", "today", "state", "detail"),
    [
        (NetworkFacts(meetings=meetings(MARCH, MAY, SEPT, OCT)), date(2025, 12, 1), State.OK,
         "Möten 2025 – hållna: 4, planerade: 0, minst 4 krävs."),
        (NetworkFacts(meetings=meetings(MARCH, MAY, SEPT, OCT)), date(2025, 6, 1), State.OPEN,
         "Möten 2025 – hållna: 2, planerade: 2, minst 4 krävs."),
        (NetworkFacts(meetings=meetings(MARCH, MAY)), date(2025, 6, 1), State.AT_RISK,
         "Möten 2025 – hållna: 2, planerade: 0, minst 4 krävs. Planera in 2 möten till."),
        (NetworkFacts(meetings=meetings(MARCH, MAY, SEPT)), date(2025, 6, 1), State.AT_RISK,
         "Möten 2025 – hållna: 2, planerade: 1, minst 4 krävs. Planera in 1 möte till."),
        # a cancelled meeting does not count
        (NetworkFacts(meetings=meetings(MARCH, MAY, SEPT) + meetings(OCT, status=CANCELLED)), date(2025, 6, 1),
         State.AT_RISK, "Möten 2025 – hållna: 2, planerade: 1, minst 4 krävs. Planera in 1 möte till."),
        # a meeting today is planned, not held
        (NetworkFacts(meetings=meetings(MARCH, MAY, SEPT, OCT)), OCT, State.OPEN,
         "Möten 2025 – hållna: 3, planerade: 1, minst 4 krävs."),
        (NetworkFacts(meetings=meetings(MARCH, MAY, SEPT, OCT, NOV)), date(2025, 12, 31), State.OK,
         "Möten 2025 – hållna: 5, planerade: 0, minst 4 krävs."),
    ],
)  # fmt: skip
def test_meeting_count_this_year(registry: Registry, facts: NetworkFacts, today: date, state: State,
                                 detail: str) -> None:  # fmt: skip
    finding = one(run(registry, "grundskola", facts, today), ObligationKind.MEETING_COUNT)
    assert (finding.state, finding.detail, finding.due) == (state, detail, date(2025, 12, 31))


def test_meeting_count_minimum_comes_from_the_network(registry: Registry) -> None:
    facts = NetworkFacts(meetings=meetings(MARCH, MAY, SEPT, OCT))
    finding = one(run(registry, "vux", facts, date(2025, 6, 1)), ObligationKind.MEETING_COUNT)
    assert finding.state is State.AT_RISK
    assert finding.detail == "Möten 2025 – hållna: 2, planerade: 2, minst 6 krävs. Planera in 2 möten till."


@pytest.mark.parametrize(
    ("today", "shown"),
    [(date(2025, 1, 1), True), (date(2025, 3, 31), True), (date(2025, 4, 1), False), (date(2024, 12, 31), False)],
)
def test_a_closed_year_below_the_minimum_is_a_breach_until_31_march(registry: Registry, today: date,
                                                                     shown: bool) -> None:  # fmt: skip
    facts = NetworkFacts(meetings=meetings(date(2024, 3, 15), date(2024, 5, 10), date(2024, 9, 13)))
    counts = only(run(registry, "grundskola", facts, today), ObligationKind.MEETING_COUNT)
    previous = [f for f in counts if f.id == "grundskola:meeting_count:2024"]
    assert [f.id for f in counts][-1] == f"grundskola:meeting_count:{today.year}"
    if today.year == 2024:  # 31 December: still this year, at risk rather than breach
        assert previous[0].state is State.AT_RISK
        return
    if shown:
        assert len(previous) == 1
        assert previous[0].state is State.BREACH
        assert previous[0].detail == "Bara 3 möten hölls 2024, minst 4 krävs."
        assert previous[0].due == date(2024, 12, 31)
    else:
        assert previous == []


def test_a_closed_year_is_shown_only_when_the_registry_tracked_it(registry: Registry) -> None:
    empty = only(run(registry, "grundskola", NetworkFacts(), date(2025, 2, 15)), ObligationKind.MEETING_COUNT)
    assert [f.id for f in empty] == ["grundskola:meeting_count:2025"]
    # a member list received in 2024 is enough to say the registry followed the network that year
    tracked = NetworkFacts(member_lists=(a_list(date(2024, 3, 1)),))
    counts = only(run(registry, "grundskola", tracked, date(2025, 2, 15)), ObligationKind.MEETING_COUNT)
    assert [(f.id, f.state) for f in counts] == [
        ("grundskola:meeting_count:2024", State.BREACH),
        ("grundskola:meeting_count:2025", State.AT_RISK),
    ]
    assert counts[0].detail == "Bara 0 möten hölls 2024, minst 4 krävs."


def test_a_closed_year_at_the_minimum_is_ok(registry: Registry) -> None:
    facts = NetworkFacts(meetings=meetings(date(2024, 3, 15), date(2024, 5, 10), date(2024, 9, 13), date(2024, 12, 13)))
    counts = only(run(registry, "grundskola", facts, date(2025, 1, 1)), ObligationKind.MEETING_COUNT)
    assert counts[0].id == "grundskola:meeting_count:2024"
    assert (counts[0].state, counts[0].detail) == (State.OK, "Möten 2024 – hållna: 4, planerade: 0, minst 4 krävs.")
    assert "Bara 1 möte hölls 2024" in one(
        [f for f in run(registry, "grundskola", NetworkFacts(meetings=meetings(date(2024, 3, 15))), date(2025, 1, 1))
         if f.id.endswith("2024")], ObligationKind.MEETING_COUNT).detail  # fmt: skip


# --- meeting_weekday ------------------------------------------------------------------------------

THURSDAY, FRIDAY = date(2025, 3, 13), date(2025, 3, 14)


def test_a_held_meeting_on_a_thursday_is_a_breach(registry: Registry) -> None:
    facts = NetworkFacts(meetings=meetings(THURSDAY, FRIDAY))
    findings = only(run(registry, "skis", facts, date(2025, 3, 20)), ObligationKind.MEETING_WEEKDAY)
    assert len(findings) == 1
    finding = findings[0]
    assert finding.state is State.BREACH
    assert finding.detail == "Mötet torsdag 13 mars 2025 hölls på fel veckodag; nätverket ska mötas på fredagar."
    assert (finding.due, finding.meeting_date, finding.id) == (THURSDAY, THURSDAY, "skis:meeting_weekday:2025-03-13")


@pytest.mark.parametrize("today", [date(2025, 3, 1), THURSDAY])  # a meeting today is still planned
def test_a_planned_meeting_on_a_thursday_is_at_risk(registry: Registry, today: date) -> None:
    finding = one(run(registry, "elevhalsa", NetworkFacts(meetings=meetings(THURSDAY)), today),
                  ObligationKind.MEETING_WEEKDAY)  # fmt: skip
    assert finding.state is State.AT_RISK
    assert finding.detail == "Mötet torsdag 13 mars 2025 är planerat på fel veckodag; nätverket ska mötas på fredagar."


@pytest.mark.parametrize(
    "facts",
    [
        NetworkFacts(),
        NetworkFacts(meetings=meetings(FRIDAY, date(2025, 5, 9))),
        NetworkFacts(meetings=meetings(FRIDAY) + meetings(THURSDAY, status=CANCELLED)),
        NetworkFacts(meetings=meetings(date(2024, 3, 14))),  # last year's Thursday is history
    ],
)
def test_meeting_weekday_ok(registry: Registry, facts: NetworkFacts) -> None:
    finding = one(run(registry, "skis", facts, date(2025, 6, 1)), ObligationKind.MEETING_WEEKDAY)
    assert (finding.state, finding.detail) == (State.OK, "Alla möten 2025 ligger på fredagar.")


def test_networks_without_a_weekday_have_no_weekday_finding(registry: Registry) -> None:
    facts = NetworkFacts(meetings=meetings(THURSDAY))
    assert only(run(registry, "grundskola", facts, date(2025, 6, 1)), ObligationKind.MEETING_WEEKDAY) == []


# --- minutes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "received", "state", "detail"),
    [
        (date(2025, 3, 15), None, State.OPEN, "Protokoll från mötet fredag 14 mars 2025 ska skickas in senast 28 mars 2025."),
        (date(2025, 3, 28), None, State.OPEN, "Protokoll från mötet fredag 14 mars 2025 ska skickas in senast 28 mars 2025."),
        (date(2025, 3, 29), None, State.OVERDUE,
         "Protokoll från mötet fredag 14 mars 2025 saknas (skulle skickas in senast 28 mars 2025)."),
        (date(2025, 3, 29), date(2025, 3, 20), State.OK,
         "Protokoll från mötet fredag 14 mars 2025 kom in 20 mars 2025 (6 dagar efter mötet)."),
        (date(2025, 3, 16), date(2025, 3, 15), State.OK,
         "Protokoll från mötet fredag 14 mars 2025 kom in 15 mars 2025 (1 dag efter mötet)."),
        # minutes received late are ok once they are in
        (date(2025, 5, 1), date(2025, 4, 20), State.OK,
         "Protokoll från mötet fredag 14 mars 2025 kom in 20 april 2025 (37 dagar efter mötet). De kom in 23 dagar "
         "efter fristen på 14 dagar."),
    ],
)  # fmt: skip
def test_minutes(registry: Registry, today: date, received: date | None, state: State, detail: str) -> None:
    minutes = (MinutesFact(meeting_date=FRIDAY, received_on=received),) if received else ()
    facts = NetworkFacts(meetings=meetings(FRIDAY), minutes=minutes)
    finding = one(run(registry, "grundskola", facts, today), ObligationKind.MINUTES)
    assert (finding.state, finding.detail) == (state, detail)
    assert (finding.due, finding.meeting_date, finding.id) == (
        date(2025, 3, 28),
        FRIDAY,
        "grundskola:minutes:2025-03-14",
    )


def test_minutes_name_comes_from_the_network(registry: Registry) -> None:
    finding = one(run(registry, "skis", NetworkFacts(meetings=meetings(FRIDAY)), date(2025, 3, 29)),
                  ObligationKind.MINUTES)  # fmt: skip
    assert finding.detail.startswith("Minnesanteckningar från mötet fredag 14 mars 2025 saknas")


@pytest.mark.parametrize(
    ("facts", "today"),
    [
        (NetworkFacts(meetings=meetings(FRIDAY)), FRIDAY),  # a meeting today is not held yet
        (NetworkFacts(meetings=meetings(FRIDAY)), date(2025, 3, 1)),  # planned
        (NetworkFacts(meetings=meetings(FRIDAY, status=CANCELLED)), date(2025, 4, 30)),  # cancelled
        (NetworkFacts(meetings=meetings(date(2023, 12, 8))), date(2025, 1, 10)),  # two years back: history
    ],
)
def test_no_minutes_finding(registry: Registry, facts: NetworkFacts, today: date) -> None:
    assert only(run(registry, "grundskola", facts, today), ObligationKind.MINUTES) == []


def test_last_decembers_meeting_without_minutes_still_shows_in_january(registry: Registry) -> None:
    december = date(2024, 12, 13)
    facts = NetworkFacts(meetings=meetings(december, date(2024, 10, 11)),
                         minutes=(MinutesFact(meeting_date=date(2024, 10, 11), received_on=date(2024, 10, 20)),))  # fmt: skip
    findings = only(run(registry, "grundskola", facts, date(2025, 1, 10)), ObligationKind.MINUTES)
    # last year's meeting with minutes on file is done; the December one is still missing
    assert [(f.meeting_date, f.state) for f in findings] == [(december, State.OVERDUE)]
    assert (
        findings[0].detail
        == "Protokoll från mötet fredag 13 december 2024 saknas (skulle skickas in senast 27 december 2024)."
    )
    # ...and leaves the list once the minutes arrive in January
    done = NetworkFacts(meetings=facts.meetings,
                        minutes=facts.minutes + (MinutesFact(meeting_date=december, received_on=date(2025, 1, 12)),))  # fmt: skip
    assert only(run(registry, "grundskola", done, date(2025, 1, 13)), ObligationKind.MINUTES) == []


def test_minutes_of_a_meeting_on_19_december_are_open_across_the_new_year(registry: Registry) -> None:
    facts = NetworkFacts(meetings=meetings(date(2024, 12, 19)))
    dec31 = one(run(registry, "grundskola", facts, date(2024, 12, 31)), ObligationKind.MINUTES)
    jan2 = one(run(registry, "grundskola", facts, date(2025, 1, 2)), ObligationKind.MINUTES)
    jan3 = one(run(registry, "grundskola", facts, date(2025, 1, 3)), ObligationKind.MINUTES)
    assert (dec31.state, jan2.state, jan3.state) == (State.OPEN, State.OPEN, State.OVERDUE)
    assert jan2.due == date(2025, 1, 2)


def test_the_earliest_minutes_count_when_several_arrive(registry: Registry) -> None:
    minutes = (MinutesFact(FRIDAY, date(2025, 4, 2)), MinutesFact(FRIDAY, date(2025, 3, 18)))
    facts = NetworkFacts(meetings=meetings(FRIDAY), minutes=minutes)
    finding = one(run(registry, "grundskola", facts, date(2025, 4, 5)), ObligationKind.MINUTES)
    assert finding.detail.endswith("kom in 18 mars 2025 (4 dagar efter mötet).")


def test_a_meeting_known_only_from_its_minutes_has_a_minutes_finding(registry: Registry) -> None:
    facts = NetworkFacts(meetings=meetings(FRIDAY, announced=False),
                         minutes=(MinutesFact(FRIDAY, date(2025, 3, 17)),))  # fmt: skip
    assert one(run(registry, "grundskola", facts, date(2025, 3, 20)), ObligationKind.MINUTES).state is State.OK


# --- time zone and DST ----------------------------------------------------------------------------


def test_a_meeting_on_the_dst_change_day(registry: Registry) -> None:
    """30 March 2025 (clocks forward in Sweden) and 26 October 2025 (back): whole days, no hour lost or gained."""
    spring, autumn = date(2025, 3, 30), date(2025, 10, 26)
    facts = NetworkFacts(meetings=meetings(spring, autumn))
    on_the_day = run(registry, "skis", facts, spring)
    assert [f.meeting_date for f in only(on_the_day, ObligationKind.MINUTES)] == []
    spring_minutes = only(run(registry, "skis", facts, date(2025, 4, 13)), ObligationKind.MINUTES)
    assert [(f.due, f.state) for f in spring_minutes] == [(date(2025, 4, 13), State.OPEN)]
    assert spring_minutes[0].detail.startswith("Minnesanteckningar från mötet söndag 30 mars 2025")
    assert one(run(registry, "skis", facts, date(2025, 4, 14)), ObligationKind.MINUTES).state is State.OVERDUE
    autumn_minutes = only(run(registry, "skis", facts, date(2025, 11, 9)), ObligationKind.MINUTES)
    assert [(f.meeting_date, f.due, f.state) for f in autumn_minutes] == [
        (spring, date(2025, 4, 13), State.OVERDUE),
        (autumn, date(2025, 11, 9), State.OPEN),
    ]
    # both are Sundays: one held (breach), one planned (at risk) on 1 October
    weekday = only(run(registry, "skis", facts, date(2025, 10, 1)), ObligationKind.MEETING_WEEKDAY)
    assert [(f.meeting_date, f.state) for f in weekday] == [(spring, State.BREACH), (autumn, State.AT_RISK)]
    assert weekday[0].detail == "Mötet söndag 30 mars 2025 hölls på fel veckodag; nätverket ska mötas på fredagar."


# --- representation -------------------------------------------------------------------------------


def test_representation_without_a_list(registry: Registry) -> None:
    before = one(run(registry, "skis", NetworkFacts(), date(2025, 1, 31)), ObligationKind.REPRESENTATION)
    after = one(run(registry, "skis", NetworkFacts(), date(2025, 2, 1)), ObligationKind.REPRESENTATION)
    assert (before.state, after.state) == (State.OPEN, State.OVERDUE)
    assert after.detail == "Ingen medlemsförteckning finns, så det går inte att se att alla kommuner är företrädda."


def test_representation_lists_the_missing_municipalities(registry: Registry, municipalities: tuple[str, ...]) -> None:
    present = [m for m in municipalities if m not in ("Hjo", "Tibro", "Essunga")]
    facts = NetworkFacts(member_lists=(a_list(date(2025, 1, 10), *(member(m) for m in present), member(None)),))
    finding = one(run(registry, "skis", facts, date(2025, 2, 15)), ObligationKind.REPRESENTATION)
    assert finding.state is State.OVERDUE
    assert finding.detail == "3 kommuner saknar representant i nätverket: Essunga, Hjo och Tibro."
    early = one(run(registry, "skis", facts, date(2025, 1, 15)), ObligationKind.REPRESENTATION)
    assert early.state is State.OPEN


def test_one_missing_municipality(registry: Registry, municipalities: tuple[str, ...]) -> None:
    facts = NetworkFacts(member_lists=(a_list(date(2025, 1, 10), *(member(m) for m in municipalities[1:])),))
    finding = one(run(registry, "skis", facts, date(2025, 2, 15)), ObligationKind.REPRESENTATION)
    assert finding.detail == f"1 kommun saknar representant i nätverket: {municipalities[0]}."


def test_all_15_municipalities_represented(registry: Registry, municipalities: tuple[str, ...]) -> None:
    assert len(municipalities) == 15
    # one person may represent a municipality; several people from one count once
    facts = NetworkFacts(member_lists=(a_list(date(2024, 3, 1), *(member(m) for m in municipalities), member("Skövde",
                                                                                                            "Cecilia")),))  # fmt: skip
    finding = one(run(registry, "skis", facts, date(2025, 2, 15)), ObligationKind.REPRESENTATION)
    assert (finding.state, finding.detail) == (State.OK, "Alla 15 kommuner är företrädda i medlemsförteckningen.")


def test_representation_uses_the_list_in_force(registry: Registry, municipalities: tuple[str, ...]) -> None:
    full = a_list(date(2024, 3, 1), *(member(m) for m in municipalities))
    newer = a_list(date(2025, 1, 20), member("Skövde"))
    facts = NetworkFacts(member_lists=(full, newer))
    assert one(run(registry, "skis", facts, date(2025, 1, 19)), ObligationKind.REPRESENTATION).state is State.OK
    after = one(run(registry, "skis", facts, date(2025, 1, 20)), ObligationKind.REPRESENTATION)
    assert after.state is State.OPEN
    assert after.detail.startswith("14 kommuner saknar representant")


# --- commission_revision --------------------------------------------------------------------------


def test_commission_revision(registry: Registry) -> None:
    empty = one(run(registry, "elevhalsa", NetworkFacts(), date(2025, 12, 31)), ObligationKind.COMMISSION_REVISION)
    assert (empty.state, empty.due) == (State.OPEN, date(2025, 12, 31))
    assert empty.detail == (
        "Uppdragsbeskrivningen ska revideras en gång per år; den reviderade för 2025 har inte kommit in "
        "(senast 31 december 2025)."
    )
    got = NetworkFacts(deliverables=(DeliverableFact("commission_revision", date(2025, 3, 3)),))
    ok = one(run(registry, "elevhalsa", got, date(2025, 6, 1)), ObligationKind.COMMISSION_REVISION)
    assert (ok.state, ok.detail) == (State.OK, "Reviderad uppdragsbeskrivning för 2025 kom in 3 mars 2025.")
    # last year's revision does not count for this year
    new_year = one(run(registry, "elevhalsa", got, date(2026, 1, 1)), ObligationKind.COMMISSION_REVISION)
    assert (new_year.state, new_year.id) == (State.OPEN, "elevhalsa:commission_revision:2026")


def test_commission_revision_overdue_after_an_earlier_deadline(registry: Registry) -> None:
    skis = registry.network("skis")
    network = skis.model_copy(update={"deadlines": skis.deadlines.model_copy(update={"commission_revision": "06-30"})})
    names = registry.municipality_index().names
    assert one(evaluate(network, NetworkFacts(), date(2025, 6, 30), names),
               ObligationKind.COMMISSION_REVISION).state is State.OPEN  # fmt: skip
    late = one(evaluate(network, NetworkFacts(), date(2025, 7, 1), names), ObligationKind.COMMISSION_REVISION)
    assert (late.state, late.due) == (State.OVERDUE, date(2025, 6, 30))


def test_last_years_missing_revision_is_overdue_until_the_end_of_march(registry: Registry) -> None:
    tracked = NetworkFacts(meetings=meetings(date(2025, 9, 12)))
    january = only(run(registry, "elevhalsa", tracked, date(2026, 1, 12)), ObligationKind.COMMISSION_REVISION)
    assert [(f.id, f.state, f.due) for f in january] == [
        ("elevhalsa:commission_revision:2025", State.OVERDUE, date(2025, 12, 31)),
        ("elevhalsa:commission_revision:2026", State.OPEN, date(2026, 12, 31)),
    ]
    april = only(run(registry, "elevhalsa", tracked, date(2026, 4, 1)), ObligationKind.COMMISSION_REVISION)
    assert [f.id for f in april] == ["elevhalsa:commission_revision:2026"]
    # Received last year: nothing about last year; not followed last year: no claim about it either.
    revised = NetworkFacts(meetings=tracked.meetings,
                           deliverables=(DeliverableFact("commission_revision", date(2025, 10, 1)),))  # fmt: skip
    assert [f.id for f in only(run(registry, "elevhalsa", revised, date(2026, 1, 12)),
                               ObligationKind.COMMISSION_REVISION)] == ["elevhalsa:commission_revision:2026"]  # fmt: skip
    assert (
        len(only(run(registry, "elevhalsa", NetworkFacts(), date(2026, 1, 12)), ObligationKind.COMMISSION_REVISION))
        == 1
    )


def test_networks_without_revision_have_no_revision_finding(registry: Registry) -> None:
    assert only(run(registry, "vux", NetworkFacts(), date(2025, 6, 1)), ObligationKind.COMMISSION_REVISION) == []


# --- deliverables ---------------------------------------------------------------------------------


def test_vux_2021_deliverables_still_missing_in_2025_are_all_overdue(registry: Registry) -> None:
    findings = only(run(registry, "vux", NetworkFacts(), date(2025, 2, 15)), ObligationKind.DELIVERABLE)
    assert len(findings) == 6 and {f.state for f in findings} == {State.OVERDUE}


def test_a_deliverable_that_came_in_before_last_year_is_history(registry: Registry) -> None:
    facts = NetworkFacts(deliverables=(DeliverableFact("komx-delrapport-2021", date(2021, 6, 28)),))
    findings = only(run(registry, "vux", facts, date(2025, 2, 15)), ObligationKind.DELIVERABLE)
    assert len(findings) == 5 and not [f for f in findings if f.id.endswith(":komx-delrapport-2021")]


def test_a_late_deliverable_says_how_late(registry: Registry) -> None:
    facts = NetworkFacts(deliverables=(DeliverableFact("kompetensutvecklingsplan-2023-2025", date(2025, 11, 14)),))
    (finding,) = only(run(registry, "introduktion", facts, date(2025, 11, 21)), ObligationKind.DELIVERABLE)
    assert finding.state is State.OK
    assert finding.detail.endswith("Den kom in 684 dagar efter fristen (31 december 2023).")


def test_vux_deliverables_in_2022(registry: Registry) -> None:
    facts = NetworkFacts(deliverables=(DeliverableFact("komx-delrapport-2021", date(2021, 6, 28)),))
    findings = only(run(registry, "vux", facts, date(2022, 3, 1)), ObligationKind.DELIVERABLE)
    by_key = {f.id.rsplit(":", 1)[1]: f for f in findings}
    assert by_key["komx-rapport-2022"].state is State.OPEN
    assert by_key["komx-rapport-2022"].detail == (
        "Återrapport: implementering av KomX ska lämnas senast 30 april 2022."
    )
    assert by_key["sprakstod-rapport-2021"].state is State.OVERDUE
    assert by_key["sprakstod-rapport-2021"].detail == (
        "Återrapport: gemensam struktur för yrkesutbildningar med språkstöd har inte kommit in (senast 31 oktober 2021)."
    )
    assert by_key["komx-delrapport-2021"].state is State.OK
    assert by_key["komx-delrapport-2021"].detail == "Delrapport: implementering av KomX kom in 28 juni 2021."
    assert by_key["komx-rapport-2022"].quote.startswith("Implementera beslutad organisation för KomX.")


@pytest.mark.parametrize(
    ("today", "state"),
    [(date(2023, 12, 31), State.OPEN), (date(2024, 1, 1), State.OVERDUE), (date(2024, 12, 31), State.OVERDUE),
     (date(2026, 1, 1), State.OVERDUE)],
)  # fmt: skip
def test_introduktion_plan_across_the_year_boundaries(registry: Registry, today: date, state: State | None) -> None:
    findings = only(run(registry, "introduktion", NetworkFacts(), today), ObligationKind.DELIVERABLE)
    assert [f.state for f in findings] == ([state] if state else [])


def deliverable_network(registry: Registry) -> Network:
    report = Deliverable(key="rapport-2025", title="Rapport om studiero", due=date(2025, 6, 30),
                         quote="Rapportera om studiero senast juni 2025.")  # fmt: skip
    return registry.network("grundskola").model_copy(update={"deliverables": (report,)})


@pytest.mark.parametrize(
    ("today", "received", "state", "detail"),
    [
        (date(2025, 2, 1), None, State.OPEN, "Rapport om studiero ska lämnas senast 30 juni 2025."),
        (date(2025, 6, 30), None, State.OPEN, "Rapport om studiero ska lämnas senast 30 juni 2025."),
        (date(2025, 7, 1), None, State.OVERDUE, "Rapport om studiero har inte kommit in (senast 30 juni 2025)."),
        (date(2025, 7, 1), date(2025, 6, 12), State.OK, "Rapport om studiero kom in 12 juni 2025."),
        (date(2025, 9, 1), date(2025, 8, 20), State.OK,
         "Rapport om studiero kom in 20 augusti 2025. Den kom in 51 dagar efter fristen (30 juni 2025)."),
    ],
)  # fmt: skip
def test_a_deliverable_due_this_year(registry: Registry, today: date, received: date | None, state: State,
                                     detail: str) -> None:  # fmt: skip
    facts = NetworkFacts(deliverables=(DeliverableFact("rapport-2025", received),) if received else ())
    finding = one(evaluate(deliverable_network(registry), facts, today, ()), ObligationKind.DELIVERABLE)
    assert (finding.state, finding.detail, finding.due) == (state, detail, date(2025, 6, 30))
    assert finding.id == "grundskola:deliverable:rapport-2025"
    assert finding.quote == "Rapportera om studiero senast juni 2025."


# --- a whole year -------------------------------------------------------------------------------


def test_a_well_kept_network_is_all_ok(registry: Registry, municipalities: tuple[str, ...]) -> None:
    days = (date(2025, 2, 7), date(2025, 4, 4), date(2025, 9, 5), date(2025, 11, 7))
    facts = NetworkFacts(
        member_lists=(a_list(date(2024, 11, 15), *(member(m) for m in municipalities)),),
        meetings=meetings(*days),
        minutes=tuple(MinutesFact(d, date(d.year, d.month, d.day + 3)) for d in days),
        deliverables=(DeliverableFact("commission_revision", date(2025, 5, 2)),),
    )
    findings = run(registry, "skis", facts, date(2025, 12, 1))
    assert {f.state for f in findings} == {State.OK}, [(f.id, f.state) for f in findings if f.state is not State.OK]
    assert len(only(findings, ObligationKind.MINUTES)) == 4
