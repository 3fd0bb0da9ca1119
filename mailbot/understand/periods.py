"""The period a mail says its list or dates are for: "HT 2025", "VT 2026", "vårterminen", "läsåret 2025/26",
"för 2026".

Pure: reads text and the day the mail was sent; returns the period with its words, or that the mail names
several. A period is never guessed: a mail that names none has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import PurePath

_FLAGS = re.IGNORECASE
_YEAR = r"(?P<year>(?:19|20)?\d{2})"
_TERMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "school_year",
        re.compile(
            r"\b(?:läsår(?:et)?|lasar(?:et)?|verksamhetsår(?:et)?)\s+(?P<first>20\d{2})\s*[/–-]\s*(?P<second>(?:20)?\d{2})\b",
            _FLAGS,
        ),
    ),  # noqa: E501
    ("school_year", re.compile(r"(?<![\d/.-])(?P<first>20\d{2})\s*/\s*(?P<second>(?:20)?\d{2})(?![\d/.-])", _FLAGS)),
    ("HT", re.compile(rf"(?<![^\W\d_])HT\s*-?\s*{_YEAR}(?![\d/:]|\.\d)", _FLAGS)),
    ("VT", re.compile(rf"(?<![^\W\d_])VT\s*-?\s*{_YEAR}(?![\d/:]|\.\d)", _FLAGS)),
    (
        "HT",
        re.compile(r"\b(?:hösten|hosten|höstterminen|hostterminen|höstens|hösttermin)\s+(?P<year>20\d{2})\b", _FLAGS),
    ),
    ("VT", re.compile(r"\b(?:våren|varen|vårterminen|varterminen|vårens|vårtermin)\s+(?P<year>20\d{2})\b", _FLAGS)),
    ("HT", re.compile(r"\b(?:höstterminen|hostterminen|hösttermin|hösten)\b(?!\s+20\d{2})", _FLAGS)),
    ("VT", re.compile(r"\b(?:vårterminen|varterminen|vårtermin|våren)\b(?!\s+20\d{2})", _FLAGS)),
    (
        "year",
        re.compile(
            r"\b(?:för|under|år|året|avser|gäller|gäller för|inför|kalenderåret)\s+(?P<year>20\d{2})(?![\d/–-])", _FLAGS
        ),
    ),  # noqa: E501
    ("year", re.compile(r"(?<![\d/.-])(?P<year>20\d{2})\s+års\b", _FLAGS)),
)
# What every match of _TERMS (and _BARE_YEAR) contains, with the same flags: a text without any of it names no
# period, and one search tells so instead of one scan per pattern (most mails name none).
_MAYBE_PERIOD = re.compile(r"20\d{2}|[hv]t|h[öo]st(?:en|termin)|v[åa]r(?:en|termin)", _FLAGS)
# A bare year ("Medlemslista SKIS 2026") counts in a subject or a file name, never in running text.
_BARE_YEAR = re.compile(r"(?<![\d/.:-])(?P<year>20\d{2})(?![\d/.:-]|\s*[-–]\s*\d)")


@dataclass(frozen=True)
class Period:
    label: str  # as a person would read it: "HT 2025", "VT 2026", "2026", "läsåret 2025/26"
    start: date
    end: date

    def covers_year(self, year: int) -> bool:
        return self.start.year <= year <= self.end.year


@dataclass(frozen=True)
class PeriodResult:
    period: Period | None
    where: str | None = None  # "subject", "file name", "text"
    conflict: str | None = None  # English: the periods found that disagree


def _year(text: str) -> int:
    value = int(text)
    return value + 2000 if value < 100 else value


def _term(term: str, year: int) -> Period:
    if term == "HT":
        return Period(f"HT {year}", date(year, 7, 1), date(year, 12, 31))
    return Period(f"VT {year}", date(year, 1, 1), date(year, 6, 30))


def periods_in(text: str, sent: date, bare_year: bool = False) -> list[Period]:
    """Every period `text` names, in order of appearance (a term without a year is the next one from `sent`)."""
    if _MAYBE_PERIOD.search(text) is None:
        return []
    found: list[tuple[int, Period]] = []
    taken: list[tuple[int, int]] = []
    for term, pattern in _TERMS:
        for match in pattern.finditer(text):
            if any(s < match.end() and match.start() < e for s, e in taken):
                continue
            groups = match.groupdict()
            if term == "school_year":
                first, second = int(groups["first"]), _year(groups["second"])
                if second != first + 1:
                    continue
                period = Period(f"läsåret {first}/{str(second)[2:]}", date(first, 7, 1), date(second, 6, 30))
            elif term == "year":
                year = _year(groups["year"])
                period = Period(str(year), date(year, 1, 1), date(year, 12, 31))
            elif groups.get("year"):
                period = _term(term, _year(groups["year"]))
            elif term == "HT":
                period = _term("HT", sent.year)
            else:  # the coming spring term: this year's until the summer, else next year's
                period = _term("VT", sent.year if sent.month <= 6 else sent.year + 1)
            taken.append((match.start(), match.end()))
            found.append((match.start(), period))
    if bare_year and not found:
        for match in _BARE_YEAR.finditer(text):
            year = int(match["year"])
            found.append((match.start(), Period(str(year), date(year, 1, 1), date(year, 12, 31))))
    return [period for _, period in sorted(found, key=lambda item: item[0])]


def find_period(subject: str, filenames: list[str], body: str, sent: date) -> PeriodResult:
    """The period the mail is for: the subject's, else the file names', else the text's; two different periods
    where the deciding one is read (or a subject and a file name that disagree) is a conflict, not a guess."""
    subject_periods = _distinct(periods_in(subject, sent, bare_year=True))
    stems = [PurePath(name).stem.replace("_", " ") for name in filenames]
    file_periods = _distinct([p for stem in stems for p in periods_in(stem, sent, bare_year=True)])
    if subject_periods and file_periods and not set(subject_periods) & set(file_periods):
        return PeriodResult(None, conflict=_described("subject", subject_periods, "file name", file_periods))
    for where, periods in (("subject", subject_periods), ("file name", file_periods)):
        if len(periods) == 1:
            return PeriodResult(periods[0], where)
        if len(periods) > 1:
            return PeriodResult(None, conflict=f"the {where} names several periods: {_labels(periods)}")
    text_periods = _distinct(periods_in(body, sent))
    if len(text_periods) == 1:
        return PeriodResult(text_periods[0], "text")
    if len(text_periods) > 1:
        return PeriodResult(None, conflict=f"the text names several periods: {_labels(text_periods)}")
    return PeriodResult(None)


def _distinct(periods: list[Period]) -> list[Period]:
    seen: list[Period] = []
    for period in periods:
        if period not in seen:
            seen.append(period)
    return seen


def _labels(periods: list[Period]) -> str:
    return ", ".join(p.label for p in periods)


def _described(first: str, a: list[Period], second: str, b: list[Period]) -> str:
    return f"the {first} names {_labels(a)} but the {second} {_labels(b)}"
