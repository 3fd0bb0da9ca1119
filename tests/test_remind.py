"""Planning reminders, the admin's summary and receipts: pure functions, plain values, no server.

Dates are real 2025 dates, chosen for their Swedish holidays and weekends.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mailbot.remind import (
    SUBJECT_LIMIT,
    LedgerEntry,
    ReceiptRequest,
    is_working_day,
    item_instruction,
    plan_receipt,
    plan_reminders,
    receipt_refusal,
    receipt_subject,
    reminder_subject,
)
from mailbot.settings import ReceiptSettings, ReminderSettings
from registry.config import Network, Registry, load_registry
from registry.domain import ObligationKind, State
from registry.facts import Finding
from registry.paths import config_dir

ADMIN = ["utbildning@skaraborg.se"]
PRESIDIUM = {"grundskola": ["ordforande@skovde.se", "sekreterare@lidkoping.se"]}
CHIEFS = {"grundskola": ["skolchef@mariestad.se"]}
OWN = ["utbildning@skaraborg.se", "mailbot.skaraborg.se"]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(config_dir())


@pytest.fixture(scope="module")
def grundskola(registry: Registry) -> Network:
    return registry.network("grundskola")


def member_list(state: State = State.OVERDUE, due: date = date(2025, 1, 31), network: str = "grundskola") -> Finding:
    return Finding(
        network=network,
        obligation=ObligationKind.MEMBER_LIST,
        state=state,
        due=due,
        detail="Medlemsförteckningen för 2025 har inte kommit in (skulle skickas senast 31 januari).",
        id=f"{network}:member_list:{due.year}",
        quote="Sekreteraren ansvarar för att förteckning på de personer som ingår i nätverket ... skickas till utbildning@skaraborg.se.",
    )


def minutes(meeting: date, state: State = State.OVERDUE, network: str = "grundskola") -> Finding:
    return Finding(
        network=network,
        obligation=ObligationKind.MINUTES,
        state=state,
        due=meeting + timedelta(days=14),
        detail="Protokoll från mötet saknas.",
        id=f"{network}:minutes:{meeting.isoformat()}",
        meeting_date=meeting,
        quote="Skriva protokoll vid nätverksträffarna och ansvara för att dessa skickas in till utbildning@skaraborg.se.",
    )


def sent(finding: Finding, *days: date, kind: str = "reminder") -> list[LedgerEntry]:
    return [LedgerEntry(finding.network, finding.id, day, escalated=False, kind=kind) for day in days]


def plan(registry: Registry, findings: list[Finding], ledger: list[LedgerEntry], today: date, **options):
    return plan_reminders(
        registry.networks,
        findings,
        options.pop("presidium", PRESIDIUM),
        options.pop("school_chiefs", CHIEFS),
        ledger,
        today,
        options.pop("settings", ReminderSettings()),
        options.pop("admin", ADMIN),
        options.pop("bouncing", set()),
    )


# --- working days ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 6, 5), True),  # Thursday
        (date(2025, 6, 6), False),  # Sveriges nationaldag (Friday)
        (date(2025, 6, 7), False),  # Saturday
        (date(2025, 6, 8), False),  # Sunday (pingstdagen)
        (date(2025, 6, 9), True),  # Monday after Whitsun: a working day in Sweden since 2005
        (date(2025, 6, 19), True),  # Thursday before midsommarafton
        (date(2025, 6, 20), False),  # midsommarafton: not a red day, but offices are closed
        (date(2025, 12, 24), False),  # julafton
        (date(2025, 12, 31), False),  # nyårsafton
        (date(2025, 1, 6), False),  # trettondedag jul
        (date(2025, 4, 18), False),  # långfredagen
        (date(2025, 5, 29), False),  # Kristi himmelsfärds dag
        (date(2025, 5, 30), True),  # the "klämdag" after it is a working day
        (date(2025, 11, 1), False),  # alla helgons dag (Saturday)
        (date(2026, 1, 2), True),
    ],
)
def test_working_days_follow_the_swedish_calendar(day: date, working: bool) -> None:
    assert is_working_day(day) is working


# --- when a reminder goes -------------------------------------------------------------------------

# Member list due Friday 31 January 2025; (ledger dates, today) -> (reminder planned?, escalated?)
SCHEDULE = [
    pytest.param([], date(2025, 1, 31), False, False, id="due day itself: still open"),
    pytest.param([], date(2025, 2, 1), False, False, id="first overdue day is a Saturday: wait"),
    pytest.param([], date(2025, 2, 3), True, False, id="first working day after the deadline"),
    pytest.param([date(2025, 2, 3)], date(2025, 2, 4), False, False, id="the day after: none"),
    pytest.param([date(2025, 2, 3)], date(2025, 2, 7), False, False, id="4 days later: none"),
    pytest.param([date(2025, 2, 3)], date(2025, 2, 10), True, False, id="7 days later: repeat"),
    pytest.param([date(2025, 2, 3), date(2025, 2, 10)], date(2025, 2, 14), False, False, id="between repeats"),
    pytest.param([date(2025, 2, 3), date(2025, 2, 10)], date(2025, 2, 17), True, True, id="third: escalated"),
    pytest.param(
        [date(2025, 2, 3), date(2025, 2, 10), date(2025, 2, 17)], date(2025, 2, 24), True, True, id="stays escalated"
    ),  # fmt: skip
]


@pytest.mark.parametrize(("ledger_days", "today", "planned", "escalated"), SCHEDULE)
def test_reminder_schedule_first_repeat_and_escalation(
    registry: Registry, ledger_days: list[date], today: date, planned: bool, escalated: bool
) -> None:
    finding = member_list(State.OVERDUE if today > date(2025, 1, 31) else State.OPEN)

    mails = plan(registry, [finding], sent(finding, *ledger_days), today)

    assert bool(mails) is planned
    if planned:
        (mail,) = mails
        assert mail.escalated is escalated
        assert mail.to == ("ordforande@skovde.se", "sekreterare@lidkoping.se")
        expected_cc = ("skolchef@mariestad.se", "utbildning@skaraborg.se") if escalated else ()
        assert mail.cc == expected_cc
        assert mail.school_chief_copied is escalated
        assert mail.times_reminded == (len(ledger_days),)


@pytest.mark.parametrize(
    "today",
    [date(2025, 6, 6), date(2025, 6, 7), date(2025, 6, 8), date(2025, 6, 20), date(2025, 12, 24)],
    ids=["national day", "saturday", "sunday", "midsommarafton", "julafton"],
)
def test_nothing_is_planned_on_a_non_working_day(registry: Registry, today: date) -> None:
    findings = [
        member_list(),
        Finding("skis", ObligationKind.MEETING_COUNT, State.BREACH, None, "x", "skis:meeting_count:2024"),
    ]

    assert plan(registry, findings, [], today) == []


def test_a_repeat_due_on_midsommarafton_goes_the_next_working_day(registry: Registry) -> None:
    finding = minutes(date(2025, 5, 23))  # due 6 June
    ledger = sent(finding, date(2025, 6, 13))  # reminded on Friday 13 June; a week later is midsommarafton

    assert plan(registry, [finding], ledger, date(2025, 6, 20)) == []  # midsommarafton
    assert plan(registry, [finding], ledger, date(2025, 6, 23))  # Monday


def test_reminders_stop_the_day_the_obligation_is_met(registry: Registry) -> None:
    met = member_list(State.OK)

    assert plan(registry, [met], sent(met, date(2025, 2, 3)), date(2025, 2, 10)) == []


def test_one_mail_per_network_lists_every_item_due(registry: Registry) -> None:
    findings = [member_list(), minutes(date(2025, 1, 10)), member_list(network="vux")]

    mails = plan(registry, findings, [], date(2025, 2, 3), presidium={**PRESIDIUM, "vux": ["ordf@vara.se"]})

    assert [(m.network, [f.id for f in m.findings]) for m in mails] == [
        ("grundskola", ["grundskola:member_list:2025", "grundskola:minutes:2025-01-10"]),
        ("vux", ["vux:member_list:2025"]),
    ]
    assert mails[0].subject == "Påminnelse: Rektorer i grundskolan – medlemsförteckning och protokoll saknas"


def test_an_item_reminded_recently_is_shown_but_not_recorded(registry: Registry) -> None:
    old, new = member_list(), minutes(date(2025, 1, 24))  # the minutes were due Friday 7 February
    ledger = sent(old, date(2025, 2, 5))

    (mail,) = plan(registry, [old, new], ledger, date(2025, 2, 10))

    assert [f.id for f in mail.findings] == ["grundskola:minutes:2025-01-24"]
    assert [f.id for f in mail.also_open] == ["grundskola:member_list:2025"]


def test_the_dedup_key_names_network_day_and_items(registry: Registry) -> None:
    first = plan(registry, [member_list()], [], date(2025, 2, 3))[0]
    again = plan(registry, [member_list()], [], date(2025, 2, 3))[0]
    other = plan(registry, [member_list(), minutes(date(2025, 1, 10))], [], date(2025, 2, 3))[0]

    assert first.dedup_key == again.dedup_key
    assert first.dedup_key.startswith("reminder:grundskola:2025-02-03:")
    assert other.dedup_key != first.dedup_key


def test_a_second_run_the_same_day_plans_nothing_even_with_a_new_item(registry: Registry) -> None:
    ledger = sent(member_list(), date(2025, 2, 3))

    assert plan(registry, [member_list(), minutes(date(2025, 1, 10))], ledger, date(2025, 2, 3)) == []


def test_breach_goes_only_to_the_admin_summary_once(registry: Registry) -> None:
    breach = Finding(
        "grundskola", ObligationKind.MEETING_COUNT, State.BREACH, date(2024, 12, 31),
        "Bara 2 möten hölls 2024, minst 4 krävs.", "grundskola:meeting_count:2024", quote="Minst 4 möten per år.",
    )  # fmt: skip

    (summary,) = plan(registry, [breach], [], date(2025, 2, 3))
    later = plan(registry, [breach], sent(breach, date(2025, 2, 3), kind="admin_summary"), date(2025, 2, 10))

    assert summary.kind == "admin_summary"
    assert summary.network is None
    assert summary.to == ("utbildning@skaraborg.se",)
    assert summary.dedup_key.startswith("admin_summary:2025-02-03:")
    assert later == []


def test_a_breach_reminded_earlier_as_at_risk_is_still_summarised(registry: Registry) -> None:
    breach = Finding("grundskola", ObligationKind.MEETING_COUNT, State.BREACH, date(2024, 12, 31), "x",
                     "grundskola:meeting_count:2024")  # fmt: skip

    (summary,) = plan(registry, [breach], sent(breach, date(2024, 10, 7)), date(2025, 2, 3))

    assert summary.kind == "admin_summary"


@pytest.mark.parametrize(
    ("fallback", "expected_to", "source"),
    [
        ("kontakt@skovde.se", ("kontakt@skovde.se",), "fallback"),
        (None, ("utbildning@skaraborg.se",), "admin"),
    ],
)
def test_without_a_presidium_the_fallback_contact_or_the_admin_is_reminded(
    registry: Registry, grundskola: Network, fallback: str | None, expected_to: tuple[str, ...], source: str
) -> None:
    network = grundskola.model_copy(update={"fallback_contact": fallback})
    mails = plan_reminders([network], [member_list()], {}, {}, [], date(2025, 2, 3), ReminderSettings(), ADMIN, set())

    assert mails[0].to == expected_to
    assert mails[0].recipients_source == source


def test_bouncing_addresses_are_left_out(registry: Registry) -> None:
    (mail,) = plan(registry, [member_list()], [], date(2025, 2, 3), bouncing={"Sekreterare@Lidkoping.se"})

    assert mail.to == ("ordforande@skovde.se",)
    assert mail.skipped_bouncing == ("sekreterare@lidkoping.se",)


def test_when_the_whole_presidium_bounces_the_fallback_gets_it(registry: Registry, grundskola: Network) -> None:
    network = grundskola.model_copy(update={"fallback_contact": "kontakt@skovde.se"})
    bouncing = {"ordforande@skovde.se", "sekreterare@lidkoping.se"}

    (mail,) = plan_reminders(
        [network], [member_list()], PRESIDIUM, {}, [], date(2025, 2, 3), ReminderSettings(), ADMIN, bouncing
    )

    assert mail.to == ("kontakt@skovde.se",)
    assert mail.recipients_source == "fallback"


def test_heads_up_goes_once_before_the_deadline_and_does_not_count_as_a_reminder(registry: Registry) -> None:
    settings = ReminderSettings(heads_up_days=5)
    coming = member_list(State.OPEN)  # due Friday 31 January

    too_early = plan(registry, [coming], [], date(2025, 1, 24), settings=settings)
    (heads_up,) = plan(registry, [coming], [], date(2025, 1, 27), settings=settings)
    again = plan(registry, [coming], sent(coming, date(2025, 1, 27)), date(2025, 1, 28), settings=settings)
    (first,) = plan(registry, [member_list()], sent(coming, date(2025, 1, 27)), date(2025, 2, 3), settings=settings)

    assert too_early == []
    assert heads_up.subject == "Snart dags: Rektorer i grundskolan – medlemsförteckning"
    assert again == []
    assert first.escalated is False and first.times_reminded == (0,)


def test_no_heads_up_by_default(registry: Registry) -> None:
    assert plan(registry, [member_list(State.OPEN)], [], date(2025, 1, 30)) == []


def test_too_few_meetings_is_an_item_only_after_the_dates_were_due(registry: Registry) -> None:
    at_risk = Finding("grundskola", ObligationKind.MEETING_COUNT, State.AT_RISK, date(2025, 12, 31),
                      "Möten 2025 – hållna: 0, planerade: 0, minst 4 krävs.", "grundskola:meeting_count:2025")  # fmt: skip

    assert plan(registry, [at_risk], [], date(2025, 1, 8)) == []
    (mail,) = plan(registry, [at_risk], [], date(2025, 2, 3))
    assert mail.subject == "Påminnelse: Rektorer i grundskolan – för få möten planerade"


# --- wording by case: subjects and each item's instruction ---------------------------------------


def _finding(network: str, kind: ObligationKind, key: str, state: State = State.OVERDUE, detail: str = "",
             due: date | None = date(2025, 10, 31), meeting: date | None = None) -> Finding:  # fmt: skip
    return Finding(network, kind, state, due, detail or "Saknas.", f"{network}:{kind.value}:{key}", meeting)


def _every_kind(network: str) -> list[Finding]:
    return [
        member_list(network=network),
        _finding(network, ObligationKind.MEETING_DATES, "2025"),
        minutes(date(2025, 9, 19), network=network),
        minutes(date(2025, 10, 24), network=network),
        _finding(network, ObligationKind.DELIVERABLE, "plan"),
        _finding(network, ObligationKind.DELIVERABLE, "rapport"),
        _finding(network, ObligationKind.COMMISSION_REVISION, "2025"),
        _finding(
            network,
            ObligationKind.MEETING_COUNT,
            "2025",
            State.AT_RISK,
            "Möten 2025 – hållna: 2, planerade: 0, minst 4 krävs. Planera in 2 möten till.",
        ),  # fmt: skip
        _finding(network, ObligationKind.REPRESENTATION, "2025", State.AT_RISK),
        _finding(network, ObligationKind.MEETING_WEEKDAY, "2025-12-04", State.AT_RISK, meeting=date(2025, 12, 4)),
    ]


def test_subject_names_the_network_short_and_what_is_missing_with_counts(registry: Registry) -> None:
    skis = registry.network("skis")
    two = [member_list(network="skis"), minutes(date(2025, 9, 19), network="skis"),
           minutes(date(2025, 10, 24), network="skis")]  # fmt: skip
    assert (
        reminder_subject(skis, two)
        == "Påminnelse: SKIS – medlemsförteckning och minnesanteckningar (2 möten) saknas"
    )
    vux = registry.network("vux")
    vux_items = [minutes(date(2025, 9, 16), network="vux"), minutes(date(2025, 10, 21), network="vux"),
                 *(_finding("vux", ObligationKind.DELIVERABLE, str(n)) for n in range(5))]  # fmt: skip
    assert reminder_subject(vux, vux_items) == "Påminnelse: Vuxenutbildning – 2 protokoll och 5 redovisningar saknas"
    count = _every_kind("introduktion")[7]
    assert reminder_subject(registry.network("introduktion"), [count]) == (
        "Påminnelse: Introduktionsprogrammen – 2 möten till behöver planeras"
    )


@pytest.mark.parametrize("network", ["skis", "grundskola", "elevhalsa", "introduktion", "vux"])
def test_a_subject_is_at_most_78_characters_and_starts_with_the_most_important_item(
    registry: Registry, network: str
) -> None:
    every = _every_kind(network)
    subjects = [reminder_subject(registry.network(network), every[start:]) for start in range(len(every))]
    subjects += [reminder_subject(registry.network(network), [finding]) for finding in every]
    assert max(len(subject) for subject in subjects) <= SUBJECT_LIMIT == 78, max(subjects, key=len)
    assert all(subject.startswith("Påminnelse: ") and "…" not in subject for subject in subjects)
    whole = subjects[0]
    assert whole.split(" – ", 1)[1].startswith("medlemsförteckning") and whole.endswith(" m.m.")
    heads_up = reminder_subject(registry.network(network), [member_list(State.OPEN, network=network)])
    assert heads_up.startswith("Snart dags: ") and heads_up.endswith("– medlemsförteckning")


def test_each_item_says_what_to_do_for_its_kind(registry: Registry) -> None:
    skis = registry.network("skis")
    said = {f.obligation: item_instruction(f, skis) for f in _every_kind("skis")}
    assert said[ObligationKind.MEMBER_LIST] == "Svara med medlemsförteckningen som bilaga (Excel, Word eller PDF)."
    assert (
        "direkt i mejlet" in said[ObligationKind.MEETING_DATES]
        and "bilaga behövs inte" in said[ObligationKind.MEETING_DATES]
    )
    assert said[ObligationKind.MEETING_COUNT] == "Planera in två möten till och svara med datum, tid och plats för dem."
    assert said[ObligationKind.MINUTES] == "Svara med minnesanteckningarna som bilaga."
    assert said[ObligationKind.DELIVERABLE] == "Svara med redovisningen som bilaga."
    assert said[ObligationKind.MEETING_WEEKDAY] == "Flytta mötet till en fredag och svara med det nya datumet."
    one = _finding("skis", ObligationKind.MEETING_COUNT, "2025", State.AT_RISK, "Planera in 1 möte till.")
    assert item_instruction(one, skis) == "Planera in ett möte till och svara med datum, tid och plats för det."
    held = _finding("skis", ObligationKind.MEETING_WEEKDAY, "2025-10-09", State.BREACH, meeting=date(2025, 10, 9))
    breach = item_instruction(held, skis)
    assert breach.startswith("Det går inte att ta igen") and "bilaga" not in breach and "Svara" not in breach
    assert all("bilaga" not in text for kind, text in said.items()
               if kind in (ObligationKind.MEETING_COUNT, ObligationKind.MEETING_WEEKDAY))  # fmt: skip


# --- receipts -------------------------------------------------------------------------------------

NOW = datetime(2025, 3, 17, 10, 0, tzinfo=UTC)


def request(**changes) -> ReceiptRequest:
    values = dict(
        mail_id=7,
        message_id="<AM0PR01MB1234@eurprd01.prod.outlook.com>",
        sender_email="Anna.Svensson@Skovde.se",
        sender_name="Anna Svensson",
        subject="SV: Protokoll 14/3",
        received=NOW - timedelta(hours=1),
        network_key="grundskola",
        network_name="Rektorer i grundskolan",
        kinds=("minutes",),
        minutes_meeting_date=date(2025, 3, 14),
    )
    values.update(changes)
    return ReceiptRequest(**values)


def test_a_registered_mail_gets_a_receipt_answering_it() -> None:
    receipt = plan_receipt(request(), NOW, ReceiptSettings(), 0, OWN, set())

    assert receipt is not None
    assert receipt.to == ("anna.svensson@skovde.se",)
    assert receipt.subject == "Kvittens: Protokoll 14/3"
    assert receipt.in_reply_to == "AM0PR01MB1234@eurprd01.prod.outlook.com"
    assert receipt.dedup_key == "receipt:7"


@pytest.mark.parametrize(
    ("changes", "recent", "reason"),
    [
        ({"status": "review"}, 0, "status"),
        ({"kinds": ("auto_reply",)}, 0, "auto-reply"),
        ({"kinds": ("bulk", "minutes")}, 0, "bulk"),
        ({"kinds": ("reply",)}, 0, "nothing registered"),
        ({"received": NOW - timedelta(days=15)}, 0, "older than 14 days"),
        ({"sender_email": ""}, 0, "no valid sender"),
        ({"sender_email": "anna.svensson@"}, 0, "no valid sender"),
        ({"sender_email": "anna@skovde.se\r\nBcc: evil@example.com"}, 0, "no valid sender"),
        ({"sender_email": "MAILER-DAEMON@skovde.se"}, 0, "robot"),
        ({"sender_email": "postmaster@skovde.se"}, 0, "robot"),
        ({"sender_email": "noreply@skolplattformen.se"}, 0, "robot"),
        ({"sender_email": "no-reply@skovde.se"}, 0, "robot"),
        ({"sender_email": "owner-rektorer@lists.skovde.se"}, 0, "robot"),
        ({"sender_email": "rektorer-request@lists.skovde.se"}, 0, "robot"),
        ({"sender_email": "utbildning@skaraborg.se"}, 0, "own mail"),
        ({"sender_email": "robot@mailbot.skaraborg.se"}, 0, "own mail"),
        ({"message_id": "<receipt-ab12@mailbot.skaraborg.se>"}, 0, "own mail"),
        ({}, 5, "per-sender limit"),
    ],
)
def test_no_receipt(changes: dict, recent: int, reason: str) -> None:
    why = receipt_refusal(request(**changes), NOW, ReceiptSettings(), recent, OWN, set())

    assert why is not None and reason in why
    assert plan_receipt(request(**changes), NOW, ReceiptSettings(), recent, OWN, set()) is None


def test_no_receipt_when_disabled_or_to_a_bouncing_address() -> None:
    assert plan_receipt(request(), NOW, ReceiptSettings(enabled=False), 0, OWN, set()) is None
    assert plan_receipt(request(), NOW, ReceiptSettings(), 0, OWN, {"anna.svensson@skovde.se"}) is None


def test_federation_staff_get_receipts_although_they_share_the_domain() -> None:
    receipt = plan_receipt(request(sender_email="lena.berg@skaraborg.se"), NOW, ReceiptSettings(), 4, OWN, set())

    assert receipt is not None and receipt.to == ("lena.berg@skaraborg.se",)


def test_a_mail_just_inside_the_age_limit_gets_a_receipt() -> None:
    assert plan_receipt(request(received=NOW - timedelta(days=13, hours=23)), NOW, ReceiptSettings(), 0, OWN, set())


@pytest.mark.parametrize(
    ("original", "subject"),
    [
        ("Protokoll SKIS 14/3", "Kvittens: Protokoll SKIS 14/3"),
        ("SV: VB: Sv: Mötesdatum HT 2025", "Kvittens: Mötesdatum HT 2025"),
        ("RE: Kvittens: Protokoll", "Kvittens: Protokoll"),
        ("", "Kvittens: ditt mejl"),
        ("Protokoll\r\nBcc: evil@example.com", "Kvittens: Protokoll Bcc: evil@example.com"),
        ("Å" * 200, "Kvittens: " + "Å" * 149 + "…"),
    ],
)
def test_receipt_subject(original: str, subject: str) -> None:
    assert receipt_subject(original) == subject


def test_a_network_whose_dates_mail_waits_in_review_is_not_reminded_of_its_dates() -> None:
    from mailbot.remind import without_answers_in_review
    from registry.domain import ObligationKind, State
    from registry.facts import Finding

    def item(network: str, obligation: ObligationKind, state: State = State.OVERDUE) -> Finding:
        return Finding(network, obligation, state, None, "", f"{network}:{obligation.value}:2025")

    findings = [
        item("skis", ObligationKind.MEETING_DATES),
        item("skis", ObligationKind.MEMBER_LIST),
        item("vux", ObligationKind.MEETING_DATES),
    ]
    kept = without_answers_in_review(findings, {"skis": {"meeting_dates"}, "vux": {"minutes"}})
    assert [f.id for f in kept] == ["skis:member_list:2025", "vux:meeting_dates:2025"]
