"""Swedish dates in free text: one date from a subject, file name or heading, or all meeting dates in a body.

Pure: never reads the clock and never does I/O; the date a text is read against is always a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Literal

from mailbot.understand.types import DateParseResult, MeetingDate

# Longest spelling first, so "mars" wins over "mar" and "september" over "sep".
_MONTH_NUMBERS = {
    "januari": 1,
    "jan": 1,
    "februari": 2,
    "feb": 2,
    "mars": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "maj": 5,
    "juni": 6,
    "jun": 6,
    "juli": 7,
    "jul": 7,
    "augusti": 8,
    "aug": 8,
    "september": 9,
    "sept": 9,
    "sep": 9,
    "oktober": 10,
    "okt": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}
_MONTH_NAMES = ("januari februari mars april maj juni juli augusti september oktober november december").split()

# "man" (one/you) and "son" are everyday words, so only unambiguous short forms are listed.
_WEEKDAY_NUMBERS = {
    "måndag": 1,
    "mandag": 1,
    "mån": 1,
    "tisdag": 2,
    "tis": 2,
    "onsdag": 3,
    "ons": 3,
    "torsdag": 4,
    "tors": 4,
    "tor": 4,
    "fredag": 5,
    "fre": 5,
    "lördag": 6,
    "lordag": 6,
    "lör": 6,
    "söndag": 7,
    "sondag": 7,
    "sön": 7,
}
_WEEKDAY_NAMES = ("måndag tisdag onsdag torsdag fredag lördag söndag").split()


def _alternation(words: dict[str, int]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


_MONTH = rf"(?P<month>{_alternation(_MONTH_NUMBERS)})\b\.?"
_WEEKDAY = rf"\b(?P<weekday>{_alternation(_WEEKDAY_NUMBERS)})(?:en)?\b\.?"
_WEEKDAY_PREFIX = rf"(?:{_WEEKDAY},?\s+(?:den\s+)?)?"
_WEEK = r"\b(?:v\.?|vecka|veckan)\s*(?P<week>\d{1,2})(?!\d)"
# Not the start of "2025-04-11" or of a period "2023–2026".
_FOUR_DIGIT_YEAR = r"(?P<year>(?:19|20)\d{2})(?!\d)(?![-–/.]\d)"

_FLAGS = re.IGNORECASE
_WEEKDAY_INITIALS = "".join(sorted({name[0] for name in _WEEKDAY_NUMBERS}))


def _form(first: str, pattern: str) -> re.Pattern[str]:
    """`pattern` behind a look-ahead for the characters any of its matches begins with (a weekday's first letter,
    the "v" of "v."/"vecka", the "d" of "den", a digit): the same matches, but a position where it cannot begin
    fails at its first character instead of after trying every weekday name. About half the cost of scanning a
    text for dates (tests/understand/test_dates.py checks the matches are the same)."""
    return re.compile(rf"(?=[{first}])(?:{pattern})", _FLAGS)


# Each form of a date, as (kind, pattern). The kind tells _token_from_match how to read the groups.
_DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # "fredag v. 12", "fredag vecka 12 2026"
    ("week", _form(_WEEKDAY_INITIALS, rf"{_WEEKDAY},?\s+(?:i\s+|på\s+)?{_WEEK}(?:\s*,?\s*{_FOUR_DIGIT_YEAR})?")),
    # "v.12 fredag", "vecka 12, fredag"
    ("week", _form("v", rf"{_WEEK}\s*,?\s*(?:på\s+)?{_WEEKDAY}(?:\s*,?\s*{_FOUR_DIGIT_YEAR})?")),
    # "v. 37 (fredag)"
    ("week", _form("v", rf"{_WEEK}\s*\(\s*{_WEEKDAY}\s*\)")),
    # "2025-03-14", "2025/3/14", "fredag 2025-03-14"
    (
        "iso",
        _form(
            rf"\d{_WEEKDAY_INITIALS}",
            rf"{_WEEKDAY_PREFIX}(?<![\d-])(?P<year>(?:19|20)\d{{2}})(?P<sep>[-/.])(?P<month>\d{{1,2}})(?P=sep)"
            r"(?P<day>\d{1,2})(?!\d)",
        ),
    ),
    # "20250314"
    ("compact", re.compile(r"(?<![\d+-])(?P<year>(?:19|20)\d{2})(?P<month>[01]\d)(?P<day>[0-3]\d)(?!\d)")),
    # "fredag 14 mars 2025", "den 14:e mars", "14 mars", "13–14 mars" (first day of a two-day meeting)
    (
        "text",
        _form(
            rf"\d{_WEEKDAY_INITIALS}d",
            rf"{_WEEKDAY_PREFIX}(?:\bden\s+)?(?<![\d/.:])(?:(?P<first_day>\d{{1,2}})\s*[-–]\s*)?(?P<day>\d{{1,2}})"
            rf"(?::?[ea]\b)?\.?\s*{_MONTH}(?:,?\s+{_FOUR_DIGIT_YEAR})?",
        ),
    ),
    # "14/3", "14/3-25", "14/3/2025", "14/3 2025"
    (
        "numeric",
        _form(
            rf"\d{_WEEKDAY_INITIALS}",
            rf"{_WEEKDAY_PREFIX}(?<![\d/.])(?P<day>\d{{1,2}})/(?P<month>\d{{1,2}})"
            r"(?:(?:\s*-\s*|/)(?P<year>\d{4}|\d{2})(?![\d/])|\s+(?P<long_year>(?:19|20)\d{2})(?![\d/])(?![-–.]\d))?(?![\d/])",
        ),
    ),
    # "14.3.2025", "14.3.25"; without a year "14.30" is a time, so the year is required.
    (
        "dotted",
        _form(
            rf"\d{_WEEKDAY_INITIALS}",
            rf"{_WEEKDAY_PREFIX}(?<![\d.])(?P<day>\d{{1,2}})\.(?P<month>\d{{1,2}})\.(?P<year>\d{{4}}|\d{{2}})(?!\d)(?!\.\d)",
        ),
    ),
)
# "250314" in a file name; only parse_date reads it, and only near the context date.
_SHORT_COMPACT = re.compile(r"(?<![\d+-])(?P<year>\d{2})(?P<month>[01]\d)(?P<day>[0-3]\d)(?![\d-])")

# A date is a deadline for an answer, not a meeting, right after "innan"/"före den" ("innan 31/1"),
# or anywhere after "senast"/"sista dag" in the same stretch of text ("sista dag för anmälan är 31/1").
_DEADLINE_RIGHT_BEFORE = re.compile(r"\b(?:innan|före)\s+(?:den\s+)?$", _FLAGS)
_DEADLINE_BEFORE = re.compile(
    r"\b(?:senast|deadline|sista\s+\w*dag(?:en)?|osa|svar\w*\s+(?:före|innan)|anmäl\w*\s+(?:före|innan))\b",
    _FLAGS,
)
_DEADLINE_REACH = 40  # characters before a date that are searched for deadline words
# Nor is the date a document was adopted or written ("Fastställd av presidiet 2025-01-28").
_DOCUMENT_DATE_BEFORE = re.compile(
    r"\b(?:fastställ(?:d|t|des)|daterad|upprättad|reviderad|uppdaterad)\b[^.!?\n]*$", _FLAGS
)

_TIME_WITH_KL = re.compile(
    r"\bkl(?:ockan)?\.?\s*(?P<h1>\d{1,2})(?:[.:](?P<m1>\d{2}))?"
    r"(?:\s*(?:-|–|—|till)\s*(?:kl\.?\s*)?(?P<h2>\d{1,2})(?:[.:](?P<m2>\d{2}))?)?(?!\d)",
    _FLAGS,
)
_TIME_WITH_MINUTES = re.compile(
    r"(?<![\d.:/])(?P<h1>\d{1,2})[.:](?P<m1>\d{2})"
    r"(?:\s*(?:-|–|—|till)\s*(?P<h2>\d{1,2})(?:[.:](?P<m2>\d{2}))?)?(?!\d)(?![.:/]\d)",
    _FLAGS,
)
# "14/3 9-12": a bare hour range counts only right after a date.
_BARE_HOUR_RANGE = re.compile(r"^[\s,]*(?P<h1>\d{1,2})\s*[-–—]\s*(?P<h2>\d{1,2})(?![\d/.:])")

_TERM_WITH_YEAR = (
    re.compile(r"(?<![^\W\d_])(?P<term>HT|VT)\s*-?\s*(?P<year>(?:20)?\d{2})(?![\d/.:])", _FLAGS),
    re.compile(r"\b(?P<term>höst|vår)(?:en|terminen|termin)\s+(?P<year>(?:19|20)\d{2})(?!\d)", _FLAGS),
)
# Case matters: "ht"/"vt" inside ordinary words or lower-case abbreviations are not terms.
_TERM_ALONE = (
    re.compile(r"(?<![^\W\d_])(?P<term>HT|VT)(?![^\W\d_])"),
    re.compile(r"\b(?P<term>höst|vår)(?:en|terminen)\b", _FLAGS),
)
_SCHOOL_YEAR = re.compile(r"\bläsår(?:et)?\s+(?P<first>20\d{2})\s*[/–-]\s*(?P<second>(?:20)?\d{2})(?!\d)", _FLAGS)
_YEAR_HEADING = re.compile(
    r"^\W*(?:(?:mötes|trä?ff)?datum\w*|möten|mötesdagar|nätverksträffar|träffar)?\s*(?P<year>20\d{2})\W*$", _FLAGS
)

_SIGNATURE_START = re.compile(
    r"^(?:(?:med\s+)?(?:vänlig|vänliga|varma|bästa|många|hjärtliga)\s+hälsningar?|hälsningar?|mvh|vh|"
    r"best regards|kind regards|regards)\b|^--\s*$",
    _FLAGS,
)
_FORWARD_START = re.compile(
    r"^(?:-{2,}\s*(?:ursprungligt meddelande|original message|vidarebefordrat meddelande|forwarded message)"
    r"|(?:från|from)\s*:)",
    _FLAGS,
)
_HEADER_LINE = re.compile(r"^(?:från|skickat|till|kopia|ämne|datum|from|sent|to|cc|subject|date)\s*:", _FLAGS)
_SENT_LINE = re.compile(r"^(?:skickat|sent)\s*:", _FLAGS)

_FOLLOWING_PLACE = re.compile(r"^(?:plats|lokal|ort|var)\s*:\s*(?P<place>.+)$", _FLAGS)
_FOLLOWING_TIME = re.compile(r"^(?:tid|klockan|tidpunkt)\s*:|^kl\b", _FLAGS)
# Dates on the line before "Plats:"/"Tid:" lines stay open for this many non-empty lines.
_FOLLOWING_LINES = 3

_PLACE_SEPARATOR = re.compile(r"^(?:[.,;|:–—-]\s*)+")
# "6/2 i Skövde, 13/3 i Lidköping och 15/5": the word joining the next date is not part of the place.
_TRAILING_CONNECTOR = re.compile(r"(?:[\s,;]+(?:och|samt|eller|&))+$", _FLAGS)
_PLACE_KEYWORD = re.compile(r"^(?:(?:plats|lokal|ort|adress)\b\s*:?\s*|(?:i|på|hos)\s+)", _FLAGS)
_CONNECTOR_ONLY = re.compile(r"^[\s,;/&|–-]*(?:(?:och|samt|eller)[\s,;/&|–-]*)*$", _FLAGS)
# A place never starts with these: the words open a sentence or a remark instead.
_NOT_PLACE_FIRST_WORDS = frozenset(
    "vi då och med om för tema ca cirka se obs ev eventuellt prel preliminärt inställt inställd "
    "heldag halvdag lunch fika anmälan senast samt eller tid kl klockan alla samtliga varje".split()
)
_PLACE_MAX_WORDS = 8
_REMOTE_PLACE = re.compile(
    r"(?:digitalt?|online|distans|via\s+(?:teams|zoom)|teams|zoom)(?:\s*(?:\((?:via\s+)?(?:teams|zoom)\)|"
    r"(?:via|på|i)\s+(?:teams|zoom)))?\.?",
    _FLAGS,
)
MAX_LINE = 2000  # characters of one line read for dates (a paragraph of minutes fits)
_SPACE_RUN = re.compile(r"[ \u00a0]{3,}")
_TABLE_CELL_SPLIT = re.compile(r"\s*\|\s*|\t+")
_TABLE_PLACE_HEADINGS = frozenset({"plats", "lokal", "ort", "var", "mötesplats", "adress"})

_GRACE_AFTER_CONTEXT = timedelta(days=7)
_LOOK_BACK = timedelta(days=60)
# A yymmdd number is read as a date only this close to the context date.
_SHORT_COMPACT_WINDOW = (timedelta(days=3 * 366), timedelta(days=366))


@dataclass(frozen=True)
class _Token:
    """A date form found in a text, before its year is settled."""

    kind: str
    start: int
    end: int
    text: str
    day: int = 0
    month: int = 0
    week: int = 0  # ISO week; then `weekday` is required
    weekday: int | None = None  # 1 = Monday, as written next to the date
    year: int | None = None  # as written
    stated_week: int = 0  # "v. 7 fredag 13/2": the week written beside a day and month, checked against them

    def build(self, year: int) -> date | None:
        try:
            if self.week:
                return date.fromisocalendar(year, self.week, self.weekday or 1)
            return date(year, self.month, self.day)
        except ValueError:
            return None

    @property
    def could_exist(self) -> bool:
        """Whether some year has this date (29/2 does, 31/2 does not)."""
        if self.week:
            return 1 <= self.week <= 53
        return self.build(2024) is not None


@dataclass
class _Found:
    """A meeting date while its line and the lines after it are still being read."""

    date: date
    start: time | None
    end: time | None
    place: str | None
    source_text: str


@dataclass(frozen=True)
class _Heading:
    """A heading such as "HT 2025" that gives the year to the dates below it."""

    term: Literal["HT", "VT", "year", "school_year"]
    year: int | None  # None for "VT:" alone: the first date below it settles the year

    def year_for(self, month: int) -> int | None:
        # The autumn term runs into January, and a school year spans two calendar years.
        if self.year is not None and self.term in ("HT", "school_year") and month <= 6:
            return self.year + 1
        return self.year

    def settled_by(self, first: date) -> _Heading:
        if self.term == "HT" and first.month <= 6:
            return _Heading(self.term, first.year - 1)
        return _Heading(self.term, first.year)


def is_signature_start(line: str) -> bool:
    """Whether `line` opens a signature ("Med vänliga hälsningar", "Mvh", "--")."""
    return bool(_SIGNATURE_START.match(line))


def has_date(text: str) -> bool:
    """Whether `text` holds any date form (a heading naming a date is not a bare network heading)."""
    return bool(_find_tokens(text))


def starts_quoted_part(line: str) -> bool:
    """Whether `line` opens the quoted or forwarded mail below a reply ("Från: …", "-----Ursprungligt meddelande")."""
    return bool(_FORWARD_START.match(line)) or bool(
        re.match(r"^(?:den|on)\s.{0,80}(?:skrev|wrote)\s*:?$", line, _FLAGS)
    )


def parse_date(text: str, context: date, prefer: Literal["past", "future"]) -> date | None:
    """The first plausible date in a subject, file name or heading, or None.

    Without a year, "past" picks the latest such date on or before `context` (plus a week of grace,
    for minutes sent before the meeting ended up in the calendar); "future" the first on or after
    `context` minus 60 days.
    """
    # File names use "_" between words, and "_" counts as a word character in \b.
    text = text.replace("_", " ")
    for token in _without_deadlines(text, _find_tokens(text, include_short_compact=True)):
        if not token.could_exist:
            continue
        if token.year is not None:
            found = token.build(token.year)
            if found is not None and token.kind == "short_compact":
                earliest, latest = context - _SHORT_COMPACT_WINDOW[0], context + _SHORT_COMPACT_WINDOW[1]
                if not earliest <= found <= latest:
                    continue
        else:
            found = _nearest(token.build, context, prefer)
        if found is not None:
            return found
    return None


def parse_meeting_dates(text: str, context: date, period_heading: str | None = None) -> DateParseResult:
    """All meeting dates announced in a mail body or a document's text, sorted, without duplicates.

    Skips quoted lines, signatures, forwarded-mail headers and deadlines; a date that cannot
    exist ("31/2") becomes a problem instead. `period_heading` ("VT 2026", "2026") is the period the subject or
    a file name names: it gives the year to the dates until the text's own headings say otherwise.
    """
    text = _weeks_with_the_stated_weekday(text)
    found: list[_Found] = []
    problems: list[str] = []
    heading: _Heading | None = _heading_from(period_heading, None) if period_heading else None
    in_signature = False
    in_forward_header = False
    table_place_column: int | None = None
    table_week_column: int | None = None
    table_time_column: int | None = None
    place_next = False  # the line before was "Plats för alla träffarna:"
    open_dates: list[_Found] = []  # the last date line's dates, for "Plats:"/"Tid:" lines below it
    lines_since_dates = 0
    # "Tid: 13.00–16.00", "Plats: Stadshuset Skövde", "(alla kl. 9–12 på X)" on a line without a date.
    general_times: list[tuple[time, time | None]] = []
    general_places: list[str] = []
    before_dates: list[tuple[tuple[tuple[time, time | None] | None, str | None], int]] = []  # (stated, lines ago)

    for raw_line in text.splitlines():
        # Bounded before any pattern: a date line is short, and a run of spaces (garbage, a PDF's layout)
        # is where patterns starting with \s* would try every position.
        line = _SPACE_RUN.sub("  ", raw_line[:MAX_LINE]).strip()
        if not line:
            in_forward_header = False
            continue
        if line.startswith(">"):
            continue
        if _FORWARD_START.match(line):
            # A forwarded mail restarts after the forwarder's signature; its header lines are not meetings.
            in_signature = False
            in_forward_header = True
            open_dates = []
            continue
        if in_forward_header and _HEADER_LINE.match(line):
            if line.lower().startswith(("ämne", "subject")):
                heading = _heading_from(line, heading)
            continue
        in_forward_header = False
        if _SENT_LINE.match(line):
            continue
        if _SIGNATURE_START.match(line):
            in_signature = True
        if in_signature:
            continue

        heading = _heading_from(line, heading)
        cells = _TABLE_CELL_SPLIT.split(line)
        is_table_row = len(cells) >= 2
        if is_table_row and table_week_column is not None and table_week_column < len(cells):
            # Under a "Vecka" heading a bare "6" is the week: "6 | torsdag | 8.30–11.45" is "v. 6 torsdag".
            if re.fullmatch(r"\d{1,2}", cells[table_week_column].strip()):
                cells[table_week_column] = "v. " + cells[table_week_column].strip()
                line = " | ".join(cells)
        # In a table row the week and the weekday stand in cells of their own ("v. 5 | fredag"): the separators
        # are read as spaces (same length, so positions stay).
        all_tokens = _find_tokens(re.sub(r"[|\t]", " ", line) if is_table_row else line)
        tokens = _without_deadlines(line, all_tokens)

        if not tokens:
            if is_table_row:
                table_place_column = _place_column(cells)
                table_week_column = _week_column(cells)
                table_time_column = _column(cells, ("tid", "klockan", "tidpunkt", "kl"))
            else:
                table_place_column = table_week_column = table_time_column = None
                if place_next:
                    line = f"Plats: {line}"
                place_next = bool(_PLACE_ON_NEXT_LINE.match(line))
                stated = (_general_time(line), _general_place(line))
                if stated != (None, None):
                    # Only next to the dates: within a few lines after them, or just before the first of them.
                    if found and lines_since_dates < _FOLLOWING_LINES:
                        _keep_general(stated, general_times, general_places)
                    elif not found:
                        before_dates.append((stated, 0))
            before_dates = [(stated, age + 1) for stated, age in before_dates]
            lines_since_dates += 1
            if open_dates and lines_since_dates <= _FOLLOWING_LINES:
                _apply_following_line(line, open_dates)
            continue

        read: list[tuple[_Token, _Found]] = []
        for token in tokens:
            meeting_date, heading = _resolve_meeting_date(token, context, heading, problems)
            if meeting_date is not None:
                read.append((token, _Found(meeting_date, None, None, None, line)))
        if not read:
            continue
        # Deadlines are blanked too, so that "senast 1/9" is never read as a time or a place.
        blanked = _blank(line, [(token.start, token.end) for token in all_tokens])
        if is_table_row:
            _read_table_row(blanked, cells, read, table_place_column, table_time_column)
            problems.extend(_table_week_problems(cells, read))
        else:
            table_place_column = table_week_column = table_time_column = None
            _read_line(blanked, read)
        line_dates = [found for _, found in read]
        for stated, age in before_dates:
            if age <= _FOLLOWING_LINES:
                _keep_general(stated, general_times, general_places)
        before_dates = []
        found.extend(line_dates)
        open_dates = line_dates
        lines_since_dates = 0

    _apply_general(found, general_times, general_places)
    return DateParseResult(dates=_merged(found), problems=tuple(dict.fromkeys(problems)))


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-ZÅÄÖ(])")
_FOR_ALL = re.compile(r"\b(?:alla|samtliga|varje|samma|(?:mån|tis|ons|tors|fre)dagar(?:na)?)\b", _FLAGS)
# "Plats för alla träffarna:" with the place on the line below it.
_PLACE_ON_NEXT_LINE = re.compile(r"^(?:plats|lokal|ort)\b[^:]{0,40}:\s*$", _FLAGS)


def _general_time(line: str) -> tuple[time, time | None] | None:
    """The time of a line that states it for every meeting: "Tid: 13.00–16.00", "alla kl. 9–12"."""
    for part in _SENTENCE_SPLIT.split(line):
        if _FOLLOWING_TIME.match(part) or _FOR_ALL.search(part):
            start, end, _ = _find_time(part)
            if start is not None:
                return start, end
    return None


def _general_place(line: str) -> str | None:
    """The place of a line that states it for every meeting: "Plats: Stadshuset", "alla kl. 9–12 på X"."""
    for part in _SENTENCE_SPLIT.split(line):
        if match := _FOLLOWING_PLACE.match(part):
            return _clean_place(match["place"])
        if _FOR_ALL.search(part):
            _start, _end, span = _find_time(part)
            if span is not None:
                tail = part[span[1] :]
                if re.match(r"\s*(?:i|på|hos)\s", tail, _FLAGS):
                    return _clean_place(tail)
    return None


def _keep_general(
    stated: tuple[tuple[time, time | None] | None, str | None],
    times: list[tuple[time, time | None]],
    places: list[str],
) -> None:
    if stated[0] is not None:
        times.append(stated[0])
    if stated[1] is not None:
        places.append(stated[1])


def _apply_general(found: list[_Found], times: list[tuple[time, time | None]], places: list[str]) -> None:
    """A time or place stated once applies to every date, when it is the only one the text states and no date
    says otherwise."""
    if len(set(times)) == 1:
        start, end = times[0]
        if all(item.start in (None, start) for item in found):
            for item in found:
                if item.start is None:
                    item.start, item.end = start, end
    if len({place.casefold() for place in places}) == 1:
        place = places[0]
        if all(item.place is None or item.place.casefold() == place.casefold() for item in found):
            for item in found:
                item.place = item.place or place


def _find_tokens(text: str, include_short_compact: bool = False) -> list[_Token]:
    """Every date form in `text`, left to right, overlapping matches resolved to the longest."""
    candidates: list[_Token] = []
    for kind, pattern in _DATE_PATTERNS:
        candidates.extend(_token_from_match(kind, match) for match in pattern.finditer(text))
    if include_short_compact:
        candidates.extend(_token_from_match("short_compact", match) for match in _SHORT_COMPACT.finditer(text))
    # Out of range ("25/26" for a school year, "0/3" as a score) is not a date at all; "31/2" is a
    # date that was mistyped and becomes a problem later.
    candidates = [
        token
        for token in candidates
        if (1 <= token.week <= 53) or (not token.week and 1 <= token.month <= 12 and 1 <= token.day <= 31)
    ]
    candidates.sort(key=lambda token: (token.start, -(token.end - token.start)))
    chosen: list[_Token] = []
    for token in candidates:
        if chosen and token.start < chosen[-1].end:
            if (merged := _week_beside_date(text, chosen[-1], token)) is not None:
                chosen[-1] = merged
            continue
        chosen.append(token)
    return chosen


def _week_beside_date(text: str, first: _Token, second: _Token) -> _Token | None:
    """A table row's "v. 7 | fredag | 13/2" read as one date: the week and the day and month overlap on the weekday
    they share. The day and month give the date; the week is kept to be checked against it."""
    week, dated = (first, second) if first.week else (second, first)
    if not week.week or dated.week or first.stated_week or second.stated_week:
        return None
    start, end = min(first.start, second.start), max(first.end, second.end)
    return _Token(dated.kind, start, end, text[start:end].strip(), day=dated.day, month=dated.month,
                  weekday=dated.weekday or week.weekday, year=dated.year or week.year, stated_week=week.week)  # fmt: skip


def _without_deadlines(text: str, tokens: list[_Token]) -> list[_Token]:
    kept: list[_Token] = []
    previous_end = 0
    for token in tokens:
        if not _is_deadline(text[previous_end : token.start]):
            kept.append(token)
        previous_end = token.end
    return kept


def _token_from_match(kind: str, match: re.Match[str]) -> _Token:
    groups = match.groupdict()
    weekday = _WEEKDAY_NUMBERS[groups["weekday"].lower()] if groups.get("weekday") else None
    year_text = groups.get("year") or groups.get("long_year")
    year = None
    if year_text:
        year = int(year_text) + (2000 if len(year_text) == 2 else 0)
    text = match.group(0).strip()
    if kind == "week":
        return _Token(kind, match.start(), match.end(), text, week=int(groups["week"]), weekday=weekday, year=year)
    month_text = groups["month"].lower().rstrip(".")
    month = _MONTH_NUMBERS[month_text] if kind == "text" else int(month_text)
    day = int(groups["day"])
    if kind == "text" and groups.get("first_day"):
        day = int(groups["first_day"])
    return _Token(kind, match.start(), match.end(), text, day=day, month=month, weekday=weekday, year=year)


def _is_deadline(text_before: str) -> bool:
    """Whether the text between the previous date (or the line start) and a date makes it a deadline."""
    text_before = text_before[-_DEADLINE_REACH:]
    return bool(
        _DEADLINE_RIGHT_BEFORE.search(text_before)
        or _DEADLINE_BEFORE.search(text_before)
        or _DOCUMENT_DATE_BEFORE.search(text_before)
    )


def _nearest(build: Callable[[int], date | None], context: date, prefer: Literal["past", "future"]) -> date | None:
    # Four years either side so that 29 February still finds a leap year.
    candidates = [found for year in range(context.year - 4, context.year + 5) if (found := build(year)) is not None]
    if prefer == "past":
        latest = context + _GRACE_AFTER_CONTEXT
        earlier = [found for found in candidates if found <= latest]
        return max(earlier) if earlier else None
    earliest = context - _LOOK_BACK
    later = [found for found in candidates if found >= earliest]
    return min(later) if later else None


def _resolve_meeting_date(
    token: _Token, context: date, heading: _Heading | None, problems: list[str]
) -> tuple[date | None, _Heading | None]:
    """The date of a meeting token, and the heading in force after it."""
    if not token.could_exist:
        problems.append(f"Kunde inte tolka datumet '{token.text}'")
        return None, heading
    year: int | None = token.year
    if year is None and heading is not None:
        year = heading.year_for(token.month or (token.build(context.year) or context).month)
    if year is None:
        resolved = _nearest(token.build, context, "future")
        if resolved is not None and heading is not None and token.year is None:
            # "VT: 6/2, 13/3, 15/5": the first date fixes the term's year, so the list stays in one term.
            heading = heading.settled_by(resolved)
    else:
        resolved = token.build(year)
        if resolved is None:
            problems.append(f"Datumet '{token.text}' finns inte år {year}")
    if resolved is not None and token.weekday is not None and resolved.isoweekday() != token.weekday:
        weekday = _WEEKDAY_NAMES[resolved.weekday()]
        problems.append(f"Veckodagen stämmer inte i '{token.text}': {_spoken(resolved)} är en {weekday}")
    if resolved is not None and token.stated_week and resolved.isocalendar().week != token.stated_week:
        week = resolved.isocalendar().week
        problems.append(f"Veckan stämmer inte i '{token.text}': {_spoken(resolved)} ligger i vecka {week}")
    return resolved, heading


def _spoken(day: date) -> str:
    return f"{day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"


_GENERAL_WEEKDAY = re.compile(r"\b(måndagar|tisdagar|onsdagar|torsdagar|fredagar)(?:na)?\b", _FLAGS)
_BARE_WEEK = re.compile(
    r"(?<![^\W\d_])(?:v\.?|vecka|veckan)\s*\d{1,2}(?!\d)(?!\s*[,(]?\s*(?:på\s+)?(?:mån|tis|ons|tor|fre|lör|sön))",
    _FLAGS,
)


def _weeks_with_the_stated_weekday(text: str) -> str:
    """ "Alla fredagar kl 13–15.30: v. 37 Karlsborg, v. 41 Lidköping": a text that states one weekday for all its
    meetings gives it to the bare week numbers. A text stating none (or several) leaves them as they are, unread."""
    stated = {match.group(1).lower()[:-2] for match in _GENERAL_WEEKDAY.finditer(text)}
    if len(stated) != 1:
        return text
    weekday = stated.pop()
    return _BARE_WEEK.sub(lambda match: f"{match.group(0)} {weekday}", text)


def _heading_from(line: str, current: _Heading | None) -> _Heading | None:
    """The year heading in force after `line`."""
    if match := _SCHOOL_YEAR.search(line):
        return _Heading("school_year", int(match["first"]))
    for pattern in _TERM_WITH_YEAR:
        if match := pattern.search(line):
            year = int(match["year"])
            year += 2000 if year < 100 else 0
            return _Heading("HT" if match["term"].lower() in ("ht", "höst") else "VT", year)
    if match := _YEAR_HEADING.match(line):
        return _Heading("year", int(match["year"]))
    for pattern in _TERM_ALONE:
        if match := pattern.search(line):
            term: Literal["HT", "VT"] = "HT" if match["term"].lower() in ("ht", "höst") else "VT"
            if current is None:
                return _Heading(term, None)
            if current.term == "school_year" or current.term == term:
                return current
            if current.year is None:
                return _Heading(term, None)
            # "VT:" after an "HT 2025" list means the spring that follows it.
            if current.term == "HT" and term == "VT":
                return _Heading("VT", current.year + 1)
            return _Heading(term, current.year)
    return current


def _read_line(blanked: str, read: list[tuple[_Token, _Found]]) -> None:
    """Times and places for the dates of one ordinary line: each date owns the text up to the next date.

    `blanked` is the line with every date form replaced by spaces.
    """
    tokens = [token for token, _ in read]
    line_dates = [found for _, found in read]
    tails: list[str] = []
    for index, token in enumerate(tokens):
        tail_end = tokens[index + 1].start if index + 1 < len(tokens) else len(blanked)
        tails.append(blanked[token.end : tail_end])
    # Dates joined by "och" or commas share what follows the last of them ("6/2 och 13/3 kl. 9-12").
    inherited: tuple[time | None, time | None, str | None] = (None, None, None)
    for index in range(len(tokens) - 1, -1, -1):
        tail = tails[index]
        if _CONNECTOR_ONLY.match(tail) and index + 1 < len(tokens):
            start, end, place = inherited
        else:
            start, end, place = _time_and_place(tail)
            inherited = (start, end, place)
        line_dates[index].start, line_dates[index].end, line_dates[index].place = start, end, place
    if any(found.start is None for found in line_dates):
        # "Kl. 9–12: 14/3, 11/4" puts the time before the dates.
        start, end, _ = _find_time(blanked[: tokens[0].start])
        for found in line_dates:
            if found.start is None:
                found.start, found.end = start, end


def _read_table_row(
    blanked: str,
    cells: list[str],
    read: list[tuple[_Token, _Found]],
    place_column: int | None,
    time_column: int | None = None,
) -> None:
    """An Outlook table row as text ("fredag 14 mars | 09.00–12.00 | Stadshuset"): cells, not word order."""
    start, end, _ = _find_time(blanked)
    if start is None and time_column is not None and time_column < len(cells):
        # "9–12" alone in the "Tid" column is the time (in running text a bare range counts only right after a date).
        hours = _HOUR_RANGE_CELL.fullmatch(cells[time_column].strip())
        if hours and 6 <= int(hours["h1"]) < int(hours["h2"]) <= 22:
            start, end = time(int(hours["h1"])), time(int(hours["h2"]))
    place: str | None = None
    if place_column is not None and place_column < len(cells):
        place = _clean_place(cells[place_column])
    else:
        rest = [
            cell
            for cell in cells
            if cell.strip()
            and not _find_tokens(cell)
            and _find_time(cell)[0] is None
            and not _is_weekday(cell)
            and not _WEEK_CELL.fullmatch(cell.strip())
            and not _HOUR_RANGE_CELL.fullmatch(cell.strip())
        ]
        # Without a heading row, a single left-over cell is the place; more than one could be anything.
        if len(rest) == 1 and not re.match(r"^[^:]{1,20}:", rest[0]):
            place = _clean_place(rest[0])
    for _, found in read:
        found.start, found.end, found.place = start, end, place


_HOUR_RANGE_CELL = re.compile(r"(?:kl\.?\s*)?(?P<h1>\d{1,2})\s*[-–—]\s*(?P<h2>\d{1,2})", _FLAGS)
_WEEK_CELL = re.compile(r"(?:v\.?|vecka|veckan)?\s*(?P<week>\d{1,2})", _FLAGS)


def _table_week_problems(cells: list[str], read: list[tuple[_Token, _Found]]) -> list[str]:
    """A table row's week cell ("v. 7") that disagrees with the row's date is a doubt for a person."""
    weeks = {
        int(m["week"]) for cell in cells if (m := _WEEK_CELL.fullmatch(cell.strip())) and not cell.strip().isdigit()
    }
    return [
        f"Veckan stämmer inte i '{token.text}': {_spoken(found.date)} ligger i vecka {found.date.isocalendar().week}"
        for token, found in read
        if len(weeks) == 1 and not token.week and found.date.isocalendar().week not in weeks
    ]


def _week_column(cells: list[str]) -> int | None:
    return _column(cells, ("vecka", "v", "veckonummer", "vecka nr", "v.nr", "vnr"))


def _column(cells: list[str], headings: tuple[str, ...]) -> int | None:
    for index, cell in enumerate(cells):
        if cell.strip().lower().rstrip(":.") in headings:
            return index
    return None


def _place_column(cells: list[str]) -> int | None:
    for index, cell in enumerate(cells):
        if cell.strip().lower().rstrip(":") in _TABLE_PLACE_HEADINGS:
            return index
    return None


def _is_weekday(text: str) -> bool:
    return text.strip().lower().rstrip(".") in _WEEKDAY_NUMBERS


def _apply_following_line(line: str, open_dates: list[_Found]) -> None:
    """'Plats: Skara Folkhögskola' or 'Tid: 9–12' below a date line belongs to its dates."""
    if match := _FOLLOWING_PLACE.match(line):
        place = _clean_place(match["place"])
        for found in open_dates:
            if found.place is None:
                found.place = place
    elif _FOLLOWING_TIME.match(line):
        start, end, _ = _find_time(line)
        for found in open_dates:
            if found.start is None:
                found.start, found.end = start, end


def _time_and_place(tail: str) -> tuple[time | None, time | None, str | None]:
    start, end, span = _find_time(tail)
    if span is None and (bare := _BARE_HOUR_RANGE.match(tail)):
        first, last = int(bare["h1"]), int(bare["h2"])
        # Only working hours, so "14/3 1-2" (a list numbering, a score) is not a time.
        if 6 <= first < last <= 22:
            start, end, span = time(first), time(last), (bare.start("h1"), bare.end())
    after_time = False
    if span is not None:
        after_time = not tail[: span[0]].strip(" ,")
        tail = tail[span[1] :] if after_time else _blank(tail, [span])
    return start, end, _place_after(tail, after_time)


def _find_time(text: str) -> tuple[time | None, time | None, tuple[int, int] | None]:
    matches = [match for pattern in (_TIME_WITH_KL, _TIME_WITH_MINUTES) for match in pattern.finditer(text)]
    for match in sorted(matches, key=lambda match: match.start()):
        start = _clock(match["h1"], match["m1"])
        if start is None:
            continue
        end = _clock(match["h2"], match["m2"]) if match["h2"] else None
        return start, end, match.span()
    return None, None, None


def _clock(hour: str, minute: str | None) -> time | None:
    hours, minutes = int(hour), int(minute or 0)
    if hours > 23 or minutes > 59:
        return None
    return time(hours, minutes)


def _place_after(tail: str, after_time: bool) -> str | None:
    """The place in the text after a date (and its time), when a separator or a keyword announces it."""
    text = tail.strip()
    # "14/3 kl 9-12 (Mariestad)", "(Skövde, Kulturhuset)": a place in parentheses right after the date or time.
    if (parenthesis := re.fullmatch(r"\(\s*([A-ZÅÄÖ][^()]{1,60}?)\s*\)[\s.,;]*", text)) is not None:
        return _clean_place(parenthesis.group(1))
    announced = after_time and text[:1].isupper()
    if separator := _PLACE_SEPARATOR.match(text):
        text, announced = text[separator.end() :], True
    if keyword := _PLACE_KEYWORD.match(text):
        text, announced = text[keyword.end() :], True
    if not announced and (remote := _REMOTE_PLACE.fullmatch(text)) is not None:
        # "v. 50 digitalt (Teams)", "14/3 via Zoom": a meeting held online has that for its place, in lower case.
        return _clean_place(remote.group(0).rstrip("."))
    if not announced:
        # "v. 37 fredag Karlsborg", "14/3 Skövde Kulturhuset": a tail of capitalised words only (a name, not a
        # sentence) is the place; "14/3 Mötet börjar …" is not.
        if re.fullmatch(r"[A-ZÅÄÖ][\wåäöé]+(?:(?:\s*[,–-]\s*|\s+)[A-ZÅÄÖ][\wåäöé]+){0,3}\.?", text):
            return _clean_place(text.rstrip("."))
        return None
    return _clean_place(text)


def _clean_place(text: str) -> str | None:
    text = re.split(r"(?<=[^\s.][^\s.])[.!?](?:\s|$)", text, maxsplit=1)[0]  # "i Stadshuset. Observera att ..."
    if ")" in text and "(" not in text.split(")", 1)[0]:
        text = text.split(")", 1)[0]  # "(alla kl. 9–12 på Skaraborgs Kommunalförbund, Skövde):"
    place = _TRAILING_CONNECTOR.sub("", re.sub(r"\s+", " ", text)).strip(" \t,;:.!-–—")
    if keyword := _PLACE_KEYWORD.match(place):
        place = place[keyword.end() :]
    if place.startswith("(") and place.endswith(")"):
        place = place[1:-1].strip()
    words = place.split()
    if not words or not any(character.isalpha() for character in place):
        return None
    if len(words) > _PLACE_MAX_WORDS or "?" in place or _find_tokens(place) or _find_time(place)[0] is not None:
        return None
    if _DEADLINE_BEFORE.search(place):
        return None
    if words[0].lower().strip(".,:") in _NOT_PLACE_FIRST_WORDS:
        return None
    return place


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with the spans replaced by spaces, so that positions stay the same."""
    characters = list(text)
    for start, end in spans:
        characters[start:end] = " " * (end - start)
    return "".join(characters)


def _merged(found: list[_Found]) -> tuple[MeetingDate, ...]:
    """One MeetingDate per day: the first mention wins, later mentions fill in what it lacked."""
    by_day: dict[date, _Found] = {}
    for item in found:
        first = by_day.setdefault(item.date, item)
        if first is not item and first.start is None and item.start is not None:
            first.start, first.end = item.start, item.end
        if first is not item and first.place is None:
            first.place = item.place
    return tuple(
        MeetingDate(date=item.date, start=item.start, end=item.end, place=item.place, source_text=item.source_text)
        for _, item in sorted(by_day.items())
    )
