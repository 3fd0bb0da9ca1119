"""Moves and cancellations written as text, applied to the meeting they name (mailbot/understand/changes.py)."""

from __future__ import annotations

from datetime import date, time

import pytest

from mailbot.understand.changes import KnownMeeting, find_changes

SENT = date(2025, 3, 2)
KNOWN = (
    KnownMeeting(date(2025, 3, 13), time(9, 0), "Skövde"),
    KnownMeeting(date(2025, 5, 16), time(9, 0), "Falköping"),
)


def test_move_by_text_cancels_the_old_and_plans_the_new_with_the_same_time_and_place():
    result = find_changes("Träffen 13/3 flyttas till fredag 20/3.", SENT, KNOWN)
    (change,) = result.changes
    assert (change.action, change.old_date, change.known) == ("move", date(2025, 3, 13), True)
    assert change.new is not None
    assert (change.new.date, change.new.start, change.new.place) == (date(2025, 3, 20), time(9, 0), "Skövde")
    assert result.lines == ("Träffen 13/3 flyttas till fredag 20/3.",)


@pytest.mark.parametrize(
    "text", ["Mötet i maj är inställt.", "Majmötet ställs in.", "Träffen den 16 maj utgår tyvärr."]
)
def test_cancellation_names_the_one_meeting(text: str):
    (change,) = find_changes(text, SENT, KNOWN).changes
    assert (change.action, change.old_date) == ("cancel", date(2025, 5, 16))


def test_a_month_with_no_known_meeting_is_a_problem_not_a_guess():
    result = find_changes("Mötet i juni är inställt.", SENT, KNOWN)
    assert result.changes == () and "not clear which one" in result.problems[0]


def test_a_month_with_two_meetings_is_a_problem():
    known = (*KNOWN, KnownMeeting(date(2025, 5, 30)))
    result = find_changes("Mötet i maj är inställt.", SENT, known)
    assert result.changes == () and "several meetings" in result.problems[0]


def test_cancellation_of_a_meeting_never_announced_keeps_its_date():
    (change,) = find_changes("Mötet fredag 14 november är inställt.", date(2025, 11, 3), ()).changes
    assert (change.action, change.old_date, change.known) == ("cancel", date(2025, 11, 14), False)


def test_ordinary_text_changes_nothing():
    assert find_changes("Vi ses fredag 14/3 kl 9 i Skövde.", SENT, KNOWN).changes == ()


def test_a_table_row_marked_cancelled_and_the_sentence_moving_it_are_one_move():
    text = "47 | fredag 21/11 | 13.00-16.00 | INSTÄLLT\nTräffen 21/11 flyttas alltså till fredag 28/11."
    (change,) = find_changes(text, date(2025, 11, 3), (KnownMeeting(date(2025, 11, 21), time(13, 0)),)).changes
    assert (change.action, change.old_date) == ("move", date(2025, 11, 21))


@pytest.mark.parametrize(
    ("text", "cancelled", "problem"),
    [
        # b3_010: a forwarder's "Fyi – inställt möte" above the dated sentence it forwards.
        (
            "Fyi – inställt möte i elevhälsonätverket.\nNätverksträffen fredag 16/5 ställs in.",
            [date(2025, 5, 16)],
            False,
        ),
        ("Fyi – inställt möte i elevhälsonätverket.", [], True),
    ],
)
def test_a_vague_cancellation_beside_a_dated_one(text: str, cancelled: list[date], problem: bool):
    result = find_changes(text, SENT, KNOWN)
    assert [c.old_date for c in result.changes] == cancelled
    assert bool(result.problems) is problem


@pytest.mark.parametrize(
    ("text", "changes", "problems"),
    [
        # b3_005: "ska vara" moves a meeting only beside a date.
        ("Gärna som PDF, och tänk på att dokumentet ska vara tillgängligt.", 0, 0),
        ("Träffen 13/3 ska vara 20/3 i stället.", 1, 0),
    ],
)
def test_a_weak_move_word_without_a_date_is_no_move(text: str, changes: int, problems: int):
    result = find_changes(text, SENT, KNOWN)
    assert (len(result.changes), len(result.problems)) == (changes, problems)
