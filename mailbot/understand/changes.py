"""Meetings moved or cancelled in plain text: "Träffen 13/3 flyttas till fredag 20/3", "Mötet i maj är inställt".

Pure: reads the mail's own text (quoted lines are already gone) and the meetings the registry has announced;
returns what would change, or why it cannot tell which meeting is meant. Never guesses a meeting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from . import dates as date_parser
from .types import MeetingDate

CANCEL_WORDS = re.compile(
    r"\b(ställs\s+in|ställts\s+in|ställer\s+(?:vi\s+)?in|är\s+inställ[dt]a?|blir\s+inställ[dt]a?|inställ[dt]a?|"
    r"utgår|avlyses|avlyst|blir\s+inte\s+av|ställs\s+av|stryks|cancelled|canceled)\b",
    re.IGNORECASE,
)
MOVE_WORDS = re.compile(
    r"\b(flyttas|flyttats|flyttar\s+vi|flyttar|flyttat|flyttad|flyttade|flyttades|ändrat\s+datum|ändrad\s+tid|nytt\s+datum|byter\s+datum|"
    r"ändras\s+till|skjuts\s+upp|tidigareläggs|senareläggs|blir\s+i\s*stället|blir\s+istället|ska\s+vara|skulle\s+vara)\b",
    re.IGNORECASE,
)
_WEAK_MOVE = re.compile(r"(?:ska|skulle)\s+vara", re.IGNORECASE)
# "samma tid och plats", "som vanligt" after a new date is not a new place; "fortfarande Falköping" is Falköping.
_SAME = re.compile(r"\b(samma|som\s+vanligt|som\s+tidigare|oförändrad|oförändrat|tid\s+och\s+plats)\b", re.I)
_STILL_PLACE = re.compile(r"\b(?:fortfarande|också|även)\s+(?:i\s+|på\s+)?([A-ZÅÄÖ][\wåäö]+(?:,?\s+[A-ZÅÄÖ][\wåäö]+)?)")
_STILL = re.compile(r"^(?:och\s+)?(?:fortfarande|också|även)\s+(?:i\s+|på\s+)?", re.I)
MONTHS = {
    "januari": 1, "februari": 2, "mars": 3, "april": 4, "maj": 5, "juni": 6, "juli": 7, "augusti": 8,
    "september": 9, "oktober": 10, "november": 11, "december": 12,
}  # fmt: skip
_MONTH_MENTION = re.compile(
    r"\b(?:i|under|för|från)\s+("
    + "|".join(MONTHS)
    + r")\b|\b("
    + "|".join(MONTHS)
    + r")(?:mötet|träffen|s\s+möte|s\s+träff)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class KnownMeeting:
    """A meeting of the network as the registry has it (planned, not cancelled)."""

    date: date
    start: object = None  # time | None
    place: str | None = None


@dataclass(frozen=True)
class MeetingChange:
    action: str  # "cancel" or "move"
    old_date: date | None  # the meeting changed (None: a move's new date only is known, see problems)
    new: MeetingDate | None = None  # a move's new date, with start and place (inherited when not restated)
    known: bool = False  # the old meeting was announced in the registry
    source_text: str = ""


@dataclass(frozen=True)
class ChangeResult:
    changes: tuple[MeetingChange, ...]
    problems: tuple[str, ...] = ()  # English review reasons
    lines: tuple[str, ...] = ()  # the lines that were read as changes (not as new dates)


def _sentences(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(">"):
            continue
        out.extend(part.strip() for part in re.split(r"(?<=[.!?])\s+(?=[A-ZÅÄÖ])", line) if part.strip())
    return out


def _month_meeting(month: int, known: Sequence[KnownMeeting], context: date) -> list[KnownMeeting]:
    """The known meetings in the coming (or current) `month` from the mail's day."""
    year = context.year if month >= context.month else context.year + 1
    return [m for m in known if m.date.year == year and m.date.month == month]


def find_changes(
    text: str, context: date, known: Sequence[KnownMeeting], period_heading: str | None = None
) -> ChangeResult:
    """Every move and cancellation the text states. A date read in the same sentence as a move word is the old
    date when it comes first and the new one after it; a month alone ("Mötet i maj") names the one known meeting
    that month."""
    changes: list[MeetingChange] = []
    problems: list[str] = []
    lines: list[str] = []
    vague: list[str] = []  # cancellations naming no date or month
    by_date = {m.date: m for m in known}
    for sentence in _sentences(text):
        move = MOVE_WORDS.search(sentence)
        cancel = CANCEL_WORDS.search(sentence)
        if not (move or cancel):
            continue
        if move:
            before, after = sentence[: move.start()], sentence[move.end() :]
            # The old date is a past-or-future date said before the move word; read both sides in the mail's year.
            old_dates = date_parser.parse_meeting_dates(before, context, period_heading).dates
            new_dates = date_parser.parse_meeting_dates(after, context, period_heading).dates
            if not new_dates and not old_dates and _WEAK_MOVE.fullmatch(move.group(0)) and cancel is None:
                continue  # "dokumentet ska vara tillgängligt": "ska vara" moves a meeting only beside a date
            if not new_dates:
                if old_dates or cancel is None:
                    problems.append(f"a meeting is moved but its new date could not be read: {sentence!r}")
                    lines.append(sentence)
                    continue
            elif len(new_dates) > 1 or len(old_dates) > 1:
                problems.append(f"a move names several dates: {sentence!r}")
                lines.append(sentence)
                continue
            else:
                old = old_dates[0].date if old_dates else None
                if old is None:
                    candidates = _months_named(before, known, context)
                    if len(candidates) == 1:
                        old = candidates[0].date
                    elif candidates:
                        problems.append(f"a move names a month with several meetings: {sentence!r}")
                        lines.append(sentence)
                        continue
                    else:
                        problems.append(f"a meeting is moved but it is not clear which one: {sentence!r}")
                        lines.append(sentence)
                        continue
                new = new_dates[0]
                was = by_date.get(old)
                place = _STILL.sub("", new.place) if new.place else None  # "fortfarande Falköping"
                place = None if place and (_SAME.search(place) or not place[:1].isupper()) else place
                if place is None and (still := _STILL_PLACE.search(after)) is not None:
                    place = still.group(1)
                if was is not None:
                    new = MeetingDate(new.date, new.start or was.start, new.end, place or was.place,  # type: ignore[arg-type]
                                      new.source_text)  # fmt: skip
                elif place != new.place:
                    new = MeetingDate(new.date, new.start, new.end, place, new.source_text)
                changes.append(MeetingChange("move", old, new, was is not None, sentence))
                lines.append(sentence)
                continue
        assert cancel is not None
        cancelled = date_parser.parse_meeting_dates(sentence, context, period_heading).dates
        lines.append(sentence)
        if cancelled:
            for item in cancelled:
                changes.append(MeetingChange("cancel", item.date, None, item.date in by_date, sentence))
            continue
        candidates = _months_named(sentence, known, context)
        if len(candidates) == 1:
            changes.append(MeetingChange("cancel", candidates[0].date, None, True, sentence))
        elif candidates:
            problems.append(f"a cancellation names a month with several meetings: {sentence!r}")
        else:
            vague.append(f"a meeting is cancelled but it is not clear which one: {sentence!r}")
    # "Fyi – inställt möte" above a forwarded "Nätverksträffen fredag 21/11 ställs in": the dated sentence says which.
    if not any(c.action == "cancel" for c in changes):
        problems.extend(vague)
    # "47 | fredag 21/11 | INSTÄLLT" and "Träffen 21/11 flyttas till 28/11" say one thing: the move.
    moved = {c.old_date for c in changes if c.action == "move"}
    unique: list[MeetingChange] = []
    for change in changes:
        if change.action == "cancel" and change.old_date in moved:
            continue
        if all((c.action, c.old_date, c.new) != (change.action, change.old_date, change.new) for c in unique):
            unique.append(change)
    return ChangeResult(tuple(unique), tuple(problems), tuple(lines))


_BARE_WEEK = re.compile(r"(?<![^\W\d_])(?:v\.?|vecka|veckan)\s*(\d{1,2})(?!\d)", re.IGNORECASE)


def _months_named(text: str, known: Sequence[KnownMeeting], context: date) -> list[KnownMeeting]:
    """The known meetings of the months ("Mötet i maj") or ISO weeks ("v. 46") the text names."""
    found: list[KnownMeeting] = []
    for match in _BARE_WEEK.finditer(text):
        week = int(match.group(1))
        for meeting in known:
            iso = meeting.date.isocalendar()
            if iso.week == week and abs((meeting.date - context).days) < 300 and meeting not in found:
                found.append(meeting)
    for match in _MONTH_MENTION.finditer(text):
        name = (match.group(1) or match.group(2)).lower()
        for meeting in _month_meeting(MONTHS[name], known, context):
            if meeting not in found:
                found.append(meeting)
    return found
