"""Minutes (protokoll, minnesanteckningar): the meeting date of the heading and who was present.

Pure: text in, MinutesResult out; it never guesses a date or a municipality the text does not state.
"""

from __future__ import annotations

import re
from datetime import date

from mailbot.understand.members import person_name
from mailbot.understand.types import MinutesResult
from registry.config import MunicipalityIndex, fold

_HEADING_LINES = 15

NO_DATE = "inget mötesdatum hittades i protokollets rubrik"
NO_ATTENDANCE = "ingen närvarolista (Närvarande) hittades i protokollet"

_MONTHS = {
    "januari": 1, "jan": 1, "februari": 2, "feb": 2, "mars": 3, "mar": 3, "april": 4, "apr": 4,
    "maj": 5, "juni": 6, "jun": 6, "juli": 7, "jul": 7, "augusti": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "oktober": 10, "okt": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
_ISO = re.compile(r"(?<!\d)(20\d\d)[-.](\d{1,2})[-.](\d{1,2})(?!\d)")
_DAY_MONTH_YEAR = re.compile(
    r"(?<!\d)(\d{1,2})(?::[ae])?\.?\s+(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?\s+(\d{4})(?!\d)"
)
# "14/3 2025", "14/3-2025", "14/3-25"; not "14/3 20" (a count after a date without year).
_SLASH = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?:\s*-\s*(\d{4}|\d{2})|\s+(\d{4}))(?![\d/])")
# A heading names the meeting; other dates near the top are "nästa möte" or the signing date.
_HEADING_WORDS = re.compile(r"datum|protokoll|minnesanteckning|anteckning|natverkstraff|mote|traff")
_OTHER_DATE_WORDS = re.compile(r"nasta|juster|utskick|skickat|publicer|upprattad|signer")


def parse_minutes(text: str, municipalities: MunicipalityIndex) -> MinutesResult:
    """The meeting date named in the heading and the people and municipalities of the
    Närvarande section; a Swedish problem for each of the two that is missing."""
    lines = text.splitlines()
    meeting_date = _heading_date(lines)
    section = _attendance_section(lines)
    problems: list[str] = []
    if meeting_date is None:
        problems.append(NO_DATE)
    if section is None:
        problems.append(NO_ATTENDANCE)
    people, present = _attendance(section or [], municipalities)
    return MinutesResult(
        meeting_date=meeting_date,
        date_source="heading" if meeting_date else None,
        municipalities_present=present,
        people_present=people,
        text=text,
        problems=tuple(problems),
    )


# --- the date of the heading -------------------------------------------------------------------


def _heading_date(lines: list[str]) -> date | None:
    top = [fold(line) for line in lines if line.strip()][:_HEADING_LINES]
    # "Protokoll 2025-03-14, justerat 2025-03-20": only what comes before such a word is the meeting.
    candidates = [_OTHER_DATE_WORDS.split(line, maxsplit=1)[0] for line in top]
    for line in sorted(candidates, key=lambda line: not _HEADING_WORDS.search(line)):
        found = _date_in(line)
        if found:
            return found
    return None


def _date_in(line: str) -> date | None:
    """The first date written as "2025-03-14", "14 mars 2025", "14:e mars 2025", "14/3 2025" or "14/3-25"."""
    folded = fold(line)
    found: list[tuple[int, date]] = []
    for match in _ISO.finditer(folded):
        found.extend(_valid(match.start(), int(match[1]), int(match[2]), int(match[3])))
    for match in _DAY_MONTH_YEAR.finditer(folded):
        found.extend(_valid(match.start(), int(match[3]), _MONTHS[match[2]], int(match[1])))
    for match in _SLASH.finditer(folded):
        written = match[3] or match[4]
        year = int(written) + (2000 if len(written) == 2 else 0)
        found.extend(_valid(match.start(), year, int(match[2]), int(match[1])))
    return min(found)[1] if found else None


def _valid(position: int, year: int, month: int, day: int) -> list[tuple[int, date]]:
    try:
        return [(position, date(year, month, day))]
    except ValueError:
        return []


# --- the Närvarande section --------------------------------------------------------------------

_NUMBERING = re.compile(r"^\s*(?:§\s*\d+|\d{1,2}[.)])\s*")
_START = re.compile(r"^(?:narvarande|narvarolista|deltagare|narvaro)(?![a-z])")
_STOP = re.compile(
    r"^(?:franvarande|ej narvarande|ej narvarade|forhinder|anmalt forhinder|anmalda forhinder|"
    r"dagordning|agenda|motets oppnande|mote(?:t)? oppnas|justering|justerare|protokollet justeras|"
    r"vid protokollet|protokollforare|arenden|gaster|inbjudna|ovriga fragor|nasta mote|"
    r"datum|tid|plats|lokal)(?![a-z])"
)
_INLINE_STOP = re.compile(r"(?i)\b(?:frånvarande|franvarande|ej närvarande|anmält förhinder|förhinder)\b")
_PARAGRAPH = re.compile(r"^\s*(?:§\s*\d+|\d{1,2}[.)]\s+\S)")


def _attendance_section(lines: list[str]) -> list[str] | None:
    """The lines of the Närvarande section: the rest of its heading line and the lines after it,
    up to the next heading, two blank lines, or a line of running prose."""
    starts = [(i, _START.match(fold(_NUMBERING.sub("", line).strip()))) for i, line in enumerate(lines)]
    # "Närvarande" is the heading; "Deltagare" is used only by minutes that have no such heading.
    starts.sort(key=lambda found: not (found[1] and found[1][0].startswith("narvar")))
    for index, match in starts:
        if not match:
            continue
        heading = _NUMBERING.sub("", lines[index]).strip()
        # fold() keeps length for Swedish letters, so the folded match end indexes the original.
        rest = heading[match.end() :].lstrip(" :–-\t|")
        section = [_cut_inline_stop(rest)] if rest else []
        if rest and _INLINE_STOP.search(rest):
            return section
        blank_run = 0
        for following in lines[index + 1 :]:
            if not following.strip():
                blank_run += 1
                if blank_run >= 2 and section:
                    break
                continue
            blank_run = 0
            folded = fold(following).strip()
            if _STOP.match(_NUMBERING.sub("", folded)) or _PARAGRAPH.match(following) or _is_prose(following):
                break
            section.append(following.strip())
        return section
    return None


def _cut_inline_stop(text: str) -> str:
    match = _INLINE_STOP.search(text)
    return text[: match.start()] if match else text


def _is_prose(line: str) -> bool:
    """Running text ("Mötet inleddes med en presentationsrunda.") ends an attendance list that
    has no heading after it; attendance lines are mostly capitalised names and places."""
    words = re.findall(r"[^\W\d_]+", line)
    if len(words) < 6:
        return False
    capitalised = sum(1 for word in words if word[0].isupper())
    return capitalised / len(words) < 0.4


# --- people and municipalities -----------------------------------------------------------------

_PARTS = re.compile(r"\s*(?:[,;\t|()\[\]:/]|\s[-–—]\s|[–—]|\soch\s|\s&\s)\s*")
_TABLE_HEADINGS = frozenset({"namn", "kommun", "roll", "funktion", "e-post", "organisation", "narvarande"})


def _attendance(section: list[str], municipalities: MunicipalityIndex) -> tuple[tuple[str, ...], tuple[str, ...]]:
    people: list[str] = []
    present: set[str] = set()
    for line in section:
        present.update(_capitalised_municipalities(line, municipalities))
        for part in _PARTS.split(line):
            part = part.strip(" .")
            if not part or fold(part) in _TABLE_HEADINGS:
                continue
            name = person_name(part, municipalities)
            if name and name not in people:
                people.append(name)
    return tuple(people), tuple(sorted(present))


def _capitalised_municipalities(line: str, municipalities: MunicipalityIndex) -> set[str]:
    """Municipalities named in `line` with a capital letter.

    MunicipalityIndex folds case, and "vara" (to be) and "hjo" are also ordinary words: only a
    capitalised word ("Vara", "Falköpings") is taken as the place.
    """
    words = re.findall(r"[^\W\d_]+(?:-[^\W\d_]+)*", line)
    found: set[str] = set()
    for index, word in enumerate(words):
        if not word[0].isupper():
            continue
        name = municipalities.match_name(word)
        if name is None and index + 1 < len(words):
            # Two-word names and variants ("Falköpings kommun" is covered by the suffix rule).
            name = municipalities.match_name(f"{word} {words[index + 1]}")
            if name is not None and municipalities.match_name(words[index + 1]) == name:
                name = None  # matched only through the second word, which has its own turn
        if name is not None:
            found.add(name)
    return found
